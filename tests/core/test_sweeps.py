"""Sweeps run trials as child runs in processes; re-runs reproduce metrics."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.core.test_training import churn
from workbench.core.errors import UsageError
from workbench.core.fluent import start_run
from workbench.core.project import Project
from workbench.core.runs.sweeps import parse_grid, parse_random, rerun, sweep, trials
from workbench.core.runs.training import Recipe, train


@pytest.fixture
def data(project: Project, tmp_path: Path) -> Project:
    churn(400).write_parquet(tmp_path / "c.parquet")
    project.datasets.add(tmp_path / "c.parquet", name="churn")
    return project


def test_trial_generation() -> None:
    grid = parse_grid(["num_leaves=7,15", "max_depth=3,-1"])
    assert grid == {"num_leaves": [7, 15], "max_depth": [3, -1]}
    assert len(trials(grid, {}, None, 0)) == 4
    space = parse_random(["learning_rate=0.01:0.3:log", "min_child_samples=5:50"])
    drawn = trials(grid, space, 6, 0)
    assert len(drawn) == 6
    for t in drawn:
        assert 0.01 <= t["learning_rate"] <= 0.3 and isinstance(t["min_child_samples"], int)
    assert trials(grid, space, 6, 0) == drawn  # seeded
    for bad in (["x"], ["x="], ["=1,2"]):
        with pytest.raises(UsageError):
            parse_grid(bad)
    for bad in (["x=1"], ["x=2:1"], ["x=0:1:log"], ["x=a:b"]):
        with pytest.raises(UsageError):
            parse_random(bad)


@pytest.mark.slow
def test_sweep_runs_children_in_parallel_and_survives_a_failing_trial(data: Project) -> None:
    base = Recipe(dataset="churn", target="churned", params={"n_estimators": 15}, name="s")
    # min_child_samples=-5 makes LightGBM refuse that trial; the sweep must go on.
    result = sweep(data, base, {"min_child_samples": [5, 10, -5]}, {}, parallel=2)
    assert len(result["trials"]) == 3
    failed = [t for t in result["trials"] if t["error"]]
    assert [t["params"] for t in failed] == [{"min_child_samples": -5}]
    assert "bad lightgbm parameter" in failed[0]["error"]
    parent = data.runs.get(result["parent_id"])
    # the refused parameters are caught before the trial's run exists: no failed child
    assert parent["status"] == "finished" and len(parent["children"]) == 2
    children = [data.runs.get(c) for c in parent["children"]]
    assert sorted(c["status"] for c in children) == ["finished", "finished"]
    best = result["best"]
    finished = [t for t in result["trials"] if not t["error"]]
    assert best["score"] == max(t["score"] for t in finished)
    assert parent["tags"]["best_run"] == best["run_id"]
    assert parent["metrics"]["trials_failed"]["last"] == 1


def test_rerun_reproduces_the_metrics(data: Project) -> None:
    run_id = train(
        data, Recipe(dataset="churn@1", target="churned", params={"n_estimators": 20}, seed=5)
    )
    r = rerun(data, run_id[:8])
    assert r["reproduced"] and r["rerun"] != run_id
    assert {m["metric"] for m in r["metrics"]} >= {"val_auc", "val_log_loss", "train_auc"}
    assert data.runs.get(r["rerun"])["tags"]["rerun_of"] == run_id


def test_rerun_refuses_a_hand_made_run(data: Project) -> None:
    with start_run(project=data) as run:
        run.log_param("model", "mine")
    with pytest.raises(UsageError, match="not made by `workbench train`"):
        rerun(data, run.id)


def test_a_ray_sweep_without_ray_says_what_to_install_and_records_nothing(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import run_cli, store_snapshot

    churn(200, 0).write_parquet(tmp_path / "c.parquet")
    project.datasets.add(tmp_path / "c.parquet", name="churn")
    monkeypatch.setitem(sys.modules, "ray", None)  # as on an install without workbench[ray]
    before = store_snapshot(project)
    res = run_cli("sweep", "churn", "-t", "churned", "-g", "n_estimators=5,6", "--backend", "ray",
                  cwd=project.root)  # fmt: skip
    assert (
        res.code == 2
        and res.err == "error: --backend ray needs Ray: pip install 'workbench[ray]'\n"
    )
    assert store_snapshot(project) == before  # no parent run left failed


def test_an_unreachable_ray_cluster_is_refused_in_seconds_and_records_nothing(
    project: Project, tmp_path: Path
) -> None:
    """Ray itself retries a dead address for minutes; the sweep asks first."""
    pytest.importorskip("ray")
    from tests.conftest import run_cli, store_snapshot

    churn(200, 0).write_parquet(tmp_path / "c.parquet")
    project.datasets.add(tmp_path / "c.parquet", name="churn")
    before = store_snapshot(project)
    args = ("sweep", "churn", "-t", "churned", "-g", "n_estimators=5,6", "--backend", "ray")
    dead = run_cli(*args, "--address", "127.0.0.1:1", cwd=project.root)
    assert dead.code == 1 and "cannot reach a Ray cluster at 127.0.0.1:1" in dead.err
    bad = run_cli(*args, "--address", "nonsense", cwd=project.root)
    assert bad.code == 2 and "--address takes auto or HOST:PORT" in bad.err
    assert store_snapshot(project) == before
