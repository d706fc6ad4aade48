"""``workbench pipeline watch``: run a declared loop on every batch file that lands in a
folder, once each (by content), after the file has stopped growing."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.app.pipeline import Pipeline, PipelineRun
from workbench.core.errors import UsageError

if TYPE_CHECKING:
    from workbench.core.project import Project


def watch(
    project: Project,
    name: str,
    folder: str | Path,
    on_run: Callable[[Path, PipelineRun], None],
    interval: float = 2.0,
    once: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Run the pipeline on every data file that appears in ``folder`` (in name order).

    A file is taken once its size has stopped changing for one interval, so a batch
    still being copied in is not read half-written. Returns how many were processed.
    """
    from workbench.core.store.objects import sha256_file

    pipe = Pipeline(project, name)
    root = Path(folder)
    if not root.is_dir():
        raise UsageError(f"no such folder: {root}")
    seen: dict[Path, int] = {}
    done: set[str] = set()
    count = 0
    while True:
        for path in sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")):
            if path.suffix.lower() not in (".csv", ".tsv", ".parquet", ".jsonl", ".ndjson"):
                continue
            size = path.stat().st_size
            if not once and seen.get(path) != size:
                seen[path] = size  # wait one more interval for a file still growing
                continue
            key = sha256_file(path)
            if key in done:
                continue
            done.add(key)
            run = pipe.run(path)
            count += run.outcome != "already"
            on_run(path, run)
        if once or should_stop():
            return count
        time.sleep(interval)
