"""Performance estimated before labels arrive: CBPE for classifiers, DLE for regressors.

Both learn from a labelled *reference* the model did not train on (its validation rows)
and assume the relation between inputs and target stays as it was there (no concept
drift): only the inputs may move (covariate shift). docs/monitoring.md says more.

- **CBPE** (confidence-based performance estimation): the model's scores are calibrated
  on the reference (isotonic regression, one class against the rest), so that a
  calibrated probability is the chance the row belongs to the class. Summed over a window,
  they give the expected confusion matrix, hence expected accuracy, precision, recall and
  F1; the expected ROC curve (rows ranked by score, expected true and false positives
  accumulated) gives AUC. Multiclass metrics are macro averages, one class against the
  rest.
- **DLE** (direct loss estimation): a LightGBM "nanny" model learns the absolute error
  (and a second one the squared error) from the model's inputs and its prediction on the
  reference; its mean over a window estimates MAE (and RMSE).

Each estimate has a band: three standard errors of the difference between what the window
realises and what the reference taught, the per-row spread of the metric measured on the
reference by bootstrap and scaled by sqrt(1/window rows + 1/reference rows). A realised
metric outside the band is more than sampling noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.core.errors import DataError

if TYPE_CHECKING:
    import numpy as np

CLASSIFIER_METRICS = ("accuracy", "precision", "recall", "f1", "auc")
MAIN_METRIC = {"binary": "auc", "multiclass": "accuracy", "regression": "mae"}  # shown first
REGRESSOR_METRICS = ("mae", "rmse")
BAND_SIGMAS = 3.0
# Changes with anything that changes an estimate for the same rows and reference: a
# window an earlier report estimated under the same method is not estimated again.
METHOD = "cbpe-dle/1"
BOOTSTRAPS = 40
BOOTSTRAP_ROWS = 5_000  # per resample; the standard error is scaled from this size
POOL_PASSES = 64  # isotonic: vectorised passes before the sequential loop takes the rest
MIN_REFERENCE_ROWS = 50
# An AUC ranks rows against each other: of one row there is none (expected over its
# chance of each class, it came out 0.5 for any model, shown as "0.500 [0.000, 1.000]"
# for each one-row request a server logged)
MIN_AUC_ROWS = 2


@dataclass
class Estimate:
    """One metric of one window: estimated (with its band) and, with labels, realised."""

    metric: str
    estimated: float | None
    lower: float | None
    upper: float | None
    realised: float | None = None
    labelled: int = 0

    @property
    def within(self) -> bool | None:
        """Whether the realised value fell in the band (None until labels arrive)."""
        if self.realised is None or self.lower is None or self.upper is None:
            return None
        return self.lower <= self.realised <= self.upper

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimated": self.estimated,
            "lower": self.lower,
            "upper": self.upper,
            "realised": self.realised,
            "labelled": self.labelled,
        }


def realised(task: str, y: np.ndarray, pred: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """The metrics as labels make them. ``y`` and ``pred`` are class positions for a
    classifier (``scores`` its raw class scores, rows × classes) and values for a
    regressor."""
    import numpy as np

    if task == "regression":
        err = y - pred
        return {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err**2)))}
    one_hot = (y[:, None] == np.arange(scores.shape[1])[None, :]).astype(float)
    return _classifier_metrics(pred, scores, one_hot)


def _classifier_metrics(
    pred: np.ndarray, scores: np.ndarray, share: np.ndarray
) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and AUC from each row's share of each class:
    labels one-hot give the realised metrics, calibrated probabilities CBPE's expected
    ones (the same sums, over certainties or chances). Multiclass: macro averages."""
    import numpy as np

    n, k = share.shape
    out = {"accuracy": float(share[np.arange(n), pred].sum() / n)}
    rates: list[tuple[float, float, float]] = []
    aucs: list[float | None] = []
    for c in [1] if k == 2 else list(range(k)):
        p, chosen = share[:, c], pred == c
        tp, fp = float(p[chosen].sum()), float((1 - p[chosen]).sum())
        fn = float(p[~chosen].sum())
        rates.append(_rates(tp, fp, fn))
        aucs.append(_auc(scores[:, c], p))
    prec, rec, f1s = (list(r) for r in zip(*rates, strict=True))
    out.update(precision=_mean(prec), recall=_mean(rec), f1=_mean(f1s))
    if not any(a is None for a in aucs):
        out["auc"] = _mean([a for a in aucs if a is not None])
    return out


def _binary_metrics(
    pred: np.ndarray, score: np.ndarray, xs: np.ndarray, ys: np.ndarray
) -> dict[str, float]:
    """``_classifier_metrics`` of two classes over the calibrated chances of class 1
    (equal to ~1e-15: the sums run in score order). Quicker, because a row's chance is
    a non-decreasing function of its score: calibrating scores in ascending order finds
    each step where the last one ended (unordered, a binary search apiece: 3.7 ms for
    100k rows), and AUC's order is the scores sorted, where the general path sorts row
    indices and gathers both; a model that chose class 1 above some score (as from
    probabilities) has its chosen rows at the top of that same sort. A 100k-row window:
    10.4 -> 5.2 ms."""
    import numpy as np

    s = np.asarray(score, dtype=np.float64)
    chosen = pred == 1
    ascending = np.sort(s)
    chance_up = np.interp(ascending, xs, ys)
    others = len(s) - int(np.count_nonzero(chosen))
    if others in (0, len(s)) or s.max(where=~chosen, initial=-np.inf) < s.min(
        where=chosen, initial=np.inf
    ):
        # the model chose class 1 above a score (as it does from probabilities): its
        # rows are the top of the one sort AUC needs anyway (a NaN score never splits so)
        rest, picked = chance_up[:others], chance_up[others:]
    else:
        picked = np.interp(np.sort(s[chosen]), xs, ys)
        rest = np.interp(np.sort(s[~chosen]), xs, ys)
    tp, fn = float(picked.sum()), float(rest.sum())
    fp, tn = len(picked) - tp, len(rest) - fn
    n = len(s)
    precision, recall, f1 = _rates(tp, fp, fn)
    out = {
        "accuracy": (tp + tn) / n if n else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }
    ordered, chance = ascending[::-1], chance_up[::-1]
    total_p = float(chance.sum())
    if 0 < total_p < n and n >= MIN_AUC_ROWS:
        out["auc"] = _auc_ordered(ordered, chance, total_p)
    return out


def _rates(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    """Precision, recall and F1 of (expected) true positives, false positives and false
    negatives; 0 where a denominator is."""
    return (
        tp / (tp + fp) if tp + fp else 0.0,
        tp / (tp + fn) if tp + fn else 0.0,
        2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
    )


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values))


def _auc(score: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve where ``positive`` is each row's (expected) share of being
    positive: 0/1 labels give the usual AUC, calibrated probabilities CBPE's expected one.
    Rows of equal score form one step (as scikit-learn's roc_auc_score)."""
    import numpy as np

    total_p = float(positive.sum())
    total_n = float(len(positive) - total_p)
    if total_p <= 0 or total_n <= 0 or len(positive) < MIN_AUC_ROWS:
        return None
    # Order within a run of equal scores does not matter (only each run's last row is
    # read), so the quicker unstable sort will do; descending by reversing ascending.
    order = np.argsort(score)[::-1]
    return _auc_ordered(score[order], positive[order], total_p)


def _auc_ordered(s: np.ndarray, p: np.ndarray, total_p: float) -> float:
    """``_auc`` of scores ``s`` in descending order, ``p`` in the same order."""
    import numpy as np

    total_n = float(len(p) - total_p)
    # the expected false positives of the first i rows are i less their true positives
    # (one cumulative sum, not two: 0.85 ms of a 100k-row window)
    tp = np.cumsum(p)
    fp = np.arange(1, len(p) + 1, dtype=np.float64) - tp
    step = np.diff(s) != 0
    if not step.all():  # the last row of each distinct score
        last = np.append(np.flatnonzero(step), len(s) - 1)
        tp, fp = tp[last], fp[last]
    # the curve from (0, 0), written in place (np.r_ took 0.7 ms of a 100k-row window)
    tpr, fpr = np.zeros(len(tp) + 1), np.zeros(len(fp) + 1)
    np.divide(tp, total_p, out=tpr[1:])
    np.divide(fp, total_n, out=fpr[1:])
    return float(np.trapezoid(tpr, fpr))


@dataclass
class Estimator:
    """What a reference taught: calibrators or nanny models, and each metric's standard
    error at ``BOOTSTRAP_ROWS`` rows."""

    task: str
    classes: list[Any] | None
    reference_rows: int
    reference_metrics: dict[str, float]
    std_errors: dict[str, float] = field(default_factory=dict)
    # per class (of two classes, class 1's only), the isotonic fit's steps (scores,
    # chances): linear in between, flat beyond, as scikit-learn predicts with
    # out_of_bounds="clip"; kept as arrays so that a stored reference
    # (core/monitor/learnt.py) estimates with NumPy alone
    calibrators: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    nannies: dict[str, Any] = field(default_factory=dict)
    categorical: list[int] = field(default_factory=list)
    # DLE's nannies as LightGBM model text, as a kept reference holds them: turned into
    # boosters (importing LightGBM) only when a window is estimated anew
    nanny_texts: dict[str, str] = field(default_factory=dict)

    def boosters(self) -> dict[str, Any]:
        """The nanny models, built from their text on first use."""
        if not self.nannies and self.nanny_texts:
            import lightgbm as lgb

            self.nannies = {k: lgb.Booster(model_str=t) for k, t in self.nanny_texts.items()}
        return self.nannies

    def texts(self) -> dict[str, str]:
        """The nanny models as text, to keep (what ``boosters`` builds them back from)."""
        return self.nanny_texts or {k: b.model_to_string() for k, b in self.nannies.items()}

    @property
    def metrics(self) -> tuple[str, ...]:
        return REGRESSOR_METRICS if self.task == "regression" else CLASSIFIER_METRICS

    @classmethod
    def fit(
        cls,
        task: str,
        classes: list[Any] | None,
        y: np.ndarray,
        pred: np.ndarray,
        scores: np.ndarray,
        x: np.ndarray | None = None,
        categorical: list[int] | None = None,
        seed: int = 0,
    ) -> Estimator:
        """Learn from the reference: ``y`` (class positions or values), the model's ``pred``
        and ``scores`` there, and for a regressor its feature matrix ``x``."""
        import numpy as np

        if len(y) < MIN_REFERENCE_ROWS:
            raise DataError(
                f"the reference has {len(y)} labelled rows; estimating performance needs "
                f"at least {MIN_REFERENCE_ROWS}"
            )
        est = cls(task, classes, len(y), realised(task, y, pred, scores))
        rng = np.random.default_rng(seed)
        m = min(len(y), BOOTSTRAP_ROWS)
        samples: dict[str, list[float]] = {k: [] for k in est.reference_metrics}
        for _ in range(BOOTSTRAPS):
            idx = rng.integers(0, len(y), m)
            got = realised(task, y[idx], pred[idx], scores[idx])
            for k, v in got.items():
                samples.setdefault(k, []).append(v)
        est.std_errors = {k: float(np.std(v, ddof=1)) * np.sqrt(m) for k, v in samples.items()}
        if task == "regression":
            est.categorical = list(categorical or [])
            assert x is not None
            z = _with_prediction(x, pred)
            err = y - pred
            est.nannies = {
                "mae": _nanny(z, np.abs(err), est.categorical, seed),
                "rmse": _nanny(z, err**2, est.categorical, seed),
            }
        else:
            # of two classes, class 1's alone: class 0 is its complement (calibrated)
            fitted = [1] if scores.shape[1] == 2 else range(scores.shape[1])
            est.calibrators = [isotonic(scores[:, c], y == c) for c in fitted]
        return est

    def calibrated(self, scores: np.ndarray) -> np.ndarray:
        """Each row's chance of each class, as the reference says the scores mean."""
        import numpy as np

        cal = np.empty((len(scores), scores.shape[1]))
        if scores.shape[1] == 2:  # class 1's calibrator decides; class 0 is its complement
            xs, ys = self.calibrators[-1]
            cal[:, 1] = np.interp(scores[:, 1], xs, ys)
            cal[:, 0] = 1.0 - cal[:, 1]
        else:
            for c, (xs, ys) in enumerate(self.calibrators):
                cal[:, c] = np.interp(scores[:, c], xs, ys)
            total = cal.sum(axis=1, keepdims=True)
            cal = np.divide(cal, total, out=np.full_like(cal, 1 / cal.shape[1]), where=total > 0)
        return cal

    def estimate(
        self, pred: np.ndarray, scores: np.ndarray, x: np.ndarray | None = None
    ) -> dict[str, float]:
        """The expected metrics of a window with no labels."""
        import numpy as np

        if self.task == "regression":
            assert x is not None
            z = _with_prediction(x, pred)
            nannies = self.boosters()
            mae = float(np.mean(np.clip(nannies["mae"].predict(z), 0, None)))
            mse = float(np.mean(np.clip(nannies["rmse"].predict(z), 0, None)))
            return {"mae": mae, "rmse": float(np.sqrt(mse))}
        if scores.shape[1] == 2 and len(self.calibrators) == 1:
            return _binary_metrics(pred, scores[:, 1], *self.calibrators[0])
        return _classifier_metrics(pred, scores, self.calibrated(scores))

    def window(
        self,
        pred: np.ndarray,
        scores: np.ndarray,
        x: np.ndarray | None,
        labelled: np.ndarray | None,
        y: np.ndarray | None,
    ) -> list[Estimate]:
        """Every metric of one window: estimated with its band, realised on the rows
        that have labels (``labelled`` is their mask, ``y`` their labels)."""
        import numpy as np

        n = len(pred)
        got = self.estimate(pred, scores, x) if n else {}
        real: dict[str, float] = {}
        count = int(labelled.sum()) if labelled is not None else 0
        if count and y is not None and labelled is not None:
            real = realised(self.task, y, pred[labelled], scores[labelled])
        out = []
        for metric in self.metrics:
            value = got.get(metric)
            # the window's sampling error and the reference's: an estimate learnt from a
            # small reference carries that reference's luck into every window
            half = (
                BAND_SIGMAS * self.std_errors[metric] * np.sqrt(1 / n + 1 / self.reference_rows)
                if value is not None and metric in self.std_errors and n
                else None
            )
            lower = upper = None
            if value is not None and half is not None:
                lower, upper = value - half, value + half
                if self.task != "regression":
                    lower, upper = max(0.0, lower), min(1.0, upper)
                else:
                    lower = max(0.0, lower)
            out.append(Estimate(metric, value, lower, upper, real.get(metric), count))
        return out


def isotonic(score: np.ndarray, hit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The increasing step function that best fits 0/1 outcomes ``hit`` on ``score``, as
    (scores, chances) points to interpolate between: what scikit-learn's
    ``IsotonicRegression(y_min=0, y_max=1)`` keeps as ``X_thresholds_`` and
    ``y_thresholds_`` (NannyML's CBPE calibrates with it).

    Our own because importing scikit-learn (and SciPy under it) takes 0.85 s, three times
    everything else a monitor report does once its reference is stored. With 0/1 outcomes
    each pooled block is a count of hits over a count of rows, so its chance is computed
    exactly (one division of two integers), where a running weighted mean rounds."""
    import numpy as np

    order = np.lexsort((hit, score))
    xs, hs = score[order].astype(np.float64), hit[order].astype(np.int64)
    uniq, start, count = np.unique(xs, return_index=True, return_counts=True)
    ones = np.add.reduceat(hs, start) if len(xs) else hs
    # Scores closer than float64's resolution to a group's first count as that score
    # (scikit-learn's _make_unique), which matters only next to 0 and 1.
    eps = float(np.finfo(np.float64).resolution)
    gx, gs, gw = uniq, ones.astype(np.int64), count.astype(np.int64)
    if len(uniq) > 1 and bool((np.diff(uniq) < eps).any()):
        xl: list[float] = []
        sl: list[int] = []
        wl: list[int] = []
        for x, s, w in zip(uniq.tolist(), gs.tolist(), gw.tolist(), strict=True):
            if xl and x - xl[-1] < eps:
                sl[-1] += s
                wl[-1] += w
            else:
                xl.append(x)
                sl.append(s)
                wl.append(w)
        gx, gs, gw = np.array(xl), np.array(sl, dtype=np.int64), np.array(wl, dtype=np.int64)
    sums, weights, spans = _pool_violators(gs, gw)
    means = np.repeat(np.array(sums, dtype=np.float64) / np.array(weights, dtype=np.float64), spans)
    x_out = gx.astype(np.float64, copy=False)
    # only the points where the step function bends are kept
    keep = np.ones(len(means), dtype=bool)
    keep[1:-1] = (means[1:-1] != means[:-2]) | (means[1:-1] != means[2:])
    return x_out[keep], means[keep]


def _pool_violators(
    sums: np.ndarray, weights: np.ndarray
) -> tuple[list[int], list[int], list[int]]:
    """Pool adjacent violators: a block whose mean is not below the next one's merges
    with it (compared as integers, so exactly). Returns each block's hits, rows and
    groups, means strictly increasing.

    Two adjacent violators always share a block of the solution, so a pass pools every
    run of them at once in a few array operations: validation scores with 0/1 outcomes
    need a dozen passes where a Python loop over 40k groups took 50 ms of a first
    report. The blocks left then go through the sequential loop, which also bounds a
    crafted staircase that would otherwise take a pass per step."""
    import numpy as np

    groups = len(sums)
    starts = np.arange(groups)
    for _ in range(POOL_PASSES):
        if len(sums) < 2:
            break
        violates = sums[:-1] * weights[1:] >= sums[1:] * weights[:-1]
        if not violates.any():
            break
        at = np.flatnonzero(np.r_[True, ~violates])
        sums, weights, starts = np.add.reduceat(sums, at), np.add.reduceat(weights, at), starts[at]
    out_s: list[int] = []
    out_w: list[int] = []
    out_n: list[int] = []
    spans = np.diff(np.r_[starts, groups]).tolist()
    for s, w, n in zip(sums.tolist(), weights.tolist(), spans, strict=True):
        out_s.append(s)
        out_w.append(w)
        out_n.append(n)
        while len(out_s) > 1 and out_s[-2] * out_w[-1] >= out_s[-1] * out_w[-2]:
            s2, w2, n2 = out_s.pop(), out_w.pop(), out_n.pop()
            out_s[-1] += s2
            out_w[-1] += w2
            out_n[-1] += n2
    return out_s, out_w, out_n


def _with_prediction(x: np.ndarray, pred: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.column_stack([x, pred.astype(float)])


def _nanny(z: np.ndarray, target: np.ndarray, categorical: list[int], seed: int) -> Any:
    """A small LightGBM model of the error: DLE's estimator."""
    import lightgbm as lgb

    model = lgb.LGBMRegressor(
        n_estimators=100, learning_rate=0.05, num_leaves=15, min_child_samples=20,
        random_state=seed, verbose=-1, n_jobs=1,
    )  # fmt: skip
    model.fit(z, target, categorical_feature=categorical or "auto")
    return model.booster_
