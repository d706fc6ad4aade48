"""Every bad input: one clear line, a non-zero exit, no traceback, nothing written."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import frame, run_cli, run_subprocess, store_snapshot
from workbench.core.project import Project


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


BAD_FILES = {
    "empty.csv": (b"", "is empty"),
    "header_only.csv": (b"a,b,c\n", "header but no data rows"),
    "ragged_short.csv": (b"a,b,c\n1,2,3\n4,5\n6,7,8\n", "line 3 has 2 fields, the header has 3"),
    "ragged_long.csv": (b"a,b,c\n1,2,3\n4,5,6,7\n", "more fields than the header"),
    "binary.csv": (bytes(range(256)) * 40, "looks binary"),
    # valid UTF-8 but made of control bytes: was "unexpected ComputeError"
    "control_bytes.csv": (b"a,b\n" + bytes(range(1, 32)) * 100, "looks binary"),
    "latin1.csv": ("name,city\nJosé,Málaga\n".encode("latin-1"), "not UTF-8"),
    "utf16.csv": ("a,b\n1,2\n".encode("utf-16"), "UTF-16"),
    "dup_columns.csv": (b"a,a,b\n1,2,3\n", "'a' appears twice"),
    "blank_column.csv": (b"a,,b\n1,2,3\n", "column 2 has a blank name"),
    "blank_header.csv": (b"\n1,2\n", "no header line"),
    "bad.parquet": (b"PAR1 this is not really parquet", "not a readable Parquet file"),
    "bad.jsonl": (b'{"a": 1}\n{"a": \n', "not valid JSON Lines"),
}


@pytest.fixture
def project_with_data(project: Project, tmp_path: Path) -> Project:
    frame(30).write_csv(tmp_path / "good.csv")
    project.datasets.add(tmp_path / "good.csv", name="churn")
    return project


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_are_refused_cleanly(
    project_with_data: Project, tmp_path: Path, name: str
) -> None:
    content, fragment = BAD_FILES[name]
    path = _write(tmp_path / name, content)
    before = store_snapshot(project_with_data)
    r = run_cli("data", "add", str(path), "--name", "churn", cwd=project_with_data.root)
    assert r.code == 1, r
    assert r.err.count("\n") == 1 and r.err.startswith("error: ") and fragment in r.err, r.err
    assert "Traceback" not in r.err + r.out
    assert store_snapshot(project_with_data) == before
    assert list((project_with_data.store_dir / "tmp").iterdir()) == []


def test_truncated_parquet_footer_is_refused(project_with_data: Project, tmp_path: Path) -> None:
    good = tmp_path / "g.parquet"
    frame(100).write_parquet(good)
    cut = _write(tmp_path / "cut.parquet", good.read_bytes()[:-30])
    before = store_snapshot(project_with_data)
    r = run_cli("data", "add", str(cut), "-n", "churn", cwd=project_with_data.root)
    assert r.code == 1 and "not a readable Parquet file" in r.err
    assert store_snapshot(project_with_data) == before


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["data", "add", "missing.csv", "-n", "x"], 1, "no such file"),
        (["data", "add", ".", "-n", "x"], 1, "is a folder"),
        (["data", "add", "good.csv", "-n", "bad name!"], 2, "invalid dataset name"),
        (
            ["data", "add", "good.csv", "-n", "x'; DROP TABLE datasets;--"],
            2,
            "invalid dataset name",
        ),
        (["data", "show", "nope"], 1, "no dataset named 'nope' (datasets: churn)"),
        (["data", "show", "churn@9"], 1, "churn has no version 9 (versions 1..1)"),
        (
            ["data", "show", "churn@sha:ffff"],
            1,
            "no version of churn has a hash starting with ffff",
        ),
        (["data", "show", "churn@"], 2, "invalid reference"),
        (["data", "show", "churn@production"], 1, "datasets have no aliases"),
        (["data", "head", "churn", "-n", "-1"], 2, "-n must be 0 or more"),
        (["data", "head", "churn", "-n", "abc"], 2, "is not a valid integer"),
        (["data", "export", "churn", "-o", "out.xlsx"], 2, "cannot tell the format"),
        (["data", "export", "churn", "-o", "no/such/dir/x.csv"], 2, "no such folder"),
        (["data", "diff", "churn", "churn", "--key", "nope"], 2, "not in both versions"),
        (["data", "frobnicate"], 2, "No such command"),
        # without --name a file is a version of its own name, when that can be a name
        (["data", "add", "good copy.csv"], 2, "does not make a dataset name"),
        (["data", "show", "churn@99999999999999999999999"], 2, "no version number is that large"),
        (["drift", "compare", "churn", "sub/"], 1, "is a folder, not a data file"),
    ],
)
def test_bad_commands(
    project_with_data: Project, tmp_path: Path, args: list[str], code: int, fragment: str
) -> None:
    (tmp_path / "sub").mkdir()
    before = store_snapshot(project_with_data)
    r = run_cli("--project", str(project_with_data.root), *args, cwd=tmp_path)
    assert r.code == code, r
    assert r.err.count("\n") == 1 and fragment in r.err, r.err
    assert store_snapshot(project_with_data) == before


def test_errors_from_a_real_process_have_no_traceback(
    project_with_data: Project, tmp_path: Path
) -> None:
    r = run_subprocess(
        "data", "add", str(_write(tmp_path / "e.csv", b"")), "-n", "x", cwd=project_with_data.root
    )
    assert r.code == 1 and r.err.strip() == f"error: {tmp_path / 'e.csv'} is empty"
    assert "Traceback" not in r.err


def _read_only_bind(path: Path) -> bool:
    """Make ``path`` read-only with a bind mount (needs root); False when not allowed."""
    if os.geteuid() != 0:
        return False
    try:
        subprocess.run(["mount", "--bind", str(path), str(path)], check=True, capture_output=True)
        subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(path)], check=True, capture_output=True
        )
    except (OSError, subprocess.CalledProcessError):
        subprocess.run(["umount", str(path)], capture_output=True)
        return False
    return True


def test_read_only_project_refuses_writes_but_still_reads(
    project_with_data: Project, tmp_path: Path
) -> None:
    root = project_with_data.root
    if os.geteuid() != 0:
        os.chmod(root / ".workbench", 0o555)
        for sub in ("objects", "tmp"):
            os.chmod(root / ".workbench" / sub, 0o555)
        os.chmod(root / ".workbench" / "catalog.duckdb", 0o444)
    elif not _read_only_bind(root):
        pytest.skip("cannot make a read-only store here")
    try:
        frame(5, seed=9).write_csv(tmp_path / "new.csv")
        r = run_cli("data", "add", str(tmp_path / "new.csv"), "-n", "churn", cwd=root)
        assert r.code == 1 and r.err.count("\n") == 1 and "read-only" in r.err, r.err
        listed = run_cli("data", "list", cwd=root)
        assert listed.code == 0 and "churn" in listed.out
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(root)], check=True)
    assert len(Project(root).datasets.versions("churn")) == 1


def test_hostile_strings_in_messages_are_stored_verbatim(project: Project, tmp_path: Path) -> None:
    frame(5).write_csv(tmp_path / "a.csv")
    message = "'); DROP TABLE audit; -- ünïcødé \x1b[31m red"
    r = run_cli("data", "add", str(tmp_path / "a.csv"), "-n", "t", "-m", message, cwd=project.root)
    assert r.code == 0
    assert project.datasets.resolve("t").message == message
    # and shown inert: the escape is written out, never sent to the terminal
    shown = run_cli("data", "show", "t", cwd=project.root).out
    assert "DROP TABLE audit" in shown and "\\x1b[31m red" in shown and "\x1b" not in shown
