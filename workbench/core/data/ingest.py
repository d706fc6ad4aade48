"""Reading user files (CSV/TSV, Parquet, JSON Lines) as lazy Polars frames.

Everything here streams: a file is scanned lazily and consumed in batches, so a
1 GB CSV is versioned with bounded memory. Problems a user can cause (empty or
binary files, bad encodings, ragged rows, duplicate or blank headers, truncated
Parquet) become one-line :class:`DataError` messages.
"""

from __future__ import annotations

import csv
import functools
import glob
import io
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.core.errors import DataError, UsageError

if TYPE_CHECKING:
    import polars as pl

FORMATS = ("csv", "tsv", "parquet", "jsonl")
_EXT = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_SNIFF = 1 << 16
MAX_DEPTH = 128  # nesting levels of JSON Lines values (far past any real table)
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKETS = re.compile(r"[\[\]{}]")
_BINARY_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
INFER_ROWS = 10_000
# Polars' streaming CSV reader reads ahead in chunks of 32 MB by default, several of
# them at once: ~360 MB held for a 1 GB file however slowly its batches are taken. In
# 4 MB chunks a 10M-row add peaked at ~800 MB instead of ~1 GB (4 runs each), and took
# no longer (7.1-7.8 s against 7.3-7.6). Read by Polars each time a scan starts, so it
# is set once here; a user's own setting is kept.
CSV_CHUNK_BYTES = 4 << 20
os.environ.setdefault("POLARS_CSV_CHUNK_SIZE", str(CSV_CHUNK_BYTES))
HEAD_ROWS = 2000  # rows read to find the date columns (and to size a version's chunks)


@dataclass
class Source:
    path: Path
    format: str
    size: int
    dates: dict[str, str] | None = None  # text columns that hold dates: name -> "date"/"datetime"
    date_types: dict[str, pl.DataType] = field(default_factory=dict)  # what they convert to
    head: pl.DataFrame | None = None  # the first rows as text, read once to find the dates
    delimiter: str | None = None  # sniffed from the header of a .csv that is not comma-separated

    @property
    def separator(self) -> str:
        return self.delimiter or ("\t" if self.format == "tsv" else ",")


def detect_format(path: Path, head: bytes, fmt: str | None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
        return fmt
    by_ext = _EXT.get(path.suffix.lower())
    if head.startswith(b"PAR1"):
        return "parquet"
    if by_ext:
        return by_ext
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return "jsonl"
    return "csv"


def open_source(path: str | Path, fmt: str | None = None) -> Source:
    """Check that ``path`` is a readable table file before any work is done."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"no such file: {p}")
    if p.is_dir():
        raise DataError(f"{p} is a folder, not a data file")
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(_SNIFF)
    except OSError as exc:
        raise DataError(f"cannot read {p}: {exc.strerror}") from None
    if size == 0:
        raise DataError(f"{p} is empty")
    src = Source(p, detect_format(p, head, fmt), size)
    if src.format == "parquet":
        _check_parquet(src)
    else:
        _check_text(src, head)
    return src


def _check_parquet(src: Source) -> None:
    import polars as pl

    try:
        schema = pl.scan_parquet(src.path, glob=False).collect_schema()
    except Exception:
        raise DataError(
            f"{src.path} is not a readable Parquet file (damaged or truncated)"
        ) from None
    _check_names(src, list(schema))


def _check_text(src: Source, head: bytes) -> None:
    if head.startswith(b"\x1f\x8b"):
        raise DataError(f"{src.path} is gzip-compressed; decompress it first (gunzip)")
    if head.startswith(b"PK\x03\x04"):
        raise DataError(
            f"{src.path} is a ZIP archive (an Excel workbook?); save or export it as CSV first"
        )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{src.path} is UTF-16 encoded; re-save it as UTF-8")
    if b"\x00" in head:
        raise DataError(f"{src.path} looks binary, not a {src.format.upper()} text file")
    text = _decode_head(src, head)
    if len(_BINARY_CHARS.findall(text)) > max(8, len(text) // 100):
        # valid UTF-8 made of control bytes: an image or an archive, not a table
        raise DataError(f"{src.path} looks binary, not a {src.format.upper()} text file")
    if src.format == "jsonl":
        depth = json_depth(text)
        if depth > MAX_DEPTH:
            raise DataError(
                f"{src.path} nests values {depth} levels deep; workbench reads tables of at "
                f"most {MAX_DEPTH} levels (flatten the nested fields first)"
            )
        return
    first = text.split("\n", 1)[0].rstrip("\r")
    if not first.strip():
        raise DataError(f"{src.path} has no header line (the first line is blank)")
    if src.format == "csv" and "," not in first:
        # European spreadsheets write ';', other tools '|' or tabs, still naming it .csv
        found = [d for d in (";", "\t", "|") if d in first]
        if found:
            src.delimiter = max(found, key=first.count)
    try:
        header = next(csv.reader(io.StringIO(first), delimiter=src.separator))
    except csv.Error as exc:
        raise DataError(f"{src.path}: cannot read the header line: {exc}") from None
    _check_names(src, header)


def json_depth(text: str) -> int:
    """How deeply objects and arrays nest in some JSON text (strings skipped).

    Polars' schema inference recurses once per level: a few hundred levels overflow
    Python's stack and a thousand stall the reader, so depth is measured first, on the
    head of the file, in one pass.
    """
    bare = _JSON_STRING.sub('""', text)
    depth = deepest = 0
    for ch in _JSON_BRACKETS.findall(bare):
        if ch in "{[":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _decode_head(src: Source, head: bytes) -> str:
    body = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    if body.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{src.path} is UTF-16 encoded; re-save it as UTF-8")
    try:
        # A multi-byte character may be cut at the sniff boundary: ignore a short tail.
        return body.decode("utf-8") if len(body) < _SNIFF else body[:-4].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{src.path} is not UTF-8 text (bad byte at offset {exc.start}); "
            "re-save it as UTF-8, e.g. iconv -f latin1 -t utf-8"
        ) from None


def _check_names(src: Source, names: list[str]) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        if not str(name).strip():
            raise DataError(f"{src.path}: column {i} has a blank name")
        if name in seen:
            raise DataError(
                f"{src.path}: column name {name!r} appears twice (columns {seen[name]} and {i})"
            )
        seen[name] = i


def detect_dates(src: Source) -> dict[str, str]:
    """Text columns whose sampled values all parse as dates or datetimes.

    Polars' ``try_parse_dates`` tries every text column of every row and makes
    parsing ~3x slower; casting only the detected columns costs a fraction.
    """
    import polars as pl

    if src.dates is not None:
        return src.dates
    found: dict[str, str] = {}
    if src.format in ("csv", "tsv"):
        try:
            head = (
                pl.scan_csv(
                    src.path, separator=src.separator, infer_schema_length=INFER_ROWS, glob=False
                )
                .head(HEAD_ROWS)
                .collect()
            )
        except Exception:
            head = None  # the real scan reports the problem
        src.head = head
        for column in head.iter_columns() if head is not None else ():
            name, dtype, values = column.name, column.dtype, column.drop_nulls()
            if dtype != pl.String or values.len() == 0:
                continue
            for kind, convert in (
                ("date", values.str.to_date),
                ("datetime", values.str.to_datetime),
            ):
                try:
                    converted = convert(strict=True)
                    if converted.null_count() == 0:
                        found[name] = kind
                        src.date_types[name] = converted.dtype
                        break
                except Exception:
                    continue
    src.dates = found
    return found


def scan(src: Source, infer_rows: int | None = INFER_ROWS, dates: bool = True) -> pl.LazyFrame:
    """The file as a lazy frame, its date columns converted unless ``dates`` is False
    (then :func:`with_dates` converts each collected batch)."""
    import polars as pl

    if src.format == "parquet":
        return pl.scan_parquet(src.path, glob=False)
    if src.format == "jsonl":
        # no glob switch here: the name's own brackets and stars escaped instead
        return pl.scan_ndjson(glob.escape(str(src.path)), infer_schema_length=infer_rows)
    lf = pl.scan_csv(src.path, separator=src.separator, infer_schema_length=infer_rows, glob=False)
    if infer_rows is None or not dates:
        return lf  # infer_rows None: the fallback after a value did not fit, dates stay text
    return lf.with_columns(
        [
            pl.col(c).map_batches(
                functools.partial(to_temporal, kind=k, arrow=src.size >= ARROW_BYTES),
                return_dtype=src.date_types[c],
                is_elementwise=True,
            )
            for c, k in detect_dates(src).items()
        ]
    )


def with_dates(src: Source, df: pl.DataFrame) -> pl.DataFrame:
    """A batch read by ``scan(src, dates=False)`` with its date columns converted as
    :func:`scan` converts them. Converting whole batches here rather than inside the
    streaming scan saves a fifth of the conversion's CPU: the scan hands a Python
    function morsels of ~25k rows, hundreds of calls for a 10M-row file."""
    dates = detect_dates(src)
    if not dates:
        return df
    arrow = src.size >= ARROW_BYTES
    converted = []
    for c, k in dates.items():
        values = to_temporal(df.get_column(c), k, arrow)
        want = src.date_types[c]
        converted.append(values if values.dtype == want else values.cast(want))
    return df.with_columns(converted)


_RETRY = re.compile(
    r"could not parse|cannot parse|conversion|failed to parse|unable to parse", re.I
)


class NeedsFullInference(Exception):
    """Types inferred from the first rows did not fit a later value; scan again."""


def batches(
    src: Source, chunk_rows: int, infer_rows: int | None = INFER_ROWS
) -> Iterator[pl.DataFrame]:
    """Stream the file as DataFrames of ``chunk_rows`` rows (the last may be shorter).

    Types are inferred from the first 10k rows. When a later value does not fit
    (an int column that turns into text at row 50k) this raises
    :class:`NeedsFullInference`, and the caller starts over with ``infer_rows=None``
    so that every batch of a version has one schema.
    """
    try:
        stream = scan(src, infer_rows, dates=False).collect_batches(
            chunk_size=chunk_rows, engine="streaming"
        )
        for df in stream:
            # infer_rows None: the fallback scan, whose date columns stay text
            yield df if infer_rows is None else with_dates(src, df)
    except Exception as exc:
        raise _read_error(src, exc, infer_rows) from None


# ISO 8601 text that Arrow's cast reads exactly as Polars' strict parse does: dates, and
# naive datetimes to the microsecond (tests/core/test_ingest.py compares the two).
ARROW_FROM = 200_000  # values in a column from which Arrow's cast pays for its import
ARROW_BYTES = 16 << 20  # a file this big is read in batches that, together, do
# The byte lengths of the ISO 8601 text that Arrow and Polars read alike: YYYY-MM-DD, and
# YYYY-MM-DD[T ]hh:mm:ss with none or one to six decimals. Arrow's cast refuses any other
# text of these lengths (an offset, a "Z", a letter, a missing digit) and Polars then
# parses it; the shorter forms Arrow would take ("2024-11-06T11", "...T11:28") it is not
# given (tests/core/test_ingest.py holds both to the same answers).
_ISO_LENGTHS = {"date": [10], "datetime": [19, 21, 22, 23, 24, 25, 26]}


def to_temporal(values: pl.Series, kind: str, arrow: bool | None = None) -> pl.Series:
    """A text column detected as dates ("date") or datetimes ("datetime"), converted.

    Polars' strict parse costs ~0.45 s a million datetimes, a third of reading the
    whole CSV; Arrow's cast of ISO 8601 text takes a seventh of that. The cast is used
    only for text of the lengths both read alike (read from the column's offsets: the
    regex that checked its shape took as long as the cast, 0.06 s a million); any
    other text, or a value Arrow refuses, goes through Polars, which raises as before
    when a value is not a date at all. Importing pyarrow's compute
    functions costs ~0.1 s, more than Polars takes for 200k values: a small column, while
    pyarrow is not loaded yet, is parsed by Polars (a 27k-row CSV: `data add` 0.67 -> 0.60 s).
    ``arrow`` decides instead: a big file's batches may each be small (a wide table's),
    yet together they pay for the import many times over.
    """
    import polars as pl

    def strict() -> pl.Series:
        if kind == "date":
            return values.str.to_date(strict=True)
        return values.str.to_datetime(strict=True)

    if arrow is None:
        arrow = values.len() >= ARROW_FROM or "pyarrow.compute" in sys.modules
    if not arrow:
        return strict()
    import pyarrow as pa
    import pyarrow.compute as pc

    arrow_type = pa.date32() if kind == "date" else pa.timestamp("us")
    fits = values.str.len_bytes().is_in(_ISO_LENGTHS[kind]).all()
    if values.null_count() < values.len() and fits:
        try:
            return pl.Series(values.name, pc.cast(values.to_arrow(), arrow_type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    return strict()


def _read_error(src: Source, exc: Exception, infer_rows: int | None) -> Exception:
    if infer_rows is not None and src.format != "parquet" and _RETRY.search(str(exc)):
        return NeedsFullInference()
    return data_error(src, exc)


def sample(src: Source, infer_rows: int | None = INFER_ROWS, rows: int = HEAD_ROWS) -> pl.DataFrame:
    if infer_rows == INFER_ROWS and rows <= HEAD_ROWS:
        dates = detect_dates(src)  # for a CSV, reads its first rows once into src.head
        if src.head is not None:
            # those rows converted as the scan would: a second head read of a big CSV
            # costs 0.3-0.5 s (the scanner sets up and infers types all over again)
            head = src.head.head(rows)
            return head.with_columns([to_temporal(head.get_column(c), k) for c, k in dates.items()])
    try:
        return scan(src, infer_rows).head(rows).collect()
    except Exception as exc:
        raise _read_error(src, exc, infer_rows) from None


def schema_of(src: Source) -> pl.Schema:
    try:
        return scan(src).collect_schema()
    except Exception as exc:
        raise data_error(src, exc) from None


def data_error(src: Source, exc: Exception) -> DataError:
    if isinstance(exc, DataError):
        return exc
    text = str(exc)
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    low = text.lower()
    if "utf-8" in low or "utf8" in low:
        return DataError(
            f"{src.path} is not valid UTF-8 text; re-save it as UTF-8, e.g. iconv -f latin1 -t utf-8"
        )
    if "not properly escaped" in low:
        return DataError(
            f"{src.path} has a quoted field that is never closed (a '\"' opens it and no "
            "matching '\"' ends it)"
        )
    if "more fields than defined" in low:
        return DataError(f"{src.path} has ragged rows: a row has more fields than the header")
    if src.format == "parquet":
        return DataError(f"{src.path} is not a readable Parquet file: {first}")
    if src.format == "jsonl":
        return DataError(f"{src.path} is not valid JSON Lines: {first}")
    return DataError(f"cannot read {src.path} as {src.format.upper()}: {first}")


def check_short_rows(src: Source, n_fields: int) -> None:
    """Refuse rows with fewer fields than the header.

    Polars pads such rows with nulls silently. A short row always leaves a null in
    the last column, so callers run this pass only when that column has nulls.
    Lines are checked only when lines and records correspond one to one (no quoted
    field spans lines); quoted sections are removed before counting separators.
    """
    import polars as pl

    if src.format not in ("csv", "tsv"):
        return
    sep = src.separator
    lines = pl.scan_csv(
        src.path,
        has_header=False,
        separator="\x1f",
        quote_char=None,
        schema={"line": pl.String},
        encoding="utf8-lossy",
        glob=False,
    ).with_row_index("lineno", offset=1)
    counted = lines.with_columns(
        fields=pl.col("line").str.replace_all(r'"[^"]*"', "").str.count_matches(sep, literal=True)
        + 1,
        quotes=pl.col("line").str.count_matches('"', literal=True),
    )
    odd_quotes = counted.filter(pl.col("quotes") % 2 == 1).select(pl.len()).collect().item()
    if odd_quotes:
        return  # a quoted field spans lines: line positions do not match records
    bad = (
        counted.filter(
            (pl.col("lineno") > 1)
            & (pl.col("fields") < n_fields)
            & (pl.col("line").str.strip_chars() != "")
        )
        .select("lineno", "fields")
        .head(1)
        .collect()
    )
    if bad.height:
        lineno, fields = bad.row(0)
        raise DataError(
            f"{src.path} has ragged rows: line {lineno} has {fields} fields, the header has {n_fields}"
        )


def output_format(target: Path, fmt: str | None = None) -> str:
    """The format to write ``target`` in (by ``fmt`` or its extension), its folder checked."""
    kind = fmt or _EXT.get(target.suffix.lower())
    if kind not in FORMATS:
        raise UsageError(f"cannot tell the format of {target}: use .csv, .tsv, .parquet or .jsonl")
    if not target.parent.is_dir():
        raise UsageError(f"no such folder: {target.parent}")
    return kind


def write_whole(lf: pl.LazyFrame, target: Path, kind: str) -> Path:
    """Stream ``lf`` to ``target`` through a temporary file renamed into place: on any
    failure (a full disk, an interrupted read) no part of a file is left behind."""
    tmp = target.with_name(f".{target.name}.wb-tmp")
    try:
        if kind == "parquet":
            lf.sink_parquet(tmp)
        elif kind == "jsonl":
            lf.sink_ndjson(tmp)
        else:
            lf.sink_csv(tmp, separator="\t" if kind == "tsv" else ",")
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"cannot write {target}: {exc.strerror}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
