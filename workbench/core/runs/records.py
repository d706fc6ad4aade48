"""What the run catalog hands out: one run in full, a run in a list, a metric's summary
and an artifact. Attribute access for code; ``to_dict()`` for ``--json``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workbench.core.records import Record

# Names of metrics where less is better; any other metric is better higher (auc, f1, r2).
LOWER_IS_BETTER = ("loss", "rmse", "mse", "mae", "error", "seconds")


def lower_is_better(metric: str) -> bool:
    """Whether ``metric`` improves downwards, by its name: the one rule the compare
    table, the app, sweeps and the pipeline's gate all go by, so that they never call
    different runs the best."""
    return any(word in metric for word in LOWER_IS_BETTER)


def best_of(values: Sequence[float | None], metric: str) -> float | None:
    """The best of a metric's values across runs (the lowest of a loss or an error), or
    None when fewer than two runs have a number for it: one value is not a comparison."""
    present = [v for v in values if isinstance(v, float | int) and v == v]
    if len(present) < 2:
        return None
    return min(present) if lower_is_better(metric) else max(present)


@dataclass(eq=False)
class MetricSummary(Record):
    """One metric of one run, folded: the last value (at its step) and the range."""

    last: float
    step: int
    min: float | None
    max: float | None
    mean: float | None
    count: int


@dataclass(eq=False)
class ArtifactInfo(Record):
    path: str
    hash: str
    size: int
    kind: str


@dataclass(eq=False)
class RunInfo(Record):
    """Everything about one run, read live from its files while it is still running."""

    id: str
    experiment: str
    name: str | None
    status: str
    error: str | None
    start_time: datetime
    end_time: datetime | None
    host: str | None
    pid: int | None
    dataset: str | None
    dataset_version: int | None
    parent_id: str | None
    deleted_at: datetime | None
    environment: dict[str, Any]
    source: str | None
    duration_s: float
    dataset_ref: str | None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricSummary] = field(default_factory=dict)
    artifacts: list[ArtifactInfo] = field(default_factory=list)
    children: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"run:{self.id[:8]}"

    def last(self, metric: str) -> float | None:
        """The metric's last value, or None when the run never logged it."""
        m = self.metrics.get(metric)
        return m.last if m is not None else None


@dataclass(eq=False)
class RunSummary(Record):
    """A run as a list shows it: the last value of each metric, no files read."""

    id: str
    ref: str
    experiment: str
    name: str | None
    status: str
    start_time: datetime
    duration_s: float
    dataset: str | None
    parent_id: str | None
    deleted: bool
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def column(self, name: str) -> Any:
        """The value a runs table shows under ``name`` (``metrics.KEY``, ``params.KEY``,
        a dotted key in backticks as the filter language writes it): the CLI and the app
        read columns here, so they show the same cell."""
        kind, key = split_column(name)
        source = self.metrics if kind == "metrics" else self.params if kind == "params" else {}
        return source.get(key)


def split_column(name: str) -> tuple[str | None, str]:
    """("metrics" | "params" | None, KEY) of a column name: ``metrics.KEY`` or
    ``metric.KEY``, ``params.KEY`` or ``param.KEY``, a dotted key in backticks as the
    filter language writes it (``params.`model.n_estimators```)."""
    kind, _, key = name.partition(".")
    found = {"metrics": "metrics", "metric": "metrics", "params": "params", "param": "params"}
    return found.get(kind), key.strip("`")
