"""Runs side by side: params (differences highlighted), metrics (best marked) and one
curve overlaid, or, for a seed group, drawn as its mean and a ±1 std band."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Header, Label, Select
from textual_plotext import PlotextPlot

from workbench.app.plots import step_axis
from workbench.core.runs.records import RunInfo, best_of
from workbench.tui.base import WBScreen
from workbench.tui.formatting import fmt
from workbench.tui.widgets.footer import WBFooter
from workbench.tui.widgets.table import Table


class CompareScreen(WBScreen):
    """Marked runs side by side: params (differences highlighted), metrics (best marked), curves."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, run_ids: list[str], band: bool = False) -> None:
        super().__init__()
        self.run_ids = run_ids
        self.metric: str | None = None
        self.band = band  # a seed group: its curve as mean ± std over the runs

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(classes="main"):
                yield Label("Params (differences in yellow)", classes="panel-title")
                yield Table(id="cmp-params", zebra_stripes=True, cell_limit=18)
                yield Label(
                    "Metrics (best in green; lower is better for loss/error)", classes="panel-title"
                )
                yield Table(id="cmp-metrics", zebra_stripes=True, cell_limit=18)
            with Vertical(classes="side-wide"):
                yield Select([], prompt="curve to overlay", id="cmp-metric")
                yield PlotextPlot(id="cmp-plot")
        yield WBFooter()

    def refresh_data(self) -> None:
        ids, metric = self.run_ids, self.metric

        def read() -> tuple[list[RunInfo], dict[str, list[tuple[int, float]]], list[str]]:
            runs = self.project.runs.get_many(ids)  # one read per table, not per run
            curves = sorted({k for r in runs for k, m in r.metrics.items() if m.count > 1})
            chosen = metric if metric in curves else (curves[0] if curves else None)
            hist = self.project.runs.histories([r.id for r in runs], chosen) if chosen else {}
            return runs, hist, curves

        self.load(read, self._show)

    def _show(
        self, data: tuple[list[RunInfo], dict[str, list[tuple[int, float]]], list[str]]
    ) -> None:
        runs, hist, curves = data
        heads = [r.ref for r in runs]
        params = self.query_one("#cmp-params", DataTable)
        params.clear(columns=True)
        params.add_columns("param", *heads)
        for k in sorted({k for r in runs for k in r.params}):
            values = [r.params.get(k) for r in runs]
            differs = len(set(values)) > 1
            # Text, not markup: a stored value such as "[/]" or "[red]x" is shown as it is
            # (as markup it was parsed: styled, or refused), and a missing one as "-"
            cells = [Text(fmt(v), style="yellow" if differs else "") for v in values]
            params.add_row(Text(fmt(k), style="bold yellow" if differs else ""), *cells)
        metrics = self.query_one("#cmp-metrics", DataTable)
        metrics.clear(columns=True)
        metrics.add_columns("metric", *heads)
        for k in sorted({k for r in runs for k in r.metrics}):
            lasts = [r.last(k) for r in runs]
            best = best_of(lasts, k)
            metrics.add_row(
                k,
                *[
                    f"[b green]{fmt(v)}[/]" if best is not None and v == best else fmt(v)
                    for v in lasts
                ],
            )
        select = self.query_one("#cmp-metric", Select)
        if curves and not getattr(self, "_set", False):
            self._set = True
            select.set_options([(c, c) for c in curves])
            self.metric = curves[0]
            select.value = curves[0]
        widget = self.query_one("#cmp-plot", PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        if self.band and len(hist) > 1:
            from workbench.core.runs.groups import band

            steps, mean, below, above = band(list(hist.values()))
            if steps:
                plt.plot(steps, above, color="gray", marker="braille", label="+1 std")
                plt.plot(steps, below, color="gray", marker="braille", label="-1 std")
                plt.plot(steps, mean, color="cyan", marker="braille",
                         label=f"mean of {len(hist)} runs")  # fmt: skip
        else:
            for r, head in zip(runs, heads, strict=True):
                pts = hist.get(r.id) or []
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    plt.plot(list(xs), list(ys), label=head, marker="braille")
        step_axis(plt, [s for pts in hist.values() for s, _ in pts])
        plt.title(self.metric or "no curves")
        widget.refresh()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.value is not Select.BLANK and event.value != self.metric:
            self.metric = str(event.value)
            self.refresh_data()
