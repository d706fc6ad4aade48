"""Axes for the terminal plots the CLI and the app draw with plotext."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from workbench.textfmt import step_ticks


def step_axis(plt: Any, steps: Iterable[int]) -> None:
    """Whole-number ticks on a curve's step axis: left to itself plotext divides the
    range evenly and labels steps ``1.0 50.8 100.5``."""
    xs = [int(s) for s in steps]
    if xs:
        ticks = step_ticks(min(xs), max(xs))
        plt.xticks(ticks, [str(t) for t in ticks])
