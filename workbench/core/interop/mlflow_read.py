"""Reading MLflow's two local stores without MLflow installed: the ``mlruns/`` folder
(YAML metadata, one file per param, tag and metric history) and a ``sqlite:`` database
(its tables), both into the same plain records (``MLRun``, ``MLModel``)."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from workbench.core.errors import UsageError, WorkbenchError

if TYPE_CHECKING:
    pass

STATUS_CODES = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}


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
