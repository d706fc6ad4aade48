"""The flights sample project's own script runs and builds what its README says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from workbench.core.project import Project

SCRIPT = Path(__file__).resolve().parents[2] / "sample_projects" / "flights" / "run.py"


def test_flights_script_builds_twelve_versions_and_is_safe_to_rerun(tmp_path: Path) -> None:
    target = tmp_path / "flights"
    first = subprocess.run(
        [sys.executable, str(SCRIPT), str(target)], capture_output=True, text=True, check=True
    )
    assert "Delay rate: September 13.2%, December 32.6%" in first.stdout
    project = Project(target)
    versions = project.datasets.versions("flights")
    assert [v.number for v in versions] == list(range(1, 13))
    assert sum(v.n_rows for v in versions) == 327_346
    again = subprocess.run(
        [sys.executable, str(SCRIPT), str(target)], capture_output=True, text=True, check=True
    )
    assert again.stdout.count("already stored") == 12
    assert len(project.datasets.versions("flights")) == 12
