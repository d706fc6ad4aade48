"""Sweeps on a real two-node Ray cluster, started here on 127.0.0.1 (`ray start --head`
and a second `ray start --address`), not on local_mode: every trial lands in the store
as a local sweep's would, with the same metrics for the same seeds, its curves, and
the node it ran on; a trial whose worker is killed ends `killed`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.core.test_training import churn
from workbench.core.project import Project

pytestmark = pytest.mark.slow

RAY = str(Path(sys.executable).parent / "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Two Ray nodes of one CPU each. `--block` keeps each node's processes tied to the
    one started here, so stopping it stops that node and nothing else on the machine."""
    pytest.importorskip("ray")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats", "--block"]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # a throwaway cluster on loopback
    logs = tmp_path_factory.mktemp("ray")
    head = subprocess.Popen(
        [RAY, "start", "--head", f"--port={port}", "--include-dashboard=false", *common],
        stdout=open(logs / "head.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        env=env,
    )
    nodes = [head]
    try:
        _wait_for_nodes(address, 1, head, logs / "head.log")
        worker = subprocess.Popen(
            [RAY, "start", f"--address={address}", *common],
            stdout=open(logs / "worker.log", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            env=env,
        )
        nodes.append(worker)
        _wait_for_nodes(address, 2, worker, logs / "worker.log")
        yield address
    finally:
        for proc in reversed(nodes):
            proc.send_signal(signal.SIGTERM)
        for proc in nodes:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_for_nodes(address: str, n: int, proc: subprocess.Popen, log: Path) -> None:
    code = (
        "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
        "print(sum(1 for x in ray.nodes() if x['Alive']))"
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited: {log.read_text()[-2000:]}")
        out = subprocess.run(
            [sys.executable, "-c", code, address],
            capture_output=True,
            text=True,
            env={**os.environ, "RAY_AUTH_MODE": "disabled"},
        )
        if out.returncode == 0 and out.stdout.strip() == str(n):
            return
        time.sleep(1)
    raise RuntimeError(f"the Ray cluster did not reach {n} node(s)")


@pytest.fixture
def churn_project(project: Project, tmp_path: Path) -> Project:
    churn(2000, 0).write_parquet(tmp_path / "c.parquet")
    project.datasets.add(tmp_path / "c.parquet", name="churn")
    return project


def test_eight_trials_on_two_nodes_land_as_a_local_sweep_would(
    churn_project: Project, cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    p = churn_project
    grid = {"n_estimators": [20, 40], "learning_rate": [0.05, 0.1, 0.2, 0.3]}
    fixed = {"params": {"n_jobs": 1}}
    on_ray = p.sweep("churn", "churned", grid=grid, model="lightgbm", backend="ray",
                     address=cluster, **fixed)  # fmt: skip
    here = p.sweep("churn", "churned", grid=grid, model="lightgbm", parallel=2, **fixed)
    assert len(on_ray["trials"]) == 8 and not any(t["error"] for t in on_ray["trials"])
    nodes = set()
    for a, b in zip(on_ray["trials"], here["trials"], strict=True):
        assert a["params"] == b["params"]
        ra, rb = p.runs.get(a["run_id"]), p.runs.get(b["run_id"])
        assert ra.status == "finished" and ra.parent_id == on_ray["parent_id"]
        assert ra.params == rb.params  # the same recipe, recorded the same way
        for key in ("val_auc", "val_log_loss", "train_auc"):
            assert ra.last(key) == rb.last(key)  # same seeds: the same models
        n = a["params"]["n_estimators"]
        assert p.runs.history(a["run_id"], "val_auc_curve") == p.runs.history(
            b["run_id"], "val_auc_curve"
        )
        assert len(p.runs.history(a["run_id"], "val_auc_curve")) == n  # streamed back whole
        assert {x.path for x in ra.artifacts} == {x.path for x in rb.artifacts}
        nodes.add(ra.tags["ray.node"])
    assert len(nodes) == 2  # both nodes trained
    assert on_ray["best"]["params"] == here["best"]["params"]
    # the best model is a model like any other: registered, it scores
    v = p.models.register(on_ray["best"]["run_id"], "churn-model")
    assert v.version == 1
    assert run_cli("verify", cwd=p.root).code == 0


def test_a_trial_whose_worker_is_killed_ends_killed_and_the_sweep_goes_on(
    churn_project: Project, cluster: str
) -> None:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    sweep = subprocess.Popen(
        [sys.executable, "-m", "workbench", "--project", str(churn_project.root), "sweep",
         "churn", "-t", "churned", "-m", "lightgbm", "-p", "learning_rate=0.01",
         "-g", "n_estimators=1500,1600,1700", "--backend", "ray", "--address", cluster,
         "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    # curves stream back: a trial still running already shows points in its live run
    streamed = 0
    deadline = time.monotonic() + 60
    while not streamed and time.monotonic() < deadline:
        running = [r for r in churn_project.runs.list() if r["status"] == "running"
                   and (r["name"] or "").startswith("sweep-")]  # fmt: skip
        for r in running:
            streamed = max(streamed, len(churn_project.runs.history(r["id"], "val_auc_curve")))
        time.sleep(0.1)
    assert 0 < streamed < 1500, "no curve point arrived while a trial ran"
    victim = None
    while victim is None and time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-f", "ray::fit_trial"], capture_output=True, text=True)
        pids = [int(x) for x in found.stdout.split()]
        if pids:
            victim = pids[0]
            os.kill(victim, signal.SIGKILL)
        else:
            time.sleep(0.05)
    out, err = sweep.communicate(timeout=300)
    assert victim is not None, "no trial was seen running"
    assert sweep.returncode == 0, err
    import json

    trials = json.loads(out)["trials"]
    statuses = sorted(churn_project.runs.get(t["run_id"]).status for t in trials)
    # two trials start, one on each node; the third starts once a node is free, so the
    # sweep goes on scheduling after the kill
    assert statuses == ["finished", "finished", "killed"]
    killed = next(t for t in trials if t["error"])
    assert "its Ray worker died" in killed["error"]
    assert churn_project.runs.get(killed["run_id"]).error.startswith("its Ray worker died")


def test_ray_options_are_checked_in_one_line(churn_project: Project) -> None:
    res = run_cli("sweep", "churn", "-t", "churned", "-g", "n_estimators=5,6",
                  "--address", "127.0.0.1:1", cwd=churn_project.root)  # fmt: skip
    assert res.code == 2 and "--address is for --backend ray" in res.err
