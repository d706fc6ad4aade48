"""A one-row insert in the middle of a table: what each way of storing it costs on disk.

    python bench/insert_bench.py [--rows 10000000]

pyarrow >= 21 writes Parquet with content-defined chunking (CDC); workbench cuts a
version's segments by content (core/data/segments.py). For a table (the datasets
bench's columns, ROWS rows: 10M is 0.94 GB as CSV) and the same table with one row
inserted half-way, each figure is "the two versions on disk / one version on disk"
(1.0 would be a free insert, 2.0 a full second copy):

- workbench: `workbench data add` of both Parquet files; the growth of the project's
  object store over the first version's (with segments cut at fixed row counts, as
  before 2026-12-04, this was 1.53 at 10M rows: every segment after the insert shifted);
- pyarrow CDC: both written with `use_content_defined_chunking=True`, then stored in a
  byte-level content-defined chunk store (what Hugging Face's Xet does with them; ours
  is a windowed additive hash, 64 KiB average chunks, 16-256 KiB), deduplicated by
  SHA-256; and the same store fed plain Parquet, to see what CDC adds.

Also the time to write each, for the cost side. Data is generated under bench/.data
(deleted afterwards). Not run in CI.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from datasets_bench import generate, timed, write_result  # noqa: E402

AVG_BITS = 16  # 64 KiB average byte chunks
MIN_CHUNK, MAX_CHUNK = 16 << 10, 256 << 10
WINDOW = 48


def byte_chunks(data: bytes) -> list[bytes]:
    """Content-defined chunks of ``data``: a boundary after byte i when the sum of a
    random 64-bit value per byte over the last WINDOW bytes has its low AVG_BITS bits
    zero (a rolling hash: the same bytes give the same boundaries wherever they sit)."""
    gear = np.random.default_rng(7).integers(0, 2**63, 256, dtype=np.uint64) * np.uint64(2) + 1
    b = np.frombuffer(data, dtype=np.uint8)
    found = []
    block = 1 << 25  # 32 MB of bytes (256 MB of sums) at a time
    for start in range(0, b.size, block):
        lo = max(0, start - WINDOW)
        sums = np.cumsum(gear[b[lo : start + block]], dtype=np.uint64)
        window = sums.copy()
        window[WINDOW:] -= sums[:-WINDOW]
        hits = np.flatnonzero((window & np.uint64((1 << AVG_BITS) - 1)) == 0) + lo + 1
        found.append(hits[hits > max(start, WINDOW)])
    candidates = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
    cuts, last = [], 0
    for c in candidates.tolist():
        while c - last > MAX_CHUNK:
            last += MAX_CHUNK
            cuts.append(last)
        if c - last >= MIN_CHUNK:
            cuts.append(c)
            last = c
    while len(data) - last > MAX_CHUNK:
        last += MAX_CHUNK
        cuts.append(last)
    edges = [0, *cuts, len(data)] if not cuts or cuts[-1] != len(data) else [0, *cuts]
    return [data[a:z] for a, z in itertools.pairwise(edges) if z > a]


def dedup_ratio(first: list[bytes], second: list[bytes]) -> float:
    """Both versions' unique bytes over the first's."""
    seen = {hashlib.sha256(c).digest(): len(c) for c in first}
    one = sum(seen.values())
    for c in second:
        seen.setdefault(hashlib.sha256(c).digest(), len(c))
    return sum(seen.values()) / one


def store_size(project: Path) -> int:
    objects = project / ".workbench" / "objects"
    return sum(p.stat().st_size for p in objects.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    args = ap.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    data = HERE / ".data" / "insert"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    try:
        v1 = generate(args.rows)
        extra = generate(1, seed=99).with_columns(pl.lit(-1, dtype=pl.Int64).alias("id"))
        half = args.rows // 2
        v2 = pl.concat([v1.head(half), extra, v1.slice(half)])
        out: dict[str, object] = {"rows": args.rows, "inserted_at": half}

        # workbench today
        p1, p2 = data / "v1.parquet", data / "v2.parquet"
        v1.write_parquet(p1)
        v2.write_parquet(p2)
        proj = data / "proj"
        wb = [sys.executable, "-m", "workbench", "--project", str(proj)]
        timed([sys.executable, "-m", "workbench", "init", str(proj)])
        s1, _, _ = timed([*wb, "data", "add", str(p1), "--name", "t"])
        one = store_size(proj)
        s2, _, _ = timed([*wb, "data", "add", str(p2), "--name", "t"])
        out["workbench"] = {
            "ratio": store_size(proj) / one,
            "version_bytes": one,
            "add_s": s1,
            "insert_add_s": s2,
        }

        # pyarrow: plain and CDC Parquet, in a byte-level CDC store
        table1, table2 = v1.to_arrow(), v2.to_arrow()
        for name, cdc in (("pyarrow_plain", False), ("pyarrow_cdc", True)):
            files = []
            t = time.perf_counter()
            for i, table in enumerate((table1, table2)):
                path = data / f"{name}{i}.parquet"
                pq.write_table(table, path, compression="zstd", use_content_defined_chunking=cdc)
                files.append(path.read_bytes())
            write_s = (time.perf_counter() - t) / 2
            chunks = [byte_chunks(f) for f in files]
            out[name] = {
                "ratio": dedup_ratio(*chunks),
                "version_bytes": len(files[0]),
                "write_s": write_s,
            }

        print(json.dumps(out, indent=2))
        write_result("insert", out)
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
