"""A parameter a model does not have is refused before any run exists, for every family,
with the nearest real name; it used to be logged and silently ignored by LightGBM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import frame, run_cli, store_snapshot
from workbench.core.project import Project


@pytest.fixture
def data(project: Project, tmp_path: Path) -> Project:
    frame(300).write_csv(tmp_path / "t.csv")
    project.datasets.add(tmp_path / "t.csv", name="t")
    return project


@pytest.mark.parametrize(
    ("model", "target", "param", "nearest"),
    [
        ("lightgbm", "churned", "n_estimator", "n_estimators"),
        ("lightgbm", "churned", "bogus_param", None),
        ("random_forest", "churned", "max_dept", "max_depth"),
        ("extra_trees", "churned", "min_samples_lef", "min_samples_leaf"),
        ("hist_gb", "churned", "max_iters", "max_iter"),
        ("logistic", "churned", "c", "C"),
        ("linear", "income", "fit_intercep", "fit_intercept"),
        ("ridge", "income", "alpah", "alpha"),
    ],
)
def test_an_unknown_parameter_is_refused_with_the_nearest(
    data: Project, model: str, target: str, param: str, nearest: str | None
) -> None:
    before = store_snapshot(data)
    r = run_cli(
        "train", "t", "--target", target, "--model", model, "-p", f"{param}=1", cwd=data.root
    )
    assert r.code == 2, r.err
    line = r.err.strip()
    assert line.startswith(f"error: {model} has no parameter {param!r}")
    assert (f"did you mean {nearest!r}?" in line) if nearest else ("did you mean" not in line)
    assert store_snapshot(data) == before


def test_lightgbm_aliases_are_real_parameters(data: Project) -> None:
    r = run_cli(
        "train", "t", "--target", "churned", "-p", "num_iterations=3", "--json", cwd=data.root
    )
    assert r.code == 0, r.err


def test_features_is_an_option_not_a_parameter(data: Project) -> None:
    r = run_cli("train", "t", "--target", "churned", "-p", "features=age,plan", cwd=data.root)
    assert r.code == 2 and "--features a,b" in r.err


@pytest.mark.slow
def test_a_sweep_refuses_a_misspelt_key_before_any_run_and_takes_features(
    data: Project,
) -> None:
    before = store_snapshot(data)
    bad = run_cli("sweep", "t", "--target", "churned", "-g", "num_leavs=7,15", cwd=data.root)
    assert bad.code == 2 and "did you mean 'num_leaves'?" in bad.err
    assert store_snapshot(data) == before
    ok = run_cli(
        "sweep",
        "t",
        "--target",
        "churned",
        "-g",
        "num_leaves=7,15",
        "-p",
        "n_estimators=5",
        "--features",
        "age,plan",
        "--json",
        cwd=data.root,
    )
    assert ok.code == 0, ok.err
    for trial in json.loads(ok.out)["trials"]:
        info = data.runs.get(trial["run_id"])
        assert json.loads(info.params["features"]) == ["age", "plan"]
