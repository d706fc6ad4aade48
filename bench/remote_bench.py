"""Moving a project: push/pull to a folder remote and bundles, against DVC, in one run.

    python bench/remote_bench.py [--rows 10000000] [--dvc bench/.venv-dvc/bin/dvc]

1. One table (~0.94 GB of CSV at 10M rows, datasets_bench's generator) is versioned by
   workbench and by DVC; each pushes it to a folder remote (`workbench push`, `dvc
   push`), and the floor is a plain `cp -r` of the store's objects.
2. 1% of the rows are edited (scattered at random) and versioned again; each pushes
   again: what travels, and how long it takes.
3. A fresh copy of each pulls both versions back (`workbench pull`; `dvc pull` in a
   copy of the DVC project without its cache).
4. workbench bundles: the first version whole, then `--since` it after the edit; the
   incremental bundle's size against the first (the issue's question), and both
   imported into a fresh project.

Data under bench/.data (deleted afterwards). DVC in its own environment:
python -m venv bench/.venv-dvc && bench/.venv-dvc/bin/pip install dvc. Not run in CI;
results in bench/results/remote.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from datasets_bench import du, generate, timed  # noqa: E402


def edit_one_percent(df: pl.DataFrame) -> pl.DataFrame:
    rng = np.random.default_rng(1)
    idx = rng.choice(df.height, size=df.height // 100, replace=False)
    mask = pl.Series(np.isin(np.arange(df.height), idx))
    return df.with_columns(
        pl.when(mask).then(pl.col("amount") * 1.1).otherwise(pl.col("amount")).round(2)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--dvc", default=str(HERE / ".venv-dvc" / "bin" / "dvc"))
    args = ap.parse_args()
    data = HERE / ".data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()
    wb = [sys.executable, "-m", "workbench"]
    dvc = args.dvc
    r: dict[str, object] = {"rows": args.rows}
    try:
        df = generate(args.rows)
        csv = data / "table.csv"
        df.write_csv(csv)
        r["csv_bytes"] = csv.stat().st_size
        print(f"{args.rows:,} rows, {csv.stat().st_size / 1e9:.2f} GB CSV")

        src, dsrc = data / "wb", data / "dvc"
        subprocess.run([*wb, "init", str(src)], check=True, capture_output=True)
        subprocess.run([*wb, "--project", str(src), "data", "add", str(csv), "-n", "t"],
                       check=True, capture_output=True)  # fmt: skip
        subprocess.run([*wb, "--project", str(src), "remote", "add", "nas", str(data / "wb-nas")],
                       check=True, capture_output=True)  # fmt: skip
        dsrc.mkdir()
        for cmd in (["git", "init", "-q"], [dvc, "init", "-q"],
                    [dvc, "remote", "add", "-d", "nas", str(data / "dvc-nas")]):  # fmt: skip
            subprocess.run(cmd, cwd=dsrc, check=True)
        shutil.copy(csv, dsrc / "t.csv")
        subprocess.run([dvc, "add", "-q", "t.csv"], cwd=dsrc, check=True)

        # --- 1. the first push ------------------------------------------------------------
        floor_t = timed(["cp", "-r", str(src / ".workbench" / "objects"), str(data / "cp")])[0]
        wb_t, wb_m, _ = timed([*wb, "--project", str(src), "push"])
        d_t, d_m, _ = timed([dvc, "push", "-q"], cwd=dsrc)
        r["first_push"] = {
            "workbench_s": wb_t, "workbench_peak_mb": wb_m,
            "workbench_remote_bytes": du(data / "wb-nas"),
            "dvc_s": d_t, "dvc_peak_mb": d_m, "dvc_remote_bytes": du(data / "dvc-nas"),
            "cp_objects_s": floor_t, "ratio_vs_dvc": wb_t / d_t, "ratio_vs_cp": wb_t / max(floor_t, 0.01),
        }  # fmt: skip
        print("first push", json.dumps(r["first_push"], indent=1))
        full = data / "full.wb"
        b_t, b_m, _ = timed([*wb, "--project", str(src), "bundle", "create", str(full)])

        # --- 2. a 1% edit, pushed -----------------------------------------------------------
        edit_one_percent(df).write_csv(csv)
        subprocess.run([*wb, "--project", str(src), "data", "add", str(csv), "-n", "t"],
                       check=True, capture_output=True)  # fmt: skip
        shutil.copy(csv, dsrc / "t.csv")
        subprocess.run([dvc, "add", "-q", "t.csv"], cwd=dsrc, check=True)
        before_wb, before_d = du(data / "wb-nas"), du(data / "dvc-nas")
        wb_t, _, out = timed([*wb, "--project", str(src), "push", "--json"])
        sent = json.loads(out)
        d_t, _, _ = timed([dvc, "push", "-q"], cwd=dsrc)
        r["edit_push"] = {
            "workbench_s": wb_t, "workbench_objects_bytes_sent": sent["bytes_sent"],
            "workbench_catalog_bytes": sent["catalog_bytes"],
            "workbench_remote_growth_bytes": du(data / "wb-nas") - before_wb,
            "dvc_s": d_t, "dvc_remote_growth_bytes": du(data / "dvc-nas") - before_d,
            "ratio_vs_dvc": wb_t / d_t,
        }  # fmt: skip
        print("after a 1% edit", json.dumps(r["edit_push"], indent=1))
        inc = data / "inc.wb"
        i_t, _, _ = timed([*wb, "--project", str(src), "bundle", "create", str(inc),
                           "--since", str(full)])  # fmt: skip
        r["bundles"] = {
            "full_bytes": full.stat().st_size, "full_create_s": b_t, "full_peak_mb": b_m,
            "incremental_bytes": inc.stat().st_size, "incremental_create_s": i_t,
            "incremental_over_full": inc.stat().st_size / full.stat().st_size,
        }  # fmt: skip

        # --- 3. pull both versions into a fresh copy ----------------------------------------
        dst = data / "wb-dst"
        subprocess.run([*wb, "init", str(dst)], check=True, capture_output=True)
        subprocess.run([*wb, "--project", str(dst), "remote", "add", "nas", str(data / "wb-nas")],
                       check=True, capture_output=True)  # fmt: skip
        wb_t, wb_m, _ = timed([*wb, "--project", str(dst), "pull"])
        ddst = data / "dvc-dst"
        shutil.copytree(dsrc, ddst, ignore=shutil.ignore_patterns("cache", "t.csv", "tmp"))
        d_t, d_m, _ = timed([dvc, "pull", "-q"], cwd=ddst)
        r["pull"] = {
            "workbench_s": wb_t, "workbench_peak_mb": wb_m, "dvc_s": d_t, "dvc_peak_mb": d_m,
            "ratio_vs_dvc": wb_t / d_t,
            "note": "dvc pull checks out the newest file only; workbench pull brings every version",
        }  # fmt: skip
        gap = data / "wb-gap"
        subprocess.run([*wb, "init", str(gap)], check=True, capture_output=True)
        f_t, f_m, _ = timed([*wb, "--project", str(gap), "bundle", "import", str(full)])
        n_t, _, _ = timed([*wb, "--project", str(gap), "bundle", "import", str(inc)])
        r["bundles"].update(full_import_s=f_t, full_import_peak_mb=f_m, incremental_import_s=n_t)  # type: ignore[attr-defined]
        print(json.dumps({k: r[k] for k in ("pull", "bundles")}, indent=1))
        out_file = HERE / "results" / "remote.json"
        out_file.write_text(json.dumps(r, indent=2) + "\n")
        print(f"wrote {out_file}")
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
