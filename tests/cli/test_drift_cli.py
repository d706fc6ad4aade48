"""``workbench drift`` as a user types it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli, store_snapshot
from tests.core.test_drift import batch
from workbench.core.project import Project


@pytest.fixture
def versions(project: Project, tmp_path: Path) -> Project:
    for i, shift in enumerate((0.0, 0.0, 1.0, 2.0)):
        path = tmp_path / f"users{i}.parquet"
        batch(
            3000, i, shift=shift, plan_p=(0.5, 0.3, 0.2) if i < 3 else (0.1, 0.2, 0.7)
        ).write_parquet(path)
        assert run_cli("data", "add", str(path), "--name", "users", cwd=project.root).code == 0
    return project


def test_compare_prints_a_table_sorted_by_severity(versions: Project) -> None:
    r = run_cli("drift", "users@1", "users@4", cwd=versions.root)
    assert r.code == 0, r.err
    assert "users@1 → users@4" in r.out and "DATASET DRIFT" not in r.out
    # first line of each table row (a narrow terminal wraps cells onto more lines)
    rows = [ln for ln in r.out.splitlines() if ln.startswith("│ ") and ln.split("│")[1].strip()]
    assert {rows[0].split("│")[1].strip(), rows[1].split("│")[1].strip()} == {"age", "plan"}
    assert "DRIFT" in rows[0] and "DRIFT" in rows[1] and "DRIFT" not in rows[2]


def test_json_output_and_stored_report(versions: Project) -> None:
    r = run_cli("drift", "users@1", "users@3", "--json", cwd=versions.root)
    data = json.loads(r.out)
    assert data["reference"] == "users@1" and data["current"] == "users@3"
    age = next(c for c in data["columns"] if c["column"] == "age")
    assert age["drifted"] is True and age["method"] == "wasserstein" and age["statistic"] > 0.1
    listed = json.loads(run_cli("drift", "list", "--json", cwd=versions.root).out)
    assert listed[0]["id"] == data["id"]
    shown = json.loads(run_cli("drift", "show", data["id"][:10], "--json", cwd=versions.root).out)
    assert shown["columns"][0]["plot"] and shown["n_drifted"] == data["n_drifted"]


def test_a_range_gives_a_timeline(versions: Project) -> None:
    r = run_cli("drift", "users@1", "users@2..4", cwd=versions.root)
    assert r.code == 0, r.err
    assert "users@2" in r.out and "users@3" in r.out and "users@4" in r.out
    age_row = next(ln for ln in r.out.splitlines() if ln.startswith("│ age"))
    assert age_row.count("*") == 2  # drifted at @3 and @4, not at @2
    # stored together (one transaction), each with its audit entry, newest listed first
    assert [d["current"] for d in versions.drift.list()] == ["users@4", "users@3", "users@2"]
    with versions.catalog.read() as con:
        audited = con.execute("SELECT count(*) FROM audit WHERE action = 'drift.report'").fetchone()
    assert audited == (3,)
    data = json.loads(
        run_cli("drift", "users@1", "users@2..4", "--json", "--no-save", cwd=versions.root).out
    )
    assert [d["current"] for d in data] == ["users@2", "users@3", "users@4"]


def test_plot_and_reports(versions: Project, tmp_path: Path) -> None:
    r = run_cli("drift", "users@1", "users@4", "--plot", "plan", cwd=versions.root)
    assert r.code == 0 and "plan: DRIFTED" in r.out and "users@1" in r.out
    md, page = tmp_path / "drift.md", tmp_path / "drift.html"
    assert run_cli("drift", "users@1", "users@4", "--report", str(md), cwd=versions.root).code == 0
    text = md.read_text()
    assert (
        text.startswith("# Drift: users@1 → users@4") and "| age | numeric | wasserstein |" in text
    )
    assert "## plan" in text and "```" in text
    assert (
        run_cli("drift", "users@1", "users@4", "--report", str(page), cwd=versions.root).code == 0
    )
    html = page.read_text()
    assert "<svg" in html and "<script" not in html and "users@4" in html


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["users@1", "users@9"], 1, "users has no version 9 (versions 1..4)"),
        (["users@1", "nosuch"], 1, "no dataset"),
        (["users@1", "users@2", "--method", "kss"], 2, "unknown drift method 'kss'"),
        (["users@1", "users@2", "--columns", "nope"], 2, "no column 'nope'"),
        (["users@1", "users@2", "--column-method", "plan"], 2, "COLUMN=METHOD"),
        (["users@1", "users@2", "--plot", "nope"], 2, "no column 'nope' in this report"),
        (["users@1", "users@2", "--columns", "agee"], 2, "users@2; did you mean 'age'"),
        (["users@1", "users@2", "--plot", "agee"], 2, "in this report; did you mean 'age'"),
        (["users@1", "users@2", "--report", "out.pdf"], 2, ".md or .html"),
        (["users@1", "users@4..2"], 2, "invalid version range"),
        (["users@1", "users@2..3", "--plot", "age"], 2, "take one CURRENT"),
        (["show", "ffff"], 1, "no drift report"),
    ],
)
def test_bad_input_is_one_line_and_writes_no_report(
    versions: Project, args: list[str], code: int, message: str
) -> None:
    before = store_snapshot(versions)
    r = run_cli("drift", *args, cwd=versions.root)
    assert r.code == code, (r.out, r.err)
    assert message in r.err and len(r.err.strip().splitlines()) == 1
    assert "Traceback" not in r.err
    assert store_snapshot(versions) == before


def test_drift_of_a_model_on_a_file_without_its_inputs_says_which(
    models: Project, tmp_path: Path
) -> None:
    """As `predict` says it, not "unexpected ColumnNotFoundError"; nothing is stored."""
    df = models.datasets.load("churn@2").drop("income")
    df.write_csv(tmp_path / "no_income.csv")
    before = store_snapshot(models)
    r = run_cli(
        "drift",
        "compare",
        "--model",
        "churn-model@2",
        str(tmp_path / "no_income.csv"),
        cwd=models.root,
    )
    assert r.code == 1
    assert r.err.strip() == "error: no_income.csv lacks column(s) the model needs: income"
    assert store_snapshot(models) == before


def table_rows(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if ln.startswith("│ ")]


def test_what_every_column_shares_is_said_once_above_the_table(
    versions: Project, tmp_path: Path
) -> None:
    """Every column of 3,000 rows: the rule that chose distances is one line, not a clause
    on each row; the stored reasons stay whole, and the files say the same as the table."""
    r = run_cli("drift", "users@1", "users@4", cwd=versions.root)
    assert r.code == 0, r.err
    said = (
        "Evidently's default methods (by type and distinct values); every tested column has "
        "> 1,000 reference values, so distances, not tests."
    )
    assert r.out.count(said) == 1
    assert not any("ref values" in row or "default:" in row for row in table_rows(r.out))
    age = next(row for row in table_rows(r.out) if row.startswith("│ age "))
    assert "numeric, " in age and "distinct in ref > 5" in age  # the rule of its own
    stored = json.loads(run_cli("drift", "show", "--json", versions.drift.list()[0]["id"],
                                cwd=versions.root).out)  # fmt: skip
    assert all(
        c["reason"].startswith("default: ") and "3,000 ref values > 1000" in c["reason"]
        for c in stored["columns"]
    )
    md = tmp_path / "drift.md"
    assert run_cli("drift", "users@1", "users@4", "--report", str(md), cwd=versions.root).code == 0
    text = md.read_text()
    assert text.count(said) == 1 and "ref values" not in text
    # one column's method chosen: the others' reasons are no longer all the default's
    r = run_cli("drift", "users@1", "users@4", "--column-method", "age=ks", "--no-save",
                cwd=versions.root)  # fmt: skip
    assert r.code == 0, r.err
    assert "Evidently's default methods" not in r.out and "(not saved)" in r.out
    plan = next(row for row in table_rows(r.out) if row.startswith("│ plan "))
    assert "default: categorical" in plan


def test_a_model_aware_report_says_its_model_and_small_references_say_tests(
    models: Project, tmp_path: Path
) -> None:
    """Against churn-model@2's 600 training rows (tests, not distances), with its
    prediction: the header and `drift list` name the model, so the plain comparison of
    the same versions, with fewer columns, is not mistaken for it."""
    r = run_cli("drift", "--model", "churn-model@2", "churn@2", cwd=models.root)
    assert r.code == 0, r.err
    assert "(model churn-model@2)" in r.out.splitlines()[0]
    assert "every tested column has <= 1,000 reference values, so tests, not distances." in r.out
    md = tmp_path / "aware.md"
    assert run_cli("drift", "show", models.drift.list()[0]["id"], "--report", str(md),
                   cwd=models.root).code == 0  # fmt: skip
    assert md.read_text().startswith("# Drift: churn@1 → churn@2 (model churn-model@2)\n")
    assert run_cli("drift", "churn@1", "churn@2", cwd=models.root).code == 0
    listed = json.loads(run_cli("drift", "list", "--json", cwd=models.root).out)
    assert [i["model"] for i in listed] == [None, "churn-model@2"]
    rows = table_rows(run_cli("drift", "list", cwd=models.root).out)
    assert "churn-model@2" in rows[1] and "churn-model" not in rows[0]
