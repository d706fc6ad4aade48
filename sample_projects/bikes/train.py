"""Your own training script against a workbench project, with the Python API.

    python sample_projects/bikes/train.py [PROJECT_DIR]

1. Creates PROJECT_DIR (default: ./bikes-project) and adds each quarter of 2011-2012 as
   a version of the dataset `bikes`.
2. Trains the built-in LightGBM on spring 2011 (`project.train`, as `workbench train`).
3. Trains a model of its own (scikit-learn's histogram gradient boosting on the numeric
   columns) inside `workbench.start_run`, logging params, a validation curve, metrics
   and the model with its input signature.
4. Registers the better one as `bike-demand` and promotes it to `staging`.
5. Shows why this data needs retraining: the inputs of spring 2012 look like spring
   2011 (little drift), yet the model's error on that newly labelled quarter is far
   worse, because demand grew.

Safe to run again: the same batches make no new versions; each run adds new runs.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import mean_squared_error

import workbench
from workbench import Project
from workbench.core.models.scoring import predict_frame

HERE = Path(__file__).resolve().parent
NUMERIC = ["hour", "holiday", "workingday", "temp", "feels_like", "humidity", "wind_speed"]
TARGET = "rentals"


def build(target: str) -> Project:
    root = Path(target)
    if not (root / "workbench.toml").exists():
        root.mkdir(parents=True, exist_ok=True)
        shutil.copy(HERE / "workbench.toml", root / "workbench.toml")  # gates and [train]
    project, created = Project.init(root)
    print(("Created" if created else "Using") + f" project at {project.root}")
    for path in sorted((HERE / "data").glob("bikes_*.parquet")):
        _, year, quarter = path.stem.split("_")
        res = project.datasets.add(path, name="bikes", message=f"{year} {quarter.upper()} batch")
        state = "added" if res.created else "already stored"
        print(f"  {res.version.ref:<10} {res.version.n_rows:>6,} hours  {state}")
    return project


def rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(mean_squared_error(y, pred)))


def own_model(project: Project, ref: str) -> str:
    """A model of our own, tracked like any other run."""
    df = project.datasets.load(ref)
    rng = np.random.default_rng(7)
    val = rng.random(df.height) < 0.2
    x, y = df.select(NUMERIC).to_numpy(), df[TARGET].to_numpy()
    params = {"max_iter": 200, "learning_rate": 0.08, "max_leaf_nodes": 31}
    with workbench.start_run(
        experiment="bikes", dataset=ref, name="own-hgb", project=project
    ) as run:
        run.log_params({**params, "features": ",".join(NUMERIC), "target": TARGET})
        model = HistGradientBoostingRegressor(**params, early_stopping=False, random_state=7)
        model.fit(x[~val], y[~val])
        for step, pred in enumerate(model.staged_predict(x[val]), start=1):
            if step % 5 == 0 or step == params["max_iter"]:
                run.log_metric("val_rmse_curve", rmse(y[val], pred), step=step)
        pred = model.predict(x[val])
        ss = float(((y[val] - y[val].mean()) ** 2).sum())
        run.log_metrics(
            {
                "val_rmse": rmse(y[val], pred),
                "val_r2": 1 - float(((y[val] - pred) ** 2).sum()) / ss,
            },
            step=params["max_iter"],
        )
        run.set_tag("author", "train.py")
        run.log_model(model, input_example=df.select(NUMERIC).head(5))
    return run.id


def main(target: str) -> Project:
    project = build(target)
    ref, later = "bikes@2", "bikes@6"  # spring 2011, spring 2012
    builtin = project.train(ref, TARGET, name="lightgbm")
    mine = own_model(project, ref)
    score = {r: project.runs.get(r)["metrics"]["val_rmse"]["last"] for r in (builtin, mine)}
    for r, v in score.items():
        print(f"  run:{r[:8]}  val_rmse {v:.1f} rentals/hour")
    best = min(score, key=score.get)
    mv = project.models.register(best, "bike-demand", "Bikes rented per hour")
    project.models.promote(mv.model, mv.version, "staging", reason="train.py")
    print(f"Registered {mv.ref} and promoted it to staging")

    report = project.drift.compare(None, later, model=mv.ref)
    print(
        f"Input drift, {later} vs {ref}: {report.n_drifted} of {len(report.tested)} checks drifted"
    )
    new = project.datasets.load(later)
    model = project.models.load(mv)
    pred = predict_frame(model, new, mv.inputs)["prediction"].to_numpy()
    now = rmse(new[TARGET].to_numpy(), pred)
    print(
        f"Error on the newly labelled {later}: RMSE {now:.1f} vs {score[best]:.1f} in validation "
        f"({now / score[best] - 1:+.0%}); mean demand {new[TARGET].mean():.0f} vs "
        f"{project.datasets.load(ref)[TARGET].mean():.0f} per hour: time to retrain"
    )
    print(f"Next: workbench ui --project {project.root}")
    return project


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bikes-project")
