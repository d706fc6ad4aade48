"""``workbench import mlflow``: MLflow runs and registered models become ordinary
workbench records: experiments, runs with params, tags and every metric point (step and
timestamp kept), artifact files in the object store, and model versions with their
aliases, each with its audit entry, so ``verify`` and the app see no difference.

Importing is idempotent: each imported run carries the tag ``mlflow.run_id`` and each
imported model version and alias an audit entry naming its MLflow origin, and what is
already there is skipped. The rows themselves are written by their owners
(``Runs.import_run``, ``Registry.import_version``); this module maps and decides.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.core.store import audit
from workbench.core.store.refs import NAME_RE

if TYPE_CHECKING:
    from workbench.core.project import Project

from workbench.core.interop.mlflow_read import MLModel, MLRun, _key_files, open_store
from workbench.core.runs.runs import ImportedRun

STATUS_IN = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed"}
STUB_KIND = "mlflow-reference"  # a model version whose files could not be found


@dataclass
class ImportSummary:
    experiments: set[str] = field(default_factory=set)
    runs: int = 0
    runs_skipped: int = 0
    points: int = 0
    params: int = 0
    tags: int = 0
    artifacts: int = 0
    artifact_bytes: int = 0
    models: int = 0
    versions: int = 0
    versions_skipped: int = 0
    aliases: int = 0
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["experiments"] = sorted(self.experiments)
        return d


def _ts(ms: int | None) -> dt.datetime | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).replace(tzinfo=None)


def safe_name(name: str) -> str:
    """MLflow names allow spaces and slashes; ours are safe in paths and shell words."""
    if NAME_RE.match(name):
        return name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._") or "mlflow"
    if not cleaned[0].isalnum():
        cleaned = "x" + cleaned
    return cleaned[:128]


def _imported_runs(project: Project) -> dict[str, str]:
    """MLflow run id -> our run id, for the runs earlier imports brought in."""
    with project.catalog.read() as con:
        return dict(
            con.execute("SELECT value, run_id FROM tags WHERE key = 'mlflow.run_id'").fetchall()
        )


def import_store(
    project: Project,
    spec: str,
    on_progress: Callable[[int, int, str], None] | None = None,
) -> ImportSummary:
    """Bring every run and registered model of an MLflow store into ``project``."""
    import polars as pl

    store = open_store(spec)
    summary = ImportSummary()
    id_map = _imported_runs(project)
    # parents before the runs nested under them, so a child finds its parent's new id
    runs = sorted(
        store.runs(summary.problems),
        key=lambda r: ("mlflow.parentRunId" in r.tags, r.start_ms or 0),
    )
    with project.catalog.read() as con:  # a store we exported holds our own run ids
        native = {r[0] for r in con.execute("SELECT id FROM runs").fetchall()}
    id_map.update({r.run_id: r.run_id for r in runs if r.run_id in native})
    for i, run in enumerate(runs, 1):
        if on_progress:
            on_progress(i, len(runs), run.run_id)
        if run.run_id in id_map:
            summary.runs_skipped += 1
            continue
        id_map[run.run_id] = _import_run(project, run, summary, pl, id_map)
    for model in store.models():
        _import_model(project, model, id_map, summary)
    if summary.runs or summary.versions or summary.aliases:  # a repeat import writes nothing
        with project.catalog.write() as con:
            audit.append(con, "import.mlflow", spec, summary.to_dict())
    return summary


def _import_run(
    project: Project, run: MLRun, summary: ImportSummary, pl: Any, id_map: dict[str, str]
) -> str:
    run_id = run.run_id if re.fullmatch(r"[0-9a-f]{32}", run.run_id) else uuid.uuid4().hex
    experiment = safe_name(run.experiment)
    status = STATUS_IN.get(run.status.upper(), "killed")
    error = None
    if status == "killed" and run.status.upper() not in ("KILLED",):
        error = f"was {run.status} in MLflow when imported"
        summary.problems.append(f"run {run.run_id}: {error}; imported as killed")
    tags = {**run.tags, "mlflow.run_id": run.run_id, "mlflow.experiment_id": run.experiment_id}
    if experiment != run.experiment:
        tags["mlflow.experiment_name"] = run.experiment
    name = run.name or run.tags.get("mlflow.runName")
    # Blobs first: artifact files go into the object store before any row points at them.
    arts: dict[str, tuple[str, int, str]] = {}
    if run.artifacts is not None and run.artifacts.is_dir():
        for rel, p in _key_files(run.artifacts):
            data = p.read_bytes()
            kind = "model" if p.name == "model.pkl" else "file"
            arts[rel] = (project.objects.put_bytes(data), len(data), kind)
            summary.artifact_bytes += len(data)
    elif run.artifacts is not None:
        summary.problems.append(f"run {run.run_id}: no artifacts folder at {run.artifacts}")
    start = _ts(run.start_ms) or audit.now()
    points = None
    if run.metrics:
        points = pl.DataFrame(
            run.metrics,
            schema={"key": pl.String, "step": pl.Int64, "value": pl.Float64, "ms": pl.Int64},
            orient="row",
        ).select("key", "step", "value", pl.from_epoch("ms", time_unit="ms").alias("ts"))
    run_id = project.runs.import_run(
        ImportedRun(
            id=run_id,
            experiment=experiment,
            name=name,
            status=status,
            error=error,
            start=start,
            end=_ts(run.end_ms) or start,
            deleted=run.deleted,
            params=run.params,
            tags=tags,
            artifacts=arts,
            points=points,
            source="mlflow import",
            imported_from="mlflow",
            # nested runs (a sweep's trials) keep their parent, when it came in first
            parent_id=id_map.get(run.tags.get("mlflow.parentRunId", "")),
            origin={
                "mlflow_run_id": run.run_id,
                "experiment": experiment,
                "points": len(run.metrics),
            },
        )
    )
    summary.runs += 1
    summary.experiments.add(experiment)
    summary.points += len(run.metrics)
    summary.params += len(run.params)
    summary.tags += len(run.tags)
    summary.artifacts += len(arts)
    return run_id


def _model_file(project: Project, run_id: str | None, source: str | None) -> tuple[str, str] | None:
    """The hash and kind of a version's pickled model, if the import brought it in."""
    if not run_id or not source or not source.startswith("runs:/"):
        return None
    rel = source.removeprefix("runs:/").split("/", 1)[1] if "/" in source[6:] else ""
    with project.catalog.read() as con:
        rows = con.execute(
            "SELECT path, hash FROM artifacts WHERE run_id = ? AND (path = ? OR path = ?)",
            [run_id, f"{rel}/model.pkl".lstrip("/"), rel],
        ).fetchall()
    for path, digest in rows:
        if path.endswith(".pkl"):
            return digest, "model"
    return None


def _import_model(
    project: Project, model: MLModel, id_map: dict[str, str], summary: ImportSummary
) -> None:
    name = safe_name(model.name)
    numbers: dict[int, int] = {}  # MLflow version -> ours, for this store's versions
    done: dict[tuple[int, str], int] = {}  # (MLflow version, MLflow run) -> ours, imported before
    with project.catalog.read() as con:
        for (details,) in con.execute(
            "SELECT details FROM audit WHERE action = 'model.register' "
            "AND json_extract_string(details, '$.mlflow_model') = ?",
            [model.name],
        ).fetchall():
            d = json.loads(details)
            done[(int(d["mlflow_version"]), d.get("mlflow_run_id") or "")] = int(d["version"])
        for version, run_id in con.execute(
            "SELECT version, run_id FROM model_versions WHERE model = ?", [name]
        ).fetchall():  # a store we exported: the same version of the same run is ours already
            done.setdefault((version, run_id), version)
        aliases_now = dict(
            con.execute(
                "SELECT alias, version FROM model_aliases WHERE model = ?", [name]
            ).fetchall()
        )
    new_model = False
    for v in model.versions:
        key = (v["version"], v["run_id"] or "")
        native_key = (v["version"], id_map.get(v["run_id"] or "", ""))
        if key in done or native_key in done:
            numbers[v["version"]] = done.get(key) or done[native_key]
            summary.versions_skipped += 1
            continue
        ours_run = id_map.get(v["run_id"] or "")
        if ours_run is None:
            summary.problems.append(
                f"model {model.name} v{v['version']}: its run {v['run_id']} was not in the store; "
                "skipped"
            )
            continue
        found = _model_file(project, ours_run, v["source"])
        if found is None:
            stub = json.dumps(
                {"mlflow_model": model.name, "mlflow_version": v["version"], "source": v["source"]},
                sort_keys=True,
            ).encode()
            digest, kind = project.objects.put_bytes(stub), STUB_KIND
            summary.problems.append(
                f"model {model.name} v{v['version']}: no pickled model at {v['source']}; kept as a "
                "reference (it cannot score)"
            )
        else:
            digest, kind = found
        info = project.runs.get(ours_run)
        metrics = {k: m.last for k, m in info.metrics.items() if not k.endswith("_curve")}
        number, created = project.models.import_version(
            name,
            run_id=ours_run,
            artifact=digest,
            signature={"kind": kind} if kind == STUB_KIND else {},
            metrics=metrics,
            params=info.params,
            description=v["description"],
            created_at=_ts(v["created_ms"]) or audit.now(),
            model_created_at=_ts(model.created_ms) or audit.now(),
            model_description=model.description,
            origin={
                "imported_from": "mlflow",
                "mlflow_model": model.name,
                "mlflow_version": v["version"],
                "mlflow_run_id": v["run_id"],
            },
        )
        new_model = new_model or created
        numbers[v["version"]] = number
        summary.versions += 1
    summary.models += new_model
    for alias, mlflow_version in sorted(model.aliases.items()):
        if mlflow_version not in numbers:
            summary.problems.append(
                f"alias {model.name}@{alias}: its version {mlflow_version} was not imported"
            )
            continue
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,63}", alias):
            summary.problems.append(f"alias {model.name}@{alias}: not a valid alias name; skipped")
            continue
        if aliases_now.get(alias) == numbers[mlflow_version]:
            continue  # already there: importing again changes nothing
        previous = aliases_now.get(alias)
        project.models.import_alias(
            name,
            alias,
            previous,
            numbers[mlflow_version],
            {
                "version": numbers[mlflow_version],
                "previous": previous,
                "reason": "imported from MLflow",
                "imported_from": "mlflow",
                "mlflow_model": model.name,
                "alias": alias,
                "mlflow_version": mlflow_version,
            },
        )
        summary.aliases += 1
