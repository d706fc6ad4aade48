"""``workbench sql`` (read-only queries over documented views) and ``workbench export``."""

from __future__ import annotations

import csv
import json
import sys

import click

from workbench.cli.context import Ctx, pass_ctx
from workbench.cli.output import console, echo, escape, fmt_num, print_json, table
from workbench.core.store.sql import EXPORTS
from workbench.textfmt import counted


@click.command()
@click.argument("query", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows instead of a table.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
@click.option(
    "--limit",
    "-n",
    default=10_000,
    show_default=True,
    type=click.IntRange(1),
    help="Return at most N rows.",
)
@click.option("--views", "list_views", is_flag=True, help="List the views and their columns.")
@pass_ctx
def sql(
    ctx: Ctx, query: str | None, as_json: bool, as_csv: bool, limit: int, list_views: bool
) -> None:
    """Run a read-only SQL QUERY over the project's views (see --views, docs/sql.md).

    Views: runs, params, tags, metrics, latest_metrics, artifacts, datasets,
    dataset_versions, dataset_checks, models, model_versions, aliases, alias_history, drift_reports,
    drift_results, scorings, audit. Writes, files and extensions are refused.
    """
    from workbench.core.store import sql as core_sql

    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    if list_views:
        views = core_sql.describe(ctx.project)
        if as_json:
            print_json(views)
            return
        rows = [
            [name, escape(v["about"]), ", ".join(c for c, _ in v["columns"])]
            for name, v in views.items()
        ]
        console().print(table(None, ["view", "one row per…", "columns"], rows))
        return
    if not query:
        raise click.UsageError('give a QUERY, e.g. workbench sql "SELECT * FROM runs LIMIT 5"')
    res = core_sql.query(ctx.project, query, limit=limit)
    if as_json:
        print_json(
            [
                {c: core_sql.jsonable(v) for c, v in zip(res.columns, r, strict=True)}
                for r in res.rows
            ]
        )
    elif as_csv:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(res.columns)
        for r in res.rows:
            w.writerow([_csv_cell(v) for v in r])
    else:
        console().print(
            table(
                None,
                [escape(c) for c in res.columns],
                [[escape(fmt_num(v)) for v in r] for r in res.rows],
            )
        )
        echo(f"{len(res.rows):,} row{'s' if len(res.rows) != 1 else ''}", err=True)
    if res.truncated:
        echo(f"(stopped at {limit:,} rows; raise --limit for more)", err=True)


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def export() -> None:
    """Take metadata out as Parquet or CSV, for pandas, notebooks or a warehouse."""


def _export_command(what: str, about: str) -> click.Command:
    @click.command(what, help=f"Export {about}.")
    @click.option(
        "-o",
        "--output",
        required=True,
        metavar="FILE|DIR",
        help="A .parquet or .csv file, or a folder (then WHAT.parquet in it).",
    )
    @pass_ctx
    def command(ctx: Ctx, output: str) -> None:
        from workbench.core.store.sql import export as run_export

        path, rows = run_export(ctx.project, what, output)
        echo(f"Wrote {counted(rows, 'row')} of {what} to {path}")

    return command


for _what, _about in EXPORTS.items():
    export.add_command(_export_command(_what, _about))


@export.command("mlflow")
@click.argument("directory", type=click.Path(file_okay=False))
@pass_ctx
def export_mlflow(ctx: Ctx, directory: str) -> None:
    """Write every run and the registry as an MLflow file store in DIRECTORY.

    Read it with mlflow.MlflowClient("file:DIRECTORY") (MLflow 3 asks for
    MLFLOW_ALLOW_FILE_STORE=true), or move it to a database with `mlflow migrate-filestore`.
    """
    from workbench.core.interop.mlflow_export import export_store

    counts = export_store(ctx.project, directory)
    echo(
        f"Wrote an MLflow store to {directory}: {counts['experiments']} experiments, "
        f"{counts['runs']} runs, {counts['points']:,} metric points, {counts['artifacts']} "
        f"artifacts, {counts['models']} models with {counts['versions']} versions "
        f"({counts['mlflow_models']} in MLflow's model format)"
    )


@click.group("import", context_settings={"help_option_names": ["-h", "--help"]})
def import_() -> None:
    """Bring history in from another tool."""


@import_.command("mlflow")
@click.argument("store")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_ctx
def import_mlflow(ctx: Ctx, store: str, as_json: bool) -> None:
    """Import an MLflow store: an mlruns/ folder or sqlite:///path.db.

    Experiments, runs with params, tags, every metric point and artifacts, registered
    models with their versions and aliases. Safe to run again: what came in before is
    skipped. Each run keeps its MLflow id in the tag mlflow.run_id.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from workbench.core.interop.mlflow_import import import_store

    with Progress(
        TextColumn("importing runs"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console(),
        transient=True,
        disable=as_json,
    ) as bar:
        task = bar.add_task("", total=None)

        def progress(done: int, total: int, run_id: str) -> None:
            bar.update(task, completed=done, total=total)

        summary = import_store(ctx.project, store, progress)
    if as_json:
        print_json(summary.to_dict())
        return
    s = summary
    echo(
        f"Imported {s.runs} runs ({s.runs_skipped} already here) in {len(s.experiments)} "
        f"experiments: {s.points:,} metric points, {s.params:,} params, {s.tags:,} tags, "
        f"{s.artifacts} artifact files ({s.artifact_bytes:,} bytes); {s.versions} model versions "
        f"({s.versions_skipped} already here) of {s.models} new models, {s.aliases} aliases"
    )
    for p in s.problems:
        echo(f"  not imported as is: {p}")
