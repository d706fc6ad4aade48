"""Every drift statistic equals its reference implementation to 1e-9.

The references are written here independently: scipy called directly, and the binning
of PSI / Jensen-Shannon / K-L spelled out from Evidently's documented formula
(../shared/DRIFT.md), so a change in our binning or a wrong argument order fails.
"""

from __future__ import annotations

import math
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial import distance

from workbench.app.drift_report import SIZE_CLAUSE
from workbench.core.drift import stattests
from workbench.core.drift.stattests import (
    METHODS,
    default_method,
    get_method,
    wasserstein_distance,
)
from workbench.core.errors import UsageError

TOL = 1e-9


def close(a: float | None, b: float) -> bool:
    assert a is not None
    if math.isinf(b) or math.isnan(b):
        return a == b or (math.isnan(a) and math.isnan(b))
    return abs(a - b) <= TOL * max(1.0, abs(b))


def evidently_shares(ref: np.ndarray, cur: np.ndarray, numeric: bool, fill: bool):
    """DRIFT.md: Sturges bins over both sides when the reference has > 20 values."""
    if numeric and len(set(ref.tolist())) > 20:
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        r = np.histogram(ref, edges)[0] / len(ref)
        c = np.histogram(cur, edges)[0] / len(cur)
    else:
        keys = sorted(set(ref.tolist()) | set(cur.tolist()))
        r = np.array([np.sum(ref == k) for k in keys]) / len(ref)
        c = np.array([np.sum(cur == k) for k in keys]) / len(cur)
    if fill:
        for arr in (r, c):
            m = min(arr[arr != 0])
            arr[arr == 0] = m / 1e6 if m <= 0.0001 else 0.0001
    return r, c


def counts(ref: np.ndarray, cur: np.ndarray):
    keys = sorted(set(ref.tolist()) | set(cur.tolist()))
    return (
        np.array([np.sum(ref == k) for k in keys], dtype=float),
        np.array([np.sum(cur == k) for k in keys], dtype=float),
    )


def reference(
    name: str, ref: np.ndarray, cur: np.ndarray, numeric: bool
) -> tuple[float, float | None]:
    if name == "ks":
        res = stats.ks_2samp(ref, cur)
        return res.statistic, res.pvalue
    if name == "wasserstein":
        return stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001), None
    if name == "psi":
        r, c = evidently_shares(ref, cur, numeric, fill=True)
        return float(np.sum((r - c) * np.log(r / c))), None
    if name == "jensenshannon":
        r, c = evidently_shares(ref, cur, numeric, fill=False)
        return distance.jensenshannon(r, c), None
    if name == "kl_div":
        r, c = evidently_shares(ref, cur, numeric, fill=True)
        return stats.entropy(r, c), None
    if name == "hellinger":
        r, c = evidently_shares(ref, cur, numeric, fill=False)
        return math.sqrt(0.5 * np.sum((np.sqrt(r / r.sum()) - np.sqrt(c / c.sum())) ** 2)), None
    if name in ("chisquare", "g_test"):
        rc, cc = counts(ref, cur)
        exp = rc * len(cur) / len(ref)
        lam = "pearson" if name == "chisquare" else "log-likelihood"
        res = stats.power_divergence(cc, exp, lambda_=lam)
        return res.statistic, res.pvalue
    if name == "z":
        rc, cc = counts(ref, cur)
        p1, p2 = rc[0] / len(ref), cc[0] / len(cur)
        p = (rc[0] + cc[0]) / (len(ref) + len(cur))
        z = (p1 - p2) / math.sqrt(p * (1 - p) * (1 / len(ref) + 1 / len(cur)))
        return z, 2 * stats.norm.sf(abs(z))
    if name == "fisher_exact":
        rc, cc = counts(ref, cur)
        res = stats.fisher_exact([rc.astype(int).tolist(), cc.astype(int).tolist()])
        return res.statistic, res.pvalue
    if name == "anderson":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.anderson_ksamp([ref, cur])
        return res.statistic, res.pvalue
    if name == "cramer_von_mises":
        res = stats.cramervonmises_2samp(ref, cur)
        return res.statistic, res.pvalue
    if name == "mannw":
        res = stats.mannwhitneyu(ref, cur, alternative="two-sided")
        return res.statistic, res.pvalue
    if name == "t_test":
        res = stats.ttest_ind(ref, cur, equal_var=False)
        return res.statistic, res.pvalue
    if name == "energy_distance":
        return stats.energy_distance(ref, cur), None
    if name == "epps_singleton":
        res = stats.epps_singleton_2samp(ref, cur)
        return res.statistic, res.pvalue
    raise AssertionError(name)


NUMERIC = [m for m in METHODS if m not in ("z", "fisher_exact")]
BINARY = ["z", "fisher_exact", "chisquare", "g_test", "psi", "jensenshannon", "kl_div", "hellinger"]


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_numeric_methods_equal_their_reference(name: str, shift: float) -> None:
    rng = np.random.default_rng(7)
    ref = rng.normal(0, 1, 800)
    cur = rng.normal(shift, 1.2, 600)
    if name in ("chisquare", "g_test"):  # counts: use a column with few values
        ref, cur = np.round(ref).clip(-2, 2), np.round(cur).clip(-2, 2)
    stat, p = get_method(name).fn(ref, cur, True)
    want_stat, want_p = reference(name, ref, cur, True)
    assert close(stat, want_stat), (stat, want_stat)
    if want_p is None:
        assert p is None
    else:
        assert close(p, want_p), (p, want_p)


@pytest.mark.parametrize("name", BINARY)
def test_binary_and_category_methods_equal_their_reference(name: str) -> None:
    rng = np.random.default_rng(3)
    ref = rng.choice([0, 1], 500, p=[0.7, 0.3])
    cur = rng.choice([0, 1], 400, p=[0.6, 0.4])
    stat, p = get_method(name).fn(ref, cur, False)
    want_stat, want_p = reference(name, ref, cur, False)
    assert close(stat, want_stat)
    assert (p is None) == (want_p is None)
    if want_p is not None:
        assert close(p, want_p)


def test_a_shift_is_detected_and_identical_samples_are_not() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, 5000)
    same = ref.copy()
    moved = ref + 1.0
    for name in ("ks", "wasserstein", "psi", "jensenshannon", "anderson", "mannw", "t_test"):
        m = get_method(name)
        threshold = m.threshold
        assert not m.drifted(*m.fn(ref, same, True), threshold), name
        assert m.drifted(*m.fn(ref, moved, True), threshold), name


def test_category_never_seen_in_reference_is_certain_drift_for_count_tests() -> None:
    ref = np.array([0, 0, 1, 1, 1])
    cur = np.array([0, 1, 2, 2])
    for name in ("chisquare", "g_test"):
        stat, p = get_method(name).fn(ref, cur, False)
        assert stat == math.inf and p == 0.0


def test_z_test_on_one_shared_value_is_no_drift_and_refuses_three_values() -> None:
    assert get_method("z").fn(np.array([1, 1]), np.array([1, 1, 1]), False) == (0.0, 1.0)
    with pytest.raises(UsageError, match="at most 2 values"):
        get_method("z").fn(np.array([0, 1, 2]), np.array([0, 1]), False)


def test_unknown_method_lists_the_known_ones() -> None:
    with pytest.raises(UsageError, match=r"unknown drift method 'kss'.*ks, wasserstein"):
        get_method("kss")


@pytest.mark.parametrize(
    ("numeric", "rows", "n_unique", "method"),
    [
        (True, 1000, 6, "ks"),
        (True, 1000, 5, "chisquare"),
        (True, 1000, 3, "chisquare"),
        (True, 1000, 2, "z"),
        (False, 1000, 3, "chisquare"),
        (False, 1000, 2, "z"),
        (True, 1001, 6, "wasserstein"),
        (True, 1001, 5, "jensenshannon"),
        (False, 1001, 2, "jensenshannon"),
        (False, 50_000, 400, "jensenshannon"),
    ],
)
def test_default_choice_follows_evidentlys_table(
    numeric: bool, rows: int, n_unique: int, method: str
) -> None:
    chosen, why = default_method(numeric, rows, n_unique)
    assert chosen == method
    assert f"{rows:,} ref values" in why and f"{n_unique}" in why
    # the clause a report's table says once for all its columns (app/drift_report.py)
    side = SIZE_CLAUSE.search(why)
    assert side is not None and side.group(1) == ("<=" if rows <= 1000 else ">")
    assert f"{rows:,} ref values" not in SIZE_CLAUSE.sub("", why)


floats = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    ref=st.lists(floats, min_size=2, max_size=200),
    cur=st.lists(floats, min_size=2, max_size=200),
    name=st.sampled_from(["ks", "wasserstein", "psi", "jensenshannon", "kl_div", "hellinger"]),
)
def test_numeric_statistics_match_on_random_samples(
    ref: list[float], cur: list[float], name: str
) -> None:
    r, c = np.array(ref), np.array(cur)
    stat, p = get_method(name).fn(r, c, True)
    want_stat, want_p = reference(name, r, c, True)
    assert close(stat, want_stat), (stat, want_stat)
    if want_p is not None:
        assert close(p, want_p)


@settings(max_examples=60, deadline=None)
@given(pairs=st.lists(st.tuples(floats, floats), min_size=1, max_size=200))
def test_wasserstein_of_equal_sizes_matches_scipy(pairs: list[tuple[float, float]]) -> None:
    """Equal sizes take the mean gap between the sorted sides, not the general merge."""
    r, c = (np.array(side) for side in zip(*pairs, strict=True))
    assert close(wasserstein_distance(r, c), stats.wasserstein_distance(r, c))


@settings(max_examples=60, deadline=None)
@given(
    ref=st.lists(floats, min_size=1, max_size=120),
    cur=st.lists(floats, min_size=1, max_size=120),
    block=st.integers(1, 40),
)
def test_wasserstein_in_blocks_matches_scipy(
    ref: list[float], cur: list[float], block: int
) -> None:
    """Big sides are summed a block of steps at a time (and small ones keep their steps):
    both ways give scipy's distance, whichever side is the larger and however the
    blocks fall."""
    r, c = np.array(ref), np.array(cur)
    want = stats.wasserstein_distance(r, c)
    assert close(wasserstein_distance(r, c), want)
    with (
        patch.object(stattests, "SHARED_STEPS", 0),
        patch.object(stattests, "WASSERSTEIN_BLOCK", block),
    ):
        assert close(wasserstein_distance(r, c), want)


@pytest.mark.parametrize(("n", "m"), [(110, 100), (120, 60), (97, 89), (60, 120), (1000, 999)])
def test_wasserstein_where_steps_meet_matches_scipy(n: int, m: int) -> None:
    """Sizes whose steps meet (gcd 10 of 110 and 100: a few, summed with weight 0; gcd
    60 of 120 and 60: every other, left out), never meet (coprime), either side larger."""
    rng = np.random.default_rng(n * m)
    r, c = rng.normal(0, 1, n), rng.normal(0.3, 2, m)
    want = stats.wasserstein_distance(r, c)
    for block in (7, 1 << 18):
        with (
            patch.object(stattests, "SHARED_STEPS", 0),
            patch.object(stattests, "WASSERSTEIN_BLOCK", block),
        ):
            assert close(wasserstein_distance(r, c), want)
    assert close(wasserstein_distance(r, c), want)


def test_a_reference_spread_is_measured_once_and_only_when_it_cannot_change() -> None:
    """Monitoring normalises each window's distance by the same reference column's
    spread: a read-only reference is measured once; one that can be written is measured
    every time, so a changed array never gets an old answer."""
    ref = np.sort(np.random.default_rng(1).normal(5, 2, 5000))
    cur = ref + 0.5
    method = get_method("wasserstein")
    before = method.fn(ref, cur, True)[0]
    ref *= 2  # writeable: measured again
    assert close(method.fn(ref, cur * 2, True)[0], before)
    ref.flags.writeable = False
    with patch.object(np, "std", side_effect=np.std) as std:
        first = method.fn(ref, cur * 2, True)[0]
        again = method.fn(ref, cur * 2, True)[0]
    assert first == again and close(first, before) and std.call_count == 1


def test_a_read_only_side_is_checked_for_order_once() -> None:
    """Whether a side is sorted is checked once for a read-only array (the prepared
    reference of every window) and every time for one that can be written; an unsorted
    read-only side is sorted (a copy) each time, never taken as sorted."""
    from workbench.core.drift.stattests import ascending

    ordered = np.sort(np.random.default_rng(3).normal(size=1000))
    shuffled = ordered[::-1].copy()
    ordered.flags.writeable = shuffled.flags.writeable = False
    writable = ordered.copy()
    with patch.object(np, "all", side_effect=np.all) as checks:
        assert ascending(ordered) is ordered and ascending(ordered) is ordered
        assert checks.call_count == 1
        assert ascending(writable) is writable and ascending(writable) is writable
        assert checks.call_count == 3
        for _ in range(2):
            got = ascending(shuffled)
            assert got is not shuffled and np.array_equal(got, ordered)


@settings(max_examples=60, deadline=None)
@given(
    ref=st.lists(st.integers(0, 6), min_size=1, max_size=300),
    cur=st.lists(st.integers(0, 6), min_size=1, max_size=300),
    name=st.sampled_from(["psi", "jensenshannon", "chisquare", "g_test", "hellinger"]),
)
def test_category_statistics_match_on_random_samples(
    ref: list[int], cur: list[int], name: str
) -> None:
    r, c = np.array(ref), np.array(cur)
    stat, p = get_method(name).fn(r, c, False)
    rc, _ = counts(r, c)
    if name in ("chisquare", "g_test") and (rc == 0).any():
        assert stat == math.inf and p == 0.0  # a value the reference never had
        return
    if name in ("chisquare", "g_test") and len(set(ref) | set(cur)) < 2:
        assert (stat, p) == (0.0, 1.0)  # one value on both sides (scipy's p is NaN)
        return
    want_stat, want_p = reference(name, r, c, False)
    assert close(stat, want_stat), (stat, want_stat)
    if want_p is not None:
        assert close(p, want_p)


def _scipy_or_none(name: str, r: np.ndarray, c: np.ndarray, numeric: bool):
    """scipy's answer, or None where scipy has none (it raises, or gives NaN)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stat, p = reference(name, r, c, numeric)
    except (ValueError, ZeroDivisionError, np.linalg.LinAlgError):
        return None
    if math.isnan(stat) or (p is not None and math.isnan(p)):
        return None
    return stat, p


@pytest.mark.parametrize("name", [m for m in NUMERIC if m not in ("chisquare", "g_test")])
@pytest.mark.parametrize("sizes", [(2, 2), (5, 2), (40, 300)])
def test_a_constant_column_on_both_sides_never_drifts(name: str, sizes: tuple[int, int]) -> None:
    """Found by the property test below in CI: 5 vs 2 copies of 3.5 made Cramer-von Mises
    (as scipy computes it) call drift at p=0 on two identical constant columns."""
    method = get_method(name)
    stat, p = method.compute(np.full(sizes[0], 3.5), np.full(sizes[1], 3.5), True)
    assert not method.drifted(stat, p, method.threshold), (stat, p)


@settings(max_examples=40, deadline=None)
@given(
    ref=st.lists(floats, min_size=2, max_size=120),
    cur=st.lists(floats, min_size=2, max_size=120),
    name=st.sampled_from([m for m in NUMERIC if m not in ("chisquare", "g_test")]),
)
def test_every_numeric_method_matches_scipy_or_says_no_drift_where_scipy_has_no_answer(
    ref: list[float], cur: list[float], name: str
) -> None:
    """All 12 numeric methods on any samples: scipy's statistic and p-value to 1e-9.
    One value on both sides is no drift: distance 0 or p-value 1 (scipy says NaN or raises
    there, and its Cramer-von Mises says p=0 when the sides differ in size); Mann-Whitney's
    U is then n*m/2, its midpoint, as scipy says. Elsewhere, where scipy raises, so may we
    (the report shows "could not be computed" with scipy's reason); a NaN, which no
    threshold can judge, is never returned."""
    r, c = np.array(ref), np.array(cur)
    if len(set(ref) | set(cur)) == 1:
        method = get_method(name)
        stat, p = method.compute(r, c, True)
        assert not method.drifted(stat, p, method.threshold), (stat, p)
        tie_stat = len(r) * len(c) / 2 if name == "mannw" else 0.0
        assert stat == tie_stat and p in (None, 1.0), (stat, p)
        return
    want = _scipy_or_none(name, r, c, True)
    try:
        stat, p = get_method(name).compute(r, c, True)
    except (ValueError, np.linalg.LinAlgError):
        assert want is None, "scipy computes it, we raised"
        return
    assert not math.isnan(stat) and (p is None or not math.isnan(p)), (stat, p)
    if want is None:
        return
    assert close(stat, want[0]), (stat, want[0])
    if want[1] is None:
        assert p is None
    else:
        assert close(p, want[1]), (p, want[1])


@settings(max_examples=40, deadline=None)
@given(
    ref=st.lists(st.integers(0, 1), min_size=1, max_size=300),
    cur=st.lists(st.integers(0, 1), min_size=1, max_size=300),
    name=st.sampled_from(BINARY),
)
def test_every_binary_method_matches_scipy_on_random_samples(
    ref: list[int], cur: list[int], name: str
) -> None:
    """The 8 methods for a two-valued column (z and Fisher's exact among them) on any
    counts, one-sided ones included."""
    r, c = np.array(ref), np.array(cur)
    stat, p = get_method(name).compute(r, c, False)
    assert not math.isnan(stat) and (p is None or not math.isnan(p)), (stat, p)
    rc, _ = counts(r, c)
    if name in ("chisquare", "g_test") and (rc == 0).any():
        assert stat == math.inf and p == 0.0  # a value the reference never had
        return
    if len(set(ref) | set(cur)) < 2:
        assert p in (None, 1.0)  # one value on both sides: nothing moved
        return
    want = _scipy_or_none(name, r, c, False)
    assert want is not None, name
    assert close(stat, want[0]), (stat, want[0])
    assert (p is None) == (want[1] is None)
    if want[1] is not None:
        assert close(p, want[1]), (p, want[1])


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_takes_a_read_only_reference(name: str) -> None:
    """The engine hands each method the prepared reference read-only (shared by every
    window of a monitor): no method may write into it, and each answers as on a copy."""
    rng = np.random.default_rng(5)
    values = np.sort(
        rng.integers(0, 2, 3000) if name in ("z", "fisher_exact") else rng.normal(size=3000)
    )
    frozen = values.copy()
    frozen.flags.writeable = False
    cur = (
        np.sort(rng.normal(0.2, 1, 2000))
        if values.dtype.kind == "f"
        else np.sort(rng.integers(0, 2, 2000))
    )
    method = get_method(name)
    assert method.fn(frozen, cur, True) == method.fn(values, cur, True)
