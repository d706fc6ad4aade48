"""A run's points file (``runs/<id>/points.bin``): the format a live run appends to and
every reader and the journal fold read back, and how points land in the catalog.

Blocks of a header (magic, points, number of the first key this block declares, bytes
of those keys), the new keys as a JSON list, then the points as four native-order
arrays: key number (u4), step (i8), value (f8), time in ms (i8). A block torn by a kill
is skipped; every block before it is whole. docs/storage.md describes it for readers
outside Python.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

POINTS_FILE = "points.bin"
POINTS_MAGIC = b"WBP1"
BLOCK = struct.Struct("<4sIII")


def store_points(con: duckdb.DuckDBPyConnection, frame: Any) -> None:
    """Insert metric points (run_id, key, step, value, ts) and their per-key summary.

    The summary (last value by step then time, min/max without NaN, mean of finite
    values, count) is what filters and ordering read, so every writer of points must
    compute it the same way: runs as they end, and imported histories.
    """
    con.register("wb_points", frame.to_arrow())
    con.execute("INSERT INTO metrics SELECT run_id, key, step, value, ts FROM wb_points")
    con.execute(
        """
        INSERT INTO metric_summary
        SELECT run_id, key, last(value ORDER BY step, ts), max(step),
               min(value) FILTER (WHERE NOT isnan(value)),
               max(value) FILTER (WHERE NOT isnan(value)),
               avg(value) FILTER (WHERE isfinite(value)), count(*)
        FROM wb_points GROUP BY run_id, key
        """
    )
    con.unregister("wb_points")


def _empty_points() -> Any:
    import polars as pl

    return pl.DataFrame(
        schema={"key": pl.String, "step": pl.Int64, "value": pl.Float64, "ts": pl.Datetime("ms")}
    )


def read_points(run_dir: Path) -> Any:
    """A run's metric points as a frame (key, step, value, ts), or None without a file.

    A block cut short (the process was killed while writing it) ends the read: every
    block before it is whole, since blocks are only ever appended. Runs written before
    the binary file keep their text file, ``metrics.tsv``, which is read as it was.
    """
    import numpy as np
    import polars as pl

    try:
        data = (run_dir / POINTS_FILE).read_bytes()
    except FileNotFoundError:
        return _read_points_tsv(run_dir / "metrics.tsv")
    except OSError:
        return None
    names: list[str] = []
    parts: list[tuple[np.ndarray, ...]] = []
    pos, size = 0, len(data)
    while pos + BLOCK.size <= size:
        magic, n, first, klen = BLOCK.unpack_from(data, pos)
        body = pos + BLOCK.size
        stop = body + klen + 28 * n
        if magic != POINTS_MAGIC or first != len(names) or stop > size:
            break  # torn (or foreign) from here on
        if klen:
            names += json.loads(data[body : body + klen])
        at = body + klen
        kix = np.frombuffer(data, "=u4", n, at)
        at += 4 * n
        steps = np.frombuffer(data, "=i8", n, at)
        values = np.frombuffer(data, "=f8", n, at + 8 * n)
        times = np.frombuffer(data, "=i8", n, at + 16 * n)
        if n and int(kix.max()) >= len(names):
            break
        parts.append((kix, steps, values, times))
        pos = stop
    if not parts:
        return _empty_points()
    kix, steps, values, times = (np.concatenate(c) for c in zip(*parts, strict=True))
    return pl.DataFrame(
        {
            "key": pl.Series(names, dtype=pl.String).gather(kix),
            "step": steps,
            "value": values,
            "ts": pl.Series(times).cast(pl.Datetime("ms")),
        }
    )


def _read_points_tsv(path: Path) -> Any:
    """The text points file of runs written by earlier builds of 0.1: a torn last line
    is ignored."""
    import polars as pl

    try:
        data = path.read_bytes()
    except OSError:
        return None
    end = data.rfind(b"\n")
    if end < 0:
        return _empty_points()
    raw = pl.read_csv(
        data[: end + 1],
        separator="\t",
        has_header=False,
        quote_char=None,
        new_columns=["key", "step", "value", "ts"],
        schema_overrides={"key": pl.String, "step": pl.Int64, "value": pl.String, "ts": pl.Int64},
    )
    keys = {k: json.loads(k) for k in raw["key"].unique().to_list()}
    return raw.select(
        pl.col("key").replace_strict(keys, return_dtype=pl.String),
        "step",
        pl.col("value").cast(pl.Float64),
        pl.col("ts").cast(pl.Datetime("ms")),
    )
