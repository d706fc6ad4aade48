"""A run as read back: its catalog rows, or (while it runs) its own folder's files, made
into a RunInfo. Kept apart from Runs, which decides what to read."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.runs.points import read_points
from workbench.core.runs.records import ArtifactInfo, MetricSummary, RunInfo
from workbench.core.runs.run import RUNNING, read_json
from workbench.core.store import audit

if TYPE_CHECKING:
    import duckdb


def run_info(
    runs_dir: Path,
    row: tuple[Any, ...],
    params: dict[str, str],
    tags: dict[str, str],
    summary: list[tuple[Any, ...]],
    arts: list[tuple[Any, ...]],
    children: list[str],
) -> RunInfo:
    (
        rid,
        experiment,
        name,
        status,
        error,
        start,
        end_time,
        host,
        pid,
        dataset,
        dv,
        parent,
        deleted_at,
        environment,
        source,
    ) = row
    if status == RUNNING:
        params = read_json(runs_dir / rid / "params.json", params)
        tags = read_json(runs_dir / rid / "tags.json", tags)
        summary = live_summary(runs_dir, rid)
    return RunInfo(
        id=rid,
        experiment=experiment,
        name=name,
        status=status,
        error=error,
        start_time=start,
        end_time=end_time,
        host=host,
        pid=pid,
        dataset=dataset,
        dataset_version=dv,
        parent_id=parent,
        deleted_at=deleted_at,
        environment=json.loads(environment) if environment else {},
        source=source,
        duration_s=((end_time or audit.now()) - start).total_seconds(),
        dataset_ref=f"{dataset}@{dv}" if dataset else None,
        params=params,
        tags=tags,
        metrics={
            k: MetricSummary(last, step, mn, mx, mean, n)
            for k, last, step, mn, mx, mean, n in summary
        },
        artifacts=[ArtifactInfo(p, h, s, k) for p, h, s, k in arts],
        children=children,
    )


def live_summary(runs_dir: Path, run_id: str) -> list[tuple[Any, ...]]:
    import polars as pl

    pts = read_points(runs_dir / run_id)
    if pts is None or not pts.height:
        return []
    finite = pl.col("value").filter(~pl.col("value").is_nan())
    agg = (
        pts.sort(["step", "ts"])
        .group_by("key", maintain_order=True)
        .agg(
            pl.col("value").last().alias("last"),
            pl.col("step").max().alias("step"),
            finite.min().alias("min"),
            finite.max().alias("max"),
            pl.col("value").filter(pl.col("value").is_finite()).mean().alias("mean"),
            pl.len().alias("n"),
        )
        .sort("key")
    )
    return list(agg.iter_rows())


def resolve_many(
    con: duckdb.DuckDBPyConnection, refs: list[str], one: Callable[[str], str]
) -> list[str]:
    """Run ids for ``refs``: whole ids checked in one read (each lookup by prefix scans
    every run, ~3 ms at 100k), the rest by ``one``, which explains a miss."""
    given = [r.removeprefix("run:") for r in refs]
    whole = [g for g in given if len(g) == 32]
    known = (
        {
            r[0]
            for r in con.execute(
                "SELECT id FROM runs WHERE id IN $1::VARCHAR[]", [whole]
            ).fetchall()
        }
        if whole
        else set()
    )
    return [g if g in known else one(r) for g, r in zip(given, refs, strict=True)]
