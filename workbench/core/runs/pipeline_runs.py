"""The record of each pipeline run (table ``pipeline_runs``): which batch a declared loop
was given, what it decided at each step and why. This module is the table's only writer
and reader; the loop itself is ``workbench.app.pipeline``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from workbench.core.store import audit

if TYPE_CHECKING:
    from workbench.core.store.catalog import Catalog


@dataclass(frozen=True)
class PipelineRunRecord:
    """One stored pipeline run, as the CLI and the app list them."""

    id: str
    pipeline: str
    batch: str
    started_at: datetime
    ended_at: datetime | None
    outcome: str
    steps: list[dict[str, Any]]  # step, status, detail, refs, seconds

    @property
    def reason(self) -> str:
        """The last step's detail: why the run ended where it did."""
        return self.steps[-1]["detail"] if self.steps else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "batch": self.batch,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "outcome": self.outcome,
            "steps": self.steps,
        }


class PipelineRuns:
    """``Project().pipeline_runs``."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def record(
        self,
        run_id: str,
        pipeline: str,
        batch: str,
        batch_hash: str,
        started: datetime,
        outcome: str,
        steps: list[dict[str, Any]],
        reason: str,
    ) -> None:
        """Store a finished pipeline run with its audit entry, in one transaction."""
        with self.catalog.write() as con:
            con.execute(
                "INSERT INTO pipeline_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    pipeline,
                    batch,
                    batch_hash,
                    started,
                    audit.now(),
                    outcome,
                    json.dumps(steps, default=str),
                ],
            )
            audit.append(
                con,
                "pipeline.run",
                f"pipeline:{pipeline}",
                {"run": run_id, "batch": batch, "outcome": outcome, "reason": reason},
            )

    def processed(
        self, pipeline: str, batch_hash: str, outcomes: tuple[str, ...]
    ) -> tuple[str, str] | None:
        """(id, outcome) of the first run of ``pipeline`` that ended in one of ``outcomes``
        on a batch with these bytes, if any."""
        with self.catalog.read() as con:
            row = con.execute(
                "SELECT id, outcome FROM pipeline_runs WHERE pipeline = ? AND batch_hash = ? "
                "AND outcome IN (SELECT unnest(?::VARCHAR[])) ORDER BY started_at LIMIT 1",
                [pipeline, batch_hash, list(outcomes)],
            ).fetchone()
        return (row[0], row[1]) if row else None

    def history(self, pipeline: str | None = None, limit: int = 50) -> list[PipelineRunRecord]:
        """The latest runs first, of one pipeline or of all."""
        with self.catalog.read() as con:
            rows = con.execute(
                "SELECT id, pipeline, batch, started_at, ended_at, outcome, steps "
                "FROM pipeline_runs WHERE ? IS NULL OR pipeline = ? "
                "ORDER BY started_at DESC LIMIT ?",
                [pipeline, pipeline, limit],
            ).fetchall()
        return [
            PipelineRunRecord(rid, name, batch, started, ended, outcome, json.loads(steps))
            for rid, name, batch, started, ended, outcome, steps in rows
        ]
