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


def os_error_message(exc: OSError) -> str:
    """One line for what the machine refused (a full disk, a read-only folder, a name too
    long), shared by the CLI and the TUI so both say the same."""
    import errno

    name = str(exc.filename) if exc.filename else ""
    if len(name) > 120:
        name = name[:60] + "…" + name[-20:]
    where = f" ({name})" if name else ""
    text = " ".join(str(exc).split())
    code = exc.errno
    if code is None and "no space left" in text.lower():  # polars says it in words
        code = errno.ENOSPC
    if code is None and "read-only" in text.lower():
        code = errno.EROFS
    if code == errno.ENOSPC:
        return f"no space left on the disk{' holding ' + name if name else ''}"
    if code == errno.EROFS:
        return f"cannot write: the file system is read-only{where}"
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied{where}"
    return f"{exc.strerror or text[:300] or type(exc).__name__}{where}"
