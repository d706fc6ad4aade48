"""workbench: a local-first MLOps workbench in the terminal.

The package root stays import-light (no duckdb/polars at import time) so that
``workbench --help`` is instant; the public API is resolved lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.errors import WorkbenchError
    from workbench.core.fluent import start_run
    from workbench.core.project import Project

__all__ = ["Project", "WorkbenchError", "__version__", "start_run"]


def __getattr__(name: str) -> Any:
    if name == "Project":
        from workbench.core.project import Project

        return Project
    if name == "start_run":
        from workbench.core.fluent import start_run

        return start_run
    if name == "WorkbenchError":
        from workbench.core.errors import WorkbenchError

        return WorkbenchError
    raise AttributeError(name)
