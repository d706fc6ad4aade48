"""Drift statistics for one column: the methods, their thresholds, and the default choice.

Every method takes the reference and current values of one column with nulls (and,
for numbers, NaN and +-inf) already removed, and returns its statistic and, for
hypothesis tests, a p-value. The formulas and the automatic choice follow Evidently's
(see docs/drift.md for the table) so that a user moving from it gets the same
verdicts; the statistics themselves are scipy's, so they are the textbook ones.

Plain numpy arrays go in: the engine (``drift.py``) does the columnar work of
loading, cleaning and counting with Polars; this module is the arithmetic.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from workbench.core.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

P_VALUE, DISTANCE = "p_value", "distance"
SMALL_REFERENCE_ROWS = 1000  # Evidently: <= 1000 reference rows use hypothesis tests
FEW_VALUES = 5  # numeric columns with at most this many values are treated as categories
BIN_BY_VALUE_MAX = 20  # numeric columns with more reference values are binned (Sturges)
WASSERSTEIN_BLOCK = 1 << 18
SHARED_STEPS = 1 << 19  # sizes up to this keep their quantile steps (<= 16 MB each, 4 kept)
BINCOUNT_MAX = 1 << 20
_T = TypeVar("_T")


@dataclass(frozen=True)
class Counts:
    """Value counts of one column on both sides over the union of their values."""

    keys: list[object]
    ref: np.ndarray
    cur: np.ndarray


@dataclass(frozen=True)
class Method:
    name: str
    title: str
    kind: str  # P_VALUE: drifted when p < threshold; DISTANCE: when statistic >= threshold
    threshold: float
    numeric_only: bool
    fn: Callable[[np.ndarray, np.ndarray, bool], tuple[float, float | None]]
    # Evidently's KS calls drift at p <= threshold, every other test at p < threshold.
    inclusive: bool = False

    def compute(
        self, ref: np.ndarray, cur: np.ndarray, numeric: bool
    ) -> tuple[float, float | None]:
        """The statistic and p-value, or a ValueError where the method has no answer.
        scipy returns NaN on some samples (Epps-Singleton on a handful of values, say),
        and a NaN compared with a threshold is quietly "no drift"."""
        import math

        stat, p = self.fn(ref, cur, numeric)
        if math.isnan(stat) or (p is not None and math.isnan(p)):
            raise ValueError("no answer on these values (too few, or too much alike)")
        return stat, p

    def drifted(self, statistic: float, p_value: float | None, threshold: float) -> bool:
        if self.kind == P_VALUE:
            assert p_value is not None
            return p_value <= threshold if self.inclusive else p_value < threshold
        return statistic >= threshold


def value_counts(ref: np.ndarray, cur: np.ndarray) -> Counts:
    """Counts per distinct value seen on either side, in one shared order."""
    import numpy as np

    if ref.dtype.kind in "iub" and cur.dtype.kind in "iub" and ref.size and cur.size:
        lo, hi = min(ref.min(), cur.min()), max(ref.max(), cur.max())
        if lo >= 0 and hi < BINCOUNT_MAX:
            # Category codes and small counts: counting directly is O(n) and needs no
            # sorted copy (np.unique below sorts both sides and keeps an inverse index).
            rc, cc = counts_of(ref, int(hi) + 1), counts_of(cur, int(hi) + 1)
            seen = (rc + cc) > 0
            return Counts(list(np.flatnonzero(seen)), rc[seen], cc[seen])
    keys, inverse = np.unique(np.concatenate([ref, cur]), return_inverse=True)
    n = len(keys)
    return Counts(
        list(keys),
        np.bincount(inverse[: len(ref)], minlength=n),
        np.bincount(inverse[len(ref) :], minlength=n),
    )


def counts_of(a: np.ndarray, n: int) -> np.ndarray:
    """``np.bincount(a, minlength=n)`` for non-negative integers below ``n``. A sorted
    run (category codes rebuilt from their counts, a sorted numeric column) is counted by
    ``n`` binary searches: a check of the order costs a ninth of a count's pass."""
    import numpy as np

    if a.size and n * 16 <= a.size and a[0] <= a[-1] and bool((a[1:] >= a[:-1]).all()):
        return np.diff(a.searchsorted(np.arange(n + 1)))
    return np.bincount(a, minlength=n)


def binned_shares(
    ref: np.ndarray, cur: np.ndarray, numeric: bool, fill_zeroes: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's binning for PSI, Jensen-Shannon, K-L and Hellinger.

    Numbers with more than 20 distinct reference values share Sturges bins over the
    combined range; anything else gets one bin per value. With ``fill_zeroes`` an empty
    bin becomes 0.0001 (or the smallest non-zero share / 1e6 when that is smaller), so
    that logarithms stay finite.
    """
    import numpy as np

    if numeric and len(np.unique(ref)) > BIN_BY_VALUE_MAX:
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        r = np.histogram(ref, edges)[0] / len(ref)
        c = np.histogram(cur, edges)[0] / len(cur)
    else:
        counts = value_counts(ref, cur)
        r = counts.ref / len(ref)
        c = counts.cur / len(cur)
    if fill_zeroes:
        for shares in (r, c):
            nonzero = shares[shares != 0]
            smallest = nonzero.min() if nonzero.size else 0.0001
            shares[shares == 0] = smallest / 1e6 if smallest <= 0.0001 else 0.0001
    return r, c


# ---- the methods ---------------------------------------------------------------------
def _ks(ref: np.ndarray, cur: np.ndarray, numeric: bool) -> tuple[float, float | None]:
    from scipy import stats

    res = stats.ks_2samp(ref, cur)
    return float(res.statistic), float(res.pvalue)


def wasserstein_distance(u: np.ndarray, v: np.ndarray) -> float:
    """1-D earth mover's distance, the integral of |F_u - F_v|: scipy's terms in numpy.

    The large-data defaults (this and Jensen-Shannon) need no scipy, so a drift report
    on big tables does not pay scipy.stats' import (most of a second) or its memory.
    A side that is already sorted is not sorted again (monitoring compares one sorted
    training column with window after window).
    """
    import numpy as np

    us = ascending(u).astype(np.float64, copy=False)
    vs = ascending(v).astype(np.float64, copy=False)
    n, m = us.size, vs.size
    if n < m:  # the distance is symmetric: u is the larger side below
        us, vs, n, m = vs, us, m, n
    if n == m:  # both quantile functions step at the same i/n: the mean gap between them
        gaps = us - vs
        return float(np.abs(gaps, out=gaps).sum()) / float(n)
    # The same integral over probability instead of values: the area between the two
    # quantile functions, which step at i/n and j/m. As n >= m, each of u's steps holds
    # at most one of v's strictly inside it: the integral is u's steps against the v
    # value each begins in, corrected where a v step splits one (see _splits).
    if n + m <= SHARED_STEPS:
        begins, at, j, right = _shared_steps(n, m)
        whole = float(m) * float(_abs_gap(us, vs[begins]).sum())
        split = _split_correction(us[at], vs[j], vs[j - 1], right)
        return (whole + split) / (float(n) * float(m))
    total = 0.0
    for lo in range(0, n, WASSERSTEIN_BLOCK):  # temporaries for one block at a time
        begins = _begins(n, m, lo, min(n, lo + WASSERSTEIN_BLOCK))
        total += float(m) * float(_abs_gap(us[lo : lo + begins.size], vs[begins]).sum())
    drop = math.gcd(n, m) > m // 4  # many of v's steps on u's boundaries
    for lo in range(1, m, WASSERSTEIN_BLOCK):
        hi = min(m, lo + WASSERSTEIN_BLOCK)
        at, j, right = _splits(n, m, lo, hi, drop)
        if drop:
            total += _split_correction(us[at], vs[j], vs[j - 1], right)
        else:  # every step of the block, in order: v's values are slices, not copies
            total += _split_correction(us[at], vs[lo:hi], vs[lo - 1 : hi - 1], right)
    return total / (float(n) * float(m))


def _begins(n: int, m: int, lo: int, hi: int) -> np.ndarray:
    """For u's steps lo..hi-1 (each 1/n wide, n >= m), the v value each begins in."""
    import numpy as np

    return (np.arange(lo, hi, dtype=np.int64) * m) // n


def _splits(
    n: int, m: int, lo: int, hi: int, drop: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """v's steps j (lo..hi-1, lo >= 1): the u step ``at`` each falls in, j, and the width
    from j to that step's end, all scaled by n*m (u's steps are m wide there and v's n
    apart). A v step on a boundary of u's (gcd(n, m) - 1 of them) splits nothing: with
    ``drop`` it is left out, otherwise kept with width 0, which is quicker when few are
    (a boolean selection of every array costs more than summing zeros)."""
    import numpy as np

    j = np.arange(lo, hi, dtype=np.int64)
    scaled = j * n
    at = scaled // m  # floor division by one number is vectorised; np.divmod is 5x slower
    into = np.subtract(scaled, at * m, out=scaled)
    if drop:
        inside = into != 0
        return at[inside], j[inside], np.subtract(m, into[inside], dtype=np.float64)
    right = np.subtract(m, into, dtype=np.float64)
    right[into == 0] = 0.0
    return at, j, right


def _split_correction(
    x: np.ndarray, after: np.ndarray, before: np.ndarray, right: np.ndarray
) -> float:
    """What the right part of each split step adds (times n*m): it was counted against
    the v value before the split (``before``) and lies against the next (``after``);
    ``x`` is the u value of each split step, a copy (it is written over)."""
    import numpy as np

    gain = np.subtract(x, after)
    np.abs(gain, out=gain)
    np.subtract(gain, _abs_gap(before, x), out=gain)
    # a weighted sum by multiply-and-add, not `@`: a dot product goes to OpenBLAS, whose
    # threads spin after each call and took ~0.9 CPU-s from a monitor report's drift
    # (its windows are tested two at a time), slowing it by a fifth
    return float(np.multiply(gain, right, out=gain).sum())


def _abs_gap(x: np.ndarray, gathered: np.ndarray) -> np.ndarray:
    """|x - gathered|, written over ``gathered`` (a copy made by indexing): a fresh array
    per operation is a fresh mapping to fault in, which cost more than the arithmetic."""
    import numpy as np

    np.subtract(x, gathered, out=gathered)
    return np.abs(gathered, out=gathered)


@functools.lru_cache(maxsize=4)
def _shared_steps(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The steps depend on the sizes alone: monitoring's windows of one size against
    one training column share them (read-only). Against the merge of both sides' steps
    this reads each u value once and v's split steps once (200k against 100k: 0.9 ms a
    column, where the merge took 2.3)."""
    out = (_begins(n, m, 0, n), *_splits(n, m, 1, m, drop=True))
    for a in out:
        a.flags.writeable = False
    return out


def ascending(a: np.ndarray) -> np.ndarray:
    """``a`` sorted; itself when it already is (checking costs a fraction of sorting)."""
    import numpy as np

    if a.size > 1 and not _measured(a, "sorted", lambda: bool(np.all(a[1:] >= a[:-1]))):
        return np.sort(a)
    return a


def jensenshannon_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance with natural logs, as scipy.spatial.distance computes it."""
    import numpy as np

    p, q = p / np.sum(p), q / np.sum(q)
    m = (p + q) / 2.0

    def rel_entr(x: np.ndarray) -> float:
        nz = x > 0
        return float(np.sum(x[nz] * np.log(x[nz] / m[nz])))

    return float(np.sqrt((rel_entr(p) + rel_entr(q)) / 2.0))


def _wasserstein(ref: np.ndarray, cur: np.ndarray, numeric: bool) -> tuple[float, float | None]:
    import numpy as np

    # Normed by the reference's spread so one threshold fits every column's unit.
    norm = max(_measured(ref, "std", lambda: float(np.std(ref))), 0.001)
    return wasserstein_distance(ref, cur) / norm, None


_MEASURED: dict[int, tuple[weakref.ref[np.ndarray], dict[str, object]]] = {}


def _measured(values: np.ndarray, what: str, measure: Callable[[], _T]) -> _T:
    """``measure()``, done once for a read-only array: a prepared reference column
    (columns.py), which monitoring compares with window after window (its std was an
    eighth of a window's drift). Read-only, so it cannot have changed since."""
    if values.flags.writeable:
        return measure()
    got = _MEASURED.get(id(values))
    if got is None or got[0]() is not values:
        if len(_MEASURED) >= 256:  # ids of arrays gone: start over rather than grow
            _MEASURED.clear()
        got = _MEASURED[id(values)] = (weakref.ref(values), {})
    if what not in got[1]:
        got[1][what] = measure()
    return got[1][what]  # type: ignore[return-value]


def _psi(ref: np.ndarray, cur: np.ndarray, numeric: bool) -> tuple[float, float | None]:
    import numpy as np

    r, c = binned_shares(ref, cur, numeric, fill_zeroes=True)
    return float(np.sum((r - c) * np.log(r / c))), None


def _jensenshannon(ref: np.ndarray, cur: np.ndarray, numeric: bool) -> tuple[float, float | None]:
    r, c = binned_shares(ref, cur, numeric, fill_zeroes=False)
    return jensenshannon_distance(r, c), None


def _kl_div(ref: np.ndarray, cur: np.ndarray, numeric: bool) -> tuple[float, float | None]:
    from scipy import stats

    r, c = binned_shares(ref, cur, numeric, fill_zeroes=True)
    return float(stats.entropy(r, c)), None


def _hellinger(ref: np.ndarray, cur: np.ndarray, numeric: bool) -> tuple[float, float | None]:
    import numpy as np

    r, c = binned_shares(ref, cur, numeric, fill_zeroes=False)
    r, c = r / r.sum(), c / c.sum()
    return float(np.sqrt(np.sum((np.sqrt(r) - np.sqrt(c)) ** 2)) / np.sqrt(2)), None


def _goodness_of_fit(ref: np.ndarray, cur: np.ndarray, lambda_: str) -> tuple[float, float | None]:
    """Current counts against the reference's shape scaled to the current's size; scipy's
    power divergence family: "pearson" is chi-square, "log-likelihood" the G-test."""
    from scipy import stats

    counts = value_counts(ref, cur)
    expected = counts.ref * (len(cur) / len(ref))
    if (expected == 0).any():
        # A value the reference never had: any count of it is infinitely unlikely.
        return float("inf"), 0.0
    if len(counts.keys) < 2:  # one value on both sides: no freedom, no drift (scipy: NaN)
        return 0.0, 1.0
    res = stats.power_divergence(counts.cur, expected, lambda_=lambda_)
    return float(res.statistic), float(res.pvalue)


def _chisquare(ref: np.ndarray, cur: np.ndarray, numeric: bool) -> tuple[float, float | None]:
    return _goodness_of_fit(ref, cur, "pearson")


def _g_test(ref: np.ndarray, cur: np.ndarray, numeric: bool) -> tuple[float, float | None]:
    return _goodness_of_fit(ref, cur, "log-likelihood")


def _z(ref: np.ndarray, cur: np.ndarray, numeric: bool) -> tuple[float, float | None]:
    """Two-proportion z-test on the share of one of (at most) two values."""
    import numpy as np
    from scipy import stats

    counts = value_counts(ref, cur)
    if len(counts.keys) > 2:
        raise UsageError(f"the z-test needs a column with at most 2 values, not {len(counts.keys)}")
    n1, n2 = len(ref), len(cur)
    p1, p2 = counts.ref[0] / n1, counts.cur[0] / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    if pooled in (0.0, 1.0):  # one value everywhere: identical distributions
        return 0.0, 1.0
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return float(z), float(2 * (1 - stats.norm.cdf(abs(z))))


def _fisher(ref: np.ndarray, cur: np.ndarray, numeric: bool) -> tuple[float, float | None]:
    from scipy import stats

    counts = value_counts(ref, cur)
    if len(counts.keys) > 2:
        raise UsageError(
            f"Fisher's exact test needs a column with at most 2 values, not {len(counts.keys)}"
        )
    if len(counts.keys) == 1:
        return 1.0, 1.0
    res = stats.fisher_exact([list(counts.ref), list(counts.cur)])
    return float(res.statistic), float(res.pvalue)


def _one_value(ref: np.ndarray, cur: np.ndarray) -> bool:
    """Both sides hold one and the same value: nothing can have moved. scipy's t-test
    says NaN there (which no threshold judges: it showed as "no" by accident),
    Anderson-Darling and Epps-Singleton raise, and Cramer-von Mises calls drift when the
    two sides differ in size."""
    return bool(ref.min() == ref.max() == cur.min() == cur.max())


def _anderson(ref: np.ndarray, cur: np.ndarray, numeric: bool) -> tuple[float, float | None]:
    import warnings

    from scipy import stats

    if _one_value(ref, cur):
        return 0.0, 1.0

    with warnings.catch_warnings():  # scipy warns when it caps the p-value to [0.001, 0.25]
        warnings.simplefilter("ignore")
        res = stats.anderson_ksamp([ref, cur])
    return float(res.statistic), float(res.pvalue)


def _cramer_von_mises(
    ref: np.ndarray, cur: np.ndarray, numeric: bool
) -> tuple[float, float | None]:
    from scipy import stats

    if _one_value(ref, cur):  # scipy ranks ties apart here: 5 vs 2 copies of 3.5 gave p=0
        return 0.0, 1.0
    res = stats.cramervonmises_2samp(ref, cur)
    return float(res.statistic), float(res.pvalue)


def _mann_whitney(ref: np.ndarray, cur: np.ndarray, numeric: bool) -> tuple[float, float | None]:
    from scipy import stats

    res = stats.mannwhitneyu(ref, cur, alternative="two-sided")
    return float(res.statistic), float(res.pvalue)


def _t_test(ref: np.ndarray, cur: np.ndarray, numeric: bool) -> tuple[float, float | None]:
    from scipy import stats

    if _one_value(ref, cur):
        return 0.0, 1.0

    res = stats.ttest_ind(ref, cur, equal_var=False)
    return float(res.statistic), float(res.pvalue)


def _energy(ref: np.ndarray, cur: np.ndarray, numeric: bool) -> tuple[float, float | None]:
    from scipy import stats

    return float(stats.energy_distance(ref, cur)), None


def _epps_singleton(ref: np.ndarray, cur: np.ndarray, numeric: bool) -> tuple[float, float | None]:
    from scipy import stats

    if _one_value(ref, cur):
        return 0.0, 1.0
    import warnings

    with warnings.catch_warnings():  # too few values: scipy warns and gives NaN (see compute)
        warnings.simplefilter("ignore")
        res = stats.epps_singleton_2samp(ref, cur)
    return float(res.statistic), float(res.pvalue)


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("ks", "Kolmogorov-Smirnov", P_VALUE, 0.05, True, _ks, inclusive=True),
        Method("wasserstein", "Wasserstein distance (normed)", DISTANCE, 0.1, True, _wasserstein),
        Method("psi", "Population Stability Index", DISTANCE, 0.1, False, _psi),
        Method("jensenshannon", "Jensen-Shannon distance", DISTANCE, 0.1, False, _jensenshannon),
        Method("kl_div", "Kullback-Leibler divergence", DISTANCE, 0.1, False, _kl_div),
        Method("hellinger", "Hellinger distance", DISTANCE, 0.1, False, _hellinger),
        Method("chisquare", "chi-square", P_VALUE, 0.05, False, _chisquare),
        Method("g_test", "G-test (log-likelihood ratio)", P_VALUE, 0.05, False, _g_test),
        Method("z", "two-proportion z-test", P_VALUE, 0.05, False, _z),
        Method("fisher_exact", "Fisher's exact test", P_VALUE, 0.05, False, _fisher),
        Method("anderson", "Anderson-Darling (k-sample)", P_VALUE, 0.05, True, _anderson),
        Method("cramer_von_mises", "Cramer-von Mises", P_VALUE, 0.05, True, _cramer_von_mises),
        Method("mannw", "Mann-Whitney U", P_VALUE, 0.05, True, _mann_whitney),
        Method("t_test", "Welch's t-test", P_VALUE, 0.05, True, _t_test),
        Method("energy_distance", "energy distance", DISTANCE, 0.1, True, _energy),
        Method("epps_singleton", "Epps-Singleton", P_VALUE, 0.05, True, _epps_singleton),
    )
}


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise UsageError(
            f"unknown drift method {name!r}: choose one of {', '.join(METHODS)}"
        ) from None


def default_method(
    numeric: bool, ref_rows: int, n_unique: int, counted: str = "distinct"
) -> tuple[str, str]:
    """Evidently's automatic choice, and the rule that fired (shown to the user).

    ``ref_rows`` counts the reference's non-null values; ``n_unique`` the distinct
    values of reference and current together, or of the reference alone when that
    already decides (``counted`` then says so).
    """
    small = ref_rows <= SMALL_REFERENCE_ROWS
    size = f"{ref_rows:,} ref values {'<=' if small else '>'} {SMALL_REFERENCE_ROWS}"
    if numeric and n_unique > FEW_VALUES:
        why = f"numeric, {n_unique:,} {counted} > {FEW_VALUES}; {size}"
        return ("ks" if small else "wasserstein"), why
    what = (
        f"numeric, {n_unique} distinct <= {FEW_VALUES}"
        if numeric
        else f"categorical, {n_unique:,} distinct"
    )
    if not small:
        return "jensenshannon", f"{what}; {size}"
    if n_unique <= 2:
        return "z", f"{what} (binary); {size}"
    return "chisquare", f"{what}; {size}"
