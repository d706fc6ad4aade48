"""A registered model version written in MLflow's model format, for the serving platforms
that load it (``mlflow models serve``, MLServer, KServe, Seldon, SageMaker).

The folder holds an ``MLmodel`` file with two flavours: ``python_function`` (raw columns
in, ``workbench predict``'s columns out, through the bundled ``code/``) and the native
``sklearn`` or ``lightgbm`` flavour (the fitted estimator, on the numeric matrix, as
those flavours define it); the signature, an input example and pinned requirements.
Written without MLflow installed: the files are plain YAML, JSON and pickle.
"""

from __future__ import annotations

import json
import pickle
import shutil
import sys
import uuid
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import UsageError

if TYPE_CHECKING:
    from workbench.core.models.registry import Registry
    from workbench.core.models.versions import ModelVersion

# polars dtype (as the model's schema writes it) -> MLflow column type. Whole numbers are
# declared long and decimals double: MLflow only widens, and a CSV read by pandas gives
# int64 and float64 whatever the training data held.
_MLFLOW_TYPE = {
    "Boolean": "boolean",
    "String": "string",
    "Categorical": "string",
    "Enum": "string",
    "Float32": "double",
    "Float64": "double",
    "Date": "datetime",
}


def _column_type(dtype: str) -> str:
    if dtype.startswith(("Int", "UInt")):
        return "long"
    if dtype.startswith("Datetime"):
        return "datetime"
    return _MLFLOW_TYPE.get(dtype, "string")


def _yaml(value: Any, indent: int = 0) -> str:
    """A small YAML writer for the MLmodel file: mappings in block style, scalars as JSON
    (valid YAML), so that no YAML library is needed to write it."""
    pad = "  " * indent
    lines = []
    for key, item in value.items():
        if isinstance(item, dict):
            lines.append(f"{pad}{key}:")
            lines.append(_yaml(item, indent + 1))
        else:
            lines.append(f"{pad}{key}: {json.dumps(item)}")
    return "\n".join(lines)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def trained_here(model: Any) -> bool:
    """Whether a loaded model is workbench's (an estimator with its feature pipeline),
    rather than a bare estimator an MLflow import registered."""
    return hasattr(model, "features") and hasattr(model, "estimator")


def export_model(registry: Registry, ref: str, dest: Path, example: Any = None) -> Path:
    """Write ``ref`` (NAME@VERSION or NAME@ALIAS) as an MLflow model in ``dest`` (which
    must not exist: a half-written model is removed). ``example``: a few rows of its
    training data (a polars frame) for ``input_example.json``."""
    mv = registry.resolve(ref)
    model = registry.load(mv)
    if not trained_here(model):
        raise UsageError(
            f"{mv.ref} holds a model imported from another tool, not one trained here: "
            "it has no feature pipeline to export"
        )
    if dest.exists():
        raise UsageError(f"{dest} already exists; give a new folder for the exported model")
    staging = dest.with_name(f".{dest.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        staging.mkdir(parents=True)
        write_model(staging, mv, model, example)
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


def write_model(root: Path, mv: ModelVersion, model: Any, example: Any = None) -> None:
    """The MLflow model files of ``mv`` (its loaded ``model``) into the folder ``root``."""
    from workbench.core.interop import mlflow_pyfunc
    from workbench.core.runs import feature_matrix

    est = model.estimator
    with (root / mlflow_pyfunc.ESTIMATOR).open("wb") as fh:
        pickle.dump(est, fh, protocol=pickle.DEFAULT_PROTOCOL)
    spec = {
        "model": mv.model,
        "version": mv.version,
        "task": model.task,
        "target": model.target,
        "classes": model.classes,
        "schema": model.features.schema,
        "categories": model.features.categories,
    }
    (root / mlflow_pyfunc.SPEC).write_text(json.dumps(spec, indent=2, default=str))
    code = root / "code"
    code.mkdir()
    shutil.copyfile(mlflow_pyfunc.__file__, code / "workbench_pyfunc.py")
    shutil.copyfile(feature_matrix.__file__, code / "workbench_features.py")

    lightgbm = type(est).__module__.startswith("lightgbm")
    libs = ["polars", "pyarrow", "numpy", "pandas", "scikit-learn"]
    libs += ["lightgbm"] if lightgbm else []
    pins = [f"{d}=={v}" for d in libs if (v := _version(d))]
    (root / "requirements.txt").write_text("\n".join(pins) + "\n")
    py = ".".join(map(str, sys.version_info[:3]))
    (root / "python_env.yaml").write_text(
        f"python: {py}\nbuild_dependencies:\n  - pip\ndependencies:\n  - -r requirements.txt\n"
    )
    conda = "\n".join(f"    - {p}" for p in pins)
    (root / "conda.yaml").write_text(
        f"channels:\n  - conda-forge\ndependencies:\n  - python={py}\n  - pip\n  - pip:\n{conda}\n"
        "name: mlflow-env\n"
    )

    inputs = [
        {"type": _column_type(t), "name": c, "required": True}
        for c, t in model.features.schema.items()
    ]
    if model.task == "regression":
        outs = [{"type": "double", "name": "prediction", "required": True}]
    else:
        classes = model.classes or []
        kind = (
            "boolean"
            if all(isinstance(c, bool) for c in classes)
            else "long"
            if all(isinstance(c, int) for c in classes)
            else "string"
        )
        outs = [{"type": kind, "name": "prediction", "required": True}]
        outs += [
            {"type": "double", "name": f"proba_{c}", "required": True} for c in model.classes or []
        ]
    native = (
        {
            "lightgbm": {
                "lgb_version": _version("lightgbm"),
                "data": mlflow_pyfunc.ESTIMATOR,
                "model_class": f"{type(est).__module__}.{type(est).__name__}",
                "code": None,
                "serialization_format": "pickle",
            }
        }
        if lightgbm
        else {
            "sklearn": {
                "pickled_model": mlflow_pyfunc.ESTIMATOR,
                "sklearn_version": _version("scikit-learn"),
                "serialization_format": "pickle",
                "code": None,
            }
        }
    )
    mlmodel: dict[str, Any] = {
        "artifact_path": "model",
        "flavors": {
            "python_function": {
                "loader_module": "workbench_pyfunc",
                "code": "code",
                "data": ".",
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "python_version": py,
            },
            **native,
        },
        "model_uuid": uuid.uuid4().hex,
        "utc_time_created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
        "signature": {"inputs": json.dumps(inputs), "outputs": json.dumps(outs)},
        "metadata": {
            "workbench_model": mv.ref,
            "run_id": mv.run_id,
            "training_dataset": mv.dataset_ref,
        },
    }
    if example is not None and example.height:
        rows = example.select(list(model.features.schema)).head(5)
        split = {"columns": rows.columns, "data": [list(r) for r in rows.iter_rows()]}
        (root / "input_example.json").write_text(json.dumps(split, default=str))
        # the same rows as a scoring server's request body (POST /invocations)
        (root / "serving_input_example.json").write_text(
            json.dumps({"dataframe_split": split}, default=str, indent=2)
        )
        mlmodel["saved_input_example_info"] = {
            "artifact_path": "input_example.json",
            "type": "dataframe",
            "pandas_orient": "split",
        }
    (root / "MLmodel").write_text(_yaml(mlmodel) + "\n")
