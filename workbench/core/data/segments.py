"""How a dataset version is stored: an ordered list of segments.

A segment is a content-addressed Parquet blob plus an optional chain of small
*patches* (the rows that changed, with their position). A new version is cut
at the previous version's segment boundaries and each piece is compared with
the segment it replaces:

- unchanged                    -> the old segment is reused (no bytes written);
- a few rows changed (<= 30%)  -> a patch with those rows' changed cells is added to the chain
                                  (a full chain of 8 is collapsed into one patch);
- otherwise, or a new tail     -> a fresh blob.

So appending rows or editing a few rows stores only what changed, where DVC
stores a full copy per version. Rows inserted or deleted in the middle shift
every later boundary and cost a fresh copy of the rest (a known limit).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

    from workbench.core.store.objects import Staging

ROW = "__wb_row"
MAX_PATCHES = 8
MAX_PATCH_SHARE = 0.3
TARGET_CHUNK_BYTES = 48 << 20


@dataclass(frozen=True)
class Segment:
    n_rows: int
    blob: str
    patches: tuple[str, ...] = field(default=())

    @property
    def digests(self) -> tuple[str, ...]:
        return (self.blob, *self.patches)


def parquet_bytes(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    # zstd level 1: ~25% faster to write than the default level for ~20% more bytes.
    df.write_parquet(buf, compression="zstd", compression_level=1, statistics=True)
    return buf.getvalue()


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
    """Each object of the chosen segments, with what it is (for a one-line refusal)."""
    n, out = len(segments), {}
    for i in which:
        out[segments[i].blob] = f"{owner} (chunk {i + 1} of {n})"
        for p in segments[i].patches:
            out.setdefault(p, f"{owner} (a patch of chunk {i + 1} of {n})")
    return out


def scan_segments(segments: Iterable[Segment], path_of: Callable[[str], Path]) -> pl.LazyFrame:
    import polars as pl

    segs = list(segments)
    if all(not s.patches for s in segs):
        return pl.scan_parquet([path_of(s.blob) for s in segs])
    frames = []
    for s in segs:
        base = pl.scan_parquet(path_of(s.blob))
        if s.patches:
            base = _apply_patches(base, [pl.scan_parquet(path_of(p)) for p in s.patches])
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


def rechunk(frames: Iterable[pl.DataFrame], sizes: Iterator[int]) -> Iterator[pl.DataFrame]:
    """Re-cut a stream of frames into pieces of the given sizes (last may be short)."""
    import polars as pl

    buf: list[pl.DataFrame] = []
    have = 0
    want = next(sizes)
    for df in frames:
        if df.height == 0:
            continue
        buf.append(df)
        have += df.height
        while have >= want:
            joined = pl.concat(buf) if len(buf) > 1 else buf[0]
            yield joined.slice(0, want)
            rest = joined.slice(want)
            buf = [rest] if rest.height else []
            have = rest.height
            want = next(sizes)
    if have:
        yield pl.concat(buf) if len(buf) > 1 else buf[0]


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


def store_piece(
    piece: pl.DataFrame,
    previous: Segment | None,
    stage: Staging,
    path_of: Callable[[str], Path],
) -> Segment:
    """Store one piece of a new version, reusing or patching ``previous`` when it can.

    A full patch chain is collapsed into one patch against the base blob (the
    rows that differ from it), so reads stay cheap and disk stays small; only
    when more than 30% of the rows differ from the base is a fresh blob written.
    """
    if previous is not None and previous.n_rows == piece.height:
        old = scan_segments([previous], path_of).collect()
        rows, cols = _changes(piece, old)
        n_changed = int(rows.sum())
        if n_changed == 0:
            return previous
        limit = MAX_PATCH_SHARE * piece.height
        if n_changed <= limit and len(previous.patches) < MAX_PATCHES:
            digest = stage.put_bytes(_patch(piece, rows, cols))
            return Segment(piece.height, previous.blob, (*previous.patches, digest))
        if previous.patches:
            import polars as pl

            rows, cols = _changes(piece, pl.read_parquet(path_of(previous.blob)))
            if int(rows.sum()) <= limit:
                return Segment(
                    piece.height, previous.blob, (stage.put_bytes(_patch(piece, rows, cols)),)
                )
    return Segment(piece.height, stage.put_bytes(parquet_bytes(piece)))
