"""Batch scoring: ``workbench predict churn-model@production new.csv -o scored.parquet``.

The input (a file or a dataset version) streams through in batches, so memory stays
bounded whatever its size. Each batch is checked against the model's input signature:
missing columns and values that cannot become the type the model was trained on are one
clear error naming them; extra columns are carried through untouched; safe casts
(int to float, numeric text to numbers, ISO text to dates) are applied. Output is
written to a temporary file and renamed at the end, so a failure leaves no half file.
Each scoring is recorded with its prediction distribution, for prediction drift later.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from workbench.core.data.sources import Table
from workbench.core.errors import DataError, UsageError
from workbench.core.store import audit

if TYPE_CHECKING:
    import polars as pl

    from workbench.core.models.versions import ModelVersion
    from workbench.core.project import Project

BATCH_ROWS = 100_000
SAMPLE_ROWS = 100_000  # predictions kept to describe the distribution
_TIME_UNITS: dict[str, Literal["ns", "us", "ms"]] = {"ns": "ns", "us": "us", "ms": "ms"}
OUTPUTS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def dtype_of(text: str) -> pl.DataType | type[pl.DataType] | None:
    """A polars dtype from the string a signature stores (None when unknown)."""
    import polars as pl

    simple = {
        "Boolean": pl.Boolean,
        "Date": pl.Date,
        "String": pl.String,
        "Utf8": pl.String,
        "Categorical": pl.String,
        "Float32": pl.Float64,
        "Float64": pl.Float64,
    }
    if text in simple:
        return simple[text]
    if re.fullmatch(r"U?Int(8|16|32|64|128)", text):
        return pl.Float64  # the feature matrix is float: any integer type reads the same
    m = re.match(r"Datetime\(time_unit='(\w+)'", text)
    if m and m.group(1) in _TIME_UNITS:
        return pl.Datetime(_TIME_UNITS[m.group(1)])
    return None


def conform(df: pl.DataFrame, inputs: dict[str, str], where: str) -> pl.DataFrame:
    """The signature's columns in the signature's types, or a DataError that names them."""
    import polars as pl

    schema = df.schema  # built anew on every access: once, not per column
    missing = [c for c in inputs if c not in schema]
    if missing:
        raise DataError(
            f"{where} lacks column(s) the model needs: {', '.join(missing[:10])}"
            + (f" (and {len(missing) - 10} more)" if len(missing) > 10 else "")
        )
    exprs = []
    for col, text in inputs.items():
        want, have = dtype_of(text), schema[col]
        if want is None or have == want or (want == pl.String and have == pl.Categorical):
            continue
        c = pl.col(col)
        if want == pl.String:
            exprs.append(c.cast(pl.String))
        elif have == pl.String and want == pl.Date:
            exprs.append(c.str.to_date(strict=False))
        elif have == pl.String and isinstance(want, pl.Datetime):
            exprs.append(c.str.to_datetime(strict=False).cast(want))
        elif (have.is_numeric() or have in (pl.Boolean, pl.String)) and (
            want.is_numeric() or want == pl.Boolean
        ):
            exprs.append(c.cast(want, strict=False))
        elif have.is_temporal() and want.is_temporal():
            exprs.append(c.cast(want))
        else:
            raise DataError(f"column {col!r} is {have} in {where}, but the model needs {text}")
    if not exprs:
        return df
    out = df.with_columns(exprs)
    names = [e.meta.output_name() for e in exprs]
    # Values a cast turned into nulls, every column in one query (per-column Series
    # operations cost a query each: most of a one-row request's time).
    lost = df.select(
        (pl.col(n).is_not_null() & e.is_null()).sum().alias(n)
        for n, e in zip(names, exprs, strict=True)
    ).row(0)
    for col, count in zip(names, lost, strict=True):
        if count:
            bad = df.get_column(col).is_not_null() & out.get_column(col).is_null()
            value = df.get_column(col).filter(bad)[0]
            raise DataError(
                f"column {col!r} in {where} cannot be read as {inputs[col]}: e.g. {value!r} "
                f"({int(bad.sum()):,} such values in this batch)"
            )
    return out


def predict_frame(model: Any, df: pl.DataFrame, inputs: list[str]) -> pl.DataFrame:
    """Predictions (and class probabilities) for a conformed batch."""
    import polars as pl

    from workbench.core.runs.model import Model

    if isinstance(model, Model):
        return model.predict(df)
    # A model logged from a user's script: a plain estimator over the signature's columns.
    x = df.select(inputs).to_numpy() if inputs else df.to_numpy()
    out = {"prediction": model.predict(x)}
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(x)
        for i, cls in enumerate(getattr(model, "classes_", range(proba.shape[1]))):
            out[f"proba_{cls}"] = proba[:, i]
    return pl.DataFrame(out)


@dataclass
class ScoreResult:
    id: str
    model: str
    input: str
    output: Path
    rows: int
    distribution: dict[str, Any]


def _distribution(preds: list[pl.DataFrame], rows: int) -> dict[str, Any]:
    import numpy as np
    import polars as pl

    if not preds:
        return {"rows": 0}
    sample = pl.concat(preds)
    p = sample.get_column("prediction")
    if p.dtype.is_numeric() and not [c for c in sample.columns if c.startswith("proba_")]:
        v = p.cast(pl.Float64).drop_nulls().to_numpy()
        counts, edges = np.histogram(v, bins=20) if v.size else (np.array([]), np.array([]))
        return {
            "rows": rows,
            "kind": "numeric",
            "sampled": len(sample) < rows,
            "mean": float(v.mean()) if v.size else None,
            "std": float(v.std()) if v.size else None,
            "quantiles": {str(q): float(np.quantile(v, q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95)}
            if v.size
            else {},
            "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
        }
    shares = (
        p.cast(pl.String).value_counts(normalize=True, name="share").sort("share", descending=True)
    )
    return {
        "rows": rows,
        "kind": "classes",
        "sampled": len(sample) < rows,
        "classes": {str(k): float(s) for k, s in shares.head(50).iter_rows()},
        "mean_proba": {
            c.removeprefix("proba_"): float(sample.get_column(c).cast(pl.Float64).sum())
            / max(1, sample.get_column(c).count())
            for c in sample.columns
            if c.startswith("proba_")
        },
    }


def _writer(tmp: Path, fmt: str) -> tuple[Any, Any]:
    """An append function and a close function for the output format."""
    state: dict[str, Any] = {}
    if fmt == "parquet":
        import pyarrow.parquet as pq

        def append(df: pl.DataFrame) -> None:
            table = df.to_arrow()
            if "w" not in state:
                state["w"] = pq.ParquetWriter(tmp, table.schema, compression="zstd")
            state["w"].write_table(table)

        def close() -> None:
            if "w" in state:
                state["w"].close()

        return append, close
    fh = open(tmp, "wb")  # noqa: SIM115 (closed by close())

    def append_text(df: pl.DataFrame) -> None:
        if fmt == "csv":
            df.write_csv(fh, include_header="header" not in state)
            state["header"] = True
        else:
            df.write_ndjson(fh)

    def close_text() -> None:
        fh.close()

    return append_text, close_text


def predict(
    project: Project,
    model_ref: str,
    input_spec: str,
    output: str | os.PathLike[str],
    batch_rows: int = BATCH_ROWS,
    log: bool = True,
) -> ScoreResult:
    """Score ``input_spec`` with a registered model; write ``output`` and record the scoring.

    With ``log`` every row joins the prediction log (the ``predictions`` table, as a served
    model's requests do), the scoring being one request: monitoring and labels see
    batches and served traffic alike. The rows are staged in Parquet in a store scratch
    area and inserted in the scoring's own transaction, so a failure logs nothing."""
    import numpy as np

    target = Path(output).expanduser()
    fmt = OUTPUTS.get(target.suffix.lower())
    if fmt is None:
        raise UsageError(f"output must end in .parquet, .csv or .jsonl, not {target.name!r}")
    if not target.parent.is_dir():
        raise UsageError(f"no such folder for the output: {target.parent}")
    mv: ModelVersion = project.models.resolve(model_ref)
    inputs = mv.signature.get("inputs") or {}
    table = Table(project.datasets, input_spec)
    if table.rows == 0:
        raise DataError(f"{table.label} has no rows to score")
    conform(table.lf.head(0).collect(), inputs, table.label)  # missing columns: fail before work
    model = project.models.load(mv)
    rng = np.random.default_rng(0)
    keep = min(1.0, SAMPLE_ROWS / table.rows)
    nested = [c for c, t in table.schema.items() if t.is_nested()]
    if fmt == "csv" and nested:
        raise UsageError(
            f"a CSV file cannot hold {table.label}'s nested column(s) {', '.join(nested[:5])}: "
            "write .parquet or .jsonl"
        )
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    append, close = _writer(tmp, fmt)
    kept: list[pl.DataFrame] = []
    scoring_id = uuid.uuid4().hex
    started = audit.now()
    staged: list[Path] = []
    # the staged log rows live in a store scratch area: gone at the end, or (after a
    # kill) at the next write's clean-up
    with contextlib.ExitStack() as scope:
        on_batch: Any = None
        if log:
            scratch = scope.enter_context(project.objects.stage()).area
            on_batch = functools.partial(_stage_log, staged, scratch, scoring=scoring_id,
                                         started=started, mv=mv)  # fmt: skip
        rows = _score_into(
            table, inputs, model, batch_rows, append, close, tmp, target, kept, keep, rng,
            on_batch,
        )  # fmt: skip
        result = ScoreResult(
            scoring_id, mv.ref, table.label, target.resolve(), rows, _distribution(kept, rows)
        )
        with project.catalog.write() as con:
            _record(con, result, mv, table, started, staged)
    return result


def _stage_log(
    staged: list[Path], scratch: Path, batch: pl.DataFrame, pred: pl.DataFrame, offset: int,
    *, scoring: str, started: Any, mv: ModelVersion,
) -> None:  # fmt: skip
    import io

    from workbench.core.store.objects import store_write_error

    buf = io.BytesIO()  # written by Python, so a full disk is an OSError we can name
    _log_rows(batch, pred, scoring, offset, started, mv).write_parquet(buf)
    staged.append(scratch / f"predict-{len(staged)}.parquet")
    try:
        staged[-1].write_bytes(buf.getbuffer())
    except OSError as exc:
        raise store_write_error(exc, scratch) from None


def _score_into(
    table: Table, inputs: dict[str, str], model: Any, batch_rows: int, append: Any, close: Any,
    tmp: Path, target: Path, kept: list[pl.DataFrame], keep: float, rng: Any, on_batch: Any,
) -> int:  # fmt: skip
    """Stream the input through the model into ``tmp``, renamed to ``target`` when whole."""
    import polars as pl

    rows = 0
    try:
        for batch in table.lf.collect_batches(chunk_size=batch_rows, engine="streaming"):
            x = conform(batch, inputs, table.label)
            pred = predict_frame(model, x, list(inputs))
            if on_batch is not None:  # the prediction log's rows, staged
                on_batch(batch, pred, rows)
            append(
                pl.concat(
                    [batch, pred.rename(_unclash(batch.columns, pred.columns))], how="horizontal"
                )
            )
            rows += batch.height
            kept.append(
                pred.filter(pl.Series(rng.random(pred.height) < keep)) if keep < 1 else pred
            )
        close()
        os.replace(tmp, target)
    except BaseException:
        close()
        tmp.unlink(missing_ok=True)
        raise
    return rows


def _log_rows(
    batch: pl.DataFrame, pred: pl.DataFrame, scoring: str, offset: int, ts: Any, mv: ModelVersion
) -> pl.DataFrame:
    """A batch's rows as the prediction log holds them: the columns as given and the
    answer, each one JSON object per row."""
    import polars as pl

    return pl.DataFrame(
        {
            "request_id": pl.Series([scoring] * batch.height, dtype=pl.String),
            "row": pl.int_range(offset, offset + batch.height, eager=True, dtype=pl.Int32),
            "ts": pl.Series([ts] * batch.height, dtype=pl.Datetime("us")),
            "model": pl.Series([mv.model] * batch.height, dtype=pl.String),
            "version": pl.Series([mv.version] * batch.height, dtype=pl.Int32),
            "inputs": batch.select(pl.struct(pl.all()).struct.json_encode()).to_series(),
            "outputs": pred.select(pl.struct(pl.all()).struct.json_encode()).to_series(),
        }
    )


def _record(
    con: Any,
    result: ScoreResult,
    mv: ModelVersion,
    table: Table,
    started: Any,
    staged: list[Path],
) -> None:
    """The scoring, its log rows (one request of ``rows`` rows) and its audit entry."""
    rows = result.rows
    if staged:
        files = ", ".join(f"'{str(p).replace(chr(39), chr(39) * 2)}'" for p in staged)
        con.execute(f"INSERT INTO predictions SELECT * FROM read_parquet([{files}])")
        seconds = (audit.now() - started).total_seconds()
        con.execute(
            "INSERT INTO serving_requests VALUES (?,?,?,?,?,?,200,NULL,?,?)",
            [result.id, started, mv.model, mv.version, rows, seconds * 1000,
             "workbench predict", "workbench predict"],
        )  # fmt: skip
    con.execute(
        "INSERT INTO scorings VALUES (?,?,?,?,?,?,?,?,?)",
        [
            result.id,
            audit.now(),
            mv.model,
            mv.version,
            table.label,
            table.content_id,
            rows,
            str(result.output),
            json.dumps(result.distribution),
        ],
    )
    audit.append(
        con,
        "model.predict",
        mv.ref,
        {
            "input": table.label,
            "rows": rows,
            "output": str(result.output),
            "scoring": result.id,
        },
    )


def _unclash(existing: list[str], new: list[str]) -> dict[str, str]:
    """Rename prediction columns that an input column already uses (``prediction_1``)."""
    out = {}
    for c in new:
        name, i = c, 1
        while name in existing:
            name = f"{c}_{i}"
            i += 1
        out[c] = name
    return out


def scorings(project: Project, model: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    sql = "SELECT id, ts, model, version, input, n_rows, output, distribution FROM scorings"
    args: list[Any] = []
    if model:
        sql += " WHERE model = ?"
        args.append(model)
    sql += " ORDER BY ts DESC LIMIT ?"
    args.append(limit)
    keys = ("id", "ts", "model", "version", "input", "rows", "output", "distribution")
    with project.catalog.read() as con:
        rows = con.execute(sql, args).fetchall()
    return [{**dict(zip(keys, r, strict=True)), "distribution": json.loads(r[-1])} for r in rows]
