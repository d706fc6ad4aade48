"""The tracking API: what a run records, how it ends, and what survives a kill."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import frame
from workbench.core.errors import UsageError
from workbench.core.fluent import start_run
from workbench.core.project import Project
from workbench.core.store import audit


def test_a_run_records_everything_it_logs(project: Project, tmp_path: Path) -> None:
    frame(50).write_csv(tmp_path / "d.csv")
    project.datasets.add(tmp_path / "d.csv", name="churn")
    (tmp_path / "notes.txt").write_text("hello")
    with start_run(experiment="exp", dataset="churn@1", name="baseline", project=project) as run:
        run.log_param("lr", 0.1)
        run.log_params({"model": "lgbm", "depth": 6, "flag": True})
        for step in range(1, 101):
            run.log_metric("loss", 1.0 / step, step=step)
        run.log_metrics({"auc": 0.91, "acc": 0.8}, step=100)
        run.set_tag("note", "first try")
        digest = run.log_artifact(tmp_path / "notes.txt")
    info = project.runs.get(run.id)
    assert info["status"] == "finished" and info["error"] is None
    assert (
        info["experiment"] == "exp"
        and info["name"] == "baseline"
        and info["dataset_ref"] == "churn@1"
    )
    assert info["params"] == {"lr": "0.1", "model": "lgbm", "depth": "6", "flag": "true"}
    assert info["tags"] == {"note": "first try"}
    assert info["metrics"]["loss"]["count"] == 100 and info["metrics"]["loss"][
        "last"
    ] == pytest.approx(0.01)
    assert (
        info["metrics"]["loss"]["min"] == pytest.approx(0.01)
        and info["metrics"]["loss"]["max"] == 1.0
    )
    assert info["metrics"]["auc"]["last"] == 0.91
    assert project.runs.history(run.id, "loss")[:2] == [(1, 1.0), (2, 0.5)]
    assert info["artifacts"] == [{"path": "notes.txt", "hash": digest, "size": 5, "kind": "file"}]
    assert project.objects.read_bytes(digest) == b"hello"
    env = info["environment"]
    assert env["python"] and "polars" in env["packages"] and "duckdb" in env["packages"]
    assert info["duration_s"] >= 0
    with project.catalog.read() as con:
        actions = [e["action"] for e in audit.entries(con, subject=f"run:{run.id}")]
    assert actions == ["run.end", "run.start"]


def test_an_exception_marks_the_run_failed_and_propagates(project: Project) -> None:
    with pytest.raises(ZeroDivisionError), start_run(project=project) as run:
        run.log_metric("x", 1.0)
        1 / 0  # noqa: B018
    info = project.runs.get(run.id)
    assert info["status"] == "failed" and info["error"].startswith(
        "ZeroDivisionError: division by zero at"
    )
    assert info["metrics"]["x"]["last"] == 1.0


def test_nan_and_inf_are_kept_and_aggregates_skip_nan(project: Project) -> None:
    with start_run(project=project) as run:
        for step, v in enumerate([0.5, math.nan, math.inf, 0.7, -math.inf]):
            run.log_metric("m", v, step=step)
    hist = project.runs.history(run.id, "m")
    assert math.isnan(hist[1][1]) and hist[2][1] == math.inf and hist[4][1] == -math.inf
    m = project.runs.get(run.id)["metrics"]["m"]
    assert (
        m["max"] == math.inf
        and m["min"] == -math.inf
        and m["last"] == -math.inf
        and m["count"] == 5
    )
    assert m["mean"] == pytest.approx(0.6)  # finite values only


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda r: r.log_metric("a\nb", 1.0), "invalid metric key"),
        (lambda r: r.log_metric("x" * 251, 1.0), "invalid metric key"),
        (lambda r: r.log_metric("acc", "high"), "must be a number"),
        (lambda r: r.log_metric("acc", 1.0, step=1.5), "must be an integer"),
        (lambda r: r.log_param("", 1), "invalid param key"),
        (lambda r: r.log_param("p", "x" * 7000), "longer than"),
        (lambda r: r.set_tag("t\x00", "v"), "invalid tag key"),
        (lambda r: r.log_curve("c", [0.1, 0.2], steps=[1]), "2 values but 1 steps"),
        (lambda r: r.log_curve("c", ["high", "low"]), "sequence of numbers"),
        (lambda r: r.log_curve("c", [[0.1], [0.2]]), "sequence of numbers"),
        (lambda r: r.log_curve("c", [0.1], steps=[0.5]), "sequence of integers"),
        (lambda r: r.log_curve("a\tb", [0.1]), "invalid metric key"),
    ],
)
def test_bad_logging_calls_are_refused(project: Project, call, fragment: str) -> None:
    with start_run(project=project) as run, pytest.raises(UsageError, match=fragment):
        call(run)


def test_a_curve_logged_at_once_reads_back_like_points_logged_one_by_one(
    project: Project,
) -> None:
    import numpy as np

    values = [0.9, 0.5, math.nan, 0.25, math.inf, 0.1]
    with start_run(project=project) as by_point:
        for step, v in enumerate(values):
            by_point.log_metric("loss", v, step=step)
        by_point.log_metric("auc", 0.7, step=10)
        by_point.log_metric("auc", 0.8, step=20)
    with start_run(project=project) as by_curve:
        by_curve.log_curve("loss", np.array(values))
        by_curve.log_curve("auc", [0.7, 0.8], steps=np.array([10, 20], dtype=np.int32))
        by_curve.log_curve("empty", [])
    for key in ("loss", "auc"):
        a, b = project.runs.history(by_point.id, key), project.runs.history(by_curve.id, key)
        assert [s for s, _ in a] == [s for s, _ in b]
        assert all(
            x == y or (math.isnan(x) and math.isnan(y)) for (_, x), (_, y) in zip(a, b, strict=True)
        )
    summary = project.runs.get(by_curve.id)["metrics"]
    assert summary["loss"] == project.runs.get(by_point.id)["metrics"]["loss"]
    assert summary["auc"]["last"] == 0.8 and "empty" not in summary


def test_params_cannot_change_but_may_repeat(project: Project) -> None:
    with start_run(project=project) as run:
        run.log_param("lr", 0.1)
        run.log_param("lr", 0.1)
        with pytest.raises(UsageError, match=r"already '0\.1'"):
            run.log_param("lr", 0.2)
        run.log_metric("ünïcødé ключ 指标", 1.0)
    assert "ünïcødé ключ 指标" in project.runs.get(run.id)["metrics"]


KILLED = textwrap.dedent(
    """
    import sys, time
    from workbench import Project
    run = Project(sys.argv[1]).runs.start(experiment="k")
    for i in range(2500):
        run.log_metric("loss", float(i), step=i)
    run.flush()
    print(run.id, flush=True)
    time.sleep(60)
    """
)


def test_a_killed_run_is_recognised_with_every_flushed_point(
    project: Project, tmp_path: Path
) -> None:
    script = tmp_path / "k.py"
    script.write_text(KILLED)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(project.root)], stdout=subprocess.PIPE, text=True
    )
    run_id = proc.stdout.readline().strip()
    assert project.runs.get(run_id)["status"] == "running"
    assert len(project.runs.history(run_id, "loss")) == 2500  # a viewer follows the live file
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    info = project.runs.get(run_id)
    assert info["status"] == "killed"
    assert info["metrics"]["loss"]["count"] == 2500 and info["metrics"]["loss"]["last"] == 2499.0


def test_a_stalled_run_marked_killed_and_then_ended_keeps_each_point_once(
    project: Project,
) -> None:
    run = project.runs.start(experiment="stall")
    for step in range(1500):
        run.log_metric("loss", float(step), step=step)
    run.flush()
    stale = time.time() - 600  # as if the heartbeat had stopped ten minutes ago
    os.utime(project.store_dir / "runs" / run.id / "heartbeat", (stale, stale))
    assert project.runs.reconcile() == [run.id]
    assert project.runs.get(run.id)["status"] == "killed"
    run.log_metric("loss", 1500.0, step=1500)
    run.end()  # the process was alive after all: its end folds again, replacing
    info = project.runs.get(run.id)
    assert info["status"] == "finished"
    assert info["metrics"]["loss"]["count"] == 1501
    with project.catalog.read() as con:
        n = con.execute("SELECT count(*) FROM metrics WHERE run_id = ?", [run.id]).fetchone()[0]
    assert n == 1501


PARALLEL = textwrap.dedent(
    """
    import sys
    from workbench import Project
    with Project(sys.argv[1]).runs.start(experiment="par", name=sys.argv[2]) as run:
        for step in range(1000):
            run.log_metrics({f"m{k}": step * k for k in range(10)}, step=step)
    """
)


def test_parallel_runs_log_every_point_without_lock_errors(
    project: Project, tmp_path: Path
) -> None:
    script = tmp_path / "p.py"
    script.write_text(PARALLEL)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(project.root), f"w{i}"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    with project.catalog.read() as con:
        assert con.execute("SELECT count(*) FROM metrics").fetchone()[0] == 4 * 10 * 1000
    assert {r["status"] for r in project.runs.list(experiment="par")} == {"finished"}


def test_soft_delete_restore_and_tags(project: Project) -> None:
    with start_run(project=project) as run:
        pass
    project.runs.set_tag(run.id[:6], "stage", "review")
    assert project.runs.get(run.id)["tags"] == {"stage": "review"}
    project.runs.delete(run.id[:8])
    assert project.runs.list() == [] and len(project.runs.list(include_deleted=True)) == 1
    project.runs.restore(run.id[:8])
    assert [r["id"] for r in project.runs.list()] == [run.id]


def test_log_model_stores_a_loadable_model_and_its_signature(project: Project) -> None:
    import json
    import pickle

    from sklearn.linear_model import LinearRegression

    df = frame(40)
    model = LinearRegression().fit(df.select("age", "income").to_numpy(), df["churned"].to_numpy())
    with start_run(project=project) as run:
        digest = run.log_model(model, input_example=df.select("age", "income"))
        with pytest.raises(UsageError, match="cannot store this model"):
            run.log_model(lambda x: x)
    arts = {a["path"]: a for a in project.runs.get(run.id)["artifacts"]}
    assert arts["model.pkl"]["hash"] == digest and arts["model.pkl"]["kind"] == "model"
    back = pickle.loads(project.objects.read_bytes(digest))
    assert back.coef_.tolist() == model.coef_.tolist()
    sig = json.loads(project.objects.read_bytes(arts["model.signature.json"]["hash"]))
    assert sig == {"inputs": {"age": "Int64", "income": "Float64"}}


def test_a_runs_rows_are_found_through_its_index_also_in_a_catalog_made_before_it(
    project: Project, tmp_path: Path
) -> None:
    """What ``runs show`` and ``runs compare`` read of a run comes through the run_id
    index (a scan of every run's rows was ~80 ms a run at 100k runs), and a catalog of the
    schema before the index gets it when opened, keeping every run."""
    import duckdb

    from workbench.core.runs.runs import OF_RUNS

    (tmp_path / "a.txt").write_text("a")
    ids = []
    for seed in range(3):
        with start_run(project=project) as run:
            run.log_params({"seed": seed})
            run.log_metric("loss", 1.0 / (seed + 1))
            run.set_tag("kind", "trial")
            run.log_artifact(tmp_path / "a.txt")
        ids.append(run.id)
    before = project.runs.get_many(ids)
    tables = ("params", "tags", "metric_summary", "artifacts")
    catalog = project.store_dir / "catalog.duckdb"
    con = duckdb.connect(str(catalog))  # back to schema 11: no run_id indexes
    for table in tables:
        con.execute(f"DROP INDEX {table}_run")
    con.execute("UPDATE wb_meta SET value = '11' WHERE key = 'schema_version'")
    con.close()
    again = Project(project.root)
    assert again.runs.get_many(ids) == before
    asked = [*ids, *(f"{n:032x}" for n in range(97))]  # as many as a compare of 100 runs
    with again.catalog.read() as con:
        for table in tables:
            plan = con.execute(f"EXPLAIN ANALYZE SELECT * FROM {table} WHERE {OF_RUNS}", [asked])
            text = plan.fetchall()[0][1]
            assert "Index Scan" in text, f"{table} is scanned, not looked up:\n{text}"
