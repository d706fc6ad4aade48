"""The content-addressed object store.

Blobs live at ``.workbench/objects/ab/cdef…`` named by their SHA-256. A blob is
written to a temporary file in the same filesystem, fsynced and renamed, so a
crash can leave garbage in ``tmp/`` but never a half-written object. Writes that
belong to one operation are *staged* first and moved into place only when the
whole operation has succeeded: a failed ``data add`` leaves the store as it was.

A project that took in a partial bundle (``bundle create --only``) lacks, by choice,
some blobs its catalog points at. ``objects/left-out.json`` names them and the bundle
that left them out, so that a read of one, and ``verify``, say so instead of calling
the store damaged.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import mmap
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from workbench.core.errors import DataError, StoreError

HASH_LEN = 64
LEFT_OUT = "left-out.json"
_BUF = 1 << 22
# Hashing threads for a read: hashlib releases the GIL, so two cores hash twice as fast.
_HASHERS = max(1, min(4, os.cpu_count() or 1))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    buf = bytearray(_BUF)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def fast_sum(data: bytes | memoryview | mmap.mmap) -> str:
    """XXH3-128 of some bytes: a checksum at memory speed (~16 GB/s), not a name."""
    import xxhash

    return xxhash.xxh3_128_hexdigest(data)


_MAPPED = 1 << 26  # bytes mapped at a time (a multiple of any mmap.ALLOCATIONGRANULARITY)


def fast_sum_file(path: Path) -> str:
    """XXH3-128 of a file. Mapped, not read: the bytes are hashed where the page cache
    holds them, no copy; 64 MB at a time, so that a large file (a log segment can be a
    gigabyte) does not count as a gigabyte of this process's memory."""
    import xxhash

    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        for at in range(0, size, _MAPPED):
            length = min(_MAPPED, size - at)
            with mmap.mmap(f.fileno(), length, offset=at, access=mmap.ACCESS_READ) as m:
                h.update(m)
    return h.hexdigest()


def _stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    # Any write to a file moves its ctime, which no user call can set back: a blob
    # whose stamp is unchanged since it was hashed in this process is the same bytes.
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _fsync_dir(path: Path) -> None:
    # Directory fsync makes the rename durable; not every platform allows it.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_durable(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def store_write_error(exc: OSError, where: Path) -> StoreError:
    """One line for a failed write: read-only and full disks named as such."""
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return StoreError(
            f"the project store is read-only ({exc.strerror}): cannot write to {where}"
        )
    if exc.errno == errno.ENOSPC:
        return StoreError(f"no space left on the disk holding the project store ({where})")
    return StoreError(f"cannot write to the project store ({exc.strerror}): {where}")


def _pid_alive(pid: int) -> bool:
    """Whether the process runs. A zombie does not: a killed process whose parent never
    reaps it (a container without an init, say) would otherwise hold its run or its
    staging folder "alive" forever."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): the signal said it exists
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class ObjectStore:
    """Immutable blobs addressed by SHA-256."""

    def __init__(self, root: Path, tmp: Path) -> None:
        self.root = root
        self.tmp = tmp
        self._verified: dict[str, tuple[int, int, int, int]] = {}

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def read_bytes(self, digest: str, what: str = "an object") -> bytes:
        """A blob's bytes, refused unless they still hash to their name."""
        try:
            data = self.path(digest).read_bytes()
        except OSError:
            raise self._missing(digest, what) from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise self._damaged(digest, what)
        return data

    def verify(self, digest: str) -> bool:
        """Re-hash a blob: True when present and intact."""
        p = self.path(digest)
        return p.is_file() and sha256_file(p) == digest

    def check(self, digests: dict[str, str], sums: dict[str, str] | None = None) -> None:
        """Refuse, in one line, unless every blob (digest -> what it is, for the message)
        is present and still hashes to its name.

        Every read of stored data goes through here first, so a flipped byte is never
        read as data. A blob with a recorded fast checksum (``sums``: XXH3-128, taken
        when it was stored) is checked against that, at memory speed; any other is
        re-hashed with SHA-256. Both detect any change of the bytes; the fast sum is no
        defence against a forger, who could rewrite it in the catalog anyway: that is
        ``verify``'s job, with SHA-256 and the audit chain. Blobs are checked in
        parallel; one already checked by this process and not written since (same
        inode, size, mtime and ctime) is not checked again, so an app paging through a
        version pays once.
        """
        sums = sums or {}
        todo: list[tuple[str, str, tuple[int, int, int, int]]] = []
        for digest, what in digests.items():
            try:
                stamp = _stamp(self.path(digest).stat())
            except OSError:
                raise self._missing(digest, what) from None
            if self._verified.get(digest) != stamp:
                todo.append((digest, what, stamp))
        if not todo:
            return

        def intact(digest: str) -> bool:
            path = self.path(digest)
            if digest in sums:
                return fast_sum_file(path) == sums[digest]
            return sha256_file(path) == digest

        if len(todo) == 1:
            found = [intact(todo[0][0])]
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(_HASHERS, len(todo))) as pool:
                found = list(pool.map(intact, [d for d, _, _ in todo]))
        for (digest, what, stamp), ok in zip(todo, found, strict=True):
            if not ok:
                raise self._damaged(digest, what)
            self._verified[digest] = stamp

    @staticmethod
    def _damaged(digest: str, what: str) -> StoreError:
        return StoreError(
            f"{what} is damaged: stored object {digest[:12]} no longer matches its hash; "
            "refusing to read it (run `workbench verify`)"
        )

    def _missing(self, digest: str, what: str) -> StoreError:
        why = self.left_out().get(digest)
        if why is not None:
            return StoreError(
                f"{what} is not in this project: it was left out of {why.get('by', 'a bundle')} "
                f"(object {digest[:12]}); import a bundle that carries it, or pull"
            )
        return StoreError(
            f"{what} is missing from the store (object {digest[:12]}); run `workbench verify`"
        )

    def left_out(self) -> dict[str, dict[str, str]]:
        """Blobs this project lacks by choice: digest -> {"what", "by"} (the bundle that
        left it out). Read when a blob is found missing, so every read pays nothing."""
        try:
            doc = json.loads((self.root / LEFT_OUT).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            raise StoreError(
                f"{self.root / LEFT_OUT} cannot be read; it names the objects a partial "
                "bundle left out"
            ) from None
        return {d: v for d, v in doc.items() if isinstance(v, dict)}

    def note_left_out(self, entries: dict[str, dict[str, str]]) -> None:
        """Add ``entries`` to the blobs left out, and forget any now present; written
        whole and renamed, so a crash leaves the old list or the new."""
        merged = {**self.left_out(), **entries}
        kept = {d: v for d, v in sorted(merged.items()) if not self.has(d)}
        target = self.root / LEFT_OUT
        if not kept:
            target.unlink(missing_ok=True)
            return
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{LEFT_OUT}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(kept, indent=1), encoding="utf-8")
        os.replace(tmp, target)

    def put_bytes(self, data: bytes) -> str:
        """Store one blob now (outside any staging) and return its hash."""
        with self.stage() as stage:
            digest = stage.put_bytes(data)
            stage.commit()
        return digest

    @contextlib.contextmanager
    def stage(self) -> Iterator[Staging]:
        """A scratch area whose blobs reach the store only on ``commit()``."""
        self.clean_stale()
        try:
            self.tmp.mkdir(parents=True, exist_ok=True)
            area = self.tmp / f"stage-{os.getpid()}-{uuid.uuid4().hex[:12]}"
            area.mkdir()
        except OSError as exc:
            raise store_write_error(exc, self.tmp) from None
        staging = Staging(self, area)
        try:
            yield staging
        finally:
            shutil.rmtree(area, ignore_errors=True)

    def clean_stale(self) -> None:
        """Remove staging areas left by processes that died mid-operation."""
        if not self.tmp.is_dir():
            return
        for entry in self.tmp.iterdir():
            parts = entry.name.split("-")
            stale = len(parts) >= 3 and parts[0] == "stage" and parts[1].isdigit()
            if stale and not _pid_alive(int(parts[1])):
                shutil.rmtree(entry, ignore_errors=True)

    def all_digests(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for sub in self.root.iterdir():
            if sub.is_dir() and len(sub.name) == 2:
                for f in sub.iterdir():
                    yield sub.name + f.name


class Staging:
    """Blobs written for one operation, not yet visible in the store."""

    def __init__(self, store: ObjectStore, area: Path) -> None:
        self.store = store
        self.area = area
        self.sizes: dict[str, int] = {}
        self.sums: dict[str, str] = {}  # digest -> fast checksum, for the catalog
        self.new: set[str] = set()  # digests not already in the store
        self.unsynced: set[str] = set()  # new blobs written without fsync (put_file)

    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        """Stage a blob; ``digest`` is its SHA-256 when the caller has just computed it
        over these very bytes (a pull checks each fetched blob against its name as it
        arrives, in parallel), so that it is not hashed twice."""
        digest = digest or hashlib.sha256(data).hexdigest()
        if digest in self.sizes:
            return digest
        self.sizes[digest] = len(data)
        self.sums[digest] = fast_sum(data)
        if not self.store.has(digest):
            try:
                _write_durable(self.area / digest, data)
            except OSError as exc:
                raise store_write_error(exc, self.area) from None
            self.new.add(digest)
        return digest

    def put_file(self, source: Path, stop: threading.Event | None = None) -> str:
        """Stage a copy of a file, named by the SHA-256 of the very bytes copied (read
        once: hashed and written block by block, so a file changed meanwhile cannot be
        stored under another content's name). Safe in a thread of its own while the
        caller stages nothing else; ``stop`` set ends it early (the caller gave up)."""
        import xxhash

        sha, fast, size = hashlib.sha256(), xxhash.xxh3_128(), 0
        buf = bytearray(_BUF)
        view = memoryview(buf)
        # named without uuid4: tests that seed ids would see every later id move
        incoming = self.area / f".incoming-{threading.get_ident()}"
        try:
            with open(source, "rb", buffering=0) as f, open(incoming, "wb") as out:
                while n := f.readinto(buf):
                    if stop is not None and stop.is_set():
                        raise StoreError("stopped: the add it was copying for gave up")
                    sha.update(view[:n])
                    fast.update(view[:n])
                    out.write(view[:n])
                    size += n
            digest = sha.hexdigest()
            if digest not in self.sizes and not self.store.has(digest):
                os.replace(incoming, self.area / digest)
                self.new.add(digest)
                # fsynced at commit, if kept: a copy that is dropped never waits for
                # the disk (282 MB: ~0.5 s of an add that keeps only a few pieces)
                self.unsynced.add(digest)
        except OSError as exc:
            if exc.filename == str(source):
                raise DataError(f"cannot read {source}: {exc.strerror}") from None
            raise store_write_error(exc, self.area) from None
        finally:
            incoming.unlink(missing_ok=True)
        self.sizes[digest], self.sums[digest] = size, fast.hexdigest()
        return digest

    def discard(self, digest: str) -> None:
        """Forget a staged blob that nothing will point at after all."""
        if digest in self.new:
            (self.area / digest).unlink(missing_ok=True)
            self.new.discard(digest)
            self.unsynced.discard(digest)
        self.sizes.pop(digest, None)
        self.sums.pop(digest, None)

    @property
    def new_bytes(self) -> int:
        return sum(self.sizes[d] for d in self.new)

    def commit(self) -> None:
        """Move staged blobs into the store (each rename is atomic)."""
        touched: set[Path] = set()
        try:
            for digest in sorted(self.new):
                target = self.store.path(digest)
                if target.exists():
                    continue
                if digest in self.unsynced:
                    with open(self.area / digest, "rb") as f:
                        os.fsync(f.fileno())
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self.area / digest, target)
                touched.add(target.parent)
        except OSError as exc:
            raise store_write_error(exc, self.store.root) from None
        for d in touched:
            _fsync_dir(d)
