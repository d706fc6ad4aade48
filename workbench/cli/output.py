"""Printing for the CLI: Rich tables for people, ``--json`` for programs.

Rich is imported on first use so that commands which print little stay fast.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from typing import Any

import click

from workbench.core.text import inert, inert_json

_console = None

# One --json for every listing, so they all read the same in --help.
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def console() -> Any:
    global _console
    if _console is None:
        from rich.console import Console

        class InertConsole(Console):
            """Prints text with control, invisible and bidi characters escaped: stored text
            (a tag, a message, a column name) must never drive the terminal."""

            def print(self, *objects: Any, **kw: Any) -> None:
                super().print(*(inert(o) if isinstance(o, str) else o for o in objects), **kw)

        width = None
        if not sys.stdout.isatty():  # pipes and files: no terminal to fit, so don't wrap at 80
            width = int(os.environ.get("COLUMNS", "0") or 0) or 160
        _console = InertConsole(highlight=False, soft_wrap=False, width=width)
    return _console


def echo(message: Any = "", err: bool = False, nl: bool = True) -> None:
    """``click.echo`` for text that may quote what a user stored, escaped as ``inert``."""
    click.echo(inert(str(message)), err=err, nl=nl)


# plotext's colours: Select Graphic Rendition and nothing else (no cursor moves, no titles)
_SGR = re.compile(r"(\x1b\[[0-9;]*m)")


def echo_chart(text: str) -> None:
    """A chart plotext drew. Its colours (which tell one curve from the next) reach a
    terminal that shows colour; a pipe, a file or NO_COLOR gets the bare characters.
    Every other control character is escaped as ``echo`` does: the chart's labels may
    quote a column name or a category value someone stored."""
    con = console()
    color = con.is_terminal and con.color_system is not None and not con.no_color
    parts = _SGR.split(text)
    click.echo(
        "".join(p if i % 2 else inert(p) for i, p in enumerate(parts) if color or not i % 2),
        color=color,
    )


def print_json(data: Any) -> None:
    """Typed results (anything with ``to_dict``) print as their dict; dates as text."""
    text = json.dumps(data, indent=2, default=_plain, ensure_ascii=False)
    sys.stdout.write(inert_json(text) + "\n")


def _plain(value: Any) -> Any:
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else str(value)


def fmt_num(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
            return f"{v:.{digits}g}"
        return f"{v:,.{digits}f}".rstrip("0").rstrip(".") if "." in f"{v:.{digits}f}" else f"{v}"
    return str(v)


def fmt_column(values: list[Any], digits: int = 4) -> list[str]:
    """A column of numbers with one number of decimals for all of them (the most any
    needs, up to ``digits``), so it reads down: "0.8160" above "0.8135", where each
    formatted alone gave "0.816". Values ``fmt_num`` writes otherwise (ints, very large
    or small numbers, text) are written as it writes them."""

    def plain(v: Any) -> bool:
        return isinstance(v, float) and math.isfinite(v) and (v == 0 or 1e-3 <= abs(v) < 1e6)

    places = [len(fmt_num(v, digits).partition(".")[2]) for v in values if plain(v)]
    width = max(places, default=0)
    return [f"{v:,.{width}f}" if plain(v) else fmt_num(v, digits) for v in values]


def table(title: str | None, columns: list[str], rows: list[list[Any]], **kw: Any) -> Any:
    from rich.table import Table

    t = Table(title=title, title_justify="left", header_style="bold", **kw)
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(
            *[
                x if hasattr(x, "__rich__") or hasattr(x, "__rich_console__") else inert(str(x))
                for x in r
            ]
        )
    return t


def escape(text: Any) -> str:
    from rich.markup import escape as _escape

    return _escape(inert(str(text)))
