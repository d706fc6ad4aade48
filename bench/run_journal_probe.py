"""What would a run journal save? A measurement to decide on, not a feature.

    python bench/run_journal_probe.py [--runs 100]

The tracking goal of 50x MLflow's log_batch on 1M points (100 runs x 10 metrics x
1,000 steps) is held back by the two catalog transactions of each run (start and
end), not by the points. This probe times, in one run, on fresh projects:

1. today's path: ``runs.start``, ten ``log_curve`` calls, ``run.end`` (a catalog write
   at the start, a fold of the run's files at the end);
2. a journal: each run writes only its own folder (meta, params, points as today's
   text lines, an end marker, each fsynced) and one transaction then folds every run
   at once, as a reader or the process's exit would; the fold is timed with it.

The journal is simulated here with the catalog's own ``store_points`` and audit; it is
not wired into workbench. Not in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import polars as pl

from workbench.core import audit
from workbench.core.project import Project
from workbench.core.tracking import environment, read_points, store_points

METRICS, STEPS = 10, 1000


def todays_path(root: Path, runs: int, values: np.ndarray) -> float:
    project, _ = Project.init(root)
    t = time.perf_counter()
    for i in range(runs):
        run = project.runs.start(experiment="probe", name=f"r{i}")
        run.log_params({"lr": 0.1, "i": i})
        for k in range(METRICS):
            run.log_curve(f"m{k}", values)
        run.end()
    return time.perf_counter() - t


def _durable(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def journal(root: Path, runs: int, values: np.ndarray) -> tuple[float, float]:
    project, _ = Project.init(root)
    folder = project.store_dir / "runs"
    env = environment()
    ids = []
    t = time.perf_counter()
    for i in range(runs):
        rid = uuid.uuid4().hex
        ids.append(rid)
        d = folder / rid
        d.mkdir(parents=True)
        _durable(d / "run.json", json.dumps({"experiment": "probe", "name": f"r{i}", "env": env}))
        _durable(d / "params.json", json.dumps({"lr": "0.1", "i": str(i)}))
        ts = time.time_ns() // 1_000_000
        _durable(
            d / "metrics.tsv",
            "".join(
                f"{json.dumps(f'm{k}')}\t{s}\t{v!r}\t{ts}\n"
                for k in range(METRICS)
                for s, v in enumerate(values.tolist())
            ),
        )
        _durable(d / "end.json", json.dumps({"status": "finished"}))
    loop = time.perf_counter() - t
    points = pl.concat(
        [read_points(folder / r / "metrics.tsv").with_columns(run_id=pl.lit(r)) for r in ids]
    ).select("run_id", "key", "step", "value", "ts")
    now = audit.now()
    frame = pl.DataFrame(
        {
            "id": ids,
            "experiment": "probe",
            "name": [f"r{i}" for i in range(runs)],
            "status": "finished",
            "start_time": now,
            "end_time": now,
            "environment": json.dumps(env),
        }
    )
    with project.catalog.write() as con:
        con.execute("INSERT OR IGNORE INTO experiments VALUES ('probe', ?)", [now])
        con.register("wb_runs", frame.to_arrow())
        con.execute(
            "INSERT INTO runs (id, experiment, name, status, start_time, end_time, environment) "
            "SELECT * FROM wb_runs"
        )
        con.execute("INSERT INTO params SELECT id, 'lr', '0.1' FROM wb_runs")
        store_points(con, points)
        for r in ids:
            audit.append(con, "run.start", f"run:{r}", {})
            audit.append(con, "run.end", f"run:{r}", {"status": "finished"})
    return loop, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args()
    values = np.random.default_rng(0).random(STEPS)
    tmp = Path(tempfile.mkdtemp(prefix="wb-journal-"))
    try:
        now_s = todays_path(tmp / "today", args.runs, values)
        loop_s, journal_s = journal(tmp / "journal", args.runs, values)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    points = args.runs * METRICS * STEPS
    print(f"{points:,} points in {args.runs} runs")
    print(f"today's path:      {now_s:6.2f} s ({now_s / args.runs * 1000:.0f} ms a run)")
    print(f"journal, all:      {journal_s:6.2f} s (runs {loop_s:.2f} s + one fold)")
    print(f"journal speed-up:  {now_s / journal_s:6.2f}x")


if __name__ == "__main__":
    main()
