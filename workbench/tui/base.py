"""What every screen shares: background loading and refreshing on change.

A screen never talks SQL and never blocks: it calls core in a thread worker and gets
the result back on the UI thread. A WorkbenchError becomes a ``ShowError`` message with
the same one-line message the CLI prints; the app shows it and keeps running. Screens
talk to the app only through messages (``workbench.tui.messages``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.binding import Binding
from textual.screen import Screen

from workbench.tui.messages import DataChanged, ShowError

if TYPE_CHECKING:
    from workbench.core.project import Project
    from workbench.tui.app import WorkbenchApp


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
                app.last_load_done = time.monotonic()

        failed = on_error or self._post_error

        def work() -> None:
            try:
                result = fn()
            except WorkbenchError as exc:
                app.call_from_thread(deliver, failed, exc.message)
                return
            except OSError as exc:  # what the machine refused: the CLI's words
                app.call_from_thread(deliver, failed, os_error_message(exc))
                return
            except Exception as exc:  # never crash the app on what a user typed
                text = " ".join(str(exc).split())[:300]
                message = f"unexpected {type(exc).__name__}: {text}"
                app.call_from_thread(deliver, failed, message)
                return
            app.call_from_thread(deliver, then, result)

        self.run_worker(work, thread=True, group=group)  # type: ignore[attr-defined]

    def _post_error(self, message: str) -> None:
        self.post_message(ShowError(message))  # type: ignore[attr-defined]

    def say_error(self, label_id: str, message: str) -> None:
        """An error shown in the screen's own line (where the mistake was typed) rather
        than as a toast; recorded with the toasts in ``app.errors_shown``."""
        from rich.markup import escape
        from textual.widgets import Label

        self.app.errors_shown.append(message)  # type: ignore[attr-defined]
        self.query_one(f"#{label_id}", Label).update(f"[red]{escape(message)}[/]")  # type: ignore[attr-defined]


class WBScreen(Loader, Screen):
    """A screen that reloads its data when the project changes elsewhere.

    Letters switch screens only when no text box has the focus (a box takes the keys
    typed into it), and ``escape`` always leaves a box, so the way out of any box is
    the same key. Screens with a table bind ``escape`` to focus it instead."""

    BINDINGS = [Binding("escape", "leave_box", "Leave the box", show=False)]

    def action_leave_box(self) -> None:
        self.set_focus(None)

    def refresh_data(self) -> None:
        """Load (again) what the screen shows; called on mount and on changes."""

    # The catalog's change stamp when this screen last loaded. Only the screen on
    # display is told of a change; one that comes back compares stamps, so it never
    # shows the store as it was when the user left it.
    _seen: Any = None

    def on_mount(self) -> None:
        # Textual calls every class's own on_mount along the MRO, a subclass's first: a
        # screen's on_mount sets up its tables and must not call this one again
        # (super().on_mount() here loaded every screen twice).
        self._seen = self.app._stamp  # type: ignore[attr-defined]
        self.refresh_data()

    def on_data_changed(self, _: DataChanged) -> None:
        self._seen = self.app._stamp  # type: ignore[attr-defined]
        self.refresh_data()

    _left_unfocused = False

    def on_screen_suspend(self) -> None:
        self._left_unfocused = self.focused is None

    def on_screen_resume(self) -> None:
        # Textual focuses AUTO_FOCUS whenever a screen comes back with nothing focused:
        # after escape had left Launch's first box, closing a dialog put the cursor back
        # in it and the next `q` was typed there instead of quitting.
        if self._left_unfocused:
            self.call_after_refresh(self.set_focus, None)
        stamp = self.app._stamp  # type: ignore[attr-defined]
        # A screen that loaded before the app's first look at the catalog saw what that
        # first look saw (the app treats it as a baseline for the screen on display too);
        # comparing with None reloaded every such screen as it opened, reading it twice.
        seen = self._seen if self._seen is not None else self.app.first_stamp  # type: ignore[attr-defined]
        if seen is None:
            return
        running = bool(stamp and stamp[1])  # runs log points without a new stamp
        if stamp != seen or running:
            self._seen = stamp
            self.refresh_data()
