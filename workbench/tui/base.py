"""What every screen shares: background loading, one-line errors, number formatting.

A screen never talks SQL and never blocks: it calls core in a thread worker and gets
the result back on the UI thread. A WorkbenchError becomes a notification with the
same one-line message the CLI prints; the app keeps running.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.screen import Screen
from textual.widgets import DataTable

if TYPE_CHECKING:
    from workbench.core.project import Project
    from workbench.tui.app import WorkbenchApp


class Table(DataTable):  # type: ignore[type-arg]
    """A DataTable that redraws once its columns are sized to new rows.

    Textual's DataTable measures new rows on its next idle, but a line it drew before
    that stays cached (the cache key does not change), so a busy moment could leave
    columns cut to their header's width until the next cursor move. Clearing the line
    caches after the measuring makes the next paint use the real widths.
    """

    def _update_dimensions(self, new_rows: Any) -> None:
        super()._update_dimensions(new_rows)
        self._clear_caches()
        self.refresh()


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
        return f"{v:.{digits}f}"
    return str(v)


STATUS_COLOURS = {"finished": "green", "running": "yellow", "failed": "red", "killed": "red"}


def status_markup(status: str) -> str:
    return f"[{STATUS_COLOURS.get(status, 'white')}]{status}[/]"


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(counts: list[int] | None) -> str:
    if not counts:
        return ""
    top = max(counts) or 1
    return "".join(
        SPARK[min(len(SPARK) - 1, int(c / top * (len(SPARK) - 1) + 0.5))] for c in counts
    )


class Loader:
    """Mixin: ``self.load(fn, then)`` runs ``fn`` off the UI thread, then ``then(result)`` on it."""

    @property
    def project(self) -> Project:
        return self.app.project  # type: ignore[attr-defined]

    def load(
        self,
        fn: Callable[[], Any],
        then: Callable[[Any], None],
        group: str = "load",
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        from workbench.core.errors import WorkbenchError, os_error_message

        app: WorkbenchApp = self.app  # type: ignore[attr-defined]
        # Every load runs and delivers (so `app.loading`, the loads in flight, always gets
        # back to 0), but only the newest load of a group shows its result: an older one
        # that finishes late must not overwrite what a newer filter or page put there.
        app.loading += 1
        generations: dict[str, int] = self.__dict__.setdefault("_load_generations", {})
        mine = generations[group] = generations.get(group, 0) + 1

        def deliver(handler: Callable[[Any], None], value: Any) -> None:
            try:
                if generations.get(group) == mine:
                    handler(value)
            finally:
                app.loading -= 1

        def work() -> None:
            try:
                result = fn()
            except WorkbenchError as exc:
                app.call_from_thread(deliver, on_error or app.error, exc.message)
                return
            except OSError as exc:  # what the machine refused: the CLI's words
                app.call_from_thread(deliver, on_error or app.error, os_error_message(exc))
                return
            except Exception as exc:  # never crash the app on what a user typed
                text = " ".join(str(exc).split())[:300]
                message = f"unexpected {type(exc).__name__}: {text}"
                app.call_from_thread(deliver, on_error or app.error, message)
                return
            app.call_from_thread(deliver, then, result)

        self.run_worker(work, thread=True, group=group)  # type: ignore[attr-defined]


class WBScreen(Loader, Screen):
    """A screen that reloads its data when the project changes elsewhere."""

    def refresh_data(self) -> None:
        """Load (again) what the screen shows; called on mount and on changes."""

    def on_mount(self) -> None:
        self.refresh_data()
