"""The app's top-level screens, one per mode (each mode keeps its own screen stack)."""

from collections.abc import Callable
from typing import Any

from textual.screen import Screen

from workbench.tui.screens.audit import AuditScreen
from workbench.tui.screens.datasets import DatasetsScreen
from workbench.tui.screens.drift import DriftScreen
from workbench.tui.screens.launch import LaunchScreen
from workbench.tui.screens.models import ModelsScreen
from workbench.tui.screens.monitor import MonitorScreen
from workbench.tui.screens.overview import OverviewScreen
from workbench.tui.screens.pipelines import PipelinesScreen
from workbench.tui.screens.runs import RunsScreen
from workbench.tui.screens.sql import SqlScreen

# typed as App.MODES is: a screen class is a callable that makes the screen
MODES: dict[str, str | Callable[[], Screen[Any]]] = {
    "overview": OverviewScreen,
    "datasets": DatasetsScreen,
    "runs": RunsScreen,
    "launch": LaunchScreen,
    "drift": DriftScreen,
    "models": ModelsScreen,
    "monitor": MonitorScreen,
    "audit": AuditScreen,
    "sql": SqlScreen,
    "pipelines": PipelinesScreen,
}
