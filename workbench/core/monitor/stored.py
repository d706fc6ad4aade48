"""Monitor reports in the catalog: storing one (its windows, their drift reports, its
audit entry and its alerts' in one transaction) and reading them back for the CLI, the
app and a server's /metrics."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from workbench.core.errors import NotFoundError, UsageError
from workbench.core.store import audit
from workbench.core.store.rows import insert_rows

if TYPE_CHECKING:
    from workbench.core.monitor.alerts import Firing
    from workbench.core.monitor.report import MonitorReport
    from workbench.core.project import Project


# monitor_windows' columns as polars names, for a report of more windows than go in as
# bound values (``insert_rows``)
_WINDOW_SCHEMA = {
    "report_id": "String", "pos": "Int32", "label": "String", "first_ts": "Datetime",
    "last_ts": "Datetime", "rows": "Int64", "labelled": "Int64", "drift_report": "String",
    "drift_share": "Float64", "drifted": "Boolean", "prediction_drift": "Boolean",
    "error_rate": "Float64", "p99_latency_ms": "Float64", "metrics": "String",
    "alerts": "String",
}  # fmt: skip


def already_fired(project: Project, alert: str, model: str, window: str) -> bool:
    """Whether ``alert`` fired on this window of this model before (it acts once)."""
    with project.catalog.read() as con:
        row = con.execute(
            "SELECT count(*) FROM audit WHERE action = 'alert.fired' AND subject = ? "
            "AND json_extract_string(details, '$.model') = ? "
            "AND json_extract_string(details, '$.window') = ?",
            [f"alert:{alert}", model, window],
        ).fetchone()
    return bool(row and row[0])


def save(project: Project, report: MonitorReport, firings: list[Firing] | None = None) -> None:
    """Store a report, its windows and their drift reports, its audit entry and one for
    each alert newly fired on its latest window, in one transaction."""
    with project.catalog.write() as con:
        mv_model, _, version = report.model.partition("@")
        con.execute(
            "INSERT INTO monitor_reports VALUES (?,?,?,?,?,?,?,?,?)",
            [
                report.id, report.created_at, mv_model, int(version), report.alias,
                report.window, report.since, report.reference, json.dumps(report.to_dict()),
            ],
        )  # fmt: skip
        project.drift.save_all_in(
            con, [w.drift for w in report.windows if w.drift is not None and not w.drift_stored]
        )
        # one statement for every window: a statement apiece cost ~1 ms each, most of an
        # hourly report's save
        insert_rows(
            con,
            "monitor_windows",
            [
                [
                    report.id, w.pos, w.label, w.first_ts, w.last_ts, w.rows, w.labelled,
                    w.drift.id if w.drift else None, w.drift_share, w.drifted,
                    w.prediction_drift, w.error_rate, w.p99_latency_ms,
                    json.dumps({e.metric: e.to_dict() for e in w.estimates}),
                    json.dumps(w.alerts),
                ]
                for w in report.windows
            ],
            _WINDOW_SCHEMA,
        )  # fmt: skip
        latest = report.latest
        audit.append(
            con,
            "monitor.report",
            report.model,
            {
                "report": report.id,
                "window": report.window,
                "windows": len(report.windows),
                "rows": sum(w.rows for w in report.windows),
                "latest": latest.to_dict() if latest else None,
            },
        )
        for f in firings or []:
            if f.new and latest is not None:
                audit.append(
                    con,
                    "alert.fired",
                    f"alert:{f.alert.name}",
                    {
                        "model": report.model,
                        "report": report.id,
                        "window": latest.label,
                        "conditions": [c.text for c in f.alert.conditions],
                        "values": f.values,
                    },
                )


def latest_alerts(project: Project, model: str, version: int) -> list[str]:
    """The alerts that held on the latest window of ``model@version``'s latest report."""
    with project.catalog.read() as con:
        row = con.execute(
            """SELECT w.alerts FROM monitor_windows w JOIN monitor_reports r ON r.id = w.report_id
               WHERE r.model = ? AND r.version = ? ORDER BY r.created_at DESC, w.pos DESC
               LIMIT 1""",
            [model, version],
        ).fetchone()
    names: list[str] = json.loads(row[0]) if row else []
    return names


def reports(project: Project, model: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """Stored reports, newest first."""
    sql = "SELECT id, created_at, model, version, alias, window_spec FROM monitor_reports"
    args: list[Any] = []
    if model:
        sql += " WHERE model = ?"
        args.append(model.split("@", 1)[0])
    sql += " ORDER BY created_at DESC LIMIT ?"
    args.append(limit)
    with project.catalog.read() as con:
        rows = con.execute(sql, args).fetchall()
    keys = ("id", "created_at", "model", "version", "alias", "window")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def get(project: Project, report_id: str) -> dict[str, Any]:
    """A stored report as it was shown (its JSON)."""
    prefix = report_id.removeprefix("monitor:").lower()
    with project.catalog.read() as con:
        rows = con.execute(
            "SELECT body FROM monitor_reports WHERE starts_with(id, ?)", [prefix]
        ).fetchall()
    if not rows or not prefix:
        raise NotFoundError(f"no monitor report {report_id!r} (see `workbench monitor list`)")
    if len(rows) > 1:
        raise UsageError(f"{report_id!r} matches {len(rows)} reports; give more digits")
    body: dict[str, Any] = json.loads(rows[0][0])
    return body


def watched(project: Project) -> list[dict[str, Any]]:
    """Each model version with logged predictions: its rows, last time, current aliases,
    latest stored report and the alerts that held on its latest window (what the app's
    Monitor screen lists)."""
    project.fold_predictions()
    with project.catalog.read() as con:
        rows = con.execute(
            """WITH logged AS (
                   SELECT model, version, count(*) AS n, max(ts) AS last_ts
                   FROM predictions GROUP BY model, version),
               latest AS (
                   SELECT model, version, arg_max(id, created_at) AS report,
                          max(created_at) AS reported_at
                   FROM monitor_reports GROUP BY model, version),
               last_alerts AS (
                   SELECT report_id, arg_max(alerts, pos) AS alerts
                   FROM monitor_windows GROUP BY report_id),
               named AS (
                   SELECT model, version, string_agg(alias, ',' ORDER BY alias) AS aliases
                   FROM model_aliases GROUP BY model, version)
               SELECT l.model, l.version, l.n, l.last_ts, n.aliases, r.report, r.reported_at,
                      a.alerts
               FROM logged l
               LEFT JOIN named n ON n.model = l.model AND n.version = l.version
               LEFT JOIN latest r ON r.model = l.model AND r.version = l.version
               LEFT JOIN last_alerts a ON a.report_id = r.report
               ORDER BY l.last_ts DESC"""
        ).fetchall()
    keys = ("model", "version", "rows", "last_ts", "aliases", "report", "reported_at", "alerts")
    out = []
    for r in rows:
        d = dict(zip(keys, r, strict=True))
        d["aliases"] = d["aliases"].split(",") if d["aliases"] else []
        d["alerts"] = json.loads(d["alerts"]) if d["alerts"] else []  # on the latest window
        out.append(d)
    return out
