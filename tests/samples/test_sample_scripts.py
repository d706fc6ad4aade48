"""Each sample project's own script runs as a user would run it and builds what it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import run_cli
from workbench.core.project import Project

SAMPLES = Path(__file__).resolve().parents[2] / "sample_projects"

pytestmark = pytest.mark.slow


def _run(script: Path, target: Path) -> str:
    proc = subprocess.run(
        [sys.executable, str(script), str(target)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout


def test_every_sample_has_data_readme_licence_config_and_script() -> None:
    for name in ("flights", "bikes"):
        folder = SAMPLES / name
        readme = (folder / "README.md").read_text()
        assert "## Source and licence" in readme and "CC" in readme
        assert "Why it drifts" in readme
        assert (folder / "workbench.toml").is_file() and (folder / "train.py").is_file()
        data = sorted((folder / "data").glob("*.parquet"))
        assert len(data) >= 8
        assert sum(p.stat().st_size for p in data) < 3_000_000  # compact extracts


def test_flights_script_trains_registers_and_checks_drift(tmp_path: Path) -> None:
    target = tmp_path / "flights"
    out = _run(SAMPLES / "flights" / "train.py", target)
    project = Project(target)
    versions = project.datasets.versions("flights")
    assert [v.number for v in versions] == list(range(1, 13))
    assert sum(v.n_rows for v in versions) == 327_346
    # The delay rate really swings between a calm and a stormy month (the README's story).
    rate = {m: project.datasets.load(f"flights@{m}")["delayed"].mean() for m in (9, 12)}
    assert rate[9] == pytest.approx(0.132, abs=0.001) and rate[12] == pytest.approx(
        0.326, abs=0.001
    )

    runs = {r["name"]: r for r in project.runs.list()}
    assert set(runs) == {"lightgbm", "own-hgb"}
    own = project.runs.get(runs["own-hgb"]["id"])
    assert own["tags"]["author"] == "train.py"
    assert len(project.runs.history(own["id"], "val_log_loss_curve")) == 30
    assert 0.7 < own["metrics"]["val_auc"]["last"] < 0.9
    staging = project.models.resolve("flight-delays@staging")
    assert staging.version == 1
    assert "7 of 13 checks drifted" in out

    # The script's own model (not the built-in one) registers and scores too.
    mv = project.models.register(runs["own-hgb"]["id"], "own")
    res = run_cli(
        "--project", str(target), "predict", "own@1", "flights@12", "-o", str(tmp_path / "s.csv")
    )
    assert res.code == 0, res.err
    scored = pl.read_csv(tmp_path / "s.csv")
    assert scored.height == 27_020 and {"prediction", "proba_1"} <= set(scored.columns)
    assert mv.inputs[:3] == ["month", "weekday", "sched_hour"]

    again = _run(SAMPLES / "flights" / "train.py", target)
    assert again.count("already stored") == 12
    assert len(project.datasets.versions("flights")) == 12


def test_bikes_script_shows_the_error_growing_on_a_later_year(tmp_path: Path) -> None:
    out = _run(SAMPLES / "bikes" / "train.py", tmp_path / "bikes")
    project = Project(tmp_path / "bikes")
    versions = project.datasets.versions("bikes")
    assert len(versions) == 8 and sum(v.n_rows for v in versions) == 17_379
    demand = [
        project.datasets.load(f"bikes@{q}")["rentals"].mean() for q in (1, 2, 3, 4, 5, 6, 7, 8)
    ]
    assert sum(demand[4:]) / sum(demand[:4]) == pytest.approx(1.63, abs=0.02)  # +63% in 2012
    assert project.models.resolve("bike-demand@staging").version == 1
    m = re.search(r"RMSE ([\d.]+) vs ([\d.]+) in validation", out)
    assert m, out
    assert float(m.group(1)) > 2 * float(m.group(2))  # the relationship changed: retrain
