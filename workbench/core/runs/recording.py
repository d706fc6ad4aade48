"""What a fit is recorded as: the live run with the recipe's params, the curves as they
grow, and the outcome (params, scores, importance, confusion matrix, signature, model
file). Shared by ``workbench train``, a sweep's processes and a sweep on Ray, whose
driver records what its workers fitted."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from workbench.core.runs.model import Model, importance, model_bytes, pack

if TYPE_CHECKING:
    import numpy as np

    from workbench.core.project import Project
    from workbench.core.runs.recipe import Recipe

ALL_FEATURES = "all"  # the "features" param of a wide table trained on every column
FEATURES_FILE = "features.json"


def features_param(recipe: Recipe, columns: list[str], run: Any) -> str:
    """The feature list as a param, or, past a param's size limit (a 10k-column table),
    "all" when every column was used, else a pointer to an artifact holding the list."""
    from workbench.core.runs.run import MAX_VALUE

    text = json.dumps(columns)
    if len(text) <= MAX_VALUE:
        return text
    if recipe.features is None:
        return ALL_FEATURES
    run.log_json(FEATURES_FILE, columns)
    return FEATURES_FILE


_CURVE_NAMES = {
    "binary_logloss": "log_loss",
    "multi_logloss": "log_loss",
    "l2": "mse",
    "auc": "auc",
}


def live_curves(run: Any) -> Any:
    """A LightGBM callback that logs every iteration's evaluation as it happens, so a
    viewer (the TUI, `runs show`) sees the curve grow while the model trains."""

    def callback(env: Any) -> None:
        for split, metric, value, *_ in env.evaluation_result_list:
            key = f"{split}_{_CURVE_NAMES.get(metric, metric)}_curve"
            run.log_metric(key, float(value), step=env.iteration + 1)

    callback.order = 30  # type: ignore[attr-defined]  # after LightGBM's own callbacks
    return callback


def log_staged(run: Any, est: Any, task: str, xt: Any, yt: Any, xv: Any, yv: Any) -> None:
    import numpy as np
    from sklearn import metrics as m

    stages = est.staged_predict(xv) if task == "regression" else est.staged_predict_proba(xv)
    for step, out in enumerate(stages, start=1):
        if task == "regression":
            run.log_metric("val_mse_curve", float(m.mean_squared_error(yv, out)), step=step)
        else:
            run.log_metric(
                "val_log_loss_curve",
                float(m.log_loss(yv, np.clip(out, 1e-15, 1), labels=list(range(out.shape[1])))),
                step=step,
            )


def start_run(
    project: Project,
    recipe: Recipe,
    data: dict[str, Any],
    parent_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> Any:
    """A live run for ``recipe`` with everything known before fitting: its tags and the
    recipe's params. A sweep on Ray starts it in the driver while a worker fits."""
    version = data["version"]
    run = project.runs.start(
        experiment=recipe.experiment,
        name=recipe.name,
        dataset=version.ref,
        parent_id=parent_id,
        source="workbench train",
    )
    try:
        for key, value in (tags or {}).items():
            run.set_tag(key, value)
        run.log_params(
            {
                "model": recipe.model,
                "target": recipe.target,
                "task": data["task"],
                "split": recipe.split,
                "seed": recipe.seed,
                "dataset": version.ref,
                "features": features_param(recipe, data["features"].columns, run),
                "n_train": data["n_train"],
                "n_val": data["n_val"],
            }
        )
    except BaseException as exc:
        run.__exit__(type(exc), exc, exc.__traceback__)
        raise
    return run


VALIDATION_SCORES = "validation_scores.npz"
# 4M values (32 MB): past that a classifier's validation scores are not kept, and its
# first monitor report scores the validation rows again with the model
MAX_VALIDATION_VALUES = 4_000_000


def log_validation_scores(run: Any, y: Any, proba: Any) -> None:
    """Keep a classifier's class probabilities on its validation rows, with the rows'
    labels (as class positions): what monitoring calibrates CBPE on. Kept so that a
    monitor report needs neither the model (importing LightGBM and scikit-learn takes
    over a second) nor the dataset split again.

    Every classifier run keeps them (a sweep's too: its best is the one registered), so
    they are kept small: labels as bytes, and a binary model's first column left out
    when it is exactly one minus the second (LightGBM's and logistic regression's are):
    9 bytes a row instead of 24."""
    import io

    import numpy as np

    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.size > MAX_VALIDATION_VALUES or len(y) != len(proba):
        return
    k = proba.shape[1]
    arrays = {"y": np.asarray(y).astype(np.int8 if k <= 127 else np.int32)}
    if k == 2 and np.array_equal(proba[:, 0], 1.0 - proba[:, 1]):
        arrays["p1"] = proba[:, 1]
    else:
        arrays["scores"] = proba
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    run.log_bytes(VALIDATION_SCORES, buf.getvalue())


def read_validation_scores(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The labels (class positions) and class probabilities ``log_validation_scores``
    kept, a binary model's first column rebuilt as one minus the second: the format is
    written and read here only."""
    import io

    import numpy as np

    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        y = arrays["y"].astype(np.int64)
        if "p1" in arrays:
            p1 = arrays["p1"]
            return y, np.column_stack([1.0 - p1, p1])
        return y, arrays["scores"]


def log_outcome(
    run: Any,
    recipe: Recipe,
    data: dict[str, Any],
    outcome: tuple[Model, dict[str, Any], dict[str, float], Any],
) -> None:
    """Record what a fit returned: the model's params, its scores, importance, the
    confusion matrix, the signature and the model file. The same whether the fit ran
    here, in a sweep's process or on a Ray worker."""
    import numpy as np
    from sklearn.metrics import confusion_matrix

    model, params, scores, val_out = outcome
    run.log_params({f"model.{k}": v for k, v in params.items() if k not in ("verbose",)})
    final_step = int(params.get("n_estimators") or params.get("max_iter") or 0)
    run.log_metrics({k: v for k, v in scores.items()}, step=final_step)
    run.log_json("feature_importance.json", importance(model))
    if data["task"] != "regression":
        val_pred = np.asarray(val_out).argmax(axis=1)
        cm = confusion_matrix(data["y_val"], val_pred, labels=list(range(len(data["classes"]))))
        run.log_json(
            "confusion_matrix.json",
            {"labels": [str(c) for c in data["classes"]], "matrix": np.asarray(cm).tolist()},
        )
        log_validation_scores(run, data["y_val"], val_out)
    run.log_json(
        "signature.json",
        {
            "inputs": data["features"].schema,
            "target": recipe.target,
            "task": data["task"],
            "classes": data["classes"],
        },
    )
    run.log_bytes("model.pkl", pack(model_bytes(model)), kind="model")
