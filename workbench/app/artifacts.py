"""What a run's artifact says, read for people: the confusion matrix as a table, feature
importance as ranked bars, JSON pretty-printed, text as text (MLflow's UI renders the
same artifacts this way). The app and the CLI share it; the bytes come from the object
store, which refuses any that no longer hash to their name."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.core.errors import UsageError

if TYPE_CHECKING:
    from workbench.core.project import Project

# Past this an artifact is summarised rather than read into the screen.
MAX_SHOWN = 2_000_000


@dataclass
class ArtifactView:
    """One artifact as shown. ``form`` says which of the fields hold it."""

    run: str  # the run's ref
    path: str
    form: str  # "confusion", "importance", "text" or "binary"
    size: int
    text: str = ""
    labels: list[str] = field(default_factory=list)
    matrix: list[list[int]] = field(default_factory=list)
    importance: list[tuple[str, float]] = field(default_factory=list)

    def per_class(self) -> list[tuple[str, int, float | None, float | None]]:
        """Each true class: its count, recall (its row's diagonal share) and precision
        (its column's), None where a class was never seen or never predicted."""
        rows = []
        for i, label in enumerate(self.labels):
            actual = sum(self.matrix[i])
            predicted = sum(r[i] for r in self.matrix)
            hit = self.matrix[i][i]
            rows.append(
                (
                    label,
                    actual,
                    hit / actual if actual else None,
                    hit / predicted if predicted else None,
                )
            )
        return rows


def _confusion(data: Any) -> tuple[list[str], list[list[int]]] | None:
    if not isinstance(data, dict):
        return None
    labels, matrix = data.get("labels"), data.get("matrix")
    if (
        isinstance(labels, list)
        and isinstance(matrix, list)
        and len(matrix) == len(labels)
        and all(isinstance(r, list) and len(r) == len(labels) for r in matrix)
        and all(isinstance(v, int) for r in matrix for v in r)
    ):
        return [str(x) for x in labels], matrix
    return None


def _importance(data: Any) -> list[tuple[str, float]] | None:
    if not isinstance(data, dict) or not data:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in data.values()):
        return None
    return sorted(((str(k), float(v)) for k, v in data.items()), key=lambda kv: -kv[1])


def read(project: Project, run_ref: str, path: str) -> ArtifactView:
    """The artifact ``path`` of a run, made readable."""
    info = project.runs.get(run_ref)
    art = next((a for a in info.artifacts if a.path == path), None)
    if art is None:
        names = ", ".join(a.path for a in info.artifacts) or "none"
        raise UsageError(f"{info.ref} has no artifact {path!r} (it has: {names})")
    if art.kind == "model" or art.size > MAX_SHOWN:
        what = "a packed model" if art.kind == "model" else "too large to show here"
        return ArtifactView(info.ref, path, "binary", art.size, text=f"{what}: {art.size:,} bytes")
    data = project.objects.read_bytes(art.hash, what=f"artifact {path} of {info.ref}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return ArtifactView(info.ref, path, "binary", art.size, text=f"binary: {art.size:,} bytes")
    if path.endswith(".json"):
        try:
            parsed = json.loads(text)
        except ValueError:
            return ArtifactView(info.ref, path, "text", art.size, text=text)
        if (cm := _confusion(parsed)) is not None:
            return ArtifactView(info.ref, path, "confusion", art.size, labels=cm[0], matrix=cm[1])
        if (ranked := _importance(parsed)) is not None and "importance" in path:
            return ArtifactView(info.ref, path, "importance", art.size, importance=ranked)
        text = json.dumps(parsed, indent=2, ensure_ascii=False)
    return ArtifactView(info.ref, path, "text", art.size, text=text)
