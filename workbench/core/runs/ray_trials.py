"""A sweep's trials as Ray tasks, on this machine or a cluster (``workbench[ray]``).

The driver (the `workbench sweep` process) keeps the store; workers never see it,
so they may run on machines that have no project at all (only workbench installed).
The driver prepares the data once (read, checked, split, encoded) and puts it in Ray's
object store: NumPy arrays, which Ray hands to every worker on a node without a copy.
Each trial's run is started by the driver as the trial is submitted, so the app shows
it running; the worker fits, sends its curve points back through a Ray queue in
batches as it goes (the driver logs them into the live run), and returns the fitted
model and its scores, which the driver records exactly as `workbench train` does.

A trial whose worker dies (a killed process, a lost node) ends ``killed``; one whose fit
raises ends ``failed`` with the error; Ctrl-C cancels every trial still running and
ends their runs ``killed``. Ray does not retry a trial (``max_retries=0``): a retried
fit would train twice and hide the death from the record.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from workbench.core.errors import StoreError, UsageError
from workbench.core.runs.recording import log_outcome, start_run
from workbench.core.runs.run import FAILED, FINISHED, KILLED

if TYPE_CHECKING:
    from workbench.core.project import Project
    from workbench.core.runs.recipe import Recipe

SHIPPED = ("task", "features", "classes", "x_train", "y_train", "x_val", "y_val")
_BATCH_POINTS = 500
_BATCH_SECONDS = 0.5


class _Curves:
    """Stands in for the live run on a worker: ``fit`` logs curve points to it, and it
    sends them to the driver in batches (a queue round trip per point would cost more
    than the point)."""

    def __init__(self, queue: Any, trial: int) -> None:
        self.queue, self.trial = queue, trial
        self.points: list[tuple[str, float, int | None]] = []
        self.sent = time.monotonic()

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        self.points.append((key, value, step))
        if len(self.points) >= _BATCH_POINTS or time.monotonic() - self.sent > _BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.points:
            self.queue.put((self.trial, self.points))
            self.points = []
        self.sent = time.monotonic()


def fit_trial(
    recipe: dict[str, Any], data: dict[str, Any], queue: Any, trial: int
) -> tuple[Any, ...]:
    """One trial on a worker: the fit, and where it ran."""
    import ray

    from workbench.core.runs.recipe import Recipe
    from workbench.core.runs.training import fit

    curves = _Curves(queue, trial)
    outcome = fit(Recipe(**recipe), data, curves)
    curves.flush()  # before returning: the driver sees every point before the outcome
    return (*outcome, ray.get_runtime_context().get_node_id())


def connect(address: str | None) -> Any:
    """Ray, joined to the cluster at ``address`` or started here; called before a sweep
    records anything, so that a missing Ray or an unreachable cluster leaves no run."""
    try:
        import ray
    except ImportError:
        raise UsageError("--backend ray needs Ray: pip install 'workbench[ray]'") from None
    import logging

    _reachable(address)
    try:
        # A cluster of our own stays on loopback: nothing is exposed, and nothing waits
        # on an interface the machine cannot reach itself through (5 s timeouts here).
        local: dict[str, Any] = {} if address else {"_node_ip_address": "127.0.0.1"}
        ray.init(
            # "local": a cluster of our own even when a stale /tmp/ray file names one
            # that died (address=None would try to join it, and hang)
            address=address or "local",
            **local,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
            configure_logging=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = {None: "on this machine", "auto": "(address auto)"}.get(address, f"at {address}")
        text = " ".join(str(exc).split())[:200]
        raise StoreError(f"cannot reach a Ray cluster {where}: {text}") from None
    return ray


def _reachable(address: str | None) -> None:
    """Refuse in seconds an address nothing answers on: Ray itself retries an unreachable
    cluster for minutes before it gives up. ``auto`` is the address `ray start` wrote
    here (a stale one, of a cluster that died, is caught the same way)."""
    import socket
    import tempfile
    from pathlib import Path

    where = address
    if address == "auto":
        try:
            where = (
                (Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster").read_text().strip()
            )
        except OSError:
            raise StoreError(
                "no Ray cluster runs on this machine (`ray start --head` makes one)"
            ) from None
    if not where:
        return
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address takes auto or HOST:PORT, not {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise StoreError(f"cannot reach a Ray cluster at {where}: {why}") from None


def _cpus(recipe: Recipe) -> int:
    n = recipe.params.get("n_jobs")
    return n if isinstance(n, int) and n > 0 else 1


def _why(exc: BaseException) -> tuple[str, str]:
    """(the run's status, its error) for what ``ray.get`` raised."""
    from ray import exceptions as rx

    if isinstance(exc, rx.RayTaskError):
        cause = exc.cause if isinstance(exc.cause, BaseException) else exc
        from workbench.core.errors import WorkbenchError

        if isinstance(cause, WorkbenchError):
            return FAILED, cause.message
        return FAILED, f"{type(cause).__name__}: {' '.join(str(cause).split())[:500]}"
    return KILLED, f"its Ray worker died ({type(exc).__name__})"


def run_on_ray(
    ray: Any,
    project: Project,
    recipes: list[Recipe],
    data: dict[str, Any],
    parent_id: str,
    on_trial: Callable[[int, int, str | None, str | None], None] | None = None,
) -> list[tuple[str | None, str | None]]:
    """Run every recipe as a Ray task on the connected ``ray``, then shut it down;
    returns (run id, error or None) per recipe."""
    import sys

    # Ray prints what its nodes report (a worker that died, …) on the driver's stdout,
    # where it would break `--json`: it goes to stderr, where a user still sees it.
    with contextlib.redirect_stdout(sys.stderr):
        return _run(ray, project, recipes, data, parent_id, on_trial)


def _run(
    ray: Any,
    project: Project,
    recipes: list[Recipe],
    data: dict[str, Any],
    parent_id: str,
    on_trial: Callable[[int, int, str | None, str | None], None] | None,
) -> list[tuple[str | None, str | None]]:
    from ray.util.queue import Queue

    live: dict[Any, tuple[int, Any]] = {}
    results: list[tuple[str | None, str | None]] = [(None, None)] * len(recipes)
    runs: dict[int, Any] = {}

    def drain(queue: Any) -> None:
        with contextlib.suppress(Exception):  # an empty queue says so by raising
            for trial, points in queue.get_nowait_batch(queue.qsize()):
                run = runs.get(trial)
                if run is not None:
                    for key, value, step in points:
                        run.log_metric(key, value, step=step)

    try:
        task = ray.remote(max_retries=0)(fit_trial)
        data_ref = ray.put({k: data[k] for k in SHIPPED})
        queue = Queue()
        for i, recipe in enumerate(recipes):
            run = runs[i] = start_run(project, recipe, data, parent_id)
            ref = task.options(num_cpus=_cpus(recipe)).remote(asdict(recipe), data_ref, queue, i)
            live[ref] = (i, run)
        done = 0
        while live:
            ready, _ = ray.wait(list(live), num_returns=1, timeout=0.25)
            drain(queue)
            for ref in ready:
                i, run = live.pop(ref)
                try:
                    *outcome, node = ray.get(ref)
                except Exception as exc:
                    status, error = _why(exc)
                    run.end(status, error)
                    results[i] = (run.id, error)
                else:
                    try:
                        run.set_tag("ray.node", str(node)[:12])
                        log_outcome(run, recipes[i], data, tuple(outcome))
                    except Exception as exc:  # the driver could not record it (a full disk)
                        run.__exit__(type(exc), exc, exc.__traceback__)
                        raise
                    run.end(FINISHED)
                    results[i] = (run.id, None)
                runs.pop(i, None)
                done += 1
                if on_trial:
                    on_trial(done, len(recipes), results[i][0], results[i][1])
    except BaseException as exc:
        why = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else "the sweep stopped"
        for ref, (_, run) in live.items():
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
            run.end(KILLED, why)
        raise
    finally:
        ray.shutdown()
    return results
