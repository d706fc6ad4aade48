"""The catalog side of runs (``Project().runs``): starting one, reading them back (one
run, its history, a filtered and ordered list), tags, soft delete and restore, and
runs brought in from elsewhere (``import_run``).

Every read first lets the journal mark dead runs killed, so a reader never shows a
run as running after its process died.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import NotFoundError, UsageError, WorkbenchError
from workbench.core.runs.journal import Journal
from workbench.core.runs.points import read_points
from workbench.core.runs.reading import resolve_many, run_info
from workbench.core.runs.records import RunInfo, RunSummary, split_column
from workbench.core.runs.run import (
    _CONTROL,
    MAX_KEY,
    RUNNING,
    Run,
    check_key,
    environment,
    param_text,
)
from workbench.core.store import audit, objects
from workbench.core.store.catalog import one
from workbench.core.store.refs import check_name, parse_ref
from workbench.core.store.rows import OBJECT_ROWS, insert_rows

if TYPE_CHECKING:
    from datetime import datetime

    import duckdb
    import polars as pl

    from workbench.core.data.versions import Version
    from workbench.core.store.catalog import Catalog
    from workbench.core.store.objects import ObjectStore

# A run's rows in params, tags, metric_summary and artifacts, found through their
# ``run_id`` index. The list is bound as one value: ``IN (SELECT unnest($1))`` would be
# planned as a join and scan the whole table (~280 ms for 100 runs at 100k runs).
OF_RUNS = "run_id IN $1::VARCHAR[]"


@dataclass
class ImportedRun:
    """A finished run recorded by another tool, as :meth:`Runs.import_run` takes it."""

    id: str
    experiment: str
    name: str | None
    status: str
    error: str | None
    start: datetime
    end: datetime
    deleted: bool
    params: dict[str, str]
    tags: dict[str, str]
    artifacts: dict[str, tuple[str, int, str]]  # path -> (object hash, size, kind)
    points: pl.DataFrame | None  # key, step, value, ts
    source: str  # the runs.source column, e.g. "mlflow import"
    imported_from: str  # the tool, kept in the run's environment, e.g. "mlflow"
    origin: dict[str, Any]  # what the audit entry says of where it came from
    parent_id: str | None = None  # a run recorded before it (MLflow's nested runs)


class Runs:
    """The catalog side of tracking: ``Project().runs``."""

    def __init__(
        self,
        catalog: Catalog,
        objects: ObjectStore,
        runs_dir: Path,
        resolve_dataset: Callable[[str], Version],
    ) -> None:
        """``resolve_dataset`` turns a run's ``dataset=`` reference into the version it
        names: runs record lineage, but the dataset versions are another room's."""
        self.catalog = catalog
        self.objects = objects
        self.runs_dir = runs_dir
        self.journal = Journal(catalog, runs_dir)
        self._resolve_dataset = resolve_dataset

    def start(
        self,
        experiment: str = "default",
        name: str | None = None,
        dataset: str | None = None,
        parent_id: str | None = None,
        source: str | None = None,
    ) -> Run:
        check_name(experiment, "experiment name")
        if name is not None and (len(name) > MAX_KEY or _CONTROL.search(name)):
            raise UsageError(f"invalid run name: use at most {MAX_KEY} printable characters")
        ds_name = ds_version = None
        if dataset is not None:
            v = self._resolve_dataset(dataset)
            ds_name, ds_version = v.dataset, v.number
        run_id = uuid.uuid4().hex
        run_dir = self.runs_dir / run_id
        try:
            run_dir.mkdir(parents=True)
            (run_dir / "heartbeat").touch()
        except OSError as exc:
            raise objects.store_write_error(exc, run_dir) from None
        meta = {
            "experiment": experiment,
            "name": name,
            "start_time": audit.now().isoformat(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "dataset": ds_name,
            "dataset_version": ds_version,
            "parent_id": parent_id,
            "environment": environment(),
            "source": source,
            "actor": audit.actor(),
        }
        try:
            self.journal.record(run_id, "start", meta)
        except BaseException:
            import shutil

            shutil.rmtree(run_dir, ignore_errors=True)  # no folder without its record
            raise
        return Run(self.objects, run_dir, self.journal.record, experiment, name)

    # ---- the journal ------------------------------------------------------------------

    def fold_journal(self, max_runs: int = 500) -> int:
        """Fold waiting journal records in now (the catalog does this before any
        operation; scripts and tests call it to be explicit)."""
        return self.journal.fold(max_runs)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read connection on a reconciled catalog: one open in the common case."""
        for _ in range(2):
            with self.catalog.read() as con:
                dead = self.journal.dead(con)
                if not dead:
                    yield con
                    return
            self.journal.mark_killed(dead)
        with self.catalog.read() as con:
            yield con

    def reconcile(self) -> list[str]:
        """Mark runs whose process died as killed, keeping the points they flushed."""
        with self.catalog.read() as con:
            dead = self.journal.dead(con)
        self.journal.mark_killed(dead)
        return dead

    # ---- reading --------------------------------------------------------------------
    def resolve_id(self, ref: str, include_deleted: bool = True) -> str:
        with self.catalog.read() as con:
            return self._resolve_id(con, ref, include_deleted)

    def _resolve_id(
        self, con: duckdb.DuckDBPyConnection, ref: str, include_deleted: bool = True
    ) -> str:
        text = ref if ref.startswith("run:") else f"run:{ref}"
        parsed = parse_ref(text)
        rows = con.execute(
            "SELECT id FROM runs WHERE starts_with(id, ?)"
            + ("" if include_deleted else " AND deleted_at IS NULL"),
            [parsed.run_id],
        ).fetchall()
        if not rows:
            raise NotFoundError(
                f"no run with an id starting with {parsed.run_id} (see `workbench runs list`)"
            )
        if len(rows) > 1:
            raise UsageError(f"run:{parsed.run_id} matches {len(rows)} runs; give more hex digits")
        return rows[0][0]

    def get(self, ref: str) -> RunInfo:
        return self.get_many([ref])[0]

    def get_many(self, refs: builtins.list[str]) -> builtins.list[RunInfo]:
        """Several runs, in the order asked, each table read once for all of them."""
        if not refs:
            return []
        with self._reading() as con:
            ids = resolve_many(con, refs, lambda r: self._resolve_id(con, r))
            rows = {
                r[0]: r
                for r in con.execute(
                    "SELECT id, experiment, name, status, error, start_time, end_time, host, pid, "
                    "dataset, dataset_version, parent_id, deleted_at, environment, source "
                    "FROM runs WHERE id IN $1::VARCHAR[]",
                    [ids],
                ).fetchall()
            }

            def by_run(sql: str) -> dict[str, builtins.list[tuple[Any, ...]]]:
                found: dict[str, builtins.list[tuple[Any, ...]]] = {}
                for r in con.execute(sql.format(wanted=OF_RUNS), [ids]).fetchall():
                    found.setdefault(r[0], []).append(r[1:])
                return found

            params = by_run("SELECT run_id, key, value FROM params WHERE {wanted} ORDER BY key")
            tags = by_run("SELECT run_id, key, value FROM tags WHERE {wanted} ORDER BY key")
            summaries = by_run(
                "SELECT run_id, key, last, last_step, min, max, mean, count FROM metric_summary "
                "WHERE {wanted} ORDER BY key"
            )
            arts = by_run(
                "SELECT run_id, path, hash, size, kind FROM artifacts WHERE {wanted} ORDER BY path"
            )
            children = by_run(
                "SELECT parent_id, id FROM runs WHERE parent_id IN $1::VARCHAR[] "
                "ORDER BY start_time"
            )
        return [
            run_info(
                self.runs_dir,
                rows[i],
                dict(params.get(i, [])),
                dict(tags.get(i, [])),
                summaries.get(i, []),
                arts.get(i, []),
                [c[0] for c in children.get(i, [])],
            )
            for i in ids
        ]

    def history(self, ref: str, key: str) -> list[tuple[int, float]]:
        """Every (step, value) of one metric, from the live file while the run is running."""
        run_id = self.resolve_id(ref)
        with self.catalog.read() as con:
            status = one(con, "SELECT status FROM runs WHERE id = ?", [run_id])[0]
            if status != RUNNING:
                return [
                    (int(s), float(v))
                    for s, v in con.execute(
                        "SELECT step, value FROM metrics WHERE run_id = ? AND key = ? ORDER BY step, ts",
                        [run_id, key],
                    ).fetchall()
                ]
        import polars as pl

        pts = read_points(self.runs_dir / run_id)
        if pts is None:
            return []
        sel = pts.filter(pl.col("key") == key).sort(["step", "ts"])
        return list(zip(sel["step"].to_list(), sel["value"].to_list(), strict=True))

    def histories(
        self, refs: builtins.list[str], key: str
    ) -> dict[str, builtins.list[tuple[int, float]]]:
        """``history`` of several runs (run id -> points), the finished ones in one read."""
        with self.catalog.read() as con:
            ids = resolve_many(con, refs, lambda r: self._resolve_id(con, r))
            live = {
                r[0]
                for r in con.execute(
                    "SELECT id FROM runs WHERE id IN $1::VARCHAR[] AND status = $2",
                    [ids, RUNNING],
                ).fetchall()
            }
            found: dict[str, builtins.list[tuple[int, float]]] = {i: [] for i in ids}
            for rid, step, value in con.execute(
                "SELECT run_id, step, value FROM metrics WHERE key = $2 "
                "AND run_id IN $1::VARCHAR[] ORDER BY run_id, step, ts",
                [ids, key],
            ).fetchall():
                found[rid].append((int(step), float(value)))
        for rid in live:
            found[rid] = self.history(rid, key)
        return found

    def list(
        self,
        experiment: str | None = None,
        filter: str | None = None,
        order_by: str | None = None,
        limit: int | None = 100,
        include_deleted: bool = False,
        keys: Iterable[str] | None = None,
    ) -> builtins.list[RunSummary]:
        """Runs matching a filter (see :mod:`workbench.core.runs.search`), with params and
        metrics: all of them, or only the ``keys`` named (``params.model``,
        ``metrics.val_auc``). A table that shows a few columns asks for those: at 100k
        runs of 20 metrics, reading every key of a page scans 3M rows (about 55 ms), the
        keys shown a twentieth of them."""
        import duckdb

        from workbench.core.runs.search import Joins, order_sql, where_sql

        joins = Joins()
        where, where_args = where_sql(filter, joins)
        order, order_args = order_sql(order_by, joins)
        sql = (
            "SELECT r.id, r.experiment, r.name, r.status, r.start_time, r.end_time, r.dataset, "
            f"r.dataset_version, r.parent_id, r.deleted_at FROM runs r{joins.sql()} "
            f"WHERE ({where})"
        )
        args = [*joins.args, *where_args]
        if experiment is not None:
            sql += " AND r.experiment = ?"
            args.append(experiment)
        if not include_deleted:
            sql += " AND r.deleted_at IS NULL"
        sql += f" ORDER BY {order}"
        args += order_args
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._reading() as con:
            try:
                rows = con.execute(sql, args).fetchall()
            except duckdb.Error as exc:
                raise UsageError(
                    f"the filter cannot be evaluated: {str(exc).splitlines()[0]}"
                ) from None
            ids = [r[0] for r in rows]
            params: dict[str, dict[str, str]] = {i: {} for i in ids}
            metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
            if ids:
                # params and metrics of the page in one statement: a statement costs ~1.5 ms
                # before it reads anything, and a list of runs is read on every keystroke
                wanted = [split_column(k) for k in keys] if keys is not None else None
                only_p = sorted({k for kind, k in wanted or [] if kind == "params"})
                only_m = sorted({k for kind, k in wanted or [] if kind == "metrics"})
                by_key = "" if wanted is None else " AND list_contains({}::VARCHAR[], key)"
                for is_param, rid, k, v, last in con.execute(
                    f"SELECT true, run_id, key, value, NULL::DOUBLE FROM params WHERE {OF_RUNS}"
                    + by_key.format("$2")
                    + " UNION ALL SELECT false, run_id, key, NULL, last FROM metric_summary "
                    f"WHERE {OF_RUNS}" + by_key.format("$3"),
                    [ids] if wanted is None else [ids, only_p, only_m],
                ).fetchall():
                    if is_param:
                        params[rid][k] = v
                    else:
                        metrics[rid][k] = last
        now = audit.now()
        return [
            RunSummary(
                id=rid,
                ref=f"run:{rid[:8]}",
                experiment=exp,
                name=name,
                status=status,
                start_time=start,
                duration_s=((end or now) - start).total_seconds(),
                dataset=f"{ds}@{dv}" if ds else None,
                parent_id=parent,
                deleted=deleted is not None,
                params=params[rid],
                metrics=metrics[rid],
            )
            for rid, exp, name, status, start, end, ds, dv, parent, deleted in rows
        ]

    def metric_keys(self, ref: str) -> builtins.list[str]:
        return sorted(self.get(ref)["metrics"])

    # ---- editing ---------------------------------------------------------------------
    def set_tag(self, ref: str, key: str, value: str) -> None:
        self.edit_tags(ref, [(key, value)])

    def delete_tag(self, ref: str, key: str) -> None:
        self.edit_tags(ref, [(key, None)])

    def edit_tags(self, ref: str, edits: builtins.list[tuple[str, str | None]]) -> None:
        """Apply ``(key, value)`` sets and ``(key, None)`` removals in order, as one
        change: every key is checked and a removal of a tag that is not there is refused
        before anything is written, so a command naming five tags never stops after two
        (nor does a kill)."""
        run_id = self.resolve_id(ref)
        for key, _ in edits:
            check_key(key, "tag")
        with self.catalog.write() as con:
            tags: dict[str, str | None] = dict(
                con.execute("SELECT key, value FROM tags WHERE run_id = ?", [run_id]).fetchall()
            )
            before = dict(tags)
            for key, value in edits:
                if value is None:
                    if key not in tags:
                        raise NotFoundError(f"run:{run_id[:8]} has no tag {key!r}; nothing changed")
                    del tags[key]
                else:
                    tags[key] = param_text(value)
            for key in before.keys() - tags.keys():
                con.execute("DELETE FROM tags WHERE run_id = ? AND key = ?", [run_id, key])
                audit.append(con, "run.untag", f"run:{run_id}", {"key": key})
            for key, text in tags.items():
                if before.get(key) != text:
                    con.execute("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)", [run_id, key, text])
                    audit.append(con, "run.tag", f"run:{run_id}", {"key": key, "value": text})

    def delete(self, ref: str) -> str:
        """Soft delete: hidden from listings, restorable with ``restore``."""
        return self.mark_deleted([ref], True)[0]

    def restore(self, ref: str) -> str:
        return self.mark_deleted([ref], False)[0]

    def mark_deleted(self, refs: builtins.list[str], deleted: bool) -> builtins.list[str]:
        """Soft-delete (or bring back) several runs as one change: all of them, or none if
        one is unknown or still running. A run already as asked is left as it is."""
        with self.catalog.write() as con:
            ids = [self._resolve_id(con, ref) for ref in refs]
            rows = dict(
                con.execute(
                    "SELECT id, (status, deleted_at) FROM runs WHERE list_contains(?, id)", [ids]
                ).fetchall()
            )
            busy = [rid for rid in ids if deleted and rows[rid][0] == RUNNING]
            if busy:
                raise WorkbenchError(f"run:{busy[0][:8]} is still running; nothing changed")
            now = audit.now()
            for rid in dict.fromkeys(ids):
                if (rows[rid][1] is None) != deleted:
                    continue  # already as asked
                con.execute(
                    "UPDATE runs SET deleted_at = ? WHERE id = ?", [now if deleted else None, rid]
                )
                audit.append(con, "run.delete" if deleted else "run.restore", f"run:{rid}", {})
        return ids

    # ---- runs from elsewhere ------------------------------------------------------------
    def import_run(self, run: ImportedRun) -> str:
        """Record a finished run from another tool in one transaction; returns its id,
        which is ``run.id`` unless a different run already holds that id. The artifact
        objects must already be in the object store."""
        import polars as pl

        from workbench.core.runs.points import store_points

        run_id = run.id
        with self.catalog.write() as con:
            if con.execute("SELECT 1 FROM runs WHERE id = ?", [run_id]).fetchone():
                run_id = uuid.uuid4().hex  # the id is taken by a run that is not this one
            con.execute(
                "INSERT OR IGNORE INTO experiments VALUES (?, ?)", [run.experiment, run.start]
            )
            con.execute(
                "INSERT INTO runs (id, experiment, name, status, error, start_time, end_time, "
                "deleted_at, environment, source, parent_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [
                    run_id,
                    run.experiment,
                    run.name,
                    run.status,
                    run.error,
                    run.start,
                    run.end,
                    run.end if run.deleted else None,
                    json.dumps({"imported_from": run.imported_from}),
                    run.source,
                    run.parent_id,
                ],
            )
            kv = {"run_id": "String", "key": "String", "value": "String"}
            insert_rows(con, "params", [[run_id, k, v] for k, v in run.params.items()], kv)
            insert_rows(con, "tags", [[run_id, k, v] for k, v in run.tags.items()], kv)
            insert_rows(
                con,
                "artifacts",
                [[run_id, k, h, n, kind] for k, (h, n, kind) in run.artifacts.items()],
                {"run_id": "String", "path": "String", "hash": "String", "size": "Int64",
                 "kind": "String"},
            )  # fmt: skip
            insert_rows(
                con,
                "objects",
                [[h, n, "artifact", audit.now()] for h, n, _ in run.artifacts.values()],
                OBJECT_ROWS,
                or_ignore=True,
            )
            if run.points is not None and run.points.height:
                store_points(
                    con,
                    run.points.select(pl.lit(run_id).alias("run_id"), "key", "step", "value", "ts"),
                )
            audit.append(con, "run.import", f"run:{run_id}", run.origin)
        return run_id
