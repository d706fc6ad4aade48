from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.conftest import frame
from workbench.core.data.diff import diff
from workbench.core.errors import DataError, UsageError
from workbench.core.project import Project


def _two_versions(project: Project, tmp_path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    a = frame(1000)
    b = (
        a.filter(pl.col("id") >= 10)  # 10 rows removed
        .with_columns(
            pl.when(pl.col("id") < 15).then(pl.lit("pro")).otherwise(pl.col("plan")).alias("plan")
        )
        .vstack(frame(25, seed=3).with_columns(pl.col("id") + 5000))  # 25 rows added
    )
    a.write_parquet(tmp_path / "a.parquet")
    b.write_parquet(tmp_path / "b.parquet")
    project.datasets.add(tmp_path / "a.parquet", name="t")
    project.datasets.add(tmp_path / "b.parquet", name="t")
    return a, b


def test_row_and_statistic_changes(project: Project, tmp_path: Path) -> None:
    a, b = _two_versions(project, tmp_path)
    d = diff(project.datasets, "t@1", "t@2")
    changed_plan = int(((a["id"] >= 10) & (a["id"] < 15) & (a["plan"] != "pro")).sum())
    assert d["rows_added"] == 25 + changed_plan
    assert d["rows_removed"] == 10 + changed_plan
    assert d["schema_changes"] is None and not d["identical"]
    income = next(s for s in d["column_stats"] if s["column"] == "income")
    assert income["mean"]["a"] == pytest.approx(a["income"].mean())
    assert income["mean"]["b"] == pytest.approx(b["income"].mean())


def test_diff_by_key_counts_changed_rows(project: Project, tmp_path: Path) -> None:
    a, _ = _two_versions(project, tmp_path)
    k = diff(project.datasets, "t@1", "t@2", key="id")["by_key"]
    changed = int(((a["id"] >= 10) & (a["id"] < 15) & (a["plan"] != "pro")).sum())
    assert (k["rows_added"], k["rows_removed"], k["rows_changed"]) == (25, 10, changed)
    assert k["changed_by_column"] == ({"plan": changed} if changed else {})
    for ex in k["examples"]:
        assert set(ex["changes"]) == {"plan"} and ex["changes"]["plan"]["b"] == "pro"


def test_diff_refuses_a_bad_key(project: Project, tmp_path: Path) -> None:
    _two_versions(project, tmp_path)
    with pytest.raises(UsageError, match="not in both versions"):
        diff(project.datasets, "t@1", "t@2", key="nope")
    with pytest.raises(DataError, match="not unique"):
        diff(project.datasets, "t@1", "t@2", key="plan")


def test_identical_versions_of_different_datasets(project: Project, tmp_path: Path) -> None:
    frame(100).write_csv(tmp_path / "a.csv")
    project.datasets.add(tmp_path / "a.csv", name="x")
    project.datasets.add(tmp_path / "a.csv", name="y")
    d = diff(project.datasets, "x", "y")
    assert d["identical"] and d["rows_added"] == 0 and d["rows_removed"] == 0
