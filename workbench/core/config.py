"""``workbench.toml``, read once into a typed ``Settings`` that refuses what it does not know.

Before this module, five places read the file piecemeal and an unknown key passed
silently: ``[gates] prodution = [...]`` left production ungated without a word. Now the
whole file is checked when a project's settings are first asked for (every CLI command
that opens a project asks), and a mistake is refused in one line that names the key and
its line, with the nearest known key when there is one.

The tables (see docs/configuration.md):

- ``[project]``: ``name``
- ``[datasets]``: ``chunk_rows``
- ``[train]``: ``model``, ``seed``, ``split`` and ``[train.params]``
- ``[gates]``: alias = gate or [gates]
- ``[checks.DATASET]``: data expectations (docs/checks.md)
- ``[pipeline.NAME]``: a continuous-training loop (docs/pipeline.md)
- ``[serving]``: ``retention_days``, ``max_log_mb`` (docs/serving.md)
- ``[monitor]``: ``window``; ``[alerts.NAME]``: conditions and actions (docs/monitoring.md)
- ``[demo]``: ``sample``, written by ``workbench demo`` into the projects it builds
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.errors import UsageError

FILE = "workbench.toml"
TABLES = (
    "project", "datasets", "train", "gates", "checks", "pipeline", "serving", "monitor",
    "alerts", "demo",
)  # fmt: skip
MONITOR_KEYS = ("window",)
DEFAULT_WINDOW = "1d"  # [monitor] window
DEMO_KEYS = ("sample",)  # `workbench demo` marks the projects it built (and resumes them)
PROJECT_KEYS = ("name",)
DATASETS_KEYS = ("chunk_rows",)
TRAIN_KEYS = ("model", "seed", "split", "params")
SERVING_KEYS = ("retention_days", "max_log_mb")
PIPELINE_KEYS = (
    "dataset",
    "join",
    "model",
    "alias",
    "target",
    "recipe",
    "retrain",
    "metric",
    "max_drop",
    "min_gain",
)
# Gate keys are alias names, which a user chooses; one a letter or two away from these
# is taken for a typo (a gate that never applies is worse than a refusal).
USUAL_ALIASES = ("staging", "production", "champion", "challenger", "candidate")


@dataclass(frozen=True)
class TrainSettings:
    """``[train]``: what ``workbench train`` and ``project.train()`` use when not told."""

    model: str = "lightgbm"
    seed: int = 42
    split: str = "random:0.2"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PipelineSettings:
    """``[pipeline.NAME]``: one declared continuous-training loop."""

    name: str
    dataset: str
    model: str
    target: str
    join: str = "replace"
    alias: str = "production"
    recipe: Any = "champion"
    retrain: str = "drift"
    metric: str = "val_auc"
    max_drop: float = 0.02
    min_gain: float = 0.0

    @property
    def lower_is_better(self) -> bool:
        from workbench.core.runs.records import lower_is_better

        return lower_is_better(self.metric)


@dataclass(frozen=True)
class ServingSettings:
    """How long logged predictions are kept (older ones go at the next fold), and how
    big one server's log file grows before it starts the next."""

    retention_days: float = 30
    max_log_mb: float = 64


@dataclass(frozen=True)
class Settings:
    """A project's ``workbench.toml``, checked whole."""

    name: str | None = None
    chunk_rows: int | None = None
    train: TrainSettings = field(default_factory=TrainSettings)
    gates: dict[str, list[Any]] = field(default_factory=dict)  # alias -> [gates.Gate]
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)  # dataset -> spec
    pipelines: dict[str, PipelineSettings] = field(default_factory=dict)
    serving: ServingSettings = field(default_factory=ServingSettings)
    monitor_window: str = DEFAULT_WINDOW
    alerts: dict[str, Any] = field(default_factory=dict)  # name -> monitor.alerts.Alert
    raw: dict[str, Any] = field(default_factory=dict)  # the file as TOML read it


def load(path: Path) -> Settings:
    """Read and check ``path``; a missing file is the defaults."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings()
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text") from None
    return parse(text, str(path))


def parse(text: str, where: str = FILE) -> Settings:
    """Check a whole ``workbench.toml``; ``where`` names it in errors."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where} is not valid TOML: {exc}") from None
    return _Reader(raw, text, where).settings()


class _Reader:
    def __init__(self, raw: dict[str, Any], text: str, where: str) -> None:
        self.raw = raw
        self.lines = text.splitlines()
        self.where = where

    # ---- errors that say where -----------------------------------------------------------
    def _line(self, path: tuple[str, ...]) -> int | None:
        """The line that sets ``path`` (a table header or a key), found by reading the
        text the way TOML nests it: headers, dotted keys, quoted keys."""
        current: tuple[str, ...] = ()
        for number, line in enumerate(self.lines, 1):
            s = line.strip()
            header = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?", s)
            if header:
                current = _dotted(header.group(1))
                if current == path:
                    return number
                continue
            key = re.match(r"""^((?:"[^"]*"|'[^']*'|[A-Za-z0-9_.\- ]+?))\s*=""", s)
            if key:
                full = current + _dotted(key.group(1))
                if full[: len(path)] == path:
                    return number
        return None

    def fail(self, path: tuple[str, ...], problem: str) -> UsageError:
        line = self._line(path)
        at = f", line {line}" if line else ""
        return UsageError(f"{self.where}{at}: {problem}")

    def table(self, path: tuple[str, ...], value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"[{'.'.join(path)}] must be a table")
        return value

    def known(self, path: tuple[str, ...], table: dict[str, Any], keys: tuple[str, ...]) -> None:
        for key in table:
            if key not in keys:
                near = _close(key, keys, 0.6)
                hint = f"; did you mean {near[0]}?" if near else f" (known: {', '.join(keys)})"
                where = f"[{'.'.join(path)}]" if path else "the top level"
                raise self.fail((*path, key), f"unknown key {key!r} in {where}{hint}")

    # ---- the tables ----------------------------------------------------------------------
    def settings(self) -> Settings:
        self.known((), self.raw, TABLES)
        project = self.table(("project",), self.raw.get("project", {}))
        self.known(("project",), project, PROJECT_KEYS)
        self.known(("demo",), self.table(("demo",), self.raw.get("demo", {})), DEMO_KEYS)
        name = project.get("name")
        if name is not None and not isinstance(name, str):
            raise self.fail(("project", "name"), 'project.name must be a string like "churn"')
        return Settings(
            name=name,
            chunk_rows=self.chunk_rows(),
            train=self.train(),
            gates=self.gates(),
            checks=self.checks(),
            pipelines=self.pipelines(),
            serving=self.serving(),
            monitor_window=self.monitor_window(),
            alerts=self.alerts(),
            raw=self.raw,
        )

    def chunk_rows(self) -> int | None:
        datasets = self.table(("datasets",), self.raw.get("datasets", {}))
        self.known(("datasets",), datasets, DATASETS_KEYS)
        rows = datasets.get("chunk_rows")
        if rows is not None and not (_integer(rows) and rows > 0):
            raise self.fail(
                ("datasets", "chunk_rows"), "datasets.chunk_rows must be a whole number above 0"
            )
        return rows

    # Each table's checks import what they check against only when the file has the
    # table: the defaults are known good, and those imports (recipes, gates, checks,
    # windows, alerts: ~6 ms) were a cost of every command on a plain workbench.toml.
    def train(self) -> TrainSettings:
        if "train" not in self.raw:
            return TrainSettings()
        from workbench.core.runs.recipe import MODELS, parse_split

        train = self.table(("train",), self.raw["train"])
        self.known(("train",), train, TRAIN_KEYS)
        out = TrainSettings(**train)
        if out.model not in MODELS:
            raise self.fail(
                ("train", "model"), f"train.model {out.model!r} is not one of {', '.join(MODELS)}"
            )
        if not _integer(out.seed):
            raise self.fail(("train", "seed"), "train.seed must be a whole number")
        if not isinstance(out.split, str):
            raise self.fail(("train", "split"), 'train.split must be text like "random:0.2"')
        try:
            parse_split(out.split)
        except UsageError as exc:
            raise self.fail(("train", "split"), f"train.split: {exc.message}") from None
        self.table(("train", "params"), out.params)
        return out

    def serving(self) -> ServingSettings:
        table = self.table(("serving",), self.raw.get("serving", {}))
        self.known(("serving",), table, SERVING_KEYS)
        for key in SERVING_KEYS:
            if key in table and not (_number(table[key]) and table[key] > 0):
                raise self.fail(("serving", key), f"serving.{key} must be a number above 0")
        return ServingSettings(**table)

    def monitor_window(self) -> str:
        table = self.table(("monitor",), self.raw.get("monitor", {}))
        self.known(("monitor",), table, MONITOR_KEYS)
        if "window" not in table:
            return DEFAULT_WINDOW
        from workbench.core.monitor.windows import parse_window

        window = table["window"]
        try:
            return parse_window(str(window)).text
        except UsageError as exc:
            raise self.fail(("monitor", "window"), f"monitor.window: {exc.message}") from None

    def alerts(self) -> dict[str, Any]:
        table = self.table(("alerts",), self.raw.get("alerts", {}))
        if not table:
            return {}
        from workbench.core.monitor.alerts import parse_alert

        out = {}
        for name, spec in table.items():
            path = ("alerts", name)
            try:
                out[name] = parse_alert(name, self.table(path, spec))
            except UsageError as exc:
                raise self.fail(path, f"[alerts.{name}] {exc.message}") from None
        for alert in out.values():
            if alert.pipeline is not None and alert.pipeline not in self.raw.get("pipeline", {}):
                raise self.fail(
                    ("alerts", alert.name, "pipeline"),
                    f"[alerts.{alert.name}] no [pipeline.{alert.pipeline}] in this file",
                )
        return out

    def gates(self) -> dict[str, list[Any]]:
        table = self.raw.get("gates", {})
        if not isinstance(table, dict):
            raise self.fail(("gates",), "[gates] must be a table of alias = [gates]")
        if not table:
            return {}
        from workbench.core.models import gates
        from workbench.core.models.aliases import gates_alias_ok

        out: dict[str, list[Any]] = {}
        for alias, raw in table.items():
            path = ("gates", alias)
            if not gates_alias_ok(alias):
                raise self.fail(path, f"gates.{alias}: not an alias name (letters, digits, - _)")
            near = _close(alias, USUAL_ALIASES, 0.85)
            if near and near[0] != alias:
                raise self.fail(
                    path,
                    f"gates.{alias}: no such alias is usual; did you mean {near[0]}? "
                    "(a gate on a misspelt alias would never apply)",
                )
            items = [raw] if isinstance(raw, str) else raw
            if not (isinstance(items, list) and all(isinstance(g, str) for g in items)):
                raise self.fail(path, f"gates.{alias} must be a list of strings")
            try:
                out[alias] = [gates.parse(g) for g in items]
            except UsageError as exc:
                raise self.fail(path, f"gates.{alias}: {exc.message}") from None
        return out

    def checks(self) -> dict[str, dict[str, Any]]:
        table = self.table(("checks",), self.raw.get("checks", {}))
        if not table:
            return {}
        from workbench.core.data.checks import KEYS, spec_for

        out = {}
        for dataset in table:
            path = ("checks", dataset)
            self.known(path, self.table(path, table[dataset]), tuple(sorted(KEYS)))
            try:
                spec = spec_for(self.raw, dataset)
            except UsageError as exc:
                raise self.fail(("checks", dataset), exc.message) from None
            if spec is not None:
                out[dataset] = spec
        return out

    def pipelines(self) -> dict[str, PipelineSettings]:
        from workbench.core.store.refs import check_name

        table = self.table(("pipeline",), self.raw.get("pipeline", {}))
        out = {}
        for name, spec in table.items():
            path = ("pipeline", name)
            spec = self.table(path, spec)
            self.known(path, spec, PIPELINE_KEYS)
            for key in ("dataset", "model", "target"):
                if not isinstance(spec.get(key), str):
                    raise self.fail(path, f'[pipeline.{name}] needs {key} = "..."')
            p = PipelineSettings(name=name, **spec)
            try:
                check_name(p.dataset, "dataset name")
                check_name(p.model, "model name")
            except UsageError as exc:
                raise self.fail(path, f"[pipeline.{name}] {exc.message}") from None
            if p.join not in ("replace", "append"):
                raise self.fail(
                    (*path, "join"), f'[pipeline.{name}] join must be "replace" or "append"'
                )
            if p.retrain not in ("drift", "metric_drop", "always"):
                raise self.fail(
                    (*path, "retrain"),
                    f'[pipeline.{name}] retrain must be "drift", "metric_drop" or "always"',
                )
            if not (p.recipe == "champion" or isinstance(p.recipe, dict)):
                raise self.fail(
                    (*path, "recipe"),
                    f'[pipeline.{name}] recipe must be "champion" or a table of train options',
                )
            for key in ("max_drop", "min_gain"):
                if not _number(getattr(p, key)):
                    raise self.fail((*path, key), f"[pipeline.{name}] {key} must be a number")
            out[name] = p
        return out


def _dotted(text: str) -> tuple[str, ...]:
    return tuple(
        part.strip().strip("\"'") for part in re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', text)
    )


def _integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _close(word: str, choices: Any, cutoff: float) -> list[str]:
    """The choice ``word`` was probably meant to be, for a "did you mean": difflib is
    imported only when a name is wrong (its import was ~0.7-1 ms of every command's start)."""
    import difflib

    return difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
