"""A registered version leaves in MLflow's model format: MLflow (and so every platform
that loads MLflow models) scores with it exactly what `workbench predict` writes, with
workbench not even importable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import run_cli
from workbench.core.project import Project

# Runs in a fresh interpreter where `import workbench` fails: what a serving platform has.
SCORE = """
import sys
sys.modules["workbench"] = None
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
out = model.predict(pd.read_parquet(sys.argv[2]))
out.to_parquet(sys.argv[3])
flavour = sys.argv[4]
native = __import__("mlflow." + flavour, fromlist=["load_model"]).load_model(sys.argv[1])
print(type(native).__module__.split(".")[0])
"""


def _mlflow_scores(model_dir: Path, batch: Path, out: Path, flavour: str) -> str:
    env = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"}
    res = subprocess.run(
        [sys.executable, "-c", SCORE, str(model_dir), str(batch), str(out), flavour],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("ref", "flavour", "library"),
    [
        ("churn-model@production", "lightgbm", "lightgbm"),
        pytest.param("churn-model@1", "sklearn", "sklearn", marks=pytest.mark.slow),
    ],
)
@pytest.mark.slow
def test_an_exported_model_scores_in_mlflow_exactly_as_predict_does(
    tmp_path: Path, registered: Project, ref: str, flavour: str, library: str
) -> None:
    root = registered.root
    out = tmp_path / "exported"
    res = run_cli("model", "export", ref, str(out), "--format", "mlflow", cwd=root)
    assert res.code == 0, res.err
    batch = tmp_path / "batch.parquet"
    ours = tmp_path / "ours.parquet"
    assert run_cli("predict", ref, str(batch), "-o", str(ours), cwd=root).code == 0
    theirs = tmp_path / "theirs.parquet"
    assert _mlflow_scores(out, batch, theirs, flavour) == library  # native flavour loads too
    mine = pl.read_parquet(ours)
    got = pl.read_parquet(theirs)
    assert got.columns == [c for c in mine.columns if c == "prediction" or "proba_" in c]
    assert got.to_dicts() == mine.select(got.columns).to_dicts()  # exactly, not nearly

    # what MLflow reads of it: the signature is the model's inputs, the example loads
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    from mlflow.models import Model

    meta = Model.load(str(out))
    mv = registered.models.resolve(ref)
    assert meta.signature.inputs.input_names() == mv.inputs
    assert meta.metadata["workbench_model"] == mv.ref
    example = meta.load_input_example(str(out))
    assert list(example.columns) == mv.inputs and len(example) == 5
    pins = (out / "requirements.txt").read_text()
    assert "polars==" in pins and "scikit-learn==" in pins
    assert ("lightgbm==" in pins) == (flavour == "lightgbm")


@pytest.mark.slow
def test_export_refuses_an_existing_folder_or_an_unknown_model_in_one_line(
    tmp_path: Path, registered: Project
) -> None:
    root = registered.root
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    res = run_cli("model", "export", "churn-model@production", str(taken), cwd=root)
    assert res.code != 0 and "already exists" in res.err and len(res.err.strip().splitlines()) == 1
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]
    res = run_cli("model", "export", "churn-model@canary", str(tmp_path / "x"), cwd=root)
    assert res.code != 0 and not (tmp_path / "x").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


@pytest.mark.slow
def test_the_store_export_gives_each_registered_version_as_an_mlflow_model(
    tmp_path: Path, registered: Project
) -> None:
    """`workbench export mlflow`: models:/churn-model/2 loads from the exported store and
    scores as `predict` does."""
    root = registered.root
    out = tmp_path / "store"
    res = run_cli("export", "mlflow", str(out), cwd=root)
    assert res.code == 0 and "(2 in MLflow's model format)" in res.out, res.err
    code = (
        "import sys, mlflow.pyfunc, pandas as pd\n"
        "sys.modules['workbench'] = None\n"
        "mlflow.set_registry_uri(sys.argv[1]); mlflow.set_tracking_uri(sys.argv[1])\n"
        "m = mlflow.pyfunc.load_model('models:/churn-model/2')\n"
        "m.predict(pd.read_parquet(sys.argv[2])).to_parquet(sys.argv[3])\n"
    )
    theirs = tmp_path / "theirs.parquet"
    env = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"}
    done = subprocess.run(
        [sys.executable, "-c", code, out.as_uri(), str(tmp_path / "batch.parquet"), str(theirs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    ours = tmp_path / "ours.parquet"
    batch = str(tmp_path / "batch.parquet")
    assert run_cli("predict", "churn-model@2", batch, "-o", str(ours), cwd=root).code == 0
    got = pl.read_parquet(theirs)
    assert got.to_dicts() == pl.read_parquet(ours).select(got.columns).to_dicts()


@pytest.mark.slow
def test_mlflow_models_serve_answers_with_the_exported_model(
    tmp_path: Path, registered: Project
) -> None:
    """`mlflow models serve` (started here on 127.0.0.1, stopped after) loads the export
    unchanged and answers its serving example as `workbench predict` scores those rows."""
    import socket
    import time
    import urllib.request

    root = registered.root
    out = tmp_path / "exported"
    assert run_cli("model", "export", "churn-model@production", str(out), cwd=root).code == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mlflow = Path(sys.executable).with_name("mlflow")
    env = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"}
    server = subprocess.Popen(
        [str(mlflow), "models", "serve", "-m", str(out), "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as ping:
                    if ping.status == 200:
                        break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "mlflow models serve never came up"
                time.sleep(0.5)
        body = (out / "serving_input_example.json").read_bytes()
        request = urllib.request.Request(
            f"{base}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            served = json.loads(answer.read())["predictions"]
    finally:
        os.killpg(server.pid, 15)
        server.wait(30)
    mv = registered.models.resolve("churn-model@production")
    typed = registered.datasets.head(mv.dataset_ref, 5)  # the rows the example was made of
    assert json.loads(body)["dataframe_split"]["columns"] == mv.inputs
    typed.write_parquet(tmp_path / "rows.parquet")
    ours = tmp_path / "ours.parquet"
    res = run_cli("predict", "churn-model@production", str(tmp_path / "rows.parquet"),
                  "-o", str(ours), cwd=root)  # fmt: skip
    assert res.code == 0, res.err
    mine = pl.read_parquet(ours).select(list(served[0])).to_dicts()
    assert served == mine
