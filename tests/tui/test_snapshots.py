"""Each screen at a fixed size, compared with a stored SVG (pytest-textual-snapshot).

Update after an intended change with: pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.tui.conftest import SIZE, SMALL, WIDE
from tests.tui.test_app import settle
from workbench.core.project import Project
from workbench.tui.app import WorkbenchApp


async def still(pilot: Pilot[None]) -> None:
    """Wait until the picture stops changing: plots redraw once their final size is
    known, a frame or more after the loads land (a fixed pause lost that race when the
    machine was busy)."""
    previous = None
    for _ in range(100):
        await settle(pilot)
        await pilot.pause()
        shot = pilot.app.export_screenshot()
        if shot == previous:
            return
        previous = shot
    raise AssertionError("the screen never stopped changing")


def keys(*pressed: str) -> Callable[[Pilot[None]], Any]:
    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot)
        for key in pressed:
            await pilot.press(key)
            await settle(pilot)
        pilot.app.screen.set_focus(None)  # no blinking cursor in the picture
        await still(pilot)

    return run_before


@pytest.mark.parametrize(
    ("name", "pressed", "size"),
    [
        ("overview", (), SIZE),
        ("datasets", ("d",), SIZE),
        ("version_profile", ("d", "tab", "enter"), SIZE),
        ("runs", ("r",), SIZE),
        ("models", ("m",), SIZE),
        ("drift", ("f",), SIZE),
        # The five screens a new user reads most, at 80x24 and 120x35 (#19); in the full
        # suite only, to keep the quick loop under three minutes.
        *(
            pytest.param(f"{name}_{w}x{h}", pressed, (w, h), marks=pytest.mark.slow)
            for w, h in (SMALL, WIDE)
            for name, pressed in (
                ("overview", ()),
                ("runs", ("r",)),
                ("compare", ("r", "space", "space", "c")),
                ("drift_report", ("f", "enter")),
                ("models", ("m",)),
            )
        ),
        ("audit", ("a",), SIZE),
        ("launch", ("l",), SIZE),
        ("help", ("question_mark",), SIZE),
    ],
)
def test_screen(
    snap_compare: Any,
    tui_project: Project,
    name: str,
    pressed: tuple[str, ...],
    size: tuple[int, int],
) -> None:
    assert snap_compare(WorkbenchApp(tui_project), terminal_size=size, run_before=keys(*pressed))
