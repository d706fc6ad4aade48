"""``workbench config``: check the project's workbench.toml."""

from __future__ import annotations

import click

from workbench.cli.context import Ctx, pass_ctx
from workbench.cli.output import console, print_json


@click.group()
def config() -> None:
    """The project's settings (workbench.toml)."""


@config.command()
@click.option("--json", "as_json", is_flag=True, help="Print what was read as JSON.")
@pass_ctx
def check(ctx: Ctx, as_json: bool) -> None:
    """Check workbench.toml: every table and key known, every value of the right kind.

    A mistake is reported with its key and line and exits 2 (every other command
    refuses to run on a bad file too).
    """
    s = ctx.project.settings
    summary = {
        "file": str(ctx.project.root / "workbench.toml"),
        "train": {"model": s.train.model, "seed": s.train.seed, "split": s.train.split},
        "gates": {alias: [g.text for g in gs] for alias, gs in s.gates.items()},
        "checks": sorted(s.checks),
        "pipelines": sorted(s.pipelines),
    }
    if as_json:
        print_json(summary)
        return
    gates = ", ".join(f"{a} ({len(g)})" for a, g in s.gates.items()) or "none"
    console().print(
        f"{summary['file']}: ok. train {s.train.model}, gates: {gates}, "
        f"checks: {', '.join(summary['checks']) or 'none'}, "
        f"pipelines: {', '.join(summary['pipelines']) or 'none'}",
        markup=False,
        highlight=False,
    )
