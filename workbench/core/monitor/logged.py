"""What monitoring reads: a model version's logged predictions as typed columns, and the
labelled reference its estimators learn from.

Predictions keep their inputs and outputs as one JSON object per row (right for SQL and
labels); monitoring reads them as typed columns from the version's log segments
(core/models/log_segments.py): 1M rows of 25 inputs in about 0.1 s, where turning the
JSON into columns takes DuckDB about 2 s (and polars 7).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from workbench.core.errors import DataError, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import polars as pl

    from workbench.core.models.versions import ModelVersion
    from workbench.core.project import Project


@dataclass
class Outputs:
    """A model's answers as monitoring needs them: each row's predicted class position (or
    value) and its class scores (rows x classes; a regressor's one column is its value)."""

    pred: np.ndarray
    scores: np.ndarray


def output_columns(task: str | None, classes: list[Any] | None) -> list[str]:
    """The logged answer columns ``outputs_of`` reads: a regressor's ``prediction``, a
    classifier's ``proba_<class>`` (its class is their argmax, so its logged
    ``prediction``, text, is not read)."""
    if task == "regression":
        return ["prediction"]
    return [f"proba_{c}" for c in classes or []]


def outputs_of(frame: pl.DataFrame, task: str, classes: list[Any] | None) -> Outputs:
    """``prediction`` or ``proba_<class>`` columns (as predict and serve answer) as
    positions and scores."""
    import numpy as np
    import polars as pl

    if task == "regression":
        values = frame.get_column("prediction").cast(pl.Float64).to_numpy()
        return Outputs(values, values.reshape(-1, 1))
    names = output_columns(task, classes)
    scores = np.empty((frame.height, len(names)))
    for j, name in enumerate(names):
        column = frame.get_column(name).cast(pl.Float64)
        scores[:, j] = column.fill_null(0.0) if column.null_count() else column.to_numpy()
    return Outputs(first_max(scores), scores)


def first_max(scores: np.ndarray) -> np.ndarray:
    """Each row's class: its first largest score, as ``argmax`` gives it. Of two
    classes, one comparison (1M rows: 1.6 ms, ``argmax`` 9): the second wins only when
    strictly larger; a NaN there, which ``argmax`` takes for the largest, goes to
    ``argmax`` (a NaN first score loses either way)."""
    import numpy as np

    if scores.ndim == 2 and scores.shape[1] == 2 and not np.isnan(scores[:, 1]).any():
        return (scores[:, 1] > scores[:, 0]).astype(np.intp)
    return scores.argmax(axis=1)


def aligned(frame: pl.DataFrame, got: pl.DataFrame, at: int) -> pl.DataFrame:
    """``got`` (columns of ``frame``'s rows from ``at`` on, read later, with request_id
    and row) in the order of those rows, matched by request and row: itself when it
    already is, as when it came from the files ``frame`` was read from."""
    keys = ["request_id", "row"]
    tail = frame.slice(at).select(keys)
    if got.select(keys).equals(tail):
        return got
    return tail.join(got, on=keys, how="left", maintain_order="left")


def window_inputs(
    logged: Logged,
    part: pl.DataFrame,
    at: int,
    inputs: list[str],
    again: Callable[[], pl.DataFrame],
) -> pl.DataFrame:
    """``part`` (``logged.frame``'s rows from ``at`` on: a window) with its ``inputs``,
    read for its rows alone from the files its answers came from; ``again()`` reads
    them otherwise (request_id, row and the inputs of rows from at least ``at`` on).

    A classifier's report reads its inputs a window at a time, as it tests each one for
    drift: the log's whole inputs (1M rows of 25: 0.3 GB) were the most of a first
    report's memory, and the kernel's mapping them in took more CPU than reading them."""
    got = logged.more(inputs, at, part.height)
    if got is None:
        got = again()
    return part.hstack(aligned(part, got, 0).select(inputs).get_columns())


def outputs_after(
    frame: pl.DataFrame, got: pl.DataFrame, at: int, task: str, classes: list[Any] | None
) -> Outputs:
    """The answers of ``frame``'s rows from ``at`` on, read after it (``got``: those
    rows' request_id, row and answer columns), matched to them by request and row; the
    rows before ``at`` (windows estimated by an earlier report) are zeros, never read."""
    import numpy as np

    some = outputs_of(aligned(frame, got, at), task, classes)
    pred = np.zeros(frame.height, dtype=some.pred.dtype)
    scores = np.zeros((frame.height, some.scores.shape[1]))
    pred[at:], scores[at:] = some.pred, some.scores
    return Outputs(pred, scores)


def positions(labels: pl.Series, classes: list[Any]) -> np.ndarray:
    """Labels as class positions (-1 for a label the model does not know); a label logged
    as 1.0 for the class 1 is that class."""
    import polars as pl

    numeric = all(isinstance(c, int | float) and not isinstance(c, bool) for c in classes)
    if numeric:
        keys = labels.cast(pl.Float64, strict=False)
        mapping: dict[Any, int] = {float(c): i for i, c in enumerate(classes)}
    else:
        keys = labels.cast(pl.String)
        mapping = {str(c): i for i, c in enumerate(classes)}
    out = keys.replace_strict(mapping, default=-1, return_dtype=pl.Int64)
    return out.fill_null(-1).to_numpy()


@dataclass
class Logged:
    """A version's logged rows in time order: ``frame`` has ts, request_id, row, the
    signature's inputs (typed), the outputs and ``label`` (text, null until labelled)."""

    frame: pl.DataFrame
    other_versions: int  # rows the same model logged from other versions in the span
    # more(columns, i, n): those columns (with request_id and row) of frame's rows from
    # the i-th on (n of them, or all), read from the files just read; None when it
    # cannot (then read again)
    more: Callable[[list[str], int, int | None], pl.DataFrame | None] = lambda c, i, n: None


def read_logged(
    project: Project,
    mv: ModelVersion,
    since: datetime | None,
    output_names: list[str],
    with_inputs: bool = True,
    skip: Callable[[pl.DataFrame], int] | None = None,
    outputs: list[str] | None = None,
) -> Logged:
    """The rows ``mv`` answered (from ``since``), inputs and outputs typed: from the
    version's log segments (core/models/log_segments.py), which a read brings in line
    with the catalog first. ``with_inputs=False`` reads only the answers; ``outputs``
    (default: every one of ``output_names``, the log's layout) which of them are read
    now (``Logged.more`` gives the others).

    ``skip(order)``, given the (ts, request_id, row) of the rows from ``since`` in
    order, says how many of them to leave unread: a report's older windows."""
    import polars as pl

    from workbench.core.models.log_segments import Segments, duck_type, typed
    from workbench.core.store.catalog import frame_of

    inputs = mv.signature.get("inputs") or {}
    if not inputs:
        raise DataError(f"{mv.ref} has no input signature: nothing to monitor")
    in_spec = json.dumps({c: duck_type(t) for c, t in inputs.items()})
    out_spec = json.dumps(
        {c: ("VARCHAR" if c == "prediction" and len(output_names) > 1 else "DOUBLE")
         for c in output_names}
    )  # fmt: skip
    project.fold_predictions()

    def from_json(ids: list[str]) -> pl.DataFrame:
        sql = f"""
            SELECT p.request_id, p.row, p.ts,
                   unnest(json_transform(p.inputs, '{_quote(in_spec)}')),
                   unnest(json_transform(p.outputs, '{_quote(out_spec)}'))
            FROM predictions p SEMI JOIN wanted w ON w.request_id = p.request_id
            WHERE p.model = ? AND p.version = ?"""
        with project.catalog.read() as con:
            con.register(
                "wanted", pl.DataFrame({"request_id": ids}, schema={"request_id": pl.String})
            )
            try:
                frame = con.sql(sql, params=[mv.model, mv.version]).pl()
            finally:
                con.unregister("wanted")
        return typed(frame, inputs, output_names, f"{mv.ref}'s logged inputs")

    segments = Segments(project.store_dir, mv.model, mv.version, inputs, output_names)
    head = ["request_id", "row", "ts"]
    answers = output_names if outputs is None else outputs
    columns = [*head, *inputs, *answers] if with_inputs else [*head, *answers]

    began = [0]  # the first row read, of every row the version logged

    def start(order: pl.DataFrame) -> int:
        # rows run in time order, so those from ``since`` are the last ones
        at = 0 if since is None else int(order.get_column("ts").search_sorted(since, "left"))
        began[0] = at + (skip(order.slice(at)) if skip is not None else 0)
        return began[0]

    frame, files = segments.read(project.catalog, from_json, columns, start)

    def more(names: list[str], i: int, n: int | None) -> pl.DataFrame | None:
        return files.more(names, began[0] + i, n) if files is not None else None

    with project.catalog.read() as con:
        labels = frame_of(
            con,
            """SELECT request_id, row::INTEGER AS row, json_extract_string(label, '$') AS label
               FROM labels WHERE model = ?""",
            [mv.model],
            {"request_id": pl.String, "row": pl.Int32, "label": pl.String},
        )
        other_sql = "SELECT count(*) FROM predictions p WHERE p.model = ? AND p.version <> ?"
        other_args: list[Any] = [mv.model, mv.version]
        if since is not None:
            other_sql += " AND p.ts >= ?"
            other_args.append(since)
        other = con.execute(other_sql, other_args).fetchone()
    frame = (
        frame.join(labels, on=["request_id", "row"], how="left", maintain_order="left")
        if labels.height
        else (frame.with_columns(label=pl.lit(None, dtype=pl.String)))
    )
    order = ["ts", "request_id", "row", *(c for c in columns if c not in head), "label"]
    return Logged(frame.select(order), int(other[0]) if other else 0, more)


def _quote(text: str) -> str:
    return text.replace("'", "''")


@dataclass
class Reference:
    """Labelled rows the model did not train on, and what the model answered there."""

    label: str  # e.g. "validation rows of flights@4 (run:1a2b3c4d)"
    frame: pl.DataFrame  # the inputs
    y: np.ndarray  # class positions or values
    outputs: Outputs


def reference_label(dataset_ref: str, run_id: str) -> str:
    """How a report names its default reference: the training run's validation rows."""
    return f"validation rows of {dataset_ref} (run:{run_id[:8]})"


def reference_for(
    project: Project, mv: ModelVersion, model: Any, spec: str | None, target: str | None
) -> Reference:
    """The validation rows of the run that trained ``mv`` (split again from its recipe),
    or the labelled dataset ``spec`` (with ``target``) for a model trained elsewhere."""
    import polars as pl

    from workbench.core.models.inputs import conform, predict_frame

    task, classes, tgt = task_of(model, mv, target)
    inputs = mv.signature.get("inputs") or {}
    if spec is None:
        from workbench.core.runs.sweeps import recipe_of
        from workbench.core.runs.training import split_frame

        try:
            recipe = recipe_of(project, mv.run_id)
        except UsageError:
            raise UsageError(
                f"{mv.ref} was not trained by `workbench train`, so its validation rows are "
                "unknown; give a labelled dataset it did not train on with --reference "
                "(and --target)"
            ) from None
        version = project.datasets.resolve(recipe.dataset, sums=True)  # load checks them
        df = project.datasets.load(version)
        df = df.filter(pl.col(recipe.target).is_not_null())
        if df.get_column(recipe.target).dtype.is_float():
            df = df.filter(pl.col(recipe.target).is_finite())
        _, df = split_frame(df, recipe)
        label = reference_label(version.ref, mv.run_id)
        tgt = recipe.target
    else:
        from workbench.core.data.sources import Table

        table = Table(project.datasets, spec)
        df = table.lf.collect()
        label = table.label
        if tgt is None or tgt not in df.columns:
            raise UsageError(f"{label} has no target column {tgt!r}; name it with --target")
        df = df.filter(pl.col(tgt).is_not_null())
    x = conform(df, inputs, label)
    out = outputs_of(predict_frame(model, x, list(inputs)), task, classes)
    if task == "regression":
        y = df.get_column(tgt).cast(pl.Float64).to_numpy()
    else:
        y = positions(df.get_column(tgt), classes or [])
        keep = y >= 0
        if not keep.all():
            raise DataError(
                f"{label} has {int((~keep).sum()):,} label(s) the model does not know "
                f"(its classes: {', '.join(map(str, classes or []))})"
            )
    return Reference(label, x, y, out)


def task_of(
    model: Any, mv: ModelVersion, target: str | None
) -> tuple[str, list[Any] | None, str | None]:
    """Task, classes and target of a loaded model: a workbench model says; a plain
    estimator has ``classes_`` if it classifies."""
    from workbench.core.runs.model import Model

    if isinstance(model, Model):
        return model.task, model.classes, target or model.target
    classes = getattr(model, "classes_", None)
    if classes is None:
        return "regression", None, target
    known = [c.item() if hasattr(c, "item") else c for c in classes]
    return ("binary" if len(known) == 2 else "multiclass"), known, target


def matrix(model: Any, frame: pl.DataFrame, inputs: list[str]) -> tuple[np.ndarray, list[int]]:
    """The numbers a regressor's nanny learns from: the model's own feature matrix (its
    categories as codes) or, for a plain estimator, its numeric inputs."""
    import numpy as np
    import polars as pl

    from workbench.core.runs.model import Model

    if isinstance(model, Model):
        return model.features.matrix(frame), model.features.categorical
    numeric = [c for c in inputs if frame.schema[c].is_numeric()]
    if not numeric:
        return np.zeros((frame.height, 0)), []
    return frame.select(pl.col(numeric).cast(pl.Float64)).to_numpy(), []
