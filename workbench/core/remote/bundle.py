"""Bundles: a project (or what changed since an earlier bundle) as one file that crosses
an air gap on a USB stick, and is taken in on the other side like a pull.

A bundle is a plain tar (its Parquet chunks and models are compressed already)::

    manifest.json         what it holds: the audit head, the catalog copy's hash, each
                          object's hash and size, every object the catalog points at,
                          and the bundle it builds on, if any
    catalog.duckdb        a consistent copy of the catalog
    objects/<sha256>      the blobs the other side lacks

A partial bundle (``--only datasets|runs|models``) still carries the whole catalog, so
the audit chain and history are checked and continued as for any other; only the blobs
of the other parts stay behind. Its manifest names them (``left_out``), the importing
project records them (``objects/left-out.json``), and reads and ``verify`` then say
"left out of bundle X" rather than "damaged". A later bundle that carries them, or a
pull, fills them in.

and ``FILE.sha256`` beside it, in ``sha256sum`` format, so the file can be checked on
either side with the usual tool. Import checks the sidecar (when present), then every
member against the manifest, the catalog copy's audit chain and history, and that every
object the catalog needs is in the bundle or already here, all before it changes
anything; then it writes the objects and replaces the catalog's rows in one transaction,
as a pull does. Importing the same bundle again changes nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from workbench.core.errors import StoreError, UsageError
from workbench.core.records import Record
from workbench.core.remote import copies
from workbench.core.store import audit
from workbench.core.store.verify import PARTS, references_by_part

if TYPE_CHECKING:
    from workbench.core.project import Project

FORMAT = 1
KIND = "workbench-bundle"
MANIFEST = "manifest.json"
CATALOG = "catalog.duckdb"


@dataclass(eq=False)
class Bundled(Record):
    """What ``bundle create`` or ``bundle import`` did."""

    file: str
    sha256: str = ""
    objects: int = 0  # in the bundle (create) or taken from it (import)
    object_bytes: int = 0
    catalog_bytes: int = 0
    bytes: int = 0  # the bundle file
    referenced: int = 0  # objects the catalog points at
    audit_seq: int = 0
    before_seq: int = 0
    base: str | None = None  # what it builds on: a bundle's hash or a date
    only: list[str] = field(default_factory=list)  # the parts carried; empty: all
    left_out: int = 0  # blobs the catalog points at that the bundle does not carry
    up_to_date: bool = False


class _Hashing:
    """A write-only file that hashes what passes through (the bundle's own hash, without
    reading a gigabyte back)."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.h.update(data)
        self.n += len(data)
        return self.f.write(data)

    def tell(self) -> int:
        return self.n


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0  # the same content makes the same bundle
    info.mode = 0o444
    tar.addfile(info, io.BytesIO(data))


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        with tarfile.open(path, "r:") as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST:
                raise ValueError
            f = tar.extractfile(first)
            doc = json.loads(f.read() if f else b"")
    except FileNotFoundError:
        raise UsageError(f"no such bundle: {path}") from None
    except (tarfile.TarError, ValueError, OSError):
        raise StoreError(f"{path} is not a workbench bundle (or it was cut short)") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise StoreError(f"{path} is not a workbench bundle")
    if doc.get("format") != FORMAT:
        raise StoreError(
            f"{path} is bundle format {doc.get('format')}; this workbench reads {FORMAT}: "
            "upgrade workbench"
        )
    return doc


def _base(project: Project, since: str | None) -> tuple[set[str], str | None]:
    """The objects the other side has already: those an earlier bundle's catalog points
    at, or those stored before a date."""
    if since is None:
        return set(), None
    path = Path(since)
    if path.exists() or since.endswith(".tar") or os.sep in since:
        doc = read_manifest(path)  # what it left out, the other side lacks still
        held = set(doc["refs"]) - set(doc.get("left_out", {}))
        return held, f"{path.name} (audit entry {doc['audit']['seq']})"
    try:
        day = date.fromisoformat(since)
    except ValueError:
        raise UsageError(
            f"--since takes an earlier bundle file or a date (YYYY-MM-DD), not {since!r}"
        ) from None
    with project.catalog.read() as con:
        rows = con.execute(  # every blob (chunks, patches, models, artifacts) has a row
            "SELECT hash FROM objects WHERE created_at < ?",
            [datetime.combine(day, datetime.min.time())],
        ).fetchall()
    return {r[0] for r in rows}, day.isoformat()


def _only(only: Sequence[str] | None) -> list[str]:
    chosen = sorted(set(only or ()))
    if unknown := [o for o in chosen if o not in PARTS]:
        raise UsageError(f"--only takes {', '.join(PARTS)}, not {unknown[0]!r}")
    return [] if set(chosen) == set(PARTS) else chosen


def _left_out(
    con_refs: dict[str, str],
    parts: dict[str, set[str]],
    only: list[str],
    label: str,
    lacking: dict[str, dict[str, str]],
) -> dict[str, dict[str, str]]:
    """The blobs a bundle will not carry: those of the parts not chosen (a blob no part
    names, such as a scoring's output, always travels), and those this project itself
    lacks because an earlier partial bundle left them out."""
    out = {d: dict(lacking[d]) for d in con_refs if d in lacking}
    if only:
        chosen = set().union(*(parts[o] for o in only))
        others = set().union(*(parts[o] for o in PARTS if o not in only)) - chosen
        for d in others & con_refs.keys():
            out.setdefault(d, {"what": con_refs[d], "by": label})
    for d, v in out.items():
        v.setdefault("what", con_refs[d])
    return out


def create(
    project: Project,
    file: str | os.PathLike[str],
    since: str | None = None,
    only: Sequence[str] | None = None,
) -> Bundled:
    """Write a bundle of this project, or of what changed since ``since``; with ``only``,
    the objects of those parts alone (the catalog is always whole)."""
    parts_chosen = _only(only)
    path = Path(file)
    if path.exists():
        raise UsageError(
            f"{path} exists already; choose another name (bundles are never overwritten)"
        )
    if not path.parent.is_dir():
        raise UsageError(f"no such folder: {path.parent}")
    base, base_label = _base(project, since)
    copies.fold(project)
    done = Bundled(str(path), base=base_label, only=parts_chosen)
    label = f"bundle {path.name} (made with --only {','.join(parts_chosen)})"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with copies.scratch(project) as area:
        copy = copies.copy_catalog(project, area / CATALOG)
        assert copy is not None  # no check given: always copied
        catalog = copy.path.read_bytes()
        with copies.open_copy(copy.path) as con:
            parts = references_by_part(con) if parts_chosen else {}
        left = _left_out(copy.refs, parts, parts_chosen, label, project.objects.left_out())
        left = {d: v for d, v in left.items() if d not in base}
        inside = sorted(set(copy.refs) - base - left.keys())
        sizes = {d: project.objects.size(d) for d in inside}
        manifest = {
            "kind": KIND,
            "format": FORMAT,
            "project": project.root.name,
            "created_at": audit.now().isoformat(),
            "created_by": audit.actor(),
            "audit": copy.head.to_dict(),
            "requests": copy.requests,
            "catalog": {"sha256": hashlib.sha256(catalog).hexdigest(), "bytes": len(catalog)},
            "objects": sizes,
            "refs": sorted(copy.refs),
            "base": base_label,
            "only": parts_chosen,
            "left_out": left,
        }
        try:
            with open(tmp, "wb") as raw:
                out = _Hashing(raw)
                with tarfile.open(fileobj=out, mode="w:", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                    _add(tar, MANIFEST, json.dumps(manifest, indent=1).encode())
                    _add(tar, CATALOG, catalog)
                    for d in inside:  # each re-hashed as it is read: a damaged blob stops here
                        _add(tar, f"objects/{d}", project.objects.read_bytes(d, copy.refs[d]))
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    done.sha256 = out.h.hexdigest()
    Path(f"{path}.sha256").write_text(f"{done.sha256}  {path.name}\n")
    done.objects, done.object_bytes = len(inside), sum(sizes.values())
    done.catalog_bytes, done.bytes = len(catalog), out.n
    done.referenced, done.audit_seq = len(copy.refs), copy.head.seq
    done.left_out = len(left)
    return done


def _check_sidecar(path: Path) -> str:
    """The bundle's own hash, checked against ``FILE.sha256`` when that came along."""
    from workbench.core.store.objects import sha256_file

    digest = sha256_file(path)
    side = Path(f"{path}.sha256")
    if side.is_file():
        expected = (side.read_text().split() or [""])[0].lower()
        if expected != digest:
            raise StoreError(
                f"{path.name} does not match {side.name}: the file was damaged or cut short "
                "on the way; nothing was changed"
            )
    return digest


def import_(project: Project, file: str | os.PathLike[str]) -> Bundled:
    """Take a bundle in: everything checked first, then objects, then the catalog."""
    path = Path(file)
    doc = read_manifest(path)
    done = Bundled(str(path), base=doc.get("base"), only=list(doc.get("only", [])))
    declared: dict[str, dict[str, str]] = doc.get("left_out", {})
    done.sha256 = _check_sidecar(path)
    head = audit.Head(int(doc["audit"]["seq"]), str(doc["audit"]["hash"]))
    copies.fold(project)
    local, requests, holds = copies.local_state(project, head)
    done.before_seq, done.audit_seq = local.seq, head.seq
    done.referenced = len(doc["refs"])
    fills = any(not project.objects.has(d) for d in doc["objects"])
    if requests >= int(doc.get("requests", 0)) and holds and not fills:
        done.up_to_date = True  # imported already, or this project is past it
        return done
    source = f"the bundle {path.name}"
    with tarfile.open(path, "r:") as tar, copies.scratch(project) as area:
        try:
            members = {m.name: m for m in tar.getmembers()}  # one pass over the headers
        except (tarfile.TarError, EOFError):
            raise StoreError(
                f"{path.name} is cut short or damaged (its members cannot be read); "
                "nothing was changed"
            ) from None
        snap = area / CATALOG
        catalog = _member(tar, members, CATALOG, path)
        if hashlib.sha256(catalog).hexdigest() != doc["catalog"]["sha256"]:
            raise StoreError(
                f"the catalog in {path.name} does not match its manifest; nothing was changed"
            )
        snap.write_bytes(catalog)
        done.catalog_bytes = len(catalog)
        del catalog

        def diverged() -> StoreError:
            return StoreError(
                f"this project holds history {source} lacks (audit entry {local.seq} is not in "
                f"its trail, which ends at entry {head.seq}): importing it would overwrite "
                "that. Import into the project it came from, or one behind it, or a new one "
                "(`workbench init DIR`)"
            )

        refs = copies.check_copy(project, snap, head, local, source, diverged)
        wanted = {d: what for d, what in refs.items() if not project.objects.has(d)}
        ours = project.objects.left_out()  # lacked here by choice already
        absent = [
            d for d in wanted if d not in doc["objects"] and d not in declared and d not in ours
        ]
        if absent:
            base = f" (it builds on {doc['base']})" if doc.get("base") else ""
            raise StoreError(
                f"{source} needs {len(absent):,} object(s) this project lacks and it does not "
                f"carry, e.g. {absent[0][:12]} ({wanted[absent[0]]}){base}: import the bundle "
                "before it first; nothing was changed"
            )
        left = {d: declared.get(d) or ours[d] for d in wanted if d not in doc["objects"]}
        # named before the catalog points at them, so no moment calls them damaged
        project.objects.note_left_out(left)
        taken = sorted(d for d in wanted if d not in left)
        with project.objects.stage() as stage:
            for d in taken:
                data = _member(tar, members, f"objects/{d}", path)
                if hashlib.sha256(data).hexdigest() != d:
                    raise StoreError(
                        f"object {d[:12]} ({wanted[d]}) in {path.name} does not match its hash: "
                        "refusing the bundle, nothing was changed"
                    )
                stage.put_bytes(data, d)
                done.object_bytes += len(data)
            stage.commit()
        done.objects, done.left_out = len(taken), len(left)
        copies.install(project, snap, local, source)
    project.objects.note_left_out({})  # forget those this bundle brought
    return done


def _member(
    tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str, path: Path
) -> bytes:
    info = members.get(name)
    f = tar.extractfile(info) if info is not None else None
    if f is None:
        raise StoreError(f"{path.name} lacks {name}, which its manifest lists; nothing was changed")
    return f.read()
