"""Retake the README's tour screenshots from the app itself, on a fresh flights demo.

    python docs/screenshots/take.py

Builds the demo in a temporary folder, drives the TUI with Textual's pilot (real key
presses, as a user would) and saves one SVG per stop of the tour into this folder.
Run ids and times differ from one build to the next; everything else is reproducible.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repo, for tests.tui's settle()

from textual.widgets import DataTable, Input  # noqa: E402

from tests.tui.test_app import settle  # noqa: E402
from workbench.app.demo import Demo  # noqa: E402
from workbench.tui.app import WorkbenchApp  # noqa: E402

SIZE = (150, 42)


async def tour(project_root: Path) -> None:
    from workbench.core.project import Project

    app = WorkbenchApp(Project(project_root))
    async with app.run_test(size=SIZE) as pilot:

        async def shot(name: str) -> None:
            await settle(pilot)
            app.screen.set_focus(None)
            await pilot.pause(0.5)
            await settle(pilot)
            app.save_screenshot(f"{name}.svg", str(HERE))
            print(f"  {name}.svg")

        async def focus_table(selector: str) -> DataTable:
            t = app.screen.query_one(selector, DataTable)
            t.focus()
            await settle(pilot)
            return t

        await shot("tour-1-overview")
        await pilot.press("d")
        await settle(pilot)
        await focus_table("#ds-versions")
        await pilot.press("enter")  # flights@12, the newest
        await shot("tour-2-version")
        await pilot.press("escape", "r")
        await settle(pilot)
        filt = app.screen.query_one("#runs-filter", Input)
        filt.value = "metrics.val_auc > 0.8 and params.model = 'lightgbm'"
        await pilot.press("slash", "enter")
        await settle(pilot)
        await focus_table("#runs")
        await pilot.press("space", "down", "space")
        await shot("tour-3-runs")
        await pilot.press("c")
        await shot("tour-4-compare")
        await pilot.press("escape")  # back to the runs; enter opens the one under the cursor
        await settle(pilot)
        await focus_table("#runs")
        await pilot.press("enter", "left_square_bracket")  # its Artifacts tab
        await settle(pilot)
        arts = await focus_table("#run-artifacts")
        paths = [str(arts.get_row_at(i)[0]) for i in range(arts.row_count)]
        arts.move_cursor(row=paths.index("feature_importance.json"))
        await pilot.press("enter")
        await shot("tour-5-artifact")
        await pilot.press("escape", "escape", "f")
        await settle(pilot)
        await focus_table("#drift-reports")
        await pilot.press("enter")
        await shot("tour-6-drift")
        await pilot.press("escape", "m")
        await settle(pilot)
        await focus_table("#model-versions")
        await pilot.press("p")  # v2, the challenger in staging
        await settle(pilot)
        app.screen.query_one("#promote-alias", Input).value = "production"
        await pilot.click("#check")
        await shot("tour-7-promote")
        await pilot.press("escape", "a")
        await shot("tour-8-audit")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        demo = Demo(Path(tmp) / "flights", "flights")
        demo.build(on_start=lambda title: print(title))
        asyncio.run(tour(demo.root))


if __name__ == "__main__":
    main()
