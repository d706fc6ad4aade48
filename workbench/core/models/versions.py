"""What the registry hands out: a model version (a snapshot of a run), a promotion's
outcome, and the refusal that carries every gate's verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.models import gates
from workbench.core.records import Record

ACTIVE, ARCHIVED = "active", "archived"
KNOWN_ALIASES = ("staging", "production")
_VERSION_COLS = (
    "model, version, run_id, artifact, signature, metrics, params, dataset, dataset_version, "
    "description, status, created_at"
)


class PromotionRefused(WorkbenchError):
    """A gate failed; ``results`` holds every gate with its value and verdict."""

    def __init__(self, message: str, results: list[gates.GateResult]) -> None:
        super().__init__(message)
        self.results = results


@dataclass
class ModelVersion:
    model: str
    version: int
    run_id: str
    artifact: str
    signature: dict[str, Any]
    metrics: dict[str, float]
    params: dict[str, Any]
    dataset: str | None
    dataset_version: int | None
    description: str | None
    status: str
    created_at: Any
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    @property
    def dataset_ref(self) -> str | None:
        return f"{self.dataset}@{self.dataset_version}" if self.dataset else None

    @property
    def inputs(self) -> list[str]:
        return list(self.signature.get("inputs", {}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "ref": self.ref,
            "run": f"run:{self.run_id[:8]}",
            "run_id": self.run_id,
            "artifact": self.artifact,
            "dataset": self.dataset_ref,
            "status": self.status,
            "aliases": list(self.aliases),
            "description": self.description,
            "created_at": _iso(self.created_at),
            "metrics": self.metrics,
            "params": self.params,
            "signature": self.signature,
        }


@dataclass
class Promotion:
    version: ModelVersion
    alias: str
    previous: int | None
    results: list[gates.GateResult]
    forced: bool
    moved: bool  # False when the version already held the alias
    reports: list[str] = field(default_factory=list)  # drift evidence kept with the move


@dataclass(eq=False)
class ModelEntry(Record):
    """A registered model as a list shows it: how many versions, which alias is where."""

    name: str
    description: str | None
    versions: int
    latest: int | None
    aliases: dict[str, int]
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return super().to_dict() | {"created_at": _iso(self.created_at)}


@dataclass(eq=False)
class AliasMove(Record):
    """One entry of a model's alias history: who moved which alias where, and why."""

    alias: str
    seq: int
    ts: datetime
    action: str
    version: int
    previous: int | None
    reason: str | None
    forced: bool
    gates: list[dict[str, Any]]
    actor: str


def _iso(ts: datetime) -> str:
    return ts.isoformat(timespec="seconds") + "Z"
