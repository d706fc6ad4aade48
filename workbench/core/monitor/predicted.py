"""What a model predicted in a window, in a few numbers a person can compare by eye with
what it predicted on its reference: each class's share of the predictions (and a binary
model's mean positive score), or a regressor's quantiles. Prediction drift tests the
same movement; this says which way it went."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def summary(
    task: str, classes: list[Any] | None, pred: np.ndarray, scores: np.ndarray
) -> dict[str, Any] | None:
    """``pred`` holds class positions for a classifier (values for a regressor), as
    ``outputs_of`` gives them; None for an empty window."""
    import numpy as np

    if not len(pred):
        return None
    if task == "regression":
        values = pred.astype(float)
        p10, p50, p90 = np.quantile(values, [0.1, 0.5, 0.9])
        return {"mean": float(values.mean()), "p10": float(p10), "p50": float(p50),
                "p90": float(p90)}  # fmt: skip
    names = [str(c) for c in classes or []]
    counts = np.bincount(pred.astype(int), minlength=len(names))[: len(names)]
    shares = {n: float(k / len(pred)) for n, k in zip(names, counts, strict=True)}
    out: dict[str, Any] = {"shares": shares}
    if task == "binary":
        out["mean_score"] = float(scores[:, 1].mean())
    return out


def text(found: dict[str, Any] | None) -> str:
    """One short line: ``1 23.4%`` (a binary model's positive class), the three most
    predicted classes, or ``p50 12.3 (p10 4.1, p90 20.7)``."""
    if not found:
        return "-"
    if "p50" in found:
        return f"p50 {found['p50']:.4g} (p10 {found['p10']:.4g}, p90 {found['p90']:.4g})"
    shares: dict[str, float] = found["shares"]
    if "mean_score" in found and len(shares) == 2:
        positive = list(shares)[1]
        return f"{positive}: {shares[positive]:.1%}"
    top = sorted(shares.items(), key=lambda kv: -kv[1])[:3]
    return " ".join(f"{name} {share:.0%}" for name, share in top)
