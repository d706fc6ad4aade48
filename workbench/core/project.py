"""A workbench project: a folder with ``workbench.toml`` and ``.workbench/``.

Like git, commands find the project by walking up from the current directory
(or take ``--project``/``WORKBENCH_PROJECT``).
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import StoreError, UsageError

if TYPE_CHECKING:
    from workbench.core.config import Settings
    from workbench.core.data.datasets import Datasets
    from workbench.core.drift.analysis import Drift
    from workbench.core.models.prediction_log import Folded
    from workbench.core.models.registry import Registry
    from workbench.core.runs.pipeline_runs import PipelineRuns
    from workbench.core.runs.runs import Runs
    from workbench.core.store.catalog import Catalog
    from workbench.core.store.objects import ObjectStore

CONFIG = "workbench.toml"
STORE_DIR = ".workbench"

_CONFIG_TEMPLATE = """\
# workbench project settings. See docs/ for every key.
[project]
name = {name}

[datasets]
# The most rows a stored chunk holds (chunks are cut by content, about half this on
# average); fixed per dataset when its first version is added.
# chunk_rows = 262144
"""


def _toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, except that TOML also wants DEL
    escaped and has no lone surrogates (a folder may be named it's "x", or worse)."""
    safe = text.encode("utf-8", "replace").decode("utf-8")
    return json.dumps(safe, ensure_ascii=False).replace("\x7f", "\\u007f")


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` that holds a project."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG).is_file() and (folder / STORE_DIR).is_dir():
            return folder
    raise StoreError(
        f"not inside a workbench project (looked from {here} upwards); "
        "run `workbench init` or pass --project DIR"
    )


class Project:
    """Entry point of the Python API, e.g. ``Project().datasets.add("x.csv", name="x")``."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        if path is None and os.environ.get("WORKBENCH_PROJECT"):
            path = os.environ["WORKBENCH_PROJECT"]
        if path is not None:
            p = Path(path).expanduser()
            if not p.exists():
                raise StoreError(f"no such folder: {p}")
            if not (p / CONFIG).is_file() or not (p / STORE_DIR).is_dir():
                raise StoreError(f"{p} is not a workbench project; run `workbench init {p}`")
            self.root = p.resolve()
        else:
            self.root = find_root()
        self.store_dir = self.root / STORE_DIR

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r})"

    @classmethod
    def init(
        cls, path: str | os.PathLike[str] = ".", name: str | None = None
    ) -> tuple[Project, bool]:
        """Create (or re-open) a project; returns it and whether it was new."""
        from workbench.core.store.catalog import Catalog, check_path

        root = Path(path).expanduser().resolve()
        if root.exists() and not root.is_dir():
            raise UsageError(f"{root} exists and is not a folder")
        check_path(root)  # before anything is written
        created = not (
            (root / CONFIG).is_file() and (root / STORE_DIR / "catalog.duckdb").is_file()
        )
        try:
            root.mkdir(parents=True, exist_ok=True)
            store = root / STORE_DIR
            (store / "objects").mkdir(parents=True, exist_ok=True)
            (store / "tmp").mkdir(exist_ok=True)
            (store / "runs").mkdir(exist_ok=True)
            (store / "journal").mkdir(exist_ok=True)
            gitignore = store / ".gitignore"
            if not gitignore.exists():
                gitignore.write_text("*\n")
            if not (root / CONFIG).exists():
                (root / CONFIG).write_text(
                    _CONFIG_TEMPLATE.format(name=_toml_string(name or root.name)), encoding="utf-8"
                )
        except OSError as exc:
            raise StoreError(f"cannot create a project at {root}: {exc.strerror}") from None
        Catalog.create(store / "catalog.duckdb")
        return cls(root), created

    @functools.cached_property
    def settings(self) -> Settings:
        """``workbench.toml``, checked whole: a mistake anywhere in it is refused here,
        naming the key and its line (see ``workbench.core.config``)."""
        from workbench.core import config

        return config.load(self.root / CONFIG)

    @property
    def config(self) -> dict[str, Any]:
        """``workbench.toml`` as TOML reads it, after the same checks as ``settings``."""
        return self.settings.raw

    @functools.cached_property
    def catalog(self) -> Catalog:
        from workbench.core.store.catalog import Catalog

        cat = Catalog(self.store_dir / "catalog.duckdb")
        cat.on_pending = lambda: self.runs.journal.fold()
        return cat

    @functools.cached_property
    def objects(self) -> ObjectStore:
        from workbench.core.store.objects import ObjectStore

        return ObjectStore(self.store_dir / "objects", self.store_dir / "tmp")

    @functools.cached_property
    def datasets(self) -> Datasets:
        from workbench.core.data.datasets import Datasets

        return Datasets(self.catalog, self.objects, self.settings)

    @functools.cached_property
    def runs(self) -> Runs:
        from workbench.core.runs.runs import Runs

        return Runs(
            self.catalog,
            self.objects,
            self.store_dir / "runs",
            resolve_dataset=lambda ref: self.datasets.resolve(ref),
        )

    @functools.cached_property
    def pipeline_runs(self) -> PipelineRuns:
        from workbench.core.runs.pipeline_runs import PipelineRuns

        return PipelineRuns(self.catalog)

    @functools.cached_property
    def drift(self) -> Drift:
        from workbench.core.drift.analysis import Drift

        return Drift(
            self.catalog,
            self.datasets,
            resolve_model=lambda ref: self.models.resolve(ref),
            load_model=lambda mv: self.models.load(mv),
        )

    @functools.cached_property
    def models(self) -> Registry:
        from workbench.core.models.registry import Registry

        return Registry(
            self.catalog,
            self.objects,
            self.settings,
            run_info=lambda ref: self.runs.get(ref),
            compare_drift=self._compare_drift,
            save_drift=lambda con, report: self.drift.save_all_in(con, [report]),
        )

    @property
    def serving_dir(self) -> Path:
        """Where scoring servers write their request logs (core/models/prediction_log.py)."""
        return self.store_dir / "serving"

    def fold_predictions(self) -> Folded:
        """Fold what scoring servers logged since the last fold into the catalog (the
        ``requests`` and ``predictions`` SQL views), pruning past ``[serving]
        retention_days``. A read-only or busy store keeps what is folded already."""
        from workbench.core.models.prediction_log import Folded, fold

        try:
            return fold(self.catalog, self.serving_dir, self.settings.serving.retention_days)
        except StoreError:
            return Folded()

    def _compare_drift(self, reference: str, current: str, columns: list[str] | None) -> Any:
        from workbench.core.drift.columns import Options

        return self.drift.compare(reference, current, Options(columns=columns), save=False)

    def train(self, dataset: str, target: str, **options: Any) -> str:
        """Train one tracked run with the built-in trainers, as `workbench train` does.

        ``options`` are the CLI's: model, params (a dict), split, seed, task, features,
        experiment, name; anything not given comes from ``[train]`` in workbench.toml.
        Returns the run id (``project.runs.get(id)`` has its metrics).
        """
        from workbench.core.runs.recipe import recipe_for
        from workbench.core.runs.training import train

        return train(self, recipe_for(self, dataset, target, **options))

    @staticmethod
    def train_in_child(
        root: str, recipe: dict[str, Any], parent_id: str
    ) -> tuple[str | None, str | None]:
        """One sweep trial in a worker process: (run id, error). It lives here, with the
        code that builds a project, because a child process starts from the folder's
        path alone (and sweeps then needs no import of this module)."""
        from workbench.core.errors import WorkbenchError
        from workbench.core.runs.recipe import Recipe
        from workbench.core.runs.training import train

        try:
            return train(Project(root), Recipe(**recipe), parent_id=parent_id), None
        except WorkbenchError as exc:
            return None, exc.message
        except Exception as exc:  # the trial failed; the sweep goes on
            return None, f"{type(exc).__name__}: {exc}"

    def sweep(
        self,
        dataset: str,
        target: str,
        grid: dict[str, list[Any]] | None = None,
        space: dict[str, tuple[float, float, bool]] | None = None,
        trials: int | None = None,
        parallel: int = 1,
        metric: str | None = None,
        backend: str = "local",
        address: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Train variants as child runs of one parent run, as `workbench sweep` does.

        ``grid`` maps a param to the values to try; ``space`` maps a param to
        ``(low, high, log)`` for random search over ``trials`` draws. Returns the parent
        id, every trial and the best one by ``metric`` (val_auc or val_rmse by default).
        ``backend="ray"`` runs the trials on the Ray cluster at ``address`` ("auto",
        "HOST:PORT", or None to start one here).
        """
        from workbench.core.runs.recipe import recipe_for
        from workbench.core.runs.sweeps import sweep

        base = recipe_for(self, dataset, target, **options)
        return sweep(
            self, base, grid or {}, space or {}, trials, parallel, metric,
            backend=backend, address=address,
        )  # fmt: skip
