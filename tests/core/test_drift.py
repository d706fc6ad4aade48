"""The drift engine on real dataset versions in a real store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from workbench.core.drift.columns import MISSING, SKIPPED, TESTED, Options
from workbench.core.errors import DataError, NotFoundError, UsageError
from workbench.core.project import Project


def batch(
    n: int, seed: int, shift: float = 0.0, plan_p: tuple[float, ...] = (0.5, 0.3, 0.2)
) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "age": rng.normal(40 + 10 * shift, 10, n).round(1),
            "income": rng.lognormal(10, 0.5, n),
            "plan": rng.choice(["basic", "plus", "pro"], n, p=list(plan_p)),
            "active": rng.integers(0, 2, n).astype(bool),
            "visits": rng.poisson(3, n),
        }
    )


def add(project: Project, df: pl.DataFrame, tmp: Path, name: str = "users") -> str:
    path = tmp / f"{name}-{df.height}-{abs(hash(df.to_numpy().tobytes())) % 10**8}.parquet"
    df.write_parquet(path)
    return project.datasets.add(path, name=name).version.ref


def test_shifted_columns_drift_and_stable_ones_do_not(project: Project, tmp_path: Path) -> None:
    ref = add(project, batch(5000, 1), tmp_path)
    cur = add(project, batch(5000, 2, shift=1.0, plan_p=(0.2, 0.3, 0.5)), tmp_path)
    report = project.drift.compare(ref, cur)
    by = {c.column: c for c in report.columns}
    assert by["age"].drifted and by["age"].method == "wasserstein"
    assert by["plan"].drifted and by["plan"].method == "jensenshannon"
    assert not by["income"].drifted and not by["visits"].drifted and not by["active"].drifted
    assert report.n_drifted == 2 and len(report.tested) == 5
    assert report.share == pytest.approx(0.4) and not report.drifted
    # the statistic is scipy's, on the non-null values of each side
    a = project.datasets.load(ref)["age"].to_numpy()
    b = project.datasets.load(cur)["age"].to_numpy()
    want = stats.wasserstein_distance(a, b) / np.std(a)
    assert by["age"].statistic == pytest.approx(want, rel=1e-12)
    assert "ref values > 1000" in by["age"].reason


def test_small_reference_uses_hypothesis_tests_like_evidently(
    project: Project, tmp_path: Path
) -> None:
    ref = add(project, batch(400, 1), tmp_path)
    cur = add(project, batch(400, 2), tmp_path)
    by = {c.column: c for c in project.drift.compare(ref, cur).columns}
    assert by["age"].method == "ks" and by["age"].p_value is not None
    assert by["plan"].method == "chisquare"
    assert by["active"].method == "z"


def test_dataset_verdict_uses_the_drift_share(project: Project, tmp_path: Path) -> None:
    ref = add(project, batch(3000, 1), tmp_path)
    cur = add(project, batch(3000, 2, shift=1.0, plan_p=(0.2, 0.3, 0.5)), tmp_path)
    assert not project.drift.compare(ref, cur).drifted
    assert project.drift.compare(ref, cur, Options(drift_share=0.4)).drifted


def test_schema_drift_is_reported_not_raised(project: Project, tmp_path: Path) -> None:
    base = batch(2000, 1).with_columns(
        pl.lit(None, dtype=pl.Float64).alias("empty_later"),
        pl.lit("same").alias("constant"),
        pl.col("visits").alias("retyped"),
        pl.lit(1).alias("dropped"),
    )
    base = base.with_columns(pl.col("income").alias("empty_later"))
    ref = add(project, base, tmp_path)
    cur_df = (
        batch(2000, 2)
        .with_columns(
            pl.lit(None, dtype=pl.Float64).alias("empty_later"),
            pl.lit("same").alias("constant"),
            pl.col("visits").cast(pl.String).alias("retyped"),
            pl.lit("x").alias("added"),
        )
        .with_columns(
            pl.when(pl.int_range(pl.len()) < 300)
            .then(pl.lit("enterprise"))
            .otherwise(pl.col("plan"))
            .alias("plan")
        )
    )
    cur = add(project, cur_df, tmp_path)
    report = project.drift.compare(ref, cur)
    by = {c.column: c for c in report.columns}
    assert by["dropped"].status == MISSING and "not in users@2" in by["dropped"].reason
    assert by["added"].status == MISSING and "not in users@1" in by["added"].reason
    assert by["empty_later"].drifted and by["empty_later"].method == "nulls"
    assert by["constant"].status == TESTED and not by["constant"].drifted
    assert any("constant in users@1" in n for n in by["constant"].notes)
    assert by["retyped"].kind == "categorical"
    assert any("type changed: Int64 → String" in n for n in by["retyped"].notes)
    unseen = [n for n in by["plan"].notes if "never seen" in n]
    assert unseen and "'enterprise'" in unseen[0] and "15.0% of rows" in unseen[0]
    assert by["plan"].drifted


def test_datetime_and_id_like_columns_are_skipped_unless_named(
    project: Project, tmp_path: Path
) -> None:
    def frame(seed: int) -> pl.DataFrame:
        df = batch(3000, seed)
        return df.with_columns(
            pl.Series(
                "when",
                pl.datetime_range(
                    pl.datetime(2024, 1, 1),
                    pl.datetime(2024, 1, 1) + pl.duration(hours=2999),
                    "1h",
                    eager=True,
                ),
            ),
            pl.Series("user_id", [f"u{seed}-{i}" for i in range(3000)]),
        )

    ref = add(project, frame(1), tmp_path)
    cur = add(project, frame(2), tmp_path)
    by = {c.column: c for c in project.drift.compare(ref, cur).columns}
    assert by["when"].status == SKIPPED and "name the column" in by["when"].reason
    assert by["user_id"].status == SKIPPED and "identifier" in by["user_id"].reason
    named = project.drift.compare(ref, cur, Options(columns=["when", "user_id"]))
    assert [c.status for c in named.columns] == [TESTED, TESTED]


def test_methods_per_column_type_and_column(project: Project, tmp_path: Path) -> None:
    ref = add(project, batch(3000, 1), tmp_path)
    cur = add(project, batch(3000, 2), tmp_path)
    opts = Options(
        method="ks", cat_method="chisquare", column_methods={"income": "psi:0.2"}, threshold=0.01
    )
    by = {c.column: c for c in project.drift.compare(ref, cur, opts).columns}
    assert by["age"].method == "ks" and by["age"].threshold == 0.01
    assert by["plan"].method == "chisquare" and "column type" in by["plan"].reason
    assert by["income"].method == "psi" and by["income"].threshold == 0.2
    with pytest.raises(UsageError, match="numeric columns only"):
        project.drift.compare(ref, cur, Options(column_methods={"plan": "ks"}))
    with pytest.raises(UsageError, match="unknown drift method"):
        project.drift.compare(ref, cur, Options(method="nope"))


def test_reports_are_stored_and_read_back(project: Project, tmp_path: Path) -> None:
    ref = add(project, batch(2000, 1), tmp_path)
    cur = add(project, batch(2000, 2, shift=1.0), tmp_path)
    report = project.drift.compare(ref, cur)
    again = project.drift.get(report.id[:8])
    assert again.to_dict(plots=True) == json.loads(json.dumps(report.to_dict(plots=True)))
    listed = project.drift.list()
    assert listed[0]["id"] == report.id and listed[0]["n_drifted"] == report.n_drifted
    with project.catalog.read() as con:
        logged = con.execute(
            "SELECT subject, details FROM audit WHERE action = 'drift.report'"
        ).fetchall()
    assert len(logged) == 1 and logged[0][0] == f"drift:{report.id}"
    assert json.loads(logged[0][1])["n_drifted"] == report.n_drifted
    project.drift.compare(ref, cur, save=False)
    assert len(project.drift.list()) == 1
    with pytest.raises(NotFoundError, match="no drift report"):
        project.drift.get("ffffffff")


def test_plot_data_covers_both_sides(project: Project, tmp_path: Path) -> None:
    ref = add(project, batch(2000, 1), tmp_path)
    cur = add(project, batch(2000, 2, shift=1.0), tmp_path)
    report = project.drift.compare(ref, cur)
    age = report.column("age").plot
    assert age["type"] == "histogram" and len(age["edges"]) == len(age["ref"]) + 1
    assert sum(age["ref"]) == pytest.approx(1) and sum(age["cur"]) == pytest.approx(1)
    plan = report.column("plan").plot
    assert plan["type"] == "bars" and set(plan["labels"]) == {"basic", "plus", "pro"}


def test_series_gives_one_report_per_version(project: Project, tmp_path: Path) -> None:
    refs = [add(project, batch(2000, i, shift=0.25 * i), tmp_path) for i in range(4)]
    reports = project.drift.series(refs[0], refs[1:])
    assert [r.current for r in reports] == refs[1:]
    assert len({r.series_id for r in reports}) == 1 and reports[0].series_id
    ages = [r.column("age").statistic for r in reports]
    assert ages == sorted(ages) and ages[-1] > ages[0]


def test_current_can_be_a_file_not_yet_added(project: Project, tmp_path: Path) -> None:
    ref = add(project, batch(2000, 1), tmp_path)
    new = tmp_path / "new_batch.csv"
    batch(1500, 9, shift=1.0).write_csv(new)
    report = project.drift.compare(ref, str(new))
    assert report.current == "new_batch.csv" and report.column("age").drifted


def test_bad_input_is_a_clear_error(project: Project, tmp_path: Path) -> None:
    ref = add(project, batch(200, 1), tmp_path)
    other = add(project, pl.DataFrame({"x": [1, 2, 3]}), tmp_path, name="other")
    with pytest.raises(DataError, match="no column in common"):
        project.drift.compare(ref, other)
    empty = tmp_path / "empty.csv"
    empty.write_text("age,income\n")
    with pytest.raises(DataError, match="no rows"):
        project.drift.compare(ref, str(empty))
    with pytest.raises(NotFoundError):
        project.drift.compare(ref, "users@9")
    with pytest.raises(UsageError, match="no column 'nope'"):
        project.drift.compare(ref, ref, Options(columns=["nope"]))
    with pytest.raises(UsageError, match="drift-share"):
        project.drift.compare(ref, ref, Options(drift_share=0))


def test_the_reason_says_which_values_it_counted(project: Project, tmp_path: Path) -> None:
    """A reference with more than 5 distinct values decides the method alone; with fewer,
    both sides' values are counted together (Evidently's rule), new ones included."""
    rng = np.random.default_rng(4)
    ref = pl.DataFrame({"many": rng.normal(size=3000), "few": rng.integers(0, 3, 3000)})
    cur = pl.DataFrame({"many": rng.normal(size=3000), "few": rng.integers(0, 7, 3000)})
    by = {c.column: c for c in project.drift.compare(
        add(project, ref, tmp_path, "counts"), add(project, cur, tmp_path, "counts")
    ).columns}  # fmt: skip
    assert by["many"].method == "wasserstein"
    assert by["many"].reason.startswith("default: numeric, 3,000 distinct in ref > 5")
    assert by["few"].method == "wasserstein"
    assert by["few"].reason.startswith("default: numeric, 7 distinct > 5")


def test_categories_are_counted_as_scipy_counts_them(project: Project, tmp_path: Path) -> None:
    """Category statistics from value counts equal scipy's chi-square of the current
    counts against the reference's shape (Evidently's), nulls left out; a value the
    reference never had is drift, named in a note."""
    rng = np.random.default_rng(5)
    ref = pl.DataFrame({"plan": rng.choice(["b", "a", "c", None], 400).tolist()})
    cur = pl.DataFrame({"plan": rng.choice(["c", "a", None, "b"], 300, p=[0.4, 0.2, 0.1, 0.3])})
    r_ref, r_cur = add(project, ref, tmp_path, "cats"), add(project, cur, tmp_path, "cats")
    plan = project.drift.compare(r_ref, r_cur).column("plan")
    assert plan.method == "chisquare"
    r = np.array([ref["plan"].to_list().count(k) for k in "abc"])
    c = np.array([cur["plan"].to_list().count(k) for k in "abc"])
    want = stats.chisquare(c, r * c.sum() / r.sum())
    assert 1e-12 < want.pvalue < 0.5
    assert plan.statistic == pytest.approx(want.statistic, rel=1e-12)
    assert plan.p_value == pytest.approx(want.pvalue, rel=1e-9)
    assert plan.ref_count == r.sum() and plan.cur_count == c.sum()
    assert plan.ref_null_share == pytest.approx(ref["plan"].null_count() / 400)
    assert plan.plot is not None and set(plan.plot["labels"]) == {"a", "b", "c"}
    new = pl.DataFrame({"plan": ["a", "b", "c", "new", "new", None] * 50})
    other = project.drift.compare(r_ref, add(project, new, tmp_path, "cats")).column("plan")
    assert other.drifted and other.p_value == 0.0 and other.cur_count == 250
    assert any("never seen" in n and "'new'" in n and "(40.0% of rows)" in n for n in other.notes)


def test_a_wide_report_is_stored_whole(project: Project, tmp_path: Path) -> None:
    """More columns than one bound INSERT takes go in through Arrow: all read back."""
    rng = np.random.default_rng(6)
    wide = {f"x{i:03d}": rng.normal(size=50) for i in range(620)}
    ref = add(project, pl.DataFrame(wide), tmp_path, "wide")
    cur = add(project, pl.DataFrame({k: v + 1 for k, v in wide.items()}), tmp_path, "wide")
    report = project.drift.compare(ref, cur)
    again = project.drift.get(report.id)
    assert len(again.columns) == 620 == report.n_drifted
    assert again.to_dict(plots=True) == json.loads(json.dumps(report.to_dict(plots=True)))


def test_nan_and_infinities_are_left_out_of_the_comparison(
    project: Project, tmp_path: Path
) -> None:
    """NaN and +-inf are not values to compare (as nulls are not): the statistic is
    scipy's on the finite values alone, and the counts say how many those were."""
    rng = np.random.default_rng(6)
    a, b = rng.normal(0, 1, 3000), rng.normal(0.3, 1, 2500)
    odd = [np.nan, np.inf, -np.inf]
    a_odd = np.concatenate([a, np.repeat(odd, [7, 3, 5])])
    b_odd = np.concatenate([b, np.repeat(odd, [2, 11, 1])])
    rng.shuffle(a_odd), rng.shuffle(b_odd)
    ref = add(project, pl.DataFrame({"x": a_odd}), tmp_path, "odd")
    cur = add(project, pl.DataFrame({"x": b_odd}), tmp_path, "odd")
    x = project.drift.compare(ref, cur).column("x")
    assert (x.ref_count, x.cur_count) == (3000, 2500)
    want = stats.wasserstein_distance(a, b) / np.std(a)
    assert x.statistic == pytest.approx(want, rel=1e-12)
    plot = x.plot
    assert plot["edges"][0] == min(a.min(), b.min()) and plot["edges"][-1] == max(a.max(), b.max())
    # a side with nothing finite has no values, like a side of nulls
    only = add(project, pl.DataFrame({"x": np.repeat(odd, 1000)}), tmp_path, "odd")
    assert project.drift.compare(ref, only).column("x").method == "nulls"


def test_whole_number_bins_only_when_every_value_is_whole(project: Project, tmp_path: Path) -> None:
    """Whole numbers stored as floats (years, counts read from CSV) get whole-number
    bins; one fraction anywhere in a column, even among thousands, gives even bins."""
    rng = np.random.default_rng(7)
    whole = rng.integers(1990, 2030, 5000).astype(float)
    ref = add(project, pl.DataFrame({"year": whole}), tmp_path, "years")
    assert project.drift.compare(ref, ref).column("year").plot.get("whole") is True
    one_off = whole.copy()
    one_off[np.argsort(whole)[2501]] += 0.5  # a value a sample of the sorted column skips
    other = add(project, pl.DataFrame({"year": one_off}), tmp_path, "years")
    for r, c in ((ref, other), (other, ref)):
        assert "whole" not in project.drift.compare(r, c).column("year").plot


def test_many_rows_of_categories_give_scipy_jensen_shannon(
    project: Project, tmp_path: Path
) -> None:
    """Over 1,000 rows categories use Jensen-Shannon; its shares come from the counts,
    in sorted order of the values on both sides, new ones included."""
    from scipy.spatial import distance

    rng = np.random.default_rng(8)
    keys = ["d", "a", "c", "b", "e"]
    ref = pl.DataFrame({"k": rng.choice(keys[:4], 4000, p=[0.1, 0.2, 0.3, 0.4])})
    cur = pl.DataFrame({"k": rng.choice(keys, 3000, p=[0.3, 0.2, 0.2, 0.2, 0.1])})
    k = project.drift.compare(
        add(project, ref, tmp_path, "many"), add(project, cur, tmp_path, "many")
    ).column("k")
    r = np.array([ref["k"].to_list().count(v) for v in "abcde"]) / 4000
    c = np.array([cur["k"].to_list().count(v) for v in "abcde"]) / 3000
    assert k.method == "jensenshannon" and k.drifted
    assert k.statistic == pytest.approx(distance.jensenshannon(r, c), rel=1e-12)
    shares = zip(k.plot["ref"], k.plot["cur"], strict=True)
    by_label = dict(zip(k.plot["labels"], shares, strict=True))
    assert by_label["e"] == (0.0, pytest.approx(c[4])) and by_label["a"][0] == pytest.approx(r[0])


def test_planned_columns_are_read_in_groups_once_each(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report reads its columns a group at a time, each column once, whichever of
    the threads asks first, and hands out what a read of that column alone gives."""
    from concurrent.futures import ThreadPoolExecutor

    import workbench.core.data.sources as sources
    from workbench.core.data.sources import Table

    df = batch(3000, 1).with_columns(note=pl.lit("x"), when=pl.lit(1).cast(pl.Datetime))
    ref = add(project, df, tmp_path)
    monkeypatch.setattr(sources, "GROUP_BYTES", 3000 * 8 * 2)  # two numbers a group
    table = Table(project.datasets, ref)
    reads: list[list[str]] = []

    class Counted:
        def __init__(self, lf: pl.LazyFrame) -> None:
            self.lf = lf

        def select(self, names: list[str] | str) -> pl.LazyFrame:
            reads.append([names] if isinstance(names, str) else list(names))
            return self.lf.select(names)

    table.lf = Counted(table.lf)  # type: ignore[assignment]
    names = ["age", "income", "visits", "plan", "active", "note"]
    table.plan(names)
    with ThreadPoolExecutor(4) as pool:
        got = dict(zip(names, pool.map(table.column, names), strict=True))
    for n in names:
        assert got[n].equals(df.get_column(n))
    read = [n for group in reads for n in group]
    assert sorted(read) == sorted(names)  # each once
    assert len(reads) < len(names) and all(len(g) <= 2 for g in reads)
    assert table.column("when").equals(df.get_column("when"))  # not planned: read alone
    assert reads[-1] == ["when"]


def test_a_window_is_counted_against_the_references_values_as_by_hashing() -> None:
    """A side whose values are the reference's few is counted by comparing with each of
    them; the counts must be those of hashing every row, also with nulls, an empty
    string, a value the reference lacks (then hashed), values the side lacks, and a
    reference with too many values to compare with one by one."""
    from workbench.core.drift.columns import FEW_EXPECTED, _value_counts

    rng = np.random.default_rng(2)
    many = [f"v{i:02d}" for i in range(FEW_EXPECTED + 3)]
    cases = [
        (pl.Series(rng.choice(["a", "b", "c"], 5000)), ["a", "b", "c"]),
        (pl.Series(["b", None, "", "b", None]), ["", "a", "b"]),
        (pl.Series(["a", "new", "a"]), ["a", "b"]),
        (pl.Series(rng.choice(many, 3000)), many),
        (pl.Series([1, 2, 2, None]), ["1", "2", "3"]),  # numbers compared as text
        (pl.Series([], dtype=pl.String), ["a"]),
    ]
    for side, expected in cases:
        keys, counts = _value_counts(side, expected)
        want_keys, want_counts = _value_counts(side)
        assert keys == want_keys and counts.tolist() == want_counts.tolist(), (keys, want_keys)
        assert sum(counts.tolist()) == side.len() - side.null_count()


def test_a_kept_tables_derived_values_are_made_once_whatever_thread_asks() -> None:
    """A first monitor report's windows derive the training columns while another thread
    prepares them from the last one back: two threads asking for one column get one
    value made once, and a thread making one column does not hold up another column."""
    import threading

    from workbench.core.data.sources import Table

    table = Table.of_frame("train", pl.DataFrame({"a": [3, 1, 2], "b": [1.0, 2.0, 3.0]}))
    made: list[str] = []
    slow_started, release = threading.Event(), threading.Event()

    def make_a() -> object:
        made.append("a")
        slow_started.set()
        assert release.wait(10)
        return np.sort(table.column("a").to_numpy())

    got: list[object] = []
    first = threading.Thread(target=lambda: got.append(table.derived(("n", "a"), make_a)))
    second = threading.Thread(target=lambda: got.append(table.derived(("n", "a"), make_a)))
    first.start()
    assert slow_started.wait(10)
    second.start()
    # another column is made and handed out while "a" is still being made
    other: list[object] = []
    third = threading.Thread(
        target=lambda: other.append(table.derived(("n", "b"), lambda: made.append("b") or "b's"))
    )
    third.start()
    third.join(10)
    assert other == ["b's"] and len(got) == 0
    release.set()
    first.join(10)
    second.join(10)
    assert made == ["a", "b"]  # each made once
    assert len(got) == 2 and got[0] is got[1]
    assert got[0].tolist() == [1, 2, 3]  # type: ignore[attr-defined]
    assert table.derived(("n", "a"), make_a) is got[0] and made == ["a", "b"]
