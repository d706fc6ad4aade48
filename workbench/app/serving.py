"""``workbench serve NAME@ALIAS``: the model an alias names, answering HTTP requests.

Starlette (the ASGI toolkit FastAPI is built on) under Uvicorn (the server MLflow's own
scoring server runs on): both well kept and small, and Starlette without FastAPI because
requests are checked against the model's signature by ``scoring.conform`` (what
``workbench predict`` does), not by pydantic models. The server follows its alias: a
thread looks it up every second and swaps in the new version once loaded, so a promote
or a rollback is served within two seconds, without a restart or a failed request.

A request never opens the catalog. Each request, answered or refused, is one line
appended (one ``write``) to a file of this server's own under ``.workbench/serving/``,
before the answer leaves: a server killed with SIGKILL has logged every request it
answered, and the next read folds the log into the catalog (core/models/prediction_log.py).
``GET /metrics`` speaks Prometheus' text format through the official ``prometheus_client``.
"""

from __future__ import annotations

import collections
import contextlib
import hmac
import io
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.core.errors import DataError, UsageError, WorkbenchError
from workbench.core.models import prediction_log
from workbench.core.models.prediction_log import LogWriter, request_line

if TYPE_CHECKING:
    import socket

    from workbench.core.models.versions import ModelVersion
    from workbench.core.project import Project

LOOPBACK = ("127.0.0.1", "::1", "localhost")
TOKEN_ENV = "WORKBENCH_SERVE_TOKEN"
POLL_SECONDS = 1.0
# Bodies up to this size score on the event loop: a thousand rows take ~8 ms, and
# handing them to a worker thread cost 20-40% of the throughput (the two threads fight
# over the GIL); a bigger body goes to a thread so the loop keeps answering /health.
INLINE_BYTES = 1024 * 1024
CSV_TYPES = ("text/csv", "application/csv")
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet", "application/parquet")


class Refused(Exception):
    """A request refused with an HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 32 * 1024 * 1024
    max_rows: int = 100_000


def warmed(mv: ModelVersion, model: Any) -> Any:
    """``model``, after scoring one made-up row: the first request paid ~270 ms of lazy
    imports and first-call set-up (polars' casts, LightGBM's predictor) before this."""
    import polars as pl

    from workbench.core.models.inputs import conform, dtype_of, predict_frame

    inputs = mv.signature.get("inputs") or {}
    nulls = pl.DataFrame(
        [pl.Series(col, [None], dtype=dtype_of(text) or pl.Float64) for col, text in inputs.items()]
    )
    with contextlib.suppress(Exception):  # a model that cannot score nulls: cold, not broken
        predict_frame(model, conform(nulls, inputs, "warm-up"), list(inputs))
    return model


class Served:
    """The version an alias names and its loaded model, swapped whole when the alias
    moves (a request takes one snapshot, so it never mixes two versions)."""

    def __init__(self, project: Project, ref: str, poll: float = POLL_SECONDS) -> None:
        _, at, alias = ref.partition("@")
        if not at or not alias:
            raise UsageError(f"serve a model as NAME@ALIAS or NAME@VERSION, not {ref!r}")
        self.project, self.ref, self.poll = project, ref, poll
        mv = project.models.resolve(ref)
        self.current: tuple[ModelVersion, Any] = (mv, warmed(mv, project.models.load(mv)))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def target_buckets(self) -> tuple[float, ...]:
        """A regressor's prediction histogram buckets: its training target's quantiles,
        so that at training time each bucket holds a known share and a shift shows."""
        mv = self.current[0]
        target = mv.signature.get("target")
        if not (mv.dataset_ref and target):
            return ()
        try:
            profile = self.project.datasets.profile(mv.dataset_ref)
        except WorkbenchError:
            return ()
        for col in profile.get("columns", []):
            if col.get("name") == target and col.get("quantiles"):
                return tuple(sorted({float(v) for v in col["quantiles"].values()}))
        return ()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="alias-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _watch(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                mv = self.project.models.resolve(self.ref)
                if mv.version != self.current[0].version:
                    # loaded and warmed, then swapped: the first request after a
                    # promotion is as fast as the others
                    self.current = (mv, warmed(mv, self.project.models.load(mv)))
                self.last_error = None
            except WorkbenchError as exc:  # keep serving what it has; say why on /health
                self.last_error = exc.message
            except Exception as exc:  # the watch must outlive any one bad look
                self.last_error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def _kind(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def _records_list(data: bytes, content_type: str) -> bool:
    """A JSON list of records (the usual body), which polars parses in one pass, twice as
    fast as ``json.loads`` and a frame built from dicts, into the same frame; and which
    the log keeps as it came."""
    if _kind(content_type) not in ("application/json", ""):
        return False
    head = data[:64].lstrip()
    return head[:1] == b"[" and head[1:].lstrip()[:1] == b"{"


def read_body(data: bytes, content_type: str) -> Any:
    """The request's rows as a polars frame: JSON (a list of records, ``{"records": [...]}``
    or ``{"columns": {name: [values]}}``), CSV or Parquet."""
    import polars as pl

    kind = _kind(content_type)
    try:
        if kind in CSV_TYPES:
            return pl.read_csv(io.BytesIO(data))
        if kind in PARQUET_TYPES:
            return pl.read_parquet(io.BytesIO(data))
        if kind not in ("application/json", ""):
            raise Refused(415, f"send JSON, CSV or Parquet (Content-Type {kind!r} is none of them)")
        if _records_list(data, content_type):
            with contextlib.suppress(Exception):  # anything odd: the checks below say what
                return pl.read_json(io.BytesIO(data), infer_schema_length=None)
        body = json.loads(data)
    except Refused:
        raise
    except Exception as exc:  # what the reader said, in one line
        text = " ".join(str(exc).split())[:200]
        raise Refused(400, f"cannot read the request body as {kind or 'JSON'}: {text}") from None
    if isinstance(body, dict) and isinstance(body.get("columns"), dict):
        return pl.DataFrame(body["columns"])
    split = body.get("dataframe_split") if isinstance(body, dict) else None
    if isinstance(split, dict) and isinstance(split.get("data"), list):  # MLflow's form
        try:
            return pl.DataFrame(split["data"], schema=split.get("columns"), orient="row")
        except Exception as exc:
            text = " ".join(str(exc).split())[:200]
            raise Refused(400, f"cannot read dataframe_split: {text}") from None
    for mlflow_key in ("dataframe_records", "inputs"):  # MLflow's scoring server's keys
        if isinstance(body, dict) and mlflow_key in body:
            body = {"records": body[mlflow_key]}
    records = body.get("records") if isinstance(body, dict) else body
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise Refused(
            400,
            'send a list of records, {"records": [...]} or {"columns": {name: [values]}} '
            "(or MLflow's dataframe_records, dataframe_split or inputs)",
        )
    return pl.DataFrame(records, infer_schema_length=None)


class Metrics:
    """The server's Prometheus metrics, in a registry of its own (a test that starts two
    servers in one process must not see one set of counters)."""

    def __init__(self, served: Served) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "workbench_requests", "Scoring requests by HTTP status", ["status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "workbench_request_latency_seconds", "Time from request read to answer ready",
            buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10),
            registry=self.registry,
        )  # fmt: skip
        self.rows = Counter("workbench_rows_scored", "Rows scored", registry=self.registry)
        self.version = Gauge(
            "workbench_model_version", "The model version being served", ["model", "alias"],
            registry=self.registry,
        )  # fmt: skip
        self.alias_error = Gauge(
            "workbench_alias_error", "1 while the alias cannot be looked up", registry=self.registry
        )
        self.alerts = Gauge(
            "workbench_alert_firing",
            "1 while an [alerts] condition holds on the latest `workbench monitor` window",
            ["alert"], registry=self.registry,
        )  # fmt: skip
        mv = served.current[0]
        self.task = mv.signature.get("task")
        if self.task in ("binary", "multiclass"):
            self.classes = Counter(
                "workbench_predictions", "Predicted rows by class", ["class"],
                registry=self.registry,
            )  # fmt: skip
        else:
            self.values = Histogram(
                "workbench_prediction_value",
                "Predicted values; buckets at the training target's quantiles",
                buckets=served.target_buckets() or Histogram.DEFAULT_BUCKETS,
                registry=self.registry,
            )  # fmt: skip
        self.served = served

    def observe(self, status: int, seconds: float | None = None, pred: Any = None) -> None:
        self.requests.labels(str(status)).inc()
        if seconds is not None:
            self.latency.observe(seconds)
        if pred is None:
            return
        self.rows.inc(pred.height)
        column = pred.get_column("prediction")
        if self.task in ("binary", "multiclass"):
            counts = (
                collections.Counter(column.to_list())
                if pred.height < 256  # polars' value_counts costs more on a few rows
                else dict(column.value_counts().iter_rows())
            )
            for value, count in counts.items():
                self.classes.labels(str(value)).inc(count)
        else:
            for value in column.to_list():
                if value is not None:
                    self.values.observe(float(value))

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        mv = self.served.current[0]
        self.version.clear()
        self.version.labels(mv.model, self.served.ref.partition("@")[2]).set(mv.version)
        self.alias_error.set(1 if self.served.last_error else 0)
        self._alerts(mv)
        return generate_latest(self.registry)

    def _alerts(self, mv: ModelVersion) -> None:
        """Each configured alert on this model: 1 if it held on the latest monitor window
        (read from the catalog at scrape time; a busy catalog keeps the last values)."""
        from workbench.core.monitor.stored import latest_alerts

        project = self.served.project
        try:
            firing = set(latest_alerts(project, mv.model, mv.version))
            names = [n for n, a in project.settings.alerts.items() if a.applies(mv.model)]
        except WorkbenchError:
            return
        self.alerts.clear()
        for name in sorted(set(names) | firing):
            self.alerts.labels(name).set(1 if name in firing else 0)


def score(served: Served, log: LogWriter, metrics: Metrics, data: bytes, content_type: str,
          rid: str, limits: Limits) -> bytes:  # fmt: skip
    """One request scored and logged (before the answer leaves); the answer's JSON."""
    from workbench.core.models.inputs import conform, predict_frame

    started = time.perf_counter()
    mv, model = served.current
    df = read_body(data, content_type)
    if df.height > limits.max_rows:
        raise Refused(413, f"{df.height:,} rows in one request; the limit is {limits.max_rows:,}")
    if df.height == 0:
        raise Refused(400, "the request has no rows to score")
    inputs = mv.signature.get("inputs") or {}
    try:
        pred = predict_frame(model, conform(df, inputs, "the request"), list(inputs))
    except DataError as exc:
        raise Refused(400, exc.message) from None
    # The answer's rows written by polars in one pass, and logged as they are; the
    # request's rows logged as the client sent them when that was a list of records
    # (JSON already: its line breaks, only ever between tokens, become spaces).
    outputs = pred.write_json().encode()
    sent = (
        data.replace(b"\n", b" ").replace(b"\r", b" ")
        if _records_list(data, content_type)
        else _columns(df)
    )
    seconds = time.perf_counter() - started
    line = request_line(rid, 200, seconds * 1000, df.height, mv.model, mv.version)
    log.write(line[:-2] + b',"inputs":' + sent + b',"outputs":' + outputs + b"}\n")
    metrics.observe(200, seconds, pred)
    head = json.dumps({"id": rid, "model": mv.ref}, separators=(",", ":")).encode()
    return head[:-1] + b',"predictions":' + outputs + b"}"


def _columns(frame: Any) -> bytes:
    """``{"name": [values], ...}``: a frame's columns as JSON. polars writes a big frame
    in one pass; on a few rows its query costs 0.4 ms, twenty times ``json.dumps``."""
    import polars as pl

    if frame.height < 64:
        return json.dumps(frame.to_dict(as_series=False), default=str).encode()
    return frame.select(pl.all().implode()).write_json().encode()[1:-1]


def build_app(
    served: Served, log: LogWriter, token: str | None, limits: Limits, lifespan: Any = None
) -> Any:
    """The ASGI app: POST /predict, GET /health, GET /model, GET /metrics."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    metrics = Metrics(served)

    def refuse(status: int, message: str, rid: str, path: str, started: float) -> JSONResponse:
        """A refusal, logged (without the request's data) and counted."""
        seconds = time.perf_counter() - started
        log.write(request_line(rid, status, seconds * 1000, 0, error=message, path=path))
        metrics.observe(status)
        return JSONResponse({"error": message}, status_code=status, headers={"x-request-id": rid})

    def allowed(request: Request) -> bool:
        if token is None:
            return True
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())

    def unauthorized(request: Request, started: float) -> JSONResponse:
        rid = uuid.uuid4().hex  # the client's id is not trusted before the token is
        message = "bad or missing token (send Authorization: Bearer TOKEN)"
        return refuse(401, message, rid, request.url.path, started)

    async def predict(request: Request) -> Response:
        started = time.perf_counter()
        if not allowed(request):
            return unauthorized(request, started)
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        too_big = f"the body is over the {limits.max_bytes:,}-byte limit"
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_bytes:
            return refuse(413, too_big, rid, "/predict", started)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limits.max_bytes:
                return refuse(413, too_big, rid, "/predict", started)
        ctype = request.headers.get("content-type", "application/json")
        args = (served, log, metrics, bytes(body), ctype, rid, limits)
        try:
            small = len(body) < INLINE_BYTES
            answer = score(*args) if small else await run_in_threadpool(score, *args)
        except Refused as exc:
            return refuse(exc.status, exc.message, rid, "/predict", started)
        return Response(answer, media_type="application/json", headers={"x-request-id": rid})

    async def health(request: Request) -> JSONResponse:
        if not allowed(request):
            return unauthorized(request, time.perf_counter())
        mv = served.current[0]
        status = {"status": "ok", "model": served.ref, "version": mv.version}
        if served.last_error:
            status["alias_error"] = served.last_error
        return JSONResponse(status)

    async def model(request: Request) -> JSONResponse:
        if not allowed(request):
            return unauthorized(request, time.perf_counter())
        mv = served.current[0]
        return JSONResponse(
            {
                "name": mv.model,
                "version": mv.version,
                "alias": served.ref.partition("@")[2],
                "aliases": list(mv.aliases),
                "signature": mv.signature,
                "training_dataset": mv.dataset_ref,
                "run": mv.run_id,
            }
        )

    async def metrics_text(request: Request) -> Response:
        if not allowed(request):
            return unauthorized(request, time.perf_counter())
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/predict", predict, methods=["POST"]),
            Route("/health", health),
            Route("/model", model),
            Route("/metrics", metrics_text),
        ],
        lifespan=lifespan,
    )


def check_host(host: str, token: str | None) -> None:
    """Anything past this machine needs a token."""
    if host not in LOOPBACK and not token:
        raise UsageError(
            f"listening on {host} lets other machines in: give a token (--token or "
            f"{TOKEN_ENV}), checked on every request"
        )


def listening(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything is announced or logged: a port in use
    is one line and leaves nothing behind (Uvicorn, binding it itself, logged the error
    after "Serving ..." was printed, left an empty log file and exited 3)."""
    import errno
    import socket

    # the address family as Uvicorn picks it: IPv6 for an address with colons
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if isinstance(exc, socket.gaierror):
            raise UsageError(f"cannot listen on {host}: {exc.strerror}") from None
        if exc.errno == errno.EADDRINUSE:
            raise WorkbenchError(
                f"port {port} on {host} is in use (another server?): choose another with --port"
            ) from None
        raise WorkbenchError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def serve(
    project: Project,
    ref: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    limits: Limits | None = None,
    ready: Any = None,
) -> None:
    """Serve ``ref`` until interrupted. ``ready(url)`` is called once it listens."""
    try:
        import uvicorn
    except ImportError:
        raise UsageError(
            "workbench serve needs the serve extra: pip install 'workbench[serve]'"
        ) from None
    check_host(host, token)
    served = Served(project, ref)  # an unknown model or alias is said before binding
    sock = listening(host, port)
    max_bytes = int(project.settings.serving.max_log_mb * 1024 * 1024)
    log = LogWriter(project.serving_dir, max_bytes)
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    note = prediction_log.announce(
        project.serving_dir, log.server_id, {"url": url, "ref": ref, "started": time.time()}
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        # Uvicorn re-raises SIGTERM once it has shut down, which ends the process before
        # a ``finally`` below could run: the server stops being announced here.
        yield
        note.unlink(missing_ok=True)

    app = build_app(served, log, token, limits or Limits(), lifespan)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    served.start()
    if ready is not None:
        mv = served.current[0]
        ready(url, mv.ref, log.path)
    try:
        server.run(sockets=[sock])
    finally:
        served.stop()
        log.close()
        note.unlink(missing_ok=True)
        sock.close()
