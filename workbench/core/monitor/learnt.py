"""What a classifier's monitoring learnt from its reference, kept for the next report.

A classifier's reference is its training run's validation rows: their labels and the
model's class probabilities there, which ``workbench train`` keeps with the run
(``validation_scores.npz``). The first report on a version fits the calibrators on them
and bootstraps the bands (``kept_by_run``, ``learn``); for a run that kept none (trained before runs
kept them, or past their size limit) it loads the model (LightGBM and scikit-learn: over
a second of imports), splits the validation rows out again and scores them. None of it
can change: the version, its run and the dataset version are immutable, and the
bootstrap is seeded. So what was learnt is kept in ``.workbench/cache/monitor/``, one
``.npz`` per version whose name carries its XXH3, and later reports read only that.

A regressor's reference is learnt from the validation rows scored by the model (DLE's
nannies learn from the model's own feature matrix) and kept with its two nanny models as
LightGBM text: a later report loads the model and LightGBM only when a window is new (or
newly labelled), since only then are the nannies asked.

Only the default reference (the run's validation rows) is kept: ``--reference`` names a
dataset whose latest version may move. A file whose bytes no longer match its name is
deleted and the reference learnt again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import StoreError
from workbench.core.monitor.estimate import Estimator
from workbench.core.monitor.logged import Outputs, first_max

if TYPE_CHECKING:
    import numpy as np

    from workbench.core.models.versions import ModelVersion
    from workbench.core.project import Project

FORMAT = 2  # of the kept file; another value learns again (2: one calibrator of two classes)


@dataclass
class Learnt:
    """A reference as monitoring uses it once learnt: its name, the estimator, and the
    model's answers there (prediction drift compares windows with them)."""

    label: str
    estimator: Estimator
    outputs: Outputs


def _prefix(project: Project, mv: ModelVersion) -> tuple[Path, str]:
    key = hashlib.sha256(mv.model.encode()).hexdigest()[:16]
    return project.store_dir / "cache" / "monitor", f"ref-{key}-{mv.version}-f{FORMAT}-"


def load(project: Project, mv: ModelVersion) -> Learnt | None:
    """The kept reference of ``mv``, if there is one whose bytes are whole."""
    import io

    import numpy as np
    import xxhash

    folder, prefix = _prefix(project, mv)
    for path in sorted(folder.glob(f"{prefix}*.npz")) if folder.is_dir() else []:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if xxhash.xxh3_128_hexdigest(data) != path.stem[len(prefix) :]:
            path.unlink(missing_ok=True)
            continue
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            meta = json.loads(bytes(arrays["meta"]).decode())
            k = int(meta["classes_kept"])
            calibrators = [(arrays[f"cal_x{c}"], arrays[f"cal_y{c}"]) for c in range(k)]
            est = Estimator(
                task=meta["task"],
                classes=meta["classes"],
                reference_rows=int(meta["rows"]),
                reference_metrics=meta["metrics"],
                std_errors=meta["std_errors"],
                calibrators=calibrators,
                categorical=list(meta.get("categorical", [])),
                nanny_texts={
                    k: bytes(arrays[f"nanny_{k}"]).decode() for k in meta.get("nannies", [])
                },
            )
            return Learnt(meta["label"], est, Outputs(arrays["pred"], arrays["scores"]))
    return None


@dataclass
class RunKept:
    """What a classifier's training run kept of its validation rows, read but not yet
    learnt from: enough to name the reference and read the log while it is learnt."""

    label: str
    task: str
    classes: list[Any]
    y: np.ndarray
    scores: np.ndarray


def keeps_scores(mv: ModelVersion) -> bool:
    """Whether ``mv``'s training run can have kept validation scores to learn from: a
    classifier's, its classes named in the signature."""
    return mv.signature.get("task") in ("binary", "multiclass") and bool(
        mv.signature.get("classes")
    )


def kept_by_run(project: Project, mv: ModelVersion) -> RunKept | None:
    """What ``mv``'s training run kept of the validation rows (their labels and the
    model's class probabilities there, core/runs/recording.py): no model to load, no
    dataset to split again. None when the run kept none (trained before it did, too
    many rows, or not a classifier)."""
    from workbench.core.monitor.logged import reference_label
    from workbench.core.runs.recording import VALIDATION_SCORES, read_validation_scores

    if not keeps_scores(mv):
        return None
    task, classes = mv.signature["task"], mv.signature["classes"]
    info = project.runs.get(mv.run_id)
    art = next((a for a in info.artifacts if a.path == VALIDATION_SCORES), None)
    dataset = info.params.get("dataset")
    if art is None or not isinstance(dataset, str):
        return None
    try:
        data = project.objects.read_bytes(art.hash, f"{info.ref}'s {VALIDATION_SCORES}")
    except StoreError:  # damaged, or left out of a bundle: the model scores them again
        return None
    y, scores = read_validation_scores(data)
    if scores.ndim != 2 or scores.shape[1] != len(classes) or len(y) != len(scores):
        return None
    return RunKept(reference_label(dataset, mv.run_id), task, list(classes), y, scores)


def learn_from_run(project: Project, mv: ModelVersion, label: str) -> Learnt | None:
    """``kept_by_run`` then ``learn``, as one task for another thread: None when the
    run kept nothing to learn from, or kept it under another reference than ``label``
    (the name the report went ahead with)."""
    kept = kept_by_run(project, mv)
    if kept is None or kept.label != label:
        return None
    return learn(project, mv, kept)


def learn(project: Project, mv: ModelVersion, kept: RunKept) -> Learnt:
    """Fit the estimator on what the run kept, and keep it for the next report."""
    outputs = Outputs(first_max(kept.scores), kept.scores)
    est = Estimator.fit(kept.task, kept.classes, kept.y, outputs.pred, kept.scores)
    learnt = Learnt(kept.label, est, outputs)
    save(project, mv, learnt)
    return learnt


def save(project: Project, mv: ModelVersion, learnt: Learnt) -> None:
    """Keep ``learnt`` for ``mv``'s next report. A cache: a failure to write loses
    nothing but time."""
    import io

    import numpy as np
    import xxhash

    est = learnt.estimator
    if json.loads(json.dumps(est.classes, default=repr)) != est.classes:
        return  # classes JSON would not give back as they are (numpy scalars, tuples)
    meta = {
        "label": learnt.label,
        "task": est.task,
        "classes": est.classes,
        "rows": est.reference_rows,
        "metrics": est.reference_metrics,
        "std_errors": est.std_errors,
        "classes_kept": len(est.calibrators),
    }
    texts = est.texts()
    if texts:  # a regressor's: DLE's nannies, as LightGBM model text
        meta["nannies"], meta["categorical"] = sorted(texts), est.categorical
    arrays = {
        "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        "pred": learnt.outputs.pred,
        "scores": learnt.outputs.scores,
    }
    for k, text in texts.items():
        arrays[f"nanny_{k}"] = np.frombuffer(text.encode(), dtype=np.uint8)
    for c, (xs, ys) in enumerate(est.calibrators):
        arrays[f"cal_x{c}"], arrays[f"cal_y{c}"] = xs, ys
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    data = buf.getvalue()
    folder, prefix = _prefix(project, mv)
    path = folder / f"{prefix}{xxhash.xxh3_128_hexdigest(data)}.npz"
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{path.name}.{uuid.uuid4().hex[:8]}"
        tmp.write_bytes(data)
        os.replace(tmp, path)
