"""Runs: a filterable, sortable table (the CLI's filter language), run detail, compare."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import (
    DataTable,
    Header,
    Input,
    Label,
    Select,
    Static,
    TabbedContent,
    TabPane,
)
from textual_plotext import PlotextPlot

from workbench.app.plots import step_axis
from workbench.core.runs.records import RunInfo, RunSummary
from workbench.textfmt import counted, human_bytes
from workbench.tui.base import WBScreen
from workbench.tui.formatting import fmt, status_markup, status_text
from workbench.tui.screens.compare import CompareScreen
from workbench.tui.widgets.footer import WBFooter
from workbench.tui.widgets.suggest import NameSuggester
from workbench.tui.widgets.table import Table

# The columns a user chose (metrics, params) come right after the run's identity, so
# that at 80 columns they are on screen rather than past the right edge.
LEAD_COLUMNS = ("", "run", "name", "status")
TAIL_COLUMNS = ("model", "dataset", "experiment", "duration")
DEFAULT_EXTRA = "metrics.val_auc, metrics.val_rmse"
DEFAULT_COLUMNS = tuple(c.strip() for c in DEFAULT_EXTRA.split(","))
# Rows shown at first (two screenfuls at 160x50); `n` shows a page more. Filling a table
# costs about 0.1 ms a row, so a filter that matches thousands of runs still shows at once.
PAGE = 100
# what a run's page reads off the UI thread: the run, its curves, the one shown, its points
_RunView = tuple[RunInfo, list[str], str | None, list[tuple[int, float]]]


class RunsScreen(WBScreen):
    AUTO_FOCUS = "#runs"
    BINDINGS = [
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare marked"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("n", "more", "More rows"),
        Binding("S", "sort_next", "Sort by next column"),
        Binding("R", "sort_reverse", "Reverse sort"),
        Binding("g", "group_seeds", "Group seeds"),
        Binding("escape", "focus_table", "To table", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.limit = PAGE
        self._to_table = False
        self.marked: set[str] = set()
        self.grouped = False  # runs that differ only in a seed as one row (mean ± std)
        self.groups: dict[str, list[str]] = {}  # a shown group's row key -> its run ids
        self.order: str | None = None
        self.extra: list[str] = list(DEFAULT_COLUMNS)
        # Names to complete in the filter and columns boxes, read once per change.
        self.suggester = NameSuggester()
        self._names_seen: Any = ()

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="runs-bar"):
            yield Input(
                placeholder="filter, e.g. metrics.val_auc > 0.8 and params.model = 'lightgbm'",
                id="runs-filter",
                suggester=self.suggester,
            )
            yield Input(
                value=DEFAULT_EXTRA,
                placeholder="columns: params.x, metrics.y",
                id="runs-columns",
                suggester=self.suggester,
            )
        yield Label("", id="runs-error")
        yield Table(id="runs", cursor_type="row", zebra_stripes=True)
        yield WBFooter()

    def refresh_data(self) -> None:
        if self._names_seen != self.app._stamp:  # type: ignore[attr-defined]
            from workbench.core.runs.search import names

            self._names_seen = self.app._stamp  # type: ignore[attr-defined]
            self.load(lambda: names(self.project.catalog), self._set_names, group="names")
        flt = self.query_one("#runs-filter", Input).value.strip() or None
        order, limit = self.order, self.limit
        # the user's own columns only: the default pair (AUC, RMSE) has one blank by design
        extra = [c for c in self.extra if c not in DEFAULT_COLUMNS]

        # the keys the table shows, read alone; grouping by seed needs every param
        shown = None if self.grouped else {"params.model", *self.extra}

        def read() -> list[RunSummary]:
            from workbench.core.errors import UsageError
            from workbench.core.runs.search import unknown_name

            # one row past the page says whether there are more
            runs = self.project.runs.list(filter=flt, order_by=order, limit=limit + 1, keys=shown)
            if not runs:
                from workbench.tui.hints import empty

                self._hint = (
                    "No runs match this filter. Press / and clear it to see every run."
                    if flt
                    else empty("runs", self.project.datasets.list())
                )
            # a key no run has is said, not shown as "-" or as no match (as the CLI does)
            blank = [c for c in extra if all(r.column(c) is None for r in runs)]
            if (flt and not runs) or (runs and blank):
                problem = unknown_name(self.project.catalog, flt if not runs else None, blank)
                if problem:
                    raise UsageError(problem)
            return runs

        self.load(read, self._show, on_error=self._bad_filter)

    def _set_names(self, found: list[str]) -> None:
        self.suggester.names = found

    _hint = ""  # what the empty table says (set with the load that found no runs)

    def _bad_filter(self, message: str) -> None:
        self._to_table = False  # the cursor stays in the box, where the mistake is
        self.say_error("runs-error", message)

    def _show(self, runs: list[RunSummary]) -> None:
        more = len(runs) > self.limit
        runs = runs[: self.limit]
        shown = f"first {len(runs):,} runs (n: more)" if more else counted(len(runs), "run")
        if self.grouped:
            self._show_groups(runs, shown)
            return
        self.groups = {}
        self.query_one("#runs-error", Label).update(
            shown + (f", sorted by {self.order}" if self.order else "")
        )
        rows = []
        for r in runs:
            cells = [
                "●" if r.id in self.marked else "",
                r.ref,
                r.name or "",
                status_text(r.status),
            ]
            cells += [fmt(r.column(col)) for col in self.extra]
            rows.append((r.id, [*cells, *_tail(r)]))
        self._fill((*LEAD_COLUMNS, *self.extra, *TAIL_COLUMNS), rows)

    def _fill(self, columns: tuple[str, ...], rows: list[tuple[str, list[Any]]]) -> None:
        table = self.query_one("#runs", Table)
        table.say_when_empty("" if rows else self._hint)
        cursor = table.cursor_row
        table.clear(columns=True)
        for col in columns:
            # the mark column is one wide from the start: sized to its (empty) cells it
            # was zero wide, and a mark set later with space did not show
            table.add_column(col, key=col, width=1 if col == "" else None)
        table.add_keyed_rows(rows)
        table.settle()
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))
        if self._to_table:
            # focus moves with the result, in the same paint, not when enter is pressed:
            # a repaint then would compete with the query for the CPU
            self._to_table = False
            table.focus()

    def _show_groups(self, runs: list[RunSummary], shown: str) -> None:
        """One row per configuration: the runs that differ only in a seed, each chosen
        column as mean ± standard deviation (core/runs/groups.py)."""
        from workbench.core.runs.groups import group_by_seed, spread_text

        found = group_by_seed(runs)
        self.groups = {g.id: g.runs for g in found}
        self.query_one("#runs-error", Label).update(
            f"{shown} in {counted(len(found), 'configuration')}, mean ± std (g: each run)"
            + (f", sorted by {self.order}" if self.order else "")
        )
        rows = []
        for g in found:
            cells = [
                "●" if set(g.runs) <= self.marked else "",
                g.ref,
                str(g.n),
                g.name or "",
                status_text(g.status) if g.status != "mixed" else "mixed",
            ]
            for col in self.extra:
                spread = g.spread(col)
                cells.append(spread_text(spread) if spread else fmt(g.column(col)))
            rows.append((g.id, [*cells, *_tail(g)]))
        self._fill(("", "run", "runs", "name", "status", *self.extra, *TAIL_COLUMNS), rows)

    def action_group_seeds(self) -> None:
        self.grouped = not self.grouped
        self.refresh_data()

    def action_more(self) -> None:
        self.limit += PAGE
        self.refresh_data()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.limit = PAGE
        if event.input.id == "runs-columns":
            self.extra = [c.strip() for c in event.value.split(",") if c.strip()]
        self._to_table = True
        self.refresh_data()

    def _sort_field(self, col: str) -> str | None:
        """What ``--order-by`` calls the column shown as ``col`` (None: not sortable)."""
        if col in ("", "dataset", "duration"):
            return None
        return {"run": "start_time", "model": "params.model"}.get(col, col)

    def _sortable(self) -> list[str]:
        table = self.query_one("#runs", DataTable)
        cols = [str(c.value) for c in table.columns]
        return [f for f in (self._sort_field(c) for c in cols) if f is not None]

    def _sort_by(self, field: str, direction: str) -> None:
        self.order = f"{field} {direction}"
        self.refresh_data()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        field = self._sort_field(str(event.column_key.value))
        if field is not None:
            same = self.order == f"{field} desc"
            self._sort_by(field, "asc" if same else "desc")

    def action_sort_next(self) -> None:
        """The keyboard's header click: sort by the next sortable column, newest or
        largest first (``R`` reverses)."""
        fields = self._sortable()
        if not fields:
            return
        current = self.order.rsplit(" ", 1)[0] if self.order else None
        at = fields.index(current) + 1 if current in fields else 0
        self._sort_by(fields[at % len(fields)], "desc")

    def action_sort_reverse(self) -> None:
        if self.order is None:
            self._sort_by("start_time", "asc")  # the default is newest first
            return
        field, _, direction = self.order.rpartition(" ")
        self._sort_by(field, "asc" if direction == "desc" else "desc")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        if not key:
            return
        members = self.groups.get(key, [key])
        if len(members) > 1:  # a group: its runs side by side, its curve as a band
            self.app.push_screen(CompareScreen(members, band=True))
        else:
            self.app.push_screen(RunScreen(key))

    def action_focus_filter(self) -> None:
        self.query_one("#runs-filter", Input).focus()

    def action_focus_table(self) -> None:
        self.query_one("#runs", DataTable).focus()

    def action_mark(self) -> None:
        table = self.query_one("#runs", DataTable)
        if not table.row_count:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        rid = key.value or ""
        members = set(self.groups.get(rid, [rid]))  # a group row marks all its runs
        if members <= self.marked:
            self.marked -= members
        else:
            self.marked |= members
        table.update_cell(key, "", "●" if members <= self.marked else "")
        table.move_cursor(row=table.cursor_row + 1)

    def action_compare(self) -> None:
        if len(self.marked) < 2:
            self.notify("mark at least two runs with space, then press c", severity="warning")
            return
        self.app.push_screen(CompareScreen(sorted(self.marked)))


class RunScreen(WBScreen):
    """One run: params, metrics, tags, environment, artifacts, and its curves."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("right_square_bracket", "tab(1)", "Next tab"),
        Binding("left_square_bracket", "tab(-1)", "Prev tab", show=False),
    ]
    TABS = ("Metrics", "Params", "Tags", "Environment", "Artifacts")

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.metric: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="run-head")
        with Horizontal():
            with TabbedContent(id="run-tabs", classes="main"):
                for name in self.TABS:
                    with TabPane(name, id=f"tab-{name.lower()}"):
                        yield Table(
                            id=f"run-{name.lower()}",
                            zebra_stripes=True,
                            cursor_type="row" if name == "Artifacts" else "cell",
                        )
            with Vertical(classes="side-wide"):
                yield Select([], prompt="metric to plot", id="run-metric")
                yield PlotextPlot(id="run-plot")
        yield WBFooter()

    def refresh_data(self) -> None:
        rid = self.run_id

        def read() -> _RunView:
            info = self.project.runs.get(rid)
            keys = [k for k, m in info.metrics.items() if m.count > 1]
            keys.sort(key=lambda k: (not k.startswith("val_"), k))  # validation first
            metric = self.metric if self.metric in keys else (keys[0] if keys else None)
            points = self.project.runs.history(rid, metric) if metric else []
            return info, keys, metric, points

        self.load(read, self._show)

    def _show(self, data: _RunView) -> None:
        info, curves, metric, points = data
        self.title = info.ref
        dur = f"{info.duration_s:.1f}s"
        head = (
            f"[b]{info.ref}[/] {info.name or ''}  {status_markup(info.status)}  "
            f"experiment {info.experiment}  dataset {info.dataset_ref or '-'}  {dur}"
        )
        if info.error:
            head += f"\n[red]{info.error}[/]"
        self.query_one("#run-head", Static).update(head)
        self._table(
            "run-metrics",
            ("metric", "last", "step", "min", "max", "points"),
            [
                (k, fmt(m.last), fmt(m.step), fmt(m.min), fmt(m.max), fmt(m.count))
                for k, m in info.metrics.items()
            ],
        )
        self._table("run-params", ("param", "value"), sorted(info.params.items()))
        self._table("run-tags", ("tag", "value"), sorted(info.tags.items()))
        env = info.environment
        rows = [(k, str(v)) for k, v in env.items() if k != "packages"]
        rows += [(f"package {k}", v) for k, v in (env.get("packages") or {}).items()]
        self._table("run-environment", ("", "value"), rows)
        arts = self.query_one("#run-artifacts", DataTable)
        arts.clear(columns=True)
        arts.add_columns("path (enter opens)", "kind", "size", "hash")
        for a in info.artifacts:
            arts.add_row(a.path, a.kind, human_bytes(a.size), a.hash[:12], key=a.path)
        arts.say_when_empty(  # type: ignore[attr-defined]
            "No artifacts: a run trained here logs its model, confusion matrix and feature "
            "importance; a script adds files with run.log_artifact(PATH)"
        )
        self.query_one("#run-tags", Table).say_when_empty(
            f"No tags. Add one: workbench runs tag {info.ref} KEY=VALUE"
        )
        select = self.query_one("#run-metric", Select)
        options = [(k, k) for k in curves]
        if [o[0] for o in options] != [o for o in getattr(self, "_options", [])]:
            self._options = [o[0] for o in options]
            select.set_options(options)
        if metric and select.value != metric:
            self.metric = metric
            select.value = metric
        self._plot(metric, points)

    def action_tab(self, step: int) -> None:
        """The next (or previous) tab, with its table focused: tabs were reached only
        by the mouse or by tabbing onto the tab strip."""
        tabs = self.query_one("#run-tabs", TabbedContent)
        ids = [f"tab-{n.lower()}" for n in self.TABS]
        at = ids.index(tabs.active) if tabs.active in ids else 0
        tabs.active = ids[(at + step) % len(ids)]
        self.query_one(f"#run-{self.TABS[(at + step) % len(ids)].lower()}", DataTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "run-artifacts" and event.row_key.value:
            from workbench.tui.screens.artifact import ArtifactScreen

            self.app.push_screen(ArtifactScreen(self.run_id, event.row_key.value))

    def _table(self, tid: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        table = self.query_one(f"#{tid}", DataTable)
        table.clear(columns=True)
        table.add_columns(*columns)
        for r in rows:
            table.add_row(*[str(x) for x in r])

    def _plot(self, metric: str | None, points: list[tuple[int, float]]) -> None:
        widget = self.query_one("#run-plot", PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        if points:
            xs, ys = zip(*points, strict=True)
            plt.plot(list(xs), list(ys), marker="braille")
            step_axis(plt, xs)
        plt.title(metric or "no curves logged")
        plt.xlabel("step")
        widget.refresh()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.value is not Select.BLANK and event.value != self.metric:
            self.metric = str(event.value)
            self.refresh_data()


def _tail(r: Any) -> list[str]:
    """The TAIL_COLUMNS cells of a run or a seed group."""
    return [r.params.get("model", "-"), r.dataset or "-", r.experiment, f"{r.duration_s:.1f}s"]
