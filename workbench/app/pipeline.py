"""Continuous training: one declared loop from a new batch to a promoted model.

```toml
[pipeline.monthly]
dataset = "flights"          # the dataset a batch joins
join = "replace"             # "replace": the batch is the new version; "append": added to the latest
model = "flight-delays"      # the registered model this loop keeps current
alias = "production"         # the alias it promotes to
target = "delayed"
recipe = "champion"          # train as the current holder of the alias was trained; or a table:
                             # recipe = { model = "lightgbm", params = { num_leaves = 31 } }
retrain = "drift"            # "drift" | "metric_drop" | "always"
metric = "val_auc"           # decides metric drop and champion vs challenger (auc, accuracy,
                             # log_loss, rmse, mae or r2, with or without "val_")
max_drop = 0.02              # metric_drop: retrain when the champion's metric on the new,
                             # labelled batch is this much worse than at its validation
min_gain = 0.0               # the challenger must beat the champion by more than this
```

``run`` goes step by step and stops at the first step that says stop, with the reason:

1. **add**: the batch becomes a dataset version (its ``[checks]`` run; a failing batch stops here);
2. **drift**: the new version against the champion's training data, with its predictions;
3. **decide**: retrain or not, by the rule above;
4. **train**: a challenger on the new version;
5. **evaluate**: champion and challenger on the same holdout (the challenger's validation rows);
6. **promote**: the challenger is registered, and promoted past the gates only if it is better.

Every step leaves ordinary records (versions, drift reports, runs, model versions, alias
moves, audit entries); the loop's own record (``pipeline_runs``) ties them together.
A batch already processed by the loop (same bytes) changes nothing when run again.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import NotFoundError, UsageError, WorkbenchError
from workbench.core.store import audit
from workbench.textfmt import counted

if TYPE_CHECKING:
    import polars as pl

    from workbench.core.config import PipelineSettings
    from workbench.core.models.versions import ModelVersion
    from workbench.core.project import Project
    from workbench.core.runs.pipeline_runs import PipelineRunRecord

DONE = ("promoted", "kept", "no_retrain", "refused")  # outcomes that count as processed


def load_config(project: Project, name: str) -> PipelineSettings:
    """The checked ``[pipeline.NAME]`` table, and a metric this loop can compute."""
    cfg = project.settings.pipelines.get(name)
    if cfg is None:
        known = ", ".join(sorted(project.settings.pipelines)) or "none"
        raise UsageError(
            f"no [pipeline.{name}] in workbench.toml (pipelines there: {known}); see docs/pipeline.md"
        )
    _check_metric(cfg.metric)
    return cfg


@dataclass
class Step:
    step: str
    status: str  # ok | stop | fail
    detail: str
    refs: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class PipelineRun:
    id: str
    pipeline: str
    batch: str
    batch_hash: str
    outcome: str  # promoted | kept | no_retrain | refused | failed | already
    steps: list[Step]

    @property
    def reason(self) -> str:
        return self.steps[-1].detail if self.steps else ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reason": self.reason}


class Stop(Exception):
    """A step decided the loop ends here (not an error)."""

    def __init__(self, outcome: str, step: Step) -> None:
        super().__init__(step.detail)
        self.outcome, self.step = outcome, step


# ---- metrics on a holdout ----------------------------------------------------------------
HOLDOUT_METRICS = ("auc", "accuracy", "log_loss", "rmse", "mae", "r2")


def _check_metric(name: str) -> None:
    """Refuse a metric this loop cannot compute; without scikit-learn, so that reading a
    pipeline's settings (its history, `pipeline list`) costs no ML imports (~1.5 s)."""
    if name.removeprefix("val_") not in HOLDOUT_METRICS:
        raise UsageError(
            f"metric {name!r}: use one of {', '.join('val_' + k for k in HOLDOUT_METRICS)}"
        )


def _metric_fn(name: str) -> Callable[[Any, Any, Any], float]:
    _check_metric(name)
    import numpy as np
    from sklearn import metrics as m

    base = name.removeprefix("val_")

    def auc(y: Any, pred: Any, proba: Any) -> float:
        return float(m.roc_auc_score(y, proba))

    table: dict[str, Callable[[Any, Any, Any], float]] = {
        "auc": auc,
        "accuracy": lambda y, pred, proba: float(m.accuracy_score(y, pred)),
        "log_loss": lambda y, pred, proba: float(m.log_loss(y, proba, labels=[0, 1])),
        "rmse": lambda y, pred, proba: float(np.sqrt(m.mean_squared_error(y, pred))),
        "mae": lambda y, pred, proba: float(m.mean_absolute_error(y, pred)),
        "r2": lambda y, pred, proba: float(m.r2_score(y, pred)),
    }
    assert set(table) == set(HOLDOUT_METRICS)
    return table[base]


def score_on(
    project: Project, mv: ModelVersion, df: pl.DataFrame, target: str, metric: str
) -> float:
    """``metric`` of a registered model on labelled rows ``df``."""
    import numpy as np
    import polars as pl

    from workbench.core.models.inputs import conform, predict_frame

    model = project.models.load(mv)
    inputs = mv.signature.get("inputs", {})
    x = conform(df, inputs, "the holdout") if inputs else df
    out = predict_frame(model, x, list(inputs))
    y_raw = df.get_column(target)
    pred = out.get_column("prediction")
    proba_cols = [c for c in out.columns if c.startswith("proba_")]
    fn = _metric_fn(metric)
    if proba_cols:  # a classifier: compare labels as text, use the positive class's probability
        classes = [c.removeprefix("proba_") for c in proba_cols]
        positive = classes[-1]
        y = (y_raw.cast(pl.String) == positive).cast(pl.Int8).to_numpy()
        hit = (pred.cast(pl.String) == positive).cast(pl.Int8).to_numpy()
        return fn(y, hit, out.get_column(f"proba_{positive}").to_numpy())
    return fn(y_raw.cast(pl.Float64).to_numpy(), pred.cast(pl.Float64).to_numpy(), np.array([]))


def _better(cfg: PipelineSettings, a: float, b: float) -> bool:
    """Is ``a`` better than ``b`` by more than ``min_gain``?"""
    gain = (b - a) if cfg.lower_is_better else (a - b)
    return gain > cfg.min_gain


# ---- the loop ----------------------------------------------------------------------------
class Pipeline:
    def __init__(self, project: Project, name: str) -> None:
        self.project = project
        self.cfg = load_config(project, name)

    def processed(self, batch_hash: str) -> dict[str, Any] | None:
        found = self.project.pipeline_runs.processed(self.cfg.name, batch_hash, DONE)
        return {"id": found[0], "outcome": found[1]} if found else None

    def run(
        self,
        batch: str | Path,
        on_step: Callable[[str], None] | None = None,
        on_done: Callable[[Step], None] | None = None,
    ) -> PipelineRun:
        from workbench.core.store.objects import sha256_file

        path = Path(batch)
        if not path.is_file():
            raise UsageError(f"no such batch file: {path}")
        digest = sha256_file(path)
        prior = self.processed(digest)
        if prior:
            step = Step(
                "add",
                "stop",
                f"this batch was already processed (pipeline run {prior['id'][:8]}: {prior['outcome']})",
            )
            return PipelineRun(prior["id"], self.cfg.name, path.name, digest, "already", [step])
        run = PipelineRun(uuid.uuid4().hex, self.cfg.name, path.name, digest, "failed", [])
        started = audit.now()
        state: dict[str, Any] = {"path": path}
        steps = [
            ("add", self._add),
            ("drift", self._drift),
            ("decide", self._decide),
            ("train", self._train),
            ("evaluate", self._evaluate),
            ("promote", self._promote),
        ]
        try:
            for name, action in steps:
                if on_step:
                    on_step(name)
                t0 = time.perf_counter()
                try:
                    step = action(state)
                except Stop as stop:
                    stop.step.seconds = time.perf_counter() - t0
                    run.steps.append(stop.step)
                    if on_done:
                        on_done(stop.step)
                    run.outcome = stop.outcome
                    break
                except WorkbenchError as exc:
                    step = Step(name, "fail", exc.message, seconds=time.perf_counter() - t0)
                    run.steps.append(step)
                    if on_done:
                        on_done(step)
                    run.outcome = "failed"
                    break
                step.seconds = time.perf_counter() - t0
                run.steps.append(step)
                if on_done:
                    on_done(step)
        finally:
            self._record(run, started)
        return run

    def _record(self, run: PipelineRun, started: Any) -> None:
        self.project.pipeline_runs.record(
            run.id,
            run.pipeline,
            run.batch,
            run.batch_hash,
            started,
            run.outcome,
            [asdict(s) for s in run.steps],
            run.reason,
        )

    def history(self, limit: int = 50) -> list[PipelineRunRecord]:
        return self.project.pipeline_runs.history(self.cfg.name, limit)

    # ---- steps -------------------------------------------------------------------------
    def _champion(self) -> ModelVersion | None:
        try:
            return self.project.models.resolve(f"{self.cfg.model}@{self.cfg.alias}")
        except NotFoundError:
            return None

    def _add(self, state: dict[str, Any]) -> Step:
        from workbench.core.data.datasets import ChecksFailed

        cfg, path = self.cfg, state["path"]
        message = f"pipeline {cfg.name}: {path.name}"
        source = path
        if cfg.join == "append":
            source = self._appended(path)
        try:
            res = self.project.datasets.add(source, name=cfg.dataset, message=message)
        except ChecksFailed as exc:
            raise Stop("refused", Step("add", "stop", exc.message)) from None
        finally:
            if source != path:
                source.unlink(missing_ok=True)
        state["version"] = res.version
        word = "added" if res.created else "already stored as"
        return Step(
            "add",
            "ok",
            f"{word} {res.version.ref} ({counted(res.version.n_rows, 'row')})",
            {"version": res.version.ref},
        )

    def _appended(self, path: Path) -> Path:
        """The latest version with the batch's rows after it, as a file to add."""
        import polars as pl

        batch = _read(path)
        try:
            latest = self.project.datasets.load(self.cfg.dataset)
            combined = pl.concat([latest, batch], how="diagonal_relaxed")
        except NotFoundError:
            combined = batch
        out = self.project.store_dir / "tmp" / f"append-{uuid.uuid4().hex[:12]}.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        combined.write_parquet(out, compression="zstd", statistics=False)
        return out

    def _drift(self, state: dict[str, Any]) -> Step:
        champion = self._champion()
        state["champion"] = champion
        if champion is None:
            return Step(
                "drift", "ok", f"no {self.cfg.model}@{self.cfg.alias} yet: nothing to compare with"
            )
        report = self.project.drift.compare(None, state["version"].ref, model=champion)
        state["drift"] = report
        verdict = "DRIFT" if report.drifted else "no drift"
        return Step(
            "drift",
            "ok",
            f"{verdict}: {report.n_drifted} of {len(report.tested)} checks drifted against "
            f"{champion.ref}'s training data {report.reference}",
            {"report": report.id, "share": report.share, "drifted": report.drifted},
        )

    def _labelled(self, version_ref: str, df: pl.DataFrame | None = None) -> pl.DataFrame:
        import polars as pl

        df = self.project.datasets.load(version_ref) if df is None else df
        if self.cfg.target not in df.columns:
            raise WorkbenchError(f"{version_ref} has no column {self.cfg.target!r} (the target)")
        df = df.filter(pl.col(self.cfg.target).is_not_null())
        if df.schema[self.cfg.target].is_float():
            df = df.filter(pl.col(self.cfg.target).is_finite())
        return df

    def _decide(self, state: dict[str, Any]) -> Step:
        cfg, champion = self.cfg, state["champion"]
        if champion is None:
            return Step("decide", "ok", "retrain: there is no champion yet")
        if cfg.retrain == "always":
            return Step("decide", "ok", "retrain: this pipeline always retrains")
        if cfg.retrain == "drift":
            report = state["drift"]
            if not report.drifted:
                raise Stop(
                    "no_retrain",
                    Step(
                        "decide",
                        "stop",
                        f"no retraining: no dataset drift ({report.share:.0%} of checks drifted, "
                        f"threshold {report.drift_share:.0%})",
                    ),
                )
            return Step(
                "decide", "ok", f"retrain: dataset drift ({report.share:.0%} of checks drifted)"
            )
        before = champion.metrics.get(cfg.metric)
        # Judged on the batch's own rows: with join = "append" the new version also holds
        # the rows the champion learned from.
        batch = self._labelled(state["path"].name, _read(state["path"]))
        now = score_on(self.project, champion, batch, cfg.target, cfg.metric)
        if before is None or math.isnan(now):
            raise WorkbenchError(f"{champion.ref} has no {cfg.metric} to compare with")
        drop = (now - before) if cfg.lower_is_better else (before - now)
        detail = f"{cfg.metric} of {champion.ref} on the new batch {now:.4f} vs {before:.4f} at validation"
        if drop <= cfg.max_drop:
            raise Stop(
                "no_retrain",
                Step(
                    "decide",
                    "stop",
                    f"no retraining: {detail} (drop {drop:+.4f} <= {cfg.max_drop})",
                    {"now": now, "before": before},
                ),
            )
        return Step(
            "decide",
            "ok",
            f"retrain: {detail} (drop {drop:+.4f} > {cfg.max_drop})",
            {"now": now, "before": before},
        )

    def _train(self, state: dict[str, Any]) -> Step:
        from dataclasses import replace

        from workbench.core.runs.recipe import recipe_for
        from workbench.core.runs.sweeps import recipe_of
        from workbench.core.runs.training import train

        cfg, champion, version = self.cfg, state["champion"], state["version"]
        name = f"{cfg.name}-challenger"
        if cfg.recipe == "champion" and champion is not None:
            try:
                recipe = replace(
                    recipe_of(self.project, champion.run_id), dataset=version.ref, name=name
                )
            except UsageError:
                raise WorkbenchError(
                    f"{champion.ref} was not trained by workbench, so its recipe is unknown; set "
                    f'recipe = {{ model = "lightgbm" }} in [pipeline.{cfg.name}]'
                ) from None
        else:
            options = cfg.recipe if isinstance(cfg.recipe, dict) else {}
            recipe = recipe_for(self.project, version.ref, cfg.target, name=name, **options)
        run_id = train(self.project, recipe, tags={"pipeline": cfg.name})
        state["recipe"], state["run_id"] = recipe, run_id
        value = self.project.runs.get(run_id).last(cfg.metric)
        shown = f"{value:.4f}" if isinstance(value, float) else "-"
        return Step(
            "train",
            "ok",
            f"challenger run:{run_id[:8]} ({recipe.model} on {version.ref}), {cfg.metric} {shown}",
            {"run": run_id},
        )

    def _evaluate(self, state: dict[str, Any]) -> Step:
        from workbench.core.runs.training import split_frame

        cfg, champion = self.cfg, state["champion"]
        mv = self.project.models.register(
            state["run_id"], cfg.model, f"challenger from pipeline {cfg.name}"
        )
        state["challenger"] = mv
        if champion is None:
            return Step(
                "evaluate",
                "ok",
                f"registered {mv.ref}; no champion to compare with",
                {"challenger": mv.ref},
            )
        _, holdout = split_frame(self._labelled(state["version"].ref), state["recipe"])
        theirs = score_on(self.project, champion, holdout, cfg.target, cfg.metric)
        ours = score_on(self.project, mv, holdout, cfg.target, cfg.metric)
        state["scores"] = (ours, theirs)
        return Step(
            "evaluate",
            "ok",
            f"on the same {holdout.height:,} holdout rows of {state['version'].ref}: challenger "
            f"{mv.ref} {cfg.metric} {ours:.4f}, champion {champion.ref} {theirs:.4f}",
            {
                "challenger": mv.ref,
                "champion": champion.ref,
                "challenger_score": ours,
                "champion_score": theirs,
                "holdout_rows": holdout.height,
            },
        )

    def _promote(self, state: dict[str, Any]) -> Step:
        from workbench.core.models.versions import PromotionRefused

        cfg, mv = self.cfg, state["challenger"]
        reason = f"pipeline {cfg.name}, batch {state['path'].name}"
        measured = None
        if "scores" in state:
            ours, theirs = state["scores"]
            if not _better(cfg, ours, theirs):
                raise Stop(
                    "kept",
                    Step(
                        "promote",
                        "stop",
                        f"kept the champion: {mv.ref} ({ours:.4f}) does not beat it ({theirs:.4f}) "
                        f"by more than {cfg.min_gain:g} on {cfg.metric}",
                        {"challenger": mv.ref},
                    ),
                )
            reason += f": {cfg.metric} {ours:.4f} vs {theirs:.4f} on the same holdout"
            measured = {cfg.metric: (ours, theirs)}  # gates on this metric judge the same rows
        try:
            p = self.project.models.promote(
                mv.model, mv.version, cfg.alias, reason=reason, measured=measured
            )
        except PromotionRefused as exc:
            raise Stop(
                "kept",
                Step(
                    "promote",
                    "stop",
                    f"gates refused {mv.ref}: {exc.message}",
                    {"challenger": mv.ref},
                ),
            ) from None
        was = f" (was v{p.previous})" if p.previous else ""
        raise Stop(
            "promoted",
            Step("promote", "ok", f"promoted {mv.ref} to {cfg.alias}{was}", {"challenger": mv.ref}),
        )


def _read(path: Path) -> pl.DataFrame:
    """A batch file's rows, read as `data add` reads them (same formats, types and dates)."""
    from workbench.core.data import ingest

    return ingest.scan(ingest.open_source(path)).collect()
