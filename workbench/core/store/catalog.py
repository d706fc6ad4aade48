"""The DuckDB catalog: short-lived connections, lock retries, migrations.

DuckDB lets one process write a database file at a time, and while it does no
other process can even open it read-only. So no code path keeps the file: each
operation attaches it, does its work in one transaction and detaches it. When
another process holds the file, we retry with backoff for a bounded time
(``WORKBENCH_LOCK_TIMEOUT`` seconds, 30 by default) and then fail with a clear
message instead of surfacing DuckDB's lock error.

The file is attached to one in-memory DuckDB instance kept for the life of the
process rather than opened with ``duckdb.connect``: creating an instance costs
20-25 ms (it registers every built-in function), attaching the file 3 ms and a
small write 9 ms. A run's start and end, a ``data add`` and every TUI screen
load pay that cost several times over, so it is most of their time.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import StoreError
from workbench.core.store import audit
from workbench.core.store.migrations import ANCHORED_SINCE, MIGRATIONS, SCHEMA_VERSION

if TYPE_CHECKING:
    import duckdb
    import polars as pl


# One operation per process at a time: the catalog is attached under one name to one
# shared instance, and threads (TUI workers) share it.
_process_lock = threading.RLock()
ATTACHED = "catalog"  # the name views and queries use (``catalog.main.runs``)


def one(con: duckdb.DuckDBPyConnection, sql: str, args: list[Any] | None = None) -> tuple[Any, ...]:
    """The single row of a query that always yields one (an aggregate, a scalar subquery).

    DuckDB types ``fetchone`` as optional; a query built to return a row that returns none
    means the catalog is not what the code thinks it is, which is a store error, not a
    ``TypeError`` three lines later.
    """
    row = con.execute(sql, args or []).fetchone()
    if row is None:
        raise StoreError(f"the catalog returned no row for {' '.join(sql.split()[:6])} …")
    return row


def frame_of(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any], schema: dict[str, Any]
) -> pl.DataFrame:
    """A query's result as a polars frame (``schema``: column -> polars dtype). A small
    one is built from its rows, which spares the Arrow bridge: its first use imports
    pyarrow, about 35 ms, a twentieth of a command such as ``workbench monitor``. A large
    one goes through Arrow, which is far quicker per row."""
    import polars as pl

    (n,) = con.execute(f"SELECT count(*) FROM ({sql})", params).fetchall()[0]
    if n < 20_000:
        return pl.DataFrame(con.execute(sql, params).fetchall(), schema=schema, orient="row")
    return con.sql(sql, params=params).pl().cast(schema)


def check_path(path: Path) -> None:
    """DuckDB reads a backslash in a file path as a folder separator (its Windows
    handling, in ATTACH and connect alike), so such a catalog cannot be opened at all:
    say so in one line instead of "no such file"."""
    if "\\" in str(path):
        raise StoreError(
            f"DuckDB cannot open a catalog whose path holds a backslash ({path}); "
            "rename or move the folder"
        )


class _Shared:
    """The process's in-memory instance and what is attached to it."""

    con: duckdb.DuckDBPyConnection | None = None
    pid: int = 0
    path: str | None = None
    read_only: bool = True
    depth: int = 0


# an instance being started on a thread (``warm_up``): "thread", then "con" and "pid"
_warm: dict[str, Any] = {}


def warm_up() -> None:
    """Start the process's DuckDB instance on a thread, for a command about to open the
    catalog. Creating an instance is C++ that releases the GIL (15-30 ms), so it is done
    while the command imports its modules instead of after: `runs list` 0.26 -> 0.235 s,
    a drift report of 100k rows 0.67 -> 0.64 s (medians of 10, A/B). ``_instance``
    waits for it and takes it."""
    import duckdb

    if _Shared.con is not None or "thread" in _warm:
        return

    def start() -> None:
        # a failure here is met again, and reported, when the command opens the catalog
        with contextlib.suppress(Exception):
            _warm["con"], _warm["pid"] = duckdb.connect(":memory:"), os.getpid()

    thread = threading.Thread(target=start, name="workbench-duckdb", daemon=True)
    _warm["thread"] = thread
    thread.start()


def _instance() -> duckdb.DuckDBPyConnection:
    import duckdb

    warmed = None
    if "thread" in _warm:
        _warm.pop("thread").join()
        con, pid = _warm.pop("con", None), _warm.pop("pid", None)
        warmed = con if pid == os.getpid() else None  # a parent's is left to it
    # A forked child must not touch its parent's instance (its threads did not survive).
    if _Shared.con is None or _Shared.pid != os.getpid():
        _Shared.con = warmed if warmed is not None else duckdb.connect(":memory:")
        _Shared.pid = os.getpid()
        _Shared.path = None
        _Shared.depth = 0
    return _Shared.con


def _reset() -> None:
    """Drop the shared instance after an error left it in an unknown state."""
    con, _Shared.con, _Shared.path = _Shared.con, None, None
    if con is not None and _Shared.pid == os.getpid():
        with contextlib.suppress(Exception):
            con.close()


def _lock_timeout() -> float:
    try:
        return float(os.environ.get("WORKBENCH_LOCK_TIMEOUT", "30"))
    except ValueError:
        return 30.0


_PID = re.compile(r"\(PID (\d+)\)")


def _disk_trouble(exc: BaseException) -> str | None:
    """ "full" or "read-only" when DuckDB's error text says so (it reports both as a
    failure to write a file, without an errno), else None."""
    low = str(exc).lower()
    if "no space left" in low or "disk is full" in low:
        return "full"
    if "read-only" in low or "permission denied" in low:
        return "read-only"
    return None


JOURNAL_SUFFIXES = (".start", ".end")


def _has_records(folder: Path) -> bool:
    """Whether the journal holds a record to fold: one directory read, ~10 us when
    empty, which is the common case once the runs in it are folded."""
    try:
        with os.scandir(folder) as it:
            return any(e.name.endswith(JOURNAL_SUFFIXES) for e in it)
    except OSError:
        return False


class Catalog:
    """Access to ``catalog.duckdb``; every use is one short transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._checked = False
        # Runs record their start and end in the journal folder instead of opening the
        # catalog (see runs/journal.py); ``on_pending`` folds those records in, and every
        # operation calls it first when the folder holds any, so no reader ever sees
        # a catalog that is behind what finished runs wrote.
        self.journal = path.parent / "journal"
        self.on_pending: Callable[[], object] | None = None
        self._folding = False
        self.anchor = path.parent / audit.ANCHOR
        self._anchored: audit.Head | None = None

    def _fold_pending(self, write: bool) -> None:
        if self.on_pending is None or self._folding or _Shared.depth:
            return
        if not _has_records(self.journal):
            return
        self._folding = True
        try:
            self.on_pending()
        except StoreError:
            if write:
                raise
            # a read-only store or a long-held lock: read what is already folded
        finally:
            self._folding = False

    def _retrying(
        self, attempt: Callable[[], duckdb.DuckDBPyConnection]
    ) -> duckdb.DuckDBPyConnection:
        import duckdb

        deadline = time.monotonic() + _lock_timeout()
        delay = 0.005
        while True:
            try:
                return attempt()
            except duckdb.IOException as exc:
                text = str(exc)
                if "lock" in text.lower():
                    if time.monotonic() < deadline:
                        time.sleep(delay * (0.5 + random.random()))
                        delay = min(delay * 2, 0.2)
                        continue
                    m = _PID.search(text)
                    holder = f" (process {m.group(1)})" if m else ""
                    raise StoreError(
                        f"the catalog is busy: another workbench process{holder} held it for "
                        f"over {_lock_timeout():g}s; try again"
                    ) from None
                if _disk_trouble(exc) == "read-only":
                    raise StoreError(
                        f"the project store is read-only: {self.path.parent}"
                    ) from None
                raise StoreError(f"cannot open the catalog {self.path}: {text}") from None

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        """A connection of its own, for a caller that changes connection settings."""
        import duckdb

        return self._retrying(lambda: duckdb.connect(str(self.path), read_only=read_only))

    @contextlib.contextmanager
    def _own(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self._open(read_only)
        try:
            yield con
        finally:
            con.close()

    def _attach(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        con = _instance()
        if _Shared.path is not None:  # an earlier operation did not detach: start over
            _reset()
            con = _instance()
        literal = str(self.path).replace("'", "''")
        mode = " (READ_ONLY)" if read_only else ""

        def attempt() -> duckdb.DuckDBPyConnection:
            con.execute(f"ATTACH '{literal}' AS {ATTACHED}{mode}")
            return con

        self._retrying(attempt)
        _Shared.path, _Shared.read_only = str(self.path), read_only
        try:
            con.execute(f"USE {ATTACHED}")
        except BaseException:
            _reset()
            raise
        return con

    @staticmethod
    def _detach() -> None:
        con = _Shared.con
        try:
            if con is not None:
                con.execute("USE memory")
                con.execute(f"DETACH {ATTACHED}")
            _Shared.path = None
        except Exception:
            _reset()

    @contextlib.contextmanager
    def _session(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        """The attached catalog for one operation (or, nested in another operation of
        this process, a cursor on the same attachment: a separate transaction)."""
        check_path(self.path)
        shared = _Shared.con
        if _Shared.depth and _Shared.pid == os.getpid() and shared is not None:
            if _Shared.path == str(self.path) and (read_only or not _Shared.read_only):
                cur = shared.cursor()
                try:
                    cur.execute(f"USE {ATTACHED}")
                    yield cur
                finally:
                    cur.close()
                return
            if _Shared.path != str(self.path):  # another project's catalog: its own instance
                with self._own(read_only) as con:
                    yield con
                return
            raise StoreError("internal: a catalog write nested in a read of the same catalog")
        con = self._attach(read_only)
        _Shared.depth += 1
        try:
            yield con
        except BaseException:
            _Shared.depth -= 1
            _reset()  # rollback happened; do not trust the instance's state
            raise
        _Shared.depth -= 1
        self._detach()

    @contextlib.contextmanager
    def connect(self, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for one operation; with ``write`` it is one transaction."""
        with _process_lock:
            if not self._checked:
                self._ensure_schema()
            self._fold_pending(write)
            with self._session(read_only=not write) as con:
                if write:
                    con.execute("BEGIN TRANSACTION")
                    try:
                        yield con
                    except BaseException as exc:
                        with contextlib.suppress(Exception):
                            con.execute("ROLLBACK")
                        if type(exc).__module__.startswith("duckdb") and _disk_trouble(exc):
                            raise self._save_error(exc) from None
                        raise
                    try:
                        con.execute("COMMIT")
                    except Exception as exc:  # a full disk, or a constraint violated at commit
                        with contextlib.suppress(Exception):
                            con.execute("ROLLBACK")
                        raise self._save_error(exc) from None
                    self._move_anchor(con)
                else:
                    yield con

    def _move_anchor(self, con: duckdb.DuckDBPyConnection) -> None:
        """Bring ``audit.head`` up to the trail's newest entry after a commit.

        Only forward: a process that committed earlier but writes later must not move
        it back. Never over a missing or unreadable anchor: that is evidence for
        ``verify`` (the store's creation, or the migration that introduced it, wrote the
        first one; ``verify --repair`` writes a new one when a user says so). Best
        effort: the commit stands either way, and a failed write (a full disk) leaves
        the anchor behind, which ``verify`` accepts; the next commit catches it up.
        """
        with contextlib.suppress(Exception):
            h = audit.head(con)
            if h is None or h == self._anchored:
                return
            known = audit.read_anchor(self.anchor)
            if known is not None and known.seq < h.seq:
                audit.write_anchor(self.anchor, h)
            self._anchored = h

    def _save_error(self, exc: BaseException) -> StoreError:
        """One line for a failed commit: a full disk and a read-only store named as such
        (DuckDB reports both as an error writing its log file)."""
        trouble, where = _disk_trouble(exc), self.path.parent
        if trouble == "full":
            return StoreError(f"no space left on the disk holding the project store ({where})")
        if trouble == "read-only":
            return StoreError(f"the project store is read-only: {where}")
        return StoreError(f"could not save to the catalog: {' '.join(str(exc).split())[:300]}")

    @contextlib.contextmanager
    def isolated(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection of its own, for a caller that locks its settings down
        (``workbench sql``): those must not leak into the shared instance."""
        with _process_lock:
            if not self._checked:
                self._ensure_schema()
            self._fold_pending(write=False)
            with self._own(read_only=True) as con:
                yield con

    def read(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        return self.connect(write=False)

    def write(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        return self.connect(write=True)

    def change_stamp(self) -> tuple[int | None, int]:
        """(the audit trail's last entry, runs still running): a cheap value that changes
        whenever anything is recorded, for a viewer that polls for work done elsewhere.
        Every change writes an audit entry; a live run logs points without one, so a
        viewer keeps refreshing while any run is running."""
        with self.read() as con:
            seq, running = one(
                con,
                "SELECT (SELECT max(seq) FROM audit), "
                "(SELECT count(*) FROM runs WHERE status = 'running')",
            )
        return seq, running

    def version(self) -> int:
        import duckdb

        with _process_lock, self._session(read_only=True) as con:
            # Every command's first question: read the version directly (1-2 ms) rather
            # than ask information_schema first (10-17 ms in a fresh process); a catalog
            # without wb_meta (nothing migrated yet) is version 0. Outside a transaction,
            # so the refused query leaves nothing aborted.
            try:
                return self._meta_version(con)
            except duckdb.CatalogException:
                return 0

    @staticmethod
    def _version(con: duckdb.DuckDBPyConnection) -> int:
        (has_meta,) = one(
            con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'wb_meta'"
        )
        if not has_meta:
            return 0
        return Catalog._meta_version(con)

    @staticmethod
    def _meta_version(con: duckdb.DuckDBPyConnection) -> int:
        row = con.execute("SELECT value FROM wb_meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _ensure_schema(self) -> None:
        if not self.path.exists():
            raise StoreError(f"no catalog at {self.path}; run `workbench init`")
        current = self.version()
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"this project was written by a newer workbench (schema {current}, "
                f"this one knows {SCHEMA_VERSION}); upgrade workbench"
            )
        if current < SCHEMA_VERSION:
            self.migrate()
        self._checked = True

    def migrate(self) -> int:
        """Bring the schema up to date; returns the version reached."""
        with _process_lock, self._session(read_only=False) as con:
            con.execute("BEGIN TRANSACTION")
            current = self._version(con)
            for target in range(current + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[target](con)
                con.execute(
                    "INSERT OR REPLACE INTO wb_meta VALUES ('schema_version', ?)", [str(target)]
                )
            con.execute("COMMIT")
            if current < ANCHORED_SINCE:
                audit.reanchor(con, self.anchor)
            return SCHEMA_VERSION

    @classmethod
    def create(cls, path: Path) -> Catalog:
        cat = cls(path)
        with _process_lock:
            cat.migrate()
            cat._checked = True
        return cat
