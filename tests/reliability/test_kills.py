"""SIGKILL in the middle of every command that writes, then check the store.

Two ways of killing, both on the real CLI in its own process:

- at every write point in turn (``killer.py`` lists them: each rename, half-way
  through each object, each catalog transaction before and after COMMIT, each metric
  flush), so no gap between two writes goes untried;
- after a random delay (seeded, so a failure replays), as a user's ``kill -9`` or a
  power cut would, which also lands inside DuckDB's own COMMIT and in library code.

After each kill: ``verify`` passes (audit chain, registry against the audit trail, no
dangling catalog row, every object, referenced or not, hashes to its name), the store
holds the state from before the command or the one after it and nothing in between, a
killed run shows as killed with every point it had flushed, and the same command run
again succeeds and leaves the state a single uninterrupted run would.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from workbench.core.project import Project
from workbench.core.runs.points import read_points
from workbench.core.store.verify import verify

pytestmark = pytest.mark.slow  # a subprocess per write point: minutes

KILLER = Path(__file__).with_name("killer.py")
RANDOM_KILLS = 2


@dataclass
class Case:
    args: list[str]
    # (project before, project after the kill or rerun, killed?) -> asserts the state is whole
    check: Callable[[dict, Project, bool], None]
    # which write points to kill at, from the full list (default: every one)
    pick: Callable[[list[str]], list[int]] | None = None


def _counts(p: Project) -> dict:
    with p.catalog.read() as con:
        one = lambda q, *a: con.execute(q, list(a)).fetchall()[0][0]  # noqa: E731
        return {
            "churn": one("SELECT count(*) FROM dataset_versions WHERE dataset = 'churn'"),
            "fresh": one("SELECT count(*) FROM dataset_versions WHERE dataset = 'fresh'"),
            "runs": one("SELECT count(*) FROM runs"),
            "versions": one("SELECT count(*) FROM model_versions"),
            "production": one("SELECT max(version) FROM model_aliases WHERE alias = 'production'"),
            "history": one("SELECT count(*) FROM alias_history"),
            "reports": one("SELECT count(*) FROM drift_reports"),
            "scorings": one("SELECT count(*) FROM scorings"),
            "run_ids": {r[0] for r in con.execute("SELECT id FROM runs").fetchall()},
        }


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """churn@1; run1 -> churn-model v1 (production), run2 -> v2, run3 finished but not
    registered; a gate that computes a drift report, so a promotion writes one."""
    from tests.core.test_training import churn
    from workbench.core.runs.training import Recipe, train

    base = tmp_path_factory.mktemp("kills")
    p, _ = Project.init(base / "proj")
    cfg = p.root / "workbench.toml"
    cfg.write_text(
        cfg.read_text().replace("# chunk_rows = 262144", "chunk_rows = 1000")
        + '\n[gates]\nproduction = ["drift_share(churn@1) <= 1.0"]\n'
    )
    p = Project(p.root)
    data = base / "data"
    data.mkdir()
    first = churn(3000, 0)
    first.write_csv(data / "c1.csv")
    p.datasets.add(data / "c1.csv", name="churn")
    # the next month: a third of the rows changed, some added (patches and new chunks)
    second = pl.concat([first.head(2000), churn(1500, 1)])
    second.write_csv(data / "c2.csv")
    churn(2000, 2).write_csv(data / "fresh.csv")
    churn(500, 3).drop("churned").write_csv(data / "score.csv")
    runs = [
        train(p, Recipe(dataset="churn@1", target="churned", params={"n_estimators": n}))
        for n in (10, 20, 30)
    ]
    p.models.register(runs[0], "churn-model")
    p.models.register(runs[1], "churn-model")
    p.models.promote("churn-model", 1, "production")
    (base / "run3").write_text(runs[2])
    return base


def _copy(template: Path, dest: Path) -> Project:
    shutil.copytree(template, dest)
    return Project(dest / "proj")


def _whole(p: Project) -> None:
    report = verify(p)
    assert report.ok, report.problems


def _data_add_check(name: str, source: str) -> Callable[[dict, Project, bool], None]:
    def check(before: dict, p: Project, killed: bool) -> None:
        now = _counts(p)
        assert now[name] in (before[name], before[name] + 1)
        if now[name] > before[name] or not killed:
            assert now[name] == before[name] + 1
            stored = p.datasets.load(p.datasets.resolve(name))
            src = pl.read_csv(p.root.parent / "data" / source)
            assert stored.equals(src)

    return check


def _train_check(before: dict, p: Project, killed: bool) -> None:
    runs = p.runs.list(limit=None)
    new = [r for r in runs if r["id"] not in before["run_ids"]]
    assert len(new) <= (1 if killed else 2)
    for r in new:
        assert r["status"] in ("finished", "killed"), r["status"]
        if r["status"] == "killed":
            # every point it flushed to its file is in the catalog, nothing more
            points = read_points(p.store_dir / "runs" / r["id"])  # None: killed before it opened
            with p.catalog.read() as con:
                n = con.execute(
                    "SELECT count(*) FROM metrics WHERE run_id = ?", [r["id"]]
                ).fetchall()[0][0]
            assert n == (points.height if points is not None else 0)
    if not killed:
        assert any(r["status"] == "finished" for r in new)


def _register_check(before: dict, p: Project, killed: bool) -> None:
    now = _counts(p)
    # a rerun after a landed register returns the same version: never a twin
    assert now["versions"] in ((2, 3) if killed else (3,))


def _promote_check(before: dict, p: Project, killed: bool) -> None:
    now = _counts(p)
    assert now["production"] in ((1, 2) if killed else (2,))
    moved = now["production"] == 2
    assert now["history"] == before["history"] + moved
    assert now["reports"] == before["reports"] + moved  # the gate's report goes with the move


def _predict_check(before: dict, p: Project, killed: bool) -> None:
    now = _counts(p)
    out = p.root.parent / "scored.csv"
    # scoring again is a new event: a rerun after a landed scoring records a second one
    assert now["scorings"] in ((0, 1) if killed else (1, 2))
    if now["scorings"] or not killed:
        assert out.exists()
    if out.exists():  # an output file is never half-written
        assert pl.read_csv(out).height == 500


def _every_kind_once(points: list[str]) -> list[int]:
    """Training writes four artifacts the same way and each kill costs a training rerun:
    kill at the first point of each kind, and at the last COMMIT (the run's end)."""
    chosen: dict[str, int] = {}
    for i, name in enumerate(points):
        chosen.setdefault(name, i)
    last = max(i for i, n in enumerate(points) if n == "catalog transaction before COMMIT")
    return sorted({*chosen.values(), last, last + 1})


CASES = {
    "data add (new dataset)": Case(
        ["data", "add", "../data/fresh.csv", "-n", "fresh"], _data_add_check("fresh", "fresh.csv")
    ),
    "data add (new version)": Case(
        ["data", "add", "../data/c2.csv", "-n", "churn"], _data_add_check("churn", "c2.csv")
    ),
    "train": Case(
        ["train", "churn@1", "--target", "churned", "-p", "n_estimators=7"],
        _train_check,
        _every_kind_once,
    ),
    "model register": Case(["model", "register", "RUN3", "-n", "churn-model"], _register_check),
    "model promote": Case(
        ["model", "promote", "churn-model", "2", "--to", "production"], _promote_check
    ),
    "predict": Case(
        ["predict", "churn-model@production", "../data/score.csv", "-o", "../scored.csv"],
        _predict_check,
    ),
}


def _args(case: Case, base: Path) -> list[str]:
    run3 = "run:" + (base / "run3").read_text()[:8]
    return [run3 if a == "RUN3" else a for a in case.args]


def _run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, killer: bool = True
) -> subprocess.CompletedProcess:
    """The CLI in its own process: under ``killer.py``, or plain as a user runs it."""
    entry = [str(KILLER)] if killer else ["-m", "workbench"]
    return subprocess.run(
        [sys.executable, *entry, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _after_kill(case: Case, base: Path, before: dict) -> None:
    p = Project(base / "proj")
    p.runs.reconcile()  # what any later command does first
    _whole(p)
    case.check(before, p, True)
    again = _run(_args(case, base), p.root, killer=False)
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    p = Project(base / "proj")
    _whole(p)
    case.check(before, p, False)
    assert list((p.store_dir / "tmp").iterdir()) == []  # stale staging areas cleaned


@pytest.mark.parametrize("name", sorted(CASES))
def test_kill_at_every_write_point(template: Path, tmp_path: Path, name: str) -> None:
    case = CASES[name]
    probe = _copy(template, tmp_path / "probe")
    log = tmp_path / "points.txt"
    before = _counts(probe)
    full = _run(_args(case, tmp_path / "probe"), probe.root, {"WB_KILL_LOG": str(log)})
    assert full.returncode == 0, full.stderr
    case.check(before, Project(probe.root), False)
    points = log.read_text().splitlines()
    assert points, "the command reached no write point"
    chosen = case.pick(points) if case.pick else list(range(len(points)))
    survived = []
    for k in chosen:
        base = tmp_path / f"k{k}"
        p = _copy(template, base)
        res = _run(_args(case, base), p.root, {"WB_KILL_AT": str(k)})
        assert res.returncode == -signal.SIGKILL, (k, points[k], res.stderr)
        try:
            _after_kill(case, base, before)
        except AssertionError as exc:
            raise AssertionError(f"killed at point {k} ({points[k]}): {exc}") from exc
        survived.append(points[k])
        shutil.rmtree(base)
    _record(name, "write points", len(survived))


@pytest.mark.parametrize("name", sorted(CASES))
def test_kill_after_a_random_delay(template: Path, tmp_path: Path, name: str) -> None:
    case = CASES[name]
    probe = _copy(template, tmp_path / "probe")
    before = _counts(probe)
    t0 = time.perf_counter()
    full = _run(_args(case, tmp_path / "probe"), probe.root)
    took = time.perf_counter() - t0
    assert full.returncode == 0, full.stderr
    rng = random.Random(f"{name}-kills")
    for i in range(RANDOM_KILLS):
        base = tmp_path / f"r{i}"
        p = _copy(template, base)
        delay = rng.uniform(0.3, 1.0) * took
        proc = subprocess.Popen(
            [sys.executable, str(KILLER), *_args(case, base)],
            cwd=p.root,
            env=dict(os.environ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        try:
            _after_kill(case, base, before)
        except AssertionError as exc:
            raise AssertionError(f"killed after {delay:.2f}s of {took:.2f}s: {exc}") from exc
        shutil.rmtree(base)
    _record(name, "random delays", RANDOM_KILLS)


def _record(name: str, how: str, n: int) -> None:
    """Counts for docs/reliability.md, printed with -s."""
    print(json.dumps({"case": name, "how": how, "kills": n}))
