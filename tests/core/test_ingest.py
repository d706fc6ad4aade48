"""Dates and datetimes read from text: the fast Arrow cast must agree with Polars.

``ingest.to_temporal`` converts ISO 8601 text with Arrow (several times faster) and
everything else with Polars' strict parse, which is what a version stored before it
was made with. Whatever the text, both must give the same values and type, or both
must refuse it (a refusal makes ``data add`` keep the column as text).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.core.data import ingest
from workbench.core.data.ingest import to_temporal
from workbench.core.project import Project


@pytest.fixture(autouse=True)
def arrow_for_any_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small columns skip Arrow unless pyarrow is loaded (its import costs more than
    they take): these tests compare the two paths, so Arrow is used at any size."""
    monkeypatch.setattr(ingest, "ARROW_FROM", 0)


def polars_parse(values: pl.Series, kind: str) -> pl.Series:
    if kind == "date":
        return values.str.to_date(strict=True)
    return values.str.to_datetime(strict=True)


def outcome(fn, values: pl.Series, kind: str) -> tuple[str, object]:  # type: ignore[no-untyped-def]
    try:
        out = fn(values, kind)
    except Exception as exc:
        return "refused", type(exc).__name__
    return str(out.dtype), out.to_physical().to_list()


def assert_agree(texts: list[str | None], kind: str) -> None:
    values = pl.Series("c", texts, dtype=pl.String)
    assert outcome(to_temporal, values, kind) == outcome(polars_parse, values, kind), texts


@pytest.mark.parametrize(
    ("kind", "texts"),
    [
        ("datetime", ["2024-11-06T11:28:05.000", None, "2024-01-01T00:00:00.500"]),
        ("datetime", ["2024-11-06 11:28:05", "2024-01-01T00:00:00.25"]),  # mixed separators
        ("datetime", ["2024-11-06T11:28:05.123456", "0001-01-01T00:00:00"]),
        ("datetime", ["2024-11-06T11:28:05.1234567"]),  # beyond microseconds: Polars' path
        ("datetime", ["2016-12-31T23:59:60"]),  # a leap second
        ("datetime", ["2024-02-30T00:00:00"]),
        ("datetime", ["2024-11-06T24:00:00"]),
        ("datetime", ["2024-11-06T11:28:05Z"]),  # an offset: Polars makes it UTC
        ("datetime", ["2024-11-06T11:28:05+01:00"]),
        ("datetime", ["2024-11-06T11:28"]),
        # the lengths Arrow is given (19, 21-26) with text that is not its ISO 8601
        ("datetime", ["2024-11-06T11:28:05.1Z"]),
        ("datetime", ["2024-11-06T11:28+01:00"]),
        ("datetime", ["2024-11-06T11:28:05-0100"]),
        ("datetime", ["2024-11-06T11:28:05.12+01"]),
        ("datetime", ["2024-11-06 11:28:05.1 "]),
        ("datetime", ["2024-11-06T11:28:05", "2024-11-06"]),  # a day among datetimes
        ("datetime", ["2024-11-06T11"]),
        ("date", ["2024-11-6 ", "24-11-2006"]),
        ("datetime", ["2024-11-06t11:28:05"]),
        ("datetime", ["2024-11-06T11:28:05", "not a date"]),
        ("datetime", [None, None]),
        ("date", ["2024-11-06", None, "0000-01-01", "9999-12-31"]),
        ("date", ["2024/11/06", "2024/01/02"]),
        ("date", ["2024-02-29", "2023-02-29"]),
        ("date", ["2024-1-6"]),
    ],
)
def test_text_that_looks_like_dates_converts_as_polars_does(kind: str, texts: list) -> None:
    assert_agree(texts, kind)


_moments = st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31))


@st.composite
def datetime_texts(draw: st.DrawFn) -> str:
    moment = draw(_moments)
    sep = draw(st.sampled_from("T "))
    digits = draw(st.integers(0, 9))
    text = moment.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    if digits:
        text += "." + f"{moment.microsecond:06d}{draw(st.integers(0, 999)):03d}"[:digits]
    if draw(st.integers(0, 9)) == 0:  # now and then something that is not quite ISO
        pos = draw(st.integers(0, len(text) - 1))
        text = (
            text[:pos]
            + draw(st.sampled_from(["", "9", ":", "-", "Z", " ", "T", "+", ".", "a"]))
            + text[pos + 1 :]
        )
    if draw(st.integers(0, 9)) == 0:  # or an offset
        text += draw(st.sampled_from(["Z", "+01:00", "-0100", "+01", " "]))
    return text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(datetime_texts(), st.none()), min_size=1, max_size=6))
def test_any_datetime_text_converts_as_polars_does(texts: list[str | None]) -> None:
    assert_agree(texts, "datetime")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.dates().map(str), st.text("0123456789-/", max_size=11)), max_size=5))
def test_any_date_text_converts_as_polars_does(texts: list[str]) -> None:
    assert_agree(texts, "date")


def test_a_file_reads_as_polars_own_date_parse_reads_it(tmp_path: Path) -> None:
    """What data add stores, drift compares and predict scores: the same rows and types
    as Polars' own parse gives. Offsets become UTC (such a file was refused before: Polars
    will not parse text with offsets in a lazy scan without a format)."""
    path = tmp_path / "events.csv"
    path.write_text(
        "id,day,at,stamp,note\n"
        + "".join(
            f"{i},2024-03-{i % 28 + 1:02d},2024-03-05T12:{i % 60:02d}:05.{i % 1000:03d},"
            f"2024-03-05 12:{i % 60:02d}:00+01:00,n{i}\n"
            for i in range(5000)
        )
    )
    src = ingest.open_source(path)
    assert ingest.detect_dates(src) == {"day": "date", "at": "datetime", "stamp": "datetime"}
    streamed = pl.concat(list(ingest.batches(src, 1024)))
    raw = pl.read_csv(path)
    expected = raw.with_columns(  # Polars parses text with offsets only on a Series
        raw.get_column("day").str.to_date(strict=True),
        raw.get_column("at").str.to_datetime(strict=True),
        raw.get_column("stamp").str.to_datetime(strict=True),
    )
    assert streamed.schema == expected.schema
    assert ingest.sample(src, rows=700).equals(expected.head(700))  # from the rows read once
    assert streamed.schema["stamp"] == pl.Datetime("us", "UTC")
    assert streamed.equals(expected)


def test_a_late_value_that_is_no_date_keeps_the_column_as_text(tmp_path: Path) -> None:
    rows = [f"{i},2024-03-05T12:00:{i % 60:02d}" for i in range(20_000)]
    rows[15_000] = "15000,not-a-date"  # past the rows that types are inferred from
    path = tmp_path / "late.csv"
    path.write_text("id,at\n" + "\n".join(rows) + "\n")
    with pytest.raises(ingest.NeedsFullInference):
        list(ingest.batches(ingest.open_source(path), 4096))


def test_iso_text_takes_the_arrow_cast_not_polars_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Polars' parse was used for ISO 8601 text")

    monkeypatch.setattr(pl.series.string.StringNameSpace, "to_datetime", refuse)
    monkeypatch.setattr(pl.series.string.StringNameSpace, "to_date", refuse)
    at = to_temporal(pl.Series(["2024-11-06T11:28:05.5", None]), "datetime")
    day = to_temporal(pl.Series(["2024-11-06"]), "date")
    assert at.to_list() == [dt.datetime(2024, 11, 6, 11, 28, 5, 500000), None]
    assert day.to_list() == [dt.date(2024, 11, 6)]


def test_a_small_file_with_dates_is_added_without_loading_pyarrow(tmp_path: Path) -> None:
    """pyarrow's compute functions take ~0.1 s to import, more than Polars takes to parse
    the dates of a small file: `data add` of one does not load them, and its dates are
    dates. A big file's batches take Arrow's cast, however small each batch is."""
    import subprocess
    import sys

    csv = tmp_path / "small.csv"
    csv.write_text("day,at,x\n2024-11-06,2024-11-06T11:28:05,1\n2024-11-07,2024-11-07T00:00:00,2\n")

    def add(big_from: str, name: str) -> list[str]:
        code = (
            "import sys; from workbench.core.data import ingest; "
            f"ingest.ARROW_BYTES = {big_from}; from workbench.core.project import Project; "
            f"p, _ = Project.init({str(tmp_path / 'p')!r}); p.datasets.add({str(csv)!r}, {name!r}); "
            "loaded = 'pyarrow.compute' in sys.modules; "
            f"print(int(loaded), p.datasets.load(p.datasets.resolve('{name}@1')).dtypes)"
        )
        run = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        return run.stdout.split(" ", 1)

    loaded, dtypes = add("ingest.ARROW_BYTES", "small")
    assert loaded == "0" and "Date" in dtypes and "Datetime" in dtypes
    loaded, dtypes_big = add("0", "big")  # as if the file were big
    assert loaded == "1" and dtypes_big == dtypes


def test_quoted_lines_across_the_readers_chunk_boundaries_read_whole(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The streaming reader reads a CSV in chunks of ingest.CSV_CHUNK_BYTES: a file of
    many chunks whose quoted values hold newlines, commas and quotes (many across a
    boundary) is versioned row for row as Python's csv module reads it."""
    import csv
    import io
    import os

    rng = np.random.default_rng(12)
    n = 200_000
    pieces = ["plain", 'say "hi"', "a,b", "two\nlines", "x" * 150, "\n\nblank lines\n"]
    texts = [pieces[i] + f" {i}" for i in rng.integers(0, len(pieces), n)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "text", "x"])
    for i, t in enumerate(texts):
        writer.writerow([i, t, f"{i / 7:.6f}"])
    path = project.root / "quoted.csv"
    path.write_text(buf.getvalue())
    assert os.environ["POLARS_CSV_CHUNK_SIZE"] == str(ingest.CSV_CHUNK_BYTES)
    assert path.stat().st_size > 2 * ingest.CSV_CHUNK_BYTES  # read in several chunks
    # and in 64 KB ones: ~170 boundaries, dozens of them inside a quoted value
    monkeypatch.setenv("POLARS_CSV_CHUNK_SIZE", str(1 << 16))
    project.datasets.add(path, "quoted")
    got = project.datasets.load(project.datasets.resolve("quoted@1"))
    rows = list(csv.reader(io.StringIO(path.read_text())))[1:]
    assert got.height == n == len(rows)
    assert got["id"].to_list() == [int(r[0]) for r in rows]
    assert got["text"].to_list() == [r[1] for r in rows] == texts
    assert got["x"].to_list() == [float(r[2]) for r in rows]
