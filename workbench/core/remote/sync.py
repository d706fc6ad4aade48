"""``push`` and ``pull``: a project's store copied to and from a remote.

A remote holds three things, in the same layout on a folder or in a bucket::

    objects/ab/cdef…        the blobs, named by SHA-256 (as in .workbench/objects)
    catalogs/<sha256>.duckdb  consistent copies of the catalog, named by their hash
    HEAD                    JSON: which catalog copy is current, and its audit head

Blobs are content-addressed, so what to send is a set difference; a push sends the
missing blobs first, then the catalog copy, and writes ``HEAD`` last, so a push killed
halfway leaves the remote as it was (plus blobs nothing points at yet, which the next
push does not send again). A pull checks everything it fetched against its hash before
it changes anything, writes the blobs, then replaces the catalog's rows in one
transaction.

History is the audit chain: every change to a project appends an entry whose hash
covers all before it. A push is allowed when this project's chain contains the remote's
head (the remote is behind or equal), a pull when the remote's chain contains this
project's head (this project is behind). Otherwise the two have diverged, and both
refuse and say what to do: there is no merge. Logged serving requests are not on the
chain, so they are compared by themselves. Push and pull add no audit entry of their
own: after a pull the project's trail is the remote's, entry for entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workbench.core.errors import StoreError
from workbench.core.records import Record
from workbench.core.remote import config, copies
from workbench.core.remote.backends import Backend, Moved, open_backend
from workbench.core.store import audit
from workbench.core.store.migrations import SCHEMA_VERSION

if TYPE_CHECKING:
    import duckdb

    from workbench.core.project import Project

HEAD_KEY = "HEAD"
FORMAT = 1
OBJECTS = "objects/"


@dataclass(eq=False)
class Synced(Record):
    """What a push or a pull did, for the one line the CLI prints (and ``--json``)."""

    remote: str
    url: str
    direction: str  # "push" | "pull"
    objects_sent: int = 0  # sent (push) or fetched (pull)
    bytes_sent: int = 0
    objects_present: int = 0  # already on the other side
    catalog_bytes: int = 0
    audit_seq: int = 0  # the head both sides now share
    before_seq: int = 0  # the other side's head before
    up_to_date: bool = False
    running: int = 0  # runs still running when the catalog was copied
    ahead: int = 0  # audit entries this project has beyond the remote (a pull that did nothing)


@dataclass(frozen=True)
class RemoteHead:
    catalog: str
    catalog_bytes: int
    schema: int
    audit: audit.Head
    requests: int
    objects: int

    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT,
            "catalog": self.catalog,
            "catalog_bytes": self.catalog_bytes,
            "schema": self.schema,
            "audit": self.audit.to_dict(),
            "requests": self.requests,
            "objects": self.objects,
            "pushed_at": audit.now().isoformat(),
            "pushed_by": audit.actor(),
        }
        return (json.dumps(doc, indent=2) + "\n").encode()


def _object_key(digest: str) -> str:
    return f"{OBJECTS}{digest[:2]}/{digest[2:]}"


def _catalog_key(digest: str) -> str:
    return f"catalogs/{digest}.duckdb"


def read_head(backend: Backend, name: str) -> RemoteHead | None:
    return _parse_head(backend.get(HEAD_KEY), name)


def _parse_head(raw: bytes | None, name: str) -> RemoteHead | None:
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
        if doc.get("format") != FORMAT:
            raise StoreError(
                f"the remote {name} was written in format {doc.get('format')}, this workbench "
                f"knows {FORMAT}; upgrade workbench"
            )
        h = doc["audit"]
        return RemoteHead(
            catalog=str(doc["catalog"]),
            catalog_bytes=int(doc["catalog_bytes"]),
            schema=int(doc["schema"]),
            audit=audit.Head(int(h["seq"]), str(h["hash"])),
            requests=int(doc.get("requests", 0)),
            objects=int(doc.get("objects", 0)),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise StoreError(
            f"the remote {name}'s HEAD is not one workbench wrote; refusing it"
        ) from None


def _diverged(name: str, remote: audit.Head, local: audit.Head, pushing: bool) -> StoreError:
    if pushing:
        return StoreError(
            f"the remote {name} holds history this project lacks (its audit trail is at "
            f"entry {remote.seq}, which this project's does not contain): "
            f"`workbench pull {name}` first; if this project has changed too, the two have "
            "diverged: push to another remote instead"
        )
    return StoreError(
        f"this project holds history the remote {name} lacks (audit entry {local.seq} is "
        f"not in the remote's trail, which is at entry {remote.seq}): a pull would "
        f"overwrite it. `workbench push {name}` if the remote is behind; if both have "
        "changed, pull into a new project (`workbench init DIR`, `workbench --project DIR "
        f"remote add {name} URL`, `workbench --project DIR pull`)"
    )


def push(project: Project, name: str | None = None) -> Synced:
    """Send this project's objects and catalog to a remote that is behind it."""
    spec = config.get(project.store_dir, name)
    backend = open_backend(spec.url, spec.endpoint_url)
    copies.fold(project)
    raw, tag = backend.get_tagged(HEAD_KEY)
    remote = _parse_head(raw, spec.name)
    done = Synced(spec.name, spec.url, "push")
    done.before_seq = remote.audit.seq if remote else 0

    def check(con: duckdb.DuckDBPyConnection, local: audit.Head, requests: int) -> bool:
        if remote is None:
            return True
        if audit.reaches(con, remote.audit, f"the remote {spec.name}"):
            raise _diverged(spec.name, remote.audit, local, pushing=True)
        if remote.requests > requests:
            raise StoreError(
                f"the remote {spec.name} holds {remote.requests - requests:,} logged "
                f"serving request(s) this project lacks: `workbench pull {spec.name}` first"
            )
        return not (remote.audit == local and remote.requests == requests)

    with copies.scratch(project) as area:
        copy = copies.copy_catalog(project, area / "catalog.duckdb", check)
        if copy is None:
            done.up_to_date = True
            done.audit_seq = remote.audit.seq if remote else 0
            return done
        done.running = copy.running
        backend.clean()
        have = {k[len(OBJECTS) :].replace("/", "") for k in backend.keys(OBJECTS)}
        missing = sorted(set(copy.refs) - have)
        done.objects_present = len(copy.refs) - len(missing)
        left_out = project.objects.left_out()
        if lacking := [d for d in missing if d in left_out and not project.objects.has(d)]:
            by = left_out[lacking[0]].get("by", "a bundle")
            raise StoreError(
                f"this project lacks {len(lacking):,} object(s) the remote does not have either "
                f"(left out of {by}), e.g. {lacking[0][:12]} ({copy.refs[lacking[0]]}): a "
                "remote must be whole; push from the project that has them, or import a "
                "bundle that carries them first; nothing was sent"
            )

        def send(digest: str) -> int:
            data = project.objects.read_bytes(digest, copy.refs[digest])  # refused if damaged
            backend.put(_object_key(digest), data)
            return len(data)

        with ThreadPoolExecutor(backend.in_flight) as pool:
            for size in pool.map(send, missing):
                done.objects_sent += 1
                done.bytes_sent += size
        data = copy.path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    backend.put(_catalog_key(digest), data)
    done.catalog_bytes = len(data)
    head = RemoteHead(digest, len(data), SCHEMA_VERSION, copy.head, copy.requests, len(copy.refs))
    # HEAD last, and only over the HEAD this push started from: until here a reader of
    # the remote sees what was there before, and of two racing pushes one is refused
    try:
        backend.put_if(HEAD_KEY, head.to_json(), tag)
    except Moved:
        raise StoreError(
            f"someone else pushed to {spec.name} while this push ran; "
            f"`workbench pull {spec.name}`, then push again (what this push sent stays "
            "there and is not sent again)"
        ) from None
    done.audit_seq = copy.head.seq
    return done


def _fetch(
    backend: Backend, name: str, wanted: dict[str, str], keep: Callable[[str, bytes], object]
) -> int:
    """Fetch blobs in parallel, each checked against its name before ``keep`` sees it."""

    def one_blob(digest: str) -> tuple[str, bytes]:
        data = backend.get(_object_key(digest))
        if data is None:
            raise StoreError(
                f"the remote {name} lacks object {digest[:12]} ({wanted[digest]}) that its "
                "catalog points at; nothing was changed (push to it again from a whole project)"
            )
        if hashlib.sha256(data).hexdigest() != digest:
            raise StoreError(
                f"object {digest[:12]} ({wanted[digest]}) on the remote {name} does not match "
                "its hash: it was damaged there; refusing it, nothing was changed"
            )
        return digest, data

    total = 0
    with ThreadPoolExecutor(backend.in_flight) as pool:
        for digest, data in pool.map(one_blob, sorted(wanted)):
            keep(digest, data)
            total += len(data)
    return total


def pull(project: Project, name: str | None = None) -> Synced:
    """Bring this project up to a remote that is ahead of it (or fill an empty one)."""
    spec = config.get(project.store_dir, name)
    backend = open_backend(spec.url, spec.endpoint_url)
    remote = read_head(backend, spec.name)
    if remote is None:
        raise StoreError(f"the remote {spec.name} holds nothing yet: push to it first")
    copies.fold(project)
    done = Synced(spec.name, spec.url, "pull")
    local, requests, holds = copies.local_state(project, remote.audit)
    done.before_seq = local.seq
    if requests >= remote.requests and holds:
        # level with the remote, or ahead of it (then `push` is what moves things)
        done.up_to_date, done.audit_seq = True, remote.audit.seq
        done.ahead = local.seq - remote.audit.seq
        return done
    data = backend.get(_catalog_key(remote.catalog))
    if data is None:
        raise StoreError(
            f"the remote {spec.name} names catalog copy {remote.catalog[:12]}, which is not "
            "there: push to it again from a whole project"
        )
    if hashlib.sha256(data).hexdigest() != remote.catalog:
        raise StoreError(
            f"the catalog copy on the remote {spec.name} ({remote.catalog[:12]}) does not "
            "match its hash: it was damaged there; refusing it, nothing was changed"
        )
    done.catalog_bytes = len(data)
    with copies.scratch(project) as area:
        snap = area / "catalog.duckdb"
        snap.write_bytes(data)
        del data
        refs = copies.check_copy(
            project, snap, remote.audit, local, f"the remote {spec.name}",
            lambda: _diverged(spec.name, remote.audit, local, pushing=False),
        )  # fmt: skip
        wanted = {d: what for d, what in refs.items() if not project.objects.has(d)}
        done.objects_present = len(refs) - len(wanted)
        with project.objects.stage() as stage:
            done.bytes_sent = _fetch(
                backend, spec.name, wanted, lambda d, blob: stage.put_bytes(blob, d)
            )
            stage.commit()  # blobs first: a catalog row is written only once its blob is there
        done.objects_sent = len(wanted)
        copies.install(project, snap, local, f"the remote {spec.name}")
    done.audit_seq = remote.audit.seq
    return done
