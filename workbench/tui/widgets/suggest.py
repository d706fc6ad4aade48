"""Completion of run names (metrics.*, params.*, tags.*, attributes) as they are typed
into a filter or a column list: Textual shows the rest of the name, → takes it."""

from __future__ import annotations

import os
import re

from textual.suggester import Suggester

# The name being typed: the word at the end of the box (after a space, a comma, a
# bracket or an operator), dots and backticks included.
_TYPING = re.compile(r"[A-Za-z_][A-Za-z0-9_.`\-]*$")


class NameSuggester(Suggester):
    """Suggests the rest of the name at the end of the box from ``names`` (the screen
    refreshes them when the catalog changes), preferring the shortest match."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.names: list[str] = []

    async def get_suggestion(self, value: str) -> str | None:
        typing = _TYPING.search(value)
        if typing is None:
            return None
        part = typing.group().lower()
        matches = [n for n in self.names if n.lower().startswith(part) and len(n) > len(part)]
        if not matches:
            return None
        # As a shell does: what every match shares first (metrics.v → metrics.val_),
        # then, once the typing decides, the one name.
        common = os.path.commonprefix([m.lower() for m in matches])  # noqa: RUF071 (names, not paths)
        best = min(matches, key=lambda n: (len(n), n))
        end = len(common) if len(common) > len(part) else len(best)
        return value + best[len(part) : end]
