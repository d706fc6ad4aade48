"""What checking every chunk's hash on read costs, on a ~1 GB version.

    python bench/read_bench.py [--rows 10000000] [--tries 3]

Every read of a dataset version re-hashes the chunks it reads (the store's promise: what
is read is what was stored). This measures that promise against the read without it
("today's read" before the check existed: the same Parquet scan of the same chunks), in
one run, taking turns, fastest of ``--tries`` each:

- a full read into memory (``Datasets.load``: what train, drift and predict do);
- an export to Parquet (``data export``);
- a one-column read (the check hashes whole chunks, so this is its worst case);
- a 100-row page in the middle (the app's row browser: one chunk is checked).

Each verified read opens a fresh ``Project``, so no hash is remembered from the last
try. Data is generated on the fly under bench/.data (deleted afterwards). Not run in CI.
There is no peer: DVC and MLflow check hashes when data is added or pulled, not when a
local copy is read.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from datasets_bench import generate  # noqa: E402

from workbench.core.data.segments import scan_segments  # noqa: E402
from workbench.core.project import Project  # noqa: E402


def best(fn: Callable[[], object], tries: int) -> float:
    times = []
    for _ in range(tries):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--tries", type=int, default=3)
    args = ap.parse_args()

    work = HERE / ".data" / "read"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        csv = work / "t.csv"
        generate(args.rows).write_csv(csv)
        root = work / "proj"
        p, _ = Project.init(root)
        v = p.datasets.add(csv, name="t").version
        stored = sum(p.objects.size(d) for s in v.segments for d in s.digests)
        mid = args.rows // 2

        def plain(shape: str) -> Callable[[], object]:
            def read() -> object:
                q = Project(root)
                ver = q.datasets.resolve("t@1")
                lf = scan_segments(ver.segments, q.objects.path)
                return shape_of(shape, lf, work / "plain.parquet")

            return read

        def checked(shape: str) -> Callable[[], object]:
            def read() -> object:
                q = Project(root)
                if shape == "page":
                    return q.datasets.rows("t@1", mid, 100)
                return shape_of(shape, q.datasets.scan("t@1"), work / "checked.parquet")

            return read

        def shape_of(shape: str, lf, out: Path) -> object:  # type: ignore[no-untyped-def]
            if shape == "full":
                return lf.collect()
            if shape == "export":
                lf.sink_parquet(out)
                return out
            if shape == "column":
                return lf.select("amount").collect()
            return lf.slice(mid, 100).collect()

        results: dict[str, dict[str, float]] = {}
        for shape in ("full", "export", "column", "page"):
            a, b = [], []
            for _ in range(args.tries):  # taking turns, so load drifts hit both alike
                a.append(best(plain(shape), 1))
                b.append(best(checked(shape), 1))
            results[shape] = {
                "unchecked_s": round(min(a), 3),
                "checked_s": round(min(b), 3),
                "overhead": round(min(b) / min(a) - 1, 3),
            }
            print(
                f"{shape:7s} unchecked {min(a):7.3f} s  checked {min(b):7.3f} s  "
                f"overhead {100 * (min(b) / min(a) - 1):+5.1f}%"
            )
        out = {
            "rows": args.rows,
            "csv_bytes": csv.stat().st_size,
            "stored_bytes": stored,
            "chunks": len(v.segments),
            "tries": args.tries,
            "results": results,
        }
        (HERE / "results" / "read.json").write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps(out, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
