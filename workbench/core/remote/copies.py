"""A project's catalog copied out whole, and a copy adopted: what push/pull and bundles share.

A copy is a DuckDB file made with ``COPY FROM DATABASE`` inside one read of the catalog,
so it is one consistent moment. Adopting one checks it before anything changes (its
schema, its audit chain, that it continues this project's history, that it keeps every
request this project logged), writes the objects it needs, and then replaces every row
of the catalog with the copy's in one transaction: a reader sees the project before or
after, never between.

History is the audit chain: every change appends an entry whose hash covers all before
it, so "the copy's chain contains this project's head" means the copy is this project
plus later changes. Logged serving requests are not on the chain, so they are compared
by themselves.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.core.errors import StoreError
from workbench.core.store import audit
from workbench.core.store.catalog import ATTACHED, one
from workbench.core.store.migrations import SCHEMA_VERSION
from workbench.core.store.verify import catalog_references

if TYPE_CHECKING:
    import duckdb

    from workbench.core.project import Project


@dataclass
class Copied:
    """A catalog copy just made, and what it needs beside it."""

    path: Path
    head: audit.Head
    refs: dict[str, str]  # digest -> what points at it
    requests: int
    running: int


@contextlib.contextmanager
def scratch(project: Project) -> Iterator[Path]:
    """A folder in the store's tmp/ for a catalog copy, removed whatever happens."""
    area = project.store_dir / "tmp" / f"sync-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    try:
        area.mkdir(parents=True)
    except OSError as exc:
        raise StoreError(f"cannot write to the project store: {exc.strerror}") from None
    try:
        yield area
    finally:
        shutil.rmtree(area, ignore_errors=True)


def requests(con: duckdb.DuckDBPyConnection) -> int:
    return int(one(con, "SELECT count(*) FROM serving_requests")[0])


def fold(project: Project) -> None:
    """What servers logged, folded in first so that a copy carries it."""
    with contextlib.suppress(StoreError):  # a read-only store still has what is folded
        project.fold_predictions()


def copy_catalog(
    project: Project,
    path: Path,
    check: Callable[[duckdb.DuckDBPyConnection, audit.Head, int], bool] | None = None,
) -> Copied | None:
    """Copy the catalog to ``path`` in one read. ``check(con, head, requests)`` runs first,
    inside the same read, and may refuse (raise) or say there is nothing to copy (False)."""
    with project.catalog.read() as con:
        head = audit.head_or_genesis(con)
        n_requests = requests(con)
        if check is not None and not check(con, head, n_requests):
            return None
        refs = catalog_references(con)
        (running,) = one(con, "SELECT count(*) FROM runs WHERE status = 'running'")
        literal = str(path).replace("'", "''")
        con.execute(f"ATTACH '{literal}' AS wb_snapshot")
        try:
            con.execute(f"COPY FROM DATABASE {ATTACHED} TO wb_snapshot")
        finally:
            con.execute("DETACH wb_snapshot")
    return Copied(path, head, refs, n_requests, int(running))


def local_state(project: Project, other: audit.Head) -> tuple[audit.Head, int, bool]:
    """This project's audit head, its number of logged requests, and whether its trail
    contains ``other`` (then a copy that ends there brings nothing new: this project is
    level with it or ahead), in one read."""
    with project.catalog.read() as con:
        return (
            audit.head_or_genesis(con),
            requests(con),
            not audit.reaches(con, other, "the copy"),
        )


def _open(path: Path) -> duckdb.DuckDBPyConnection:
    import duckdb

    return duckdb.connect(str(path), read_only=True)


@contextlib.contextmanager
def open_copy(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A catalog copy opened to read, closed whatever happens."""
    con = _open(path)
    try:
        yield con
    finally:
        con.close()


def _bring_schema(path: Path, source: str) -> None:
    """Refuse a copy from a newer workbench; bring an older one up to date."""
    from workbench.core.store.catalog import Catalog

    con = _open(path)
    try:
        version = Catalog._version(con)
    finally:
        con.close()
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{source} was written by a newer workbench (schema {version}, this one knows "
            f"{SCHEMA_VERSION}); upgrade workbench"
        )
    if version < SCHEMA_VERSION:
        Catalog(path).migrate()


def check_copy(
    project: Project,
    path: Path,
    expected: audit.Head,
    local: audit.Head,
    source: str,
    diverged: Callable[[], StoreError],
) -> dict[str, str]:
    """Everything about a copy that can be known before changing anything: it is of a
    schema we know, its chain verifies and ends where its description says, it contains
    this project's history and every request logged here. Returns what it points at."""
    _bring_schema(path, source)
    con = _open(path)
    try:
        if broken := audit.verify_chain(con):
            raise StoreError(
                f"the audit trail in {source} does not verify (entry {broken[0].seq}: "
                f"{broken[0].problem}); refusing it, nothing was changed"
            )
        if audit.head_or_genesis(con) != expected:
            raise StoreError(
                f"the catalog in {source} is not the one its description names; refusing "
                "it, nothing was changed"
            )
        if local.seq and audit.reaches(con, local, "this project"):
            raise diverged()
        ours = _request_ids(project)
        if ours:
            import pyarrow as pa

            # a cursor of its own: DuckDB refuses to register a table on a connection
            # whose last result (the chain's head, read with fetchone) is unfinished
            with con.cursor() as cur:
                cur.register("wb_ours", pa.table({"id": pa.array(ours, pa.string())}))
                (lacking,) = cur.execute(
                    "SELECT count(*) FROM wb_ours ANTI JOIN serving_requests USING (id)"
                ).fetchall()[0]
            if lacking:
                raise StoreError(
                    f"this project logged {lacking:,} serving request(s) that {source} lacks: "
                    "taking it would drop them; nothing was changed"
                )
        return catalog_references(con)
    finally:
        con.close()


def _request_ids(project: Project) -> list[str]:
    with project.catalog.read() as con:
        return [r[0] for r in con.execute("SELECT id FROM serving_requests").fetchall()]


def _tables(con: duckdb.DuckDBPyConnection, database: str) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = ? "
        "AND table_schema = 'main' AND table_type = 'BASE TABLE' ORDER BY table_name",
        [database],
    ).fetchall()
    return [r[0] for r in rows]


def install(project: Project, path: Path, expected: audit.Head, source: str) -> None:
    """Replace every row of the catalog with the copy's, in one transaction, unless the
    project moved since it was checked. Its objects must be in the store already."""
    literal = str(path).replace("'", "''")
    with project.catalog.write() as con:
        if audit.head_or_genesis(con) != expected:
            raise StoreError(f"this project changed while taking {source}; try again")
        con.execute(f"ATTACH '{literal}' AS wb_pulled (READ_ONLY)")
        try:
            for table in _tables(con, "wb_pulled"):
                con.execute(f'DELETE FROM {ATTACHED}.main."{table}"')
                con.execute(
                    f'INSERT INTO {ATTACHED}.main."{table}" BY NAME '
                    f'SELECT * FROM wb_pulled.main."{table}"'
                )
        finally:
            con.execute("DETACH wb_pulled")
