"""The figures in docs/reliability.md are the suite's own: each is counted here from the
tests that produce it, so the page cannot say more than the tests do.

Counts that depend on a run (how many write points a command passes, how long screens
took) are printed by the tests themselves (``pytest -s``); what is fixed by the tests'
own tables (files, strings, places, commands, methods) is asserted here. And every test
the page cites as a proof must exist.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = (ROOT / "docs" / "reliability.md").read_text()


def bullet(title: str) -> str:
    """The text of the figures bullet that starts with **title:**, on one line."""
    m = re.search(rf"^- \*\*{re.escape(title)}:\*\*(.*?)(?=^- \*\*|^## )", PAGE, re.M | re.S)
    assert m, f"no bullet **{title}:** in docs/reliability.md"
    return " ".join(m.group(1).split())


def test_bad_file_figures() -> None:
    from tests.reliability.corpus import CORPUS, HOLDS

    text = bullet("Bad files")
    # data add, drift and predict each file; train each one that is stored
    commands = 3 * len(CORPUS) + len(HOLDS)
    assert f"{len(CORPUS)} files" in text
    assert f"{len(HOLDS)} readable ones" in text
    assert f"{commands} commands" in text
    assert f"`test_bad_data.py` ({len(CORPUS)} files" in PAGE


def test_hostile_string_figures() -> None:
    from tests.reliability.test_hostile_strings import HOSTILE, PLACES, TYPED

    text = bullet("Hostile strings")
    assert f"{len(HOSTILE)} strings" in text and f"in {len(PLACES)} places" in text
    assert f"{len(HOSTILE) * len(PLACES)} commands" in text
    assert f"{len(TYPED)} typed into the app's drift screen and runs filter" in text
    assert f"({len(HOSTILE)} strings × {len(PLACES)} places" in PAGE


def test_kill_figures() -> None:
    from tests.reliability.kill_cases import CASES
    from tests.reliability.test_kills import RANDOM_KILLS

    text = bullet("Kills")
    assert f"{len(CASES)} commands" in text
    for name in CASES:
        assert name in text, name
    assert f"{RANDOM_KILLS} kills per command after a random delay" in text


def test_disk_and_concurrency_figures() -> None:
    from tests.reliability.test_concurrency import BIG_ROWS, TRAINERS
    from tests.reliability.test_disk import COMMANDS

    disk = bullet("Full disk and read-only")
    assert f"{len(COMMANDS)} writing commands" in disk
    assert f"{2 * len(COMMANDS)} refusals" in disk
    together = bullet("At once")
    assert f"{TRAINERS + 3} processes" in together and f"{TRAINERS} training processes" in together
    assert f"{TRAINERS * (300 + 2 * 5000):,} points" in together
    assert f"{BIG_ROWS:,}-row CSV" in together


def test_statistics_figures() -> None:
    from workbench.core.drift.stattests import METHODS

    assert f"all {len(METHODS)} drift methods" in PAGE


def test_every_cited_test_exists() -> None:
    """A proof the page names (``file.py::test_name`` or ``file.py``) is a real test."""
    tests = list((ROOT / "tests").rglob("test_*.py"))
    cited = re.findall(r"`((?:[\w/]+/)?(test_\w+\.py))(?:::(\w+))?`", PAGE)
    assert len(cited) >= 15
    for full, name, func in cited:
        # a bare file name: any test file of that name (the page's are in reliability/)
        paths = [ROOT / full] if "/" in full else [p for p in tests if p.name == name]
        paths = [p for p in paths if p.exists()]
        assert paths, full
        if func:
            defined = set()
            for path in paths:
                tree = ast.parse(path.read_text())
                defined |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
            assert func in defined, f"{full}::{func}"


def test_the_readme_says_the_same() -> None:
    from tests.reliability.corpus import CORPUS
    from tests.reliability.test_hostile_strings import HOSTILE

    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"{len(CORPUS)} malformed files and {len(HOSTILE)} hostile strings" in readme
