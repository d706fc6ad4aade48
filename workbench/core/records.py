"""The base of every typed result the core hands to the CLI, the TUI and scripts.

Results are dataclasses so callers get attributes a type checker can follow, and
``to_dict()`` gives ``--json`` the same plain shape it always had. They also answer
``result["key"]`` and ``result.get("key")``, because scripts written against the dict
results (the README's ``project.runs.get(id)["metrics"]["auc"]["last"]``) must keep
working: the public Python API does not break when its types get sharper.
"""

from __future__ import annotations

import dataclasses
from typing import Any


class Record:
    """Mixin for result dataclasses: attribute access first, mapping access kept.

    Subclasses are ``@dataclass(eq=False)``: the dataclass ``__eq__`` would compare
    records only with records, and a script's ``info["artifacts"] == [{...}]`` must hold.
    """

    def to_dict(self) -> dict[str, Any]:
        """Fields (and any extra keys a subclass names in ``_extra``) as plain values."""
        out = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        for name in getattr(self, "_extra", ()):
            out[name] = _plain(getattr(self, name))
        return out

    def keys(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self)] + list(getattr(self, "_extra", ()))  # type: ignore[arg-type]

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self.keys() else default

    def __eq__(self, other: object) -> bool:
        """Equal to a record of its kind or to the dict it stands for (declare the
        dataclass with ``eq=False`` so this one is kept)."""
        if isinstance(other, Record):
            return type(self) is type(other) and self.to_dict() == other.to_dict()
        if isinstance(other, dict):
            return self.to_dict() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dicts were


def _plain(value: Any) -> Any:
    """Nested records become dicts; everything else (datetimes too) is left for the
    JSON writer, so the shape matches the old dict results byte for byte."""
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
