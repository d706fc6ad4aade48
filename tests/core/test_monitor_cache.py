"""What monitoring keeps between reports (typed log segments, a classifier's learnt
reference) never changes an answer: each is checked against the catalog or its own hash
on every read, and rebuilt when it does not hold."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.core.test_monitor import watched  # noqa: F401  (the fixture)
from tests.core.test_monitor_reference import asked_for_more, in_a_fresh_process
from workbench.core.drift.columns import Options
from workbench.core.models.log_segments import MANIFEST, ReadFiles, folder_of
from workbench.core.models.prediction_log import LogWriter, request_line
from workbench.core.monitor.logged import read_logged
from workbench.core.monitor.report import MonitorReport, monitor
from workbench.core.monitor.windows import parse_window
from workbench.core.project import Project

NAMES = ["prediction", "proba_0", "proba_1"]


def seen(report: MonitorReport) -> list[tuple[object, ...]]:
    """What a user reads off a report, window by window."""
    return [
        (w.rows, w.labelled, w.drift_share, w.prediction_drift,
         {e.metric: (e.estimated, e.lower, e.upper) for e in w.estimates})
        for w in report.windows
    ]  # fmt: skip


def report(p: Project) -> MonitorReport:
    return monitor(p, "m@1", parse_window("batch"), options=Options())  # drift tested afresh


def files(p: Project) -> dict[str, str]:
    return json.loads((folder_of(p.store_dir, "m", 1) / MANIFEST).read_text())["files"]


def serve_two_requests(p: Project) -> None:
    """Two requests as a server logs them (folded from JSON at the next read)."""
    log = LogWriter(p.serving_dir)
    for k in range(2):
        x1 = [0.1 * i for i in range(40)]
        inputs = {"x1": x1, "x2": [-v for v in x1], "c": ["a", "b"] * 20}
        outputs = {"prediction": [1] * 40, "proba_0": [0.3] * 40, "proba_1": [0.7] * 40}
        log.write(request_line(f"served-{k}", 200, 2.0, 40, "m", 1, inputs=inputs,
                               outputs=outputs))  # fmt: skip
    log.close()


def test_segments_agree_with_the_catalog_whatever_happens_to_them(watched: Project) -> None:  # noqa: F811
    p = watched
    assert len(files(p)) == 3  # each predict wrote its scoring's segment as it scored
    before = report(p)
    serve_two_requests(p)
    served = report(p)
    assert [w.rows for w in served.windows] == [800, 800, 800, 40, 40]
    assert seen(served)[:3] == seen(before)
    assert len(files(p)) == 4  # the served rows, typed from their JSON once
    again = report(p)
    assert len(files(p)) == 4 and seen(again) == seen(served)

    # the same report from the JSON alone
    shutil.rmtree(folder_of(p.store_dir, "m", 1))
    assert seen(report(p)) == seen(served)
    assert len(files(p)) == 1  # rebuilt as one segment

    # a damaged segment costs time, never a wrong answer
    (name,) = files(p)
    path = folder_of(p.store_dir, "m", 1) / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert seen(report(p)) == seen(served)
    assert name not in files(p)

    # rows the catalog no longer holds (retention) leave with their segment
    with p.catalog.write() as con:
        (rid,) = con.execute("SELECT request_id FROM predictions ORDER BY ts LIMIT 1").fetchone()  # type: ignore[misc]
        con.execute("DELETE FROM predictions WHERE request_id = ?", [rid])
    pruned = report(p)
    assert [w.rows for w in pruned.windows] == [800, 800, 40, 40]
    assert seen(pruned)[:2] == seen(before)[1:]


def test_two_readers_at_once_build_one_segment(watched: Project) -> None:  # noqa: F811
    p = watched
    shutil.rmtree(folder_of(p.store_dir, "m", 1))
    serve_two_requests(p)
    mv = p.models.resolve("m@1")
    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda _: read_logged(p, mv, None, NAMES).frame, range(2)))
    assert [g.height for g in got] == [2480, 2480]
    assert got[0].equals(got[1])
    held = read_logged(p, mv, None, NAMES).frame
    assert held.height == 2480 and held.select("request_id", "row").is_unique().all()


def test_a_learnt_reference_needs_no_model_and_is_checked(watched: Project) -> None:  # noqa: F811
    p = watched
    first = report(p)
    (kept,) = (p.store_dir / "cache" / "monitor").glob("ref-*.npz")
    later = in_a_fresh_process(p.root, drift=True)
    assert not {"sklearn", "lightgbm"} & set(later["loaded"])  # (drift's KS needs SciPy)
    assert [w["auc"][0] for w in later["estimates"]] == [
        w.metric("auc").estimated  # type: ignore[union-attr]
        for w in first.windows
    ]
    assert later["reference"] == first.reference

    data = bytearray(kept.read_bytes())
    data[-100] ^= 0xFF
    kept.write_bytes(bytes(data))
    relearnt = report(p)
    assert seen(relearnt) == seen(first)
    assert kept.exists() and kept.read_bytes() != bytes(data)  # learnt and kept again


def test_no_drift_gives_the_same_estimates_and_no_drift_alert(watched: Project) -> None:  # noqa: F811
    p = watched
    cfg = p.root / "workbench.toml"
    cfg.write_text(cfg.read_text() + '\n[alerts.drifted]\nwhen = "drift_share >= 0"\n')
    full = json.loads(run_cli("monitor", "m@1", "-w", "batch", "--json", cwd=p.root).out)
    assert [a["alert"] for a in full["alerts"]] == ["drifted"]
    res = run_cli("monitor", "m@1", "-w", "batch", "--no-drift", "--json", cwd=p.root)
    assert res.code == 0, res.err
    quick = json.loads(res.out)
    assert [w["metrics"] for w in quick["windows"]] == [w["metrics"] for w in full["windows"]]
    assert all(w["drift_report"] is None and w["drift_share"] is None for w in quick["windows"])
    assert quick["alerts"] == []  # a drift condition is not evaluable: it does not fire
    assert any("drift not computed" in n for n in quick["notes"])
    table = run_cli("monitor", "m@1", "-w", "batch", "--no-drift", cwd=p.root)
    assert table.code == 0 and "Note: drift not computed" in table.out
    with p.catalog.read() as con:
        assert con.execute("SELECT count(*) FROM monitor_reports").fetchone() == (3,)


def test_windows_of_one_scoring_keep_their_own_drift_and_estimates_next_time(
    tmp_path: Path,
) -> None:
    """Four 500-row windows cut from one scored batch share one time span: each must
    still get (and next time keep) its own drift report and estimates, and a window
    whose labels arrived is estimated again."""
    import polars as pl

    from tests.core.test_monitor import make, trained
    from workbench.core.models.labels import add as add_labels
    from workbench.core.models.scoring import predict

    p = trained(tmp_path, "binary", rows=3000)
    batch = pl.concat([make("binary", 1000, 0, 7), make("binary", 1000, 3, 8)])
    batch.write_parquet(tmp_path / "batch.parquet")
    scored = predict(p, "m@1", str(tmp_path / "batch.parquet"), tmp_path / "out.parquet")

    def run() -> dict[str, Any]:
        res = run_cli("monitor", "m@1", "-w", "500rows", "--json", cwd=p.root)
        assert res.code == 0, res.err
        return json.loads(res.out)

    first = run()
    windows = first["windows"]
    assert len({(w["first"], w["last"]) for w in windows}) == 1  # one span for all four
    assert len({w["drift_report"] for w in windows}) == 4
    shares = [w["drift_share"] for w in windows]
    assert max(shares[:2]) < min(shares[2:])  # x1 moved in the second half only
    again = run()
    assert [w["drift_report"] for w in again["windows"]] == [w["drift_report"] for w in windows]
    assert [w["metrics"] for w in again["windows"]] == [w["metrics"] for w in windows]
    assert [w["predictions"] for w in again["windows"]] == [w["predictions"] for w in windows]
    assert monitor(p, "m@1", parse_window("500rows")).estimated_before == 4

    add_labels(p.catalog, p.datasets, str(tmp_path / "batch.parquet"), "m", "y",
               request=scored.id)  # fmt: skip
    labelled = monitor(p, "m@1", parse_window("500rows"))
    assert labelled.estimated_before == 0
    assert all(w.metric("auc").realised is not None for w in labelled.windows)  # type: ignore[union-attr]
    assert [w.metric("auc").estimated for w in labelled.windows] == [  # type: ignore[union-attr]
        w["metrics"]["auc"]["estimated"] for w in windows
    ]


def test_segment_files_are_checked_for_order_where_they_meet() -> None:
    from datetime import datetime

    import polars as pl

    from workbench.core.models.log_segments import files_in_order

    t0, t1 = datetime(2026, 1, 1), datetime(2026, 1, 2)
    frame = pl.DataFrame({"ts": [t0, t0, t1, t0], "request_id": ["a", "a", "b", "c"],
                          "row": [0, 1, 0, 0]})  # fmt: skip
    assert files_in_order(frame[:3], [2, 1])
    assert not files_in_order(frame, [3, 1])  # the second file starts before the first ends
    assert not files_in_order(frame, None)  # without counts: every row is compared
    assert files_in_order(frame[:3], [2, 0, 1])


def test_a_long_log_shows_its_latest_windows_as_a_whole_read_would(
    watched: Project,  # noqa: F811
    monkeypatch: Any,
) -> None:
    """A log grows for as long as a model serves; a report shows its latest 100 windows
    and reads only their rows, with the very windows (rows, labels, estimates, what
    was predicted) that reading the whole log would give."""
    import workbench.core.monitor.report as reports

    p = watched  # 2,400 logged rows: 120 windows of 20
    kept = monitor(p, "m@1", parse_window("20rows"), drift=False)
    assert len(kept.windows) == 100
    assert kept.windows[0].label.startswith("#21 ") and kept.windows[-1].label.startswith("#120 ")
    assert "20 older window(s) left out; the latest 100 are shown" in kept.notes
    monkeypatch.setattr(reports, "MAX_WINDOWS", 1000)
    whole = monitor(p, "m@1", parse_window("20rows"), drift=False)
    assert len(whole.windows) == 120 and not any("left out" in n for n in whole.notes)

    def shown(r: MonitorReport) -> list[tuple[object, ...]]:
        return [(w.label, w.from_row, w.to_row, w.first_ts, w.predictions) for w in r.windows]

    assert shown(kept) == shown(whole)[20:]
    assert seen(kept) == seen(whole)[20:]

    # from a time on: the rows of the last two scorings, their latest 100 of 160 windows
    logged = read_logged(p, p.models.resolve("m@1"), None, NAMES, with_inputs=False).frame
    since = logged.get_column("ts")[800]
    assert logged.get_column("ts")[799] < since  # each scoring has its own time
    whole_later = monitor(p, "m@1", parse_window("10rows"), since=since, drift=False)
    assert sum(w.rows for w in whole_later.windows) == 1600
    monkeypatch.setattr(reports, "MAX_WINDOWS", 100)
    later = monitor(p, "m@1", parse_window("10rows"), since=since, drift=False)
    assert later.windows[0].label.startswith("#61 ") and len(later.windows) == 100
    assert seen(later) == seen(whole_later)[60:]


def drift_found(r: MonitorReport, first: int = 0) -> list[object]:
    """Each window's drift (from the ``first`` window on) as a user reads it: per
    column, the method, statistic, p-value and verdict."""
    return [
        [(c.column, c.method, c.statistic, c.p_value, c.drifted) for c in w.drift.columns]
        for w in r.windows[first:]
        if w.drift is not None
    ]


def test_a_report_reads_each_windows_inputs_as_it_tests_it(
    watched: Project,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A classifier's report reads the answers, then each window's own inputs (from the
    files the answers came from, a window across two of them too) as it tests that
    window: the drift of a report whose inputs were all read at once and matched to the
    rows by request and row."""
    p = watched
    inputs = list(p.models.resolve("m@1").signature["inputs"])
    asked = asked_for_more(monkeypatch)
    windowed = monitor(p, "m@1", parse_window("300rows"))  # three files of 800 rows
    sizes = [w.rows for w in windowed.windows]
    assert sizes == [300] * 8
    assert all(columns == inputs for columns, _, _ in asked)
    # each window its own rows, none read twice
    assert sorted((at, n) for _, at, n in asked) == [(300 * i, 300) for i in range(8)]
    monkeypatch.setattr(ReadFiles, "more", lambda self, columns, at, n=None: None)
    at_once = monitor(p, "m@1", parse_window("300rows"))
    assert len(drift_found(windowed)) == 8
    assert drift_found(windowed) == drift_found(at_once)
    assert [w.drift_share for w in windowed.windows] == [w.drift_share for w in at_once.windows]
    assert {w.drift_share for w in windowed.windows} != {0.0}  # some windows moved


def test_a_new_window_is_tested_on_its_own_inputs_read_after_the_answers(
    watched: Project,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The next report reads the answers first and the inputs only of the windows it
    tests anew (from the files it just read): their drift is the drift of a report that
    read every input at once."""
    from tests.core.test_monitor import make
    from workbench.core.models.scoring import predict
    from workbench.core.monitor import report as reports

    p = watched
    assert run_cli("monitor", "m@1", "--window", "batch", cwd=p.root).code == 0
    for k, shift in ((3, 2.0), (4, 0.0)):  # one window moved, one like the training data
        make("binary", 800, shift, 9 + k).write_parquet(tmp_path / f"new{k}.parquet")
        predict(p, "m@1", str(tmp_path / f"new{k}.parquet"), tmp_path / f"out{k}.parquet")
    reads: list[bool] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append(True)
        return read_logged(*args, **kwargs)

    monkeypatch.setattr(reports, "read_logged", counted)
    later = monitor(p, "m@1", parse_window("batch"))
    assert len(reads) == 1  # the inputs came from the segment files the answers came from
    afresh = monitor(p, "m@1", parse_window("batch"), options=Options())  # every window anew
    assert [w.drift_stored for w in later.windows] == [True, True, True, False, False]

    assert len(drift_found(later, 3)) == 2 and drift_found(later, 3) == drift_found(afresh, 3)
    assert later.windows[3].drift_share > later.windows[4].drift_share  # type: ignore[operator]

    # those files gone meanwhile (another process compacted the folder): read again
    monkeypatch.setattr(ReadFiles, "more", lambda self, columns, at, n=None: None)
    reads.clear()
    again = monitor(p, "m@1", parse_window("batch"))
    assert len(reads) == 2 and drift_found(again, 3) == drift_found(afresh, 3)


def test_a_later_estimate_reads_the_answers_of_its_new_windows_only(
    watched: Project,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An hourly estimate after a stored one reads the logged answers of the windows it
    estimates anew, no others: its windows are those of a report that reads them all."""
    from tests.core.test_monitor import make
    from workbench.core.models.scoring import predict
    from workbench.core.monitor import earlier, stored
    from workbench.core.monitor import report as reports

    p = watched
    stored.save(p, monitor(p, "m@1", parse_window("batch"), drift=False))
    make("binary", 800, 2.0, 21).write_parquet(tmp_path / "new.parquet")
    predict(p, "m@1", str(tmp_path / "new.parquet"), tmp_path / "out.parquet")
    asked = asked_for_more(monkeypatch)
    later = monitor(p, "m@1", parse_window("batch"), drift=False)
    assert asked == [(["proba_0", "proba_1"], 2400, None)]  # the new window's answers only
    assert later.estimated_before == 3

    def shown(r: MonitorReport) -> list[tuple[object, ...]]:
        return [(w.rows, w.predictions, w.first_ts) for w in r.windows]

    monkeypatch.setattr(reports, "kept_windows", lambda *a: earlier.Earlier())
    whole = monitor(p, "m@1", parse_window("batch"), drift=False)  # every answer read
    assert whole.estimated_before == 0 and len(whole.windows) == 4
    assert seen(later) == seen(whole) and shown(later) == shown(whole)

    # those files gone meanwhile: the answers are read again, from the new window on
    monkeypatch.setattr(reports, "kept_windows", earlier.kept_windows)
    monkeypatch.setattr(ReadFiles, "more", lambda self, columns, at, n=None: None)
    again = monitor(p, "m@1", parse_window("batch"), drift=False)
    assert seen(again) == seen(whole) and shown(again) == shown(whole)
