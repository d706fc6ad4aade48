"""``workbench export mlflow``: every run (params, tags, metric histories, artifacts) and
the registry written as MLflow's file-store layout, which ``mlflow.MlflowClient("file:DIR")``
(and ``mlflow migrate-filestore``) read."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import UsageError, WorkbenchError
from workbench.core.runs.model import PACKED, unpack

if TYPE_CHECKING:
    from workbench.core.project import Project

STATUS_OUT = {"finished": 3, "failed": 4, "killed": 5, "running": 1}


def _ms(value: Any) -> int | None:
    if value is None:
        return None
    return int(value.replace(tzinfo=dt.UTC).timestamp() * 1000)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _dump(path: Path, data: dict[str, Any]) -> None:
    import yaml

    _write(path, yaml.safe_dump(data, default_flow_style=False, sort_keys=True))


def _key_path(folder: Path, key: str) -> Path:
    parts = [p for p in key.split("/") if p not in ("", ".", "..")]
    if not parts:
        raise WorkbenchError(f"cannot write key {key!r} as a file")
    return folder.joinpath(*parts)


def export_store(project: Project, target: str) -> dict[str, int]:
    """Write every run (params, tags, metric histories, artifacts) and the registry as an
    MLflow file store in ``target`` (a new or empty folder)."""
    out = Path(target)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} is not empty; give a new or empty folder")
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    counts = {
        "experiments": 0,
        "runs": 0,
        "points": 0,
        "artifacts": 0,
        "models": 0,
        "versions": 0,
        "mlflow_models": 0,
    }
    try:
        _export(project, tmp, out.resolve(), counts)
        if out.exists():
            out.rmdir()
        tmp.replace(out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise WorkbenchError(f"cannot write {out}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return counts


def _mlflow_model(project: Project, ref: str, run: dict[str, Any] | None) -> str | None:
    """Write version ``ref`` in MLflow's model format into its run's artifacts (``model``,
    or ``model-vN`` when the run has a ``model`` already); the folder's name, or None for a
    version with nothing to load (imported from MLflow as a reference only)."""
    from workbench.core.errors import WorkbenchError
    from workbench.core.interop.mlflow_model import trained_here, write_model

    if run is None:
        return None
    mv = project.models.resolve(ref)
    try:
        model = project.models.load(mv)
    except WorkbenchError:
        return None
    if not trained_here(model):  # came from MLflow: its own model files came back with it
        return None
    arts = run["dir"] / "artifacts"
    name = "model" if not (arts / "model").exists() else f"model-v{mv.version}"
    try:  # a few training rows as the input example, when the data is still there
        example = project.datasets.head(mv.dataset_ref, 5) if mv.dataset_ref else None
    except WorkbenchError:
        example = None
    (arts / name).mkdir(parents=True)
    write_model(arts / name, mv, model, example)
    return name


def _export(project: Project, root: Path, final: Path, counts: dict[str, int]) -> None:
    """Write the store in ``root`` (a staging folder) with every location naming
    ``final``, where it will be renamed: MLflow reads artifacts from the URI written in
    each meta.yaml, and those once named the staging folder, gone after the rename."""

    def uri(*parts: str) -> str:
        return final.joinpath(*parts).as_uri()

    with project.catalog.read() as con:
        exps = con.execute(
            "SELECT name, created_at FROM experiments ORDER BY created_at, name"
        ).fetchall()
        runs = con.execute(
            "SELECT id, experiment, name, status, start_time, end_time, deleted_at, parent_id "
            "FROM runs ORDER BY start_time"
        ).fetchall()
        params = con.execute("SELECT run_id, key, value FROM params").fetchall()
        tags = con.execute("SELECT run_id, key, value FROM tags").fetchall()
        arts = con.execute("SELECT run_id, path, hash FROM artifacts").fetchall()
        points = con.execute(
            "SELECT run_id, key, step, value, epoch_ms(ts) FROM metrics ORDER BY run_id, key, step, ts"
        ).fetchall()
        models = con.execute("SELECT name, created_at, description FROM models").fetchall()
        versions = con.execute(
            "SELECT v.model, v.version, v.run_id, v.description, v.created_at, a.path "
            "FROM model_versions v LEFT JOIN artifacts a ON a.run_id = v.run_id AND a.hash = v.artifact"
        ).fetchall()
        aliases = con.execute("SELECT model, alias, version FROM model_aliases").fetchall()
    root.mkdir(parents=True)
    ids = {name: str(i) for i, (name, _) in enumerate(exps, 1)}
    default = {
        "artifact_location": uri("0"),
        "experiment_id": "0",
        "lifecycle_stage": "active",
        "name": "Default",
        "creation_time": 0,
        "last_update_time": 0,
    }
    _dump(root / "0" / "meta.yaml", default)
    for name, created in exps:
        eid = ids[name]
        _dump(
            root / eid / "meta.yaml",
            {
                "artifact_location": uri(eid),
                "experiment_id": eid,
                "lifecycle_stage": "active",
                "name": name,
                "creation_time": _ms(created),
                "last_update_time": _ms(created),
            },
        )
        counts["experiments"] += 1
    by_run: dict[str, dict[str, Any]] = {}
    for run_id, exp, name, status, start, end, deleted, parent in runs:
        d = root / ids[exp] / run_id
        by_run[run_id] = {"dir": d}
        _dump(
            d / "meta.yaml",
            {
                "artifact_uri": uri(ids[exp], run_id, "artifacts"),
                "end_time": _ms(end),
                "entry_point_name": "",
                "experiment_id": ids[exp],
                "lifecycle_stage": "deleted" if deleted else "active",
                "run_id": run_id,
                "run_name": name or "",
                "source_name": "",
                "source_type": 4,
                "source_version": "",
                "start_time": _ms(start),
                "status": STATUS_OUT.get(status, 5),
                "tags": [],
                "user_id": "workbench",
            },
        )
        (d / "artifacts").mkdir(parents=True, exist_ok=True)
        if name:
            _write(d / "tags" / "mlflow.runName", name)
        if parent:  # how MLflow nests a sweep's trials under it
            _write(d / "tags" / "mlflow.parentRunId", parent)
        counts["runs"] += 1
    for run_id, key, value in params:
        _write(_key_path(by_run[run_id]["dir"] / "params", key), value or "")
    for run_id, key, value in tags:
        if key != "mlflow.runName":
            _write(_key_path(by_run[run_id]["dir"] / "tags", key), value or "")
    for run_id, path, digest in arts:
        dest = _key_path(by_run[run_id]["dir"] / "artifacts", path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        what = f"run:{run_id[:8]}'s artifact {path}"
        project.objects.check({digest: what})
        with open(project.objects.path(digest), "rb") as f:
            packed = f.read(len(PACKED)) == PACKED
        if packed:  # MLflow users unpickle model.pkl themselves: give them the pickle
            dest.write_bytes(unpack(project.objects.read_bytes(digest, what)))
        else:
            shutil.copyfile(project.objects.path(digest), dest)
        counts["artifacts"] += 1
    lines: dict[tuple[str, str], list[str]] = {}
    for run_id, key, step, value, ms in points:
        lines.setdefault((run_id, key), []).append(f"{ms} {value!r} {step}")
        counts["points"] += 1
    for (run_id, key), rows in lines.items():
        _write(_key_path(by_run[run_id]["dir"] / "metrics", key), "\n".join(rows) + "\n")
    alias_map: dict[str, dict[str, str]] = {}
    for model, alias, version in aliases:
        alias_map.setdefault(model, {})[alias] = str(version)
    for name, created, description in models:
        d = root / "models" / name
        _dump(
            d / "meta.yaml",
            {
                "aliases": alias_map.get(name, {}),
                "creation_timestamp": _ms(created),
                "description": description,
                "last_updated_timestamp": _ms(created),
                "name": name,
            },
        )
        for alias, version in alias_map.get(name, {}).items():
            _write(d / "aliases" / alias, version)
        counts["models"] += 1
    for model, version, run_id, description, created, path in versions:
        folder = str(Path(path).parent) if path and "/" in path else ""
        source = f"runs:/{run_id}/{folder or path or 'model.pkl'}"
        written = _mlflow_model(project, f"{model}@{version}", by_run.get(run_id))
        if written:  # loadable as models:/NAME/VERSION by MLflow and the platforms on it
            source = f"runs:/{run_id}/{written}"
            counts["mlflow_models"] += 1
        _dump(
            root / "models" / model / f"version-{version}" / "meta.yaml",
            {
                "creation_timestamp": _ms(created),
                "current_stage": "None",
                "description": description,
                "last_updated_timestamp": _ms(created),
                "name": model,
                "run_id": run_id,
                "run_link": None,
                "source": source,
                "status": "READY",
                "status_message": None,
                "storage_location": source,
                "user_id": None,
                "version": version,
            },
        )
        counts["versions"] += 1
