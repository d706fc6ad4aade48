"""Read-only SQL over documented views of the catalog: ``workbench sql "SELECT ..."``.

The store is DuckDB, so its metadata can be queried as such. Queries see stable views
(documented in docs/sql.md), not the storage tables, so the tables can change between
releases without breaking a user's saved questions. Safety comes from DuckDB itself,
not from inspecting the text: the catalog is opened read-only (no INSERT, UPDATE, DDL on
it), and file and network access are switched off and locked for the connection (no
COPY TO, read_csv, ATTACH or INSTALL), so a query can read the catalog and nothing else.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import UsageError, WorkbenchError

if TYPE_CHECKING:
    import duckdb

    from workbench.core.project import Project

# name -> (what a row is, SELECT over the storage tables in database "catalog")
VIEWS: dict[str, tuple[str, str]] = {
    "runs": (
        "one row per run (deleted runs included, with `deleted` true)",
        """SELECT id AS run_id, name, experiment, status, error, start_time, end_time,
            date_diff('millisecond', start_time, end_time) / 1000.0 AS duration_s,
            CASE WHEN dataset IS NOT NULL THEN dataset || '@' || dataset_version END AS dataset,
            dataset AS dataset_name, dataset_version, parent_id,
            deleted_at IS NOT NULL AS deleted, source, host
        FROM catalog.main.runs""",
    ),
    "params": (
        "one row per run parameter; `value_num` is the value as a number when it is one",
        """SELECT run_id, key, value, TRY_CAST(value AS DOUBLE) AS value_num
        FROM catalog.main.params""",
    ),
    "tags": ("one row per run tag", "SELECT run_id, key, value FROM catalog.main.tags"),
    "metrics": (
        "every logged metric point of every ended run",
        "SELECT run_id, key, step, value, ts FROM catalog.main.metrics",
    ),
    "latest_metrics": (
        "one row per run and metric: its last value (highest step) and summary",
        """SELECT run_id, key, last AS value, last_step AS step, min, max, mean, count
        FROM catalog.main.metric_summary""",
    ),
    "artifacts": (
        "one row per stored run artifact",
        "SELECT run_id, path, hash, size, kind FROM catalog.main.artifacts",
    ),
    "datasets": (
        "one row per dataset, with its latest version",
        """SELECT d.name, d.created_at, count(v.number) AS versions,
            max(v.number) AS latest_version,
            arg_max(v.n_rows, v.number) AS latest_rows
        FROM catalog.main.datasets d LEFT JOIN catalog.main.dataset_versions v
            ON v.dataset = d.name
        GROUP BY d.name, d.created_at""",
    ),
    "dataset_versions": (
        "one row per dataset version; `id` is the SHA-256 of the file that was added",
        """SELECT dataset, number AS version, dataset || '@' || number AS ref, id, created_at,
            message, source_name, source_format, n_rows, n_cols, stored_bytes, total_bytes,
            parent, schema
        FROM catalog.main.dataset_versions""",
    ),
    "dataset_checks": (
        "one row per run of a dataset's checks (on add, or `data check`), with its report",
        """SELECT dataset, number AS version, dataset || '@' || number AS ref, checked_at,
            passed, report
        FROM catalog.main.dataset_checks""",
    ),
    "models": (
        "one row per registered model",
        """SELECT m.name, m.description, m.created_at, count(v.version) AS versions
        FROM catalog.main.models m LEFT JOIN catalog.main.model_versions v ON v.model = m.name
        GROUP BY m.name, m.description, m.created_at""",
    ),
    "model_versions": (
        "one row per model version, with what it was trained on and its metrics (JSON)",
        """SELECT model, version, model || '@' || version AS ref, run_id,
            CASE WHEN dataset IS NOT NULL THEN dataset || '@' || dataset_version END
                AS trained_on,
            status, created_at, metrics, params, description
        FROM catalog.main.model_versions""",
    ),
    "aliases": (
        "one row per alias that currently points at a model version",
        "SELECT model, alias, version, since FROM catalog.main.model_aliases",
    ),
    "alias_history": (
        "every alias move: promotions, forced promotions and rollbacks",
        """SELECT model, alias, ts, action, version, previous, reason, forced, actor
        FROM catalog.main.alias_history""",
    ),
    "drift_reports": (
        "one row per stored drift comparison; `model` is set when it was model-aware",
        """SELECT id AS report_id, created_at, reference, current, n_tested, n_drifted,
            share, drifted, drift_share AS threshold_share, options->>'model' AS model,
            series_id
        FROM catalog.main.drift_reports""",
    ),
    "drift_results": (
        "one row per column of each drift report",
        """SELECT r.report_id, d.created_at, d.reference, d.current, r.column_name, r.kind,
            r.method, r.statistic, r.p_value, r.threshold, r.drifted, r.status, r.reason
        FROM catalog.main.drift_results r JOIN catalog.main.drift_reports d
            ON d.id = r.report_id""",
    ),
    "scorings": (
        "one row per batch scoring with `workbench predict`",
        """SELECT id AS scoring_id, ts, model, version, model || '@' || version AS ref,
            input, n_rows, output
        FROM catalog.main.scorings""",
    ),
    "requests": (
        "one row per request a `workbench serve` server answered or refused, and per "
        "`workbench predict` scoring (its path is `workbench predict`)",
        """SELECT id AS request_id, ts, model, version, model || '@' || version AS ref, rows,
            latency_ms, status, error, path
        FROM catalog.main.serving_requests""",
    ),
    "predictions": (
        "one row per row a served model or `workbench predict` scored: its inputs and "
        "outputs (JSON), and its "
        "label once `workbench labels add` gave one",
        """SELECT p.request_id, p.row, p.ts, p.model, p.version,
            p.model || '@' || p.version AS ref, p.inputs, p.outputs,
            p.outputs->>'prediction' AS prediction, l.label->>'$' AS label
        FROM catalog.main.predictions p LEFT JOIN catalog.main.labels l
            ON l.model = p.model AND l.request_id = p.request_id AND l.row = p.row""",
    ),
    "labels": (
        "one row per labelled prediction (`workbench labels add`)",
        """SELECT model, request_id, row, label->>'$' AS label, added_at, source
        FROM catalog.main.labels""",
    ),
    "monitor_windows": (
        "one row per window of each stored `workbench monitor` report; `metrics` holds "
        "each metric's estimate, band and realised value (JSON)",
        """SELECT r.id AS report_id, r.created_at, r.model, r.version,
            r.model || '@' || r.version AS ref, r.alias, r.window_spec, w.pos, w.label AS window_label,
            w.first_ts, w.last_ts, w.rows, w.labelled, w.drift_share, w.drifted,
            w.prediction_drift, w.error_rate, w.p99_latency_ms, w.metrics, w.alerts,
            w.drift_report
        FROM catalog.main.monitor_windows w JOIN catalog.main.monitor_reports r
            ON r.id = w.report_id""",
    ),
    "audit": (
        "the audit trail, one row per change (details as JSON)",
        "SELECT seq, ts, actor, action, subject, details FROM catalog.main.audit",
    ),
}


@dataclass
class Result:
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """Create the views on a read-only catalog connection, then lock it down."""
    for name, (_, select) in VIEWS.items():
        con.execute(f"CREATE TEMP VIEW {name} AS {select}").fetchall()
    # (each result fetched: DuckDB 2 refuses new work while one is pending)
    con.execute("SET search_path = 'temp'").fetchall()
    con.execute("SET enable_external_access = false").fetchall()
    con.execute("SET lock_configuration = true").fetchall()


def query(project: Project, text: str, limit: int | None = 10_000) -> Result:
    """Run one read-only query over the views; at most ``limit`` rows come back."""
    import duckdb

    if not text.strip():
        raise UsageError('give a query, e.g. workbench sql "SELECT * FROM runs LIMIT 5"')
    project.fold_predictions()  # what servers logged since the last read
    with project.catalog.isolated() as con:
        prepare(con)
        try:
            statements = con.extract_statements(text)
            if len(statements) != 1:
                raise UsageError(f"give one query at a time (this text holds {len(statements)})")
            kind = statements[0].type.name
            if kind not in ("SELECT", "EXPLAIN"):
                raise WorkbenchError(
                    f"workbench sql is read-only: {kind} is refused; change the project "
                    "with workbench commands"
                )
            cur = con.execute(text)
            if cur.description is None:
                return Result([], [], [], False)
            columns = [d[0] for d in cur.description]
            types = [str(d[1]) for d in cur.description]
            rows = cur.fetchmany(limit + 1) if limit is not None else cur.fetchall()
        except duckdb.Error as exc:
            raise WorkbenchError(_message(exc)) from None
    truncated = limit is not None and len(rows) > limit
    return Result(columns, types, rows[:limit] if truncated else rows, truncated)


def _message(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    low = text.lower()
    if "read-only mode" in low or "read only" in low:
        return "workbench sql is read-only: change the project with workbench commands"
    if "disabled by configuration" in low or "configuration has been locked" in low:
        return "workbench sql reads the catalog only: files, extensions and settings are off"
    detail = text.split(": ", 1)[1] if ": " in text else text
    return f"SQL error: {detail}"


def describe(project: Project) -> dict[str, dict[str, Any]]:
    """Each view's description and columns (name, type), for docs, --help and the TUI."""
    out: dict[str, dict[str, Any]] = {}
    with project.catalog.isolated() as con:
        prepare(con)
        for name, (about, _) in VIEWS.items():
            cols = con.execute(f"DESCRIBE {name}").fetchall()
            out[name] = {"about": about, "columns": [(c[0], str(c[1])) for c in cols]}
    return out


def jsonable(value: Any) -> Any:
    """A cell as JSON: JSON columns parsed, times as ISO text."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


EXPORTS = {
    "runs": "one row per run: its attributes, then params.*, metrics.* (last value), tags.*",
    "metrics": "every metric point: run_id, key, step, value, ts",
    "datasets": "one row per dataset version",
    "models": "one row per model version, with the aliases that point at it",
    "drift": "one row per column of every drift report",
    "audit": "the audit trail",
    "requests": "one row per request a `workbench serve` server answered or refused",
    "predictions": "one row per row a served model scored: inputs, outputs, label",
}


def export_frame(project: Project, what: str) -> Any:
    """A polars DataFrame of one export, read through the same views as ``workbench sql``."""
    import polars as pl

    if what not in EXPORTS:
        raise UsageError(f"unknown export {what!r}: choose one of {', '.join(EXPORTS)}")
    simple = {
        "metrics": "SELECT * FROM metrics ORDER BY run_id, key, step, ts",
        "datasets": "SELECT * FROM dataset_versions ORDER BY dataset, version",
        "drift": "SELECT * FROM drift_results ORDER BY created_at, report_id",
        "audit": "SELECT * FROM audit ORDER BY seq",
        "requests": "SELECT * FROM requests ORDER BY ts, request_id",
        "predictions": "SELECT * FROM predictions ORDER BY ts, request_id, row",
        "models": """SELECT v.*, coalesce(list(a.alias ORDER BY a.alias)
                FILTER (WHERE a.alias IS NOT NULL), []) AS aliases
            FROM model_versions v LEFT JOIN aliases a USING (model, version)
            GROUP BY ALL ORDER BY model, version""",
    }
    if what in ("requests", "predictions"):
        project.fold_predictions()
    with project.catalog.isolated() as con:
        prepare(con)
        if what in simple:
            return con.sql(simple[what]).pl()
        runs = con.sql("SELECT * FROM runs ORDER BY start_time").pl()
        parts = {
            "params": con.sql("SELECT run_id, key, value FROM params").pl(),
            "metrics": con.sql("SELECT run_id, key, value FROM latest_metrics").pl(),
            "tags": con.sql("SELECT run_id, key, value FROM tags").pl(),
        }
    for prefix, long in parts.items():
        if long.height == 0:
            continue
        wide = long.with_columns((prefix + "." + pl.col("key")).alias("key")).pivot(
            on="key", index="run_id", values="value", sort_columns=True
        )
        runs = runs.join(wide, on="run_id", how="left")
    return runs


def export(project: Project, what: str, output: str | os.PathLike[str]) -> tuple[Path, int]:
    """Write one export to a .parquet or .csv file (or into a folder as WHAT.parquet).

    Written to a temporary file and renamed, so a reader never sees half a file.
    """
    import polars as pl

    out = Path(output)
    if out.is_dir() or not out.suffix:
        out = out / f"{what}.parquet"
    fmt = out.suffix.lower()
    if fmt not in (".parquet", ".csv"):
        raise UsageError(f"cannot write {out.name}: use .parquet or .csv (or a folder)")
    frame = export_frame(project, what)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        if fmt == ".parquet":
            frame.write_parquet(tmp, compression="zstd")
        else:
            lists = [
                pl.col(c).list.join(",") for c, t in frame.schema.items() if t == pl.List(pl.String)
            ]
            frame.with_columns(lists).write_csv(tmp)
        tmp.replace(out)
    except OSError as exc:
        raise WorkbenchError(f"cannot write {out}: {exc.strerror}") from None
    return out, frame.height
