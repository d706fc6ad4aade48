"""What earlier monitor reports of a model version computed, window by window, so that
the next report (an hourly cron's) computes only what is new: a window with the very
same rows keeps its drift report, and, under the same learnt reference and estimation
method with the same labelled count, its estimates.

A window is known by the time of its first and last logged rows, which rows those are
("request_id:row": several windows cut from one batch scoring share one time span) and
its row count. Reports written before windows carried their rows are not reused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.core.monitor.estimate import METHOD

if TYPE_CHECKING:
    from workbench.core.models.versions import ModelVersion
    from workbench.core.monitor.windows import WindowSpec
    from workbench.core.project import Project


@dataclass
class Earlier:
    """What earlier reports of a version and window spec computed, by window (ts of its
    first and last rows, "request_id:row" of each, rows)."""

    drift: dict[tuple[str, str, str, str, int], str] = field(default_factory=dict)
    # the same key and the labelled count -> (metrics, predictions summary)
    estimates: dict[tuple[str, str, str, str, int, int], tuple[dict[str, Any], Any]] = field(
        default_factory=dict
    )


def _window_key(w: dict[str, Any]) -> tuple[str, str, str, str, int] | None:
    try:
        return (w["first"], w["last"], w["from_row"], w["to_row"], int(w["rows"]))
    except (KeyError, TypeError, ValueError):  # an older report's: computed anew
        return None


def kept_windows(
    project: Project, mv: ModelVersion, spec: WindowSpec, reference: str | None
) -> Earlier:
    """The windows of the latest report that tested drift, and (for ``reference``, by
    this method) of the latest that estimated: two reports at most are read."""
    found = Earlier()
    where = "model = ? AND version = ? AND window_spec = ?"
    args: list[Any] = [mv.model, mv.version, spec.text]
    with project.catalog.read() as con:
        tested = con.execute(
            f"""SELECT body FROM monitor_reports r WHERE {where} AND EXISTS (
                    SELECT 1 FROM monitor_windows w JOIN drift_reports d ON d.id = w.drift_report
                    WHERE w.report_id = r.id)
                ORDER BY created_at DESC LIMIT 1""",
            args,
        ).fetchall()
        estimated = (
            con.execute(
                f"""SELECT body FROM monitor_reports WHERE {where} AND reference = ?
                      AND json_extract_string(body, '$.estimator') = ?
                    ORDER BY created_at DESC LIMIT 1""",
                [*args, reference, METHOD],
            ).fetchall()
            if reference is not None
            else []
        )
        if tested:
            windows = json.loads(tested[0][0]).get("windows", [])
            ids = [w.get("drift_report") for w in windows if w.get("drift_report")]
            present = {
                r[0]
                for r in con.execute(
                    "SELECT id FROM drift_reports WHERE list_contains(?, id)", [ids]
                ).fetchall()
            }
            for w in windows:
                key = _window_key(w)
                if key is not None and w.get("drift_report") in present:
                    found.drift[key] = w["drift_report"]
    if estimated:
        for w in json.loads(estimated[0][0]).get("windows", []):
            key = _window_key(w)
            if key is not None and isinstance(w.get("metrics"), dict):
                metrics = {m: dict(d) for m, d in w["metrics"].items()}
                found.estimates[(*key, int(w.get("labelled", -1)))] = (
                    metrics,
                    w.get("predictions"),
                )
    return found
