"""A trained model as it is stored: the estimator with the feature pipeline it was fitted
through, so that scoring turns new data into numbers exactly as training did.

These classes are pickled into the store. Their module path is part of every stored
model file: moving them breaks old models unless ``load_model`` maps the old path
(see ``_MOVED``).
"""

from __future__ import annotations

import io
import pickle
from typing import TYPE_CHECKING, Any

from workbench.core.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

MAX_CATEGORIES = 1000

# Where model classes lived before: pickles name the module, and a store keeps its models.
_MOVED = {"workbench.core.training": __name__}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(_MOVED.get(module, module), name)


def load_model(data: bytes) -> Any:
    """Unpickle a stored model, including those pickled before the classes moved here."""
    return _Unpickler(io.BytesIO(unpack(data))).load()


# A stored model file is the pickle itself, or, when that is large and compresses well,
# this tag, the pickle's length (8 bytes, little-endian) and its Zstandard frame.
PACKED = b"WBZ1"
PACK_FROM = 1 << 20  # smaller pickles are stored as they are
PACK_MIN_RATIO = 1.5  # and so are those that compress by less than this


def pack(raw: bytes) -> bytes:
    """A model file for the store: Zstandard-compressed when it pays.

    A default random forest on 22k rows pickles to 189 MB; at level 3 it stores in 28 MB
    (6.7x) for 0.6 s more on a 23 s training, and reads back in 0.4 s, a fifth of the
    2 s its unpickling takes. Compression comes from pyarrow, already a dependency.
    """
    if len(raw) < PACK_FROM:
        return raw
    import pyarrow as pa

    packed = pa.Codec("zstd", compression_level=3).compress(raw, asbytes=True)
    if len(raw) < PACK_MIN_RATIO * len(packed):
        return raw
    return PACKED + len(raw).to_bytes(8, "little") + packed


def unpack(data: bytes) -> bytes:
    """The pickle inside a stored model file (packed or not)."""
    if not data.startswith(PACKED):
        return data
    import pyarrow as pa

    size = int.from_bytes(data[4:12], "little")
    return pa.Codec("zstd").decompress(data[12:], decompressed_size=size, asbytes=True)


class Features:
    """Turns a polars frame into a float matrix, identically at training and scoring."""

    def __init__(self, schema: dict[str, str], categories: dict[str, list[str]]) -> None:
        self.schema = schema  # column -> polars dtype string, the model's input signature
        self.categories = categories  # text column -> known values (code = index)

    def __getstate__(self) -> dict[str, Any]:
        # The expression cache is rebuilt per load; pickled it would change the bytes.
        return {k: v for k, v in self.__dict__.items() if k != "_exprs"}

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
        from workbench.core.runs.feature_matrix import to_matrix

        cache = self.__dict__.setdefault("_exprs", {})  # not in to_json: built per load
        matrix: np.ndarray = to_matrix(df, self.schema, self.categories, cache)
        return matrix

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
        from workbench.core.runs.feature_matrix import outputs

        return outputs(self.estimator, self.features.matrix(df), self.task, self.classes)


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
    """The model pickled (not packed: ``pack`` decides how it is stored)."""
    buf = io.BytesIO()
    pickle.dump(model, buf, protocol=pickle.HIGHEST_PROTOCOL)
    return buf.getvalue()
