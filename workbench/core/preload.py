"""Import a module the command will need on a thread of its own, started while the
command is still opening the catalog or reading: both spend their time in DuckDB and
Polars with the GIL let go, which an import (Python, holding the GIL) can fill.

NumPy is the case that matters: Polars and DuckDB import it only when a value is first
handed to it, so a drift report's worker threads imported it (50-90 ms, one waiting on
the other's import lock) after the columns were read, with nothing else to do.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading


def preload(*modules: str) -> None:
    """Start importing ``modules`` (those not imported yet) on a daemon thread. Whoever
    imports one of them meanwhile waits for that import to finish, as Python's import
    lock makes them, and gets the whole module; a failure here is met again, and
    reported, by that import."""
    wanted = [m for m in modules if m not in sys.modules]
    if not wanted:
        return

    def run() -> None:
        for name in wanted:
            with contextlib.suppress(Exception):
                importlib.import_module(name)

    threading.Thread(target=run, name="workbench-preload", daemon=True).start()
