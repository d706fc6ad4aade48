"""A 32-trial sweep as local processes and as Ray tasks on the same machine, in one run.

    python bench/ray_bench.py [--rows 50000] [--trials 32]

The same LightGBM sweep (small fits, so that the cost around a fit shows) runs three
ways, each as a `workbench sweep` process timed whole:

- local: `--parallel 2` processes (the cores here);
- ray: `--backend ray`, which starts a Ray instance of its own on loopback and stops it;
- ray, warm: `--backend ray --address` a cluster already running (`ray start --head`
  started here), which is how a team's cluster is used.

Per-trial overhead is (wall - the trials' own fit seconds / 2 cores) / trials. The
metrics of the three sweeps must agree trial for trial (same seeds). Data generated on
the fly (datasets_bench's generator); results in bench/results/ray.json. Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from datasets_bench import generate  # noqa: E402


def sweep(project: Path, trials: int, *extra: str) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "workbench", "--project", str(project), "sweep", "t",
           "-t", "label", "-m", "lightgbm", "-p", "n_jobs=1",
           "-g", "n_estimators=" + ",".join(str(30 + i) for i in range(trials)), "--json", *extra]  # fmt: skip
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.perf_counter() - t, json.loads(out.stdout)


def fit_seconds(project: Path, result: dict) -> float:
    sys.path.insert(0, str(HERE.parent))
    from workbench.core.project import Project

    p = Project(project)
    return sum(p.runs.get(t["run_id"]).last("fit_seconds") or 0.0 for t in result["trials"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--trials", type=int, default=32)
    args = ap.parse_args()
    data = HERE / ".data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()
    project = data / "p"
    wb = [sys.executable, "-m", "workbench"]
    head = None
    try:
        generate(args.rows).drop("ts").write_parquet(data / "t.parquet")
        subprocess.run([*wb, "init", str(project)], check=True, capture_output=True)
        subprocess.run([*wb, "--project", str(project), "data", "add", str(data / "t.parquet"),
                        "-n", "t"], check=True, capture_output=True)  # fmt: skip
        results: dict[str, object] = {
            "rows": args.rows,
            "trials": args.trials,
            "cores": os.cpu_count(),
        }
        runs = {}
        runs["local"] = sweep(project, args.trials, "--parallel", "2")
        runs["ray"] = sweep(project, args.trials, "--backend", "ray")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
        head = subprocess.Popen(
            [str(Path(sys.executable).parent / "ray"), "start", "--head", f"--port={port}",
             "--node-ip-address=127.0.0.1", "--include-dashboard=false",
             "--disable-usage-stats", "--block"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        time.sleep(8)  # the head's own start is not what is measured
        os.environ["RAY_AUTH_MODE"] = "disabled"
        runs["ray_warm"] = sweep(project, args.trials, "--backend", "ray", "--address",
                                 f"127.0.0.1:{port}")  # fmt: skip
        base = [t.get("score") for t in runs["local"][1]["trials"]]
        for name, (wall, res) in runs.items():
            fits = fit_seconds(project, res)
            assert [t.get("score") for t in res["trials"]] == base, f"{name}: other metrics"
            results[name] = {
                "wall_s": wall,
                "fit_s_total": fits,
                "overhead_per_trial_s": (wall - fits / 2) / args.trials,
            }
        loc = results["local"]["overhead_per_trial_s"]  # type: ignore[index]
        for name in ("ray", "ray_warm"):
            r = results[name]  # type: ignore[assignment]
            r["extra_over_local_per_trial_s"] = r["overhead_per_trial_s"] - loc  # type: ignore[index]
        print(json.dumps(results, indent=2))
        (HERE / "results" / "ray.json").write_text(json.dumps(results, indent=2) + "\n")
    finally:
        if head is not None:
            head.send_signal(signal.SIGTERM)
            head.wait(30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
