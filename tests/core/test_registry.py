"""The model registry on real trained runs: versions, aliases, gates, rollback, archive."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from tests.conftest import store_snapshot, with_gates
from workbench.core.errors import NotFoundError, UsageError, WorkbenchError
from workbench.core.models.registry import Registry
from workbench.core.models.versions import PromotionRefused
from workbench.core.project import Project
from workbench.core.runs.training import Recipe, train
from workbench.core.store import audit


def test_register_snapshots_lineage_signature_and_metrics(models: Project) -> None:
    v1, v2 = models.models.versions("churn-model")
    assert (v1.version, v2.version) == (1, 2)
    assert v2.dataset_ref == "churn@1" and v2.status == "active"
    assert set(v2.inputs) == {"age", "plan", "income", "signup", "spend", "segment"}
    assert v1.inputs == ["income"]
    assert v2.metrics["val_auc"] > v1.metrics["val_auc"]
    assert models.models.resolve("churn-model").version == 2  # latest
    assert models.models.resolve("churn-model@1").run_id == v1.run_id
    with models.catalog.read() as con:
        actions = [r[0] for r in con.execute("SELECT action FROM audit ORDER BY seq").fetchall()]
        assert actions.count("model.register") == 2
        assert audit.verify_chain(con) == []


def test_references_that_do_not_exist_say_what_does(models: Project) -> None:
    reg = models.models
    with pytest.raises(NotFoundError, match=r"no model 'nope' \(models: churn-model\)"):
        reg.resolve("nope@production")
    with pytest.raises(NotFoundError, match=r"has no version 9 \(versions 1..2\)"):
        reg.resolve("churn-model@9")
    with pytest.raises(NotFoundError, match=r"has no alias 'production' \(aliases: none\)"):
        reg.resolve("churn-model@production")
    with pytest.raises(UsageError, match="not a model reference"):
        reg.resolve("run:abcd")


def test_register_refuses_runs_without_a_model_or_still_running(models: Project) -> None:
    with models.runs.start(experiment="x") as run:
        run.log_metric("loss", 1.0)
    with pytest.raises(WorkbenchError, match="logged no model"):
        models.models.register(run.id, "m")
    live = models.runs.start(experiment="x")
    with pytest.raises(WorkbenchError, match="still running"):
        models.models.register(live.id, "m")
    live.end()
    with pytest.raises(UsageError):
        models.models.register(run.id, "bad name!")


def test_metric_and_champion_gates(models: Project) -> None:
    p = with_gates(
        models, 'production = ["metrics.val_auc >= 0.55", "metrics.val_auc >= champion.val_auc"]\n'
    )
    reg = p.models
    strong = reg.promote("churn-model", 2, "production", reason="best so far")
    assert strong.moved and strong.previous is None and all(r.passed for r in strong.results)
    before = store_snapshot(p)
    with pytest.raises(PromotionRefused) as refused:
        reg.promote("churn-model", 1, "production")
    champion_gate = refused.value.results[2]
    assert not champion_gate.passed and champion_gate.note == "champion churn-model@2"
    assert champion_gate.target == reg.resolve("churn-model@2").metrics["val_auc"]
    assert store_snapshot(p) == before  # a refusal changes nothing
    assert reg.resolve("churn-model@production").version == 2


def test_force_needs_a_reason_and_is_audited_as_forced(models: Project) -> None:
    p = with_gates(models, 'production = ["metrics.val_auc >= 0.99"]\n')
    with pytest.raises(UsageError, match="needs a --reason"):
        p.models.promote("churn-model", 1, "production", force=True)
    res = p.models.promote("churn-model", 1, "production", reason="demo day", force=True)
    assert res.forced and res.moved
    with p.catalog.read() as con:
        action, details = con.execute(
            "SELECT action, details FROM audit ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    assert action == "model.promote.forced"
    assert json.loads(details)["reason"] == "demo day" and json.loads(details)["forced"] is True


def test_a_run_that_did_not_finish_cannot_be_promoted_without_force(
    models: Project,
) -> None:
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(RuntimeError), models.runs.start(experiment="x") as run:
        run.log_model(LogisticRegression().fit([[0], [1]], [0, 1]))
        raise RuntimeError("diverged")
    models.models.register(run.id, "script-model")
    before = store_snapshot(models)
    with pytest.raises(PromotionRefused, match="run finished cleanly"):
        models.models.promote("script-model", 1, "staging")
    assert store_snapshot(models) == before


def test_drift_gate_measures_training_data_against_a_named_version(models: Project) -> None:
    p = with_gates(
        models,
        'production = ["drift_share(churn@2) <= 0.1"]\nstaging = ["drift_share(churn@1) <= 0.1"]\n',
    )
    with pytest.raises(PromotionRefused) as refused:
        p.models.promote("churn-model", 2, "production")
    gate = refused.value.results[1]
    assert not gate.passed and gate.value > 0.1 and "churn@1 → churn@2" in gate.note
    assert p.drift.list() == []  # the refused promotion's drift report was not kept
    ok = p.models.promote("churn-model", 2, "staging")  # same data: no drift
    assert ok.results[1].value == 0.0
    assert len(p.drift.list()) == 1  # kept as evidence of the promotion


def test_gate_that_does_not_parse_is_a_clear_error(models: Project) -> None:
    p = with_gates(models, 'production = ["metrics.val_auc >= lots"]\n')
    with pytest.raises(
        UsageError, match=r"gates.production: gate 'metrics.val_auc >= lots' does not parse"
    ):
        p.models.promote("churn-model", 2, "production")


def test_rollback_walks_back_through_holders(models: Project, tmp_path: Path) -> None:
    strong3 = train(
        models, Recipe(dataset="churn@1", target="churned", params={"n_estimators": 20})
    )
    reg = models.models
    reg.register(strong3, "churn-model")
    for v in (1, 2, 3):
        reg.promote("churn-model", v, "production", reason=f"v{v}")
    assert reg.rollback("churn-model", "production") == (3, 2)
    assert reg.rollback("churn-model", "production") == (2, 1)
    with pytest.raises(WorkbenchError, match="nothing to roll back to"):
        reg.rollback("churn-model", "production")
    reg.promote("churn-model", 3, "production")
    assert reg.rollback("churn-model", "production") == (3, 1)
    with pytest.raises(NotFoundError, match="no alias 'staging' to roll back"):
        reg.rollback("churn-model", "staging")


def test_archive_retires_a_version(models: Project) -> None:
    reg = models.models
    reg.promote("churn-model", 1, "production")
    with pytest.raises(WorkbenchError, match="holds production"):
        reg.archive("churn-model", 1)
    reg.promote("churn-model", 2, "production")
    assert reg.archive("churn-model", 1, reason="superseded").status == "archived"
    with pytest.raises(WorkbenchError, match="archived"):
        reg.promote("churn-model", 1, "staging")
    with pytest.raises(WorkbenchError, match="previous holder churn-model@1 is archived"):
        reg.rollback("churn-model", "production")


def test_two_concurrent_promotions_cannot_both_win(
    models: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both check their gates while the alias is empty, then both try to move it."""
    barrier = threading.Barrier(2)
    original = Registry._move

    def move_together(self: Registry, *args: object, **kw: object) -> None:
        barrier.wait(timeout=30)
        original(self, *args, **kw)

    monkeypatch.setattr(Registry, "_move", move_together)
    outcomes: dict[int, object] = {}

    def promote(v: int) -> None:
        try:
            outcomes[v] = Project(models.root).models.promote("churn-model", v, "production")
        except WorkbenchError as exc:
            outcomes[v] = exc

    threads = [threading.Thread(target=promote, args=(v,)) for v in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    errors = [o for o in outcomes.values() if isinstance(o, WorkbenchError)]
    wins = [o for o in outcomes.values() if not isinstance(o, WorkbenchError)]
    assert len(wins) == 1 and len(errors) == 1
    assert "moved to" in str(errors[0]) and "check again" in str(errors[0])
    holder = models.models.resolve("churn-model@production").version
    assert holder == wins[0].version.version
    assert len(models.models.history("churn-model", "production")) == 1
    with models.catalog.read() as con:
        assert audit.verify_chain(con) == []


def test_drift_against_a_models_training_data_with_its_predictions(models: Project) -> None:
    models.models.promote("churn-model", 1, "production")  # the model that only reads income
    report = models.drift.compare(None, "churn@2", model="churn-model@production")
    assert report.reference == "churn@1" and report.options["model"] == "churn-model@1"
    names = [c.column for c in report.columns]
    assert names == ["income", "prediction (churn-model@1)"]
    pred = report.columns[-1]
    assert pred.status == "tested" and pred.kind == "numeric" and pred.ref_count == 600
    assert "probability of 1" in pred.notes[-1]
    full = models.drift.compare(None, "churn@2", model="churn-model@2")
    age = full.column("age")
    assert age.drifted  # churn@2 is 30 years older
    with pytest.raises(UsageError, match="give a reference dataset"):
        models.drift.compare(None, "churn@2")


def test_a_model_timeline_loads_the_model_once_and_matches_single_reports(
    models: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    models.models.promote("churn-model", 2, "production")
    loads = []
    original = Registry.load
    monkeypatch.setattr(
        Registry, "load", lambda self, mv: loads.append(mv.ref) or original(self, mv)
    )
    series = models.drift.series(
        None, ["churn@1", "churn@2"], model="churn-model@production", save=False
    )
    assert loads == ["churn-model@2"]
    for report in series:
        alone = models.drift.compare(
            None, report.current, model="churn-model@production", save=False
        )
        assert report.columns[-1].statistic == alone.columns[-1].statistic
        assert report.columns[-1].column == "prediction (churn-model@2)"
    assert series[0].columns[-1].statistic == 0.0  # the training data against itself
