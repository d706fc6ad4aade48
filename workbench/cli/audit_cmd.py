"""``workbench audit`` and ``workbench verify``."""

from __future__ import annotations

import sys

import click

from workbench.cli.context import Ctx, pass_ctx
from workbench.cli.output import console, escape, json_option, print_json, table


@click.command()
@click.option("--subject", help="Only entries about this subject, e.g. churn or churn@2.")
@click.option(
    "--limit",
    "-n",
    default=50,
    show_default=True,
    type=click.IntRange(1),
    help="Most recent N entries.",
)
@json_option
@pass_ctx
def audit(ctx: Ctx, subject: str | None, limit: int, as_json: bool) -> None:
    """The audit trail: every change to the project, newest first."""
    from workbench.core.store import audit as core_audit

    with ctx.project.catalog.read() as con:
        items = core_audit.entries(con, subject=subject, limit=limit)
    if as_json:
        print_json(items)
        return
    rows = [
        [
            e["seq"],
            e["at"],
            escape(e["actor"]),
            e["action"],
            escape(e["subject"]),
            escape(_summary(e["details"])),
        ]
        for e in items
    ]
    console().print(table(None, ["#", "time (UTC)", "actor", "action", "subject", "details"], rows))


def _summary(details: dict) -> str:
    parts = [f"{k}={v}" for k, v in details.items() if v not in (None, "", [], {}) and k != "id"]
    text = ", ".join(parts)
    return text if len(text) <= 80 else text[:77] + "..."


@click.command()
@json_option
@pass_ctx
def verify(ctx: Ctx, as_json: bool) -> None:
    """Check the audit chain and re-hash every object in the store."""
    from workbench.core.store.verify import verify as run_verify

    r = run_verify(ctx.project)
    if as_json:
        print_json(
            {
                "ok": r.ok,
                "audit_entries": r.audit_entries,
                "objects_checked": r.objects_checked,
                "problems": r.problems,
                "orphans": r.orphans,
            }
        )
    else:
        for p in r.problems:
            click.echo(f"FAIL {p}")
        click.echo(
            f"audit chain: {r.audit_entries} entries; objects: {r.objects_checked} re-hashed; "
            f"{len(r.orphans)} unreferenced"
        )
        click.echo("verify: OK" if r.ok else f"verify: {len(r.problems)} problem(s) found")
    if not r.ok:
        sys.exit(1)
