"""The continuous-training loop, replayed over the flights sample's monthly batches.

January bootstraps production; February looks like January (no retraining); March has
drifted, so a challenger is trained and promoted because it beats the champion on the
same holdout; March again changes nothing; a challenger that does not beat the champion
by the required margin is kept out; a batch that breaks the checks stops the loop. The
audit trail tells the whole story.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli, store_snapshot
from workbench.app.pipeline import Pipeline
from workbench.core.project import Project

SAMPLE = Path(__file__).resolve().parents[2] / "sample_projects" / "flights"
pytestmark = pytest.mark.slow


def batch(month: int) -> Path:
    return SAMPLE / "data" / f"flights_2013_{month:02d}.parquet"


@pytest.fixture
def flights(tmp_path: Path) -> Project:
    root = tmp_path / "p"
    root.mkdir()
    shutil.copy(SAMPLE / "workbench.toml", root / "workbench.toml")
    project, _ = Project.init(root)
    return project


def test_replaying_monthly_batches_retrains_only_on_drift_and_promotes_only_a_better_model(
    flights: Project,
) -> None:
    pipe = Pipeline(flights, "monthly")
    jan = pipe.run(batch(1))
    assert jan.outcome == "promoted"  # no champion yet: the first model goes to production
    assert flights.models.resolve("flight-delays@production").version == 1

    feb = pipe.run(batch(2))
    assert feb.outcome == "no_retrain"
    assert [s.step for s in feb.steps] == ["add", "drift", "decide"]
    assert "no dataset drift" in feb.reason
    assert flights.models.resolve("flight-delays@production").version == 1  # nothing new
    assert len(flights.runs.list()) == 1  # and no training happened

    mar = pipe.run(batch(3))
    assert mar.outcome == "promoted", mar.reason
    steps = {s.step: s for s in mar.steps}
    assert steps["drift"].refs["drifted"] is True
    ev = steps["evaluate"].refs
    assert ev["challenger_score"] > ev["champion_score"]  # the same holdout decided it
    production = flights.models.resolve("flight-delays@production")
    assert production.version == 2 and production.dataset_ref == "flights@3"

    before = store_snapshot(flights)
    again = pipe.run(batch(3))
    assert again.outcome == "already" and store_snapshot(flights) == before

    # The audit trail tells the story, in order.
    res = run_cli("audit", "--json", "-n", "200", cwd=flights.root)
    story = [
        (e["action"], e["details"].get("outcome"))
        for e in reversed(json.loads(res.out))
        if e["action"] in ("pipeline.run", "model.promote", "drift.report")
    ]
    assert story == [
        ("model.promote", None),
        ("pipeline.run", "promoted"),
        ("drift.report", None),
        ("pipeline.run", "no_retrain"),
        ("drift.report", None),
        ("model.promote", None),
        ("pipeline.run", "promoted"),
    ]
    listed = run_cli("pipeline", "list", "monthly", "--json", cwd=flights.root)
    assert [r["outcome"] for r in json.loads(listed.out)] == ["promoted", "no_retrain", "promoted"]
    # without a name: each pipeline of workbench.toml, and how its last run ended
    every = json.loads(run_cli("pipeline", "list", "--json", cwd=flights.root).out)
    assert [(p["name"], p["model"], p["last"]["outcome"]) for p in every] == [
        ("monthly", "flight-delays@production", "promoted")
    ]
    shown = run_cli("pipeline", "list", cwd=flights.root)
    assert shown.code == 0 and "monthly" in shown.out and "promoted (" in shown.out
    assert run_cli("verify", cwd=flights.root).code == 0


def test_a_challenger_that_is_not_better_enough_is_kept_out(flights: Project) -> None:
    cfg = flights.root / "workbench.toml"
    cfg.write_text(
        cfg.read_text().replace('retrain = "drift"', 'retrain = "always"\nmin_gain = 0.5')
    )
    pipe = Pipeline(Project(flights.root), "monthly")
    assert pipe.run(batch(1)).outcome == "promoted"
    res = run_cli("pipeline", "run", "monthly", "--batch", str(batch(2)), cwd=flights.root)
    assert res.code == 0, res.err
    assert "kept the champion" in res.out and "does not beat it" in res.out
    assert flights.models.resolve("flight-delays@production").version == 1
    assert flights.models.resolve("flight-delays@2").run_id  # registered, not promoted


def test_a_batch_that_breaks_the_checks_stops_the_loop_at_add(
    flights: Project, tmp_path: Path
) -> None:
    cfg = flights.root / "workbench.toml"
    cfg.write_text(cfg.read_text() + "\n[checks.flights]\nrows = [1, 1000]\n")
    before = store_snapshot(flights)
    res = run_cli("pipeline", "run", "monthly", "--batch", str(batch(1)), cwd=flights.root)
    assert res.code == 1
    assert "batch refused" in res.out and "rows(1..1000): 26,398 rows" in res.out
    # nothing but the loop's own record of the refusal
    after = store_snapshot(flights)
    assert after[0]["dataset_versions"] == before[0]["dataset_versions"] == [(0, None)]
    assert len(after[0]["pipeline_runs"]) == 1


def test_watch_processes_each_new_file_once(flights: Project, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(batch(1), inbox / "a.parquet")
    shutil.copy(batch(2), inbox / "b.parquet")
    (inbox / "notes.txt").write_text("not a batch")
    res = run_cli("pipeline", "watch", "monthly", str(inbox), "--once", cwd=flights.root)
    assert res.code == 0, res.err
    assert "2 batch(es) processed" in res.out
    again = run_cli("pipeline", "watch", "monthly", str(inbox), "--once", cwd=flights.root)
    assert "0 batch(es) processed" in again.out


def test_bad_pipeline_config_is_one_line(flights: Project) -> None:
    res = run_cli("pipeline", "run", "nope", "--batch", str(batch(1)), cwd=flights.root)
    assert res.code == 2 and "no [pipeline.nope]" in res.err
    cfg = flights.root / "workbench.toml"
    cfg.write_text(cfg.read_text().replace('retrain = "drift"', 'retrain = "sometimes"'))
    res = run_cli("pipeline", "run", "monthly", "--batch", str(batch(1)), cwd=flights.root)
    assert res.code == 2 and "retrain must be" in res.err


def test_pipeline_list_names_every_pipeline_even_before_its_first_run(
    flights: Project, tmp_path: Path
) -> None:
    shown = run_cli("pipeline", "list", cwd=flights.root)
    assert shown.code == 0 and "monthly" in shown.out and "never run" in shown.out
    runs = run_cli("pipeline", "list", "monthly", cwd=flights.root)
    assert "No runs yet: `workbench pipeline run monthly --batch FILE` runs it once" in runs.out
    bare = Project.init(tmp_path / "bare")[0]
    none = run_cli("pipeline", "list", cwd=bare.root)
    assert none.code == 0 and none.out.startswith("No pipelines: declare one as [pipeline.NAME]")
