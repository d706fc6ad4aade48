"""Alerts: ``[alerts.NAME]`` conditions over a monitor report's latest window.

```toml
[alerts.auc-drop]
model = "flight-delays"            # optional: only this model's reports
when = "estimated.auc < 0.75"      # or a list: fires when every condition holds
run = "mail -s 'auc' me@example"   # optional: a command, the alert as JSON on stdin
pipeline = "monthly"               # optional: run this [pipeline.NAME] on `batch`
batch = "data/latest.parquet"
```

A quantity the window has no value for (``realised.*`` before labels, ``error_rate`` of a
scored batch) does not hold, so it never fires an alert. An alert fires once per window:
a later report on the same window names it as still firing, without acting again.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.core.errors import UsageError

if TYPE_CHECKING:
    from workbench.core.monitor.report import Window

QUANTITIES = (
    "rows", "labelled", "drift_share", "prediction_drift", "error_rate", "p99_latency_ms",
)  # fmt: skip
METRICS = ("accuracy", "precision", "recall", "f1", "auc", "mae", "rmse")
ALERT_KEYS = ("model", "when", "run", "pipeline", "batch")
_OPS = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, ">": operator.gt,
}  # fmt: skip
_CONDITION = re.compile(r"^\s*([a-z_][a-z0-9_.]*)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Condition:
    quantity: str
    op: str
    value: float
    text: str

    def of(self, window: Window) -> float | None:
        """The quantity's value in ``window`` (None: it has none)."""
        kind, _, metric = self.quantity.partition(".")
        if metric:
            est = window.metric(metric)
            if est is None:
                return None
            return est.estimated if kind == "estimated" else est.realised
        value = getattr(window, self.quantity)
        return None if value is None else float(value)

    def holds(self, window: Window) -> tuple[bool, float | None]:
        value = self.of(window)
        return (value is not None and _OPS[self.op](value, self.value)), value


def parse_condition(text: str) -> Condition:
    m = _CONDITION.match(text)
    if not m:
        raise UsageError(
            f"invalid alert condition {text!r}: write QUANTITY OP NUMBER, e.g. estimated.auc < 0.75"
        )
    quantity, op, raw = m.groups()
    kind, _, metric = quantity.partition(".")
    if metric:
        if kind not in ("estimated", "realised") or metric not in METRICS:
            raise UsageError(
                f"unknown quantity {quantity!r} in {text!r}: estimated.METRIC or "
                f"realised.METRIC with METRIC one of {', '.join(METRICS)}"
            )
    elif quantity not in QUANTITIES:
        raise UsageError(
            f"unknown quantity {quantity!r} in {text!r}: one of {', '.join(QUANTITIES)}, "
            "estimated.METRIC or realised.METRIC"
        )
    value = {"true": 1.0, "false": 0.0}.get(raw.lower())
    if value is None:
        try:
            value = float(raw)
        except ValueError:
            raise UsageError(f"invalid number {raw!r} in alert condition {text!r}") from None
    return Condition(quantity, op, value, " ".join(text.split()))


@dataclass(frozen=True)
class Alert:
    name: str
    conditions: tuple[Condition, ...]
    model: str | None = None
    run: str | None = None
    pipeline: str | None = None
    batch: str | None = None

    def applies(self, model: str) -> bool:
        return self.model is None or self.model == model.split("@", 1)[0]


@dataclass
class Firing:
    """An alert that holds on the latest window; ``new`` unless it already fired there."""

    alert: Alert
    values: dict[str, float | None]
    new: bool = True
    actions: list[str] = field(default_factory=list)  # what was done, one line each

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert": self.alert.name,
            "conditions": [c.text for c in self.alert.conditions],
            "values": self.values,
            "new": self.new,
            "actions": self.actions,
        }


def evaluate(alerts: dict[str, Alert], model: str, window: Window) -> list[Firing]:
    """The alerts for ``model`` whose every condition holds on ``window``."""
    out = []
    for alert in alerts.values():
        if not alert.applies(model):
            continue
        values: dict[str, float | None] = {}
        ok = True
        for cond in alert.conditions:
            held, value = cond.holds(window)
            values[cond.quantity] = value
            ok = ok and held
        if ok:
            out.append(Firing(alert, values))
    return out


def parse_alert(name: str, table: dict[str, Any]) -> Alert:
    """One ``[alerts.NAME]`` table (config.py reports the line of a refusal)."""
    unknown = [k for k in table if k not in ALERT_KEYS]
    if unknown:
        raise UsageError(f"unknown key {unknown[0]!r} (known: {', '.join(ALERT_KEYS)})")
    when = table.get("when")
    items = [when] if isinstance(when, str) else when
    if not items or not (isinstance(items, list) and all(isinstance(w, str) for w in items)):
        raise UsageError(
            'needs when = "CONDITION" (or a list of them), e.g. "estimated.auc < 0.75"'
        )
    for key in ("model", "run", "pipeline", "batch"):
        if key in table and not isinstance(table[key], str):
            raise UsageError(f"{key} must be a string")
    if ("pipeline" in table) != ("batch" in table):
        raise UsageError("pipeline and batch go together: the loop runs on that batch file")
    return Alert(
        name,
        tuple(parse_condition(w) for w in items),
        table.get("model"),
        table.get("run"),
        table.get("pipeline"),
        table.get("batch"),
    )
