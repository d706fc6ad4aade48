"""Long cells: cut to a table's width limit, kept whole for the row view (``e``)."""

from __future__ import annotations

from typing import Any

from rich.text import Text


class Elided(Text):
    """A cell cut to the column's limit that keeps its whole text for the row view."""

    full: str = ""


def elide(value: Any, limit: int) -> Any:
    """``value`` cut to ``limit`` cells with an ellipsis when longer, so one long cell (a
    features list, a reason) cannot push every other column off the screen; ``e`` on the
    row shows it whole. A marked-up cell keeps its colours up to the cut."""
    if isinstance(value, str):
        if len(value) <= limit or "\n" in value:
            return value
        text = Text(value, end="")
        if "[" in value:
            import contextlib

            from rich.errors import MarkupError

            with contextlib.suppress(MarkupError):  # not markup after all: shown as typed
                text = Text.from_markup(value, end="")
    elif isinstance(value, Text) and "\n" not in value.plain:
        text = value
    else:
        return value
    if text.cell_len <= limit:
        return value
    cut = Elided(text.plain, style=text.style, end="", spans=list(text.spans))
    cut.truncate(limit, overflow="ellipsis")
    cut.full = text.plain
    return cut


def full_text(value: Any) -> str:
    """What a cell says, whole: an elided cell's full text, markup resolved."""
    if isinstance(value, Elided):
        return value.full
    if isinstance(value, Text):
        return value.plain
    if isinstance(value, str) and "[" in value:
        from rich.errors import MarkupError

        try:
            return Text.from_markup(value).plain
        except MarkupError:
            return value
    return "" if value is None else str(value)
