"""Launch: a form that trains (or sweeps) in a separate process, with live progress.

Training runs as ``workbench train`` / ``workbench sweep`` in a child process, not in
the app: the UI never freezes, the run is tracked exactly as from the CLI, and cancel
sends it an interrupt, which ends the run as killed with every point it had logged.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Header, Input, Label, Select, Static
from textual_plotext import PlotextPlot

from workbench.app.plots import step_axis
from workbench.core.runs.recipe import MODELS
from workbench.core.runs.records import RunInfo
from workbench.textfmt import counted
from workbench.tui.base import WBScreen
from workbench.tui.formatting import fmt
from workbench.tui.messages import ShowError
from workbench.tui.widgets.footer import WBFooter

FIELDS = (
    ("dataset", "dataset version, e.g. churn@2"),
    ("target", "target column"),
    ("params", "params: n_estimators=200, learning_rate=0.05"),
    ("split", "split: random:0.2 or time:COLUMN:0.2"),
    ("seed", "seed (default 42)"),
    ("experiment", "experiment (default: default)"),
    ("grid", "sweep grid (optional): num_leaves=15,31,63; learning_rate=0.05,0.1"),
    ("ray", "sweep on Ray (optional): here, auto or HOST:PORT of a cluster"),
)


def command(values: dict[str, str], model: str, project_root: str) -> list[str]:
    """The CLI command the form stands for (shown to the user, so they can script it)."""
    from workbench.core.errors import UsageError

    if not values.get("dataset") or not values.get("target"):
        raise UsageError("give a dataset version and a target column")
    sweep = bool(values.get("grid"))
    cmd = [
        sys.executable,
        "-m",
        "workbench",
        "--project",
        project_root,
        "sweep" if sweep else "train",
        values["dataset"],
        "--target",
        values["target"],
        "--model",
        model,
    ]
    for item in filter(None, (x.strip() for x in values.get("params", "").split(","))):
        cmd += ["--param", item]
    for flag in ("split", "seed", "experiment"):
        if values.get(flag):
            cmd += [f"--{flag}", values[flag]]
    if sweep:
        for item in filter(None, (x.strip() for x in values["grid"].split(";"))):
            cmd += ["--grid", item]
    ray = values.get("ray", "").strip()
    if ray and not sweep:
        raise UsageError("Ray runs sweeps: give a sweep grid too (or leave the Ray box empty)")
    if ray:
        cmd += ["--backend", "ray"]
        if ray != "here":  # "here": a Ray instance of the sweep's own on this machine
            cmd += ["--address", ray]
    return cmd


class LaunchScreen(WBScreen):
    AUTO_FOCUS = "#launch-dataset"  # a form opens on its first field: typing goes there
    BINDINGS = [Binding("ctrl+s", "start", "Start"), Binding("ctrl+k", "cancel", "Cancel run")]

    def __init__(self) -> None:
        super().__init__()
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.run_id: str | None = None
        self.timer: Any = None
        self.stderr: Any = None
        self.cmd: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with VerticalScroll(classes="main", id="launch-form"):
                yield Label("Train a model (ctrl+s starts, ctrl+k cancels)", classes="panel-title")
                yield Select(
                    [(m, m) for m in MODELS], value="lightgbm", allow_blank=False, id="launch-model"
                )
                for name, hint in FIELDS:
                    yield Input(placeholder=hint, id=f"launch-{name}")
                with Horizontal(id="launch-buttons"):
                    yield Button("Start", id="start", variant="success")
                    yield Button("Cancel run", id="cancel", variant="error", disabled=True)
                yield Static(id="launch-command")
            with Vertical(classes="side-wide"):
                yield Static("no run launched yet", id="launch-status")
                yield PlotextPlot(id="launch-plot")
        yield WBFooter()

    def refresh_data(self) -> None:
        """Examples and defaults in the boxes from this project: its datasets, the
        [train] table of workbench.toml, the target its last run used."""

        def read() -> tuple[Any, list[Any], str | None, bool]:
            p = self.project
            recent = p.runs.list(limit=20)
            target = next((r.params["target"] for r in recent if r.params.get("target")), None)
            if target is None and p.settings.pipelines:
                target = next(iter(p.settings.pipelines.values())).target
            return p.settings.train, p.datasets.list(), target, "train" in p.settings.raw

        self.load(read, self._placeholders, group="defaults")

    def _placeholders(self, data: tuple[Any, list[Any], str | None, bool]) -> None:
        train, datasets, target, in_file = data
        where = "from workbench.toml" if in_file else "built in"
        params = ", ".join(f"{k}={v}" for k, v in train.params.items())
        hints = {
            "dataset": f"dataset version, e.g. {datasets[0].latest}"
            if datasets
            else "dataset version (none yet: workbench data add FILE --name NAME)",
            "target": f"target column, e.g. {target}" if target else "target column",
            "params": f"params (default {params}, {where})"
            if params
            else "params: n_estimators=200, learning_rate=0.05",
            "split": f"split (default {train.split}): random:0.2 or time:COLUMN:0.2",
            "seed": f"seed (default {train.seed}, {where})",
        }
        for name, hint in hints.items():
            self.query_one(f"#launch-{name}", Input).placeholder = hint
        model = self.query_one("#launch-model", Select)
        if not self._model_set and train.model in MODELS:
            self._model_set = True  # the [train] model once; the user's choice after that
            model.value = train.model

    _model_set = False

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()
        elif event.button.id == "cancel":
            self.action_cancel()

    def action_start(self) -> None:
        from workbench.core.errors import WorkbenchError

        if self.proc is not None and self.proc.poll() is None:
            self.notify("a run is already going; cancel it or wait", severity="warning")
            return
        values = {
            name: self.query_one(f"#launch-{name}", Input).value.strip() for name, _ in FIELDS
        }
        model = str(self.query_one("#launch-model", Select).value)
        try:
            cmd = command(values, model, str(self.project.root))
        except WorkbenchError as exc:
            self.post_message(ShowError(exc.message))
            return
        # what the user would type: everything after `python -m workbench --project ROOT`
        self.query_one("#launch-command", Static).update(
            f"[dim]running:[/] workbench {escape(shlex.join(cmd[5:]))}"
        )
        self.started = time.time()
        self.run_id = None
        self.cmd = cmd
        # stderr to a file rather than a pipe: a run the user keeps when quitting must
        # not meet a closed pipe (and die of it) on its next warning.
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed when the run ends)
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            start_new_session=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        self.app.launched.append(self)  # type: ignore[attr-defined]
        self.query_one("#cancel", Button).disabled = False
        self.query_one("#launch-status", Static).update("starting…")
        if self.timer is not None:
            self.timer.stop()
        self.timer = self.set_interval(1.0, self._follow)

    def action_cancel(self) -> None:
        if self.training():
            os.killpg(self.proc.pid, signal.SIGINT)  # type: ignore[union-attr]
            self.notify("cancelling: the run will end as killed")

    def training(self) -> bool:
        """Whether the run launched from here is still going."""
        return self.proc is not None and self.proc.poll() is None

    def describe(self) -> str:
        """The launched run in a line, for the question asked on quit."""
        what = shlex.join(self.cmd[5:])
        ref = f"run:{self.run_id[:8]}" if self.run_id else "the run (not yet started)"
        return f"{ref}: workbench {escape(what)}, {time.time() - self.started:.0f}s so far"

    def cancel_and_wait(self, seconds: float = 10.0) -> None:
        """Cancel the run and give it the time to record itself as killed (the app is
        about to close, so nobody would see a run left 'running' sort itself out)."""
        if not self.training():
            return
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGINT)  # the run ends as killed, points kept
        try:
            self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)

    def _follow(self) -> None:
        started = self.started

        def read() -> tuple[RunInfo | None, list[tuple[int, float]], str | None]:
            rid = self.run_id
            if rid is None:  # the launched run: the earliest top-level run since the start
                fresh = [
                    r
                    for r in self.project.runs.list(limit=50)
                    if r.parent_id is None and _after(r.start_time, started)
                ]
                if not fresh:
                    return None, [], None
                rid = fresh[-1].id
            info = self.project.runs.get(rid)
            # a sweep's parent has no curve: follow its newest trial
            source = self.project.runs.get(info.children[-1]) if info.children else info
            curves = sorted(
                k for k in source.metrics if k.startswith("val_") and k.endswith("_curve")
            )
            key = curves[0] if curves else None
            return info, (self.project.runs.history(source.id, key) if key else []), key

        self.load(read, self._show, group="follow")

    def _show(self, data: tuple[RunInfo | None, list[tuple[int, float]], str | None]) -> None:
        info, points, key = data
        done = self.proc is not None and self.proc.poll() is not None
        status = self.query_one("#launch-status", Static)
        if info is not None:
            self.run_id = info.id
            metrics = info.metrics
            best = next((k for k in ("val_auc", "val_r2", "val_accuracy") if k in metrics), None)
            status.update(
                f"[b]{info.ref}[/] {info.status}  {info.duration_s:.0f}s  "
                f"{counted(len(points), 'point')} of {key or 'no curve yet'}"
                + (f"  {best}={fmt(metrics[best].last)}" if best else "")
            )
            widget = self.query_one("#launch-plot", PlotextPlot)
            widget.plt.clear_data()
            if points:
                xs, ys = zip(*points, strict=True)
                widget.plt.plot(list(xs), list(ys), marker="braille")
                step_axis(widget.plt, xs)
            widget.plt.title(key or "waiting for points")
            widget.refresh()
        if done:
            if self.timer is not None:
                self.timer.stop()
                self.timer = None
            self.query_one("#cancel", Button).disabled = True
            err = ""
            if self.stderr is not None:
                self.stderr.seek(0)
                err = self.stderr.read().decode(errors="replace").strip()
                self.stderr.close()
                self.stderr = None
            # the command line says it ran, not that it runs; a command refused before
            # any run began ("no target column ...") left "starting…" up for good
            self.query_one("#launch-command", Static).update(
                f"[dim]ran:[/] workbench {escape(shlex.join(self.cmd[5:]))}"
            )
            if info is None:
                code = self.proc.returncode if self.proc else None
                status.update(f"[red]ended before a run began[/] (exit {code})")
            if self.proc and self.proc.returncode not in (0, None) and err:
                self.post_message(ShowError(err.splitlines()[-1].removeprefix("error: ")))
            elif info is not None:
                self.notify(f"{info.ref} {info.status}")


def _after(start: Any, t: float) -> bool:
    """Catalog times are naive UTC; compare with a wall-clock launch time."""
    import calendar

    return calendar.timegm(start.timetuple()) + start.microsecond / 1e6 >= t - 1
