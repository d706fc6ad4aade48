"""The ``python_function`` loader of a model exported in MLflow's format.

Copied into the exported model's ``code/`` folder as ``workbench_pyfunc.py`` (with the
feature transform as ``workbench_features.py``), where MLflow finds it through the
MLmodel file's ``loader_module``. It imports nothing of workbench, so any MLflow-based
server (``mlflow models serve``, MLServer, KServe, SageMaker) loads the model as is.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

try:  # in an exported model, beside this file
    import workbench_features as features
except ImportError:  # inside workbench (tests read it from here)
    from workbench.core.runs import feature_matrix as features

SPEC = "workbench_model.json"
ESTIMATOR = "model.pkl"


class WorkbenchPyfunc:
    """Scores a pandas frame of raw columns as ``workbench predict`` does."""

    def __init__(self, path: str) -> None:
        root = Path(path)
        self.spec = json.loads((root / SPEC).read_text(encoding="utf-8"))
        with (root / ESTIMATOR).open("rb") as fh:
            self.estimator = pickle.load(fh)

    def predict(self, model_input: Any, params: Any = None) -> Any:
        import polars as pl

        df = model_input if isinstance(model_input, pl.DataFrame) else pl.from_pandas(model_input)
        spec = self.spec
        x = features.to_matrix(df, spec["schema"], spec["categories"])
        out = features.outputs(self.estimator, x, spec["task"], spec["classes"])
        return out.to_pandas()


def _load_pyfunc(path: str) -> WorkbenchPyfunc:
    return WorkbenchPyfunc(path)
