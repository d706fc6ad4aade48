"""The prediction log and its fold: every logged request reaches the catalog once, whole
lines only, across rotation, interruption and dead writers; retention bounds it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from workbench.core.errors import UsageError
from workbench.core.models import prediction_log as pl_log
from workbench.core.models.prediction_log import LogWriter, TrafficReader, fold, request_line
from workbench.core.project import Project


def line(rid: str, rows: int = 2, status: int = 200, latency: float = 3.0, **kw: object) -> bytes:
    data = {"inputs": {"x": list(range(rows)), "key": [f"{rid}-{i}" for i in range(rows)]},
            "outputs": {"prediction": [i * 10 for i in range(rows)]}}  # fmt: skip
    if status != 200:
        return request_line(rid, status, latency, 0, error="no", **kw)  # type: ignore[arg-type]
    return request_line(rid, status, latency, rows, "m", 3, **data, **kw)  # type: ignore[arg-type]


def counts(project: Project) -> tuple[int, int]:
    with project.catalog.read() as con:
        reqs = con.execute("SELECT count(*) FROM serving_requests").fetchone()[0]  # type: ignore[index]
        preds = con.execute("SELECT count(*) FROM predictions").fetchone()[0]  # type: ignore[index]
    return reqs, preds


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project.init(tmp_path / "p")[0]


def test_each_logged_row_is_folded_once_with_its_inputs_and_outputs(project: Project) -> None:
    log = LogWriter(project.serving_dir)
    log.write(line("a", 2))
    log.write(line("b", 3))
    log.write(line("bad", status=400))
    done = project.fold_predictions()
    assert (done.requests, done.predictions) == (3, 5)
    assert counts(project) == (3, 5)
    with project.catalog.read() as con:
        rows = con.execute(
            "SELECT request_id, row, inputs, outputs FROM predictions ORDER BY ts, row"
        ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [("a", 0), ("a", 1), ("b", 0), ("b", 1), ("b", 2)]
    assert json.loads(rows[4][2]) == {"x": 2, "key": "b-2"}
    assert json.loads(rows[4][3]) == {"prediction": 20}
    assert project.fold_predictions().requests == 0  # nothing twice
    log.write(line("c", 1))
    assert project.fold_predictions().requests == 1 and counts(project) == (4, 6)
    assert log.path.exists()  # its writer still writes to it
    log.close()


def test_rows_are_kept_as_the_client_sent_them_whatever_the_form(project: Project) -> None:
    """A record list (as a client sends) and columns (a batch) give the same row objects; an
    integer stays an integer beside another request's float; NaN and Infinity, which
    Python clients send though JSON has neither, are missing; times are UTC."""
    log = LogWriter(project.serving_dir)
    records = [{"x": 1, "city": "Oslo"}, {"x": 2.5, "city": None}]
    log.write(request_line("recs", 200, 1.0, 2, "m", 3, inputs=records,
                           outputs=[{"prediction": 0}, {"prediction": 1}]))  # fmt: skip
    log.write(request_line("cols", 200, 1.0, 2, "m", 3, inputs={"x": [7, float("nan")],
                           "city": ["Rome", "Lima"]}, outputs={"prediction": [1, 0]}))  # fmt: skip
    one = json.loads(line("later", 1))
    an_hour_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    one["ts"] = an_hour_ago.astimezone(timezone(timedelta(hours=2))).isoformat()
    one["inputs"] = [{"x": float("inf"), "city": "NaN"}]
    log.write(json.dumps(one).encode() + b"\n")
    assert project.fold_predictions().predictions == 5
    with project.catalog.read() as con:
        rows = con.execute(
            "SELECT request_id, row, inputs, outputs FROM predictions ORDER BY ts, row"
        ).fetchall()
        at = con.execute("SELECT ts FROM predictions WHERE request_id = 'later'").fetchone()
    assert [(r[0], r[1], json.loads(r[2]), json.loads(r[3])) for r in rows] == [
        ("later", 0, {"x": None, "city": "NaN"}, {"prediction": 0}),
        ("recs", 0, {"x": 1, "city": "Oslo"}, {"prediction": 0}),
        ("recs", 1, {"x": 2.5, "city": None}, {"prediction": 1}),
        ("cols", 0, {"x": 7, "city": "Rome"}, {"prediction": 1}),
        ("cols", 1, {"x": None, "city": "Lima"}, {"prediction": 0}),
    ]
    assert '"x":1,' in rows[1][2]  # not 1.0: as sent
    assert at is not None and at[0] == an_hour_ago.replace(tzinfo=None)


def test_a_line_that_is_not_a_request_is_skipped_and_the_rest_fold(project: Project) -> None:
    """A fold never stops at a line it cannot place (not JSON, not an object, no time): the
    requests around it reach the catalog, and no scratch file is left behind, a killed
    fold's included."""
    log = LogWriter(project.serving_dir)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    stale = project.serving_dir / f".fold-{dead.stdout.strip()}-0123456789ab.jsonl"
    stale.write_bytes(line("left-by-a-killed-fold"))
    log.write(line("a", 1))
    for junk in (b"not json\n", b"[1, 2]\n", b'{"id": "no-time", "status": 200}\n'):
        log.write(junk)
    log.write(line("b", 2))
    done = project.fold_predictions()
    assert (done.requests, done.predictions) == (2, 3) and counts(project) == (2, 3)
    assert [p.name for p in project.serving_dir.iterdir()] == [log.path.name]
    assert project.fold_predictions().requests == 0


def test_a_request_logged_in_one_very_long_line_folds_whole(project: Project) -> None:
    """A big batch is one line of tens of MB (past the JSON reader's default object size):
    it reaches the catalog whole, with the requests around it."""
    log = LogWriter(project.serving_dir)
    log.write(line("before", 1))
    big = "x" * 34_000_000
    log.write(request_line("big", 200, 9.0, 1, "m", 3, inputs={"blob": [big]},
                           outputs={"prediction": [1]}))  # fmt: skip
    log.write(line("after", 1))
    assert project.fold_predictions().requests == 3
    with project.catalog.read() as con:
        got = con.execute(
            "SELECT request_id, length(inputs->>'blob') FROM predictions ORDER BY ts"
        ).fetchall()
    assert got == [("before", None), ("big", len(big)), ("after", None)]


def test_a_line_still_being_written_waits_for_its_end(project: Project) -> None:
    log = LogWriter(project.serving_dir)
    whole = line("a", 2)
    log.write(line("first", 1) + whole[:25])  # a line cut mid-write
    assert project.fold_predictions().requests == 1
    log.write(whole[25:])
    assert project.fold_predictions().requests == 1
    assert counts(project) == (2, 3)


def test_an_interrupted_fold_is_done_again_whole(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = LogWriter(project.serving_dir)
    for i in range(5):
        log.write(line(f"r{i}"))
    real = pl_log._insert

    def fail_after(con: object, lines: Path, log: str) -> None:
        real(con, lines, log)
        raise OSError("killed mid-fold")

    monkeypatch.setattr(pl_log, "_insert", fail_after)
    with pytest.raises(OSError):
        fold(project.catalog, project.serving_dir)
    assert counts(project) == (0, 0)  # rolled back, its offsets with it
    monkeypatch.setattr(pl_log, "_insert", real)
    assert fold(project.catalog, project.serving_dir).requests == 5
    assert counts(project) == (5, 10)


def test_rotated_and_orphaned_files_go_once_folded(project: Project) -> None:
    log = LogWriter(project.serving_dir, max_bytes=600)
    for i in range(12):
        log.write(line(f"r{i}"))
    files = sorted(project.serving_dir.glob("*.jsonl"))
    assert len(files) > 3  # rotated
    done = project.fold_predictions()
    assert done.requests == 12 and counts(project) == (12, 24)
    assert sorted(project.serving_dir.glob("*.jsonl")) == [log.path]  # the live one stays
    log.write(line("r12"))
    log.close()
    # a server that died (its pid is gone) leaves a file: folded, then deleted
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    name = log.path.name.split("-")
    orphan = project.serving_dir / "-".join(
        [name[0], dead.stdout.strip(), "deadbeef", "00000.jsonl"]
    )
    orphan.write_bytes(line("o1") + line("o2"))
    assert project.fold_predictions().requests == 3
    assert not orphan.exists() and log.path.exists()
    assert counts(project) == (15, 30)
    with project.catalog.read() as con:
        files = con.execute("SELECT count(*) FROM prediction_logs").fetchone()[0]  # type: ignore[index]
    assert project.fold_predictions().requests == 0
    with project.catalog.read() as con:  # rows of deleted files are dropped, not refolded
        after = con.execute("SELECT count(*) FROM prediction_logs").fetchone()[0]  # type: ignore[index]
    assert after < files and counts(project) == (15, 30)


def test_retention_drops_rows_older_than_the_setting(project: Project) -> None:
    (project.root / "workbench.toml").write_text("[serving]\nretention_days = 7\n")
    project = Project(project.root)
    log = LogWriter(project.serving_dir)
    old = json.loads(line("old", 2))
    old["ts"] = (datetime.now(UTC) - timedelta(days=8)).isoformat()
    log.write(json.dumps(old).encode() + b"\n")
    log.write(line("new", 2))
    project.fold_predictions()
    with project.catalog.read() as con:
        ids = con.execute("SELECT DISTINCT request_id FROM predictions").fetchall()
    assert ids == [("new",)] and counts(project) == (1, 2)


def test_a_bad_retention_setting_is_refused_with_its_line(project: Project) -> None:
    (project.root / "workbench.toml").write_text('[serving]\nretention_days = "forever"\n')
    with pytest.raises(UsageError, match=r"line 2: serving.retention_days must be a number"):
        _ = Project(project.root).settings


def test_the_traffic_reader_sees_only_new_requests(tmp_path: Path) -> None:
    log = LogWriter(tmp_path)
    reader = TrafficReader(tmp_path, window=10)
    assert reader.read()[log.server_id].requests == 0  # up, and quiet
    for ms in range(1, 101):
        log.write(line(f"r{ms}", latency=float(ms)))
    log.write(line("x", status=400))
    t = reader.read()[log.server_id]
    assert (t.requests, t.errors, t.version, t.total) == (101, 1, 3, 101)
    assert t.p50_ms == pytest.approx(50, abs=1.5) and t.p99_ms == pytest.approx(99, abs=1.5)
    log.write(line("y"))
    assert reader.read()[log.server_id].total == 102
    later = reader.read(now=time.time() + 60)[log.server_id]  # a quiet minute on
    assert (later.requests, later.per_second, later.p99_ms) == (0, 0.0, None)
    assert os.path.exists(log.path)


def test_a_long_backlog_folds_in_bounded_transactions(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A month of traffic folded at once must not need its size in memory: at most
    FOLD_BYTES of lines per transaction, a line longer than that whole, nothing twice."""
    monkeypatch.setattr(pl_log, "FOLD_BYTES", 700)
    log = LogWriter(project.serving_dir)
    for i in range(30):
        log.write(line(f"r{i}", rows=1 + i % 3))
    log.write(line("big", rows=200))  # one line of several times FOLD_BYTES
    commits = []
    real = pl_log._fold_some

    def counted(*args: object) -> dict[str, int]:
        commits.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(pl_log, "_fold_some", counted)
    done = project.fold_predictions()
    assert done.requests == 31 and len(commits) > 5
    assert counts(project) == (31, sum(1 + i % 3 for i in range(30)) + 200)
    assert project.fold_predictions().requests == 0
