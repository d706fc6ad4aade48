"""What an empty screen says: the next step, with the command that takes it, named with
the project's own datasets and pipelines where it has some."""

from __future__ import annotations

from typing import Any


def example_ref(datasets: list[Any]) -> str:
    """A real version to show in examples (the newest of the first dataset), else NAME@1."""
    return str(datasets[0]["latest"]) if datasets else "NAME@1"


def empty(kind: str, datasets: list[Any], short: bool = False) -> str:
    ref = example_ref(datasets)
    name = ref.split("@")[0]
    later = ref if datasets else "NAME@2"  # drift compares two versions
    if short:  # an overview panel has two or three lines: the command first
        return {
            "datasets": "None yet: workbench data add FILE --name NAME",
            "runs": f"None yet: l to launch, or workbench train {ref} --target COLUMN",
            "models": "None yet: workbench model register RUN --name NAME",
            "drift": f"None yet: f to compare, or workbench drift {name}@1 {later}",
            "audit": "Nothing recorded yet: each change to the project is listed here",
        }[kind]
    return {
        "datasets": "No datasets yet. Add a CSV or Parquet file as the first version: "
        "workbench data add FILE --name NAME",
        "runs": f"No runs yet. Press l to train one here, or: workbench train {ref} "
        "--target COLUMN",
        "models": "No models yet. Register a finished run's model: "
        "workbench model register RUN --name NAME (or promote from the Runs screen)",
        "drift": f"No drift reports yet. Press / here (f from anywhere) to compare two "
        f"versions, or: workbench drift {name}@1 {later}",
    }[kind]


def no_pipeline_runs(pipelines: dict[str, Any]) -> str:
    if not pipelines:
        return (
            "No pipelines declared. Add a [pipeline.NAME] table to workbench.toml (the "
            "dataset, the model, the target; see docs/pipeline.md), then: "
            "workbench pipeline run NAME --batch FILE"
        )
    declared = ", ".join(
        f"{n} ({p.dataset} → {p.model}, retrain on {p.retrain})" for n, p in pipelines.items()
    )
    first = next(iter(pipelines))
    return (
        f"No pipeline runs yet. Declared in workbench.toml: {declared}. Run one on a new "
        f"batch: workbench pipeline run {first} --batch FILE"
    )
