"""``workbench train``, ``workbench sweep`` and ``workbench rerun``: the commands that
start training runs (``runs_cmd`` reads and edits them afterwards)."""

from __future__ import annotations

from typing import Any

import click

from workbench.cli.context import Ctx, pass_ctx
from workbench.cli.output import console, echo, escape, fmt_num, json_option, print_json, table


def _params(items: tuple[str, ...]) -> dict[str, Any]:
    from workbench.core.errors import UsageError
    from workbench.core.runs.recipe import parse_value

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param takes KEY=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value)
    return out


@click.command()
@click.argument("dataset")
@click.option("--target", "-t", required=True, help="Column to predict.")
@click.option(
    "--model",
    "-m",
    "model",
    default=None,
    help="lightgbm, random_forest, extra_trees, hist_gb, logistic, linear, ridge.",
)
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Model parameter (repeatable).",
)
@click.option("--split", default=None, help="random:0.2 (default) or time:COLUMN[:0.2].")
@click.option("--seed", type=int, default=None, help="Random seed (default 42).")
@click.option(
    "--task",
    type=click.Choice(["binary", "multiclass", "regression"]),
    help="Default: inferred from the target.",
)
@click.option("--features", help="Comma-separated feature columns (default: all but the target).")
@click.option(
    "--experiment", "-e", default=None, help="Experiment name (default: the dataset's name)."
)
@click.option("--name", help="Run name.")
@json_option
@pass_ctx
def train(
    ctx: Ctx,
    dataset: str,
    target: str,
    model: str | None,
    params: tuple[str, ...],
    split: str | None,
    seed: int | None,
    task: str | None,
    features: str | None,
    experiment: str | None,
    name: str | None,
    as_json: bool,
) -> None:
    """Train a model on DATASET (e.g. churn@3) and track it as a run.

    Defaults for --model, --split, --seed and params can live in workbench.toml under [train].
    """
    from workbench.core.runs.recipe import recipe_for
    from workbench.core.runs.training import train as run_train

    project = ctx.project
    recipe = recipe_for(
        project,
        dataset,
        target,
        model=model,
        params=_params(params),
        split=split,
        seed=seed,
        task=task,
        features=[f.strip() for f in features.split(",")] if features else None,
        experiment=experiment,
        name=name,
    )
    run_id = run_train(project, recipe)
    info = project.runs.get(run_id)
    if as_json:
        print_json(info)
        return
    echo(
        f"Run run:{run_id[:8]} finished ({recipe.model} on {info.dataset_ref}, "
        f"{info.params.get('task')}, {info.duration_s:.1f}s)"
    )
    shown = {
        k: v for k, v in info.metrics.items() if not k.endswith("_curve") and k != "fit_seconds"
    }
    rows = [[k, fmt_num(v.last)] for k, v in sorted(shown.items())]
    console().print(table(None, ["metric", "value"], rows))
    from workbench.core.runs.training import model_size_note

    note = model_size_note(project.objects, info)
    if note:
        echo(f"model: {note}")


@click.command()
@click.argument("dataset")
@click.option("--target", "-t", required=True, help="Column to predict.")
@click.option("--model", "-m", "model", default="lightgbm", show_default=True)
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Fixed parameter (repeatable).",
)
@click.option(
    "--grid",
    "-g",
    multiple=True,
    metavar="KEY=V1,V2",
    help="Try every value (repeatable; combined).",
)
@click.option(
    "--random",
    "-r",
    "random_",
    multiple=True,
    metavar="KEY=LO:HI[:log]",
    help="Draw uniformly (or log-uniformly).",
)
@click.option(
    "--trials",
    "-n",
    type=click.IntRange(1),
    help="Number of trials (default: the whole grid, or 10).",
)
@click.option(
    "--parallel",
    "-j",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Trials at once, each in its own process.",
)
@click.option(
    "--backend",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Where trials run: processes here, or Ray tasks (pip install 'workbench[ray]').",
)
@click.option(
    "--address",
    metavar="auto|HOST:PORT",
    help="With --backend ray: the cluster to use (default: start Ray on this machine).",
)
@click.option("--metric", help="Pick the best by this metric (default val_auc / val_rmse).")
@click.option("--features", help="Comma-separated feature columns (default: all but the target).")
@click.option("--split", default="random:0.2", show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--experiment", "-e", default=None)
@click.option("--name", default=None, help="Parent run name (children get -1, -2, ...).")
@json_option
@pass_ctx
def sweep(
    ctx: Ctx,
    dataset: str,
    target: str,
    model: str,
    params: tuple[str, ...],
    grid: tuple[str, ...],
    random_: tuple[str, ...],
    trials: int | None,
    parallel: int,
    backend: str,
    address: str | None,
    metric: str | None,
    features: str | None,
    split: str,
    seed: int,
    experiment: str | None,
    name: str | None,
    as_json: bool,
) -> None:
    """Train many variants of a model as child runs of one parent run: as local
    processes, or with --backend ray as tasks on a Ray cluster (the store stays here;
    workers are sent the data and return what they fitted)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from workbench.core.runs.recipe import Recipe
    from workbench.core.runs.sweeps import parse_grid, parse_random
    from workbench.core.runs.sweeps import sweep as run_sweep
    from workbench.core.store.refs import parse_ref

    base = Recipe(
        dataset=dataset,
        target=target,
        model=model,
        params=_params(params),
        split=split,
        seed=seed,
        features=[f.strip() for f in features.split(",")] if features else None,
        experiment=experiment or parse_ref(dataset).name,
        name=name,
    )
    g, s = parse_grid(grid), parse_random(random_)
    failed = [0]
    with Progress(
        TextColumn("sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console(),
        disable=as_json,
    ) as bar:
        task = bar.add_task("", total=None)

        def on_trial(done: int, total: int, run_id: str | None, error: str | None) -> None:
            failed[0] += bool(error)
            bar.update(
                task,
                completed=done,
                total=total,
                description=f"{failed[0]} failed" if failed[0] else "",
            )

        result = run_sweep(
            ctx.project,
            base,
            g,
            s,
            n_trials=trials,
            parallel=parallel,
            metric=metric,
            on_trial=on_trial,
            backend=backend,
            address=address,
        )
    if as_json:
        print_json(result)
        return
    rows = []
    for t in result["trials"]:
        params_text = ", ".join(f"{k}={fmt_num(v)}" for k, v in t["params"].items())
        mark = " *" if result["best"] and t["run_id"] == result["best"]["run_id"] else ""
        rows.append(
            [
                t["trial"],
                f"run:{t['run_id'][:8]}" if t["run_id"] else "-",
                escape(params_text),
                fmt_num(t.get("score")) + mark
                if not t["error"]
                else f"[red]failed: {escape(t['error'][:60])}[/]",
            ]
        )
    console().print(
        table(
            f"Sweep run:{result['parent_id'][:8]} ({result['metric']}, * best)",
            ["#", "run", "params", result["metric"]],
            rows,
        )
    )
    if result["best"]:
        echo(
            f"Best: run:{result['best']['run_id'][:8]} {result['metric']} = {fmt_num(result['best']['score'])}"
        )
    else:
        from workbench.core.errors import WorkbenchError

        raise WorkbenchError("every trial of the sweep failed")


@click.command()
@click.argument("run_ref")
@json_option
@pass_ctx
def rerun(ctx: Ctx, run_ref: str, as_json: bool) -> None:
    """Train RUN_REF again from its recorded recipe and check the metrics match."""
    import sys

    from workbench.core.runs.sweeps import rerun as do_rerun

    r = do_rerun(ctx.project, run_ref)
    if as_json:
        print_json(r)
    else:
        rows = [
            [
                m["metric"],
                fmt_num(m["original"]),
                fmt_num(m["rerun"]),
                "[green]yes[/]" if m["match"] else "[red]NO[/]",
            ]
            for m in r["metrics"]
        ]
        console().print(
            table(
                f"run:{r['original'][:8]} re-run as run:{r['rerun'][:8]}",
                ["metric", "original", "rerun", "match"],
                rows,
            )
        )
        echo(
            "Reproduced: every metric matches"
            if r["reproduced"]
            else "NOT reproduced: metrics differ"
        )
    if not r["reproduced"]:
        sys.exit(1)
