"""A dataset version as the rest of workbench sees it (``Version``), what ``add`` returns,
and how two versions' schemas differ."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from workbench.core.records import Record

if TYPE_CHECKING:
    import polars as pl

    from workbench.core.data.segments import Segment

_VERSION_COLS = (
    "dataset, number, id, created_at, message, source_name, source_format, source_bytes, "
    "n_rows, n_cols, stored_bytes, total_bytes, parent, schema, schema_changes"
)


@dataclass(eq=False)
class DatasetEntry(Record):
    """A dataset as a list shows it: its newest version's shape, the space all take."""

    name: str
    versions: int
    latest: str
    rows: int
    columns: int
    updated_at: datetime
    stored_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return super().to_dict() | {
            "updated_at": self.updated_at.isoformat(timespec="seconds") + "Z"
        }


@dataclass
class Version:
    """One immutable dataset version as recorded in the catalog."""

    dataset: str
    number: int
    id: str
    created_at: Any
    message: str | None
    source_name: str | None
    source_format: str | None
    source_bytes: int | None
    n_rows: int
    n_cols: int
    stored_bytes: int
    total_bytes: int
    parent: int | None
    schema: list[dict[str, str]]
    schema_changes: dict[str, Any] | None
    segments: list[Segment] = field(default_factory=list, repr=False)
    # The fast checksums of the segments' objects, when resolved for a read (None: not
    # fetched); fetched in the same catalog session as the segments.
    sums: dict[str, str] | None = field(default=None, repr=False, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.number}"

    @property
    def columns(self) -> list[str]:
        return [c["name"] for c in self.schema]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "version": self.number,
            "ref": self.ref,
            "id": self.id,
            "created_at": self.created_at.isoformat(timespec="seconds") + "Z",
            "message": self.message,
            "source": self.source_name,
            "format": self.source_format,
            "source_bytes": self.source_bytes,
            "rows": self.n_rows,
            "columns": self.n_cols,
            "stored_bytes": self.stored_bytes,
            "total_bytes": self.total_bytes,
            "parent": self.parent,
            "schema": self.schema,
            "schema_changes": self.schema_changes,
        }

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Version:
        # the catalog's columns are the fields in order, the JSON ones last
        values = dict(zip([f.name for f in fields(cls)], row, strict=False))
        values["schema"] = json.loads(values["schema"])
        changes = values["schema_changes"]
        values["schema_changes"] = json.loads(changes) if changes else None
        return cls(**values)


class _AlreadyStored(Exception):
    def __init__(self, version: Version) -> None:
        self.version = version


@dataclass
class AddResult:
    version: Version
    created: bool

    @property
    def schema_changes(self) -> dict[str, Any] | None:
        return self.version.schema_changes if self.created else None


def _schema_list(schema: pl.Schema) -> list[dict[str, str]]:
    return [{"name": n, "dtype": str(t)} for n, t in schema.items()]


def schema_changes(old: list[dict[str, str]], new: list[dict[str, str]]) -> dict[str, Any] | None:
    before = {c["name"]: c["dtype"] for c in old}
    after = {c["name"]: c["dtype"] for c in new}
    added = [n for n in after if n not in before]
    removed = [n for n in before if n not in after]
    retyped = [
        {"column": n, "from": before[n], "to": after[n]}
        for n in after
        if n in before and before[n] != after[n]
    ]
    if not (added or removed or retyped):
        return None
    return {"added": added, "removed": removed, "retyped": retyped}
