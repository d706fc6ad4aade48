"""Properties that must hold for any input (hypothesis), beyond the examples elsewhere.

- drift statistics: a sample against itself shows no drift (statistic at its minimum,
  p-value 1 where there is one); symmetric methods give the same answer both ways; a
  statistic stays in its range; the whole column comparison says "no drift" for
  identical columns of any type;
- references: every alias and range reference round-trips, a range expands to each
  version in order, and no text crashes the parser;
- the run filter language: ``A and B`` selects the intersection, ``A or B`` the union
  and ``not (A)`` the complement of what A selects, for generated comparisons.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.core.test_search import names as run_names
from tests.core.test_search import runs  # noqa: F401  (the fixture)
from workbench.core.drift.stattests import get_method
from workbench.core.errors import UsageError
from workbench.core.store.refs import expand_range, parse_ref

floats = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
samples = st.lists(floats, min_size=5, max_size=200)
categories = st.lists(st.integers(0, 6), min_size=5, max_size=300)

NUMERIC = ["ks", "wasserstein", "psi", "jensenshannon", "kl_div", "hellinger",
           "cramer_von_mises", "t_test", "energy_distance", "mannw"]  # fmt: skip
CATEGORICAL = ["psi", "jensenshannon", "chisquare", "g_test", "hellinger"]
# the statistic itself is symmetric on numbers (Wasserstein is scaled by the reference's
# spread, the binned ones bin on the reference, KL divergence is not a distance) and on
# categories, which are counted over both sides' values
SYMMETRIC = ["ks", "cramer_von_mises", "energy_distance"]
SYMMETRIC_CATEGORICAL = ["jensenshannon", "hellinger", "psi"]
BOUNDED = {"ks": (0, 1), "jensenshannon": (0, 1), "hellinger": (0, 1)}


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=60, deadline=None)
@given(sample=samples, name=st.sampled_from(NUMERIC))
def test_a_numeric_sample_against_itself_shows_no_drift(sample: list[float], name: str) -> None:
    x = np.array(sample)
    assume(np.unique(x).size > 1)
    stat, p = get_method(name).fn(x, x.copy(), True)
    if p is not None:
        assert p >= 0.99, (name, stat, p)
    elif name != "mannw":
        assert abs(stat) <= 1e-9, (name, stat)


@settings(max_examples=60, deadline=None)
@given(sample=categories, name=st.sampled_from(CATEGORICAL))
def test_a_categorical_sample_against_itself_shows_no_drift(sample: list[int], name: str) -> None:
    x = np.array(sample)
    stat, p = get_method(name).fn(x, x.copy(), False)
    assert abs(stat) <= 1e-9
    assert p is None or p >= 0.99


@settings(max_examples=60, deadline=None)
@given(a=samples, b=samples, name=st.sampled_from(SYMMETRIC))
def test_symmetric_statistics_do_not_care_which_side_is_which(
    a: list[float], b: list[float], name: str
) -> None:
    x, y = np.array(a), np.array(b)
    assume(np.unique(x).size > 1 and np.unique(y).size > 1)
    s1, p1 = get_method(name).fn(x, y, True)
    s2, p2 = get_method(name).fn(y, x, True)
    assert _close(s1, s2), (s1, s2)
    assert (p1 is None) == (p2 is None) and (p1 is None or _close(p1, p2))


@settings(max_examples=60, deadline=None)
@given(a=categories, b=categories, name=st.sampled_from(SYMMETRIC_CATEGORICAL))
def test_symmetric_category_statistics_do_not_care_which_side_is_which(
    a: list[int], b: list[int], name: str
) -> None:
    s1, _ = get_method(name).fn(np.array(a), np.array(b), False)
    s2, _ = get_method(name).fn(np.array(b), np.array(a), False)
    assert _close(s1, s2), (s1, s2)


@settings(max_examples=60, deadline=None)
@given(a=samples, b=samples, name=st.sampled_from(NUMERIC))
def test_statistics_and_p_values_stay_in_range(a: list[float], b: list[float], name: str) -> None:
    x, y = np.array(a), np.array(b)
    assume(np.unique(x).size > 1 and np.unique(y).size > 1)
    stat, p = get_method(name).fn(x, y, True)
    assert not math.isnan(stat)
    lo, hi = BOUNDED.get(name, (-math.inf, math.inf))
    assert lo - 1e-12 <= stat <= hi + 1e-12, (name, stat)
    if name in ("kl_div", "wasserstein", "energy_distance", "psi", "cramer_von_mises"):
        assert stat >= -1e-12
    assert p is None or 0.0 <= p <= 1.0


column_values = st.one_of(
    st.lists(st.integers(-1000, 1000) | st.none(), min_size=3, max_size=100),
    st.lists(floats | st.none(), min_size=3, max_size=100),
    st.lists(st.sampled_from(["a", "b", "ç", "日本", ""]) | st.none(), min_size=3, max_size=100),
    st.lists(st.booleans() | st.none(), min_size=3, max_size=100),
)


@settings(max_examples=80, deadline=None)
@given(values=column_values)
def test_identical_columns_never_drift(values: list[object]) -> None:
    from workbench.core.data.sources import Table
    from workbench.core.drift.columns import Options, compare_column

    df = pl.DataFrame({"x": values}, strict=False)
    ref, cur = Table.of_frame("ref", df), Table.of_frame("cur", df.clone())
    found = compare_column("x", ref, cur, Options(), explicit=True)
    assert found.drifted is not True, found


alias = st.from_regex(r"\A[A-Za-z][A-Za-z0-9_-]{0,30}\Z")
name = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,40}\Z")


@given(name, alias)
def test_alias_refs_round_trip(n: str, a: str) -> None:
    assume(not a.isdigit() and a != "sha")
    ref = parse_ref(f"{n}@{a}")
    assert (ref.name, ref.alias) == (n, a)
    assert parse_ref(str(ref)) == ref


@given(name, st.integers(1, 10_000), st.integers(0, 50))
def test_a_range_expands_to_each_version_in_order(n: str, start: int, width: int) -> None:
    refs = expand_range(f"{n}@{start}..{start + width}")
    assert refs == [f"{n}@{v}" for v in range(start, start + width + 1)]


@given(st.text(max_size=100))
def test_no_text_crashes_range_expansion(text: str) -> None:
    try:
        out = expand_range(text)
    except UsageError as exc:
        assert "\n" not in str(exc)
    else:
        assert out and all(isinstance(r, str) for r in out)


comparison = st.builds(
    lambda key, op, v: f"metrics.{key} {op} {v!r}",
    st.just("val_auc"),
    st.sampled_from([">", "<", ">=", "<=", "=", "!="]),
    st.floats(0, 1, allow_nan=False, width=32),
)


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(a=comparison, b=comparison)
@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_filters_combine_as_sets(runs, a: str, b: str) -> None:  # noqa: F811
    project, _ = runs
    every = set(run_names(project))
    sa, sb = set(run_names(project, a)), set(run_names(project, b))
    assert set(run_names(project, f"{a} and {b}")) == sa & sb
    assert set(run_names(project, f"{a} or {b}")) == sa | sb
    # "not" is the plain complement: for a run without the metric, A is unknown, not true,
    # so `not (A)` holds (docs/filter-language.md)
    assert set(run_names(project, f"not ({a})")) == every - sa
