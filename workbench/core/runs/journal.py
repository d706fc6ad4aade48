"""The run journal: how live runs reach the catalog without opening it.

A run's start and its end are each one small JSON record, written beside the run,
fsynced and renamed into ``.workbench/journal/``. Every catalog operation first looks
there (one directory read) and folds waiting records in, many runs a transaction, one
statement a table. This module also decides when a running run is dead (its process is
gone, or its heartbeat is stale) and marks it killed, keeping what it flushed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.runs.points import read_points, store_points
from workbench.core.runs.run import KILLED, RUNNING, STALE_SECONDS, read_json
from workbench.core.store import audit, objects
from workbench.core.store.objects import _pid_alive

if TYPE_CHECKING:
    import duckdb

    from workbench.core.store.catalog import Catalog

# The runs columns a journal fold writes, with their DuckDB types.
_RUN_COLUMNS = {
    "id": "VARCHAR",
    "experiment": "VARCHAR",
    "name": "VARCHAR",
    "status": "VARCHAR",
    "error": "VARCHAR",
    "start_time": "TIMESTAMP",
    "end_time": "TIMESTAMP",
    "host": "VARCHAR",
    "pid": "INTEGER",
    "dataset": "VARCHAR",
    "dataset_version": "INTEGER",
    "parent_id": "VARCHAR",
    "environment": "JSON",
    "source": "VARCHAR",
}


class Journal:
    """Records in, folds out: the one writer of runs that started or ended elsewhere."""

    def __init__(self, catalog: Catalog, runs_dir: Path) -> None:
        self.catalog = catalog
        self.runs_dir = runs_dir

    def record(self, run_id: str, kind: str, data: dict[str, Any]) -> None:
        """Put a run's start or end in the journal, durably and whole: written beside
        the run, fsynced, renamed into ``journal/`` (the folder fsynced too), so a
        record is either complete or absent, and a crash right after ``end`` returns
        still loses nothing."""
        folder = self.catalog.journal
        tmp = self.runs_dir / run_id / f".{kind}.tmp"
        try:
            folder.mkdir(exist_ok=True)
            objects._write_durable(tmp, json.dumps(data, ensure_ascii=False).encode())
            os.replace(tmp, folder / f"{run_id}.{kind}")
            objects._fsync_dir(folder)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise objects.store_write_error(exc, folder) from None

    def fold(self, max_runs: int = 500) -> int:
        """Fold the journal's records into the catalog; returns how many were folded.

        The catalog calls this before any operation when the journal holds records,
        so callers never need to. Records are grouped by run and folded ``max_runs``
        runs a transaction: each transaction re-reads the records and the rows it
        touches after taking the lock, so two processes folding at once, or a crash
        between a commit and the removal of its records, fold nothing twice.
        """
        from workbench.core.store.catalog import JOURNAL_SUFFIXES

        folder = self.catalog.journal
        try:
            names = [n for n in os.listdir(folder) if n.endswith(JOURNAL_SUFFIXES)]
        except OSError:
            return 0
        by_run: dict[str, set[str]] = {}
        for n in sorted(names):
            rid, kind = n.rsplit(".", 1)
            by_run.setdefault(rid, set()).add(kind)
        ids = list(by_run)
        folded = 0
        for i in range(0, len(ids), max_runs):
            chunk = {rid: by_run[rid] for rid in ids[i : i + max_runs]}
            with self.catalog.write() as con:
                done, bad = self._fold_records(con, chunk)
            for n in done:
                with contextlib.suppress(OSError):
                    (folder / n).unlink()
            for n in bad:  # kept for a person to look at, out of the way of every read
                with contextlib.suppress(OSError):
                    os.replace(folder / n, folder / f"{n}.unreadable")
            folded += len(done)
        return folded

    def _fold_records(
        self, con: duckdb.DuckDBPyConnection, chunk: dict[str, set[str]]
    ) -> tuple[list[str], list[str]]:
        """One transaction's share of :meth:`fold`: (records folded, records
        that cannot be)."""
        folder = self.catalog.journal
        existing = dict(
            con.execute(
                "SELECT id, status FROM runs WHERE id IN ?::VARCHAR[]",
                [list(chunk)],
            ).fetchall()
        )
        starts: dict[str, dict[str, Any]] = {}
        ends: dict[str, dict[str, Any]] = {}
        done: list[str] = []
        bad: list[str] = []
        for rid, kinds in chunk.items():
            for kind in sorted(kinds, reverse=True):  # start before end
                name = f"{rid}.{kind}"
                try:
                    data = json.loads((folder / name).read_text(encoding="utf-8"))
                    _ = data["status"] if kind == "end" else data["experiment"]
                except FileNotFoundError:
                    continue  # another process folded it a moment ago
                except (OSError, ValueError, KeyError, TypeError):
                    bad.append(name)
                    continue
                (starts if kind == "start" else ends)[rid] = data
                done.append(name)
        events: list[tuple[Any, str, str, str, dict[str, Any]]] = []
        new = {rid: m for rid, m in starts.items() if rid not in existing}
        for rid in [r for r in ends if r not in existing and r not in new]:
            done.remove(f"{rid}.end")  # its start was lost: nothing to attach it to
            bad.append(f"{rid}.end")
            del ends[rid]
        if new:
            cols: dict[str, list[Any]] = {c: [] for c in _RUN_COLUMNS}
            for rid, m in new.items():
                e = ends.get(rid, {})
                values = (
                    rid,
                    m["experiment"],
                    m.get("name"),
                    e.get("status", RUNNING),
                    e.get("error"),
                    datetime.fromisoformat(m["start_time"]),
                    datetime.fromisoformat(e["end_time"]) if e else None,
                    m.get("host"),
                    m.get("pid"),
                    m.get("dataset"),
                    m.get("dataset_version"),
                    m.get("parent_id"),
                    json.dumps(m.get("environment") or {}),
                    m.get("source"),
                )
                for c, v in zip(cols.values(), values, strict=True):
                    c.append(v)
                ds = m.get("dataset")
                events.append(
                    (
                        datetime.fromisoformat(m["start_time"]),
                        m.get("actor") or audit.actor(),
                        "run.start",
                        f"run:{rid}",
                        {
                            "experiment": m["experiment"],
                            "name": m.get("name"),
                            "dataset": f"{ds}@{m.get('dataset_version')}" if ds else None,
                        },
                    )
                )
            first_seen: dict[str, Any] = {}
            for exp, at in zip(cols["experiment"], cols["start_time"], strict=True):
                first_seen[exp] = min(at, first_seen.get(exp, at))
            con.execute(
                "INSERT OR IGNORE INTO experiments "
                "SELECT unnest(?::VARCHAR[]), unnest(?::TIMESTAMP[])",
                [list(first_seen), list(first_seen.values())],
            )
            con.execute(
                f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) SELECT "
                + ", ".join(f"unnest(?::{t}[])" for t in _RUN_COLUMNS.values()),
                list(cols.values()),
            )
        # An end folds the run's files. A row already ended means an earlier fold did
        # (a crash before its records were removed); a row marked killed means a reader
        # gave up on the run while its heartbeat stalled: fold again over that.
        fold = [r for r in ends if r in new or existing[r] in (RUNNING, KILLED)]
        replace = [r for r in fold if existing.get(r) == KILLED]
        self.fold_files(con, fold, replace)
        update = [r for r in fold if r not in new]
        if update:
            con.execute(
                "UPDATE runs SET status = e.status, error = e.error, end_time = e.end_time "
                "FROM (SELECT unnest(?::VARCHAR[]) AS id, unnest(?::VARCHAR[]) AS status, "
                "unnest(?::VARCHAR[]) AS error, unnest(?::TIMESTAMP[]) AS end_time) e "
                "WHERE runs.id = e.id",
                [
                    update,
                    [ends[r]["status"] for r in update],
                    [ends[r].get("error") for r in update],
                    [datetime.fromisoformat(ends[r]["end_time"]) for r in update],
                ],
            )
        for r in fold:
            e = ends[r]
            events.append(
                (
                    datetime.fromisoformat(e["end_time"]),
                    e.get("actor") or audit.actor(),
                    "run.end",
                    f"run:{r}",
                    {"status": e["status"], "error": e.get("error")},
                )
            )
        events.sort(key=lambda ev: ev[0])
        audit.append_many(con, events)
        return done, bad

    def fold_files(
        self, con: duckdb.DuckDBPyConnection, run_ids: list[str], replace: list[str]
    ) -> None:
        """Move runs' files (params, tags, artifacts, points) into the catalog, a
        statement a table for all of them.

        ``replace`` first removes what an earlier fold wrote for those runs; a first
        fold skips that, because deleting from ``metrics`` scans the whole table.
        """
        import polars as pl

        if not run_ids:
            return
        if replace:
            for table in ("params", "tags", "metrics", "metric_summary", "artifacts"):
                con.execute(
                    f"DELETE FROM {table} WHERE run_id IN ?::VARCHAR[]",
                    [replace],
                )
        root = self.runs_dir
        kv: dict[str, tuple[list[str], list[str], list[str]]] = {
            "params": ([], [], []),
            "tags": ([], [], []),
        }
        arts: list[list[Any]] = [[], [], [], [], []]
        objects: dict[str, int] = {}
        frames = []
        for rid in run_ids:
            d = root / rid
            for table, (ids, keys, values) in kv.items():
                items = read_json(d / f"{table}.json", {})
                ids += [rid] * len(items)
                keys += list(items)
                values += list(items.values())
            for path, a in read_json(d / "artifacts.json", {}).items():
                for col, v in zip(arts, (rid, path, a["hash"], a["size"], a["kind"]), strict=True):
                    col.append(v)
                objects[a["hash"]] = a["size"]
            points = read_points(d)
            if points is not None and points.height:
                frames.append(points.with_columns(pl.lit(rid).alias("run_id")))
        for table, cols in kv.items():
            if cols[0]:  # one statement (executemany runs one a row, ~1 ms each)
                con.execute(
                    f"INSERT INTO {table} SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                    "unnest(?::VARCHAR[])",
                    list(cols),
                )
        if arts[0]:
            con.execute(
                "INSERT INTO artifacts SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                "unnest(?::VARCHAR[]), unnest(?::BIGINT[]), unnest(?::VARCHAR[])",
                arts,
            )
            con.execute(
                "INSERT OR IGNORE INTO objects SELECT unnest(?::VARCHAR[]), "
                "unnest(?::BIGINT[]), 'artifact', ?",
                [list(objects), list(objects.values()), audit.now()],
            )
        if frames:
            store_points(
                con,
                pl.concat(frames, how="vertical").select("run_id", "key", "step", "value", "ts"),
            )

    def dead(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        """Running runs whose process is gone (this host) or whose heartbeat is stale."""
        host = socket.gethostname()
        dead = []
        for run_id, run_host, pid in con.execute(
            "SELECT id, host, pid FROM runs WHERE status = ?", [RUNNING]
        ).fetchall():
            beat = self.runs_dir / run_id / "heartbeat"
            try:
                age = time.time() - beat.stat().st_mtime
            except OSError:
                age = math.inf
            gone = run_host == host and pid is not None and not _pid_alive(pid)
            if gone or age > STALE_SECONDS:
                dead.append(run_id)
        return dead

    def mark_killed(self, dead: list[str]) -> None:
        if not dead:
            return
        journal = self.catalog.journal
        with self.catalog.write() as con:
            rows = con.execute(
                "SELECT id FROM runs WHERE status = ? AND id IN ?::VARCHAR[]",
                [RUNNING, dead],
            ).fetchall()
            # A run that ended after the journal was last read is not dead: the next
            # operation folds its end.
            killed = [r for (r,) in rows if not (journal / f"{r}.end").exists()]
            if not killed:
                return
            self.fold_files(con, killed, [])
            now = audit.now()
            error = "the process stopped without ending the run"
            con.execute(
                "UPDATE runs SET status = ?, error = ?, end_time = ? WHERE id IN ?::VARCHAR[]",
                [KILLED, error, now, killed],
            )
            who = audit.actor()
            audit.append_many(
                con, [(now, who, "run.end", f"run:{r}", {"status": KILLED}) for r in killed]
            )
