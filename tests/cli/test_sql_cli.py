"""`workbench sql` answers questions over documented views and refuses to change anything;
`workbench export` writes files that other tools read back intact."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import run_cli, store_snapshot
from workbench.core.project import Project
from workbench.core.store import sql


def test_every_documented_view_answers_and_is_listed_in_the_docs(models: Project) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "sql.md").read_text()
    for name, view in sql.describe(models).items():
        assert f"| `{name}` |" in doc, f"docs/sql.md lacks view {name}"
        res = sql.query(models, f"SELECT * FROM {name}")
        assert res.columns == [c for c, _ in view["columns"]]


def test_sql_joins_runs_params_metrics_and_models(models: Project) -> None:
    models.models.promote("churn-model", 2, "production")
    res = run_cli(
        "sql",
        "--json",
        """SELECT r.name, p.value AS family, round(m.value, 6) AS auc, a.alias
        FROM runs r JOIN params p ON p.run_id = r.run_id AND p.key = 'model'
        JOIN latest_metrics m ON m.run_id = r.run_id AND m.key = 'val_auc'
        LEFT JOIN model_versions mv ON mv.run_id = r.run_id
        LEFT JOIN aliases a ON a.model = mv.model AND a.version = mv.version
        ORDER BY r.name""",
        cwd=models.root,
    )
    assert res.code == 0, res.err
    rows = json.loads(res.out)
    strong = models.runs.get(models.models.resolve("churn-model@2").run_id)
    assert rows == [
        {
            "name": "strong",
            "family": "lightgbm",
            "auc": round(strong["metrics"]["val_auc"]["last"], 6),
            "alias": "production",
        },
        {"name": "weak", "family": "logistic", "auc": rows[1]["auc"], "alias": None},
    ]
    points = sql.query(models, "SELECT count(*) FROM metrics").rows[0][0]
    with models.catalog.read() as con:
        assert points == con.execute("SELECT count(*) FROM metrics").fetchone()[0] > 0


def test_csv_output_and_the_row_limit(models: Project) -> None:
    res = run_cli(
        "sql", "--csv", "-n", "3", "SELECT seq, action FROM audit ORDER BY seq", cwd=models.root
    )
    assert res.code == 0
    rows = list(csv.reader(io.StringIO(res.out)))
    assert rows[0] == ["seq", "action"] and len(rows) == 4
    assert rows[1] == ["1", "dataset.add"]
    assert "stopped at 3 rows" in res.err


HOSTILE = [
    "DELETE FROM runs",
    "UPDATE audit SET actor = 'me'",
    "INSERT INTO catalog.main.runs (id) VALUES ('x')",
    "DROP VIEW runs",
    "CREATE TABLE t AS SELECT 1",
    "COPY (SELECT * FROM runs) TO 'stolen.csv'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "ATTACH 'other.duckdb'",
    "INSTALL httpfs",
    "SET enable_external_access = true",
    "SELECT 1; DELETE FROM audit",
    "SELECT * FROM runs WHERE name = ''; DROP TABLE audit; --'",
    "PRAGMA database_list",
]


@pytest.mark.parametrize("query", HOSTILE)
def test_writes_files_and_settings_are_refused_in_one_line(
    models: Project, query: str, tmp_path: Path
) -> None:
    before = store_snapshot(models)
    res = run_cli("--project", str(models.root), "sql", query, cwd=tmp_path)
    assert res.code != 0
    assert res.err.startswith("error: ") and res.err.count("\n") == 1 and "Traceback" not in res.err
    assert not (tmp_path / "stolen.csv").exists() and not (tmp_path / "other.duckdb").exists()
    assert store_snapshot(models) == before


def test_a_bad_query_is_one_line_naming_the_problem(models: Project) -> None:
    res = run_cli("sql", "SELECT nme FROM runs", cwd=models.root)
    assert res.code == 1 and res.err.startswith("error: SQL error:") and "nme" in res.err
    assert run_cli("sql", cwd=models.root).code == 2


@pytest.mark.parametrize("what", list(sql.EXPORTS))
def test_exports_read_back_in_polars(models: Project, tmp_path: Path, what: str) -> None:
    from workbench.core.models.prediction_log import LogWriter, request_line

    models.drift.compare("churn@1", "churn@2")
    log = LogWriter(models.serving_dir)  # a served request, for requests and predictions
    log.write(request_line("r1", 200, 2.5, 2, "churn-model", 1, inputs={"age": [30, 41]},
                           outputs={"prediction": [0, 1]}))  # fmt: skip
    log.close()
    for name in (f"{what}.parquet", f"{what}.csv"):
        res = run_cli("export", what, "-o", str(tmp_path / name), cwd=models.root)
        assert res.code == 0, res.err
    parquet = pl.read_parquet(tmp_path / f"{what}.parquet")
    text = pl.read_csv(tmp_path / f"{what}.csv", infer_schema_length=None)
    assert parquet.height == text.height > 0
    assert parquet.columns == text.columns
    assert not list(tmp_path.glob(".*.tmp"))


def test_runs_export_is_wide_with_params_metrics_and_tags(models: Project, tmp_path: Path) -> None:
    run_id = models.models.resolve("churn-model@2").run_id
    models.runs.set_tag(run_id, "stage", "review")
    assert run_cli("export", "runs", "-o", str(tmp_path), cwd=models.root).code == 0
    runs = pl.read_parquet(tmp_path / "runs.parquet")
    row = runs.filter(pl.col("run_id") == run_id).row(0, named=True)
    info = models.runs.get(run_id)
    assert row["params.model"] == "lightgbm" and row["tags.stage"] == "review"
    assert row["metrics.val_auc"] == info["metrics"]["val_auc"]["last"]
    assert runs.height == 2


def test_export_refuses_an_unknown_format(models: Project, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = run_cli("export", "runs", "-o", str(out / "runs.xlsx"), cwd=models.root)
    assert res.code == 2 and "use .parquet or .csv" in res.err
    assert not out.exists()
