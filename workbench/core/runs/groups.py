"""Seed groups: runs that differ only in their random seed are one configuration run
several times, and are read as one row with each metric's mean and spread.

A single run's metric mixes the configuration's effect with the luck of its seed (its
split, its bagging); comparing two configurations by one run each is comparing two
draws. MLflow (#3762) and Aim (#3058) users ask for exactly this view. A run belongs to
the group of its experiment, dataset version and every parameter except the seeds: a
parameter whose name (or last dotted part, as in ``model.random_state``) is ``seed``,
``random_state`` or ``random_seed``, and the counts a seeded split decides
(``n_train``, ``n_val``, which workbench records as parameters). Only what was recorded
is compared, so two runs of one configuration whose scripts logged different parameters
stay apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.core.records import Record
from workbench.core.runs.records import split_column

if TYPE_CHECKING:
    from workbench.core.runs.runs import RunSummary

SEED_NAMES = frozenset({"seed", "random_state", "random_seed"})
SPLIT_COUNTS = frozenset({"n_train", "n_val"})  # follow from the seed of a random split


def is_seed(param: str) -> bool:
    return param.rsplit(".", 1)[-1] in SEED_NAMES


def _varies_with_seed(param: str) -> bool:
    return is_seed(param) or param in SPLIT_COUNTS


@dataclass(eq=False)
class Spread(Record):
    """One metric over a group's runs: mean, sample standard deviation (None for one
    run), and how many runs have it."""

    mean: float
    std: float | None
    n: int


@dataclass(eq=False)
class SeedGroup(Record):
    """Runs of one configuration, newest first as listed."""

    ref: str  # the first listed run's, which stands for the group
    runs: list[str]  # run ids
    experiment: str
    name: str | None
    status: str  # the runs' status when they share one, else "mixed"
    dataset: str | None
    duration_s: float  # mean
    seeds: list[str] = field(default_factory=list)  # each run's seed (its first seed param)
    params: dict[str, str] = field(default_factory=dict)  # shared, seeds left out
    metrics: dict[str, Spread] = field(default_factory=dict)
    _extra = ("n",)

    @property
    def id(self) -> str:
        return self.runs[0]

    @property
    def n(self) -> int:
        return len(self.runs)

    def column(self, col: str) -> Any:
        """``metrics.KEY`` (its mean), ``params.KEY`` or an attribute, as RunSummary's."""
        kind, key = split_column(col)
        if kind == "metrics":
            found = self.metrics.get(key)
            return found.mean if found else None
        if kind == "params":
            return self.params.get(key)
        return getattr(self, col, None)

    def spread(self, col: str) -> Spread | None:
        kind, key = split_column(col)
        return self.metrics.get(key) if kind == "metrics" else None


def group_by_seed(runs: Sequence[RunSummary]) -> list[SeedGroup]:
    """Groups in the order their first run is listed; a run with no twin is a group of
    one (its metrics with no spread)."""
    members: dict[tuple[Any, ...], list[RunSummary]] = {}
    for r in runs:
        shared = tuple(sorted((k, v) for k, v in r.params.items() if not _varies_with_seed(k)))
        members.setdefault((r.experiment, r.dataset, shared), []).append(r)
    return [_group(rs) for rs in members.values()]


def _group(rs: list[RunSummary]) -> SeedGroup:
    first = rs[0]
    statuses = {r.status for r in rs}
    seeds = [next((v for k, v in sorted(r.params.items()) if is_seed(k)), "") for r in rs]
    values: dict[str, list[float]] = {}
    for r in rs:
        for k, v in r.metrics.items():
            if v is not None:
                values.setdefault(k, []).append(float(v))
    return SeedGroup(
        ref=first.ref,
        runs=[r.id for r in rs],
        experiment=first.experiment,
        name=first.name,
        status=statuses.pop() if len(statuses) == 1 else "mixed",
        dataset=first.dataset,
        duration_s=sum(r.duration_s for r in rs) / len(rs),
        seeds=seeds,
        params={k: v for k, v in first.params.items() if not _varies_with_seed(k)},
        metrics={k: Spread(*_mean_std(v), len(v)) for k, v in sorted(values.items())},
    )


def spread_text(s: Spread | None, digits: int = 4) -> str:
    """``0.8123 ± 0.0041`` (or the mean alone for one run; ``-`` for none)."""
    if s is None:
        return "-"
    mean = f"{s.mean:.{digits}g}" if abs(s.mean) >= 1e4 else f"{s.mean:.{digits}f}"
    return mean if s.std is None else f"{mean} ± {s.std:.{digits}f}"


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation, two passes in floats (``statistics.stdev``
    is exact, with fractions, and 50x slower: a thousand runs' metrics took 0.1 s)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    return mean, (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5


def band(
    curves: Sequence[Sequence[tuple[int, float]]],
) -> tuple[list[int], list[float], list[float], list[float]]:
    """A group's curve: at each step two or more of its runs logged, the mean and the
    mean ± one standard deviation (steps, mean, lower, upper)."""
    at: dict[int, list[float]] = {}
    for curve in curves:
        for step, value in curve:
            at.setdefault(step, []).append(value)
    steps = sorted(s for s, vs in at.items() if len(vs) > 1)
    both = [_mean_std(at[s]) for s in steps]
    mean = [m for m, _ in both]
    std = [d or 0.0 for _, d in both]
    return (
        steps,
        mean,
        [m - d for m, d in zip(mean, std, strict=True)],
        [m + d for m, d in zip(mean, std, strict=True)],
    )
