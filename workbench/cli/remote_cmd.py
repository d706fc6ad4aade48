"""``workbench remote``, ``push`` and ``pull``: the store copied to a folder or a bucket."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from workbench.cli.context import Ctx, pass_ctx
from workbench.cli.output import console, echo, json_option, print_json, table
from workbench.textfmt import counted, human_bytes

if TYPE_CHECKING:
    from workbench.core.remote.sync import Synced


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def remote() -> None:
    """Where `workbench push` and `pull` copy this project's store."""


@remote.command("add")
@click.argument("name")
@click.argument("url")
@click.option(
    "--endpoint-url", help="An S3-compatible server's address (MinIO, Ceph…); default: "
    "AWS, or $AWS_ENDPOINT_URL.",
)  # fmt: skip
@pass_ctx
def add(ctx: Ctx, name: str, url: str, endpoint_url: str | None) -> None:
    """Name a remote: URL is s3://BUCKET[/PREFIX] (credentials from the environment or
    ~/.aws, never stored) or a folder (a NAS mount, a USB stick)."""
    from workbench.core.remote import config

    spec = config.add(ctx.project.store_dir, name, url, endpoint_url)
    echo(f"Added remote {spec.name}: {spec.url}")


@remote.command("list")
@json_option
@pass_ctx
def list_(ctx: Ctx, as_json: bool) -> None:
    """The remotes this project knows."""
    from workbench.core.remote import config

    remotes = config.load(ctx.project.store_dir)
    if as_json:
        print_json([{"name": s.name, "url": s.url, "endpoint_url": s.endpoint_url}
                    for s in remotes.values()])  # fmt: skip
        return
    if not remotes:
        echo("No remotes: `workbench remote add NAME URL`")
        return
    rows = [[s.name, s.kind, s.url, s.endpoint_url or ""] for s in remotes.values()]
    console().print(table(None, ["name", "kind", "url", "endpoint"], rows))


@remote.command("remove")
@click.argument("name")
@pass_ctx
def remove(ctx: Ctx, name: str) -> None:
    """Forget a remote (what it holds stays there)."""
    from workbench.core.remote import config

    spec = config.remove(ctx.project.store_dir, name)
    echo(f"Removed remote {spec.name} ({spec.url})")


def _moved(what: str, where: str, done: Synced) -> None:
    """The one line a push or a pull that moved something prints."""
    echo(
        f"{what}: {counted(done.objects_sent, 'object')}, {human_bytes(done.bytes_sent)} "
        f"({done.objects_present:,} already {where}), and the catalog "
        f"({human_bytes(done.catalog_bytes)}); audit entry {done.before_seq} -> {done.audit_seq}"
    )


@click.command()
@click.argument("name", required=False)
@json_option
@pass_ctx
def push(ctx: Ctx, name: str | None, as_json: bool) -> None:
    """Send this project's datasets, runs, models and audit trail to remote NAME (the only
    one, or origin): only the objects it lacks, then the catalog; refused when the
    remote holds history this project lacks."""
    from workbench.core.remote.sync import push as do_push

    done = do_push(ctx.project, name)
    if as_json:
        print_json(done)
        return
    if done.up_to_date:
        echo(f"{done.remote} is up to date (audit entry {done.audit_seq})")
        return
    _moved(f"Pushed to {done.remote}", "there", done)
    if done.running:
        echo(f"{counted(done.running, 'run')} {'was' if done.running == 1 else 'were'} still running: they arrive as running; push again "
             "when they end")  # fmt: skip


@click.command()
@click.argument("name", required=False)
@json_option
@pass_ctx
def pull(ctx: Ctx, name: str | None, as_json: bool) -> None:
    """Bring this project up to remote NAME (the only one, or origin): every object
    checked against its hash before anything changes; refused when this project holds
    history the remote lacks."""
    from workbench.core.remote.sync import pull as do_pull

    done = do_pull(ctx.project, name)
    if as_json:
        print_json(done)
        return
    if done.up_to_date:
        ahead = (f"; this project is {done.ahead} audit entr{'y' if done.ahead == 1 else 'ies'} "
                 f"ahead: `workbench push {done.remote}`") if done.ahead else ""  # fmt: skip
        echo(
            f"Already up to date with {done.remote} (it is at audit entry {done.audit_seq}){ahead}"
        )
        return
    _moved(f"Pulled from {done.remote}", "here", done)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def bundle() -> None:
    """One file that carries a project (or what changed) across an air gap."""


@bundle.command("create")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--since", metavar="BUNDLE|DATE", help="Only what the other side lacks after importing "
    "an earlier BUNDLE file (or: objects stored from DATE on, YYYY-MM-DD).",
)  # fmt: skip
@click.option(
    "--only", "only", multiple=True, type=click.Choice(["datasets", "runs", "models"]),
    help="Carry only these parts' files (repeatable): dataset chunks, run artifacts, "
    "registered models. The catalog and audit trail always travel whole; the other side "
    "knows what was left out.",
)  # fmt: skip
@json_option
@pass_ctx
def bundle_create(
    ctx: Ctx, file: str, since: str | None, only: tuple[str, ...], as_json: bool
) -> None:
    """Write this project's datasets, runs, models and audit trail to FILE (a tar with a
    manifest), and FILE.sha256 beside it; with --since, only the objects added since."""
    from workbench.core.remote.bundle import create

    done = create(ctx.project, file, since, only)
    if as_json:
        print_json(done)
        return
    since_text = f" since {done.base}" if done.base else ""
    echo(
        f"Bundled {done.objects:,} of {counted(done.referenced, 'object')}{since_text} "
        f"({human_bytes(done.object_bytes)}) and the catalog ({human_bytes(done.catalog_bytes)}, "
        f"audit entry {done.audit_seq}) into {done.file}: {human_bytes(done.bytes)}, "
        f"sha256 {done.sha256[:16]}… (in {done.file}.sha256)"
    )
    if done.left_out:
        echo(f"Left out {counted(done.left_out, 'object')} the other side will lack"
             + (f" (only {', '.join(done.only)} carried)" if done.only else ""))  # fmt: skip


@bundle.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
@pass_ctx
def bundle_import(ctx: Ctx, file: str, as_json: bool) -> None:
    """Take in a bundle: its hash, every object and its audit trail are checked before
    anything changes; importing it again changes nothing."""
    from workbench.core.remote.bundle import import_

    done = import_(ctx.project, file)
    if as_json:
        print_json(done)
        return
    if done.up_to_date:
        echo(f"Nothing to import: this project holds all of {done.file} (up to its audit "
             f"entry {done.audit_seq})")  # fmt: skip
        return
    echo(
        f"Imported {done.file}: {counted(done.objects, 'object')} ({human_bytes(done.object_bytes)}) "
        f"and the catalog; audit entry {done.before_seq} -> {done.audit_seq}"
    )
    if done.left_out:
        echo(f"Left out by the bundle: {counted(done.left_out, 'object')}; reading one says so "
             "(`workbench verify` lists them); a bundle that carries them fills them in")  # fmt: skip
