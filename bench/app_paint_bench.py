"""The app from the shell to its first full paint, in a real terminal (tmux), one run.

    python bench/app_paint_bench.py [--runs 7] [--project DIR]

On the demo project (built first with `workbench demo DIR --no-ui`, unless --project is
given): `workbench --project DIR ui` is started in a fresh 160x45 tmux window and the
pane is read every 10 ms until every panel of the overview shows its data (the newest
dataset version, a run, the production model, a drift report and the newest audit
entry). The floor, measured the same way in the same run: a Textual app that shows one
line of text (Python starting, Textual importing and painting: what no Textual app can
avoid). Medians of RUNS. Both run as installed, with compiled bytecode
(PYTHONDONTWRITEBYTECODE is dropped). Not in CI: it needs tmux and a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FLOOR_APP = """
from textual.app import App
from textual.widgets import Static

class Floor(App):
    def compose(self):
        yield Static("floor-ready")

Floor().run()
"""


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True).stdout


def paint(cmd: list[str], marks: list[str], timeout: float = 30.0) -> float:
    """Seconds from starting ``cmd`` in a new tmux window until every mark is on screen."""
    session = f"paint-{os.getpid()}"
    _tmux("kill-session", "-t", session)
    line = " ".join(subprocess.list2cmdline([c]) for c in cmd)
    start = time.perf_counter()
    _tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "45", line)
    try:
        while time.perf_counter() - start < timeout:
            screen = _tmux("capture-pane", "-p", "-t", session)
            if all(m in screen for m in marks):
                return time.perf_counter() - start
            time.sleep(0.01)
        raise SystemExit(f"{cmd} did not show {marks} within {timeout} s:\n{screen}")
    finally:
        _tmux("kill-session", "-t", session)
        time.sleep(0.3)  # let the killed app's process go before the next start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--project", help="an existing project (default: a fresh demo)")
    args = ap.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("tmux is needed")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    tmp = Path(tempfile.mkdtemp(prefix="wb-paint-"))
    try:
        project = Path(args.project) if args.project else tmp / "demo"
        if not args.project:
            subprocess.run([sys.executable, "-m", "workbench", "demo", str(project), "--no-ui"],
                           check=True, capture_output=True)  # fmt: skip
        sys.path.insert(0, str(HERE.parent))
        from workbench.core.project import Project

        p = Project(project)
        with p.catalog.read() as con:
            (newest,) = con.execute("SELECT action FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        datasets = p.datasets.list()
        marks = [datasets[0].name if datasets else "Datasets", "Recent runs", newest]
        models = p.models.list()
        if models:
            marks.append(models[0].name)
        floor_file = tmp / "floor.py"
        floor_file.write_text(FLOOR_APP)
        wb = [sys.executable, "-m", "workbench", "--project", str(project), "ui"]
        paint(wb, marks)  # once to warm the page cache and write bytecode
        paint([sys.executable, str(floor_file)], ["floor-ready"])
        ours, floor = [], []
        for _ in range(args.runs):
            ours.append(paint(wb, marks))
            floor.append(paint([sys.executable, str(floor_file)], ["floor-ready"]))
        row = {
            "project": "demo" if not args.project else str(project),
            "marks": marks,
            "runs": args.runs,
            "first_paint_s_median": statistics.median(ours),
            "first_paint_s": ours,
            "floor_textual_hello_s_median": statistics.median(floor),
            "floor_textual_hello_s": floor,
            "ratio_to_floor": statistics.median(ours) / statistics.median(floor),
        }
        print(json.dumps(row, indent=2))
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / "app_paint.json").write_text(json.dumps(row, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
