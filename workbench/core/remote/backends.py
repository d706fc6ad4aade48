"""Where a remote keeps its bytes: a folder (a NAS mount, a USB stick) or an S3 bucket.

Both offer the same four calls over keys like ``objects/ab/cdef…``, and both make a
write visible whole or not at all: a folder writes a temporary file and renames it, an
S3 PUT is atomic by itself. That is what lets a push write ``HEAD`` last and be sure a
reader never sees a half-written state.

S3 goes through boto3 (the ``workbench[s3]`` extra): AWS, MinIO, Ceph and every other
S3-compatible server speak it, and it reads credentials, region and endpoint from the
usual places (``AWS_ACCESS_KEY_ID``…, ``AWS_ENDPOINT_URL``, ``~/.aws``), so workbench
never stores a secret.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from workbench.core.errors import StoreError, UsageError

# A leftover temporary file of a killed push older than this is removed by the next one
# (another machine's push may still be writing a younger one to a shared folder).
_STALE_SECONDS = 3600


class Moved(StoreError):
    """A conditional write found the key changed since it was read."""


class Backend(Protocol):
    url: str
    in_flight: int  # requests a push or pull keeps going at once

    def keys(self, prefix: str) -> set[str]:
        """Every key under ``prefix`` (a folder-like prefix ending in ``/``)."""
        ...

    def get(self, key: str) -> bytes | None:
        """The bytes under ``key``, or None when there is no such key."""
        ...

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, visible whole or not at all."""
        ...

    def clean(self) -> None:
        """Remove what an interrupted push left behind, where there can be any."""
        ...

    def get_tagged(self, key: str) -> tuple[bytes | None, str | None]:
        """The bytes under ``key`` and a tag that changes whenever they are replaced."""
        ...

    def put_if(self, key: str, data: bytes, tag: str | None) -> None:
        """Store ``data`` only if ``key`` still has ``tag`` (None: only if absent), as one
        step; else raise ``Moved``. Two pushers can then not both move HEAD."""
        ...


def open_backend(url: str, endpoint_url: str | None = None) -> Backend:
    kind, where = parse_url(url)
    if kind == "s3":
        bucket, _, prefix = where.partition("/")
        return S3Backend(url, bucket, prefix.strip("/"), endpoint_url)
    return FolderBackend(url, Path(where))


def parse_url(url: str) -> tuple[str, str]:
    """("s3", "bucket/prefix") or ("folder", "/absolute/path"); anything else is refused."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise UsageError(f"an S3 remote names its bucket: s3://BUCKET[/PREFIX], not {url}")
        return "s3", f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
    if parsed.scheme == "file":
        return "folder", str(Path(parsed.path).resolve())
    if parsed.scheme and len(parsed.scheme) > 1:  # "C:" is a drive, not a scheme
        raise UsageError(
            f"workbench cannot push to {parsed.scheme}:// URLs: use s3://BUCKET[/PREFIX] "
            "(AWS, MinIO, Ceph…) or a folder path"
        )
    return "folder", str(Path(url).expanduser().resolve())


class FolderBackend:
    """A remote that is a folder: the same layout as on S3, as files."""

    in_flight = 2  # bound by the disk, not by round trips

    def __init__(self, url: str, root: Path) -> None:
        self.url = url
        self.root = root
        self._tmp = root / ".tmp"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def keys(self, prefix: str) -> set[str]:
        base = self._path(prefix.rstrip("/"))
        found: set[str] = set()
        if not base.is_dir():
            return found
        for dirpath, _, files in os.walk(base):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            found.update(f"{rel}/{f}" for f in files)
        return found

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(
                f"cannot read {key} from the remote {self.url}: {exc.strerror}"
            ) from None

    def put(self, key: str, data: bytes) -> None:
        from workbench.core.store.objects import _fsync_dir, _write_durable

        target = self._path(key)
        tmp = self._tmp / f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            self._tmp.mkdir(parents=True, exist_ok=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_durable(tmp, data)
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StoreError(f"cannot write to the remote {self.url}: {exc.strerror}") from None
        _fsync_dir(target.parent)

    @staticmethod
    def _tag(path: Path) -> str | None:
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        return f"{st.st_ino}-{st.st_size}-{st.st_mtime_ns}"

    def get_tagged(self, key: str) -> tuple[bytes | None, str | None]:
        path = self._path(key)
        for _ in range(5):  # a rename between the stat and the read: read again
            tag = self._tag(path)
            data = self.get(key)
            if self._tag(path) == tag:
                return data, tag
        raise StoreError(f"{key} on the remote {self.url} keeps changing; try again")

    def put_if(self, key: str, data: bytes, tag: str | None) -> None:
        """A lock file (created with O_EXCL, atomic on local disks and NFS) around
        compare-and-rename; one left by a killed push is taken over after a minute."""
        lock = self._path(key).with_name(f".{key.rsplit('/', 1)[-1]}.lock")
        deadline = time.monotonic() + 30
        while True:
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                os.close(fd)
                break
            except FileExistsError:
                with contextlib.suppress(OSError):
                    if time.time() - lock.stat().st_mtime > 60:
                        lock.unlink()
                        continue
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"the remote {self.url} is locked by another push ({lock}); "
                        "try again, or delete the lock if no push is running"
                    ) from None
                time.sleep(0.05)
            except OSError as exc:
                raise StoreError(f"cannot write to the remote {self.url}: {exc.strerror}") from None
        try:
            if self._tag(self._path(key)) != tag:
                raise Moved(f"{key} on the remote {self.url} changed")
            self.put(key, data)
        finally:
            with contextlib.suppress(OSError):
                lock.unlink()

    def clean(self) -> None:
        from workbench.core.store.objects import _pid_alive

        if not self._tmp.is_dir():
            return
        host, now = socket.gethostname(), time.time()
        for f in self._tmp.iterdir():
            h, _, rest = f.name.rpartition("-")[0].rpartition("-")
            mine_dead = h == host and rest.isdigit() and not _pid_alive(int(rest))
            with contextlib.suppress(OSError):
                if mine_dead or now - f.stat().st_mtime > _STALE_SECONDS:
                    f.unlink()


class S3Backend:
    """A remote in an S3 bucket (under a prefix), through boto3."""

    in_flight = 8  # bound by round trips: many requests in flight

    def __init__(self, url: str, bucket: str, prefix: str, endpoint_url: str | None) -> None:
        self.url = url
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.endpoint_url = endpoint_url
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise StoreError(
                    "an s3:// remote needs boto3: pip install 'workbench[s3]'"
                ) from None
            # enough connections for the upload threads (push sends objects in parallel)
            config = Config(max_pool_connections=16, retries={"max_attempts": 5})
            self._client = boto3.client("s3", endpoint_url=self.endpoint_url or None, config=config)
        return self._client

    def _fail(self, exc: Exception, doing: str) -> StoreError:
        """One line for what S3 (or the way to it) refused."""
        code = ""
        response = getattr(exc, "response", None)
        if isinstance(response, dict):
            code = str(response.get("Error", {}).get("Code", ""))
        name = type(exc).__name__
        if name in ("NoCredentialsError", "PartialCredentialsError"):
            why = "no S3 credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or ~/.aws)"
        elif code == "NoSuchBucket":
            why = f"there is no bucket {self.bucket}"
        elif code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            why = f"access denied ({code})"
        elif name in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
            why = "cannot reach the S3 endpoint " + (self.endpoint_url or "(AWS_ENDPOINT_URL)")
        else:
            why = " ".join(str(exc).split())[:200]
        return StoreError(f"cannot {doing} the remote {self.url}: {why}")

    def keys(self, prefix: str) -> set[str]:
        found: set[str] = set()
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
            for page in pages:
                found.update(o["Key"][len(self.prefix) :] for o in page.get("Contents", []))
        except StoreError:
            raise
        except Exception as exc:
            raise self._fail(exc, "list") from None
        return found

    def get(self, key: str) -> bytes | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"]
            return bytes(body.read())
        except StoreError:
            raise
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                return None
            raise self._fail(exc, "read from") from None

    def put(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)
        except StoreError:
            raise
        except Exception as exc:
            raise self._fail(exc, "write to") from None

    def get_tagged(self, key: str) -> tuple[bytes | None, str | None]:
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            return bytes(got["Body"].read()), str(got["ETag"])
        except StoreError:
            raise
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                return None, None
            raise self._fail(exc, "read from") from None

    def put_if(self, key: str, data: bytes, tag: str | None) -> None:
        """S3's conditional PUT (If-Match on the ETag read, If-None-Match: * for a first
        write): the server refuses the second of two racing pushes."""
        cond = {"IfMatch": tag} if tag is not None else {"IfNoneMatch": "*"}
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data, **cond)
        except StoreError:
            raise
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                raise Moved(f"{key} on the remote {self.url} changed") from None
            raise self._fail(exc, "write to") from None

    def clean(self) -> None:
        """Nothing to clean: an S3 PUT that did not finish left no object."""
