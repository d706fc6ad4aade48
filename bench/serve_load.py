"""`workbench serve` under load while its alias moves: 20,000 requests, 8 at a time.

    python bench/serve_load.py [--requests 20000] [--clients 8]

Registers two LightGBM versions of one model (production on v1), starts `workbench
serve churn-model@production` on 127.0.0.1, and sends single-row requests from 8
keep-alive clients, each with its own X-Request-ID. Half-way it promotes v2 to
production from this process, as a user would from another terminal. Then it stops the
server and asks `workbench sql` (which folds the request log) for what was logged.

Checks, each printed and written to bench/results/serve_load.json: no failed request;
every answered request id is in the `requests` and `predictions` views once, with the
version that answered it; the answers move from v1 to v2 within 2 s of the promotion
and never back.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_bench import data, free_port, wait_up

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    from workbench.core.project import Project
    from workbench.core.runs.recipe import Recipe
    from workbench.core.runs.training import train

    tmp = Path(tempfile.mkdtemp(prefix="serve-load-"))
    project, _ = Project.init(tmp / "proj")
    data(20_000).write_parquet(tmp / "train.parquet")
    project.datasets.add(tmp / "train.parquet", name="churn")
    for trees in (50, 100):
        run = train(project, Recipe(dataset="churn@1", target="churned",
                                    params={"n_estimators": trees}))  # fmt: skip
        project.models.register(run, "churn-model")
    project.models.promote("churn-model", 1, "production", reason="bench")

    port = free_port()
    cmd = [sys.executable, "-m", "workbench", "--project", str(project.root), "serve",
           "churn-model@production", "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    rows = data(args.requests, seed=1).drop("churned").to_dicts()
    answers: list[tuple[str, float, int, int | None]] = []  # id, when, status, version
    lock = threading.Lock()
    taken = [0]  # ids handed out so far
    promoted_at: list[float] = []

    def client() -> None:
        con = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        while True:
            with lock:
                i = taken[0]
                if i >= args.requests:
                    break
                taken[0] += 1
            rid = f"load-{i}"
            body = json.dumps([rows[i]]).encode()
            t = time.perf_counter()
            try:
                con.request("POST", "/predict", body,
                            {"Content-Type": "application/json", "X-Request-ID": rid})  # fmt: skip
                answer = con.getresponse()
                payload = answer.read()
                status = answer.status
                version = (
                    int(json.loads(payload)["model"].rsplit("@", 1)[1]) if status == 200 else None
                )
            except OSError:
                status, version = 0, None
                con = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            mine.append((rid, time.perf_counter() - t, time.monotonic(), status, version))
        with lock:
            answers.extend(mine)

    try:
        wait_up(port, "/health", proc)
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        started = time.monotonic()
        for t in threads:
            t.start()
        while taken[0] < args.requests // 2:  # promote half-way
            time.sleep(0.01)
        project.models.promote("churn-model", 2, "production", reason="bench: mid-load")
        promoted_at.append(time.monotonic())
        for t in threads:
            t.join()
        took = time.monotonic() - started
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)

    failed = [a for a in answers if a[3] != 200]
    lat = np.array([a[1] for a in answers]) * 1000
    moved = promoted_at[0]
    first_v2 = min((a[2] for a in answers if a[4] == 2), default=None)
    last_v1 = max((a[2] for a in answers if a[4] == 1), default=None)
    wb = [sys.executable, "-m", "workbench", "--project", str(project.root), "sql", "--json",
          "--limit", str(10 * args.requests)]  # fmt: skip
    fold_started = time.monotonic()
    logged = json.loads(subprocess.run(
        [*wb, "SELECT request_id, status, version FROM requests"],
        capture_output=True, check=True, text=True).stdout)  # fmt: skip
    fold_s = time.monotonic() - fold_started
    predicted = json.loads(subprocess.run(
        [*wb, "SELECT count(*) AS n, count(DISTINCT request_id) AS ids FROM predictions"],
        capture_output=True, check=True, text=True).stdout)[0]  # fmt: skip
    answered = {a[0]: a[4] for a in answers if a[3] == 200}
    by_id = {r["request_id"]: r["version"] for r in logged}
    result: dict[str, Any] = {
        "requests": len(answers),
        "clients": args.clients,
        "failed": len(failed),
        "rps": round(len(answers) / took, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "answered_v1": sum(1 for v in answered.values() if v == 1),
        "answered_v2": sum(1 for v in answered.values() if v == 2),
        "v2_first_answer_after_promotion_s": round(first_v2 - moved, 3) if first_v2 else None,
        "v1_last_answer_after_promotion_s": round(last_v1 - moved, 3) if last_v1 else None,
        "logged_requests": len(logged),
        "logged_with_the_version_that_answered": sum(
            1 for rid, v in answered.items() if by_id.get(rid) == v
        ),
        "logged_predictions": predicted["n"],
        "logged_prediction_ids": predicted["ids"],
        "first_read_with_fold_s": round(fold_s, 2),
    }
    checks = {
        "no failed request": result["failed"] == 0,
        "every request logged once, with its version": (
            len(logged) == len(answers) == result["logged_with_the_version_that_answered"]
        ),
        "every row in predictions": predicted["n"] == predicted["ids"] == len(answers),
        "moved to v2 within 2 s, never back": (
            last_v1 is not None and last_v1 - moved <= 2.0
            and all(a[4] == 2 for a in answers if a[2] > last_v1)
        ),
    }  # fmt: skip
    result["checks"] = checks
    out = HERE / "results" / "serve_load.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not all(checks.values()):
        raise SystemExit("a check failed: " + ", ".join(k for k, ok in checks.items() if not ok))


if __name__ == "__main__":
    main()
