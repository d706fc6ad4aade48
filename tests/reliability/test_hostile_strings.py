"""Hostile text in every place a user types: refused in one line, or kept verbatim.

References, filter and order expressions, names, messages, reasons, tags and params
each get the same list of strings: SQL injection, quotes, Rich markup, terminal escape
codes, control characters, right-to-left overrides, path tricks, shell syntax and very
long text. Free text (messages, reasons, tag values) must come back exactly as typed;
everything else must either work or fail with one line, a non-zero exit, no traceback,
no "unexpected" (kept for bugs) and the store unchanged.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import built_once, run_cli, store_snapshot
from workbench.core.project import Project
from workbench.core.text import has_unsafe

pytestmark = pytest.mark.slow  # every hostile string through every command

HOSTILE = [
    "'; DROP TABLE runs; --",
    '" OR 1=1 --',
    "Robert'); DELETE FROM audit WHERE ('1'='1",
    "' UNION SELECT hash, size FROM objects --",
    "%",
    "\\",
    "a\x00b",
    "\x1b[2J\x1b[31mred",
    "line one\r\nforged: line two",
    "   ",
    "",
    "ünïcødé ñ",
    "🚀🔥💥",
    "\u202eevil\u202c",
    "zero\u200bwidth",
    "A" * 10_000,
    "../../etc/passwd",
    "C:\\Windows\\System32",
    "$(rm -rf ~)",
    "${HOME}",
    "<script>alert(1)</script>",
    "[red]markup[/red] [link=http://x]y[/link]",
    "[bold]unclosed",
    "NaN",
    "-inf",
    "name@",
    "@production",
    "run:",
    "run:zzzz",
    "churn@1..",
    "churn@99999999999999999999",
    "%s%s%n",
]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    def build(base: Path) -> str:
        from tests.core.test_training import churn
        from workbench.core.runs.training import Recipe, train

        churn(300, 0).write_csv(base / "c.csv")
        p, _ = Project.init(base / "proj")
        p.datasets.add(base / "c.csv", name="churn")
        run = train(p, Recipe(dataset="churn@1", target="churned", params={"n_estimators": 5}))
        p.models.register(run, "churn-model")
        p.models.promote("churn-model", 1, "staging")
        return f"run:{run[:8]}"

    return built_once(tmp_path_factory, "hostile", build)


# place -> (argv with {} where the text goes, how to read back what was stored or None)
Reader = Callable[[Project, str], object] | None
PLACES: dict[str, tuple[list[str], Reader]] = {
    "dataset reference": (["data", "show", "{}"], None),
    "model reference": (["model", "show", "{}"], None),
    "run reference": (["runs", "show", "{}"], None),
    "drift reference": (["drift", "churn@1", "{}"], None),
    "predict model reference": (["predict", "{}", "churn@1", "-o", "{out}"], None),
    "filter expression": (["runs", "list", "--filter", "{}"], None),
    "order expression": (["runs", "list", "--order-by", "{}"], None),
    "columns option": (["runs", "list", "--columns", "{}"], None),
    "dataset name": (["data", "add", "{csv}", "-n", "{}"], None),
    "model name": (["model", "register", "{run}", "-n", "{}"], None),
    "experiment name": (
        ["train", "churn@1", "-t", "churned", "-e", "{}", "-p", "n_estimators=2"],
        None,
    ),
    "target column": (["train", "churn@1", "-t", "{}"], None),
    "param value": (["train", "churn@1", "-t", "churned", "-p", "boosting_type={}"], None),
    "param key": (["train", "churn@1", "-t", "churned", "-p", "{}=1"], None),
    "alias": (["model", "promote", "churn-model", "1", "--to", "{}"], None),
    "sql query": (["sql", "{}"], None),
    "tag key": (["runs", "tag", "{run}", "{}=v"], None),
    "data add message": (
        ["data", "add", "{csv2}", "-n", "churn", "-m", "{}"],
        lambda p, s: p.datasets.versions("churn")[-1].message,
    ),
    "promotion reason": (
        ["model", "promote", "churn-model", "1", "--to", "{alias}", "-r", "{}"],
        lambda p, s: p.models.history("churn-model")[-1]["reason"],
    ),
    "archive reason": (  # {spare}: a version of its own, held by no alias, so it can go
        ["model", "archive", "{spare}", "1", "-r", "{}"],
        lambda p, s: json.loads(_last_audit(p, "model.archive"))["reason"],
    ),
    "tag value": (
        ["runs", "tag", "{run}", "note={}"],
        lambda p, s: p.runs.get(s)["tags"].get("note"),
    ),
    "run name": (
        ["train", "churn@1", "-t", "churned", "--name", "{}", "-p", "n_estimators=2"],
        lambda p, s: p.runs.list(limit=1)[0]["name"],
    ),
}


def _last_audit(p: Project, action: str) -> str:
    with p.catalog.read() as con:
        return con.execute(
            "SELECT details FROM audit WHERE action = ? ORDER BY seq DESC LIMIT 1", [action]
        ).fetchall()[0][0]


def test_there_are_enough_strings_and_places() -> None:
    assert len(HOSTILE) >= 30 and len(PLACES) >= 20


@pytest.mark.parametrize("place", sorted(PLACES))
def test_hostile_text_is_refused_or_kept_verbatim(
    template: tuple[Path, str], tmp_path: Path, place: str
) -> None:
    base, run = template
    argv, read_back = PLACES[place]
    outcomes = {"kept": 0, "refused": 0, "worked": 0}
    root = tmp_path / "proj"
    shutil.copytree(base / "proj", root)
    p = Project(root)
    for i, text in enumerate(HOSTILE):
        # each string gets its own new content and alias, so that what it writes is new
        csv2 = tmp_path / f"c{i}.csv"
        shutil.copy(base / "c.csv", csv2)
        with csv2.open("a") as f:
            f.writelines(f"{30 + k},pro,55.5,2021-01-01,1,160.0,a\n" for k in range(i + 1))
        subs = {"{csv}": str(base / "c.csv"), "{csv2}": str(csv2), "{run}": run}
        subs["{out}"], subs["{alias}"] = str(tmp_path / "o.csv"), f"stage{i}"
        if "{spare}" in argv:
            subs["{spare}"] = p.models.register(run, f"spare{i}").model
        args = [subs.get(a, a).replace("{}", text) for a in argv]
        # free text a user may well type (printable, not blank, of a sane length) must be
        # kept: a refusal there is a bug, not a pass
        legit = read_back is not None and text.strip() and not has_unsafe(text)
        legit = legit and len(text) <= 2000
        before = store_snapshot(p)
        r = run_cli(*args, cwd=root)
        where = f"{place} = {text[:40]!r}"
        assert "Traceback" not in r.err + r.out, where
        assert "unexpected" not in r.err, (where, r.err)
        if r.code != 0:
            assert not legit, f"{where}: refused text a user may type: {r.err}"
            assert r.err.count("\n") == 1 and r.err.startswith("error: "), (where, r.err)
            assert store_snapshot(p) == before, f"{where}: refused but the store changed"
            outcomes["refused"] += 1
        elif read_back is not None:
            assert read_back(p, run) == text, f"{where}: not stored verbatim"
            outcomes["kept"] += 1
        else:
            outcomes["worked"] += 1
    print(json.dumps({"place": place, **outcomes}))
    if read_back is not None:  # a place that stores text must have stored some
        assert outcomes["kept"] >= sum(
            1 for t in HOSTILE if t.strip() and not has_unsafe(t) and len(t) <= 2000
        ), outcomes


# typed into the TUI: every second string (an empty box is not submitted, NUL cannot
# be typed); each costs a comparison on the drift screen
TYPED = [t for t in HOSTILE[::2] if t.strip() and "\x00" not in t]


def test_the_tui_shows_the_cli_message_and_keeps_running(
    template: tuple[Path, str], tmp_path: Path
) -> None:
    """Each hostile string typed as a reference into the drift screen, and as a filter
    into the runs screen: for each, the TUI shows exactly what the CLI says for that same
    string (a toast for drift, the screen's own line for the filter), or nothing where
    the CLI accepts it, and keeps going."""
    from textual.widgets import Input

    from tests.tui.test_app import settle
    from workbench.tui.app import WorkbenchApp

    base, _ = template
    root = tmp_path / "proj"
    shutil.copytree(base / "proj", root)
    p = Project(root)
    shown: dict[tuple[str, str], list[str]] = {}

    async def type_into(pilot: Any, box: Input, text: str) -> None:
        box.value = ""
        box.focus()
        box.insert_text_at_cursor(text)
        await pilot.press("enter")
        await settle(pilot)

    async def main() -> None:
        app = WorkbenchApp(p)
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(pilot)
            for text in TYPED:
                await pilot.press("escape", "f")  # leave any box, open drift
                await settle(pilot)
                app.screen.query_one("#drift-ref", Input).value = "churn@1"
                before = len(app.errors_shown)
                await type_into(pilot, app.screen.query_one("#drift-cur", Input), text[:300])
                shown["drift", text] = list(app.errors_shown)[before:]
                await pilot.press("escape", "r")
                await settle(pilot)
                before = len(app.errors_shown)
                await type_into(pilot, app.screen.query_one("#runs-filter", Input), text[:300])
                shown["filter", text] = list(app.errors_shown)[before:]
                assert app.is_running

    asyncio.run(main())

    def cli(*args: str) -> list[str]:  # run where the TUI ran: relative paths are the same
        res = run_cli("--project", str(root), *args, cwd=Path.cwd())
        return [" ".join(res.err.removeprefix("error: ").split())] if res.code else []

    for text in TYPED:
        for place, args in (
            ("drift", ("drift", "churn@1", "--", text[:300])),
            ("filter", ("runs", "list", "-f", text[:300])),
        ):
            seen = [" ".join(m.split()) for m in shown[place, text]]
            assert seen == cli(*args), (place, text[:40])
    refused = sum(1 for v in shown.values() if v)
    print(json.dumps({"tui strings": len(TYPED), "places": 2, "errors shown": refused}))
