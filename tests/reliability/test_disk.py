"""A full disk and a read-only store: every write fails with one line and changes nothing.

The project lives on its own small tmpfs (root only), filled to the last byte or
remounted read-only, so the errors are the kernel's own ENOSPC and EROFS, met wherever
they happen: in the object store, in DuckDB's log file, in a run's folder, in an output.
Each command runs in a process of its own, forked from one that has imported the
libraries already (``tests/forked.py``): some 90 commands would otherwise spend 2-3 s
each importing before they reach the disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import built_once, store_snapshot
from tests.forked import Zygote
from workbench.core.project import Project
from workbench.core.store.verify import verify

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root"),
]

# (command, what the user sees on a full disk): every command that writes
COMMANDS = {
    "data add": ["data", "add", "{data}/c2.csv", "-n", "churn"],
    "data add (new dataset)": ["data", "add", "{data}/c2.csv", "-n", "fresh"],
    "train": ["train", "churn@1", "--target", "churned", "-p", "n_estimators=5"],
    "model register": ["model", "register", "{run2}", "-n", "churn-model"],
    "model promote": ["model", "promote", "churn-model", "1", "--to", "production"],
    "predict": ["predict", "churn-model@1", "{data}/c2.csv", "-o", "{root}/../scored.csv"],
    "drift": ["drift", "churn@1", "{data}/c2.csv"],
    "runs tag": ["runs", "tag", "{run2}", "owner=ada"],
    "data check": ["data", "check", "churn@1"],
    "sweep": ["sweep", "churn@1", "-t", "churned", "-m", "random_forest", "-g", "n_estimators=3,4"],
    "rerun": ["rerun", "{run2}"],
    "model rollback": ["model", "rollback", "churn-model", "-a", "staging"],
    "model archive": ["model", "archive", "other-model", "1", "-r", "superseded"],
    "runs delete": ["runs", "delete", "{run2}"],
    "runs restore": ["runs", "restore", "{run5}"],
    "pipeline run": ["pipeline", "run", "monthly", "--batch", "{data}/c2.csv"],
    "import mlflow": ["import", "mlflow", "{mlflow}"],
}


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)])
    if r.returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def _fill(disk: Path) -> Path:
    """Write zeros until the kernel says no: not one byte is left."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        block = b"\0" * (1 << 16)
        with contextlib.suppress(OSError):
            while True:
                f.write(block)
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0")
    return filler


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Built once: churn@1 (with checks), five finished runs (the fifth deleted),
    churn-model v1 from the first and v2 from the third (staging held by v1, then v2),
    other-model v1 from the fourth (no alias), a pipeline, a small MLflow store."""

    def build(base: Path) -> str:
        return json.dumps(_build(base))

    base, said = built_once(tmp_path_factory, "disk-template", build)
    return base, json.loads(said)


def _build(base: Path) -> dict[str, str]:
    from tests.core.test_training import churn
    from tests.reliability.kill_cases import PIPELINE, mlflow_store
    from workbench.core.runs.training import Recipe, train

    data = base / "data"
    data.mkdir()
    p, _ = Project.init(base / "proj")
    cfg = p.root / "workbench.toml"
    cfg.write_text(
        cfg.read_text()
        + '\n[checks.churn]\ncolumns = { age = "Int", churned = "Int" }\n'
        + PIPELINE
    )
    p = Project(p.root)
    churn(2000, 0).write_csv(data / "c1.csv")
    churn(20_000, 1).write_csv(data / "c2.csv")
    p.datasets.add(data / "c1.csv", name="churn")
    run1, run2, run3, run4, run5 = (
        train(p, Recipe(dataset="churn@1", target="churned", params={"n_estimators": n}))
        for n in (5, 6, 7, 8, 9)
    )
    p.models.register(run1, "churn-model")
    p.models.register(run3, "churn-model")
    p.models.promote("churn-model", 1, "staging")
    p.models.promote("churn-model", 2, "staging")
    p.models.register(run4, "other-model")
    p.runs.delete(run5)
    subs = {"data": str(data), "mlflow": str(mlflow_store(base / "mlruns"))}
    return {**subs, "run2": f"run:{run2[:8]}", "run5": f"run:{run5[:8]}"}


def _setup(template: tuple[Path, dict[str, str]], disk: Path) -> tuple[Project, dict[str, str]]:
    import shutil

    base, subs = template
    shutil.copytree(base / "proj", disk / "proj")
    return Project(disk / "proj"), {**subs, "root": str(disk / "proj")}


def _args(name: str, subs: dict[str, str]) -> list[str]:
    return [a.format(**subs) for a in COMMANDS[name]]


def _state(p: Project) -> tuple[object, list[str]]:
    runs = sorted(d.name for d in (p.store_dir / "runs").iterdir())
    return store_snapshot(p), runs


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_full_disk_fails_cleanly_and_changes_nothing(
    zygote: Zygote, template: tuple[Path, dict[str, str]], tmp_path: Path, name: str
) -> None:
    with tmpfs(tmp_path / "disk", "40m") as disk:
        p, subs = _setup(template, disk)
        before = _state(p)
        filler = _fill(disk)
        r = zygote.run(_args(name, subs), p.root)
        assert r.code == 1, (r.out, r.err)
        assert r.err.count("\n") == 1 and "no space left on the disk" in r.err, r.err
        assert "Traceback" not in r.err and "unexpected" not in r.err
        filler.unlink()
        assert _state(Project(p.root)) == before
        assert list((p.store_dir / "tmp").iterdir()) == []
        assert not list(disk.glob("*.tmp")) and not list(disk.glob(".*.tmp"))
        assert verify(Project(p.root)).ok
        again = zygote.run(_args(name, subs), p.root)  # with room, it works
        assert again.code == 0, again.err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_read_only_store_fails_cleanly(
    zygote: Zygote, template: tuple[Path, dict[str, str]], tmp_path: Path, name: str
) -> None:
    with tmpfs(tmp_path / "disk", "40m") as disk:
        p, subs = _setup(template, disk)
        before = _state(p)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        r = zygote.run(_args(name, subs), p.root)
        assert r.code == 1, (r.out, r.err)
        assert r.err.count("\n") == 1 and "read-only" in r.err, r.err
        assert "Traceback" not in r.err and "unexpected" not in r.err
        listed = zygote.run(["runs", "list"], p.root)  # reading still works
        assert listed.code == 0 and subs["run2"] in listed.out
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        assert _state(Project(p.root)) == before
        assert verify(Project(p.root)).ok
