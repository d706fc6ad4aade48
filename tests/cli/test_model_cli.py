"""``workbench model …`` and ``workbench predict`` as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli, store_snapshot, with_gates
from workbench.core.project import Project


def test_register_promote_predict_rollback_card(models: Project, tmp_path: Path) -> None:
    p = with_gates(models, 'production = ["metrics.val_auc >= champion.val_auc"]\n')
    root = p.root
    listed = json.loads(run_cli("model", "list", "--json", cwd=root).out)
    assert listed[0]["name"] == "churn-model" and listed[0]["versions"] == 2

    r = run_cli(
        "model", "promote", "churn-model", "1", "--to", "production", "-r", "baseline", cwd=root
    )
    assert r.code == 0 and "churn-model@production -> v1" in r.out and "pass" in r.out
    r = run_cli("model", "promote", "churn-model", "2", "--to", "production", cwd=root)
    assert r.code == 0 and "-> v2 (was v1)" in r.out
    r = run_cli("model", "promote", "churn-model", "1", "--to", "production", cwd=root)
    assert r.code == 1 and "FAIL" in r.out and "not promoted" in r.err
    assert len(r.err.strip().splitlines()) == 1

    out = tmp_path / "scored.parquet"
    r = run_cli("predict", "churn-model@production", "churn@2", "-o", str(out), cwd=root)
    assert r.code == 0 and "Scored 600 rows of churn@2 with churn-model@2" in r.out and out.exists()

    r = run_cli("model", "rollback", "churn-model", "-r", "regression", cwd=root)
    assert r.code == 0 and "churn-model@production -> v1 (rolled back from v2)" in r.out
    shown = json.loads(run_cli("model", "show", "churn-model", "--json", cwd=root).out)
    assert [h["action"] for h in shown["history"]] == [
        "model.promote",
        "model.promote",
        "model.rollback",
    ]
    one = json.loads(run_cli("model", "show", "churn-model@production", "--json", cwd=root).out)
    assert one["version"] == 1 and one["aliases"] == ["production"] and one["dataset"] == "churn@1"

    card = run_cli("model", "card", "churn-model@production", cwd=root).out
    assert card.startswith("# Model card: churn-model v1")
    assert "who will churn next month" in card and "dataset `churn@1` → run `run:" in card
    assert "| val_auc |" in card and "rollback" in card

    audit = json.loads(run_cli("audit", "--json", cwd=root).out)
    actions = [e["action"] for e in audit]
    assert {"model.register", "model.promote", "model.rollback", "model.predict"} <= set(actions)
    # the trail as a person reads it: each detail on its line, gates counted, not a repr
    lines = run_cli("audit", "-n", "50", cwd=root).out
    promoted = [line for line in lines.splitlines() if "model.promote" in line]
    assert promoted and all("gates=" in line and " passed" in line for line in promoted[1:])
    assert "{'" not in lines and "[{" not in lines and "'passed'" not in lines
    # a registration says where the model came from; its artifact's digest is for --json
    registered = [line for line in lines.splitlines() if "model.register" in line]
    assert registered and all("dataset=churn@1" in line for line in registered)
    assert "artifact=" not in lines and "artifact" in json.dumps(audit)
    # a run's entries by the short id every list shows, and shown by it
    run = next(e["subject"] for e in audit if e["action"] == "run.start")
    short = run[: len("run:") + 8]
    about = run_cli("audit", "--subject", short, cwd=root).out
    assert "run.start" in about and short in about and run not in about
    none = run_cli("audit", "--subject", "run:ffffffff", cwd=root)
    assert none.code == 0 and none.out.strip() == "No audit entries about run:ffffffff."
    assert run_cli("verify", cwd=root).code == 0


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["model", "show", "nope"], 1, "no model 'nope'"),
        (["model", "show", "churn-model@7"], 1, "has no version 7"),
        (["model", "promote", "churn-model", "7", "--to", "production"], 1, "has no version 7"),
        (["model", "promote", "churn-model", "1", "--to", "prod uction"], 2, "invalid alias"),
        (
            ["model", "promote", "churn-model", "1", "--to", "production", "--force"],
            2,
            "needs a --reason",
        ),
        (["model", "rollback", "churn-model"], 1, "no alias 'production' to roll back"),
        (["model", "register", "run:ffffffff", "--name", "x"], 1, "no run"),
        (
            ["predict", "churn-model@production", "churn@1", "-o", "x.parquet"],
            1,
            "no alias 'production'",
        ),
        (["predict", "churn-model@1", "nope.csv", "-o", "x.parquet"], 1, "no such file: nope.csv"),
        (["predict", "churn-model@1", "nope@3", "-o", "x.parquet"], 1, "no dataset"),
        (["model", "card", "churn-model@staging"], 1, "no alias 'staging'"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    models: Project,
    args: list[str],
    code: int,
    message: str,
) -> None:
    before = store_snapshot(models)
    r = run_cli(*args, cwd=models.root)
    assert r.code == code, (r.out, r.err)
    assert message in r.err and len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert store_snapshot(models) == before


def test_drift_with_model_needs_only_the_new_batch(models: Project, tmp_path: Path) -> None:
    root = models.root
    assert run_cli("model", "promote", "churn-model", "2", "--to", "production", cwd=root).code == 0
    batch = tmp_path / "batch.parquet"
    models.datasets.load("churn@2").write_parquet(batch)
    r = run_cli("drift", "--model", "churn-model@production", str(batch), "--json", cwd=root)
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["reference"] == "churn@1" and data["current"] == "batch.parquet"
    assert data["columns"][-1]["column"] == "prediction (churn-model@2)"
    r = run_cli("drift", "churn@1", cwd=root)
    assert r.code == 2 and "give REF and CURRENT" in r.err


def test_verify_catches_an_alias_or_model_hash_edited_behind_workbench(models: Project) -> None:
    root = models.root
    assert run_cli("model", "promote", "churn-model", "1", "--to", "production", cwd=root).code == 0
    assert run_cli("verify", cwd=root).code == 0
    with models.catalog.write() as con:  # swap the production model without a promotion
        con.execute("UPDATE model_aliases SET version = 2 WHERE alias = 'production'")
    r = run_cli("verify", cwd=root)
    assert r.code == 1
    assert (
        "alias churn-model@production points at v2, but the audit trail last moved it to v1"
        in r.out
    )
    with models.catalog.write() as con:
        con.execute("UPDATE model_aliases SET version = 1 WHERE alias = 'production'")
        con.execute("UPDATE model_versions SET artifact = 'ab' || artifact[3:] WHERE version = 2")
    r = run_cli("verify", cwd=root)
    assert r.code == 1 and "churn-model@2's artifact differs from the one registered" in r.out


def test_a_drift_gate_names_only_reports_that_were_kept(models: Project) -> None:
    """A refused promotion keeps no drift report, so it names none; a forced one keeps
    its evidence and names the id that `drift show` finds."""
    p = with_gates(models, 'production = ["drift_share(churn@2) <= 0.01"]')
    refused = run_cli("model", "promote", "churn-model", "2", "--to", "production", cwd=p.root)
    assert refused.code == 1 and "churn@1 → churn@2" in refused.out
    assert "report" not in refused.out
    assert json.loads(run_cli("drift", "list", "--json", cwd=p.root).out) == []
    forced = run_cli(
        "model",
        "promote",
        "churn-model",
        "2",
        "--to",
        "production",
        "--force",
        "-r",
        "ok",
        cwd=p.root,
    )
    assert forced.code == 0, forced.err
    rid = forced.out.split("drift evidence kept: report ")[1].split()[0]
    shown = run_cli("drift", "show", rid, cwd=p.root)
    assert shown.code == 0 and rid in shown.out


def test_promote_takes_the_version_as_a_reference_too(models: Project) -> None:
    root = models.root
    r = run_cli("model", "promote", "churn-model@2", "--to", "staging", cwd=root)
    assert r.code == 0 and "churn-model@staging -> v2" in r.out
    # what staging names now goes on to production: the usual next step
    r = run_cli("model", "promote", "churn-model@staging", "--to", "production", cwd=root)
    assert r.code == 0 and "churn-model@production -> v2" in r.out
    assert models.models.resolve("churn-model@production").version == 2
    r = run_cli("model", "promote", "churn-model", "--to", "production", cwd=root)
    assert r.code == 2 and "which version of churn-model? give NAME VERSION" in r.err
    r = run_cli("model", "promote", "churn-model@1", "2", "--to", "production", cwd=root)
    assert r.code == 2 and "not both" in r.err
    r = run_cli("model", "promote", "churn-model@nope", "--to", "production", cwd=root)
    assert r.code == 1 and "no alias 'nope'" in r.err
