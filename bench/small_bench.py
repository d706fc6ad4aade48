"""Small projects stay instant: each read-only command on the demo project against the
floor of any command here, in the same run.

    python bench/small_bench.py [--repeat 7] [--limit 1.5]

Builds the flights demo (`workbench demo DIR --no-ui`, not timed), then times each
command below as its own process, the median of ``--repeat`` runs, against the floor
measured the same way in between: `python -c "import duckdb, polars"` (a command that
reads the catalog and prints a table cannot start faster). Exits 1, naming the command,
when one takes more than ``--limit`` times the floor: a listing that starts importing
scikit-learn or LightGBM (2 s on 2 cores) shows up here first. Not run in CI (timings
on a shared runner say little); results in bench/results/small.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

COMMANDS = [
    ["data", "list"],
    ["runs", "list"],
    ["model", "list"],
    ["audit"],
    ["pipeline", "list", "monthly"],
    ["drift", "list"],
    ["config", "check"],
]


def seconds(cmd: list[str], cwd: Path) -> float:
    """Wall time of one process (not datasets_bench.timed: GNU time's 10 ms steps are
    coarse for a 0.3 s command, and peak memory is not the question here)."""
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--limit", type=float, default=1.5)
    args = ap.parse_args()
    # as installed: pip compiles bytecode; an editable checkout under this variable
    # would compile every workbench module on every run (the floor compiles nothing)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    work = Path(tempfile.mkdtemp(prefix="wb-small-"))
    try:
        demo = work / "demo"
        subprocess.run([sys.executable, "-m", "workbench", "demo", str(demo), "--no-ui"],
                       check=True, capture_output=True)  # fmt: skip
        floor_cmd = [sys.executable, "-c", "import duckdb, polars"]
        wb = [sys.executable, "-m", "workbench"]
        floors: list[float] = []
        times: dict[str, list[float]] = {" ".join(c): [] for c in COMMANDS}
        for cmd in COMMANDS:  # warm the page cache and the catalog's first open
            seconds([*wb, *cmd], demo)
        for _ in range(args.repeat):
            for cmd in COMMANDS:
                floors.append(seconds(floor_cmd, demo))
                times[" ".join(cmd)].append(seconds([*wb, *cmd], demo))
        floor = statistics.median(floors)
        rows = {
            name: {"median_s": round(statistics.median(t), 3),
                   "ratio": round(statistics.median(t) / floor, 2)}
            for name, t in times.items()
        }  # fmt: skip
        result = {"floor_s": round(floor, 3), "limit": args.limit, "commands": rows}
        print(json.dumps(result, indent=2))
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / "small.json").write_text(json.dumps(result, indent=2) + "\n")
        slow = [n for n, r in rows.items() if r["ratio"] > args.limit]
        if slow:
            sys.exit(f"slower than {args.limit}x the floor ({floor:.2f} s): {', '.join(slow)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
