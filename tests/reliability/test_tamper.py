"""An edited trail is found: any single audit entry deleted (the newest included), the
tail truncated, a drift report or a scoring edited or deleted behind workbench's back.

The hash chain shows an edited or deleted entry in the middle; the anchor file
(``audit.head``) shows a deleted tail; a head the user kept elsewhere shows a tail
deleted together with a rewritten anchor. Each case is checked through the real
``workbench verify`` command, whose exit code a cron job or CI would read.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import build_models, run_cli
from workbench.core.project import Project
from workbench.core.store import audit


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every kind of audited change: versions, runs, register, promote, drift, predict."""
    tmp = tmp_path_factory.mktemp("tamper")
    p, _ = Project.init(tmp / "p")
    root = build_models(p, tmp).root
    for args in (
        ("model", "promote", "churn-model", "2", "--to", "production", "-r", "go"),
        ("drift", "compare", "churn@1", "churn@2"),
        ("predict", "churn-model@production", "churn@2", "-o", str(tmp / "s.parquet")),
    ):
        r = run_cli(*args, cwd=root)
        assert r.code == 0, r.err
    return root


def _copy(built: Path, tmp_path: Path) -> Project:
    root = tmp_path / "p"
    shutil.copytree(built, root)
    return Project(root)


def _verify(p: Project, *extra: str) -> tuple[int, list[str]]:
    r = run_cli("verify", "--json", *extra, cwd=p.root)
    return r.code, json.loads(r.out)["problems"] if r.out else [r.err]


def _head(p: Project) -> audit.Head:
    with p.catalog.read() as con:
        h = audit.head(con)
    assert h is not None
    return h


def test_the_anchor_follows_every_change_and_an_intact_store_verifies(
    built: Path, tmp_path: Path
) -> None:
    p = _copy(built, tmp_path)
    assert audit.read_anchor(p.catalog.anchor) == _head(p)
    assert _verify(p) == (0, [])
    r = run_cli("runs", "tag", p.runs.list()[0].id[:8], "k=v", cwd=p.root)
    assert r.code == 0
    assert audit.read_anchor(p.catalog.anchor) == _head(p)
    printed = run_cli("audit", "head", cwd=p.root).out.strip()
    assert printed == f"{_head(p).seq}:{_head(p).hash}"
    assert _verify(p, "--head", printed) == (0, [])


def _entries(built: Path) -> list[int]:
    with Project(built).catalog.read() as con:
        return [r[0] for r in con.execute("SELECT seq FROM audit ORDER BY seq").fetchall()]


@pytest.mark.parametrize("which", ["first", "middle", "second newest", "newest"])
def test_deleting_any_single_entry_is_found(built: Path, tmp_path: Path, which: str) -> None:
    seqs = _entries(built)
    seq = {"first": seqs[0], "middle": seqs[len(seqs) // 2], "second newest": seqs[-2]}.get(
        which, seqs[-1]
    )
    p = _copy(built, tmp_path)
    with p.catalog.write() as con:
        con.execute("DELETE FROM audit WHERE seq = ?", [seq])
    code, problems = _verify(p)
    assert code == 1
    if which == "newest":
        assert any("newest entries were deleted" in x for x in problems), problems
    else:
        assert any(f"entries {seq}..{seq} are missing" in x for x in problems), problems


def test_every_single_entry_deleted_in_turn_is_found(built: Path, tmp_path: Path) -> None:
    """All of them, not a sample: one copy, each entry deleted and put back in turn."""
    p = _copy(built, tmp_path)
    with p.catalog.read() as con:
        rows = con.execute("SELECT * FROM audit ORDER BY seq").fetchall()
    for row in rows:
        with p.catalog.write() as con:
            con.execute("DELETE FROM audit WHERE seq = ?", [row[0]])
        code, problems = _verify(p)
        assert code == 1 and problems, row[0]
        with p.catalog.write() as con:
            con.execute("INSERT INTO audit VALUES (?,?,?,?,?,?,?,?)", list(row))
    assert _verify(p) == (0, [])


def test_a_truncated_tail_is_found_by_the_anchor_and_by_a_kept_head(
    built: Path, tmp_path: Path
) -> None:
    p = _copy(built, tmp_path)
    kept = _head(p)
    with p.catalog.write() as con:
        con.execute("DELETE FROM audit WHERE seq > ?", [kept.seq - 3])
    code, problems = _verify(p)
    assert code == 1 and any(f"reached entry {kept.seq}" in x for x in problems), problems

    # the anchor deleted as well: verify says so, and --repair writes a new one...
    p.catalog.anchor.unlink()
    code, problems = _verify(p)
    assert code == 1 and any("anchor audit.head is missing" in x for x in problems), problems
    r = run_cli("verify", "--repair", cwd=p.root)
    assert "REPAIRED wrote the audit anchor" in r.out
    # ...after which only the head kept elsewhere can show what was lost
    code, problems = _verify(p, "--head", f"{kept.seq}:{kept.hash}")
    assert code == 1 and any("the head you kept says it reached" in x for x in problems)


def test_a_rewritten_anchor_is_found_by_a_kept_head(built: Path, tmp_path: Path) -> None:
    p = _copy(built, tmp_path)
    kept = _head(p)
    with p.catalog.write() as con:
        con.execute("UPDATE audit SET details = '{}' WHERE seq = ?", [kept.seq])
        # a careful forger recomputes the last hash and the anchor to match
        row = con.execute(
            "SELECT seq, ts, actor, action, subject, details, prev_hash FROM audit WHERE seq = ?",
            [kept.seq],
        ).fetchone()
        forged = audit._entry_hash(row[0], row[1].isoformat(timespec="microseconds"), *row[2:7])
        con.execute("UPDATE audit SET hash = ? WHERE seq = ?", [forged, kept.seq])
    audit.write_anchor(p.catalog.anchor, audit.Head(kept.seq, forged))
    code, problems = _verify(p, "--head", f"{kept.seq}:{kept.hash}")
    assert code == 1 and any(f"audit entry {kept.seq} is not the one" in x for x in problems)


def test_an_unreadable_anchor_is_reported_not_overwritten(built: Path, tmp_path: Path) -> None:
    p = _copy(built, tmp_path)
    p.catalog.anchor.write_text("{not json")
    code, problems = _verify(p)
    assert code == 1 and any("unreadable" in x for x in problems)
    run_cli("runs", "tag", p.runs.list()[0].id[:8], "k=v", cwd=p.root)  # a write
    assert p.catalog.anchor.read_text() == "{not json"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            "UPDATE drift_reports SET drifted = NOT drifted",
            "differs from its audit entry (drifted)",
        ),
        ("UPDATE drift_reports SET n_drifted = n_drifted + 1", "(n_drifted)"),
        ("DELETE FROM drift_results; DELETE FROM drift_reports", "was deleted"),
        ("UPDATE scorings SET n_rows = n_rows - 1", "differs from its audit entry"),
        ("UPDATE scorings SET version = 1", "differs from its audit entry"),
        ("DELETE FROM scorings", "was deleted"),
    ],
)
def test_drift_reports_and_scorings_agree_with_their_entries(
    built: Path, tmp_path: Path, edit: str, expected: str
) -> None:
    p = _copy(built, tmp_path)
    with p.catalog.write() as con:
        con.execute(edit)
    code, problems = _verify(p)
    assert code == 1 and any(expected in x for x in problems), problems


def test_a_store_from_before_the_anchor_gets_one_when_it_is_upgraded(
    built: Path, tmp_path: Path
) -> None:
    p = _copy(built, tmp_path)
    with p.catalog.write() as con:
        # as schema 6 left it: no anchor, no fast checksums, no serving tables
        con.execute("UPDATE wb_meta SET value = '6' WHERE key = 'schema_version'")
        later = (
            "object_sums",
            "serving_requests",
            "predictions",
            "prediction_logs",
            "labels",
            "monitor_reports",
            "monitor_windows",
        )
        for table in later:
            con.execute(f"DROP TABLE {table}")
        for table in ("params", "tags", "metric_summary", "artifacts"):
            con.execute(f"DROP INDEX {table}_run")  # schema 12's
    p.catalog.anchor.unlink()
    fresh = Project(p.root)
    assert _verify(fresh) == (0, [])
    assert audit.read_anchor(fresh.catalog.anchor) == _head(fresh)


@pytest.mark.parametrize("ended", [True, False], ids=["ended", "died"])
def test_a_run_whose_start_record_was_lost_is_listed_and_recovered(
    project: Project, ended: bool
) -> None:
    """A start record lost (a disk error, a hand) left a run folder nobody saw."""
    run = project.runs.start(experiment="e", name="lost")
    (project.catalog.journal / f"{run.id}.start").unlink()
    run.log_param("lr", 0.1)
    for step in range(5):
        run.log_metric("loss", 1 / (step + 1), step=step)
    if ended:
        run.end("finished")
    else:
        run.flush()  # what a process flushed before it died
    assert project.runs.list() == []
    code, problems = _verify(project)
    assert code == 1 and any(f"run folder {run.id[:8]} has no catalog row" in x for x in problems)

    r = run_cli("verify", "--repair", cwd=project.root)
    assert f"REPAIRED recovered run folder {run.id[:8]}" in r.out and r.code == 0, r.out
    info = project.runs.get(run.id)
    assert (info.experiment, info.status) == ("recovered", "finished" if ended else "killed")
    assert info.params == {"lr": "0.1"} and info.metrics["loss"].count == 5
    assert _verify(project) == (0, [])


NOBODY = "0" * 32  # a run id no run has
# a hand edit of the catalog -> the kinds of dangling row (verify.DANGLING) it leaves
DANGLING_EDITS = {
    "DELETE FROM datasets": ["dataset version without its dataset"],
    "UPDATE dataset_versions SET n_rows = n_rows + 1 WHERE number = 1": [
        "dataset version whose segments do not add up to its rows"
    ],
    "DELETE FROM dataset_versions WHERE number = 2": ["segment of a missing dataset version"],
    "INSERT INTO dataset_checks VALUES ('churn', 99, now(), true, '{}')": [
        "check of a missing dataset version"
    ],
    "DELETE FROM runs WHERE id = (SELECT run_id FROM model_versions WHERE version = 1)": [
        "params row of a missing run",
        "metrics row of a missing run",
        "metric_summary row of a missing run",
        "artifacts row of a missing run",
        "model version of a missing run",
    ],
    f"INSERT INTO tags VALUES ('{NOBODY}', 'k', 'v')": ["tags row of a missing run"],
    "DELETE FROM objects WHERE hash IN (SELECT artifact FROM model_versions)": [
        "artifact missing from the objects table",
        "model version whose model file is not in the objects table",
    ],
    "DELETE FROM experiments": ["run of a missing experiment"],
    "DELETE FROM models": ["model version of a missing model"],
    "DELETE FROM model_versions WHERE version = 2": ["alias pointing at a missing model version"],
    "DELETE FROM drift_reports": ["drift result of a missing report"],
}


def test_the_edits_leave_every_kind_of_dangling_row() -> None:
    from workbench.core.store.verify import DANGLING

    assert {w for kinds in DANGLING_EDITS.values() for w in kinds} == {w for w, _ in DANGLING}


@pytest.mark.parametrize("edit", sorted(DANGLING_EDITS))
def test_a_row_pointing_at_a_missing_row_is_found(built: Path, tmp_path: Path, edit: str) -> None:
    p = _copy(built, tmp_path)
    with p.catalog.write() as con:
        con.execute(edit)
    code, problems = _verify(p)
    assert code == 1
    for what in DANGLING_EDITS[edit]:
        assert any(f" {what}: " in x for x in problems), (what, problems)
