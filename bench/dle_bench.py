"""DLE against NannyML's: a regressor's MAE and RMSE estimated batch by batch, one run.

    python bench/dle_bench.py [--python bench/.venv-nannyml/bin/python]

Generated data: 6 inputs (4 numeric, 2 categorical) and a target whose noise grows with
|x2| and with c0 = "a" (so the error is predictable from the inputs, which is what DLE
needs), a 20,000-row training set and 10 later batches of 5,000 rows whose x1 and c0
move batch by batch (covariate shift only). workbench trains a LightGBM regressor (100
trees) and registers it; each batch is scored with `workbench predict` (logged) and
`workbench monitor m@1 --window batch --no-drift --json` estimates MAE and RMSE.

NannyML 0.13's DLE (its own environment, see bench/README.md) gets the same reference
(the training run's validation rows, with the model's predictions and the labels) and the
same batches as chunks, twice: with its default nanny models (LightGBM's defaults) and
with workbench's nanny settings. Each estimate is compared with the other tool's and
with the realised metric (the labels are known to the bench). Not run in CI; results in
bench/results/dle.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from datasets_bench import timed, write_result  # noqa: E402

BATCHES, BATCH_ROWS = 10, 5_000
INPUTS = ["x1", "x2", "x3", "x4", "c0", "c1"]

NANNYML = textwrap.dedent(
    """
    import json, sys, warnings
    warnings.filterwarnings("ignore")
    import pandas as pd
    import nannyml as nml
    ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
    chunk = int(sys.argv[3]); ours = json.loads(sys.argv[4])
    features = [c for c in ref.columns if c not in ("y_true", "y_pred")]
    for frame in (ref, cur):
        for c in features:
            if not pd.api.types.is_numeric_dtype(frame[c]):
                frame[c] = frame[c].astype(object).astype("category")
    out = {}
    for name, params in (("defaults", None), ("ours", ours)):
        est = nml.DLE(feature_column_names=features, y_pred="y_pred", y_true="y_true",
                      chunk_size=chunk, metrics=["mae", "rmse"], hyperparameters=params)
        est.fit(ref)
        res = est.estimate(cur).filter(period="analysis").to_df()
        out[name] = {m: res[(m, "value")].tolist() for m in ("mae", "rmse")}
    print(json.dumps(out))
    """
)

# workbench's nanny (core/monitor/estimate.py's _nanny), for NannyML's second run
OUR_NANNY = {"n_estimators": 100, "learning_rate": 0.05, "num_leaves": 15,
             "min_child_samples": 20, "random_state": 0, "verbose": -1, "n_jobs": 1}  # fmt: skip


def generate(rows: int, seed: int, shift: float) -> pl.DataFrame:
    """Inputs and y; ``shift`` moves x1's mean and c0's mix, not how y depends on them."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(shift, 1, rows), rng.normal(0, 1, rows)
    x3, x4 = rng.uniform(0, 1, rows), rng.normal(0, 2, rows)
    c0 = np.where(rng.random(rows) < 0.3 + 0.04 * shift, "a", rng.choice(["b", "c"], rows))
    c1 = rng.choice(["p", "q", "r", "s"], rows)
    signal = 3 * x1 - 2 * x2 + 4 * x3 + np.where(c1 == "p", 2.0, 0.0) + 10
    noise = (0.5 + np.abs(x2) + np.where(c0 == "a", 1.5, 0.0)) * rng.normal(0, 1, rows)
    return pl.DataFrame({"x1": x1, "x2": x2, "x3": x3, "x4": x4, "c0": c0, "c1": c1,
                         "y": signal + noise})  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default=str(HERE / ".venv-nannyml" / "bin" / "python"))
    args = ap.parse_args()
    data = HERE / ".data" / "dle"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    try:
        generate(20_000, 0, 0.0).write_parquet(data / "train.parquet")
        proj = data / "proj"
        wb = [sys.executable, "-m", "workbench", "--project", str(proj)]
        timed([sys.executable, "-m", "workbench", "init", str(proj)])
        timed([*wb, "data", "add", str(data / "train.parquet"), "--name", "train"])
        _, _, out = timed([*wb, "train", "train@1", "-t", "y", "-m", "lightgbm", "-p",
                           "n_estimators=100", "--json"])  # fmt: skip
        timed([*wb, "model", "register", json.loads(out)["id"], "-n", "m"])
        batches, scored = [], []
        for k, shift in enumerate(np.linspace(-1, 1.5, BATCHES)):
            batch = generate(BATCH_ROWS, 100 + k, float(shift))
            batch.drop("y").write_parquet(data / f"b{k}.parquet")
            timed([*wb, "predict", "m@1", str(data / f"b{k}.parquet"), "-o",
                   str(data / f"s{k}.parquet")])  # fmt: skip
            batches.append(batch)
            scored.append(pl.read_parquet(data / f"s{k}.parquet"))
        _, _, mon = timed([*wb, "monitor", "m@1", "--window", "batch", "--no-drift", "--json"])
        ours = json.loads(mon)["windows"]

        from workbench.core.monitor.logged import reference_for
        from workbench.core.project import Project

        p = Project(proj)
        mv = p.models.resolve("m@1")
        ref = reference_for(p, mv, p.models.load(mv), None, None)
        ref.frame.select(INPUTS).with_columns(
            y_true=pl.Series(ref.y, dtype=pl.Float64),
            y_pred=pl.Series(ref.outputs.pred, dtype=pl.Float64),
        ).write_parquet(data / "nanny_ref.parquet")
        cur = pl.concat(
            [b.select(INPUTS).with_columns(y_pred=s["prediction"].cast(pl.Float64))
             for b, s in zip(batches, scored, strict=True)]
        )  # fmt: skip
        cur.write_parquet(data / "nanny_cur.parquet")
        _, _, nm_out = timed([args.python, "-c", NANNYML, str(data / "nanny_ref.parquet"),
                              str(data / "nanny_cur.parquet"), str(BATCH_ROWS),
                              json.dumps(OUR_NANNY)])  # fmt: skip
        theirs = json.loads(nm_out.strip().splitlines()[-1])

        real = {"mae": [], "rmse": []}
        for b, s in zip(batches, scored, strict=True):
            err = b["y"].to_numpy() - s["prediction"].cast(pl.Float64).to_numpy()
            real["mae"].append(float(np.mean(np.abs(err))))
            real["rmse"].append(float(np.sqrt(np.mean(err**2))))
        row: dict[str, object] = {"batches": BATCHES, "rows_per_batch": BATCH_ROWS}
        for m in ("mae", "rmse"):
            mine = [w["metrics"][m]["estimated"] for w in ours]
            row[m] = {
                "workbench": [round(v, 4) for v in mine],
                "nannyml_defaults": [round(v, 4) for v in theirs["defaults"][m]],
                "nannyml_our_nanny": [round(v, 4) for v in theirs["ours"][m]],
                "realised": [round(v, 4) for v in real[m]],
                "max_abs_diff_vs_nannyml_defaults": max(
                    abs(a - b) for a, b in zip(mine, theirs["defaults"][m], strict=True)),
                "max_abs_diff_vs_nannyml_our_nanny": max(
                    abs(a - b) for a, b in zip(mine, theirs["ours"][m], strict=True)),
                "max_rel_diff_vs_nannyml_defaults": max(
                    abs(a - b) / b for a, b in zip(mine, theirs["defaults"][m], strict=True)),
                "mean_abs_error_vs_realised": {
                    "workbench": float(np.mean(np.abs(np.subtract(mine, real[m])))),
                    "nannyml_defaults": float(
                        np.mean(np.abs(np.subtract(theirs["defaults"][m], real[m])))),
                },
                "within_band": sum(bool(w["metrics"][m]["within"]) for w in ours)
                if ours[0]["metrics"][m].get("within") is not None else None,
            }  # fmt: skip
        print(json.dumps(row, indent=2), flush=True)
        write_result("dle", row)
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
