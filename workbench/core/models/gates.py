"""Promotion gates: small expressions in ``workbench.toml`` that a version must pass.

    [gates]
    staging = ["metrics.val_auc >= 0.75"]
    production = [
        "metrics.val_auc >= champion.val_auc",      # beat the current holder
        "metrics.val_log_loss <= champion.val_log_loss + 0.01",
        "drift_share(flights) <= 0.5",              # training data vs. the latest flights
        "status = finished",
    ]

Grammar: ``LEFT OP RIGHT`` with LEFT one of ``metrics.KEY``, ``status`` or
``drift_share(DATASET_REF)``; OP one of ``>= > <= < = !=``; RIGHT a number,
``champion.KEY`` optionally ``+`` or ``-`` a number, or a word (for ``status``).
``champion`` is the version that holds the alias now; with no holder, a gate that
names it passes (there is nothing to beat). Every promotion also requires that the
version's run finished cleanly; that gate is built in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workbench.core.errors import UsageError

_TOKEN = re.compile(
    r"\s*(?:(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<op>>=|<=|!=|==|=|>|<)"
    r"|(?P<call>drift_share\(\s*(?P<ref>[^()\s]+)\s*\))"
    r"|(?P<path>(?:metrics|champion)\.[A-Za-z0-9_./:-]+)|(?P<word>[A-Za-z_][A-Za-z0-9_-]*)"
    r"|(?P<pm>[+-]))"
)
OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    "=": lambda a, b: a == b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


@dataclass(frozen=True)
class Gate:
    text: str
    left: tuple[str, str]  # ("metric", key) | ("status", "") | ("drift_share", ref)
    op: str
    right: tuple[str, Any]  # ("number", x) | ("champion", (key, offset)) | ("word", w)


@dataclass
class GateResult:
    gate: str
    value: Any
    target: Any
    passed: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "value": self.value,
            "target": self.target,
            "passed": self.passed,
            "note": self.note,
        }


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    stripped = text.rstrip()
    while pos < len(stripped):
        m = _TOKEN.match(stripped, pos)
        if not m or m.end() == pos:
            raise UsageError(
                f"gate {text!r} does not parse: unexpected {stripped[pos:].strip()[:20]!r}"
            )
        if m.group("call"):
            out.append(("call", m.group("ref")))
        else:
            kind = m.lastgroup or ""
            out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def parse(text: str) -> Gate:
    """Parse one gate, or raise a one-line error that points at what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise UsageError("a gate must be a non-empty string such as 'metrics.val_auc >= 0.8'")
    toks = _tokens(text)
    if len(toks) < 3:
        raise UsageError(
            f"gate {text!r} does not parse: expected LEFT OP RIGHT, e.g. metrics.auc >= 0.8"
        )
    (lk, lv), (ok, ov), *rest = toks
    if lk == "path" and lv.startswith("metrics."):
        left = ("metric", lv[len("metrics.") :])
    elif lk == "word" and lv == "status":
        left = ("status", "")
    elif lk == "call":
        from workbench.core.store.refs import parse_ref

        parse_ref(lv)
        left = ("drift_share", lv)
    else:
        raise UsageError(
            f"gate {text!r} does not parse: it must start with metrics.KEY, status or drift_share(DATASET)"
        )
    if ok != "op":
        raise UsageError(
            f"gate {text!r} does not parse: expected >=, >, <=, <, = or != after {lv!r}"
        )
    right: tuple[str, Any]
    if len(rest) == 1 and rest[0][0] == "num":
        right = ("number", float(rest[0][1]))
    elif rest[0][0] == "path" and rest[0][1].startswith("champion."):
        offset = 0.0
        if len(rest) == 3 and rest[1][0] == "pm" and rest[2][0] == "num":
            offset = float(rest[2][1]) * (-1 if rest[1][1] == "-" else 1)
        elif len(rest) == 2 and rest[1][0] == "num" and rest[1][1][0] in "+-":
            offset = float(rest[1][1])
        elif len(rest) != 1:
            raise UsageError(
                f"gate {text!r} does not parse: after champion.KEY only + or - a number"
            )
        right = ("champion", (rest[0][1][len("champion.") :], offset))
    elif len(rest) == 1 and rest[0][0] == "word" and left[0] == "status":
        right = ("word", rest[0][1])
    else:
        raise UsageError(
            f"gate {text!r} does not parse: the right side must be a number or champion.KEY"
        )
    if left[0] == "status" and (right[0] != "word" or ov not in ("=", "==", "!=")):
        raise UsageError(f"gate {text!r} does not parse: use status = finished")
    if left[0] != "status" and right[0] == "word":
        raise UsageError(f"gate {text!r} does not parse: compare a number")
    return Gate(text.strip(), left, ov, right)


@dataclass
class Candidate:
    """What a gate looks at: a version's run status and metrics, and the champion's."""

    status: str
    metrics: dict[str, float]
    champion: dict[str, float] | None
    champion_label: str | None
    drift_share: Callable[[str], tuple[float, str]]  # dataset ref -> (share, note)


def evaluate(gate: Gate, c: Candidate) -> GateResult:
    kind, arg = gate.left
    op = OPS[gate.op]
    if kind == "status":
        return GateResult(gate.text, c.status, gate.right[1], op(c.status, gate.right[1]))
    value: float | None
    if kind == "drift_share":
        value, note = c.drift_share(arg)
    else:
        value = c.metrics.get(arg)
        note = ""
    if value is None:
        return GateResult(gate.text, None, None, False, f"the run logged no metric {arg!r}")
    rk, rv = gate.right
    if rk == "number":
        target = rv
    else:
        key, offset = rv
        if c.champion is None:
            return GateResult(gate.text, value, None, True, "no current holder to beat")
        if key not in c.champion:
            return GateResult(
                gate.text, value, None, True, f"{c.champion_label} has no metric {key!r}"
            )
        target = c.champion[key] + offset
        note = note or f"champion {c.champion_label}"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return GateResult(gate.text, value, target, False, "the value is NaN")
    return GateResult(gate.text, value, target, op(value, target), note)
