"""Stored model files outlive the code layout: a model pickled before the model classes
moved (they lived in ``workbench.core.training``) still loads and scores the same."""

from __future__ import annotations

import pickle
import sys
import types

import pytest

from tests.core.test_training import churn
from workbench.core.project import Project
from workbench.core.runs import model as model_module
from workbench.core.runs.model import Features, Model, load_model


def _pickled_at(old_module: str, obj: object) -> bytes:
    """Pickle ``obj`` as the code of an older release would have: its classes named
    under ``old_module``."""
    shim = types.ModuleType(old_module)
    shim.Model, shim.Features = Model, Features  # type: ignore[attr-defined]
    sys.modules[old_module] = shim
    try:
        Model.__module__ = Features.__module__ = old_module
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        Model.__module__ = Features.__module__ = model_module.__name__
        del sys.modules[old_module]


def test_a_model_pickled_under_the_old_module_path_loads_and_scores(models: Project) -> None:
    mv = models.models.resolve("churn-model@2")
    current = models.models.load(mv)
    legacy = _pickled_at("workbench.core.training", current)
    assert b"workbench.core.training" in legacy
    assert "workbench.core.training" not in sys.modules
    with pytest.raises(ModuleNotFoundError):  # what a plain unpickler now meets
        pickle.loads(legacy)
    old = load_model(legacy)
    assert isinstance(old, Model) and isinstance(old.features, Features)
    batch = churn(200, seed=3)
    assert old.predict(batch).equals(current.predict(batch))
