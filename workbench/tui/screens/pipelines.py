"""Pipelines: every run of the continuous-training loops, and the steps that decided it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Header, Static

from workbench.tui.base import WBScreen
from workbench.tui.widgets.footer import WBFooter
from workbench.tui.widgets.table import Table

if TYPE_CHECKING:
    from workbench.core.runs.pipeline_runs import PipelineRunRecord

OUTCOME = {
    "promoted": "[green]promoted[/]",
    "kept": "[yellow]kept champion[/]",
    "no_retrain": "no retrain",
    "refused": "[red]refused[/]",
    "failed": "[red]failed[/]",
}
MARK = {"ok": "[green]✓[/]", "stop": "[yellow]■[/]", "fail": "[red]✗[/]"}


class PipelinesScreen(WBScreen):
    AUTO_FOCUS = "#pl-runs"

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical():
            yield Static(
                "Pipeline runs ([pipeline.NAME] in workbench.toml; `workbench pipeline run`)",
                classes="panel-title",
            )
            yield Table(id="pl-runs", cursor_type="row", zebra_stripes=True)
            yield Static("Steps of the selected run", classes="panel-title")
            yield Table(id="pl-steps", zebra_stripes=True)
        yield WBFooter()

    def on_mount(self) -> None:
        self.query_one("#pl-runs", DataTable).add_columns(
            "run", "pipeline", "started (UTC)", "batch", "outcome", "why"
        )
        self.query_one("#pl-steps", DataTable).add_columns("", "step", "detail", "seconds")
        self._steps: dict[str, list[dict[str, Any]]] = {}

    def refresh_data(self) -> None:
        def read() -> tuple[list[PipelineRunRecord], str]:
            from workbench.tui.hints import no_pipeline_runs

            p = self.project
            return p.pipeline_runs.history(limit=500), no_pipeline_runs(p.settings.pipelines)

        self.load(read, self._show)

    def _show(self, data: tuple[list[PipelineRunRecord], str]) -> None:
        rows, hint = data
        table = self.query_one("#pl-runs", Table)
        table.say_when_empty(hint)
        table.clear()
        self._steps = {}
        for r in rows:
            self._steps[r.id] = r.steps
            table.add_row(
                r.id[:8],
                escape(r.pipeline),
                f"{r.started_at:%Y-%m-%d %H:%M}",
                escape(r.batch),
                OUTCOME.get(r.outcome, r.outcome),
                escape(r.reason[:100]),
                key=r.id,
            )
        if rows:
            self._show_steps(rows[0].id)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "pl-runs" and event.row_key.value:
            self._show_steps(event.row_key.value)

    def _show_steps(self, run_id: str) -> None:
        table = self.query_one("#pl-steps", DataTable)
        table.clear()
        for s in self._steps.get(run_id, []):
            table.add_row(
                MARK.get(s["status"], "?"), s["step"], escape(s["detail"]), f"{s['seconds']:.1f}"
            )
