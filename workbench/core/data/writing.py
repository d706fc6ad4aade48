"""Writing a new version's rows: read in batches, profiled, cut into content-defined
pieces, each stored anew, reused or patched against the previous version (see
segments.py), or, for a Parquet file kept as given, each a range of the file itself."""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.data import ingest
from workbench.core.data.profile import Profiler
from workbench.core.data.segments import (
    Segment,
    choose_chunk_rows,
    content_cuts,
    first_row_hashes,
    fresh_piece,
    kept_piece,
    row_hashes,
    unpatched,
)
from workbench.core.data.versions import Version, _AlreadyStored, _schema_list

# A Parquet file is stored as given when at least this share of its rows is new: the
# file then costs at most ~1.1x the pieces dedup would write, and its add about half.
KEEP_GIVEN_SHARE = 0.9

if TYPE_CHECKING:
    from collections.abc import Callable

    import polars as pl

    from workbench.core.store.objects import Staging


@contextlib.contextmanager
def settled(
    future: concurrent.futures.Future[str], stop: threading.Event
) -> Iterator[concurrent.futures.Future[str]]:
    """The hash (and copy) of the file, finished before its staging area is removed:
    a copy still writing there could otherwise leave a file behind. An add that fails
    or is interrupted first tells the copy to stop (a large file would take seconds)."""
    try:
        yield future
    except BaseException:
        stop.set()
        raise
    finally:
        concurrent.futures.wait([future])


def write_segments(
    src: ingest.Source,
    previous: Version | None,
    chunk_rows: int | None,
    stage: Staging,
    path_of: Callable[[str], Path],
    infer: int | None,
    known_version: Callable[[], Version | None],
    given: concurrent.futures.Future[str] | None = None,
) -> tuple[pl.Schema, list[Segment], int, dict[str, Any]]:
    """``given``: the file is being copied into ``stage`` (its SHA-256 comes); new
    pieces then wait as ranges of it, and become ranges of the copy or pieces of their
    own once it is known how much of the version is new (``_settle``)."""
    import itertools

    import polars as pl

    if not chunk_rows:
        chunk_rows = choose_chunk_rows(ingest.sample(src, infer))
    schema: pl.Schema | None = None
    prev_segments: list[Segment] = []
    segments: list[Segment] = []
    stream = ingest.batches(src, max(1, chunk_rows // 2), infer)
    first = next(stream, None)
    if first is None:
        return ingest.schema_of(src), [], chunk_rows, {}
    schema = first.schema
    profiler = Profiler(schema)
    if previous is not None and _schema_list(schema) == previous.schema:
        prev_segments = previous.segments
    # each old segment's first row: a piece that begins with it is compared with it
    hashes = first_row_hashes(prev_segments, path_of)
    starts = [(h, s.n_rows) for h, s in zip(hashes, prev_segments, strict=True)]
    # Each batch read is profiled in a second thread while pieces are written: both
    # are polars work that releases the GIL, and alone neither keeps two cores busy.
    # One batch at most is in flight, so memory stays bounded.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as profiling:
        pending: concurrent.futures.Future[None] | None = None

        def profile(frames: list[pl.DataFrame]) -> None:
            nonlocal pending
            if pending is not None:
                pending.result()
            pending = profiling.submit(profiler.update, pl.concat(frames, rechunk=False))

        def profiled(frames: Iterator[pl.DataFrame]) -> Iterator[pl.DataFrame]:
            """Batches are read at half chunk_rows (a piece's leftover rows keep
            their batch alive: at chunk_rows the peak grew 15% at 10M rows; at a
            quarter the add took 8% longer) and profiled chunk_rows at a time
            (each update has a fixed cost)."""
            group: list[pl.DataFrame] = []
            for df in frames:
                if df.schema != schema:
                    raise ingest.NeedsFullInference
                group.append(df)
                if sum(g.height for g in group) >= chunk_rows:
                    profile(group)
                    group = []
                yield df
            if group:
                profile(group)

        pieces = content_cuts(
            profiled(itertools.chain([first], stream)),
            chunk_rows,
            starts,
            lambda at, piece: kept_piece(piece, prev_segments[at], stage, path_of),
        )
        offset = 0
        firsts: list[int] = []  # each piece's first-row hash, kept for the next version
        for piece, kept in pieces:
            if (stored := known_version()) is not None:
                raise _AlreadyStored(stored)  # same bytes as a stored version: stop
            firsts.append(int(row_hashes(piece.head(1))[0]))
            if kept is None and given is not None:  # a range of the copy, named later
                segments.append(Segment(piece.height, "", start=offset))
            else:
                segments.append(kept or fresh_piece(piece, stage))
            offset += piece.height
        if pending is not None:
            pending.result()
    if given is not None:
        segments = _settle(segments, given.result(), stage)
    segments = [replace(s, first_hash=h) for s, h in zip(segments, firsts, strict=True)]
    return schema, segments, chunk_rows, profiler.result()


def _settle(segments: list[Segment], digest: str, stage: Staging) -> list[Segment]:
    """The new pieces (blob "") as ranges of the file's copy when nearly all the version
    is new (a first version, a batch of new rows): the file is stored as given. Else
    as pieces of their own, read back from the copy (the very bytes hashed), and the
    copy is dropped: a few new pieces do not keep a whole file."""
    new = sum(s.n_rows for s in segments if not s.blob)
    if new >= KEEP_GIVEN_SHARE * sum(s.n_rows for s in segments):
        return [s if s.blob else Segment(s.n_rows, digest, start=s.start) for s in segments]
    if digest in stage.new:
        copy = stage.area / digest
    else:  # the store had these bytes already (another dataset's): read only if intact
        stage.store.check({digest: "the stored copy of this file"}, {digest: stage.sums[digest]})
        copy = stage.store.path(digest)
    out = [
        s
        if s.blob
        else fresh_piece(unpatched(replace(s, blob=digest), lambda _: copy).collect(), stage)
        for s in segments
    ]
    if all(digest not in s.digests for s in out):
        stage.discard(digest)
    return out
