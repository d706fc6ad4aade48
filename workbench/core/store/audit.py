"""The append-only, hash-chained audit trail.

Each entry's hash covers its content and the previous entry's hash, so editing
or deleting any past row breaks the chain from that point on and ``verify``
names the first entry that no longer matches.

The chain alone cannot show that its newest entries were deleted: what is left is
still a valid chain. So the head (the last entry's number and hash) is also kept
outside the catalog, in ``audit.head`` beside it, rewritten after every commit that
added entries; ``verify`` checks that the trail still reaches it, and a user can copy
it elsewhere (``workbench audit head``) to check the whole file against later.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import StoreError
from workbench.core.store import objects
from workbench.core.store.rows import insert_rows

if TYPE_CHECKING:
    import duckdb

GENESIS = "0" * 64
# A run or a drift report by the start of its id, as every list shows it (run:4f2a).
SHORT_ID = re.compile(r"(run|drift):[0-9a-f]{4,31}")
_FULL_ID = re.compile(r"((?:run|drift):[0-9a-f]{8})[0-9a-f]{24}")
ANCHOR = "audit.head"


@dataclass(frozen=True)
class Head:
    """The newest entry: its number and hash (the whole trail up to it, in 64 hex digits)."""

    seq: int
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash}


def head(con: duckdb.DuckDBPyConnection) -> Head | None:
    # max(seq) then the row: a top-1 sort scans the whole table (5 ms at 200k entries)
    row = con.execute(
        "SELECT seq, hash FROM audit WHERE seq = (SELECT max(seq) FROM audit)"
    ).fetchone()
    return Head(int(row[0]), str(row[1])) if row else None


def head_or_genesis(con: duckdb.DuckDBPyConnection) -> Head:
    """The head, or entry 0 with the genesis hash for a trail with no entries yet."""
    return head(con) or Head(0, GENESIS)


def write_anchor(path: Path, h: Head) -> None:
    """Replace the anchor file atomically and durably (a crash leaves the old or the new),
    as the object store writes its blobs."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    objects._write_durable(tmp, json.dumps(h.to_dict()).encode())
    os.replace(tmp, path)
    objects._fsync_dir(path.parent)


def reanchor(con: duckdb.DuckDBPyConnection, path: Path) -> Head:
    """Write the anchor from the trail as it is now (a new store, an upgrade, a repair the
    user asked for); a failure is one line."""
    h = head_or_genesis(con)
    try:
        write_anchor(path, h)
    except OSError as exc:
        raise StoreError(f"cannot write the audit anchor {path}: {exc.strerror}") from None
    return h


def read_anchor(path: Path) -> Head | None:
    """The anchored head; None when there is no anchor file. An unreadable one is a
    ValueError: it was written whole or not at all, so it was edited."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    data = json.loads(raw)
    seq, digest = data["seq"], data["hash"]
    if not isinstance(seq, int) or seq < 0 or not isinstance(digest, str) or len(digest) != 64:
        raise ValueError("not an audit head")
    return Head(seq, digest)


def parse_head(text: str) -> Head:
    """``SEQ:HASH`` as `workbench audit head` prints it."""
    from workbench.core.errors import UsageError

    seq, _, digest = text.strip().partition(":")
    digest = digest.lower()
    if not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise UsageError("a head looks like SEQ:HASH (64 hex digits), as `audit head` prints it")
    return Head(int(seq), digest)


def reaches(con: duckdb.DuckDBPyConnection, h: Head, source: str) -> list[str]:
    """Does the trail still hold entry ``h.seq`` with hash ``h.hash``? (``source`` names
    where the head came from, for the message)."""
    current = head(con)
    if h.seq == 0:
        return []
    if current is None or current.seq < h.seq:
        have = current.seq if current else 0
        return [
            f"the audit trail ends at entry {have}, but {source} says it reached entry "
            f"{h.seq}: the newest entries were deleted"
        ]
    row = con.execute("SELECT hash FROM audit WHERE seq = ?", [h.seq]).fetchone()
    if row is None or row[0] != h.hash:
        return [f"audit entry {h.seq} is not the one {source} recorded: the trail was rewritten"]
    return []


def anchor_problems(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    """Is the trail still at least as long as its anchor says, through the same entry?"""
    try:
        anchored = read_anchor(path)
    except (OSError, ValueError, KeyError, TypeError):
        return [f"the audit anchor {path.name} is unreadable; it was edited by hand"]
    if anchored is None:
        return [
            f"the audit anchor {path.name} is missing, so deleted newest entries would not "
            "show; `workbench verify --repair` writes it from the trail as it is now"
        ]
    return reaches(con, anchored, f"its anchor ({path.name})")


def actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no login name in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def now() -> datetime:
    """UTC wall time without tzinfo: the catalog stores naive UTC timestamps."""
    return datetime.now(UTC).replace(tzinfo=None)


def _entry_hash(
    seq: int, at: str, who: str, action: str, subject: str, details: str, prev: str
) -> str:
    payload = json.dumps([seq, at, who, action, subject, details, prev], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def _canonical(details: dict[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, ensure_ascii=False, default=str)


def append(
    con: duckdb.DuckDBPyConnection, action: str, subject: str, details: dict[str, Any]
) -> int:
    """Add an entry inside the caller's write transaction; returns its sequence number."""
    return append_many(con, [(now(), actor(), action, subject, details)])


# the audit table's columns as polars dtype names (``insert_rows``)
_SCHEMA = {
    "seq": "Int64", "ts": "Datetime", "actor": "String", "action": "String",
    "subject": "String", "details": "String", "prev_hash": "String", "hash": "String",
}  # fmt: skip


def append_many(
    con: duckdb.DuckDBPyConnection,
    entries: list[tuple[datetime, str, str, str, dict[str, Any]]],
) -> int:
    """Add entries ``(at, actor, action, subject, details)`` in the given order with one
    insert (the folding of a hundred runs' journal records must not pay two round trips
    an entry); returns the last entry's sequence number, 0 when there were none."""
    if not entries:
        return 0
    last = head(con)
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    rows: list[list[Any]] = []
    for at, who, action, subject, details in entries:
        det = _canonical(details)
        digest = _entry_hash(
            seq, at.isoformat(timespec="microseconds"), who, action, subject, det, prev
        )
        rows.append([seq, at, who, action, subject, det, prev, digest])
        seq, prev = seq + 1, digest
    insert_rows(con, "audit", rows, _SCHEMA)
    return seq - 1


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    problem: str


def verify_chain(con: duckdb.DuckDBPyConnection) -> list[ChainProblem]:
    rows = con.execute(
        "SELECT seq, ts, actor, action, subject, details, prev_hash, hash FROM audit ORDER BY seq"
    ).fetchall()
    problems: list[ChainProblem] = []
    prev = GENESIS
    expected_seq = 1
    for seq, at, who, action, subject, det, prev_hash, digest in rows:
        if seq != expected_seq:
            problems.append(
                ChainProblem(expected_seq, f"entries {expected_seq}..{seq - 1} are missing")
            )
        expected_seq = seq + 1
        at_s = at.isoformat(timespec="microseconds")
        if prev_hash != prev:
            problems.append(ChainProblem(seq, "does not link to the entry before it"))
        if _entry_hash(seq, at_s, who, action, subject, det, prev_hash) != digest:
            problems.append(ChainProblem(seq, "was altered after it was written"))
        prev = digest
    return problems


def shown(subject: str) -> str:
    """A subject as a list shows it: a run or report by its short id (``run:4f2a9c1e``),
    which ``entries(subject=...)`` and every command take back."""
    m = _FULL_ID.fullmatch(subject)
    return m.group(1) if m else subject


def entries(
    con: duckdb.DuckDBPyConnection, subject: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Newest first. ``subject`` is a dataset or model (its versions included: ``churn``
    gives ``churn@2``'s entries too), or a run or drift report by the short id every list
    shows (``run:4f2a``: the ids that start so)."""
    sql = "SELECT seq, ts, actor, action, subject, details FROM audit"
    args: list[Any] = []
    if subject:
        sql += " WHERE subject = ? OR starts_with(subject, ?)"
        args += [subject, subject if SHORT_ID.fullmatch(subject) else subject + "@"]
    sql += " ORDER BY seq DESC"
    if limit:
        sql += " LIMIT ?"
        args.append(limit)
    out = []
    for seq, at, who, action, subj, det in con.execute(sql, args).fetchall():
        out.append(
            {
                "seq": seq,
                "at": at.isoformat(sep=" ", timespec="seconds"),
                "actor": who,
                "action": action,
                "subject": subj,
                "details": json.loads(det),
            }
        )
    return out
