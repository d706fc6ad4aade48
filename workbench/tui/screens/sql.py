"""SQL: read-only queries over the same documented views as ``workbench sql``."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Header, Input, Label, Static

from workbench.tui.base import WBScreen
from workbench.tui.formatting import fmt
from workbench.tui.widgets.footer import WBFooter
from workbench.tui.widgets.table import Table

ROWS = 1000  # shown at most; the CLI and export are there for more
EXAMPLE = "SELECT name, status, dataset, duration_s FROM runs ORDER BY start_time DESC"


class SqlScreen(WBScreen):
    AUTO_FOCUS = "#sql-query"
    BINDINGS = [
        Binding("slash", "focus_query", "Query"),
        Binding("escape", "focus_results", "To results", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(value=EXAMPLE, id="sql-query")
        yield Label("", id="sql-status")
        with Horizontal():
            with Vertical(id="sql-side"):
                yield Static("Views: enter queries one", classes="panel-title")
                yield Table(id="sql-views", cursor_type="row")
                yield Static("", id="sql-columns")
            yield Table(id="sql-results", cursor_type="row", zebra_stripes=True)
        yield WBFooter()

    def on_mount(self) -> None:
        self.query_one("#sql-views", DataTable).add_columns("view", "one row per…")
        self._views: dict[str, dict[str, Any]] = {}
        self.load(self._describe, self._show_views, group="views")

    def _describe(self) -> dict[str, dict[str, Any]]:
        from workbench.core.store.sql import describe

        return describe(self.project)

    def _show_views(self, views: dict[str, dict[str, Any]]) -> None:
        self._views = views
        table = self.query_one("#sql-views", DataTable)
        table.clear()
        for name, v in views.items():
            table.add_row(name, v["about"], key=name)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id != "sql-views" or event.row_key.value not in self._views:
            return
        cols = self._views[event.row_key.value]["columns"]
        self.query_one("#sql-columns", Static).update(
            "\n".join(f"{escape(c)} [dim]{escape(t)}[/]" for c, t in cols)
        )

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "sql-views" and event.row_key.value:
            self._query = f"SELECT * FROM {event.row_key.value} LIMIT 100"
            self.query_one("#sql-query", Input).value = self._query
            self.refresh_data()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._query = event.value
        self.refresh_data()

    # What the results show: the query last submitted. A change elsewhere re-runs it,
    # never the half-typed text in the box (that ran "SELEC" and showed a syntax error).
    _query = EXAMPLE

    def refresh_data(self) -> None:
        text = self._query

        def run() -> Any:
            from workbench.core.store.sql import query

            return query(self.project, text, limit=ROWS)

        self.load(run, self._show, group="query", on_error=self._error)

    def _error(self, message: str) -> None:
        self.say_error("sql-status", message)

    def _show(self, res: Any) -> None:
        table = self.query_one("#sql-results", DataTable)
        table.clear(columns=True)
        table.add_columns(*[escape(c) for c in res.columns])
        for row in res.rows:
            table.add_row(*[escape(fmt(v)) if v is not None else "-" for v in row])
        more = f" (first {ROWS:,}; use workbench sql or export for all)" if res.truncated else ""
        self.query_one("#sql-status", Label).update(
            f"{len(res.rows):,} row{'s' if len(res.rows) != 1 else ''}{more}"
        )

    def action_focus_query(self) -> None:
        self.query_one("#sql-query", Input).focus()

    def action_focus_results(self) -> None:
        self.query_one("#sql-results", DataTable).focus()
