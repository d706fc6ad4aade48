"""The workbench TUI: one Textual app over the same core as the CLI.

Top-level screens are Textual *modes* (each keeps its own stack, so going from Runs to
Datasets and back returns to where you were). The app never holds the catalog open: it
reads in short transactions from thread workers and, every two seconds, looks at a
cheap change stamp (the audit trail's length and the running runs) so that work done
by the CLI or a training process shows up without a manual refresh.
"""

from __future__ import annotations

import collections
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import Hit, Hits, Provider
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from workbench.tui.messages import DataChanged, Open, ShowError
from workbench.tui.screens import MODES
from workbench.tui.widgets.footer import WBFooter

if TYPE_CHECKING:
    from workbench.core.project import Project

POLL_SECONDS = 2.0
# Full garbage collections in the real app: off automatically, made when idle.
FULL_GC_OFF = 1_000_000_000
FULL_GC_AFTER = 10  # Python's default: after 10 collections of the middle generation
IDLE_SECONDS = 0.5
FULL_GC_LATEST = 30.0

HELP = """\
# workbench

| key | where |
|---|---|
| `o` | overview |
| `d` | datasets |
| `r` | runs (filter with the CLI's filter language; `space` marks, `c` compares) |
| `l` | launch a training run or a sweep |
| `f` | drift |
| `m` | models (promote, roll back, archive) |
| `a` | audit trail (`v` runs verify) |
| `s` | SQL: read-only queries over the views of `workbench sql` |
| `i` | pipelines: each run of a continuous-training loop and the step that decided it |
| `enter` | open the selected item |
| `escape` | back, or out of a text box (letters then switch screens again) |
| `ctrl+p` | command palette: open any dataset, run or model by name |
| `ctrl+t` | light / dark theme |
| `q` | quit |

Everything here is also a CLI command and a Python call over the same core; the
store is the `.workbench/` folder of this project, shared with any other process.
"""


KEY_NAMES = {"slash": "/", "space": "space", "escape": "escape", "enter": "enter"}


def screen_keys() -> str:
    """Each screen's own keys, read from its bindings (so the list cannot fall behind
    them), grouped by screen as the footer shows them one screen at a time."""
    lines = []
    for mode, screen in MODES.items():
        rows = []
        for b in getattr(screen, "BINDINGS", []):
            if isinstance(b, Binding) and b.description and b.action != "leave_box":
                keys = ", ".join(f"`{KEY_NAMES.get(k, k)}`" for k in b.key.split(","))
                rows.append(f"| {keys} | {b.description} |")
        if rows:
            title = "SQL" if mode == "sql" else mode.capitalize()
            lines += ["", f"## {title}", "", "| key | does |", "|---|---|", *rows]
    return "\n".join(lines) + "\n"


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP + screen_keys())


class OpenAnything(Provider):
    """Command palette: every dataset, version, run, model and drift report by name."""

    async def startup(self) -> None:
        import asyncio

        app: WorkbenchApp = self.app  # type: ignore[assignment]
        try:  # read the catalog off the event loop, once per palette opening
            self.items = await asyncio.to_thread(app.palette_items)
        except Exception:
            self.items = []

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for label, help_text, action in getattr(self, "items", []):
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, matcher.highlight(label), action, help=help_text)


class WorkbenchApp(App[None]):
    TITLE = "workbench"
    CSS_PATH = "workbench.tcss"
    COMMANDS = App.COMMANDS | {OpenAnything}
    BINDINGS = [
        Binding("o", "mode('overview')", "Overview"),
        Binding("d", "mode('datasets')", "Datasets"),
        Binding("r", "mode('runs')", "Runs"),
        Binding("l", "mode('launch')", "Launch"),
        Binding("f", "mode('drift')", "Drift"),
        Binding("m", "mode('models')", "Models"),
        Binding("w", "mode('monitor')", "Monitor"),
        Binding("a", "mode('audit')", "Audit"),
        Binding("s", "mode('sql')", "SQL"),
        Binding("i", "mode('pipelines')", "Pipelines"),
        Binding("question_mark", "help", "Help"),
        Binding("ctrl+t", "toggle_theme", "Theme", show=False),
        Binding("q", "quit", "Quit"),
    ]

    MODES = MODES

    def __init__(self, project: Project, freeze_gc: bool = False) -> None:
        super().__init__()
        self.project = project
        self.freeze_gc = freeze_gc
        self._stamp: tuple[Any, ...] | None = None
        self.first_stamp: tuple[Any, ...] | None = None
        self.loading = 0  # see Loader.load
        # Every error shown, as a toast or in a screen's own line (a bad filter, a SQL
        # error), newest last: what the user saw, for tests and for a future error log.
        self.errors_shown: collections.deque[str] = collections.deque(maxlen=200)
        self.last_load_done = 0.0  # monotonic time the latest load was delivered
        self._last_full_gc = time.monotonic()
        self.sub_title = project.root.name
        self.launched: list[Any] = []  # Launch screens that started a run (see quit)

    def on_mount(self) -> None:
        self.theme = "textual-dark"
        self.switch_mode("overview")
        self.set_interval(POLL_SECONDS, self._poll)
        if self.freeze_gc:
            self.call_after_refresh(self._freeze)

    @staticmethod
    def _freeze() -> None:
        """Keep what is alive after the first paint (modules, widgets) out of the cyclic
        collector: a full collection then walks only what came later. Without this a
        full collection took 60-150 ms, often in the middle of showing a filter's
        result. Even so one took 50-100 ms after a few filters, so full collections are
        also moved to idle moments (see ``_collect_when_idle``); the young generations
        are collected as usual. Only for the real app (``run``): many apps in one test
        process would keep each other's garbage."""
        import gc

        gc.freeze()
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, FULL_GC_OFF)

    def _collect_when_idle(self) -> None:
        """The full collection Python would have made by now (10 collections of the
        middle generation since the last), made while no load is in flight and none
        finished in the last half second, or after 30 s at the latest."""
        import gc

        now = time.monotonic()
        due = gc.get_count()[2] >= FULL_GC_AFTER
        idle = self.loading == 0 and now - self.last_load_done >= IDLE_SECONDS
        if due and (idle or now - self._last_full_gc >= FULL_GC_LATEST):
            gc.collect()
            self._last_full_gc = now

    def compose(self) -> ComposeResult:
        yield WBFooter()

    # ---- actions ---------------------------------------------------------------------
    def action_mode(self, mode: str) -> None:
        self.switch_mode(mode)

    async def action_quit(self) -> None:
        """Quit, but not silently past a run launched from here that still trains: ask
        whether to keep it (it runs on, detached) or cancel it."""
        live = next((s for s in self.launched if s.training()), None)
        if live is None:
            self.exit()
            return
        from workbench.tui.screens.dialogs import QuitWhileTraining

        def chosen(choice: str | None) -> None:
            if choice == "cancel":
                live.cancel_and_wait()
            if choice is not None:
                self.exit()

        self.push_screen(QuitWhileTraining(live.describe()), chosen)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def on_show_error(self, event: ShowError) -> None:
        # one line, as the CLI prints it (a parser's message may quote a whole line)
        self.errors_shown.append(event.message)
        self.notify(
            " ".join(event.message.split()),
            title="error",
            severity="error",
            timeout=8,
            markup=False,
        )

    def on_open(self, event: Open) -> None:
        if event.kind == "dataset":
            self.open_dataset(event.ref)
        elif event.kind == "run":
            self.open_run(event.ref)
        elif event.kind == "model":
            self.open_model(event.ref)
        elif event.kind == "drift":
            self.open_drift(event.ref)
        else:
            name, _, version = event.ref.rpartition("@")
            self.open_promote_dialog(name, int(version))

    # ---- opening things --------------------------------------------------------------
    def open_dataset(self, ref: str) -> None:
        from workbench.tui.screens.datasets import VersionScreen

        self.switch_mode("datasets")
        self.push_screen(VersionScreen(ref))

    def open_run(self, run_id: str) -> None:
        from workbench.tui.screens.runs import RunScreen

        self.switch_mode("runs")
        self.push_screen(RunScreen(run_id))

    def open_model(self, name: str) -> None:
        self.switch_mode("models")
        self.screen.select_model(name)  # type: ignore[attr-defined]

    def open_drift(self, report_id: str) -> None:
        self.switch_mode("drift")
        self.screen.show_report(report_id)  # type: ignore[attr-defined]

    def open_promote_dialog(self, name: str, version: int) -> None:
        from workbench.tui.screens.models import PromoteDialog

        self.open_model(name)

        def reload(_: bool | None) -> None:
            self.screen.post_message(DataChanged())

        self.push_screen(PromoteDialog(name, version), reload)

    def verify(self) -> None:
        self.switch_mode("audit")
        self.screen.action_verify()  # type: ignore[attr-defined]

    def palette_items(self) -> list[tuple[str, str, Any]]:
        """(label, help, action) for everything that can be opened; read in one go."""
        p = self.project
        items: list[tuple[str, str, Any]] = []
        for d in p.datasets.list():
            for v in p.datasets.versions(d.name):
                items.append(
                    (
                        f"dataset {v.ref}",
                        f"{v.n_rows:,} rows, {v.message or ''}",
                        partial(self.open_dataset, v.ref),
                    )
                )
        for r in p.runs.list(limit=500):
            label = f"run {r.ref} {r.name or ''} {r.params.get('model', '')}".strip()
            items.append((label, f"{r.status}, {r.experiment}", partial(self.open_run, r.id)))
        for m in p.models.list():
            items.append(
                (
                    f"model {m.name}",
                    f"{m.versions} versions",
                    partial(self.open_model, m.name),
                )
            )
        for m in p.models.list():
            for number in range(1, m.versions + 1):
                items.append(
                    (
                        f"promote {m.name} v{number}",
                        "check the gates, then move an alias",
                        partial(self.open_promote_dialog, m.name, number),
                    )
                )
        items.append(
            ("launch a training run", "the launch form", partial(self.switch_mode, "launch"))
        )
        items.append(
            ("verify the store", "re-hash every object, check the audit chain", self.verify)
        )
        for rep in p.drift.list(limit=100):
            items.append(
                (
                    f"drift {rep['reference']} → {rep['current']}",
                    f"report {rep['id'][:8]}",
                    partial(self.open_drift, rep["id"]),
                )
            )
        for mode in (
            "overview",
            "datasets",
            "runs",
            "launch",
            "drift",
            "models",
            "audit",
            "sql",
            "pipelines",
        ):
            items.append((f"go to {mode}", "screen", partial(self.switch_mode, mode)))
        return items

    # ---- noticing changes made elsewhere ------------------------------------------------
    def _poll(self) -> None:
        if self.freeze_gc:
            self._collect_when_idle()

        def check() -> None:
            try:
                now = self.project.catalog.change_stamp()
            except Exception:
                return  # busy or gone for a moment: try again at the next tick
            self.call_from_thread(self._changed, now)

        self.run_worker(check, thread=True, group="poll", exclusive=True)

    def _changed(self, now: tuple[Any, ...]) -> None:
        running = bool(now[1])
        if now != self._stamp or running:
            first = self._stamp is None
            self._stamp = now
            if first:
                self.first_stamp = now  # what screens that loaded before this saw
            else:
                self.screen.post_message(DataChanged())


def run(project: Project) -> None:
    WorkbenchApp(project, freeze_gc=True).run()
