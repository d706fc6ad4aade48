"""Stored text never drives the terminal.

Names and keys refuse control, invisible and direction-changing characters. Free text
(tag and param values, messages, descriptions) is kept verbatim, and every command and
screen that shows it shows it escaped: ``ESC[31m`` is printed as ``\\x1b[31m`` and a
right-to-left override as ``\\u202e``. Output here is captured, not a terminal, so Rich
adds no colour codes of its own: any raw control character in it came from the store.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import frame, run_cli, run_subprocess
from workbench.core.project import Project
from workbench.core.text import NOT_IN_KEYS

ESC = "\x1b[31mred\x1b]0;pwned\x07"
RLO = "txt.\u202eexe"
ZW = "in\u200bvisible"
TEXTS = [ESC, RLO, ZW, "a\x9bb", "tab\there", "\u2066isolate\u2069"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A dataset whose messages, a run whose tag and param values, and a model whose
    description hold every text above."""
    import workbench
    from workbench.core.runs.training import Recipe, train

    tmp = tmp_path_factory.mktemp("term")
    p, _ = Project.init(tmp / "p")
    frame(200).write_csv(tmp / "a.csv")
    p.datasets.add(tmp / "a.csv", name="t", message=" | ".join(TEXTS))
    with workbench.start_run(project=p.root, experiment="e", name="plain") as run:
        for i, text in enumerate(TEXTS):
            run.set_tag(f"tag{i}", text)
            run.log_param(f"param{i}", text)
    run_id = train(p, Recipe(dataset="t@1", target="churned", params={"n_estimators": 3}))
    p.models.register(run_id, "m", description=" ".join(TEXTS))
    return p.root, run.id


READS = [
    ("audit",),
    ("audit", "--json"),
    ("data", "list"),
    ("data", "list", "--json"),
    ("data", "show", "t@1"),
    ("runs", "list", "--experiment", "e"),
    ("runs", "list", "--json"),
    ("runs", "show", "{run}"),
    ("runs", "show", "{run}", "--json"),
    ("model", "show", "m@1"),
    ("model", "card", "m@1"),
    ("sql", "SELECT key, value FROM tags"),
]


@pytest.mark.parametrize("args", READS, ids=[" ".join(a) for a in READS])
def test_every_command_prints_stored_text_inert(built: tuple[Path, str], args: tuple) -> None:
    root, run_id = built
    r = run_cli(*[a.format(run=run_id[:8]) for a in args], cwd=root)
    assert r.code == 0, r.err
    raw = NOT_IN_KEYS.findall(r.out.replace("\n", "").replace("\t", ""))
    assert not raw, f"raw characters reached the terminal: {raw!r}"
    if "--json" in args and args[0] != "data":  # data list does not carry messages
        json.loads(r.out)  # still valid JSON
        text = json.dumps(json.loads(r.out), ensure_ascii=False)
        assert any(t in text for t in TEXTS), "the values read back verbatim from --json"


SGR = re.compile(r"\x1b\[[0-9;]*m")


@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_charts_are_coloured_on_a_terminal_bare_in_a_pipe_and_stored_text_inert(
    tmp_path: Path,
) -> None:
    """`drift --plot` and `runs compare --plot` draw with plotext, whose colours tell the
    series apart: a terminal gets them and nothing else raw (a category value holding
    ESC sequences shows escaped); a pipe, a Markdown report and NO_COLOR get none. Before,
    every chart printed its own colour codes as text (``\\x1b[38;5;12m``)."""
    p, _ = Project.init(tmp_path / "p")
    for seed, share in ((1, 0.2), (2, 0.7)):
        df = frame(400, seed).with_columns(
            plan=pl.when(pl.int_range(400) < 400 * share).then(pl.lit(ESC)).otherwise(pl.lit("b"))
        )
        df.write_parquet(tmp_path / f"v{seed}.parquet")  # a CSV holding ESC reads as binary
        p.datasets.add(tmp_path / f"v{seed}.parquet", name="d")
    args = ("drift", "d@1", "d@2", "--plot", "plan", "--no-save")
    tty = {"FORCE_COLOR": "1", "TERM": "xterm-256color", "NO_COLOR": ""}
    coloured = run_subprocess(*args, cwd=p.root, env=tty)
    piped = run_subprocess(*args, cwd=p.root, env={"FORCE_COLOR": "", "NO_COLOR": ""})
    no_colour = run_subprocess(*args, cwd=p.root, env={**tty, "NO_COLOR": "1"})
    assert coloured.code == piped.code == no_colour.code == 0
    assert "\x1b[38;5;" in coloured.out  # the bars' colours reach the terminal
    for out in (coloured.out, piped.out, no_colour.out):
        assert "plan: DRIFTED" in out and "█" in out and "░" in out
        assert "\\x1b[38" not in out  # no colour code printed as text
        assert "\\x1b[31mred" in out  # the stored value, escaped, as a tick label
        raw = NOT_IN_KEYS.findall(SGR.sub("", out).replace("\n", ""))
        assert not raw, f"raw characters reached the terminal: {raw!r}"
    assert "\x1b" not in piped.out and "\x1b" not in no_colour.out.split("plan: DRIFTED")[1]
    report = tmp_path / "d.md"
    assert run_cli("drift", "d@1", "d@2", "--report", str(report), cwd=p.root).code == 0
    text = report.read_text()
    assert "## plan" in text and "█" in text and "\x1b" not in text and "\\x1b[38" not in text


def test_the_values_are_kept_verbatim(built: tuple[Path, str]) -> None:
    root, run_id = built
    info = Project(root).runs.get(run_id)
    assert [info.tags[f"tag{i}"] for i in range(len(TEXTS))] == TEXTS
    assert [info.params[f"param{i}"] for i in range(len(TEXTS))] == TEXTS


@pytest.mark.parametrize("text", [ESC, RLO, ZW, "new\nline", "\u2066x"])
@pytest.mark.parametrize(
    "command",
    [
        ("runs", "tag", "{run}", "{text}=v"),
        ("data", "add", "{csv}", "-n", "{text}"),
        ("model", "register", "{run}", "-n", "{text}"),
        ("model", "promote", "m", "1", "--to", "{text}"),
        ("model", "promote", "m", "1", "--to", "staging", "-r", "{text}"),
        ("train", "t@1", "--target", "churned", "--experiment", "{text}"),
        ("train", "t@1", "--target", "churned", "--name", "{text}"),
    ],
    ids=["tag key", "dataset name", "model name", "alias", "reason", "experiment", "run name"],
)
def test_names_keys_and_reasons_refuse_them_in_one_line(
    built: tuple[Path, str], tmp_path: Path, command: tuple, text: str
) -> None:
    base, run_id = built
    root = tmp_path / "p"
    shutil.copytree(base, root)
    frame(20).write_csv(tmp_path / "b.csv")
    args = [a.format(run=run_id[:8], text=text, csv=tmp_path / "b.csv") for a in command]
    r = run_cli(*args, cwd=root)
    assert r.code != 0, (args, r.out)
    line = r.err.strip()
    assert line.startswith("error: ") and "\n" not in line and "unexpected" not in line
    assert not NOT_IN_KEYS.findall(line), f"the refusal itself echoed it raw: {line!r}"


@pytest.mark.slow
def test_the_app_shows_stored_text_inert(built: tuple[Path, str], tmp_path: Path) -> None:
    from tests.tui.test_app import settle
    from workbench.tui.app import WorkbenchApp
    from workbench.tui.widgets.table import Table

    root = tmp_path / "p"
    shutil.copytree(built[0], root)

    async def main() -> list[str]:
        seen: list[str] = []
        app = WorkbenchApp(Project(root))
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(pilot)
            for key in ("a", "d", "m", "r"):
                await pilot.press(key)
                await settle(pilot)
                for table in app.screen.query(Table):
                    for row in range(table.row_count):
                        seen += [str(c) for c in table.get_row_at(row)]
            await pilot.press("r", "enter")  # the run on top: its params and tags
            await settle(pilot)
            for table in app.screen.query(Table):
                for row in range(table.row_count):
                    seen += [str(c) for c in table.get_row_at(row)]
        return seen

    seen = asyncio.run(main())
    shown = " ".join(seen)
    assert "\\x1b[31mred" in shown or "\\u202e" in shown, "the stored text is on screen"
    raw = NOT_IN_KEYS.findall(shown.replace("\n", "").replace("\t", ""))
    assert not raw, f"a raw character reached a screen: {raw!r}"


@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_stored_text_that_is_not_valid_markup_is_shown_not_a_crash(tmp_path: Path) -> None:
    """Table cells are drawn as Rich markup; a run named ``a[/]b`` (a legal name) or a
    tag ``[/]`` stopped the app with a MarkupError on the overview's first paint, and a
    model's description ``[/]`` the models screen. Each screen now draws the text as it is."""
    from tests.tui.test_app import settle
    from workbench.core.fluent import start_run
    from workbench.core.runs.training import Recipe, train
    from workbench.tui.app import WorkbenchApp
    from workbench.tui.widgets.table import Table

    p, _ = Project.init(tmp_path / "p")
    frame(200).write_csv(tmp_path / "a.csv")
    p.datasets.add(tmp_path / "a.csv", name="t", message="[/] a message")
    model_run = train(p, Recipe(dataset="t@1", target="churned", params={"n_estimators": 3}))
    p.models.register(model_run, "m", description="[/] a description")
    for name in ("a[/]b", "plain"):
        with start_run(experiment="e", name=name, project=p) as run:
            run.log_params({"model": "[/]", "lr": "[red]x"})
            run.log_metric("val_auc", 0.5)
            run.set_tag("note", "[/] closes nothing")

    async def main() -> tuple[list[str], list[str]]:
        seen: list[str] = []
        screens: list[str] = []
        app = WorkbenchApp(p)
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(pilot)
            for keys in (("o",), ("r",), ("enter",), ("escape", "space", "down", "space", "c"),
                         ("escape", "a"), ("m",), ("d",)):  # fmt: skip
                await pilot.press(*keys)
                await settle(pilot)
                screens.append(type(app.screen).__name__)
                for table in app.screen.query(Table):
                    for row in range(table.row_count):
                        seen += [str(c) for c in table.get_row_at(row)]
        return seen, screens

    seen, screens = asyncio.run(main())
    assert screens == [
        "OverviewScreen", "RunsScreen", "RunScreen", "CompareScreen", "AuditScreen",
        "ModelsScreen", "DatasetsScreen",
    ]  # fmt: skip
    assert "a[/]b" in seen and "[/] closes nothing" in seen and "[/]" in seen
