"""The project store: layout, discovery, migrations, atomic objects, locking."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import frame
from workbench.core.errors import StoreError
from workbench.core.project import Project, find_root
from workbench.core.store.catalog import SCHEMA_VERSION, Catalog


def test_init_creates_layout_and_is_idempotent(tmp_path: Path) -> None:
    p, created = Project.init(tmp_path / "a")
    assert created
    assert (p.root / "workbench.toml").is_file()
    assert (p.store_dir / "catalog.duckdb").is_file()
    assert (p.store_dir / "objects").is_dir()
    assert p.catalog.version() == SCHEMA_VERSION
    again, created_again = Project.init(tmp_path / "a")
    assert not created_again and again.root == p.root


def test_a_folder_named_with_quotes_works_and_one_with_a_backslash_is_refused(
    tmp_path: Path,
) -> None:
    with pytest.raises(StoreError, match="holds a backslash"):
        Project.init(tmp_path / "a\\b")
    assert not (tmp_path / "a\\b").exists()  # refused before anything was written
    name = 'it\'s a "proj" ü 😀'
    p, _ = Project.init(tmp_path / name)
    assert Project(tmp_path / name).config["project"]["name"] == name  # the TOML reads back
    frame(20).write_csv(tmp_path / "d.csv")
    assert p.datasets.add(tmp_path / "d.csv", name="d").version.number == 1  # catalog attached
    assert [d["name"] for d in p.datasets.list()] == ["d"]


def test_project_is_found_from_a_subfolder(project: Project) -> None:
    sub = project.root / "notebooks" / "deep"
    sub.mkdir(parents=True)
    assert find_root(sub) == project.root


def test_outside_a_project_says_so(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not inside a workbench project"):
        find_root(tmp_path)
    with pytest.raises(StoreError, match="is not a workbench project"):
        Project(tmp_path)


def test_migrates_an_old_catalog_and_refuses_a_newer_one(tmp_path: Path) -> None:
    path = tmp_path / "c.duckdb"
    duckdb.connect(str(path)).close()  # schema version 0: an empty database
    cat = Catalog(path)
    with cat.read() as con:
        assert con.execute("SELECT count(*) FROM datasets").fetchone()[0] == 0
    assert cat.version() == SCHEMA_VERSION
    con = duckdb.connect(str(path))
    con.execute("UPDATE wb_meta SET value = '999' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreError, match="newer workbench"), Catalog(path).read():
        pass


def test_staged_objects_vanish_when_the_operation_fails(project: Project) -> None:
    with pytest.raises(RuntimeError), project.objects.stage() as stage:
        digest = stage.put_bytes(b"payload")
        raise RuntimeError("boom")
    assert not project.objects.has(digest)
    assert list((project.store_dir / "tmp").iterdir()) == []


def test_objects_are_content_addressed_and_verified(project: Project) -> None:
    d1 = project.objects.put_bytes(b"hello")
    d2 = project.objects.put_bytes(b"hello")
    assert d1 == d2 and project.objects.verify(d1)
    project.objects.path(d1).write_bytes(b"tampered")
    assert not project.objects.verify(d1)


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(path)!r})
        print("locked", flush=True)
        time.sleep({seconds})
        con.close()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_write_waits_for_another_process_then_succeeds(project: Project) -> None:
    holder = _hold_lock(project.catalog.path, 1.0)
    start = time.monotonic()
    with project.catalog.write() as con:
        con.execute("INSERT INTO wb_meta VALUES ('probe', 'x')")
    waited = time.monotonic() - start
    holder.wait()
    assert waited > 0.3  # it really waited for the other process
    with project.catalog.read() as con:
        assert con.execute("SELECT value FROM wb_meta WHERE key = 'probe'").fetchone() == ("x",)


def test_a_lock_held_too_long_fails_with_a_clear_message(project: Project, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_LOCK_TIMEOUT", "0.3")
    holder = _hold_lock(project.catalog.path, 3.0)
    try:
        with pytest.raises(StoreError, match="catalog is busy"), project.catalog.write():
            pass
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("count", [3, 300, 10_001])
def test_rows_go_in_whole_whichever_way_their_number_takes(count: int) -> None:
    """A few rows are bound as VALUES, hundreds as one list a column, many through
    Arrow: each way keeps every value as given, nulls, times and JSON text included,
    inside a transaction whose last query was not read to the end (as before a batch of
    audit entries)."""
    from datetime import datetime

    from workbench.core.store.rows import insert_rows

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t (id VARCHAR, n INTEGER, big BIGINT, x DOUBLE, ok BOOLEAN, "
        "stamp TIMESTAMP, doc JSON)"
    )
    rows = [
        [
            f"r{i}", i, i * 10**12, None if i % 3 == 0 else i / 7, i % 2 == 0,
            datetime(2026, 1, 1 + i % 28, i % 24), '{"a": [1, 2]}' if i % 5 else None,
        ]
        for i in range(count)
    ]  # fmt: skip
    schema = {"id": "String", "n": "Int32", "big": "Int64", "x": "Float64", "ok": "Boolean",
              "stamp": "Datetime", "doc": "String"}  # fmt: skip
    con.execute("BEGIN TRANSACTION")
    con.execute("SELECT count(*) FROM t").fetchone()
    insert_rows(con, "t", rows, schema)
    con.execute("COMMIT")
    got = con.execute("SELECT id, n, big, x, ok, stamp, doc::VARCHAR FROM t ORDER BY n").fetchall()
    assert [list(r) for r in got] == rows


@pytest.mark.parametrize("count", [3, 300, 10_001])
def test_a_batch_of_audit_entries_goes_in_chained_whatever_its_size(
    project: Project, count: int
) -> None:
    """A batch of entries (a journal fold's) goes in with one insert of the right kind
    for its size, each chained to the one before, after the entries already there."""
    from workbench.core.store import audit

    with project.catalog.write() as con:
        before = audit.head_or_genesis(con).seq
        entries = [
            (audit.now(), "tester", "test.entry", f"item:{i}", {"i": i, "text": 'é "q"'})
            for i in range(count)
        ]
        assert audit.append_many(con, entries) == before + count
    with project.catalog.read() as con:
        assert audit.verify_chain(con) == []
        got = con.execute(
            "SELECT subject, details->>'text' FROM audit WHERE action = 'test.entry' ORDER BY seq"
        ).fetchall()
    assert got == [(f"item:{i}", 'é "q"') for i in range(count)]


def test_an_instance_started_ahead_is_the_one_the_catalog_opens(project: Project) -> None:
    from workbench.core.store import catalog as store

    store._reset()
    store.warm_up()
    store._warm["thread"].join()
    started = store._warm["con"]
    assert project.catalog.version() > 0
    assert store._Shared.con is started and not store._warm
    store.warm_up()  # one is running: nothing more is started
    assert not store._warm


def test_a_forked_child_does_not_take_its_parents_instance_started_ahead(
    project: Project,
) -> None:
    from workbench.core.store import catalog as store

    store._reset()
    store.warm_up()
    store._warm["thread"].join()
    started = store._warm["con"]
    store._warm["pid"] = -1  # as a child forked after warm_up sees it
    assert project.catalog.version() > 0
    assert store._Shared.con is not None and store._Shared.con is not started
    assert not store._warm  # nothing of the parent's is kept
