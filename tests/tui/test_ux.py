"""The app read as a new user reads it (#19): what fits at 120 columns, long cells, empty
states, numbers and plots, artifacts, quitting. Each test failed before its fix."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from tests.tui.test_app import drive, settle, table
from workbench.core.project import Project
from workbench.tui.app import WorkbenchApp

WIDE = (120, 35)
FEATURES = [f"feature_number_{i}" for i in range(30)]


def visible(t: DataTable[Any], header: str) -> bool:
    """Whether the column headed ``header`` lies wholly inside the table's width when it
    is scrolled to the left: what a user sees without scrolling."""
    right = 0
    for column in t.ordered_columns:
        right += column.get_render_width(t)
        if str(column.label) == header:
            return right <= t.scrollable_content_region.width
    raise AssertionError(f"no column {header!r} in {[str(c.label) for c in t.ordered_columns]}")


def long_runs(project: Project) -> list[str]:
    """Two runs whose `features` param is a long list, as a script logs it."""
    refs = []
    for seed in (1, 2):
        with project.runs.start(experiment="wide", name=f"wide-{seed}") as run:
            run.log_params({"features": FEATURES, "seed": seed, "model": "logistic"})
            run.log_metric("val_auc", 0.7 + seed / 100)
        refs.append(run.ref)
    return refs


def test_key_columns_stay_on_screen_at_120_and_long_cells_open_whole(
    tui_project: Project,
) -> None:
    """At 120x35 the second run of a compare, the drift verdict and its why, and a model's
    aliases were past the right edge; now each is on screen, a long cell is cut with an
    ellipsis, and `e` shows the whole row with the cut value in full."""
    refs = long_runs(tui_project)

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("space", "space", "c")
        await settle(pilot)
        params = table(app, "#cmp-params")
        for ref in refs:
            assert visible(params, ref), ref
        row = next(i for i in range(params.row_count) if "features" in str(params.get_row_at(i)[0]))
        assert str(params.get_row_at(row)[1]).endswith("…")
        params.focus()
        params.move_cursor(row=row, column=1)
        await pilot.press("e")
        await settle(pilot)
        shown = "\n".join(str(s.render()) for s in app.screen.query(Static))
        assert "feature_number_29" in shown and refs[0] in shown
        await pilot.press("escape", "escape", "f")
        await settle(pilot)
        await pilot.press("enter")  # the stored report
        await settle(pilot)
        drift = table(app, "#drift-table")
        assert drift.row_count
        assert visible(drift, "drifted") and visible(drift, "why")
        await pilot.press("m")
        await settle(pilot)
        models = table(app, "#models")
        assert visible(models, "aliases")
        assert str(models.get_row_at(0)[1]) == "production=v1"

    drive(tui_project, steps, size=WIDE)
