"""Runs journal their start and end instead of opening the catalog; the next catalog
operation folds the journal in. What a user relies on: every reader sees every run,
nothing is folded twice, a damaged record never blocks the store, and the points
file keeps every whole block a killed process wrote."""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import pytest

from workbench.core.errors import StoreError
from workbench.core.project import Project
from workbench.core.runs.points import POINTS_FILE, read_points
from workbench.core.store import audit
from workbench.core.store.verify import verify


def _journal(project: Project) -> list[str]:
    return sorted(p.name for p in (project.store_dir / "journal").iterdir())


def _counts(project: Project, run_id: str) -> tuple[int, int, int]:
    with project.catalog.read() as con:
        return con.execute(
            "SELECT (SELECT count(*) FROM metrics WHERE run_id = $1), "
            "(SELECT count(*) FROM params WHERE run_id = $1), "
            "(SELECT count(*) FROM audit WHERE subject = 'run:' || $1)",
            [run_id],
        ).fetchone()


def test_a_live_run_is_seen_by_another_reader_and_its_end_by_the_next_one(
    project: Project,
) -> None:
    run = project.runs.start(experiment="j", name="live")
    assert _journal(project) == [f"{run.id}.start"]
    other = Project(project.root)  # another process's view: nothing shared but the files
    assert other.runs.get(run.id)["status"] == "running"
    assert _journal(project) == []  # that read folded the start
    run.log_param("lr", 0.1)
    run.log_metric("loss", 0.5, step=1)
    run.end()
    assert _journal(project) == [f"{run.id}.end"]
    info = other.runs.get(run.id)
    assert info["status"] == "finished" and info["params"] == {"lr": "0.1"}
    assert info["metrics"]["loss"]["last"] == 0.5 and info["end_time"] >= info["start_time"]
    assert _journal(project) == []


def test_records_folded_again_after_a_crash_before_their_removal_change_nothing(
    project: Project, tmp_path: Path
) -> None:
    run = project.runs.start(experiment="j")
    run.log_params({"a": 1, "b": 2})
    run.log_curve("loss", [0.3, 0.2, 0.1])
    kept = tmp_path / "kept"
    kept.mkdir()
    shutil.copy(project.store_dir / "journal" / f"{run.id}.start", kept)
    run.end()
    shutil.copy(project.store_dir / "journal" / f"{run.id}.end", kept)
    before = _counts(project, run.id)
    assert before == (3, 2, 2)
    for record in kept.iterdir():  # as if the fold had committed and then died
        shutil.copy(record, project.store_dir / "journal" / record.name)
    assert _counts(project, run.id) == before
    assert _journal(project) == []
    with project.catalog.read() as con:
        assert audit.verify_chain(con) == []


def test_runs_folded_together_keep_the_audit_in_time_order_and_the_chain_whole(
    project: Project,
) -> None:
    ids = []
    for i in range(5):
        with project.runs.start(experiment="many", name=f"r{i}") as run:
            run.log_metric("m", float(i))
        ids.append(run.id)
    assert len(_journal(project)) == 10
    rows = project.runs.list(experiment="many", order_by="start_time asc")
    assert [r["name"] for r in rows] == [f"r{i}" for i in range(5)]
    with project.catalog.read() as con:
        assert audit.verify_chain(con) == []
        entries = list(reversed(audit.entries(con)))
    run_entries = [(e["action"], e["subject"]) for e in entries if e["action"].startswith("run.")]
    expected = [(a, f"run:{r}") for r in ids for a in ("run.start", "run.end")]
    assert run_entries == expected
    times = [e["at"] for e in entries]
    assert times == sorted(times)


def test_a_damaged_or_orphaned_record_is_set_aside_and_never_blocks_reading(
    project: Project,
) -> None:
    journal = project.store_dir / "journal"
    (journal / ("a" * 32 + ".end")).write_text('{"status": "finished", "end_time": "2026')
    (journal / ("b" * 32 + ".end")).write_text(
        '{"status": "finished", "error": null, "end_time": "2026-01-01T00:00:00"}'
    )
    with project.runs.start(experiment="j") as run:
        run.log_metric("m", 1.0)
    assert project.runs.get(run.id)["status"] == "finished"
    assert _journal(project) == ["a" * 32 + ".end.unreadable", "b" * 32 + ".end.unreadable"]
    assert project.runs.list(experiment="j")[0]["id"] == run.id
    problems = verify(project).problems
    assert len(problems) == 2 and all("set aside" in p for p in problems)


def test_an_end_written_while_a_reader_judged_the_run_dead_is_not_overruled(
    project: Project,
) -> None:
    run = project.runs.start(experiment="j")
    project.runs.get(run.id)  # its start is folded: the row says running
    run.log_metric("m", 2.0)
    run.end()  # its end is in the journal, not yet folded
    fold, project.catalog.on_pending = project.catalog.on_pending, None
    try:
        project.runs.journal.mark_killed([run.id])  # a reader that listed the journal too early
    finally:
        project.catalog.on_pending = fold
    info = project.runs.get(run.id)
    assert info["status"] == "finished" and info["metrics"]["m"]["count"] == 1


def test_a_store_that_cannot_be_written_still_reads_what_is_folded(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    with project.runs.start(experiment="j", name="folded") as first:
        pass
    project.runs.get(first.id)
    with project.runs.start(experiment="j", name="pending"):
        pass

    def refuse() -> None:
        raise StoreError("the project store is read-only: here")

    monkeypatch.setattr(project.catalog, "on_pending", refuse)
    assert [r["name"] for r in project.runs.list(experiment="j")] == ["folded"]
    with pytest.raises(StoreError, match="read-only"):
        project.runs.set_tag(first.id, "k", "v")  # a write must not skip the fold


def test_the_points_file_keeps_every_whole_block_when_the_last_is_torn(project: Project) -> None:
    run = project.runs.start(experiment="j")
    run.log_curve("loss", [0.5, 0.4, math.nan])
    run.log_metric("ключ", math.inf, step=7)
    run.flush()
    path = run.dir / POINTS_FILE
    whole = path.stat().st_size
    run.log_curve("acc", [0.1, 0.2])
    run.flush()
    for cut in range(whole, path.stat().st_size):  # every place a kill could stop a write
        data = path.read_bytes()
        torn = run.dir.parent / "torn"
        torn.mkdir(exist_ok=True)
        (torn / POINTS_FILE).write_bytes(data[:cut])
        pts = read_points(torn)
        assert pts["key"].to_list() == ["loss", "loss", "loss", "ключ"]
        assert pts["step"].to_list() == [0, 1, 2, 7] and pts["value"][3] == math.inf
    run.end()
    assert set(project.runs.get(run.id)["metrics"]) == {"loss", "ключ", "acc"}


def test_a_text_points_file_from_an_earlier_version_is_still_read(project: Project) -> None:
    folder = project.store_dir / "runs" / "legacy"
    folder.mkdir()
    (folder / "metrics.tsv").write_text('"loss"\t1\t0.5\t1700000000000\n"loss"\t2\t0.25\t17')
    pts = read_points(folder)
    assert pts["step"].to_list() == [1] and pts["value"].to_list() == [0.5]


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda r: r.log_metric("m", 1.0, step=2**63), "fit in 64 bits"),
        (lambda r: r.log_metric("m", 10**400), "too large for a float"),
    ],
)
def test_values_the_file_cannot_hold_are_refused_before_anything_is_kept(
    project: Project, call, fragment: str
) -> None:
    from workbench.core.errors import UsageError

    with project.runs.start(experiment="j") as run:
        with pytest.raises(UsageError, match=fragment):
            call(run)
        run.log_metric("m", 3.0, step=1)
    assert project.runs.history(run.id, "m") == [(1, 3.0)]


def test_points_logged_while_another_thread_flushes_are_each_written_once_and_whole(
    project: Project,
) -> None:
    import threading

    run = project.runs.start(experiment="j")
    stop = threading.Event()

    def flusher() -> None:  # what the heartbeat does, as often as it can
        while not stop.is_set():
            run.flush()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as CPython can: between appends
    t = threading.Thread(target=flusher)
    t.start()
    try:
        for step in range(20_000):
            for k in range(3):
                run.log_metric(f"m{k}", step * 10.0 + k, step=step)
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(interval)
    run.end()
    pts = read_points(run.dir)
    assert pts.height == 60_000
    keys = pts["key"].str.slice(1).cast(int)
    assert (pts["value"] == pts["step"] * 10.0 + keys).all()  # no point mixes two
    assert sorted(zip(pts["step"], keys, strict=True)) == [
        (s, k) for s in range(20_000) for k in range(3)
    ]


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.log_metric("m", 2.0, step=5),
        lambda r: r.log_metric("new key", 2.0),
        lambda r: r.log_curve("m", [1.0, 2.0]),
        lambda r: r.log_param("late", 1),
        lambda r: r.set_tag("late", "x"),
        lambda r: r.log_bytes("late.txt", b"x"),
    ],
)
def test_logging_after_the_end_is_refused_in_one_line_and_changes_nothing(
    project: Project, call
) -> None:
    from workbench.core.errors import UsageError

    with project.runs.start(experiment="j") as run:
        run.log_metric("m", 1.0, step=1)
        run.log_param("lr", 0.1)
    before = project.runs.get(run.id)
    with pytest.raises(UsageError, match=r"has ended: .* start a new run"):
        call(run)
    after = project.runs.get(run.id)
    assert (after["metrics"], after["params"], after["tags"], after["artifacts"]) == (
        before["metrics"],
        before["params"],
        before["tags"],
        before["artifacts"],
    )
    assert project.runs.history(run.id, "m") == [(1, 1.0)]
