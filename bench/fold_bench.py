"""Folding a served model's prediction log into the catalog, against its parse floors.

    python bench/fold_bench.py [--requests 100000] [--batches 200] [--tries 3]

Generated logs in the very format `workbench serve` writes (``request_line``): REQUESTS
one-row requests sent as a list of records (what most clients send), and BATCHES
requests of 1,000 rows sent as columns (a batch, or a CSV body); 13 inputs of mixed
types and a classifier's three outputs per row. Each fold runs in-process on a fresh
project (median of TRIES), and is timed until its transaction is committed: requests and
predictions queryable in SQL.

Floors, in the same run, on the same file: DuckDB's ``read_json`` of the lines into a
table (what any fold must parse), and Python's ``json.loads`` of each line (where a
Python fold starts, before a row is built). Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from datasets_bench import write_result  # noqa: E402

from workbench.core.models.prediction_log import encode, request_line  # noqa: E402
from workbench.core.project import Project  # noqa: E402

CARRIERS = ["AA", "B6", "DL", "EV", "UA", "US", "WN", "9E"]


def record(i: int) -> dict[str, object]:
    return {
        "date": f"2013-12-{1 + i % 28:02d}", "month": 12, "weekday": 1 + i % 7,
        "sched_hour": 5 + i % 18, "carrier": CARRIERS[i % 8], "origin": "JFK",
        "dest": "MIA", "distance": 500 + i % 2000, "temp": 30 + (i % 400) / 10,
        "humid": 40 + (i % 500) / 10, "wind_speed": (i % 170) / 10 + 0.004679,
        "precip": 0.0, "visib": 10.0,
    }  # fmt: skip


def answer(i: int) -> dict[str, object]:
    p = (i % 1000) / 1000
    return {"prediction": int(p > 0.5), "proba_0": 1 - p, "proba_1": p}


def write_log(folder: Path, requests: int, batches: int) -> Path:
    """One log file of a server that has moved on (its pid is not alive)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "20261206T000000-999999999-abcdef12-00000.jsonl"
    start = datetime.now(UTC) - timedelta(days=1)
    with open(path, "wb") as out:
        for i in range(requests):
            ts = (start + timedelta(milliseconds=i)).isoformat()
            out.write(encode({"ts": ts, "id": f"r{i}", "status": 200, "latency_ms": 2.0,
                              "rows": 1, "model": "m", "version": 1, "inputs": [record(i)],
                              "outputs": [answer(i)]}))  # fmt: skip
        rows = range(1000)
        recs = [record(i) for i in rows]
        columns = {k: [r[k] for r in recs] for k in recs[0]}
        outputs = [answer(i) for i in rows]
        for b in range(batches):
            out.write(request_line(f"b{b}", 200, 20.0, 1000, "m", 1, inputs=columns,
                                   outputs=outputs))  # fmt: skip
    return path


def fold_once(template: Path, work: Path) -> tuple[float, int, int]:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(template, work)
    project = Project(work)
    started = time.perf_counter()
    done = project.fold_predictions()
    return time.perf_counter() - started, done.requests, done.predictions


def floors(log: Path) -> tuple[float, float]:
    import duckdb

    con = duckdb.connect()
    source = str(log).replace("'", "''")
    started = time.perf_counter()
    con.execute(
        f"CREATE TABLE t AS SELECT * FROM read_json('{source}', format='newline_delimited', "
        "records=true, columns={ts: 'VARCHAR', id: 'VARCHAR', status: 'INTEGER', "
        "latency_ms: 'DOUBLE', rows: 'BIGINT', model: 'VARCHAR', version: 'INTEGER', "
        "inputs: 'JSON', outputs: 'JSON'})"
    )
    duck = time.perf_counter() - started
    started = time.perf_counter()
    with open(log, "rb") as f:
        for line in f:
            json.loads(line)
    return duck, time.perf_counter() - started


def case(root: Path, name: str, requests: int, batches: int, tries: int) -> dict[str, object]:
    template = root / f"{name}-template"
    Project.init(template)
    log = write_log(template / ".workbench" / "serving", requests, batches)
    times, got = [], (0, 0)
    duck, loads = [], []
    for _ in range(tries):  # the fold and its floors take turns
        seconds, *counts = fold_once(template, root / name)
        times.append(seconds)
        got = (counts[0], counts[1])
        d, j = floors(log)
        duck.append(d)
        loads.append(j)
    t, d, j = statistics.median(times), statistics.median(duck), statistics.median(loads)
    print(f"{name}: {got[0]:,} requests, {got[1]:,} rows, {log.stat().st_size / 1e6:.0f} MB: "
          f"fold {t:.2f} s; DuckDB read_json {d:.2f} s ({t / d:.1f}x); "
          f"json.loads {j:.2f} s ({t / j:.2f}x)")  # fmt: skip
    return {
        "requests": got[0], "rows": got[1], "log_bytes": log.stat().st_size,
        "fold_s": round(t, 3), "fold_tries_s": [round(x, 3) for x in times],
        "duckdb_read_json_s": round(d, 3), "python_json_loads_s": round(j, 3),
        "ratio_vs_read_json": round(t / d, 2), "ratio_vs_json_loads": round(t / j, 2),
        "us_per_request": round(t / got[0] * 1e6, 1),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--tries", type=int, default=3)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="wb-fold-"))
    try:
        result = {
            "one_row_requests": case(root, "single", args.requests, 0, args.tries),
            "batches_of_1000": case(root, "batches", 0, args.batches, args.tries),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("wrote", write_result("fold", result))


if __name__ == "__main__":
    main()
