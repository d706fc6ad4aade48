"""The app's footer: Textual's, rebuilt only when the keys it shows change."""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Footer


class WBFooter(Footer):
    """Textual's footer, rebuilt only when the keys it shows change.

    Textual's Footer throws away and rebuilds its keys whenever the screen's bindings
    are recomputed, which happens on every focus move: six times while the overview
    first paints and again each time a filter's result takes the focus, each time
    styling a dozen new widgets for the same row of keys.
    """

    _shown: tuple[Any, ...] | None = None

    def _keys_shown(self) -> tuple[Any, ...]:
        palette = self.app.COMMAND_PALETTE_BINDING
        return (
            self.compact,
            self.show_command_palette,
            tuple(
                (b.key, b.action, b.description, b.group, enabled, tooltip)
                for key, (_, b, enabled, tooltip) in self.screen.active_bindings.items()
                if b.show or key == palette
            ),
        )

    def bindings_changed(self, screen: Screen) -> None:
        if self.is_attached and screen is self.screen and screen.app.app_focus:
            shown = self._keys_shown()
            if shown == self._shown:
                self._bindings_ready = True
                return
            self._shown = shown
        super().bindings_changed(screen)
