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


GROUP = 100


def profile(lf: pl.LazyFrame, schema: pl.Schema) -> dict[str, Any]:
    """Profile every column. Columns go in groups of 100: polars' planning time
    grows faster than linearly with the number of expressions in one query."""
    import polars as pl

    names = list(schema)
    rows = int(lf.select(pl.len()).collect(engine="streaming").item())
    columns: list[dict[str, Any]] = []
    for start in range(0, len(names), GROUP):
        group = names[start : start + GROUP]
        sub = pl.Schema({n: schema[n] for n in group})
        columns += _profile_group(lf.select(group), sub, rows)
    return {"rows": rows, "columns": columns}


def _profile_group(lf: pl.LazyFrame, schema: pl.Schema, rows: int) -> list[dict[str, Any]]:
    import polars as pl

    names = list(schema)
    exprs: list[pl.Expr] = []
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

    quantiles = _quantiles(lf, schema, rows)
    hist_exprs: list[pl.Expr] = []
    columns: list[dict[str, Any]] = []
    follow_up: list[tuple[int, pl.LazyFrame]] = []
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
            col["quantiles"] = quantiles[name]
            lo, hi = col.get("min"), col.get("max")
            if lo is not None and hi is not None:
                hist_exprs += _histogram_exprs(i, name, dtype, lo, hi)
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
            follow_up.append((i, top))
        columns.append(col)

    if hist_exprs:
        counts = lf.select(hist_exprs).collect(engine="streaming").row(0, named=True)
        for i, col in enumerate(columns):
            if f"{i}|b0" in counts:
                col["histogram"] = _histogram_result(
                    [counts[f"{i}|b{k}"] for k in range(HIST_BINS) if f"{i}|b{k}" in counts],
                    col["min"],
                    col["max"],
                )
    if follow_up:
        results = pl.collect_all([q for _, q in follow_up])
        for (i, _), res in zip(follow_up, results, strict=True):
            columns[i]["top"] = [
                {"value": jsonable(v), "count": int(n)} for v, n in res.iter_rows()
            ]
    return columns


QUANTILE_BUDGET = 256 << 20


def _quantiles(lf: pl.LazyFrame, schema: pl.Schema, rows: int) -> dict[str, dict[str, Any]]:
    """Exact quantiles of numeric columns, a few columns at a time.

    Polars' streaming engine computes quantiles ~100x slower than the in-memory
    one, so columns are loaded in groups that fit a memory budget instead.
    """
    import polars as pl

    numeric = [n for n, t in schema.items() if kind_of(t) == "numeric"]
    per_group = max(1, QUANTILE_BUDGET // max(1, rows * 8))
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(numeric), per_group):
        group = numeric[start : start + per_group]
        exprs = []
        for j, name in enumerate(group):
            c = pl.col(name)
            v = c.filter(c.is_finite()) if schema[name].is_float() else c
            # One list-valued quantile per column: separate expressions are ~40x slower.
            exprs.append(v.cast(pl.Float64).quantile(list(QUANTILES), "linear").alias(str(j)))
        res = lf.select(exprs).collect().row(0)
        for j, name in enumerate(group):
            values = res[j] if res[j] is not None else [None] * len(QUANTILES)
            out[name] = {str(q): jsonable(v) for q, v in zip(QUANTILES, values, strict=True)}
    return out


def _histogram_exprs(i: int, name: str, dtype: pl.DataType, lo: float, hi: float) -> list[pl.Expr]:
    import polars as pl

    c = pl.col(name).cast(pl.Float64)
    valid = pl.col(name).is_finite() if dtype.is_float() else pl.col(name).is_not_null()
    if hi <= lo:
        return [valid.sum().alias(f"{i}|b0")]
    width = (hi - lo) / HIST_BINS
    idx = ((c - lo) / width).floor().clip(0, HIST_BINS - 1).cast(pl.Int32, strict=False)
    return [(valid & (idx == k)).sum().alias(f"{i}|b{k}") for k in range(HIST_BINS)]


def _histogram_result(counts: list[int], lo: float, hi: float) -> dict[str, list[float]]:
    counts = [int(v) for v in counts]
    if hi <= lo:
        return {"edges": [lo, hi], "counts": counts}
    width = (hi - lo) / HIST_BINS
    edges = [lo + k * width for k in range(HIST_BINS)] + [hi]
    return {"edges": edges, "counts": counts}
