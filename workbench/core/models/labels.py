"""Ground truth for logged predictions, added when it arrives (days or weeks later).

A label file names each prediction either by the request id a client sent with it (for a
request of several rows, with the row's place in it) or by a key column the client sent
among its inputs (a customer id, a flight number). Everything is checked before anything
is written, and refused in one line with counts: an id twice in the file, an id no
logged prediction of the model has, a prediction that already has a label (labels are
ground truth: they are not silently replaced). The labels join the ``predictions`` view
(its ``label`` column) and are on the audit trail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from workbench.core.data.sources import Table
from workbench.core.errors import DataError, NotFoundError, UsageError
from workbench.core.records import Record
from workbench.core.store import audit
from workbench.core.text import known_hint

if TYPE_CHECKING:
    from workbench.core.data.datasets import Datasets
    from workbench.core.store.catalog import Catalog


@dataclass(frozen=True)
class LabelsAdded(Record):
    model: str
    file: str
    labels: int  # predictions labelled
    ids: int  # rows of the file
    matched_by: str  # "request id" or "key <column>"


def _frame(con: Any, sql: str, args: list[Any]) -> Any:
    """A query's rows as a polars frame (DuckDB hands them over as Arrow)."""
    return con.sql(sql, params=args).pl()


def _example(values: list[Any]) -> str:
    return f"e.g. {values[0]!r}" + (f" and {len(values) - 1:,} more" if len(values) > 1 else "")


def add(
    catalog: Catalog,
    datasets: Datasets,
    spec: str,
    model: str,
    label: str,
    id_column: str | None = None,
    key: str | None = None,
    row_column: str | None = None,
    request: str | None = None,
) -> LabelsAdded:
    """Label ``model``'s logged predictions from ``spec`` (a file or dataset version).

    ``request`` labels one request's rows in order from the file's rows: the batch a
    ``workbench predict`` scored, its labels added as they came, row for row."""

    if sum(x is not None for x in (id_column, key, request)) != 1:
        raise UsageError(
            "name the predictions one way: --id COL (request ids), --key COL (an input "
            "column) or --request ID (a scored batch, row for row)"
        )
    if request is not None:
        return _by_request(catalog, datasets, spec, model, label, request, row_column)
    if key is not None and row_column is not None:
        raise UsageError("--row goes with --id (a request's rows); a --key names each row")
    table = Table(datasets, spec)
    return _add(catalog, table, model, label, id_column, key, row_column)


def _by_request(
    catalog: Catalog, datasets: Datasets, spec: str, model: str, label: str, request: str,
    row_column: str | None,
) -> LabelsAdded:  # fmt: skip
    """The file's row i labels row i of ``request`` (a full id or a unique prefix)."""
    import polars as pl

    if row_column is not None:
        raise UsageError("--row goes with --id; with --request the file's rows are in order")
    with catalog.read() as con:
        found = con.execute(
            "SELECT request_id, count(*) FROM predictions WHERE model = ? "
            "AND starts_with(request_id, ?) GROUP BY request_id",
            [model, request],
        ).fetchall()
    if not found:
        raise NotFoundError(f"no logged request {request!r} of {model}")
    if len(found) > 1:
        raise UsageError(f"{request!r} matches {len(found)} requests of {model}; give more of it")
    rid, rows = found[0]
    table = Table(datasets, spec)
    if label not in table.schema:
        raise DataError(
            f"{table.label} has no column {label!r}" + known_hint(label, list(table.schema))
        )
    if table.rows != rows:
        raise DataError(
            f"{table.label} has {table.rows:,} rows; request {rid[:12]} scored {rows:,}: give "
            "the batch that was scored, row for row"
        )
    df = table.lf.select(
        pl.lit(rid).alias("_request"), pl.col(label), pl.int_range(pl.len()).alias("_row")
    ).collect()
    return _add(catalog, Table.of_frame(table.label, df), model, label, "_request", None, "_row")


def _add(
    catalog: Catalog, table: Table, model: str, label: str, id_column: str | None,
    key: str | None, row_column: str | None,
) -> LabelsAdded:  # fmt: skip
    import polars as pl

    by = id_column or key
    assert by is not None
    wanted = [by, label, *([row_column] if row_column else [])]
    missing = [c for c in dict.fromkeys(wanted) if c not in table.schema]
    if missing:
        raise DataError(
            f"{table.label} has no column {', '.join(map(repr, missing))}"
            + known_hint(missing[0], list(table.schema))
        )
    df = table.lf.select(
        pl.col(by).cast(pl.String).alias("id"),
        pl.col(label).alias("label"),
        *([pl.col(row_column).cast(pl.Int64).alias("row")] if row_column else []),
    ).collect()
    if df.height == 0:
        raise DataError(f"{table.label} has no rows")
    for column, what in (("id", by), ("label", label)):
        nulls = df.get_column(column).null_count()
        if nulls:
            raise DataError(f"{nulls:,} row(s) of {table.label} have no {what}")
    ident = ["id", "row"] if row_column else ["id"]
    dup = df.filter(pl.struct(ident).is_duplicated()).get_column("id").unique(maintain_order=True)
    if dup.len():
        raise DataError(
            f"{dup.len():,} id(s) appear more than once in {table.label} "
            f"({_example(dup.to_list())}); give each prediction one label"
            + ("" if row_column or key else ", or each row's place in its request with --row COL")
        )
    with catalog.write() as con:
        if not con.execute("SELECT 1 FROM models WHERE name = ?", [model]).fetchall():
            raise NotFoundError(f"no model named {model!r}")
        if key is not None:
            path = '$."' + key.replace('"', '\\"') + '"'
            logged = _frame(
                con,
                """SELECT * FROM (
                    SELECT request_id, row, json_extract_string(inputs, ?) AS id,
                        count(*) OVER (PARTITION BY request_id, row) AS sent
                    FROM predictions WHERE model = ?) WHERE id IS NOT NULL""",
                [path, model],
            )
        else:
            logged = _frame(
                con,
                """SELECT request_id, row, request_id AS id,
                    count(*) OVER (PARTITION BY request_id) AS rows_in_request,
                    count(*) OVER (PARTITION BY request_id, row) AS sent
                FROM predictions WHERE model = ?""",
                [model],
            )
        if logged.height == 0:
            raise DataError(
                f"{model} has no logged predictions{f' with input {key!r}' if key else ''}: "
                "serve it (workbench serve) and let requests come first"
            )
        logged = logged.with_columns(pl.col("row").cast(pl.Int64))
        on = ["id", "row"] if row_column else ["id"]
        # A client that sent one X-Request-ID with two requests: a label is kept by
        # (request id, row), so it cannot say which of their answers it is for.
        reused = logged.filter(pl.col("sent") > 1).join(df, on=on, how="semi")
        if reused.height:
            ids = reused.get_column("request_id").unique(maintain_order=True)
            raise DataError(
                f"{ids.len():,} request id(s) that {table.label} labels were sent by more than "
                f"one request ({_example(ids.to_list())}): a label cannot say which answer it "
                "is for, and nothing was added; give each request its own X-Request-ID"
            )
        if row_column is None and key is None:
            multi = logged.filter(pl.col("rows_in_request") > 1)
            hit = df.join(multi, on="id", how="semi").get_column("id")
            if hit.len():
                raise UsageError(
                    f"{hit.len():,} request(s) in {table.label} scored several rows "
                    f"({_example(hit.to_list())}): give each row's place with --row COL"
                )
        matched = df.join(logged, on=on, how="inner")
        unknown = df.join(logged, on=on, how="anti")
        if unknown.height:
            raise DataError(
                f"{unknown.height:,} of {df.height:,} id(s) in {table.label} match no logged "
                f"prediction of {model} ({_example(unknown.get_column('id').to_list())}); "
                "nothing was added"
            )
        targets = matched.select(
            pl.col("request_id"), pl.col("row").cast(pl.Int32), pl.col("label")
        ).unique(subset=["request_id", "row"], keep="first", maintain_order=True)
        have = _frame(con, "SELECT request_id, row FROM labels WHERE model = ?", [model])
        have = have.with_columns(pl.col("row").cast(pl.Int32))
        again = targets.join(have, on=["request_id", "row"], how="semi")
        if again.height:
            raise DataError(
                f"{again.height:,} of these predictions already have a label "
                f"({_example(again.get_column('request_id').unique(maintain_order=True).to_list())}"
                "); labels are not "
                "replaced, and nothing was added"
            )
        now = datetime.now(UTC).replace(tzinfo=None)
        rows = pl.DataFrame(
            {
                "model": [model] * targets.height,
                "request_id": targets.get_column("request_id"),
                "row": targets.get_column("row"),
                "label": [json.dumps(v, default=str) for v in targets.get_column("label")],
                "added_at": [now] * targets.height,
                "source": [table.label] * targets.height,
            }
        )
        con.register("_wb_labels", rows.to_arrow())
        con.execute("INSERT INTO labels SELECT * FROM _wb_labels")
        con.unregister("_wb_labels")
        matched_by = (
            f"key {key}" if key else "row order" if id_column == "_request" else "request id"
        )
        audit.append(
            con,
            "labels.add",
            model,
            {"file": table.label, "labels": targets.height, "matched_by": matched_by},
        )
    return LabelsAdded(model, table.label, targets.height, df.height, matched_by)
