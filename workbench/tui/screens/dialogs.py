"""A dialog that asks before a change: it names what will change (worked out first, off
the UI thread, so a refusal shows before anything is asked), lets the user choose the
alias where there is a choice, and takes a reason for the audit trail."""

from __future__ import annotations

from collections.abc import Callable

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from workbench.tui.base import Loader


class ConfirmChange(Loader, ModalScreen[tuple[str, str] | None]):
    """Returns (choice, reason) on confirm, None on cancel.

    ``plan(choice)`` runs in a worker and returns the sentence saying what will change,
    or raises the WorkbenchError the change itself would raise: then the dialog shows
    that and Confirm stays off. Confirm also needs a reason."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        title: str,
        plan: Callable[[str], str],
        choices: list[str] | None = None,
        chosen: str = "",
        verb: str = "Confirm",
    ) -> None:
        super().__init__()
        self.title_text, self.plan, self.choices, self.verb = title, plan, choices, verb
        self.choice = chosen
        self.ok = False

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Label(self.title_text, classes="panel-title")
            if self.choices:
                yield Select(
                    [(c, c) for c in self.choices],
                    value=self.choice,
                    allow_blank=False,
                    id="confirm-choice",
                )
            yield Static("working out what will change…", id="confirm-plan")
            yield Input(
                placeholder="reason (required: kept in the audit trail)", id="confirm-reason"
            )
            with Horizontal(id="confirm-buttons"):
                yield Button(self.verb, id="confirm-do", variant="warning", disabled=True)
                yield Button("Cancel", id="confirm-cancel")

    def on_mount(self) -> None:
        self.query_one("#confirm-reason", Input).focus()
        self._plan()

    def _plan(self) -> None:
        choice = self.choice
        self.ok = False
        self._enable()

        def shown(text: str) -> None:
            self.ok = True
            self.query_one("#confirm-plan", Static).update(text)
            self._enable()

        def refused(message: str) -> None:
            self.ok = False
            self.query_one("#confirm-plan", Static).update(f"[red]cannot: {escape(message)}[/]")
            self._enable()

        self.load(lambda: self.plan(choice), shown, group="plan", on_error=refused)

    def _reason(self) -> str:
        return self.query_one("#confirm-reason", Input).value.strip()

    def _enable(self) -> None:
        self.query_one("#confirm-do", Button).disabled = not (self.ok and self._reason())

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.value is not Select.BLANK and str(event.value) != self.choice:
            self.choice = str(event.value)
            self._plan()

    def on_input_changed(self, _: Input.Changed) -> None:
        self._enable()

    def on_input_submitted(self, _: Input.Submitted) -> None:
        self._confirm()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm-do":
            self._confirm()
        elif event.button.id == "confirm-cancel":
            self.dismiss(None)

    def _confirm(self) -> None:
        if self.ok and self._reason():
            self.dismiss((self.choice, self._reason()))
        elif self.ok:
            self.notify("give a reason: it is kept in the audit trail", severity="warning")

    def action_cancel(self) -> None:
        self.dismiss(None)


class QuitWhileTraining(ModalScreen[str | None]):
    """Asked on quit while a run launched from the app still trains: returns "keep" (it
    goes on without the app, as a detached process), "cancel" (it ends as killed, its
    points kept) or None (stay in the app)."""

    BINDINGS = [
        Binding("escape", "stay", "Stay"),
        Binding("k", "choose('keep')", "Keep it and quit"),
        Binding("c", "choose('cancel')", "Cancel it and quit"),
    ]

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Label("A run you launched is still training", classes="panel-title")
            yield Static(
                f"{self.what}\n\nKeep it training after the app closes (its points keep "
                "landing in the project; reopen the app to follow it), or cancel it (it "
                "ends as killed, with the points logged so far)?",
                id="confirm-plan",
            )
            with Horizontal(id="confirm-buttons"):
                yield Button("Keep training, quit (k)", id="quit-keep", variant="primary")
                yield Button("Cancel run, quit (c)", id="quit-cancel", variant="error")
                yield Button("Stay (esc)", id="quit-stay")

    def on_mount(self) -> None:
        self.query_one("#quit-keep", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        choice = {"quit-keep": "keep", "quit-cancel": "cancel"}.get(event.button.id or "")
        self.dismiss(choice)

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)

    def action_stay(self) -> None:
        self.dismiss(None)
