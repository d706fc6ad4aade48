"""`workbench demo`: a populated project from a bundled sample, in seconds.

The demo is the whole lifecycle played once on real data: batches arrive as dataset
versions, a few models and a small sweep are trained on one of them, the best is
registered and promoted to production past the sample's gates, a challenger waits in
staging, a later (drifted) batch is checked for drift against the production model and
scored with it. Every step goes through the same core calls as the CLI, so the audit
trail, the TUI and `workbench verify` see an ordinary project.

Each step first looks in the catalog for its own result (runs carry a ``demo`` tag), so
running the demo again on the same folder, or after an interrupted build, redoes only
what is missing.
"""

from __future__ import annotations

import functools
import shutil
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import UsageError
from workbench.textfmt import counted

if TYPE_CHECKING:
    from workbench.core.project import Project
    from workbench.core.runs.records import RunSummary

DEMO_TAG = "demo"


@dataclass(frozen=True)
class Sample:
    """How the demo plays one sample project."""

    name: str
    dataset: str
    target: str
    model_name: str
    description: str
    pattern: str  # batch files under data/, added in sorted order
    batch_label: Callable[[str], str]  # file stem -> commit message
    train_on: int  # dataset version the models learn from
    drift_on: int  # the later batch that drifted
    # (tag, model family, params): the handful of single runs
    runs: tuple[tuple[str, str, dict[str, Any]], ...]
    sweep_grid: dict[str, list[Any]] = field(default_factory=dict)
    metric: str = "val_auc"  # what decides champion and challenger
    lower_is_better: bool = False


def _month(stem: str) -> str:
    return f"2013-{stem.rsplit('_', 1)[-1]} batch"


def _quarter(stem: str) -> str:
    _, year, q = stem.split("_")
    return f"{year} {q.upper()} batch"


SAMPLES: dict[str, Sample] = {
    "flights": Sample(
        name="flights",
        dataset="flights",
        target="delayed",
        model_name="flight-delays",
        description="Will a New York flight arrive more than 15 minutes late?",
        pattern="flights_2013_*.parquet",
        batch_label=_month,
        train_on=4,
        drift_on=12,
        runs=(
            ("baseline", "logistic", {}),
            ("forest", "random_forest", {"n_estimators": 60, "min_samples_leaf": 5}),
            ("lightgbm", "lightgbm", {}),
        ),
        sweep_grid={"num_leaves": [15, 63], "learning_rate": [0.05, 0.1]},
    ),
    "bikes": Sample(
        name="bikes",
        dataset="bikes",
        target="rentals",
        model_name="bike-demand",
        description="How many bikes will be rented in this hour?",
        pattern="bikes_*.parquet",
        batch_label=_quarter,
        train_on=2,
        drift_on=5,
        runs=(
            ("baseline", "ridge", {}),
            ("forest", "random_forest", {"n_estimators": 100, "min_samples_leaf": 2}),
            ("lightgbm", "lightgbm", {}),
        ),
        sweep_grid={"num_leaves": [15, 63], "learning_rate": [0.03, 0.1]},
        metric="val_rmse",
        lower_is_better=True,
    ),
}


def samples_dir() -> Path:
    """Where the sample projects are: inside the installed package, or the repo checkout."""
    import workbench

    pkg = Path(workbench.__file__).resolve().parent
    for cand in (pkg / "samples", pkg.parent / "sample_projects"):
        if cand.is_dir():
            return cand
    raise UsageError("the sample projects are missing from this installation; reinstall it")


@dataclass
class Step:
    """One line of the demo's progress: what it did and how long it took."""

    title: str
    detail: str = ""
    seconds: float = 0.0
    skipped: bool = False


Reporter = Callable[[str], None]  # called with a step's title as it starts


class Demo:
    """Builds (or completes) the demo project for one sample in ``root``."""

    def __init__(self, root: Path, sample: str = "flights") -> None:
        if sample not in SAMPLES:
            raise UsageError(f"unknown sample {sample!r}: choose one of {', '.join(SAMPLES)}")
        self.sample = SAMPLES[sample]
        self.source = samples_dir() / sample
        self.root = root.expanduser().resolve()
        self.steps: list[Step] = []
        self._project: Project | None = None
        self.resuming = self._check_folder()  # refuse a wrong folder before doing anything

    # ---- the plan --------------------------------------------------------------
    def plan(self) -> list[tuple[str, Callable[[], Step]]]:
        s = self.sample
        steps: list[tuple[str, Callable[[], Step]]] = [
            ("Creating the project", self._create),
            (f"Adding the {s.dataset} batches as versions", self._add_batches),
        ]
        for tag, family, params in s.runs:
            steps.append(
                (
                    f"Training {family} on {s.dataset}@{s.train_on}",
                    functools.partial(self._train, tag, family, params),
                )
            )
        if s.sweep_grid:
            n = 1
            for values in s.sweep_grid.values():
                n *= len(values)
            steps.append((f"Sweeping {n} LightGBM variants", self._sweep))
        steps += [
            ("Promoting the best run to production", self._champion),
            ("Putting the sweep's best in staging", self._challenger),
            (f"Checking {s.dataset}@{s.drift_on} for drift", self._drift),
            (f"Scoring {s.dataset}@{s.drift_on} with production", self._score),
            (f"Adding {s.dataset}@{s.drift_on}'s labels, monitoring production", self._monitor),
        ]
        return steps

    def build(
        self, on_start: Reporter | None = None, on_done: Callable[[Step], None] | None = None
    ) -> Project:
        for title, action in self.plan():
            if on_start:
                on_start(title)
            t0 = time.perf_counter()
            step = action()
            step.title = title
            step.seconds = time.perf_counter() - t0
            self.steps.append(step)
            if on_done:
                on_done(step)
        assert self._project is not None
        return self._project

    @property
    def project(self) -> Project:
        assert self._project is not None, "the project is created by the first step"
        return self._project

    # ---- steps -----------------------------------------------------------------
    def _check_folder(self) -> bool:
        """True when ``root`` already holds this demo; refuses anything else that is there."""
        from workbench.core.project import CONFIG

        config = self.root / CONFIG
        if config.is_file():
            try:
                existing = tomllib.loads(config.read_text())
            except (OSError, tomllib.TOMLDecodeError):
                existing = {}
            if existing.get("demo", {}).get("sample") != self.sample.name:
                raise UsageError(
                    f"{self.root} already holds a workbench project that is not the "
                    f"{self.sample.name} demo; give the demo an empty or new folder"
                )
            return True
        if self.root.exists() and not self.root.is_dir():
            raise UsageError(f"{self.root} is not a folder")
        if self.root.exists() and any(self.root.iterdir()):
            raise UsageError(f"{self.root} is not empty; give the demo an empty or new folder")
        return False

    def _create(self) -> Step:
        from workbench.core.project import CONFIG, Project

        if self.resuming:
            self._project, _ = Project.init(self.root)
            return Step("", str(self.root), skipped=True)
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.source / "README.md", self.root / "README.md")
        # The config goes last, through a rename: its [demo] marker means "ours, resume here".
        text = (self.source / CONFIG).read_text()
        marker = f'[demo]\nsample = "{self.sample.name}"\n'
        tmp = self.root / (CONFIG + ".tmp")
        tmp.write_text(text.rstrip() + "\n\n# Built by `workbench demo`.\n" + marker)
        tmp.replace(self.root / CONFIG)
        self._project, _ = Project.init(self.root)
        return Step("", str(self.root))

    def _add_batches(self) -> Step:
        files = sorted((self.source / "data").glob(self.sample.pattern))
        added = rows = 0
        for path in files:
            res = self.project.datasets.add(
                path, name=self.sample.dataset, message=self.sample.batch_label(path.stem)
            )
            added += res.created
            rows += res.version.n_rows
        detail = f"{len(files)} versions, {rows:,} rows"
        return Step("", detail, skipped=added == 0)

    def _tagged(self, tag: str) -> RunSummary | None:
        found = self.project.runs.list(
            filter=f"tags.{DEMO_TAG} = '{tag}' and status = 'finished'", limit=1
        )
        return found[0] if found else None

    def _score_of(self, run_id: str) -> float | None:
        return self.project.runs.get(run_id).last(self.sample.metric)

    def _train(self, tag: str, family: str, params: dict[str, Any]) -> Step:
        done = self._tagged(tag)
        if done:
            return Step("", self._describe(done.id), skipped=True)
        run_id = self.project.train(
            f"{self.sample.dataset}@{self.sample.train_on}",
            self.sample.target,
            model=family,
            params=params,
            name=tag,
        )
        self.project.runs.set_tag(run_id, DEMO_TAG, tag)
        return Step("", self._describe(run_id))

    def _describe(self, run_id: str) -> str:
        score = self._score_of(run_id)
        shown = "-" if score is None else f"{score:.4g}"
        return f"run:{run_id[:8]}  {self.sample.metric} {shown}"

    def _sweep(self) -> Step:
        done = self._tagged("sweep")
        if done:
            best = self.project.runs.get(done.id).tags.get("best_run", "")
            return Step("", "best " + self._describe(best) if best else "", skipped=True)
        s = self.sample
        result = self.project.sweep(
            f"{s.dataset}@{s.train_on}",
            s.target,
            grid=s.sweep_grid,
            parallel=2,
            metric=s.metric,
            model="lightgbm",
            name="sweep",
        )
        self.project.runs.set_tag(result["parent_id"], DEMO_TAG, "sweep")
        best = result["best"]
        return Step("", "best " + self._describe(best["run_id"]) if best else "every trial failed")

    def _best_single(self) -> str:
        """The best of the single runs: the first champion."""
        scored = []
        for tag, _, _ in self.sample.runs:
            run = self._tagged(tag)
            if run and (score := self._score_of(run.id)) is not None:
                scored.append((score, run.id))
        if not scored:
            raise UsageError("no demo run finished; nothing to register")
        pick = min if self.sample.lower_is_better else max
        return pick(scored)[1]

    def _register(self, run_id: str, description: str) -> Any:
        from workbench.core.errors import NotFoundError

        registry = self.project.models
        try:
            versions = registry.versions(self.sample.model_name)
        except NotFoundError:  # the first registration
            versions = []
        for mv in versions:
            if mv.run_id == run_id:
                return mv, False
        return registry.register(run_id, self.sample.model_name, description), True

    def _champion(self) -> Step:
        mv, new = self._register(self._best_single(), self.sample.description)
        if not new and self.project.models.history(mv.model, "production"):
            return Step("", f"{mv.ref} in production", skipped=True)
        moved = False
        for alias in ("staging", "production"):
            p = self.project.models.promote(
                mv.model, mv.version, alias, reason="demo: best of the first runs"
            )
            moved |= p.moved
        return Step("", f"{mv.ref} → production", skipped=not (new or moved))

    def _challenger(self) -> Step:
        sweep = self._tagged("sweep")
        best = self.project.runs.get(sweep.id).tags.get("best_run") if sweep else None
        if not best:
            return Step("", "no sweep winner", skipped=True)
        mv, new = self._register(best, self.sample.description)
        holder = self.project.models.resolve(f"{mv.model}@production")
        if holder.version == mv.version:
            return Step("", f"{mv.ref} already holds production", skipped=True)
        p = self.project.models.promote(
            mv.model, mv.version, "staging", reason="demo: the sweep's best, waiting for review"
        )
        return Step("", f"{mv.ref} → staging", skipped=not (new or p.moved))

    def _drift(self) -> Step:
        s = self.sample
        current = f"{s.dataset}@{s.drift_on}"
        model = f"{s.model_name}@production"
        mv = self.project.models.resolve(model)
        for r in self.project.drift.list(limit=None, dataset=s.dataset):
            if r["current"] == current and r["reference"] == mv.dataset_ref:
                return Step("", _drift_text(r["n_drifted"], r["n_tested"]), skipped=True)
        report = self.project.drift.compare(None, current, model=model)
        return Step("", _drift_text(report.n_drifted, len(report.tested)))

    def _score(self) -> Step:
        from workbench.core.models.scoring import predict

        s = self.sample
        out = self.root / "scores" / f"{s.dataset}_{s.drift_on}.parquet"
        if out.is_file():
            return Step("", str(out.relative_to(self.root)), skipped=True)
        out.parent.mkdir(exist_ok=True)
        res = predict(self.project, f"{s.model_name}@production", f"{s.dataset}@{s.drift_on}", out)
        return Step("", f"{res.rows:,} rows → {out.relative_to(self.root)}")

    def _monitor(self) -> Step:
        """Labels for the scored batch arrive; the report shows what was estimated
        without them beside what they realise."""
        from workbench.app.monitoring import run
        from workbench.core.models.labels import add
        from workbench.core.monitor.estimate import MAIN_METRIC
        from workbench.core.monitor.stored import reports

        s, p = self.sample, self.project
        if reports(p, s.model_name, limit=1):
            return Step("", "a report exists", skipped=True)
        with p.catalog.read() as con:
            rid, labelled = con.execute(
                "SELECT s.id, count(l.row) FROM scorings s LEFT JOIN labels l "
                "ON l.model = s.model AND l.request_id = s.id WHERE s.model = ? "
                "GROUP BY s.id, s.ts ORDER BY s.ts DESC LIMIT 1",
                [s.model_name],
            ).fetchone() or (None, 0)
        if rid is not None and not labelled:
            add(p.catalog, p.datasets, f"{s.dataset}@{s.drift_on}", s.model_name, s.target,
                request=rid)  # fmt: skip
        report = run(p, f"{s.model_name}@production", window="batch").report
        w = report.windows[-1]
        e = w.metric(MAIN_METRIC[report.task])
        if e is None or e.estimated is None or e.realised is None:
            return Step("", counted(len(report.windows), "window"))
        verdict = "within the band" if e.within else "outside the band: the relation moved"
        return Step(
            "", f"{e.metric} estimated {e.estimated:.3f}, realised {e.realised:.3f} ({verdict})"
        )


def _drift_text(drifted: int, tested: int) -> str:
    return f"{drifted} of {tested} columns drifted"
