"""Cutting a model's logged rows into windows: every N rows, every period, or one window
per request (a ``workbench predict`` scoring is one request: its batch)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from workbench.core.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

_ROWS = re.compile(r"^(\d+)\s*rows?$")
_PERIOD = re.compile(r"^(\d+)\s*(h|d|w)$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}
# A window this small is not tested for drift: three rows sent again and again (a health
# check, a demo) would each call every column drifted.
MIN_DRIFT_ROWS = 30
WINDOW_HELP = "1000rows (every N rows), 1h/1d/7d/1w (every period), or batch (each request)"


@dataclass(frozen=True)
class WindowSpec:
    kind: str  # rows | period | batch
    rows: int = 0
    every: str = ""  # polars duration, e.g. 1d
    text: str = ""


def parse_window(text: str) -> WindowSpec:
    t = text.strip().lower()
    if t == "batch":
        return WindowSpec("batch", text="batch")
    m = _ROWS.match(t)
    if m and int(m.group(1)) > 0:
        return WindowSpec("rows", rows=int(m.group(1)), text=f"{int(m.group(1))}rows")
    m = _PERIOD.match(t)
    if m and int(m.group(1)) > 0:
        return WindowSpec("period", every=f"{int(m.group(1))}{m.group(2)}", text=t)
    raise UsageError(f"invalid window {text!r}: use {WINDOW_HELP}")


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``7d``/``24h``/``2w`` ago, or an ISO date or time (UTC)."""
    t = text.strip()
    m = _PERIOD.match(t.lower())
    now = now or datetime.now(UTC)
    if m:
        ago = timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
        return (now - ago).replace(tzinfo=None)
    try:
        when = datetime.fromisoformat(t)
    except ValueError:
        raise UsageError(
            f"invalid --since {text!r}: give a time ago (7d, 24h, 2w) or a date (2026-12-01)"
        ) from None
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


def window_bounds(frame: pl.DataFrame, spec: WindowSpec) -> np.ndarray:
    """The first row of each window, then the row count (rows in time order): window
    ``i`` is rows ``bounds[i]`` to ``bounds[i + 1]``. Windows of N rows are counted
    off, not numbered row by row (a million-row log: two 8 ms passes a report)."""
    import numpy as np

    if spec.kind == "rows":
        return np.r_[np.arange(0, frame.height, spec.rows), frame.height]
    if spec.kind == "period":
        key = frame.get_column("ts").dt.truncate(spec.every)
    else:  # a request's rows are one batch, in the order requests came
        key = frame.get_column("request_id")
    changed = (key != key.shift(1)).fill_null(True).to_numpy()
    return np.r_[np.flatnonzero(changed), frame.height]


def window_label(spec: WindowSpec, first: datetime, last: datetime, rid: str, pos: int) -> str:
    if spec.kind == "period":
        if spec.every.endswith("h"):
            return first.strftime("%Y-%m-%d %H:00")
        return first.strftime("%Y-%m-%d")
    if spec.kind == "batch":
        return f"{rid[:12]} {first:%Y-%m-%d %H:%M}"
    return f"#{pos + 1} {first:%Y-%m-%d %H:%M}"


def window_name(kind: str, label: str, first: object, scored: list[str]) -> str:
    """A window as tables and its drift report show it: a scored batch by what was scored,
    "flights@12 2026-12-06 19:49", not by its request id (its ``label``, the window's
    identity for alerts, keeps that); another window with what its rows were scored
    from, if any ("2026-12-06 (flights@12)"). ``kind`` is the report's window: "batch",
    "1d", "1000rows"; ``first`` its first row's time (a datetime, or its ISO text)."""
    if not scored:
        return label
    names = ", ".join(scored)
    if kind == "batch":
        return f"{names} {str(first)[:16].replace('T', ' ')}"
    return f"{label} ({names})"
