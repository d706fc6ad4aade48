"""Monitoring 1M logged predictions x 25 inputs in 10 windows, against NannyML, one run.

    python bench/monitor_bench.py [--rows 1000000] [--python bench/.venv-nannyml/bin/python]

Generated data: 25 inputs (20 numeric, 5 categorical) and a binary target that depends
on six of them the same way everywhere; a training set of 200k rows and ROWS production
rows whose inputs shift more in each tenth (covariate shift only). Not timed: adding the
training set, training a LightGBM model (100 trees) and registering it, and scoring the
production rows with `workbench predict` (which logs them; its time is reported).

- workbench: `workbench monitor m@1 --window {ROWS/10}rows --json` as a separate process
  (a first report: the median of 3, each on a fresh copy of the project as predict left it,
  synced to disk first):
  reading the 1M logged rows (the typed log segments predict wrote), learning the
  reference (from the validation scores the training run kept: calibrating,
  bootstrapping the bands; the model is not loaded), input drift of 25 columns per window against the 200k training rows,
  prediction drift, CBPE estimates of five metrics with their bands, storing the report;
  then the same command again, as the next run of a cron would be: the reference is
  learnt and each window's drift already tested. With --no-drift (estimates only, what
  CBPE does): a first report (median of 3 fresh copies, timed before any report with
  drift, so nothing is reused), then the next one, its windows kept. A repeated
  report (a cron's next run) keeps each window an earlier report already computed (the
  very same rows, labels and reference): its time is the median of 5 runs;
- NannyML (0.13, its own environment: python -m venv bench/.venv-nannyml &&
  bench/.venv-nannyml/bin/pip install nannyml==0.13.1 statsmodels "pandas<3"; it
  imports statsmodels without requiring it, and runs faster to start on pandas 3,
  which bench/results/monitor.json was not measured with): a process that reads the same reference
  (the training run's validation rows, with the model's scores and the labels) and the
  same 1M scored rows (for CBPE only the columns it uses: scores, predictions and the
  reference's labels; the training set not at all), and runs CBPE (same five metrics,
  same chunks) and, separately, its univariate drift (Kolmogorov-Smirnov and chi2 on
  the 25 inputs against the training set, same chunks);

both under GNU time (NannyML's CBPE and its drift: the median of 3 each). Both run as installed
(workbench from this checkout installed into bench/.venv-workbench, not editable), with
bytecode compiled (PYTHONDONTWRITEBYTECODE is dropped: pip compiles on install, and an
editable checkout would otherwise compile every module on every run), NannyML with its
usage statistics off (NML_DISABLE_USAGE_LOGGING). Then each chunk's
estimated metrics are compared. Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from datasets_bench import installed_python, timed, write_result  # noqa: E402

METRICS = {"roc_auc": "auc", "accuracy": "accuracy", "precision": "precision",
           "recall": "recall", "f1": "f1"}  # fmt: skip

NANNYML = textwrap.dedent(
    """
    import json, sys, time, warnings
    warnings.filterwarnings("ignore")
    import pandas as pd
    import nannyml as nml
    chunk = int(sys.argv[4]); what = sys.argv[5]
    # CBPE reads the columns it uses, as `workbench monitor --no-drift` does
    answers = ["y_pred_proba", "y_pred"] if what == "cbpe" else None
    ref = pd.read_parquet(sys.argv[1], columns=[*answers, "y_true"] if answers else None)
    cur = pd.read_parquet(sys.argv[2], columns=answers)
    t = time.perf_counter()
    out = {}
    if what == "cbpe":  # the training set is read for drift only
        est = nml.CBPE(problem_type="classification_binary", y_pred_proba="y_pred_proba",
                       y_pred="y_pred", y_true="y_true", chunk_size=chunk,
                       metrics=["roc_auc", "accuracy", "precision", "recall", "f1"])
        est.fit(ref)
        res = est.estimate(cur).filter(period="analysis").to_df()
        for m in ["roc_auc", "accuracy", "precision", "recall", "f1"]:
            out[m] = res[(m, "value")].tolist()
    else:
        train = pd.read_parquet(sys.argv[3])
        inputs = [c for c in train.columns if c != "y"]
        calc = nml.UnivariateDriftCalculator(column_names=inputs, chunk_size=chunk,
            continuous_methods=["kolmogorov_smirnov"], categorical_methods=["chi2"])
        calc.fit(train[inputs])
        calc.calculate(cur[inputs])
    out["seconds"] = time.perf_counter() - t
    print(json.dumps(out))
    """
)


def generate(rows: int, seed: int, shift_tenths: bool) -> pl.DataFrame:
    """25 inputs and y; with ``shift_tenths`` each tenth of the rows has n00 and n01 moved
    a little further (and c0 more often v0), the target's dependence unchanged."""
    rng = np.random.default_rng(seed)
    step = np.repeat(np.arange(10), -(-rows // 10))[:rows] if shift_tenths else np.zeros(rows)
    cols: dict[str, np.ndarray] = {}
    for i in range(20):
        move = 0.15 * step if i < 2 else 0.0
        cols[f"n{i:02d}"] = rng.normal(move, 1, rows)
    for j in range(5):
        values = np.array([f"v{k}" for k in range(4)])
        p0 = 0.25 + (0.04 * step if j == 0 else 0.0)
        u = rng.random(rows)
        other = rng.integers(1, 4, rows)
        cols[f"c{j}"] = np.where(u < p0, values[0], values[other])
    z = (1.2 * cols["n00"] - 0.8 * cols["n01"] + 0.5 * cols["n02"] * cols["n03"]
         + np.where(cols["c0"] == "v0", 0.7, 0.0) - 0.4 * np.abs(cols["n04"]))  # fmt: skip
    cols["y"] = (rng.random(rows) < 1 / (1 + np.exp(-z))).astype(np.int64)
    return pl.DataFrame(cols)


def _median(cmd: list[str], runs: int = 5) -> tuple[float, float]:
    """Median wall seconds and peak MB of ``runs`` runs: one run of a sub-second command
    moves by 20% on a shared machine."""
    got = [timed(cmd)[:2] for _ in range(runs)]
    return statistics.median(g[0] for g in got), max(g[1] for g in got)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--python", default=str(HERE / ".venv-nannyml" / "bin" / "python"))
    ap.add_argument("--keep", action="store_true", help="keep bench/.data/monitor (to profile)")
    args = ap.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    # NannyML posts usage statistics to segment.io unless told not to; offline, its
    # failed posts printed errors at exit
    os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"
    data = HERE / ".data" / "monitor"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    chunk = args.rows // 10
    try:
        train_path, prod_path = data / "train.parquet", data / "prod.parquet"
        generate(200_000, 1, False).write_parquet(train_path)
        generate(args.rows, 2, True).drop("y").write_parquet(prod_path)
        proj = data / "proj"
        py = installed_python()
        wb = [py, "-m", "workbench", "--project", str(proj)]
        timed([py, "-m", "workbench", "init", str(proj)])
        timed([*wb, "data", "add", str(train_path), "--name", "train"])
        _, _, out = timed([*wb, "train", "train@1", "-t", "y", "-m", "lightgbm", "-p",
                           "n_estimators=100", "--json"])  # fmt: skip
        timed([*wb, "model", "register", json.loads(out)["id"], "-n", "m"])
        scored = data / "scored.parquet"
        predict_s, _, _ = timed([*wb, "predict", "m@1", str(prod_path), "-o", str(scored)])

        def firsts_of(*flags: str) -> list[tuple[float, float, str]]:
            """A first report three times, each on its own copy of the project as predict
            left it, at rest: the copy is synced first (else the report's first
            checkpoint pays for flushing the 260 MB the copy wrote)."""
            got = []
            for trial in range(3):
                copy = data / f"first{trial}"
                shutil.copytree(proj, copy)
                os.sync()
                got.append(timed([py, "-m", "workbench", "--project", str(copy),
                                  "monitor", "m@1", "--window", f"{chunk}rows", *flags]))  # fmt: skip
                shutil.rmtree(copy)
            return got

        # estimates only (--no-drift), as CBPE is: a first report learns the reference
        # from what the training run kept (a classifier's report reads only the answers)
        est_firsts = firsts_of("--no-drift", "--json")
        est_s = statistics.median(f[0] for f in est_firsts)
        est_mb = max(f[1] for f in est_firsts)
        firsts = firsts_of("--json")  # with drift: the median, as NannyML's CBPE is timed
        wb_s = statistics.median(f[0] for f in firsts)
        wb_mb = max(f[1] for f in firsts)
        wb_out = timed([*wb, "monitor", "m@1", "--window", f"{chunk}rows", "--json"])[2]
        ours = json.loads(wb_out)
        # the next report (an hourly cron): the reference learnt, the windows' drift kept
        again_s, again_mb = _median([*wb, "monitor", "m@1", "--window", f"{chunk}rows", "--json"])
        # and the next estimates-only report: each window's estimates kept
        est_cmd = [*wb, "monitor", "m@1", "--window", f"{chunk}rows", "--no-drift", "--json"]
        est_again_s, est_again_mb = _median(est_cmd)
        same = [w["metrics"] for w in json.loads(est_firsts[0][2])["windows"]] == [
            w["metrics"] for w in ours["windows"]
        ]

        # the same reference NannyML learns from: the run's validation rows
        from workbench.core.monitor.logged import reference_for
        from workbench.core.project import Project

        p = Project(proj)
        mv = p.models.resolve("m@1")
        ref = reference_for(p, mv, p.models.load(mv), None, None)
        ref_path, cur_path = data / "nanny_ref.parquet", data / "nanny_cur.parquet"
        ref.frame.with_columns(
            y_true=pl.Series(ref.y), y_pred_proba=pl.Series(ref.outputs.scores[:, 1]),
            y_pred=pl.Series(ref.outputs.pred),
        ).write_parquet(ref_path)  # fmt: skip
        s = pl.read_parquet(scored)
        s.with_columns(y_pred_proba=pl.col("proba_1"), y_pred=pl.col("prediction")).write_parquet(
            cur_path
        )
        nm_cmd = [args.python, "-c", NANNYML, str(ref_path), str(cur_path), str(train_path),
                  str(chunk), "cbpe"]  # fmt: skip
        _, _, nm_out = timed(nm_cmd)
        nm_s, nm_mb = _median(nm_cmd, 3)
        dr_cmd = [args.python, "-c", NANNYML, str(ref_path), str(cur_path), str(train_path),
                  str(chunk), "drift"]  # fmt: skip
        dr_s, dr_mb = _median(dr_cmd, 3)  # one run of it moved the ratio by a tenth
        theirs = json.loads(nm_out.strip().splitlines()[-1])
        diffs = {
            ours_name: max(
                abs(w["metrics"][ours_name]["estimated"] - v)
                for w, v in zip(ours["windows"], theirs[name], strict=True)
            )
            for name, ours_name in METRICS.items()
        }
        row = {
            "rows": args.rows,
            "inputs": 25,
            "windows": len(ours["windows"]),
            "workbench_predict_with_log_s": predict_s,
            "workbench_monitor_s": wb_s,
            "workbench_monitor_tries_s": [f[0] for f in firsts],
            "workbench_peak_mb": wb_mb,
            "workbench_monitor_again_s": again_s,
            "workbench_again_peak_mb": again_mb,
            "workbench_no_drift_s": est_s,
            "workbench_no_drift_tries_s": [f[0] for f in est_firsts],
            "workbench_no_drift_peak_mb": est_mb,
            "workbench_no_drift_again_s": est_again_s,
            "workbench_no_drift_again_peak_mb": est_again_mb,
            "no_drift_estimates_identical": same,
            "nannyml_cbpe_s": nm_s,
            "nannyml_cbpe_compute_s": theirs["seconds"],
            "nannyml_cbpe_peak_mb": nm_mb,
            "nannyml_drift_s": dr_s,
            "nannyml_drift_peak_mb": dr_mb,
            "speedup_vs_cbpe": nm_s / wb_s,
            "speedup_vs_cbpe_plus_drift": (nm_s + dr_s) / wb_s,
            "again_speedup_vs_cbpe": nm_s / again_s,
            "again_speedup_vs_cbpe_plus_drift": (nm_s + dr_s) / again_s,
            "no_drift_speedup_vs_cbpe": nm_s / est_s,
            "no_drift_again_speedup_vs_cbpe": nm_s / est_again_s,
            "max_estimate_difference": diffs,
            "ours_auc": [round(w["metrics"]["auc"]["estimated"], 4) for w in ours["windows"]],
            "nannyml_auc": [round(v, 4) for v in theirs["roc_auc"]],
            "drifted_share": [w["drift_share"] for w in ours["windows"]],
        }
        print(json.dumps(row, indent=2), flush=True)
        write_result("monitor", row)
    finally:
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
