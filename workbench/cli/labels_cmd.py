"""``workbench labels add``: ground truth for logged predictions, when it arrives."""

from __future__ import annotations

import click

from workbench.cli.context import Ctx, pass_ctx
from workbench.cli.output import echo, json_option, print_json
from workbench.textfmt import counted


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def labels() -> None:
    """Ground truth for the predictions a served model logged."""


@labels.command("add")
@click.argument("file")
@click.option("--model", "-m", "model", required=True, help="The model whose predictions.")
@click.option("--label", "label", required=True, help="The column holding the true value.")
@click.option("--id", "id_column", help="The column holding the request ids (X-Request-ID).")
@click.option("--key", help="Or: an input column the client sent, matched to the file's.")
@click.option("--row", "row_column", help="With --id: the row's place in its request.")
@click.option(
    "--request", help="Or: the request id `workbench predict` printed; FILE is that batch, "
    "its rows labelling the scored rows in order.",
)  # fmt: skip
@json_option
@pass_ctx
def add(
    ctx: Ctx, file: str, model: str, label: str, id_column: str | None, key: str | None,
    row_column: str | None, request: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Label MODEL's logged predictions from FILE (CSV, Parquet or a dataset version),
    matched by request id (--id), by an input column (--key), or row for row with the
    batch a `workbench predict` scored (--request). An id twice in FILE, one
    no logged prediction has, or a prediction labelled already is refused with counts,
    and then nothing is added. Labels show in `workbench sql` (predictions.label)."""
    from workbench.core.models.labels import add as add_labels

    project = ctx.project
    project.fold_predictions()  # what servers logged since the last read
    done = add_labels(project.catalog, project.datasets, file, model, label, id_column, key,
                      row_column, request)  # fmt: skip
    if as_json:
        print_json(done)
        return
    echo(
        f"Labelled {counted(done.labels, 'prediction')} of {done.model} from {done.file} "
        f"({counted(done.ids, 'id')}, matched by {done.matched_by})"
    )
