"""`workbench serve` against `mlflow models serve`, on the same model, in the same run.

    python bench/serve_bench.py [--seconds 10] [--rounds 5]

Trains a LightGBM model on 20k generated rows, exports it in MLflow's format (so both
servers score the very same estimator through the same feature code), starts each
server on 127.0.0.1 and measures, with keep-alive HTTP clients: single-row requests at
concurrency 1 and 8, and 1,000-row batches at concurrency 1 (requests/s, p50 and p99
latency, failed requests). MLflow runs from bench/.venv-mlflow (see bench/README.md;
it also needs the model's requirements: pandas, lightgbm, scikit-learn, polars,
pyarrow, and httptools and uvloop, as workbench[serve] has). Both servers run at once
and each scenario alternates between them in ``--rounds`` rounds, so that a noisy spell
of a shared machine falls on both. Writes bench/results/serve.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
MLFLOW_VENV = HERE / ".venv-mlflow"


def data(n: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    income = rng.normal(50_000, 15_000, n).round(2)
    plan = rng.choice(["basic", "plus", "pro"], n)
    region = rng.choice([f"r{i}" for i in range(20)], n)
    tenure = rng.integers(0, 120, n)
    logit = 0.03 * (age - 45) - 0.00002 * (income - 50_000) + (plan == "basic") * 0.8
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pl.DataFrame(
        {"age": age, "income": income, "plan": plan, "region": region, "tenure": tenure,
         "churned": churned}
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(port: int, path: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            con = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            con.request("GET", path)
            if con.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("server never came up")


def load(port: int, path: str, body: bytes, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` keep-alive connections posting ``body`` for ``seconds``."""
    latencies: list[float] = []
    failed = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        con = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        while time.monotonic() < stop:
            t = time.perf_counter()
            try:
                con.request("POST", path, body, {"Content-Type": "application/json"})
                answer = con.getresponse()
                answer.read()
                ok = answer.status == 200
            except OSError:
                ok = False
                con = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            if ok:
                mine.append(time.perf_counter() - t)
            else:
                with lock:
                    failed[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    return summary(latencies, failed[0], took)


def summary(latencies: list[float], failed: int, took: float) -> dict[str, Any]:
    lat = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "failed": failed,
        "rps": round(len(latencies) / took, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 2) if len(lat) else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 2) if len(lat) else None,
        "_latencies": latencies,
        "_seconds": took,
    }


def pooled(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of one scenario on one server as one measurement."""
    latencies = [x for p in parts for x in p["_latencies"]]
    took = sum(p["_seconds"] for p in parts)
    out = summary(latencies, sum(p["failed"] for p in parts), took)
    return {k: v for k, v in out.items() if not k.startswith("_")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario and server")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    mlflow = MLFLOW_VENV / "bin" / "mlflow"
    if not mlflow.exists():
        raise SystemExit(f"no {mlflow}: create bench/.venv-mlflow as bench/README.md says")
    from workbench.core.project import Project

    tmp = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    project, _ = Project.init(tmp / "proj")
    data(20_000).write_parquet(tmp / "train.parquet")
    project.datasets.add(tmp / "train.parquet", name="churn")
    from workbench.core.runs.recipe import Recipe
    from workbench.core.runs.training import train

    run = train(project, Recipe(dataset="churn@1", target="churned", params={"n_estimators": 100}))
    project.models.register(run, "churn-model")
    project.models.promote("churn-model", 1, "production", reason="bench")
    export = tmp / "mlflow-model"
    wb = [sys.executable, "-m", "workbench", "--project", str(project.root)]
    subprocess.run([*wb, "model", "export", "churn-model@production", str(export)], check=True)

    rows = data(1_000, seed=1).drop("churned")
    one_wb = json.dumps(rows.head(1).to_dicts()).encode()
    batch_wb = json.dumps(rows.to_dicts()).encode()
    split = {"columns": rows.columns, "data": [list(r) for r in rows.iter_rows()]}
    one_ml = json.dumps({"dataframe_split": {**split, "data": split["data"][:1]}}).encode()
    batch_ml = json.dumps({"dataframe_split": split}).encode()

    servers = {
        "workbench": (
            [*wb, "serve", "churn-model@production", "--port", "{port}"],
            "/health", "/predict", one_wb, batch_wb, {},
        ),
        "mlflow": (
            [str(mlflow), "models", "serve", "-m", str(export), "--env-manager", "local",
             "-h", "127.0.0.1", "-p", "{port}"],
            "/ping", "/invocations", one_ml, batch_ml, {"MLFLOW_ALLOW_FILE_STORE": "true"},
        ),
    }  # fmt: skip
    results: dict[str, Any] = {
        "seconds_each": args.seconds,
        "rounds": args.rounds,
        "train_rows": 20_000,
    }
    procs, ports = {}, {}
    try:
        for name, (cmd, up, _, one, _, env) in servers.items():
            ports[name] = port = free_port()
            procs[name] = subprocess.Popen(
                [c.replace("{port}", str(port)) for c in cmd],
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            wait_up(port, up, procs[name])
            load(port, servers[name][2], one, 1, 2)  # warm up
        # Both servers up; each scenario alternates between them in rounds, so that a
        # slow spell of this shared machine falls on both rather than on one.
        parts: dict[str, dict[str, list[dict[str, Any]]]] = {n: {} for n in servers}
        scenarios = {"single_c1": (3, 1), "single_c8": (3, 8), "batch1000_c1": (4, 1)}
        for scenario, (which, clients) in scenarios.items():
            for _ in range(args.rounds):
                for name, spec in servers.items():
                    part = load(ports[name], spec[2], spec[which], clients,
                                args.seconds / args.rounds)  # fmt: skip
                    parts[name].setdefault(scenario, []).append(part)
        for name in servers:
            results[name] = {k: pooled(v) for k, v in parts[name].items()}
            print(name, json.dumps(results[name]), flush=True)
    finally:
        for proc in procs.values():
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
    results["ratio_rps"] = {
        k: round(results["workbench"][k]["rps"] / results["mlflow"][k]["rps"], 2)
        for k in results["workbench"]
    }
    out = HERE / "results" / "serve.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["ratio_rps"]))


if __name__ == "__main__":
    main()
