"""Run the real ``workbench`` CLI and SIGKILL it at a chosen write point.

Used by ``test_kills.py`` (through ``tests/forked.py``) as ``python killer.py --zygote``:
a process that imports the libraries the commands use once and then forks one child per
command it is sent (see ``zygote``), each child a process of its own in a session of its
own, running the CLI under the hooks. A kill during the 2-3 s of imports proves nothing,
and paying them for each of some 160 kills was most of the suite's time on a slow
machine. ``python killer.py ARGS...`` runs one command under the same hooks, to try a
kill by hand. Either way, with:

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

# What the commands import after they start (the CLI loads each command's module, and
# the ML stack, only when it runs): the zygote imports them before it forks. One missing
# here costs its import in each child, nothing else.
PRELOAD = (
    "polars", "duckdb", "pyarrow.parquet", "pandas", "scipy.stats", "lightgbm",
    "sklearn.compose", "sklearn.dummy", "sklearn.ensemble", "sklearn.impute",
    "sklearn.linear_model", "sklearn.metrics", "sklearn.model_selection",
    "sklearn.pipeline", "sklearn.preprocessing", "tomllib", "xxhash", "yaml",
    "multiprocessing.popen_spawn_posix",
)  # fmt: skip


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


def zygote() -> None:
    """Import what the commands use, then run each command sent on stdin (a JSON line:
    args, cwd, env, out and err paths) in a forked child, answering with a line
    ``{"pid": ...}`` as it starts and ``{"code": ...}`` (as ``Popen.returncode``: -9 when
    killed) once it has been reaped. One command at a time."""
    import importlib
    import json
    import pkgutil
    import threading

    import workbench

    for found in pkgutil.walk_packages(workbench.__path__, "workbench."):
        if not found.name.startswith(("workbench.tui", "workbench.__main__")):
            importlib.import_module(found.name)
    for name in PRELOAD:
        importlib.import_module(name)
    # a thread would not follow the fork: a child must start as a fresh process would
    assert threading.active_count() == 1, threading.enumerate()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(job)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"code": os.waitstatus_to_exitcode(status)}), flush=True)


def _child(job: dict[str, Any]) -> None:
    """Become the command's process: its own session, stdin from /dev/null, stdout and
    stderr to files, its cwd and environment; then the CLI, as ``__main__`` below. Never
    returns: the interpreter exits as the CLI's own process would (atexit handlers,
    non-daemon threads joined)."""
    global LOG, AT
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for fd, path in ((1, job["out"]), (2, job["err"])):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(f, fd)
        os.close(f)
    os.chdir(job["cwd"])
    os.environ.clear()
    os.environ.update(job["env"])
    LOG = os.environ.get("WB_KILL_LOG")
    AT = int(os.environ.get("WB_KILL_AT", "-1"))
    sys.argv = [sys.argv[0], *job["args"]]
    _cli(job["args"])
    sys.exit(0)


def _cli(args: list[str]) -> None:
    """The CLI under the write-point hooks."""
    install()
    from workbench.cli.main import main

    main(args)


if __name__ == "__main__":
    if sys.argv[1:] == ["--zygote"]:
        zygote()
        sys.exit(0)
    _cli(sys.argv[1:])
