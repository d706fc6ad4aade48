"""One artifact of a run, shown as what it is: the confusion matrix as a table with each
class's recall and precision, feature importance as ranked bars, anything else as text."""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Header, Label, Static
from textual_plotext import PlotextPlot

from workbench.app.artifacts import ArtifactView
from workbench.tui.base import WBScreen
from workbench.tui.formatting import fmt
from workbench.tui.widgets.footer import WBFooter
from workbench.tui.widgets.table import Table

# Bars past this many would be thinner than a line; the table beside lists them all.
MOST_BARS = 20


class ArtifactScreen(WBScreen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, run_ref: str, path: str) -> None:
        super().__init__()
        self.run_ref, self.path = run_ref, path

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(
            f"{escape(self.path)} of {self.run_ref}", id="artifact-title", classes="panel-title"
        )
        with Horizontal(id="artifact-body"):
            yield Table(id="artifact-table", zebra_stripes=True, cursor_type="row")
            yield PlotextPlot(id="artifact-plot")
            with VerticalScroll(id="artifact-scroll"):
                yield Static(id="artifact-text")
        yield WBFooter()

    def refresh_data(self) -> None:
        from workbench.app import artifacts

        self.load(lambda: artifacts.read(self.project, self.run_ref, self.path), self._show)

    def _show(self, view: ArtifactView) -> None:
        self.query_one("#artifact-title", Label).update(f"{escape(view.path)} of {view.run}")
        table = self.query_one("#artifact-table", DataTable)
        plot = self.query_one("#artifact-plot", PlotextPlot)
        scroll = self.query_one("#artifact-scroll", VerticalScroll)
        table.display = view.form in ("confusion", "importance")
        plot.display = view.form == "importance"
        scroll.display = view.form in ("text", "binary")
        table.clear(columns=True)
        if view.form == "confusion":
            self._confusion(table, view)
        elif view.form == "importance":
            self._importance(table, plot, view)
        else:
            self.query_one("#artifact-text", Static).update(escape(view.text) or "(empty)")
            scroll.focus()

    def _confusion(self, table: DataTable[object], view: ArtifactView) -> None:
        self.query_one("#artifact-title", Label).update(
            f"{escape(view.path)} of {view.run}: rows are the true class, columns the "
            "predicted one (validation rows); the diagonal is right"
        )
        table.add_columns("true \\ predicted", *view.labels, "rows", "recall", "precision")
        for i, (label, count, recall, precision) in enumerate(view.per_class()):
            cells = [
                f"[b green]{n:,}[/]" if j == i else f"{n:,}" for j, n in enumerate(view.matrix[i])
            ]
            table.add_row(label, *cells, f"{count:,}", fmt(recall), fmt(precision))
        table.focus()

    def _importance(self, table: DataTable[object], plot: PlotextPlot, view: ArtifactView) -> None:
        total = sum(v for _, v in view.importance) or 1.0
        table.add_columns("#", "feature", "importance", "share")
        for rank, (name, value) in enumerate(view.importance, 1):
            table.add_row(str(rank), name, fmt(value), f"{value / total:.1%}")
        top = view.importance[:MOST_BARS]
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        positions = [float(p) for p in range(len(top), 0, -1)]  # the largest at the top
        plt.bar(positions, [v / total * 100 for _, v in top], orientation="horizontal", marker="█")
        plt.yticks(positions, [name[:18] for name, _ in top])
        plt.xlabel("% of total importance")
        plt.title(f"feature importance (top {len(top)} of {len(view.importance)})")
        plot.refresh()
        table.focus()
