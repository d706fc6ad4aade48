"""One parser for every reference a user types.

Grammar (see DESIGN.md)::

    churn               latest version
    churn@3             version number
    churn@sha:1a2b3c    content-hash prefix (at least 4 hex digits)
    churn-model@production   alias
    run:4f2a            run id prefix

Names are 1-128 characters of letters, digits, ``.``, ``_`` and ``-``, starting
with a letter or digit, so they are safe in file names, URLs and shell words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from workbench.core.errors import UsageError

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
NAME_RE = re.compile(rf"^{_NAME}$")
ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_HEX = re.compile(r"^[0-9a-f]{4,64}$")


def _show(text: str) -> str:
    shown = text if len(text) <= 60 else text[:57] + "..."
    return repr(shown)


def check_name(name: str, what: str = "name") -> str:
    """Validate a new name; returns it unchanged."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise UsageError(
            f"invalid {what} {_show(str(name))}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class Ref:
    """A parsed reference. Exactly one selector (or none for "latest") is set."""

    name: str = ""
    version: int | None = None
    hash_prefix: str | None = None
    alias: str | None = None
    run_id: str | None = None

    @property
    def is_run(self) -> bool:
        return self.run_id is not None

    def __str__(self) -> str:
        if self.run_id is not None:
            return f"run:{self.run_id}"
        if self.version is not None:
            return f"{self.name}@{self.version}"
        if self.hash_prefix is not None:
            return f"{self.name}@sha:{self.hash_prefix}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


def parse_ref(text: str) -> Ref:
    """Parse a reference, or raise a one-line UsageError saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise UsageError(
            "empty reference: expected NAME, NAME@N, NAME@sha:HASH, NAME@ALIAS or run:ID"
        )
    raw = text.strip()
    if raw.startswith("run:"):
        rid = raw[4:].lower()
        if not _HEX.match(rid):
            raise UsageError(
                f"invalid run reference {_show(raw)}: expected run: and 4-64 hex digits"
            )
        return Ref(run_id=rid)
    name, sep, selector = raw.partition("@")
    if not NAME_RE.match(name):
        if NAME_RE.match(name[:128]) and len(name) > 128:
            raise UsageError(f"invalid reference {_show(raw)}: a name has at most 128 characters")
        raise UsageError(
            f"invalid reference {_show(raw)}: the name must be letters, digits, '.', '_' or '-'"
        )
    if not sep:
        return Ref(name=name)
    if selector.isdigit():
        number = int(selector)
        if number < 1:
            raise UsageError(f"invalid reference {_show(raw)}: version numbers start at 1")
        if number > 2**31 - 1:
            raise UsageError(
                f"invalid reference {_show(raw)}: no version number is that large "
                f"(at most {2**31 - 1:,})"
            )
        return Ref(name=name, version=number)
    if selector.startswith("sha:"):
        prefix = selector[4:].lower()
        if not _HEX.match(prefix):
            raise UsageError(
                f"invalid reference {_show(raw)}: after sha: give 4-64 hex digits of the version hash"
            )
        return Ref(name=name, hash_prefix=prefix)
    if selector == "latest":
        return Ref(name=name)
    if ALIAS_RE.match(selector):
        return Ref(name=name, alias=selector)
    raise UsageError(
        f"invalid reference {_show(raw)}: after @ give a version number, sha:HASH or an alias"
    )


_RANGE = re.compile(r"^(?P<name>[^@]+)@(?P<lo>\d+)\.\.(?P<hi>\d+)$")


def expand_range(text: str) -> list[str]:
    """``flights@2..5`` -> ``flights@2 … flights@5``; anything else is returned as is."""
    m = _RANGE.match(text.strip())
    if not m:
        return [text]
    lo, hi = int(m["lo"]), int(m["hi"])
    if lo < 1 or hi < lo:
        raise UsageError(
            f"invalid version range {_show(text)}: use NAME@FROM..TO with 1 <= FROM <= TO"
        )
    if hi - lo >= 1000:
        raise UsageError(f"version range {_show(text)} spans {hi - lo + 1} versions; at most 1000")
    parse_ref(f"{m['name']}@{lo}")
    return [f"{m['name']}@{n}" for n in range(lo, hi + 1)]
