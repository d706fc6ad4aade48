"""Datasets → versions → one version: profile, a paged row preview, and diff."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Header, Input, Label, Static, TabbedContent, TabPane

from workbench.core.data.profile import lengths_text
from workbench.textfmt import counted, data_cell, human_bytes
from workbench.tui.base import WBScreen
from workbench.tui.formatting import fmt, sparkline
from workbench.tui.widgets.footer import WBFooter
from workbench.tui.widgets.table import Table

PAGE_ROWS = 100


class DatasetsScreen(WBScreen):
    """Left: datasets. Right: the selected dataset's versions; enter opens one."""

    AUTO_FOCUS = "#ds-list"

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(classes="side"):
                yield Label("Datasets", classes="panel-title")
                yield Table(id="ds-list", cursor_type="row", zebra_stripes=True)
            with Vertical(classes="main"):
                yield Label("Versions (enter opens)", classes="panel-title", id="versions-title")
                yield Table(id="ds-versions", cursor_type="row", zebra_stripes=True)
        yield WBFooter()

    def on_mount(self) -> None:
        self.query_one("#ds-list", DataTable).add_columns("dataset", "versions", "rows")
        self.query_one("#ds-versions", DataTable).add_columns(
            "version", "hash", "rows", "cols", "stored", "message", "added (UTC)"
        )
        self._selected: str | None = None

    def refresh_data(self) -> None:
        self.load(self.project.datasets.list, self._show_datasets, group="datasets")

    def _show_datasets(self, items: list[dict[str, Any]]) -> None:
        from workbench.tui.hints import empty

        self.query_one("#ds-list", Table).say_when_empty(empty("datasets", items))
        table = self.query_one("#ds-list", DataTable)
        table.clear()
        for d in items:
            table.add_row(d["name"], fmt(d["versions"]), fmt(d["rows"]), key=d["name"])
        if items:
            self._versions(self._selected or items[0]["name"])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "ds-list" and event.row_key.value:
            self._versions(event.row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "ds-versions" and event.row_key.value:
            self.app.push_screen(VersionScreen(event.row_key.value))
        elif event.data_table.id == "ds-list":
            self.query_one("#ds-versions", DataTable).focus()

    def _versions(self, name: str) -> None:
        self._selected = name
        self.load(
            lambda: self.project.datasets.versions(name), self._show_versions, group="versions"
        )

    def _show_versions(self, versions: list[Any]) -> None:
        table = self.query_one("#ds-versions", DataTable)
        table.clear()
        for v in reversed(versions):
            table.add_row(
                f"@{v.number}",
                v.id[:12],
                fmt(v.n_rows),
                str(v.n_cols),
                human_bytes(v.stored_bytes),
                v.message or "",
                f"{v.created_at:%Y-%m-%d %H:%M}",
                key=v.ref,
            )
        if versions:
            self.query_one("#versions-title", Label).update(
                f"{versions[0].dataset}: versions (enter opens)"
            )


class VersionScreen(WBScreen):
    """One version: schema and profile, rows a page at a time, and diff."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("n", "page(1)", "Next rows"),
        Binding("p", "page(-1)", "Prev rows"),
    ]

    def __init__(self, ref: str) -> None:
        super().__init__()
        self.ref = ref
        self.row_offset = 0
        self.rows = 0

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="version-head")
        with TabbedContent(id="version-tabs"):
            with TabPane("Profile", id="tab-profile"):
                yield Table(id="profile", zebra_stripes=True, cursor_type="row")
            with TabPane("Rows", id="tab-rows"):
                yield Label("", id="rows-pos")
                yield Table(id="rows", zebra_stripes=True)
            with TabPane("Diff", id="tab-diff"):
                yield Input(placeholder="compare with (e.g. churn@1), then enter", id="diff-with")
                yield Static(id="diff-summary")
                yield Table(id="diff-stats", zebra_stripes=True)
        yield WBFooter()

    def refresh_data(self) -> None:
        def read() -> tuple[Any, dict[str, Any]]:
            v = self.project.datasets.resolve(self.ref)
            return v, self.project.datasets.profile(v)

        self.load(read, self._show)
        self._page()

    def _show(self, data: tuple[Any, dict[str, Any]]) -> None:
        v, profile = data
        self.rows = v.n_rows
        self.ref = v.ref
        self.title = v.ref
        self.query_one("#version-head", Static).update(
            f"[b]{v.ref}[/]  sha256 {v.id[:16]}  {counted(v.n_rows, 'row')} × {counted(v.n_cols, 'column')}  "
            f"stored {human_bytes(v.stored_bytes)} new of {human_bytes(v.total_bytes)}  "
            f"{v.created_at:%Y-%m-%d %H:%M} UTC\n{v.message or ''}"
        )
        header = ("column", "type", "nulls", "distinct", "min", "mean", "max", "distribution")
        rows = []
        for c in profile["columns"]:
            hist = (c.get("histogram") or {}).get("counts")
            if not hist and c.get("top"):
                hist = [t["count"] for t in c["top"]]
                dist = sparkline(hist) + "  " + ", ".join(str(t["value"]) for t in c["top"][:3])
            elif not hist and (lengths := lengths_text(c)):  # text with too many values
                dist = f"{lengths}; too many values to list"
            else:
                dist = sparkline(hist)
            rows.append(
                [
                    c["name"],
                    c["dtype"],
                    f"{c['null_share']:.1%}",
                    fmt(c["n_unique"]),
                    fmt(c.get("min")),
                    fmt(c.get("mean")),
                    fmt(c.get("max")),
                    dist,
                ]
            )
        table = self.query_one("#profile", DataTable)
        table.clear(columns=True)
        # Widths set here, not measured by the table on its next idle: a repaint that
        # came first could keep header-wide columns on screen (seen under load).
        for i, name in enumerate(header):
            table.add_column(name, width=max(cell_len(str(r[i])) for r in [[*header], *rows]))
        for r in rows:
            table.add_row(*r)
        if v.parent and not self.query_one("#diff-with", Input).value:
            self.query_one("#diff-with", Input).value = f"{v.dataset}@{v.parent}"

    # ---- rows, a page at a time (a slice of the Parquet chunks, never the whole table) ----
    def action_page(self, step: int) -> None:
        new = max(0, self.row_offset + step * PAGE_ROWS)
        if self.rows and new >= self.rows:
            return
        self.row_offset = new
        self._page()

    def _page(self) -> None:
        offset, ref = self.row_offset, self.ref

        def read() -> tuple[int, Any]:
            # the total comes with the page, not from the profile's load: the first page
            # often landed first and said "rows 1-100 of 0"
            v = self.project.datasets.resolve(ref)
            return v.n_rows, self.project.datasets.rows(v.ref, offset, PAGE_ROWS)

        self.load(read, self._show_page, group="rows")

    def _show_page(self, page: tuple[int, Any]) -> None:
        self.rows, df = page
        table = self.query_one("#rows", DataTable)
        table.clear(columns=True)
        table.add_columns(*df.columns)
        for i, row in enumerate(df.iter_rows()):
            table.add_row(*[data_cell(x) for x in row], label=str(self.row_offset + i + 1))
        end = self.row_offset + df.height
        self.query_one("#rows-pos", Label).update(
            f"rows {self.row_offset + 1:,}-{end:,} of {self.rows:,}  (n: next page, p: previous)"
        )

    # ---- diff ----------------------------------------------------------------------------
    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "diff-with" or not event.value.strip():
            return
        from workbench.core.data.diff import diff

        other = event.value.strip()
        self.load(
            lambda: diff(self.project.datasets, other, self.ref), self._show_diff, group="diff"
        )

    def _show_diff(self, d: dict[str, Any]) -> None:
        sc = d.get("schema_changes") or {}
        parts = [f"{d['a']} → {d['b']}: {d['rows_a']:,} → {d['rows_b']:,} rows"]
        if d.get("identical"):
            parts.append("identical content")
        if "rows_added" in d:
            parts.append(f"+{d['rows_added']:,} / -{d['rows_removed']:,} rows")
        for what in ("added", "removed"):
            if sc.get(what):
                parts.append(f"columns {what}: {', '.join(sc[what])}")
        for r in sc.get("retyped", []):
            parts.append(f"{r['column']}: {r['from']} → {r['to']}")
        self.query_one("#diff-summary", Static).update("\n".join(parts))
        table = self.query_one("#diff-stats", DataTable)
        table.clear(columns=True)
        table.add_columns("column", "statistic", d["a"], d["b"], "change")
        for row in d.get("column_stats", []):
            if not row.get("changed"):
                continue
            for stat, val in row.items():
                if isinstance(val, dict) and val.get("a") != val.get("b"):
                    table.add_row(
                        row["column"],
                        stat,
                        fmt(val.get("a")),
                        fmt(val.get("b")),
                        fmt(val.get("delta")),
                    )
