"""``workbench verify``: is the store what the catalog says it is?

Checks the audit hash chain, that every object the catalog references exists
and still hashes to its name, and lists unreferenced objects (left by a crash
between writing a blob and recording it; harmless, reported for cleanup).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from workbench.core import audit

if TYPE_CHECKING:
    import duckdb

    from workbench.core.project import Project


@dataclass
class VerifyReport:
    audit_entries: int = 0
    objects_checked: int = 0
    problems: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def referenced_objects(project: Project) -> dict[str, str]:
    """Every digest the catalog points at, with what points at it."""
    refs: dict[str, str] = {}
    with project.catalog.read() as con:
        for ds, num, blob, patches in con.execute(
            "SELECT dataset, number, blob, patches FROM dataset_segments ORDER BY dataset, number, seq"
        ).fetchall():
            for d in (blob, *patches):
                refs.setdefault(d, f"{ds}@{num}")
        for (d,) in con.execute("SELECT hash FROM objects").fetchall():
            refs.setdefault(d, "objects table")
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


def verify(project: Project) -> VerifyReport:
    report = VerifyReport()
    with project.catalog.read() as con:
        report.audit_entries = con.execute("SELECT count(*) FROM audit").fetchone()[0]
        for p in audit.verify_chain(con):
            report.problems.append(f"audit entry {p.seq} {p.problem}")
        report.problems += registry_problems(con)
    refs = referenced_objects(project)
    store = project.objects
    for digest, owner in sorted(refs.items()):
        report.objects_checked += 1
        if not store.has(digest):
            report.problems.append(f"object {digest[:12]} ({owner}) is missing")
        elif not store.verify(digest):
            report.problems.append(
                f"object {digest[:12]} ({owner}) was altered: its content no longer matches its hash"
            )
    report.orphans = sorted(d for d in store.all_digests() if d not in refs)
    return report
