"""Every command the README shows, timed as a user types it, against the floor.

    python bench/readme_bench.py

Builds the flights demo as the README's tour does (`workbench demo flights-demo
--no-ui`, timed), then runs each line of the README's `bash` blocks in order, in the
demo project, each as its own process (state carries over, as it does for a reader:
`data add december.csv` adds the file `data export` wrote). Run ids in the README are
examples; the demo's `lightgbm` and `forest` runs stand in for them, as in
tests/test_docs.py. Each command runs once (single runs: expect 10-20% noise); its wall time is reported with its ratio to the floor of
any command here, measured in the same run: `python -c "import duckdb, polars"` (the
median of 7 runs first and one before each command). Commands that do real work (training, a sweep, a pipeline) are far above
it by nature; the listings and reads should sit near it. Results in
bench/results/readme.json. Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from datasets_bench import write_result  # noqa: E402

sys.path.insert(0, str(HERE.parent))
from small_bench import seconds  # noqa: E402

FENCE = re.compile(r"^```bash[^\n]*\n(.*?)^```", re.M | re.S)


def tour(readme: Path) -> list[list[str]]:
    """The README's bash lines in order as words, comments dropped, each cut at ``&&``
    (the demo line's ``cd`` is where the rest run)."""
    lines = []
    for block in FENCE.findall(readme.read_text()):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                lines.append(words[: words.index("&&")] if "&&" in words else words)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7, help="runs of the floor")
    args = ap.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode compiled
    exe = Path(sys.executable).parent / "workbench"
    work = Path(tempfile.mkdtemp(prefix="wb-readme-"))
    try:
        lines = tour(HERE.parent / "README.md")
        at = next(i for i, words in enumerate(lines) if words[:2] == ["workbench", "demo"])
        demo = lines[at]
        took = seconds([str(exe), *demo[1:]], work)
        timed = [(shlex.join(demo), took)]
        project = work / demo[2]
        from workbench.core.project import Project

        runs = {r["name"]: r["id"] for r in Project(project).runs.list(limit=None)}
        subs = {"run:4f2a": f"run:{runs['lightgbm'][:8]}", "run:9c1e": f"run:{runs['forest'][:8]}"}
        floor_cmd = [sys.executable, "-c", "import duckdb, polars"]
        floors = [seconds(floor_cmd, project) for _ in range(args.repeat)]
        for words in lines[at + 1 :]:
            if words[0] != "workbench":
                continue
            words = [subs.get(w, w) for w in words]
            floors.append(seconds(floor_cmd, project))  # in turns: the machine drifts
            took = seconds([str(exe), *words[1:]], project)
            timed.append((shlex.join(words), took))
        floor = statistics.median(floors)
        rows = [
            {"command": cmd, "seconds": round(t, 3), "ratio_to_floor": round(t / floor, 2)}
            for cmd, t in timed
        ]
        result = {"floor_s": round(floor, 3), "commands": rows}
        print(json.dumps(result, indent=2))
        write_result("readme", result)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
