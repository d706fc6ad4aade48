"""Estimated against realised performance on both sample projects, as a user would check.

    python bench/monitor_accuracy.py [--sample flights|bikes|all]

For each sample the batches of the whole period are pooled, and half of the rows (drawn at
random) become the training data, with the period's calendar as inputs (flights: month;
bikes: year and season), so that the model has seen how the target depends on the
inputs in every period. The other half, batch by batch (each month of flights, each
quarter of bikes), is then scored with `workbench predict` (logged), monitored with the
labels held back (`workbench monitor --window batch`), and labelled afterwards
(`workbench labels add --request`): each batch's inputs move (season, weather, demand),
but the relation of target to inputs is the one the model learned: covariate shift.

The second table is the demo's case: a model trained on April flights only, without the
month, meeting the later months. There the relation itself moves with the seasons
(summer storms, holiday traffic delay flights that look alike in April's inputs):
concept shift, which CBPE assumes away; the table shows what that costs.

Prints markdown tables (docs/monitoring.md carries them) and writes
bench/results/monitor_accuracy.json. tests/core/test_monitor_samples.py runs the
covariate-shift part and holds it to 80% of batches within the band.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLES = {
    # sample: (target, metric, drop from the inputs, calendar added)
    "flights": ("delayed", "auc", ["date"], None),
    "bikes": ("rentals", "mae", ["date"], "year"),
}


def _batches(sample: str) -> list[tuple[str, pl.DataFrame]]:
    files = sorted((ROOT / "sample_projects" / sample / "data").glob("*.parquet"))
    out = []
    for f in files:
        df = pl.read_parquet(f)
        if SAMPLES[sample][3] == "year":
            df = df.with_columns(pl.col("date").dt.year().alias("year"))
        out.append((f.stem.split("_", 1)[1], df))
    return out


def run(sample: str, work: Path, seed: int = 7) -> list[dict[str, Any]]:
    """The covariate-shift check on ``sample``: one row per later batch."""
    from workbench.core.models.labels import add as add_labels
    from workbench.core.models.scoring import predict
    from workbench.core.monitor.report import monitor
    from workbench.core.monitor.windows import parse_window
    from workbench.core.project import Project

    target, metric, drop, _ = SAMPLES[sample]
    project = Project.init(work / sample)[0]
    halves = []
    for name, df in _batches(sample):
        df = df.drop(drop).with_row_index("_i")
        mask = pl.Series(
            __import__("numpy").random.default_rng(seed + len(halves)).random(df.height) < 0.5
        )
        halves.append((name, df.filter(mask).drop("_i"), df.filter(~mask).drop("_i")))
    history = pl.concat([h for _, h, _ in halves])
    history.write_parquet(work / "history.parquet")
    project.datasets.add(work / "history.parquet", "history")
    run_id = project.train("history@1", target, model="lightgbm", seed=seed)
    project.models.register(run_id, "m")
    ids = []
    for name, _, later in halves:
        f = work / f"{sample}_{name}.parquet"
        later.write_parquet(f)
        ids.append((name, f, predict(project, "m@1", str(f), work / f"scored_{name}.parquet").id))
    held = monitor(project, "m@1", parse_window("batch"))  # the labels held back
    for _, f, rid in ids:
        add_labels(project.catalog, project.datasets, str(f), "m", target, request=rid)
    labelled = monitor(project, "m@1", parse_window("batch"))
    return _rows(ids, held, labelled, metric)


def run_demo_case(work: Path) -> list[dict[str, Any]]:
    """The flights demo's model (trained on April, no month) on each later month."""
    from workbench.core.models.labels import add as add_labels
    from workbench.core.models.scoring import predict
    from workbench.core.monitor.report import monitor
    from workbench.core.monitor.windows import parse_window
    from workbench.core.project import Project

    project = Project.init(work / "demo-case")[0]
    batches = _batches("flights")
    april = next(df for name, df in batches if name.endswith("04"))
    april.write_parquet(work / "april.parquet")
    project.datasets.add(work / "april.parquet", "flights")
    features = ["weekday", "sched_hour", "carrier", "origin", "dest", "distance", "temp",
                "humid", "wind_speed", "precip", "visib"]  # fmt: skip
    run_id = project.train("flights@1", "delayed", model="lightgbm", features=features, seed=7)
    project.models.register(run_id, "m")
    ids = []
    for name, df in batches:
        if name <= "2013_04":
            continue
        f = work / f"month_{name}.parquet"
        df.write_parquet(f)
        ids.append((name, f, predict(project, "m@1", str(f), work / f"s_{name}.parquet").id))
    held = monitor(project, "m@1", parse_window("batch"))
    for _, f, rid in ids:
        add_labels(project.catalog, project.datasets, str(f), "m", "delayed", request=rid)
    labelled = monitor(project, "m@1", parse_window("batch"))
    return _rows(ids, held, labelled, "auc")


def _rows(ids: list[Any], held: Any, labelled: Any, metric: str) -> list[dict[str, Any]]:
    rows = []
    for (name, _, _), before, after in zip(ids, held.windows, labelled.windows, strict=True):
        est, real = before.metric(metric), after.metric(metric)
        rows.append({
            "batch": name, "rows": before.rows, "metric": metric,
            "estimated": est.estimated, "lower": est.lower, "upper": est.upper,
            "estimated_after_labels": real.estimated, "realised": real.realised,
            "within": real.within, "drift_share": before.drift_share,
        })  # fmt: skip
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    m = rows[0]["metric"]
    lines = [f"| batch | rows | inputs drifted | estimated {m} [band] | realised {m} | within |",
             "|---|---:|---:|---|---:|:-:|"]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['batch']} | {r['rows']:,} | {r['drift_share']:.0%} | {r['estimated']:.3f} "
            f"[{r['lower']:.3f}, {r['upper']:.3f}] | {r['realised']:.3f} | "
            f"{'yes' if r['within'] else 'no'} |"
        )
    inside = sum(bool(r["within"]) for r in rows)
    lines.append(f"\n{inside} of {len(rows)} batches within the band.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", choices=["flights", "bikes", "all"], default="all")
    args = ap.parse_args()
    out: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="wb-monitor-accuracy-"))
    try:
        for sample in ["flights", "bikes"] if args.sample == "all" else [args.sample]:
            out[sample] = run(sample, work / "cov")
            print(f"\n## {sample}: covariate shift only\n\n{markdown(out[sample])}", flush=True)
        if args.sample in ("flights", "all"):
            out["flights_demo_case"] = run_demo_case(work / "demo")
            print(f"\n## flights, the demo's model: concept shift\n\n"
                  f"{markdown(out['flights_demo_case'])}", flush=True)  # fmt: skip
        (ROOT / "bench" / "results").mkdir(exist_ok=True)
        (ROOT / "bench" / "results" / "monitor_accuracy.json").write_text(
            json.dumps(out, indent=2, default=str)
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
