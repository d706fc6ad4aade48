"""From a frame to the numbers a model was fitted on, and from its outputs to predictions.

Self-contained on purpose (polars and numpy only, no workbench import): a model exported
in MLflow's format carries a copy of this file, so ``mlflow models serve``, MLServer or
KServe score exactly as ``workbench predict`` does, without workbench installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl


def to_matrix(df: pl.DataFrame, schema: dict[str, str], categories: dict[str, list[str]]) -> Any:
    """The float matrix for ``schema``'s columns: a text column becomes the index of its
    value among ``categories`` (unknown: missing), a date its day number, a time its days
    since the epoch, anything else its float value."""
    exprs = []
    have = df.schema
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
    return np.asarray(df.select(exprs).to_numpy(), dtype=np.float64)


def outputs(estimator: Any, x: Any, task: str, classes: list[Any] | None) -> pl.DataFrame:
    """A regressor's ``prediction``; a classifier's most likely class and each class's
    probability (``proba_<class>``)."""
    if task == "regression":
        return pl.DataFrame({"prediction": estimator.predict(x)})
    proba = estimator.predict_proba(x)
    known: list[Any] = classes or []
    out: dict[str, Any] = {"prediction": [known[i] for i in proba.argmax(axis=1)]}
    for i, cls in enumerate(known):
        out[f"proba_{cls}"] = proba[:, i]
    return pl.DataFrame(out)
