"""A monitor window's input and prediction drift against the model's training side:
what the drift engine compares, window after window, with one prepared training table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from workbench.core.data.sources import Table
from workbench.core.drift.columns import DriftReport, Options, compare_column

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from workbench.core.models.versions import ModelVersion
    from workbench.core.monitor.logged import Reference
    from workbench.core.project import Project


def prediction_series(scores: np.ndarray, pred: np.ndarray, task: str) -> pl.Series:
    """What prediction drift compares: the positive class's score for a binary model, the
    predicted class otherwise (the value, for a regressor)."""
    import polars as pl

    if task == "binary":
        return pl.Series("prediction", scores[:, 1])
    if task == "regression":
        return pl.Series("prediction", pred.astype(float))
    return pl.Series("prediction", pred.astype(str))


def training_side(
    project: Project, mv: ModelVersion, ref: Reference | None, inputs: list[str]
) -> tuple[Table, str | None]:
    """Input drift is against the data the model learned from (a model trained elsewhere:
    its reference). One table for every window: the drift engine sorts each of its
    numeric columns (and counts each categorical one) once, on first use, and keeps it
    for the next window."""
    if mv.dataset_ref is None:
        assert ref is not None  # a model trained elsewhere keeps no learnt reference
        frame, label, content = ref.frame, ref.label, None
    else:
        table = Table(project.datasets, mv.dataset_ref)
        present = [c for c in inputs if c in table.schema]
        frame, label, content = table.lf.select(present).collect(), table.label, table.content_id
    return Table.of_frame(label, frame), content


def window_drift(
    mv: ModelVersion, train: Table, part: pl.DataFrame, inputs: list[str], opts: Options,
    ref_pred: Table, cur_pred: pl.Series, series: str, label: str, content: str | None,
    created_at: datetime,
) -> DriftReport:  # fmt: skip
    cur = Table.of_frame(label, part.select(inputs))
    columns = [compare_column(c, train, cur, opts, explicit=True) for c in inputs]
    pred = compare_column(
        "prediction",
        ref_pred,
        Table.of_frame(label, cur_pred.to_frame()),
        opts,
        explicit=True,
    )
    pred.column = f"prediction ({mv.ref})"
    columns.append(pred)
    return DriftReport(
        id=uuid.uuid4().hex,
        created_at=created_at,
        reference=train.label,
        current=label,
        drift_share=opts.drift_share,
        columns=columns,
        options={"model": mv.ref, "monitor": series},
        series_id=series,
        reference_id=content,
        current_id=None,
    )
