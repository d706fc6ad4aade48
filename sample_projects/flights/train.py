"""Your own training script against a workbench project, with the Python API.

    python sample_projects/flights/train.py [PROJECT_DIR]

1. Creates PROJECT_DIR (default: ./flights-project) and adds each month of 2013 as a
   version of the dataset `flights`, as a team receiving one batch a month would.
2. Trains the built-in LightGBM on the April batch (`project.train`, as `workbench
   train` does).
3. Trains a model of its own (scikit-learn's histogram gradient boosting on the numeric
   columns) inside `workbench.start_run`, logging params, a validation curve per
   iteration, metrics and the model with its input signature.
4. Registers whichever validates better as `flight-delays` and promotes it to
   `staging` past the gates in workbench.toml.
5. Checks the December batch for drift against that model's training data.

Safe to run again: the same batches make no new versions; each run adds new runs.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import log_loss, roc_auc_score

import workbench
from workbench import Project

HERE = Path(__file__).resolve().parent
NUMERIC = [
    "month",
    "weekday",
    "sched_hour",
    "distance",
    "temp",
    "humid",
    "wind_speed",
    "precip",
    "visib",
]
TARGET = "delayed"


def build(target: str) -> Project:
    root = Path(target)
    if not (root / "workbench.toml").exists():
        root.mkdir(parents=True, exist_ok=True)
        shutil.copy(HERE / "workbench.toml", root / "workbench.toml")  # gates and [train]
    project, created = Project.init(root)
    print(("Created" if created else "Using") + f" project at {project.root}")
    for path in sorted((HERE / "data").glob("flights_2013_*.parquet")):
        month = path.stem.rsplit("_", 1)[-1]
        res = project.datasets.add(path, name="flights", message=f"2013-{month} batch")
        state = "added" if res.created else "already stored"
        print(f"  {res.version.ref:<12} {res.version.n_rows:>6,} rows  {state}")
    return project


def own_model(project: Project, ref: str) -> str:
    """A model of our own, tracked like any other run."""
    df = project.datasets.load(ref).select([*NUMERIC, TARGET])
    rng = np.random.default_rng(7)
    val = rng.random(df.height) < 0.2
    x, y = df.select(NUMERIC).to_numpy(), df[TARGET].to_numpy()
    params = {"max_iter": 150, "learning_rate": 0.1, "max_leaf_nodes": 31}
    with workbench.start_run(
        experiment="flights", dataset=ref, name="own-hgb", project=project
    ) as run:
        run.log_params({**params, "features": ",".join(NUMERIC), "target": TARGET})
        model = HistGradientBoostingClassifier(**params, early_stopping=False, random_state=7)
        model.fit(x[~val], y[~val])
        # One point per boosting iteration, so the TUI and `runs compare --plot` draw it.
        for step, proba in enumerate(model.staged_predict_proba(x[val]), start=1):
            if step % 5 == 0 or step == params["max_iter"]:
                run.log_metric("val_log_loss_curve", log_loss(y[val], proba), step=step)
        proba = model.predict_proba(x[val])[:, 1]
        run.log_metrics(
            {"val_auc": roc_auc_score(y[val], proba), "val_log_loss": log_loss(y[val], proba)},
            step=params["max_iter"],
        )
        run.set_tag("author", "train.py")
        run.log_model(model, input_example=df.select(NUMERIC).head(5))
    return run.id


def main(target: str) -> Project:
    project = build(target)
    ref = "flights@4"
    builtin = project.train(ref, TARGET, name="lightgbm")
    mine = own_model(project, ref)
    auc = {r: project.runs.get(r)["metrics"]["val_auc"]["last"] for r in (builtin, mine)}
    for r, v in auc.items():
        print(f"  run:{r[:8]}  val_auc {v:.4f}")
    best = max(auc, key=auc.get)
    mv = project.models.register(best, "flight-delays", "Will a flight arrive 15+ min late?")
    promotion = project.models.promote(mv.model, mv.version, "staging", reason="train.py")
    print(f"Registered {mv.ref}; staging now holds {promotion.version.ref}")
    report = project.drift.compare(None, "flights@12", model=f"{mv.ref}")
    print(
        f"Drift, flights@12 vs the model's training data: {report.n_drifted} of "
        f"{len(report.tested)} checks drifted"
    )
    print(f"Next: workbench ui --project {project.root}")
    return project


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "flights-project")
