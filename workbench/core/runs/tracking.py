"""Runs: the Python tracking API and the catalog side of experiments.

A live run never opens the catalog. Its start and its end are each a small record
in the journal (``.workbench/journal/<id>.start|.end``); in between it appends
metric points to its own file (``.workbench/runs/<id>/points.bin``, flushed every
1,000 points or second) and keeps params, tags and artifacts in small JSON files
beside it. The next catalog operation of any process folds waiting records in, many
runs a transaction (:meth:`Runs.fold_journal`). So parallel runs never fight over
the catalog, a hundred short runs cost one transaction instead of two hundred, a
viewer can follow a live run by reading its file, and a run killed with SIGKILL is
found later (its process is gone, or its heartbeat is stale), marked ``killed``, and
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
import struct
import subprocess
import sys
import threading
import time
import traceback
import uuid
from array import array
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import NotFoundError, UsageError, WorkbenchError
from workbench.core.store import audit, objects
from workbench.core.store.objects import _pid_alive
from workbench.core.store.refs import check_name, parse_ref

if TYPE_CHECKING:
    import duckdb

    from workbench.core.project import Project

RUNNING, FINISHED, FAILED, KILLED = "running", "finished", "failed", "killed"
STATUSES = (RUNNING, FINISHED, FAILED, KILLED)
MAX_KEY = 250
MAX_VALUE = 6000
FLUSH_POINTS = 1000
FLUSH_SECONDS = 1.0
FLUSH_NS = int(FLUSH_SECONDS * 1e9)
_MIN_STEP, _MAX_STEP = -(2**63), 2**63 - 1
_time_ns = time.time_ns
HEARTBEAT_SECONDS = 5.0
STALE_SECONDS = 60.0
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A run's points file: blocks of a header (magic, points, number of the first key this
# block declares, bytes of those keys), the new keys as a JSON list, then the points as
# four native-order arrays: key number (u4), step (i8), value (f8), time in ms (i8).
POINTS_FILE = "points.bin"
POINTS_MAGIC = b"WBP1"
_BLOCK = struct.Struct("<4sIII")


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


# The runs columns a journal fold writes, with their DuckDB types.
_RUN_COLUMNS = {
    "id": "VARCHAR",
    "experiment": "VARCHAR",
    "name": "VARCHAR",
    "status": "VARCHAR",
    "error": "VARCHAR",
    "start_time": "TIMESTAMP",
    "end_time": "TIMESTAMP",
    "host": "VARCHAR",
    "pid": "INTEGER",
    "dataset": "VARCHAR",
    "dataset_version": "INTEGER",
    "parent_id": "VARCHAR",
    "environment": "JSON",
    "source": "VARCHAR",
}


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
        # Points wait in four typed arrays (key number, step, value, time) and go to
        # the file as one block a flush: appending to an array is the whole cost of
        # a point, where formatting it as text cost ~1 us more.
        self._keys: dict[str, int] = {}
        self._declared = 0  # keys already written to the file
        self._kix = array("I")
        self._steps = array("q")
        self._values = array("d")
        self._times = array("q")
        self._add_key, self._add_step = self._kix.append, self._steps.append
        self._add_value, self._add_time = self._values.append, self._times.append
        self._flush_by = time.time_ns() + FLUSH_NS  # wall clock: it is read for times anyway
        self._lock = threading.Lock()
        self._file = open(self.dir / POINTS_FILE, "ab")  # noqa: SIM115
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
        self._check_open()
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
        self._check_open()
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
        self._check_open()
        check_key(key, "tag")
        self.tags[key] = param_text(value)
        _write_json(self.dir / "tags.json", self.tags)

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        """Record a point. NaN and +-inf are kept (a diverging loss is information)."""
        k = self._keys.get(key)
        if k is None:
            k = self._new_key(key)
        # The hot path (a million calls in a long run): a float at an int step that
        # fits goes straight in; anything else is checked and converted first.
        if type(value) is not float or type(step) is not int or not _MIN_STEP <= step <= _MAX_STEP:
            value, step = self._checked(key, value, step)
        now = _time_ns()
        # No lock: each append is atomic, and a flush (heartbeat thread) takes only as
        # many points as the last array holds, so never a point half appended.
        self._add_key(k)
        self._add_step(step)
        self._add_value(value)
        self._add_time(now // 1_000_000)
        if now > self._flush_by or len(self._kix) >= FLUSH_POINTS:
            self.flush()

    @staticmethod
    def _checked(key: str, value: Any, step: Any) -> tuple[float, int]:
        """A metric point's value as a float and step as an int, or a clear refusal."""
        tv = type(value)
        if tv is bool or (tv is not int and not isinstance(value, numbers.Real)):
            raise UsageError(f"metric {key!r} must be a number, not {tv.__name__}")
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise UsageError(f"step of metric {key!r} must be an integer")
        try:
            v = float(value)
        except OverflowError:
            raise UsageError(f"metric {key!r}: {value} is too large for a float") from None
        step = int(step)
        if not _MIN_STEP <= step <= _MAX_STEP:
            raise UsageError(f"step of metric {key!r} must fit in 64 bits")
        return v, step

    def _check_open(self) -> None:
        if self._ended:
            raise UsageError(
                f"{self.ref} has ended: what is logged after its end would never be kept; "
                "log it before, or start a new run"
            )

    def _refuse_point(self, _: Any) -> None:
        self._check_open()

    def _new_key(self, key: str) -> int:
        """Check a metric key the first time it is logged and number it: the points
        file holds each key once and points refer to it by number."""
        check_key(key, "metric")
        with self._lock:
            return self._keys.setdefault(key, len(self._keys))

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        for k, v in metrics.items():
            self.log_metric(k, v, step)

    def log_curve(self, key: str, values: Any, steps: Any = None) -> None:
        """Record many points of one metric at once (a whole curve, or a batch of it).

        ``values`` and ``steps`` are sequences or numpy arrays of equal length; steps
        default to 0, 1, 2 …  This is the batch path, like MLflow's ``log_batch``: the
        checks and the copying are done over the arrays, not once a point, so a
        curve of 1,000 points costs about what a few ``log_metric`` calls do.
        """
        import numpy as np

        self._check_open()
        k = self._keys.get(key)
        if k is None:
            k = self._new_key(key)
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
            if raw.dtype.kind == "u" and len(raw) and int(raw.max()) >= 2**63:
                raise UsageError(f"steps of metric {key!r} must fit in 64 bits")
            step_arr = raw.astype(np.int64, copy=False)
        if not len(arr):
            return
        ts = time.time_ns() // 1_000_000
        with self._lock:
            self._kix.extend(array("I", [k]) * len(arr))
            self._steps.frombytes(step_arr.astype("=i8", copy=False).tobytes())
            self._values.frombytes(arr.astype("=f8", copy=False).tobytes())
            self._times.extend(array("q", [ts]) * len(arr))
            self._flush_locked()

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> str:
        """Copy a file into the object store; returns its hash."""
        src = Path(path)
        if not src.is_file():
            raise UsageError(f"no such file to log as an artifact: {src}")
        return self.log_bytes(name or src.name, src.read_bytes(), kind="file")

    def log_bytes(self, name: str, data: bytes, kind: str = "file") -> str:
        self._check_open()
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
        n = len(self._times)  # appended last: the other three hold at least n
        if n:
            names = list(self._keys)[self._declared :]
            keys = json.dumps(names, ensure_ascii=False).encode() if names else b""
            self._file.write(
                _BLOCK.pack(POINTS_MAGIC, n, self._declared, len(keys))
                + keys
                + self._kix[:n].tobytes()
                + self._steps[:n].tobytes()
                + self._values[:n].tobytes()
                + self._times[:n].tobytes()
            )
            self._declared += len(names)
            del self._kix[:n], self._steps[:n], self._values[:n], self._times[:n]
        self._file.flush()
        self._flush_by = time.time_ns() + FLUSH_NS

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
        self._add_key = self._refuse_point  # log_metric's first append: refused, free
        self._stop.set()
        with self._lock:
            self._flush_locked()
            os.fsync(self._file.fileno())
            self._file.close()
        self.project.runs._record(
            self.id,
            "end",
            {
                "status": status,
                "error": error,
                "end_time": audit.now().isoformat(),
                "actor": audit.actor(),
            },
        )

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
            raise objects.store_write_error(exc, run_dir) from None
        meta = {
            "experiment": experiment,
            "name": name,
            "start_time": audit.now().isoformat(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "dataset": ds_name,
            "dataset_version": ds_version,
            "parent_id": parent_id,
            "environment": environment(),
            "source": source,
            "actor": audit.actor(),
        }
        try:
            self._record(run_id, "start", meta)
        except BaseException:
            import shutil

            shutil.rmtree(run_dir, ignore_errors=True)  # no folder without its record
            raise
        return Run(self.project, run_id, experiment, name)

    # ---- the journal ------------------------------------------------------------------
    def _record(self, run_id: str, kind: str, data: dict[str, Any]) -> None:
        """Put a run's start or end in the journal, durably and whole: written beside
        the run, fsynced, renamed into ``journal/`` (the folder fsynced too), so a
        record is either complete or absent, and a crash right after ``end`` returns
        still loses nothing."""
        folder = self.project.catalog.journal
        tmp = self.project.store_dir / "runs" / run_id / f".{kind}.tmp"
        try:
            folder.mkdir(exist_ok=True)
            objects._write_durable(tmp, json.dumps(data, ensure_ascii=False).encode())
            os.replace(tmp, folder / f"{run_id}.{kind}")
            objects._fsync_dir(folder)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise objects.store_write_error(exc, folder) from None

    def fold_journal(self, max_runs: int = 500) -> int:
        """Fold the journal's records into the catalog; returns how many were folded.

        The catalog calls this before any operation when the journal holds records,
        so callers never need to. Records are grouped by run and folded ``max_runs``
        runs a transaction: each transaction re-reads the records and the rows it
        touches after taking the lock, so two processes folding at once, or a crash
        between a commit and the removal of its records, fold nothing twice.
        """
        from workbench.core.store.catalog import JOURNAL_SUFFIXES

        folder = self.project.catalog.journal
        try:
            names = [n for n in os.listdir(folder) if n.endswith(JOURNAL_SUFFIXES)]
        except OSError:
            return 0
        by_run: dict[str, set[str]] = {}
        for n in sorted(names):
            rid, kind = n.rsplit(".", 1)
            by_run.setdefault(rid, set()).add(kind)
        ids = list(by_run)
        folded = 0
        for i in range(0, len(ids), max_runs):
            chunk = {rid: by_run[rid] for rid in ids[i : i + max_runs]}
            with self.project.catalog.write() as con:
                done, bad = self._fold_records(con, chunk)
            for n in done:
                with contextlib.suppress(OSError):
                    (folder / n).unlink()
            for n in bad:  # kept for a person to look at, out of the way of every read
                with contextlib.suppress(OSError):
                    os.replace(folder / n, folder / f"{n}.unreadable")
            folded += len(done)
        return folded

    def _fold_records(
        self, con: duckdb.DuckDBPyConnection, chunk: dict[str, set[str]]
    ) -> tuple[list[str], list[str]]:
        """One transaction's share of :meth:`fold_journal`: (records folded, records
        that cannot be)."""
        folder = self.project.catalog.journal
        existing = dict(
            con.execute(
                "SELECT id, status FROM runs WHERE id IN (SELECT unnest(?::VARCHAR[]))",
                [list(chunk)],
            ).fetchall()
        )
        starts: dict[str, dict[str, Any]] = {}
        ends: dict[str, dict[str, Any]] = {}
        done: list[str] = []
        bad: list[str] = []
        for rid, kinds in chunk.items():
            for kind in sorted(kinds, reverse=True):  # start before end
                name = f"{rid}.{kind}"
                try:
                    data = json.loads((folder / name).read_text(encoding="utf-8"))
                    _ = data["status"] if kind == "end" else data["experiment"]
                except FileNotFoundError:
                    continue  # another process folded it a moment ago
                except (OSError, ValueError, KeyError, TypeError):
                    bad.append(name)
                    continue
                (starts if kind == "start" else ends)[rid] = data
                done.append(name)
        events: list[tuple[Any, str, str, str, dict[str, Any]]] = []
        new = {rid: m for rid, m in starts.items() if rid not in existing}
        for rid in [r for r in ends if r not in existing and r not in new]:
            done.remove(f"{rid}.end")  # its start was lost: nothing to attach it to
            bad.append(f"{rid}.end")
            del ends[rid]
        if new:
            cols: dict[str, list[Any]] = {c: [] for c in _RUN_COLUMNS}
            for rid, m in new.items():
                e = ends.get(rid, {})
                values = (
                    rid,
                    m["experiment"],
                    m.get("name"),
                    e.get("status", RUNNING),
                    e.get("error"),
                    datetime.fromisoformat(m["start_time"]),
                    datetime.fromisoformat(e["end_time"]) if e else None,
                    m.get("host"),
                    m.get("pid"),
                    m.get("dataset"),
                    m.get("dataset_version"),
                    m.get("parent_id"),
                    json.dumps(m.get("environment") or {}),
                    m.get("source"),
                )
                for c, v in zip(cols.values(), values, strict=True):
                    c.append(v)
                ds = m.get("dataset")
                events.append(
                    (
                        datetime.fromisoformat(m["start_time"]),
                        m.get("actor") or audit.actor(),
                        "run.start",
                        f"run:{rid}",
                        {
                            "experiment": m["experiment"],
                            "name": m.get("name"),
                            "dataset": f"{ds}@{m.get('dataset_version')}" if ds else None,
                        },
                    )
                )
            first_seen: dict[str, Any] = {}
            for exp, at in zip(cols["experiment"], cols["start_time"], strict=True):
                first_seen[exp] = min(at, first_seen.get(exp, at))
            con.execute(
                "INSERT OR IGNORE INTO experiments "
                "SELECT unnest(?::VARCHAR[]), unnest(?::TIMESTAMP[])",
                [list(first_seen), list(first_seen.values())],
            )
            con.execute(
                f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) SELECT "
                + ", ".join(f"unnest(?::{t}[])" for t in _RUN_COLUMNS.values()),
                list(cols.values()),
            )
        # An end folds the run's files. A row already ended means an earlier fold did
        # (a crash before its records were removed); a row marked killed means a reader
        # gave up on the run while its heartbeat stalled: fold again over that.
        fold = [r for r in ends if r in new or existing[r] in (RUNNING, KILLED)]
        replace = [r for r in fold if existing.get(r) == KILLED]
        self._fold_files(con, fold, replace)
        update = [r for r in fold if r not in new]
        if update:
            con.execute(
                "UPDATE runs SET status = e.status, error = e.error, end_time = e.end_time "
                "FROM (SELECT unnest(?::VARCHAR[]) AS id, unnest(?::VARCHAR[]) AS status, "
                "unnest(?::VARCHAR[]) AS error, unnest(?::TIMESTAMP[]) AS end_time) e "
                "WHERE runs.id = e.id",
                [
                    update,
                    [ends[r]["status"] for r in update],
                    [ends[r].get("error") for r in update],
                    [datetime.fromisoformat(ends[r]["end_time"]) for r in update],
                ],
            )
        for r in fold:
            e = ends[r]
            events.append(
                (
                    datetime.fromisoformat(e["end_time"]),
                    e.get("actor") or audit.actor(),
                    "run.end",
                    f"run:{r}",
                    {"status": e["status"], "error": e.get("error")},
                )
            )
        events.sort(key=lambda ev: ev[0])
        audit.append_many(con, events)
        return done, bad

    def _fold_files(
        self, con: duckdb.DuckDBPyConnection, run_ids: list[str], replace: list[str]
    ) -> None:
        """Move runs' files (params, tags, artifacts, points) into the catalog, a
        statement a table for all of them.

        ``replace`` first removes what an earlier fold wrote for those runs; a first
        fold skips that, because deleting from ``metrics`` scans the whole table.
        """
        import polars as pl

        if not run_ids:
            return
        if replace:
            for table in ("params", "tags", "metrics", "metric_summary", "artifacts"):
                con.execute(
                    f"DELETE FROM {table} WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
                    [replace],
                )
        root = self.project.store_dir / "runs"
        kv: dict[str, tuple[list[str], list[str], list[str]]] = {
            "params": ([], [], []),
            "tags": ([], [], []),
        }
        arts: list[list[Any]] = [[], [], [], [], []]
        objects: dict[str, int] = {}
        frames = []
        for rid in run_ids:
            d = root / rid
            for table, (ids, keys, values) in kv.items():
                items = _read_json(d / f"{table}.json", {})
                ids += [rid] * len(items)
                keys += list(items)
                values += list(items.values())
            for path, a in _read_json(d / "artifacts.json", {}).items():
                for col, v in zip(arts, (rid, path, a["hash"], a["size"], a["kind"]), strict=True):
                    col.append(v)
                objects[a["hash"]] = a["size"]
            points = read_points(d)
            if points is not None and points.height:
                frames.append(points.with_columns(pl.lit(rid).alias("run_id")))
        for table, cols in kv.items():
            if cols[0]:  # one statement (executemany runs one a row, ~1 ms each)
                con.execute(
                    f"INSERT INTO {table} SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                    "unnest(?::VARCHAR[])",
                    list(cols),
                )
        if arts[0]:
            con.execute(
                "INSERT INTO artifacts SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                "unnest(?::VARCHAR[]), unnest(?::BIGINT[]), unnest(?::VARCHAR[])",
                arts,
            )
            con.execute(
                "INSERT OR IGNORE INTO objects SELECT unnest(?::VARCHAR[]), "
                "unnest(?::BIGINT[]), 'artifact', ?",
                [list(objects), list(objects.values()), audit.now()],
            )
        if frames:
            store_points(
                con,
                pl.concat(frames, how="vertical").select("run_id", "key", "step", "value", "ts"),
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
        if not dead:
            return
        journal = self.project.catalog.journal
        with self.project.catalog.write() as con:
            rows = con.execute(
                "SELECT id FROM runs WHERE status = ? AND id IN (SELECT unnest(?::VARCHAR[]))",
                [RUNNING, dead],
            ).fetchall()
            # A run that ended after the journal was last read is not dead: the next
            # operation folds its end.
            killed = [r for (r,) in rows if not (journal / f"{r}.end").exists()]
            if not killed:
                return
            self._fold_files(con, killed, [])
            now = audit.now()
            error = "the process stopped without ending the run"
            con.execute(
                "UPDATE runs SET status = ?, error = ?, end_time = ? "
                "WHERE id IN (SELECT unnest(?::VARCHAR[]))",
                [KILLED, error, now, killed],
            )
            who = audit.actor()
            audit.append_many(
                con, [(now, who, "run.end", f"run:{r}", {"status": KILLED}) for r in killed]
            )

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

        pts = read_points(self.project.store_dir / "runs" / run_id)
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

        pts = read_points(self.project.store_dir / "runs" / run_id)
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
        """Runs matching a filter (see :mod:`workbench.core.runs.search`), with params and metrics."""
        import duckdb

        from workbench.core.runs.search import order_sql, where_sql

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


def _empty_points() -> Any:
    import polars as pl

    return pl.DataFrame(
        schema={"key": pl.String, "step": pl.Int64, "value": pl.Float64, "ts": pl.Datetime("ms")}
    )


def read_points(run_dir: Path) -> Any:
    """A run's metric points as a frame (key, step, value, ts), or None without a file.

    A block cut short (the process was killed while writing it) ends the read: every
    block before it is whole, since blocks are only ever appended. Runs written before
    the binary file keep their text file, ``metrics.tsv``, which is read as it was.
    """
    import numpy as np
    import polars as pl

    try:
        data = (run_dir / POINTS_FILE).read_bytes()
    except FileNotFoundError:
        return _read_points_tsv(run_dir / "metrics.tsv")
    except OSError:
        return None
    names: list[str] = []
    parts: list[tuple[np.ndarray, ...]] = []
    pos, size = 0, len(data)
    while pos + _BLOCK.size <= size:
        magic, n, first, klen = _BLOCK.unpack_from(data, pos)
        body = pos + _BLOCK.size
        stop = body + klen + 28 * n
        if magic != POINTS_MAGIC or first != len(names) or stop > size:
            break  # torn (or foreign) from here on
        if klen:
            names += json.loads(data[body : body + klen])
        at = body + klen
        kix = np.frombuffer(data, "=u4", n, at)
        at += 4 * n
        steps = np.frombuffer(data, "=i8", n, at)
        values = np.frombuffer(data, "=f8", n, at + 8 * n)
        times = np.frombuffer(data, "=i8", n, at + 16 * n)
        if n and int(kix.max()) >= len(names):
            break
        parts.append((kix, steps, values, times))
        pos = stop
    if not parts:
        return _empty_points()
    kix, steps, values, times = (np.concatenate(c) for c in zip(*parts, strict=True))
    return pl.DataFrame(
        {
            "key": pl.Series(names, dtype=pl.String).gather(kix),
            "step": steps,
            "value": values,
            "ts": pl.Series(times).cast(pl.Datetime("ms")),
        }
    )


def _read_points_tsv(path: Path) -> Any:
    """The text points file of runs written by earlier builds of 0.1: a torn last line
    is ignored."""
    import polars as pl

    try:
        data = path.read_bytes()
    except OSError:
        return None
    end = data.rfind(b"\n")
    if end < 0:
        return _empty_points()
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
