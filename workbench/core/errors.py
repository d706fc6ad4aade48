"""Errors a user can cause and act on.

Every failure a user can trigger is raised as a :class:`WorkbenchError` with a
one-line message that says what is wrong and what to do. The CLI prints the
message and exits with ``exit_code``; nothing above core ever shows a traceback
for these.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """A failure caused by input or state, reported to the user in one line."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        # Messages are single lines by contract; fold anything else.
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        return str(self)


class UsageError(WorkbenchError):
    """The command was called wrongly (bad option value, malformed reference)."""

    exit_code = 2


class NotFoundError(WorkbenchError):
    """A reference names something that does not exist."""


class DataError(WorkbenchError):
    """An input file cannot be read as a table."""


class StoreError(WorkbenchError):
    """The project store cannot be opened, locked or written."""
