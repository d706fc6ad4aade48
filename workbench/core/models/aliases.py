"""Moving aliases: the gates a move must pass, promotion, rollback and archiving.

Every move is one catalog transaction that also writes the alias history and the audit
entry, and it is a compare-and-set: a promotion records which version held the alias
when its gates were checked and refuses if another process moved the alias in between,
so two concurrent promotions cannot both win silently. ``Registry`` takes these methods
from ``AliasMoves``; they are apart because reading and registering versions is one
idea and governing aliases another.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

from workbench.core.errors import NotFoundError, UsageError, WorkbenchError
from workbench.core.models import gates
from workbench.core.models.versions import (
    ACTIVE,
    ARCHIVED,
    AliasMove,
    ModelVersion,
    Promotion,
    PromotionRefused,
)
from workbench.core.store import audit
from workbench.core.store.catalog import one
from workbench.core.text import has_unsafe

if TYPE_CHECKING:
    from collections.abc import Callable

    import duckdb

    from workbench.core.config import Settings
    from workbench.core.drift.columns import DriftReport
    from workbench.core.runs.records import RunInfo
    from workbench.core.store.catalog import Catalog


class AliasMoves:
    """The alias half of ``Registry``."""

    catalog: Catalog
    settings: Settings
    _run_info: Callable[[str], RunInfo]
    _compare_drift: Callable[[str, str, list[str] | None], DriftReport]
    _save_drift: Callable[[duckdb.DuckDBPyConnection, DriftReport], None]

    def resolve(self, ref: str) -> ModelVersion:
        """A version by reference: ``Registry.resolve``."""
        raise NotImplementedError

    def history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """An alias's moves, oldest first: ``Registry.history``."""
        raise NotImplementedError

    def check(
        self,
        name: str,
        version: int,
        alias: str,
        evidence: list[Any] | None = None,
        measured: dict[str, tuple[float, float]] | None = None,
    ) -> tuple[ModelVersion, ModelVersion | None, list[gates.GateResult]]:
        """Evaluate the gates for moving ``alias`` to ``name@version`` (changes nothing).

        Drift reports that gates compute are appended to ``evidence`` unsaved; a
        promotion stores them only if the alias moves, so a refusal leaves no trace.
        ``measured`` maps a metric to (candidate, champion) values measured on the same
        rows (a pipeline's holdout); gates on that metric use them instead of each run's
        own validation value, which came from different data.
        """
        if not gates_alias_ok(alias):
            raise UsageError(
                f"invalid alias {alias!r}: letters, digits, '_' and '-', starting with a letter"
            )
        target = self.resolve(f"{name}@{version}")
        if target.status == ARCHIVED:
            raise WorkbenchError(f"{target.ref} is archived; archived versions cannot be promoted")
        try:
            champion: ModelVersion | None = self.resolve(f"{name}@{alias}")
        except NotFoundError:
            champion = None
        run_status = self._run_info(target.run_id).status

        @functools.cache
        def drift_share(dataset_ref: str) -> tuple[float, str]:
            if target.dataset_ref is None:
                raise WorkbenchError(
                    f"{target.ref} has no training dataset to compare with {dataset_ref}"
                )
            report = self._compare_drift(target.dataset_ref, dataset_ref, target.inputs or None)
            if evidence is not None:
                evidence.append(report)
            # no report id here: the report is kept only if the alias moves (Promotion.reports)
            return report.share, f"{target.dataset_ref} → {report.current}"

        same = measured or {}
        holder = None if champion is None or champion.version == version else champion.metrics
        cand = gates.Candidate(
            status=run_status,
            metrics={**target.metrics, **{k: v[0] for k, v in same.items()}},
            champion=None if holder is None else {**holder, **{k: v[1] for k, v in same.items()}},
            champion_label=(champion.ref + (", same holdout" if same else ""))
            if champion
            else None,
            drift_share=drift_share,
        )
        results = [
            gates.GateResult(
                "run finished cleanly (built in)", run_status, "finished", run_status == "finished"
            )
        ]
        results += [gates.evaluate(g, cand) for g in self.settings.gates.get(alias, [])]
        return target, champion, results

    def promote(
        self,
        name: str,
        version: int,
        alias: str,
        reason: str | None = None,
        force: bool = False,
        measured: dict[str, tuple[float, float]] | None = None,
    ) -> Promotion:
        """Move ``alias`` to ``name@version`` if every gate passes (or ``force`` with a reason)."""
        if force and not (reason and reason.strip()):
            raise UsageError("--force needs a --reason: say why the gates are overridden")
        _check_text(reason, "reason")
        evidence: list[Any] = []
        target, champion, results = self.check(name, version, alias, evidence, measured)
        failed = [r for r in results if not r.passed]
        if failed and not force:
            raise PromotionRefused(
                f"{target.ref} was not promoted to {alias}: {len(failed)} of {len(results)} gates "
                f"failed ({'; '.join(r.gate for r in failed)})",
                results,
            )
        expected = champion.version if champion else None
        if expected == version:
            return Promotion(target, alias, expected, results, force, moved=False)
        action = "model.promote.forced" if failed else "model.promote"
        details = {
            "version": version,
            "previous": expected,
            "reason": reason,
            "forced": bool(failed),
            "gates": [r.to_dict() for r in results],
        }

        def save_evidence(con: duckdb.DuckDBPyConnection) -> None:
            for report in evidence:
                self._save_drift(con, report)

        self._move(name, alias, expected, version, action, details, also=save_evidence)
        kept = [r.id for r in evidence]
        return Promotion(target, alias, expected, results, bool(failed), moved=True, reports=kept)

    def rollback_plan(self, name: str, alias: str) -> tuple[int, int]:
        """(current, previous): what a rollback of ``alias`` would do, or the error it
        would give, without doing it (the app shows it before asking to confirm)."""
        stack = self._holders(name, alias)
        if not stack:
            raise NotFoundError(f"{name} has no alias {alias!r} to roll back")
        if len(stack) < 2:
            raise WorkbenchError(
                f"{name}@{alias} has had only v{stack[-1]}; there is nothing to roll back to"
            )
        current, previous = stack[-1], stack[-2]
        prev = self.resolve(f"{name}@{previous}")
        if prev.status == ARCHIVED:
            raise WorkbenchError(
                f"the previous holder {prev.ref} is archived; promote a version instead"
            )
        return current, previous

    def rollback(self, name: str, alias: str, reason: str | None = None) -> tuple[int, int]:
        """Move ``alias`` back to the version that held it before the current one."""
        _check_text(reason, "reason")
        current, previous = self.rollback_plan(name, alias)
        self._move(
            name,
            alias,
            current,
            previous,
            "model.rollback",
            {
                "version": previous,
                "previous": current,
                "reason": reason,
                "forced": False,
                "gates": [],
            },
        )
        return current, previous

    def _holders(self, name: str, alias: str) -> list[int]:
        """The alias's holders as a stack: a promotion pushes, a rollback pops."""
        stack: list[int] = []
        for h in self.history(name, alias):
            if h.action == "model.rollback":
                stack.pop()
            else:
                stack.append(h.version)
        return stack

    def _move(
        self,
        name: str,
        alias: str,
        expected: int | None,
        version: int,
        action: str,
        details: dict[str, Any],
        history_action: str | None = None,
        also: Callable[[duckdb.DuckDBPyConnection], Any] | None = None,
    ) -> None:
        """Compare-and-set ``alias`` from ``expected`` to ``version``, with its history row
        (``history_action``, default ``action``), its audit entry and ``also`` (the drift
        reports its gates computed) in one transaction: a crash keeps all or none."""
        with self.catalog.write() as con:
            now_row = con.execute(
                "SELECT version FROM model_aliases WHERE model = ? AND alias = ?", [name, alias]
            ).fetchall()
            now = now_row[0][0] if now_row else None
            if now != expected:
                raise WorkbenchError(
                    f"{name}@{alias} moved to {'v' + str(now) if now else 'nothing'} while this "
                    "change was being checked; check again and retry"
                )
            status = con.execute(
                "SELECT status FROM model_versions WHERE model = ? AND version = ?", [name, version]
            ).fetchall()
            if not status or status[0][0] != ACTIVE:
                raise WorkbenchError(f"{name}@{version} was archived meanwhile; nothing changed")
            con.execute(
                "INSERT OR REPLACE INTO model_aliases VALUES (?, ?, ?, ?)",
                [name, alias, version, audit.now()],
            )
            seq = one(
                con,
                "SELECT coalesce(max(seq), 0) + 1 FROM alias_history WHERE model = ? AND alias = ?",
                [name, alias],
            )[0]
            con.execute(
                "INSERT INTO alias_history VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [
                    name,
                    alias,
                    seq,
                    audit.now(),
                    history_action or action,
                    version,
                    expected,
                    details.get("reason"),
                    details.get("forced", False),
                    json.dumps(details.get("gates", []), default=str),
                    audit.actor(),
                ],
            )
            if also is not None:
                also(con)
            audit.append(con, action, f"{name}@{alias}", details)

    def archive_plan(self, name: str, version: int) -> ModelVersion:
        """The version an archive would retire, or the error it would give (the app
        shows it before asking to confirm)."""
        mv = self.resolve(f"{name}@{version}")
        if mv.aliases:
            raise WorkbenchError(
                f"{mv.ref} holds {', '.join(mv.aliases)}; move the alias first (promote or rollback)"
            )
        return mv

    def archive(self, name: str, version: int, reason: str | None = None) -> ModelVersion:
        _check_text(reason, "reason")
        mv = self.archive_plan(name, version)
        if mv.status == ARCHIVED:
            return mv
        with self.catalog.write() as con:
            held = con.execute(
                "SELECT alias FROM model_aliases WHERE model = ? AND version = ?", [name, version]
            ).fetchall()
            if held:
                raise WorkbenchError(
                    f"{mv.ref} was given alias {held[0][0]} meanwhile; nothing changed"
                )
            con.execute(
                "UPDATE model_versions SET status = ? WHERE model = ? AND version = ?",
                [ARCHIVED, name, version],
            )
            audit.append(con, "model.archive", mv.ref, {"reason": reason})
        return self.resolve(mv.ref)


def gates_alias_ok(alias: str) -> bool:
    from workbench.core.store.refs import ALIAS_RE

    return bool(isinstance(alias, str) and ALIAS_RE.match(alias)) and alias != "latest"


def _check_text(text: str | None, what: str) -> None:
    if text is None:
        return
    if len(text) > 2000:
        raise UsageError(f"the {what} is longer than 2000 characters")
    if has_unsafe(text.replace("\t", " ")):
        raise UsageError(
            f"the {what} must be one line of printable text (it holds a control, "
            "invisible or direction-changing character)"
        )
