"""Versioning a Parquet file against its floor, measured in one run.

    python bench/parquet_bench.py [--rows 10000000] [--repeat 3]

The table of datasets_bench.py (12 columns: ids, a timestamp, amounts, floats, three
categories, flags), generated on the fly and written as one Parquet file (Polars'
default zstd). Taking turns, --repeat times each (the fastest try counts: one try on
this VM can be 10-30% slower than the next):

- workbench: `workbench data add table.parquet` into a fresh project (read, profile,
  cut into content-defined chunks, which for a first version are ranges of the file
  kept as given: copied and hashed in one pass; record the version);
- the floor the issue names: a process that reads the file with Polars and SHA-256s
  its bytes (the version's id);
- writing the table once as zstd-1 Parquet (Polars), what storing any columnar copy
  costs, which the floor leaves out.

All with bytecode compiled (PYTHONDONTWRITEBYTECODE is dropped). Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from datasets_bench import generate, timed, write_result  # noqa: E402

FLOOR = (
    "import hashlib, sys, polars as pl\n"
    "pl.read_parquet(sys.argv[1])\n"
    "h = hashlib.sha256()\n"
    "with open(sys.argv[1], 'rb') as f:\n"
    "    while block := f.read(1 << 20):\n"
    "        h.update(block)\n"
)
WRITE = (
    "import sys, polars as pl\n"
    "pl.read_parquet(sys.argv[1]).write_parquet(sys.argv[2], compression='zstd',"
    " compression_level=1)\n"
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    data = HERE / ".data" / "parquet"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    wb = [sys.executable, "-m", "workbench"]
    try:
        table = data / "table.parquet"
        generate(args.rows).write_parquet(table)
        subprocess.run(["cat", str(table)], stdout=subprocess.DEVNULL, check=True)
        tries: dict[str, list[tuple[float, float]]] = {"floor": [], "write": [], "workbench": []}
        for _ in range(args.repeat):
            tries["floor"].append(timed([sys.executable, "-c", FLOOR, str(table)])[:2])
            out = data / "copy.parquet"
            tries["write"].append(timed([sys.executable, "-c", WRITE, str(table), str(out)])[:2])
            out.unlink(missing_ok=True)
            proj = data / "proj"
            shutil.rmtree(proj, ignore_errors=True)
            subprocess.run([*wb, "init", str(proj)], check=True, capture_output=True)
            tries["workbench"].append(
                timed([*wb, "--project", str(proj), "data", "add", str(table), "-n", "t"])[:2]
            )
        (floor_s, floor_mb), (write_s, _), (wb_s, wb_mb) = (min(tries[k]) for k in tries)
        row = {
            "rows": args.rows,
            "parquet_bytes": table.stat().st_size,
            "workbench_s": wb_s,
            "workbench_peak_mb": wb_mb,
            "floor_read_sha256_s": floor_s,
            "floor_peak_mb": floor_mb,
            "write_zstd1_copy_s": write_s,
            "ratio_to_floor": wb_s / floor_s,
            "tries_s": {k: [t for t, _ in v] for k, v in tries.items()},
        }
        print(json.dumps(row, indent=2))
        write_result("parquet", row)
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
