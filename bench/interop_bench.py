"""Reading an MLflow store: `workbench import mlflow` versus MLflow reading it back itself.

    python bench/interop_bench.py [--runs 100 --metrics 10 --steps 1000]

Builds an MLflow sqlite store (runs x metrics x steps points, 5 params and 2 tags per
run) with MLflow's log_batch in its own environment (bench/.venv-mlflow), then times,
each as a separate process:
- workbench: `workbench import mlflow sqlite:///...` into a fresh project (every run,
  param, tag and metric point, written to the catalog with audit entries);
- MLflow: MlflowClient fetching every run and every metric history (what any tool
  reading an MLflow store through MLflow's API has to do).
The import is then checked: the same number of points arrived. Not run in CI.
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
MLFLOW_PY = HERE / ".venv-mlflow" / "bin" / "python"

BUILD = textwrap.dedent(
    """
    import sys
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient
    uri, runs, metrics, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    c = MlflowClient(uri)
    exp = c.create_experiment("bench")
    t0 = 1_700_000_000_000
    for r in range(runs):
        rid = c.create_run(exp, run_name=f"run-{r}").info.run_id
        c.log_batch(rid, params=[Param(f"p{i}", str(i * r)) for i in range(5)],
                    tags=[RunTag("team", "a"), RunTag("r", str(r))])
        points = [Metric(f"m{k}", 1.0 / (s + 1 + k), t0 + s, s) for k in range(metrics) for s in range(steps)]
        for i in range(0, len(points), 1000):
            c.log_batch(rid, metrics=points[i:i + 1000])
        c.set_terminated(rid)
    """
)

READ = textwrap.dedent(
    """
    import sys
    from mlflow.tracking import MlflowClient
    c = MlflowClient(sys.argv[1])
    n = 0
    for exp in c.search_experiments():
        for run in c.search_runs([exp.experiment_id], max_results=50000):
            for key in run.data.metrics:
                n += len(c.get_metric_history(run.info.run_id, key))
    print(n)
    """
)


def timed(cmd: list[str], **kw: object) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, **kw)  # type: ignore[call-overload]
    return time.perf_counter() - t0, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--metrics", type=int, default=10)
    ap.add_argument("--steps", type=int, default=1000)
    args = ap.parse_args()
    if not MLFLOW_PY.exists():
        sys.exit(
            "needs bench/.venv-mlflow: python -m venv bench/.venv-mlflow && "
            "bench/.venv-mlflow/bin/pip install mlflow-skinny sqlalchemy alembic"
        )
    work = Path(tempfile.mkdtemp(prefix="wb-interop-"))
    try:
        uri = f"sqlite:///{work / 'mlflow.db'}"
        n = args.runs * args.metrics * args.steps
        build_s, _ = timed(
            [str(MLFLOW_PY), "-c", BUILD, uri, *map(str, (args.runs, args.metrics, args.steps))]
        )
        read_s, out = timed([str(MLFLOW_PY), "-c", READ, uri])
        assert int(out.strip()) == n, out
        wb = [sys.executable, "-m", "workbench"]
        subprocess.run([*wb, "init", str(work / "proj")], check=True, capture_output=True)
        import_s, out = timed(
            [*wb, "--project", str(work / "proj"), "import", "mlflow", uri, "--json"]
        )
        got = json.loads(out)
        assert got["points"] == n and got["runs"] == args.runs, got
        result = {
            "runs": args.runs,
            "points": n,
            "mlflow_build_s": round(build_s, 2),
            "mlflow_read_all_s": round(read_s, 2),
            "workbench_import_s": round(import_s, 2),
            "ratio_mlflow_read_over_workbench_import": round(read_s / import_s, 2),
        }
        print(json.dumps(result, indent=2))
        out_dir = HERE / "results"
        out_dir.mkdir(exist_ok=True)
        (out_dir / "interop_bench.json").write_text(json.dumps(result, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
