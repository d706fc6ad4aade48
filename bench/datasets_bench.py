"""Dataset versioning against DVC and sha256sum, measured in one run.

    python bench/datasets_bench.py [--rows 10000000] [--dvc bench/.venv-dvc/bin/dvc]

1. Time and peak memory to version one generated CSV (~1 GB at 10M rows) with
   `workbench data add`, `dvc add` and plain `sha256sum`.
2. Disk used by ten versions of that table, each appending or editing 1% of the
   rows (scattered at random), in workbench versus DVC's cache.

Data is generated on the fly under bench/.data (deleted afterwards). Install DVC
in its own environment first: python -m venv bench/.venv-dvc &&
bench/.venv-dvc/bin/pip install dvc. Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent


def generate(rows: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "id": np.arange(rows),
            "ts": (
                np.datetime64("2024-01-01T00:00:00", "ms")
                + rng.integers(0, 365 * 86400, rows).astype("timedelta64[s]")
            ).astype("datetime64[ms]"),
            "customer": rng.integers(0, 1_000_000, rows),
            "amount": rng.lognormal(3, 1, rows).round(2),
            "x1": rng.normal(size=rows).round(6),
            "x2": rng.uniform(0, 1000, rows).round(3),
            "x3": rng.normal(50, 10, rows).round(4),
            "category": rng.choice(
                ["grocery", "travel", "fuel", "online", "dining", "health"], rows
            ),
            "city": rng.choice([f"city_{i:03d}" for i in range(400)], rows),
            "channel": rng.choice(["web", "app", "store"], rows),
            "flag": rng.integers(0, 2, rows),
            "label": rng.integers(0, 2, rows),
        }
    )


def timed(
    cmd: list[str], cwd: Path | None = None, env: dict | None = None
) -> tuple[float, float, str]:
    """Wall seconds and peak RSS (MB) of a command, via GNU time."""
    out = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M", *cmd],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    if out.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {out.stderr.strip()[-500:]}")
    wall, rss_kb = out.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss_kb) / 1024, out.stdout


def installed_python() -> str:
    """A Python that has workbench as a user has it: installed from this checkout into
    bench/.venv-workbench, not editable. An editable install's import finder (a .pth
    that site runs in every process) cost each command, and the floor's Python too,
    10-20 ms: a tenth of what a first-report or 100k-row drift bench times. Made once,
    then this checkout is reinstalled into it (no dependencies: ~5 s) on every call."""
    venv = HERE / ".venv-workbench"
    py = venv / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([*pip, str(HERE.parent)], check=True, capture_output=True)
    subprocess.run([*pip, "--no-deps", "--force-reinstall", str(HERE.parent)], check=True,
                   capture_output=True)  # fmt: skip
    return str(py)


def machine() -> dict[str, object]:
    """The host a figure was measured on. This VM lands on hosts of more than one CPU
    generation: on one without AVX-512 (2026-12-07, late) NumPy sorted 100k doubles in
    1.0 ms against 0.5 and Evidently took 1.5x as long, so a ratio is only comparable
    with one from the same kind of host."""
    import datetime as dt
    import platform

    from workbench.core.host import cpu_fields, first_cpu

    info = cpu_fields(first_cpu())  # the first processor's entry is enough
    flags = set(info.get("flags", "").split())
    return {
        "measured": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": info.get("model name") or platform.processor() or platform.machine(),
        "cpu_family_model": f"{info.get('cpu family', '?')}/{info.get('model', '?')}",
        "avx512": "avx512f" in flags,
        "cores": os.cpu_count(),
    }


def write_result(name: str, result: object) -> Path:
    """Keep a bench's figures as bench/results/NAME.json (what the README cites), with
    the host they were measured on (each row's, for a list of rows)."""
    host = machine()
    if isinstance(result, dict):
        result = {**result, "machine": host}
    elif isinstance(result, list):
        result = [{**r, "machine": host} if isinstance(r, dict) else r for r in result]
    out = HERE / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return out


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--versions", type=int, default=10)
    ap.add_argument("--dvc", default=str(HERE / ".venv-dvc" / "bin" / "dvc"))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="tries of the one-file add")
    args = ap.parse_args()
    data = HERE / ".data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()
    wb = [sys.executable, "-m", "workbench"]
    results: dict[str, object] = {"rows": args.rows}
    try:
        df = generate(args.rows)
        csv = data / "table.csv"
        df.write_csv(csv)
        results["csv_bytes"] = csv.stat().st_size
        print(f"generated {args.rows:,} rows, {csv.stat().st_size / 1e9:.2f} GB CSV")

        # --- 1. version one big CSV ---------------------------------------------------
        subprocess.run(
            ["cat", str(csv)], stdout=subprocess.DEVNULL, check=True
        )  # warm the cache for all
        # Each tool versions the file --repeat times into a fresh store, taking turns, and
        # the fastest try counts: on this VM one try can be 10-30% slower than the next.
        wbp, dvcp = data / "wb", data / "dvc"
        tries: dict[str, list[tuple[float, float]]] = {
            "sha256sum": [],
            "workbench": [],
            "dvc": [],
            "polars_parse": [],
            "polars_to_parquet": [],
            "polars_to_parquet_typed": [],
        }
        # The floor of any add that reads the table, as the issue asks (a profile and
        # columnar chunks): Polars alone parsing the CSV on every core, and parsing it
        # into one zstd-1 Parquet file, with no hashing, profile or catalog.
        # The stored table types the ISO timestamps as a datetime, which that floor keeps
        # as text: the typed floor parses them too, told their format (Polars' own
        # try_parse_dates took as long as workbench's whole add, 7 s against 4.3).
        floor = {
            "polars_parse": "import sys, polars as pl; pl.read_csv(sys.argv[1])",
            "polars_to_parquet": "import sys, polars as pl; pl.scan_csv(sys.argv[1])"
            ".sink_parquet(sys.argv[2], compression='zstd', compression_level=1)",
            "polars_to_parquet_typed": "import sys, polars as pl; pl.scan_csv(sys.argv[1])"
            ".with_columns(pl.col('ts').str.to_datetime('%Y-%m-%dT%H:%M:%S%.f', time_unit='ms'))"
            ".sink_parquet(sys.argv[2], compression='zstd', compression_level=1)",
        }
        for _ in range(args.repeat):
            tries["sha256sum"].append(timed(["sha256sum", str(csv)])[:2])
            for name, code in floor.items():
                tries[name].append(
                    timed([sys.executable, "-c", code, str(csv), str(data / "floor.parquet")])[:2]
                )
                (data / "floor.parquet").unlink(missing_ok=True)
            shutil.rmtree(wbp, ignore_errors=True)
            subprocess.run([*wb, "init", str(wbp)], check=True, capture_output=True)
            tries["workbench"].append(
                timed([*wb, "--project", str(wbp), "data", "add", str(csv), "-n", "table"])[:2]
            )
            shutil.rmtree(dvcp, ignore_errors=True)
            dvcp.mkdir()
            subprocess.run(["git", "init", "-q"], cwd=dvcp, check=True)
            subprocess.run([args.dvc, "init", "-q"], cwd=dvcp, check=True)
            shutil.copy(csv, dvcp / "table.csv")
            subprocess.run(["cat", str(dvcp / "table.csv")], stdout=subprocess.DEVNULL, check=True)
            tries["dvc"].append(timed([args.dvc, "add", "-q", "table.csv"], cwd=dvcp)[:2])
        (sha_t, _), (wb_t, wb_m), (dvc_t, dvc_m), (parse_t, _), (pq_t, _), (typed_t, _) = (
            min(tries[k]) for k in tries
        )
        results["add"] = {
            "polars_parse_s": parse_t,
            "polars_to_parquet_s": pq_t,
            "workbench_s": wb_t,
            "workbench_peak_mb": wb_m,
            "dvc_s": dvc_t,
            "dvc_peak_mb": dvc_m,
            "sha256sum_s": sha_t,
            "ratio_vs_dvc": wb_t / dvc_t,
            "ratio_vs_sha256sum": wb_t / sha_t,
            # the goal: at most 1.3x parsing the CSV into one zstd-1 Parquet file
            "ratio_vs_floor": wb_t / pq_t,
            "polars_to_parquet_typed_s": typed_t,
            "ratio_vs_typed_floor": wb_t / typed_t,
            "tries_s": {k: [t for t, _ in v] for k, v in tries.items()},
        }
        print(json.dumps(results["add"], indent=2))

        # --- 2. ten versions, each appending or editing 1% of the rows ------------------
        rng = np.random.default_rng(1)
        one_version = du(wbp / ".workbench" / "objects")
        dvc_one = du(dvcp / ".dvc" / "cache")
        times = []
        cur = df
        for v in range(2, args.versions + 1):
            k = max(1, cur.height // 100)
            if v % 2 == 0:  # append 1%
                extra = generate(k, seed=v).with_columns(pl.col("id") + cur.height)
                cur = pl.concat([cur, extra])
                kind = "append"
            else:  # edit 1% of rows, scattered
                idx = rng.choice(cur.height, size=k, replace=False)
                mask = pl.Series(np.isin(np.arange(cur.height), idx))
                cur = cur.with_columns(
                    pl.when(mask)
                    .then(pl.col("amount") * 1.1)
                    .otherwise(pl.col("amount"))
                    .round(2)
                    .alias("amount")
                )
                kind = "edit"
            cur.write_csv(csv)
            t, m, _ = timed(
                [*wb, "--project", str(wbp), "data", "add", str(csv), "-n", "table", "-m", kind]
            )
            shutil.copy(csv, dvcp / "table.csv")
            td, _, _ = timed([args.dvc, "add", "-q", "table.csv"], cwd=dvcp)
            times.append(
                {"version": v, "kind": kind, "workbench_s": t, "workbench_peak_mb": m, "dvc_s": td}
            )
            print(times[-1])
        wb_all = du(wbp / ".workbench" / "objects")
        dvc_all = du(dvcp / ".dvc" / "cache")
        results["versions"] = {
            "count": args.versions,
            "steps": times,
            "workbench_objects_bytes": wb_all,
            "workbench_one_version_bytes": one_version,
            "workbench_ratio_to_one_version": wb_all / one_version,
            "workbench_catalog_bytes": (wbp / ".workbench" / "catalog.duckdb").stat().st_size,
            "dvc_cache_bytes": dvc_all,
            "dvc_one_version_bytes": dvc_one,
            "dvc_ratio_to_one_version": dvc_all / dvc_one,
            "disk_ratio_workbench_vs_dvc": wb_all / dvc_all,
        }
        check = subprocess.run(
            [*wb, "--project", str(wbp), "verify"], capture_output=True, text=True
        )
        results["verify"] = check.stdout.strip().splitlines()[-1]
        print(json.dumps({k: v for k, v in results["versions"].items() if k != "steps"}, indent=2))
        write_result("datasets", results)
    finally:
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
