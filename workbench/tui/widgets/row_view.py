"""A row of a table shown whole: the place a cut cell (``table.elide``) is read in full."""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class RowView(ModalScreen[None]):
    """Each column's name and its cell's whole text, one under the other (long values
    wrap instead of being cut); the column under a cell cursor is marked."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Close"),
        Binding("e", "app.pop_screen", "Close", show=False),
        Binding("q", "app.pop_screen", "Close", show=False),
    ]

    def __init__(self, cells: list[tuple[str, str]], column: int | None = None) -> None:
        super().__init__()
        self.cells, self.column = cells, column

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="row-view"):
            yield Label("The whole row (escape closes)", classes="panel-title")
            for i, (label, value) in enumerate(self.cells):
                mark = "▶ " if i == self.column else ""
                yield Static(
                    f"[b]{mark}{escape(label)}[/]\n  {escape(value) or '-'}",
                    classes="row-view-cell",
                )
