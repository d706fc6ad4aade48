"""Monitoring: estimates that hold where their assumption holds (covariate shift only) and
fail where it does not (concept shift), realised metrics equal to scikit-learn's, reports
stored and audited, alerts that act once per window and exit 3 under --check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from tests.conftest import from_template, run_cli
from workbench.core.models.labels import add as add_labels
from workbench.core.models.scoring import predict
from workbench.core.monitor import stored
from workbench.core.monitor.estimate import _auc, realised
from workbench.core.monitor.report import MonitorReport, monitor
from workbench.core.monitor.windows import parse_window
from workbench.core.project import Project

SHIFTS = np.linspace(-1, 1, 10)  # the mean of x1 in each later batch: covariate shift


def make(task: str, n: int, shift: float, seed: int, concept: bool = False) -> pl.DataFrame:
    """Rows whose target depends on x1, x2 and c the same way in every batch (unless
    ``concept``: then the relation is reversed)."""
    r = np.random.default_rng(seed)
    x1, x2 = r.normal(shift, 1, n), r.normal(0, 1, n)
    c = r.choice(["a", "b", "c"], n)
    z = (-1.5 if concept else 1.5) * x1 - x2 + np.where(c == "a", 0.5, 0)
    if task == "binary":
        y: np.ndarray = (r.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    elif task == "multiclass":
        y = np.digitize(z + r.logistic(0, 1, n), [-1, 1])
    else:
        y = 3 * z + np.abs(x2) * r.normal(0, 2, n) + 10
    return pl.DataFrame({"x1": x1, "x2": x2, "c": c, "y": y})


def batches(p: Project, task: str, concept: bool = False, rows: int = 3000) -> list[str]:
    """Ten later batches scored by m@1 (logged by predict), then labelled: their ids."""
    ids = []
    for k, shift in enumerate(SHIFTS):
        f = p.root / f"batch{k}.parquet"
        make(task, rows, shift, 100 + k, concept).write_parquet(f)
        res = predict(p, "m@1", str(f), p.root / f"scored{k}.parquet")
        add_labels(p.catalog, p.datasets, str(f), "m", "y", request=res.id)
        ids.append(res.id)
    return ids


def trained(tmp_path: Path, task: str, rows: int = 20_000) -> Project:
    p = Project.init(tmp_path / task)[0]
    make(task, rows, 0, 0).write_parquet(tmp_path / "train.parquet")
    p.datasets.add(tmp_path / "train.parquet", "syn")
    run = p.train("syn@1", "y", model="lightgbm", params={"n_estimators": 100})
    p.models.register(run, "m")
    return p


def within(report: MonitorReport, metric: str) -> int:
    return sum(bool(w.metric(metric).within) for w in report.windows)  # type: ignore[union-attr]


@pytest.mark.slow
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_estimates_hold_the_realised_metric_under_covariate_shift(
    tmp_path: Path, task: str
) -> None:
    p = trained(tmp_path, task)
    batches(p, task)
    report = monitor(p, "m@1", parse_window("batch"))
    assert [w.rows for w in report.windows] == [3000] * 10
    assert all(w.labelled == 3000 for w in report.windows)
    metrics = ("mae", "rmse") if task == "regression" else ("accuracy", "precision", "recall",
                                                            "f1", "auc")  # fmt: skip
    for metric in metrics:
        assert within(report, metric) >= 8, metric
    if task == "binary":
        # the estimate follows the shift, it is not the reference's figure repeated
        recall = [w.metric("recall").estimated for w in report.windows]  # type: ignore[union-attr]
        assert recall[-1] - recall[0] > 0.2  # type: ignore[operator]


@pytest.mark.slow
def test_concept_shift_falls_outside_the_band(tmp_path: Path) -> None:
    """The estimate assumes the target depends on the inputs as in the reference; when
    that relation turns, the realised metric leaves the band: the band is not so wide
    that everything fits."""
    p = trained(tmp_path, "binary")
    batches(p, "binary", concept=True, rows=1000)
    report = monitor(p, "m@1", parse_window("batch"))
    assert within(report, "auc") == 0
    for w in report.windows:
        e = w.metric("auc")
        assert e is not None and e.realised is not None and e.lower is not None
        assert e.realised < e.lower


def test_realised_metrics_are_scikit_learns() -> None:
    r = np.random.default_rng(3)
    for k in (2, 3):
        y = r.integers(0, k, 500)
        scores = r.dirichlet(np.ones(k), 500).round(1)  # rounded: ties, as real scores have
        pred = scores.argmax(axis=1)
        got = realised("binary" if k == 2 else "multiclass", y, pred, scores)
        avg = "binary" if k == 2 else "macro"
        assert got["accuracy"] == pytest.approx(accuracy_score(y, pred))
        assert got["precision"] == pytest.approx(precision_score(y, pred, average=avg))
        assert got["recall"] == pytest.approx(recall_score(y, pred, average=avg))
        assert got["f1"] == pytest.approx(f1_score(y, pred, average=avg))
        want = (
            roc_auc_score(y, scores[:, 1]) if k == 2
            # scikit-learn's multi_class="ovr", macro: one class against the rest, averaged
            else np.mean([roc_auc_score(y == c, scores[:, c]) for c in range(k)])
        )  # fmt: skip
        assert got["auc"] == pytest.approx(want)
    y_true = r.normal(size=100)
    y_pred = y_true + r.normal(size=100)
    got = realised("regression", y_true, y_pred, y_pred.reshape(-1, 1))
    assert got["mae"] == pytest.approx(np.mean(np.abs(y_true - y_pred)))
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((y_true - y_pred) ** 2)))
    assert _auc(np.ones(5), np.ones(5)) is None  # one class: no AUC, not a number


def test_a_window_of_one_row_has_no_estimated_auc() -> None:
    """Online traffic is one row a request, and a batch window is one request: an AUC
    ranks rows against each other, so of one row there is none (it read 0.500 [0.000,
    1.000] for any model), while its expected accuracy is still its row's chance."""
    from workbench.core.monitor.estimate import Estimator

    r = np.random.default_rng(4)
    for k in (2, 3):
        scores = r.dirichlet(np.ones(k), 2000)
        y = np.array([r.choice(k, p=s) for s in scores])
        pred = scores.argmax(axis=1)
        est = Estimator.fit("binary" if k == 2 else "multiclass", list(range(k)), y, pred, scores)
        one = {e.metric: e for e in est.window(pred[:1], scores[:1], None, None, None)}
        assert one["auc"].estimated is None and one["auc"].lower is None
        assert one["accuracy"].estimated is not None
        two = {e.metric: e for e in est.window(pred[:2], scores[:2], None, None, None)}
        assert two["auc"].estimated is not None


def test_windows_by_rows_and_by_day_and_bad_specs(tmp_path: Path) -> None:
    p = trained(tmp_path, "binary", rows=3000)
    for k in range(2):
        f = tmp_path / f"b{k}.parquet"
        make("binary", 1500, 0, k).write_parquet(f)
        predict(p, "m@1", str(f), tmp_path / f"o{k}.parquet")
    by_rows = monitor(p, "m@1", parse_window("1000rows"))
    assert [w.rows for w in by_rows.windows] == [1000, 1000, 1000]
    # the windows are tested two at a time, yet their drift reports list in window order
    stored.save(p, by_rows)
    listed = [r["current"] for r in p.drift.list(windows=True)]
    assert listed == [w.drift.current for w in reversed(by_rows.windows) if w.drift], listed
    # a user's own comparisons are not buried under every window's: those list on asking
    assert p.drift.list() == [] and p.drift.window_reports() == 3
    shown = run_cli("drift", "list", cwd=p.root)
    assert "3 reports of monitor windows not listed: --windows lists them too" in shown.out
    assert len(json.loads(run_cli("drift", "list", "--windows", "--json", cwd=p.root).out)) == 3
    assert [w.labelled for w in by_rows.windows] == [0, 0, 0]
    assert all(w.metric("auc").realised is None for w in by_rows.windows)  # type: ignore[union-attr]
    # each window says which scored batches its rows came from, in their order
    assert [w.scored for w in by_rows.windows] == [
        ["b0.parquet"],
        ["b0.parquet", "b1.parquet"],
        ["b1.parquet"],
    ]
    by_day = monitor(p, "m@1", parse_window("1d"))
    assert [w.rows for w in by_day.windows] == [3000]
    assert by_day.windows[0].scored == ["b0.parquet", "b1.parquet"]
    for bad in ("0rows", "weekly", "1y"):
        res = run_cli("monitor", "m@1", "--window", bad, cwd=p.root)
        assert res.code == 2 and res.err.count("\n") == 1 and "invalid window" in res.err


@pytest.fixture
def watched(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """m@1 (binary) with three scored batches, no labels, an alias production (built once
    per test process, copied for each test)."""
    return from_template("watched", tmp_path, tmp_path_factory, _watched)


def _watched(tmp_path: Path) -> Path:
    p = trained(tmp_path, "binary", rows=4000)
    assert run_cli("model", "promote", "m", "1", "--to", "production", cwd=p.root).code == 0
    for k in range(3):
        f = tmp_path / f"b{k}.parquet"
        make("binary", 800, k - 1, k).write_parquet(f)
        res = run_cli("predict", "m@production", str(f), "-o", str(tmp_path / f"o{k}.parquet"),
                      cwd=p.root)  # fmt: skip
        assert res.code == 0, res.err
    return p.root


@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_predict_logs_its_rows_and_monitor_stores_an_audited_report(
    watched: Project, tmp_path: Path
) -> None:
    root = watched.root
    res = run_cli("sql", "SELECT count(*) AS n FROM predictions", "--json", cwd=root)
    assert json.loads(res.out)[0]["n"] == 2400
    f = tmp_path / "b0.parquet"
    assert run_cli("predict", "m@1", str(f), "-o", str(tmp_path / "x.parquet"), "--no-log",
                   cwd=root).code == 0  # fmt: skip
    res = run_cli("sql", "SELECT count(*) AS n FROM predictions", "--json", cwd=root)
    assert json.loads(res.out)[0]["n"] == 2400  # --no-log: not in the log

    shown_table = run_cli("monitor", "m@production", "--window", "batch", cwd=root)
    assert shown_table.code == 0, shown_table.err
    assert "m@1 (production): 3 windows of batch" in shown_table.out
    assert "est. auc" in shown_table.out and "validation rows of syn@1" in shown_table.out
    res = run_cli("monitor", "m@production", "--window", "batch", "--json", cwd=root)
    body = json.loads(res.out)
    # each estimate and its band to three decimals, every row alike, so the column reads down
    for w in body["windows"]:
        a = w["metrics"]["auc"]
        assert f"{a['estimated']:.3f} [{a['lower']:.3f}, {a['upper']:.3f}]" in shown_table.out
    assert [w["rows"] for w in body["windows"]] == [800, 800, 800]
    assert body["windows"][0]["metrics"]["auc"]["estimated"] > 0.6
    assert body["windows"][0]["drift_report"] is not None
    # what it predicted, window by window: the scored files' own shares and mean score
    for k, w in enumerate(body["windows"]):
        scored = pl.read_parquet(tmp_path / f"o{k}.parquet")
        assert w["predictions"]["shares"]["1"] == pytest.approx((scored["prediction"] == 1).mean())
        assert sum(w["predictions"]["shares"].values()) == pytest.approx(1)
        assert w["predictions"]["mean_score"] == pytest.approx(scored["proba_1"].mean())
    assert 0 < body["reference_predictions"]["shares"]["1"] < 1
    with watched.catalog.read() as con:
        assert con.execute("SELECT count(*) FROM monitor_reports").fetchone() == (2,)
        assert con.execute("SELECT count(*) FROM monitor_windows").fetchone() == (6,)
        # the second report's windows are the first's rows: their drift is not redone
        assert con.execute("SELECT count(*) FROM drift_reports").fetchone() == (3,)
        assert con.execute(
            "SELECT count(DISTINCT drift_report), count(*) FROM monitor_windows"
        ).fetchone() == (3, 6)
        assert con.execute(
            "SELECT count(*) FROM audit WHERE action = 'monitor.report'"
        ).fetchone() == (2,)
    # the window's drift report is an ordinary one
    shown = run_cli("drift", "show", body["windows"][2]["drift_report"][:12], cwd=root)
    assert shown.code == 0 and "x1" in shown.out
    # ... named, as in `drift list`, by the model and the batch it scored
    assert watched.drift.get(body["windows"][2]["drift_report"]).current.startswith(
        "m@1 b2.parquet 20"
    )
    assert run_cli("monitor", "m@production", "--no-save", cwd=root).code == 0
    with watched.catalog.read() as con:
        assert con.execute("SELECT count(*) FROM monitor_reports").fetchone() == (2,)
    # a batch is named by what was scored (a file by its name, a version by its ref), not
    # by its request id, which stays the window's label (alerts fire once per label)
    assert [w["scored"] for w in body["windows"]] == [[f"b{k}.parquet"] for k in range(3)]
    assert all(w["window"].startswith(w["from_row"][:12]) for w in body["windows"])
    assert run_cli("predict", "m@production", "syn@1", "-o", str(tmp_path / "s.parquet"),
                   cwd=root).code == 0  # fmt: skip
    res = run_cli("monitor", "m@production", "--window", "batch", "--no-save", cwd=root)
    shown = [line.split("│")[1].strip() for line in res.out.splitlines() if line.startswith("│")]
    assert [w.split(" ")[0] for w in shown] == ["b0.parquet", "b1.parquet", "b2.parquet", "syn@1"]


def test_monitor_refuses_in_one_line(watched: Project, tmp_path: Path) -> None:
    root = watched.root
    p2 = trained(tmp_path / "other", "binary", rows=1000)
    res = run_cli("monitor", "m@1", cwd=p2.root)
    assert res.code == 1 and "has no logged predictions" in res.err and res.err.count("\n") == 1
    # an alias just moved to a version that has answered nothing yet: say who did
    predict(p2, "m@1", "syn@1", tmp_path / "s1.parquet")
    p2.models.register(p2.train("syn@1", "y", model="lightgbm", params={"n_estimators": 5}), "m")
    res = run_cli("monitor", "m@2", cwd=p2.root)
    assert res.code == 1 and res.err.count("\n") == 1
    assert "(1,000 rows were answered by other versions of m: monitor NAME@VERSION" in res.err
    for args, words in (
        (("--since", "yesterday"), "invalid --since"),
        (("--metric", "mape"), "unknown metric"),
        (("--metric", "mae"), "has no mae"),
        (("--target", "y"), "--target goes with --reference"),
        (("--since", "2999-01-01"), "no logged predictions since"),
    ):
        res = run_cli("monitor", "m@production", *args, cwd=root)
        assert res.code != 0 and words in res.err and res.err.count("\n") == 1, (args, res.err)


def alert_toml(root: Path, text: str) -> None:
    cfg = root / "workbench.toml"
    cfg.write_text(cfg.read_text() + "\n" + text)


def test_an_alert_acts_once_per_window_and_check_exits_3(watched: Project) -> None:
    root = watched.root
    alert_toml(root, '[alerts.low-auc]\nwhen = "estimated.auc < 0.999"\nrun = "cat > fired.json; echo sent to the team"\n'
               '[alerts.never]\nwhen = ["rows > 0", "realised.auc < 0.5"]\n')  # fmt: skip
    res = run_cli("monitor", "m@production", "--window", "batch", "--check", cwd=root)
    assert res.code == 3, res.err
    assert "ALERT low-auc: estimated.auc < 0.999" in res.out and "never" not in res.out
    assert "exit 0 (sent to the team)" in res.out  # what the hook answered, shown
    sent = json.loads((root / "fired.json").read_text())
    assert sent["alert"]["alert"] == "low-auc" and sent["model"] == "m@1"
    assert sent["window"]["rows"] == 800
    (root / "fired.json").unlink()
    again = run_cli("monitor", "m@production", "--window", "batch", "--check", cwd=root)
    assert again.code == 3  # still holds: cron keeps seeing it
    assert "fired on this window before" in again.out
    assert not (root / "fired.json").exists()  # but it acted once
    with watched.catalog.read() as con:
        rows = con.execute(
            "SELECT subject, details FROM audit WHERE action = 'alert.fired'"
        ).fetchall()
    assert len(rows) == 1 and rows[0][0] == "alert:low-auc"
    assert json.loads(rows[0][1])["values"]["estimated.auc"] < 0.999
    # without --check the same report exits 0; an alert that does not hold never fires
    assert run_cli("monitor", "m@production", "--window", "batch", cwd=root).code == 0


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ('[alerts.a]\nwhen = "estimated.mape < 1"', "unknown quantity 'estimated.mape'"),
        ('[alerts.a]\nwhen = "drift > 0.5"', "unknown quantity 'drift'"),
        ('[alerts.a]\nwhen = "rows < many"', "invalid number 'many'"),
        ('[alerts.a]\nrun = "true"', "needs when"),
        ('[alerts.a]\nwhen = "rows < 1"\npipeline = "monthly"', "pipeline and batch go together"),
        ('[alerts.a]\nwhen = "rows < 1"\npipeline = "x"\nbatch = "b.csv"', "no [pipeline.x]"),
        ('[alerts.a]\nwhen = "rows < 1"\nemail = "me"', "unknown key 'email'"),
        ('[monitor]\nwindow = "fortnight"', "monitor.window: invalid window"),
    ],
)
def test_alert_settings_are_checked_with_their_line(
    watched: Project, toml: str, words: str
) -> None:
    alert_toml(watched.root, toml)
    res = run_cli("monitor", "m@production", cwd=watched.root)
    assert res.code == 2 and words in res.err and "line " in res.err, res.err
    assert res.err.count("\n") == 1


def test_labels_by_request_are_the_scored_batch_row_for_row(
    watched: Project, tmp_path: Path
) -> None:
    root = watched.root
    first = run_cli("sql", "SELECT request_id FROM predictions ORDER BY ts LIMIT 1", "--json",
                    cwd=root)  # fmt: skip
    rid = json.loads(first.out)[0]["request_id"]
    batch = tmp_path / "b0.parquet"  # scored first
    short = tmp_path / "short.parquet"
    pl.read_parquet(batch).head(799).write_parquet(short)
    res = run_cli("labels", "add", str(short), "-m", "m", "--label", "y", "--request", rid[:10],
                  cwd=root)  # fmt: skip
    assert res.code == 1 and "has 799 rows; request" in res.err and "scored 800" in res.err
    res = run_cli("labels", "add", str(batch), "-m", "m", "--label", "y", "--request", rid[:10],
                  cwd=root)  # fmt: skip
    assert res.code == 0 and "matched by row order" in res.out, res.err
    got = json.loads(run_cli("sql", f"SELECT row, label FROM predictions WHERE request_id = "
                             f"'{rid}' ORDER BY row", "--json", cwd=root).out)  # fmt: skip
    want = pl.read_parquet(batch).get_column("y").to_list()
    assert [json.loads(g["label"]) for g in got] == want


@pytest.mark.slow
def test_an_alert_runs_the_training_loop_before_any_label(
    flights_demo: tuple[Path, str], tmp_path: Path
) -> None:
    """The demo's production model scored December (logged by the demo's predict); an
    alert on its estimated AUC runs the monthly loop on a new batch, with no label."""
    import shutil

    root = tmp_path / "demo"
    shutil.copytree(flights_demo[0], root)
    batch = (
        Path(__file__).resolve().parents[2] / "sample_projects/flights/data/flights_2013_11.parquet"
    )
    alert_toml(root, f'[alerts.retrain]\nmodel = "flight-delays"\nwhen = "estimated.auc < 0.99"\n'
               f'pipeline = "monthly"\nbatch = "{batch}"\n')  # fmt: skip
    res = run_cli("monitor", "flight-delays@production", "--window", "batch", "--check", cwd=root)
    assert res.code == 3, res.err
    assert "ALERT retrain" in res.out and "pipeline monthly on" in res.out
    history = Project(root).pipeline_runs.history("monthly")
    assert len(history) == 1 and history[0].batch == batch.name
    assert f"{history[0].outcome}" in res.out
