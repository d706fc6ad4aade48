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
import io
import json
import pickle
import re
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.core.errors import DataError, UsageError

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from workbench.core.project import Project

MODELS = ("lightgbm", "random_forest", "extra_trees", "hist_gb", "logistic", "linear", "ridge")
TASKS = ("binary", "multiclass", "regression")
MAX_CATEGORIES = 1000
TRAIN_METRIC_ROWS = 100_000


_PARAM_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


@dataclass
class Recipe:
    """Everything needed to train (and re-train) a run."""

    dataset: str
    target: str
    model: str = "lightgbm"
    params: dict[str, Any] = field(default_factory=dict)
    split: str = "random:0.2"
    seed: int = 42
    task: str | None = None
    features: list[str] | None = None
    experiment: str = "default"
    name: str | None = None

    def check(self) -> None:
        if self.model not in MODELS:
            raise UsageError(f"unknown model {self.model!r}: choose one of {', '.join(MODELS)}")
        if self.task is not None and self.task not in TASKS:
            raise UsageError(f"unknown task {self.task!r}: choose one of {', '.join(TASKS)}")
        parse_split(self.split)
        for key in self.params:
            if not (isinstance(key, str) and _PARAM_KEY.fullmatch(key)):
                raise UsageError(
                    f"invalid parameter name {str(key)[:60]!r}: use letters, digits and '_' "
                    "(e.g. n_estimators)"
                )


def recipe_for(
    project: Project,
    dataset: str,
    target: str,
    model: str | None = None,
    params: dict[str, Any] | None = None,
    split: str | None = None,
    seed: int | None = None,
    task: str | None = None,
    features: list[str] | None = None,
    experiment: str | None = None,
    name: str | None = None,
) -> Recipe:
    """A recipe where anything not given comes from ``[train]`` in workbench.toml.

    ``[train.params]`` apply only when training the ``[train]`` model family.

    The CLI and the Python API both build recipes here, so a script and a command line
    with the same arguments train the same model.
    """
    from workbench.core.store.refs import parse_ref

    defaults = project.config.get("train", {})
    default_model = defaults.get("model", "lightgbm")
    # [train.params] belong to the default model: n_estimators means nothing to `logistic`.
    base = defaults.get("params", {}) if model in (None, default_model) else {}
    return Recipe(
        dataset=dataset,
        target=target,
        model=model or default_model,
        params={**base, **(params or {})},
        split=split or defaults.get("split", "random:0.2"),
        seed=seed if seed is not None else int(defaults.get("seed", 42)),
        task=task,
        features=features,
        experiment=experiment or parse_ref(dataset).name,
        name=name,
    )


def parse_split(text: str) -> tuple[str, Any]:
    kind, _, arg = text.partition(":")
    if kind == "random":
        try:
            frac = float(arg or "0.2")
        except ValueError:
            frac = -1.0
        if not 0.0 < frac < 1.0:
            raise UsageError(
                f"invalid split {text!r}: random:FRACTION with 0 < FRACTION < 1, e.g. random:0.2"
            )
        return "random", frac
    if kind == "time":
        col, _, frac_text = arg.partition(":")
        if not col:
            raise UsageError(f"invalid split {text!r}: time:COLUMN[:FRACTION], e.g. time:date:0.2")
        try:
            frac = float(frac_text or "0.2")
        except ValueError:
            frac = -1.0
        if not 0.0 < frac < 1.0:
            raise UsageError(f"invalid split {text!r}: the fraction must be between 0 and 1")
        return "time", (col, frac)
    raise UsageError(f"invalid split {text!r}: use random:0.2 or time:COLUMN[:0.2]")


def parse_value(text: str) -> Any:
    """Parse ``--param k=v`` values: numbers, true/false/none, else the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


class Features:
    """Turns a polars frame into a float matrix, identically at training and scoring."""

    def __init__(self, schema: dict[str, str], categories: dict[str, list[str]]) -> None:
        self.schema = schema  # column -> polars dtype string, the model's input signature
        self.categories = categories  # text column -> known values (code = index)

    @property
    def columns(self) -> list[str]:
        return list(self.schema)

    @property
    def categorical(self) -> list[int]:
        return [i for i, c in enumerate(self.schema) if c in self.categories]

    @classmethod
    def fit(cls, df: pl.DataFrame, columns: list[str]) -> Features:
        import polars as pl

        schema, cats = {}, {}
        have = df.schema  # built anew on every access: once, not per column (10k columns)
        for c in columns:
            dt = have[c]
            schema[c] = str(dt)
            if not (dt.is_numeric() or dt == pl.Boolean or dt.is_temporal()):
                counts = df.get_column(c).cast(pl.String).drop_nulls().value_counts(sort=True)
                if counts.height > MAX_CATEGORIES:
                    raise DataError(
                        f"column {c!r} has {counts.height:,} distinct values; exclude it with "
                        f"--features or encode it first (limit {MAX_CATEGORIES})"
                    )
                cats[c] = sorted(str(v) for v in counts.get_column(c).to_list())
        return cls(schema, cats)

    def matrix(self, df: pl.DataFrame) -> np.ndarray:
        import numpy as np
        import polars as pl

        exprs = []
        have = df.schema
        for c in self.schema:
            col = pl.col(c)
            dt = have[c]
            if c in self.categories:
                mapping = {v: float(i) for i, v in enumerate(self.categories[c])}
                exprs.append(
                    col.cast(pl.String)
                    .replace_strict(mapping, default=None, return_dtype=pl.Float64)
                    .alias(c)
                )
            elif dt == pl.Date:
                exprs.append(col.cast(pl.Int32).cast(pl.Float64).alias(c))
            elif dt.is_temporal():
                exprs.append((col.cast(pl.Datetime("ms")).dt.epoch("ms") / 86_400_000.0).alias(c))
            else:
                exprs.append(col.cast(pl.Float64).alias(c))
        out = df.select(exprs).to_numpy()
        return np.asarray(out, dtype=np.float64)

    def to_json(self) -> dict[str, Any]:
        return {"schema": self.schema, "categories": self.categories}


class Model:
    """A fitted model with its feature pipeline: what ``predict`` loads."""

    def __init__(
        self, estimator: Any, features: Features, task: str, target: str, classes: list[Any] | None
    ) -> None:
        self.estimator = estimator
        self.features = features
        self.task = task
        self.target = target
        self.classes = classes

    def predict(self, df: pl.DataFrame) -> pl.DataFrame:
        import polars as pl

        x = self.features.matrix(df)
        if self.task == "regression":
            return pl.DataFrame({"prediction": self.estimator.predict(x)})
        proba = self.estimator.predict_proba(x)
        labels = [self.classes[i] for i in proba.argmax(axis=1)]
        out = {"prediction": labels}
        for i, cls in enumerate(self.classes):
            out[f"proba_{cls}"] = proba[:, i]
        return pl.DataFrame(out)


def infer_task(y: pl.Series) -> str:
    import polars as pl

    n = y.drop_nulls().n_unique()
    if y.dtype in (pl.String, pl.Boolean, pl.Categorical) or (y.dtype.is_integer() and n <= 20):
        return "binary" if n == 2 else "multiclass"
    if y.dtype.is_float() and n <= 2 and set(y.drop_nulls().unique().to_list()) <= {0.0, 1.0}:
        return "binary"
    return "regression"


def _estimator(
    recipe: Recipe, task: str, features: Features, n_classes: int
) -> tuple[Any, dict[str, Any]]:
    """The estimator and the full parameter set it was built with."""
    seed = recipe.seed
    p = dict(recipe.params)
    cat_idx = features.categorical
    if recipe.model == "lightgbm":
        import lightgbm as lgb

        defaults = {
            "n_estimators": 200,
            "learning_rate": 0.05,
            "num_leaves": 31,
            "min_child_samples": 20,
            "subsample": 1.0,
            "colsample_bytree": 1.0,
            "reg_lambda": 0.0,
            "n_jobs": 2,
        }
        params = {**defaults, **p, "random_state": seed, "verbose": -1}
        cls = lgb.LGBMRegressor if task == "regression" else lgb.LGBMClassifier
        try:
            return cls(**params), params
        except TypeError as exc:
            raise UsageError(f"bad LightGBM parameter: {exc}") from None
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    reg = task == "regression"
    table: dict[str, tuple[Any, dict[str, Any]]] = {
        "random_forest": (
            RandomForestRegressor if reg else RandomForestClassifier,
            {"n_estimators": 200, "max_depth": None, "min_samples_leaf": 1, "n_jobs": 2},
        ),
        "extra_trees": (
            ExtraTreesRegressor if reg else ExtraTreesClassifier,
            {"n_estimators": 200, "max_depth": None, "min_samples_leaf": 1, "n_jobs": 2},
        ),
        "hist_gb": (
            HistGradientBoostingRegressor if reg else HistGradientBoostingClassifier,
            {"max_iter": 200, "learning_rate": 0.1, "max_leaf_nodes": 31, "early_stopping": False},
        ),
        "logistic": (LogisticRegression, {"C": 1.0, "max_iter": 1000}),
        "linear": (LinearRegression, {}),
        "ridge": (Ridge, {"alpha": 1.0}),
    }
    if recipe.model == "logistic" and reg:
        raise UsageError("logistic regression needs a classification target; use linear or ridge")
    if recipe.model in ("linear", "ridge") and not reg:
        raise UsageError(f"{recipe.model} is for regression; use logistic for classification")
    est_cls, defaults = table[recipe.model]
    params = {**defaults, **p}
    if recipe.model not in ("linear",):
        params["random_state"] = seed
    if recipe.model == "hist_gb":
        mask = [i in cat_idx for i in range(len(features.columns))]
        params["categorical_features"] = mask if any(mask) else None
    try:
        est = est_cls(**params)
        est._validate_params()  # what fit() would refuse, refused before a run exists
    except (TypeError, ValueError) as exc:
        raise UsageError(f"bad {recipe.model} parameter: {exc}") from None
    if recipe.model == "hist_gb":
        return est, {k: v for k, v in params.items() if k != "categorical_features"}
    num_idx = [i for i in range(len(features.columns)) if i not in cat_idx]
    numeric = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
    if recipe.model in ("logistic", "linear", "ridge"):
        numeric.append(("scale", StandardScaler()))
    parts = [("num", Pipeline(numeric), num_idx)]
    if cat_idx:
        parts.append(
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value=-1.0)),
                        ("onehot", OneHotEncoder(handle_unknown="ignore")),
                    ]
                ),
                cat_idx,
            )
        )
    return Pipeline([("prep", ColumnTransformer(parts)), ("model", est)]), params


def _split(df: pl.DataFrame, recipe: Recipe) -> tuple[pl.DataFrame, pl.DataFrame]:
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
    return ordered.head(cut), ordered.slice(cut)


def _metrics(
    task: str,
    y: np.ndarray,
    model: Model,
    x: np.ndarray,
    prefix: str,
    outputs: np.ndarray | None = None,
) -> tuple[dict[str, float], np.ndarray]:
    """Standard metrics for the task, and the predictions they were computed from.

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
    labels = list(range(len(model.classes)))
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
    return out, pred


ALL_FEATURES = "all"  # the "features" param of a wide table trained on every column
FEATURES_FILE = "features.json"


def _features_param(recipe: Recipe, columns: list[str], run: Any) -> str:
    """The feature list as a param, or, past a param's size limit (a 10k-column table),
    "all" when every column was used, else a pointer to an artifact holding the list."""
    from workbench.core.runs.tracking import MAX_VALUE

    text = json.dumps(columns)
    if len(text) <= MAX_VALUE:
        return text
    if recipe.features is None:
        return ALL_FEATURES
    run.log_json(FEATURES_FILE, columns)
    return FEATURES_FILE


def _usable(dtype: Any) -> bool:
    """Can a column of this type be a feature? (Nested and raw bytes cannot.)"""
    import polars as pl

    return not dtype.is_nested() and dtype not in (pl.Binary, pl.Object)


def prepare(project: Project, recipe: Recipe) -> dict[str, Any]:
    """Load, check and split the data; everything before fitting."""
    import polars as pl

    recipe.check()
    version = project.datasets.resolve(recipe.dataset)
    df = project.datasets.load(version)
    if recipe.target not in df.columns:
        raise UsageError(
            f"target column {recipe.target!r} is not in {version.ref} (columns: {', '.join(df.columns[:12])})"
        )
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
    missing = [c for c in features if c not in have]
    if missing:
        raise UsageError(f"feature columns not in {version.ref}: {', '.join(missing)}")
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
    train_df, val_df = _split(df, recipe)
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
        _estimator(recipe, data["task"], data["features"], len(data["classes"] or []))
        return
    import warnings

    est, _ = _estimator(recipe, data["task"], data["features"], len(data["classes"] or []))
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
) -> tuple[Model, dict[str, Any], dict[str, float]]:
    """Fit on prepared data, logging curves to ``run`` when given."""
    task, feats, classes = data["task"], data["features"], data["classes"]
    est, params = _estimator(recipe, task, feats, len(classes or []))
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
                    *([_live_curves(run)] if run is not None else []),
                    _final_outputs(captured),
                ],
            )
    else:
        try:
            est.fit(xt, yt)
        except ValueError as exc:
            raise DataError(f"{recipe.model} could not fit this data: {exc}") from None
        if run is not None and recipe.model == "hist_gb":
            _log_staged(run, est, task, xt, yt, xv, yv)
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
    val_scores, val_pred = _metrics(task, yv, model, xv, "val", val_out)
    scores = {**train_scores, **val_scores, "fit_seconds": fit_s}
    return model, params, scores, val_pred


_CURVE_NAMES = {
    "binary_logloss": "log_loss",
    "multi_logloss": "log_loss",
    "l2": "mse",
    "auc": "auc",
}


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


def _live_curves(run: Any) -> Any:
    """A LightGBM callback that logs every iteration's evaluation as it happens, so a
    viewer (the TUI, `runs show`) sees the curve grow while the model trains."""

    def callback(env: Any) -> None:
        for split, metric, value, *_ in env.evaluation_result_list:
            key = f"{split}_{_CURVE_NAMES.get(metric, metric)}_curve"
            run.log_metric(key, float(value), step=env.iteration + 1)

    callback.order = 30  # type: ignore[attr-defined]  # after LightGBM's own callbacks
    return callback


def _log_staged(run: Any, est: Any, task: str, xt: Any, yt: Any, xv: Any, yv: Any) -> None:
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


def importance(model: Model) -> dict[str, float]:
    est = model.estimator
    names = model.features.columns
    if hasattr(est, "booster_"):
        gain = est.booster_.feature_importance(importance_type="gain")
        return dict(sorted(zip(names, map(float, gain), strict=True), key=lambda kv: -kv[1]))
    inner = est.named_steps["model"] if hasattr(est, "named_steps") else est
    if hasattr(inner, "feature_importances_") and len(inner.feature_importances_) == len(names):
        return dict(
            sorted(
                zip(names, map(float, inner.feature_importances_), strict=True),
                key=lambda kv: -kv[1],
            )
        )
    return {}


def model_bytes(model: Model) -> bytes:
    buf = io.BytesIO()
    pickle.dump(model, buf, protocol=pickle.HIGHEST_PROTOCOL)
    return buf.getvalue()


def train(
    project: Project, recipe: Recipe, parent_id: str | None = None, progress: Any = None
) -> str:
    """Train one tracked run; returns its id. A failure is recorded on the run."""
    import numpy as np
    from sklearn.metrics import confusion_matrix

    recipe.check()
    data = prepare(project, recipe)
    preflight(recipe, data)
    version = data["version"]
    run = project.runs.start(
        experiment=recipe.experiment,
        name=recipe.name,
        dataset=version.ref,
        parent_id=parent_id,
        source="workbench train",
    )
    with run:
        run.log_params(
            {
                "model": recipe.model,
                "target": recipe.target,
                "task": data["task"],
                "split": recipe.split,
                "seed": recipe.seed,
                "dataset": version.ref,
                "features": _features_param(recipe, data["features"].columns, run),
                "n_train": data["n_train"],
                "n_val": data["n_val"],
            }
        )
        model, params, scores, val_pred = fit(recipe, data, run)
        run.log_params({f"model.{k}": v for k, v in params.items() if k not in ("verbose",)})
        final_step = int(params.get("n_estimators") or params.get("max_iter") or 0)
        run.log_metrics({k: v for k, v in scores.items()}, step=final_step)
        run.log_json("feature_importance.json", importance(model))
        if data["task"] != "regression":
            cm = confusion_matrix(data["y_val"], val_pred, labels=list(range(len(data["classes"]))))
            run.log_json(
                "confusion_matrix.json",
                {"labels": [str(c) for c in data["classes"]], "matrix": np.asarray(cm).tolist()},
            )
        run.log_json(
            "signature.json",
            {
                "inputs": data["features"].schema,
                "target": recipe.target,
                "task": data["task"],
                "classes": data["classes"],
            },
        )
        run.log_bytes("model.pkl", model_bytes(model), kind="model")
        if progress:
            progress(run.id, scores)
    return run.id
