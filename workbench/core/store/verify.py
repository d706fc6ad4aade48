"""``workbench verify``: is the store what the catalog says it is?

Checks the audit hash chain, that every object the catalog references exists
and still hashes to its name, that no catalog row points at a row that is not
there (a version without its segments, a metric of an unknown run, an alias of a
missing version, …), and lists unreferenced objects (left by a crash between
writing a blob and recording it; harmless, reported for cleanup).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.store import audit
from workbench.core.store.catalog import one

if TYPE_CHECKING:
    import duckdb

    from workbench.core.project import Project


@dataclass
class VerifyReport:
    audit_entries: int = 0
    objects_checked: int = 0
    problems: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)  # bundle -> blobs it left out

    @property
    def ok(self) -> bool:
        return not self.problems


# (what, query returning one text per dangling row): each names rows that point at a row
# that does not exist. Every write that could leave one is a single transaction, so any
# hit here means a bug or a hand edit, never a crash.
DANGLING: list[tuple[str, str]] = [
    (
        "dataset version without its dataset",
        "SELECT v.dataset || '@' || v.number FROM dataset_versions v "
        "ANTI JOIN datasets d ON d.name = v.dataset",
    ),
    (
        "dataset version whose segments do not add up to its rows",
        "SELECT v.dataset || '@' || v.number FROM dataset_versions v LEFT JOIN "
        "(SELECT dataset, number, sum(n_rows) AS n FROM dataset_segments GROUP BY ALL) s "
        "USING (dataset, number) WHERE coalesce(s.n, 0) <> v.n_rows",
    ),
    (
        "segment of a missing dataset version",
        "SELECT DISTINCT s.dataset || '@' || s.number FROM dataset_segments s "
        "ANTI JOIN dataset_versions v USING (dataset, number)",
    ),
    (
        "check of a missing dataset version",
        "SELECT DISTINCT c.dataset || '@' || c.number FROM dataset_checks c "
        "ANTI JOIN dataset_versions v USING (dataset, number)",
    ),
    *[
        (
            f"{table} row of a missing run",
            f"SELECT DISTINCT 'run:' || left(t.run_id, 8) FROM {table} t "
            "ANTI JOIN runs r ON r.id = t.run_id",
        )
        for table in ("params", "tags", "metrics", "metric_summary", "artifacts")
    ],
    (
        "artifact missing from the objects table",
        "SELECT 'run:' || left(a.run_id, 8) || ' ' || a.path FROM artifacts a "
        "ANTI JOIN objects o ON o.hash = a.hash",
    ),
    (
        "run of a missing experiment",
        "SELECT 'run:' || left(r.id, 8) FROM runs r ANTI JOIN experiments e ON e.name = r.experiment",
    ),
    (
        "model version of a missing model",
        "SELECT v.model || '@' || v.version FROM model_versions v "
        "ANTI JOIN models m ON m.name = v.model",
    ),
    (
        "model version of a missing run",
        "SELECT v.model || '@' || v.version FROM model_versions v ANTI JOIN runs r ON r.id = v.run_id",
    ),
    (
        "model version whose model file is not in the objects table",
        "SELECT v.model || '@' || v.version FROM model_versions v "
        "WHERE v.artifact NOT IN (SELECT hash FROM objects)",
    ),
    (
        "alias pointing at a missing model version",
        "SELECT a.model || '@' || a.alias FROM model_aliases a "
        "ANTI JOIN model_versions v ON v.model = a.model AND v.version = a.version",
    ),
    (
        "drift result of a missing report",
        "SELECT DISTINCT left(r.report_id, 12) FROM drift_results r "
        "ANTI JOIN drift_reports d ON d.id = r.report_id",
    ),
]


def dangling_rows(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Catalog rows that point at rows which are not there, one line per kind."""
    # one statement for every kind: a statement each took 35 ms on the demo, this 20
    every = " UNION ALL ".join(
        f"SELECT {i} AS kind, x::VARCHAR AS x FROM ({query}) t(x)"
        for i, (_, query) in enumerate(DANGLING)
    )
    by_kind: dict[int, list[str]] = {}
    for kind, x in con.execute(every).fetchall():
        by_kind.setdefault(kind, []).append(x)
    problems = []
    for i, (what, _) in enumerate(DANGLING):
        found = by_kind.get(i, [])
        if found:
            shown = ", ".join(sorted(found)[:5]) + (" …" if len(found) > 5 else "")
            problems.append(f"{len(found)} {what}: {shown}")
    return problems


def catalog_references(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Every digest a catalog's rows point at, with what points at it (for a message):
    what a copy of the catalog needs beside it to be whole (``verify``, a pull)."""
    refs: dict[str, str] = {}
    for ds, num, blob, patches in con.execute(
        "SELECT dataset, number, blob, patches FROM dataset_segments ORDER BY dataset, number, seq"
    ).fetchall():
        for d in (blob, *patches):
            refs.setdefault(d, f"{ds}@{num}")
    for d, kind in con.execute("SELECT hash, kind FROM objects").fetchall():
        refs.setdefault(d, f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}")
    return refs


PARTS = ("datasets", "runs", "models")


def references_by_part(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """The digests each part of a project points at: dataset versions' chunks and
    patches, runs' artifacts, registered models' files (a model's file is also its
    run's artifact). What ``bundle create --only`` chooses among."""
    return {
        "datasets": {
            d
            for (d,) in con.execute(
                "SELECT DISTINCT unnest(list_prepend(blob, patches)) FROM dataset_segments"
            ).fetchall()
        },
        "runs": {d for (d,) in con.execute("SELECT DISTINCT hash FROM artifacts").fetchall()},
        "models": {
            d for (d,) in con.execute("SELECT DISTINCT artifact FROM model_versions").fetchall()
        },
    }


def referenced_objects(project: Project) -> dict[str, str]:
    """Every digest the catalog points at, with what points at it.

    A live run's artifacts are stored as it logs them but reach the catalog only when
    it ends: they count as referenced (by its run folder), not as orphans.
    """

    with project.catalog.read() as con:
        live = [
            r[0] for r in con.execute("SELECT id FROM runs WHERE status = 'running'").fetchall()
        ]
        refs = catalog_references(con)
    for run_id in live:
        try:
            arts = json.loads((project.store_dir / "runs" / run_id / "artifacts.json").read_text())
        except (OSError, ValueError):
            continue
        for a in arts.values():
            refs.setdefault(a["hash"], f"live run:{run_id[:8]}")
    return refs


def registry_problems(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The registry must say what the (hash-chained) audit trail says it did.

    An alias or a version's model hash edited in the catalog directly, bypassing
    workbench, would otherwise go unseen: the chain covers audit rows, not these tables.
    """
    problems = []
    moves = {}
    registered = {}
    for action, subject, details in con.execute(
        "SELECT action, subject, details FROM audit WHERE starts_with(action, 'model.') ORDER BY seq"
    ).fetchall():
        d = json.loads(details)
        if action in ("model.promote", "model.promote.forced", "model.rollback"):
            moves[subject] = d.get("version")
        elif action == "model.register":
            registered[subject] = d.get("artifact")
    for model, alias, version in con.execute(
        "SELECT model, alias, version FROM model_aliases ORDER BY model, alias"
    ).fetchall():
        if moves.get(f"{model}@{alias}") != version:
            problems.append(
                f"alias {model}@{alias} points at v{version}, but the audit trail last moved it "
                f"to {'v' + str(moves[f'{model}@{alias}']) if f'{model}@{alias}' in moves else 'nothing'}"
            )
    for model, version, artifact in con.execute(
        "SELECT model, version, artifact FROM model_versions ORDER BY model, version"
    ).fetchall():
        if registered.get(f"{model}@{version}") != artifact:
            problems.append(f"model {model}@{version}'s artifact differs from the one registered")
    return problems


def _audited(con: duckdb.DuckDBPyConnection, action: str) -> list[tuple[str, dict[str, Any]]]:
    """(subject, details) of every audit entry of one action, oldest first."""
    return [
        (subject, json.loads(details))
        for subject, details in con.execute(
            "SELECT subject, details FROM audit WHERE action = ? ORDER BY seq", [action]
        ).fetchall()
    ]


def record_problems(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Drift reports and scorings must say what their (hash-chained) audit entries say:
    a verdict or a row count edited in the catalog, or a report with no entry, shows."""
    problems = []
    said = dict(_audited(con, "drift.report"))
    for rid, reference, current, drifted, share, n_drifted, n_tested in con.execute(
        "SELECT id, reference, current, drifted, share, n_drifted, n_tested "
        "FROM drift_reports ORDER BY created_at"
    ).fetchall():
        entry = said.pop(f"drift:{rid}", None)
        stored = {
            "reference": reference,
            "current": current,
            "drifted": drifted,
            "share": round(share, 6),
            "n_drifted": n_drifted,
            "n_tested": n_tested,
        }
        if entry is None:
            problems.append(f"drift report {rid[:12]} has no audit entry")
        elif any(entry.get(k) != v for k, v in stored.items()):
            changed = ", ".join(k for k, v in stored.items() if entry.get(k) != v)
            problems.append(f"drift report {rid[:12]} differs from its audit entry ({changed})")
    problems += [f"drift report {s.removeprefix('drift:')[:12]} was deleted" for s in said]
    scored = {
        d.get("scoring"): (subject, d)
        for subject, d in _audited(con, "model.predict")
        if d.get("scoring")
    }
    for sid, model, version, source, n_rows, output in con.execute(
        "SELECT id, model, version, input, n_rows, output FROM scorings ORDER BY ts"
    ).fetchall():
        found = scored.pop(sid, None)
        stored = {"input": source, "rows": n_rows, "output": output}
        if found is None:
            problems.append(f"scoring {sid[:12]} has no audit entry")
        elif found[0] != f"{model}@{version}" or any(
            found[1].get(k) != v for k, v in stored.items()
        ):
            problems.append(f"scoring {sid[:12]} differs from its audit entry")
    problems += [f"scoring {str(sid)[:12]} was deleted" for sid in scored]
    return problems


def verify(project: Project, kept: audit.Head | None = None) -> VerifyReport:
    """Every check; ``kept`` is a head the user kept elsewhere, checked like the anchor."""
    report = VerifyReport()
    with project.catalog.read() as con:
        report.audit_entries = one(con, "SELECT count(*) FROM audit")[0]
        for p in audit.verify_chain(con):
            report.problems.append(f"audit entry {p.seq} {p.problem}")
        report.problems += audit.anchor_problems(con, project.catalog.anchor)
        if kept is not None:
            report.problems += audit.reaches(con, kept, "the head you kept")
        report.problems += registry_problems(con)
        report.problems += record_problems(con)
        report.problems += dangling_rows(con)
        known_runs = {r[0] for r in con.execute("SELECT id FROM runs").fetchall()}
    for run_id in orphan_run_folders(project, known_runs):
        report.problems.append(
            f"run folder {run_id[:8]} has no catalog row (its start record was lost); "
            "`workbench verify --repair` recovers it as a killed run in experiment 'recovered'"
        )
    journal = project.catalog.journal
    set_aside = sorted(journal.glob("*.unreadable")) if journal.is_dir() else []
    for record in set_aside:  # a run's start or end that could not be folded in
        report.problems.append(f"journal record {record.name} could not be read and was set aside")
    refs = referenced_objects(project)
    store = project.objects
    left_out = store.left_out()
    for digest, owner in sorted(refs.items()):
        if digest in left_out and not store.has(digest):  # by choice: a partial bundle
            by = left_out[digest].get("by", "a bundle")
            report.left_out[by] = report.left_out.get(by, 0) + 1
            continue
        report.objects_checked += 1
        if not store.has(digest):
            report.problems.append(f"object {digest[:12]} ({owner}) is missing")
        elif not store.verify(digest):
            report.problems.append(
                f"object {digest[:12]} ({owner}) was altered: its content no longer matches its hash"
            )
    report.orphans = sorted(d for d in store.all_digests() if d not in refs)
    for digest in report.orphans:  # unreferenced, but never allowed to be half-written
        if not store.verify(digest):
            report.problems.append(f"unreferenced object {digest[:12]} is damaged")
    return report


def _logged_anything(run_dir: Path) -> bool:
    # A kill inside `Runs.start`, after the folder but before its start record, leaves
    # the folder with its heartbeat alone: nothing was logged, nothing is lost.
    return any(p.name not in ("heartbeat", ".start.tmp") for p in run_dir.iterdir())


def orphan_run_folders(project: Project, known: set[str]) -> list[str]:
    """Run folders that hold something logged but that the catalog has no row for and
    no journal record is on its way to."""
    runs_dir = project.store_dir / "runs"
    journal = project.catalog.journal
    if not runs_dir.is_dir():
        return []
    return sorted(
        d.name
        for d in runs_dir.iterdir()
        if d.is_dir()
        and len(d.name) == 32
        and all(c in "0123456789abcdef" for c in d.name)
        and d.name not in known
        and not (journal / f"{d.name}.start").exists()
        and _logged_anything(d)
    )


def _recover_run(project: Project, run_dir: Path) -> str:
    """Journal a start and an end for a run folder whose start record was lost, so the
    next fold brings what it logged (params, points, artifacts) into the catalog."""
    times = [p.stat().st_mtime for p in [run_dir, *run_dir.iterdir()]]
    first, last = (
        datetime.fromtimestamp(t, UTC).replace(tzinfo=None) for t in (min(times), max(times))
    )
    run_id = run_dir.name
    record = project.runs.journal.record
    record(
        run_id,
        "start",
        {
            "experiment": "recovered",
            "name": f"recovered-{run_id[:8]}",
            "start_time": first.isoformat(),
            "host": None,
            "pid": None,
            "dataset": None,
            "dataset_version": None,
            "parent_id": None,
            "environment": {},
            "source": "workbench verify --repair",
            "actor": audit.actor(),
        },
    )
    # its end may have been set aside for want of a start: it is the true end, if readable
    set_aside = project.catalog.journal / f"{run_id}.end.unreadable"
    try:
        end = json.loads(set_aside.read_text(encoding="utf-8"))
        end["status"]
    except (OSError, ValueError, KeyError, TypeError):
        end = {
            "status": "killed",
            "error": "its start record was lost; recovered by workbench verify --repair",
            "end_time": last.isoformat(),
            "actor": audit.actor(),
        }
    record(run_id, "end", end)
    set_aside.unlink(missing_ok=True)
    return (
        f"recovered run folder {run_id[:8]} as run:{run_id[:8]} "
        f"(experiment 'recovered', {end['status']})"
    )


def repair(project: Project) -> list[str]:
    """Mend what is safe to mend, one line per thing done.

    A missing or unreadable audit anchor is rewritten from the trail as it is now: the
    user asked for it, having read what ``verify`` said (entries deleted before this
    cannot be found any more, except against a head kept elsewhere).
    """
    done = []
    anchor = project.catalog.anchor
    try:
        intact = audit.read_anchor(anchor) is not None
    except (OSError, ValueError, KeyError, TypeError):
        intact = False
    if not intact:
        with project.catalog.read() as con:
            h = audit.reanchor(con, anchor)
        done.append(f"wrote the audit anchor {anchor.name} at entry {h.seq}")
    with project.catalog.read() as con:
        known = {r[0] for r in con.execute("SELECT id FROM runs").fetchall()}
    for run_id in orphan_run_folders(project, known):
        done.append(_recover_run(project, project.store_dir / "runs" / run_id))
    return done
