"""``workbench.start_run``: the module-level tracking call for scripts, the one place
below the CLI that opens a ``Project`` for its caller (as MLflow's fluent API does over
its client)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from workbench.core.project import Project
from workbench.core.runs.run import Run


@contextlib.contextmanager
def start_run(
    experiment: str = "default",
    dataset: str | None = None,
    name: str | None = None,
    project: Project | str | None = None,
    parent_id: str | None = None,
) -> Iterator[Run]:
    """``with workbench.start_run(experiment="churn", dataset="churn@3") as run: ...``"""
    proj = project if isinstance(project, Project) else Project(project)
    run = proj.runs.start(
        experiment=experiment,
        name=name,
        dataset=dataset,
        parent_id=parent_id,
        source=sys.argv[0] if sys.argv and sys.argv[0] else None,
    )
    with run:
        yield run
