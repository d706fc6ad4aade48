"""Every file of the malformed corpus through data add, drift, train and predict.

Each command either does its job or refuses with one line that says what is wrong, a
non-zero exit, no traceback and no "unexpected" error (that wording is kept for bugs),
and a refusal leaves the store exactly as it was.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import run_cli, store_snapshot
from tests.reliability.corpus import CORPUS, HOLDS, base, write_corpus
from workbench.core.project import Project
from workbench.core.store.verify import verify

# what `data add` says of each file: None = it is stored
ADD: dict[str, str | None] = {
    "empty.csv": "is empty",
    "header_only.csv": "header but no data rows",
    "only_newlines.csv": "no header line",
    "ragged_short.csv": "line 3 has 2 fields, the header has 3",
    "ragged_long.csv": "more fields than the header",
    "unterminated_quote.csv": "has a quoted field that is never closed",
    "binary.csv": "looks binary",
    "nul_bytes.csv": "looks binary",
    "latin1.csv": "not UTF-8",
    "utf16.csv": "UTF-16",
    "gzipped.csv": "gzip-compressed; decompress it first",
    "spreadsheet.xlsx": "ZIP archive (an Excel workbook?)",
    "not_parquet.parquet": "not a readable Parquet file",
    "garbage.parquet": "not a readable Parquet file",
    "truncated_footer.parquet": "not a readable Parquet file",
    "zero_rows.parquet": "no data rows",
    "bad.jsonl": "not valid JSON Lines",
    "json_array.jsonl": "not valid JSON Lines",
    "deeply_nested.jsonl": "nests values 1001 levels deep",
    "duplicate_columns.csv": "'age' appears twice",
    "blank_column_name.csv": "column 2 has a blank name",
    "blank_header.csv": "no header line",
    "bom.csv": None,
    "crlf.csv": None,
    "nan_inf.csv": None,
    "all_null_column.csv": None,
    "constant_columns.csv": None,
    "mixed_types.csv": None,
    "huge_field.csv": None,
    "10k_columns.csv": None,
    "one_row.csv": None,
    "one_column.csv": None,
    "unicode_names.csv": None,
    "control_char_names.csv": None,
    "long_column_name.csv": None,
    "quoted_newlines.csv": None,
    "semicolons.csv": None,
    "target_all_null.csv": None,
    "single_class_target.csv": None,
    "bad_dates.csv": None,
    "int_overflow.csv": None,
    "nested_types.parquet": None,
    "jsonl_ragged_keys.jsonl": None,
    "case_twins.csv": None,
}

# what training on a stored one says (target `churned` when it has one): None = trains
TRAIN: dict[str, str | None] = {
    "one_row.csv": "has 1 rows with a target value; need at least 10",
    "one_column.csv": "target column 'churned' is not in",
    "target_all_null.csv": "has 0 rows with a target value",
    "single_class_target.csv": "has a single class (0)",
    "jsonl_ragged_keys.jsonl": "target column 'churned' is not in",
    "case_twins.csv": "target column 'churned' is not in",
}

# what scoring one with a model trained on the clean table says: None = scores it
PREDICT: dict[str, str | None] = {
    "one_column.csv": "lacks column(s) the model needs: plan, income",
    "unicode_names.csv": "lacks column(s) the model needs: age, plan, segment",
    "control_char_names.csv": "lacks column(s) the model needs: plan",
    "long_column_name.csv": "lacks column(s) the model needs: segment",
    "jsonl_ragged_keys.jsonl": "lacks column(s) the model needs",
    "case_twins.csv": "lacks column(s) the model needs",
    "mixed_types.csv": "column 'age' in mixed_types.csv cannot be read as Int64: e.g. 'forty'",
    "bad_dates.csv": "column 'signup' in bad_dates.csv cannot be read as Date",
    "nested_types.parquet": "a CSV file cannot hold nested_types.parquet's nested column(s) pair",
    "header_only.csv": "has no rows to score",
    "zero_rows.parquet": "has no rows to score",
}

# what drift of the clean table against it says, beyond data add's own refusals
DRIFT: dict[str, str | None] = {
    "header_only.csv": "has no rows: nothing to compare",
    "zero_rows.parquet": "has no rows: nothing to compare",
    "ragged_short.csv": "line 3 has 2 fields",
    "ragged_long.csv": "more fields than the header",
}


def test_the_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 30 and set(CORPUS) == set(ADD)
    assert set(HOLDS) == {name for name, refusal in ADD.items() if refusal is None}


def _holds(stored: pl.DataFrame, expected: pl.DataFrame) -> None:
    """The same column names in the same order, the same rows, and every value equal
    (compared as text, so an Int128 or a Date read from a CSV matches the table it was
    written from; NaN, inf and null each as themselves)."""
    assert stored.columns == expected.columns
    assert stored.height == expected.height
    for name in expected.columns:
        got, want = stored[name], expected[name]
        if got.dtype.is_nested() or want.dtype.is_nested():
            assert got.to_list() == want.to_list(), name
        else:
            got_text, want_text = got.cast(pl.String), want.cast(pl.String)
            assert got_text.equals(want_text), (name[:40], got_text.head(3), want_text.head(3))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """A project with the clean table as churn@1 and churn-model v1 trained on it."""
    from workbench.core.runs.training import Recipe, train

    root = tmp_path_factory.mktemp("bad-data")
    files = write_corpus(root / "files")
    base(600, 0).write_csv(root / "good.csv")
    p, _ = Project.init(root / "proj")
    p.datasets.add(root / "good.csv", name="churn")
    run = train(p, Recipe(dataset="churn@1", target="churned", params={"n_estimators": 10}))
    p.models.register(run, "churn-model")
    return p.root, files


def _refused(r: object, fragment: str) -> None:
    code, err = r.code, r.err  # type: ignore[attr-defined]
    assert code != 0, f"accepted, but expected a refusal with {fragment!r}"
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert fragment in err, err
    assert "Traceback" not in err and "unexpected" not in err, err


def _ok(r: object) -> None:
    code, err = r.code, r.err  # type: ignore[attr-defined]
    assert code == 0, err
    assert "Traceback" not in err


def _expect(r: object, fragment: str | None) -> None:
    if fragment is None:
        _ok(r)
    else:
        _refused(r, fragment)


# the widest files take half a minute each through every command: the full suite has them
HEAVY = {"10k_columns.csv", "huge_field.csv"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow if n in HEAVY else ()) for n in sorted(CORPUS)]
)
def test_bad_file_through_every_command(
    trained: tuple[Path, dict[str, Path]], tmp_path: Path, name: str
) -> None:
    template, files = trained
    root = tmp_path / "proj"
    shutil.copytree(template, root)
    p = Project(root)
    path = str(files[name])
    before = store_snapshot(p)

    added = run_cli("data", "add", path, "-n", "batch", cwd=root)
    _expect(added, ADD[name])
    if ADD[name] is not None:
        assert store_snapshot(p) == before  # a refusal writes nothing
        assert list((p.store_dir / "tmp").iterdir()) == []
    else:  # what was stored is what the file holds, read back through the CLI's reader
        _holds(p.datasets.load(p.datasets.resolve("batch@1")), HOLDS[name]())

    drift = run_cli("drift", "churn@1", path, cwd=root)
    _expect(drift, DRIFT.get(name, ADD[name]))

    if ADD[name] is None:
        stored = run_cli(
            "train", "batch@1", "--target", "churned", "-p", "n_estimators=5", cwd=root
        )
        _expect(stored, TRAIN.get(name))

    scored = run_cli("predict", "churn-model@1", path, "-o", str(tmp_path / "scored.csv"), cwd=root)
    _expect(scored, PREDICT.get(name, ADD[name]))
    assert verify(p).ok
