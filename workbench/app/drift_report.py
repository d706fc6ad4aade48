"""Drift reports as files people share: Markdown (with text plots) or self-contained HTML.

Kept apart from the engine: it only reads a finished :class:`DriftReport`, so the CLI
and the TUI write identical files. The HTML has no scripts and loads nothing, so it
opens the same in an air-gapped room.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.drift.stattests import SMALL_REFERENCE_ROWS
from workbench.core.errors import UsageError
from workbench.core.text import inert_line

if TYPE_CHECKING:
    from workbench.core.drift.columns import ColumnDrift, DriftReport


# The fills of reference and current bars.
MARKERS = ("█", "░")


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v == float("inf"):
        return "inf"
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.3g}"
    return f"{v:.4f}"


def ordered(report: DriftReport) -> list[ColumnDrift]:
    """Drifted first, then by how far past the threshold; untested columns last."""
    return sorted(
        report.columns,
        key=lambda c: (c.severity is None, not c.drifted, -(c.severity or 0.0)),
    )


def plot_labels(plot: dict[str, Any]) -> list[str]:
    if plot["type"] == "bars":
        return [str(x)[:18] for x in plot["labels"]]
    edges = plot["edges"]
    if plot.get("whole"):  # whole-number bins: each labelled by the first value it holds
        return [str(int(round(e + 0.5))) for e in edges[:-1]]
    centres = [(edges[i] + edges[i + 1]) / 2 for i in range(len(edges) - 1)]
    width = edges[1] - edges[0] if len(edges) > 1 else 1.0
    if not 1e-4 <= abs(width) < 1e6:
        return [fmt(c) for c in centres]
    # As many decimals as the bin width needs to tell neighbours apart: 20.7 30.4, not
    # 20.6645 30.4115; 0.15-wide bins get two.
    decimals = max(0, -math.floor(math.log10(abs(width))) + (1 if abs(width) < 1 else 0))
    return [f"{c:.{decimals}f}" for c in centres]


def draw(
    plt: Any,
    col: ColumnDrift,
    ref_label: str,
    cur_label: str,
    max_ticks: int = 8,
    max_bins: int | None = None,
) -> None:
    """Reference and current shares side by side on a plotext figure (the CLI's module or
    the TUI widget's). Ticks are chosen here: left to plotext, which ones show varies
    with Python's string-hash seed, so the same report would not draw the same twice.
    ``max_bins``: a narrow figure gets neighbouring histogram bins merged, so each pair
    of bars keeps a few cells instead of drawing over its neighbours."""
    if not col.plot:
        raise UsageError(f"column {col.column!r} has no distribution to draw ({col.reason})")
    # category values and names are stored text: escaped before they reach the chart
    labels = [inert_line(x) for x in plot_labels(col.plot)]
    ref_label, cur_label = inert_line(ref_label), inert_line(cur_label)
    ref, cur = col.plot["ref"], col.plot["cur"]
    group = -(-len(labels) // max_bins) if max_bins and col.plot["type"] != "bars" else 1
    if group > 1:  # each merged bin named by its first value, holding their shares' sum
        labels = labels[::group]
        ref = [sum(ref[i : i + group]) for i in range(0, len(ref), group)]
        cur = [sum(cur[i : i + group]) for i in range(0, len(cur), group)]
    xs = list(range(1, len(labels) + 1))  # numbers, not strings: see above
    # Side by side and in two fills (solid and shaded), so the two read apart on a
    # monochrome terminal, a printout or to a colour-blind eye, not by colour alone.
    plt.multiple_bar(
        xs,
        [[100 * v for v in ref], [100 * v for v in cur]],
        labels=[f"{ref_label} (reference)", f"{cur_label} (current)"],
        marker=list(MARKERS),
    )
    step = max(1, -(-len(labels) // max_ticks))
    plt.xticks(xs[::step], labels[::step])
    verdict = "DRIFTED" if col.drifted else "no drift" if col.drifted is False else col.status
    plt.title(f"{inert_line(col.column)}: {verdict} ({col.method or '-'} {fmt(col.statistic)})")
    plt.ylabel("% of rows")


def plot_text(
    col: ColumnDrift, ref_label: str, cur_label: str, width: int = 100, color: bool = False
) -> str:
    """The chart as text: with plotext's colour codes for a terminal (``color``), bare
    for a Markdown report, where they would show as characters."""
    import plotext as plt

    plt.clear_figure()
    draw(plt, col, ref_label, cur_label)
    plt.plotsize(width, 22)
    plt.theme("clear")
    text: str = plt.build()
    return text if color else plt.uncolorize(text)


def compared(report: DriftReport) -> str:
    """What a report compares, as its titles say it: a model-aware one names its model
    (its inputs and its prediction were compared), which a plain comparison of the same
    versions, with fewer columns, would otherwise be mistaken for."""
    model = report.options.get("model")
    return f"{report.reference} → {report.current}" + (f" (model {model})" if model else "")


def _summary(report: DriftReport) -> str:
    verdict = "DRIFTED" if report.drifted else "no dataset drift"
    return (
        f"{report.n_drifted} of {len(report.tested)} tested columns drifted "
        f"({report.share:.0%}); dataset: {verdict} (threshold {report.drift_share:.0%})"
    )


_DEFAULT = "default: "
# The clause of a default method's reason that says on which side of SMALL_REFERENCE_ROWS
# the reference is, as core.drift.stattests.default_method writes it.
SIZE_CLAUSE = re.compile(r"; [\d,]+ ref values (<=|>) \d+")


@dataclass(frozen=True)
class SharedWhy:
    """What every tested column's "why" says alike, said once above the table instead of
    on each row (a report of 25 columns repeated "27,564 ref values > 1000" 25 times and
    wrapped every row): that each method is Evidently's default, and on which side of
    SMALL_REFERENCE_ROWS every reference is. The stored reasons stay whole."""

    default: bool = False
    side: str | None = None  # ">" or "<=", as the reasons write it

    def line(self) -> str | None:
        """The sentence above the table, or None when the rows share nothing."""
        parts = []
        if self.default:
            parts.append("Evidently's default methods (by type and distinct values)")
        if self.side == ">":
            parts.append(
                f"every tested column has > {SMALL_REFERENCE_ROWS:,} reference values, so "
                "distances, not tests"
            )
        elif self.side == "<=":
            parts.append(
                f"every tested column has <= {SMALL_REFERENCE_ROWS:,} reference values, so "
                "tests, not distances"
            )
        return "; ".join(parts) + "." if parts else None

    def why(self, c: ColumnDrift) -> str:
        """A column's "why / notes" without what the line above already says."""
        reason = c.reason
        if c.method and self.default and reason.startswith(_DEFAULT):
            reason = reason[len(_DEFAULT) :]
        if c.method and self.side:
            reason = SIZE_CLAUSE.sub("", reason)
        return "; ".join([reason, *c.notes])


def shared_why(report: DriftReport) -> SharedWhy:
    """What the "why" of two or more columns with a method has in common."""
    chosen = [c for c in report.columns if c.method]
    if len(chosen) < 2:
        return SharedWhy()
    sides = {m.group(1) if (m := SIZE_CLAUSE.search(c.reason)) else None for c in chosen}
    return SharedWhy(
        default=all(c.reason.startswith(_DEFAULT) for c in chosen),
        side=sides.pop() if len(sides) == 1 else None,
    )


def row_cells(c: ColumnDrift, shared: SharedWhy | None = None) -> list[str]:
    """One column's cells in HEADER order (the CLI, the TUI and the reports share it);
    with ``shared`` (the report's :func:`shared_why`), the why without what it says."""
    drifted = "yes" if c.drifted else "no" if c.drifted is False else c.status
    return [
        c.column,
        c.kind,
        c.method or "-",
        fmt(c.statistic),
        fmt(c.p_value),
        fmt(c.threshold),
        drifted,
        (shared or SharedWhy()).why(c),
    ]


HEADER = ["column", "type", "method", "statistic", "p-value", "threshold", "drifted", "why / notes"]


def to_markdown(report: DriftReport) -> str:
    def cell(x: str) -> str:
        return x.replace("|", "\\|").replace("\n", " ")

    shared = shared_why(report)
    said = shared.line()
    lines = [
        f"# Drift: {compared(report)}",
        "",
        f"{_summary(report)}. Report `{report.id[:12]}`, {report.created_at:%Y-%m-%d %H:%M} UTC.",
        *(["", said] if said else []),
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += [
        "| " + " | ".join(cell(x) for x in row_cells(c, shared)) + " |" for c in ordered(report)
    ]
    for c in ordered(report):
        if c.plot:
            lines += [
                "",
                f"## {c.column}",
                "",
                "```",
                plot_text(c, report.reference, report.current, 90),
                "```",
            ]
    return "\n".join(lines) + "\n"


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
tr.drift td{background:#fde8e8}.legend span{display:inline-block;width:12px;height:12px;margin:0 4px}
"""


def _svg(c: ColumnDrift) -> str:
    plot = c.plot or {}
    labels = plot_labels(plot)
    ref, cur = plot["ref"], plot["cur"]
    top = max([*ref, *cur, 1e-9])
    w, h, pad = 34, 160, 20
    parts = [f'<svg width="{len(labels) * w + 2 * pad}" height="{h + 70}" role="img">']
    for i, label in enumerate(labels):
        x = pad + i * w
        for j, (vals, color) in enumerate(((ref, "#4e79a7"), (cur, "#e15759"))):
            bh = h * vals[i] / top
            parts.append(
                f'<rect x="{x + 3 + j * 14}" y="{pad + h - bh:.1f}" width="13" height="{bh:.1f}" '
                f'fill="{color}"><title>{html.escape(label)}: {100 * vals[i]:.2f}%</title></rect>'
            )
        parts.append(
            f'<text x="{x + w / 2}" y="{pad + h + 12}" font-size="9" text-anchor="end" '
            f'transform="rotate(-45 {x + w / 2} {pad + h + 12})">{html.escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def to_html(report: DriftReport) -> str:
    e = html.escape
    shared = shared_why(report)
    said = shared.line()
    rows = []
    for c in ordered(report):
        cls = ' class="drift"' if c.drifted else ""
        cells = "".join(f"<td>{e(x)}</td>" for x in row_cells(c, shared))
        rows.append(f"<tr{cls}>{cells}</tr>")
    plots = [
        f"<h2>{e(c.column)}</h2><p>{e(c.method or '')} {fmt(c.statistic)} — {e(c.reason)}</p>{_svg(c)}"
        for c in ordered(report)
        if c.plot
    ]
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Drift {e(compared(report))}</title><style>{_CSS}</style>"
        f"</head><body><h1>Drift: {e(compared(report))}</h1>"
        f"<p>{e(_summary(report))}. Report {e(report.id[:12])}, "
        f"{report.created_at:%Y-%m-%d %H:%M} UTC.</p>"
        + (f"<p>{e(said)}</p>" if said else "")
        + f"<p class='legend'><span style='background:#4e79a7'></span>{e(report.reference)}"
        f"<span style='background:#e15759'></span>{e(report.current)}</p>"
        "<table><tr>"
        + "".join(f"<th>{e(h)}</th>" for h in HEADER)
        + "</tr>"
        + "".join(rows)
        + "</table>"
        + "".join(plots)
        + "</body></html>\n"
    )


def check_path(path: str | Path) -> Path:
    """Refuse a report path before any work is done (and before anything is stored)."""
    target = Path(path).expanduser()
    if target.suffix.lower() not in (".md", ".markdown", ".html", ".htm"):
        raise UsageError(f"report file must end in .md or .html, not {target.name!r}")
    if not target.parent.is_dir():
        raise UsageError(f"no such folder for the report: {target.parent}")
    return target


def write(report: DriftReport, path: str | Path) -> Path:
    """Write ``.md`` or ``.html`` atomically (a temp file renamed), so no half report stays."""
    import os

    target = check_path(path)
    text = to_html(report) if target.suffix.lower() in (".html", ".htm") else to_markdown(report)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    return target
