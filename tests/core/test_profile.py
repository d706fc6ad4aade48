"""The profile a version stores, fed batch by batch as `data add` feeds it."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from workbench.core.data.profile import Profiler


def profiled(df: pl.DataFrame, batch: int) -> dict[str, dict]:
    p = Profiler(df.schema)
    for start in range(0, df.height, batch):
        p.update(df.slice(start, batch))
    return {c["name"]: c for c in p.result()["columns"]}


def test_float_statistics_leave_out_nan_and_inf_in_whichever_batch_they_fall() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(10, 2, 40_000)
    x[[5, 17_000, 17_001]] = np.nan  # batches 1 and 2 of 4 hold NaN, batch 3 an inf
    x[25_000] = np.inf
    x[39_999] = -np.inf
    with_nulls = pl.Series("y", x).set(pl.Series(np.arange(40_000) % 7 == 0), None)
    df = pl.DataFrame({"x": x, "y": with_nulls})
    cols = profiled(df, 10_000)
    finite = x[np.isfinite(x)]
    got = cols["x"]
    assert (got["nan"], got["inf"], got["count"]) == (3, 2, 40_000)
    assert math.isclose(got["mean"], finite.mean(), rel_tol=1e-12)
    assert math.isclose(got["std"], finite.std(ddof=1), rel_tol=1e-12)
    assert (got["min"], got["max"]) == (finite.min(), finite.max())
    # nulls and NaN both: statistics over the values that are neither
    y = df["y"].drop_nulls().to_numpy()
    y = y[np.isfinite(y)]
    got = cols["y"]
    assert got["nulls"] == 40_000 // 7 + 1
    assert math.isclose(got["mean"], y.mean(), rel_tol=1e-12)
    assert (got["min"], got["max"]) == (y.min(), y.max())


def test_value_counts_merge_across_batches_with_nulls_left_out() -> None:
    rng = np.random.default_rng(4)
    labels = rng.choice(["north", "south", "east", "west", "ünïcode"], 30_000).tolist()
    labels[::11] = [None] * len(labels[::11])
    df = pl.DataFrame(
        {"region": labels, "flag": rng.integers(0, 2, 30_000), "ok": rng.random(30_000) < 0.3}
    )
    cols = profiled(df, 7_000)
    want = df["region"].drop_nulls().value_counts()
    assert {t["value"]: t["count"] for t in cols["region"]["top"]} == dict(want.iter_rows())
    assert cols["region"]["n_unique"] == 5 and cols["region"]["nulls"] == len(labels[::11])
    assert (cols["region"]["min_len"], cols["region"]["max_len"]) == (4, 7)
    flag = dict(df["flag"].value_counts().iter_rows())
    assert {t["value"]: t["count"] for t in cols["flag"]["top"]} == flag
    assert cols["ok"]["true"] == int(df["ok"].sum())


def test_text_of_few_values_counts_exactly_when_a_new_value_or_a_ninth_comes_late() -> None:
    """A text column of few values is counted by comparison with the values seen so far:
    a value first met in a later batch (with its own length), nulls, and a column that
    grows past the few, all count as a group-by over the whole column does."""
    rng = np.random.default_rng(8)
    n = 40_000
    early = rng.choice(["a", "bb"], n).astype(object)
    early[30_123] = "late and long"  # in the fourth batch of 10k only
    early[::13] = None
    growing = np.array([f"v{i * 9 // n}" for i in range(n)])  # v0..v8, one more per batch
    df = pl.DataFrame({"early": pl.Series(early.tolist(), dtype=pl.String), "grow": growing})
    for batch in (10_000, 3_000):
        cols = profiled(df, batch)
        for name in ("early", "grow"):
            want = dict(df[name].drop_nulls().value_counts().iter_rows())
            got = cols[name]
            assert {t["value"]: t["count"] for t in got["top"]} == {
                k: v for k, v in sorted(want.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
            }
            assert got["n_unique"] == len(want) and got["top_exact"]
        assert (cols["early"]["min_len"], cols["early"]["max_len"]) == (1, 13)
        assert cols["early"]["nulls"] == len(early[::13])


def test_text_with_too_many_distinct_values_has_no_top_list_but_exact_lengths() -> None:
    """Ids or timestamps kept as text: counting each value stops once there are more than
    MAX_TRACKED_VALUES of them (its top list could not be exact any more), the distinct
    count comes from the sketch, and the lengths still cover every row, including those
    of batches read after counting stopped."""
    from workbench.core.data.profile import MAX_TRACKED_VALUES

    n = 3 * MAX_TRACKED_VALUES
    ids = [f"user-{i:07d}" for i in range(n)]
    ids[-1] = "u"  # the shortest, in the last batch
    ids[-2] = "user-" + "x" * 40  # the longest, there too
    rng = np.random.default_rng(5)
    region = rng.choice(["north", "south", "east"], n).tolist()
    cols = profiled(pl.DataFrame({"id": ids, "region": region}), 40_000)
    got = cols["id"]
    assert "top" not in got
    assert not got["n_unique_exact"]
    assert abs(got["n_unique"] - n) / n < 0.05  # the sketch's estimate
    assert (got["min_len"], got["max_len"], got["count"]) == (1, 45, n)
    # a column with few values is still counted exactly
    want = dict(pl.Series(region).value_counts().iter_rows())
    assert {t["value"]: t["count"] for t in cols["region"]["top"]} == want
    assert cols["region"]["n_unique_exact"]


def test_many_distinct_values_that_repeat_keep_their_most_frequent_as_lower_bounds() -> None:
    """The user ids of an event log: too many to count each, but a few users come again
    and again. Their top list stays, the heaviest counted in full (never cut), and the
    profile says the counts are lower bounds (a rare value cut from the list loses what it
    had); a column of ids that never repeat has no list (the test above)."""
    from workbench.core.data.profile import MAX_TRACKED_VALUES, TOP_K

    n = 3 * MAX_TRACKED_VALUES
    users = [f"user-{i:07d}" for i in range(n)]
    heavy = [f"heavy-{k}" for k in range(TOP_K)]
    users[::10] = [heavy[i % TOP_K] for i in range(len(users[::10]))]  # every tenth event
    cols = profiled(pl.DataFrame({"user": users}), 40_000)
    got = cols["user"]
    want = dict(pl.Series(users).value_counts().sort("count", descending=True).head(TOP_K).rows())
    assert {t["value"]: t["count"] for t in got["top"]} == want
    assert got["top_exact"] is False and not got["n_unique_exact"]
    assert abs(got["n_unique"] - len(set(users))) / len(set(users)) < 0.05


def test_integer_counts_are_exact_at_the_edges_of_their_types() -> None:
    """Narrow-range integers are counted by bincount, wider ones by group-by: both exact,
    an int8 spanning -128..127, uint64 values past 2**63, values from 0 up (counted
    without offsets) and a column that turns negative midway included."""
    rng = np.random.default_rng(5)
    n = 80_000
    df = pl.DataFrame(
        {
            "i8": pl.Series(rng.choice([-128, -64, 0, 64, 127], n), dtype=pl.Int8),
            "u64": pl.Series(2**63 + rng.integers(0, 9, n).astype(np.uint64), dtype=pl.UInt64),
            "wide": rng.integers(-7, 8, n) * 100_000,  # 15 values 1.4M apart: group-by
            # no NumPy type: counted by group-by whatever its range (a CSV's huge ints)
            "i128": pl.Series([k * 2**70 for k in rng.integers(0, 5, n).tolist()], dtype=pl.Int128),
            "code": pl.Series(rng.integers(0, 12, n), dtype=pl.Int16).set(
                pl.Series(np.arange(n) % 5 == 0), None
            ),
            # from 0 up: counted as they are; one turning negative midway is offset
            "u8": pl.Series(rng.integers(240, 256, n), dtype=pl.UInt8),
            "turns": np.where(np.arange(n) < n // 2, 1, -1) * rng.integers(0, 7, n),
        }
    )
    for batch in (3_000, 70_000):
        cols = profiled(df, batch)
        for name in ("i8", "u64", "wide", "code", "i128", "u8", "turns"):
            want = df[name].drop_nulls().value_counts().sort("count", descending=True)
            assert cols[name]["n_unique"] == want.height, name
            top = {t["value"]: t["count"] for t in cols[name]["top"]}
            assert top == {v: c for v, c in want.iter_rows() if v in top}
            assert len(top) == min(10, want.height)
        assert (cols["i8"]["min"], cols["i8"]["max"]) == (-128, 127)
        assert cols["code"]["nulls"] == n // 5


def test_the_sample_and_so_the_quantiles_do_not_depend_on_the_batches() -> None:
    rng = np.random.default_rng(6)
    df = pl.DataFrame({"x": rng.lognormal(0, 1, 450_000), "k": rng.integers(0, 1000, 450_000)})
    first = profiled(df, 450_000)
    for batch in (1_000, 99_999, 262_144):
        cols = profiled(df, batch)
        for name in ("x", "k"):
            assert cols[name]["quantiles"] == first[name]["quantiles"], (name, batch)
            assert cols[name]["histogram"] == first[name]["histogram"], (name, batch)
    # and the sample is a sample: its median is near the column's
    assert abs(first["x"]["quantiles"]["0.5"] / df["x"].median() - 1) < 0.02


def test_distinct_count_of_many_values_does_not_depend_on_the_batches() -> None:
    """Above 4,096 distinct values the count comes from a sketch of the smallest hashes,
    merged batch by batch: the same whatever the batches, and within its error."""
    rng = np.random.default_rng(11)
    values = rng.normal(size=120_000)
    df = pl.DataFrame({"x": values, "k": rng.integers(0, 30_000, 120_000)})
    whole = profiled(df, 120_000)
    for batch in (5_000, 17_000):
        got = profiled(df, batch)
        assert got["x"]["n_unique"] == whole["x"]["n_unique"]
        assert got["k"]["n_unique"] == whole["k"]["n_unique"]
    assert not whole["x"]["n_unique_exact"]
    assert abs(whole["x"]["n_unique"] / 120_000 - 1) < 0.05
    assert abs(whole["k"]["n_unique"] / len(np.unique(df["k"].to_numpy())) - 1) < 0.05
