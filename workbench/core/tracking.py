"""Runs: the Python tracking API and the catalog side of experiments.

A live run never holds the catalog. It writes one row when it starts, then
appends metric points to its own file (``.workbench/runs/<id>/metrics.tsv``,
flushed every 1,000 points or second) and keeps params, tags and artifacts in
small JSON files beside it. When it ends, everything is folded into the catalog
in one transaction. So parallel runs never fight over the catalog, a viewer can
follow a live run by reading its file, and a run killed with SIGKILL is found
later (its process is gone, or its heartbeat is stale), marked ``killed``, and
keeps every point it had flushed.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import numbers
import os
import platform
import re
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core import audit
from workbench.core.errors import NotFoundError, UsageError, WorkbenchError
from workbench.core.objects import _pid_alive
from workbench.core.refs import check_name, parse_ref

if TYPE_CHECKING:
    import duckdb

    from workbench.core.project import Project

RUNNING, FINISHED, FAILED, KILLED = "running", "finished", "failed", "killed"
STATUSES = (RUNNING, FINISHED, FAILED, KILLED)
MAX_KEY = 250
MAX_VALUE = 6000
FLUSH_POINTS = 1000
FLUSH_SECONDS = 1.0
HEARTBEAT_SECONDS = 5.0
STALE_SECONDS = 60.0
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_key(key: str, what: str) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY or _CONTROL.search(key):
        shown = repr(key)[:60]
        raise UsageError(f"invalid {what} key {shown}: use 1-{MAX_KEY} printable characters")
    return key


def param_text(value: Any) -> str:
    """Params are stored as text; non-strings as JSON so 0.1, true and null read back."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) > MAX_VALUE:
        raise UsageError(f"a value is longer than {MAX_VALUE} characters")
    return text


@functools.lru_cache(maxsize=1)
def _environment() -> str:
    return json.dumps(environment_uncached())


def environment() -> dict[str, Any]:
    """What reproducing this run needs; computed once per process (git is a subprocess)."""
    return json.loads(_environment())


def environment_uncached() -> dict[str, Any]:
    """What reproducing this run needs: interpreter, platform, packages, git commit."""
    from importlib import metadata

    packages = {}
    for name in (
        "workbench",
        "polars",
        "duckdb",
        "numpy",
        "scikit-learn",
        "lightgbm",
        "scipy",
        "pyarrow",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            packages[name] = metadata.version(name)
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "packages": packages,
        "argv": sys.argv[:20],
    }
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=2, check=False
        )
        if out.returncode == 0:
            env["git_commit"] = out.stdout.strip()
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=2,
                check=False,
            )
            env["git_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return env


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False))
    os.replace(tmp, path)


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


class Run:
    """A live run. Use as a context manager: an exception marks it failed."""

    def __init__(self, project: Project, run_id: str, experiment: str, name: str | None) -> None:
        self.project = project
        self.id = run_id
        self.experiment = experiment
        self.name = name
        self.dir = project.store_dir / "runs" / run_id
        self.params: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.artifacts: dict[str, dict[str, Any]] = {}
        self._keys: dict[str, str] = {}
        self._buf: list[str] = []
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()
        self._file = open(self.dir / "metrics.tsv", "a", encoding="utf-8")  # noqa: SIM115
        self._ended = False
        self._stop = threading.Event()
        self._beat = threading.Thread(
            target=self._heartbeat, name=f"wb-heartbeat-{run_id[:8]}", daemon=True
        )
        self._beat.start()

    def __repr__(self) -> str:
        return f"Run(id={self.id[:8]!r}, experiment={self.experiment!r}, name={self.name!r})"

    @property
    def ref(self) -> str:
        return f"run:{self.id[:8]}"

    # ---- logging ---------------------------------------------------------------
    def log_param(self, key: str, value: Any) -> None:
        check_key(key, "param")
        text = param_text(value)
        old = self.params.get(key)
        if old is not None and old != text:
            raise UsageError(
                f"param {key!r} is already {old!r} in this run; params cannot change, "
                "log a new key or start a new run"
            )
        self.params[key] = text
        _write_json(self.dir / "params.json", self.params)

    def log_params(self, params: Mapping[str, Any]) -> None:
        for k, v in params.items():
            check_key(k, "param")
            text = param_text(v)
            if k in self.params and self.params[k] != text:
                raise UsageError(
                    f"param {k!r} is already {self.params[k]!r} in this run; params cannot change"
                )
        self.params.update({k: param_text(v) for k, v in params.items()})
        _write_json(self.dir / "params.json", self.params)

    def set_tag(self, key: str, value: Any) -> None:
        check_key(key, "tag")
        self.tags[key] = param_text(value)
        _write_json(self.dir / "tags.json", self.tags)

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        """Record a point. NaN and +-inf are kept (a diverging loss is information)."""
        enc = self._keys.get(key) or self._new_key(key)
        # This is the hot path (a million calls in a long run): exact type checks first,
        # the slower ABC checks only for numpy scalars and other number types.
        tv = type(value)
        if tv is not float and (
            tv is bool or (tv is not int and not isinstance(value, numbers.Real))
        ):
            raise UsageError(f"metric {key!r} must be a number, not {tv.__name__}")
        if type(step) is not int and (
            isinstance(step, bool) or not isinstance(step, numbers.Integral)
        ):
            raise UsageError(f"step of metric {key!r} must be an integer")
        line = f"{enc}\t{int(step)}\t{float(value)!r}\t{time.time_ns() // 1_000_000}\n"
        with self._lock:
            self._buf.append(line)
            if (
                len(self._buf) >= FLUSH_POINTS
                or time.monotonic() - self._last_flush > FLUSH_SECONDS
            ):
                self._flush_locked()

    def _new_key(self, key: str) -> str:
        """Check a metric key the first time it is logged and keep its encoded form (the
        points file holds keys as JSON strings; a key is never empty, so never falsy)."""
        check_key(key, "metric")
        enc = self._keys[key] = json.dumps(key, ensure_ascii=False)
        return enc

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        for k, v in metrics.items():
            self.log_metric(k, v, step)

    def log_curve(self, key: str, values: Any, steps: Any = None) -> None:
        """Record many points of one metric at once (a whole curve, or a batch of it).

        ``values`` and ``steps`` are sequences or numpy arrays of equal length; steps
        default to 0, 1, 2 …  This is the batch path, like MLflow's ``log_batch``: the
        checks and the formatting are done over the arrays, not once a point, so a
        curve of 1,000 points costs about what 20 ``log_metric`` calls do.
        """
        import numpy as np

        enc = self._keys.get(key) or self._new_key(key)
        arr = np.asarray(values)
        if arr.ndim != 1 or arr.dtype.kind not in "fiu":
            raise UsageError(f"values of metric {key!r} must be a flat sequence of numbers")
        arr = arr.astype(np.float64, copy=False)
        if steps is None:
            step_arr = np.arange(len(arr), dtype=np.int64)
        else:
            raw = np.asarray(steps)
            if raw.ndim != 1 or raw.dtype.kind not in "iu":
                raise UsageError(f"steps of metric {key!r} must be a flat sequence of integers")
            if len(raw) != len(arr):
                raise UsageError(
                    f"metric {key!r} has {len(arr)} values but {len(raw)} steps; give one each"
                )
            step_arr = raw.astype(np.int64, copy=False)
        if not len(arr):
            return
        ts = time.time_ns() // 1_000_000
        lines = "".join(
            f"{enc}\t{s}\t{v!r}\t{ts}\n"
            for s, v in zip(step_arr.tolist(), arr.tolist(), strict=True)
        )
        with self._lock:
            self._buf.append(lines)
            self._flush_locked()

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> str:
        """Copy a file into the object store; returns its hash."""
        src = Path(path)
        if not src.is_file():
            raise UsageError(f"no such file to log as an artifact: {src}")
        return self.log_bytes(name or src.name, src.read_bytes(), kind="file")

    def log_bytes(self, name: str, data: bytes, kind: str = "file") -> str:
        check_key(name, "artifact")
        digest = self.project.objects.put_bytes(data)
        self.artifacts[name] = {"hash": digest, "size": len(data), "kind": kind}
        _write_json(self.dir / "artifacts.json", self.artifacts)
        return digest

    def log_model(self, model: Any, name: str = "model.pkl", input_example: Any = None) -> str:
        """Store a fitted model (pickled) and, from ``input_example``, its input signature.

        A pickle is code: only load models from stores you trust (``verify`` checks
        that no stored object changed since it was written).
        """
        import pickle

        try:
            data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise UsageError(f"cannot store this model: {type(exc).__name__}: {exc}") from None
        digest = self.log_bytes(name, data, kind="model")
        if input_example is not None:
            schema = getattr(input_example, "schema", None)
            if schema is None:
                raise UsageError("input_example must be a polars DataFrame")
            self.log_json(
                name.rsplit(".", 1)[0] + ".signature.json",
                {"inputs": {c: str(t) for c, t in schema.items()}},
            )
        return digest

    def log_json(self, name: str, data: Any, kind: str = "json") -> str:
        return self.log_bytes(name, json.dumps(data, indent=2, default=str).encode(), kind=kind)

    # ---- lifecycle ----------------------------------------------------------------
    def _flush_locked(self) -> None:
        if self._buf:
            self._file.write("".join(self._buf))
            self._buf.clear()
        self._file.flush()
        self._last_flush = time.monotonic()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _heartbeat(self) -> None:
        beat = self.dir / "heartbeat"
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(OSError):
                beat.touch()
            with contextlib.suppress(Exception), self._lock:
                self._flush_locked()

    def end(self, status: str = FINISHED, error: str | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        self._stop.set()
        with self._lock:
            self._flush_locked()
            os.fsync(self._file.fileno())
            self._file.close()
        self.project.runs._finish(self.id, status, error)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.end(FINISHED)
        elif isinstance(exc, KeyboardInterrupt):
            self.end(KILLED, "interrupted (Ctrl-C)")
        else:
            last = traceback.extract_tb(tb)[-1] if tb else None
            where = f" at {Path(last.filename).name}:{last.lineno}" if last else ""
            self.end(FAILED, f"{type(exc).__name__}: {exc}{where}"[:2000])


class Runs:
    """The catalog side of tracking: ``Project().runs``."""

    def __init__(self, project: Project) -> None:
        self.project = project

    # ---- starting and ending ------------------------------------------------------
    def start(
        self,
        experiment: str = "default",
        name: str | None = None,
        dataset: str | None = None,
        parent_id: str | None = None,
        source: str | None = None,
    ) -> Run:
        check_name(experiment, "experiment name")
        if name is not None and (len(name) > MAX_KEY or _CONTROL.search(name)):
            raise UsageError(f"invalid run name: use at most {MAX_KEY} printable characters")
        ds_name = ds_version = None
        if dataset is not None:
            v = self.project.datasets.resolve(dataset)
            ds_name, ds_version = v.dataset, v.number
        run_id = uuid.uuid4().hex
        run_dir = self.project.store_dir / "runs" / run_id
        try:
            run_dir.mkdir(parents=True)
            (run_dir / "heartbeat").touch()
        except OSError as exc:
            from workbench.core.objects import store_write_error

            raise store_write_error(exc, run_dir) from None
        env = environment()
        now = audit.now()
        try:
            self._insert(run_id, experiment, name, now, ds_name, ds_version, parent_id, env, source)
        except BaseException:
            import shutil

            shutil.rmtree(run_dir, ignore_errors=True)  # no folder without its catalog row
            raise
        return Run(self.project, run_id, experiment, name)

    def _insert(
        self,
        run_id: str,
        experiment: str,
        name: str | None,
        now: Any,
        ds_name: str | None,
        ds_version: int | None,
        parent_id: str | None,
        env: dict[str, Any],
        source: str | None,
    ) -> None:
        with self.project.catalog.write() as con:
            con.execute("INSERT OR IGNORE INTO experiments VALUES (?, ?)", [experiment, now])
            con.execute(
                "INSERT INTO runs (id, experiment, name, status, start_time, host, pid, dataset, "
                "dataset_version, parent_id, environment, source) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    run_id,
                    experiment,
                    name,
                    RUNNING,
                    now,
                    socket.gethostname(),
                    os.getpid(),
                    ds_name,
                    ds_version,
                    parent_id,
                    json.dumps(env),
                    source,
                ],
            )
            audit.append(
                con,
                "run.start",
                f"run:{run_id}",
                {
                    "experiment": experiment,
                    "name": name,
                    "dataset": f"{ds_name}@{ds_version}" if ds_name else None,
                },
            )

    def _finish(self, run_id: str, status: str, error: str | None) -> None:
        with self.project.catalog.write() as con:
            # Still running means never folded; otherwise (another process marked it killed
            # while its heartbeat stalled) fold again over what that fold wrote.
            # (fetchall: DuckDB 2 refuses register() while a result is not fully fetched)
            current = con.execute("SELECT status FROM runs WHERE id = ?", [run_id]).fetchall()
            self._fold(con, run_id, replace=not current or current[0][0] != RUNNING)
            con.execute(
                "UPDATE runs SET status = ?, error = ?, end_time = ? WHERE id = ?",
                [status, error, audit.now(), run_id],
            )
            audit.append(con, "run.end", f"run:{run_id}", {"status": status, "error": error})

    def _fold(self, con: duckdb.DuckDBPyConnection, run_id: str, replace: bool) -> None:
        """Move a run's files into the catalog.

        ``replace`` first removes what an earlier fold wrote; a first fold skips that,
        because deleting from ``metrics`` scans the whole table (it has no index).
        """
        import polars as pl

        d = self.project.store_dir / "runs" / run_id
        if replace:
            for table in ("params", "tags", "metrics", "metric_summary", "artifacts"):
                con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        for table, name in (("params", "params.json"), ("tags", "tags.json")):
            items = _read_json(d / name, {})
            if items:  # one statement (executemany runs one a row, ~1 ms each)
                con.execute(
                    f"INSERT INTO {table} SELECT ?, unnest(?::VARCHAR[]), unnest(?::VARCHAR[])",
                    [run_id, list(items), list(items.values())],
                )
        arts = _read_json(d / "artifacts.json", {})
        if arts:
            con.executemany(
                "INSERT INTO artifacts VALUES (?, ?, ?, ?, ?)",
                [[run_id, k, a["hash"], a["size"], a["kind"]] for k, a in arts.items()],
            )
            con.executemany(
                "INSERT OR IGNORE INTO objects VALUES (?, ?, ?, ?)",
                [[a["hash"], a["size"], "artifact", audit.now()] for a in arts.values()],
            )
        points = read_points(d / "metrics.tsv")
        if points is not None and points.height:
            store_points(
                con,
                points.with_columns(pl.lit(run_id).alias("run_id")).select(
                    "run_id", "key", "step", "value", "ts"
                ),
            )

    def _dead(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        """Running runs whose process is gone (this host) or whose heartbeat is stale."""
        host = socket.gethostname()
        dead = []
        for run_id, run_host, pid in con.execute(
            "SELECT id, host, pid FROM runs WHERE status = ?", [RUNNING]
        ).fetchall():
            beat = self.project.store_dir / "runs" / run_id / "heartbeat"
            try:
                age = time.time() - beat.stat().st_mtime
            except OSError:
                age = math.inf
            gone = run_host == host and pid is not None and not _pid_alive(pid)
            if gone or age > STALE_SECONDS:
                dead.append(run_id)
        return dead

    def _mark_killed(self, dead: list[str]) -> None:
        for run_id in dead:
            with self.project.catalog.write() as con:
                still = con.execute("SELECT status FROM runs WHERE id = ?", [run_id]).fetchall()
                if still and still[0][0] == RUNNING:
                    self._fold(con, run_id, replace=False)
                    con.execute(
                        "UPDATE runs SET status = ?, error = ?, end_time = ? WHERE id = ?",
                        [KILLED, "the process stopped without ending the run", audit.now(), run_id],
                    )
                    audit.append(con, "run.end", f"run:{run_id}", {"status": KILLED})

    @contextlib.contextmanager
    def _reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read connection on a reconciled catalog: one open in the common case."""
        for _ in range(2):
            with self.project.catalog.read() as con:
                dead = self._dead(con)
                if not dead:
                    yield con
                    return
            self._mark_killed(dead)
        with self.project.catalog.read() as con:
            yield con

    def reconcile(self) -> list[str]:
        """Mark runs whose process died as killed, keeping the points they flushed."""
        with self.project.catalog.read() as con:
            dead = self._dead(con)
        self._mark_killed(dead)
        return dead

    # ---- reading --------------------------------------------------------------------
    def resolve_id(self, ref: str, include_deleted: bool = True) -> str:
        with self.project.catalog.read() as con:
            return self._resolve_id(con, ref, include_deleted)

    def _resolve_id(
        self, con: duckdb.DuckDBPyConnection, ref: str, include_deleted: bool = True
    ) -> str:
        text = ref if ref.startswith("run:") else f"run:{ref}"
        parsed = parse_ref(text)
        rows = con.execute(
            "SELECT id FROM runs WHERE starts_with(id, ?)"
            + ("" if include_deleted else " AND deleted_at IS NULL"),
            [parsed.run_id],
        ).fetchall()
        if not rows:
            raise NotFoundError(
                f"no run with an id starting with {parsed.run_id} (see `workbench runs list`)"
            )
        if len(rows) > 1:
            raise UsageError(f"run:{parsed.run_id} matches {len(rows)} runs; give more hex digits")
        return rows[0][0]

    def get(self, ref: str) -> dict[str, Any]:
        with self._reading() as con:
            run_id = self._resolve_id(con, ref)
            row = con.execute(
                "SELECT id, experiment, name, status, error, start_time, end_time, host, pid, dataset, "
                "dataset_version, parent_id, deleted_at, environment, source FROM runs WHERE id = ?",
                [run_id],
            ).fetchone()
            params = dict(
                con.execute(
                    "SELECT key, value FROM params WHERE run_id = ? ORDER BY key", [run_id]
                ).fetchall()
            )
            tags = dict(
                con.execute(
                    "SELECT key, value FROM tags WHERE run_id = ? ORDER BY key", [run_id]
                ).fetchall()
            )
            summary = con.execute(
                "SELECT key, last, last_step, min, max, mean, count FROM metric_summary WHERE run_id = ? ORDER BY key",
                [run_id],
            ).fetchall()
            arts = con.execute(
                "SELECT path, hash, size, kind FROM artifacts WHERE run_id = ? ORDER BY path",
                [run_id],
            ).fetchall()
            children = [
                r[0]
                for r in con.execute(
                    "SELECT id FROM runs WHERE parent_id = ? ORDER BY start_time", [run_id]
                ).fetchall()
            ]
        keys = (
            "id",
            "experiment",
            "name",
            "status",
            "error",
            "start_time",
            "end_time",
            "host",
            "pid",
            "dataset",
            "dataset_version",
            "parent_id",
            "deleted_at",
            "environment",
            "source",
        )
        info = dict(zip(keys, row, strict=True))
        info["environment"] = json.loads(info["environment"]) if info["environment"] else {}
        if info["status"] == RUNNING:
            params = _read_json(self.project.store_dir / "runs" / run_id / "params.json", params)
            tags = _read_json(self.project.store_dir / "runs" / run_id / "tags.json", tags)
            summary = self._live_summary(run_id)
        end = info["end_time"] or audit.now()
        info["duration_s"] = (end - info["start_time"]).total_seconds()
        info["dataset_ref"] = (
            f"{info['dataset']}@{info['dataset_version']}" if info["dataset"] else None
        )
        info["params"] = params
        info["tags"] = tags
        info["metrics"] = {
            k: {"last": last, "step": step, "min": mn, "max": mx, "mean": mean, "count": n}
            for k, last, step, mn, mx, mean, n in summary
        }
        info["artifacts"] = [{"path": p, "hash": h, "size": s, "kind": k} for p, h, s, k in arts]
        info["children"] = children
        return info

    def _live_summary(self, run_id: str) -> list[tuple[Any, ...]]:
        import polars as pl

        pts = read_points(self.project.store_dir / "runs" / run_id / "metrics.tsv")
        if pts is None or not pts.height:
            return []
        finite = pl.col("value").filter(~pl.col("value").is_nan())
        agg = (
            pts.sort(["step", "ts"])
            .group_by("key", maintain_order=True)
            .agg(
                pl.col("value").last().alias("last"),
                pl.col("step").max().alias("step"),
                finite.min().alias("min"),
                finite.max().alias("max"),
                pl.col("value").filter(pl.col("value").is_finite()).mean().alias("mean"),
                pl.len().alias("n"),
            )
            .sort("key")
        )
        return list(agg.iter_rows())

    def history(self, ref: str, key: str) -> list[tuple[int, float]]:
        """Every (step, value) of one metric, from the live file while the run is running."""
        run_id = self.resolve_id(ref)
        with self.project.catalog.read() as con:
            status = con.execute("SELECT status FROM runs WHERE id = ?", [run_id]).fetchone()[0]
            if status != RUNNING:
                return [
                    (int(s), float(v))
                    for s, v in con.execute(
                        "SELECT step, value FROM metrics WHERE run_id = ? AND key = ? ORDER BY step, ts",
                        [run_id, key],
                    ).fetchall()
                ]
        import polars as pl

        pts = read_points(self.project.store_dir / "runs" / run_id / "metrics.tsv")
        if pts is None:
            return []
        sel = pts.filter(pl.col("key") == key).sort(["step", "ts"])
        return list(zip(sel["step"].to_list(), sel["value"].to_list(), strict=True))

    def list(
        self,
        experiment: str | None = None,
        filter: str | None = None,
        order_by: str | None = None,
        limit: int | None = 100,
        include_deleted: bool = False,
    ) -> list[dict[str, Any]]:
        """Runs matching a filter (see :mod:`workbench.core.search`), with params and metrics."""
        import duckdb

        from workbench.core.search import order_sql, where_sql

        where, args = where_sql(filter)
        order, order_args = order_sql(order_by)
        sql = (
            "SELECT r.id, r.experiment, r.name, r.status, r.start_time, r.end_time, r.dataset, "
            f"r.dataset_version, r.parent_id, r.deleted_at FROM runs r WHERE ({where})"
        )
        if experiment is not None:
            sql += " AND r.experiment = ?"
            args.append(experiment)
        if not include_deleted:
            sql += " AND r.deleted_at IS NULL"
        sql += f" ORDER BY {order}"
        args += order_args
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._reading() as con:
            try:
                rows = con.execute(sql, args).fetchall()
            except duckdb.Error as exc:
                raise UsageError(
                    f"the filter cannot be evaluated: {str(exc).splitlines()[0]}"
                ) from None
            ids = [r[0] for r in rows]
            params: dict[str, dict[str, str]] = {i: {} for i in ids}
            metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
            if ids:
                # params and metrics of the page in one statement: a statement costs ~1.5 ms
                # before it reads anything, and a list of runs is read on every keystroke
                for is_param, rid, k, v, last in con.execute(
                    "SELECT true, run_id, key, value, NULL::DOUBLE FROM params "
                    "WHERE run_id IN (SELECT unnest($1::VARCHAR[])) UNION ALL "
                    "SELECT false, run_id, key, NULL, last FROM metric_summary "
                    "WHERE run_id IN (SELECT unnest($1::VARCHAR[]))",
                    [ids],
                ).fetchall():
                    if is_param:
                        params[rid][k] = v
                    else:
                        metrics[rid][k] = last
        out = []
        now = audit.now()
        for rid, exp, name, status, start, end, ds, dv, parent, deleted in rows:
            out.append(
                {
                    "id": rid,
                    "ref": f"run:{rid[:8]}",
                    "experiment": exp,
                    "name": name,
                    "status": status,
                    "start_time": start,
                    "duration_s": ((end or now) - start).total_seconds(),
                    "dataset": f"{ds}@{dv}" if ds else None,
                    "parent_id": parent,
                    "deleted": deleted is not None,
                    "params": params[rid],
                    "metrics": metrics[rid],
                }
            )
        return out

    def metric_keys(self, ref: str) -> list[str]:
        return sorted(self.get(ref)["metrics"])

    # ---- editing ---------------------------------------------------------------------
    def set_tag(self, ref: str, key: str, value: str) -> None:
        run_id = self.resolve_id(ref)
        check_key(key, "tag")
        text = param_text(value)
        with self.project.catalog.write() as con:
            con.execute("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)", [run_id, key, text])
            audit.append(con, "run.tag", f"run:{run_id}", {"key": key, "value": text})

    def delete_tag(self, ref: str, key: str) -> None:
        run_id = self.resolve_id(ref)
        with self.project.catalog.write() as con:
            n = con.execute(
                "DELETE FROM tags WHERE run_id = ? AND key = ? RETURNING key", [run_id, key]
            ).fetchall()
            if not n:
                raise NotFoundError(f"run:{run_id[:8]} has no tag {key!r}")
            audit.append(con, "run.untag", f"run:{run_id}", {"key": key})

    def delete(self, ref: str) -> str:
        """Soft delete: hidden from listings, restorable with ``restore``."""
        run_id = self.resolve_id(ref)
        with self.project.catalog.write() as con:
            status, deleted = con.execute(
                "SELECT status, deleted_at FROM runs WHERE id = ?", [run_id]
            ).fetchone()
            if status == RUNNING:
                raise WorkbenchError(f"run:{run_id[:8]} is still running; stop it first")
            if deleted is None:
                con.execute("UPDATE runs SET deleted_at = ? WHERE id = ?", [audit.now(), run_id])
                audit.append(con, "run.delete", f"run:{run_id}", {})
        return run_id

    def restore(self, ref: str) -> str:
        run_id = self.resolve_id(ref)
        with self.project.catalog.write() as con:
            con.execute("UPDATE runs SET deleted_at = NULL WHERE id = ?", [run_id])
            audit.append(con, "run.restore", f"run:{run_id}", {})
        return run_id


def store_points(con: duckdb.DuckDBPyConnection, frame: Any) -> None:
    """Insert metric points (run_id, key, step, value, ts) and their per-key summary.

    The summary (last value by step then time, min/max without NaN, mean of finite
    values, count) is what filters and ordering read, so every writer of points must
    compute it the same way: runs as they end, and imported histories.
    """
    con.register("wb_points", frame.to_arrow())
    con.execute("INSERT INTO metrics SELECT run_id, key, step, value, ts FROM wb_points")
    con.execute(
        """
        INSERT INTO metric_summary
        SELECT run_id, key, last(value ORDER BY step, ts), max(step),
               min(value) FILTER (WHERE NOT isnan(value)),
               max(value) FILTER (WHERE NOT isnan(value)),
               avg(value) FILTER (WHERE isfinite(value)), count(*)
        FROM wb_points GROUP BY run_id, key
        """
    )
    con.unregister("wb_points")


def read_points(path: Path) -> Any:
    """A run's metric file as a frame (key, step, value, ts); a torn last line is ignored."""
    import polars as pl

    try:
        data = path.read_bytes()
    except OSError:
        return None
    end = data.rfind(b"\n")
    if end < 0:
        return pl.DataFrame(
            schema={
                "key": pl.String,
                "step": pl.Int64,
                "value": pl.Float64,
                "ts": pl.Datetime("ms"),
            }
        )
    raw = pl.read_csv(
        data[: end + 1],
        separator="\t",
        has_header=False,
        quote_char=None,
        new_columns=["key", "step", "value", "ts"],
        schema_overrides={"key": pl.String, "step": pl.Int64, "value": pl.String, "ts": pl.Int64},
    )
    keys = {k: json.loads(k) for k in raw["key"].unique().to_list()}
    return raw.select(
        pl.col("key").replace_strict(keys, return_dtype=pl.String),
        "step",
        pl.col("value").cast(pl.Float64),
        pl.col("ts").cast(pl.Datetime("ms")),
    )


@contextlib.contextmanager
def start_run(
    experiment: str = "default",
    dataset: str | None = None,
    name: str | None = None,
    project: Project | str | None = None,
    parent_id: str | None = None,
) -> Iterator[Run]:
    """``with workbench.start_run(experiment="churn", dataset="churn@3") as run: ...``"""
    from workbench.core.project import Project

    proj = project if isinstance(project, Project) else Project(project)
    run = proj.runs.start(
        experiment=experiment,
        name=name,
        dataset=dataset,
        parent_id=parent_id,
        source=sys.argv[0] if sys.argv and sys.argv[0] else None,
    )
    with run:
        yield run
