"""What every command is handed: ``Ctx``, the invocation's state, and ``pass_ctx``.

It lives apart from ``main.py`` so that command modules can import it without importing
the group that imports them (which made every command module part of one import cycle).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from workbench.core.project import Project


class Ctx:
    """Per-invocation state: where the project is, found only when a command needs it."""

    def __init__(self, project_dir: str | None) -> None:
        self.project_dir = project_dir
        self._project: Project | None = None

    @property
    def project(self) -> Project:
        """The project, with its ``workbench.toml`` checked: a command refuses a bad file
        before it reads or writes anything."""
        if self._project is None:
            from workbench.core.project import Project

            project = Project(self.project_dir)
            project.settings  # noqa: B018 (reading the settings is the check)
            self._project = project
        return self._project


pass_ctx = click.make_pass_decorator(Ctx)
