"""Column profiles, computed once when a version is added and stored with it.

Drift, the TUI and ``data show`` read these instead of rescanning the data.
Statistics of float columns are over finite values; NaN and +-inf are counted
separately so that one bad value does not turn a mean into NaN.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HIST_BINS = 20
TOP_K = 10
TOP_FOR_NUMERIC_UNIQUE = 20


def kind_of(dtype: pl.DataType) -> str:
    """Coarse column kind: numeric, boolean, categorical, datetime or other."""
    import polars as pl

    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_numeric():
        return "numeric"
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum | pl.Categorical):
        return "categorical"
    if dtype.is_temporal():
        return "datetime"
    return "other"


def jsonable(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bool | int | str):
        return value
    return str(value)


def profile(lf: pl.LazyFrame, schema: pl.Schema) -> dict[str, Any]:
    import polars as pl

    names = list(schema)
    exprs: list[pl.Expr] = [pl.len().alias("__rows")]
    for i, name in enumerate(names):
        dtype = schema[name]
        kind = kind_of(dtype)
        c = pl.col(name)
        exprs += [
            c.null_count().alias(f"{i}|nulls"),
            c.drop_nulls().n_unique().alias(f"{i}|n_unique"),
        ]
        if kind == "numeric":
            v = c
            if dtype.is_float():
                exprs += [
                    c.is_nan().sum().alias(f"{i}|nan"),
                    c.is_infinite().sum().alias(f"{i}|inf"),
                ]
                v = c.filter(c.is_finite())
            v = v.cast(pl.Float64)
            exprs += [
                v.min().alias(f"{i}|min"),
                v.max().alias(f"{i}|max"),
                v.mean().alias(f"{i}|mean"),
                v.std().alias(f"{i}|std"),
                (v == 0).sum().alias(f"{i}|zeros"),
            ]
            exprs += [v.quantile(q, "linear").alias(f"{i}|q{q}") for q in QUANTILES]
        elif kind == "boolean":
            exprs.append(c.sum().alias(f"{i}|true"))
        elif kind == "datetime":
            exprs += [c.min().alias(f"{i}|min"), c.max().alias(f"{i}|max")]
        elif kind == "categorical" and dtype == pl.String:
            exprs += [
                c.str.len_chars().min().alias(f"{i}|min_len"),
                c.str.len_chars().max().alias(f"{i}|max_len"),
            ]
    first = lf.select(exprs).collect(engine="streaming").row(0, named=True)
    rows = int(first["__rows"])

    columns: list[dict[str, Any]] = []
    follow_up: list[tuple[int, str, pl.LazyFrame]] = []
    for i, name in enumerate(names):
        dtype = schema[name]
        kind = kind_of(dtype)
        stats = {k.split("|", 1)[1]: v for k, v in first.items() if k.startswith(f"{i}|")}
        col: dict[str, Any] = {
            "name": name,
            "dtype": str(dtype),
            "kind": kind,
            "count": rows - stats["nulls"],
            "nulls": stats["nulls"],
            "null_share": stats["nulls"] / rows if rows else 0.0,
            "n_unique": stats["n_unique"],
        }
        for key in (
            "nan",
            "inf",
            "min",
            "max",
            "mean",
            "std",
            "zeros",
            "true",
            "min_len",
            "max_len",
        ):
            if key in stats:
                col[key] = jsonable(stats[key])
        if kind == "numeric":
            col["quantiles"] = {str(q): jsonable(stats[f"q{q}"]) for q in QUANTILES}
            lo, hi = col.get("min"), col.get("max")
            if lo is not None and hi is not None:
                follow_up.append((i, "hist", _histogram_query(lf, name, dtype, lo, hi)))
        if kind in ("categorical", "boolean") or (
            kind == "numeric" and col["n_unique"] <= TOP_FOR_NUMERIC_UNIQUE
        ):
            top = (
                lf.group_by(name)
                .len("count")
                .drop_nulls(name)
                .sort(["count", name], descending=[True, False])
                .head(TOP_K)
            )
            follow_up.append((i, "top", top))
        columns.append(col)

    if follow_up:
        results = pl.collect_all([q for _, _, q in follow_up], engine="streaming")
        for (i, what, _), res in zip(follow_up, results, strict=True):
            col = columns[i]
            if what == "hist":
                col["histogram"] = _histogram_result(res, col["min"], col["max"])
            else:
                col["top"] = [{"value": jsonable(v), "count": int(n)} for v, n in res.iter_rows()]
    return {"rows": rows, "columns": columns}


def _histogram_query(
    lf: pl.LazyFrame, name: str, dtype: pl.DataType, lo: float, hi: float
) -> pl.LazyFrame:
    import polars as pl

    c = pl.col(name).cast(pl.Float64)
    if dtype.is_float():
        c = c.filter(pl.col(name).is_finite())
    if hi <= lo:
        return lf.select(c.count().alias("b0"))
    width = (hi - lo) / HIST_BINS
    idx = ((c - lo) / width).floor().clip(0, HIST_BINS - 1).cast(pl.Int32)
    return lf.select([(idx == k).sum().alias(f"b{k}") for k in range(HIST_BINS)])


def _histogram_result(res: pl.DataFrame, lo: float, hi: float) -> dict[str, list[float]]:
    counts = [int(v) for v in res.row(0)]
    if hi <= lo:
        return {"edges": [lo, hi], "counts": counts}
    width = (hi - lo) / HIST_BINS
    edges = [lo + k * width for k in range(HIST_BINS)] + [hi]
    return {"edges": edges, "counts": counts}
