"""Column profiles, computed once while a version is ingested and stored with it.

Drift, the TUI and ``data show`` read these instead of rescanning the data. The
profiler sees each batch once, while it is in memory for chunking anyway, and
merges per-batch results:

- exact: row/null/NaN/inf/zero counts, min, max, mean and standard deviation
  (Chan's parallel update), string lengths, true counts, top values with counts
  (categorical columns with up to 50k distinct values);
- a text column with more than 50k distinct values keeps a top list only if some
  value came at least once in 10,000 rows (the user ids of an event log): its 50k
  most frequent so far are counted on, and each count is a lower bound
  (``top_exact`` false); one whose values hardly repeat (ids, timestamps kept as
  text) has no top list;
- distinct counts: exact below 4,096 distinct values, above that a k-minimum-values
  sketch over 64-bit hashes (about 1.6% relative error);
- quantiles: exact up to 100,000 rows, above that from a uniform sample of
  100,000 rows (bottom-k by random key, so batches merge);
- histograms: 20 equal-width bins over the sample's range, counts scaled to the
  whole column when it is sampled.

Statistics of float columns are over finite values; NaN and +-inf are counted
separately so that one bad value does not turn a mean into NaN.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from workbench.core.data.sampling import SAMPLE_ROWS, RowSample
from workbench.core.text import clip

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HIST_BINS = 20
TOP_K = 10
TOP_FOR_NUMERIC_UNIQUE = 20
KMV_K = 4096
MAX_TRACKED_VALUES = 50_000
# A column with more distinct values than that keeps a top list only if one of its values
# came this many times by then, and at least once in 1 / HEAVY_SHARE rows
HEAVY_AT = 3
HEAVY_SHARE = 1e-4
CONTINUOUS_AT = 64  # a numeric column with more distinct values gets no top-values list
# Value counts of a long batch are lazy group-bys collected this many columns at a time:
# together they count in parallel, but all of a 10,000-column table's at once crashed a
# process. Shorter batches count eagerly.
COUNT_GROUP = 64
LAZY_COUNTS_FROM = 65_536
BINCOUNT_SPAN = 1 << 16  # integer values within this span are counted by bincount
# A text column with at most this many values so far is counted by comparing each row
# with each of them (a pass apiece) rather than by hashing every row
FEW_KNOWN = 8
_NUMPY_INTEGERS = frozenset(
    ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64")
)


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


def lengths_text(col: dict[str, Any]) -> str | None:
    """A text column's lengths as a profile shows them ("12 characters", "3..40
    characters"), or None when the profile has none (not text, or every value null).
    Shown where a column has no top list: one with too many values to count each."""
    known = sorted({n for n in (col.get("min_len"), col.get("max_len")) if n is not None})
    return f"{'..'.join(str(n) for n in known)} characters" if known else None


class Profiler:
    """Feed batches with :meth:`update`, then read :meth:`result`."""

    def __init__(self, schema: pl.Schema, seed: int = 0) -> None:
        import numpy as np

        self.schema = schema
        self.names = list(schema)
        self.kinds = {n: kind_of(t) for n, t in schema.items()}
        self.rows = 0
        self.acc: dict[str, dict[str, Any]] = {n: {"nulls": 0} for n in self.names}
        self.kmv: dict[str, np.ndarray] = {}
        self.counts: dict[str, pl.DataFrame | None] = dict.fromkeys(self.names)
        # Exact value counts while a column has few values; the distinct sketch takes
        # over (seeded with every value seen) when it has too many to count.
        self.track_counts = {
            n: self.kinds[n] in ("categorical", "boolean", "numeric") for n in self.names
        }
        self.sketched = {n: not self.track_counts[n] for n in self.names}
        self.numeric = [n for n in self.names if self.kinds[n] == "numeric"]
        self.sample = RowSample(self.numeric, np.random.default_rng(seed))

    # ---- per batch -------------------------------------------------------------
    def update(self, df: pl.DataFrame) -> None:
        if df.height == 0:
            return
        per_column = self._stats(df)
        # A float column that held NaN or +-inf in this batch: its statistics again, over
        # its finite values only (filtering every float column first cost 40% more).
        odd = [i for i, s in enumerate(per_column) if s.get("nan") or s.get("inf")]
        if odd:
            for i, s in zip(odd, self._stats(df, odd), strict=True):
                per_column[i] = {**s, "nan": per_column[i]["nan"], "inf": per_column[i]["inf"]}
        for i, name in enumerate(self.names):
            self._merge(name, per_column[i])
        self._count_values(df)
        for name in self.names:
            if self.sketched[name]:
                self._distinct(name, df.get_column(name))
        self.rows += df.height
        self.sample.add(df)

    def _stats(self, df: pl.DataFrame, finite: list[int] | None = None) -> list[dict[str, Any]]:
        """Each column's batch statistics, in one pass over all columns (10k columns:
        one select, not 10k). ``finite``: only these columns, floats over finite values."""
        import polars as pl

        exprs: list[pl.Expr] = []
        which = range(len(self.names)) if finite is None else finite
        for i in which:
            name = self.names[i]
            dtype, kind, c = self.schema[name], self.kinds[name], pl.col(name)
            exprs.append(c.null_count().alias(f"{i}|nulls"))
            if kind == "numeric":
                v = c
                if dtype.is_float():
                    if finite is None:
                        exprs += [
                            c.is_nan().sum().alias(f"{i}|nan"),
                            c.is_infinite().sum().alias(f"{i}|inf"),
                        ]
                    else:
                        v = c.filter(c.is_finite())
                v = v.cast(pl.Float64)
                exprs += [
                    v.count().alias(f"{i}|n"),
                    v.min().alias(f"{i}|min"),
                    v.max().alias(f"{i}|max"),
                    v.mean().alias(f"{i}|mean"),
                    v.var(ddof=0).alias(f"{i}|var"),
                    (v == 0).sum().alias(f"{i}|zeros"),
                ]
            elif kind == "boolean":
                exprs.append(c.sum().alias(f"{i}|true"))
            elif kind == "datetime":
                exprs += [c.min().alias(f"{i}|min"), c.max().alias(f"{i}|max")]
            elif dtype == pl.String and not self.track_counts[name]:
                # a text column no longer counted (too many distinct values): its lengths
                # from every row; a counted one's come from its distinct values
                n = c.str.len_chars()
                exprs += [n.min().alias(f"{i}|min_len"), n.max().alias(f"{i}|max_len")]
        per_column: dict[int, dict[str, Any]] = {i: {} for i in which}
        for key, v in df.select(exprs).row(0, named=True).items():
            pos, stat = key.split("|", 1)
            per_column[int(pos)][stat] = v
        return list(per_column.values())

    def _merge(self, name: str, s: dict[str, Any]) -> None:
        a = self.acc[name]
        a["nulls"] += s["nulls"]
        for key in ("nan", "inf", "zeros", "true"):
            if key in s:
                a[key] = a.get(key, 0) + (s[key] or 0)
        for key, pick in (("min", min), ("max", max), ("min_len", min), ("max_len", max)):
            if s.get(key) is not None:
                a[key] = s[key] if a.get(key) is None else pick(a[key], s[key])
        if s.get("n"):
            n_b, mean_b, var_b = s["n"], s["mean"], s["var"] or 0.0
            n_a, mean_a, m2_a = a.get("n", 0), a.get("mean", 0.0), a.get("m2", 0.0)
            n = n_a + n_b
            delta = mean_b - mean_a
            a["mean"] = mean_a + delta * n_b / n
            a["m2"] = m2_a + var_b * n_b + delta * delta * n_a * n_b / n
            a["n"] = n

    def _distinct(self, name: str, col: pl.Series) -> None:
        """Keep the KMV_K smallest distinct 64-bit hashes (a mergeable distinct sketch)."""
        import numpy as np

        h = col.drop_nulls().hash(seed=0)
        prev = self.kmv.get(name)
        if prev is not None and len(prev) >= KMV_K:
            h = h.filter(h <= int(prev[-1]))  # only values that can enter the sketch
        else:
            cand = h.bottom_k(4 * KMV_K).unique()
            h = cand if cand.len() >= KMV_K or h.len() <= 4 * KMV_K else h.unique()
        if h.len() == 0:
            return
        vals = np.sort(h.unique().to_numpy())
        self.kmv[name] = (vals if prev is None else _union(prev, vals))[:KMV_K]

    def _count_values(self, df: pl.DataFrame) -> None:
        """Merge the batch's value counts of every tracked column into the running ones.

        A long batch's counts are one lazy group-by per column, collected a group of
        columns at a time: the columns count in parallel, and a lazy group-by counts
        strings about twice as fast as ``Series.value_counts`` (1M rows, 400 labels: 8 ms
        against 16)."""
        import polars as pl

        names = []
        for name in self.names:
            if not self.track_counts[name]:
                continue
            col = df.get_column(name)
            if (
                self.kinds[name] == "numeric"
                and self.counts[name] is None
                and col.len() > 4 * CONTINUOUS_AT
                and col.head(4 * CONTINUOUS_AT).drop_nulls().n_unique() > CONTINUOUS_AT
            ):
                # Continuous from its first rows: counting every value of a million-row
                # batch first (0.1-0.17 s a column) would only be thrown away below. No
                # values came before, so the sketch that update() now feeds this batch to
                # starts complete.
                self.track_counts[name], self.sketched[name] = False, True
                continue
            names.append(name)
        # Integers of a narrow range (labels, flags, codes) by bincount: a tenth of a
        # group-by's time (262k rows: ~0.3 ms against ~3 ms), the same counts; text of
        # a few values by comparison
        names = [
            n
            for n in names
            if not self._counted_by_bins(n, df.get_column(n))
            and not self._counted_by_known(n, df.get_column(n))
        ]
        if df.height < LAZY_COUNTS_FROM:
            # A short batch (a wide table's, or a small file's): a lazy plan's fixed cost
            # (~0.3 ms) would outweigh the counting (10k columns x 50 rows: 3.2 s vs 0.8).
            for name in names:
                col = df.get_column(name).drop_nulls()
                self._merge_counts(name, col.value_counts(name="count").rename({name: "value"}))
            return
        for start in range(0, len(names), COUNT_GROUP):
            group = names[start : start + COUNT_GROUP]
            plans = [  # one-column frames: a plan's cost grows with its frame's width
                df.get_column(n)
                .to_frame("value")
                .lazy()
                .drop_nulls()
                .group_by("value")
                .len("count")
                for n in group
            ]
            for name, vc in zip(group, pl.collect_all(plans), strict=True):
                self._merge_counts(name, vc)

    def _counted_by_bins(self, name: str, col: pl.Series) -> bool:
        """Count an integer column's values with ``np.bincount`` when they span fewer
        than BINCOUNT_SPAN values; False (nothing done) otherwise."""
        import numpy as np
        import polars as pl

        if str(col.dtype) not in _NUMPY_INTEGERS:  # Int128 has no NumPy type
            return False
        values = col.drop_nulls().to_numpy()
        if values.size == 0:
            return False
        hi = int(values.max())
        counts = None
        if hi < BINCOUNT_SPAN:
            # Values from 0 up (labels, flags, codes) need no offsets: counted as they
            # are, after one pass for the max (the offsets took three passes and two
            # copies more: a 10M-row profile's two 0/1 columns, 0.15 -> 0.11 s)
            with contextlib.suppress(ValueError):  # a negative value: offsets below
                counts = np.bincount(values.astype(np.intp, copy=False))
        unsigned = values.dtype.kind == "u"
        if counts is not None:
            least, lo = values.dtype.type(0), 0
        else:
            least = values.min()
            lo = int(least)
            if hi - lo >= BINCOUNT_SPAN:
                return False
            # offsets from the least value, without overflow: unsigned in their own type
            # (all >= it), signed as int64 (an int8 column's 127 - -128 does not fit int8)
            offsets = values - least if unsigned else values.astype(np.int64) - lo
            counts = np.bincount(offsets.astype(np.intp, copy=False), minlength=hi - lo + 1)
        seen = np.flatnonzero(counts)
        vc = pl.DataFrame(
            {
                "value": pl.Series(
                    seen.astype(values.dtype) + least
                    if unsigned
                    else (seen + lo).astype(values.dtype),
                    dtype=col.dtype,
                ),
                "count": pl.Series(counts[seen], dtype=pl.get_index_type()),
            }
        )
        self._merge_counts(name, vc)
        return True

    def _counted_by_known(self, name: str, col: pl.Series) -> bool:
        """Count a text column whose values so far are few (a category, a channel, a
        country) with one comparison pass per value: 262k rows of 6 values took 1.8 ms
        against 4.7 for a group-by, which hashes every row. False (nothing done) when
        the column is not such a one, or when the batch holds a value not seen before:
        the counts would not add up, and the group-by counts it instead."""
        import polars as pl

        known = self.counts[name]
        if known is None or known.height > FEW_KNOWN or col.dtype != pl.String:
            return False
        counts = counts_among(col, known.get_column("value").to_list())
        if counts is None:
            return False
        # every value is a known one: their running counts grow (no new value, so the
        # text lengths and the number of values stay as they were)
        total = known.get_column("count")
        self.counts[name] = known.with_columns(
            (total + pl.Series(counts).cast(total.dtype)).alias("count")
        )
        return True

    def _merge_counts(self, name: str, vc: pl.DataFrame) -> None:
        import polars as pl

        if self.schema[name] == pl.String and vc.height:
            # Shortest and longest text: over the batch's distinct values (every one is
            # in ``vc``), not over every row (three text columns: 0.25 s of CPU in 10M rows)
            lengths = vc.get_column("value").str.len_chars()
            self._merge(name, {"nulls": 0, "min_len": lengths.min(), "max_len": lengths.max()})
        prev = self.counts[name]
        merged = (
            vc
            if prev is None
            else (
                pl.concat([prev, vc.cast(prev.schema)]).group_by("value").agg(pl.col("count").sum())
            )
        )
        if self.kinds[name] == "numeric" and merged.height > CONTINUOUS_AT:
            # A continuous column: no top list; count its distinct values by sketch.
            self._distinct(name, merged.get_column("value"))
            self.track_counts[name], self.sketched[name], self.counts[name] = False, True, None
            return
        if merged.height > MAX_TRACKED_VALUES:
            if not self.sketched[name]:
                # Too many values to count each: from now on the sketch, seeded with every
                # value seen, counts distinct values.
                self._distinct(name, merged.get_column("value"))
                self.sketched[name] = True
                counts = merged.get_column("count").to_numpy()
                most, seen = int(counts.max()), int(counts.sum())
                if most < max(HEAVY_AT, HEAVY_SHARE * seen):
                    # Ids, timestamps or free text kept as text: no value came even once in
                    # 10,000 rows, so a top list would say nothing. Counting stops, as for
                    # a continuous number: counting on cost 0.9 s of CPU per 3M distinct
                    # timestamps, as much as the rest of the profile.
                    self.track_counts[name], self.counts[name] = False, None
                    return
            # Values that repeat (the user ids of an event log): the most frequent are kept
            # and counted on. A value cut while rare loses what it had, so each count is a
            # lower bound (the profile's top_exact is false).
            merged = merged.sort("count", descending=True).head(MAX_TRACKED_VALUES)
        self.counts[name] = merged

    # ---- result -----------------------------------------------------------------
    def result(self) -> dict[str, Any]:
        rows = self.rows
        columns = []
        dists = {}
        for name, values in self.sample.finite_values():  # a block of columns in memory at a time
            a = self.acc[name]
            basis: dict[str, Any] = {
                k: jsonable(a[k]) for k in ("min", "max", "nan", "inf") if k in a
            }
            dists[name] = self._distribution(values, {**basis, "count": rows - a["nulls"]})
        for name in self.names:
            a, kind = self.acc[name], self.kinds[name]
            col: dict[str, Any] = {
                "name": name,
                "dtype": str(self.schema[name]),
                "kind": kind,
                "count": rows - a["nulls"],
                "nulls": a["nulls"],
                "null_share": a["nulls"] / rows if rows else 0.0,
                "n_unique": self._n_unique(name),
                "n_unique_exact": not self.sketched[name] or len(self.kmv.get(name, ())) < KMV_K,
            }
            for key in ("nan", "inf", "min", "max", "zeros", "true", "min_len", "max_len"):
                if key in a:
                    col[key] = jsonable(a[key])
            if kind == "numeric":
                n = a.get("n", 0)
                col["mean"] = jsonable(a["mean"]) if n else None
                col["std"] = math.sqrt(a["m2"] / (n - 1)) if n > 1 else None
                col["quantiles"], col["histogram"] = dists.get(name) or self._distribution(
                    None, col
                )
            counts = self.counts.get(name)
            if counts is not None and (
                kind != "numeric" or col["n_unique"] <= TOP_FOR_NUMERIC_UNIQUE
            ):
                top = counts.sort(["count", "value"], descending=[True, False]).head(TOP_K)
                col["top_exact"] = not self.sketched[name]  # else counts are lower bounds
                col["top"] = [
                    {"value": clip(v) if isinstance(v, str) else jsonable(v), "count": int(c)}
                    for v, c in top.iter_rows()
                ]
            columns.append(col)
        return {"rows": rows, "sampled": rows > SAMPLE_ROWS, "columns": columns}

    def _n_unique(self, name: str) -> int:
        if not self.sketched[name]:
            counts = self.counts[name]
            return 0 if counts is None else counts.height
        h = self.kmv.get(name)
        if h is None:
            return 0
        if len(h) < KMV_K:
            return len(h)
        kth = (float(h[KMV_K - 1]) + 1.0) / 2.0**64
        return int(round((KMV_K - 1) / kth))

    @staticmethod
    def _distribution(s: Any, col: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        import numpy as np

        empty = {str(q): None for q in QUANTILES}
        if s is None or s.size == 0:
            return empty, None
        qs = np.quantile(s, QUANTILES)
        quantiles = {str(q): float(v) for q, v in zip(QUANTILES, qs, strict=True)}
        lo, hi = col.get("min"), col.get("max")
        if lo is None or hi is None:
            return quantiles, None
        scale = col["count"] - col.get("nan", 0) - col.get("inf", 0)
        if hi <= lo:
            return quantiles, {"edges": [lo, hi], "counts": [int(scale)]}
        counts, edges = np.histogram(np.clip(s, lo, hi), bins=HIST_BINS, range=(lo, hi))
        if s.size != scale and s.size:
            counts = np.round(counts * (scale / s.size)).astype(np.int64)
        return quantiles, {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def profile(lf: pl.LazyFrame, schema: pl.Schema, batch_rows: int = 262_144) -> dict[str, Any]:
    """Profile a LazyFrame by streaming it through a :class:`Profiler`."""
    p = Profiler(schema)
    for batch in lf.collect_batches(chunk_size=batch_rows, engine="streaming"):
        p.update(batch)
    return p.result()


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The sorted distinct values of two sorted arrays of distinct values: what
    ``np.union1d`` returns, which NumPy 2 finds by hashing (0.38 ms for a sketch of 4,096
    and a batch's few candidates against 0.013 ms to merge them by sorting)."""
    import numpy as np

    merged = np.concatenate([a, b])
    merged.sort(kind="stable")
    return distinct_sorted(merged)


def counts_among(col: pl.Series, values: list[Any]) -> np.ndarray | None:
    """How often each of a few ``values`` comes in ``col``, one comparison pass apiece,
    which for a handful costs less than hashing every row; None when the counts miss
    some non-null row (a value not among them: the caller hashes instead). The profile
    and drift both count a category column's known values this way."""
    import numpy as np

    counts = np.array([(col == v).sum() for v in values], dtype=np.int64)
    return counts if int(counts.sum()) == col.len() - col.null_count() else None


def distinct_sorted(s: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array (drift counts a column's this way too)."""
    import numpy as np

    return s[np.r_[True, s[1:] != s[:-1]]] if s.size else s
