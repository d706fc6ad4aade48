"""The commands ``test_kills.py`` kills, the project they start from, and what each must
leave behind.

Every command that writes is here: data add (a new dataset, a new version), train,
sweep, rerun, drift with its saved report, model register, promote, rollback and
archive, predict, runs tag, delete and restore, pipeline run and import mlflow.

A check takes (counts before, the project after the kill or the rerun, killed?) and
asserts the state is one a whole command leaves: before it, or after it. Where a
command is several changes by design (a pipeline's steps, an import's runs), the check
says which part may stand alone and that running it again completes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from workbench.core.project import Project
from workbench.core.runs.points import read_points

Check = Callable[[dict, Project, bool], None]


@dataclass
class Case:
    args: list[str]  # {r1}..{r6} and {mlflow} are filled in from the template
    check: Check
    # which write points to kill at, from the full list (default: every one)
    pick: Callable[[list[str]], list[int]] | None = None
    # for a command that refuses to run twice (a rollback): has the kill's command landed?
    # then the rerun must refuse in one line and change nothing
    landed: Callable[[dict, Project], bool] | None = None


def counts(p: Project) -> dict:
    with p.catalog.read() as con:
        one = lambda q, *a: con.execute(q, list(a)).fetchall()[0][0]  # noqa: E731
        return {
            "churn": one("SELECT count(*) FROM dataset_versions WHERE dataset = 'churn'"),
            "fresh": one("SELECT count(*) FROM dataset_versions WHERE dataset = 'fresh'"),
            "runs": one("SELECT count(*) FROM runs"),
            "versions": one("SELECT count(*) FROM model_versions"),
            "production": one("SELECT max(version) FROM model_aliases WHERE alias = 'production'"),
            "staging": one("SELECT max(version) FROM model_aliases WHERE alias = 'staging'"),
            "archived": one("SELECT count(*) FROM model_versions WHERE status = 'archived'"),
            "history": one("SELECT count(*) FROM alias_history"),
            "reports": one("SELECT count(*) FROM drift_reports"),
            "scorings": one("SELECT count(*) FROM scorings"),
            "pipeline_runs": one("SELECT count(*) FROM pipeline_runs"),
            "deleted": {
                r[0]
                for r in con.execute("SELECT id FROM runs WHERE deleted_at IS NOT NULL").fetchall()
            },
            "run_ids": {r[0] for r in con.execute("SELECT id FROM runs").fetchall()},
            "tags": {
                (r[0], r[1], r[2])
                for r in con.execute("SELECT run_id, key, value FROM tags").fetchall()
            },
        }


MLFLOW_STORE = r"""
import sys
from mlflow import MlflowClient
uri = sys.argv[1]
c = MlflowClient(tracking_uri=uri, registry_uri=uri)
exp = c.create_experiment("elsewhere")
for name in ("a", "b", "c"):
    r = c.create_run(exp, run_name=name)
    c.log_param(r.info.run_id, "lr", 0.1)
    for s in range(50):
        c.log_metric(r.info.run_id, "loss", 1 / (s + 1), timestamp=1_700_000_000_000 + s, step=s)
    c.set_terminated(r.info.run_id, "FINISHED")
"""

PIPELINE = """
[pipeline.monthly]
dataset = "churn"
join = "replace"
model = "churn-model"
alias = "production"
target = "churned"
recipe = { model = "random_forest", params = { n_estimators = 15 } }
retrain = "always"
min_gain = -1.0
"""


def mlflow_store(store: Path) -> Path:
    """A small MLflow folder store made by the real mlflow (in its own process: mlflow
    keeps global state)."""
    proc = subprocess.run(
        [sys.executable, "-c", MLFLOW_STORE, store.as_uri()],
        env={**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return store


def build_template(base: Path) -> None:
    """churn@1; r1 -> churn-model v1 (production, and staging before v2), r2 -> v2
    (staging), r4 -> v3 (no alias, so it can be archived); r3 finished, not registered;
    r5 and r6 deleted; a gate that computes a drift report, so a promotion writes one; a
    pipeline; a small MLflow store made by the real mlflow. Run ids go to ids.json."""
    from tests.core.test_training import churn
    from workbench.core.runs.training import Recipe, train

    p, _ = Project.init(base / "proj")
    cfg = p.root / "workbench.toml"
    cfg.write_text(
        cfg.read_text().replace("# chunk_rows = 262144", "chunk_rows = 1000")
        + '\n[gates]\nproduction = ["drift_share(churn@1) <= 1.0"]\n'
        + PIPELINE
    )
    p = Project(p.root)
    data = base / "data"
    data.mkdir()
    first = churn(3000, 0)
    first.write_csv(data / "c1.csv")
    p.datasets.add(data / "c1.csv", name="churn")
    # the next month: a third of the rows changed, some added (patches and new chunks)
    second = pl.concat([first.head(2000), churn(1500, 1)])
    second.write_csv(data / "c2.csv")
    churn(2000, 2).write_csv(data / "fresh.csv")
    churn(500, 3).drop("churned").write_csv(data / "score.csv")
    ids = {
        f"r{i}": train(
            p, Recipe(dataset="churn@1", target="churned", params={"n_estimators": 5 * i})
        )
        for i in range(1, 7)
    }
    p.models.register(ids["r1"], "churn-model")
    p.models.register(ids["r2"], "churn-model")
    p.models.register(ids["r4"], "churn-model")
    p.models.promote("churn-model", 1, "production")
    p.models.promote("churn-model", 1, "staging")
    p.models.promote("churn-model", 2, "staging")
    p.runs.mark_deleted([ids["r5"], ids["r6"]], True)
    ids["mlflow"] = str(mlflow_store(base / "mlruns"))
    (base / "ids.json").write_text(json.dumps(ids))


def args_for(case: Case, base: Path) -> list[str]:
    ids = json.loads((base / "ids.json").read_text())
    fill = {k: (v if k == "mlflow" else v[:8]) for k, v in ids.items()}
    return [a.format(**fill) for a in case.args]


def ids_of(p: Project) -> dict[str, str]:
    return json.loads((p.root.parent / "ids.json").read_text())


# ---- checks -----------------------------------------------------------------------------


def _data_add(name: str, source: str) -> Check:
    def check(before: dict, p: Project, killed: bool) -> None:
        now = counts(p)
        assert now[name] in (before[name], before[name] + 1)
        if now[name] > before[name] or not killed:
            assert now[name] == before[name] + 1
            stored = p.datasets.load(p.datasets.resolve(name))
            src = pl.read_csv(p.root.parent / "data" / source)
            assert stored.equals(src)

    return check


def _new_runs_whole(before: dict, p: Project) -> list:
    """Runs the command made: finished, or killed with every point it flushed and
    nothing more."""
    new = [r for r in p.runs.list(limit=None) if r["id"] not in before["run_ids"]]
    for r in new:
        assert r["status"] in ("finished", "killed"), r["status"]
        if r["status"] == "killed":
            points = read_points(p.store_dir / "runs" / r["id"])  # None: killed before it opened
            with p.catalog.read() as con:
                n = con.execute(
                    "SELECT count(*) FROM metrics WHERE run_id = ?", [r["id"]]
                ).fetchall()[0][0]
            assert n == (points.height if points is not None else 0)
    return new


def _train(before: dict, p: Project, killed: bool) -> None:
    new = _new_runs_whole(before, p)
    assert len(new) <= (1 if killed else 2)
    if not killed:
        assert any(r["status"] == "finished" for r in new)


def _sweep(before: dict, p: Project, killed: bool) -> None:
    new = _new_runs_whole(before, p)
    parents = [r for r in new if r["parent_id"] is None]
    assert len(parents) <= (1 if killed else 2)
    done = [r for r in parents if r["status"] == "finished"]
    for parent in done:  # a sweep that ended is whole: both trials and the best named
        children = [r for r in new if r["parent_id"] == parent["id"]]
        assert sorted(c["status"] for c in children) == ["finished", "finished"]
        assert p.runs.get(parent["id"]).tags["best_run"] in {c["id"] for c in children}
    if not killed:
        assert done


def _rerun(before: dict, p: Project, killed: bool) -> None:
    new = _new_runs_whole(before, p)
    assert len(new) <= (1 if killed else 2)
    r3 = ids_of(p)["r3"]
    for r in new:
        if r["status"] == "finished":  # never a finished rerun that does not say of what
            assert p.runs.get(r["id"]).tags.get("rerun_of") == r3
    if not killed:
        assert any(r["status"] == "finished" for r in new)


def _drift(before: dict, p: Project, killed: bool) -> None:
    now = counts(p)
    # comparing again is a new report: a rerun after a landed one stores a second
    assert now["reports"] - before["reports"] in ((0, 1) if killed else (1, 2))


def _register(before: dict, p: Project, killed: bool) -> None:
    now = counts(p)
    # a rerun after a landed register returns the same version: never a twin
    n = before["versions"]
    assert now["versions"] in ((n, n + 1) if killed else (n + 1,))


def _promote(before: dict, p: Project, killed: bool) -> None:
    now = counts(p)
    assert now["production"] in ((1, 2) if killed else (2,))
    moved = now["production"] == 2
    assert now["history"] == before["history"] + moved
    assert now["reports"] == before["reports"] + moved  # the gate's report goes with the move


def _rollback(before: dict, p: Project, killed: bool) -> None:
    now = counts(p)
    assert now["staging"] in ((2, 1) if killed else (1,))
    assert now["history"] == before["history"] + (now["staging"] == 1)


def _rolled_back(before: dict, p: Project) -> bool:
    return counts(p)["staging"] == 1


def _archive(before: dict, p: Project, killed: bool) -> None:
    now = counts(p)
    assert now["archived"] in ((0, 1) if killed else (1,))
    if now["archived"]:
        assert p.models.resolve("churn-model@3").status == "archived"


def _predict(before: dict, p: Project, killed: bool) -> None:
    now = counts(p)
    out = p.root.parent / "scored.csv"
    # scoring again is a new event: a rerun after a landed scoring records a second one
    assert now["scorings"] in ((0, 1) if killed else (1, 2))
    if now["scorings"] or not killed:
        assert out.exists()
    if out.exists():  # an output file is never half-written
        assert pl.read_csv(out).height == 500


def _tag(before: dict, p: Project, killed: bool) -> None:
    r3 = ids_of(p)["r3"]
    added = counts(p)["tags"] - before["tags"]
    whole = {(r3, "a", "1"), (r3, "b", "2")}
    assert added in ((set(), whole) if killed else (whole,))  # both tags or neither


def _deleted(key_a: str, key_b: str, deleting: bool) -> Check:
    def check(before: dict, p: Project, killed: bool) -> None:
        ids = ids_of(p)
        pair = {ids[key_a], ids[key_b]}
        now = counts(p)["deleted"]
        done = pair <= now if deleting else not (pair & now)
        untouched = not (pair & now) if deleting else pair <= now
        assert done or (killed and untouched)  # both runs or neither

    return check


def _pipeline(before: dict, p: Project, killed: bool) -> None:
    """A pipeline run is several changes by design (a version, a report, a run, a model
    version, an alias move), each whole; its own record comes last. Run again after a
    kill, it finishes: the batch is one version, never two, and it has one record."""
    now = counts(p)
    assert now["churn"] in ((1, 2) if killed else (2,))
    assert now["pipeline_runs"] in ((0, 1) if killed else (1,))
    _new_runs_whole(before, p)
    if not killed:
        with p.catalog.read() as con:
            (outcome,) = con.execute("SELECT outcome FROM pipeline_runs").fetchone()
        assert outcome in ("promoted", "kept")


def _import(before: dict, p: Project, killed: bool) -> None:
    """Each MLflow run comes in whole (its params and all 50 points) or not at all, and
    running the import again brings in the rest without twins."""
    new = [r for r in p.runs.list(limit=None) if r["id"] not in before["run_ids"]]
    assert len(new) <= 3 and len({r["name"] for r in new}) == len(new)
    for r in new:
        info = p.runs.get(r["id"])
        assert info.params == {"lr": "0.1"}
        assert len(p.runs.history(r["id"], "loss")) == 50
    if not killed:
        assert sorted(r["name"] for r in new) == ["a", "b", "c"]


def every_kind_once(points: list[str]) -> list[int]:
    """Training writes its artifacts the same way and each kill costs a training rerun:
    kill at the first point of each kind, and at the last COMMIT (the run's end)."""
    chosen: dict[str, int] = {}
    for i, name in enumerate(points):
        chosen.setdefault(name, i)
    last = max(i for i, n in enumerate(points) if n == "catalog transaction before COMMIT")
    return sorted({*chosen.values(), last, last + 1})


def every_commit(points: list[str]) -> list[int]:
    """For commands made of several changes (a sweep, a pipeline, an import): the first
    and the last point, and just after every change lands (a COMMIT, a run's start or
    end record renamed into the journal), so a kill falls between each pair of changes.
    What happens inside one change the single-change commands prove, point by point."""
    landed = {
        i
        for i, name in enumerate(points)
        if name == "catalog transaction committed"
        or (name.startswith("after rename") and name.endswith((".start", ".end")))
    }
    return sorted({0, len(points) - 1, *landed})


CASES = {
    "data add (new dataset)": Case(
        ["data", "add", "../data/fresh.csv", "-n", "fresh"], _data_add("fresh", "fresh.csv")
    ),
    "data add (new version)": Case(
        ["data", "add", "../data/c2.csv", "-n", "churn"], _data_add("churn", "c2.csv")
    ),
    "train": Case(
        ["train", "churn@1", "--target", "churned", "-p", "n_estimators=7"],
        _train,
        every_kind_once,
    ),
    "sweep": Case(
        ["sweep", "churn@1", "-t", "churned", "-m", "random_forest", "-g", "n_estimators=4,6"],
        _sweep,
        every_commit,
    ),
    # train's own writes, from a recipe: killed where each change lands (train is killed
    # at each kind of point)
    "rerun": Case(["rerun", "{r3}"], _rerun, every_commit),
    "drift (saved report)": Case(["drift", "churn@1", "../data/fresh.csv"], _drift),
    "model register": Case(["model", "register", "run:{r3}", "-n", "churn-model"], _register),
    "model promote": Case(["model", "promote", "churn-model", "2", "--to", "production"], _promote),
    "model rollback": Case(
        ["model", "rollback", "churn-model", "-a", "staging", "-r", "bad week"],
        _rollback,
        landed=_rolled_back,
    ),
    "model archive": Case(["model", "archive", "churn-model", "3", "-r", "superseded"], _archive),
    "predict": Case(
        ["predict", "churn-model@production", "../data/score.csv", "-o", "../scored.csv"],
        _predict,
    ),
    "runs tag": Case(["runs", "tag", "{r3}", "a=1", "b=2"], _tag),
    "runs delete": Case(["runs", "delete", "{r3}", "{r4}"], _deleted("r3", "r4", True)),
    "runs restore": Case(["runs", "restore", "{r5}", "{r6}"], _deleted("r5", "r6", False)),
    "pipeline run": Case(
        ["pipeline", "run", "monthly", "--batch", "../data/c2.csv"], _pipeline, every_commit
    ),
    "import mlflow": Case(["import", "mlflow", "{mlflow}"], _import, every_commit),
}
