"""Drift: pick reference and current (or a model and a batch), read the per-column table,
look at any column's distributions, and follow a column over a series of versions."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Header, Input, Label, Static
from textual_plotext import PlotextPlot

from workbench.tui.base import WBScreen
from workbench.tui.messages import ShowError
from workbench.tui.widgets.footer import WBFooter
from workbench.tui.widgets.table import Table

# The report's columns (app.drift_report.HEADER) in the order the screen shows them:
# column, drifted, why, statistic, p-value, threshold, method, type.
ORDER = (0, 6, 7, 3, 4, 5, 2, 1)
HEADER = ("column", "type", "method", "statistic", "p-value", "threshold", "drifted", "why")


class DriftScreen(WBScreen):
    AUTO_FOCUS = "#drift-reports"
    BINDINGS = [
        Binding("slash", "focus_form", "Compare…"),
        Binding("t", "timeline", "Timeline of column"),
        Binding("escape", "focus_table", "To table", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.report: Any = None
        self.timeline: list[Any] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="drift-bar"):
            yield Input(placeholder="reference (e.g. NAME@1), empty with a model", id="drift-ref")
            yield Input(placeholder="current: NAME@2, NAME@2..6 or a file path", id="drift-cur")
            yield Input(placeholder="model (optional), e.g. MODEL@production", id="drift-model")
        yield Static(
            "/ to compare: enter in any box runs it; t shows the selected column across a series",
            id="drift-summary",
        )
        with Horizontal():
            with Vertical(classes="main"):
                yield Table(id="drift-table", cursor_type="row", zebra_stripes=True)
                yield Label("Recent reports (enter opens)", classes="panel-title")
                yield Table(id="drift-reports", cursor_type="row", zebra_stripes=True)
            with Vertical(classes="side-wide"):
                yield PlotextPlot(id="drift-plot")
        yield WBFooter()

    def on_mount(self) -> None:
        # The verdict and its reason first: at 120 columns they were past the edge.
        self.query_one("#drift-table", DataTable).add_columns(*(HEADER[i] for i in ORDER))
        self.query_one("#drift-reports", DataTable).add_columns(
            "report", "reference → current", "drifted cols", "verdict"
        )

    def refresh_data(self) -> None:
        def read() -> tuple[list[dict[str, Any]], list[Any], list[Any]]:
            p = self.project
            return p.drift.list(limit=30), p.datasets.list(), p.models.list()

        self.load(read, self._show_reports, group="reports")

    def _show_reports(self, data: tuple[list[dict[str, Any]], list[Any], list[Any]]) -> None:
        from workbench.tui.hints import empty, example_ref

        items, datasets, models = data
        # Examples in the boxes from this project, not another's.
        ref = example_ref(datasets)
        name, _, version = ref.partition("@")
        earlier = f"{name}@{int(version) - 1}" if version.isdigit() and int(version) > 1 else ref
        self.query_one(
            "#drift-ref", Input
        ).placeholder = f"reference (e.g. {earlier}), empty with a model"
        self.query_one(
            "#drift-cur", Input
        ).placeholder = f"current: {ref}, {name}@1..{version or 'N'} or a file path"
        model = f"{models[0].name}@production" if models else "NAME@production"
        self.query_one("#drift-model", Input).placeholder = f"model (optional), e.g. {model}"
        table = self.query_one("#drift-reports", Table)
        table.say_when_empty(empty("drift", datasets))
        table.clear()
        for r in items:
            table.add_row(
                r["id"][:8],
                # escaped as a whole: the model's dim markup makes this cell markup, in
                # which a file named "batch[b].csv" would lose its "[b]"
                escape(f"{r['reference']} → {r['current']}")
                + (f" [dim]({escape(r['model'])})[/]" if r["model"] else ""),
                f"{r['n_drifted']}/{r['n_tested']}",
                "[b red]DRIFT[/]" if r["drifted"] else "[green]ok[/]",
                key=r["id"],
            )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        from workbench.core.store.refs import expand_range

        ref = self.query_one("#drift-ref", Input).value.strip() or None
        cur = self.query_one("#drift-cur", Input).value.strip()
        model = self.query_one("#drift-model", Input).value.strip() or None
        if not cur:
            self.query_one("#drift-cur", Input).focus()
            return
        self.query_one("#drift-summary", Static).update("comparing…")

        def run() -> list[Any]:
            return self.project.drift.series(ref, expand_range(cur), model=model)

        def failed(message: str) -> None:  # say so where "comparing…" was, and why
            self.query_one("#drift-summary", Static).update("comparison refused (see the error)")
            self.post_message(ShowError(message))

        self.load(run, self._show_series, group="compare", on_error=failed)

    def _show_series(self, reports: list[Any]) -> None:
        self.timeline = reports
        self._show_report(reports[-1])
        self.refresh_data()

    def show_report(self, report_id: str) -> None:
        self.load(lambda: self.project.drift.get(report_id), self._show_report, group="compare")

    def _show_report(self, report: Any) -> None:
        from workbench.app.drift_report import compared, ordered, row_cells, shared_why

        if not self.query_one("#drift-table", DataTable).columns:
            # opened from another screen (Monitor, the palette) before this one mounted:
            # a fast load arrived before on_mount gave the table its columns
            self.call_after_refresh(self._show_report, report)
            return
        self.report = report
        verdict = "[b red]DATASET DRIFT[/]" if report.drifted else "[green]no dataset drift[/]"
        series = f"   (last of a series of {len(self.timeline)})" if len(self.timeline) > 1 else ""
        shared = shared_why(report)
        said = shared.line()
        self.query_one("#drift-summary", Static).update(
            f"{escape(compared(report))}: {verdict}, "
            f"{report.n_drifted} of {len(report.tested)} columns drifted "
            f"({report.share:.0%}){series}" + (f"\n[dim]{escape(said)}[/]" if said else "")
        )
        table = self.query_one("#drift-table", DataTable)
        table.clear()
        for c in ordered(report):
            cells = row_cells(c, shared)
            if c.drifted is not None:  # the verdict cell, coloured
                cells[6] = "[b red]DRIFT[/]" if c.drifted else "[green]no[/]"
            table.add_row(*(cells[i] for i in ORDER), key=c.column)
        table.focus()
        if report.columns:
            self._plot(ordered(report)[0].column)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "drift-table" and event.row_key.value and self.report is not None:
            self._plot(event.row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "drift-reports" and event.row_key.value:
            self.timeline = []
            self.show_report(event.row_key.value)

    def _plot(self, column: str) -> None:
        from workbench.app.drift_report import draw

        col = self.report.column(column)
        widget = self.query_one("#drift-plot", PlotextPlot)
        widget.plt.clear_data()
        widget.plt.clear_figure()
        if col.plot:
            # three cells a pair of bars at least, past the axis labels
            bins = max(4, (widget.size.width - 8) // 3)
            draw(widget.plt, col, self.report.reference, self.report.current, max_bins=bins)
        else:
            widget.plt.title(f"{column}: {col.status} ({col.reason})")
        widget.refresh()

    def action_focus_table(self) -> None:
        self.query_one("#drift-table", DataTable).focus()

    def action_focus_form(self) -> None:
        self.query_one("#drift-ref", Input).focus()

    def action_timeline(self) -> None:
        """The selected column's statistic over the compared series (or the stored reports)."""
        table = self.query_one("#drift-table", DataTable)
        if self.report is None or not table.row_count:
            return
        column = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        reports = self.timeline if len(self.timeline) > 1 else []
        if not reports:
            self.notify("compare a range (e.g. churn@2..6) to see a timeline", severity="warning")
            return
        widget = self.query_one("#drift-plot", PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        xs = list(range(1, len(reports) + 1))
        ys = [
            next((c.statistic or 0.0 for c in r.columns if c.column == column), 0.0)
            for r in reports
        ]
        plt.plot(xs, ys, marker="braille", label=column)
        thr = next(
            (c.threshold for c in reports[-1].columns if c.column == column and c.threshold), None
        )
        if thr:
            plt.hline(thr, "red")
        plt.xticks([float(x) for x in xs], [r.current for r in reports])
        plt.title(f"{column} drift over the series")
        widget.refresh()
