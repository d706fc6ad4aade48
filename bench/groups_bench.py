"""Seed groups at 1,000 runs: `runs list --group-seeds` against the same listing
ungrouped, in one run.

    python bench/groups_bench.py [--configs 200 --seeds 5]

Generates CONFIGS x SEEDS finished runs (each with 10 params, a seed and 20 metrics),
bulk-inserted into the catalog as bench/tui_bench.py does (creating them one by one
through the API is what bench/tracking_bench.py measures). Then, each as its own
process, the median of 7: `workbench runs list -n N --group-seeds --json` and the floor
of the same run, `workbench runs list -n N --json` (reading and printing the same runs
ungrouped); and the grouping alone, in process. Goal: under 500 ms. Not in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from datasets_bench import write_result  # noqa: E402

sys.path.insert(0, str(HERE.parent))
from small_bench import seconds  # noqa: E402


def generate(root: Path, configs: int, seeds: int) -> None:
    import polars as pl

    from workbench.core.project import Project
    from workbench.core.store import audit

    project, _ = Project.init(root)
    r = random.Random(0)
    now = audit.now()
    n = configs * seeds
    ids = [uuid.UUID(int=r.getrandbits(128), version=4).hex for _ in range(n)]
    config = [i // seeds for i in range(n)]
    keys = [f"p{k}" for k in range(10)]
    params = pl.DataFrame(
        {
            "run_id": [i for i in ids for _ in range(11)],
            "key": [*keys, "seed"] * n,
            "value": [
                str(v)
                for i, c in enumerate(config)
                for v in [*(c * 10 + k for k in range(10)), i % seeds]
            ],
        }
    )
    metrics = [f"m{k}" for k in range(20)]
    last = [r.random() for _ in range(n * 20)]
    summary = pl.DataFrame(
        {
            "run_id": [i for i in ids for _ in metrics],
            "key": metrics * n,
            "last": last,
            "last_step": [0] * (n * 20),
            "min": last,
            "max": last,
            "mean": last,
            "count": [1] * (n * 20),
        }
    )
    runs = pl.DataFrame(
        {
            "id": ids,
            "experiment": ["bench"] * n,
            "name": [f"config-{c}" for c in config],
            "status": ["finished"] * n,
            "start_time": [now] * n,
            "end_time": [now] * n,
        }
    )
    with project.catalog.write() as con:
        con.execute("INSERT OR IGNORE INTO experiments VALUES ('bench', ?)", [now])
        con.register("r", runs.to_arrow())
        con.execute(
            "INSERT INTO runs (id, experiment, name, status, start_time, end_time) SELECT * FROM r"
        )
        con.register("p", params.to_arrow())
        con.execute("INSERT INTO params SELECT * FROM p")
        con.register("s", summary.to_arrow())
        con.execute("INSERT INTO metric_summary SELECT * FROM s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode compiled
    root = Path(tempfile.mkdtemp(prefix="wb-groups-")) / "p"
    n = args.configs * args.seeds
    try:
        generate(root, args.configs, args.seeds)
        wb = [sys.executable, "-m", "workbench", "--project", str(root), "runs", "list",
              "-n", str(n), "--json"]  # fmt: skip
        out = subprocess.run([*wb, "--group-seeds"], check=True, capture_output=True).stdout
        groups = json.loads(out)
        assert len(groups) == args.configs and {g["n"] for g in groups} == {args.seeds}
        grouped = statistics.median(seconds([*wb, "--group-seeds"], root) for _ in range(7))
        plain = statistics.median(seconds(wb, root) for _ in range(7))

        from workbench.core.project import Project
        from workbench.core.runs.groups import group_by_seed

        items = Project(root).runs.list(limit=None)
        t = time.perf_counter()
        for _ in range(10):
            group_by_seed(items)
        alone = (time.perf_counter() - t) / 10
        row = {
            "runs": n,
            "configurations": args.configs,
            "grouped_list_s_median": grouped,
            "plain_list_s_median": plain,
            "ratio_to_plain": grouped / plain,
            "grouping_alone_s": alone,
        }
        print(json.dumps(row, indent=2))
        write_result("groups", row)
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
