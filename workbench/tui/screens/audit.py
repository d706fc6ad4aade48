"""Audit: the hash-chained trail, filterable by subject, with ``verify`` one key away."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Header, Input, Static

from workbench.textfmt import AUDIT_LINE_SKIPS, brief, counted
from workbench.tui.base import WBScreen
from workbench.tui.messages import ShowError
from workbench.tui.widgets.footer import WBFooter
from workbench.tui.widgets.table import Table

LIMIT = 500


class AuditScreen(WBScreen):
    AUTO_FOCUS = "#audit"
    _said_none = False  # the status says the filter matched nothing
    BINDINGS = [
        Binding("v", "verify", "Verify store"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("escape", "focus_table", "To table", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(
            placeholder="subject (e.g. churn, churn-model@production, run:4f2a…), then enter",
            id="audit-filter",
        )
        yield Static(id="audit-status")
        # the details are what a reader reads: wider than a cell elsewhere (e shows it whole)
        yield Table(id="audit", cursor_type="row", zebra_stripes=True, cell_limit=80)
        yield WBFooter()

    def on_mount(self) -> None:
        self.query_one("#audit", DataTable).add_columns(
            "#", "time (UTC)", "actor", "action", "subject", "details"
        )

    def refresh_data(self) -> None:
        subject = self.query_one("#audit-filter", Input).value.strip() or None

        def read() -> list[dict[str, Any]]:
            from workbench.core.store import audit

            with self.project.catalog.read() as con:
                return audit.entries(con, subject=subject, limit=LIMIT)

        self.load(read, self._show)

    def _show(self, entries: list[dict[str, Any]]) -> None:
        from workbench.core.store.audit import shown

        table = self.query_one("#audit", DataTable)
        table.clear()
        subject = self.query_one("#audit-filter", Input).value.strip()
        status = self.query_one("#audit-status", Static)
        if subject and not entries:
            status.update(f"no entries about {escape(subject)}")
            self._said_none = True
        elif self._said_none:  # a verify result stays
            status.update("")
            self._said_none = False
        for e in entries:
            table.add_row(
                str(e["seq"]),
                e["at"],
                e["actor"],
                e["action"],
                shown(e["subject"]),
                brief(e["details"], 120, skip=AUDIT_LINE_SKIPS),
            )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.refresh_data()
        self.query_one("#audit", DataTable).focus()

    def action_focus_filter(self) -> None:
        self.query_one("#audit-filter", Input).focus()

    def action_focus_table(self) -> None:
        self.query_one("#audit", DataTable).focus()

    def action_verify(self) -> None:
        from workbench.core.store.verify import verify

        self.query_one("#audit-status", Static).update("verifying: re-hashing every object…")
        self.load(lambda: verify(self.project), self._verified, group="verify")

    def _verified(self, report: Any) -> None:
        status = self.query_one("#audit-status", Static)
        if report.ok:
            status.update(
                f"[green]verify: OK[/] — {report.audit_entries:,} audit entries chained, "
                f"{report.objects_checked:,} objects re-hashed"
                + (f", {len(report.orphans)} unreferenced" if report.orphans else "")
                + "".join(
                    f"; {n:,} left out of {by} by choice" for by, n in report.left_out.items()
                )
            )
            self.notify("verify: OK")
        else:
            status.update("[red]verify: FAILED[/]\n" + escape("\n".join(report.problems[:10])))
            self.post_message(
                ShowError(
                    f"verify found {counted(len(report.problems), 'problem')}: {report.problems[0]}"
                )
            )
