"""Small projects stay instant: each read-only command on the demo project against the
floor of any command here, in the same run.

    python bench/small_bench.py [--repeat 7] [--limit 1.5]

Builds the flights demo (`workbench demo DIR --no-ui`, not timed), then times each
command below as its own process, the median of ``--repeat`` runs, against the floor
measured the same way in between: `python -c "import duckdb, polars"` (a command that
reads the catalog and prints a table cannot start faster). Then a small training run:
`workbench train small@1 -t y` on 300 generated rows (20 numbers, 5 categories, a
binary target) against a plain script that fits the same LightGBM model on the same
file (Polars to pandas, categories as pandas categories, a random fifth held out,
validation AUC), in turns. Exits 1, naming the command, when one takes more than
``--limit`` times its floor: a listing that starts importing scikit-learn or LightGBM
(2 s on 2 cores), or tracking that starts costing more than the fit, shows up here. Not run in CI (timings
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


# what a user would write to fit the model `workbench train` fits, on the same file
PLAIN_TRAIN = """
import sys
import pandas as pd
import polars as pl
import lightgbm as lgb
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
x = pl.read_parquet(sys.argv[1]).to_pandas()
y = x.pop("y")
for c in x.columns:
    if not pd.api.types.is_numeric_dtype(x[c]):
        x[c] = x[c].astype("category")
xt, xv, yt, yv = train_test_split(x, y, test_size=0.2, random_state=0)
model = lgb.LGBMClassifier(verbose=-1).fit(xt, yt, eval_X=(xv,), eval_y=(yv,))
print(roc_auc_score(yv, model.predict_proba(xv)[:, 1]))
"""


def small_table(path: Path) -> None:
    """300 rows: 20 numbers, 5 categories and a target that depends on some of them."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(0)
    cols: dict[str, object] = {f"n{i:02d}": rng.normal(size=300) for i in range(20)}
    cols |= {f"c{i}": rng.choice(["a", "b", "c", "d"], 300) for i in range(5)}
    signal = cols["n00"] + 0.5 * cols["n01"] + (cols["c0"] == "a")  # type: ignore[operator]
    cols["y"] = (signal + rng.normal(size=300) > 0.5).astype(np.int64)
    pl.DataFrame(cols).write_parquet(path)


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
        # the console script pip installs, as a user types it: not `python -m workbench`,
        # whose three extra frames of runpy put the hot loops of a training run on a
        # boundary of CPython 3.11's frame-stack chunks, each call then mapping and
        # unmapping one (50,000 munmap calls, +0.25 s of system time training 300 rows)
        script = Path(sys.executable).parent / "workbench"
        wb = [str(script)] if script.exists() else [sys.executable, "-m", "workbench"]
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

        table = work / "small.parquet"
        small_table(table)
        subprocess.run([*wb, "data", "add", str(table), "--name", "small"], cwd=demo,
                       check=True, capture_output=True)  # fmt: skip
        train_cmd = [*wb, "train", "small@1", "-t", "y"]
        plain_cmd = [sys.executable, "-c", PLAIN_TRAIN, str(table)]
        seconds(train_cmd, demo), seconds(plain_cmd, demo)  # warm LightGBM's files
        trains: list[float] = []
        plains: list[float] = []
        for _ in range(args.repeat):
            plains.append(seconds(plain_cmd, demo))
            trains.append(seconds(train_cmd, demo))
        train = {
            "rows": 300,
            "median_s": round(statistics.median(trains), 3),
            "plain_script_s": round(statistics.median(plains), 3),
            "ratio": round(statistics.median(trains) / statistics.median(plains), 2),
        }
        result = {"floor_s": round(floor, 3), "limit": args.limit, "commands": rows,
                  "train": train}  # fmt: skip
        print(json.dumps(result, indent=2))
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / "small.json").write_text(json.dumps(result, indent=2) + "\n")
        slow = [f"{n} ({r['ratio']}x)" for n, r in rows.items() if r["ratio"] > args.limit]
        if train["ratio"] > args.limit:
            slow.append(f"train of 300 rows ({train['ratio']}x the plain script)")
        if slow:
            sys.exit(f"slower than {args.limit}x the floor ({floor:.2f} s): {', '.join(slow)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
