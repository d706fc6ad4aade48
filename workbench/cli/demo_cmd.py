"""`workbench demo [DIR]`: build a sample project with the whole lifecycle, then open it."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import click

from workbench.cli.output import console


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.option(
    "--sample",
    type=click.Choice(["flights", "bikes"]),
    default="flights",
    show_default=True,
    help="flights: will a flight be late (classification); bikes: rentals per hour (regression).",
)
@click.option("--no-ui", is_flag=True, help="Build the project but do not open the app.")
def demo(directory: str | None, sample: str, no_ui: bool) -> None:
    """Build a populated project from a bundled sample and open the app on it.

    Dataset versions from real monthly or quarterly batches, a few runs and a sweep, a
    model in production and a challenger in staging, a drift report on a drifted batch,
    a scoring, and the audit trail of all of it. DIR defaults to a new temporary folder;
    running again on the same DIR only adds what is missing.
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from workbench.app.demo import Demo, Step

    root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix=f"workbench-{sample}-"))
    builder = Demo(root, sample)
    out = console()
    out.print(f"Building the [bold]{sample}[/] demo in {builder.root}")
    t0 = time.perf_counter()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=out,
        transient=True,
    ) as bar:
        task = bar.add_task("", total=None)

        def started(title: str) -> None:
            bar.update(task, description=title)

        def done(step: Step) -> None:
            mark = "[dim]·[/]" if step.skipped else "[green]✓[/]"
            note = " [dim](already done)[/]" if step.skipped else ""
            bar.console.print(
                f"  {mark} {step.title:<52} {step.detail}{note} [dim]{step.seconds:.1f}s[/]",
                highlight=False,
            )

        project = builder.build(started, done)
    out.print(f"Ready in {time.perf_counter() - t0:.1f}s: {project.root}")
    # --project belongs to workbench itself, before the command (`ui` takes no options)
    command = f"workbench --project {project.root} ui"
    if no_ui:
        out.print(f"Open it with: {command}", soft_wrap=True)  # one line, to copy whole
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        out.print(
            f"Not a terminal, so the app stays closed. Open it with: {command}", soft_wrap=True
        )
        return
    from workbench.tui.app import run

    run(project)
    out.print(f"The demo project stays at {project.root} ({command})", soft_wrap=True)
