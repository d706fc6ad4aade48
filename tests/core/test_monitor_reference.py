"""A classifier's monitoring reference comes from what its training run kept (the labels
and the model's class probabilities on its validation rows): the first report loads no
model, and estimates what a report that scores the validation rows again estimates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from tests.core.test_monitor import make, trained
from workbench.core.models.scoring import predict
from workbench.core.monitor import learnt, stored
from workbench.core.monitor.estimate import Estimator, isotonic
from workbench.core.monitor.logged import first_max, reference_for, reference_label
from workbench.core.monitor.report import MonitorReport, monitor
from workbench.core.monitor.windows import parse_window
from workbench.core.project import Project
from workbench.core.runs.recording import VALIDATION_SCORES, read_validation_scores

FRESH = """
import json, sys
from workbench.core.project import Project
from workbench.core.monitor.report import monitor
from workbench.core.monitor.windows import parse_window
r = monitor(Project(sys.argv[1]), 'm@1', parse_window('batch'), drift=sys.argv[2] == '1')
print(json.dumps({
    'loaded': [m for m in ('sklearn', 'lightgbm', 'scipy') if m in sys.modules],
    'reference': r.reference,
    'estimates': [{e.metric: (e.estimated, e.lower, e.upper) for e in w.estimates}
                  for w in r.windows],
}))
"""


def in_a_fresh_process(root: Path, drift: bool = False) -> dict[str, Any]:
    """m@1's report computed by a new Python process: what it loaded, its reference and
    each window's estimates (metric -> estimated, lower, upper)."""
    out = subprocess.run([sys.executable, "-c", FRESH, str(root), "1" if drift else "0"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    got: dict[str, Any] = json.loads(out.stdout)
    return got


def test_isotonic_steps_predict_what_scikit_learn_predicts() -> None:
    rng = np.random.default_rng(7)
    tiny = float(np.finfo(np.float64).eps)
    for trial in range(200):
        n = int(rng.integers(1, 2000))
        score = [
            rng.random(n),
            np.round(rng.random(n), 2),  # many ties
            1 - rng.integers(0, 20, n) * tiny / 2,  # distinct scores closer than 1e-15
            rng.integers(0, 30, n) * 1e-17,
        ][trial % 4]
        hit = rng.random(n) < np.clip(score, 0, 1) if trial % 7 else np.zeros(n, dtype=bool)
        theirs = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        theirs.fit(score, hit.astype(float))
        xs, ys = isotonic(score, hit)
        # scikit-learn (through SciPy) rounds a pooled block's running mean, so it can
        # keep a point between two blocks whose chances differ in the last bit only
        assert set(xs.tolist()) <= set(theirs.X_thresholds_.tolist())
        at = np.r_[rng.random(300) * 1.2 - 0.1, score]
        assert np.abs(np.interp(at, xs, ys) - theirs.predict(at)).max() <= 1e-12, trial


def test_two_classes_estimate_what_the_general_sums_estimate() -> None:
    """Of two classes a window is estimated in score order (quicker); the metrics are
    those of the general path over the calibrated chances, for scores with and without
    ties, a column that is not contiguous, a window the model calls all one class, and
    classes that are not the scores' argmax (a threshold of its own, or none); the
    window's scores are left as they were."""
    from workbench.core.monitor.estimate import _classifier_metrics

    rng = np.random.default_rng(5)
    p1 = rng.random(4000)
    y = (rng.random(4000) < p1).astype(np.int64)
    scores = np.column_stack([1 - p1, p1])
    est = Estimator.fit("binary", [0, 1], y, scores.argmax(axis=1), scores)
    windows = [rng.random(3000), np.round(rng.random(3000), 1), np.full(50, 0.9), np.zeros(20)]
    for w in windows:
        for layout in (np.ascontiguousarray, np.asfortranarray):
            ws = layout(np.column_stack([1 - w, w]))
            before = ws.copy()
            chosen = [ws.argmax(axis=1), (w > 0.7).astype(np.int64), rng.integers(0, 2, len(w))]
            for pred in chosen:
                got = est.estimate(pred, ws)
                want = _classifier_metrics(pred, ws, est.calibrated(ws))
                assert got.keys() == want.keys()
                assert all(abs(got[k] - want[k]) <= 1e-12 for k in want), (got, want)
            assert np.array_equal(ws, before)


def _pava(score: np.ndarray, hit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The textbook algorithm, one group at a time, exact in integers: the oracle."""
    xs, ones, rows = [], [], []
    for x in sorted(set(score.tolist())):
        at = score == x
        xs.append(x)
        ones.append(int(hit[at].sum()))
        rows.append(int(at.sum()))
    blocks: list[list[int]] = []  # [hits, rows, groups]
    for s, w in zip(ones, rows, strict=True):
        blocks.append([s, w, 1])
        while len(blocks) > 1 and blocks[-2][0] * blocks[-1][1] >= blocks[-1][0] * blocks[-2][1]:
            s2, w2, n2 = blocks.pop()
            blocks[-1][0] += s2
            blocks[-1][1] += w2
            blocks[-1][2] += n2
    means = np.repeat([b[0] / b[1] for b in blocks], [b[2] for b in blocks])
    keep = np.ones(len(means), dtype=bool)
    keep[1:-1] = (means[1:-1] != means[:-2]) | (means[1:-1] != means[2:])
    return np.array(xs)[keep], means[keep]


def test_isotonic_pools_as_the_sequential_algorithm_does_exactly() -> None:
    """The violators are pooled a pass at a time (all runs at once); the steps must be
    exactly the one-group-at-a-time algorithm's, also for a staircase that needs more
    passes than are taken before the sequential loop finishes the job."""
    rng = np.random.default_rng(11)
    for trial in range(300):
        n = int(rng.integers(1, 1500))
        score = rng.random(n) if trial % 2 else np.round(rng.random(n), 2)
        hit = rng.random(n) < score ** (1 + trial % 3)
        got, want = isotonic(score, hit), _pava(score, hit)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), trial
    # rising chances, then a large block of misses: each pass pools one step further
    # left (121 passes, where 64 are taken before the sequential loop)
    stairs = np.repeat(np.arange(1, 152) / 1000, [*([200] * 150), 50_000])
    hit = np.concatenate([np.arange(200) < i for i in range(1, 151)] + [np.zeros(50_000, bool)])
    got, want = isotonic(stairs, hit), _pava(stairs, hit)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def kept_scores(p: Project) -> tuple[np.ndarray, np.ndarray] | None:
    mv = p.models.resolve("m@1")
    info = p.runs.get(mv.run_id)
    art = next((a for a in info.artifacts if a.path == VALIDATION_SCORES), None)
    if art is None:
        return None
    return read_validation_scores(p.objects.read_bytes(art.hash))


def same_first_estimates(a: MonitorReport, b: MonitorReport) -> bool:
    """Whether two reports' first windows estimate alike (to 1e-9), bands included."""
    ours = [(e.estimated, e.lower, e.upper) for e in a.windows[0].estimates]
    theirs = [(e.estimated, e.lower, e.upper) for e in b.windows[0].estimates]
    return bool(np.allclose(np.array(ours, dtype=float), np.array(theirs, dtype=float),
                            atol=1e-9))  # fmt: skip


def asked_for_more(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], int, int | None]]:
    """What a report asks of the files it read (``ReadFiles.more``: columns, first row,
    rows or None for all), in order, recorded while it is answered as before."""
    from workbench.core.models.log_segments import ReadFiles

    asked: list[tuple[list[str], int, int | None]] = []
    real = ReadFiles.more

    def more(self: ReadFiles, columns: list[str], at: int, n: int | None = None) -> object:
        asked.append((columns, at, n))
        return real(self, columns, at, n)

    monkeypatch.setattr(ReadFiles, "more", more)
    return asked


def test_two_classes_are_told_apart_as_argmax_tells_them() -> None:
    """A logged row's class is the first largest of its scores: ties go to the first
    class, and a NaN score is what ``argmax`` makes of it, on the quick path for two
    classes as on the general one."""
    rng = np.random.default_rng(5)
    for k in (1, 2, 3):
        scores = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0, np.nan], size=(4000, k))
        assert np.array_equal(first_max(scores), scores.argmax(axis=1))
        clean = np.nan_to_num(scores)  # ties, no NaN: the comparison itself decides
        assert np.array_equal(first_max(clean), clean.argmax(axis=1))
    half = np.array([[0.5, 0.5], [0.4, 0.6], [0.6, 0.4], [np.nan, 0.2], [0.2, np.nan]])
    assert first_max(half).tolist() == [0, 1, 0, 0, 1]
    first_nan = np.array([[np.nan, 0.2], [0.3, 0.3], [0.1, 0.9]])  # the comparison's path
    assert first_max(first_nan).tolist() == first_nan.argmax(axis=1).tolist() == [0, 0, 1]


def test_a_binary_model_is_calibrated_on_class_1_alone() -> None:
    """Of two classes, class 1's calibration decides (class 0 is its complement), so it
    alone is fitted: the estimates are those of both fitted, as before."""
    rng = np.random.default_rng(3)
    p1 = rng.random(5000)
    y = (rng.random(5000) < p1**1.5).astype(np.int64)
    scores = np.column_stack([1 - p1, p1])
    est = Estimator.fit("binary", [0, 1], y, (p1 > 0.5).astype(np.int64), scores)
    assert len(est.calibrators) == 1
    xs, ys = isotonic(p1, y == 1)
    assert np.array_equal(est.calibrators[0][0], xs) and np.array_equal(est.calibrators[0][1], ys)
    window = rng.random((800, 1))
    w = np.column_stack([1 - window[:, 0], window[:, 0]])
    cal = est.calibrated(w)
    assert np.allclose(cal[:, 1], np.interp(w[:, 1], xs, ys)) and np.allclose(cal.sum(1), 1)
    older = Estimator("binary", [0, 1], est.reference_rows, est.reference_metrics)
    older.calibrators = [isotonic(1 - p1, y == 0), (xs, ys)]
    assert np.array_equal(older.calibrated(w), cal)
    guess = (w[:, 1] > 0.5).astype(np.int64)
    # the older form goes the general way, the newer in score order: the same sums
    then, now = older.estimate(guess, w), est.estimate(guess, w)
    assert then.keys() == now.keys() and all(abs(then[k] - now[k]) <= 1e-12 for k in then)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_a_first_report_learns_from_the_run_without_the_model(
    tmp_path: Path, task: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = trained(tmp_path, task, rows=3000)
    for k in range(2):
        f = tmp_path / f"b{k}.parquet"
        make(task, 600, k, 10 + k).write_parquet(f)
        predict(p, "m@1", str(f), tmp_path / f"o{k}.parquet")
    mv = p.models.resolve("m@1")
    ref = reference_for(p, mv, p.models.load(mv), None, None)
    kept = kept_scores(p)
    assert kept is not None
    y, scores = kept
    assert y.tolist() == ref.y.tolist()  # the same rows, in the same order
    info = p.runs.get(mv.run_id)
    art = next(a for a in info.artifacts if a.path == VALIDATION_SCORES)
    # LightGBM's binary probabilities are (1 - p, p): only p is kept, 9 bytes a row
    per_row = 9 if task == "binary" else 1 + 8 * scores.shape[1]
    assert art.size < per_row * len(y) + 1_000
    assert np.abs(scores - ref.outputs.scores).max() <= 1e-9

    first = in_a_fresh_process(p.root)
    assert first["loaded"] == []
    assert list((p.store_dir / "cache" / "monitor").glob("ref-*.npz"))  # kept for later

    # the same report learnt the old way: the model loaded, the validation rows scored
    for f in (p.store_dir / "cache" / "monitor").glob("ref-*.npz"):
        f.unlink()
    monkeypatch.setattr(learnt, "kept_by_run", lambda project, mv: None)
    scored = monitor(p, "m@1", parse_window("batch"), drift=False)
    assert scored.reference == first["reference"] == ref.label
    again = [[(e.estimated, e.lower, e.upper) for e in w.estimates] for w in scored.windows]
    assert len(again) == len(first["estimates"]) == 2
    for ours, theirs in zip(first["estimates"], again, strict=True):
        assert np.allclose(np.array(list(ours.values()), dtype=float),
                           np.array(theirs, dtype=float), rtol=0, atol=1e-9)  # fmt: skip


def test_kept_rows_under_another_name_are_not_learnt_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first report names its reference before the run's kept rows are read (they are
    learnt from on the other core); rows kept under another name are not learnt from:
    the model scores the validation rows, as when the run kept none."""
    p = trained(tmp_path, "binary", rows=2000)
    f = tmp_path / "b.parquet"
    make("binary", 600, 1, 5).write_parquet(f)
    predict(p, "m@1", str(f), tmp_path / "o.parquet")
    mv = p.models.resolve("m@1")
    real = learnt.kept_by_run

    def renamed(project: Project, mv: Any) -> learnt.RunKept | None:
        kept = real(project, mv)
        assert kept is not None
        kept.label = "validation rows of other@1 (run:00000000)"
        return kept

    monkeypatch.setattr(learnt, "kept_by_run", renamed)
    got = monitor(p, "m@1", parse_window("batch"), drift=False)
    assert got.reference == reference_label(mv.dataset_ref or "", mv.run_id)
    kept = learnt.load(p, mv)
    assert kept is not None and kept.label == got.reference  # learnt from the model's scores
    monkeypatch.setattr(learnt, "kept_by_run", real)
    for cached in (p.store_dir / "cache" / "monitor").glob("ref-*.npz"):
        cached.unlink()
    want = monitor(p, "m@1", parse_window("batch"), drift=False)  # from the kept rows
    assert same_first_estimates(got, want)


def test_a_regressor_keeps_no_validation_scores(tmp_path: Path) -> None:
    p = trained(tmp_path, "regression", rows=1000)
    assert kept_scores(p) is None


def test_damaged_validation_scores_cost_time_not_the_report(tmp_path: Path) -> None:
    p = trained(tmp_path, "binary", rows=2000)
    f = tmp_path / "b.parquet"
    make("binary", 600, 1, 5).write_parquet(f)
    predict(p, "m@1", str(f), tmp_path / "o.parquet")
    first = monitor(p, "m@1", parse_window("batch"), drift=False)
    mv = p.models.resolve("m@1")
    art = next(a for a in p.runs.get(mv.run_id).artifacts if a.path == VALIDATION_SCORES)
    blob = p.objects.path(art.hash)
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes()[:-10])  # damaged: it no longer matches its hash
    for kept in (p.store_dir / "cache" / "monitor").glob("ref-*.npz"):
        kept.unlink()
    again = monitor(p, "m@1", parse_window("batch"), drift=False)  # the model scores again
    assert same_first_estimates(first, again)
    assert again.reference == first.reference


def test_a_regressor_keeps_its_nannies_and_needs_its_model_only_for_new_windows(
    tmp_path: Path,
) -> None:
    p = trained(tmp_path, "regression", rows=3000)

    def score(k: int) -> None:
        f = tmp_path / f"b{k}.parquet"
        make("regression", 500, k / 2, 20 + k).write_parquet(f)
        predict(p, "m@1", str(f), tmp_path / f"o{k}.parquet")

    def seen(r: MonitorReport) -> list[list[tuple[float | None, ...]]]:
        return [[(e.estimated, e.lower, e.upper) for e in w.estimates] for w in r.windows]

    score(0)
    score(1)
    first = monitor(p, "m@1", parse_window("batch"), drift=False)  # learns and keeps
    stored.save(p, first)  # as `workbench monitor` does: the next report reuses its windows
    again = in_a_fresh_process(p.root)
    assert again["loaded"] == []  # nothing new: neither the model nor LightGBM
    assert [w["mae"][0] for w in again["estimates"]] == [
        w.metric("mae").estimated  # type: ignore[union-attr]
        for w in first.windows
    ]

    score(2)  # a new window: estimated by the kept nannies, read back from their text
    kept = monitor(p, "m@1", parse_window("batch"), drift=False)
    assert seen(kept)[:2] == seen(first)
    stored.save(p, kept)
    for f in (p.store_dir / "cache" / "monitor").glob("ref-*.npz"):
        f.unlink()
    relearnt = monitor(p, "m@1", parse_window("batch"), drift=False)
    assert len(seen(kept)) == len(seen(relearnt)) == 3
    for ours, theirs in zip(seen(kept), seen(relearnt), strict=True):
        assert np.allclose(np.array(ours, dtype=float), np.array(theirs, dtype=float),
                           rtol=0, atol=1e-9)  # fmt: skip


def test_a_regressor_reads_inputs_only_for_the_windows_it_computes_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With its nannies kept, a regressor's repeated report reads the logged answers,
    then the inputs from the first window it estimates or tests anew on: the same drift
    and estimates as a report that reads every input and learns everything afresh."""
    from workbench.core.drift.columns import Options

    p = trained(tmp_path, "regression", rows=3000)
    for k in range(2):
        f = tmp_path / f"b{k}.parquet"
        make("regression", 500, k / 2, 30 + k).write_parquet(f)
        predict(p, "m@1", str(f), tmp_path / f"o{k}.parquet")
    stored.save(p, monitor(p, "m@1", parse_window("batch")))  # learns, keeps, tests drift
    f = tmp_path / "b2.parquet"
    make("regression", 500, 2.0, 40).write_parquet(f)  # a new window, moved
    predict(p, "m@1", str(f), tmp_path / "o2.parquet")
    asked = asked_for_more(monkeypatch)
    later = monitor(p, "m@1", parse_window("batch"))
    assert [at for _, at, _ in asked] == [1000]  # the new window's inputs only
    assert [w.drift_stored for w in later.windows] == [True, True, False]
    for kept in (p.store_dir / "cache" / "monitor").glob("ref-*.npz"):
        kept.unlink()
    afresh = monitor(p, "m@1", parse_window("batch"), options=Options())

    def drift_of(r: MonitorReport) -> list[object]:
        w = r.windows[2]
        assert w.drift is not None
        return [(c.column, c.method, c.statistic, c.p_value, c.drifted) for c in w.drift.columns]

    assert drift_of(later) == drift_of(afresh)
    for ours, theirs in zip(later.windows, afresh.windows, strict=True):
        a = [(e.estimated, e.lower, e.upper) for e in ours.estimates]
        b = [(e.estimated, e.lower, e.upper) for e in theirs.estimates]
        assert np.allclose(np.array(a, dtype=float), np.array(b, dtype=float), atol=1e-9)
