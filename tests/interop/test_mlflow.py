"""MLflow stores built by the real mlflow package come in intact, and ours go out readable.

The stores are built in a subprocess (mlflow keeps global state) with MlflowClient:
two experiments (one named with a space and a slash), a finished run with 300 metric
points, a failed and a deleted run, nested and odd param keys, a NaN, artifacts including
a pickled scikit-learn model, and a registered model with two versions and two aliases.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli, store_snapshot
from workbench.core.project import Project

pytest.importorskip("mlflow")
pytestmark = pytest.mark.slow

BUILD = r"""
import json, pickle, sys, time
from pathlib import Path
import numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

uri, work = sys.argv[1], Path(sys.argv[2])
c = MlflowClient(tracking_uri=uri, registry_uri=uri)
e1 = c.create_experiment("churn")
e2 = c.create_experiment("my exp/sub")
out = {"runs": {}}

def run(exp, name, status="FINISHED", n=300):
    r = c.create_run(exp, run_name=name)
    rid = r.info.run_id
    c.log_param(rid, "lr", 0.05)
    c.log_param(rid, "model/depth", 6)
    c.log_param(rid, "note with space", "a b")
    c.set_tag(rid, "team", "risk")
    t0 = 1_700_000_000_000
    for s in range(n):
        c.log_metric(rid, "loss", 1.0 / (s + 1), timestamp=t0 + 10 * s, step=s)
    c.log_metric(rid, "auc", 0.81, timestamp=t0 + 5000, step=0)
    c.log_metric(rid, "odd", float("nan"), timestamp=t0 + 6000, step=1)
    c.set_terminated(rid, status)
    out["runs"][name] = rid
    return rid

good = run(e1, "good")
bad = run(e1, "bad", status="FAILED", n=3)
gone = run(e2, "gone", n=2)
c.delete_run(gone)

model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
(work / "model").mkdir()
(work / "model" / "model.pkl").write_bytes(pickle.dumps(model))
(work / "notes.txt").write_text("hello")
c.log_artifacts(good, str(work / "model"), "model")
c.log_artifact(good, str(work / "notes.txt"))
c.create_registered_model("churn model", description="who leaves")
v1 = c.create_model_version("churn model", f"runs:/{bad}/model", run_id=bad)
v2 = c.create_model_version("churn model", f"runs:/{good}/model", run_id=good)
c.set_registered_model_alias("churn model", "production", v2.version)
c.set_registered_model_alias("churn model", "staging", v1.version)
print(json.dumps(out))
"""


def build(tmp_path: Path, kind: str) -> tuple[str, dict]:
    work = tmp_path / f"build-{kind}"
    work.mkdir()
    if kind == "file":
        uri = (tmp_path / "mlruns").as_uri()
        spec = str(tmp_path / "mlruns")
    else:
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        spec = uri
    env = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true", "MLFLOW_TRACKING_URI": uri}
    proc = subprocess.run(
        [sys.executable, "-c", BUILD, uri, str(work)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return spec, json.loads(proc.stdout.strip().splitlines()[-1])


def mlflow_view(uri: str, run_ids: list[str]) -> dict:
    """What MLflow itself reads back: params, tags, every metric point, per run."""
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=uri, registry_uri=uri)
    view = {}
    for rid in run_ids:
        r = c.get_run(rid)
        points = {
            k: sorted((m.step, m.timestamp, m.value) for m in c.get_metric_history(rid, k))
            for k in r.data.metrics
        }
        view[rid] = {"params": dict(r.data.params), "points": points, "status": r.info.status}
    return view


def ours(project: Project, mlflow_id: str) -> dict:
    with project.catalog.read() as con:
        (run_id,) = con.execute(
            "SELECT run_id FROM tags WHERE key = 'mlflow.run_id' AND value = ?", [mlflow_id]
        ).fetchone()
        params = dict(
            con.execute("SELECT key, value FROM params WHERE run_id = ?", [run_id]).fetchall()
        )
        points: dict[str, list] = {}
        for key, step, ms, value in con.execute(
            "SELECT key, step, epoch_ms(ts), value FROM metrics WHERE run_id = ? ORDER BY key, step, ts",
            [run_id],
        ).fetchall():
            points.setdefault(key, []).append((step, ms, value))
    return {"id": run_id, "params": params, "points": {k: sorted(v) for k, v in points.items()}}


def same_points(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        for (s1, t1, v1), (s2, t2, v2) in zip(a[k], b[k], strict=True):
            if (s1, t1) != (s2, t2) or not (v1 == v2 or (math.isnan(v1) and math.isnan(v2))):
                return False
    return True


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_import_brings_every_param_point_and_alias_and_is_idempotent(
    tmp_path: Path, project: Project, kind: str
) -> None:
    spec, built = build(tmp_path, kind)
    runs = built["runs"]
    res = run_cli("import", "mlflow", spec, "--json", cwd=project.root)
    assert res.code == 0, res.err
    summary = json.loads(res.out)
    assert summary["runs"] == 3 and summary["points"] == (300 + 2) + (3 + 2) + (2 + 2)
    assert sorted(summary["experiments"]) == ["churn", "my-exp-sub"]
    assert summary["versions"] == 2 and summary["aliases"] == 2

    uri = spec if kind == "sqlite" else Path(spec).as_uri()
    theirs = mlflow_view(uri, list(runs.values()))
    for name, rid in runs.items():
        mine = ours(project, rid)
        assert mine["params"] == theirs[rid]["params"], name
        assert same_points(mine["points"], theirs[rid]["points"]), name
    info = {r["name"]: r for r in project.runs.list(limit=None, include_deleted=True)}
    assert info["bad"]["status"] == "failed" and info["good"]["status"] == "finished"
    assert info["gone"]["deleted"]
    good = project.runs.get(info["good"]["id"])
    assert good["tags"]["team"] == "risk" and good["tags"]["mlflow.run_id"] == runs["good"]
    assert {a["path"] for a in good["artifacts"]} == {"model/model.pkl", "notes.txt"}

    model = "churn-model"  # MLflow's "churn model", made a safe name
    assert project.models.resolve(f"{model}@production").run_id == info["good"]["id"]
    assert project.models.resolve(f"{model}@staging").run_id == info["bad"]["id"]
    scored = run_cli(
        "predict",
        f"{model}@production",
        str(_batch(tmp_path)),
        "-o",
        str(tmp_path / "s.csv"),
        cwd=project.root,
    )
    assert scored.code == 0, scored.err
    import polars as pl

    scored_rows = pl.read_csv(tmp_path / "s.csv")
    assert scored_rows["prediction"].to_list() == [0, 1]  # the pickled model really scores
    refused = run_cli(
        "predict",
        f"{model}@staging",
        str(_batch(tmp_path)),
        "-o",
        str(tmp_path / "t.csv"),
        cwd=project.root,
    )
    assert refused.code == 1 and "without a pickled model" in refused.err
    assert run_cli("verify", cwd=project.root).code == 0

    before = store_snapshot(project)
    again = run_cli("import", "mlflow", spec, "--json", cwd=project.root)
    assert again.code == 0
    assert json.loads(again.out)["runs_skipped"] == 3
    assert store_snapshot(project) == before


def _batch(tmp_path: Path) -> Path:
    import polars as pl

    path = tmp_path / "batch.csv"
    pl.DataFrame({"x": [0.0, 3.0]}).write_csv(path)
    return path


def test_export_writes_a_store_mlflow_reads_and_a_round_trip_keeps_everything(
    tmp_path: Path, project: Project
) -> None:
    spec, _ = build(tmp_path, "sqlite")
    assert run_cli("import", "mlflow", spec, cwd=project.root).code == 0
    out = tmp_path / "exported"
    res = run_cli("export", "mlflow", str(out), cwd=project.root)
    assert res.code == 0, res.err

    ids = {r["name"]: r["id"] for r in project.runs.list(limit=None, include_deleted=True)}
    theirs = mlflow_view(out.as_uri(), list(ids.values()))
    for _name, run_id in ids.items():
        with project.catalog.read() as con:
            mlflow_id = con.execute(
                "SELECT value FROM tags WHERE run_id = ? AND key = 'mlflow.run_id'", [run_id]
            ).fetchone()[0]
        mine = ours(project, mlflow_id)
        assert theirs[run_id]["params"] == mine["params"]
        assert same_points(theirs[run_id]["points"], mine["points"])

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=out.as_uri(), registry_uri=out.as_uri())
    rm = client.get_registered_model("churn-model")
    assert rm.aliases == {"production": "2", "staging": "1"}

    # and back in: a fresh project gets the same runs and points again
    fresh, _ = Project.init(tmp_path / "fresh")
    assert run_cli("import", "mlflow", str(out), cwd=fresh.root).code == 0
    assert len(fresh.runs.list(limit=None, include_deleted=True)) == 3
    with fresh.catalog.read() as con, project.catalog.read() as con2:
        assert (
            con.execute("SELECT count(*) FROM metrics").fetchone()
            == con2.execute("SELECT count(*) FROM metrics").fetchone()
        )


def test_import_refuses_what_is_not_an_mlflow_store(tmp_path: Path, project: Project) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.db").write_bytes(b"not a database at all")
    before = store_snapshot(project)
    for spec in (
        str(tmp_path / "empty"),
        str(tmp_path / "junk.db"),
        "sqlite:///nope.db",
        str(tmp_path / "missing"),
    ):
        res = run_cli("import", "mlflow", spec, cwd=project.root)
        assert res.code in (1, 2) and res.err.startswith("error: ") and res.err.count("\n") == 1, (
            spec
        )
    assert store_snapshot(project) == before


def test_runs_trained_here_are_read_back_by_mlflow(tmp_path: Path, project: Project) -> None:
    """Not only imported runs: runs workbench trained (a single run and a sweep's parent
    and children, with curves, tags, artifacts and a registered, aliased model) come out
    as MLflow reads them: the same params, every point, the tags, the artifact bytes
    (model.pkl as a plain pickle MLflow users load), the parent link, the registry."""
    import pickle

    import polars as pl

    from tests.core.test_training import churn

    churn(400, 0).write_parquet(tmp_path / "c.parquet")
    root = project.root
    assert run_cli("data", "add", str(tmp_path / "c.parquet"), "-n", "churn", cwd=root).code == 0
    one = run_cli("train", "churn@1", "-t", "churned", "-p", "n_estimators=12", "--json", cwd=root)
    assert one.code == 0, one.err
    run_id = json.loads(one.out)["id"]
    assert run_cli("runs", "tag", run_id, "stage=review", "note=ünï", cwd=root).code == 0
    sweep = run_cli(
        "sweep", "churn@1", "-t", "churned", "-m", "random_forest", "-g", "n_estimators=3,5",
        "--json", cwd=root,
    )  # fmt: skip
    assert sweep.code == 0, sweep.err
    parent = json.loads(sweep.out)["parent_id"]
    assert run_cli("model", "register", run_id, "-n", "churn-model", cwd=root).code == 0
    assert run_cli("model", "promote", "churn-model", "1", "--to", "staging", cwd=root).code == 0
    out = tmp_path / "exported"
    res = run_cli("export", "mlflow", str(out), cwd=root)
    assert res.code == 0, res.err

    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=out.as_uri(), registry_uri=out.as_uri())
    runs = project.runs.list(limit=None)
    assert len(runs) == 4  # the run, the sweep's parent and its two trials
    theirs = mlflow_view(out.as_uri(), [r["id"] for r in runs])
    for r in runs:
        info = project.runs.get(r["id"])
        assert theirs[r["id"]]["params"] == info.params
        assert theirs[r["id"]]["status"] == "FINISHED"
        mine: dict[str, list] = {}
        with project.catalog.read() as con:
            for key, step, ms, value in con.execute(
                "SELECT key, step, epoch_ms(ts), value FROM metrics WHERE run_id = ?", [r["id"]]
            ).fetchall():
                mine.setdefault(key, []).append((step, ms, value))
        assert same_points(theirs[r["id"]]["points"], {k: sorted(v) for k, v in mine.items()})
        got = client.get_run(r["id"])
        for key, value in info.tags.items():
            assert got.data.tags[key] == value
        if r["parent_id"]:
            assert got.data.tags["mlflow.parentRunId"] == parent
    assert any(k.endswith("_curve") for k in theirs[run_id]["points"])  # curves came too

    # the artifacts, byte for byte; the model a pickle that predicts as ours does
    listed = {a.path for a in client.list_artifacts(run_id)}
    info = project.runs.get(run_id)
    assert listed >= {a.path for a in info.artifacts}
    fetched = Path(client.download_artifacts(run_id, "feature_importance.json", str(tmp_path)))
    art = next(a for a in info.artifacts if a.path == "feature_importance.json")
    assert fetched.read_bytes() == project.objects.read_bytes(art.hash)
    model = pickle.loads(
        Path(client.download_artifacts(run_id, "model.pkl", str(tmp_path))).read_bytes()
    )
    batch = churn(50, 9).drop("churned")
    batch.write_csv(tmp_path / "batch.csv")
    scored = run_cli(
        "predict", "churn-model@staging", str(tmp_path / "batch.csv"), "-o",
        str(tmp_path / "scored.csv"), cwd=root,
    )  # fmt: skip
    assert scored.code == 0, scored.err
    ours_pred = pl.read_csv(tmp_path / "scored.csv")["prediction"].to_list()
    assert model.predict(batch)["prediction"].to_list() == ours_pred

    # the registry: the version points at the run, the alias at the version
    rm = client.get_registered_model("churn-model")
    assert rm.aliases == {"staging": "1"}
    assert client.get_model_version("churn-model", "1").run_id == run_id

    # and into a fresh project: the trials are nested under their sweep again
    fresh, _ = Project.init(tmp_path / "fresh")
    assert run_cli("import", "mlflow", str(out), cwd=fresh.root).code == 0
    back = {r["name"] or "": r for r in fresh.runs.list(limit=None)}
    assert [back[n]["parent_id"] for n in ("sweep-1", "sweep-2")] == [back["sweep"]["id"]] * 2
