"""Run the real ``workbench`` CLI and SIGKILL it at a chosen write point.

Used by ``test_kills.py`` as ``python killer.py ARGS...`` with:

- ``WB_KILL_LOG=path``: write the write points reached, one per line with the time
  (``name<TAB>seconds since the epoch``), as they are reached;
- ``WB_KILL_AT=k``: SIGKILL this process when it reaches write point ``k`` (0-based).

A write point is every place where the store changes on disk: before and after each
rename (objects moving into place, run files, exported files), half-way through
writing an object, on opening a catalog write transaction, after its last statement but
before COMMIT, and after COMMIT, and after each flush of a run's metric file. Killing
at each one in turn covers every gap between two writes, which a random delay finds
only by luck.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOG = os.environ.get("WB_KILL_LOG")
AT = int(os.environ.get("WB_KILL_AT", "-1"))
reached: list[str] = []


def hit(name: str) -> None:
    reached.append(name)
    if LOG:
        with open(LOG, "a") as f:  # written as we go: survives the kill
            f.write(f"{name}\t{time.time():.6f}\n")
    if len(reached) - 1 == AT:
        os.kill(os.getpid(), signal.SIGKILL)


def install() -> None:
    from workbench.core.runs import run as tracking
    from workbench.core.store import catalog, objects

    real_replace = os.replace

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        # a run's id differs from one run of the command to the next: the point does not
        what = (
            re.sub(r"[0-9a-f]{32}", "RUN", Path(dst).name)
            if "objects" not in str(dst)
            else "object"
        )
        hit(f"before rename -> {what}")
        real_replace(src, dst)
        hit(f"after rename -> {what}")

    os.replace = replace  # type: ignore[assignment]

    class HalfThenKill:
        """A file whose ``write`` stops half-way at a write point, so the store's own
        durable write (``objects._write_durable``, not a copy of it) is what is killed."""

        def __init__(self, f: Any) -> None:
            self.f = f

        def write(self, data: bytes) -> int:
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            hit("object half-written")
            return self.f.write(data[len(data) // 2 :]) + len(data) // 2

        def __getattr__(self, name: str) -> Any:
            return getattr(self.f, name)

        def __enter__(self) -> HalfThenKill:
            return self

        def __exit__(self, *exc: object) -> None:
            self.f.close()

    def open_for_objects(path: Any, mode: str = "r", *args: Any, **kw: Any) -> Any:
        f = builtins.open(path, mode, *args, **kw)  # noqa: SIM115 (the caller closes it)
        return HalfThenKill(f) if "w" in mode else f

    objects.open = open_for_objects  # type: ignore[attr-defined]

    real_connect = catalog.Catalog.connect.__wrapped__  # type: ignore[attr-defined]

    @contextlib.contextmanager
    def connect(self: catalog.Catalog, write: bool = False) -> Iterator[object]:
        inner = contextlib.contextmanager(real_connect)(self, write)
        with inner as con:
            if write:
                hit("catalog transaction opened")
            yield con
            if write:
                hit("catalog transaction before COMMIT")
        if write:
            hit("catalog transaction committed")

    catalog.Catalog.connect = connect  # type: ignore[assignment]

    real_flush = tracking.Run._flush_locked

    def flush(self: tracking.Run) -> None:
        real_flush(self)
        hit("run metrics flushed")

    tracking.Run._flush_locked = flush  # type: ignore[assignment]


if __name__ == "__main__":
    install()
    from workbench.cli.main import main

    main(sys.argv[1:])
