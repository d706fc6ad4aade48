"""A live run: what ``start_run`` and ``project.runs.start`` hand back, and the only
code that writes while a run is alive.

A live run never opens the catalog. Params, tags and artifacts go to small JSON files in
its folder (``.workbench/runs/<id>/``), metric points to its points file (flushed every
1,000 points or second), and its end to the journal, which the next catalog operation of
any process folds in (see ``journal.py``). A heartbeat file shows it is alive.
"""

from __future__ import annotations

import contextlib
import functools
import json
import numbers
import os
import platform
import subprocess
import sys
import threading
import time
import traceback
from array import array
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import UsageError
from workbench.core.runs.points import BLOCK, POINTS_FILE, POINTS_MAGIC
from workbench.core.store import audit
from workbench.core.text import NOT_IN_KEYS

if TYPE_CHECKING:
    from workbench.core.store.objects import ObjectStore

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
_CONTROL = NOT_IN_KEYS  # controls and invisible or bidi characters


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


def read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


class Run:
    """A live run. Use as a context manager: an exception marks it failed."""

    def __init__(
        self,
        objects: ObjectStore,
        run_dir: Path,
        record: Callable[[str, str, dict[str, Any]], None],
        experiment: str,
        name: str | None,
    ) -> None:
        """``record(run_id, kind, data)`` puts the run's end in the journal."""
        self._objects = objects
        self._record = record
        self.id = run_dir.name
        self.experiment = experiment
        self.name = name
        self.dir = run_dir
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
            target=self._heartbeat, name=f"wb-heartbeat-{self.id[:8]}", daemon=True
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
        digest = self._objects.put_bytes(data)
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
                BLOCK.pack(POINTS_MAGIC, n, self._declared, len(keys))
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
        self._record(
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
