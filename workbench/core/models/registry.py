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

import builtins
import json
from typing import TYPE_CHECKING, Any

from workbench.core.errors import NotFoundError, UsageError, WorkbenchError
from workbench.core.models.aliases import AliasMoves
from workbench.core.models.versions import (
    _VERSION_COLS,
    ACTIVE,
    AliasMove,
    ModelEntry,
    ModelVersion,
)
from workbench.core.store import audit
from workbench.core.store.catalog import one
from workbench.core.store.refs import check_name, parse_ref

if TYPE_CHECKING:
    from collections.abc import Callable

    import duckdb

    from workbench.core.config import Settings
    from workbench.core.drift.columns import DriftReport
    from workbench.core.runs.records import RunInfo
    from workbench.core.store.catalog import Catalog
    from workbench.core.store.objects import ObjectStore


class Registry(AliasMoves):
    """``Project().models``."""

    def __init__(
        self,
        catalog: Catalog,
        objects: ObjectStore,
        settings: Settings,
        run_info: Callable[[str], RunInfo],
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
            number = one(
                con, "SELECT max(version) FROM model_versions WHERE model = ?", [parsed.name]
            )[0]
        found = self._rows(con, "model = ? AND version = ?", [parsed.name, number])
        if not found:
            top = one(
                con, "SELECT max(version) FROM model_versions WHERE model = ?", [parsed.name]
            )[0]
            raise NotFoundError(f"{parsed.name} has no version {number} (versions 1..{top})")
        return found[0]

    def resolve(self, ref: str) -> ModelVersion:
        with self.catalog.read() as con:
            return self._resolve(con, ref)

    def list(self) -> builtins.list[ModelEntry]:
        with self.catalog.read() as con:
            rows = con.execute(
                "SELECT m.name, m.description, count(v.version), max(v.version), m.created_at "
                "FROM models m LEFT JOIN model_versions v ON v.model = m.name "
                "GROUP BY ALL ORDER BY m.name"
            ).fetchall()
            aliases = con.execute(
                "SELECT model, alias, version FROM model_aliases ORDER BY alias"
            ).fetchall()
        return [
            ModelEntry(
                name=name,
                description=desc,
                versions=n,
                latest=latest,
                aliases={a: v for m, a, v in aliases if m == name},
                created_at=created,
            )
            for name, desc, n, latest, created in rows
        ]

    def versions(self, name: str) -> builtins.list[ModelVersion]:
        with self.catalog.read() as con:
            self._resolve(con, name)
            return self._rows(con, "model = ?", [name])

    def history(self, name: str, alias: str | None = None) -> builtins.list[AliasMove]:
        """Every alias move of a model, oldest first."""
        sql = (
            "SELECT alias, seq, ts, action, version, previous, reason, forced, gates, actor "
            "FROM alias_history WHERE model = ?"
        )
        args: list[Any] = [name]
        if alias is not None:
            sql += " AND alias = ?"
            args.append(alias)
        with self.catalog.read() as con:
            self._resolve(con, name)
            rows = con.execute(sql + " ORDER BY ts, seq", args).fetchall()
        return [
            AliasMove(
                alias=alias,
                seq=seq,
                ts=ts,
                action=action,
                version=version,
                previous=previous,
                reason=reason,
                forced=forced,
                gates=json.loads(gates_json) if gates_json else [],
                actor=actor,
            )
            for alias, seq, ts, action, version, previous, reason, forced, gates_json, actor in rows
        ]

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
        ref = info.ref
        if info.status == "running":
            raise WorkbenchError(f"{ref} is still running; register it once it has ended")
        arts = {a.path: a for a in info.artifacts}
        model_art = arts.get("model.pkl") or next(
            (a for a in arts.values() if a.kind == "model"), None
        )
        if model_art is None:
            raise WorkbenchError(f"{ref} logged no model (no model artifact); nothing to register")
        signature: dict[str, Any] = {}
        for cand in ("signature.json", model_art.path.rsplit(".", 1)[0] + ".signature.json"):
            if cand in arts:
                signature = json.loads(
                    self.objects.read_bytes(arts[cand].hash, f"{ref}'s artifact {cand}")
                )
                break
        metrics = {k: v.last for k, v in info.metrics.items() if not k.endswith("_curve")}
        self.last_register_existed = False
        with self.catalog.write() as con:
            twin = con.execute(
                "SELECT version FROM model_versions WHERE model = ? AND run_id = ? "
                "AND artifact = ? AND status = ? ORDER BY version LIMIT 1",
                [name, info.id, model_art.hash, ACTIVE],
            ).fetchall()
            if twin:
                self.last_register_existed = True
                return self._resolve(con, f"{name}@{twin[0][0]}")
            con.execute(
                "INSERT OR IGNORE INTO models VALUES (?, ?, ?)", [name, audit.now(), description]
            )
            number = _insert_version(
                con,
                name,
                info.id,
                model_art.hash,
                signature,
                metrics,
                info.params,
                (info.dataset, info.dataset_version),
                description,
                audit.now(),
            )
            audit.append(
                con,
                "model.register",
                f"{name}@{number}",
                {"run": info.id, "artifact": model_art.hash, "dataset": info.dataset_ref},
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
            number = _insert_version(
                con,
                name,
                run_id,
                artifact,
                signature,
                metrics,
                params,
                (None, None),
                description,
                created_at,
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
        data = self.objects.read_bytes(mv.artifact, f"the model file of {mv.ref}")
        from workbench.core.runs.model import load_model

        try:
            return load_model(data)
        except Exception as exc:
            raise WorkbenchError(
                f"cannot load the model of {mv.ref}: {type(exc).__name__}: {exc}"
            ) from None


def _insert_version(
    con: duckdb.DuckDBPyConnection,
    name: str,
    run_id: str,
    artifact: str,
    signature: dict[str, Any],
    metrics: dict[str, float],
    params: dict[str, Any],
    dataset: tuple[str | None, int | None],
    description: str | None,
    created_at: Any,
) -> int:
    """Add the next version of ``name`` (registered here or imported); returns its number."""
    number: int = one(
        con, "SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE model = ?", [name]
    )[0]
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
            *dataset,
            description,
            ACTIVE,
            created_at,
        ],
    )
    return number
