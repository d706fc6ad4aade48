"""The ``workbench`` command end to end, as a user types it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import polars as pl

from tests.conftest import frame, run_cli, run_subprocess
from workbench.core.project import Project


def test_help_is_fast_because_heavy_libraries_stay_unloaded() -> None:
    code = (
        "import sys, workbench.cli.main as m\n"
        "heavy = [x for x in ('duckdb', 'polars', 'sklearn', 'lightgbm', 'textual', 'rich') if x in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    r = run_subprocess("--help")
    assert r.code == 0 and "data" in r.out


def test_listing_commands_load_no_ml_library(tmp_path: Path) -> None:
    """A list is a catalog read: it must not pay for importing scikit-learn or LightGBM
    (``pipeline list`` took 2 s of imports for a metric name's check)."""
    root = tmp_path / "proj"
    assert run_cli("init", str(root)).code == 0
    cfg = root / "workbench.toml"
    cfg.write_text(cfg.read_text() + '\n[pipeline.monthly]\ndataset = "d"\nmodel = "m"\n'
                   'target = "y"\nmetric = "val_auc"\nrecipe = { model = "lightgbm" }\n')  # fmt: skip
    code = (
        "import sys\n"
        "from workbench.cli.main import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('LOADED', ','.join(m for m in ('sklearn', 'lightgbm') if m in sys.modules))"
    )
    for args in (["data", "list"], ["runs", "list"], ["model", "list"], ["audit"],
                 ["pipeline", "list", "monthly"]):  # fmt: skip
        out = subprocess.run([sys.executable, "-c", code, "--project", str(root), *args],
                             capture_output=True, text=True)  # fmt: skip
        assert out.returncode == 0, (args, out.stderr)
        assert out.stdout.strip().splitlines()[-1] == "LOADED", (args, out.stdout)


def test_init_add_list_show_head_export(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    assert run_cli("init", str(root)).code == 0
    src = tmp_path / "churn.csv"
    frame(200).write_csv(src)
    r = run_cli("data", "add", str(src), "--name", "churn", "-m", "January extract", cwd=root)
    assert r.code == 0 and "Added churn@1" in r.out and "200 rows x 5 columns" in r.out
    r = run_cli("data", "add", str(src), "--name", "churn", cwd=root)
    assert r.code == 0 and "already has this content" in r.out

    listed = json.loads(run_cli("data", "list", "--json", cwd=root).out)
    assert listed == [
        {**listed[0], "name": "churn", "versions": 1, "latest": "churn@1", "rows": 200}
    ]
    versions = json.loads(run_cli("data", "list", "churn", "--json", cwd=root).out)
    assert [v["message"] for v in versions] == ["January extract"]

    shown = json.loads(run_cli("data", "show", "churn@1", "--json", cwd=root).out)
    assert shown["rows"] == 200 and {c["name"] for c in shown["profile"]["columns"]} == set(
        frame(1).columns
    )
    human = run_cli("data", "show", "churn", cwd=root)
    assert human.code == 0 and "income" in human.out and "first version" in human.out

    head = json.loads(run_cli("data", "head", "churn", "-n", "3", "--json", cwd=root).out)
    assert head == frame(200).head(3).to_dicts()

    out = tmp_path / "back.parquet"
    assert run_cli("data", "export", "churn@1", "-o", str(out), cwd=root).code == 0
    assert pl.read_parquet(out).equals(frame(200))


def test_show_says_why_a_text_column_of_ids_has_no_top_values(tmp_path: Path) -> None:
    """A text column of ids has too many values to count each: `data show` gives its
    lengths and says why there is no list of the most frequent, beside ones that have."""
    from workbench.core.data.profile import MAX_TRACKED_VALUES

    root = tmp_path / "p"
    run_cli("init", str(root))
    n = 2 * MAX_TRACKED_VALUES
    src = tmp_path / "users.parquet"
    buyer = [f"buyer-{i:06d}" if i % 10 else "regular" for i in range(n)]
    pl.DataFrame(
        {"user": [f"user-{i:07d}" for i in range(n)], "plan": ["free", "pro"] * (n // 2),
         "buyer": buyer}
    ).write_parquet(src)  # fmt: skip
    assert run_cli("data", "add", str(src), "-n", "users", cwd=root).code == 0
    lines = {
        line.split()[1]: line
        for line in run_cli("data", "show", "users", cwd=root).out.splitlines()
        if line.startswith("│")
    }
    assert "12 characters; too many distinct values to list the most frequent" in lines["user"]
    assert "free (50,000), pro (50,000)" in lines["plan"]
    # one whose values repeat keeps its most frequent, their counts marked lower bounds
    assert "regular (>=10,000)" in lines["buyer"]


def test_schema_change_is_printed_on_add(tmp_path: Path) -> None:
    root = tmp_path / "p"
    run_cli("init", str(root))
    frame(20).write_csv(tmp_path / "a.csv")
    frame(20).drop("plan").write_csv(tmp_path / "b.csv")
    run_cli("data", "add", str(tmp_path / "a.csv"), "-n", "t", cwd=root)
    r = run_cli("data", "add", str(tmp_path / "b.csv"), "-n", "t", cwd=root)
    assert "Schema changed" in r.out and "- plan" in r.out


def test_diff_from_the_command_line(tmp_path: Path) -> None:
    root = tmp_path / "p"
    run_cli("init", str(root))
    a = frame(100)
    b = a.with_columns(
        pl.when(pl.col("id") == 3).then(pl.lit(99)).otherwise(pl.col("age")).alias("age")
    )
    a.write_csv(tmp_path / "a.csv")
    b.write_csv(tmp_path / "b.csv")
    run_cli("data", "add", str(tmp_path / "a.csv"), "-n", "t", cwd=root)
    run_cli("data", "add", str(tmp_path / "b.csv"), "-n", "t", cwd=root)
    d = json.loads(run_cli("data", "diff", "t@1", "t@2", "--key", "id", "--json", cwd=root).out)
    assert d["by_key"]["rows_changed"] == 1
    assert d["by_key"]["examples"] == [
        {"key": 3, "changes": {"age": {"a": int(a["age"][3]), "b": 99}}}
    ]
    human = run_cli("data", "diff", "t@1", "t@2", "--key", "id", cwd=root)
    assert "0 new keys, 0 keys gone, 1 row changed" in human.out and "age" in human.out
    assert "in 1 chunk\n" in run_cli("data", "show", "t@2", cwd=root).out
    # a null share below 1% keeps two decimals: one null in 400 rows is not "0.0%"
    c = frame(400).with_columns(
        pl.when(pl.col("id") == 0).then(None).otherwise(pl.col("income")).alias("income")
    )
    frame(400).write_parquet(tmp_path / "c1.parquet")
    c.write_parquet(tmp_path / "c2.parquet")
    run_cli("data", "add", str(tmp_path / "c1.parquet"), "-n", "c", cwd=root)
    run_cli("data", "add", str(tmp_path / "c2.parquet"), "-n", "c", cwd=root)
    changed = run_cli("data", "diff", "c@1", "c@2", cwd=root).out
    assert re.search(r"income\s+│\s+0\.0% -> 0\.25%\s+│", changed), changed


def test_project_can_be_given_explicitly_or_found_upwards(tmp_path: Path) -> None:
    root = tmp_path / "p"
    run_cli("init", str(root))
    (root / "sub" / "dir").mkdir(parents=True)
    assert run_cli("data", "list", cwd=root / "sub" / "dir").code == 0
    assert run_cli("--project", str(root), "data", "list", cwd=tmp_path).code == 0
    r = run_cli("data", "list", cwd=tmp_path)
    assert r.code == 1 and r.err.startswith("error: not inside a workbench project")


def test_audit_and_verify(tmp_path: Path) -> None:
    root = tmp_path / "p"
    run_cli("init", str(root))
    for i in range(3):
        frame(10, seed=i).write_csv(tmp_path / f"{i}.csv")
        run_cli("data", "add", str(tmp_path / f"{i}.csv"), "-n", "t", cwd=root)
    entries = json.loads(run_cli("audit", "--json", cwd=root).out)
    assert [e["subject"] for e in entries] == ["t@3", "t@2", "t@1"]
    assert {e["action"] for e in entries} == {"dataset.add"}
    ok = run_cli("verify", cwd=root)
    assert ok.code == 0 and "verify: OK" in ok.out

    project = Project(root)
    with project.catalog.write() as con:  # tamper with history
        con.execute("UPDATE audit SET subject = 'evil' WHERE seq = 2")
    bad = run_cli("verify", cwd=root)
    assert bad.code == 1 and "audit entry 2 was altered" in bad.out


def test_verify_finds_a_damaged_or_missing_object(tmp_path: Path) -> None:
    root = tmp_path / "p"
    run_cli("init", str(root))
    frame(50).write_csv(tmp_path / "a.csv")
    run_cli("data", "add", str(tmp_path / "a.csv"), "-n", "t", cwd=root)
    project = Project(root)
    blob = project.datasets.resolve("t").segments[0].blob
    path = project.objects.path(blob)
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    r = run_cli("verify", "--json", cwd=root)
    report = json.loads(r.out)
    assert r.code == 1 and any("was altered" in p and blob[:12] in p for p in report["problems"])
    path.unlink()
    r = run_cli("verify", cwd=root)
    assert r.code == 1 and f"object {blob[:12]} (t@1) is missing" in r.out


def test_head_writes_values_as_their_type_does(tmp_path: Path) -> None:
    """Years and zip codes read 2,014 and 98,005 (a count's separators on data): a value
    in the rows is written as its type writes it, nulls as null."""
    root = tmp_path / "proj"
    run_cli("init", str(root))
    src = tmp_path / "homes.csv"
    src.write_text("year,zip,price,note\n2014,98005,420000.5,\n2015,98052,515000.0,ok\n")
    assert run_cli("data", "add", str(src), "--name", "homes", cwd=root).code == 0
    out = run_cli("data", "head", "homes@1", cwd=root).out
    first = next(line for line in out.splitlines() if "98005" in line)
    assert [c.strip() for c in first.strip("│ ").split("│")] == [
        "2014",
        "98005",
        "420000.5",
        "null",
    ]
    assert "2,014" not in out and "515000.0" in out


def test_one_row_is_said_as_one_row(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    assert run_cli("init", str(root)).code == 0
    (tmp_path / "one.csv").write_text("a,b\n1,2\n")
    added = run_cli("data", "add", str(tmp_path / "one.csv"), "--name", "one", cwd=root)
    assert added.code == 0 and "1 row x 2 columns" in added.out, added.out
    assert "1 row x 2 columns; source one.csv" in run_cli("data", "show", "one", cwd=root).out


def test_a_file_added_without_a_name_is_a_version_of_its_own_name(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    assert run_cli("init", str(root)).code == 0
    frame = pl.DataFrame({"a": [1, 2]})
    frame.write_csv(tmp_path / "sales.csv")
    frame.write_parquet(tmp_path / "sales.2024.parquet")
    frame.write_csv(tmp_path / "export [x].csv")
    assert "Added sales@1" in run_cli("data", "add", str(tmp_path / "sales.csv"), cwd=root).out
    two = run_cli("data", "add", str(tmp_path / "sales.2024.parquet"), cwd=root)
    assert "Added sales.2024@1" in two.out, two.err
    bad = run_cli("data", "add", str(tmp_path / "export [x].csv"), cwd=root)
    assert bad.code == 2 and "'export [x].csv' does not make a dataset name" in bad.err
    assert "give one with --name" in bad.err
    # and listed with the time as every other list gives it
    shown = run_cli("data", "list", cwd=root).out
    assert "updated (UTC)" in shown and re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d ", shown), shown
