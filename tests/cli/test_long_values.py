"""A huge text cell is named, not copied: profiles, drift notes and plots keep a bounded
prefix and say how long the value was (a 5 MB cell made `data show` take 9 s and the
drift report carry all 5 MB)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from tests.conftest import run_cli
from workbench.core.project import Project


def test_a_huge_cell_is_shown_as_a_prefix_and_its_length(project: Project, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    plans = rng.choice(["a", "b", "c"], 500).astype(object)
    plans[7] = "x" * 1_000_000
    pl.DataFrame({"plan": plans.tolist(), "v": rng.normal(size=500)}).write_csv(
        tmp_path / "big.csv"
    )
    pl.DataFrame({"plan": rng.choice(["a", "b", "c"], 500), "v": rng.normal(size=500)}).write_csv(
        tmp_path / "small.csv"
    )
    assert run_cli("data", "add", str(tmp_path / "big.csv"), "-n", "b", cwd=project.root).code == 0

    plan = next(c for c in project.datasets.profile("b")["columns"] if c["name"] == "plan")
    long = [t["value"] for t in plan["top"] if t["value"].startswith("x")]
    assert long == ["x" * 119 + "… (1,000,000 characters)"]
    shown = run_cli("data", "show", "b", cwd=project.root)
    assert shown.code == 0 and len(shown.out) < 5_000

    r = run_cli("drift", "compare", str(tmp_path / "small.csv"), "b", "--json", cwd=project.root)
    assert r.code == 0, r.err
    assert len(r.out) < 20_000  # the report names the value; it does not carry it
    notes = next(c for c in json.loads(r.out)["columns"] if c["column"] == "plan")["notes"]
    assert any("(1,000,000 characters)" in n for n in notes)
