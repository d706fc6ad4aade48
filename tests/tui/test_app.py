"""The TUI driven by the pilot pressing real keys, on a real project."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, Label, Select, Static

from tests.tui.conftest import SIZE, SMALL
from workbench.core.project import Project
from workbench.tui.app import WorkbenchApp

Steps = Callable[[WorkbenchApp, Pilot[None]], Awaitable[None]]


async def settle(pilot: Pilot[None], rounds: int = 3, timeout: float = 30) -> None:
    """Let every load started so far land on screen (the app counts them)."""
    deadline = time.monotonic() + timeout
    for _ in range(rounds):
        await pilot.pause()
        while pilot.app.loading and time.monotonic() < deadline:  # type: ignore[attr-defined]
            await pilot.pause(0.01)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        # A DataTable sizes its columns to new rows on its next idle, which a busy machine
        # can push past the screenshot: wait for every table to have done so.
        while time.monotonic() < deadline and any(
            t._require_update_dimensions for t in pilot.app.screen.query(DataTable)
        ):
            await pilot.pause(0.01)


def error_notifications(app: WorkbenchApp) -> list[str]:
    """Every error the app shows from now on, in the words it shows."""
    shown: list[str] = []
    real = app.notify

    def notify(message: str, *args: Any, severity: str = "information", **kw: Any) -> Any:
        if severity == "error":
            shown.append(str(message))
        return real(message, *args, severity=severity, **kw)

    app.notify = notify  # type: ignore[method-assign]
    return shown


def drive(project: Project, steps: Steps, size: tuple[int, int] = SIZE) -> None:
    async def main() -> None:
        app = WorkbenchApp(project)
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await steps(app, pilot)

    asyncio.run(main())


def table(app: WorkbenchApp, selector: str) -> DataTable[Any]:
    return app.screen.query_one(selector, DataTable)


def text(widget: Static | Label) -> str:
    return str(widget.render())


async def launch(pilot: Pilot[None], **fields: str) -> Any:
    """Open Launch, fill the form's boxes (by name: dataset, target, params, grid, ray…)
    and start; returns the screen."""
    await pilot.press("l")
    await settle(pilot)
    screen = pilot.app.screen
    for name, value in fields.items():
        screen.query_one(f"#launch-{name}", Input).value = value
    await pilot.press("ctrl+s")
    return screen


@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_overview_shows_datasets_runs_models_drift_and_audit(tui_project: Project) -> None:
    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        assert table(app, "#ov-datasets").row_count == 1
        assert table(app, "#ov-runs").row_count == 2
        models = table(app, "#ov-models")
        assert models.row_count == 1 and models.get_row_at(0)[:2] == ["churn-model", "v1"]
        assert table(app, "#ov-drift").row_count == 1
        assert table(app, "#ov-audit").row_count > 5
        # enter on a run opens its detail
        table(app, "#ov-runs").focus()
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "RunScreen"
        assert table(app, "#run-metrics").row_count > 5

    drive(tui_project, steps)


@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_runs_filter_sort_errors_and_compare(tui_project: Project) -> None:
    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("r")
        await settle(pilot)
        runs = table(app, "#runs")
        assert runs.row_count == 2
        await pilot.press("slash")
        await pilot.press(*"params.model = 'logistic'", "enter")
        await settle(pilot)
        assert runs.row_count == 1 and "logistic" in runs.get_row_at(0)
        assert app.focused is runs  # the result takes the focus
        filt = app.screen.query_one("#runs-filter", Input)
        filt.value = "metrics.val_auc >"
        await pilot.press("slash", "enter")
        await settle(pilot)
        assert "the filter ends too early" in text(app.screen.query_one("#runs-error", Label))
        assert app.focused is filt  # the cursor stays where the mistake is
        filt.value = ""
        await pilot.press("enter")
        await settle(pilot)
        assert runs.row_count == 2
        runs.focus()
        await pilot.press("space", "space")
        await pilot.pause()
        drawn = ["".join(s.text for s in runs.render_line(y)) for y in (1, 2)]
        assert all(line.lstrip().startswith("●") for line in drawn), drawn  # marks show
        await pilot.press("c")
        await settle(pilot)
        assert type(app.screen).__name__ == "CompareScreen"
        params = table(app, "#cmp-params")
        rows = [params.get_row_at(i) for i in range(params.row_count)]
        model_row = next(r for r in rows if str(r[0]) == "model")
        assert "yellow" in str(model_row[0].style)  # it differs
        assert "lightgbm" in str(model_row) and "logistic" in str(model_row)
        # a param one run lacks reads "-", as in the CLI, never Python's None
        cells = [str(c) for r in rows for c in r[1:]]
        assert "-" in cells and "None" not in cells
        assert table(app, "#cmp-metrics").row_count > 5

    drive(tui_project, steps)


def test_runs_group_by_seed_and_a_group_opens_as_a_band(tui_project: Project) -> None:
    p = tui_project
    seeded = []
    for seed, auc in ((1, 0.80), (2, 0.82), (3, 0.84)):
        run = p.runs.start(experiment="seeds", name="repeat")
        run.log_params({"model": "lightgbm", "seed": seed})
        run.log_metric("val_auc", auc)
        run.log_curve("loss", [1.0 / (seed + k) for k in range(6)])
        run.end()
        seeded.append(run.id)

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("r")
        await settle(pilot)
        runs = table(app, "#runs")
        assert runs.row_count == 5
        await pilot.press("g")
        await settle(pilot)
        assert runs.row_count == 3  # the three seeds are one row
        row = next(
            runs.get_row_at(i) for i in range(runs.row_count) if "3" in runs.get_row_at(i)[2]
        )
        assert "0.8200 ± 0.0200" in row
        assert "5 runs in 3 configurations" in text(app.screen.query_one("#runs-error", Label))
        runs.focus()
        runs.move_cursor(row=next(i for i in range(3) if runs.get_row_at(i) == row))
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "CompareScreen"
        assert sorted(app.screen.run_ids) == sorted(seeded)  # type: ignore[attr-defined]
        assert app.screen.band  # type: ignore[attr-defined]
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        assert runs.row_count == 5  # each run again

    drive(p, steps)


def test_a_text_column_of_ids_shows_its_lengths_not_an_empty_distribution(
    tmp_path: Path,
) -> None:
    """A text column with too many values to count has no top list: the profile says its
    length and why, where a counted column shows its most frequent values."""
    import polars as pl

    from workbench.core.data.profile import MAX_TRACKED_VALUES

    p = Project.init(tmp_path / "ids")[0]
    n = 2 * MAX_TRACKED_VALUES
    src = tmp_path / "users.parquet"
    pl.DataFrame(
        {"user": [f"user-{i:07d}" for i in range(n)], "plan": ["free", "pro"] * (n // 2)}
    ).write_parquet(src)
    p.datasets.add(src, "users")

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("d")
        await settle(pilot)
        table(app, "#ds-versions").focus()
        await pilot.press("enter")
        await settle(pilot)
        profile = table(app, "#profile")
        cells = {str(profile.get_row_at(i)[0]): str(profile.get_row_at(i)[-1])
                 for i in range(profile.row_count)}  # fmt: skip
        assert cells["user"] == "12 characters; too many values to list", cells
        assert "free, pro" in cells["plan"]

    drive(p, steps)


@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_dataset_version_profile_rows_and_diff(tui_project: Project) -> None:
    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("d")
        await settle(pilot)
        versions = table(app, "#ds-versions")
        assert versions.row_count == 2
        versions.focus()
        await pilot.press("enter")  # the newest version
        await settle(pilot)
        assert type(app.screen).__name__ == "VersionScreen"
        assert table(app, "#profile").row_count == 7
        assert "churn@2" in text(app.screen.query_one("#version-head", Static))
        rows = table(app, "#rows")
        assert rows.row_count == 100
        await pilot.press("n")
        await settle(pilot)
        assert "rows 101-200 of 600" in text(app.screen.query_one("#rows-pos", Label))
        diff_input = app.screen.query_one("#diff-with", Input)
        assert diff_input.value == "churn@1"  # the parent, prefilled
        diff_input.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert "churn@1 → churn@2" in text(app.screen.query_one("#diff-summary", Static))
        assert table(app, "#diff-stats").row_count > 0

    drive(tui_project, steps)


def test_drift_compare_and_open_a_stored_report(tui_project: Project) -> None:
    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("f")
        await settle(pilot)
        assert table(app, "#drift-reports").row_count == 1
        app.screen.query_one("#drift-ref", Input).value = "churn@1"
        cur = app.screen.query_one("#drift-cur", Input)
        cur.value = "churn@2"
        cur.focus()
        await pilot.press("enter")
        await settle(pilot)
        drift = table(app, "#drift-table")
        assert drift.row_count == 7
        assert drift.get_row_at(0)[0] == "age" and "DRIFT" in str(drift.get_row_at(0)[1])
        assert "churn@1 → churn@2" in text(app.screen.query_one("#drift-summary", Static))
        assert table(app, "#drift-reports").row_count == 2

    drive(tui_project, steps)


def test_a_report_on_a_file_with_brackets_in_its_name_lists_it_whole(
    tui_project: Project, tmp_path: Path
) -> None:
    """The reports list draws a model-aware report's model dimmed (markup); the names
    beside it are text, brackets and all."""
    batch = tmp_path / "batch[b].csv"
    assert tui_project.datasets.export("churn@2", batch)
    tui_project.drift.series(None, [str(batch)], model="churn-model@production")

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("f")
        await settle(pilot)
        listed = [str(r[1]) for r in map(table(app, "#drift-reports").get_row_at, range(2))]
        assert any("batch[b].csv" in r and r.endswith("(churn-model@1)") for r in listed), listed

    drive(tui_project, steps)


@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_promote_is_refused_by_a_failing_gate_then_passes_to_staging(tui_project: Project) -> None:
    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("m")
        await settle(pilot)
        versions = table(app, "#model-versions")
        assert versions.row_count == 2
        versions.focus()
        await pilot.press("p")  # v2, the newest, is selected
        await settle(pilot)
        dialog = app.screen
        assert type(dialog).__name__ == "PromoteDialog"
        dialog.query_one("#promote-alias", Input).value = "production"
        await pilot.click("#check")
        await settle(pilot)
        gates = dialog.query_one("#gates", DataTable)
        assert gates.row_count == 2 and "FAIL" in str(gates.get_row_at(1)[0])
        assert dialog.query_one("#do-promote", Button).disabled
        assert "refused" in text(dialog.query_one("#promote-status", Static))
        dialog.query_one("#promote-alias", Input).value = "staging"
        await pilot.click("#check")
        await settle(pilot)
        assert not dialog.query_one("#do-promote", Button).disabled
        # While a (slow) promotion runs, nothing can start a gate check or a second
        # promotion (a check landing then once swallowed the promotion's answer and left
        # the dialog open), and the dialog says it is promoting; then it closes.
        real = tui_project.models.promote

        def slow_promote(*args: Any, **kw: Any) -> Any:
            time.sleep(0.8)
            return real(*args, **kw)

        tui_project.models.promote = slow_promote  # type: ignore[method-assign]
        await pilot.click("#do-promote")
        await pilot.pause()
        for button in ("#do-promote", "#do-force", "#check"):
            assert dialog.query_one(button, Button).disabled, button
        assert "promoting to staging" in text(dialog.query_one("#promote-status", Static))
        await settle(pilot)
        assert type(app.screen).__name__ == "ModelsScreen"
        assert tui_project.models.resolve("churn-model@staging").version == 2
        assert tui_project.models.resolve("churn-model@production").version == 1

    drive(tui_project, steps)


@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_a_launch_refused_before_any_run_says_it_ended(tui_project: Project) -> None:
    """A typo in the target is refused before a run begins: the form says the command
    ran and ended (it kept "starting…" and "running:" up for good), and the error names
    the column meant."""

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        screen = await launch(pilot, dataset="churn@2", target="churnd")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and screen.timer is not None:
            await pilot.pause(0.5)
            await settle(pilot, 1)
        status = text(screen.query_one("#launch-status", Static))
        assert "ended before a run began (exit 2)" in status, status
        assert text(screen.query_one("#launch-command", Static)).startswith("ran: workbench")

    drive(tui_project, steps)


@pytest.mark.slow
def test_launch_a_small_run_and_see_it_finish(tui_project: Project) -> None:
    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        screen = await launch(pilot, dataset="churn@2", target="churned", params="n_estimators=20")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            await pilot.pause(0.5)
            await settle(pilot, 1)
            if "finished" in text(screen.query_one("#launch-status", Static)):
                break
        status = text(screen.query_one("#launch-status", Static))
        assert "finished" in status and "val_auc" in status
        assert "points of val_" in status

    drive(tui_project, steps)
    runs = tui_project.runs.list()
    assert len(runs) == 3 and runs[0]["dataset"] == "churn@2" and runs[0]["status"] == "finished"


@pytest.mark.slow  # Ray starts for the sweep (several seconds)
def test_launch_a_sweep_on_ray_from_the_form(tui_project: Project) -> None:
    pytest.importorskip("ray")

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        screen = await launch(
            pilot, dataset="churn@2", target="churned", grid="n_estimators=10,20", ray="here"
        )
        assert "--backend ray" in text(screen.query_one("#launch-command", Static))
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and screen.proc is not None:
            await pilot.pause(0.5)
            await settle(pilot, 1)
            if screen.proc.poll() is not None:
                break
        await pilot.pause(1.5)
        await settle(pilot)
        assert screen.proc is not None and screen.proc.returncode == 0

    drive(tui_project, steps)
    children = [r for r in tui_project.runs.list() if r["name"] and r["name"].startswith("sweep-")]
    assert len(children) == 2 and all(r["status"] == "finished" for r in children)
    assert all(tui_project.runs.get(r["id"]).tags.get("ray.node") for r in children)


@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_audit_verify_and_help(tui_project: Project) -> None:
    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("a")
        await settle(pilot)
        audit = table(app, "#audit")
        assert audit.row_count > 5
        audit.focus()
        await pilot.press("v")
        await settle(pilot)
        assert "verify: OK" in text(app.screen.query_one("#audit-status", Static))
        # a run by the short id every list shows (the placeholder's own example form)
        run = tui_project.runs.list(limit=1)[0]["id"]
        subjects = [str(audit.get_row_at(i)[4]) for i in range(audit.row_count)]
        assert f"run:{run[:8]}" in subjects and f"run:{run}" not in subjects
        box = app.screen.query_one("#audit-filter", Input)
        box.value = f"run:{run[:8]}"
        box.focus()
        await pilot.press("enter")
        await settle(pilot)
        got = {str(audit.get_row_at(i)[4]) for i in range(audit.row_count)}
        assert got == {f"run:{run[:8]}"} and audit.row_count >= 2  # its start and end
        box.value = "run:ffffffff"
        box.focus()
        await pilot.press("enter")
        await settle(pilot)
        status = text(app.screen.query_one("#audit-status", Static))
        assert audit.row_count == 0 and "no entries about run:ffffffff" in status
        await pilot.press("question_mark")
        await settle(pilot)
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        await settle(pilot)
        assert type(app.screen).__name__ == "AuditScreen"

    drive(tui_project, steps)


@pytest.mark.slow
def test_bad_input_in_a_form_is_a_notification_not_a_crash(tui_project: Project) -> None:
    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("f")
        await settle(pilot)
        cur = app.screen.query_one("#drift-cur", Input)
        app.screen.query_one("#drift-ref", Input).value = "churn@1'; DROP TABLE runs; --"
        cur.value = "nope@3"
        cur.focus()
        await pilot.press("enter")
        await settle(pilot)
        messages = [n.message for n in app._notifications]
        assert any("invalid reference" in m for m in messages), messages
        await pilot.press("escape", "l")  # leave the form, then go to launch
        await settle(pilot)
        await pilot.press("ctrl+s")  # empty form
        await settle(pilot)
        assert any("give a dataset version and a target" in n.message for n in app._notifications)
        assert app.is_running

    drive(tui_project, steps)
    assert len(tui_project.runs.list()) == 2


@pytest.mark.slow
def test_usable_at_80_by_24(tui_project: Project) -> None:
    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        for key in ("o", "d", "r", "f", "m", "a", "l"):
            await pilot.press(key)
            await settle(pilot)
        await pilot.press("escape", "r")  # Launch opens in its first field: leave it
        await settle(pilot)
        assert table(app, "#runs").row_count == 2

    drive(tui_project, steps, size=SMALL)


def test_sql_panel_queries_views_and_refuses_writes(tui_project: Project) -> None:
    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("s")
        await settle(pilot)
        assert type(app.screen).__name__ == "SqlScreen"
        assert table(app, "#sql-views").row_count >= 15
        query = app.screen.query_one("#sql-query", Input)
        query.value = "SELECT name, status FROM runs ORDER BY name"
        query.focus()
        await pilot.press("enter")
        await settle(pilot)
        results = table(app, "#sql-results")
        assert [str(results.get_row_at(i)[0]) for i in range(results.row_count)] == [
            "baseline",
            "lgbm",
        ]
        assert "2 rows" in text(app.screen.query_one("#sql-status", Label))
        query.value = "DELETE FROM runs"
        await pilot.press("enter")
        await settle(pilot)
        assert "read-only" in text(app.screen.query_one("#sql-status", Label))
        assert results.row_count == 2  # the last good result stays
        views = table(app, "#sql-views")
        views.focus()
        await pilot.press("down", "down", "enter")  # the third view: tags
        await settle(pilot)
        assert query.value == "SELECT * FROM tags LIMIT 100"
        assert len(tui_project.runs.list()) == 2

    drive(tui_project, steps)


def test_pipelines_screen_lists_runs_and_their_steps(tui_project: Project, tmp_path: Path) -> None:
    import shutil

    from workbench.app.pipeline import Pipeline

    cfg = tui_project.root / "workbench.toml"
    cfg.write_text(
        cfg.read_text()
        + '\n[pipeline.loop]\ndataset = "churn"\nmodel = "churn-model"\ntarget = "churned"\n'
        + 'retrain = "drift"\nmetric = "val_auc"\n'
    )
    project = Project(tui_project.root)
    batch = tmp_path / "batch.parquet"
    project.datasets.export("churn@1", batch)
    shutil.copy(batch, tmp_path / "again.parquet")
    first = Pipeline(project, "loop").run(batch)

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("i")
        await settle(pilot)
        assert type(app.screen).__name__ == "PipelinesScreen"
        runs = table(app, "#pl-runs")
        assert runs.row_count == 1 and first.id[:8] in str(runs.get_row_at(0)[0])
        assert table(app, "#pl-steps").row_count == len(first.steps)

    drive(project, steps)


@pytest.mark.slow
def test_each_screen_reads_the_project_once_when_opened(
    tui_project: Project, monkeypatch: Any
) -> None:
    """Textual calls every class's on_mount along the MRO: a screen that also called its
    base's by hand read everything twice on opening."""
    from workbench.tui.base import WBScreen

    loads: list[str] = []
    real = WBScreen.load

    def load(self: WBScreen, fn: Any, then: Any, group: str = "load", **kw: Any) -> None:
        loads.append(f"{type(self).__name__}:{group}")
        real(self, fn, then, group=group, **kw)

    monkeypatch.setattr(WBScreen, "load", load)

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        assert loads == ["OverviewScreen:load"]
        for key in "drfmai":  # datasets, runs, drift, models, audit, pipelines
            loads.clear()
            await pilot.press(key)
            await settle(pilot)
            # the first read a screen makes is its list; the rest follow from it
            assert loads and loads.count(loads[0]) == 1, (key, loads)

    drive(tui_project, steps)


def test_the_real_app_makes_full_collections_only_when_idle(tui_project: Project) -> None:
    """`workbench ui` freezes what its first paint made and moves full garbage
    collections (50-100 ms on a big project) out of the way of a filter's result."""
    import gc

    from workbench.tui import app as app_module

    threshold = gc.get_threshold()
    full: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            full.append(2)

    async def main() -> None:
        app = WorkbenchApp(tui_project, freeze_gc=True)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert gc.get_threshold()[2] == app_module.FULL_GC_OFF  # none on its own
            gc.callbacks.append(watch)
            app._last_full_gc = time.monotonic()  # the 30 s fallback is not what is tested
            for _ in range(app_module.FULL_GC_AFTER):
                gc.collect(1)  # as many middle collections as Python waits for
            app.loading += 1  # a load in flight: not now
            app._collect_when_idle()
            app.loading -= 1
            app.last_load_done = time.monotonic()  # one just landed: not now either
            app._collect_when_idle()
            assert full == []
            app.last_load_done -= app_module.IDLE_SECONDS  # idle for half a second
            app._collect_when_idle()
            assert full == [2]
            app._collect_when_idle()  # nothing new to collect: no second pass
            assert full == [2]

    try:
        asyncio.run(main())
    finally:
        if watch in gc.callbacks:
            gc.callbacks.remove(watch)
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.slow
def test_a_screen_shows_the_store_as_it_is_when_you_come_back(tui_project: Project) -> None:
    """Only the screen on display hears of a change: the Overview's audit and models
    panels, left for the Models screen while v2 was promoted to staging elsewhere, must show it
    when the user comes back, not what they showed when left."""

    def cells(app: WorkbenchApp, selector: str) -> str:
        t = table(app, selector)
        return " ".join(str(c) for i in range(t.row_count) for c in t.get_row_at(i))

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        assert "model.promote" in cells(app, "#ov-audit")
        assert cells(app, "#ov-models") == "churn-model v1 - 2"
        while app.first_stamp is None:  # the app's first look at the catalog: a baseline
            await pilot.pause(0.05)
        await pilot.press("m")
        await settle(pilot)
        stamp = app._stamp
        # another terminal moves an alias while the user looks at the Models screen
        Project(tui_project.root).models.promote("churn-model", 2, "staging")
        while app._stamp == stamp:  # the next poll of the catalog (every 2 s)
            await pilot.pause(0.05)
        await settle(pilot)
        await pilot.press("o")
        await settle(pilot)
        assert cells(app, "#ov-models") == "churn-model v1 v2 2"
        audit = table(app, "#ov-audit")
        assert "churn-model@staging" in " ".join(str(c) for c in audit.get_row_at(0))

    drive(tui_project, steps)


@pytest.mark.slow
def test_rollback_and_archive_ask_first_name_the_change_and_take_a_reason(
    tui_project: Project,
) -> None:
    """`b` and `x` acted at once (b always on production, a fixed reason). Now each opens
    a dialog that says what will change, or why it cannot, before anything is asked;
    rollback's alias comes from the selected row and can be changed; the reason is the
    user's and lands in the audit trail; escape changes nothing."""
    models = tui_project.models
    models.promote("churn-model", 2, "staging")
    models.promote("churn-model", 1, "staging")  # staging: v2, then v1

    def plan(dialog: Any) -> str:
        return text(dialog.query_one("#confirm-plan", Static))

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("m")
        await settle(pilot)
        versions = table(app, "#model-versions")
        versions.focus()
        versions.move_cursor(row=1)  # v1: holds production and staging
        await settle(pilot)
        await pilot.press("b")
        await settle(pilot)
        dialog = app.screen
        assert type(dialog).__name__ == "ConfirmChange"
        assert "nothing to roll back to" in plan(dialog)  # production has had only v1
        assert dialog.query_one("#confirm-do", Button).disabled
        dialog.query_one("#confirm-choice", Select).value = "staging"
        await settle(pilot)
        assert "churn-model@staging moves back from v1 to v2" in plan(dialog)
        assert dialog.query_one("#confirm-do", Button).disabled  # no reason yet
        await pilot.press(*"bad week")
        assert not dialog.query_one("#confirm-do", Button).disabled
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "ModelsScreen"
        assert models.resolve("churn-model@staging").version == 2
        assert models.history("churn-model", "staging")[-1].reason == "bad week"

        # archive: v2 now holds staging, so the dialog says it cannot, and escape leaves
        versions.move_cursor(row=0)
        await settle(pilot)
        await pilot.press("x")
        await settle(pilot)
        assert "churn-model@2 holds staging; move the alias first" in plan(app.screen)
        await pilot.press("escape")
        await settle(pilot)
        assert type(app.screen).__name__ == "ModelsScreen"
        assert models.resolve("churn-model@2").status != "archived"

    drive(tui_project, steps)


@pytest.mark.slow
def test_typing_goes_into_the_box_and_escape_always_leaves_it(tui_project: Project) -> None:
    """The Launch form opens on its first field, letters typed there stay there (they
    do not switch screens), and escape leaves the box on every screen that has one, after
    which the same letters switch screens again."""

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("l")
        await settle(pilot)
        assert app.focused is app.screen.query_one("#launch-dataset", Input)
        await pilot.press(*"churn@2 from drift")  # d, r, f, o, m: all screen keys
        assert app.screen.query_one("#launch-dataset", Input).value == "churn@2 from drift"
        assert type(app.screen).__name__ == "LaunchScreen"
        for key, box in (("l", "#launch-target"), ("s", "#sql-query"), ("r", "#runs-filter")):
            await pilot.press("escape", key)
            await settle(pilot)
            app.screen.query_one(box, Input).focus()
            await pilot.press("q", "escape")  # q quits, unless it goes into the box
            assert app.is_running and not isinstance(app.focused, Input), key
        await pilot.press("o")
        await settle(pilot)
        assert type(app.screen).__name__ == "OverviewScreen"

    drive(tui_project, steps)


@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_sorting_by_keyboard_and_help_lists_each_screens_keys(tui_project: Project) -> None:
    """Sorting needed a mouse (a header click); `S` sorts by the next column and `R`
    reverses, and `?` lists every screen's own keys, read from its bindings."""
    from textual.widgets import Markdown

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("r")
        await settle(pilot)
        runs = table(app, "#runs")
        status = app.screen.query_one("#runs-error", Label)
        await pilot.press("S", "S")  # run (start time), then name
        await settle(pilot)
        assert "sorted by name desc" in text(status)
        assert [runs.get_row_at(i)[2] for i in range(2)] == ["lgbm", "baseline"]
        await pilot.press("R")
        await settle(pilot)
        assert "sorted by name asc" in text(status)
        assert [runs.get_row_at(i)[2] for i in range(2)] == ["baseline", "lgbm"]
        await pilot.press("question_mark")
        await settle(pilot)
        shown = app.screen.query_one(Markdown).source
        for section, key in (("## Runs", "Sort by next column"), ("## Models", "Roll back")):
            assert section in shown and key in shown

    drive(tui_project, steps)


@pytest.mark.slow
def test_the_first_page_of_rows_knows_the_total_when_the_profile_is_slow(
    tui_project: Project, monkeypatch: Any
) -> None:
    """The rows page took its total from the profile's load: when the page came first
    it said "rows 1-100 of 0"."""
    import time as _time

    from workbench.core.data.datasets import Datasets

    real = Datasets.profile

    def slow(self: Datasets, ref: Any) -> Any:
        _time.sleep(1.0)
        return real(self, ref)

    monkeypatch.setattr(Datasets, "profile", slow)

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("d")
        await settle(pilot)
        table(app, "#ds-versions").focus()
        await pilot.press("enter")
        position = app.screen.query_one("#rows-pos", Label)
        while not text(position):  # the page lands, the profile still on its way
            await pilot.pause(0.02)
        assert text(position).startswith("rows 1-100 of 600"), text(position)

    drive(tui_project, steps)


@pytest.mark.slow
def test_the_promote_dialog_checks_gates_as_it_opens_and_on_each_alias(
    tui_project: Project,
) -> None:
    """The gates were checked only when asked, the alias box started at one the version
    held, and promoting to it said "no current holder to beat"."""

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("m")
        await settle(pilot)
        versions = table(app, "#model-versions")
        versions.focus()
        versions.move_cursor(row=1)  # v1, which holds production
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        dialog = app.screen
        alias = dialog.query_one("#promote-alias", Input)
        status = dialog.query_one("#promote-status", Static)
        assert alias.value == "staging"  # not production, which v1 holds
        assert dialog.query_one("#gates", DataTable).row_count >= 1  # checked on opening
        assert "every gate passes" in text(status)
        alias.value = "production"
        while "already holds" not in text(status):  # checked again once typing pauses
            await pilot.pause(0.05)
        assert "v1 already holds production: nothing to promote" in text(status)
        assert dialog.query_one("#do-promote", Button).disabled
        alias.value = "staging"
        while "every gate passes" not in text(status):
            await pilot.pause(0.05)
        assert not dialog.query_one("#do-promote", Button).disabled

    drive(tui_project, steps)


@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_a_key_no_run_has_is_named_with_the_nearest_real_one(tui_project: Project) -> None:
    """A column or filter on params.n_estimators (the key is model.n_estimators) showed
    "-" or no runs; the app says what the CLI says."""
    hint = "no run has params.n_estimators; did you mean params.`model.n_estimators`?"

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("r")
        await settle(pilot)
        status = app.screen.query_one("#runs-error", Label)
        for box, typed in (
            ("#runs-filter", "params.n_estimators = '30'"),
            ("#runs-columns", "params.n_estimators"),
        ):
            field = app.screen.query_one(box, Input)
            field.value = typed
            field.focus()
            await pilot.press("enter")
            await settle(pilot)
            assert text(status) == hint, box
            field.value = "" if box == "#runs-filter" else "metrics.val_auc"
            await pilot.press("enter")
            await settle(pilot)
            assert text(status).startswith("2 runs"), box
        assert list(app.errors_shown) == [hint, hint]

    drive(tui_project, steps)
