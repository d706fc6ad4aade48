"""A monitor report with its alerts acted on: what ``workbench monitor`` and the app run.

Computing and storing a report is core's (core/monitor/); acting on an alert can run a
user's command or a continuous-training loop, which is the app's.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from workbench.core.monitor import report as reports
from workbench.core.monitor import stored
from workbench.core.monitor.alerts import Firing, evaluate
from workbench.core.monitor.windows import parse_window

if TYPE_CHECKING:
    from workbench.core.drift.columns import Options
    from workbench.core.monitor.report import MonitorReport
    from workbench.core.project import Project

COMMAND_SECONDS = 120  # an alert's command is a hook, not a job


@dataclass
class Monitored:
    report: MonitorReport
    firings: list[Firing] = field(default_factory=list)

    @property
    def fired(self) -> bool:
        return bool(self.firings)

    def to_dict(self) -> dict[str, Any]:
        return self.report.to_dict() | {"alerts": [f.to_dict() for f in self.firings]}


def run(
    project: Project,
    model_ref: str,
    window: str | None = None,
    since: datetime | None = None,
    reference: str | None = None,
    target: str | None = None,
    options: Options | None = None,
    save: bool = True,
    act: bool = True,
    drift: bool = True,
) -> Monitored:
    """Compute ``model_ref``'s report, evaluate the project's alerts on its latest
    window, store both and carry out each newly fired alert's actions."""
    spec = parse_window(window or project.settings.monitor_window)
    report = reports.monitor(project, model_ref, spec, since, reference, target, options, drift)
    latest = report.latest
    firings = evaluate(project.settings.alerts, report.model, latest) if latest else []
    for f in firings:
        assert latest is not None
        f.new = not stored.already_fired(project, f.alert.name, report.model, latest.label)
        latest.alerts.append(f.alert.name)
    if save:
        stored.save(project, report, firings)
    done = Monitored(report, firings)
    if act and save:
        for f in firings:
            if f.new:
                _act(project, done, f)
            else:
                f.actions.append("fired on this window before: nothing done again")
    return done


def _act(project: Project, done: Monitored, firing: Firing) -> None:
    alert = firing.alert
    firing.actions.append("recorded on the audit trail (alert.fired)")
    if alert.run:
        payload = json.dumps(
            {"alert": firing.to_dict(), "model": done.report.model, "report": done.report.id,
             "window": done.report.latest.to_dict() if done.report.latest else None},
            default=str,
        )  # fmt: skip
        try:
            proc = subprocess.run(
                alert.run, shell=True, input=payload, text=True, capture_output=True,
                timeout=COMMAND_SECONDS, cwd=project.root,
            )  # fmt: skip
            # what the hook said last: its error when it failed, else its answer (a
            # chat hook's "sent", a pipeline's outcome)
            said = (proc.stderr or proc.stdout) if proc.returncode else proc.stdout
            tail = said.strip().splitlines()
            firing.actions.append(
                f"ran `{alert.run}`: exit {proc.returncode}"
                + (f" ({tail[-1][:200]})" if tail else "")
            )
        except subprocess.TimeoutExpired:
            firing.actions.append(f"ran `{alert.run}`: stopped after {COMMAND_SECONDS} s")
    if alert.pipeline and alert.batch:
        from workbench.app.pipeline import Pipeline
        from workbench.core.errors import WorkbenchError

        try:
            result = Pipeline(project, alert.pipeline).run(project.root / alert.batch)
            firing.actions.append(
                f"pipeline {alert.pipeline} on {alert.batch}: {result.outcome} ({result.reason})"
            )
        except WorkbenchError as exc:
            firing.actions.append(f"pipeline {alert.pipeline} on {alert.batch}: {exc}")


def draw_timeline(plt: Any, body: dict[str, Any], metric: str) -> None:
    """A report's windows on a plotext figure: the estimate with its band, and what was
    realised where labels arrived, told apart by marker as well as colour."""
    from workbench.app.plots import step_axis

    windows = body.get("windows") or []
    xs = list(range(1, len(windows) + 1))
    got = [w["metrics"].get(metric) or {} for w in windows]

    def series(key: str) -> tuple[list[int], list[float]]:
        pairs = [(x, g[key]) for x, g in zip(xs, got, strict=True) if g.get(key) is not None]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    for key, label, marker, color in (
        ("upper", "band", "dot", "gray"),
        ("lower", None, "dot", "gray"),
        ("estimated", "estimated", "braille", "cyan"),
        ("realised", "realised", "x", "orange"),
    ):
        x, y = series(key)
        if not x:
            continue
        if key == "realised":
            plt.scatter(x, y, marker=marker, color=color, label=label)
        else:
            plt.plot(x, y, marker=marker, color=color, label=label)
    step_axis(plt, xs)
    plt.xlabel("window")
    plt.title(f"{body.get('model')}: {metric}, estimated with its band; x = realised")
