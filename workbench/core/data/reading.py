"""Reading a dataset version: every read checks the bytes it reads first.

The read half of ``Datasets`` (as ``AliasMoves`` is the alias half of the registry):
a scan, a page of rows, a head, an export, each refusing in one line when a chunk or a
patch no longer matches what was stored.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.core.data import ingest
from workbench.core.data.segments import covering, described, scan_segments
from workbench.core.errors import UsageError

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from workbench.core.data.versions import Version
    from workbench.core.store.catalog import Catalog
    from workbench.core.store.objects import ObjectStore
    from workbench.core.store.refs import Ref


class VersionReader:
    """Reads of stored versions; ``Datasets`` supplies ``resolve`` and the stores."""

    catalog: Catalog
    objects: ObjectStore

    def resolve(self, ref: str | Ref | Version, sums: bool = False) -> Version:
        """A version by reference: ``Datasets.resolve``."""
        raise NotImplementedError

    def scan(self, ref: str | Ref | Version) -> pl.LazyFrame:
        """The version's rows as a LazyFrame, its chunks checked against their hashes
        first: what is read is what was stored, or nothing is read."""
        v = self.resolve(ref, sums=True)
        self._check_segments(v, range(len(v.segments)))
        return scan_segments(v.segments, self.objects.path)

    def rows(self, ref: str | Ref | Version, offset: int, length: int) -> pl.DataFrame:
        """Rows ``offset`` to ``offset + length``, reading (and checking) only the chunks
        that hold them: a page of a 1 GB version costs one chunk, not the version."""
        if offset < 0 or length < 0:
            raise UsageError("an offset and a row count are 0 or more")
        v = self.resolve(ref, sums=True)
        needed, first = covering(v.segments, offset, length)
        if not needed:  # past the end, or no rows asked for: the columns alone
            needed, first, length = [0], offset, 0
        self._check_segments(v, needed)
        segments = [v.segments[i] for i in needed]
        return scan_segments(segments, self.objects.path).slice(offset - first, length).collect()

    def _check_segments(self, v: Version, which: Iterable[int]) -> None:
        described_ = described(f"dataset {v.ref}", v.segments, which)
        sums = v.sums if v.sums is not None else self._sums(described_)
        self.objects.check(described_, sums)

    def _sums(self, digests: Iterable[str]) -> dict[str, str]:
        with self.catalog.read() as con:
            return fast_sums(con, digests)

    def load(self, ref: str | Ref | Version) -> pl.DataFrame:
        return self.scan(ref).collect()

    def head(self, ref: str | Ref | Version, n: int = 10) -> pl.DataFrame:
        if n < 0:
            raise UsageError("-n must be 0 or more")
        return self.rows(ref, 0, n)

    def export(self, ref: str | Ref | Version, out: str | Path, fmt: str | None = None) -> Path:
        """Write a version to CSV, Parquet or JSON Lines (by extension or ``fmt``)."""
        target = Path(out).expanduser()
        kind = ingest.output_format(target, fmt)
        return ingest.write_whole(self.scan(ref), target, kind)


def fast_sums(con: duckdb.DuckDBPyConnection, digests: Iterable[str]) -> dict[str, str]:
    """The fast checksums recorded for these objects (none for ones stored before
    workbench kept them: those are checked by SHA-256). The list is bound as one value,
    which DuckDB looks up in the primary key's index at any length; a long list in the
    form ``IN (SELECT unnest(?))`` became a hash join over every object's row (as a run's
    rows did: runs.OF_RUNS)."""
    wanted = builtins.list(digests)
    return dict(
        con.execute(
            "SELECT hash, xxh3 FROM object_sums WHERE hash IN ?::VARCHAR[]", [wanted]
        ).fetchall()
    )
