"""`workbench serve`, started here on 127.0.0.1 as a user starts it, and stopped after."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.conftest import run_cli
from workbench.core.project import Project


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, token: str | None) -> None:
        self.proc, self.url, self.token = proc, url, token

    def call(
        self, path: str, body: bytes | None = None, ctype: str = "application/json",
        token: str | None = None, headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:  # fmt: skip
        head = {"Content-Type": ctype, **(headers or {})}
        if token or self.token:
            head["Authorization"] = f"Bearer {token or self.token}"
        req = urllib.request.Request(self.url + path, data=body, headers=head)
        try:
            with urllib.request.urlopen(req, timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def metrics(self) -> dict[str, float]:
        """/metrics as Prometheus would read it: sample name{labels} -> value."""
        from prometheus_client.parser import text_string_to_metric_families

        with urllib.request.urlopen(self.url + "/metrics", timeout=30) as answer:
            assert answer.headers["content-type"].startswith("text/plain; version=")
            text = answer.read().decode()
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        return out

    def predict(self, rows: pl.DataFrame, **kw: Any) -> tuple[int, dict[str, Any]]:
        return self.call("/predict", json.dumps(rows.to_dicts(), default=str).encode(), **kw)


@contextlib.contextmanager
def serving(
    project: Project, *args: str, token: str | None = None, ref: str = "churn-model@production"
) -> Iterator[Server]:
    port = free_port()
    cmd = [sys.executable, "-m", "workbench", "--project", str(project.root), "serve",
           ref, "--port", str(port), *args]  # fmt: skip
    if token:
        cmd += ["--token", token]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    server = Server(proc, f"http://127.0.0.1:{port}", token)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if server.call("/health")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the server never came up"
            time.sleep(0.2)
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def log_lines(project: Project) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted((project.store_dir / "serving").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def sql(project: Project, query: str) -> list[dict[str, Any]]:
    """A query as a user runs it, from a fresh process: the read folds the logs first."""
    res = run_cli("sql", query, "--json", cwd=project.root)
    assert res.code == 0, res.err
    return json.loads(res.out)


def batch(n: int, seed: int = 5) -> pl.DataFrame:
    from tests.core.test_training import churn

    return churn(n, seed).drop("churned")


def predicted(project: Project, tmp_path: Path, rows: pl.DataFrame, ref: str) -> list[dict]:
    src, out = tmp_path / "rows.parquet", tmp_path / "ours.parquet"
    rows.write_parquet(src)
    # --no-log: the expected answers are not traffic the tests then count
    res = run_cli("predict", ref, str(src), "-o", str(out), "--no-log", cwd=project.root)
    assert res.code == 0, res.err
    scored = pl.read_parquet(out)
    return scored.select([c for c in scored.columns if c not in rows.columns]).to_dicts()


@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_predict_answers_as_workbench_predict_in_every_body_form(
    tmp_path: Path, registered: Project
) -> None:
    rows = batch(40)
    ours = predicted(registered, tmp_path, rows, "churn-model@production")
    with serving(registered) as server:
        status, answer = server.predict(rows, headers={"X-Request-ID": "req-1"})
        assert status == 200 and answer["model"] == "churn-model@2" and answer["id"] == "req-1"
        assert answer["predictions"] == ours  # exactly: same casts, same model
        csv = io.BytesIO()
        rows.write_csv(csv)
        assert server.call("/predict", csv.getvalue(), "text/csv")[1]["predictions"] == ours
        parquet = io.BytesIO()
        rows.write_parquet(parquet)
        got = server.call("/predict", parquet.getvalue(), "application/vnd.apache.parquet")
        assert got[1]["predictions"] == ours
        columns = {"columns": rows.to_dict(as_series=False)}
        body = json.dumps(columns, default=str).encode()
        assert server.call("/predict", body)[1]["predictions"] == ours
        status, model = server.call("/model")
        assert status == 200 and model["version"] == 2 and model["alias"] == "production"
        assert model["training_dataset"] == "churn@1"
        assert list(model["signature"]["inputs"]) == [c for c in rows.columns if c != "id"]
        assert server.predict(rows.drop("plan"))[0] == 400
        m = server.metrics()
        assert m["workbench_requests_total{status=200}"] == 4
        assert m["workbench_requests_total{status=400}"] == 1
        assert m["workbench_rows_scored_total"] == 160
        assert m["workbench_request_latency_seconds_count"] == 4
        assert m["workbench_model_version{alias=production,model=churn-model}"] == 2
        for cls in (0, 1):
            want = 4 * sum(1 for o in ours if o["prediction"] == cls)
            assert m.get(f"workbench_predictions_total{{class={cls}}}", 0) == want
    logged = sql(registered, "SELECT * FROM requests ORDER BY ts")
    assert [(r["status"], r["rows"], r["ref"]) for r in logged[:4]] == [
        (200, 40, "churn-model@2")
    ] * 4
    assert logged[0]["request_id"] == "req-1" and logged[4]["status"] == 400
    first = sql(registered, "SELECT * FROM predictions WHERE request_id = 'req-1' ORDER BY row")
    assert [r["outputs"] for r in first] == ours
    assert [r["prediction"] for r in first] == [str(o["prediction"]) for o in ours]
    assert [r["inputs"] for r in first] == json.loads(rows.write_json())  # as the client sent
    assert sql(registered, "SELECT count(*) AS n FROM predictions") == [{"n": 160}]


def test_a_one_row_request_with_a_missing_value_is_scored_as_missing(
    tmp_path: Path, registered: Project
) -> None:
    """Online traffic is one row a request: a null there is the only value its column
    has, so the body's column has no type; it is still a missing value, as it is in a
    batch (it was refused: "column 'income' is Null in the request")."""
    rows = batch(3).with_columns(
        pl.lit(None, dtype=pl.Float64).alias("income"),
        pl.Series("plan", [None, "pro", None], dtype=pl.String),
    )
    ours = predicted(registered, tmp_path, rows, "churn-model@production")
    with serving(registered) as server:
        got = [server.predict(rows.slice(i, 1)) for i in range(3)]
    assert [status for status, _ in got] == [200, 200, 200], got
    assert [answer["predictions"][0] for _, answer in got] == ours


@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_an_mlflow_client_s_bodies_are_answered_the_same(
    tmp_path: Path, registered: Project
) -> None:
    """A client written for `mlflow models serve` keeps working: its three JSON forms
    (dataframe_records, dataframe_split, inputs as records) answer as a list of records
    does; a body in none of them is refused naming them all."""
    rows = batch(12)
    ours = predicted(registered, tmp_path, rows, "churn-model@production")
    records = json.loads(rows.write_json())
    split = {"columns": rows.columns, "data": [list(r.values()) for r in records]}
    with serving(registered) as server:
        for body in (
            {"dataframe_records": records},
            {"dataframe_split": split},
            {"inputs": records},
        ):
            status, answer = server.call("/predict", json.dumps(body, default=str).encode())
            assert status == 200 and answer["predictions"] == ours, body.keys()
        status, answer = server.call("/predict", b'{"rows": []}')
        assert status == 400 and "dataframe_records, dataframe_split or inputs" in answer["error"]


@pytest.mark.slow
def test_bad_requests_are_4xx_with_the_cli_s_one_line_reason(
    tmp_path: Path, registered: Project
) -> None:
    rows = batch(30)
    src = tmp_path / "short.csv"
    rows.drop("plan").write_csv(src)
    cli = run_cli("predict", "churn-model@production", str(src), "-o", str(tmp_path / "o.csv"),
                  cwd=registered.root)  # fmt: skip
    assert cli.code != 0
    with serving(registered, "--max-rows", "25", "--max-bytes", "50000") as server:
        status, answer = server.predict(rows.head(10).drop("plan"))
        assert status == 400 and "lacks column(s) the model needs: plan" in answer["error"]
        assert cli.err.split("needs:")[1].strip() == answer["error"].split("needs:")[1].strip()
        bad = rows.head(3).with_columns(pl.lit("many").alias("age"))
        answers = [server.predict(bad)]
        assert answers[0][0] == 400 and "cannot be read as" in answers[0][1]["error"]
        answers += [
            server.predict(rows),  # 30 rows over 25
            server.call("/predict", b"x" * 60_000, "text/csv"),
            server.call("/predict", b"{not json"),
            server.call("/predict", b"a,b", "image/png"),
            server.call("/predict", b"[]"),
        ]
        assert [a[0] for a in answers] == [400, 413, 413, 400, 415, 400]
        assert all(a[1]["error"] and "\n" not in a[1]["error"] for a in answers)
        assert server.predict(rows.head(5))[0] == 200  # and it still serves
    logged = sql(registered, "SELECT status, rows, error FROM requests ORDER BY ts")
    assert [r["status"] for r in logged] == [400, 400, 413, 413, 400, 415, 400, 200]
    assert "lacks column(s) the model needs: plan" in logged[0]["error"]
    assert [r["error"] for r in logged[1:7]] == [a[1]["error"] for a in answers]
    assert sql(registered, "SELECT count(*) AS n FROM predictions") == [{"n": 5}]


@pytest.mark.slow
def test_another_address_needs_a_token_checked_on_every_request(
    tmp_path: Path, registered: Project
) -> None:
    res = run_cli("serve", "churn-model@production", "--host", "0.0.0.0", cwd=registered.root)
    assert res.code != 0 and "give a token" in res.err and len(res.err.splitlines()) == 1
    with serving(registered, token="s3cret") as server:
        rows = batch(5)
        assert server.predict(rows)[0] == 200
        assert server.predict(rows, token="wrong")[0] == 401
        server.token = None
        assert server.predict(rows)[0] == 401
        assert server.call("/model")[0] == 401
    refused = [r for r in log_lines(registered) if r.get("status") == 401]
    assert len(refused) == 3 and all("inputs" not in r for r in refused)
    assert sql(registered, "SELECT count(*) AS n FROM predictions") == [{"n": 5}]


@pytest.mark.slow
def test_it_follows_the_alias_without_a_failed_request(registered: Project) -> None:
    """Requests keep coming (4 at a time) while production moves to v1 and back: each is
    answered, and within 2 s of each move the answers come from the new version."""
    rows = batch(3)
    seen: list[tuple[float, int, str]] = []
    failures: list[Any] = []
    stop = threading.Event()

    with serving(registered) as server:

        def client() -> None:
            while not stop.is_set():
                try:
                    status, answer = server.predict(rows)
                except Exception as exc:  # a dropped connection is a failure too
                    failures.append(exc)
                    continue
                if status != 200:
                    failures.append((status, answer))
                else:
                    seen.append((time.monotonic(), status, answer["model"]))

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        moved = time.monotonic()
        assert registered.models.promote("churn-model", 1, "production", reason="test").version
        time.sleep(3)
        assert server.metrics()["workbench_model_version{alias=production,model=churn-model}"] == 1
        back = time.monotonic()
        registered.models.rollback("churn-model", "production", reason="test")
        time.sleep(3)
        stop.set()
        for t in threads:
            t.join(30)
    assert not failures and len(seen) > 50

    def served(start: float, end: float) -> set[str]:
        return {m for t, _, m in seen if start < t < end}

    assert served(0, moved) == {"churn-model@2"}
    assert served(moved + 2, back) == {"churn-model@1"}  # moved within 2 s, and stayed
    assert served(back + 2, float("inf")) == {"churn-model@2"}
    logged = sql(registered, "SELECT version, count(*) AS n FROM requests GROUP BY 1 ORDER BY 1")
    assert sum(r["n"] for r in logged) == len(seen)
    by_version = {v: sum(1 for _, _, m in seen if m == f"churn-model@{v}") for v in (1, 2)}
    assert {r["version"]: r["n"] for r in logged} == by_version


@pytest.mark.slow
def test_a_killed_server_has_logged_every_request_it_answered(registered: Project) -> None:
    rows = batch(2)
    answered = []
    with serving(registered) as server:
        for i in range(60):
            status, answer = server.predict(rows, headers={"X-Request-ID": f"r{i}"})
            assert status == 200
            answered.append(answer["id"])
        os.killpg(server.proc.pid, signal.SIGKILL)
    logged = sql(registered, "SELECT DISTINCT request_id FROM predictions")
    assert {r["request_id"] for r in logged} == set(answered)
    assert not log_lines(registered)  # folded whole, its writer gone: the file went too
    again = sql(registered, "SELECT count(*) AS n FROM predictions")  # nothing twice
    assert again == [{"n": 120}]


@pytest.mark.slow
def test_the_app_shows_a_served_model_s_traffic_live(registered: Project) -> None:
    """Models screen, a server running: what it serves and where, then within a couple of
    seconds of traffic its requests/s, p50/p99 and errors; gone when it stops."""
    import asyncio

    from textual.pilot import Pilot
    from textual.widgets import Static

    from tests.tui.test_app import drive, settle, text
    from workbench.tui.app import WorkbenchApp

    rows = batch(3)

    async def until(pilot: Pilot[None], panel: Static, *words: str) -> str:
        deadline = time.monotonic() + 10
        while not all(w in text(panel) for w in words) and time.monotonic() < deadline:
            await pilot.pause(0.1)
        return text(panel)

    with serving(registered) as server:

        async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
            await pilot.press("m")
            await settle(pilot)
            panel = app.screen.query_one("#model-traffic", Static)
            shown = await until(pilot, panel, "idle")
            assert "churn-model@production" in shown and server.url in shown and "idle" in shown
            await asyncio.to_thread(lambda: [server.predict(rows) for _ in range(40)])
            await asyncio.to_thread(server.predict, rows.drop("plan"))
            shown = await until(pilot, panel, "req/s", "1 errors")
            assert "v2" in shown and "p50" in shown and "p99" in shown and "1 errors" in shown
            assert "4.1 req/s" in shown  # 41 requests in the last 10 s

        drive(registered, steps)
    assert not list(registered.serving_dir.glob("*.server.json"))  # stopped: not announced


@pytest.mark.slow
def test_a_port_in_use_is_one_line_and_leaves_nothing_behind(registered: Project) -> None:
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    port = held.getsockname()[1]
    before = sorted(p.name for p in (registered.store_dir / "serving").glob("*"))
    try:
        got = subprocess.run(
            [sys.executable, "-m", "workbench", "--project", str(registered.root), "serve",
             "churn-model@production", "--port", str(port)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        held.close()
    assert got.returncode == 1 and got.stdout == ""  # no "Serving ..." before the refusal
    assert got.stderr.splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use (another server?): choose another with --port"
    ]
    assert sorted(p.name for p in (registered.store_dir / "serving").glob("*")) == before


def test_no_server_running_says_how_to_start_one(registered: Project) -> None:
    from textual.pilot import Pilot
    from textual.widgets import Static

    from tests.tui.test_app import drive, settle, text
    from workbench.tui.app import WorkbenchApp

    async def steps(app: WorkbenchApp, pilot: Pilot[None]) -> None:
        await pilot.press("m")
        await settle(pilot)
        await pilot.pause(0.3)
        shown = text(app.screen.query_one("#model-traffic", Static))
        assert "none running" in shown and "workbench serve NAME@ALIAS" in shown

    drive(registered, steps)


@pytest.mark.slow
def test_the_grafana_dashboard_reads_what_metrics_exposes(registered: Project) -> None:
    """Every metric the example dashboard queries is one the server exposes (a classifier
    and a regressor served side by side), and a regressor's predicted values land in
    buckets at its training target's quantiles."""
    import re

    root = registered.root
    cfg = root / "workbench.toml"  # an alert, so that its gauge is exposed
    cfg.write_text(cfg.read_text() + '\n[alerts.busy]\nwhen = "rows >= 40"\n')
    res = run_cli("train", "churn@1", "-t", "spend", "-m", "lightgbm", "--json", cwd=root)
    assert res.code == 0, res.err
    run_id = json.loads(res.out)["id"]
    assert run_cli("model", "register", run_id, "-n", "spend-model", cwd=root).code == 0
    assert run_cli("model", "promote", "spend-model", "1", "--to", "production", cwd=root).code == 0
    from tests.core.test_training import churn as churn_rows

    rows = churn_rows(50, 5)
    seen: set[str] = set()
    with serving(registered) as churn, serving(registered, ref="spend-model@production") as spend:
        assert churn.predict(rows.drop("churned"))[0] == 200
        status, answer = spend.predict(rows.drop("spend"))
        assert status == 200, answer
        for server in (churn, spend):
            seen |= {key.split("{")[0] for key in server.metrics()}
        m = spend.metrics()
    quantiles = next(
        c["quantiles"] for c in registered.datasets.profile("churn@1")["columns"]
        if c["name"] == "spend"
    )  # fmt: skip
    edges = sorted(set(quantiles.values()))
    for edge in edges:
        below = sum(1 for p in answer["predictions"] if p["prediction"] <= edge)
        assert m[f"workbench_prediction_value_bucket{{le={edge}}}"] == below
    doc = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "workbench-serving.json"
    board = json.loads(doc.read_text())
    queried = {
        name
        for panel in board["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(workbench_[a-z_]+)", target["expr"])
    }
    assert queried and queried <= seen, queried - seen


@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_metrics_raise_an_alert_gauge_once_monitor_finds_it_holds(registered: Project) -> None:
    root = registered.root
    cfg = root / "workbench.toml"
    cfg.write_text(cfg.read_text() + '\n[alerts.busy]\nwhen = "rows >= 40"\n'
                   '[alerts.quiet]\nwhen = "rows < 1"\n'
                   '[alerts.other]\nmodel = "spend-model"\nwhen = "rows >= 0"\n')  # fmt: skip
    with serving(registered) as server:
        m = server.metrics()
        assert m["workbench_alert_firing{alert=busy}"] == 0  # configured, not yet seen
        assert "workbench_alert_firing{alert=other}" not in m  # another model's
        assert server.predict(batch(40))[0] == 200
        res = run_cli("monitor", "churn-model@production", "--window", "batch", "--check",
                      cwd=root)  # fmt: skip
        assert res.code == 3, res.err
        assert "ALERT busy" in res.out
        body = json.loads(run_cli("monitor", "churn-model@production", "--window", "batch",
                                  "--json", "--no-save", cwd=root).out)  # fmt: skip
        assert [w["scored"] for w in body["windows"]] == [[]]  # served: no batch named
        m = server.metrics()
        assert m["workbench_alert_firing{alert=busy}"] == 1
        assert m["workbench_alert_firing{alert=quiet}"] == 0
