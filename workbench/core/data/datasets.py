"""Dataset versions: add, resolve, list, show, load, head, export.

A version's id is the SHA-256 of the file that was added (as DVC does), so
adding the same bytes again finds the existing version and writes nothing.
Its rows are stored as segments (see :mod:`workbench.core.data.segments`) and its
profile is computed once, here, before the version becomes visible.
"""

from __future__ import annotations

import builtins
import concurrent.futures
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.data import ingest
from workbench.core.data.checks import ChecksFailed, store_check
from workbench.core.data.reading import VersionReader, fast_sums
from workbench.core.data.segments import (
    SEGMENT_ROWS,
    Segment,
    as_hash,
    scan_segments,
    small_row_groups,
    stored_hash,
)
from workbench.core.data.versions import (
    _VERSION_COLS,
    AddResult,
    DatasetEntry,
    Version,
    _AlreadyStored,
    _schema_list,
    schema_changes,
)
from workbench.core.data.writing import settled, write_segments
from workbench.core.errors import DataError, NotFoundError, UsageError
from workbench.core.store import audit
from workbench.core.store.catalog import one
from workbench.core.store.objects import sha256_file
from workbench.core.store.refs import Ref, check_name, parse_ref
from workbench.core.store.rows import OBJECT_ROWS, insert_rows

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from workbench.core.config import Settings
    from workbench.core.data.checks import CheckReport
    from workbench.core.store.catalog import Catalog
    from workbench.core.store.objects import ObjectStore


class Datasets(VersionReader):
    """The dataset half of the Python API: ``Project().datasets``."""

    def __init__(self, catalog: Catalog, objects: ObjectStore, settings: Settings) -> None:
        self.catalog = catalog
        self.objects = objects
        self.settings = settings

    # ---- reading the catalog -------------------------------------------------
    def _version_rows(
        self, con: duckdb.DuckDBPyConnection, where: str, args: list[Any]
    ) -> list[Version]:
        rows = con.execute(
            f"SELECT {_VERSION_COLS} FROM dataset_versions WHERE {where} ORDER BY dataset, number",
            args,
        ).fetchall()
        return [Version.from_row(r) for r in rows]

    def _segments(self, con: duckdb.DuckDBPyConnection, v: Version) -> list[Segment]:
        rows = con.execute(
            "SELECT n_rows, blob, patches, start, first_hash FROM dataset_segments "
            "WHERE dataset = ? AND number = ? ORDER BY seq",
            [v.dataset, v.number],
        ).fetchall()
        return [Segment(n, b, tuple(p), start, as_hash(first)) for n, b, p, start, first in rows]

    def _resolve(self, con: duckdb.DuckDBPyConnection, ref: Ref) -> Version:
        if ref.is_run:
            raise UsageError(f"{ref} is a run; a dataset reference looks like NAME or NAME@N")
        known = one(
            con, "SELECT max(number), count(*) FROM dataset_versions WHERE dataset = ?", [ref.name]
        )
        if not known[1]:
            names = [
                r[0] for r in con.execute("SELECT name FROM datasets ORDER BY name").fetchall()
            ]
            hint = (
                f"datasets: {', '.join(names[:10])}"
                if names
                else "no datasets yet; add one with `workbench data add`"
            )
            raise NotFoundError(f"no dataset named {ref.name!r} ({hint})")
        latest = known[0]
        if ref.alias is not None:
            raise NotFoundError(
                f"datasets have no aliases: use {ref.name}@N (1..{latest}) or {ref.name}@sha:HASH"
            )
        if ref.hash_prefix is not None:
            found = self._version_rows(
                con, "dataset = ? AND starts_with(id, ?)", [ref.name, ref.hash_prefix]
            )
            if not found:
                raise NotFoundError(
                    f"no version of {ref.name} has a hash starting with {ref.hash_prefix}"
                )
            if len(found) > 1:
                which = ", ".join(f"@{v.number}" for v in found)
                raise UsageError(f"{ref} is ambiguous ({which}); give more hex digits")
            return found[0]
        number = ref.version if ref.version is not None else latest
        found = self._version_rows(con, "dataset = ? AND number = ?", [ref.name, number])
        if not found:
            raise NotFoundError(f"{ref.name} has no version {number} (versions 1..{latest})")
        return found[0]

    def resolve(self, ref: str | Ref | Version, sums: bool = False) -> Version:
        """The version a reference points to, with its segments (and with ``sums``, their
        objects' fast checksums, which a read checks: one catalog session, not two)."""
        if isinstance(ref, Version):
            if ref.segments:  # a read without its sums fetches them for what it reads
                return ref
            ref = Ref(name=ref.dataset, version=ref.number)
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        with self.catalog.read() as con:
            v = self._resolve(con, parsed)
            v.segments = self._segments(con, v)
            if sums:
                v.sums = fast_sums(con, [d for s in v.segments for d in s.digests])
        return v

    def list(self) -> builtins.list[DatasetEntry]:
        with self.catalog.read() as con:
            rows = con.execute(
                """
                SELECT d.name, count(v.number), max(v.number), arg_max(v.n_rows, v.number),
                       arg_max(v.n_cols, v.number), max(v.created_at), sum(v.stored_bytes)
                FROM datasets d JOIN dataset_versions v ON v.dataset = d.name
                GROUP BY d.name ORDER BY d.name
                """
            ).fetchall()
        return [
            DatasetEntry(n, c, f"{n}@{last}", r, k, at, int(b)) for n, c, last, r, k, at, b in rows
        ]

    def versions(self, name: str) -> builtins.list[Version]:
        with self.catalog.read() as con:
            self._resolve(con, Ref(name=name))
            return self._version_rows(con, "dataset = ?", [name])

    def profile(self, ref: str | Ref | Version) -> dict[str, Any]:
        v = self.resolve(ref)
        with self.catalog.read() as con:
            raw = one(
                con,
                "SELECT profile FROM dataset_versions WHERE dataset = ? AND number = ?",
                [v.dataset, v.number],
            )[0]
        return json.loads(raw)

    # ---- adding ----------------------------------------------------------------
    def add(
        self, path: str | Path, name: str, message: str | None = None, fmt: str | None = None
    ) -> AddResult:
        """Version a file. Same bytes as an existing version: no new version."""
        check_name(name, "dataset name")
        if message is not None and len(message) > 10_000:
            raise UsageError("the message is longer than 10,000 characters")
        src = ingest.open_source(path, fmt)
        # Hash while the file is parsed: hashlib releases the GIL on large buffers.
        hashing = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        try:
            return self._add(src, name, message, hashing)
        except RecursionError:  # past the head: a nested value deeper than its first rows
            raise DataError(
                f"{src.path} nests values too deeply to read as a table; flatten them first"
            ) from None
        finally:
            hashing.shutdown(wait=True, cancel_futures=True)

    def _add(
        self,
        src: ingest.Source,
        name: str,
        message: str | None,
        hashing: concurrent.futures.ThreadPoolExecutor,
    ) -> AddResult:
        project = self

        with project.catalog.read() as con:
            latest_row = self._version_rows(
                con,
                "dataset = ? AND number = (SELECT max(number) FROM dataset_versions WHERE dataset = ?)",
                [name, name],
            )
            previous = latest_row[0] if latest_row else None
            # the previous version's chunk sums, read once: path_of checks each chunk it
            # builds on, and a catalog session per chunk grew each add with the version
            # count (a version's patch chains are up to 8 objects a chunk)
            prev_sums: dict[str, str] = {}
            if previous:
                previous.segments = self._segments(con, previous)
                prev_sums = fast_sums(con, [d for s in previous.segments for d in s.digests])
            chunk_row = con.execute(
                "SELECT chunk_rows FROM datasets WHERE name = ?", [name]
            ).fetchone()
            # A Parquet file is copied while it is hashed: if nearly all of it is new,
            # it is stored as given (see segments.py and writing.py)
            given = src.format == "parquet" and small_row_groups(con, src.path)

        stop = threading.Event()
        with (
            project.objects.stage() as stage,
            settled(
                hashing.submit(stage.put_file, src.path, stop)
                if given
                else hashing.submit(sha256_file, src.path),
                stop,
            ) as digest_future,
        ):
            checked: set[str] = set()

            def path_of(d: str) -> Path:
                staged = stage.area / d
                if staged.exists():
                    return staged
                # a stored chunk the new version is built from or shares: checked first
                # (once: its first row is read to match pieces, then all of it to compare)
                if d not in checked:
                    sums = {d: prev_sums[d]} if d in prev_sums else self._sums([d])
                    project.objects.check(
                        {d: f"dataset {name} (a stored chunk it builds on)"}, sums
                    )
                    checked.add(d)
                return project.objects.path(d)

            known_check: list[Version | None] = []

            def known_version() -> Version | None:
                """Once the hash is ready: the version that already has these bytes."""
                if not known_check and digest_future.done():
                    with project.catalog.read() as con:
                        found = self._version_rows(
                            con, "dataset = ? AND id = ?", [name, digest_future.result()]
                        )
                    known_check.append(found[0] if found else None)
                return known_check[0] if known_check else None

            infer: int | None = ingest.INFER_ROWS
            while True:
                try:
                    schema, segments, chunk_rows, prof = write_segments(
                        src,
                        previous,
                        chunk_row[0] if chunk_row else self.settings.chunk_rows,
                        stage,
                        path_of,
                        infer,
                        known_version,
                        digest_future if given else None,
                    )
                    break
                except _AlreadyStored as stored:
                    return AddResult(stored.version, created=False)
                except ingest.NeedsFullInference:
                    if infer is None:
                        raise DataError(
                            f"cannot infer consistent column types for {src.path}"
                        ) from None
                    infer = None
            digest = digest_future.result()
            with project.catalog.read() as con:
                known = self._version_rows(con, "dataset = ? AND id = ?", [name, digest])
            if known:
                return AddResult(known[0], created=False)
            n_rows = sum(s.n_rows for s in segments)
            if n_rows == 0:
                raise DataError(f"{src.path} has a header but no data rows")
            if prof["columns"][-1]["nulls"]:  # short CSV rows leave a null in the last column
                ingest.check_short_rows(src, len(schema))
            schema_list = _schema_list(schema)
            changes = schema_changes(previous.schema, schema_list) if previous else None
            sizes = {
                d: (stage.sizes[d] if d in stage.sizes else project.objects.size(d))
                for s in segments
                for d in s.digests
            }
            report = self._check(name, scan_segments(segments, path_of))
            stage.commit()
            version = self._record(
                name,
                digest,
                message,
                src,
                n_rows,
                schema_list,
                changes,
                prof,
                segments,
                stage.new,
                sizes,
                previous,
                chunk_rows,
                report,
                stage.sums,
            )
        return version

    def _check(self, name: str, lf: pl.LazyFrame) -> CheckReport | None:
        """Run the dataset's [checks] on rows about to be stored; refuse them if told to."""
        from workbench.core.data.checks import run_checks

        spec = self.settings.checks.get(name)
        if spec is None:
            return None
        report = run_checks(lf, name, spec)
        if not report.passed and report.on_fail == "refuse":
            raise ChecksFailed(report)
        return report

    def check(self, ref: str | Ref | Version) -> CheckReport:
        """Run the dataset's [checks] on a stored version, and record the outcome."""
        from workbench.core.data.checks import run_checks

        v = self.resolve(ref)
        spec = self.settings.checks.get(v.dataset)
        if spec is None:
            raise UsageError(
                f"no checks for {v.dataset}: add a [checks.{v.dataset}] table to workbench.toml "
                "(see docs/checks.md)"
            )
        report = run_checks(self.scan(v), v.dataset, spec)
        with self.catalog.write() as con:
            store_check(con, v.dataset, v.number, report)
            audit.append(
                con,
                "dataset.check",
                v.ref,
                {"passed": report.passed, "failed": [r.check for r in report.failed]},
            )
        return report

    def checks_of(self, ref: str | Ref | Version) -> dict[str, Any] | None:
        """The latest recorded check report of a version (None if never checked)."""
        v = self.resolve(ref)
        with self.catalog.read() as con:
            row = con.execute(
                "SELECT report FROM dataset_checks WHERE dataset = ? AND number = ? "
                "ORDER BY checked_at DESC LIMIT 1",
                [v.dataset, v.number],
            ).fetchone()
        return json.loads(row[0]) if row else None

    def _record(
        self,
        name: str,
        digest: str,
        message: str | None,
        src: ingest.Source,
        n_rows: int,
        schema_list: builtins.list[dict[str, str]],
        changes: dict[str, Any] | None,
        prof: dict[str, Any],
        segments: builtins.list[Segment],
        new_digests: set[str],
        sizes: dict[str, int],
        previous: Version | None,
        chunk_rows: int,
        report: CheckReport | None = None,
        sums: dict[str, str] | None = None,
    ) -> AddResult:
        created_at = audit.now()
        with self.catalog.write() as con:
            # Another process may have added the same bytes while we were working.
            known = self._version_rows(con, "dataset = ? AND id = ?", [name, digest])
            if known:
                return AddResult(known[0], created=False)
            con.execute(
                "INSERT OR IGNORE INTO datasets VALUES (?, ?, ?)", [name, created_at, chunk_rows]
            )
            number = one(
                con,
                "SELECT coalesce(max(number), 0) + 1 FROM dataset_versions WHERE dataset = ?",
                [name],
            )[0]
            stored = sum(sizes[d] for d in set(sizes) & new_digests)
            con.execute(
                f"INSERT INTO dataset_versions ({_VERSION_COLS}, profile) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    name,
                    number,
                    digest,
                    created_at,
                    message,
                    src.path.name,
                    src.format,
                    src.size,
                    n_rows,
                    len(schema_list),
                    stored,
                    sum(sizes.values()),
                    previous.number if previous else None,
                    json.dumps(schema_list),
                    json.dumps(changes) if changes else None,
                    json.dumps(prof),
                ],
            )
            rows = [
                [
                    name,
                    number,
                    i,
                    s.n_rows,
                    s.blob,
                    list(s.patches),
                    s.start,
                    stored_hash(s.first_hash),
                ]
                for i, s in enumerate(segments)
            ]
            insert_rows(con, "dataset_segments", rows, SEGMENT_ROWS)
            rows = [[d, size, "dataset", created_at] for d, size in sizes.items()]
            insert_rows(con, "objects", rows, OBJECT_ROWS, or_ignore=True)
            if sums:
                con.execute(
                    "INSERT OR IGNORE INTO object_sums SELECT unnest(?), unnest(?)",
                    [builtins.list(sums), builtins.list(sums.values())],
                )
            audit.append(
                con,
                "dataset.add",
                f"{name}@{number}",
                {
                    "id": digest,
                    "rows": n_rows,
                    "columns": len(schema_list),
                    "source": src.path.name,
                    "message": message,
                    "schema_changes": changes,
                    "checks": None
                    if report is None
                    else ("passed" if report.passed else f"failed: {report.summary()}"),
                },
            )
            if report is not None:
                store_check(con, name, number, report)
            version = self._version_rows(con, "dataset = ? AND number = ?", [name, number])[0]
        version.segments = segments
        return AddResult(version, created=True)
