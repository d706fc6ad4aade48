"""From a frame to the numbers a model was fitted on, and from its outputs to predictions.

Self-contained on purpose (polars and numpy only, no workbench import): a model exported
in MLflow's format carries a copy of this file, so ``mlflow models serve``, MLServer or
KServe score exactly as ``workbench predict`` does, without workbench installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl


def to_matrix(
    df: pl.DataFrame,
    schema: dict[str, str],
    categories: dict[str, list[str]],
    cache: dict[Any, list[pl.Expr]] | None = None,
) -> Any:
    """The float matrix for ``schema``'s columns: a text column becomes the index of its
    value among ``categories`` (unknown: missing), a date its day number, a time its days
    since the epoch, anything else its float value.

    ``cache`` keeps the expressions per input schema: building them (a category map is a
    polars Series) cost more than applying them to a one-row request."""
    have = df.schema
    key = tuple(have[c] for c in schema)
    exprs = cache.get(key) if cache is not None else None
    if exprs is None:
        exprs = _exprs(have, schema, categories)
        if cache is not None:
            cache[key] = exprs
    return np.asarray(df.select(exprs).to_numpy(), dtype=np.float64)


def _exprs(have: Any, schema: dict[str, str], categories: dict[str, list[str]]) -> list[pl.Expr]:
    exprs = []
    for c in schema:
        col = pl.col(c)
        dt = have[c]
        if c in categories:
            mapping = {v: float(i) for i, v in enumerate(categories[c])}
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
    return exprs


def outputs(estimator: Any, x: Any, task: str, classes: list[Any] | None) -> pl.DataFrame:
    """A regressor's ``prediction``; a classifier's most likely class and each class's
    probability (``proba_<class>``)."""
    booster = _booster(estimator)
    if task == "regression":
        return pl.DataFrame({"prediction": (booster or estimator).predict(x)})
    if booster is None:
        proba = estimator.predict_proba(x)
    else:  # what LGBMClassifier.predict_proba computes, without its per-call checks
        raw = booster.predict(x)
        proba = raw if raw.ndim == 2 else np.vstack((1.0 - raw, raw)).transpose()
    known: list[Any] = classes or []
    out: dict[str, Any] = {"prediction": [known[i] for i in proba.argmax(axis=1)]}
    for i, cls in enumerate(known):
        out[f"proba_{cls}"] = proba[:, i]
    return pl.DataFrame(out)


def _booster(estimator: Any) -> Any:
    """A fitted LightGBM estimator's booster, to predict with directly: the scikit-learn
    wrapper re-reads its parameters and re-validates the input on every call, 0.7 ms
    against the booster's 0.04 ms for one row (the numbers are the same: tested)."""
    if type(estimator).__name__ not in ("LGBMClassifier", "LGBMRegressor"):
        return None
    if callable(getattr(estimator, "objective", None)):
        return None  # a custom objective: the wrapper decides what predict means
    return getattr(estimator, "booster_", None)
