"""The app read as a new user reads it (#19): what fits at 120 columns, long cells, empty
states, numbers and plots, artifacts, quitting. Each test failed before its fix."""

from __future__ import annotations

import os
import signal
import stat
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static

from tests.tui.test_app import drive, settle, table, text
from workbench.core.project import Project
from workbench.tui.app import WorkbenchApp

WIDE = (120, 35)
FEATURES = [f"feature_number_{i}" for i in range(30)]


def visible(t: DataTable[Any], header: str) -> bool:
    """Whether the column headed ``header`` lies wholly inside the table's width when it
    is scrolled to the left: what a user sees without scrolling."""
    right = 0
    for column in t.ordered_columns:
        right += column.get_render_width(t)
        if str(column.label) == header:
            return right <= t.scrollable_content_region.width
    raise AssertionError(f"no column {header!r} in {[str(c.label) for c in t.ordered_columns]}")


def long_runs(project: Project) -> list[str]:
    """Two runs whose `features` param is a long list, as a script logs it."""
    refs = []
    for seed in (1, 2):
        with project.runs.start(experiment="wide", name=f"wide-{seed}") as run:
            run.log_params({"features": FEATURES, "seed": seed, "model": "logistic"})
            run.log_metric("val_auc", 0.7 + seed / 100)
        refs.append(run.ref)
    return refs


@pytest.mark.slow
def test_key_columns_stay_on_screen_at_120_and_long_cells_open_whole(
    tui_project: Project,
) -> None:
    """At 120x35 the second run of a compare, the drift verdict and its why, and a model's
    aliases were past the right edge; now each is on screen, a long cell is cut with an
    ellipsis, and `e` shows the whole row with the cut value in full."""
    refs = long_runs(tui_project)

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("space", "space", "c")
        await settle(pilot)
        params = table(app, "#cmp-params")
        for ref in refs:
            assert visible(params, ref), ref
        row = next(i for i in range(params.row_count) if "features" in str(params.get_row_at(i)[0]))
        assert str(params.get_row_at(row)[1]).endswith("…")
        params.focus()
        params.move_cursor(row=row, column=1)
        await pilot.press("e")
        await settle(pilot)
        shown = "\n".join(str(s.render()) for s in app.screen.query(Static))
        assert "feature_number_29" in shown and refs[0] in shown
        await pilot.press("escape", "escape", "f")
        await settle(pilot)
        await pilot.press("enter")  # the stored report
        await settle(pilot)
        drift = table(app, "#drift-table")
        assert drift.row_count
        assert visible(drift, "drifted") and visible(drift, "why")
        await pilot.press("m")
        await settle(pilot)
        models = table(app, "#models")
        assert visible(models, "aliases")
        assert str(models.get_row_at(0)[1]) == "production=v1"

    drive(tui_project, steps, size=WIDE)


def x_ticks(plot: Any) -> list[str]:
    """The labels under a plotext chart's x axis, as drawn."""
    lines = str(plot.render()).splitlines()
    axis = next(i for i, line in enumerate(lines) if "└" in line)
    return lines[axis + 1].split()


@pytest.mark.slow
def test_numbers_keep_their_type_and_plots_read_without_colour(
    tui_project: Project, tmp_path: Any
) -> None:
    """Steps were ticked 1.0 50.8 100.5, a count logged as a float read 12.0000, a year
    in the rows read 2,014, and the drift histograms differed only by colour. Now steps
    get whole ticks, a whole float reads 12, data keeps its type's form, and reference
    and current bars have different fills and a legend that names them."""
    from textual_plotext import PlotextPlot

    (tmp_path / "homes.csv").write_text(
        "year,zip,price\n2014,98005,420000.5\n2015,98052,515000.0\n2016,98005,399999.25\n"
    )
    tui_project.datasets.add(tmp_path / "homes.csv", name="homes")
    with tui_project.runs.start(experiment="counts", name="counted") as run:
        run.log_metric("trials", 12.0)
        run.log_curve("loss", [1 / (i + 1) for i in range(137)])

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("space", "space", "c")  # the newest two: counted and lgbm
        await settle(pilot)
        metrics = table(app, "#cmp-metrics")
        trials = next(
            metrics.get_row_at(i)
            for i in range(metrics.row_count)
            if metrics.get_row_at(i)[0] == "trials"
        )
        assert "12" in trials and not any("12.0" in str(c) for c in trials)
        ticks = x_ticks(app.screen.query_one("#cmp-plot", PlotextPlot))
        assert ticks and all(t.isdigit() for t in ticks), ticks
        await pilot.press("escape", "d")
        await settle(pilot)
        datasets = table(app, "#ds-list")
        datasets.move_cursor(row=[datasets.get_row_at(i)[0] for i in range(2)].index("homes"))
        await settle(pilot)
        table(app, "#ds-versions").focus()
        await pilot.press("enter")
        await settle(pilot)
        rows = table(app, "#rows")
        assert [str(c) for c in rows.get_row_at(0)] == ["2014", "98005", "420000.5"]
        await pilot.press("escape", "f")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        plot = str(app.screen.query_one("#drift-plot", PlotextPlot).render())
        assert "█" in plot and "░" in plot  # two fills, whatever the colours
        assert "churn@1 (reference)" in plot and "churn@2 (current)" in plot

    drive(tui_project, steps, size=WIDE)


@pytest.mark.slow
def test_a_runs_confusion_matrix_and_feature_importance_open_as_table_and_bars(
    tui_project: Project,
) -> None:
    """Artifacts were listed but could not be seen. `]`/`[` reach the Artifacts tab from
    the keyboard and enter opens one: the confusion matrix as a table (the counts the run
    stored, each class's recall and precision), feature importance ranked, with bars."""
    import json

    from textual_plotext import PlotextPlot

    from workbench.app.artifacts import read
    from workbench.tui.widgets.cells import full_text

    run = next(r for r in tui_project.runs.list() if r.name == "lgbm")
    info = tui_project.runs.get(run.id)
    stored = {a.path: a.hash for a in info.artifacts}
    cm = json.loads(tui_project.objects.read_bytes(stored["confusion_matrix.json"]))
    ranked = read(tui_project, run.id, "feature_importance.json").importance

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("r")
        await settle(pilot)
        runs = table(app, "#runs")
        runs.move_cursor(row=[str(runs.get_row_at(i)[2]) for i in range(2)].index("lgbm"))
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("left_square_bracket")  # from Metrics back round to Artifacts
        await settle(pilot)
        arts = table(app, "#run-artifacts")
        assert app.focused is arts
        paths = [str(arts.get_row_at(i)[0]) for i in range(arts.row_count)]
        arts.move_cursor(row=paths.index("confusion_matrix.json"))
        await pilot.press("enter")
        await settle(pilot)
        shown = table(app, "#artifact-table")
        assert shown.row_count == len(cm["labels"])
        for i, label in enumerate(cm["labels"]):
            row = [full_text(c) for c in shown.get_row_at(i)]
            counts = [int(c.replace(",", "")) for c in row[1:-3]]
            assert row[0] == label and counts == cm["matrix"][i]
            recall = cm["matrix"][i][i] / sum(cm["matrix"][i])
            assert row[-2] == f"{recall:.4f}"
        await pilot.press("escape")
        await settle(pilot)
        arts.move_cursor(row=paths.index("feature_importance.json"))
        await pilot.press("enter")
        await settle(pilot)
        shown = table(app, "#artifact-table")
        assert [str(shown.get_row_at(i)[1]) for i in range(shown.row_count)] == [
            name for name, _ in ranked
        ]
        bars = str(app.screen.query_one("#artifact-plot", PlotextPlot).render())
        assert ranked[0][0] in bars and "█" in bars

    drive(tui_project, steps, size=WIDE)


def test_an_artifact_is_read_whole_or_refused_in_one_line(tui_project: Project) -> None:
    """JSON is pretty-printed, a model is summarised rather than dumped, an unknown path
    names the ones there are, and a damaged blob is refused rather than shown."""
    from workbench.app.artifacts import read
    from workbench.core.errors import WorkbenchError

    run = next(r for r in tui_project.runs.list() if r.name == "lgbm")
    sig = read(tui_project, run.id, "signature.json")
    assert sig.form == "text" and '"target": "churned"' in sig.text
    model = read(tui_project, run.id, "model.pkl")
    assert model.form == "binary" and "packed model" in model.text
    with pytest.raises(WorkbenchError, match=r"has no artifact 'nope\.json'.*signature\.json"):
        read(tui_project, run.id, "nope.json")
    blob = next(a for a in tui_project.runs.get(run.id).artifacts if a.path == "signature.json")
    path = tui_project.objects.path(blob.hash)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b"churned", b"CHURNED"))
    with pytest.raises(WorkbenchError) as refused:
        read(tui_project, run.id, "signature.json")
    assert "\n" not in refused.value.message


def _launch_and_quit(project: Project, trees: int, answer: str, hold: bool = False) -> Any:
    """Launch a run from the app, quit while it trains and answer the question asked;
    returns the launched process. ``hold``: stop the run (SIGSTOP) as soon as it has
    started, so that it is still training when the app closes however fast this
    machine trains, without training for a minute; the caller continues it."""
    import time

    from tests.tui.test_app import launch, text

    launched: list[Any] = []

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        screen = await launch(
            pilot, dataset="churn@2", target="churned", params=f"n_estimators={trees}"
        )
        launched.append(screen.proc)  # type: ignore[attr-defined]
        deadline = time.monotonic() + 60
        while "run:" not in text(screen.query_one("#launch-status", Static)):
            assert time.monotonic() < deadline, "the launched run never started"
            await pilot.pause(0.3)
            await settle(pilot, 1)
        if hold:
            os.killpg(screen.proc.pid, signal.SIGSTOP)  # type: ignore[attr-defined]
        await pilot.press("escape", "q")
        await settle(pilot)
        assert app.is_running  # asked, not gone
        asked = "\n".join(str(w.render()) for w in app.screen.query(Static))
        assert "A run you launched is still training" in asked
        assert f"n_estimators={trees}" in asked and "run:" in asked
        await pilot.press("escape")  # stay
        await settle(pilot)
        assert app.is_running and screen.training()  # type: ignore[attr-defined]
        assert app.focused is None  # as it was left: q quits, it is not typed
        await pilot.press("q")
        await settle(pilot)
        await pilot.press(answer)
        await pilot.pause(0.5)
        assert app.return_code == 0  # the app is closing

    try:
        drive(project, steps)
    except BaseException:  # a failed test must not leave a run training for minutes
        for proc in launched:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        raise
    return launched[0]


@pytest.mark.slow
def test_quitting_while_a_launched_run_trains_asks_to_cancel_it(tui_project: Project) -> None:
    """Quitting left a launched run training without a word. Now the app asks; escape
    stays, and cancel ends the run as killed before the app closes."""
    proc = _launch_and_quit(tui_project, 200_000, "c")
    assert proc.poll() is not None
    newest = tui_project.runs.list()[0]
    assert newest["dataset"] == "churn@2" and newest["status"] == "killed"


@pytest.mark.slow
def test_quitting_can_keep_a_launched_run_training_on_its_own(tui_project: Project) -> None:
    """Keep: the app closes and the run goes on without it, to the end (its stderr is a
    file, not a pipe the closed app would break)."""
    # 12,000 trees: ~6.5 s of training on a slow 2-core machine, so still training when
    # it is held (the status names the run up to ~1.5 s after it starts) on one 3x faster
    proc = _launch_and_quit(tui_project, 12_000, "k", hold=True)
    try:
        assert proc.poll() is None  # still training after the app closed
        # its stderr is a file: a pipe's reader, the app, would be gone on a real quit
        assert stat.S_ISREG(os.stat(f"/proc/{proc.pid}/fd/2").st_mode)
        os.killpg(proc.pid, signal.SIGCONT)
        assert proc.wait(120) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    newest = tui_project.runs.list()[0]
    assert newest["dataset"] == "churn@2" and newest["status"] == "finished"


def _drawn(t: DataTable[Any]) -> str:
    """What a table shows, line by line, as painted."""
    return "\n".join(
        "".join(seg.text for seg in t.render_line(y)) for y in range(t.size.height)
    ).strip()


@pytest.mark.slow
def test_empty_screens_say_what_to_do_next_and_forms_use_the_project(tmp_path: Any) -> None:
    """A new project showed bare headers, Pipelines did not mention the pipelines in
    workbench.toml, Launch said 'default 42' where the file says 7 and 'churn@1' in a
    project that has no churn. Each empty table now says the next step with its command,
    and the forms' examples and defaults are the project's own."""
    project, _ = Project.init(tmp_path / "fresh")

    async def empty(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        for panel, command in (
            ("#ov-datasets", "workbench data add FILE --name NAME"),
            ("#ov-runs", "workbench train NAME@1 --target COLUMN"),
            ("#ov-models", "workbench model register RUN --name NAME"),
            ("#ov-drift", "workbench drift"),
        ):
            assert command in table(app, panel).empty_hint, panel
            assert "None yet: " in _drawn(table(app, panel)), panel  # painted, not stored
        for key, selector, command in (
            ("d", "#ds-list", "workbench data add"),
            ("r", "#runs", "workbench train"),
            ("m", "#models", "workbench model register"),
            ("f", "#drift-reports", "workbench drift"),
            ("i", "#pl-runs", "Add a [pipeline.NAME] table to workbench.toml"),
        ):
            await pilot.press(key)
            await settle(pilot)
            assert command in table(app, selector).empty_hint, key

    drive(project, empty, size=WIDE)

    (tmp_path / "homes.csv").write_text("sqft,zip,sold\n1200,98005,1\n900,98052,0\n")
    project.datasets.add(tmp_path / "homes.csv", name="homes")
    cfg = project.root / "workbench.toml"
    cfg.write_text(
        cfg.read_text()
        + '\n[train]\nseed = 7\nmodel = "logistic"\n[train.params]\nmax_iter = 300\n'
        + '\n[pipeline.monthly]\ndataset = "homes"\nmodel = "homes-model"\ntarget = "sold"\n'
    )
    project = Project(project.root)

    async def declared(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("i")
        await settle(pilot)
        hint = table(app, "#pl-runs").empty_hint
        assert "monthly (homes → homes-model" in hint
        assert "workbench pipeline run monthly --batch FILE" in hint
        await pilot.press("l")
        await settle(pilot)
        boxes = {b.id: b.placeholder for b in app.screen.query(Input)}
        assert "homes@1" in boxes["launch-dataset"] and "sold" in boxes["launch-target"]
        assert "default 7, from workbench.toml" in boxes["launch-seed"]
        assert "max_iter=300" in boxes["launch-params"]
        assert app.screen.query_one("#launch-model", Select).value == "logistic"
        await pilot.press("escape", "f")
        await settle(pilot)
        boxes = {b.id: b.placeholder for b in app.screen.query(Input)}
        assert "homes@1" in boxes["drift-cur"] and "churn" not in " ".join(boxes.values())

    drive(project, declared, size=WIDE)


@pytest.mark.slow
def test_filter_and_columns_complete_the_names_runs_have(tui_project: Project) -> None:
    """The filter box and the column chooser complete metric, param and tag names as
    they are typed (→ takes the rest), writing a dotted key as the filter reads it."""

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("slash", *"params.mod")
        await settle(pilot)
        await pilot.press("right")
        box = app.screen.query_one("#runs-filter", Input)
        assert box.value == "params.model"
        await pilot.press(*" = 'lightgbm' and metrics.val_a")
        await settle(pilot)
        await pilot.press("right")
        assert box.value == "params.model = 'lightgbm' and metrics.val_auc"
        await pilot.press(*" > 0.5", "enter")
        await settle(pilot)
        runs = table(app, "#runs")
        assert runs.row_count == 1 and str(runs.get_row_at(0)[2]) == "lgbm"
        columns = app.screen.query_one("#runs-columns", Input)
        columns.focus()
        columns.cursor_position = len(columns.value)
        await pilot.press(*", params.`model.n_e")
        await settle(pilot)
        await pilot.press("right")
        assert columns.value.endswith(", params.`model.n_estimators`")
        await pilot.press("enter")
        await settle(pilot)
        header = [str(c.label) for c in runs.ordered_columns]
        assert "params.`model.n_estimators`" in header
        cell = runs.get_row_at(0)[header.index("params.`model.n_estimators`")]
        assert str(cell) == "30"

    drive(tui_project, steps)


@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_the_monitor_screen_lists_watched_models_runs_a_report_and_opens_a_window(
    tui_project: Project, tmp_path: Any
) -> None:
    """Issue #22's app part: a model with logged predictions is listed, u monitors it now
    (the timeline of windows with the estimate and its band), enter opens a window's drift
    report; before any prediction is logged, the screen says how to get some."""
    from workbench.core.models.scoring import predict

    async def before(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("w")
        await settle(pilot)
        assert "workbench predict" in table(app, "#mon-models").empty_hint

    drive(tui_project, before)
    predict(tui_project, "churn-model@production", "churn@2", tmp_path / "scored.parquet")

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("w")
        await settle(pilot)
        models = table(app, "#mon-models")
        assert models.row_count == 1
        assert "churn-model@1" in str(models.get_row_at(0)[0])
        assert "monitor" in table(app, "#mon-windows").empty_hint  # no report yet
        await pilot.press("u")
        await settle(pilot, rounds=6)
        windows = table(app, "#mon-windows")
        assert windows.row_count == 1
        row = [str(c) for c in windows.get_row_at(0)]
        assert row[1] == "600" and "[" in row[2]  # rows, and the estimate with its band
        assert row[0].endswith(" (churn@2)")  # a day window: what its rows were scored from
        # the metric estimated and realised next to the window, before any drift column:
        # further right they fell off a terminal's pane
        labels = [str(c.label) for c in windows.columns.values()]
        assert labels[:4] == ["window", "rows", "est. auc [band]", "real auc"], labels
        assert row[7].endswith("%")  # the share predicted positive, by the reference's
        notes = text(app.screen.query_one("#mon-notes", Static))
        assert "validation rows of churn@1" in notes and "It predicted " in notes
        with tui_project.catalog.read() as con:
            assert con.execute("SELECT count(*) FROM monitor_reports").fetchone() == (1,)
        with tui_project.catalog.read() as con:
            (drift_id,) = con.execute("SELECT drift_report FROM monitor_windows").fetchone()
        windows.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert app.current_mode == "drift"
        assert app.screen.report.id == drift_id  # type: ignore[attr-defined]

    drive(tui_project, steps)


def test_on_a_narrow_terminal_the_monitor_screen_gives_the_windows_the_width(
    tui_project: Project, tmp_path: Any
) -> None:
    """At 80 columns the model list beside the windows left them three of eight
    columns: the models stack above, and the windows show their estimate and the
    realised metric; a wide terminal keeps them side by side."""
    from workbench.app.monitoring import run
    from workbench.core.models.scoring import predict

    predict(tui_project, "churn-model@production", "churn@2", tmp_path / "scored.parquet")
    run(tui_project, "churn-model@production", "batch")

    def shown(app: WorkbenchApp) -> tuple[Any, Any]:
        return table(app, "#mon-models").region, table(app, "#mon-windows").region

    async def narrow(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("w")
        await settle(pilot, rounds=4)
        models, windows = shown(app)
        assert models.bottom <= windows.y and windows.width >= 78  # stacked, the full width
        widths = [c.get_render_width(table(app, "#mon-windows")) for c in
                  table(app, "#mon-windows").columns.values()][:4]  # fmt: skip
        assert sum(widths) <= windows.width  # window, rows, estimate and realised all seen

    async def wide(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("w")
        await settle(pilot, rounds=4)
        models, windows = shown(app)
        assert models.right <= windows.x and models.y == windows.y  # side by side

    drive(tui_project, narrow, size=(80, 24))
    drive(tui_project, wide, size=(160, 45))


def test_a_report_without_drift_says_so_on_enter(tui_project: Project, tmp_path: Any) -> None:
    """A report made with --no-drift shows no drift and says why enter opens nothing (not
    that the window was too small)."""
    from workbench.app.monitoring import run
    from workbench.core.models.scoring import predict

    predict(tui_project, "churn-model@production", "churn@2", tmp_path / "scored.parquet")
    run(tui_project, "churn-model@production", "batch", drift=False)

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("w")
        await settle(pilot, rounds=4)
        windows = table(app, "#mon-windows")
        assert windows.row_count == 1
        row = [str(c) for c in windows.get_row_at(0)]
        assert row[1] == "600" and row[5] == "-" and "[" in row[2]
        windows.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert app.current_mode != "drift"
        said = [n.message for n in app._notifications]
        assert any("--no-drift" in m for m in said), said

    drive(tui_project, steps)


def test_the_launch_form_sends_a_sweep_to_ray_and_says_what_ray_needs() -> None:
    """The form stands for a CLI command (shown, so it can be scripted): a Ray box
    makes the sweep `--backend ray`, with the cluster's address unless it says here."""
    from workbench.core.errors import UsageError
    from workbench.tui.screens.launch import command

    form = {"dataset": "churn@2", "target": "churned", "grid": "num_leaves=15,31"}
    cmd = command({**form, "ray": "10.0.0.5:6379"}, "lightgbm", "/p")
    assert cmd[cmd.index("sweep") :][-4:] == ["--backend", "ray", "--address", "10.0.0.5:6379"]
    here = command({**form, "ray": "here"}, "lightgbm", "/p")
    assert here[-2:] == ["--backend", "ray"]
    assert "--backend" not in command(form, "lightgbm", "/p")
    with pytest.raises(UsageError, match="Ray runs sweeps"):
        command({**form, "grid": "", "ray": "auto"}, "lightgbm", "/p")
