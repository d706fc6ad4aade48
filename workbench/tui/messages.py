"""The messages screens and widgets send upward, and the one the app sends down.

A screen does not call methods on the app: it posts ``Open`` to show something
elsewhere and ``ShowError`` to report a failure; the app handles both. When the store
changes (another process trained, added, promoted), the app posts ``DataChanged`` to
the screen on top, which reloads what it shows.
"""

from __future__ import annotations

from typing import Literal

from textual.message import Message

Kind = Literal["dataset", "run", "model", "drift", "promote"]


class Open(Message):
    """Show ``ref`` in its screen: a dataset version, a run id, a model name, a drift
    report id; for ``promote``, ``ref`` is ``name@version`` and the promote dialog opens."""

    def __init__(self, kind: Kind, ref: str) -> None:
        super().__init__()
        self.kind: Kind = kind
        self.ref = ref


class ShowError(Message):
    """A one-line error for the user (the CLI's words for the same failure)."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


class DataChanged(Message, bubble=False):
    """The store changed since the screen last loaded: load again."""
