"""Malformed and awkward data files, built on the fly (nothing binary in the repo).

Most start from the same small churn table, so a model trained on it can be asked to
score them and drift can compare them with it: each file is wrong in one way only.
Names say the file type by their extension, as a user's would.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from tests.core.test_training import churn


def base(n: int = 300, seed: int = 5) -> pl.DataFrame:
    return churn(n, seed)


def _csv(df: pl.DataFrame) -> bytes:
    return df.write_csv().encode()


def _parquet(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.write_parquet(buf)
    return buf.getvalue()


def _replace_column(df: pl.DataFrame, name: str, values: object) -> pl.DataFrame:
    return df.with_columns(pl.Series(name, values))


def _mixed_types_table() -> pl.DataFrame:
    df = base().with_columns(pl.col("age").cast(pl.String))
    ages = df["age"].to_list()
    ages[150] = "forty"
    ages[299] = "n/a?"
    return _replace_column(df, "age", ages)


def _mixed_types() -> bytes:
    return _csv(_mixed_types_table())


def _nan_inf() -> bytes:
    text = _csv(base()).decode().splitlines()
    head, rows = text[0], text[1:]
    cols = head.split(",")
    i = cols.index("income")
    out = [head]
    for k, line in enumerate(rows):
        parts = line.split(",")
        parts[i] = ["NaN", "inf", "-inf", parts[i]][k % 4]
        out.append(",".join(parts))
    return ("\n".join(out) + "\n").encode()


def _huge_field() -> bytes:
    df = base().with_columns(pl.col("segment").cast(pl.String))
    seg = df["segment"].to_list()
    seg[7] = "x" * 2_000_000
    return _csv(_replace_column(df, "segment", seg))


def _wide() -> bytes:
    rng = np.random.default_rng(0)
    df = base(50)
    extra = pl.DataFrame({f"f{i}": rng.integers(0, 9, 50) for i in range(10_000 - df.width)})
    return _csv(pl.concat([df, extra], how="horizontal"))


def _gzip() -> bytes:
    return gzip.compress(_csv(base()))


def _xlsx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    return buf.getvalue()


def _truncated_parquet() -> bytes:
    return _parquet(base())[:-30]


def _nested_parquet() -> bytes:
    df = base().with_columns(
        pl.concat_list("age", "spend").alias("pair"),
        pl.struct("plan", "segment").alias("both"),
    )
    return _parquet(df)


def _text(s: str) -> Callable[[], bytes]:
    return lambda: s.encode()


# name -> bytes; the expectations live in the test, next to what each command does
CORPUS: dict[str, Callable[[], bytes]] = {
    # unreadable, or with nothing in them
    "empty.csv": lambda: b"",
    "header_only.csv": _text("age,plan,income\n"),
    "only_newlines.csv": _text("\n\n\n\n"),
    "ragged_short.csv": _text("a,b,c\n1,2,3\n4,5\n6,7,8\n"),
    "ragged_long.csv": _text("a,b,c\n1,2,3\n4,5,6,7\n"),
    "unterminated_quote.csv": _text('a,b\n1,"never closed\n2,3\n'),
    "binary.csv": lambda: bytes(range(256)) * 40,
    "nul_bytes.csv": lambda: _csv(base()).replace(b"basic", b"ba\x00sic", 3),
    "latin1.csv": lambda: "name,city\nJosé,Málaga\nZoë,Köln\n".encode("latin-1"),
    "utf16.csv": lambda: _csv(base(20)).decode().encode("utf-16"),
    "gzipped.csv": _gzip,
    "spreadsheet.xlsx": _xlsx,
    "not_parquet.parquet": lambda: _csv(base()),
    "garbage.parquet": lambda: b"PAR1 this is not really parquet PAR1",
    "truncated_footer.parquet": _truncated_parquet,
    "zero_rows.parquet": lambda: _parquet(base().head(0)),
    "bad.jsonl": _text('{"age": 1}\n{"age": \n'),
    "json_array.jsonl": _text('[{"age": 1}, {"age": 2}]\n'),
    # 300 levels overflowed Python's stack in Polars' schema inference; 1,000 stalled it
    "deeply_nested.jsonl": _text(
        ('{"age": 1, "deep": ' + '{"a": ' * 1000 + "1" + "}" * 1000 + "}\n") * 3
    ),
    # headers that cannot name columns
    "duplicate_columns.csv": _text("age,age,plan\n1,2,x\n"),
    "blank_column_name.csv": _text("age,,plan\n1,2,x\n"),
    "blank_header.csv": _text("\n1,2\n"),
    # readable, but awkward: stored as they are, and every command copes or says why not
    "bom.csv": lambda: b"\xef\xbb\xbf" + _csv(base()),
    "crlf.csv": lambda: _csv(base()).replace(b"\n", b"\r\n"),
    "nan_inf.csv": _nan_inf,
    "all_null_column.csv": lambda: _csv(base().with_columns(pl.lit(None).alias("spend"))),
    "constant_columns.csv": lambda: _csv(
        base().with_columns(pl.lit("pro").alias("plan"), pl.lit(1.5).alias("spend"))
    ),
    "mixed_types.csv": _mixed_types,
    "huge_field.csv": _huge_field,
    "10k_columns.csv": _wide,
    "one_row.csv": lambda: _csv(base().head(1)),
    "one_column.csv": lambda: _csv(base().select("age")),
    "unicode_names.csv": lambda: _csv(
        base().rename({"age": "âge", "plan": "計画", "segment": "seg 🚀"})
    ),
    "control_char_names.csv": lambda: _csv(base().rename({"plan": "pl\x1b[31man"})),
    "long_column_name.csv": lambda: _csv(base().rename({"segment": "s" * 5000})),
    "quoted_newlines.csv": lambda: _csv(
        base().with_columns(pl.col("segment").cast(pl.String) + pl.lit("\nline two, with comma"))
    ),
    "semicolons.csv": lambda: base().write_csv(separator=";").encode(),
    "target_all_null.csv": lambda: _csv(base().with_columns(pl.lit(None).alias("churned"))),
    "single_class_target.csv": lambda: _csv(base().with_columns(pl.lit(0).alias("churned"))),
    "bad_dates.csv": lambda: _csv(
        base().with_columns(pl.col("signup").cast(pl.String).str.replace("2020-01-0", "2020-13-4"))
    ),
    "int_overflow.csv": lambda: _csv(
        base().with_columns(
            pl.col("age").cast(pl.String).str.replace(r"^2", "99999999999999999999")
        )
    ),
    "nested_types.parquet": _nested_parquet,
    "jsonl_ragged_keys.jsonl": _text('{"age": 1, "plan": "a"}\n{"age": 2, "extra": true}\n'),
    "case_twins.csv": _text("Age,age,plan\n1,2,x\n3,4,y\n"),
}


def _nan_inf_holds() -> pl.DataFrame:
    income = base()["income"].to_list()
    special = [float("nan"), float("inf"), float("-inf")]
    return _replace_column(
        base(), "income", [special[k % 4] if k % 4 < 3 else v for k, v in enumerate(income)]
    )


def _huge_holds() -> pl.DataFrame:
    seg = base()["segment"].to_list()
    seg[7] = "x" * 2_000_000
    return _replace_column(base(), "segment", seg)


def _wide_holds() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    df = base(50)
    extra = pl.DataFrame({f"f{i}": rng.integers(0, 9, 50) for i in range(10_000 - df.width)})
    return pl.concat([df, extra], how="horizontal")


# What each readable file holds, built from the table it was made from and never by
# reading the file: `data add` must store exactly this (names, order, every value).
HOLDS: dict[str, Callable[[], pl.DataFrame]] = {
    "bom.csv": base,
    "crlf.csv": base,
    "semicolons.csv": base,
    "nan_inf.csv": _nan_inf_holds,
    "all_null_column.csv": lambda: base().with_columns(pl.lit(None).alias("spend")),
    "constant_columns.csv": lambda: base().with_columns(
        pl.lit("pro").alias("plan"), pl.lit(1.5).alias("spend")
    ),
    "mixed_types.csv": _mixed_types_table,
    "huge_field.csv": _huge_holds,
    "10k_columns.csv": _wide_holds,
    "one_row.csv": lambda: base().head(1),
    "one_column.csv": lambda: base().select("age"),
    "unicode_names.csv": lambda: base().rename({"age": "âge", "plan": "計画", "segment": "seg 🚀"}),
    "control_char_names.csv": lambda: base().rename({"plan": "pl\x1b[31man"}),
    "long_column_name.csv": lambda: base().rename({"segment": "s" * 5000}),
    "quoted_newlines.csv": lambda: base().with_columns(
        pl.col("segment").cast(pl.String) + pl.lit("\nline two, with comma")
    ),
    "target_all_null.csv": lambda: base().with_columns(pl.lit(None).alias("churned")),
    "single_class_target.csv": lambda: base().with_columns(pl.lit(0).alias("churned")),
    "bad_dates.csv": lambda: base().with_columns(
        pl.col("signup").cast(pl.String).str.replace("2020-01-0", "2020-13-4", literal=True)
    ),
    "int_overflow.csv": lambda: base().with_columns(
        pl.col("age").cast(pl.String).str.replace(r"^2", "99999999999999999999")
    ),
    "nested_types.parquet": lambda: base().with_columns(
        pl.concat_list("age", "spend").alias("pair"),
        pl.struct("plan", "segment").alias("both"),
    ),
    "jsonl_ragged_keys.jsonl": lambda: pl.DataFrame(
        {"age": [1, 2], "plan": ["a", None], "extra": [None, True]}
    ),
    "case_twins.csv": lambda: pl.DataFrame({"Age": [1, 3], "age": [2, 4], "plan": ["x", "y"]}),
}


def write_corpus(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, make in CORPUS.items():
        path = folder / name
        path.write_bytes(make())
        out[name] = path
    return out
