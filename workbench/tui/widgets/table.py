"""The app's table: Textual's DataTable with a fast path for plain cells.

Tables of thousands of runs spent most of their paint time in DataTable's generic cell
rendering. ``Table`` draws a cell that is plain text in one style straight into
segments, and measures rows in bulk. To do that it overrides DataTable internals
(``_render_line_in_row``, ``_row_locations``, ``_data`` …) that are not public API:
``tests/tui/test_table.py`` pins each internal it relies on, so an upgrade of Textual
that changes them fails there first, and pyproject.toml pins Textual to the minor
versions those tests passed on.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.color import Color
from textual.coordinate import Coordinate
from textual.geometry import Size
from textual.widgets import DataTable

from workbench.core.text import UNSAFE, inert
from workbench.tui.widgets.cells import elide, full_text


def _one_style_text(value: Any) -> tuple[str | None, Style | None]:
    """A cell's text and its one style (None: unstyled) when it can be drawn without
    rich: one printable line, no markup, and for a Text no spans, left-aligned and
    cropped. (None, None) sends the cell through Textual."""
    if isinstance(value, str):
        if "[" in value or not value.isprintable():
            return None, None
        return value, None
    if isinstance(value, Text):
        plain = value.plain
        if (
            value.spans
            or not plain.isprintable()
            or value.justify not in (None, "default", "left")
            or value.overflow not in (None, "fold", "crop")
        ):
            return None, None
        style = Style.parse(value.style) if isinstance(value.style, str) else value.style
        return plain, (style or None)
    return None, None


def _cell_line(
    plain: str, width: int, padding: int, outer: Style, inner: Style, unstyled: bool
) -> list[Segment]:
    """One line of a plain cell as rich draws it: the text cropped or filled to the
    column, padded each side; the padding and fill in ``outer`` (table, row and cursor
    styles), the text in ``inner`` (the cell's own style layered between them)."""
    pad = " " * padding
    room = max(0, width - 2 * padding)
    if not room:
        return [Segment(" " * width, outer)]
    if unstyled:
        return [Segment(f"{pad}{set_cell_size(plain, room)}{pad}", outer)]
    used = cell_len(plain)
    body = set_cell_size(plain, room) if used >= room else plain
    return [
        Segment(pad, outer),
        Segment(body, inner),
        Segment(" " * max(0, room - used) + pad, outer),
    ]


def safe_cell(value: Any) -> Any:
    """A cell with control, invisible and bidi characters escaped (``core.text.inert``).

    A text cell is drawn as Rich markup (screens style cells that way), so a stored value
    that is not valid markup, a run named ``a[/]b``, stopped the app with a MarkupError
    on its next paint: such a cell is drawn as the plain text it is."""
    if isinstance(value, str):
        value = inert(value)  # a line break stays one: a cell may hold several lines
        if "[" in value:
            from rich.errors import MarkupError

            try:
                return Text.from_markup(value, end="")
            except MarkupError:
                return Text(value, end="")
        return value
    if isinstance(value, Text) and UNSAFE.search(value.plain):
        return Text(inert(value.plain), style=value.style)
    return value


class Table(DataTable):
    """A DataTable that redraws once its columns are sized to new rows.

    Textual's DataTable measures new rows on its next idle, but a line it drew before
    that stays cached (the cache key does not change), so a busy moment could leave
    columns cut to their header's width until the next cursor move. Clearing the line
    caches after the measuring makes the next paint use the real widths.
    """

    BINDINGS = [Binding("e", "view_row", "Whole row")]

    def __init__(self, *args: Any, cell_limit: int = 40, **kw: Any) -> None:
        super().__init__(*args, **kw)
        # A cell longer than this is cut with an ellipsis (``elide``); ``e`` shows it
        # whole. A table that sets several runs side by side keeps its cells shorter.
        self.cell_limit = cell_limit

    def _cell(self, value: Any) -> Any:
        return elide(safe_cell(value), self.cell_limit)

    def action_view_row(self) -> None:
        """Every cell of the row under the cursor, whole, one per line."""
        if not self.row_count:
            return
        from workbench.tui.widgets.row_view import RowView

        row = self.cursor_coordinate.row
        labels = [full_text(c.label) for c in self.ordered_columns]
        cells = [full_text(v) for v in self.get_row_at(row)]
        column = self.cursor_coordinate.column if self.cursor_type == "cell" else None
        pairs = [(lab, val) for lab, val in zip(labels, cells, strict=False) if lab or val]
        if column is not None:  # the marker follows its column past any dropped blank one
            column -= sum(
                1 for lab, val in zip(labels[:column], cells, strict=False) if not (lab or val)
            )
        self.app.push_screen(RowView(pairs, column))

    # ---- every cell shown inert: stored text must never drive the terminal ----
    def add_row(self, *cells: Any, **kw: Any) -> Any:
        return super().add_row(*(self._cell(c) for c in cells), **kw)

    def add_column(self, label: Any, **kw: Any) -> Any:
        return super().add_column(safe_cell(label), **kw)

    def update_cell(self, row_key: Any, column_key: Any, value: Any, **kw: Any) -> None:
        super().update_cell(row_key, column_key, self._cell(value), **kw)

    def update_cell_at(self, coordinate: Any, value: Any, **kw: Any) -> None:
        super().update_cell_at(coordinate, self._cell(value), **kw)

    def _update_dimensions(self, new_rows: Any) -> None:
        if not self._measure_text(new_rows):
            super()._update_dimensions(new_rows)
        self._clear_caches()
        self.refresh()

    def add_keyed_rows(self, rows: list[tuple[str, list[Any]]]) -> None:
        """Append one-line rows given as (key, cells), as ``add_row`` would one by one.

        ``add_row`` re-derives the column order, re-validates the cursor and bumps the
        caches for every row: ~0.1 ms a row, a tenth of a filter's budget for a page of
        runs. Here that is done once for the batch; the rows end up in the same state
        (tests/tui/test_table.py compares both).
        """
        from itertools import zip_longest

        from textual.widgets._data_table import DuplicateKey, Row, RowKey

        columns = [c.key for c in self.ordered_columns]
        locations, data, new_rows = self._row_locations, self._data, self._new_rows
        index = self.row_count
        was_empty = index == 0
        for key, cells in rows:
            row_key = RowKey(key)
            if row_key in locations:
                raise DuplicateKey(f"The row key {row_key!r} already exists.")
            if len(cells) > len(columns):
                raise ValueError("More values provided than there are columns.")
            locations[row_key] = index
            data[row_key] = dict(zip_longest(columns, map(self._cell, cells)))
            self.rows[row_key] = Row(row_key, 1, None, False)
            new_rows.add(row_key)
            index += 1
        if not rows:
            return
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate
        if was_empty and self.columns and self.show_cursor and self.cursor_type != "none":
            self._highlight_cursor()
        self._update_count += len(rows)
        self.check_idle()

    def settle(self) -> None:
        """Size the columns to the rows just added now rather than on the next idle, so
        the table is painted once with its final widths instead of twice."""
        if self._updated_cells:
            cells = self._updated_cells.copy()
            self._updated_cells.clear()
            self._update_column_widths(cells)
        if self._require_update_dimensions:
            self._require_update_dimensions = False
            rows = self._new_rows.copy()
            self._new_rows.clear()
            self._update_dimensions(rows)

    def render_lines(self, crop: Any) -> Any:
        # Styles looked up once per paint rather than once per line: the widget's and
        # the zebra rows' styles cost ~0.1 ms each to resolve and cannot change mid-paint.
        self._paint_styles: dict[Any, Any] | None = {}
        try:
            return super().render_lines(crop)
        finally:
            self._paint_styles = None

    # What an empty table says below its header: what to do next, with the command.
    empty_hint = ""

    def say_when_empty(self, hint: str) -> None:
        if hint != self.empty_hint:
            self.empty_hint = hint
            self.refresh()

    def _hint_line(self, y: int) -> Any:
        """Line ``y`` of an empty table: its header, then the hint, wrapped."""
        from textual.strip import Strip

        width = self.size.width
        lines = Text(self.empty_hint).wrap(self.app.console, max(10, width - 2))
        at = y - (self.header_height if self.show_header else 0)
        body = lines[at].plain if 0 <= at < len(lines) else ""
        style = self.rich_style + Style(italic=True, dim=True)
        return Strip([Segment(" " + set_cell_size(body, max(0, width - 1)), style)], width)

    def render_line(self, y: int) -> Any:
        if (
            not self.row_count
            and self.empty_hint
            and (y >= self.header_height or not self.show_header)
        ):
            return self._hint_line(y)
        memo = getattr(self, "_paint_styles", None)
        if memo is None or self.fixed_rows:
            return super().render_line(y)
        base = memo.get("base")
        if base is None:
            base = memo["base"] = self.rich_style
        scroll_x, scroll_y = self.scroll_offset
        if y >= (self.get_row_height(self._header_row_key) if self.show_header else 0):
            y += scroll_y
        return self._render_line(y, scroll_x, scroll_x + self.size.width, base)

    def _render_line_in_row(
        self,
        row_key: Any,
        line_no: int,
        base_style: Style,
        cursor_location: Any,
        hover_location: Any,
    ) -> Any:
        """A one-line row of plain cells, drawn without a style lookup per cell.

        After a filter every visible row is new, so no cache helps: Textual resolved the
        row's CSS styles and layered five rich styles for each of ~440 cells, 30-45 ms a
        screenful. Here the layered style of each (row stripe, cursor, hover, cell style)
        is built once and only the cell's position (mouse metadata) is added per cell.
        Rows with labels, fixed columns, several lines or non-plain cells go to Textual.
        """
        if (
            line_no
            or self.fixed_columns
            or self.fixed_rows
            or row_key is self._header_row_key
            or (self._labelled_row_exists and self.show_row_labels)
        ):
            return super()._render_line_in_row(
                row_key, line_no, base_style, cursor_location, hover_location
            )
        cursor_type = self.cursor_type
        cache_key = (
            row_key,
            line_no,
            base_style,
            cursor_location,
            hover_location,
            cursor_type,
            self.show_cursor,
            self._show_hover_cursor,
            self._update_count,
            self._pseudo_class_state,
        )
        cached = self._row_render_cache.get(cache_key)
        if cached is not None:
            return cached
        row = self.rows.get(row_key)
        located = self._row_locations.get(row_key) if row_key in self._row_locations else None
        row_index = -1 if located is None else located
        values = self._data.get(row_key)
        if row is None or row.height != 1 or row_index < 0 or values is None:
            return super()._render_line_in_row(
                row_key, line_no, base_style, cursor_location, hover_location
            )
        cells = []
        padding = self.cell_padding  # a reactive: read once, not per cell
        for column in self.ordered_columns:
            plain, text_style = _one_style_text(values.get(column.key))
            if plain is None:
                return super()._render_line_in_row(
                    row_key, line_no, base_style, cursor_location, hover_location
                )
            content = column.content_width if column.auto_width else column.width
            cells.append((plain, text_style, 2 * padding + content))
        memo = getattr(self, "_paint_styles", None)
        if memo is None:
            memo = {}
        stripe = (row_index % 2 if self.zebra_stripes else -1, base_style)
        row_style = memo.get(stripe)
        if row_style is None:
            row_style = memo[stripe] = self._get_row_style(row_index, base_style)
        highlight = self._should_highlight
        show_cursor, show_hover = self.show_cursor, self._show_hover_cursor
        fg_css = self.cursor_foreground_priority == "css"
        bg_css = self.cursor_background_priority == "css"

        def layered(cursor: bool, hover: bool, text_style: Style | None) -> tuple[Style, Style]:
            key = ("cell", row_style, cursor, hover, text_style)
            styles = memo.get(key)
            if styles is None:
                component, post = self._get_styles_to_render_cell(
                    False,
                    False,
                    False,
                    hover,
                    cursor,
                    show_cursor,
                    show_hover,
                    fg_css,
                    bg_css,
                )
                pre = row_style + component
                inner = pre + text_style + post if text_style is not None else pre + post
                styles = memo[key] = (pre + post, inner)
            return styles

        segments = []
        table_width = self._row_label_column_width
        for column_index, (plain, text_style, width) in enumerate(cells):
            table_width += width
            here = Coordinate(row_index, column_index)
            outer, inner_style = layered(
                highlight(cursor_location, here, cursor_type),
                highlight(hover_location, here, cursor_type),
                text_style,
            )
            meta = Style.from_meta({"row": row_index, "column": column_index})
            segments.append(
                _cell_line(
                    plain, width, padding, outer + meta, inner_style + meta, text_style is None
                )
            )
        segments.append(
            self._extend_segment(row_index, row_style, hover_location, cursor_location, table_width)
        )
        pair: tuple[list[Any], list[Any]] = ([], segments)
        self._row_render_cache[cache_key] = pair
        return pair

    def _extend_segment(
        self,
        row_index: int,
        row_style: Style,
        hover_location: Any,
        cursor_location: Any,
        table_width: int,
    ) -> list[Segment]:
        """The blank that carries a row's style to the table's right edge, as Textual
        draws it."""
        remaining = max(0, self.size.width - table_width)
        if self.cursor_type == "row":
            extend, _ = self._get_styles_to_render_cell(
                False,
                False,
                False,
                self._should_highlight(hover_location, Coordinate(row_index or 0, 0), "row"),
                row_index == cursor_location.row,
                self.show_cursor,
                self._show_hover_cursor,
                False,
                False,
            )
            extend = row_style + extend
        elif row_style.bgcolor is not None:
            faded = Color.from_rich_color(row_style.bgcolor).blend(
                self.background_colors[1], factor=0.25
            )
            extend = Style.from_color(color=row_style.color, bgcolor=faded.rich_color)
        else:
            extend = Style.from_color(row_style.color, row_style.bgcolor)
        extend += Style.from_meta({"row": row_index, "column": 0, "out_of_bounds": True})
        return [Segment(" " * remaining, extend)]

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> Any:
        """Plain one-line cells drawn as one styled segment.

        Textual renders each cell through rich (padding, style layers, line splitting):
        ~0.2 ms a cell, so repainting a screenful of runs (~440 cells) after a filter
        took 90-120 ms, more than the query. A cell of plain text (no markup, no line
        break, in a one-line row) comes out as one segment in the combined style, which
        is what rich produces for it; anything else goes through Textual.
        """
        if row_index < self.fixed_rows or column_index < self.fixed_columns:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if row_key is None or column_key is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        cache_key = (
            row_key,
            column_key,
            base_style,
            cursor,
            hover,
            self._show_hover_cursor,
            self._update_count,
            self._pseudo_class_state,
        )
        cached = self._cell_render_cache.get(cache_key)
        if cached is not None:
            return cached
        row = self.rows.get(row_key)
        value = self._data.get(row_key, {}).get(column_key) if row is not None else None
        plain, text_style = _one_style_text(value)
        if row is None or row.height != 1 or plain is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        component_style, post_style = self._get_styles_to_render_cell(
            False,
            False,
            False,
            hover,
            cursor,
            self.show_cursor,
            self._show_hover_cursor,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )
        # rich layers the cell's own style between the table's (pre) and the cursor's
        # (post); its padding gets only pre and post
        pre = base_style + Style.from_meta({"row": row_index, "column": column_index})
        pre += component_style
        outer = pre + post_style
        inner_style = pre + text_style + post_style if text_style is not None else outer
        lines = [
            _cell_line(plain, width, self.cell_padding, outer, inner_style, text_style is None)
        ]
        self._cell_render_cache[cache_key] = lines
        return lines

    def _measure_text(self, new_rows: Any) -> bool:
        """Column widths from the cells' text, for the common one-line, unlabelled rows.

        Textual builds and measures a rich renderable for every cell of every new row
        (markup parsed, console options copied): ~0.7 ms a row, so 140-210 ms after a
        filter fills 200 runs, longer than the query. Plain text needs only its cell
        length; markup is parsed only where there is a bracket. Returns False (and
        measures nothing) when a row needs Textual's own pass.
        """
        from rich.errors import MarkupError

        widths = {key: col.content_width for key, col in self.columns.items()}
        for row_key in new_rows:
            if row_key not in self._row_locations:
                continue  # removed before this idle pass
            row = self.rows.get(row_key)
            if row is None or row.label is not None or row.auto_height or row.height != 1:
                return False
            for key, cell in self._data[row_key].items():
                if isinstance(cell, str):
                    if "\n" in cell:
                        return False
                    if "[" in cell:
                        try:
                            cell = Text.from_markup(cell).plain
                        except MarkupError:
                            return False  # Textual's pass reports it as it always did
                    width = cell_len(cell)
                elif isinstance(cell, Text):
                    if "\n" in cell.plain:
                        return False
                    width = cell.cell_len
                elif cell is None:
                    width = 0
                elif isinstance(cell, float):
                    width = len(f"{cell:.2f}")
                elif isinstance(cell, int):
                    width = len(str(cell))
                else:
                    return False
                if width > widths.get(key, 0):
                    widths[key] = width
        for key, width in widths.items():
            self.columns[key].content_width = width
        header = self.header_height if self.show_header else 0
        total = sum(c.get_render_width(self) for c in self.columns.values())
        self.virtual_size = Size(
            total + self._row_label_column_width, self._total_row_height + header
        )
        return True
