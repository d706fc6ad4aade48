"""Drift between two datasets, column by column, with a dataset-level verdict.

A side is a dataset version (``churn@3``) or a file that has not been added yet (a new
batch). Each column is loaded on its own, cleaned (nulls out; NaN and +-inf out of
numbers) and handed to one method of :mod:`workbench.core.drift.stattests`; columns run in
parallel threads (Polars and numpy release the GIL), so memory holds a few columns at a
time rather than both tables. Schema differences are findings, never crashes: a column
on one side only, a changed type, an all-null or constant column, unseen categories.

Reports are stored in the catalog (``drift_reports``, ``drift_results``) so that the TUI
and later reports show them without recomputing.
"""

from __future__ import annotations

import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from workbench.core.data.profile import kind_of
from workbench.core.data.sources import Table
from workbench.core.drift.stattests import default_method, get_method
from workbench.core.errors import DataError, UsageError
from workbench.core.store import audit

if TYPE_CHECKING:
    from collections.abc import Callable

    import duckdb
    import numpy as np
    import polars as pl

    from workbench.core.data.datasets import Datasets
    from workbench.core.models.registry import ModelVersion
    from workbench.core.store.catalog import Catalog

_RESULT_SCHEMA = {
    "report_id": "String",
    "pos": "Int32",
    "column_name": "String",
    "kind": "String",
    "status": "String",
    "reason": "String",
    "method": "String",
    "statistic": "Float64",
    "p_value": "Float64",
    "threshold": "Float64",
    "drifted": "Boolean",
    "ref_dtype": "String",
    "cur_dtype": "String",
    "ref_count": "Int64",
    "cur_count": "Int64",
    "ref_null_share": "Float64",
    "cur_null_share": "Float64",
    "notes": "String",
    "plot": "String",
}
DRIFT_SHARE = 0.5
PLOT_BINS = 20
PLOT_CATEGORIES = 12
ID_LIKE_MIN_VALUES = 1000  # a text column with more distinct values, and > half its rows…
ID_LIKE_SHARE = 0.5  # …distinct, is an identifier or free text: skipped unless asked for
TESTED, SKIPPED, MISSING, FAILED = "tested", "skipped", "missing", "failed"


@dataclass
class ColumnDrift:
    """One column's finding. ``drifted`` is None when the column was not tested."""

    column: str
    kind: str
    status: str
    reason: str
    method: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    threshold: float | None = None
    drifted: bool | None = None
    ref_dtype: str | None = None
    cur_dtype: str | None = None
    ref_count: int = 0
    cur_count: int = 0
    ref_null_share: float | None = None
    cur_null_share: float | None = None
    notes: list[str] = field(default_factory=list)
    plot: dict[str, Any] | None = None

    @property
    def severity(self) -> float | None:
        """How far past its threshold a column is (1 = at it), so that columns tested by
        p-value and by distance sort together: threshold / p, or distance / threshold."""
        if self.status != TESTED or self.threshold is None:
            return None
        if self.method == "nulls":
            return float("inf")
        if self.p_value is not None:
            return self.threshold / max(self.p_value, 1e-300)
        return (self.statistic or 0.0) / self.threshold


@dataclass
class DriftReport:
    id: str
    created_at: Any
    reference: str
    current: str
    drift_share: float
    columns: list[ColumnDrift]
    options: dict[str, Any]
    series_id: str | None = None
    reference_id: str | None = None  # the dataset versions' content hashes (None for a file)
    current_id: str | None = None

    @property
    def tested(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.status == TESTED]

    @property
    def n_drifted(self) -> int:
        return sum(1 for c in self.tested if c.drifted)

    @property
    def share(self) -> float:
        return self.n_drifted / len(self.tested) if self.tested else 0.0

    @property
    def drifted(self) -> bool:
        return bool(self.tested) and self.share >= self.drift_share

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == name:
                return c
        raise UsageError(
            f"no column {name!r} in this report; columns: {', '.join(c.column for c in self.columns)}"
        )

    def to_dict(self, plots: bool = False) -> dict[str, Any]:
        cols = []
        for c in self.columns:
            d = asdict(c)
            if not plots:
                d.pop("plot")
            cols.append(d)
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(timespec="seconds") + "Z",
            "reference": self.reference,
            "current": self.current,
            "drift_share": self.drift_share,
            "n_tested": len(self.tested),
            "n_drifted": self.n_drifted,
            "share": self.share,
            "drifted": self.drifted,
            "options": self.options,
            "series_id": self.series_id,
            "columns": cols,
        }


def _numeric_values(s: pl.Series) -> np.ndarray:
    """Non-null values as numbers; integers stay integers (exact, and countable fast)."""
    import polars as pl

    if s.dtype.is_temporal():
        s = s.dt.epoch("us") if s.dtype != pl.Date else s.cast(pl.Int32)
    if s.dtype.is_integer() or s.dtype == pl.Boolean:
        exact = s.cast(pl.Int64, strict=False)
        if exact.null_count() == s.null_count():
            return exact.drop_nulls().to_numpy()
        # wider than 64 bits (an Int128 or UInt64 column with huge values): compare as floats
    f = s.cast(pl.Float64).drop_nulls()
    return f.filter(f.is_finite()).to_numpy()


def _category_codes(r: pl.Series, c: pl.Series) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Integer codes over the union of both sides' values (counting ints is fast)."""
    import polars as pl

    r, c = r.cast(pl.String).drop_nulls(), c.cast(pl.String).drop_nulls()
    keys = pl.concat([r, c]).unique().sort()
    mapping = dict(zip(keys.to_list(), range(len(keys)), strict=True))
    rc = r.replace_strict(mapping, return_dtype=pl.Int64).to_numpy()
    cc = c.replace_strict(mapping, return_dtype=pl.Int64).to_numpy()
    return rc, cc, keys.to_list()


def _count_distinct(r: np.ndarray, c: np.ndarray) -> int:
    """Distinct values of both sides, by sorting: a hash set of two million floats costs
    several times the memory of one sorted copy."""
    import numpy as np

    both = np.concatenate([r, c])
    both.sort()
    return 1 + int(np.count_nonzero(both[1:] != both[:-1])) if both.size else 0


def _hist_plot(r: np.ndarray, c: np.ndarray) -> dict[str, Any] | None:
    import numpy as np

    if not r.size and not c.size:
        return None
    both = np.concatenate([r, c])
    lo, hi = float(both.min()), float(both.max())
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, PLOT_BINS + 1)
    rs = np.histogram(r, edges)[0] / max(r.size, 1)
    cs = np.histogram(c, edges)[0] / max(c.size, 1)
    return {"type": "histogram", "edges": edges.tolist(), "ref": rs.tolist(), "cur": cs.tolist()}


def _bar_plot(rc: np.ndarray, cc: np.ndarray, keys: list[str]) -> dict[str, Any]:
    import numpy as np

    n = len(keys)
    rs = np.bincount(rc, minlength=n) / max(rc.size, 1)
    cs = np.bincount(cc, minlength=n) / max(cc.size, 1)
    order = np.argsort(-(rs + cs), kind="stable")
    top, rest = order[:PLOT_CATEGORIES], order[PLOT_CATEGORIES:]
    labels = [keys[i] for i in top]
    ref, cur = rs[top].tolist(), cs[top].tolist()
    if rest.size:
        labels.append(f"({rest.size} others)")
        ref.append(float(rs[rest].sum()))
        cur.append(float(cs[rest].sum()))
    return {"type": "bars", "labels": labels, "ref": ref, "cur": cur}


@dataclass
class Options:
    columns: list[str] | None = None
    method: str | None = None  # every column where it applies
    num_method: str | None = None
    cat_method: str | None = None
    column_methods: dict[str, str] = field(default_factory=dict)  # column -> method[:threshold]
    threshold: float | None = None
    drift_share: float = DRIFT_SHARE

    def check(self) -> None:
        for m in (self.method, self.num_method, self.cat_method):
            if m is not None:
                get_method(m)
        for col, spec in self.column_methods.items():
            name, _, thr = spec.partition(":")
            get_method(name)
            if thr:
                _threshold(thr, f"threshold for column {col!r}")
        if self.threshold is not None and not (0 < self.threshold < float("inf")):
            raise UsageError("--threshold must be a positive number")
        if not 0 < self.drift_share <= 1:
            raise UsageError("--drift-share must be in (0, 1]")


def _threshold(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise UsageError(f"invalid {what} {text!r}: give a positive number")
    return value


def _choose(
    opts: Options, name: str, numeric: bool, n_ref: int, n_unique: int
) -> tuple[str, str, float | None]:
    """The method for one column, why, and an explicit threshold if one was given."""
    explicit = opts.column_methods.get(name)
    if explicit:
        method, _, thr = explicit.partition(":")
        if get_method(method).numeric_only and not numeric:
            raise UsageError(f"{method} applies to numeric columns only, and {name!r} is not")
        return method, "chosen for this column", float(thr) if thr else None
    for m, why in (
        (opts.num_method if numeric else opts.cat_method, "chosen for this column type"),
        (opts.method, "chosen for all columns"),
    ):
        if m and (numeric or not get_method(m).numeric_only):
            return m, why, None
    method, why = default_method(numeric, n_ref, n_unique)
    if opts.method and not numeric:
        why = f"{opts.method} needs numbers, so the default: {why}"
    return method, f"default: {why}", None


def compare_column(name: str, ref: Table, cur: Table, opts: Options, explicit: bool) -> ColumnDrift:
    """One column's drift; every schema oddity becomes a finding, never an exception."""

    in_ref, in_cur = name in ref.schema, name in cur.schema
    if not (in_ref and in_cur):
        side = cur.label if in_ref else ref.label
        dtype = ref.schema.get(name) or cur.schema.get(name)
        return ColumnDrift(
            name,
            kind_of(dtype),
            MISSING,
            f"not in {side}",
            ref_dtype=str(ref.schema[name]) if in_ref else None,
            cur_dtype=str(cur.schema[name]) if in_cur else None,
        )
    rdt, cdt = ref.schema[name], cur.schema[name]
    rk, ck = kind_of(rdt), kind_of(cdt)
    out = ColumnDrift(name, rk, SKIPPED, "", ref_dtype=str(rdt), cur_dtype=str(cdt))
    if rdt != cdt:
        out.notes.append(f"type changed: {rdt} → {cdt}")
    kinds = {rk, ck}
    if "other" in kinds:
        out.reason = f"type {rdt if rk == 'other' else cdt} is not compared"
        return out
    if "datetime" in kinds and not explicit:
        out.reason = "dates and times drift by construction; name the column to compare it"
        return out
    r, c = ref.column(name), cur.column(name)
    out.ref_null_share = r.null_count() / len(r) if len(r) else None
    out.cur_null_share = c.null_count() / len(c) if len(c) else None
    numeric = kinds <= {"numeric", "boolean", "datetime"}
    if not numeric and kinds != {"categorical"}:
        out.notes.append("compared as text because the types differ")
    out.kind = "numeric" if numeric else "categorical"
    if numeric:
        rv, cv = _numeric_values(r), _numeric_values(c)
        keys: list[str] = []
    else:
        rv, cv, keys = _category_codes(r, c)
    out.ref_count, out.cur_count = int(rv.size), int(cv.size)
    if not rv.size or not cv.size:
        if rv.size or cv.size:
            empty = ref.label if not rv.size else cur.label
            out.status, out.drifted, out.method = TESTED, True, "nulls"
            out.reason = f"no values in {empty}: every value is null (or NaN/inf)"
        else:
            out.reason = "no values on either side"
        return out
    if numeric:
        n_unique = _count_distinct(rv, cv)
    else:  # codes already number the union of values: count, don't hash
        import numpy as np

        n_unique = len(keys)
        n_ref_unique = int(np.count_nonzero(np.bincount(rv, minlength=n_unique)))
        unseen = n_unique - n_ref_unique
        if unseen:
            new = np.setdiff1d(cv, rv).tolist()
            share = float(np.isin(cv, new).mean())
            shown = ", ".join(repr(keys[k]) for k in new[:5]) + (" …" if len(new) > 5 else "")
            out.notes.append(
                f"{unseen} value(s) never seen in {ref.label} ({share:.1%} of rows): {shown}"
            )
        if (
            not explicit
            and n_ref_unique > ID_LIKE_MIN_VALUES
            and n_ref_unique > ID_LIKE_SHARE * rv.size
        ):
            out.reason = (
                f"looks like an identifier or free text ({n_ref_unique:,} distinct values in "
                f"{rv.size:,} rows); name the column to compare it"
            )
            out.plot = _bar_plot(rv, cv, keys)
            return out
    if rv.min() == rv.max():
        out.notes.append(f"constant in {ref.label}")
    method_name, why, thr = _choose(opts, name, numeric, int(rv.size), n_unique)
    method = get_method(method_name)
    threshold = thr if thr is not None else opts.threshold or method.threshold
    out.method, out.reason, out.threshold = method_name, why, threshold
    try:
        stat, p = method.fn(rv, cv, numeric)
    except UsageError as exc:
        out.status, out.reason = FAILED, exc.message
        return out
    except (ValueError, FloatingPointError) as exc:
        out.status, out.reason = FAILED, f"{method.title} could not be computed: {exc}"
        return out
    out.status, out.statistic, out.p_value = TESTED, stat, p
    out.drifted = method.drifted(stat, p, threshold)
    out.plot = _hist_plot(rv, cv) if numeric else _bar_plot(rv, cv, keys)
    return out


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class Drift:
    """``Project().drift``: compare datasets, keep the reports."""

    def __init__(
        self,
        catalog: Catalog,
        datasets: Datasets,
        resolve_model: Callable[[str], ModelVersion],
        load_model: Callable[[ModelVersion], Any],
    ) -> None:
        """``resolve_model`` and ``load_model`` come from the registry: a report on a
        model's inputs and predictions needs the model, but registering is not drift's."""
        self.catalog = catalog
        self.datasets = datasets
        self._resolve_model = resolve_model
        self._load_model = load_model

    def compare(
        self,
        reference: str | None,
        current: str,
        options: Options | None = None,
        save: bool = True,
        model: str | ModelVersion | None = None,
        _ref_side: Table | None = None,
        _series_id: str | None = None,
        _model_cache: dict[str, Any] | None = None,
    ) -> DriftReport:
        """Compare ``current`` with ``reference`` column by column.

        With ``model`` (``churn-model@production``) the reference defaults to the dataset
        version that model was trained on, only its input columns are compared, and the
        distribution of its predictions on both sides is compared too.
        """
        opts = options or Options()
        opts.check()
        mv = self._resolve_model(model) if isinstance(model, str) else model
        reference = _model_reference(reference, mv)
        ref = _ref_side or Table(self.datasets, reference)
        cur = Table(self.datasets, current)
        for side in (ref, cur):
            if side.rows == 0:
                raise DataError(f"{side.label} has no rows: nothing to compare")
        if mv is not None and opts.columns is None and mv.inputs:
            opts = replace(
                opts, columns=[c for c in mv.inputs if c in ref.schema or c in cur.schema]
            )
        names = _columns(ref, cur, opts)
        explicit = opts.columns is not None and mv is None
        with ThreadPoolExecutor(_workers()) as pool:
            found = list(pool.map(lambda n: compare_column(n, ref, cur, opts, explicit), names))
        if mv is not None:
            found.append(self._prediction_drift(mv, ref, cur, opts, _model_cache))
        report = DriftReport(
            id=uuid.uuid4().hex,
            created_at=audit.now(),
            reference=ref.label,
            current=cur.label,
            drift_share=opts.drift_share,
            columns=found,
            options={
                **{k: v for k, v in asdict(opts).items() if v not in (None, {}, [])},
                **({"model": mv.ref} if mv else {}),
            },
            series_id=_series_id,
            reference_id=ref.content_id,
            current_id=cur.content_id,
        )
        if save:
            self.save(report)
        return report

    def series(
        self,
        reference: str | None,
        currents: list[str],
        options: Options | None = None,
        save: bool = True,
        model: str | None = None,
    ) -> list[DriftReport]:
        """One report per current side against one reference, read once: a timeline."""
        if not currents:
            raise UsageError("give at least one current dataset version or file")
        opts = options or Options()
        opts.check()
        mv = self._resolve_model(model) if model else None
        ref = Table(self.datasets, _model_reference(reference, mv), keep_columns=len(currents) > 1)
        series_id = uuid.uuid4().hex if len(currents) > 1 else None
        cache: dict[str, Any] = {}  # the loaded model and its reference predictions, once
        return [
            self.compare(
                ref.spec,
                c,
                opts,
                save=save,
                model=mv,
                _ref_side=ref,
                _series_id=series_id,
                _model_cache=cache,
            )
            for c in currents
        ]

    def _prediction_drift(
        self,
        mv: ModelVersion,
        ref: Table,
        cur: Table,
        opts: Options,
        cache: dict[str, Any] | None = None,
    ) -> ColumnDrift:
        """The model's output on both sides, compared like any column.

        ``cache`` carries the loaded model and the reference's predictions from one report
        of a timeline to the next: only the current side is new each time.
        """
        from workbench.core.models.scoring import conform, predict_frame

        cache = {} if cache is None else cache
        if "model" not in cache:
            cache["model"] = self._load_model(mv)
        inputs = mv.signature.get("inputs") or {}

        def predictions(side: Table) -> tuple[pl.Series, str]:
            df = conform(side.lf.select(list(inputs)).collect(), inputs, side.label)
            pred = predict_frame(cache["model"], df, list(inputs))
            probas = [c for c in pred.columns if c.startswith("proba_")]
            # binary: the positive class's probability; otherwise the label or the value
            if len(probas) == 2:
                return pred.get_column(probas[-1]).alias(
                    "prediction"
                ), f"probability of {probas[-1][6:]}"
            return pred.get_column("prediction"), "output"

        if "reference" not in cache:
            cache["reference"] = predictions(ref)
        (ref_pred, what), (cur_pred, _) = cache["reference"], predictions(cur)
        result = compare_column(
            "prediction",
            Table.of_frame(ref.label, ref_pred.to_frame()),
            Table.of_frame(cur.label, cur_pred.to_frame()),
            opts,
            explicit=True,
        )
        result.column = f"prediction ({mv.ref})"
        result.notes.append(f"{mv.ref}'s {what}")
        return result

    def save(self, report: DriftReport) -> None:
        """Store a report (and its audit entry) in one transaction."""
        with self.catalog.write() as con:
            self.save_in(con, report)

    def save_in(self, con: duckdb.DuckDBPyConnection, report: DriftReport) -> None:
        """Store a report inside the caller's transaction (a promotion keeps the reports
        its gates computed in the same transaction as the alias move)."""
        rows = [
            [
                report.id,
                i,
                c.column,
                c.kind,
                c.status,
                c.reason,
                c.method,
                c.statistic,
                c.p_value,
                c.threshold,
                c.drifted,
                c.ref_dtype,
                c.cur_dtype,
                c.ref_count,
                c.cur_count,
                c.ref_null_share,
                c.cur_null_share,
                json.dumps(c.notes),
                json.dumps(c.plot) if c.plot else None,
            ]
            for i, c in enumerate(report.columns)
        ]
        con.execute(
            "INSERT INTO drift_reports VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                report.id,
                report.created_at,
                report.reference,
                report.reference_id,
                report.current,
                report.current_id,
                json.dumps(report.options),
                report.drift_share,
                len(report.tested),
                report.n_drifted,
                report.share,
                report.drifted,
                report.series_id,
            ],
        )
        if rows:
            import polars as pl

            # one columnar insert: executemany costs ~1 ms a row (11 s for 10k columns)
            schema = {k: getattr(pl, t) for k, t in _RESULT_SCHEMA.items()}
            frame = pl.DataFrame(rows, schema=schema, orient="row")
            con.register("wb_drift_rows", frame.to_arrow())
            try:
                con.execute("INSERT INTO drift_results SELECT * FROM wb_drift_rows")
            finally:
                con.unregister("wb_drift_rows")
        audit.append(
            con,
            "drift.report",
            f"drift:{report.id}",
            {
                "reference": report.reference,
                "current": report.current,
                "drifted": report.drifted,
                "share": round(report.share, 6),
                "n_drifted": report.n_drifted,
                "n_tested": len(report.tested),
            },
        )

    # ---- reading stored reports ---------------------------------------------------
    def list(self, limit: int | None = 50, dataset: str | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT id, created_at, reference, current, n_tested, n_drifted, share, drifted, "
            "series_id FROM drift_reports"
        )
        args: list[Any] = []
        if dataset is not None:
            sql += " WHERE split_part(reference, '@', 1) = ? OR split_part(current, '@', 1) = ?"
            args += [dataset, dataset]
        sql += " ORDER BY created_at DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        keys = (
            "id",
            "created_at",
            "reference",
            "current",
            "n_tested",
            "n_drifted",
            "share",
            "drifted",
            "series_id",
        )
        with self.catalog.read() as con:
            return [dict(zip(keys, r, strict=True)) for r in con.execute(sql, args).fetchall()]

    def get(self, report_id: str) -> DriftReport:
        from workbench.core.errors import NotFoundError

        prefix = report_id.removeprefix("drift:").lower()
        with self.catalog.read() as con:
            heads = con.execute(
                "SELECT id, created_at, reference, current, drift_share, options, series_id, "
                "reference_id, current_id FROM drift_reports WHERE starts_with(id, ?)",
                [prefix],
            ).fetchall()
            if not heads or not prefix:
                raise NotFoundError(f"no drift report {report_id!r} (see `workbench drift list`)")
            if len(heads) > 1:
                raise UsageError(f"{report_id!r} matches {len(heads)} reports; give more digits")
            rid, created, reference, current, share, options, series, ref_id, cur_id = heads[0]
            rows = con.execute(
                "SELECT column_name, kind, status, reason, method, statistic, p_value, threshold, "
                "drifted, ref_dtype, cur_dtype, ref_count, cur_count, ref_null_share, "
                "cur_null_share, notes, plot FROM drift_results WHERE report_id = ? ORDER BY pos",
                [rid],
            ).fetchall()
        cols = []
        for r in rows:
            *head, notes, plot = r
            cols.append(
                ColumnDrift(*head, notes=json.loads(notes), plot=json.loads(plot) if plot else None)
            )
        return DriftReport(
            rid,
            created,
            reference,
            current,
            share,
            cols,
            json.loads(options),
            series,
            ref_id,
            cur_id,
        )


def _model_reference(reference: str | None, mv: ModelVersion | None) -> str:
    if reference is not None:
        return reference
    if mv is None:
        raise UsageError("give a reference dataset, or --model NAME@ALIAS to use its training data")
    if mv.dataset_ref is None:
        raise UsageError(f"{mv.ref} has no recorded training dataset; give a reference")
    return mv.dataset_ref


def _columns(ref: Table, cur: Table, opts: Options) -> list[str]:
    """Columns to compare: those asked for, else both sides' columns (reference order first)."""
    if opts.columns is not None:
        unknown = [c for c in opts.columns if c not in ref.schema and c not in cur.schema]
        if unknown:
            raise UsageError(
                f"no column {', '.join(map(repr, unknown))} in {ref.label} or {cur.label}; "
                f"columns: {', '.join(ref.schema)}"
            )
        return list(dict.fromkeys(opts.columns))
    common = [c for c in ref.schema if c in cur.schema]
    if not common:
        raise DataError(
            f"{ref.label} and {cur.label} have no column in common "
            f"({ref.label}: {', '.join(list(ref.schema)[:8])}; "
            f"{cur.label}: {', '.join(list(cur.schema)[:8])})"
        )
    return list(ref.schema) + [c for c in cur.schema if c not in ref.schema]
