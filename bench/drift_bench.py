"""Drift against Evidently's DataDriftPreset, measured in one run on the same data.

    python bench/drift_bench.py [--rows 100000 1000000] [--unequal 1000000:900000]
                                [--python bench/.venv-evidently/bin/python]

Generated data: 20 numeric and 5 categorical columns, ROWS rows per side (and, for
--unequal REF:CUR, REF rows against CUR: a new batch is rarely the training set's size,
and sides of one size take a shortcut, the mean gap of the sorted values); in the
current side 3 numeric and 2 categorical columns are shifted. For each size:

- workbench: `workbench drift ref@1 ref@2 --json` on versions added beforehand (the
  ingest is not timed; drift reads the stored Parquet), as a separate process;
- Evidently: a process that reads the same two Parquet files with pandas and runs
  `Report([DataDriftPreset()])`, printing each column's verdict;
- the floor: a process that reads both Parquet files with Polars and sorts each numeric
  column once, which the exact Wasserstein and KS tests cannot avoid: with NumPy's sort
  (x86-simd-sort, five times Polars' on an AVX-512 machine), two columns at a time, on
  the code path the command picks (AVX2 on a Zen 4, where the AVX-512 sort is slower;
  Evidently, run as its users run it, keeps NumPy's default there);

all under GNU time for wall seconds and peak RSS, the three taking turns (the median of
5 runs of workbench and of the floor, of 3 of Evidently: one run of each moved the
100k ratio between 15x and 23x), then the per-column verdicts and methods are compared.
workbench and the floor run on this checkout installed into bench/.venv-workbench (not
editable: an editable install's import finder costs every process 10-20 ms). All
run with bytecode compiled (PYTHONDONTWRITEBYTECODE is dropped, as an installed package
has it). Evidently needs pandas < 3, so it lives in its own environment: python -m
venv bench/.venv-evidently && bench/.venv-evidently/bin/pip install
"evidently==0.7.*" "pandas<3" pyarrow. Not run in CI.
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
from datasets_bench import installed_python, timed, write_result  # noqa: E402

SHIFTED = ["n00", "n01", "n02", "c0", "c1"]

EVIDENTLY = textwrap.dedent(
    """
    import json, sys, warnings
    warnings.filterwarnings("ignore")
    import pandas as pd
    from evidently.legacy.metric_preset import DataDriftPreset
    from evidently.legacy.report import Report
    ref = pd.read_parquet(sys.argv[1])
    cur = pd.read_parquet(sys.argv[2])
    report = Report(metrics=[DataDriftPreset()])
    report.run(reference_data=ref, current_data=cur)
    for m in report.as_dict()["metrics"]:
        by = m["result"].get("drift_by_columns")
        if by:
            print(json.dumps({c: {"method": v["stattest_name"], "score": v["drift_score"],
                                  "drifted": v["drift_detected"]} for c, v in by.items()}))
    """
)


FLOOR = textwrap.dedent(
    """
    import os, sys
    from concurrent.futures import ThreadPoolExecutor
    from workbench.core.host import numpy_features_off
    off = numpy_features_off()  # NumPy's faster sort on a Zen 4, as the command picks
    if off and "NPY_DISABLE_CPU_FEATURES" not in os.environ:
        os.environ["NPY_DISABLE_CPU_FEATURES"] = off
    import numpy as np
    import polars as pl
    with ThreadPoolExecutor(2) as pool:
        for path in sys.argv[1:]:
            df = pl.read_parquet(path)
            numeric = [c for c, t in df.schema.items() if t.is_numeric()]
            list(pool.map(lambda c: np.sort(df.get_column(c).to_numpy()), numeric))
    """
)


def in_turns(cmds: list[list[str]], runs: list[int]) -> list[tuple[float, float, str]]:
    """Each command ``runs[i]`` times, taking turns (so that a neighbour's load, or the
    machine slowing for a minute, falls on all alike): per command the median wall
    seconds, the largest peak RSS and the last output."""
    tries: list[list[tuple[float, float, str]]] = [[] for _ in cmds]
    for turn in range(max(runs)):
        for i, cmd in enumerate(cmds):
            if turn < runs[i]:
                tries[i].append(timed(cmd))
    return [(statistics.median(t[0] for t in ts), max(t[1] for t in ts), ts[-1][2]) for ts in tries]


# Evidently's display names of its default tests -> ours.
EVIDENTLY_NAMES = {
    "K-S": "ks",
    "chi-square": "chisquare",
    "Z-test": "z",
    "Wasserstein": "wasserstein",
    "Jensen-Shannon": "jensenshannon",
    "PSI": "psi",
}


def evidently_name(display: str) -> str:
    for prefix, name in EVIDENTLY_NAMES.items():
        if display.startswith(prefix):
            return name
    return display


def generate(rows: int, seed: int, shifted: bool) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    for i in range(20):
        shift = 0.5 if shifted and f"n{i:02d}" in SHIFTED else 0.0
        if i % 4 == 3:  # some integer columns with few values
            cols[f"n{i:02d}"] = rng.poisson(3 + 3 * shift, rows)
        else:
            cols[f"n{i:02d}"] = rng.normal(10 * i + shift * (i + 1), i + 1, rows)
    for j in range(5):
        values = [f"v{k}" for k in range(3 + 4 * j)]
        p = np.ones(len(values))
        if shifted and f"c{j}" in SHIFTED:
            p[0] *= 4
        cols[f"c{j}"] = rng.choice(values, rows, p=p / p.sum())
    return pl.DataFrame(cols)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--unequal", nargs="*", default=["1000000:900000"], metavar="REF:CUR")
    ap.add_argument("--python", default=str(HERE / ".venv-evidently" / "bin" / "python"))
    args = ap.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    data = HERE / ".data" / "drift"
    py = installed_python()  # workbench and the floor, as installed
    out: list[dict[str, object]] = []
    try:
        sizes = [(r, r) for r in args.rows] + [
            (int(a), int(b)) for a, b in (u.split(":") for u in args.unequal)
        ]
        for rows, current_rows in sizes:
            shutil.rmtree(data, ignore_errors=True)
            data.mkdir(parents=True)
            ref_path, cur_path = data / "ref.parquet", data / "cur.parquet"
            generate(rows, 1, False).write_parquet(ref_path)
            generate(current_rows, 2, True).write_parquet(cur_path)
            proj = data / "proj"
            wb = [py, "-m", "workbench", "--project", str(proj)]
            timed([py, "-m", "workbench", "init", str(proj)])
            timed([*wb, "data", "add", str(ref_path), "--name", "d"])
            timed([*wb, "data", "add", str(cur_path), "--name", "d"])

            (wb_s, wb_mb, wb_out), (floor_s, floor_mb, _), (ev_s, ev_mb, ev_out) = in_turns(
                [
                    [*wb, "drift", "d@1", "d@2", "--json"],
                    [py, "-c", FLOOR, str(ref_path), str(cur_path)],
                    [args.python, "-c", EVIDENTLY, str(ref_path), str(cur_path)],
                ],
                [5, 5, 3],  # Evidently's runs are long: three, in the first three turns
            )
            ours = {c["column"]: c for c in json.loads(wb_out)["columns"]}
            theirs = json.loads(ev_out.strip().splitlines()[-1])
            verdicts = sum(ours[c]["drifted"] == v["drifted"] for c, v in theirs.items())
            methods = sum(
                ours[c]["method"] == evidently_name(v["method"]) for c, v in theirs.items()
            )
            scores = max(
                abs(
                    (ours[c]["p_value"] if ours[c]["p_value"] is not None else ours[c]["statistic"])
                    - v["score"]
                )
                for c, v in theirs.items()
            )
            row = {
                "reference_rows": rows,
                "current_rows": current_rows,
                "workbench_s": wb_s,
                "evidently_s": ev_s,
                "speedup": ev_s / wb_s,
                "workbench_peak_mb": wb_mb,
                "evidently_peak_mb": ev_mb,
                "memory_ratio": wb_mb / ev_mb,
                "floor_s": floor_s,
                "floor_peak_mb": floor_mb,
                "ratio_to_floor": wb_s / floor_s,
                "same_verdicts": f"{verdicts}/{len(theirs)}",
                "same_methods": f"{methods}/{len(theirs)}",
                "max_score_difference": scores,
                "drifted_columns": sorted(c for c, v in ours.items() if v["drifted"]),
                "evidently_methods": sorted({v["method"] for v in theirs.values()}),
            }
            print(json.dumps(row, indent=2), flush=True)
            out.append(row)
        write_result("drift", out)
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
