"""Dataset versions through the Python API, on real files and a real store."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tests.conftest import frame
from workbench.core.errors import NotFoundError, UsageError
from workbench.core.project import Project


@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl", "tsv"])
def test_every_format_round_trips(project: Project, tmp_path: Path, ext: str) -> None:
    df = frame(500)
    path = tmp_path / f"data.{ext}"
    {
        "csv": df.write_csv,
        "parquet": df.write_parquet,
        "jsonl": df.write_ndjson,
        "tsv": lambda p: df.write_csv(p, separator="\t"),
    }[ext](path)
    res = project.datasets.add(path, name="churn", message="first cut")
    assert res.created and res.version.ref == "churn@1"
    assert res.version.n_rows == 500 and res.version.n_cols == 5
    assert_frame_equal(project.datasets.load("churn"), df)


@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl"])
def test_brackets_in_a_file_or_project_name_are_only_characters(tmp_path: Path, ext: str) -> None:
    """Polars reads a path as a glob pattern unless told not to: "export [2024].csv" was
    refused ("expanded paths were empty"; a Parquet file "damaged or truncated"), and in
    a project folder named "models[v2]" every read of a stored chunk failed."""
    project = Project.init(tmp_path / "models[v2]")[0]
    df = frame(500)
    path = tmp_path / f"export [2024].{ext}"
    {"csv": df.write_csv, "parquet": df.write_parquet, "jsonl": df.write_ndjson}[ext](path)
    assert project.datasets.add(path, name="churn").version.n_rows == 500
    assert_frame_equal(project.datasets.load("churn"), df)
    # a second version is cut against the first's stored chunks, which are read back
    changed = df.with_columns(pl.when(pl.col("id") == 7).then(99).otherwise("age").alias("age"))
    {"csv": changed.write_csv, "parquet": changed.write_parquet,
     "jsonl": changed.write_ndjson}[ext](path)  # fmt: skip
    assert project.datasets.add(path, name="churn").version.ref == "churn@2"
    assert_frame_equal(project.datasets.load("churn@2"), changed)


def test_same_content_makes_no_new_version(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    frame(50).write_csv(path)
    first = project.datasets.add(path, name="churn")
    objects_before = sorted(project.objects.all_digests())
    again = project.datasets.add(path, name="churn")
    assert not again.created and again.version.number == 1 and again.version.id == first.version.id
    assert sorted(project.objects.all_digests()) == objects_before
    assert len(project.datasets.versions("churn")) == 1


def test_versions_number_up_and_every_reference_form_resolves(
    project: Project, tmp_path: Path
) -> None:
    ids = []
    for i in range(3):
        path = tmp_path / f"v{i}.csv"
        frame(20 + i, seed=i).write_csv(path)
        ids.append(project.datasets.add(path, name="churn").version.id)
    ds = project.datasets
    assert [v.number for v in ds.versions("churn")] == [1, 2, 3]
    assert ds.resolve("churn").number == 3
    assert ds.resolve("churn@2").id == ids[1]
    assert ds.resolve(f"churn@sha:{ids[0][:8]}").number == 1
    assert ds.load("churn@1").height == 20


def test_unknown_references_name_what_exists(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    frame(10).write_csv(path)
    project.datasets.add(path, name="churn")
    with pytest.raises(NotFoundError, match=r"no dataset named 'nope' \(datasets: churn\)"):
        project.datasets.resolve("nope")
    with pytest.raises(NotFoundError, match=r"has no version 7 \(versions 1..1\)"):
        project.datasets.resolve("churn@7")
    with pytest.raises(NotFoundError, match="no version of churn has a hash starting with beef"):
        project.datasets.resolve("churn@sha:beef")
    with pytest.raises(UsageError):
        project.datasets.resolve("run:abcd")


def test_profile_matches_polars(project: Project, tmp_path: Path) -> None:
    df = frame(1000).with_columns(
        pl.when(pl.col("id") % 10 == 0).then(None).otherwise(pl.col("income")).alias("income")
    )
    path = tmp_path / "p.parquet"
    df.write_parquet(path)
    project.datasets.add(path, name="churn")
    cols = {c["name"]: c for c in project.datasets.profile("churn")["columns"]}
    inc = cols["income"]
    assert inc["kind"] == "numeric" and inc["nulls"] == 100 and inc["count"] == 900
    assert math.isclose(inc["mean"], df["income"].mean(), rel_tol=1e-12)
    assert math.isclose(inc["std"], df["income"].std(), rel_tol=1e-12)
    assert inc["min"] == df["income"].min() and inc["max"] == df["income"].max()
    assert math.isclose(inc["quantiles"]["0.5"], df["income"].quantile(0.5, "linear"))
    assert sum(inc["histogram"]["counts"]) == 900 and len(inc["histogram"]["edges"]) == 21
    plan = cols["plan"]
    assert plan["kind"] == "categorical" and plan["n_unique"] == 3
    counts = df["plan"].value_counts()
    assert {t["value"]: t["count"] for t in plan["top"]} == dict(counts.iter_rows())


def test_nan_and_inf_are_counted_not_averaged(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    pl.DataFrame({"x": [1.0, 3.0, float("nan"), float("inf"), float("-inf")]}).write_parquet(path)
    project.datasets.add(path, name="f")
    x = project.datasets.profile("f")["columns"][0]
    assert (x["nan"], x["inf"], x["mean"], x["min"], x["max"]) == (1, 2, 2.0, 1.0, 3.0)


def test_schema_changes_are_reported(project: Project, tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    frame(30).write_csv(a)
    frame(30).drop("plan").with_columns(
        pl.col("age").cast(pl.Float64) + 0.5, pl.lit("x").alias("region")
    ).write_csv(b)
    project.datasets.add(a, name="churn")
    res = project.datasets.add(b, name="churn")
    assert res.schema_changes == {
        "added": ["region"],
        "removed": ["plan"],
        "retyped": [{"column": "age", "from": "Int64", "to": "Float64"}],
    }


def test_types_are_inferred_over_the_whole_file_when_the_head_misleads(
    project: Project, tmp_path: Path
) -> None:
    path = tmp_path / "late.csv"
    values = [str(i) for i in range(20_000)] + ["n/a"]
    pl.DataFrame({"code": values}).write_csv(path)
    project.datasets.add(path, name="late")
    df = project.datasets.load("late")
    assert df.schema["code"] == pl.String and df.height == 20_001 and df["code"][-1] == "n/a"


def test_head_and_export_round_trip(project: Project, tmp_path: Path) -> None:
    df = frame(300)
    src = tmp_path / "a.parquet"
    df.write_parquet(src)
    project.datasets.add(src, name="churn")
    assert_frame_equal(project.datasets.head("churn", 5), df.head(5))
    for ext in ("csv", "parquet", "jsonl"):
        out = project.datasets.export("churn@1", tmp_path / f"out.{ext}")
        back = {"csv": pl.read_csv, "parquet": pl.read_parquet, "jsonl": pl.read_ndjson}[ext](out)
        assert_frame_equal(back, df, check_dtypes=False)
    with pytest.raises(UsageError, match="cannot tell the format"):
        project.datasets.export("churn", tmp_path / "out.xlsx")
