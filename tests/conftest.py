"""Shared fixtures: real projects in tmp_path, the real CLI entry point."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest

from workbench.core.project import Project

if TYPE_CHECKING:
    from tests.forked import Zygote


# Modules of the longest tests (a minute or two each in CI: the network-blocked demo,
# the README's commands, the kills, a Ray cluster, the sample scripts), run first: a
# worker that drew one of them near the end kept the run going while the other idled.
LONG_FIRST = (
    "tests/privacy/", "tests/test_docs.py", "tests/reliability/test_kills.py",
    "tests/core/test_ray_sweep.py", "tests/samples/", "tests/core/test_monitor_samples.py",
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next(
            (i for i, m in enumerate(LONG_FIRST) if item.nodeid.startswith(m)), len(LONG_FIRST)
        )

    items.sort(key=rank)  # stable: each module's tests stay together, in their order


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKBENCH_PROJECT", raising=False)
    monkeypatch.delenv("WORKBENCH_DEBUG", raising=False)
    monkeypatch.setenv("COLUMNS", "160")  # tables wrap by terminal width: keep it fixed


@pytest.fixture(scope="session")
def _new_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p, _ = Project.init(tmp_path_factory.mktemp("new") / "proj")
    return p.root


@pytest.fixture
def project(tmp_path: Path, _new_project: Path) -> Project:
    """A project as ``Project.init`` makes it, copied from one made once per test process:
    creating a catalog costs ~0.2 s, hundreds of times in the suite; a copy ~6 ms."""
    shutil.copytree(_new_project, tmp_path / "proj")
    return Project(tmp_path / "proj")


@pytest.fixture
def small_chunks(project: Project) -> Project:
    """A project that stores 1,000-row chunks, so small data exercises chunking."""
    cfg = project.root / "workbench.toml"
    cfg.write_text(cfg.read_text().replace("# chunk_rows = 262144", "chunk_rows = 1000"))
    return Project(project.root)


def frame(n: int = 100, seed: int = 0) -> pl.DataFrame:
    import numpy as np

    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "id": np.arange(n),
            "age": rng.integers(18, 90, n),
            "income": rng.normal(50_000, 15_000, n).round(2),
            "plan": rng.choice(["basic", "plus", "pro"], n),
            "churned": rng.integers(0, 2, n),
        }
    )


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(*args: str, cwd: Path | None = None) -> Result:
    """Run the real ``main()`` in-process (fast), capturing output and exit code."""
    from workbench.cli import output
    from workbench.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    output._console = None
    code = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(old)
        output._console = None
    return Result(code, out.getvalue(), err.getvalue())


def run_subprocess(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> Result:
    """Run ``python -m workbench`` as a separate process, as a user's shell would."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def store_snapshot(project: Project) -> tuple[dict[str, list[tuple]], list[str]]:
    """Every catalog row and every object file: equal snapshots mean nothing changed."""
    with project.catalog.read() as con:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables ORDER BY table_name"
            ).fetchall()
        ]
        # a count and an order-free sum of row hashes per table: any changed value shows,
        # at a fraction of the cost of reading every row into Python; one statement for
        # all of them (a statement a table took twice as long)
        every = " UNION ALL ".join(
            f"SELECT '{t}', count(*), sum(hash(r)::HUGEINT) FROM \"{t}\" r" for t in tables
        )
        rows = {t: [(n, h)] for t, n, h in con.execute(every).fetchall()}
    objects = sorted(
        str(p.relative_to(project.store_dir))
        for p in (project.store_dir / "objects").rglob("*")
        if p.is_file()
    )
    return rows, objects


def with_gates(project: Project, text: str) -> Project:
    cfg = project.root / "workbench.toml"
    cfg.write_text(cfg.read_text() + "\n[gates]\n" + text)
    return Project(project.root)


def from_template(
    name: str, tmp_path: Path, factory: pytest.TempPathFactory, build: Callable[[Path], Path]
) -> Project:
    """``build(folder)`` (which makes a project in ``folder`` and returns its root) run
    once per session (``built_once``), then that folder copied into ``tmp_path`` for each test: every
    test gets a project of its own, as if built for it, without training its models again
    (a few seconds each, for some 100 tests)."""
    base, root = built_once(factory, f"template-{name}", lambda b: str(build(b).relative_to(b)))
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    return Project(tmp_path / root)


def _in_new_project(build: Callable[[Project, Path], object]) -> Callable[[Path], Path]:
    def made(base: Path) -> Path:
        project = Project.init(base / "proj")[0]
        build(project, base)
        return project.root

    return made


@pytest.fixture
def models(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """churn@1 (600 rows) and churn@2 (a shifted batch); a weak and a strong run on churn@1,
    registered as churn-model v1 and v2."""
    return from_template("models", tmp_path, tmp_path_factory, _in_new_project(build_models))


def build_models(project: Project, tmp_path: Path) -> Project:
    """The ``models`` fixture's project, for fixtures of a wider scope."""
    from tests.core.test_training import churn
    from workbench.core.runs.training import Recipe, train

    churn(600, 0).write_parquet(tmp_path / "c1.parquet")
    project.datasets.add(tmp_path / "c1.parquet", name="churn")
    shifted = churn(600, 1).with_columns((churn(600, 1)["age"] + 30).alias("age"))
    shifted.write_parquet(tmp_path / "c2.parquet")
    project.datasets.add(tmp_path / "c2.parquet", name="churn")
    weak = train(
        project,
        Recipe(
            dataset="churn@1", target="churned", model="logistic", features=["income"], name="weak"
        ),
    )
    strong = train(
        project,
        Recipe(dataset="churn@1", target="churned", params={"n_estimators": 40}, name="strong"),
    )
    project.models.register(weak, "churn-model", "who will churn next month")
    project.models.register(strong, "churn-model")
    return project


@pytest.fixture(scope="session")
def zygote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zygote]:
    """One per test process: see tests/forked.py."""
    from tests.forked import Zygote

    z = Zygote(tmp_path_factory.mktemp("zygote"))
    yield z
    z.close()


def built_once(
    factory: pytest.TempPathFactory, name: str, build: Callable[[Path], str]
) -> tuple[Path, str]:
    """``build(folder)`` run once for the whole session, whichever test process asks
    first, under a lock the others wait on; returns the folder and what ``build``
    returned (text). Templates built once per process cost each process their few
    seconds to half a minute again (the flights demo: ~25 s of CPU)."""
    import fcntl

    base = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's folder, above each worker's own
    home = base / f"built-{name}"
    with open(base / f"built-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        said = base / f"built-{name}.done"
        if not said.exists():  # none yet, or a build that failed: from scratch
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir()
            said.write_text(build(home))
        return home, said.read_text()


@pytest.fixture(scope="session")
def flights_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The flights demo, built once by the real command and shared by the test processes
    (read-only: copy it before changing anything)."""

    def build(home: Path) -> str:
        res = run_subprocess("demo", str(home / "flights-demo"), "--no-ui", timeout=300)
        assert res.code == 0, res.err
        return res.out

    home, out = built_once(tmp_path_factory, "flights-demo", build)
    return home / "flights-demo", out


@pytest.fixture
def registered(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """churn-model v1 (logistic, scikit-learn) and v2 (LightGBM, in production), trained
    on churn@1; ``tmp_path/batch.parquet`` is 120 new rows to score (serving, export)."""
    return from_template(
        "registered", tmp_path, tmp_path_factory, _in_new_project(_build_registered)
    )


def _build_registered(project: Project, tmp_path: Path) -> Project:
    from tests.core.test_training import churn

    churn(400, 0).write_parquet(tmp_path / "c.parquet")
    root = project.root
    assert run_cli("data", "add", str(tmp_path / "c.parquet"), "-n", "churn", cwd=root).code == 0
    for model in ("logistic", "lightgbm"):
        res = run_cli("train", "churn@1", "-t", "churned", "-m", model, "--json", cwd=root)
        assert res.code == 0, res.err
        run_id = json.loads(res.out)["id"]
        assert run_cli("model", "register", run_id, "-n", "churn-model", cwd=root).code == 0
    promoted = run_cli("model", "promote", "churn-model", "2", "--to", "production", cwd=root)
    assert promoted.code == 0, promoted.err
    churn(120, 5).drop("churned").write_parquet(tmp_path / "batch.parquet")
    return project
