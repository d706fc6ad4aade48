"""Sweeps and re-runs: many recipes, each an ordinary tracked run.

A sweep is a parent run with one child run per trial. Trials run in separate
processes (``parallel`` at a time); a failing trial is recorded as a failed
child run and the sweep goes on. The best child is chosen on a metric.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import multiprocessing
import os
import random
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from workbench.core.errors import UsageError
from workbench.core.runs.recipe import Recipe, parse_value
from workbench.core.runs.records import lower_is_better
from workbench.core.runs.training import train

if TYPE_CHECKING:
    from workbench.core.project import Project

THREADED = ("lightgbm", "random_forest", "extra_trees")  # models that take n_jobs


def die_with_sweep(sweep_pid: int) -> None:
    """A trial's process goes when the sweep's does. Without this a ``kill -9`` of the
    sweep left its workers training on as orphans, their runs shown running long after
    the command was gone. A trial's parent is the fork server, not the sweep (and the
    fork server stays while a trial holds its pipe), so the worker watches the sweep's
    process itself: a thread waits on a pidfd for it (Linux 5.3+) and kills the worker
    the moment it ends; elsewhere a worker finishes its trial, then finds the sweep gone
    and exits."""
    import select
    import signal
    import threading

    try:
        watched = os.pidfd_open(sweep_pid)
    except ProcessLookupError:  # gone already
        os.kill(os.getpid(), signal.SIGKILL)
    except (AttributeError, OSError):
        return

    def watch() -> None:
        select.select([watched], [], [])
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="die-with-sweep", daemon=True).start()


# What a trial imports, loaded once by the fork server that every trial's process is
# forked from: a process spawned for each trial spent ~2 s importing these first.
TRIAL_PRELOAD = [
    "workbench.core.project", "workbench.core.runs.training", "workbench.core.runs.families",
    "polars", "duckdb", "lightgbm", "sklearn.ensemble", "sklearn.linear_model",
    "sklearn.metrics", "sklearn.model_selection", "sklearn.pipeline", "sklearn.preprocessing",
]  # fmt: skip


def _trial_context() -> multiprocessing.context.BaseContext:
    """Trials start in processes forked from a fork server: a fresh interpreter (not a
    fork of this one, whose threads and open catalog a fork would copy) that has
    imported what a trial needs, started by the first sweep and reused by the next ones
    in this process. Where there is no fork server (Windows), a trial is spawned."""
    try:
        ctx = multiprocessing.get_context("forkserver")
    except ValueError:
        return multiprocessing.get_context("spawn")
    ctx.set_forkserver_preload(TRIAL_PRELOAD)
    return ctx


def parse_grid(items: tuple[str, ...] | list[str]) -> dict[str, list[Any]]:
    """``k=a,b,c`` -> {k: [a, b, c]}"""
    grid = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise UsageError(f"--grid takes KEY=V1,V2,..., got {item!r}")
        grid[key.strip()] = [parse_value(v) for v in values.split(",")]
    return grid


def parse_random(items: tuple[str, ...] | list[str]) -> dict[str, tuple[float, float, bool]]:
    """``k=lo:hi`` (uniform) or ``k=lo:hi:log`` -> {k: (lo, hi, log)}; ints stay ints."""
    space = {}
    for item in items:
        key, sep, rng = item.partition("=")
        parts = rng.split(":")
        if not sep or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
            raise UsageError(f"--random takes KEY=LOW:HIGH[:log], got {item!r}")
        lo, hi = parse_value(parts[0]), parse_value(parts[1])
        if not isinstance(lo, int | float) or not isinstance(hi, int | float) or lo >= hi:
            raise UsageError(f"--random {key}: LOW and HIGH must be numbers with LOW < HIGH")
        if len(parts) == 3 and lo <= 0:
            raise UsageError(f"--random {key}: a log range needs LOW > 0")
        space[key.strip()] = (lo, hi, len(parts) == 3)
    return space


def trials(
    grid: dict[str, list[Any]],
    space: dict[str, tuple[float, float, bool]],
    n: int | None,
    seed: int,
) -> list[dict[str, Any]]:
    """Grid points (all of them, or ``n`` sampled), each with random-space draws."""
    import math

    points = [
        dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())
    ] or [{}]
    rng = random.Random(seed)
    if n is None:
        n = len(points) if grid or not space else 10
    chosen = (
        points if n >= len(points) and not space else [points[i % len(points)] for i in range(n)]
    )
    if n < len(points):
        chosen = rng.sample(points, n)
    out = []
    for p in chosen:
        q = dict(p)
        for key, (lo, hi, log) in space.items():
            v = math.exp(rng.uniform(math.log(lo), math.log(hi))) if log else rng.uniform(lo, hi)
            q[key] = round(v) if isinstance(lo, int) and isinstance(hi, int) else v
        out.append(q)
    return out


def sweep(
    project: Project,
    base: Recipe,
    grid: dict[str, list[Any]],
    space: dict[str, tuple[float, float, bool]],
    n_trials: int | None = None,
    parallel: int = 1,
    metric: str | None = None,
    on_trial: Callable[[int, int, str | None, str | None], None] | None = None,
    backend: str = "local",
    address: str | None = None,
) -> dict[str, Any]:
    """Run a sweep; returns the parent id, children and the best child.

    ``backend="ray"`` runs the trials as Ray tasks (on the cluster at ``address``, or
    one started on this machine) instead of local processes; see ray_trials."""
    base.check()
    if parallel < 1:
        raise UsageError("--parallel must be at least 1")
    if backend not in ("local", "ray"):
        raise UsageError(f"--backend is local or ray, not {backend!r}")
    if address and backend != "ray":
        raise UsageError("--address is for --backend ray")
    points = trials(grid, space, n_trials, base.seed)
    from workbench.core.runs.families import check_params

    check_params(base.model, [*grid, *space])  # a misspelt key would ignore every trial
    if len(points) > 1000:
        raise UsageError(
            f"the sweep has {len(points)} trials; at most 1000 (use --trials to sample)"
        )
    from workbench.core.runs.training import prepare

    data = prepare(project, base)  # fail fast on a bad recipe, before any run starts
    ray = None
    if backend == "ray":  # Ray missing or the cluster unreachable: still no run
        from workbench.core.runs.ray_trials import connect

        ray = connect(address)
    task = data["task"]
    metric = metric or ("val_rmse" if task == "regression" else "val_auc")
    lower = lower_is_better(metric)
    parent = project.runs.start(
        experiment=base.experiment,
        name=base.name or "sweep",
        dataset=data["version"].ref,
        source="workbench sweep",
    )
    results: list[dict[str, Any]] = []
    try:
        parent.log_params(
            {
                "sweep.model": base.model,
                "sweep.trials": len(points),
                "sweep.grid": json.dumps(grid),
                "sweep.random": json.dumps(space),
                "sweep.metric": metric,
                "target": base.target,
                "dataset": data["version"].ref,
            }
        )
        # Trials in parallel share the cores: each gets its slice of threads, since
        # OpenMP pools that together ask for more threads than cores slow each other down.
        threads = {}
        if base.model in THREADED and "n_jobs" not in base.params:
            if backend == "ray":  # each task holds one CPU of the cluster
                threads = {"n_jobs": 1}
            elif parallel > 1:
                threads = {"n_jobs": max(1, (os.cpu_count() or 1) // parallel)}
        recipes = []
        for i, p in enumerate(points):
            r = asdict(base)
            r["params"] = {**threads, **base.params, **p}
            r["name"] = f"{base.name or 'sweep'}-{i + 1}"
            recipes.append(r)
        if ray is not None:
            from workbench.core.runs.ray_trials import run_on_ray

            parent.log_params({"sweep.backend": "ray"})
            outcomes = run_on_ray(
                ray, project, [Recipe(**r) for r in recipes], data, parent.id, on_trial
            )
        else:
            outcomes = _run_local(project, recipes, parent.id, parallel, on_trial)
        for i, (run_id, error) in enumerate(outcomes):
            results.append({"trial": i + 1, "run_id": run_id, "error": error, "params": points[i]})
        scores = []
        for r in results:
            if r["run_id"]:
                r["score"] = project.runs.get(r["run_id"]).last(metric)
                if r["score"] is not None:
                    scores.append(r)
        best = (min if lower else max)(scores, key=lambda r: r["score"]) if scores else None
        failed = sum(1 for r in results if r["error"])
        parent.log_metrics({"trials_finished": len(results) - failed, "trials_failed": failed})
        if best:
            parent.log_metric(f"best_{metric}", best["score"])
            parent.set_tag("best_run", best["run_id"])
    except BaseException:
        parent.end("failed", "the sweep was interrupted")
        if ray is not None:
            ray.shutdown()  # run_on_ray's own, or one it never reached (shutting twice is fine)
        raise
    parent.end("finished" if best else "failed", None if best else "every trial failed")
    return {
        "parent_id": parent.id,
        "metric": metric,
        "trials": sorted(results, key=lambda r: r["trial"]),
        "best": best,
    }


def _run_local(
    project: Project,
    recipes: list[dict[str, Any]],
    parent_id: str,
    parallel: int,
    on_trial: Callable[[int, int, str | None, str | None], None] | None,
) -> list[tuple[str | None, str | None]]:
    """Each trial in a process of its own, ``parallel`` at a time: (run id, error) each."""
    out: list[tuple[str | None, str | None]] = [(None, None)] * len(recipes)
    ctx = _trial_context()
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=parallel,
        mp_context=ctx,
        initializer=die_with_sweep,
        initargs=(os.getpid(),),
    ) as pool:
        futures = {
            pool.submit(project.train_in_child, str(project.root), r, parent_id): i
            for i, r in enumerate(recipes)
        }
        for done, fut in enumerate(concurrent.futures.as_completed(futures), start=1):
            run_id, error = out[futures[fut]] = fut.result()
            if on_trial:
                on_trial(done, len(recipes), run_id, error)
    return out


def _param_value(text: str) -> Any:
    """Params were stored as JSON unless they were strings (see run.param_text)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def recipe_of(project: Project, ref: str) -> Recipe:
    """The recipe a run was trained with, from its params."""
    info = project.runs.get(ref)
    p = info.params
    if info.source != "workbench train" or "model" not in p or "target" not in p:
        raise UsageError(
            f"{info.ref} was not made by `workbench train`; only such runs can be re-run"
        )
    model_params = {
        k[len("model.") :]: _param_value(v) for k, v in p.items() if k.startswith("model.")
    }
    for k in ("random_state", "verbose"):
        model_params.pop(k, None)
    from workbench.core.runs.recording import ALL_FEATURES, FEATURES_FILE

    features = None
    if p.get("features") == FEATURES_FILE:
        art = next(a for a in info.artifacts if a.path == FEATURES_FILE)
        features = json.loads(project.objects.read_bytes(art.hash, f"{info.ref}'s {FEATURES_FILE}"))
    elif p.get("features") not in (None, ALL_FEATURES):
        features = json.loads(p["features"])
    return Recipe(
        dataset=p["dataset"],
        target=p["target"],
        model=p["model"],
        params=model_params,
        split=p["split"],
        seed=int(p["seed"]),
        task=p.get("task"),
        features=features,
        experiment=info.experiment,
        name=f"rerun of {info.id[:8]}",
    )


def rerun(project: Project, ref: str, tolerance: float = 1e-9) -> dict[str, Any]:
    """Train again from a run's recipe and say whether every metric matches."""
    original = project.runs.get(ref)
    new_id = train(project, recipe_of(project, ref), tags={"rerun_of": original.id})
    again = project.runs.get(new_id)
    rows, same = [], True
    for key, m in sorted(original.metrics.items()):
        if key == "fit_seconds" or key.endswith("_curve"):
            continue
        new = again.last(key)
        match = new is not None and abs(new - m.last) <= tolerance * max(1.0, abs(m.last))
        same = same and match
        rows.append({"metric": key, "original": m.last, "rerun": new, "match": match})
    return {"original": original.id, "rerun": new_id, "reproduced": same, "metrics": rows}
