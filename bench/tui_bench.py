"""The TUI on a big project: first paint and run filtering, headless, in one run.

    python bench/tui_bench.py [--runs 10000 --versions 100 --params 2 --metrics 1]

Generates a project with VERSIONS versions of one dataset (through the API) and RUNS
finished runs with PARAMS params and METRICS metrics each (the issue's large case:
--runs 100000 --params 10 --metrics 20, written to results/tui_100000.json). The runs are bulk-inserted into the catalog
tables, because creating 10k runs one by one through the API takes about 25 minutes
on two cores (the tracking benchmark measures that path); what is measured here is
reading and showing them. Then, in Textual's headless mode:

- first paint: from starting the app until the overview's tables are filled;
- compare: `workbench runs compare` of 100 runs with a 200-point curve each (logged
  through the API after the bulk insert) and --plot, as a process;
- filter: from submitting a filter on the runs screen until its table has painted the
  result (the count line is cleared first and watched, then the table's next paint after
  it has sized its columns to the new rows is timed).

There is no peer here: MLflow's UI is a web server, not comparable in process. Not in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def generate(root: Path, runs: int, versions: int, n_params: int = 2, n_metrics: int = 1) -> None:
    import numpy as np
    import polars as pl

    from workbench.core.project import Project
    from workbench.core.store import audit

    project, _ = Project.init(root)
    rng = np.random.default_rng(0)
    for v in range(versions):
        df = pl.DataFrame({"x": rng.normal(size=200), "y": rng.integers(0, 2, 200)})
        path = root / f"v{v}.parquet"
        df.write_parquet(path)
        project.datasets.add(path, name="batches")
        path.unlink()
    r = random.Random(0)
    now = audit.now()
    ids = [uuid.UUID(int=r.getrandbits(128), version=4).hex for _ in range(runs)]
    models = ["lightgbm", "random_forest", "logistic"]
    run_rows = pl.DataFrame(
        {
            "id": ids,
            "experiment": ["bench"] * runs,
            "name": [f"trial-{i}" for i in range(runs)],
            "status": ["finished"] * runs,
            "start_time": [now] * runs,
            "end_time": [now] * runs,
            "dataset": ["batches"] * runs,
            "dataset_version": [r.randint(1, versions) for _ in ids],
        }
    )
    extra_p = [f"p{k}" for k in range(max(0, n_params - 2))]
    params = pl.DataFrame(
        {
            "run_id": ids * (2 + len(extra_p)),
            "key": ["model"] * runs + ["learning_rate"] * runs + [k for k in extra_p for _ in ids],
            "value": [r.choice(models) for _ in ids]
            + [str(r.choice([0.01, 0.05, 0.1])) for _ in ids]
            + [str(r.randint(0, 99)) for _ in extra_p for _ in ids],
        }
    )
    keys = ["val_auc", *(f"m{k}" for k in range(max(0, n_metrics - 1)))]
    last = [r.random() for _ in range(runs * len(keys))]
    summary = pl.DataFrame(
        {
            "run_id": ids * len(keys),
            "key": [k for k in keys for _ in ids],
            "last": last,
            "last_step": [0] * len(last),
            "min": last,
            "max": last,
            "mean": last,
            "count": [1] * len(last),
        }
    )
    with project.catalog.write() as con:
        con.execute("INSERT OR IGNORE INTO experiments VALUES ('bench', ?)", [now])
        con.register("r", run_rows.to_arrow())
        con.execute(
            "INSERT INTO runs (id, experiment, name, status, start_time, end_time, dataset, "
            "dataset_version) SELECT * FROM r"
        )
        con.register("p", params.to_arrow())
        con.execute("INSERT INTO params SELECT * FROM p")
        con.register("s", summary.to_arrow())
        con.execute("INSERT INTO metric_summary SELECT * FROM s")


FILTERS = (
    "params.model = 'lightgbm' and metrics.val_auc > 0.9",
    "metrics.val_auc > 0.5",
    "params.learning_rate = 0.01",
) * 3


async def measure(root: Path) -> dict[str, float]:
    from textual.widgets import DataTable, Input, Label

    from workbench.core.project import Project
    from workbench.tui.app import WorkbenchApp

    async def until(pilot, check, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
        deadline = time.perf_counter() + timeout
        while not check():
            if time.perf_counter() > deadline:
                raise SystemExit("timed out waiting for the TUI")
            await pilot.pause(0.005)

    app = WorkbenchApp(Project(root), freeze_gc=True)  # as `workbench ui` runs it
    t0 = time.perf_counter()
    async with app.run_test(size=(160, 50)) as pilot:
        await until(
            pilot,
            lambda: (
                app.screen.query("#ov-runs")
                and app.screen.query_one("#ov-runs", DataTable).row_count > 0
            ),
        )
        first_paint = time.perf_counter() - t0
        await pilot.press("r")
        runs = lambda: app.screen.query_one("#runs", DataTable)  # noqa: E731
        await until(pilot, lambda: app.screen.query("#runs") and runs().row_count > 0)
        times = []
        label = app.screen.query_one("#runs-error", Label)
        table = runs()

        # The rows are on screen once the table has sized its columns to them (after the
        # count line is written) and then painted its lines. The check is made in the
        # paint itself, so how often this loop polls changes nothing measured; it polls
        # every 5 ms rather than every 1 ms so as not to take the GIL from the app.
        painted_at: list[float] = []
        render_lines = table.render_lines

        def ready() -> bool:
            return (
                str(label.render()).strip() != ""
                and not table._require_update_dimensions
                and not table._new_rows
            )

        def timed_render(crop):  # type: ignore[no-untyped-def]
            sized = ready()
            lines = render_lines(crop)
            if sized:
                painted_at.append(time.perf_counter())
            return lines

        table.render_lines = timed_render  # type: ignore[method-assign]

        for flt in FILTERS:
            box = app.screen.query_one("#runs-filter", Input)
            box.value = flt
            label.update("")  # cleared here, written when the filtered rows are on screen
            await pilot.pause(0.5)  # let the previous result finish drawing
            # Submit as enter does, and stop when the result is shown: pilot.press itself
            # waits for the app to go idle (~0.5 s) and would be measured too.
            painted_at.clear()
            t = time.perf_counter()
            await box.action_submit()
            while not painted_at:
                await asyncio.sleep(0.005)
            times.append(painted_at[0] - t)
    return {
        "first_paint_s": first_paint,
        "filter_s_median": sorted(times)[len(times) // 2],
        "filter_s_max": max(times),
        "filter_s": times,
    }


def compare_100(root: Path) -> float:
    """`runs compare` of 100 runs' curves, as a process, median of 3."""
    import os
    import statistics

    import numpy as np
    from small_bench import seconds

    from workbench.core.project import Project

    p = Project(root)
    refs = []
    for i in range(100):
        run = p.runs.start(experiment="curves", name=f"c{i}")
        run.log_params({"model": "lightgbm", "seed": i})
        noise = np.random.default_rng(i).normal(0, 0.01, 200)
        run.log_curve("val_loss", list(np.linspace(1, 0.2, 200) + noise))
        run.end()
        refs.append(f"run:{run.id}")
    cmd = [sys.executable, "-m", "workbench", "--project", str(root), "runs", "compare", *refs,
           "--plot", "val_loss"]  # fmt: skip
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode compiled
    return statistics.median(seconds(cmd, root) for _ in range(3))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--versions", type=int, default=100)
    ap.add_argument("--params", type=int, default=2)
    ap.add_argument("--metrics", type=int, default=1)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wb-tui-"))
    try:
        t = time.perf_counter()
        generate(tmp / "p", args.runs, args.versions, args.params, args.metrics)
        print(
            f"generated {args.runs:,} runs and {args.versions} versions in {time.perf_counter() - t:.1f}s"
        )
        compare_s = compare_100(tmp / "p")
        out = {
            "runs": args.runs,
            "compare_100_curves_s": compare_s,
            "versions": args.versions,
            "params": args.params,
            "metrics": args.metrics,
            **asyncio.run(measure(tmp / "p")),
        }
        print(json.dumps(out, indent=2))
        (HERE / "results").mkdir(exist_ok=True)
        name = "tui.json" if args.runs == 10_000 else f"tui_{args.runs}.json"
        (HERE / "results" / name).write_text(json.dumps(out, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
