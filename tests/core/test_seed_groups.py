"""Seed groups: runs that differ only in a seed read as one row with each metric's mean
and sample standard deviation, equal to numpy's; everything else keeps runs apart."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import run_cli
from workbench.core.project import Project
from workbench.core.runs.groups import band, group_by_seed, spread_text

AUC = {("lgbm", 0.1): [0.81, 0.83, 0.80], ("lgbm", 0.05): [0.84, 0.85, 0.86]}


def _log(p: Project) -> dict[str, list[str]]:
    """Two configurations x three seeds (seed and model.random_state both vary), one run
    of a third configuration, and one with the first's params in another experiment."""
    ids: dict[str, list[str]] = {}
    for (model, lr), aucs in AUC.items():
        for seed, auc in zip((1, 2, 3), aucs, strict=True):
            run = p.runs.start(experiment="e", name=f"{model}-{lr}")
            run.log_params({"model": model, "model.learning_rate": lr, "seed": seed,
                            "model.random_state": seed, "n_train": 800 + seed})  # fmt: skip
            run.log_metric("val_auc", auc)
            run.log_curve("loss", [1.0 / (seed + k) for k in range(5)])
            run.end()
            ids.setdefault(f"{model}-{lr}", []).append(run.id)
    for experiment, lr in (("e", 0.2), ("other", 0.1)):
        run = p.runs.start(experiment=experiment)
        run.log_params({"model": "lgbm", "model.learning_rate": lr, "seed": 1})
        run.log_metric("val_auc", 0.7)
        run.end()
        ids.setdefault(f"{experiment}-{lr}", []).append(run.id)
    return ids


def test_runs_differing_only_in_seed_are_one_row_with_mean_and_std(project: Project) -> None:
    ids = _log(project)
    groups = group_by_seed(project.runs.list(limit=None))
    assert sorted(sorted(g.runs) for g in groups) == sorted(sorted(v) for v in ids.values())
    for (model, lr), aucs in AUC.items():
        g = next(g for g in groups if set(g.runs) == set(ids[f"{model}-{lr}"]))
        s = g.metrics["val_auc"]
        assert s.n == 3 and s.mean == pytest.approx(np.mean(aucs), abs=1e-12)
        assert s.std == pytest.approx(np.std(aucs, ddof=1), abs=1e-12)
        assert sorted(g.seeds) == ["1", "2", "3"]
        assert "seed" not in g.params and "n_train" not in g.params
        assert g.params["model.learning_rate"] == str(lr)
    single = next(g for g in groups if g.runs == ids["other-0.1"])
    assert (
        single.metrics["val_auc"].std is None and spread_text(single.metrics["val_auc"]) == "0.7000"
    )

    # the CLI: one row per configuration, mean ± std, and --json with the same numbers
    res = run_cli("runs", "list", "--group-seeds", "-e", "e", cwd=project.root)
    assert res.code == 0, res.err
    assert (
        f"{np.mean(AUC[('lgbm', 0.05)]):.4f} ± {np.std(AUC[('lgbm', 0.05)], ddof=1):.4f}" in res.out
    )
    assert "7 runs in 3 configurations" in res.out
    one = run_cli(
        "runs",
        "list",
        "-g",
        "-e",
        "e",
        "-f",
        "params.`model.learning_rate` = 0.2",
        cwd=project.root,
    )
    assert "1 run in 1 configuration (mean" in one.out, one.out
    data = json.loads(run_cli("runs", "list", "-g", "-e", "e", "--json", cwd=project.root).out)
    assert sorted(g["n"] for g in data) == [1, 3, 3]


def test_a_groups_curve_is_the_mean_and_one_std_at_each_shared_step(project: Project) -> None:
    ids = _log(project)
    curves = [project.runs.history(r, "loss") for r in ids["lgbm-0.1"]]
    steps, mean, lower, upper = band(curves)
    values = np.array([[v for _, v in c] for c in curves])
    assert steps == [s for s, _ in curves[0]]
    assert mean == pytest.approx(values.mean(axis=0).tolist())
    assert upper == pytest.approx((values.mean(axis=0) + values.std(axis=0, ddof=1)).tolist())
    assert lower == pytest.approx((values.mean(axis=0) - values.std(axis=0, ddof=1)).tolist())
    assert band([curves[0]]) == ([], [], [], [])  # one run: no spread to show
