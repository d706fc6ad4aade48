"""Trainers: scikit-learn and LightGBM behind one small interface.

The feature pipeline is ours and travels with the model, so that a model scores
new data exactly as it was trained: numeric columns become float64 (nulls as
NaN), dates become days since the epoch, text columns become integer category
codes from the training data (unseen values and nulls become a missing code).
LightGBM and histogram gradient boosting consume those codes as native
categoricals; the other scikit-learn models get imputation, scaling and one-hot
encoding in a Pipeline.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from workbench.core.errors import DataError, UsageError
from workbench.core.runs.families import build_estimator, infer_task
from workbench.core.runs.model import PACKED, Features, Model
from workbench.core.runs.recipe import Recipe, parse_split
from workbench.core.runs.recording import live_curves, log_outcome, log_staged, start_run
from workbench.core.text import known_hint

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from workbench.core.project import Project
    from workbench.core.runs.records import RunInfo
    from workbench.core.store.objects import ObjectStore

TRAIN_METRIC_ROWS = 100_000


def split_frame(df: pl.DataFrame, recipe: Recipe) -> tuple[pl.DataFrame, pl.DataFrame]:
    import numpy as np
    import polars as pl

    kind, arg = parse_split(recipe.split)
    if kind == "random":
        rng = np.random.default_rng(recipe.seed)
        is_val = rng.random(df.height) < arg
        mask = pl.Series(is_val)
        return df.filter(~mask), df.filter(mask)
    col, frac = arg
    if col not in df.columns:
        raise UsageError(f"time split column {col!r} is not in the dataset")
    ordered = df.sort(col, maintain_order=True)
    cut = int(round(ordered.height * (1 - frac)))
    if 0 < cut < ordered.height:
        # cut between two times, not inside one: every row of the first validation time
        # goes to validation, so no time is on both sides (the model never sees a day
        # it is then judged on)
        boundary = ordered.get_column(col)[cut]
        if boundary is not None:
            cut -= int((ordered.get_column(col).head(cut) == boundary).sum())
    return ordered.head(cut), ordered.slice(cut)


def _metrics(
    task: str,
    y: np.ndarray,
    model: Model,
    x: np.ndarray,
    prefix: str,
    outputs: np.ndarray | None = None,
) -> tuple[dict[str, float], np.ndarray]:
    """Standard metrics for the task, and the model's outputs they were computed from
    (class probabilities, or values for regression).

    ``outputs`` are the model's outputs for ``x`` when they are already known
    (probabilities, or values for regression), so that ``x`` is not predicted again.
    """
    import numpy as np
    from sklearn import metrics as m

    if task == "regression":
        pred = model.estimator.predict(x) if outputs is None else outputs
        return {
            f"{prefix}_rmse": float(np.sqrt(m.mean_squared_error(y, pred))),
            f"{prefix}_mae": float(m.mean_absolute_error(y, pred)),
            f"{prefix}_r2": float(m.r2_score(y, pred)),
        }, pred
    proba = model.estimator.predict_proba(x) if outputs is None else outputs
    pred = proba.argmax(axis=1)
    labels = list(range(len(model.classes or [])))
    out = {
        f"{prefix}_accuracy": float(np.mean(y == pred)),
        f"{prefix}_log_loss": float(m.log_loss(y, proba, labels=labels)),
    }
    if task == "binary":
        # from the confusion counts, as sklearn defines them (zero_division=0): its
        # three scorers re-validate the labels each time, ~100 ms on 200k rows
        tp = int(np.count_nonzero((pred == 1) & (y == 1)))
        fp = int(np.count_nonzero((pred == 1) & (y != 1)))
        fn = int(np.count_nonzero((pred != 1) & (y == 1)))
        out[f"{prefix}_f1"] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        out[f"{prefix}_precision"] = tp / (tp + fp) if tp + fp else 0.0
        out[f"{prefix}_recall"] = tp / (tp + fn) if tp + fn else 0.0
        if len(np.unique(y)) == 2:
            out[f"{prefix}_auc"] = float(m.roc_auc_score(y, proba[:, 1]))
    else:
        out[f"{prefix}_f1"] = float(m.f1_score(y, pred, average="macro", zero_division=0))
        if len(np.unique(y)) == len(labels):
            out[f"{prefix}_auc"] = float(
                m.roc_auc_score(y, proba, multi_class="ovr", labels=labels)
            )
    return out, proba


def _usable(dtype: Any) -> bool:
    """Can a column of this type be a feature? (Nested and raw bytes cannot.)"""
    import polars as pl

    return not dtype.is_nested() and dtype not in (pl.Binary, pl.Object)


def prepare(project: Project, recipe: Recipe) -> dict[str, Any]:
    """Load, check and split the data; everything before fitting."""
    import polars as pl

    recipe.check()
    version = project.datasets.resolve(recipe.dataset, sums=True)  # load checks them
    # said before the data is read, from its schema
    if recipe.target not in version.columns:
        raise UsageError(
            f"target column {recipe.target!r} is not in {version.ref}"
            + known_hint(recipe.target, version.columns)
        )
    missing = [c for c in recipe.features or [] if c not in version.columns]
    if missing:
        raise UsageError(
            f"feature columns not in {version.ref}: {', '.join(missing)}"
            + known_hint(missing[0], [c for c in version.columns if c != recipe.target])
        )
    df = project.datasets.load(version)
    df = df.filter(pl.col(recipe.target).is_not_null())
    y_raw = df.get_column(recipe.target)
    if y_raw.dtype.is_float():
        df = df.filter(y_raw.is_finite())
        y_raw = df.get_column(recipe.target)
    if df.height < 10:
        raise DataError(f"{version.ref} has {df.height} rows with a target value; need at least 10")
    task = recipe.task or infer_task(y_raw)
    features = [c for c in (recipe.features or df.columns) if c != recipe.target]
    have = df.schema
    nested = [c for c in features if not _usable(have[c])]
    if nested and recipe.features:
        raise UsageError(
            f"column {nested[0]!r} is {have[nested[0]]}: lists, structs and binary "
            "columns cannot be features"
        )
    features = [c for c in features if c not in nested]  # by default: left out
    if recipe.split.startswith("time:"):
        tcol = parse_split(recipe.split)[1][0]
        features = [c for c in features if c != tcol]
    if not features:
        raise UsageError("no feature columns left to train on")
    classes = None
    if task != "regression":
        classes = sorted(y_raw.unique().to_list(), key=lambda v: (str(type(v)), v))
        if len(classes) < 2:
            raise DataError(
                f"target {recipe.target!r} has a single class ({classes[0]!r}); cannot train a classifier"
            )
        if task == "binary" and len(classes) != 2:
            raise UsageError(
                f"task binary needs 2 classes, target {recipe.target!r} has {len(classes)}"
            )
    elif not y_raw.dtype.is_numeric():
        raise UsageError(f"target {recipe.target!r} is {y_raw.dtype}; regression needs numbers")
    train_df, val_df = split_frame(df, recipe)
    if train_df.height < 5 or val_df.height < 2:
        raise DataError(
            f"the split {recipe.split} leaves {train_df.height} training and {val_df.height} validation rows"
        )
    feats = Features.fit(train_df, features)

    def encode_y(part: pl.DataFrame) -> Any:
        y = part.get_column(recipe.target)
        if classes is None:
            return y.cast(pl.Float64).to_numpy()
        # each label's position in classes, in Polars: a Python loop over 1M labels
        # cost 0.1 s, 0.6% of a LightGBM fit
        return y.replace_strict(
            classes, list(range(len(classes))), return_dtype=pl.Int64
        ).to_numpy()

    return {
        "version": version,
        "task": task,
        "features": feats,
        "classes": classes,
        "x_train": feats.matrix(train_df),
        "y_train": encode_y(train_df),
        "x_val": feats.matrix(val_df),
        "y_val": encode_y(val_df),
        "n_train": train_df.height,
        "n_val": val_df.height,
    }


@contextlib.contextmanager
def _quiet_fds() -> Iterator[None]:
    """Silence what C++ prints straight to the terminal ("[LightGBM] [Fatal] ..."): the
    user gets our one line instead."""
    import os
    import sys

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def preflight(recipe: Recipe, data: dict[str, Any]) -> None:
    """Refuse parameters the library would refuse, before a run exists to record a failure.

    scikit-learn checks values when the estimator is built (``_estimator``); LightGBM
    only when it fits, so fit one round on a few rows (milliseconds).
    """
    if recipe.model != "lightgbm":
        build_estimator(recipe, data["task"], data["features"], len(data["classes"] or []))
        return
    import warnings

    est, _ = build_estimator(recipe, data["task"], data["features"], len(data["classes"] or []))
    est.set_params(n_estimators=1)
    x, y = data["x_train"][:50], data["y_train"][:50]
    try:
        with warnings.catch_warnings(), _quiet_fds():
            warnings.simplefilter("ignore")
            est.fit(x, y)
    except Exception as exc:
        text = " ".join(str(exc).split())[:300]
        raise UsageError(f"bad lightgbm parameter: {text}") from None


def fit(
    recipe: Recipe, data: dict[str, Any], run: Any = None
) -> tuple[Model, dict[str, Any], dict[str, float], Any]:
    """Fit on prepared data, logging curves to ``run`` when given.

    Returns the model, its full parameters, its scores and its outputs on the validation
    rows (kept so that the caller can log them without predicting a second time)."""
    task, feats, classes = data["task"], data["features"], data["classes"]
    est, params = build_estimator(recipe, task, feats, len(classes or []))
    xt, yt, xv, yv = data["x_train"], data["y_train"], data["x_val"], data["y_val"]
    t0 = time.perf_counter()
    captured: dict[int, Any] = {}
    if recipe.model == "lightgbm":
        metric = (
            "l2"
            if task == "regression"
            else ("binary_logloss" if task == "binary" else "multi_logloss")
        )
        extra = ["auc"] if task == "binary" else []
        with warnings.catch_warnings():
            # LightGBM 4.7 deprecates eval_set for eval_X/eval_y, which 4.3-4.6 lack.
            warnings.simplefilter("ignore", category=FutureWarning)
            est.fit(
                xt,
                yt,
                eval_set=[(xt, yt), (xv, yv)],
                eval_names=["train", "val"],
                eval_metric=[metric, *extra],
                categorical_feature=feats.categorical or "auto",
                callbacks=[
                    *([live_curves(run)] if run is not None else []),
                    _final_outputs(captured),
                ],
            )
    else:
        try:
            est.fit(xt, yt)
        except ValueError as exc:
            raise DataError(f"{recipe.model} could not fit this data: {exc}") from None
        if run is not None and recipe.model == "hist_gb":
            log_staged(run, est, task, xt, yt, xv, yv)
    fit_s = time.perf_counter() - t0
    model = Model(est, feats, task, recipe.target, classes)
    # Training-set metrics are a sanity check for overfitting, not a result: on large
    # data they come from a seeded sample so scoring does not cost a second training.
    import numpy as np

    train_out, val_out = _known_outputs(captured, model, xt, xv)
    if len(yt) > TRAIN_METRIC_ROWS:
        idx = np.random.default_rng(recipe.seed).choice(len(yt), TRAIN_METRIC_ROWS, replace=False)
        xt_m, yt_m = xt[idx], yt[idx]
        train_out = None if train_out is None else train_out[idx]
    else:
        xt_m, yt_m = xt, yt
    train_scores, _ = _metrics(task, yt_m, model, xt_m, "train", train_out)
    val_scores, val_out = _metrics(task, yv, model, xv, "val", val_out)
    scores = {**train_scores, **val_scores, "fit_seconds": fit_s}
    return model, params, scores, val_out


LARGE_MODEL = 100 << 20  # a pickle past this gets a word of advice


def model_size_note(objects: ObjectStore, info: RunInfo) -> str | None:
    """What a run's model costs, for `train` to say: its pickled size and, when it is
    stored packed, the size on disk (read from the packed file's header)."""
    art = next((a for a in info.artifacts if a.path == "model.pkl"), None)
    if art is None:
        return None
    with open(objects.path(art.hash), "rb") as f:
        head = f.read(len(PACKED) + 8)
    raw = int.from_bytes(head[len(PACKED) :], "little") if head.startswith(PACKED) else art.size
    return _size_note(raw, art.size)


def _size_note(raw: int, stored: int) -> str:
    mb = f"{raw / 1e6:,.1f} MB pickled"
    if stored != raw:
        mb += f", stored as {stored / 1e6:,.1f} MB (zstd)"
    if raw >= LARGE_MODEL:
        mb += "; large: a depth or leaf-size limit (max_depth, min_samples_leaf) shrinks it"
    return mb


def _final_outputs(store: dict[int, Any]) -> Any:
    """A LightGBM callback that keeps the model's outputs on the training (0) and
    validation (1) data after the last round.

    LightGBM has them already (it evaluates both sets every round), and the sklearn
    wrapper frees them when fit returns; predicting the same rows again for the
    run's metrics cost ~0.65 s on 1M rows, 5% of the fit. Read through a private
    method, so ``_known_outputs`` checks them against ``predict`` before use.
    """

    def callback(env: Any) -> None:
        if env.iteration + 1 != env.end_iteration:
            return
        inner = getattr(env.model, "_Booster__inner_predict", None)
        if inner is None:
            return
        with contextlib.suppress(Exception):
            for idx in (0, 1):
                store[idx] = inner(data_idx=idx).copy()

    callback.order = 40  # type: ignore[attr-defined]
    return callback


def _known_outputs(captured: dict[int, Any], model: Model, xt: Any, xv: Any) -> tuple[Any, Any]:
    """The captured (train, validation) outputs shaped as ``predict_proba`` (or
    ``predict`` for regression) gives them, or (None, None) when they are missing or
    do not match a fresh prediction of the first rows (early stopping, an upgrade)."""
    import numpy as np

    est = model.estimator
    if 0 not in captured or 1 not in captured:
        return None, None
    if getattr(est, "best_iteration_", None) not in (None, 0, getattr(est, "n_estimators", None)):
        return None, None  # the model keeps an earlier round than the last one
    out = []
    for raw, x in ((captured[0], xt), (captured[1], xv)):
        if model.task == "binary" and raw.ndim == 1:
            raw = np.vstack((1.0 - raw, raw)).transpose()
        if len(raw) != len(x):
            return None, None
        out.append(raw)
    head = xv[:256]
    fresh = est.predict(head) if model.task == "regression" else est.predict_proba(head)
    if fresh.shape != out[1][:256].shape or not np.allclose(
        fresh, out[1][:256], rtol=1e-9, atol=1e-12
    ):
        return None, None
    return out[0], out[1]


def train(
    project: Project,
    recipe: Recipe,
    parent_id: str | None = None,
    progress: Any = None,
    tags: dict[str, str] | None = None,
) -> str:
    """Train one tracked run; returns its id. A failure is recorded on the run.

    ``tags`` are set while the run is live, so they land with its end: a rerun or a
    pipeline's challenger is never seen finished without the tag that says what it is."""
    recipe.check()
    data = prepare(project, recipe)
    preflight(recipe, data)
    run = start_run(project, recipe, data, parent_id, tags)
    with run:
        outcome = fit(recipe, data, run)
        log_outcome(run, recipe, data, outcome)
        if progress:
            progress(run.id, outcome[2])
    return run.id
