"""``workbench train`` and ``workbench runs`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli
from tests.core.test_training import churn


def test_train_list_show_compare_tag_delete(tmp_path: Path) -> None:
    root = tmp_path / "p"
    run_cli("init", str(root))
    churn().write_parquet(tmp_path / "c.parquet")
    run_cli("data", "add", str(tmp_path / "c.parquet"), "-n", "churn", cwd=root)
    (root / "workbench.toml").write_text(
        (root / "workbench.toml").read_text()
        + "\n[train]\nseed = 3\n[train.params]\nn_estimators = 25\n"
    )
    a = run_cli("train", "churn", "--target", "churned", "--name", "base", "--json", cwd=root)
    assert a.code == 0, a.err
    ra = json.loads(a.out)
    assert ra["params"]["seed"] == "3" and ra["params"]["model.n_estimators"] == "25"
    b = run_cli(
        "train",
        "churn",
        "-t",
        "churned",
        "-p",
        "learning_rate=0.2",
        "-p",
        "n_estimators=10",
        "--name",
        "fast",
        cwd=root,
    )
    assert b.code == 0 and "finished" in b.out and "val_auc" in b.out

    listed = json.loads(
        run_cli("runs", "list", "--json", "-f", "params.`model.learning_rate` > 0.1", cwd=root).out
    )
    assert [r["name"] for r in listed] == ["fast"]
    ordered = json.loads(
        run_cli("runs", "list", "--json", "-o", "metrics.val_auc desc", cwd=root).out
    )
    aucs = [r["metrics"]["val_auc"] for r in ordered]
    assert aucs == sorted(aucs, reverse=True) and len(aucs) == 2
    table = run_cli("runs", "list", "-c", "params.seed,metrics.val_auc", cwd=root)
    assert "params.seed" in table.out and "base" in table.out

    rid = ra["id"][:8]
    shown = run_cli("runs", "show", rid, cwd=root)
    assert shown.code == 0 and "model.pkl" in shown.out and "val_auc" in shown.out
    cmp_ = run_cli(
        "runs",
        "compare",
        rid,
        f"run:{json.loads(b.out) if False else listed[0]['id'][:8]}",
        "--plot",
        "val_log_loss_curve",
        cwd=root,
    )
    assert (
        cmp_.code == 0
        and "learning_rate" in cmp_.out
        and "*" in cmp_.out
        and "val_log_loss_curve" in cmp_.out
        and "\\x1b" not in cmp_.out  # the curves' colours are not printed as text
    )

    assert run_cli("runs", "tag", rid, "stage=review", cwd=root).code == 0
    assert json.loads(run_cli("runs", "show", rid, "--json", cwd=root).out)["tags"] == {
        "stage": "review"
    }
    assert run_cli("runs", "delete", rid, cwd=root).code == 0
    assert len(json.loads(run_cli("runs", "list", "--json", cwd=root).out)) == 1
    assert run_cli("runs", "restore", rid, cwd=root).code == 0
    assert len(json.loads(run_cli("runs", "list", "--json", cwd=root).out)) == 2
    other = json.loads(run_cli("runs", "list", "--json", cwd=root).out)[0]["id"]
    audit_len = len(json.loads(run_cli("audit", "--json", "-n", "1000", cwd=root).out))

    # several tags, or several runs, are one change: a bad one refuses them all
    bad_tags = run_cli("runs", "tag", rid, "a=1", "b=2", "nope-", cwd=root)
    assert bad_tags.code == 1 and "no tag 'nope'; nothing changed" in bad_tags.err
    bad_pair = run_cli("runs", "tag", rid, "a=1", "oops", cwd=root)
    assert bad_pair.code == 2 and "nothing changed" in bad_pair.err
    bad_delete = run_cli("runs", "delete", other, "run:ffffffff", cwd=root)
    assert bad_delete.code == 1 and "no run with an id starting with ffffffff" in bad_delete.err
    assert json.loads(run_cli("runs", "show", rid, "--json", cwd=root).out)["tags"] == {
        "stage": "review"
    }
    assert len(json.loads(run_cli("runs", "list", "--json", cwd=root).out)) == 2
    assert len(json.loads(run_cli("audit", "--json", "-n", "1000", cwd=root).out)) == audit_len

    # set and removed in one command: what comes last wins; restoring a live run is no change
    assert run_cli("runs", "tag", rid, "a=1", "stage-", "b=2", "a-", cwd=root).code == 0
    assert json.loads(run_cli("runs", "show", rid, "--json", cwd=root).out)["tags"] == {"b": "2"}
    assert run_cli("runs", "restore", rid, other, cwd=root).code == 0
    assert (
        len(json.loads(run_cli("audit", "--json", "-n", "1000", cwd=root).out)) == audit_len + 2
    )  # stage untagged, b tagged; no restore

    # a key no run has is said, with the nearest real one, not shown as "-" or no match
    for args in (["-c", "params.learning_rate"], ["-f", "params.learning_rate = '0.2'"]):
        res = run_cli("runs", "list", *args, cwd=root)
        assert res.code == 2, res
        assert res.err == (
            "error: no run has params.learning_rate; did you mean params.`model.learning_rate`?\n"
        )
    ok = run_cli("runs", "list", "-f", "params.`model.learning_rate` = '0.2'", cwd=root)
    assert ok.code == 0 and "fast" in ok.out


def test_many_runs_compare_a_run_per_row_and_the_best_curve_in_colour(tmp_path: Path) -> None:
    """Twelve runs do not stand side by side in 160 columns (every value broke over
    lines): a run per row, the params they share said once, the best marked; their
    curves in grey with the best one named in the legend (twelve legend entries did not
    fit, and plotext drew none)."""
    from workbench.core.fluent import start_run
    from workbench.core.project import Project

    project, _ = Project.init(tmp_path / "p")
    ids = []
    for seed in range(12):
        with start_run(experiment="e", name=f"s{seed}", project=project) as run:
            run.log_params({"model": "lightgbm", "seed": seed})
            final = 0.3 if seed == 7 else 0.4 + seed / 100
            for step in range(1, 6):
                run.log_metric("val_loss", 1 - (1 - final) * step / 5, step=step)
        ids.append(run.id[:8])
    r = run_cli("runs", "compare", *ids, "--plot", "val_loss", cwd=project.root)
    assert r.code == 0, r.err
    assert "Same in all 12 runs: model=lightgbm" in r.out
    rows = [line for line in r.out.splitlines() if line.startswith("│ run:")]
    assert len(rows) == 12 and all(line.count("│") == 5 for line in rows)  # run name seed loss
    best = next(line for line in rows if "*" in line)
    assert f"run:{ids[7]}" in best and "0.3 *" in best
    assert "val_loss: 12 runs in grey, the best by its last value in red" in r.out
    assert f"best: run:{ids[7]} (0.3)" in r.out
    few = run_cli("runs", "compare", *ids[:3], cwd=project.root)  # side by side, as before
    assert "Params (differences in yellow)" in few.out and f"run:{ids[2]}" in few.out
    # a curve no run has: refused before any table is printed, saying which they have
    bad = run_cli("runs", "compare", *ids[:3], "--plot", "val_los", cwd=project.root)
    assert bad.code == 2 and bad.out == ""
    assert bad.err.strip() == (
        "error: none of these runs has points for metric 'val_los'; they have: val_loss"
    )
    assert "Params (differences in yellow)" in few.out and f"run:{ids[2]}" in few.out


def test_run_errors_are_one_line(tmp_path: Path) -> None:
    root = tmp_path / "p"
    run_cli("init", str(root))
    churn(50).write_parquet(tmp_path / "c.parquet")
    run_cli("data", "add", str(tmp_path / "c.parquet"), "-n", "churn", cwd=root)
    cases = [
        (["runs", "show", "abcd"], 1, "no run with an id starting with abcd"),
        (["runs", "show", "xyz"], 2, "invalid run reference"),
        (["runs", "list", "-f", "metrics.auc >"], 2, "ends too early"),
        (["runs", "list", "-f", "bogus = 1"], 2, "unknown name 'bogus'"),
        (["train", "churn", "-t", "nope"], 2, "target column 'nope'"),
        (["train", "churn", "-t", "churned", "-p", "oops"], 2, "--param takes KEY=VALUE"),
        (["runs", "compare", "abcd"], 2, "at least two runs"),
    ]
    for args, code, fragment in cases:
        r = run_cli(*args, cwd=root)
        assert r.code == code and r.err.count("\n") == 1 and fragment in r.err, (args, r)


def test_a_metric_s_column_reads_down_with_one_number_of_decimals(tmp_path: Path) -> None:
    from workbench import start_run
    from workbench.core.project import Project

    project = Project.init(tmp_path / "p")[0]
    for value, lr in ((0.816, "0.05"), (0.8135, "0.1"), (31.5, "0.2")):
        with start_run(project=project) as run:
            run.log_metric("score", value)
            run.log_params({"lr": lr})
    shown = run_cli("runs", "list", "-c", "metrics.score,params.lr", cwd=project.root).out
    cells = [[c.strip() for c in line.split("│")[-3:-1]] for line in shown.splitlines()
             if line.startswith("│")]  # fmt: skip
    # "0.8160" above "0.8135" (alone it was "0.816"); a param stays as it was given
    assert sorted(cells) == [["0.8135", "0.1"], ["0.8160", "0.05"], ["31.5000", "0.2"]], shown
