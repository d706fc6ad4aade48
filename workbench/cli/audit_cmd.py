"""``workbench audit`` and ``workbench verify``."""

from __future__ import annotations

import sys

import click

from workbench.cli.context import Ctx, pass_ctx
from workbench.cli.output import console, echo, escape, json_option, print_json, table
from workbench.textfmt import AUDIT_LINE_SKIPS, brief, counted


@click.group(invoke_without_command=True)
@click.option(
    "--subject",
    help="Only entries about this subject: a dataset or model (churn gives churn@2 too), "
    "or a run or drift report by its short id (run:4f2a).",
)
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
@click.pass_context
def audit(
    click_ctx: click.Context, ctx: Ctx, subject: str | None, limit: int, as_json: bool
) -> None:
    """The audit trail: every change to the project, newest first."""
    from workbench.core.store import audit as core_audit

    if click_ctx.invoked_subcommand is not None:
        return
    with ctx.project.catalog.read() as con:
        items = core_audit.entries(con, subject=subject, limit=limit)
    if as_json:
        print_json(items)
        return
    if not items and subject:
        echo(f"No audit entries about {subject}.")
        return
    rows = [
        [
            e["seq"],
            e["at"],
            escape(e["actor"]),
            e["action"],
            escape(core_audit.shown(e["subject"])),
            escape(_summary(e["details"])),
        ]
        for e in items
    ]
    console().print(table(None, ["#", "time (UTC)", "actor", "action", "subject", "details"], rows))


@audit.command("head")
@json_option
@pass_ctx
def head(ctx: Ctx, as_json: bool) -> None:
    """The newest entry's number and hash: keep it elsewhere, check it with
    `workbench verify --head SEQ:HASH`."""
    from workbench.core.store import audit as core_audit

    with ctx.project.catalog.read() as con:
        h = core_audit.head_or_genesis(con)
    if as_json:
        print_json(h.to_dict())
    else:
        echo(f"{h.seq}:{h.hash}")


def _summary(details: dict) -> str:
    return brief(details, 80, skip=AUDIT_LINE_SKIPS)


@click.command()
@click.option(
    "--head",
    "kept",
    metavar="SEQ:HASH",
    help="Also check that the trail still holds this head (from `workbench audit head`).",
)
@click.option(
    "--repair",
    is_flag=True,
    help="First mend what can be mended safely: write a missing audit anchor from the "
    "trail as it is now; recover run folders whose start record was lost.",
)
@json_option
@pass_ctx
def verify(ctx: Ctx, kept: str | None, repair: bool, as_json: bool) -> None:
    """Check the audit chain and re-hash every object in the store."""
    from workbench.core.store.audit import parse_head
    from workbench.core.store.verify import repair as run_repair
    from workbench.core.store.verify import verify as run_verify

    head = parse_head(kept) if kept else None
    repaired = run_repair(ctx.project) if repair else []
    for line in repaired:
        if not as_json:
            echo(f"REPAIRED {line}")
    r = run_verify(ctx.project, kept=head)
    if as_json:
        print_json(
            {
                "ok": r.ok,
                "audit_entries": r.audit_entries,
                "objects_checked": r.objects_checked,
                "problems": r.problems,
                "orphans": r.orphans,
                "left_out": r.left_out,
                "repaired": repaired,
            }
        )
    else:
        for p in r.problems:
            echo(f"FAIL {p}")
        for by, n in r.left_out.items():
            echo(f"NOTE {counted(n, 'object')} not here by choice: left out of {by}")
        echo(
            f"audit chain: {r.audit_entries} entries; objects: {r.objects_checked} re-hashed; "
            f"{len(r.orphans)} unreferenced"
        )
        echo("verify: OK" if r.ok else f"verify: {counted(len(r.problems), 'problem')} found")
    if not r.ok:
        sys.exit(1)
