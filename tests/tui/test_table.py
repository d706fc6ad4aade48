"""The runs table's fast paths draw and size cells exactly as Textual's DataTable does.

``Table`` measures and paints plain cells itself (see workbench/tui/widgets/table.py) because
Textual's general path made a filter of 10k runs take ~3x longer. These tests compare
both paths cell by cell, so a Textual upgrade that changes how cells look fails here
rather than on screen.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rich.segment import Segment
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from workbench.tui.formatting import status_text
from workbench.tui.widgets.table import Table, _one_style_text

CELLS: list[Any] = [
    "",
    "a",
    "run:1234abcd",
    "x" * 50,
    "日本語テキスト",
    "émoji 😀 ok",
    "a b  c",
    "[b]bold[/] markup",
    "line\nbreak",
    3,
    0.25,
    None,
    status_text("finished"),
    status_text("failed"),
    Text("日本語テキスト", style="bold red"),
    Text("  padded  ", style="green"),
    Text("plain"),
    Text("x" * 40, style="yellow"),
]


class _TableApp(App[None]):
    highlighted: list[tuple[str | None, int]]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.__dict__.setdefault("highlighted", []).append((event.data_table.id, event.cursor_row))

    def compose(self) -> ComposeResult:
        # No cut of long cells here: this compares drawing with Textual's, cell for cell.
        yield Table(id="fast", cursor_type="row", zebra_stripes=True, cell_limit=10_000)
        yield DataTable(id="textual", cursor_type="row", zebra_stripes=True)


def _fill(table: DataTable, fixed: bool, cells: list[Any] = CELLS) -> None:  # type: ignore[type-arg]
    for i, width in enumerate([5, 10, 3, None] if fixed else [None] * 4):
        table.add_column(f"c{i}", key=f"c{i}", width=width)
    for r in range(len(cells)):
        table.add_row(*[cells[(r + k) % len(cells)] for k in range(4)], key=str(r))


def _styled(lines: Any) -> list[tuple[str, Any]]:
    return [(s.text, s.style) for s in Segment.simplify(lines[0])]


def test_cells_are_drawn_as_textual_draws_them() -> None:
    asyncio.run(_cells_drawn())


async def _cells_drawn() -> None:
    app = _TableApp()
    async with app.run_test(size=(140, 40)) as pilot:
        table = app.query_one("#fast", Table)
        _fill(table, fixed=True)
        await pilot.pause()
        compared = 0
        for row in range(len(CELLS)):
            for col in range(4):
                for cursor in (False, True):
                    for hover in (False, True):
                        base = table._get_row_style(row, table.rich_style)
                        width = table.ordered_columns[col].get_render_width(table)
                        table._cell_render_cache.clear()
                        ours = table._render_cell(row, col, base, width, cursor, hover)
                        table._cell_render_cache.clear()
                        theirs = DataTable._render_cell(table, row, col, base, width, cursor, hover)
                        assert _styled(ours) == _styled(theirs), (row, col, cursor, hover)
                        compared += 1
        assert compared == len(CELLS) * 16


def test_columns_are_as_wide_as_textual_makes_them(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    one_line = [c for c in CELLS if not (isinstance(c, str) and "\n" in c)]
    # one-line cells are measured by Table itself; a line break sends it to Textual
    assert asyncio.run(_columns_sized(monkeypatch, one_line)) == 0
    assert asyncio.run(_columns_sized(monkeypatch, CELLS)) > 0


async def _columns_sized(monkeypatch, cells: list[Any]) -> int:  # type: ignore[no-untyped-def]
    app = _TableApp()
    async with app.run_test(size=(140, 40)) as pilot:
        ours, theirs = app.query_one("#fast", Table), app.query_one("#textual", DataTable)
        textual_passes = []
        original = DataTable._update_dimensions

        def spy(self, rows):  # type: ignore[no-untyped-def]
            textual_passes.append(self is ours)
            return original(self, rows)

        monkeypatch.setattr(DataTable, "_update_dimensions", spy)
        _fill(ours, fixed=False, cells=cells)
        _fill(theirs, fixed=False, cells=cells)
        await pilot.pause()
        assert [c.content_width for c in ours.ordered_columns] == [
            c.content_width for c in theirs.ordered_columns
        ]
        assert ours.virtual_size == theirs.virtual_size
        return sum(textual_passes)


def test_rows_are_drawn_as_textual_draws_them(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(_rows_drawn(monkeypatch))


async def _rows_drawn(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Whole lines, with every cursor type and the cursor and hover on, off and
    elsewhere: the row fast path must give the segments Textual gives."""
    from textual.coordinate import Coordinate

    one_line = [c for c in CELLS if not (isinstance(c, str) and "\n" in c)]
    app = _TableApp()
    async with app.run_test(size=(140, 40)) as pilot:
        table = app.query_one("#fast", Table)
        _fill(table, fixed=False, cells=one_line)
        await pilot.pause()
        textual_rows = []
        original = DataTable._render_line_in_row

        def spy(self, *args):  # type: ignore[no-untyped-def]
            textual_rows.append(args[0])
            return original(self, *args)

        monkeypatch.setattr(DataTable, "_render_line_in_row", spy)
        base = table.rich_style
        compared = fast = 0
        for cursor_type in ("row", "cell", "column", "none"):
            table.cursor_type = cursor_type
            for row in range(len(one_line)):
                key = table._row_locations.get_key(row)
                for cursor in (Coordinate(row, 1), Coordinate(0, 2), Coordinate(row + 1, 0)):
                    for hover in (Coordinate(row, 3), Coordinate(len(one_line), 0)):
                        table._row_render_cache.clear()
                        table._cell_render_cache.clear()
                        textual_rows.clear()
                        fixed, ours = table._render_line_in_row(key, 0, base, cursor, hover)
                        plain = all(
                            _one_style_text(v)[0] is not None for v in table._data[key].values()
                        )
                        assert textual_rows == ([] if plain else [key])
                        assert fixed == []
                        fast += plain
                        table._row_render_cache.clear()
                        table._cell_render_cache.clear()
                        _, theirs = original(table, key, 0, base, cursor, hover)
                        flat = lambda cells: list(  # noqa: E731
                            Segment.simplify(s for cell in cells for s in cell)
                        )
                        assert [(s.text, s.style) for s in flat(ours)] == [
                            (s.text, s.style) for s in flat(theirs)
                        ], (cursor_type, row, cursor, hover)
                        compared += 1
        assert compared == 4 * len(one_line) * 6
        assert fast >= compared // 4  # most rows are plain text, as in the runs table


def test_rows_added_in_a_batch_are_as_added_one_by_one() -> None:
    asyncio.run(_batch_rows())


async def _batch_rows() -> None:
    from textual.widgets._data_table import DuplicateKey

    app = _TableApp()
    async with app.run_test(size=(140, 40)) as pilot:
        ours, theirs = app.query_one("#fast", Table), app.query_one("#textual", DataTable)
        for table in (ours, theirs):
            for name in "abc":
                table.add_column(name, key=name)
        rows = [(f"k{i}", [f"v{i}", i, status_text("failed")]) for i in range(30)]
        rows.append(("short", ["only one"]))
        ours.add_keyed_rows(rows)
        for key, cells in rows:
            theirs.add_row(*cells, key=key)
        await pilot.pause()
        assert ours.row_count == theirs.row_count == 31
        for r in range(31):
            assert ours.get_row_at(r) == theirs.get_row_at(r)
            assert ours.coordinate_to_cell_key((r, 2)) == theirs.coordinate_to_cell_key((r, 2))
        assert ours.virtual_size == theirs.virtual_size
        assert ours.cursor_coordinate == theirs.cursor_coordinate
        assert sorted(app.highlighted) == [("fast", 0), ("textual", 0)]
        # and a second batch appends after the first, with the same checks as add_row
        ours.add_keyed_rows([("more", ["x"])])
        assert ours.get_row_at(31) == ["x", None, None]
        try:
            ours.add_keyed_rows([("k1", ["dup"])])
        except DuplicateKey:
            pass
        else:
            raise AssertionError("a duplicate key was accepted")


def test_a_long_cell_is_cut_with_an_ellipsis_and_kept_whole() -> None:
    """A cell past the table's limit shows its start and an ellipsis (in its colours),
    and the row view gets the whole text; short cells and several-line cells are kept."""
    from workbench.tui.widgets.cells import elide, full_text

    long = "[yellow]" + ", ".join(f"col_{i}" for i in range(20)) + "[/]"
    cut = elide(long, 18)
    assert cut.plain == "col_0, col_1, col…" and cut.cell_len == 18
    assert cut.spans and cut.spans[0].style == "yellow"
    assert full_text(cut) == ", ".join(f"col_{i}" for i in range(20))
    assert elide("short", 18) == "short"
    assert elide("a\n" * 40, 18) == "a\n" * 40
    assert full_text("[b]bold[/]") == "bold" and full_text(None) == ""
