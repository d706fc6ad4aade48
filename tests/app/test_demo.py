"""`workbench demo --no-ui` builds the whole lifecycle, and running it again changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import run_cli, store_snapshot
from workbench.core.project import Project

pytestmark = pytest.mark.slow


def test_demo_builds_versions_runs_sweep_models_drift_and_scoring(
    flights_demo: tuple[Path, str],
) -> None:
    root, out = flights_demo
    assert "Ready in" in out
    # the command it tells the user to type is one that parses (it once was not)
    hint = out.split("Open it with: ")[1].split("\n")[0].strip()
    assert hint == f"workbench --project {root} ui"
    shown = run_cli(*hint.split()[1:], "--help")
    assert shown.code == 0 and "Open the workbench app" in shown.out
    project = Project(root)

    versions = project.datasets.versions("flights")
    assert [v.message for v in versions[:2]] == ["2013-01 batch", "2013-02 batch"]
    assert len(versions) == 12

    runs = project.runs.list(limit=None)
    assert all(r["status"] == "finished" for r in runs)
    by_name = {r["name"]: r for r in runs}
    assert {"baseline", "forest", "lightgbm", "sweep"} <= set(by_name)
    sweep = project.runs.get(by_name["sweep"]["id"])
    children = [r for r in runs if r["parent_id"] == sweep["id"]]
    assert len(children) == 4
    assert all(r["dataset"] == "flights@4" for r in runs)

    production = project.models.resolve("flight-delays@production")
    staging = project.models.resolve("flight-delays@staging")
    assert (production.version, staging.version) == (1, 2)
    singles = {
        n: project.runs.get(by_name[n]["id"])["metrics"]["val_auc"]["last"]
        for n in ("baseline", "forest", "lightgbm")
    }
    assert production.run_id == by_name[max(singles, key=singles.get)]["id"]  # best single run
    assert staging.run_id == sweep["tags"]["best_run"]  # the challenger is the sweep's best
    history = project.models.history("flight-delays")
    assert [(h["alias"], h["version"]) for h in history] == [
        ("staging", 1),
        ("production", 1),
        ("staging", 2),
    ]

    (report,) = [r for r in project.drift.list(dataset="flights") if r["series_id"] is None]
    assert (report["reference"], report["current"]) == ("flights@4", "flights@12")
    full = project.drift.get(report["id"])
    assert full.column("temp").drifted  # April vs December: of course
    assert any(c.column.startswith("prediction") and c.drifted is not None for c in full.columns)

    scored = pl.read_parquet(root / "scores" / "flights_12.parquet")
    assert scored.height == 27_020 and "proba_1" in scored.columns

    res = run_cli("--project", str(root), "audit", "--json")
    assert res.code == 0
    actions = [e["action"] for e in json.loads(res.out)]
    for action in (
        "dataset.add",
        "model.register",
        "model.promote",
        "drift.report",
        "model.predict",
        "labels.add",
        "monitor.report",
    ):
        assert action in actions, action
    # December's labels came: the estimate (April's relation) and what they realised
    (window,) = json.loads(
        run_cli("--project", str(root), "sql", "SELECT * FROM monitor_windows", "--json").out
    )
    auc = window["metrics"]["auc"]
    assert window["rows"] == window["labelled"] == 27_020
    assert auc["realised"] < auc["lower"]  # concept drift: outside the band
    assert run_cli("--project", str(root), "verify").code == 0


def test_demo_again_on_the_same_folder_changes_nothing(flights_demo: tuple[Path, str]) -> None:
    root, _ = flights_demo
    project = Project(root)
    before = store_snapshot(project)
    res = run_cli("demo", str(root), "--no-ui")
    assert res.code == 0, res.err
    assert res.out.count("(already done)") == 11
    assert store_snapshot(project) == before


def test_demo_refuses_a_folder_that_holds_something_else(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    res = run_cli("demo", str(tmp_path), "--no-ui")
    assert res.code == 2 and "is not empty" in res.err and not res.out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]

    other, _ = Project.init(tmp_path / "mine")
    before = store_snapshot(other)
    res = run_cli("demo", str(other.root), "--no-ui")
    assert res.code == 2 and "not the flights demo" in res.err
    assert store_snapshot(other) == before


def test_bikes_demo_builds_a_regression_lifecycle(tmp_path: Path) -> None:
    res = run_cli("demo", str(tmp_path / "bikes"), "--sample", "bikes", "--no-ui")
    assert res.code == 0, res.err
    project = Project(tmp_path / "bikes")
    assert len(project.datasets.versions("bikes")) == 8
    production = project.models.resolve("bike-demand@production")
    assert "val_rmse" in production.metrics and production.dataset_ref == "bikes@2"
    # the demo's drift step; the monitor step's window has a report of its own series
    (report,) = [r for r in project.drift.list(dataset="bikes") if r["series_id"] is None]
    assert report["current"] == "bikes@5"
    assert project.drift.get(report["id"]).column("temp").drifted  # spring vs winter
