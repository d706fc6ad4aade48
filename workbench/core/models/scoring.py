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
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.data.sources import Table
from workbench.core.errors import DataError, UsageError
from workbench.core.models.inputs import conform, predict_frame
from workbench.core.store import audit

if TYPE_CHECKING:
    import polars as pl

    from workbench.core.models.versions import ModelVersion
    from workbench.core.project import Project

BATCH_ROWS = 100_000
SAMPLE_ROWS = 100_000  # predictions kept to describe the distribution
OUTPUTS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


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
    segments: list[tuple[Path, str]] = []  # the same rows typed (log_segments.py)
    # the staged log rows live in a store scratch area: gone at the end, or (after a
    # kill) at the next write's clean-up
    with contextlib.ExitStack() as scope:
        on_batch: Any = None
        if log:
            scratch = scope.enter_context(project.objects.stage()).area
            on_batch = functools.partial(_stage_log, staged, segments, scratch,
                                         scoring=scoring_id, started=started, mv=mv)  # fmt: skip
        rows = _score_into(
            table, inputs, model, batch_rows, append, close, tmp, target, kept, keep, rng,
            on_batch,
        )  # fmt: skip
        result = ScoreResult(
            scoring_id, mv.ref, table.label, target.resolve(), rows, _distribution(kept, rows)
        )
        with project.catalog.write() as con:
            _record(con, result, mv, table, started, staged)
        if segments:
            _keep_segments(project, mv, segments, started)
    return result


def _keep_segments(
    project: Project, mv: ModelVersion, files: list[tuple[Path, str]], first: Any
) -> None:
    """The scoring's typed log rows join the version's segments: derived data, so a
    failure here loses nothing (monitoring reads those rows from the JSON instead)."""
    import polars as pl

    from workbench.core.models.log_segments import Segments

    outputs = pl.scan_parquet(files[0][0], glob=False).collect_schema()
    inputs = mv.signature.get("inputs") or {}
    names = [c for c in outputs if c not in ("request_id", "row", "ts") and c not in inputs]
    with contextlib.suppress(OSError):
        Segments(project.store_dir, mv.model, mv.version, inputs, names).add_files(files, first)


def _stage_log(
    staged: list[Path], segments: list[tuple[Path, str]], scratch: Path, batch: pl.DataFrame,
    pred: pl.DataFrame, offset: int, *, scoring: str, started: Any, mv: ModelVersion,
) -> None:  # fmt: skip
    """A batch's log rows as JSON (for the catalog) and typed (a log segment)."""
    import io

    import polars as pl
    import xxhash

    from workbench.core.models.log_segments import CODEC, typed
    from workbench.core.store.objects import store_write_error

    rows = _log_rows(batch, pred, scoring, offset, started, mv)
    inputs = mv.signature.get("inputs") or {}
    buf = io.BytesIO()  # written by Python, so a full disk is an OSError we can name
    # uncompressed: read back once by the insert and deleted, and compressing JSON text
    # with zstd cost five times the write (100k rows of 25 inputs: 0.35 s against 0.07)
    rows.write_parquet(buf, compression="uncompressed")
    staged.append(scratch / f"predict-{len(staged)}.parquet")
    try:
        staged[-1].write_bytes(buf.getbuffer())
    except OSError as exc:
        raise store_write_error(exc, scratch) from None
    if not inputs or any(c not in batch.columns for c in inputs):
        return
    head = rows.select("request_id", "row", "ts")
    frame = typed(
        pl.concat([head, batch.select(list(inputs)), pred], how="horizontal"),
        inputs, list(pred.columns), mv.ref,
    )  # fmt: skip
    buf = io.BytesIO()
    frame.write_parquet(buf, compression=CODEC, statistics=False)
    path = scratch / f"segment-{len(segments)}.parquet"
    with contextlib.suppress(OSError):  # derived data: without it monitoring reads the JSON
        path.write_bytes(buf.getbuffer())
        segments.append((path, xxhash.xxh3_128_hexdigest(buf.getbuffer())))


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
