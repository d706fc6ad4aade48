"""Large models are stored compressed when it pays, read back exactly, leave to MLflow as
the plain pickle, and their size is said when they are trained."""

from __future__ import annotations

import pickle
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import run_cli
from tests.core.test_training import churn
from workbench.core.project import Project
from workbench.core.runs.model import PACK_FROM, PACKED, pack, unpack


@pytest.fixture
def forest(project: Project, tmp_path: Path) -> tuple[Project, str]:
    churn(3000, 0).write_parquet(tmp_path / "c.parquet")
    project.datasets.add(tmp_path / "c.parquet", name="churn")
    r = run_cli(
        "train",
        "churn",
        "--target",
        "churned",
        "--model",
        "random_forest",
        "-p",
        "n_estimators=60",
        cwd=project.root,
    )
    assert r.code == 0, r.err
    return project, r.out


def test_a_large_model_is_stored_packed_and_predicts_exactly(
    forest: tuple[Project, str], tmp_path: Path
) -> None:
    p, out = forest
    run = p.runs.list()[0]
    art = p.runs.get(run.id).artifacts
    stored = p.objects.read_bytes(next(a.hash for a in art if a.path == "model.pkl"))
    raw = unpack(stored)
    assert stored.startswith(PACKED) and len(raw) >= PACK_FROM
    assert len(stored) * 1.5 <= len(raw)
    assert (
        f"model: {len(raw) / 1e6:,.1f} MB pickled, stored as {len(stored) / 1e6:,.1f} MB (zstd)"
        in out
    )

    p.models.register(run.id, "forest")
    df = p.datasets.load("churn")
    model = p.models.load(p.models.resolve("forest@1"))
    ours = model.predict(df)
    # the same model as the plain pickle gives the same predictions, to the bit
    assert ours.equals(pickle.loads(raw).predict(df))
    r = run_cli("predict", "forest@1", "churn", "-o", str(tmp_path / "s.parquet"), cwd=p.root)
    assert r.code == 0, r.err
    assert pl.read_parquet(tmp_path / "s.parquet").select(ours.columns).equals(ours)


def test_mlflow_gets_the_plain_pickle(forest: tuple[Project, str], tmp_path: Path) -> None:
    p, _ = forest
    r = run_cli("export", "mlflow", str(tmp_path / "mlruns"), cwd=p.root)
    assert r.code == 0, r.err
    exported = next((tmp_path / "mlruns").rglob("model.pkl")).read_bytes()
    assert not exported.startswith(PACKED)
    assert hasattr(pickle.loads(exported), "predict")


def test_small_or_incompressible_pickles_are_stored_as_they_are() -> None:
    import os

    small = pickle.dumps(list(range(1000)))
    assert pack(small) == small
    noise = os.urandom(PACK_FROM * 2)
    assert pack(noise) == noise and unpack(noise) == noise
