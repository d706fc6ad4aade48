"""Experiment tracking against MLflow (sqlite backend), measured in one run.

    python bench/tracking_bench.py [--runs 100 --metrics 10 --steps 1000 --search-runs 10000]

1. Log 1M metric points (100 runs x 10 metrics x 1000 steps): workbench's
   per-point ``run.log_metric`` and its batch path ``run.log_curve`` (1,000 points a
   call) versus MLflow's fastest path, ``log_batch`` with 1,000 metrics per call (and
   MLflow's per-point ``log_metric`` timed on one run, for scale).
2. Create N runs with params and metrics, then filter and order them:
   ``metrics.auc > 0.8 and params.model = 'lightgbm'`` ordered by auc.
3. Training overhead: a tracked LightGBM run versus LightGBM called directly on
   the same 1M rows.

MLflow runs in its own environment (bench/.venv-mlflow, with mlflow-skinny,
sqlalchemy and alembic) so that its dependencies do not touch ours; this script
drives it through a subprocess. Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

MLFLOW_LOG = textwrap.dedent(
    """
    import sys, time, json
    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient
    uri, runs, metrics, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    exp = client.create_experiment("bench")
    t = time.perf_counter()
    for r in range(runs):
        run = client.create_run(exp)
        ts = int(time.time() * 1000)
        batch = []
        for s in range(steps):
            for m in range(metrics):
                batch.append(Metric(f"m{m}", float(s * m), ts, s))
                if len(batch) == 1000:
                    client.log_batch(run.info.run_id, metrics=batch)
                    batch = []
        if batch:
            client.log_batch(run.info.run_id, metrics=batch)
        client.set_terminated(run.info.run_id)
    batched = time.perf_counter() - t
    run = client.create_run(exp)
    t = time.perf_counter()
    n = min(2000, steps * metrics)
    for i in range(n):
        client.log_metric(run.info.run_id, "single", float(i), step=i)
    per_point = (time.perf_counter() - t) / n
    print(json.dumps({"batched_s": batched, "per_point_s": per_point}))
    """
)

MLFLOW_SEARCH = textwrap.dedent(
    """
    import sys, time, json, random
    import mlflow
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient
    uri, n = sys.argv[1], int(sys.argv[2])
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    exp = client.create_experiment("search")
    rng = random.Random(0)
    t = time.perf_counter()
    for i in range(n):
        run = client.create_run(exp)
        ts = int(time.time() * 1000)
        client.log_batch(run.info.run_id, metrics=[Metric("auc", rng.random(), ts, 0)],
                         params=[Param("model", rng.choice(["lightgbm", "random_forest", "logistic"])),
                                 Param("lr", str(rng.choice([0.01, 0.05, 0.1])))])
        client.set_terminated(run.info.run_id)
    create = time.perf_counter() - t
    times = []
    for _ in range(5):
        t = time.perf_counter()
        res = client.search_runs([exp], "metrics.auc > 0.8 and params.model = 'lightgbm'",
                                 order_by=["metrics.auc DESC"], max_results=100)
        times.append(time.perf_counter() - t)
    print(json.dumps({"create_s": create, "search_s": min(times), "found": len(res)}))
    """
)


def workbench_log(root: Path, runs: int, metrics: int, steps: int, batched: bool = False) -> float:
    """Per point with ``run.log_metric``, or ``batched`` with ``run.log_curve``, 1,000
    points a call, as MLflow's ``log_batch`` is called below."""
    import numpy  # noqa: F401  (a script that logs has these loaded: MLflow's
    import polars  # noqa: F401  imports are outside its timing too)

    from workbench.core.project import Project

    project, _ = Project.init(root)
    t = time.perf_counter()
    for _ in range(runs):
        with project.runs.start(experiment="bench") as run:
            if batched:
                for m in range(metrics):
                    for lo in range(0, steps, 1000):
                        idx = range(lo, min(steps, lo + 1000))
                        run.log_curve(f"m{m}", [float(s * m) for s in idx], steps=list(idx))
            else:
                for s in range(steps):
                    for m in range(metrics):
                        run.log_metric(f"m{m}", float(s * m), step=s)
    # Timed until the points can be queried: runs journal their ends and the next
    # catalog operation folds them in, so that fold is part of the cost.
    with project.catalog.read() as con:
        n = con.execute("SELECT count(*) FROM metrics").fetchone()[0]
    elapsed = time.perf_counter() - t
    assert n == runs * metrics * steps
    return elapsed


def workbench_search(root: Path, n: int) -> dict[str, float]:
    import random

    from workbench.core.project import Project

    project, _ = Project.init(root)
    rng = random.Random(0)
    t = time.perf_counter()
    for _ in range(n):
        with project.runs.start(experiment="search") as run:
            run.log_params(
                {
                    "model": rng.choice(["lightgbm", "random_forest", "logistic"]),
                    "lr": rng.choice([0.01, 0.05, 0.1]),
                }
            )
            run.log_metric("auc", rng.random())
    with project.catalog.read():  # the fold of the journal is part of creating them
        pass
    create = time.perf_counter() - t
    times = []
    for _ in range(5):
        t = time.perf_counter()
        res = project.runs.list(
            experiment="search",
            filter="metrics.auc > 0.8 and params.model = 'lightgbm'",
            order_by="metrics.auc desc",
            limit=100,
        )
        times.append(time.perf_counter() - t)
    return {"create_s": create, "search_s": min(times), "found": len(res)}


def training_overhead(rows: int) -> dict[str, float]:
    import lightgbm as lgb
    import numpy as np
    import polars as pl

    from workbench.core.project import Project
    from workbench.core.runs.training import Recipe, prepare, train

    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 10))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(size=rows) > 0).astype(int)
    df = pl.DataFrame({f"x{i}": x[:, i] for i in range(10)}).with_columns(pl.Series("y", y))
    tmp = Path(tempfile.mkdtemp())
    try:
        df.write_parquet(tmp / "d.parquet")
        project, _ = Project.init(tmp / "p")
        project.datasets.add(tmp / "d.parquet", name="d")
        recipe = Recipe(dataset="d", target="y", params={"n_estimators": 100})
        data = prepare(project, recipe)
        params = {
            "n_estimators": 100,
            "learning_rate": 0.05,
            "num_leaves": 31,
            "random_state": 42,
            "verbose": -1,
            "n_jobs": 2,
        }
        raw, tracked, raw_cpu, tracked_cpu, own = [], [], [], [], []
        for _ in range(5):  # taking turns: this machine drifts 10-30% within minutes
            t, c = time.perf_counter(), time.process_time()
            lgb.LGBMClassifier(**params).fit(
                data["x_train"],
                data["y_train"],
                eval_set=[(data["x_train"], data["y_train"]), (data["x_val"], data["y_val"])],
                eval_metric=["binary_logloss", "auc"],
            )
            raw.append(time.perf_counter() - t)
            raw_cpu.append(time.process_time() - c)
            t, c = time.perf_counter(), time.process_time()
            run_id = train(project, recipe)
            tracked.append(time.perf_counter() - t)
            tracked_cpu.append(time.process_time() - c)
            fit_s = project.runs.get(run_id)["metrics"]["fit_seconds"]["last"]
            own.append((tracked[-1] - fit_s) / fit_s)
        return {
            "raw_fit_s": min(raw),
            "tracked_train_s": min(tracked),
            "overhead": min(tracked) / min(raw) - 1,
            # each tracked run against the raw fit just before it: robust to the drift
            "overhead_paired_median": sorted(t / r - 1 for t, r in zip(tracked, raw, strict=True))[
                2
            ],
            # what a tracked run does besides LightGBM's fit (loading and splitting the
            # version, metrics, storing the model, the journal), over that fit, in the
            # same call: the machine's drift cancels out
            "own_work_over_fit_median": sorted(own)[len(own) // 2],
            # CPU seconds of this process (both LightGBM threads): time stolen by the
            # host, which moves wall times here by 20%, does not count
            "overhead_cpu": min(tracked_cpu) / min(raw_cpu) - 1,
            "tries_s": {"raw": raw, "tracked": tracked},
            "tries_cpu_s": {"raw": raw_cpu, "tracked": tracked_cpu},
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--metrics", type=int, default=10)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--search-runs", type=int, default=10_000)
    ap.add_argument("--train-rows", type=int, default=1_000_000)
    ap.add_argument("--python", default=str(HERE / ".venv-mlflow" / "bin" / "python"))
    ap.add_argument(
        "--only",
        choices=["log", "search", "train"],
        action="append",
        help="Run only these parts (repeatable); results merge into results/tracking.json.",
    )
    args = ap.parse_args()
    parts = set(args.only or ["log", "search", "train"])
    result_file = HERE / "results" / "tracking.json"
    out: dict[str, object] = (
        json.loads(result_file.read_text()) if args.only and result_file.exists() else {}
    )
    tmp = Path(tempfile.mkdtemp(prefix="wb-track-"))
    try:
        points = args.runs * args.metrics * args.steps
        if "log" in parts:
            log_points(out, tmp, args, points)
        if "search" in parts:
            search(out, tmp, args)
        if "train" in parts:
            out["training"] = training_overhead(args.train_rows)
            print(json.dumps(out["training"], indent=2), flush=True)
        result_file.parent.mkdir(exist_ok=True)
        result_file.write_text(json.dumps(out, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def log_points(out: dict[str, object], tmp: Path, args: argparse.Namespace, points: int) -> None:
    wb = workbench_log(tmp / "wb1", args.runs, args.metrics, args.steps)
    wb_batch = workbench_log(tmp / "wb1b", args.runs, args.metrics, args.steps, batched=True)
    ml = json.loads(
        subprocess.run(
            [
                args.python,
                "-c",
                MLFLOW_LOG,
                f"sqlite:///{tmp}/ml1.db",
                str(args.runs),
                str(args.metrics),
                str(args.steps),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    out["log_points"] = {
        "points": points,
        "workbench_s": wb,
        "mlflow_log_batch_s": ml["batched_s"],
        "mlflow_per_point_s": ml["per_point_s"],
        "mlflow_per_point_extrapolated_s": ml["per_point_s"] * points,
        "workbench_log_curve_s": wb_batch,
        "speedup_vs_log_batch": ml["batched_s"] / wb,
        "batch_vs_batch_speedup": ml["batched_s"] / wb_batch,
        "speedup_vs_per_point": ml["per_point_s"] * points / wb,
    }
    print(json.dumps(out["log_points"], indent=2), flush=True)


def search(out: dict[str, object], tmp: Path, args: argparse.Namespace) -> None:
    ws = workbench_search(tmp / "wb2", args.search_runs)
    ms = json.loads(
        subprocess.run(
            [args.python, "-c", MLFLOW_SEARCH, f"sqlite:///{tmp}/ml2.db", str(args.search_runs)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    out["search"] = {
        "runs": args.search_runs,
        "workbench": ws,
        "mlflow": ms,
        "search_speedup": ms["search_s"] / ws["search_s"],
        "create_speedup": ms["create_s"] / ws["create_s"],
    }
    print(json.dumps(out["search"], indent=2), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    main()
