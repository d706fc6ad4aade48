"""``workbench serve``: a registered model over local HTTP (workbench[serve])."""

from __future__ import annotations

import os
from pathlib import Path

import click

from workbench.cli.context import Ctx, pass_ctx
from workbench.cli.output import echo


@click.command("serve")
@click.argument("ref")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option(
    "--token",
    help="Required on every request (Authorization: Bearer TOKEN); needed to listen past "
    "this machine. Also read from WORKBENCH_SERVE_TOKEN.",
)
@click.option("--max-rows", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option(
    "--max-bytes", type=click.IntRange(min=1), default=32 * 1024 * 1024, show_default=True
)
@pass_ctx
def serve(
    ctx: Ctx, ref: str, host: str, port: int, token: str | None, max_rows: int, max_bytes: int
) -> None:
    """Serve REF (NAME@ALIAS, e.g. churn-model@production) over HTTP: POST /predict
    (JSON, CSV or Parquet rows), GET /health, GET /model, GET /metrics (Prometheus). It
    follows the alias: a promote or a rollback is served within two seconds. Every request
    is logged; `workbench sql` reads them in the requests and predictions views."""
    from workbench.app.serving import TOKEN_ENV, Limits
    from workbench.app.serving import serve as run

    def ready(url: str, version: str, log: Path) -> None:
        echo(f"Serving {ref} ({version}) at {url}  (POST /predict; log {log}); Ctrl-C stops")

    run(
        ctx.project,
        ref,
        host=host,
        port=port,
        token=token or os.environ.get(TOKEN_ENV) or None,
        limits=Limits(max_bytes=max_bytes, max_rows=max_rows),
        ready=ready,
    )
