"""How numbers, statuses and distributions read on screen (shared by every screen)."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from workbench.core.text import inert


def fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != v:
            return "NaN"
        if v in (float("inf"), float("-inf")):
            return str(v)
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
            return f"{v:.{digits}g}"
        if v.is_integer():  # a count logged as a float (trials, rows): 12, not 12.0000
            return f"{int(v):,}"
        return f"{v:.{digits}f}"
    return inert(str(v))  # stored text never drives the terminal


STATUS_COLOURS = {"finished": "green", "running": "yellow", "failed": "red", "killed": "red"}


def status_markup(status: str) -> str:
    return f"[{STATUS_COLOURS.get(status, 'white')}]{status}[/]"


def status_text(status: str) -> Text:
    """A status cell for a table: a styled Text is measured and drawn without parsing
    markup, which a table of hundreds of runs would otherwise do for every row."""
    return Text(status, style=STATUS_COLOURS.get(status, "white"), end="")


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(counts: list[int] | None) -> str:
    if not counts:
        return ""
    top = max(counts) or 1
    return "".join(
        SPARK[min(len(SPARK) - 1, int(c / top * (len(SPARK) - 1) + 0.5))] for c in counts
    )
