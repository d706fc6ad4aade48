"""Models: registry → versions → aliases; promote past the gates, roll back, archive;
and, live, the traffic of every running ``workbench serve``."""

from __future__ import annotations

import contextlib
from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Header, Input, Label, Static

from workbench.core.models.versions import AliasMove, ModelEntry, ModelVersion
from workbench.core.text import inert
from workbench.tui.base import Loader, WBScreen
from workbench.tui.formatting import fmt
from workbench.tui.messages import ShowError
from workbench.tui.widgets.footer import WBFooter
from workbench.tui.widgets.table import Table

TRAFFIC_SECONDS = 1.0


def traffic_text(servers: list[dict[str, Any]], traffic: dict[str, Any]) -> str:
    """One block per running server: what it serves, where, and its last 10 s."""
    if not servers:
        return "[dim]none running; start one:\nworkbench serve NAME@ALIAS[/]"
    blocks = []
    for info in servers:
        t = traffic.get(info["server"])
        version = f" v{t.version}" if t is not None and t.version is not None else ""
        head = f"[b]{escape(info['ref'])}[/]{version}\n  {escape(info['url'])}"
        if t is None or not t.requests:
            blocks.append(f"{head}\n  idle")
            continue
        errors = f"[b red]{t.errors} errors[/]" if t.errors else "0 errors"
        blocks.append(
            f"{head}\n  {t.per_second:,.1f} req/s  {errors}\n"
            f"  p50 {t.p50_ms:.1f} ms  p99 {t.p99_ms:.1f} ms"
        )
    return "\n".join(blocks)


class ModelsScreen(WBScreen):
    AUTO_FOCUS = "#models"
    BINDINGS = [
        Binding("p", "promote", "Promote"),
        Binding("b", "rollback", "Roll back"),
        Binding("x", "archive", "Archive"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.model: str | None = None
        self._aliases: dict[str, dict[str, int]] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(classes="side", id="models-side"):
                yield Label("Models", classes="panel-title")
                yield Table(id="models", cursor_type="row", zebra_stripes=True)
                yield Label("Serving (last 10 s)", classes="panel-title")
                yield Static(id="model-traffic")
            with Vertical(classes="main"):
                yield Label("Versions (p promote, b roll back, x archive)", classes="panel-title")
                yield Table(id="model-versions", cursor_type="row", zebra_stripes=True)
                yield Static(id="model-lineage")
                yield Label("Alias history", classes="panel-title")
                yield Table(id="model-history", zebra_stripes=True)
        yield WBFooter()

    def on_mount(self) -> None:
        from workbench.core.models.prediction_log import TrafficReader

        self.query_one("#models", DataTable).add_columns("model", "aliases", "versions")
        self._traffic = TrafficReader(self.project.serving_dir)
        # The first look is here, on the UI thread (a directory listing): the panel is
        # never blank, and a snapshot never races a worker.
        self.query_one("#model-traffic", Static).update(self._traffic_text())
        self.set_interval(TRAFFIC_SECONDS, self._poll_traffic)
        self.query_one("#model-history", DataTable).add_columns(
            "when (UTC)", "alias", "action", "change", "by", "reason"
        )

    def _poll_traffic(self) -> None:
        """Read what the servers' logs gained (never the catalog), off the UI thread;
        a screen not on display does not read."""
        if not self.is_current:
            return

        def show(text: str) -> None:
            # on the UI thread: the screen may have been closed while the logs were read
            # (a worker that looked the panel up itself failed with NoMatches, under load)
            with contextlib.suppress(NoMatches):
                self.query_one("#model-traffic", Static).update(text)

        def work() -> None:
            self.app.call_from_thread(show, self._traffic_text())

        self.run_worker(work, thread=True, group="traffic", exclusive=True)

    def _traffic_text(self) -> str:
        from workbench.core.models import prediction_log

        try:
            return traffic_text(
                prediction_log.servers(self.project.serving_dir), self._traffic.read()
            )
        except OSError as exc:
            return f"[red]cannot read the serving logs: {exc.strerror}[/]"

    def select_model(self, name: str) -> None:
        self.model = name
        self.refresh_data()

    def refresh_data(self) -> None:
        self.load(self.project.models.list, self._show_models, group="models")

    def _show_models(self, items: list[ModelEntry]) -> None:
        from workbench.tui.hints import empty

        self.query_one("#models", Table).say_when_empty(empty("models", []))
        self._aliases = {m.name: m.aliases for m in items}
        table = self.query_one("#models", DataTable)
        table.clear()
        for m in items:
            aliases = ", ".join(f"{a}=v{v}" for a, v in m.aliases.items()) or "-"
            table.add_row(m.name, aliases, fmt(m.versions), key=m.name)
        if items:
            names = [m.name for m in items]
            self.model = self.model if self.model in names else names[0]
            table.move_cursor(row=names.index(self.model))
            self._versions(self.model)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if (
            event.data_table.id == "models"
            and event.row_key.value
            and event.row_key.value != self.model
        ):
            self.model = event.row_key.value
            self._versions(self.model)
        elif event.data_table.id == "model-versions" and event.row_key.value:
            self._lineage(event.row_key.value)

    def _versions(self, name: str) -> None:
        def read() -> tuple[list[ModelVersion], list[AliasMove]]:
            return self.project.models.versions(name), self.project.models.history(name)

        self.load(read, self._show_versions, group="versions")

    def _show_versions(self, data: tuple[list[ModelVersion], list[AliasMove]]) -> None:
        versions, history = data
        self._by_ref = {v.ref: v for v in versions}
        keys = sorted({k for v in versions for k in v.metrics if k.startswith("val_")})[:4]
        table = self.query_one("#model-versions", DataTable)
        table.clear(columns=True)
        # What decides a promotion first (aliases, metrics), where it came from last.
        table.add_columns("version", "aliases", *keys, "status", "run", "dataset")
        for v in reversed(versions):
            table.add_row(
                f"v{v.version}",
                ", ".join(v.aliases) or "-",
                *[fmt(v.metrics.get(k)) for k in keys],
                v.status,
                f"run:{v.run_id[:8]}",
                v.dataset_ref or "-",
                key=v.ref,
            )
        hist = self.query_one("#model-history", DataTable)
        hist.clear()
        for h in reversed(history):
            change = f"v{h.previous} → v{h.version}" if h.previous else f"→ v{h.version}"
            action = h.action.removeprefix("model.")
            hist.add_row(
                f"{h.ts:%Y-%m-%d %H:%M}",
                h.alias,
                f"[b red]{action}[/]" if h.forced else action,
                change,
                h.actor,
                h.reason or "",
            )
        if versions:
            self._lineage(versions[-1].ref)

    def _lineage(self, ref: str) -> None:
        v = getattr(self, "_by_ref", {}).get(ref)
        if v is None:
            return
        self.query_one("#model-lineage", Static).update(
            f"[b]{v.ref}[/] lineage: {v.dataset_ref or '?'} → run:{v.run_id[:8]} → {v.ref}"
            f"{' → ' + ', '.join(v.aliases) if v.aliases else ''}   "
            f"status {v.status}   artifact {v.artifact[:12]}"
            + (f"\n{escape(inert(v.description))}" if v.description else "")
        )

    def _current(self) -> Any:
        table = self.query_one("#model-versions", DataTable)
        if not table.row_count:
            return None
        ref = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return getattr(self, "_by_ref", {}).get(ref)

    def action_promote(self) -> None:
        v = self._current()
        if v is None:
            self.notify("select a model version first", severity="warning")
            return
        self.app.push_screen(
            PromoteDialog(v.model, v.version, tuple(v.aliases)), lambda _: self.refresh_data()
        )

    def action_rollback(self) -> None:
        """Ask first: which alias (the selected version's, else production, else the
        first), what it will move to, and why."""
        from workbench.tui.screens.dialogs import ConfirmChange

        if self.model is None:
            return
        name = self.model
        aliases = sorted(self._aliases.get(name, {}))
        if not aliases:
            self.notify(f"{name} has no alias to roll back", severity="warning")
            return
        v = self._current()
        held = [a for a in (v.aliases if v else ()) if a in aliases]
        chosen = held[0] if held else "production" if "production" in aliases else aliases[0]

        def plan(alias: str) -> str:
            current, previous = self.project.models.rollback_plan(name, alias)
            return f"{name}@{alias} moves back from v{current} to v{previous}, its holder before"

        def confirmed(answer: tuple[str, str] | None) -> None:
            if answer is None:
                return
            alias, reason = answer

            def done(res: tuple[int, int]) -> None:
                self.notify(f"{name}@{alias} -> v{res[1]} (rolled back from v{res[0]})")
                self.refresh_data()

            self.load(lambda: self.project.models.rollback(name, alias, reason), done, group="act")

        dialog = ConfirmChange(f"Roll back an alias of {name}", plan, aliases, chosen, "Roll back")
        self.app.push_screen(dialog, confirmed)

    def action_archive(self) -> None:
        from workbench.core.errors import WorkbenchError
        from workbench.tui.screens.dialogs import ConfirmChange

        v = self._current()
        if v is None:
            self.notify("select a model version first", severity="warning")
            return

        def plan(_: str) -> str:
            mv = self.project.models.archive_plan(v.model, v.version)
            if mv.status == "archived":  # archiving again would change nothing
                raise WorkbenchError(f"{mv.ref} is archived already")
            return f"{mv.ref} stays on record but can no longer be promoted"

        def confirmed(answer: tuple[str, str] | None) -> None:
            if answer is None:
                return

            def done(mv: Any) -> None:
                self.notify(f"Archived {mv.ref}")
                self.refresh_data()

            reason = answer[1]
            self.load(
                lambda: self.project.models.archive(v.model, v.version, reason), done, group="act"
            )

        self.app.push_screen(ConfirmChange(f"Archive {v.ref}", plan, verb="Archive"), confirmed)


class PromoteDialog(Loader, ModalScreen[bool]):
    """Shows every gate with its value and verdict before asking to confirm, and a reason."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, model: str, version: int, held: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.model, self.version, self.held = model, version, held
        # start at an alias the version does not hold yet
        self.first = next((a for a in ("staging", "production") if a not in held), "")
        self._timer: Any = None

    def compose(self) -> ComposeResult:
        with Vertical(id="promote"):
            yield Label(f"Promote {self.model} v{self.version}", classes="panel-title")
            yield Input(
                value=self.first,
                placeholder="alias, e.g. staging or production",
                id="promote-alias",
            )
            yield Input(placeholder="reason (required to force)", id="promote-reason")
            yield Button("Check gates", id="check", variant="primary")
            yield Table(id="gates", zebra_stripes=True)
            yield Static(id="promote-status")
            with Horizontal(id="promote-buttons"):
                yield Button("Promote", id="do-promote", variant="success", disabled=True)
                yield Button("Force", id="do-force", variant="error", disabled=True)
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#gates", DataTable).add_columns("", "gate", "value", "target", "note")
        self.query_one("#promote-alias", Input).focus()
        if self.first:
            self._check()  # the gates as the dialog opens, not only when asked

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "promote-alias":
            return
        self.query_one("#do-promote", Button).disabled = True
        self.query_one("#do-force", Button).disabled = True
        self._stop_timer()
        # checked again once typing pauses: a drift gate computes a report each time
        self._timer = self.set_timer(0.4, self._check)

    def _alias(self) -> str:
        return self.query_one("#promote-alias", Input).value.strip()

    def _reason(self) -> str | None:
        return self.query_one("#promote-reason", Input).value.strip() or None

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._check()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "check":
            self._check()
        elif event.button.id == "do-promote":
            self._promote(force=False)
        elif event.button.id == "do-force":
            if not self._reason():
                self.query_one("#promote-status", Static).update("[red]forcing needs a reason[/]")
                self.query_one("#promote-reason", Input).focus()
                return
            self._promote(force=True)
        elif event.button.id == "cancel":
            self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)

    def _stop_timer(self) -> None:
        # A check asked for (enter, the button) or a promotion supersedes the one
        # pending from typing; left running, it would fire mid-promotion.
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _check(self) -> None:
        self._stop_timer()
        alias = self._alias()
        if not alias:
            return
        if alias in self.held:
            self.query_one("#gates", DataTable).clear()
            self.query_one("#promote-status", Static).update(
                f"[yellow]v{self.version} already holds {alias}: nothing to promote[/]"
            )
            return
        self.query_one("#promote-status", Static).update("checking gates…")
        self.load(
            lambda: self.project.models.check(self.model, self.version, alias)[2],
            self._gates,
            on_error=self._failed,
        )

    def _failed(self, message: str) -> None:
        self.query_one("#promote-status", Static).update(f"[red]{escape(message)}[/]")
        self.post_message(ShowError(message))

    def _gates(self, results: list[Any]) -> None:
        table = self.query_one("#gates", DataTable)
        table.clear()
        for r in results:
            table.add_row(
                "[green]pass[/]" if r.passed else "[b red]FAIL[/]",
                r.gate,
                fmt(r.value),
                fmt(r.target),
                r.note,
            )
        ok = all(r.passed for r in results)
        self.query_one("#do-promote", Button).disabled = not ok
        self.query_one("#do-force", Button).disabled = ok
        self.query_one("#promote-status", Static).update(
            "[green]every gate passes: confirm with Promote[/]"
            if ok
            else "[red]a gate fails: promotion refused[/] (Force overrides, with a reason, and is audited)"
        )

    def _promote(self, force: bool) -> None:
        from workbench.core.models.versions import PromotionRefused

        self._stop_timer()
        alias, reason = self._alias(), self._reason()
        # Nothing in the dialog can start another check or a second promotion while
        # this one runs; the status says what is happening.
        self._hold(True)
        self.query_one("#promote-status", Static).update(f"promoting to {alias}…")

        def act() -> Any:
            try:
                return self.project.models.promote(
                    self.model, self.version, alias, reason=reason, force=force
                )
            except PromotionRefused as exc:
                return exc

        def done(res: Any) -> None:
            if isinstance(res, PromotionRefused):
                self._hold(False)
                self._gates(res.results)
                self._failed(res.message)
                return
            forced = " (forced)" if res.forced else ""
            self.app.notify(f"{self.model}@{alias} -> v{self.version}{forced}")
            self.dismiss(True)

        # its own group: a gate check landing meanwhile must not drop the promotion's
        # answer (a load shows only the newest result of its group)
        def failed(message: str) -> None:
            self._hold(False)
            self._failed(message)

        self.load(act, done, group="promote", on_error=failed)

    def _hold(self, on: bool) -> None:
        for sel in ("#promote-alias", "#promote-reason", "#check"):
            self.query_one(sel).disabled = on
        if on:
            self.query_one("#do-promote", Button).disabled = True
            self.query_one("#do-force", Button).disabled = True
