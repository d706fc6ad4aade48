"""What to train: a ``Recipe`` (dataset, target, model family, params, split, seed) and
how one is built from the command line, the Python API and ``[train]`` in workbench.toml.

A recipe is plain data so that a run can be trained again from what it logged
(``workbench rerun``) and a sweep can hand one to another process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.core.errors import UsageError

if TYPE_CHECKING:
    from workbench.core.project import Project

MODELS = ("lightgbm", "random_forest", "extra_trees", "hist_gb", "logistic", "linear", "ridge")
TASKS = ("binary", "multiclass", "regression")

_PARAM_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


@dataclass
class Recipe:
    """Everything needed to train (and re-train) a run."""

    dataset: str
    target: str
    model: str = "lightgbm"
    params: dict[str, Any] = field(default_factory=dict)
    split: str = "random:0.2"
    seed: int = 42
    task: str | None = None
    features: list[str] | None = None
    experiment: str = "default"
    name: str | None = None

    def check(self) -> None:
        if self.model not in MODELS:
            raise UsageError(f"unknown model {self.model!r}: choose one of {', '.join(MODELS)}")
        if self.task is not None and self.task not in TASKS:
            raise UsageError(f"unknown task {self.task!r}: choose one of {', '.join(TASKS)}")
        parse_split(self.split)
        for key in self.params:
            if not (isinstance(key, str) and _PARAM_KEY.fullmatch(key)):
                raise UsageError(
                    f"invalid parameter name {str(key)[:60]!r}: use letters, digits and '_' "
                    "(e.g. n_estimators)"
                )
        from workbench.core.runs.families import check_params

        check_params(self.model, self.params)


def recipe_for(
    project: Project,
    dataset: str,
    target: str,
    model: str | None = None,
    params: dict[str, Any] | None = None,
    split: str | None = None,
    seed: int | None = None,
    task: str | None = None,
    features: list[str] | None = None,
    experiment: str | None = None,
    name: str | None = None,
) -> Recipe:
    """A recipe where anything not given comes from ``[train]`` in workbench.toml.

    ``[train.params]`` apply only when training the ``[train]`` model family.

    The CLI and the Python API both build recipes here, so a script and a command line
    with the same arguments train the same model.
    """
    from workbench.core.store.refs import parse_ref

    defaults = project.settings.train
    # [train.params] belong to the default model: n_estimators means nothing to `logistic`.
    base = defaults.params if model in (None, defaults.model) else {}
    return Recipe(
        dataset=dataset,
        target=target,
        model=model or defaults.model,
        params={**base, **(params or {})},
        split=split or defaults.split,
        seed=seed if seed is not None else int(defaults.seed),
        task=task,
        features=features,
        experiment=experiment or parse_ref(dataset).name,
        name=name,
    )


def parse_split(text: str) -> tuple[str, Any]:
    kind, _, arg = text.partition(":")
    if kind == "random":
        try:
            frac = float(arg or "0.2")
        except ValueError:
            frac = -1.0
        if not 0.0 < frac < 1.0:
            raise UsageError(
                f"invalid split {text!r}: random:FRACTION with 0 < FRACTION < 1, e.g. random:0.2"
            )
        return "random", frac
    if kind == "time":
        col, _, frac_text = arg.partition(":")
        if not col:
            raise UsageError(f"invalid split {text!r}: time:COLUMN[:FRACTION], e.g. time:date:0.2")
        try:
            frac = float(frac_text or "0.2")
        except ValueError:
            frac = -1.0
        if not 0.0 < frac < 1.0:
            raise UsageError(f"invalid split {text!r}: the fraction must be between 0 and 1")
        return "time", (col, frac)
    raise UsageError(f"invalid split {text!r}: use random:0.2 or time:COLUMN[:0.2]")


def parse_value(text: str) -> Any:
    """Parse ``--param k=v`` values: numbers, true/false/none, else the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
