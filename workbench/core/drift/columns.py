"""One column's drift: which method tests it (and why), cleaning each side, the plot data
both screens draw, and the report types (``ColumnDrift``, ``DriftReport``, ``Options``).

Pure computation over two ``Table`` sides; storing and listing reports is
``analysis.Drift``'s.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from workbench.core.data.profile import counts_among, distinct_sorted, kind_of
from workbench.core.drift.stattests import FEW_VALUES, counts_of, default_method, get_method
from workbench.core.errors import UsageError
from workbench.core.host import numpy_sort_slow
from workbench.core.text import clip, known_hint

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from workbench.core.data.sources import Table

DRIFT_SHARE = 0.5
PLOT_BINS = 20
PLOT_CATEGORIES = 12
FEW_EXPECTED = 8  # reference values counted by comparison rather than hashing (_value_counts)
ID_LIKE_MIN_VALUES = 1000  # a text column with more distinct values, and > half its rows…
ID_LIKE_SHARE = 0.5  # …distinct, is an identifier or free text: skipped unless asked for
TESTED, SKIPPED, MISSING, FAILED = "tested", "skipped", "missing", "failed"


@dataclass
class ColumnDrift:
    """One column's finding. ``drifted`` is None when the column was not tested."""

    column: str
    kind: str
    status: str
    reason: str
    method: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    threshold: float | None = None
    drifted: bool | None = None
    ref_dtype: str | None = None
    cur_dtype: str | None = None
    ref_count: int = 0
    cur_count: int = 0
    ref_null_share: float | None = None
    cur_null_share: float | None = None
    notes: list[str] = field(default_factory=list)
    plot: dict[str, Any] | None = None

    @property
    def severity(self) -> float | None:
        """How far past its threshold a column is (1 = at it), so that columns tested by
        p-value and by distance sort together: threshold / p, or distance / threshold."""
        if self.status != TESTED or self.threshold is None:
            return None
        if self.method == "nulls":
            return float("inf")
        if self.p_value is not None:
            return self.threshold / max(self.p_value, 1e-300)
        return (self.statistic or 0.0) / self.threshold


@dataclass
class DriftReport:
    id: str
    created_at: Any
    reference: str
    current: str
    drift_share: float
    columns: list[ColumnDrift]
    options: dict[str, Any]
    series_id: str | None = None
    reference_id: str | None = None  # the dataset versions' content hashes (None for a file)
    current_id: str | None = None

    @property
    def tested(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.status == TESTED]

    @property
    def n_drifted(self) -> int:
        return sum(1 for c in self.tested if c.drifted)

    @property
    def share(self) -> float:
        return self.n_drifted / len(self.tested) if self.tested else 0.0

    @property
    def drifted(self) -> bool:
        return bool(self.tested) and self.share >= self.drift_share

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == name:
                return c
        raise UsageError(
            f"no column {name!r} in this report"
            + known_hint(name, [c.column for c in self.columns])
        )

    def to_dict(self, plots: bool = False) -> dict[str, Any]:
        cols = []
        for c in self.columns:
            d = asdict(c)
            if not plots:
                d.pop("plot")
            cols.append(d)
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(timespec="seconds") + "Z",
            "reference": self.reference,
            "current": self.current,
            "drift_share": self.drift_share,
            "n_tested": len(self.tested),
            "n_drifted": self.n_drifted,
            "share": self.share,
            "drifted": self.drifted,
            "options": self.options,
            "series_id": self.series_id,
            "columns": cols,
        }


def _sorted_values(s: pl.Series) -> np.ndarray:
    """Non-null values as numbers, ascending; integers stay integers (exact, and
    countable fast). Sorted here, once, because every default method compares
    distributions (order is not data); the sorts are most of a big report."""
    import polars as pl

    if s.dtype.is_temporal():
        s = s.dt.epoch("us") if s.dtype != pl.Date else s.cast(pl.Int32)
    if s.dtype.is_integer() or s.dtype == pl.Boolean:
        exact = s.cast(pl.Int64, strict=False)
        if exact.null_count() == s.null_count():
            return _ascending(exact.drop_nulls())
        # wider than 64 bits (an Int128 or UInt64 column with huge values): compare as floats
    # NaN sorts last and infinities next to the ends, so the sorted values are trimmed
    # by two binary searches instead of a pass over every value before sorting
    v = _ascending(s.cast(pl.Float64).drop_nulls())
    if v.size and not (math.isfinite(v[0]) and math.isfinite(v[-1])):
        v = v[v.searchsorted(-math.inf, "right") : v.searchsorted(math.inf, "left")]
    return v


def _prepared_values(s: pl.Series) -> tuple[np.ndarray, int, np.ndarray | None, bool]:
    return _prepared(_sorted_values(s))


def _ascending(s: pl.Series) -> np.ndarray:
    """``s``'s values sorted by NumPy, which since 2.0 sorts with x86-simd-sort: on a
    2-core AVX-512 host (not a Zen 4) five times Polars' single-threaded sort (100k
    doubles 0.5 ms against 3.1; 1M 6.6 against 34; integers twice as fast). On Zen 4
    its AVX-512 path is four times slower than its AVX2 one, which the command picks
    there (``core/host.py``); in a process that imported NumPy first, Polars sorts
    instead (1M doubles there: 17 ms against NumPy's 53; 100k 1.6 against 3.9). A
    column Polars flags as sorted (a reference sorted once for all of a report's
    windows) is only checked, never trusting the flag alone."""
    if s.flags.get("SORTED_ASC"):
        values = s.to_numpy()
        if values.size < 2 or bool((values[1:] >= values[:-1]).all()):
            return values
    if numpy_sort_slow():  # NaN last, as NumPy puts it
        return s.sort().to_numpy()
    # One copy, sorted in place: a column read from several chunks is copied by
    # to_numpy already, and np.sort would copy it again.
    values = s.to_numpy(writable=True)
    values.sort()
    return values


def _category_codes(
    r: pl.Series, c: pl.Series, ref: Table, name: str
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Integer codes over the union of both sides' values (in sorted order), each side's
    codes ascending. Every method compares distributions (order is not data), so a side
    is its value counts: one hash pass, then a sorted run of codes rebuilt from them,
    where mapping each row to its code costs several passes. The reference's counts are
    made once per table (monitoring's windows compare one training column again and
    again)."""
    import numpy as np

    r_keys, r_counts = ref.derived(("categories", name), lambda: _value_counts(r))
    c_keys, c_counts = _value_counts(c, r_keys)
    known = set(r_keys)
    keys = r_keys if known.issuperset(c_keys) else sorted(known.union(c_keys))
    at = {k: i for i, k in enumerate(keys)}

    def codes(ks: list[str], counts: np.ndarray) -> np.ndarray:
        return np.repeat(np.array([at[k] for k in ks], dtype=np.int64), counts)

    return codes(r_keys, r_counts), codes(c_keys, c_counts), keys


def _value_counts(s: pl.Series, expected: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    """A column's non-null values as text, sorted, with their counts.

    ``expected`` (sorted), the reference's values when they are few, are counted with a
    comparison pass each (4 values in 100k rows: 0.3 ms, where hashing every row took
    1.1): a window holds the training set's categories. A value not among them shows
    in the total, and then every row is hashed as usual."""
    import numpy as np
    import polars as pl

    if expected is not None and len(expected) <= FEW_EXPECTED:
        counts = counts_among(s.cast(pl.String), expected)
        if counts is not None:
            seen = counts > 0
            keys = [k for k, n in zip(expected, seen, strict=True) if n]
            return keys, counts[seen].astype(np.uint32)
    # group_by rather than Series.value_counts: the same counts in half the time (1M
    # short strings: 5.7 against 11.4 ms)
    vc = s.cast(pl.String).drop_nulls().to_frame("v").group_by("v").len("n").sort("v")
    return vc.get_column("v").to_list(), vc.get_column("n").to_numpy()


def _count_distinct(ru: np.ndarray, c: np.ndarray) -> int:
    """Distinct values of both sides (``ru`` the reference's, distinct and sorted), by
    sorting (a hash set of two million floats costs several times the memory of one
    sorted copy). A side already sorted (compare_column sorts numbers once) is not
    sorted again."""
    import numpy as np

    from workbench.core.drift.stattests import ascending

    cu = distinct_sorted(ascending(c))
    if not ru.size or not cu.size:
        return int(ru.size + cu.size)
    # the union's size: both, less those of the current side the reference holds
    at = np.minimum(ru.searchsorted(cu), ru.size - 1)
    return int(ru.size + cu.size - np.count_nonzero(ru[at] == cu))


def _prepared(rv: np.ndarray) -> tuple[np.ndarray, int, np.ndarray | None, bool]:
    """A sorted reference column, how many distinct values it holds, those values when
    they are few (the only case that looks at them: gathering a million distinct floats
    costs twice counting them), and whether all are whole."""
    import numpy as np

    n = int(np.count_nonzero(rv[1:] != rv[:-1])) + 1 if rv.size else 0
    rv.flags.writeable = False  # shared by every window; the statistics may keep its std
    return rv, n, distinct_sorted(rv) if n <= FEW_VALUES else None, _whole(rv) if rv.size else True


def _whole(sorted_values: np.ndarray) -> bool:
    """Whether every value is a whole number (finite, as _sorted_values leaves them)."""
    import numpy as np

    a = sorted_values
    if a.dtype.kind in "iub":
        return True
    # A thousand values spread over the column answer "no" for most measurements
    # without a pass over all of them; only a "yes" needs every value.
    sample = a[:: max(1, a.size // 1000)]
    if not (sample == np.floor(sample)).all():
        return False
    return bool((a == np.floor(a)).all())


def _hist_plot(r: np.ndarray, c: np.ndarray, r_whole: bool) -> dict[str, Any] | None:
    """Both sides' histogram on shared bins; ``r`` and ``c`` sorted and finite."""
    import numpy as np

    if not r.size and not c.size:
        return None
    ends = [x for x in (r, c) if x.size]
    lo, hi = float(min(x[0] for x in ends)), float(max(x[-1] for x in ends))
    whole = hi - lo < 1e12 and r_whole and (not c.size or _whole(c))
    if whole:
        # Whole numbers (months, counts, years) get whole-number bins, each starting on
        # an integer, so no bin straddles a value and each is labelled by its first value.
        width = max(1, -(-int(hi - lo + 1) // PLOT_BINS))
        edges = lo - 0.5 + width * np.arange(-(-int(hi - lo + 1) // width) + 1)
    else:
        if hi <= lo:
            hi = lo + 1.0
        edges = np.linspace(lo, hi, PLOT_BINS + 1)
    rs = _counts(r, edges) / max(r.size, 1)
    cs = _counts(c, edges) / max(c.size, 1)
    plot = {"type": "histogram", "edges": edges.tolist(), "ref": rs.tolist(), "cur": cs.tolist()}
    if whole:
        plot["whole"] = True
    return plot


def _counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``np.histogram(values, edges)[0]`` (bins closed on the left, the last on both
    sides) for sorted values (compare_column sorts every numeric column, and checking
    again would cost a pass), by binary search: np.histogram sorts them again, in blocks."""
    import numpy as np

    at = values.searchsorted(edges, "left")
    at[-1] = values.searchsorted(edges[-1], "right")
    return np.diff(at)


def _bar_plot(rc: np.ndarray, cc: np.ndarray, keys: list[str]) -> dict[str, Any]:
    import numpy as np

    n = len(keys)
    rs = counts_of(rc, n) / max(rc.size, 1)
    cs = counts_of(cc, n) / max(cc.size, 1)
    order = np.argsort(-(rs + cs), kind="stable")
    top, rest = order[:PLOT_CATEGORIES], order[PLOT_CATEGORIES:]
    labels = [clip(keys[i], 60) for i in top]
    ref, cur = rs[top].tolist(), cs[top].tolist()
    if rest.size:
        labels.append(f"({rest.size} others)")
        ref.append(float(rs[rest].sum()))
        cur.append(float(cs[rest].sum()))
    return {"type": "bars", "labels": labels, "ref": ref, "cur": cur}


@dataclass
class Options:
    columns: list[str] | None = None
    method: str | None = None  # every column where it applies
    num_method: str | None = None
    cat_method: str | None = None
    column_methods: dict[str, str] = field(default_factory=dict)  # column -> method[:threshold]
    threshold: float | None = None
    drift_share: float = DRIFT_SHARE

    def check(self) -> None:
        for m in (self.method, self.num_method, self.cat_method):
            if m is not None:
                get_method(m)
        for col, spec in self.column_methods.items():
            name, _, thr = spec.partition(":")
            get_method(name)
            if thr:
                _threshold(thr, f"threshold for column {col!r}")
        if self.threshold is not None and not (0 < self.threshold < float("inf")):
            raise UsageError("--threshold must be a positive number")
        if not 0 < self.drift_share <= 1:
            raise UsageError("--drift-share must be in (0, 1]")


def _threshold(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise UsageError(f"invalid {what} {text!r}: give a positive number")
    return value


def _choose(
    opts: Options, name: str, numeric: bool, n_ref: int, n_unique: int, counted: str
) -> tuple[str, str, float | None]:
    """The method for one column, why, and an explicit threshold if one was given."""
    explicit = opts.column_methods.get(name)
    if explicit:
        method, _, thr = explicit.partition(":")
        if get_method(method).numeric_only and not numeric:
            raise UsageError(f"{method} applies to numeric columns only, and {name!r} is not")
        return method, "chosen for this column", float(thr) if thr else None
    for m, why in (
        (opts.num_method if numeric else opts.cat_method, "chosen for this column type"),
        (opts.method, "chosen for all columns"),
    ):
        if m and (numeric or not get_method(m).numeric_only):
            return m, why, None
    method, why = default_method(numeric, n_ref, n_unique, counted)
    if opts.method and not numeric:
        why = f"{opts.method} needs numbers, so the default: {why}"
    return method, f"default: {why}", None


def schema_finding(name: str, ref: Table, cur: Table, explicit: bool) -> tuple[ColumnDrift, bool]:
    """What the two schemas alone say of a column, and whether its values are to be
    compared (read): a column on one side only, of a type not compared, or a date not
    named, is a finding without them."""
    in_ref, in_cur = name in ref.schema, name in cur.schema
    if not (in_ref and in_cur):
        side = cur.label if in_ref else ref.label
        dtype = ref.schema[name] if in_ref else cur.schema[name]
        missing = ColumnDrift(
            name,
            kind_of(dtype),
            MISSING,
            f"not in {side}",
            ref_dtype=str(ref.schema[name]) if in_ref else None,
            cur_dtype=str(cur.schema[name]) if in_cur else None,
        )
        return missing, False
    rdt, cdt = ref.schema[name], cur.schema[name]
    rk, ck = kind_of(rdt), kind_of(cdt)
    out = ColumnDrift(name, rk, SKIPPED, "", ref_dtype=str(rdt), cur_dtype=str(cdt))
    if rdt != cdt:
        out.notes.append(f"type changed: {rdt} → {cdt}")
    kinds = {rk, ck}
    if "other" in kinds:
        out.reason = f"type {rdt if rk == 'other' else cdt} is not compared"
        return out, False
    if "datetime" in kinds and not explicit:
        out.reason = "dates and times drift by construction; name the column to compare it"
        return out, False
    return out, True


def prepare(ref: Table, names: list[str]) -> None:
    """Derive now what ``compare_column`` derives from these reference columns on first
    use (numbers sorted, or text counted), for a reference compared again and again:
    monitoring's first two windows, tested at once, each derived every column, twice
    the work, in the first round of windows."""
    for name in names:
        kind = kind_of(ref.schema[name]) if name in ref.schema else "other"
        column = ref.column(name) if kind != "other" else None
        if column is not None and kind == "categorical":
            ref.derived(("categories", name), partial(_value_counts, column))
        elif column is not None:
            ref.derived(("numeric", name), partial(_prepared_values, column))


def compare_column(name: str, ref: Table, cur: Table, opts: Options, explicit: bool) -> ColumnDrift:
    """One column's drift; every schema oddity becomes a finding, never an exception."""
    out, compared = schema_finding(name, ref, cur, explicit)
    if not compared:
        return out
    kinds = {kind_of(ref.schema[name]), kind_of(cur.schema[name])}
    r, c = ref.column(name), cur.column(name)
    out.ref_null_share = r.null_count() / len(r) if len(r) else None
    out.cur_null_share = c.null_count() / len(c) if len(c) else None
    numeric = kinds <= {"numeric", "boolean", "datetime"}
    if not numeric and kinds != {"categorical"}:
        out.notes.append("compared as text because the types differ")
    out.kind = "numeric" if numeric else "categorical"
    if numeric:
        # sorted once here: counting distinct values and the default methods then need
        # no sort of their own; a reference compared again (monitoring's windows) is
        # prepared once
        rv, n_ref_distinct, r_distinct, r_whole = ref.derived(
            ("numeric", name), lambda: _prepared_values(r)
        )
        cv = _sorted_values(c)
        keys: list[str] = []
    else:
        rv, cv, keys = _category_codes(r, c, ref, name)
    out.ref_count, out.cur_count = int(rv.size), int(cv.size)
    if not rv.size or not cv.size:
        if rv.size or cv.size:
            empty = ref.label if not rv.size else cur.label
            out.status, out.drifted, out.method = TESTED, True, "nulls"
            out.reason = f"no values in {empty}: every value is null (or NaN/inf)"
        else:
            out.reason = "no values on either side"
        return out
    counted = "distinct"
    if numeric:
        # The choice asks only whether more than FEW_VALUES are distinct: a reference
        # that has more decides it without counting the union (a merge of two sorted
        # millions costs a third of a column's test).
        if r_distinct is None:
            n_unique, counted = n_ref_distinct, "distinct in ref"
        else:
            n_unique = _count_distinct(r_distinct, cv)
    else:  # codes already number the union of values: count, don't hash
        import numpy as np

        n_unique = len(keys)
        n_ref_unique = int(np.count_nonzero(counts_of(rv, n_unique)))
        unseen = n_unique - n_ref_unique
        if unseen:
            new = np.setdiff1d(cv, rv).tolist()
            share = float(np.isin(cv, new).mean())
            shown = ", ".join(repr(clip(keys[k])) for k in new[:5]) + (" …" if len(new) > 5 else "")
            out.notes.append(
                f"{unseen} value(s) never seen in {ref.label} ({share:.1%} of rows): {shown}"
            )
        if (
            not explicit
            and n_ref_unique > ID_LIKE_MIN_VALUES
            and n_ref_unique > ID_LIKE_SHARE * rv.size
        ):
            out.reason = (
                f"looks like an identifier or free text ({n_ref_unique:,} distinct values in "
                f"{rv.size:,} rows); name the column to compare it"
            )
            out.plot = _bar_plot(rv, cv, keys)
            return out
    if rv[0] == rv[-1]:  # both sides are sorted (numbers, and codes alike)
        out.notes.append(f"constant in {ref.label}")
    method_name, why, thr = _choose(opts, name, numeric, int(rv.size), n_unique, counted)
    method = get_method(method_name)
    threshold = thr if thr is not None else opts.threshold or method.threshold
    out.method, out.reason, out.threshold = method_name, why, threshold
    try:
        stat, p = method.compute(rv, cv, numeric)
    except UsageError as exc:
        out.status, out.reason = FAILED, exc.message
        return out
    except (ValueError, FloatingPointError) as exc:
        out.status, out.reason = FAILED, f"{method.title} could not be computed: {exc}"
        return out
    out.status, out.statistic, out.p_value = TESTED, stat, p
    out.drifted = method.drifted(stat, p, threshold)
    out.plot = _hist_plot(rv, cv, r_whole) if numeric else _bar_plot(rv, cv, keys)
    return out
