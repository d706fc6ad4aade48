"""The remotes a project knows: ``.workbench/remotes.json``, name -> URL (and endpoint).

Kept beside the catalog rather than in it, as git keeps remotes in ``.git/config``: a
pull replaces the catalog's contents and must not forget where it pulled from, and a
remote is this copy's business, not part of the history it shares. No credentials are
ever written here (boto3 reads them from the environment or ``~/.aws``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from workbench.core.errors import NotFoundError, StoreError, UsageError
from workbench.core.remote.backends import parse_url

FILE = "remotes.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class RemoteSpec:
    name: str
    url: str
    endpoint_url: str | None = None

    @property
    def kind(self) -> str:
        return parse_url(self.url)[0]


def _path(store_dir: Path) -> Path:
    return store_dir / FILE


def load(store_dir: Path) -> dict[str, RemoteSpec]:
    path = _path(store_dir)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {
            name: RemoteSpec(name, str(spec["url"]), spec.get("endpoint_url"))
            for name, spec in raw.get("remotes", {}).items()
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise StoreError(
            f"{path} is not a remotes file workbench wrote; fix or delete it"
        ) from None


def _save(store_dir: Path, remotes: dict[str, RemoteSpec]) -> None:
    from workbench.core.store.objects import _write_durable

    doc = {
        "remotes": {
            n: {k: v for k, v in asdict(s).items() if k != "name" and v is not None}
            for n, s in sorted(remotes.items())
        }
    }
    path = _path(store_dir)
    tmp = path.with_name(f".{FILE}.{os.getpid()}.tmp")
    try:
        _write_durable(tmp, (json.dumps(doc, indent=2) + "\n").encode())
        os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror}") from None


def add(store_dir: Path, name: str, url: str, endpoint_url: str | None = None) -> RemoteSpec:
    if not _NAME.match(name):
        raise UsageError(
            f"a remote's name is letters, digits, '.', '_' and '-' (up to 64), not {name!r}"
        )
    kind, where = parse_url(url)
    if endpoint_url and kind != "s3":
        raise UsageError("--endpoint-url is for s3:// remotes only")
    if kind == "folder":
        url = where  # absolute, so the remote does not move with the current directory
        if Path(where).resolve().is_relative_to(store_dir.resolve().parent):
            raise UsageError(f"a remote cannot live inside the project it backs up ({where})")
    remotes = load(store_dir)
    if name in remotes:
        raise UsageError(
            f"there is a remote {name} already ({remotes[name].url}); "
            f"`workbench remote remove {name}` first"
        )
    spec = RemoteSpec(name, url, endpoint_url)
    remotes[name] = spec
    _save(store_dir, remotes)
    return spec


def remove(store_dir: Path, name: str) -> RemoteSpec:
    remotes = load(store_dir)
    spec = remotes.pop(name, None)
    if spec is None:
        raise NotFoundError(_unknown(name, remotes))
    _save(store_dir, remotes)
    return spec


def get(store_dir: Path, name: str | None) -> RemoteSpec:
    """The remote named, or the only one, or the one called ``origin``."""
    remotes = load(store_dir)
    if not remotes:
        raise UsageError("this project has no remote: `workbench remote add NAME URL` first")
    if name is None:
        if len(remotes) == 1:
            return next(iter(remotes.values()))
        if "origin" in remotes:
            return remotes["origin"]
        raise UsageError(f"say which remote: {', '.join(sorted(remotes))}")
    if name not in remotes:
        raise NotFoundError(_unknown(name, remotes))
    return remotes[name]


def _unknown(name: str, remotes: dict[str, RemoteSpec]) -> str:
    have = ", ".join(sorted(remotes)) or "none (`workbench remote add NAME URL`)"
    return f"no remote named {name}; remotes: {have}"
