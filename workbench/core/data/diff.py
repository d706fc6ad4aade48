"""Differences between two dataset versions.

Rows are compared as multisets by a row hash (so reordering alone is not a
change), statistics come from the stored profiles (no rescan), and with a key
column rows are matched by key to count and show the rows that changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.core.data.versions import schema_changes
from workbench.core.errors import DataError, UsageError

if TYPE_CHECKING:
    import polars as pl

    from workbench.core.data.datasets import Datasets

_STATS = ("null_share", "n_unique", "mean", "std", "min", "max")
EXAMPLES = 10


def _row_counts(lf: pl.LazyFrame, cols: list[str]) -> pl.LazyFrame:
    import polars as pl

    return lf.select(pl.struct(cols).hash(seed=0).alias("h")).group_by("h").len("n")


def diff(ds: Datasets, ref_a: str, ref_b: str, key: str | None = None) -> dict[str, Any]:
    import polars as pl

    a, b = ds.resolve(ref_a), ds.resolve(ref_b)
    common = [c for c in a.columns if c in b.columns]
    dtypes_a = {c["name"]: c["dtype"] for c in a.schema}
    dtypes_b = {c["name"]: c["dtype"] for c in b.schema}
    same_type = [c for c in common if dtypes_a[c] == dtypes_b[c]]
    out: dict[str, Any] = {
        "a": a.ref,
        "b": b.ref,
        "rows_a": a.n_rows,
        "rows_b": b.n_rows,
        "identical": a.id == b.id,
        "schema_changes": schema_changes(a.schema, b.schema),
        "compared_columns": same_type,
    }
    lf_a, lf_b = ds.scan(a), ds.scan(b)

    if same_type:
        ca, cb = _row_counts(lf_a, same_type), _row_counts(lf_b, same_type)
        joined = ca.join(cb, on="h", how="full", coalesce=True, suffix="_b").select(
            (
                pl.col("n").cast(pl.Int64).fill_null(0) - pl.col("n_b").cast(pl.Int64).fill_null(0)
            ).alias("d")
        )
        res = joined.select(
            removed=pl.col("d").clip(lower_bound=0).sum(),
            added=(-pl.col("d")).clip(lower_bound=0).sum(),
        ).collect(engine="streaming")
        out["rows_removed"] = int(res["removed"][0] or 0)
        out["rows_added"] = int(res["added"][0] or 0)
        out["rows_unchanged"] = a.n_rows - out["rows_removed"]

    pa, pb = ds.profile(a), ds.profile(b)
    by_a = {c["name"]: c for c in pa["columns"]}
    by_b = {c["name"]: c for c in pb["columns"]}
    stats = []
    for col in common:
        row: dict[str, Any] = {"column": col}
        changed = False
        for s in _STATS:
            va, vb = by_a[col].get(s), by_b[col].get(s)
            if va is None and vb is None:
                continue
            row[s] = {"a": va, "b": vb}
            if isinstance(va, int | float) and isinstance(vb, int | float) and va != vb:
                row[s]["delta"] = vb - va
            changed = changed or va != vb
        row["changed"] = changed
        stats.append(row)
    out["column_stats"] = stats

    if key is not None:
        out["by_key"] = _diff_by_key(lf_a, lf_b, key, same_type, a.ref, b.ref)
    return out


def _diff_by_key(
    lf_a: pl.LazyFrame, lf_b: pl.LazyFrame, key: str, cols: list[str], ra: str, rb: str
) -> dict[str, Any]:
    import polars as pl

    if key not in cols:
        raise UsageError(f"key column {key!r} is not in both versions with the same type")
    for lf, ref in ((lf_a, ra), (lf_b, rb)):
        dup = lf.group_by(key).len().filter(pl.col("len") > 1).select(pl.len()).collect().item()
        if dup:
            raise DataError(f"key {key!r} is not unique in {ref} ({dup} repeated values)")
    values = [c for c in cols if c != key]
    a = lf_a.select([key, *values])
    b = lf_b.select([key, *values])
    added = b.join(a, on=key, how="anti", nulls_equal=True).select(pl.len()).collect().item()
    removed = a.join(b, on=key, how="anti", nulls_equal=True).select(pl.len()).collect().item()
    both = a.join(b, on=key, how="inner", suffix="__b", nulls_equal=True)
    flags = [pl.col(c).ne_missing(pl.col(f"{c}__b")).alias(c) for c in values]
    flagged = (
        both.with_columns(flags)
        .select([key, *values])
        .with_columns(__any=pl.any_horizontal(values) if values else pl.lit(False))
        .filter(pl.col("__any"))
    )
    per_col = flagged.select([pl.col(c).sum() for c in values]).collect() if values else None
    changed = flagged.select(pl.len()).collect().item()
    examples = []
    if changed:
        keys = flagged.select(key).head(EXAMPLES).collect()
        sample = both.join(keys.lazy(), on=key, how="semi").collect()
        for row in sample.iter_rows(named=True):
            diffs = {
                c: {"a": _plain(row[c]), "b": _plain(row[f"{c}__b"])}
                for c in values
                if row[c] != row[f"{c}__b"]
            }
            examples.append({"key": _plain(row[key]), "changes": diffs})
    return {
        "key": key,
        "rows_added": added,
        "rows_removed": removed,
        "rows_changed": changed,
        "changed_by_column": {c: int(per_col[c][0]) for c in values if per_col[c][0]}
        if per_col is not None
        else {},
        "examples": examples,
    }


def _plain(v: Any) -> Any:
    from workbench.core.data.profile import jsonable

    return jsonable(v)
