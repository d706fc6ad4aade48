"""``workbench pipeline run|watch|list``: the continuous-training loop of workbench.toml."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from workbench.cli.context import Ctx, pass_ctx
from workbench.cli.output import console, echo, escape, print_json, table

MARK = {"ok": "[green]✓[/]", "stop": "[yellow]■[/]", "fail": "[red]✗[/]"}
OUTCOME = {
    "promoted": "[green]promoted[/]",
    "kept": "[yellow]kept the champion[/]",
    "no_retrain": "no retraining needed",
    "refused": "[red]batch refused[/]",
    "failed": "[red]failed[/]",
    "already": "already processed: nothing to do",
}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def pipeline() -> None:
    """Continuous training: [pipeline.NAME] in workbench.toml, from new batch to promotion."""


def _print_step(step: object) -> None:
    s = step  # a pipeline Step
    console().print(
        f"  {MARK.get(s.status, '?')} {s.step:<9} {escape(s.detail)} [dim]{s.seconds:.1f}s[/]",  # type: ignore[attr-defined]
        highlight=False,
    )


@pipeline.command("run")
@click.argument("name")
@click.option(
    "--batch", "batch", required=True, type=click.Path(dir_okay=False), help="The new batch file."
)
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@pass_ctx
def run_cmd(ctx: Ctx, name: str, batch: str, as_json: bool) -> None:
    """Run pipeline NAME once on a new BATCH, step by step.

    Exit code 0 when the loop ran to a decision (promoted, kept the champion, no
    retraining needed), 1 when a step failed or the batch was refused by its checks.
    """
    from workbench.app.pipeline import Pipeline

    pipe = Pipeline(ctx.project, name)
    with console().status("", spinner="dots") as status:
        result = pipe.run(
            batch,
            on_step=lambda s: status.update(f"{s}…") if not as_json else None,
            on_done=None if as_json else _print_step,
        )
    if as_json:
        print_json(result.to_dict())
    elif result.outcome == "already":
        console().print(f"{escape(result.reason)}")
    else:
        console().print(f"{name}: {OUTCOME[result.outcome]} (pipeline run {result.id[:8]})")
    if result.outcome in ("failed", "refused"):
        sys.exit(1)


@pipeline.command("watch")
@click.argument("name")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--interval", default=2.0, show_default=True, help="Seconds between looks.")
@click.option("--once", is_flag=True, help="Process what is there now, then exit.")
@pass_ctx
def watch_cmd(ctx: Ctx, name: str, folder: str, interval: float, once: bool) -> None:
    """Run pipeline NAME on every batch file that appears in FOLDER (ctrl+c stops)."""
    from workbench.app.watch import watch

    def report(path: Path, run: object) -> None:
        r = run  # a PipelineRun
        when = time.strftime("%H:%M:%S")
        console().print(
            f"{when} {escape(path.name)}: {OUTCOME[r.outcome]} [dim]({escape(r.reason)})[/]",  # type: ignore[attr-defined]
            highlight=False,
        )

    if not once:
        console().print(f"Watching {folder} for batches for {name} (ctrl+c stops)")
    try:
        n = watch(ctx.project, name, folder, report, interval=interval, once=once)
    except KeyboardInterrupt:
        return
    if once:
        console().print(f"{n} batch(es) processed")


@pipeline.command("list")
@click.argument("name", required=False)
@click.option("-n", "--limit", default=20, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_ctx
def list_cmd(ctx: Ctx, name: str | None, limit: int, as_json: bool) -> None:
    """The latest runs of pipeline NAME, newest first, with the step that decided each;
    without NAME, each pipeline of workbench.toml and how its last run ended."""
    from workbench.app.pipeline import Pipeline

    if name is None:
        _list_pipelines(ctx, as_json)
        return
    rows = Pipeline(ctx.project, name).history(limit)
    if as_json:
        print_json([r.to_dict() for r in rows])
        return
    out = []
    for r in rows:
        last = r.steps[-1] if r.steps else {"step": "-", "detail": ""}
        out.append(
            [
                r.id[:8],
                f"{r.started_at:%Y-%m-%d %H:%M}",
                escape(r.batch),
                OUTCOME.get(r.outcome, r.outcome),
                escape(f"{last['step']}: {last['detail']}"),
            ]
        )
    console().print(
        table(f"Pipeline {name}", ["run", "started (UTC)", "batch", "outcome", "why"], out)
    )
    if not rows:
        echo(f"No runs yet: `workbench pipeline run {name} --batch FILE` runs it once")


def _list_pipelines(ctx: Ctx, as_json: bool) -> None:
    project = ctx.project
    declared = project.settings.pipelines
    last = {name: project.pipeline_runs.history(name, 1) for name in declared}
    if as_json:
        print_json([
            {"name": name, "dataset": cfg.dataset, "model": f"{cfg.model}@{cfg.alias}",
             "retrain": cfg.retrain, "last": last[name][0].to_dict() if last[name] else None}
            for name, cfg in declared.items()
        ])  # fmt: skip
        return
    if not declared:
        echo("No pipelines: declare one as [pipeline.NAME] in workbench.toml (docs/pipeline.md)")
        return
    rows = []
    for name, cfg in declared.items():
        run = last[name][0] if last[name] else None
        rows.append([
            escape(name), escape(cfg.dataset), escape(f"{cfg.model}@{cfg.alias}"),
            escape(cfg.retrain),
            f"{run.started_at:%Y-%m-%d %H:%M}" if run else "-",
            (OUTCOME.get(run.outcome, run.outcome) + f" ({escape(run.batch)})") if run else "never run",
        ])  # fmt: skip
    console().print(
        table(
            "Pipelines",
            ["name", "dataset", "model", "retrain on", "last run (UTC)", "outcome"],
            rows,
        )
    )
