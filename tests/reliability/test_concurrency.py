"""Everything at once, in real processes: the TUI, training, a large ingest, a promotion.

DuckDB lets one process write the catalog file at a time and locks readers out while
it does; workbench keeps every connection short and retries a busy catalog. These
tests prove a user never sees that: no lock error, nothing lost, nothing done twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from textual.widgets import DataTable

from tests.tui.test_app import settle
from workbench.core.project import Project
from workbench.core.store import audit
from workbench.core.store.verify import verify
from workbench.tui.app import WorkbenchApp

pytestmark = pytest.mark.slow  # seven processes at once, and promotion races

TRAINERS = 4
BIG_ROWS = 1_000_000

# A user's own training script: LightGBM, a callback logging each round's losses, and
# extra per-step metrics; it prints its run id and how many points it logged.
TRAINER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import lightgbm as lgb
    import numpy as np
    from workbench import Project, start_run

    root, worker, meet = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    project = Project(root)
    df = project.datasets.load(project.datasets.resolve("churn@1"))
    x = df.select("age", "income", "spend").to_numpy()
    y = df["churned"].to_numpy()
    logged = 0
    with start_run(experiment="load", name=f"worker-{worker}", dataset="churn@1",
                   project=project) as run:
        run.log_params({"worker": worker, "rounds": 300})
        # every trainer's run is open before any logs: they write at the same time
        (meet / f"started-{worker}").touch()
        while len(list(meet.glob("started-*"))) < int(sys.argv[4]):
            time.sleep(0.005)

        def log_round(env):
            global logged
            for _, metric, value, _ in env.evaluation_result_list:
                run.log_metric(f"train_{metric}", value, env.iteration)
                logged += 1

        model = lgb.LGBMClassifier(n_estimators=300, learning_rate=0.05, verbose=-1, n_jobs=1)
        model.fit(x, y, eval_set=[(x, y)], callbacks=[log_round])
        for step in range(5000):
            run.log_metrics({"loss": 1 / (step + 1), "lr": 0.05 * 0.999**step}, step)
            logged += 2
        run.log_model(model)
    print(json.dumps({"run": run.id, "points": logged}))
    """
)


@pytest.fixture
def busy_project(project: Project, tmp_path: Path) -> Project:
    from tests.core.test_training import churn
    from workbench.core.runs.training import Recipe, train

    churn(2000, 0).write_parquet(tmp_path / "c1.parquet")
    project.datasets.add(tmp_path / "c1.parquet", name="churn")
    for n in (10, 20):
        run = train(
            project, Recipe(dataset="churn@1", target="churned", params={"n_estimators": n})
        )
        project.models.register(run, "churn-model")
    project.models.promote("churn-model", 1, "production")
    return project


def _big_csv(path: Path, rows: int) -> None:
    rng = np.random.default_rng(7)
    pl.DataFrame(
        {
            "id": np.arange(rows),
            "x": rng.normal(size=rows),
            "y": rng.integers(0, 1000, rows),
            "city": rng.choice(["Lisbon", "Porto", "Braga", "Faro"], rows),
        }
    ).write_csv(path)


def _spawn(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=cwd,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_tui_training_ingest_and_promotion_all_at_once(
    busy_project: Project, tmp_path: Path
) -> None:
    p = busy_project
    script = tmp_path / "trainer.py"
    script.write_text(TRAINER)
    big = tmp_path / "events.csv"
    _big_csv(big, BIG_ROWS)
    with p.catalog.read() as con:
        audit_before = con.execute("SELECT count(*) FROM audit").fetchall()[0][0]

    screens: list[tuple[str, float, float]] = []  # (key, when, seconds until it had loaded)
    windows: dict[str, list[float]] = {}  # process -> [spawned, seen ended]

    def runs_on_screen(app: WorkbenchApp) -> set[str]:
        table = app.screen.query_one("#runs", DataTable)
        return {str(cell) for i in range(table.row_count) for cell in table.get_row_at(i)}

    async def main() -> tuple[dict[str, subprocess.Popen[str]], list[str], set[str]]:
        app = WorkbenchApp(p)
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(pilot)
            procs = {
                f"trainer {w}": _spawn(
                    [str(script), str(p.root), str(w), str(tmp_path), str(TRAINERS)], tmp_path
                )
                for w in range(TRAINERS)
            }
            procs["data add"] = _spawn(
                ["-m", "workbench", "data", "add", str(big), "-n", "events"], p.root
            )
            procs["promote"] = _spawn(
                [
                    "-m",
                    "workbench",
                    "model",
                    "promote",
                    "churn-model",
                    "2",
                    "--to",
                    "production",
                    "-r",
                    "load test",
                ],
                p.root,
            )
            for name in procs:
                windows[name] = [time.time()]
            # the user keeps browsing while all of that runs: every screen, again and again
            keys = "odrfmais"
            i = 0
            while len(windows) > sum(len(w) == 2 for w in windows.values()):
                # not a deadline to meet (they take ~20 s) but a hang to report, not wait out
                assert time.time() - windows["promote"][0] < 900, "a process hangs"
                t0 = time.perf_counter()
                await pilot.press("escape", keys[i % len(keys)])  # out of any box, then go
                await settle(pilot, rounds=1)
                screens.append((keys[i % len(keys)], time.time(), time.perf_counter() - t0))
                for name, proc in procs.items():
                    if proc.poll() is not None and len(windows[name]) == 1:
                        windows[name].append(time.time())
                i += 1
            # and the app then shows what they did, within a poll of the catalog
            await pilot.press("escape", "r")  # leave the SQL box first, as a user does
            await settle(pilot)
            workers = {f"worker-{w}" for w in range(TRAINERS)}
            polls = 0
            while not workers <= runs_on_screen(app):
                polls += 1
                assert polls < 300, sorted(runs_on_screen(app))
                await pilot.pause(0.1)
                await settle(pilot, rounds=1)
            assert app.is_running
            return procs, list(app.errors_shown), runs_on_screen(app)

    procs, errors, _ = asyncio.run(main())
    outputs = {name: proc.communicate() for name, proc in procs.items()}
    for name, proc in procs.items():
        err = outputs[name][1]
        assert proc.returncode == 0, (name, err)
        assert "busy" not in err and "lock" not in err.lower() and "Traceback" not in err, err
    # no error seen in the app: neither a toast nor a screen's own error line
    assert errors == [], errors
    # the seven overlapped: all six processes were alive at once, with the app in use
    together = (max(w[0] for w in windows.values()), min(w[1] for w in windows.values()))
    assert together[0] < together[1], windows
    used = [s for s in screens if together[0] <= s[1] <= together[1]]
    assert used, "the app was not used while all of them ran"
    print(
        json.dumps(
            {
                "screens": [(k, round(t, 2)) for k, _, t in screens],
                "all at once (s)": round(together[1] - together[0], 1),
                "screens while all ran": len(used),
            }
        )
    )

    # every metric point of every run is in the catalog
    reported = [json.loads(outputs[f"trainer {w}"][0]) for w in range(TRAINERS)]
    with p.catalog.read() as con:
        starts, ends = [], []
        for r in reported:
            n, status = con.execute(
                "SELECT (SELECT count(*) FROM metrics WHERE run_id = ?), "
                "(SELECT status FROM runs WHERE id = ?)",
                [r["run"], r["run"]],
            ).fetchall()[0]
            assert (n, status) == (r["points"], "finished")
            assert r["points"] == 300 + 2 * 5000  # one eval metric a round, two a step
            start, end = con.execute(
                "SELECT start_time, end_time FROM runs WHERE id = ?", [r["run"]]
            ).fetchall()[0]
            starts.append(start)
            ends.append(end)
        assert max(starts) < min(ends)  # the four runs logged at the same time
        # the promotion happened exactly once
        moves = con.execute(
            "SELECT version, previous FROM alias_history WHERE alias = 'production' ORDER BY seq"
        ).fetchall()
        assert moves == [(1, None), (2, 1)]
        promotes = con.execute(
            "SELECT count(*) FROM audit WHERE action = 'model.promote' AND seq > ?",
            [audit_before],
        ).fetchall()[0][0]
        assert promotes == 1
        assert audit.verify_chain(con) == []
    events = p.datasets.resolve("events")
    assert events.n_rows == BIG_ROWS
    assert verify(p).ok


PROMOTER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from workbench.cli.main import main

    root, version, barrier = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    import workbench.core.models.gates, workbench.core.drift.analysis  # what a promotion loads
    (barrier.parent / f"ready-{version}").touch()
    while not barrier.exists():  # both processes are loaded: start together
        time.sleep(0.001)
    main(["--project", root, "model", "promote", "churn-model", version, "--to", "staging"])
    """
)


@pytest.mark.parametrize("attempt", range(2))
def test_two_promotions_to_one_alias_at_the_same_moment(
    busy_project: Project, tmp_path: Path, attempt: int
) -> None:
    """v1 and v2 race for staging: one moves it, the other is told it lost and why."""
    p = busy_project
    cfg = p.root / "workbench.toml"  # a gate that takes a moment, as real gates do
    cfg.write_text(cfg.read_text() + '\n[gates]\nstaging = ["drift_share(churn@1) <= 1.0"]\n')
    script = tmp_path / "promoter.py"
    script.write_text(PROMOTER)
    barrier = tmp_path / "go"
    procs = [_spawn([str(script), str(p.root), str(v), str(barrier)], tmp_path) for v in (1, 2)]
    while not all((tmp_path / f"ready-{v}").exists() for v in (1, 2)):  # both loaded
        assert all(proc.poll() is None for proc in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    barrier.touch()
    results = [(proc.wait(timeout=120), *proc.communicate()) for proc in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 1], results
    loser = next(r for r in results if r[0] == 1)
    assert loser[2].count("\n") == 1 and "while this change was being checked" in loser[2]
    assert "Traceback" not in loser[2]
    p = Project(p.root)
    with p.catalog.read() as con:
        moves = con.execute("SELECT version FROM alias_history WHERE alias = 'staging'").fetchall()
        assert len(moves) == 1
        reports = con.execute("SELECT count(*) FROM drift_reports").fetchall()[0][0]
        assert reports == 1  # only the winner's evidence is kept
        assert audit.verify_chain(con) == []
    winner = next(r for r in results if r[0] == 0)
    assert f"-> v{moves[0][0]}" in winner[1] or f"v{moves[0][0]}" in winner[1]
    assert verify(p).ok
