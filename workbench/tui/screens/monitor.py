"""Monitor: each model version with logged predictions, the windows of its latest report
(estimated and realised performance with the band, drift, traffic, alerts) and their
timeline; ``u`` runs ``workbench monitor`` now, ``enter`` opens a window's drift report."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Header, Label, Static
from textual_plotext import PlotextPlot

from workbench.core.monitor.estimate import MAIN_METRIC
from workbench.core.monitor.predicted import text as predicted_text
from workbench.core.monitor.windows import MIN_DRIFT_ROWS, window_name
from workbench.textfmt import counted
from workbench.tui.base import WBScreen
from workbench.tui.formatting import fmt
from workbench.tui.messages import Open
from workbench.tui.widgets.footer import WBFooter
from workbench.tui.widgets.table import Table

METRICS = {
    "binary": ("auc", "accuracy", "precision", "recall", "f1"),
    "multiclass": ("accuracy", "auc", "precision", "recall", "f1"),
    "regression": ("mae", "rmse"),
}
EMPTY_MODELS = (
    "No model has logged predictions yet. Serve one (workbench serve NAME@ALIAS) or score "
    "a batch (workbench predict NAME@ALIAS FILE -o OUT): its rows are then monitored here."
)
NARROW = 110  # columns: under them the screen stacks (on_resize)
EMPTY_REPORT = "No report on this version yet: press u, or run workbench monitor NAME@ALIAS."


class MonitorScreen(WBScreen):
    AUTO_FOCUS = "#mon-models"
    BINDINGS = [
        Binding("u", "update", "Monitor now"),
        Binding("k", "next_metric", "Next metric"),
        Binding("tab", "app.focus_next", "Next table", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self.body: dict[str, Any] | None = None
        self.metric: str | None = None
        self.selected: int = 0

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="mon-body"):
            with Vertical(id="mon-left"):
                yield Static("Watched models (u monitors now)", classes="panel-title")
                yield Table(id="mon-models", cursor_type="row", zebra_stripes=True)
                yield Label("", id="mon-status")
            with Vertical(id="mon-right"):
                yield Label("Windows (enter opens a window's drift report)", id="mon-title",
                            classes="panel-title")  # fmt: skip
                yield Table(id="mon-windows", cursor_type="row", zebra_stripes=True)
                yield PlotextPlot(id="mon-plot")
                yield Static("", id="mon-notes")
        yield WBFooter()

    def on_resize(self, event: events.Resize) -> None:
        # under NARROW columns the models stack above the windows, which then have the
        # whole width: beside a model list they showed three columns of eight at 80
        self.set_class(event.size.width < NARROW, "narrow")

    def on_mount(self) -> None:
        self.query_one("#mon-models", Table).add_columns(
            "model", "aliases", "rows", "last scored", "report", "alerts"
        )

    def refresh_data(self) -> None:
        def read() -> list[dict[str, Any]]:
            from workbench.core.monitor.stored import watched

            return watched(self.project)

        self.load(read, self._show_models)

    def _show_models(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        table = self.query_one("#mon-models", Table)
        table.say_when_empty(EMPTY_MODELS)
        table.clear()
        for r in rows:
            fired = r["alerts"]
            table.add_row(
                escape(f"{r['model']}@{r['version']}"),
                escape(", ".join(r["aliases"])) or "-",
                f"{r['rows']:,}",
                f"{r['last_ts']:%m-%d %H:%M}",
                f"{r['reported_at']:%m-%d %H:%M}" if r["reported_at"] else "none",
                f"[red]{escape(', '.join(fired))}[/]" if fired else "",
                key=f"{r['model']}@{r['version']}",
            )
        if rows:
            self.selected = min(self.selected, len(rows) - 1)
            table.move_cursor(row=self.selected)
            self._load_report(self.selected)
        else:
            self._show_report(None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "mon-models" and event.cursor_row != self.selected:
            self.selected = event.cursor_row
            self._load_report(event.cursor_row)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id != "mon-windows" or self.body is None:
            return
        windows = self.body.get("windows") or []
        if 0 <= event.cursor_row < len(windows):
            window = windows[event.cursor_row]
            if window.get("drift_report"):
                self.post_message(Open("drift", window["drift_report"]))
            elif (window.get("rows") or 0) < MIN_DRIFT_ROWS:
                self.notify(f"a window of under {MIN_DRIFT_ROWS} rows is not tested for drift")
            else:
                self.notify("this report left drift out (--no-drift): u monitors with it")

    def _load_report(self, index: int) -> None:
        if not 0 <= index < len(self.rows):
            return
        report = self.rows[index]["report"]
        if not report:
            self._show_report(None)
            return

        def read() -> dict[str, Any]:
            from workbench.core.monitor.stored import get

            return get(self.project, report)

        self.load(read, self._show_report, group="report")

    def _show_report(self, body: dict[str, Any] | None) -> None:
        self.body = body
        table = self.query_one("#mon-windows", Table)
        table.say_when_empty(EMPTY_REPORT if self.rows else "")
        table.clear(columns=True)
        notes = self.query_one("#mon-notes", Static)
        plot = self.query_one("#mon-plot", PlotextPlot)
        plot.plt.clear_data()
        plot.plt.clear_figure()
        if body is None:
            table.add_columns("window")
            notes.update("")
            plot.refresh()
            return
        task = body.get("task") or "binary"
        if self.metric not in METRICS.get(task, ()):
            self.metric = MAIN_METRIC.get(task, "auc")
        m = self.metric
        assert m is not None
        # the metric, estimated and realised, next to its window: past the drift columns
        # it fell off a 160-column terminal's pane
        table.add_columns("window", "rows", escape(f"est. {m} [band]"), f"real {m}", "labelled",
                          "drifted", "pred. drift", "predicted", "errors", "p99 ms", "alerts")  # fmt: skip
        for w in body.get("windows") or []:
            e = w["metrics"].get(m) or {}
            band = (
                f"{fmt(e['estimated'])} [{fmt(e['lower'])}, {fmt(e['upper'])}]"
                if e.get("estimated") is not None else "-"
            )  # fmt: skip
            real = "-"
            if e.get("realised") is not None:
                inside = e["lower"] is not None and e["lower"] <= e["realised"] <= e["upper"]
                real = fmt(e["realised"]) + (" ok" if inside else " [red]OUT[/]")
            share = w.get("drift_share")
            drift = (
                "-"
                if share is None
                else f"{share:.0%}" + (" [red]DRIFT[/]" if w["drifted"] else "")
            )
            pred = {True: "[red]yes[/]", False: "no"}.get(w.get("prediction_drift"), "-")
            table.add_row(
                escape(window_name(body["window"], w["window"], w["first"], w.get("scored") or [])),
                f"{w['rows']:,}", band, real, f"{w['labelled']:,}", drift,
                pred, escape(predicted_text(w.get("predictions"))),
                "-" if w.get("error_rate") is None else f"{w['error_rate']:.1%}",
                fmt(w.get("p99_latency_ms")), f"[red]{escape(', '.join(w['alerts']))}[/]",
            )  # fmt: skip
        from workbench.app.monitoring import draw_timeline

        draw_timeline(plot.plt, body, m)
        plot.refresh()
        self.query_one("#mon-title", Label).update(
            f"{escape(body['model'])}: windows of {escape(body['window'])}, report "
            f"{body['report'][:8]} (enter opens a window's drift report; k: next metric)"
        )
        said = predicted_text(body.get("reference_predictions"))
        there = f" It predicted {said} there." if said != "-" else ""
        notes.update(
            escape(" ".join([f"Reference: {body['reference']}.{there}", *body.get("notes", [])]))
        )

    def action_next_metric(self) -> None:
        if self.body is None:
            return
        names = METRICS.get(self.body.get("task") or "binary", ("auc",))
        self.metric = (
            names[(names.index(self.metric) + 1) % len(names)] if self.metric in names else names[0]
        )
        self._show_report(self.body)

    def action_update(self) -> None:
        if not 0 <= self.selected < len(self.rows):
            self.notify("no model with logged predictions to monitor")
            return
        r = self.rows[self.selected]
        ref = f"{r['model']}@{r['version']}"
        status = self.query_one("#mon-status", Label)
        status.update(f"monitoring {escape(ref)}…")

        def work() -> Any:
            from workbench.app.monitoring import run

            return run(self.project, ref)

        def done(result: Any) -> None:
            fired = [f.alert.name for f in result.firings]
            status.update(
                f"{escape(ref)}: {counted(len(result.report.windows), 'window')}"
                + (f"; [red]alerts: {escape(', '.join(fired))}[/]" if fired else "")
            )
            self.refresh_data()

        def failed(message: str) -> None:
            self.say_error("mon-status", message)

        self.load(work, done, group="update", on_error=failed)
