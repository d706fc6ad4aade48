"""The model registry: versions of named models, aliases that point at them, and gates.

A version is a snapshot of a run: its model artifact (by hash), input signature,
metrics, params and the dataset version it was trained on, so lineage survives later
edits to the run. An alias (``production``, ``staging`` or any name) points at one
version of a model. Every move is one catalog transaction that also writes the alias
history and the audit entry, and it is a compare-and-set: a promotion records which
version held the alias when its gates were checked and refuses if another process
moved the alias in between, so two concurrent promotions cannot both win silently.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.core.errors import NotFoundError, UsageError, WorkbenchError
from workbench.core.models import gates
from workbench.core.store import audit
from workbench.core.store.refs import check_name, parse_ref

if TYPE_CHECKING:
    from collections.abc import Callable

    import duckdb

    from workbench.core.config import Settings
    from workbench.core.drift.analysis import DriftReport
    from workbench.core.store.catalog import Catalog
    from workbench.core.store.objects import ObjectStore

ACTIVE, ARCHIVED = "active", "archived"
KNOWN_ALIASES = ("staging", "production")
_VERSION_COLS = (
    "model, version, run_id, artifact, signature, metrics, params, dataset, dataset_version, "
    "description, status, created_at"
)


class PromotionRefused(WorkbenchError):
    """A gate failed; ``results`` holds every gate with its value and verdict."""

    def __init__(self, message: str, results: list[gates.GateResult]) -> None:
        super().__init__(message)
        self.results = results


@dataclass
class ModelVersion:
    model: str
    version: int
    run_id: str
    artifact: str
    signature: dict[str, Any]
    metrics: dict[str, float]
    params: dict[str, Any]
    dataset: str | None
    dataset_version: int | None
    description: str | None
    status: str
    created_at: Any
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    @property
    def dataset_ref(self) -> str | None:
        return f"{self.dataset}@{self.dataset_version}" if self.dataset else None

    @property
    def inputs(self) -> list[str]:
        return list(self.signature.get("inputs", {}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "ref": self.ref,
            "run": f"run:{self.run_id[:8]}",
            "run_id": self.run_id,
            "artifact": self.artifact,
            "dataset": self.dataset_ref,
            "status": self.status,
            "aliases": list(self.aliases),
            "description": self.description,
            "created_at": self.created_at.isoformat(timespec="seconds") + "Z",
            "metrics": self.metrics,
            "params": self.params,
            "signature": self.signature,
        }


@dataclass
class Promotion:
    version: ModelVersion
    alias: str
    previous: int | None
    results: list[gates.GateResult]
    forced: bool
    moved: bool  # False when the version already held the alias


class Registry:
    """``Project().models``."""

    def __init__(
        self,
        catalog: Catalog,
        objects: ObjectStore,
        settings: Settings,
        run_info: Callable[[str], dict[str, Any]],
        compare_drift: Callable[[str, str, list[str] | None], DriftReport],
        save_drift: Callable[[duckdb.DuckDBPyConnection, DriftReport], None],
    ) -> None:
        """``run_info`` reads a run (``Runs.get``). ``compare_drift(reference, current,
        columns)`` computes an unsaved drift report for a ``drift_share`` gate, and
        ``save_drift`` stores one inside the promotion's own transaction, so a refused
        promotion leaves none. Runs and drift are other rooms: they come in as functions."""
        self.catalog = catalog
        self.objects = objects
        self.settings = settings
        self._run_info = run_info
        self._compare_drift = compare_drift
        self._save_drift = save_drift
        self.last_register_existed = False

    # ---- reading --------------------------------------------------------------------
    def _rows(
        self, con: duckdb.DuckDBPyConnection, where: str, args: list[Any]
    ) -> list[ModelVersion]:
        rows = con.execute(
            f"SELECT {_VERSION_COLS} FROM model_versions WHERE {where} ORDER BY model, version",
            args,
        ).fetchall()
        aliases: dict[tuple[str, int], list[str]] = {}
        for m, a, v in con.execute(
            "SELECT model, alias, version FROM model_aliases ORDER BY alias"
        ).fetchall():
            aliases.setdefault((m, v), []).append(a)
        out = []
        for r in rows:
            (m, v, run, art, sig, met, par, ds, dv, desc, status, created) = r
            out.append(
                ModelVersion(
                    m,
                    v,
                    run,
                    art,
                    json.loads(sig) if sig else {},
                    json.loads(met),
                    json.loads(par),
                    ds,
                    dv,
                    desc,
                    status,
                    created,
                    tuple(aliases.get((m, v), ())),
                )
            )
        return out

    def _resolve(self, con: duckdb.DuckDBPyConnection, ref: str) -> ModelVersion:
        parsed = parse_ref(ref)
        if parsed.is_run or parsed.hash_prefix is not None:
            raise UsageError(
                f"{ref!r} is not a model reference: use NAME, NAME@VERSION or NAME@ALIAS"
            )
        known = con.execute("SELECT name FROM models WHERE name = ?", [parsed.name]).fetchall()
        if not known:
            names = [r[0] for r in con.execute("SELECT name FROM models ORDER BY name").fetchall()]
            have = f"models: {', '.join(names[:10])}" if names else "no models are registered yet"
            raise NotFoundError(f"no model {parsed.name!r} ({have})")
        if parsed.alias is not None:
            row = con.execute(
                "SELECT version FROM model_aliases WHERE model = ? AND alias = ?",
                [parsed.name, parsed.alias],
            ).fetchall()
            if not row:
                held = con.execute(
                    "SELECT alias || ' -> v' || version FROM model_aliases WHERE model = ? ORDER BY alias",
                    [parsed.name],
                ).fetchall()
                shown = ", ".join(r[0] for r in held) or "none"
                raise NotFoundError(
                    f"{parsed.name} has no alias {parsed.alias!r} (aliases: {shown})"
                )
            number = row[0][0]
        elif parsed.version is not None:
            number = parsed.version
        else:
            number = con.execute(
                "SELECT max(version) FROM model_versions WHERE model = ?", [parsed.name]
            ).fetchone()[0]
        found = self._rows(con, "model = ? AND version = ?", [parsed.name, number])
        if not found:
            top = con.execute(
                "SELECT max(version) FROM model_versions WHERE model = ?", [parsed.name]
            ).fetchone()[0]
            raise NotFoundError(f"{parsed.name} has no version {number} (versions 1..{top})")
        return found[0]

    def resolve(self, ref: str) -> ModelVersion:
        with self.catalog.read() as con:
            return self._resolve(con, ref)

    def list(self) -> list[dict[str, Any]]:
        with self.catalog.read() as con:
            rows = con.execute(
                "SELECT m.name, m.description, count(v.version), max(v.version), m.created_at "
                "FROM models m LEFT JOIN model_versions v ON v.model = m.name "
                "GROUP BY ALL ORDER BY m.name"
            ).fetchall()
            aliases = con.execute(
                "SELECT model, alias, version FROM model_aliases ORDER BY alias"
            ).fetchall()
        out = []
        for name, desc, n, latest, created in rows:
            out.append(
                {
                    "name": name,
                    "description": desc,
                    "versions": n,
                    "latest": latest,
                    "aliases": {a: v for m, a, v in aliases if m == name},
                    "created_at": created.isoformat(timespec="seconds") + "Z",
                }
            )
        return out

    def versions(self, name: str) -> list[ModelVersion]:
        with self.catalog.read() as con:
            self._resolve(con, name)
            return self._rows(con, "model = ?", [name])

    def history(self, name: str, alias: str | None = None) -> list[dict[str, Any]]:
        """Every alias move of a model, oldest first."""
        sql = (
            "SELECT alias, seq, ts, action, version, previous, reason, forced, gates, actor "
            "FROM alias_history WHERE model = ?"
        )
        args: list[Any] = [name]
        if alias is not None:
            sql += " AND alias = ?"
            args.append(alias)
        keys = (
            "alias",
            "seq",
            "ts",
            "action",
            "version",
            "previous",
            "reason",
            "forced",
            "gates",
            "actor",
        )
        with self.catalog.read() as con:
            self._resolve(con, name)
            rows = con.execute(sql + " ORDER BY ts, seq", args).fetchall()
        out = []
        for r in rows:
            d = dict(zip(keys, r, strict=True))
            d["gates"] = json.loads(d["gates"]) if d["gates"] else []
            out.append(d)
        return out

    # ---- registering ---------------------------------------------------------------
    def register(self, run_ref: str, name: str, description: str | None = None) -> ModelVersion:
        """Version N+1 of model ``name`` from a run that logged a model.

        Registering the same run's model under the same name again returns the active
        version that already holds it: after a crash or a lost terminal the user cannot
        tell whether the first attempt landed, and rerunning must not make a twin.
        ``self.last_register_existed`` says which happened.
        """
        check_name(name, "model name")
        if description is not None and len(description) > 2000:
            raise UsageError("the description is longer than 2000 characters")
        info = self._run_info(run_ref)
        ref = f"run:{info['id'][:8]}"
        if info["status"] == "running":
            raise WorkbenchError(f"{ref} is still running; register it once it has ended")
        arts = {a["path"]: a for a in info["artifacts"]}
        model_art = arts.get("model.pkl") or next(
            (a for a in arts.values() if a["kind"] == "model"), None
        )
        if model_art is None:
            raise WorkbenchError(f"{ref} logged no model (no model artifact); nothing to register")
        signature: dict[str, Any] = {}
        for cand in ("signature.json", model_art["path"].rsplit(".", 1)[0] + ".signature.json"):
            if cand in arts:
                signature = json.loads(self.objects.read_bytes(arts[cand]["hash"]))
                break
        metrics = {k: v["last"] for k, v in info["metrics"].items() if not k.endswith("_curve")}
        self.last_register_existed = False
        with self.catalog.write() as con:
            twin = con.execute(
                "SELECT version FROM model_versions WHERE model = ? AND run_id = ? "
                "AND artifact = ? AND status = ? ORDER BY version LIMIT 1",
                [name, info["id"], model_art["hash"], ACTIVE],
            ).fetchall()
            if twin:
                self.last_register_existed = True
                return self._resolve(con, f"{name}@{twin[0][0]}")
            con.execute(
                "INSERT OR IGNORE INTO models VALUES (?, ?, ?)", [name, audit.now(), description]
            )
            number = con.execute(
                "SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE model = ?", [name]
            ).fetchone()[0]
            con.execute(
                f"INSERT INTO model_versions ({_VERSION_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    name,
                    number,
                    info["id"],
                    model_art["hash"],
                    json.dumps(signature),
                    json.dumps(metrics),
                    json.dumps(info["params"]),
                    info["dataset"],
                    info["dataset_version"],
                    description,
                    ACTIVE,
                    audit.now(),
                ],
            )
            audit.append(
                con,
                "model.register",
                f"{name}@{number}",
                {"run": info["id"], "artifact": model_art["hash"], "dataset": info["dataset_ref"]},
            )
        return self.resolve(f"{name}@{number}")

    # ---- versions from elsewhere ---------------------------------------------------------
    def import_version(
        self,
        name: str,
        *,
        run_id: str,
        artifact: str,
        signature: dict[str, Any],
        metrics: dict[str, float],
        params: dict[str, Any],
        description: str | None,
        created_at: Any,
        model_created_at: Any,
        model_description: str | None,
        origin: dict[str, Any],
    ) -> tuple[int, bool]:
        """Record a model version registered by another tool (its object already stored)
        as the next version of ``name``, creating the model if needed; returns the new
        version number and whether the model was created. The audit entry carries
        ``origin`` so that a repeated import can find what it brought."""
        with self.catalog.write() as con:
            created = not con.execute("SELECT 1 FROM models WHERE name = ?", [name]).fetchone()
            if created:
                con.execute(
                    "INSERT INTO models VALUES (?, ?, ?)",
                    [name, model_created_at, model_description],
                )
            number = con.execute(
                "SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE model = ?", [name]
            ).fetchone()[0]
            con.execute(
                f"INSERT INTO model_versions ({_VERSION_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    name,
                    number,
                    run_id,
                    artifact,
                    json.dumps(signature),
                    json.dumps(metrics),
                    json.dumps(params),
                    None,
                    None,
                    description,
                    ACTIVE,
                    created_at,
                ],
            )
            con.execute(
                "INSERT OR IGNORE INTO objects VALUES (?, ?, ?, ?)",
                [artifact, self.objects.size(artifact), "artifact", audit.now()],
            )
            audit.append(
                con,
                "model.register",
                f"{name}@{number}",
                {"run": run_id, "artifact": artifact, "version": number, **origin},
            )
        return number, created

    def import_alias(
        self, name: str, alias: str, previous: int | None, version: int, details: dict[str, Any]
    ) -> None:
        """Point ``alias`` at ``version`` as another tool's registry had it, without
        gates (the other tool decided), recorded as an import in the alias history."""
        self._move(
            name, alias, previous, version, "model.promote", details, history_action="import"
        )

    # ---- aliases --------------------------------------------------------------------
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
        run_status = self._run_info(target.run_id)["status"]

        @functools.cache
        def drift_share(dataset_ref: str) -> tuple[float, str]:
            if target.dataset_ref is None:
                raise WorkbenchError(
                    f"{target.ref} has no training dataset to compare with {dataset_ref}"
                )
            report = self._compare_drift(target.dataset_ref, dataset_ref, target.inputs or None)
            if evidence is not None:
                evidence.append(report)
            return report.share, f"{target.dataset_ref} → {report.current}, report {report.id[:12]}"

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
        self._move(
            name,
            alias,
            expected,
            version,
            action,
            details,
            also=lambda con: [self._save_drift(con, r) for r in evidence],
        )
        return Promotion(target, alias, expected, results, bool(failed), moved=True)

    def rollback(self, name: str, alias: str, reason: str | None = None) -> tuple[int, int]:
        """Move ``alias`` back to the version that held it before the current one."""
        _check_text(reason, "reason")
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
            if h["action"] == "model.rollback":
                stack.pop()
            else:
                stack.append(h["version"])
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
            seq = con.execute(
                "SELECT coalesce(max(seq), 0) + 1 FROM alias_history WHERE model = ? AND alias = ?",
                [name, alias],
            ).fetchone()[0]
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

    def archive(self, name: str, version: int, reason: str | None = None) -> ModelVersion:
        _check_text(reason, "reason")
        mv = self.resolve(f"{name}@{version}")
        if mv.aliases:
            raise WorkbenchError(
                f"{mv.ref} holds {', '.join(mv.aliases)}; move the alias first (promote or rollback)"
            )
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

    # ---- loading ----------------------------------------------------------------------
    def load(self, mv: ModelVersion) -> Any:
        """Unpickle a version's model after checking its bytes still hash to the recorded id.

        A pickle runs code when loaded, so a model file is trusted code: the hash check
        makes sure it is the very file that was registered, not one swapped in the store.
        """
        if mv.signature.get("kind") == "mlflow-reference":
            raise WorkbenchError(
                f"{mv.ref} was imported from MLflow without a pickled model file, so it cannot "
                "score; register a run that logged one"
            )
        path = self.objects.path(mv.artifact)
        try:
            data = path.read_bytes()
        except OSError:
            raise WorkbenchError(
                f"the model file of {mv.ref} ({mv.artifact[:12]}) is missing from the store; "
                "run `workbench verify`"
            ) from None
        if hashlib.sha256(data).hexdigest() != mv.artifact:
            raise WorkbenchError(
                f"the model file of {mv.ref} was altered (its hash no longer matches); refusing to "
                "load it. Run `workbench verify`"
            )
        from workbench.core.runs.model import load_model

        try:
            return load_model(data)
        except Exception as exc:
            raise WorkbenchError(
                f"cannot load the model of {mv.ref}: {type(exc).__name__}: {exc}"
            ) from None


def gates_alias_ok(alias: str) -> bool:
    from workbench.core.store.refs import ALIAS_RE

    return bool(isinstance(alias, str) and ALIAS_RE.match(alias)) and alias != "latest"


def _check_text(text: str | None, what: str) -> None:
    if text is not None and (
        len(text) > 2000 or any(ord(ch) < 32 and ch not in "\t" for ch in text)
    ):
        raise UsageError(f"the {what} must be at most 2000 characters on one line")
