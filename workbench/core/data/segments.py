"""How a dataset version is stored: an ordered list of segments.

A segment is a content-addressed Parquet blob plus an optional chain of small
*patches* (the rows that changed, with their position). Data is cut into segments by
content: after a row whose hash is 0 modulo half the dataset's ``chunk_rows`` (at
least an eighth of it after the previous cut, at most ``chunk_rows`` in all: about
half of it on average), so the same rows give the same cuts wherever they sit in the
file. Each piece of a new version is compared with the previous version's segment that
began with the same row (or, when that row was edited, the one after the segment
matched last):

- unchanged                    -> the old segment is reused (no bytes written);
- a few rows changed (<= 30%)  -> a patch with those rows' changed cells is added to the chain
                                  (a full chain of 8 is collapsed into one patch);
- otherwise, or new rows       -> a fresh blob.

A segment that was cut by length (the last of a version, or one of ``chunk_rows``
rows) is cut again at that length when a new version reaches it unchanged, so
appending rows stores only the new ones. Appending or editing a few rows stores only
what changed, and a row inserted or deleted in the middle costs one segment, where
DVC stores a full copy per version (``bench/insert_bench.py``).

A segment may also be a *range* of a larger blob (``start`` is set): a Parquet file
whose rows are nearly all new is stored as given, one blob, and its new content-defined
pieces become ranges of it (writing.py). Rewriting it would cost more than reading it
(a 10M-row file: ~2.4 s of a ~5 s add), while ranges keep the same cuts, so the next
version still shares every unchanged piece with it.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from workbench.core.store.objects import Staging

ROW = "__wb_row"
MAX_PATCHES = 8
MAX_PATCH_SHARE = 0.3
TARGET_CHUNK_BYTES = 48 << 20
# the dataset_segments table's columns, as insert_rows takes them (polars dtype names)
SEGMENT_ROWS = {
    "dataset": "String", "number": "Int32", "seq": "Int32", "n_rows": "Int64",
    "blob": "String", "patches": "List(String)", "start": "Int64", "first_hash": "Int64",
}  # fmt: skip


def row_hashes(df: pl.DataFrame) -> pl.Series:
    """Each row's hash as pieces are cut, matched and kept (``Segment.first_hash``): one
    definition, since a kept hash must equal the one a later version's add computes."""
    return df.hash_rows(seed=0)


def stored_hash(h: int | None) -> int | None:
    """A 64-bit hash as the catalog's signed BIGINT keeps it, and back (``as_hash``)."""
    return h - (1 << 64) if h is not None and h >= 1 << 63 else h


def as_hash(stored: int | None) -> int | None:
    return stored % (1 << 64) if stored is not None else None


@dataclass(frozen=True)
class Segment:
    n_rows: int
    blob: str
    patches: tuple[str, ...] = field(default=())
    # None: the whole blob; else the segment is rows start..start+n_rows of the blob
    start: int | None = None
    # its first row's hash (row_hashes) as written, or None (a catalog from before
    # it was kept): a hint for matching the next version's pieces, never for reusing
    first_hash: int | None = field(default=None, compare=False)

    @property
    def digests(self) -> tuple[str, ...]:
        return (self.blob, *self.patches)


def parquet_bytes(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    # zstd level 1: ~25% faster to write than the default level for ~20% more bytes.
    df.write_parquet(buf, compression="zstd", compression_level=1, statistics=True)
    return buf.getvalue()


# A Parquet file is kept as given only when a range of it reads without decoding much
# more than the range: row groups of at most this many rows and (uncompressed) bytes.
# pyarrow writes groups of 1Mi rows by default, Polars smaller ones, Spark ~128 MB.
GIVEN_GROUP_ROWS = 1 << 20
GIVEN_GROUP_BYTES = 256 << 20


def small_row_groups(con: duckdb.DuckDBPyConnection, path: Path) -> bool:
    """Whether a Parquet file's row groups are small enough to keep it as given. DuckDB
    reads the footer in ~13 ms; importing pyarrow.parquet to read it costs ~0.12 s."""
    import duckdb

    try:
        rows, size = con.execute(
            "SELECT max(row_group_num_rows), max(row_group_bytes) FROM parquet_metadata(?)",
            [str(path)],
        ).fetchone() or (None, None)
    except duckdb.Error:
        return False
    return rows is not None and rows <= GIVEN_GROUP_ROWS and (size or 0) <= GIVEN_GROUP_BYTES


def choose_chunk_rows(sample: pl.DataFrame) -> int:
    """Rows per chunk so that one chunk is ~48 MB in memory (a power of two)."""
    per_row = max(1, sample.estimated_size() // max(1, sample.height))
    rows = int(max(1024, min(1 << 20, TARGET_CHUNK_BYTES // per_row)))
    return 1 << (rows.bit_length() - 1)


def covering(segments: list[Segment], offset: int, length: int) -> tuple[list[int], int]:
    """The positions of the segments that hold rows ``offset`` to ``offset + length``,
    and the row number the first of them starts at."""
    first, start = 0, 0
    needed: list[int] = []
    for i, seg in enumerate(segments):
        end = start + seg.n_rows
        if end > offset and start < offset + length:
            if not needed:
                first = start
            needed.append(i)
        start = end
    return needed, first


def described(owner: str, segments: list[Segment], which: Iterable[int]) -> dict[str, str]:
    """Each object of the chosen segments, with what it is (for a one-line refusal). A
    blob that several segments are ranges of (a file kept as given) names them all."""
    n, out = len(segments), {}
    chunks: dict[str, list[int]] = {}  # blob -> the chunks it holds, in one pass
    for j, s in enumerate(segments):
        chunks.setdefault(s.blob, []).append(j + 1)
    for i in which:
        blob = segments[i].blob
        if blob not in out:
            at = chunks[blob]
            out[blob] = f"{owner} (chunk{'s' if len(at) > 1 else ''} {_spans(at)} of {n})"
        for p in segments[i].patches:
            out.setdefault(p, f"{owner} (a patch of chunk {i + 1} of {n})")
    return out


def _spans(numbers: list[int]) -> str:
    """[1, 2, 3, 5] -> "1-3, 5"."""
    runs: list[list[int]] = []
    for k in numbers:
        if runs and k == runs[-1][1] + 1:
            runs[-1][1] = k
        else:
            runs.append([k, k])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def unpatched(segment: Segment, path_of: Callable[[str], Path]) -> pl.LazyFrame:
    """A segment's rows before its patches: its blob, or its range of the blob."""
    import polars as pl

    lf = pl.scan_parquet(path_of(segment.blob), glob=False)
    return lf if segment.start is None else lf.slice(segment.start, segment.n_rows)


def _joined(segments: list[Segment]) -> list[Segment]:
    """Neighbouring unpatched ranges of one blob as one range: a file kept as given is
    read with one scan, not one per piece (each scan reads the file's footer again)."""
    out: list[Segment] = []
    for s in segments:
        last = out[-1] if out else None
        if (
            last is not None
            and s.start is not None
            and last.start is not None
            and not s.patches
            and not last.patches
            and s.blob == last.blob
            and last.start + last.n_rows == s.start
        ):
            out[-1] = Segment(last.n_rows + s.n_rows, s.blob, start=last.start)
        else:
            out.append(s)
    return out


def scan_segments(segments: Iterable[Segment], path_of: Callable[[str], Path]) -> pl.LazyFrame:
    import polars as pl

    segs = _joined(list(segments))
    if all(not s.patches and s.start is None for s in segs):
        return pl.scan_parquet([path_of(s.blob) for s in segs], glob=False)
    frames = []
    for s in segs:
        base = unpatched(s, path_of)
        if s.patches:
            base = _apply_patches(
                base, [pl.scan_parquet(path_of(p), glob=False) for p in s.patches]
            )
        frames.append(base)
    return pl.concat(frames, how="vertical")


def _apply_patches(base: pl.LazyFrame, patches: list[pl.LazyFrame]) -> pl.LazyFrame:
    """Overlay patches in order; each holds new values of its columns at row positions."""
    import polars as pl

    lf = base.with_row_index(ROW)
    for i, patch in enumerate(patches):
        cols = [c for c in patch.collect_schema().names() if c != ROW]
        hit = f"__wb_hit{i}"
        renamed = patch.rename({c: f"{c}__wb_new" for c in cols}).with_columns(
            pl.lit(True).alias(hit)
        )
        lf = (
            lf.join(renamed, on=ROW, how="left", maintain_order="left")
            .with_columns(
                [
                    pl.when(pl.col(hit)).then(pl.col(f"{c}__wb_new")).otherwise(pl.col(c)).alias(c)
                    for c in cols
                ]
            )
            .drop([*(f"{c}__wb_new" for c in cols), hit])
        )
    return lf.drop(ROW)


def segment_frame(segment: Segment, path_of: Callable[[str], Path]) -> pl.DataFrame:
    """A stored segment read whole, its patches applied by writing each one's values at
    its rows: what ``scan_segments`` gives, where its join per patch took three times as
    long (a 2M-row version whose chunks carry four patches each: 0.40 -> 0.12 s). Of a
    table with a column Polars cannot write values into (lists, structs, all nulls),
    the join's way."""
    import polars as pl

    df = unpatched(segment, path_of).collect()
    if any(t.is_nested() or t == pl.Null for t in df.schema.values()):
        return scan_segments([segment], path_of).collect()
    for digest in segment.patches:
        patch = pl.read_parquet(path_of(digest), glob=False)
        at = patch.get_column(ROW)
        df = df.with_columns(
            # a copy is written into: the frame's own column may be shared
            df.get_column(c).clone().scatter(at, patch.get_column(c))
            for c in patch.columns
            if c != ROW
        )
    return df


def content_cuts(
    frames: Iterable[pl.DataFrame],
    rows: int,
    previous: list[tuple[int, int]],
    keep: Callable[[int, pl.DataFrame], Segment | None],
) -> Iterator[tuple[pl.DataFrame, Segment | None]]:
    """Re-cut a stream of frames into pieces of at most ``rows`` rows (see the module's
    docstring), each with the previous version's segment that holds it, reused or
    patched (None: it is new and needs a blob of its own).

    ``previous`` holds each old segment's first-row hash and row count. A piece that
    begins with an old segment's first row is first cut at that segment's length and
    offered to ``keep`` (which reuses or patches the old segment, or says no), so edits
    keep the old boundaries even where they change a boundary row's hash, and appended
    rows leave the old last segment as it was; otherwise, or when ``keep`` says no (rows
    were inserted or deleted in it), the piece is cut by content."""
    import numpy as np
    import polars as pl

    period = np.uint64(max(1, rows // 2))
    least = max(1, rows // 8)
    starts: dict[int, list[int]] = {}
    for i, (h, _) in enumerate(previous):
        starts.setdefault(h, []).append(i)
    last = -1  # the old segment kept last: a repeated first row takes the next one
    refused: set[int] = set()  # old segments ``keep`` said no to: not offered again

    def match(h: int) -> int | None:
        """The old segment that began with this row, else the one after the segment
        kept last (its first row may be the one that was edited)."""
        found = [i for i in starts.get(h, ()) if i not in refused]
        if found:
            return next((i for i in found if i > last), found[0])
        after = last + 1
        return after if after < len(previous) and after not in refused else None

    buf: pl.DataFrame | None = None
    hashes: np.ndarray = np.zeros(0, dtype=np.uint64)

    def cut(eof: bool) -> Iterator[tuple[pl.DataFrame, Segment | None]]:
        nonlocal buf, hashes, last
        while buf is not None and buf.height:
            at = match(int(hashes[0])) if previous else None
            if at is not None and previous[at][1] <= rows:
                n = previous[at][1]
                if n > buf.height and not eof:
                    return  # more rows first
                if n <= buf.height:
                    kept = keep(at, buf.slice(0, n))
                    if kept is not None:
                        last = at
                        yield buf.slice(0, n), kept
                        buf, hashes = buf.slice(n), hashes[n:]
                        continue
                    refused.add(at)
            hits = np.flatnonzero(hashes[least - 1 : rows] % period == 0)
            if hits.size:
                length = int(hits[0]) + least
            elif buf.height >= rows or eof:
                length = min(rows, buf.height)
            else:
                return  # more rows first
            yield buf.slice(0, length), None
            buf, hashes = buf.slice(length), hashes[length:]

    for df in frames:
        if df.height == 0:
            continue
        new = row_hashes(df).to_numpy()
        buf = df if buf is None or not buf.height else pl.concat([buf, df])
        hashes = np.concatenate([hashes, new]) if hashes.size else new
        yield from cut(eof=False)
    yield from cut(eof=True)


def first_row_hashes(segments: list[Segment], path_of: Callable[[str], Path]) -> list[int]:
    """Each segment's first-row hash, as the next version's pieces are matched against:
    the ones kept in the catalog, after checking the first against its row (a Polars
    that hashes otherwise, after an upgrade, would match nothing: then each is read, as
    for a catalog that kept none). Reading every first row took 0.45 s before a
    10M-row Parquet version's 32 pieces could be matched (a row group decoded apiece).
    A hint only: a piece is reused after comparing it with the segment, row by row."""
    kept = [s.first_hash for s in segments]
    if segments and None not in kept and first_row_hash(segments[0], path_of) == kept[0]:
        return [h for h in kept if h is not None]
    return [first_row_hash(s, path_of) for s in segments]


def first_row_hash(segment: Segment, path_of: Callable[[str], Path]) -> int:
    """The hash of a stored segment's first row (patches applied), as content_cuts
    hashes rows."""
    import polars as pl

    # only row 0 of the blob and of each patch: patching the whole segment first cost a
    # join a patch over all its rows, for every segment of the previous version
    first = unpatched(segment, path_of).head(1)
    if segment.patches:
        row0 = [
            pl.scan_parquet(path_of(p), glob=False).filter(pl.col(ROW) == 0)
            for p in segment.patches
        ]
        first = _apply_patches(first, row0)
    return int(row_hashes(first.collect())[0])


def _changes(new: pl.DataFrame, old: pl.DataFrame) -> tuple[pl.Series, list[str]]:
    """Which rows differ, and in which columns (nulls equal nulls, NaN equals NaN)."""
    import polars as pl

    masks = {c: new.get_column(c).ne_missing(old.get_column(c)) for c in new.columns}
    cols = [c for c, m in masks.items() if m.any()]
    if not cols:
        return pl.Series([False] * new.height), []
    rows = pl.DataFrame([masks[c] for c in cols]).select(pl.any_horizontal(pl.all())).to_series()
    return rows, cols


def _patch(piece: pl.DataFrame, rows: pl.Series, cols: list[str]) -> bytes:
    return parquet_bytes(piece.with_row_index(ROW).filter(rows).select([ROW, *cols]))


def kept_piece(
    piece: pl.DataFrame,
    previous: Segment,
    stage: Staging,
    path_of: Callable[[str], Path],
) -> Segment | None:
    """``previous`` reused for ``piece`` when they are equal, or patched when few rows
    differ; None when ``piece`` needs a blob of its own.

    A full patch chain is collapsed into one patch against the base blob (the rows that
    differ from it), so reads stay cheap and disk stays small; only when more than 30%
    of the rows differ from the base is a fresh blob needed."""
    if previous.n_rows != piece.height:
        return None
    old = segment_frame(previous, path_of)
    if old.schema != piece.schema:
        return None
    rows, cols = _changes(piece, old)
    n_changed = int(rows.sum())
    if n_changed == 0:
        return previous
    limit = MAX_PATCH_SHARE * piece.height
    if n_changed <= limit and len(previous.patches) < MAX_PATCHES:
        digest = stage.put_bytes(_patch(piece, rows, cols))
        return Segment(piece.height, previous.blob, (*previous.patches, digest), previous.start)
    if previous.patches:
        rows, cols = _changes(piece, unpatched(previous, path_of).collect())
        if int(rows.sum()) <= limit:
            return Segment(
                piece.height,
                previous.blob,
                (stage.put_bytes(_patch(piece, rows, cols)),),
                previous.start,
            )
    return None


def fresh_piece(piece: pl.DataFrame, stage: Staging) -> Segment:
    return Segment(piece.height, stage.put_bytes(parquet_bytes(piece)))
