"""MLflow interop: bring an MLflow store in, or write the runs out as one.

Both of MLflow's local stores are read directly, without MLflow installed: the
``mlruns/`` folder (YAML metadata, one file per param, tag and metric history) and a
``sqlite:`` database (its tables). Everything becomes ordinary workbench records:
experiments, runs with params, tags and every metric point (step and timestamp kept),
artifact files in the object store, and registered models with their versions and
aliases, each change with its audit entry, so ``verify`` and the TUI see no difference.

Importing is idempotent: each imported run carries the tag ``mlflow.run_id`` and each
imported model version and alias an audit entry naming its MLflow origin, and what is
already there is skipped. The export writes MLflow's file-store layout, which
``mlflow.MlflowClient("file:DIR")`` (and ``mlflow migrate-filestore``) read.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from workbench.core.errors import UsageError, WorkbenchError
from workbench.core.store import audit
from workbench.core.store.refs import NAME_RE

if TYPE_CHECKING:
    from workbench.core.project import Project

STATUS_IN = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed"}
STATUS_CODES = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
STATUS_OUT = {"finished": 3, "failed": 4, "killed": 5, "running": 1}
STUB_KIND = "mlflow-reference"  # a model version whose files could not be found


@dataclass
class MLRun:
    run_id: str
    experiment: str
    name: str | None
    status: str  # MLflow's word: FINISHED, FAILED, KILLED, RUNNING, SCHEDULED
    start_ms: int | None
    end_ms: int | None
    deleted: bool
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[tuple[str, int, float, int]] = field(default_factory=list)  # key, step, value, ts
    artifacts: Path | None = None
    experiment_id: str = ""


@dataclass
class MLModel:
    name: str
    description: str | None
    created_ms: int | None
    versions: list[dict[str, Any]] = field(default_factory=list)  # version, run_id, source, ...
    aliases: dict[str, int] = field(default_factory=dict)


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


# ---- reading MLflow stores ---------------------------------------------------------------
def _path_of_uri(uri: str | None, base: Path) -> Path | None:
    """A local folder from an artifact URI (file:///x, /x or a path relative to ``base``)."""
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # s3:, gs:, mlflow-artifacts: ...
        return None
    p = Path(uri)
    return p if p.is_absolute() else (base / p)


def _yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise WorkbenchError(f"cannot read {path}: {exc}") from None
    return data if isinstance(data, dict) else {}


def _key_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """MLflow keys may hold '/', which the file store turns into subfolders."""
    if folder.is_dir():
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                yield p.relative_to(folder).as_posix(), p


class FileStore:
    """An ``mlruns/`` folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _experiments(self) -> Iterator[tuple[str, str, Path]]:
        for d in sorted(self.root.iterdir()):
            if d.is_dir() and d.name not in ("models", ".trash") and (d / "meta.yaml").is_file():
                meta = _yaml(d / "meta.yaml")
                yield str(meta.get("experiment_id", d.name)), str(meta.get("name", d.name)), d

    def runs(self, problems: list[str]) -> Iterator[MLRun]:
        for exp_id, exp_name, folder in self._experiments():
            for d in sorted(folder.iterdir()):
                if not (d.is_dir() and (d / "meta.yaml").is_file()):
                    continue
                meta = _yaml(d / "meta.yaml")
                run_id = str(meta.get("run_id") or d.name)
                status = meta.get("status")
                status = STATUS_CODES.get(status, status) if isinstance(status, int) else status
                run = MLRun(
                    run_id=run_id,
                    experiment=exp_name,
                    experiment_id=exp_id,
                    name=meta.get("run_name") or None,
                    status=str(status or "FINISHED"),
                    start_ms=meta.get("start_time"),
                    end_ms=meta.get("end_time"),
                    deleted=meta.get("lifecycle_stage") == "deleted",
                )
                for key, p in _key_files(d / "params"):
                    run.params[key] = p.read_text(encoding="utf-8")
                for key, p in _key_files(d / "tags"):
                    run.tags[key] = p.read_text(encoding="utf-8")
                for key, p in _key_files(d / "metrics"):
                    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
                        parts = line.split()
                        if not parts:
                            continue
                        try:
                            ts, value = int(parts[0]), float(parts[1])
                            step = int(parts[2]) if len(parts) > 2 else 0
                        except (ValueError, IndexError):
                            problems.append(f"run {run_id}: metric {key} line {n} unreadable")
                            continue
                        run.metrics.append((key, step, value, ts))
                art = _path_of_uri(meta.get("artifact_uri"), self.root)
                run.artifacts = art if art and art.is_dir() else d / "artifacts"
                yield run

    def models(self) -> Iterator[MLModel]:
        folder = self.root / "models"
        if not folder.is_dir():
            return
        for d in sorted(folder.iterdir()):
            if not (d / "meta.yaml").is_file():
                continue
            meta = _yaml(d / "meta.yaml")
            model = MLModel(
                name=str(meta.get("name", d.name)),
                description=meta.get("description") or None,
                created_ms=meta.get("creation_timestamp"),
            )
            for v in sorted(d.glob("version-*"), key=lambda p: int(p.name.split("-")[1])):
                vm = _yaml(v / "meta.yaml")
                model.versions.append(
                    {
                        "version": int(vm.get("version", v.name.split("-")[1])),
                        "run_id": vm.get("run_id"),
                        "source": vm.get("source") or vm.get("storage_location"),
                        "description": vm.get("description"),
                        "created_ms": vm.get("creation_timestamp"),
                    }
                )
            aliases = meta.get("aliases") or {}
            if not aliases and (d / "aliases").is_dir():
                aliases = {p.name: p.read_text().strip() for p in (d / "aliases").iterdir()}
            model.aliases = {str(k): int(v) for k, v in aliases.items()}
            yield model


class SqliteStore:
    """An MLflow ``sqlite:`` tracking database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            self.con.execute("SELECT count(*) FROM runs").fetchone()
        except sqlite3.Error as exc:
            raise WorkbenchError(f"{path} is not an MLflow database: {exc}") from None

    def runs(self, problems: list[str]) -> Iterator[MLRun]:
        con = self.con
        exps = dict(con.execute("SELECT experiment_id, name FROM experiments").fetchall())
        for row in con.execute(
            "SELECT run_uuid, name, status, start_time, end_time, lifecycle_stage, "
            "artifact_uri, experiment_id FROM runs ORDER BY start_time, run_uuid"
        ).fetchall():
            run_id, name, status, start, end, stage, art_uri, exp_id = row
            run = MLRun(
                run_id=run_id,
                experiment=str(exps.get(exp_id, exp_id)),
                experiment_id=str(exp_id),
                name=name or None,
                status=status or "FINISHED",
                start_ms=start,
                end_ms=end,
                deleted=stage == "deleted",
            )
            run.params = dict(
                con.execute("SELECT key, value FROM params WHERE run_uuid = ?", [run_id]).fetchall()
            )
            run.tags = dict(
                con.execute("SELECT key, value FROM tags WHERE run_uuid = ?", [run_id]).fetchall()
            )
            run.metrics = [
                (k, int(s or 0), math.nan if nan else float(v), int(ts or 0))
                for k, v, ts, s, nan in con.execute(
                    "SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ? "
                    "ORDER BY key, step, timestamp",
                    [run_id],
                ).fetchall()
            ]
            run.artifacts = _path_of_uri(art_uri, self.path.parent)
            yield run

    def models(self) -> Iterator[MLModel]:
        con = self.con
        for name, desc, created in con.execute(
            "SELECT name, description, creation_time FROM registered_models ORDER BY name"
        ).fetchall():
            model = MLModel(name=name, description=desc or None, created_ms=created)
            for version, run_id, source, vdesc, vcreated in con.execute(
                "SELECT version, run_id, source, description, creation_time FROM model_versions "
                "WHERE name = ? ORDER BY version",
                [name],
            ).fetchall():
                model.versions.append(
                    {
                        "version": int(version),
                        "run_id": run_id,
                        "source": source,
                        "description": vdesc,
                        "created_ms": vcreated,
                    }
                )
            model.aliases = {
                a: int(v)
                for a, v in con.execute(
                    "SELECT alias, version FROM registered_model_aliases WHERE name = ?", [name]
                ).fetchall()
            }
            yield model


def open_store(spec: str) -> FileStore | SqliteStore:
    """``mlruns/`` (or ``file:...``) or ``sqlite:///path.db`` (or a path ending in .db)."""
    if spec.startswith("sqlite:"):
        rest = spec.removeprefix("sqlite:")
        # MLflow's form: sqlite:///relative.db, sqlite:////absolute/path.db
        path = Path(rest[3:] if rest.startswith("///") else rest.lstrip("/"))
        if not path.is_file():
            raise UsageError(f"no MLflow database at {path}")
        return SqliteStore(path)
    path = _path_of_uri(spec, Path.cwd()) or Path(spec)
    if path.is_file():
        return SqliteStore(path)
    if path.is_dir():
        if (
            not any((d / "meta.yaml").is_file() for d in path.iterdir() if d.is_dir())
            and not (path / "models").is_dir()
        ):
            raise UsageError(f"{path} does not look like an MLflow mlruns/ folder (no meta.yaml)")
        return FileStore(path)
    raise UsageError(f"no MLflow store at {spec}: give an mlruns/ folder or sqlite:///path.db")


# ---- importing ------------------------------------------------------------------------
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
    runs = list(store.runs(summary.problems))
    with project.catalog.read() as con:  # a store we exported holds our own run ids
        native = {r[0] for r in con.execute("SELECT id FROM runs").fetchall()}
    id_map.update({r.run_id: r.run_id for r in runs if r.run_id in native})
    for i, run in enumerate(runs, 1):
        if on_progress:
            on_progress(i, len(runs), run.run_id)
        if run.run_id in id_map:
            summary.runs_skipped += 1
            continue
        id_map[run.run_id] = _import_run(project, run, summary, pl)
    for model in store.models():
        _import_model(project, model, id_map, summary)
    if summary.runs or summary.versions or summary.aliases:  # a repeat import writes nothing
        with project.catalog.write() as con:
            audit.append(con, "import.mlflow", spec, summary.to_dict())
    return summary


def _import_run(project: Project, run: MLRun, summary: ImportSummary, pl: Any) -> str:
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
    with project.catalog.write() as con:
        exists = con.execute("SELECT 1 FROM runs WHERE id = ?", [run_id]).fetchone()
        if exists:  # the id is taken by a run that is not this import: keep both
            run_id = uuid.uuid4().hex
        con.execute("INSERT OR IGNORE INTO experiments VALUES (?, ?)", [experiment, start])
        con.execute(
            "INSERT INTO runs (id, experiment, name, status, error, start_time, end_time, "
            "deleted_at, environment, source) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                run_id,
                experiment,
                name,
                status,
                error,
                start,
                _ts(run.end_ms) or start,
                (_ts(run.end_ms) or start) if run.deleted else None,
                json.dumps({"imported_from": "mlflow"}),
                "mlflow import",
            ],
        )
        if run.params:
            con.executemany(
                "INSERT INTO params VALUES (?, ?, ?)",
                [[run_id, k, v] for k, v in run.params.items()],
            )
        con.executemany(
            "INSERT INTO tags VALUES (?, ?, ?)", [[run_id, k, v] for k, v in tags.items()]
        )
        if arts:
            con.executemany(
                "INSERT INTO artifacts VALUES (?, ?, ?, ?, ?)",
                [[run_id, k, h, n, kind] for k, (h, n, kind) in arts.items()],
            )
            con.executemany(
                "INSERT OR IGNORE INTO objects VALUES (?, ?, ?, ?)",
                [[h, n, "artifact", audit.now()] for h, n, _ in arts.values()],
            )
        if run.metrics:
            from workbench.core.runs.points import store_points

            frame = pl.DataFrame(
                run.metrics,
                schema={"key": pl.String, "step": pl.Int64, "value": pl.Float64, "ms": pl.Int64},
                orient="row",
            ).select(
                pl.lit(run_id).alias("run_id"),
                "key",
                "step",
                "value",
                pl.from_epoch("ms", time_unit="ms").alias("ts"),
            )
            store_points(con, frame)
        audit.append(
            con,
            "run.import",
            f"run:{run_id}",
            {"mlflow_run_id": run.run_id, "experiment": experiment, "points": len(run.metrics)},
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
        metrics = {k: m["last"] for k, m in info["metrics"].items() if not k.endswith("_curve")}
        with project.catalog.write() as con:
            if not con.execute("SELECT 1 FROM models WHERE name = ?", [name]).fetchone():
                con.execute(
                    "INSERT INTO models VALUES (?, ?, ?)",
                    [name, _ts(model.created_ms) or audit.now(), model.description],
                )
                new_model = True
            number = con.execute(
                "SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE model = ?", [name]
            ).fetchone()[0]
            con.execute(
                "INSERT INTO model_versions (model, version, run_id, artifact, signature, metrics, "
                "params, dataset, dataset_version, description, status, created_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    name,
                    number,
                    ours_run,
                    digest,
                    json.dumps({"kind": kind} if kind == STUB_KIND else {}),
                    json.dumps(metrics),
                    json.dumps(info["params"]),
                    None,
                    None,
                    v["description"],
                    "active",
                    _ts(v["created_ms"]) or audit.now(),
                ],
            )
            con.execute(
                "INSERT OR IGNORE INTO objects VALUES (?, ?, ?, ?)",
                [digest, project.objects.size(digest), "artifact", audit.now()],
            )
            audit.append(
                con,
                "model.register",
                f"{name}@{number}",
                {
                    "run": ours_run,
                    "artifact": digest,
                    "version": number,
                    "imported_from": "mlflow",
                    "mlflow_model": model.name,
                    "mlflow_version": v["version"],
                    "mlflow_run_id": v["run_id"],
                },
            )
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
        project.models._move(
            name,
            alias,
            previous,
            numbers[mlflow_version],
            "model.promote",
            {
                "version": numbers[mlflow_version],
                "previous": previous,
                "reason": "imported from MLflow",
                "imported_from": "mlflow",
                "mlflow_model": model.name,
                "alias": alias,
                "mlflow_version": mlflow_version,
            },
            history_action="import",
        )
        summary.aliases += 1


# ---- exporting ------------------------------------------------------------------------
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
    counts = {"experiments": 0, "runs": 0, "points": 0, "artifacts": 0, "models": 0, "versions": 0}
    try:
        _export(project, tmp, counts)
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


def _export(project: Project, root: Path, counts: dict[str, int]) -> None:
    with project.catalog.read() as con:
        exps = con.execute(
            "SELECT name, created_at FROM experiments ORDER BY created_at, name"
        ).fetchall()
        runs = con.execute(
            "SELECT id, experiment, name, status, start_time, end_time, deleted_at FROM runs "
            "ORDER BY start_time"
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
        "artifact_location": (root / "0").resolve().as_uri(),
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
                "artifact_location": (root / eid).resolve().as_uri(),
                "experiment_id": eid,
                "lifecycle_stage": "active",
                "name": name,
                "creation_time": _ms(created),
                "last_update_time": _ms(created),
            },
        )
        counts["experiments"] += 1
    by_run: dict[str, dict[str, Any]] = {}
    for run_id, exp, name, status, start, end, deleted in runs:
        d = root / ids[exp] / run_id
        by_run[run_id] = {"dir": d}
        _dump(
            d / "meta.yaml",
            {
                "artifact_uri": (d / "artifacts").resolve().as_uri(),
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
        counts["runs"] += 1
    for run_id, key, value in params:
        _write(_key_path(by_run[run_id]["dir"] / "params", key), value or "")
    for run_id, key, value in tags:
        if key != "mlflow.runName":
            _write(_key_path(by_run[run_id]["dir"] / "tags", key), value or "")
    for run_id, path, digest in arts:
        dest = _key_path(by_run[run_id]["dir"] / "artifacts", path)
        dest.parent.mkdir(parents=True, exist_ok=True)
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
