"""The prediction log: what a served model was asked and what it answered.

A scoring server never opens the catalog (docs/architecture.md): it appends one JSON
line per request, in one ``write``, to a file of its own under ``.workbench/serving/``,
before the answer leaves, so a server killed with SIGKILL has logged every request it
answered. A read that wants the log (``workbench sql``, monitoring) first folds what is
new into two tables, ``serving_requests`` and ``predictions``, from the byte offset the
catalog records per file, in one transaction: the offset moves with the rows, so a fold
that is interrupted is done again whole and nothing is folded twice. A file whose writer
has moved on (it rotated, or its process is gone) is deleted once folded. Rows older than
``[serving] retention_days`` are deleted at each fold.

A line starts with its small fields in a fixed order (``ts``, ``id``, ``status``,
``latency_ms``, ``rows``, ``model``, ``version``), so that the app's live traffic panel
reads them with a regex over the line's head instead of decoding a thousand-row body.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.store.objects import _pid_alive

if TYPE_CHECKING:
    from workbench.core.store.catalog import Catalog

FOLDER = "serving"
FOLD_BYTES = 32 * 1024 * 1024  # of log lines per fold transaction
SERVER_SUFFIX = ".server.json"
# {stamp}-{pid}-{server}-{seq}.jsonl: the pid says whether its writer still runs, the
# server id and sequence whether it has moved on to a later file.
_NAME = re.compile(r"^(\d{8}T\d{6})-(\d+)-([0-9a-f]+)-(\d{5})\.jsonl$")
_HEAD = re.compile(
    rb'^\{"ts":"([^"]+)","id":"(?:[^"\\]|\\.)*","status":(\d+),"latency_ms":([0-9.eE+-]+),'
    rb'"rows":(\d+)(?:,"model":"((?:[^"\\]|\\.)*)","version":(\d+))?'
)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def encode(record: dict[str, Any]) -> bytes:
    """One log line. ``record`` must hold the head fields first (see the module doc)."""
    return (json.dumps(record, default=str, separators=(",", ":")) + "\n").encode()


def request_line(
    rid: str, status: int, latency_ms: float, rows: int, model: str | None = None,
    version: int | None = None, **rest: Any,
) -> bytes:  # fmt: skip
    """A request's line, its head fields in the order the traffic reader expects."""
    head: dict[str, Any] = {
        "ts": _now(),
        "id": rid,
        "status": status,
        "latency_ms": round(latency_ms, 3),
        "rows": rows,
    }
    if model is not None:
        head["model"], head["version"] = model, version
    head.update(rest)
    return encode(head)


class LogWriter:
    """One server's log: lines appended with one ``write`` each, a new file past
    ``max_bytes`` (the old one is then the fold's to delete)."""

    def __init__(self, folder: Path, max_bytes: int = 64 * 1024 * 1024) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.max_bytes = folder, max_bytes
        self.server_id = uuid.uuid4().hex[:8]
        self._seq = 0
        self._lock = threading.Lock()
        self._fd, self._size = self._open()

    def _open(self) -> tuple[int, int]:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self.path = self.folder / f"{stamp}-{os.getpid()}-{self.server_id}-{self._seq:05d}.jsonl"
        return os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), 0

    def write(self, line: bytes) -> None:
        with self._lock:
            os.write(self._fd, line)
            self._size += len(line)
            if self._size >= self.max_bytes:
                os.close(self._fd)
                self._seq += 1
                self._fd, self._size = self._open()

    def close(self) -> None:
        with self._lock:
            os.close(self._fd)


# ---- who serves what (for the app) -------------------------------------------------------


def announce(folder: Path, server_id: str, info: dict[str, Any]) -> Path:
    """Say this server runs (its url, model reference, pid), for the app's traffic panel;
    written whole by a rename."""
    path = folder / f"{server_id}{SERVER_SUFFIX}"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**info, "server": server_id, "pid": os.getpid()}))
    os.replace(tmp, path)
    return path


def servers(folder: Path) -> list[dict[str, Any]]:
    """The servers that run now (announced, their process alive); stale notes go."""
    out = []
    for path in sorted(folder.glob(f"*{SERVER_SUFFIX}")):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if _pid_alive(int(info.get("pid", 0))):
            out.append(info)
        else:
            path.unlink(missing_ok=True)
    return out


@dataclass
class Traffic:
    """One server's recent traffic, as the app shows it."""

    server: str
    requests: int = 0  # in the window
    errors: int = 0
    per_second: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    version: int | None = None
    total: int = 0  # since the panel started reading


@dataclass
class _Seen:
    offset: int = 0
    carry: bytes = b""


@dataclass
class TrafficReader:
    """Reads only what each log file gained since the last look, and keeps the last
    ``window`` seconds of (time, latency, status) per server."""

    folder: Path
    window: float = 10.0
    _files: dict[str, _Seen] = field(default_factory=dict)
    _recent: dict[str, list[tuple[float, float, int, int | None]]] = field(default_factory=dict)
    _total: dict[str, int] = field(default_factory=dict)

    def read(self, now: float | None = None) -> dict[str, Traffic]:
        now = time.time() if now is None else now
        paths = [p for p in sorted(self.folder.glob("*.jsonl")) if _NAME.match(p.name)]
        names = {p.name for p in paths}
        self._files = {n: s for n, s in self._files.items() if n in names}  # folded and gone
        for path in paths:
            m = _NAME.match(path.name)
            assert m is not None
            seen = self._files.setdefault(path.name, _Seen())
            if not seen.offset:
                try:  # a file the fold deletes between the listing and this look: skip it
                    info = path.stat()
                except OSError:
                    continue
                if info.st_mtime < now - self.window:
                    seen.offset = info.st_size  # old traffic: not this panel's news
                    continue
            try:
                with open(path, "rb") as f:
                    f.seek(seen.offset)
                    data = f.read()
            except OSError:
                continue
            seen.offset += len(data)
            lines = (seen.carry + data).split(b"\n")
            seen.carry = lines.pop()
            recent = self._recent.setdefault(m.group(3), [])
            for line in lines:
                h = _HEAD.match(line)
                if h is None:
                    continue
                ts = datetime.fromisoformat(h.group(1).decode()).timestamp()
                version = int(h.group(6)) if h.group(6) else None
                recent.append((ts, float(h.group(3)), int(h.group(2)), version))
                self._total[m.group(3)] = self._total.get(m.group(3), 0) + 1
        out = {}
        for server, recent in self._recent.items():
            recent[:] = [r for r in recent if r[0] >= now - self.window]
            out[server] = _summary(server, recent, self.window, self._total.get(server, 0))
        return out


def _summary(
    server: str, recent: list[tuple[float, float, int, int | None]], window: float, total: int
) -> Traffic:
    import numpy as np

    t = Traffic(server, total=total)
    if not recent:
        return t
    lat = np.array([r[1] for r in recent])
    t.requests = len(recent)
    t.errors = sum(1 for r in recent if r[2] >= 400)
    t.per_second = len(recent) / window
    t.p50_ms, t.p99_ms = (float(v) for v in np.percentile(lat, [50, 99]))
    t.version = next((r[3] for r in reversed(recent) if r[3] is not None), None)
    return t


# ---- the fold ----------------------------------------------------------------------------


@dataclass
class Folded:
    files: int = 0
    requests: int = 0
    predictions: int = 0
    pruned: int = 0
    deleted_files: list[str] = field(default_factory=list)


def _finished(path: Path, names: list[str]) -> bool:
    """Its writer has moved on: a later file of the same server exists, or the writing
    process is gone."""
    m = _NAME.match(path.name)
    if m is None:
        return False
    later = any(
        (n := _NAME.match(other)) and n.group(3) == m.group(3) and n.group(4) > m.group(4)
        for other in names
    )
    return later or not _pid_alive(int(m.group(2)))


def _new_lines(path: Path, start: int, stop: int) -> tuple[bytes, int]:
    """The whole lines between ``start`` and about ``stop`` (a line that crosses it is
    read to its end), and the offset after the last of them (a line being written, or
    torn by a kill mid-write, waits or is left)."""
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(stop - start)
        if data and not data.endswith(b"\n"):
            data += f.readline()  # to the end of the line it stopped in (if it has one)
    end = data.rfind(b"\n") + 1
    return data[:end], start + end


def fold(catalog: Catalog, folder: Path, retention_days: float = 30) -> Folded:
    """Fold every log's new whole lines into the catalog, prune past retention, and
    delete the files whose writers moved on and that are folded to their end.

    At most ``FOLD_BYTES`` of lines go in one transaction (a month of traffic folded at
    once must not need its size in memory); each moves its files' offsets with its rows."""
    done = Folded()
    paths = (
        sorted(p for p in folder.glob("*.jsonl") if _NAME.match(p.name)) if folder.is_dir() else []
    )
    if paths:  # once per fold, not once per file it folds
        _clear_dead_scratch(folder)
    sizes = {}
    for p in paths:
        try:
            sizes[p.name] = p.stat().st_size
        except OSError:
            continue
    cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=retention_days)
    with catalog.read() as con:
        offsets = dict(con.execute("SELECT file, folded_bytes FROM prediction_logs").fetchall())
        oldest = con.execute("SELECT min(ts) FROM serving_requests").fetchone()
    gone = [n for n in offsets if n not in sizes]
    stale = oldest is not None and oldest[0] is not None and oldest[0] < cutoff

    def behind() -> bool:
        return any(size > offsets.get(n, 0) for n, size in sizes.items())

    first, pending = True, bool(gone or stale or behind())
    while pending:
        with catalog.write() as con:
            offsets = dict(con.execute("SELECT file, folded_bytes FROM prediction_logs").fetchall())
            moved = _fold_some(con, folder, sizes, offsets, done)
            if first:
                for name in gone:
                    con.execute("DELETE FROM prediction_logs WHERE file = ?", [name])
                pruned = con.execute("DELETE FROM predictions WHERE ts < ?", [cutoff]).fetchone()
                done.pruned = int(pruned[0]) if pruned else 0
                con.execute("DELETE FROM serving_requests WHERE ts < ?", [cutoff])
        offsets.update(moved)
        first, pending = False, behind()
    for name in sorted(sizes):  # the catalog holds them now: the file is not needed
        if offsets.get(name, 0) >= sizes[name] and _finished(folder / name, list(sizes)):
            (folder / name).unlink(missing_ok=True)
            done.deleted_files.append(name)
    return done


def _fold_some(
    con: Any, folder: Path, sizes: dict[str, int], offsets: dict[str, Any], done: Folded
) -> dict[str, int]:
    """Up to ``FOLD_BYTES`` of new lines, oldest files first, into the catalog; the
    offsets they moved to (recorded in the same transaction)."""
    moved: dict[str, int] = {}
    budget = FOLD_BYTES
    for name in sorted(sizes):
        start = offsets.get(name, 0)
        if sizes[name] <= start or budget <= 0:
            continue
        data, end = _new_lines(folder / name, start, min(sizes[name], start + budget))
        budget -= end - start
        moved[name] = end
        if end == start:  # a line still being written: done with this file for now
            sizes[name] = start
            continue
        with _scratch(folder, _finite(data)) as scratch:
            requests, predictions = _insert(con, scratch, name)
        done.requests += requests
        done.predictions += predictions
    for name, end in moved.items():
        con.execute("INSERT OR REPLACE INTO prediction_logs VALUES (?, ?, now())", [name, end])
    done.files += sum(1 for n, end in moved.items() if end > offsets.get(n, 0))
    return moved


_SCRATCH = ".fold-"
_NOT_FINITE = (b"NaN", b"Infinity")


def _finite(data: bytes) -> bytes:
    """Lines with NaN or Infinity (Python clients send them; they are not JSON) with those
    values as null, as missing values are logged; the other lines as they are."""
    if not any(token in data for token in _NOT_FINITE):  # as fast as memchr
        return data
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        if not any(token in line for token in _NOT_FINITE):
            continue
        try:
            value = json.loads(line, parse_constant=lambda _: None)
        except ValueError:
            continue  # not a line of ours: the fold skips it
        lines[i] = json.dumps(value, separators=(",", ":")).encode()
    return b"\n".join(lines)


def _clear_dead_scratch(folder: Path) -> None:
    """Delete the scratch files of folds whose process died (killed mid-fold)."""
    for old in folder.glob(f"{_SCRATCH}*"):
        pid = old.name.removeprefix(_SCRATCH).split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            old.unlink(missing_ok=True)


@contextlib.contextmanager
def _scratch(folder: Path, data: bytes) -> Iterator[Path]:
    """The lines to fold in a file of their own beside the log (DuckDB parses files, not a
    byte range of one), readable by this user only, gone with the fold (a killed fold's at
    the next one: ``_clear_dead_scratch``)."""
    path = folder / f"{_SCRATCH}{os.getpid()}-{uuid.uuid4().hex[:12]}.jsonl"
    try:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except OSError as exc:
            from workbench.core.store.objects import store_write_error

            raise store_write_error(exc, folder) from None
        yield path
    finally:
        path.unlink(missing_ok=True)


# A line's fields as the server writes them; a line that is not JSON, not an object, or
# has no time is not ours to judge and is skipped, as a field of the wrong type is nulled.
_FIELDS = (
    "{ts: 'VARCHAR', id: 'VARCHAR', status: 'INTEGER', latency_ms: 'DOUBLE', rows: 'BIGINT', "
    "model: 'VARCHAR', version: 'INTEGER', error: 'VARCHAR', path: 'VARCHAR', "
    "inputs: 'JSON', outputs: 'JSON'}"
)


def _rows_of(column: str, kind: str) -> str:
    """SQL for one JSON object per row of each answered request's ``column``, whether it was
    logged as a list of records (as a client sent them) or as columns (a batch)."""
    return f"""
        SELECT seq, generate_subscripts(l, 1) - 1 AS row, unnest(l) AS v FROM (
            SELECT seq, json_extract({column}, '$[*]') AS l
            FROM answered WHERE {kind} = 'ARRAY')
        UNION ALL
        SELECT a.seq, e.key::BIGINT AS row,
               ('{{' || string_agg(to_json(c.key) || ':' || e.value, ',' ORDER BY c.id)
                || '}}')::JSON AS v
        FROM (SELECT seq, {column} AS j FROM answered WHERE {kind} = 'OBJECT') a,
             json_each(a.j) c, json_each(c.value) e
        WHERE c.type = 'ARRAY'
        GROUP BY a.seq, e.key"""


def _insert(con: Any, lines: Path, log: str) -> tuple[int, int]:
    """One file of whole lines into ``serving_requests`` and ``predictions``, in file
    order: DuckDB parses them (six times as fast as ``json.loads``, bench/fold_bench.py);
    each row's inputs and outputs are kept as the client and the model gave them. The
    requests and rows it added."""
    source = str(lines).replace("'", "''")
    # DuckDB refuses a line past 16 MB by default (a 100,000-row request is logged whole):
    # no line is longer than the file that holds it
    longest = max(1 << 24, lines.stat().st_size + 1)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _wb_lines AS
        SELECT * FROM (
            SELECT row_number() OVER () AS seq,
                   timezone('UTC', try_cast(ts AS TIMESTAMPTZ)) AS stamp,
                   json_type(inputs) AS inputs_kind, json_type(outputs) AS outputs_kind, *
            FROM read_json('{source}', format = 'newline_delimited', records = true,
                           ignore_errors = true, maximum_object_size = {longest},
                           columns = {_FIELDS}))
        WHERE stamp IS NOT NULL"""
    )
    try:
        got = con.execute(
            """INSERT INTO serving_requests
            SELECT coalesce(id, ''), stamp, model, version, coalesce(rows, 0),
                   coalesce(latency_ms, 0), coalesce(status, 0), error,
                   coalesce(path, '/predict'), ?
            FROM _wb_lines ORDER BY seq""",
            [log],
        ).fetchone()
        rows = con.execute(
            f"""INSERT INTO predictions
            WITH answered AS (
                SELECT * FROM _wb_lines
                WHERE status = 200 AND rows > 0 AND model IS NOT NULL AND version IS NOT NULL),
            base AS (SELECT seq, id, stamp, model, version, unnest(range(rows)) AS row
                     FROM answered),
            ins AS ({_rows_of("inputs", "inputs_kind")}),
            outs AS ({_rows_of("outputs", "outputs_kind")})
            SELECT coalesce(b.id, ''), b.row, b.stamp, b.model, b.version,
                   coalesce(i.v, '{{}}'), coalesce(o.v, '{{}}')
            FROM base b
            LEFT JOIN ins i ON i.seq = b.seq AND i.row = b.row
            LEFT JOIN outs o ON o.seq = b.seq AND o.row = b.row
            ORDER BY b.seq, b.row"""
        ).fetchone()
    finally:
        con.execute("DROP TABLE IF EXISTS _wb_lines")
    return int(got[0]) if got else 0, int(rows[0]) if rows else 0
