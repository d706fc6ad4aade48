"""``workbench monitor NAME@ALIAS``: a model version's logged predictions, window by
window: rows, input drift against its training data, prediction drift against its
reference, performance estimated (CBPE/DLE) and realised where labels arrived, and the
traffic (error rate, p99 latency) of the servers that answered.

A report is stored (``monitor_reports``, one ``monitor_windows`` row per window, each
window's drift as a drift report of the series) and on the audit trail, in one
transaction.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from workbench.core.data.sources import Table
from workbench.core.drift.columns import (
    ColumnDrift,
    DriftReport,
    Options,
    prepare,
)
from workbench.core.errors import NotFoundError
from workbench.core.monitor import learnt, predicted
from workbench.core.monitor.earlier import kept_windows
from workbench.core.monitor.estimate import METHOD, Estimate, Estimator
from workbench.core.monitor.logged import (
    Reference,
    aligned,
    matrix,
    output_columns,
    outputs_after,
    outputs_of,
    positions,
    read_logged,
    reference_for,
    reference_label,
    task_of,
    window_inputs,
)
from workbench.core.monitor.requests import requests_of
from workbench.core.monitor.window_drift import (
    prediction_series,
    training_side,
    window_drift,
)
from workbench.core.monitor.windows import (
    MIN_DRIFT_ROWS,
    WindowSpec,
    window_bounds,
    window_label,
    window_name,
)
from workbench.core.preload import preload
from workbench.core.store import audit

if TYPE_CHECKING:
    import polars as pl

    from workbench.core.project import Project

MAX_WINDOWS = 100  # the latest; older ones are in earlier reports


@dataclass
class Window:
    pos: int
    label: str
    first_ts: datetime
    last_ts: datetime
    rows: int
    labelled: int
    drift: DriftReport | None
    drift_share: float | None  # of the model's inputs
    drifted: bool | None
    prediction_drift: bool | None
    error_rate: float | None
    p99_latency_ms: float | None
    estimates: list[Estimate]
    alerts: list[str] = field(default_factory=list)
    drift_stored: bool = False  # an earlier report's drift of the very same rows
    predictions: dict[str, Any] | None = None  # core/monitor/predicted.py's summary
    from_row: str = ""  # "request_id:row" of its first and last logged rows: which rows
    to_row: str = ""  # (several windows of one batch scoring share one time span)
    scored: list[str] = field(default_factory=list)  # what its batch scorings read

    def metric(self, name: str) -> Estimate | None:
        return next((e for e in self.estimates if e.metric == name), None)

    def inputs_tested(self) -> list[ColumnDrift]:
        """The model's inputs its drift report tested (its prediction is not an input)."""
        return _inputs_tested(self.drift)

    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.inputs_tested() if c.drifted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": self.label,
            "first": self.first_ts.isoformat(),
            "last": self.last_ts.isoformat(),
            "rows": self.rows,
            "from_row": self.from_row,
            "to_row": self.to_row,
            "scored": self.scored,
            "labelled": self.labelled,
            "drift_report": self.drift.id if self.drift else None,
            "drift_share": self.drift_share,
            "drifted": self.drifted,
            "drifted_columns": self.drifted_columns(),
            "prediction_drift": self.prediction_drift,
            "predictions": self.predictions,
            "error_rate": self.error_rate,
            "p99_latency_ms": self.p99_latency_ms,
            "metrics": {e.metric: e.to_dict() for e in self.estimates},
            "alerts": self.alerts,
        }


@dataclass
class MonitorReport:
    id: str
    created_at: datetime
    model: str  # the version's ref, e.g. flight-delays@2
    alias: str | None
    task: str
    window: str
    since: datetime | None
    reference: str
    windows: list[Window]
    notes: list[str] = field(default_factory=list)
    reference_predictions: dict[str, Any] | None = None  # what the windows' are compared with
    estimated_before: int = 0  # windows whose estimates an earlier report had already

    @property
    def latest(self) -> Window | None:
        return self.windows[-1] if self.windows else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "report": self.id,
            "created_at": self.created_at.isoformat(),
            "model": self.model,
            "alias": self.alias,
            "task": self.task,
            "window": self.window,
            "since": self.since.isoformat() if self.since else None,
            "reference": self.reference,
            "estimator": METHOD,
            "reference_predictions": self.reference_predictions,
            "notes": self.notes,
            "windows": [w.to_dict() for w in self.windows],
        }


def _is_prediction(c: ColumnDrift) -> bool:
    return c.column.startswith("prediction (")


def _inputs_tested(drift: DriftReport | None) -> list[ColumnDrift]:
    return [c for c in drift.tested if not _is_prediction(c)] if drift else []


def monitor(
    project: Project,
    model_ref: str,
    spec: WindowSpec,
    since: datetime | None = None,
    reference: str | None = None,
    target: str | None = None,
    options: Options | None = None,
    drift: bool = True,
) -> MonitorReport:
    """Compute a report over ``model_ref``'s logged predictions (not yet stored).

    ``drift=False`` leaves input and prediction drift out: a classifier's report then
    reads only the logged answers, not the inputs (a regressor's nanny model needs them),
    which is what an hourly estimate of performance costs."""
    # while Polars is imported and the log read: NumPy, its random numbers (the bands)
    # and masked arrays (Polars' Series from arrays, in drift), 12-14 ms apiece later
    preload("numpy", "numpy.random", *(["numpy.ma"] if drift else []))
    import polars as pl

    opts = options or Options()
    opts.check()

    def reads(task: str | None) -> bool:
        """Whether the logged inputs are read with the answers: a regressor's nanny model
        needs them (a classifier's are read a window at a time, for its drift only)."""
        return task == "regression"

    # windows before the latest MAX_WINDOWS, and their rows: those stay unread
    older: list[int] = [0, 0]

    def skip(order: pl.DataFrame) -> int:
        starts = window_bounds(order, spec)
        older[0] = max(0, len(starts) - 1 - MAX_WINDOWS)
        older[1] = int(starts[older[0]])
        return older[1]

    mv = project.models.resolve(model_ref)
    alias = model_ref.split("@", 1)[1] if "@" in model_ref else None
    if alias is not None and alias.isdigit():
        alias = None
    inputs = list(mv.signature.get("inputs") or {})
    # A classifier's reference is learnt once, from what its run kept of the validation
    # rows where it can (core/monitor/learnt.py): then no report needs its model.
    kept = learnt.load(project, mv) if reference is None and mv.dataset_ref else None
    said_task, said_classes = mv.signature.get("task"), mv.signature.get("classes")
    # else what the run kept is learnt from (on the other core, while this one reads
    # the log), when it can have kept any
    from_run = (
        kept is None and reference is None and bool(mv.dataset_ref) and learnt.keeps_scores(mv)
    )
    model: Any = None
    ref: Reference | None = None
    training: Future[tuple[Table, str | None]] | None = None
    if kept is not None or from_run:
        # A first report's training side is read beside the learning and the log, not
        # after the learning: the windows wait for it (1M rows: 0.09-0.17 s less).
        aside = ThreadPoolExecutor(2)
        try:
            learning = None
            if kept is not None:
                ref_label, task, classes = kept.label, kept.estimator.task, kept.estimator.classes
            else:
                assert mv.dataset_ref is not None and said_classes
                ref_label = reference_label(mv.dataset_ref, mv.run_id)
                task, classes = str(said_task), list(said_classes)
                learning = aside.submit(learnt.learn_from_run, project, mv, ref_label)
            names = _output_names(task, classes) or []
            earlier = kept_windows(project, mv, spec, ref_label)
            if drift and (options is not None or not earlier.drift):  # every window anew
                training = read = aside.submit(training_side, project, mv, None, inputs)
                # then its columns sorted (or counted) from the last one back, while the
                # windows test theirs from the first on: each is prepared once, by the
                # first thread to come to it (``Table.derived``); none waits for all
                aside.submit(lambda: prepare(read.result()[0], inputs[::-1]))
            # The inputs are read later, for the rows that need them only: a
            # classifier's by each window tested anew, as it is tested (the latest
            # report's keep their drift; an hourly report: the newest one or none); a
            # regressor's from the first window estimated or tested anew on (its nannies
            # read the features).
            later = task == "regression"
            # after an earlier report the answers too are read later, for the windows
            # computed anew only (an hourly report: the newest one or none)
            lazy = bool(earlier.estimates)
            logged = read_logged(
                project, mv, since, names, False, skip,
                [] if lazy else output_columns(task, classes),
            )  # fmt: skip
            kept = learning.result() if learning else kept
        except BaseException:
            aside.shutdown(cancel_futures=True)
            raise
        aside.shutdown(wait=False)
    if kept is not None:
        est, ref_outputs = kept.estimator, kept.outputs
    else:  # a model of another task, another reference, or a run that kept nothing
        # The log is read (off the GIL) while the model loads (imports, on it): the
        # signature of a model trained here names its outputs; otherwise the model does.
        said = _output_names(said_task, said_classes)
        lazy = False
        with ThreadPoolExecutor(1) as pool:
            early = (
                pool.submit(read_logged, project, mv, since, said, reads(said_task), skip)
                if said
                else None
            )
            model = project.models.load(mv)
            ref = reference_for(project, mv, model, reference, target)
            task, classes, _ = task_of(model, mv, target)
            names = _output_names(task, classes) or ["prediction"]
            early_log = early.result() if early and names == said else None
        later = False
        logged = early_log or read_logged(project, mv, since, names, reads(task), skip)
        x_ref = matrix(model, ref.frame, inputs) if task == "regression" else (None, [])
        est = Estimator.fit(
            task, classes, ref.y, ref.outputs.pred, ref.outputs.scores, x_ref[0], x_ref[1]
        )
        ref_outputs, ref_label = ref.outputs, ref.label
        if reference is None and mv.dataset_ref:
            learnt.save(project, mv, learnt.Learnt(ref_label, est, ref_outputs))
    frame = logged.frame
    if frame.height == 0:
        where = f" since {since:%Y-%m-%d %H:%M}" if since else ""
        others = (
            f" ({logged.other_versions:,} rows were answered by other versions of {mv.model}: "
            f"monitor NAME@VERSION for those)"
            if logged.other_versions
            else ""
        )  # an alias just moved to a version that has answered nothing yet
        raise NotFoundError(
            f"{mv.ref} has no logged predictions{where}{others}: serve it (`workbench serve`) "
            f"or score a batch (`workbench predict {mv.ref} FILE -o OUT`) first"
        )
    import numpy as np

    x_all = None
    labels = frame.get_column("label")
    has_label = labels.is_not_null().to_numpy()
    if task == "regression":
        y_all = labels.cast(pl.Float64, strict=False).to_numpy()
    elif not has_label.any():  # nothing labelled yet, as for most of a log's life
        y_all = np.zeros(frame.height, dtype=np.int64)  # never read (no row is labelled)
    else:
        y_all = positions(labels, classes or [])
        has_label &= y_all >= 0
    bounds = window_bounds(frame, spec)  # of the windows read: the latest MAX_WINDOWS
    notes = []
    first = older[0]
    if first:
        notes.append(f"{first:,} older window(s) left out; the latest {MAX_WINDOWS} are shown")
    if logged.other_versions:
        notes.append(
            f"{logged.other_versions:,} row(s) logged by other versions of {mv.model} are not "
            f"in this report (monitor NAME@VERSION for those)"
        )
    if not drift:
        notes.append("drift not computed (--no-drift): estimates, labels and traffic only")
    requests = requests_of(project, mv)
    ts = frame.get_column("ts")
    rids = frame.get_column("request_id")
    report_id = uuid.uuid4().hex
    slices = list(itertools.pairwise(bounds))
    row_nums = frame.get_column("row")
    ends = [
        (f"{rids[int(a)]}:{row_nums[int(a)]}", f"{rids[int(b) - 1]}:{row_nums[int(b) - 1]}")
        for a, b in slices
    ]
    keys = [
        (ts[int(a)].isoformat(), ts[int(b) - 1].isoformat(), first, last, int(b - a))
        for (a, b), (first, last) in zip(slices, ends, strict=True)
    ]
    # A window the latest report already had (the very same rows) keeps its drift report
    # and, under the same learnt reference and method, its estimates (labels are only
    # ever added, so the same count is the same labels): hourly monitoring computes only
    # what is new.
    if kept is None:
        earlier = kept_windows(project, mv, spec, None)
    known = [earlier.drift.get(k) if options is None and drift else None for k in keys]
    reused = [
        earlier.estimates.get((*k, int(has_label[a:b].sum())))
        for k, (a, b) in zip(keys, slices, strict=True)
    ]
    anew = [
        drift and k is None and b - a >= MIN_DRIFT_ROWS
        for k, (a, b) in zip(known, slices, strict=True)
    ]
    estimated = task == "regression" and not all(reused)  # DLE's nannies read features
    need = [n or (estimated and r is None) for n, r in zip(anew, reused, strict=True)]
    tested_rows: pl.DataFrame | None = None
    a0 = a1 = 0
    needs = [r is None or n for r, n in zip(reused, anew, strict=True)]  # the answers
    windowed = task != "regression"  # a classifier's windows read their own inputs
    want_x, want_y = later and any(need), lazy and any(needs)
    answers = output_columns(task, classes) if want_y else []
    got: pl.DataFrame | None = None
    reread: list[pl.DataFrame] = []  # the inputs of the windows tested anew, read again
    if want_x or want_y:  # from the first window that needs them on (need within needs)
        a1 = min(int(a) for (a, _), n in zip(slices, needs, strict=True) if n)
        a0 = min((int(a) for (a, _), n in zip(slices, need, strict=True) if n), default=a1)
        got = logged.more([*(inputs if want_x else []), *answers], a1, None)  # files just read
        if got is None:  # they went another way, or changed since: read again (the
            at = older[1] + a1  # inputs of the windows tested anew too, in the same read)
            x = want_x or (windowed and any(anew))
            got = read_logged(project, mv, since, names, x, lambda _: at, answers).frame
            if x and windowed:
                reread.append(got.select("request_id", "row", *inputs))
        if want_x:
            tested_rows = got.select("request_id", "row", *inputs)
    if estimated:
        if model is None:
            model = project.models.load(mv)
        if tested_rows is None:
            x_all = matrix(model, frame, inputs)[0]
        else:  # rows before a0 are in windows estimated before: left as zeros, unused
            x_tail = matrix(model, aligned(frame, tested_rows, a0), inputs)[0]
            x_all = np.zeros((frame.height, x_tail.shape[1]))
            x_all[a0:] = x_tail
    # The training side is read (and sorted) only when some window is tested anew (a first
    # report's was started beside the log's read, above).
    out = outputs_of(frame, task, classes) if any(needs) and not lazy else None
    if got is not None and want_y:
        out = outputs_after(frame, got, a1, task, classes)
    if any(anew):
        if training is None:
            side = training_side(project, mv, ref, inputs)
        ref_pred = Table.of_frame(
            "reference", prediction_series(ref_outputs.scores, ref_outputs.pred, task).to_frame()
        )

    stamp = audit.now()
    reading = threading.Lock()

    def read_again() -> pl.DataFrame:
        """The inputs of the rows windows test anew, when the files the answers came
        from have gone: read again once, for every window."""
        with reading:
            if not reread:
                at = older[1] + min(int(a) for (a, _), n in zip(slices, anew, strict=True) if n)
                got = read_logged(project, mv, since, names, True, lambda _: at, []).frame
                reread.append(got.select("request_id", "row", *inputs))
            return reread[0]

    def one(i: int) -> Window:
        a, b = int(slices[i][0]), int(slices[i][1])
        part = frame.slice(a, b - a)
        if tested_rows is not None and anew[i]:  # matched by request and row, not position
            part = part.join(
                tested_rows, on=["request_id", "row"], how="left", maintain_order="left"
            )
        elif windowed and anew[i]:
            part = window_inputs(logged, part, a, inputs, read_again)
        mask = has_label[a:b]
        again = reused[i]
        if again is not None:
            estimates = [Estimate(m, **d) for m, d in again[0].items()]
            summary = again[1]
        else:
            assert out is not None
            estimates = est.window(
                out.pred[a:b],
                out.scores[a:b],
                x_all[a:b] if x_all is not None else None,
                mask,
                y_all[a:b][mask],
            )
            summary = predicted.summary(task, classes, out.pred[a:b], out.scores[a:b])
        first_ts, last_ts = ts[a], ts[b - 1]
        label = window_label(spec, first_ts, last_ts, rids[a], i + first)
        scored = requests.scored(rids.slice(a, b - a))
        tested, stored = None, False
        earlier_id = known[i]
        if earlier_id is not None:
            tested, stored = project.drift.get(earlier_id), True
        elif anew[i]:
            assert out is not None
            train_side, train_id = training.result() if training else side
            tested = window_drift(
                mv, train_side, part, inputs, opts, ref_pred,
                prediction_series(out.scores[a:b], out.pred[a:b], task),
                report_id, f"{mv.ref} {window_name(spec.text, label, first_ts, scored)}", train_id,
                # stamped in window order: the windows are tested two at a time, and by
                # their own clocks `drift list` showed window 62 after 63
                stamp + timedelta(microseconds=i),
            )  # fmt: skip
        cols = _inputs_tested(tested)
        share = sum(1 for c in cols if c.drifted) / len(cols) if cols else None
        pred_col = next((c for c in tested.columns if _is_prediction(c)), None) if tested else None
        err, p99 = requests.span(first_ts, last_ts)
        return Window(
            pos=i,
            label=label,
            first_ts=first_ts,
            last_ts=last_ts,
            rows=b - a,
            labelled=int(mask.sum()),
            drift=tested,
            drift_share=share,
            drifted=None if share is None else share >= opts.drift_share,
            prediction_drift=pred_col.drifted if pred_col else None,
            error_rate=err,
            p99_latency_ms=p99,
            estimates=estimates,
            drift_stored=stored,
            predictions=summary,
            from_row=ends[i][0],
            to_row=ends[i][1],
            scored=scored,
        )

    with ThreadPoolExecutor(2) as pool:
        if any(anew):  # the training side's columns sorted (or counted) once, half each
            if training is None:  # a first report's were, beside the log's read
                halves = [inputs[::2], inputs[1::2]]
                list(pool.map(lambda names: prepare(side[0], names), halves))
            prepare(ref_pred, ["prediction"])
        windows = list(pool.map(one, range(len(slices))))
    return MonitorReport(
        id=report_id,
        created_at=audit.now(),
        model=mv.ref,
        alias=alias,
        task=task,
        window=spec.text,
        since=since,
        reference=ref_label,
        windows=windows,
        notes=notes,
        reference_predictions=predicted.summary(
            task, classes, ref_outputs.pred, ref_outputs.scores
        ),
        estimated_before=sum(r is not None for r in reused),
    )


def _output_names(task: str | None, classes: list[Any] | None) -> list[str] | None:
    """The output columns a model answers with: ``prediction`` and, for a classifier, a
    ``proba_<class>`` per class (None when the task is not known)."""
    if task == "regression":
        return ["prediction"]
    if task in ("binary", "multiclass") and classes:
        return ["prediction", *output_columns(task, classes)]
    return None
