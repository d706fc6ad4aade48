"""A real project for the TUI tests, built once with a fixed clock and fixed ids so that
snapshots are stable, then copied for each test (tests may promote, launch, …)."""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import shutil
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from workbench.core.project import Project

UUID_USERS = (
    "workbench.core.drift.analysis",
    "workbench.core.store.objects",
    "workbench.core.models.scoring",
    "workbench.core.runs.runs",
)
DATA = Path(__file__).parent / "data"  # the projects' files (see `built`)
SIZE = (160, 50)
SMALL = (80, 24)
WIDE = (120, 35)


@contextlib.contextmanager
def frozen() -> Iterator[None]:
    """Every catalog time a second after the last, every uuid from a seeded generator, one
    actor: what the screens show is then the same on any machine."""
    rng = random.Random(42)
    clock = [dt.datetime(2026, 1, 5, 9, 0, 0)]

    def now() -> dt.datetime:
        clock[0] += dt.timedelta(seconds=1)
        return clock[0]

    def uuid4() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    # Only workbench's own view of uuid: libraries that call uuid4 (joblib names its temp
    # folders with it, depending on what ran before) must not shift the sequence.
    fake = types.SimpleNamespace(uuid4=uuid4, UUID=uuid.UUID)
    # A fit "takes" a quarter second: fit_seconds is shown on the compare screen.
    ticks = iter(range(10**6))
    clock_s = types.SimpleNamespace(perf_counter=lambda: next(ticks) * 0.125)
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch("workbench.core.store.audit.now", now))
        stack.enter_context(mock.patch("workbench.core.store.audit.actor", lambda: "ada@lab"))
        stack.enter_context(mock.patch("workbench.core.runs.training.time", clock_s))
        for module in UUID_USERS:
            stack.enter_context(mock.patch(f"{module}.uuid", fake))
        yield


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from workbench.core.runs.training import Recipe, train

    root = tmp_path_factory.mktemp("tui") / "proj"
    data = tmp_path_factory.mktemp("tui-data")
    with frozen():
        p, _ = Project.init(root)
        # Files kept in the repo, not written here: a Parquet file names the version of
        # its writer, so each Polars release changed the versions' ids on every screen.
        # They are churn(600, 0), and churn(600, 1) with age + 25 (tests/core/test_training.py).
        for name in ("c1.parquet", "c2.parquet"):
            shutil.copyfile(DATA / name, data / name)
        p.datasets.add(data / "c1.parquet", name="churn", message="January")
        p.datasets.add(data / "c2.parquet", name="churn", message="February, older customers")
        weak = train(
            p,
            Recipe(
                dataset="churn@1",
                target="churned",
                model="logistic",
                name="baseline",
                experiment="churn",
            ),
        )
        strong = train(
            p,
            Recipe(
                dataset="churn@1",
                target="churned",
                params={"n_estimators": 30},
                name="lgbm",
                experiment="churn",
            ),
        )
        p.models.register(weak, "churn-model", "who will churn next month")
        p.models.register(strong, "churn-model")
        p.models.promote("churn-model", 1, "production", reason="first model")
        p.drift.compare("churn@1", "churn@2")
    cfg = root / "workbench.toml"
    cfg.write_text(cfg.read_text() + '\n[gates]\nproduction = ["metrics.val_auc >= 0.99"]\n')
    return root


@pytest.fixture
def tui_project(built: Path, tmp_path: Path) -> Project:
    root = tmp_path / "proj"
    shutil.copytree(built, root)
    return Project(root)
