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

import builtins
import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, fields, replace
from typing import TYPE_CHECKING, Any

from workbench.core.data.sources import Table
from workbench.core.drift.columns import (
    ColumnDrift,
    DriftReport,
    Options,
    compare_column,
    schema_finding,
)
from workbench.core.errors import DataError, UsageError
from workbench.core.preload import preload
from workbench.core.store import audit
from workbench.core.store.rows import insert_rows
from workbench.core.text import known_hint

if TYPE_CHECKING:
    from collections.abc import Callable

    import duckdb
    import polars as pl

    from workbench.core.data.datasets import Datasets
    from workbench.core.models.versions import ModelVersion
    from workbench.core.store.catalog import Catalog

_REPORT_SCHEMA = {
    "id": "String", "created_at": "Datetime", "reference": "String", "reference_id": "String",
    "current": "String", "current_id": "String", "options": "String",
    "drift_share": "Float64", "n_tested": "Int32", "n_drifted": "Int32", "share": "Float64",
    "drifted": "Boolean", "series_id": "String",
}  # fmt: skip
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


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


# a report a monitor window computed (its drift against the model's training data)
_OF_WINDOWS = "id IN (SELECT drift_report FROM monitor_windows WHERE drift_report IS NOT NULL)"


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
            # the model scores both sides: say what is missing as `predict` does, up front
            missing = [c for c in (mv.inputs if mv is not None else []) if c not in side.schema]
            if missing:
                raise DataError(
                    f"{side.label} lacks column(s) the model needs: {', '.join(missing[:10])}"
                    + (f" (and {len(missing) - 10} more)" if len(missing) > 10 else "")
                )
        if mv is not None and opts.columns is None and mv.inputs:
            opts = replace(
                opts, columns=[c for c in mv.inputs if c in ref.schema or c in cur.schema]
            )
        names = _columns(ref, cur, opts)
        explicit = opts.columns is not None and mv is None
        compared = [n for n in names if schema_finding(n, ref, cur, explicit)[1]]
        for side in (ref, cur):
            side.plan(compared)
        preload("numpy")  # every test needs it; imported while the sides are read
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
            self.save_all([report])
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
        reports = [
            self.compare(
                ref.spec,
                c,
                opts,
                save=False,
                model=mv,
                _ref_side=ref,
                _series_id=series_id,
                _model_cache=cache,
            )
            for c in currents
        ]
        if save:  # all or none, in one commit
            self.save_all(reports)
        return reports

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
        from workbench.core.models.inputs import conform, predict_frame

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

    def save_all(self, reports: builtins.list[DriftReport]) -> None:
        """Store reports (one, or a timeline's) in one transaction: all of them or none,
        and one commit instead of one a report (each ~20 ms, most of it the checkpoint)."""
        with self.catalog.write() as con:
            self.save_all_in(con, reports)

    @staticmethod
    def save_all_in(con: duckdb.DuckDBPyConnection, reports: builtins.list[DriftReport]) -> None:
        """Store reports (and their audit entries, in order) inside the caller's
        transaction (a promotion keeps the reports its gates computed in the same
        transaction as the alias move) with one statement a table: a monitor report's
        windows each carry one, and three statements apiece took most of its save (~100
        of 127 ms for 11)."""
        results = [
            [
                report.id, i, c.column, c.kind, c.status, c.reason, c.method, c.statistic,
                c.p_value, c.threshold, c.drifted, c.ref_dtype, c.cur_dtype, c.ref_count,
                c.cur_count, c.ref_null_share, c.cur_null_share, json.dumps(c.notes),
                json.dumps(c.plot) if c.plot else None,
            ]
            for report in reports
            for i, c in enumerate(report.columns)
        ]  # fmt: skip
        heads = [
            [
                report.id, report.created_at, report.reference, report.reference_id,
                report.current, report.current_id, json.dumps(report.options),
                report.drift_share, len(report.tested), report.n_drifted, report.share,
                report.drifted, report.series_id,
            ]
            for report in reports
        ]  # fmt: skip
        insert_rows(con, "drift_reports", heads, _REPORT_SCHEMA)
        insert_rows(con, "drift_results", results, _RESULT_SCHEMA)
        audit.append_many(
            con,
            [
                (
                    audit.now(),
                    audit.actor(),
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
                for report in reports
            ],
        )

    # ---- reading stored reports ---------------------------------------------------
    def list(
        self, limit: int | None = 50, dataset: str | None = None, windows: bool = False
    ) -> list[dict[str, Any]]:
        """Stored reports, newest first. Those of monitor windows only with ``windows``:
        a model watched hourly adds 24 a day, which buried a user's own comparisons (its
        monitor report lists them window by window)."""
        where, args = self._where(dataset, windows)
        sql = (
            "SELECT id, created_at, reference, current, n_tested, n_drifted, share, drifted, "
            f"series_id, options->>'model' AS model FROM drift_reports{where}"
            " ORDER BY created_at DESC"
        )
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
            "model",  # a model-aware report's model (its features and its prediction)
        )
        with self.catalog.read() as con:
            return [dict(zip(keys, r, strict=True)) for r in con.execute(sql, args).fetchall()]

    def window_reports(self, dataset: str | None = None) -> int:
        """How many reports ``list`` leaves out unless asked for monitor windows'."""
        from workbench.core.store.catalog import one

        where, args = self._where(dataset, windows=True)
        where += " AND " if where else " WHERE "
        with self.catalog.read() as con:
            (n,) = one(con, f"SELECT count(*) FROM drift_reports{where}{_OF_WINDOWS}", args)
        return int(n)

    @staticmethod
    def _where(dataset: str | None, windows: bool) -> tuple[str, builtins.list[Any]]:
        terms: builtins.list[str] = []
        args: builtins.list[Any] = []
        if dataset is not None:
            terms.append("(split_part(reference, '@', 1) = ? OR split_part(current, '@', 1) = ?)")
            args += [dataset, dataset]
        if not windows:
            terms.append(f"NOT {_OF_WINDOWS}")
        return (" WHERE " + " AND ".join(terms) if terms else ""), args

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
            # drift_results holds a ColumnDrift's fields in order (column as column_name)
            values = dict(zip([f.name for f in fields(ColumnDrift)], r, strict=True))
            values["notes"] = json.loads(values["notes"])
            values["plot"] = json.loads(values["plot"]) if values["plot"] else None
            cols.append(ColumnDrift(**values))
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
                f"no column {', '.join(map(repr, unknown))} in {ref.label} or {cur.label}"
                + known_hint(unknown[0], list(dict.fromkeys([*ref.schema, *cur.schema])))
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
