"""Push and pull against a real folder and a real S3-compatible server (moto's, on
127.0.0.1, started here): two projects share one remote, see the same store, move only
what the other side lacks, and refuse divergence, damage and half-pushed states."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import frame, run_cli, store_snapshot
from workbench.core.errors import StoreError, UsageError
from workbench.core.project import Project
from workbench.core.remote import config
from workbench.core.remote.sync import pull, push

BUCKET = "wb-remote"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's S3-compatible server in a process of its own, as a user's MinIO would be."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """An empty bucket on the server, and a client to look at (and damage) it."""
    import boto3

    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    client = boto3.client("s3", endpoint_url=s3_server)
    client.create_bucket(Bucket=BUCKET)
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for o in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=o["Key"])
    client.delete_bucket(Bucket=BUCKET)


def _keys(client: object, prefix: str = "") -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)  # type: ignore[attr-defined]
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def _other(tmp_path: Path, name: str = "other") -> Project:
    p, _ = Project.init(tmp_path / name)
    return p


def _same_store(a: Project, b: Project) -> None:
    """Every catalog row (count and hash of every row, per table) and every object."""
    assert store_snapshot(a) == store_snapshot(b)


def _add_version(project: Project, tmp_path: Path, seed: int) -> None:
    path = tmp_path / f"extra-{seed}.parquet"
    frame(300, seed).write_parquet(path)
    project.datasets.add(path, name="extra")


def test_two_projects_share_one_folder_remote_and_move_only_what_is_new(
    models: Project, tmp_path: Path
) -> None:
    a, b = models, _other(tmp_path)
    remote = tmp_path / "usb-stick"
    config.add(a.store_dir, "origin", str(remote))
    config.add(b.store_dir, "origin", str(remote))

    first = push(a)
    n_objects = len(list(a.objects.all_digests()))
    assert (first.objects_sent, first.objects_present) == (n_objects, 0)
    got = pull(b)
    assert got.objects_sent == n_objects and got.audit_seq == first.audit_seq
    _same_store(a, b)
    # what a user checks: the same runs, models and data, and b's store verifies
    assert b.models.resolve("churn-model@2").run_id == a.models.resolve("churn-model@2").run_id
    assert b.datasets.load("churn@2").equals(a.datasets.load("churn@2"))
    assert run_cli("verify", cwd=b.root).code == 0

    assert push(a).up_to_date and pull(b).up_to_date
    # a new version: only its chunk travels, both ways
    _add_version(a, tmp_path, 1)
    again = push(a)
    assert (again.objects_sent, again.objects_present) == (1, n_objects)
    back = pull(b)
    assert (back.objects_sent, back.objects_present) == (1, n_objects)
    _same_store(a, b)
    # and b can now add to it and hand it back
    _add_version(b, tmp_path, 2)
    assert push(b).objects_sent == 1
    pull(a)
    _same_store(a, b)
    assert [v.number for v in a.datasets.versions("extra")] == [1, 2]


def test_diverged_projects_refuse_to_push_or_pull_and_change_nothing(
    models: Project, tmp_path: Path
) -> None:
    a, b = models, _other(tmp_path)
    for p in (a, b):
        config.add(p.store_dir, "origin", str(tmp_path / "nas"))
    push(a)
    pull(b)
    _add_version(a, tmp_path, 1)
    push(a)
    _add_version(b, tmp_path, 2)  # b changed too, from the same starting point
    before = store_snapshot(b)
    with pytest.raises(StoreError, match="this project holds history the remote origin lacks"):
        pull(b)
    with pytest.raises(StoreError, match="holds history this project lacks"):
        push(b)
    assert store_snapshot(b) == before
    # the documented way out: pull into a new project
    c = _other(tmp_path, "fresh")
    config.add(c.store_dir, "origin", str(tmp_path / "nas"))
    pull(c)
    _same_store(a, c)


@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_s3_push_pull_round_trip_and_a_damaged_object_is_refused_by_name(
    models: Project, tmp_path: Path, s3: object, s3_server: str
) -> None:
    a, b = models, _other(tmp_path)
    url = f"s3://{BUCKET}/team/churn"
    for p in (a, b):
        config.add(p.store_dir, "origin", url, endpoint_url=s3_server)
    done = push(a)
    keys = _keys(s3, "team/churn/")
    assert "team/churn/HEAD" in keys
    assert len([k for k in keys if "/objects/" in k]) == done.objects_sent > 0
    pull(b)
    _same_store(a, b)

    # a new version pushed, then its chunk damaged on the remote: b refuses it by name
    _add_version(a, tmp_path, 1)
    push(a)
    new = {k for k in _keys(s3, "team/churn/objects/")} - {k for k in keys}
    (key,) = new
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"not the chunk")  # type: ignore[attr-defined]
    before = store_snapshot(b)
    digest = key.split("objects/")[1].replace("/", "")
    with pytest.raises(
        StoreError,
        match=rf"object {digest[:12]} \(extra@1\) on the remote origin does not match its hash",
    ):
        pull(b)
    assert store_snapshot(b) == before
    # repaired by pushing from a whole project? the object is there, so a push does not
    # resend it: the user re-uploads it (here: as a would after `verify` named it)
    s3.put_object(Bucket=BUCKET, Key=key, Body=a.objects.read_bytes(digest))  # type: ignore[attr-defined]
    pull(b)
    _same_store(a, b)


@pytest.mark.slow
def test_a_killed_push_leaves_the_remote_as_it_was_and_the_next_sends_each_object_once(
    small_chunks: Project, tmp_path: Path, s3: object, s3_server: str
) -> None:
    a = small_chunks
    path = tmp_path / "big.csv"  # a CSV: a Parquet file's first version is one object
    frame(120_000, 3).write_csv(path)
    a.datasets.add(path, name="big")  # 120 chunks of 1,000 rows
    total = len(list(a.objects.all_digests()))
    assert total >= 100
    config.add(a.store_dir, "origin", f"s3://{BUCKET}", endpoint_url=s3_server)
    env = {**os.environ, **CREDENTIALS}
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "--project", str(a.root), "push"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not _keys(s3, "objects/") and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    sent_before = len(_keys(s3, "objects/"))
    assert 0 < sent_before < total, "the push was not caught midway"
    assert "HEAD" not in _keys(s3)  # nothing points at the half-sent objects
    b = _other(tmp_path)
    config.add(b.store_dir, "origin", f"s3://{BUCKET}", endpoint_url=s3_server)
    with pytest.raises(StoreError, match="holds nothing yet"):
        pull(b)

    done = push(a)
    assert done.objects_present >= sent_before  # more may have landed as it died
    assert done.objects_sent + done.objects_present == total
    assert len(_keys(s3, "objects/")) == total
    pull(b)
    _same_store(a, b)


def test_remote_names_urls_and_one_line_errors(project: Project, tmp_path: Path) -> None:
    root = project.root
    assert run_cli("push", cwd=root).err.startswith("error: this project has no remote")
    bad = run_cli("remote", "add", "origin", "gs://bucket/x", cwd=root)
    assert bad.code == 2 and "use s3://BUCKET[/PREFIX]" in bad.err
    inside = run_cli("remote", "add", "origin", str(root / "backup"), cwd=root)
    assert inside.code == 2 and "inside the project" in inside.err
    assert run_cli("remote", "add", "origin", str(tmp_path / "r"), cwd=root).code == 0
    twice = run_cli("remote", "add", "origin", str(tmp_path / "s"), cwd=root)
    assert twice.code == 2 and "there is a remote origin already" in twice.err
    empty = run_cli("pull", cwd=root)
    assert (
        empty.code == 1
        and empty.err == "error: the remote origin holds nothing yet: push to it first\n"
    )
    assert run_cli("remote", "add", "usb", str(tmp_path / "u"), cwd=root).code == 0
    listed = json.loads(run_cli("remote", "list", "--json", cwd=root).out)
    assert [r["name"] for r in listed] == ["origin", "usb"]
    unknown = run_cli("push", "nas", cwd=root)
    assert unknown.code == 1 and "no remote named nas; remotes: origin, usb" in unknown.err
    pushed = run_cli("push", "usb", "--json", cwd=root)
    assert pushed.code == 0 and json.loads(pushed.out)["direction"] == "push"
    # the remote's HEAD names a catalog copy that hashes to its name
    head = json.loads((tmp_path / "u" / "HEAD").read_text())
    copy = (tmp_path / "u" / "catalogs" / f"{head['catalog']}.duckdb").read_bytes()
    assert hashlib.sha256(copy).hexdigest() == head["catalog"]
    with pytest.raises(UsageError):
        config.add(project.store_dir, "bad name", str(tmp_path / "x"))


def test_a_pull_never_drops_a_request_this_project_logged(models: Project, tmp_path: Path) -> None:
    """Served requests are folded in without an audit entry, so the chain alone would
    let a pull replace them: they are compared by id."""
    a, b = models, _other(tmp_path)
    for p in (a, b):
        config.add(p.store_dir, "origin", str(tmp_path / "nas"))
    push(a)
    pull(b)
    with b.catalog.write() as con:  # what folding a server's log writes
        con.execute(
            "INSERT INTO serving_requests VALUES ('req-1', now(), 'churn-model', 2, 1, 3.5, "
            "200, NULL, '/predict', 'log-0')"
        )
    _add_version(a, tmp_path, 1)
    push(a)
    before = store_snapshot(b)
    with pytest.raises(StoreError, match="this project logged 1 serving request"):
        pull(b)
    assert store_snapshot(b) == before
    # nor can b push over the remote's newer history: the two have diverged
    with pytest.raises(StoreError, match="holds history this project lacks"):
        push(b)


@pytest.mark.parametrize("kind", ["folder", "s3"])
@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_of_two_racing_pushes_the_second_to_finish_is_refused(
    kind: str, models: Project, tmp_path: Path, request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Another project pushes after this push read the remote's HEAD and before it
    writes its own: the HEAD write is conditional, so this one is refused (on S3 by
    the server itself: If-Match on the ETag it read) and the other's history stays."""
    from workbench.core.remote import sync

    if kind == "s3":
        request.getfixturevalue("s3")
        url, endpoint = f"s3://{BUCKET}/race", request.getfixturevalue("s3_server")
    else:
        url, endpoint = str(tmp_path / "nas"), None
    a, c = models, _other(tmp_path, "c")
    for p in (a, c):
        config.add(p.store_dir, "origin", url, endpoint_url=endpoint)
    push(a)
    pull(c)
    _add_version(a, tmp_path, 1)
    _add_version(c, tmp_path, 2)
    real = sync.open_backend

    def racing(*args: object, **kw: object) -> object:
        backend = real(*args, **kw)  # type: ignore[arg-type]
        read = backend.get_tagged

        def get_tagged(key: str) -> tuple[bytes | None, str | None]:
            got = read(key)
            monkeypatch.setattr(sync, "open_backend", real)
            push(c)  # lands between this push's read of HEAD and its write
            return got

        backend.get_tagged = get_tagged  # type: ignore[method-assign]
        return backend

    monkeypatch.setattr(sync, "open_backend", racing)
    with pytest.raises(StoreError, match="someone else pushed to origin while this push ran"):
        push(a)
    d = _other(tmp_path, "d")
    config.add(d.store_dir, "origin", url, endpoint_url=endpoint)
    pull(d)
    _same_store(c, d)  # the remote holds c's history, whole
