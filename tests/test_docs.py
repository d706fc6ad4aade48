"""The docs stay true: their commands run, their config parses, the CLI reference is current.

Fenced blocks are checked by language: `bash` blocks run as bash scripts (in order, per
file) on a copy of the flights demo; `python` blocks run in it; `filter` lines are run
as run filters; `toml` blocks must parse. `sh` (install commands) and `text` blocks are
not run. Run ids in the docs are examples (`run:4f2a`); they are replaced by the demo's
runs before running.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from workbench.core.project import Project

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)

pytestmark = pytest.mark.slow


def blocks(path: Path) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(path.read_text())]


def _placeholders(project: Project) -> dict[str, str]:
    runs = {r["name"]: r["id"] for r in project.runs.list(limit=None)}
    report = project.drift.list(limit=1)[0]["id"]
    return {
        "run:4f2a": f"run:{runs['lightgbm'][:8]}",
        "run:9c1e": f"run:{runs['forest'][:8]}",
        "show 3fa2c1": f"show {report[:8]}",
    }


@pytest.mark.parametrize(
    "doc",
    [d for d in DOCS if any(k in ("bash", "python") for k, _ in blocks(d))],
    ids=lambda p: p.name,
)
def test_commands_in_the_docs_run_on_the_demo(
    doc: Path, flights_demo: tuple[Path, str], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    project_dir = work / "flights-demo"
    shutil.copytree(flights_demo[0], project_dir)
    subs = _placeholders(Project(project_dir))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "COLUMNS": "120",
    }
    env.pop("WORKBENCH_PROJECT", None)
    ran = 0
    for kind, text in blocks(doc):
        if kind not in ("bash", "python"):
            continue
        for old, new in subs.items():
            text = text.replace(old, new)
        cwd = work if "workbench demo" in text else project_dir
        if kind == "bash":
            cmd = ["bash", "-c", "set -euo pipefail\n" + text]
        else:
            cmd = [sys.executable, "-c", text]
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, (
            f"{doc.name} block failed:\n{text}\n--- stderr:\n{proc.stderr[-3000:]}"
        )
        assert "Traceback" not in proc.stderr
        ran += 1
    assert ran
    assert (
        subprocess.run(
            [sys.executable, "-m", "workbench", "verify"],
            cwd=project_dir,
            env=env,
            capture_output=True,
        ).returncode
        == 0
    )


def test_filter_examples_parse_and_run(flights_demo: tuple[Path, str]) -> None:
    project = Project(flights_demo[0])
    lines = [
        line.split(" -- ")[0].strip()
        for kind, text in blocks(ROOT / "docs" / "filter-language.md")
        if kind == "filter"
        for line in text.splitlines()
        if line.strip()
    ]
    assert len(lines) >= 5
    for expr in lines:
        project.runs.list(filter=expr)  # raises on a filter the language does not accept


def test_toml_in_the_docs_parses_and_the_readme_shows_the_demo_config() -> None:
    for doc in DOCS:
        for kind, text in blocks(doc):
            if kind == "toml":
                tomllib.loads(text)
    (readme_toml,) = [t for k, t in blocks(ROOT / "README.md") if k == "toml"]
    shown = tomllib.loads(readme_toml)
    demo = tomllib.loads((ROOT / "sample_projects" / "flights" / "workbench.toml").read_text())
    assert shown["train"] == demo["train"] and shown["gates"] == demo["gates"]


def test_readme_has_exactly_the_two_setup_commands_and_ci_runs_the_test_one() -> None:
    setup = [t.strip() for k, t in blocks(ROOT / "README.md") if k == "sh"]
    assert setup == [
        "pip install . && workbench demo",
        'pip install -e ".[test]" && python -m pytest -n 2',
    ]
    assert setup[1] in (ROOT / ".ci" / "run").read_text()


def test_cli_reference_is_generated_from_the_commands() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_cli_reference", ROOT / "docs" / "make_cli_reference.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "cli.md").read_text() == module.render(), (
        "docs/cli.md is stale: run python docs/make_cli_reference.py"
    )
