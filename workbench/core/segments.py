"""How a dataset version is stored: an ordered list of segments.

A segment is a content-addressed Parquet blob plus an optional chain of small
*patches* (the rows that changed, with their position). A new version is cut
at the previous version's segment boundaries and each piece is compared with
the segment it replaces:

- unchanged                    -> the old segment is reused (no bytes written);
- a few rows changed (<= 30%)  -> a patch with only those rows is added to the chain;
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

    from workbench.core.objects import Staging

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
    df.write_parquet(buf, compression="zstd", statistics=True)
    return buf.getvalue()


def choose_chunk_rows(sample: pl.DataFrame) -> int:
    """Rows per chunk so that one chunk is ~48 MB in memory (a power of two)."""
    per_row = max(1, sample.estimated_size() // max(1, sample.height))
    rows = max(1024, min(1 << 20, TARGET_CHUNK_BYTES // per_row))
    return 1 << (rows.bit_length() - 1)


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
    import polars as pl

    latest = (
        pl.concat([p.with_columns(pl.lit(i).alias("__wb_lvl")) for i, p in enumerate(patches)])
        .sort([ROW, "__wb_lvl"])
        .unique(subset=[ROW], keep="last", maintain_order=True)
        .drop("__wb_lvl")
    )
    indexed = base.with_row_index(ROW)
    kept = indexed.join(latest.select(ROW), on=ROW, how="anti")
    return pl.concat([kept, latest], how="vertical").sort(ROW).drop(ROW)


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


def _changed_rows(new: pl.DataFrame, old: pl.DataFrame) -> pl.Series:
    import polars as pl

    masks = [new.get_column(c).ne_missing(old.get_column(c)) for c in new.columns]
    return pl.DataFrame(masks).select(pl.any_horizontal(pl.all())).to_series()


def store_piece(
    piece: pl.DataFrame,
    previous: Segment | None,
    stage: Staging,
    path_of: Callable[[str], Path],
) -> Segment:
    """Store one piece of a new version, reusing or patching ``previous`` when it can."""
    if previous is not None and previous.n_rows == piece.height:
        old = scan_segments([previous], path_of).collect()
        changed = _changed_rows(piece, old)
        n_changed = int(changed.sum())
        if n_changed == 0:
            return previous
        if n_changed <= MAX_PATCH_SHARE * piece.height and len(previous.patches) < MAX_PATCHES:
            patch = piece.with_row_index(ROW).filter(changed)
            digest = stage.put_bytes(parquet_bytes(patch))
            return Segment(piece.height, previous.blob, (*previous.patches, digest))
    return Segment(piece.height, stage.put_bytes(parquet_bytes(piece)))
