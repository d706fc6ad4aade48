"""Data checks: each kind catches what it should and names the rows; a refusal stores
nothing; "record" keeps the version with its failing report; `data check` re-runs them."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import run_cli, store_snapshot
from workbench.core.data.checks import run_checks
from workbench.core.data.datasets import ChecksFailed
from workbench.core.errors import UsageError
from workbench.core.project import Project

GOOD = pl.DataFrame(
    {
        "id": [1, 2, 3, 4],
        "plan": ["basic", "pro", "pro", None],
        "age": [20, 35, 51, 64],
        "score": [0.1, 0.5, None, 0.9],
        "day": pl.date_range(pl.date(2024, 1, 1), pl.date(2024, 1, 4), eager=True),
    }
)
SPEC = {
    "rows": [2, 10],
    "columns": {"id": "Int", "plan": "String", "age": "Number", "day": "Date"},
    "not_null": ["id", "age"],
    "unique": [["id"], ["plan", "age"]],
    "ranges": {"age": [18, 99], "score": [0, 1]},
    "allowed": {"plan": ["basic", "pro"]},
    "max_null_share": {"score": 0.3, "*": 0.5},
}


def test_a_clean_frame_passes_every_check() -> None:
    report = run_checks(GOOD.lazy(), "t", SPEC)
    assert report.passed, report.summary()
    assert len(report.results) == 1 + 4 + 2 + 2 + 2 + 1 + 5


@pytest.mark.parametrize(
    ("change", "check", "rows"),
    [
        (pl.col("id").replace({3: 2}), "unique(id)", [2, 3]),
        (pl.col("age").replace({35: None}), "not_null(age)", [2]),
        (pl.col("age").replace({51: 130}), "range(age: 18..99)", [3]),
        (pl.col("score").replace({0.9: float("inf")}), "range(score: 0..1)", [4]),
        (pl.col("plan").replace({"pro": "gold"}), "allowed(plan)", [2, 3]),
    ],
)
def test_each_check_names_the_rows_that_broke_it(
    change: pl.Expr, check: str, rows: list[int]
) -> None:
    name = change.meta.output_name()
    bad = GOOD.with_columns(change.alias(name))
    report = run_checks(bad.lazy(), "t", SPEC)
    (failed,) = [r for r in report.results if not r.passed]
    assert failed.check == check
    assert [e["row"] for e in failed.examples] == rows
    assert failed.bad_rows == len(rows)


def test_missing_columns_wrong_types_row_bounds_and_null_shares() -> None:
    bad = GOOD.drop("day").with_columns(pl.col("age").cast(pl.String), pl.lit(None).alias("score"))
    report = run_checks(bad.lazy(), "t", {**SPEC, "rows": [5, -1]})
    failed = {r.check: r.detail for r in report.results if not r.passed}
    assert failed["rows(5..)"] == "4 rows"
    assert failed["column(day: Date)"] == "column 'day' is missing"
    assert failed["column(age: Number)"] == "is String"
    assert failed["range(age: 18..99)"] == "is String, not a number"
    assert failed["max_null_share(score <= 0.3)"] == "100.0% null"


def _write(df: pl.DataFrame, path: Path) -> Path:
    df.write_parquet(path)
    return path


def _with_checks(project: Project, text: str) -> Project:
    cfg = project.root / "workbench.toml"
    cfg.write_text(cfg.read_text() + "\n" + text)
    return Project(project.root)


CONFIG = """[checks.people]
not_null = ["age"]
ranges = { age = [18, 99] }
allowed = { plan = ["basic", "pro"] }
"""


def test_a_failing_batch_is_refused_and_nothing_is_stored(project: Project, tmp_path: Path) -> None:
    p = _with_checks(project, CONFIG)
    p.datasets.add(_write(GOOD, tmp_path / "a.parquet"), name="people")
    before = store_snapshot(p)
    bad = GOOD.with_columns(pl.col("age").replace({51: 130}))
    with pytest.raises(ChecksFailed) as info:
        p.datasets.add(_write(bad, tmp_path / "b.parquet"), name="people")
    assert "range(age: 18..99): 1 value out of range (rows 3)" in info.value.message
    assert store_snapshot(p) == before  # no version, no blob, no audit entry
    assert not list((p.store_dir / "tmp").glob("stage-*"))
    res = run_cli("data", "add", str(tmp_path / "b.parquet"), "--name", "people", cwd=p.root)
    assert res.code == 1 and res.err.count("\n") == 1 and "version refused by its checks" in res.err


def test_record_mode_keeps_the_version_and_its_failing_report(
    project: Project, tmp_path: Path
) -> None:
    p = _with_checks(
        project, CONFIG.replace("[checks.people]\n", '[checks.people]\non_fail = "record"\n')
    )
    bad = GOOD.with_columns(pl.col("plan").replace({"pro": "gold"}))
    res = p.datasets.add(_write(bad, tmp_path / "b.parquet"), name="people")
    assert res.created
    report = p.datasets.checks_of("people@1")
    assert report is not None and not report["passed"]
    assert [r["check"] for r in report["results"] if not r["passed"]] == ["allowed(plan)"]
    shown = run_cli("data", "show", "people@1", cwd=p.root)
    assert "checks: 1 failed: allowed(plan)" in shown.out
    res = run_cli("audit", "--json", cwd=p.root)
    add = next(e for e in json.loads(res.out) if e["action"] == "dataset.add")
    assert add["details"]["checks"].startswith("failed: 1 of 3 checks failed: allowed(plan)")


def test_data_check_reruns_the_checks_on_a_stored_version(project: Project, tmp_path: Path) -> None:
    project.datasets.add(
        _write(GOOD.with_columns(pl.col("age").replace({20: 15})), tmp_path / "a.parquet"),
        name="people",
    )
    p = _with_checks(project, CONFIG)  # checks written after the version was stored
    res = run_cli("data", "check", "people", cwd=p.root)
    assert res.code == 1
    assert (
        "people@1: 1 of 3 checks failed: range(age: 18..99): 1 value out of range (rows 1)"
        in res.out
    )
    js = run_cli("data", "check", "people", "--json", cwd=p.root)
    assert json.loads(js.out)["passed"] is False
    assert p.datasets.checks_of("people@1")["passed"] is False
    assert run_cli("verify", cwd=p.root).code == 0


def test_bad_check_config_is_one_clear_line(project: Project, tmp_path: Path) -> None:
    cfg = project.root / "workbench.toml"
    good = cfg.read_text()
    p = _with_checks(project, '[checks.people]\nnot_nul = ["age"]\n')
    line = cfg.read_text().splitlines().index('not_nul = ["age"]') + 1
    with pytest.raises(
        UsageError, match=rf"line {line}: unknown key 'not_nul' .*did you mean not_null"
    ):
        p.datasets.add(_write(GOOD, tmp_path / "a.parquet"), name="people")
    # A bad file is refused by every command, not only by the dataset it names.
    for args in (("data", "check", "people"), ("data", "list"), ("runs", "list")):
        res = run_cli(*args, cwd=p.root)
        assert res.code == 2 and res.err.count("\n") == 1, args
        assert f"workbench.toml, line {line}: unknown key 'not_nul'" in res.err, args
    cfg.write_text(good)
    q = Project(project.root)
    q.datasets.add(_write(GOOD, tmp_path / "b.parquet"), name="other")
    res = run_cli("data", "check", "other", cwd=q.root)
    assert res.code == 2 and "no checks for other" in res.err
