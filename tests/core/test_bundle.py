"""Bundles across an air gap: one file out, checked whole on the way in, incremental
after an edit, idempotent, and refused (naming what) when damaged or out of order."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.conftest import frame, run_cli, store_snapshot
from workbench.core.errors import StoreError
from workbench.core.project import Project
from workbench.core.remote.bundle import create, import_


def _fresh(tmp_path: Path, name: str) -> Project:
    p, _ = Project.init(tmp_path / name)
    return p


def _edit_one_percent(df: pl.DataFrame, seed: int) -> pl.DataFrame:
    idx = np.random.default_rng(seed).choice(df.height, size=df.height // 100, replace=False)
    mask = pl.Series(np.isin(np.arange(df.height), idx))
    return df.with_columns(
        pl.when(mask).then(pl.col("income") + 1.0).otherwise(pl.col("income")).alias("income")
    )


@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_a_bundle_carries_the_project_and_an_incremental_one_only_the_edit(
    models: Project, tmp_path: Path
) -> None:
    src = models
    df = frame(20_000, 4)
    df.write_parquet(tmp_path / "t1.parquet")
    src.datasets.add(tmp_path / "t1.parquet", name="t")
    full = create(src, tmp_path / "full.wb")
    side = (tmp_path / "full.wb.sha256").read_text().split()
    assert side == [hashlib.sha256((tmp_path / "full.wb").read_bytes()).hexdigest(), "full.wb"]
    assert full.objects == full.referenced == len(list(src.objects.all_digests()))

    dst = _fresh(tmp_path, "air-gapped")
    got = import_(dst, tmp_path / "full.wb")
    assert got.objects == full.objects and got.audit_seq == full.audit_seq
    assert store_snapshot(dst) == store_snapshot(src)
    before = store_snapshot(dst)
    assert import_(dst, tmp_path / "full.wb").up_to_date  # idempotent
    assert store_snapshot(dst) == before

    # 1% of the rows edited: the next bundle carries the patches, not the data again
    _edit_one_percent(df, 1).write_parquet(tmp_path / "t2.parquet")
    src.datasets.add(tmp_path / "t2.parquet", name="t")
    inc = create(src, tmp_path / "inc.wb", since=str(tmp_path / "full.wb"))
    assert 0 < inc.objects < full.objects / 5
    assert inc.object_bytes < full.object_bytes / 10
    assert inc.base == f"full.wb (audit entry {full.audit_seq})"

    # out of order: a project without the first bundle is told to import it first
    other = _fresh(tmp_path, "other")
    with pytest.raises(StoreError, match="import the bundle before it first"):
        import_(other, tmp_path / "inc.wb")
    assert store_snapshot(other) == store_snapshot(_fresh(tmp_path, "empty"))

    import_(dst, tmp_path / "inc.wb")
    assert store_snapshot(dst) == store_snapshot(src)
    assert dst.datasets.load("t@2").equals(src.datasets.load("t@2"))
    assert run_cli("verify", cwd=dst.root).code == 0
    # the older bundle brings nothing to a project already past it
    assert import_(dst, tmp_path / "full.wb").up_to_date


def test_a_damaged_or_cut_bundle_is_refused_before_anything_changes(
    models: Project, tmp_path: Path
) -> None:
    create(models, tmp_path / "b.wb")
    with tarfile.open(tmp_path / "b.wb") as tar:
        member = max((m for m in tar.getmembers() if m.name.startswith("objects/")),
                     key=lambda m: m.size)  # fmt: skip
    dst = _fresh(tmp_path, "dst")
    before = store_snapshot(dst)
    raw = bytearray((tmp_path / "b.wb").read_bytes())
    raw[member.offset_data + member.size // 2] ^= 0xFF

    # with its .sha256 beside it, the file's own hash catches the flip first
    (tmp_path / "b.wb").write_bytes(bytes(raw))
    with pytest.raises(StoreError, match=r"does not match b\.wb\.sha256"):
        import_(dst, tmp_path / "b.wb")
    # without it, the object's own hash does, naming the object
    (tmp_path / "b.wb.sha256").unlink()
    digest = member.name.split("/")[1]
    with pytest.raises(StoreError, match=rf"object {digest[:12]} \(.+\) in b.wb does not match"):
        import_(dst, tmp_path / "b.wb")
    # cut short on the way
    (tmp_path / "cut.wb").write_bytes(bytes(raw[: len(raw) // 3]))
    with pytest.raises(StoreError):
        import_(dst, tmp_path / "cut.wb")
    assert store_snapshot(dst) == before


def test_a_project_with_history_of_its_own_refuses_a_bundle_and_cli_errors_are_one_line(
    models: Project, tmp_path: Path
) -> None:
    create(models, tmp_path / "b.wb")
    mine = _fresh(tmp_path, "mine")
    frame(50).write_parquet(tmp_path / "m.parquet")
    mine.datasets.add(tmp_path / "m.parquet", name="mine")
    before = store_snapshot(mine)
    res = run_cli("bundle", "import", str(tmp_path / "b.wb"), cwd=mine.root)
    assert res.code == 1 and res.err.count("\n") == 1
    assert "this project holds history the bundle b.wb lacks" in res.err
    assert store_snapshot(mine) == before
    again = run_cli("bundle", "create", str(tmp_path / "b.wb"), cwd=models.root)
    assert again.code == 2 and "exists already" in again.err
    bad = run_cli(
        "bundle", "create", str(tmp_path / "c.wb"), "--since", "last week", cwd=models.root
    )
    assert bad.code == 2 and "--since takes an earlier bundle file or a date" in bad.err
    assert not (tmp_path / "c.wb").exists()
    missing = run_cli("bundle", "import", str(tmp_path / "nope.wb"), cwd=mine.root)
    assert missing.code == 2 and "no such bundle" in missing.err
    not_one = tmp_path / "x.wb"
    not_one.write_text("hello")
    assert (
        "is not a workbench bundle" in run_cli("bundle", "import", str(not_one), cwd=mine.root).err
    )
    # a date: objects stored before it are left out
    dated = run_cli("bundle", "create", str(tmp_path / "d.wb"), "--since", "2000-01-01", "--json",
                    cwd=models.root)  # fmt: skip
    assert dated.code == 0 and '"base": "2000-01-01"' in dated.out


def _carried(bundle: Path) -> set[str]:
    with tarfile.open(bundle) as tar:
        return {m.name.removeprefix("objects/") for m in tar if m.name.startswith("objects/")}


@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_a_partial_bundle_carries_its_parts_and_the_other_side_names_what_it_lacks(
    models: Project, tmp_path: Path
) -> None:
    from workbench.core.store.verify import references_by_part

    src = models
    with src.catalog.read() as con:
        parts = references_by_part(con)
    assert parts["datasets"] and parts["models"] and parts["models"] < parts["runs"]

    part = create(src, tmp_path / "data.wb", only=["datasets"])
    assert _carried(tmp_path / "data.wb") == parts["datasets"]
    assert part.left_out == len(parts["runs"]) and part.only == ["datasets"]

    dst = _fresh(tmp_path, "classroom")
    got = import_(dst, tmp_path / "data.wb")
    assert got.objects == len(parts["datasets"]) and got.left_out == len(parts["runs"])
    src_rows, _ = store_snapshot(src)
    assert store_snapshot(dst)[0] == src_rows  # the catalog whole: every row, every entry
    assert dst.datasets.load("churn@2").equals(src.datasets.load("churn@2"))
    mv = dst.models.resolve("churn-model@2")
    with pytest.raises(
        StoreError, match=r"left out of bundle data\.wb \(made with --only datasets\)"
    ):
        dst.models.load(mv)
    ok = run_cli("verify", cwd=dst.root)
    assert ok.code == 0, ok.out
    assert f"{len(parts['runs'])} objects not here by choice: left out of bundle data.wb" in ok.out

    # a blob that should be here and is not is still damage, left-out list or not
    victim = sorted(parts["datasets"])[0]
    kept = dst.objects.path(victim).read_bytes()
    dst.objects.path(victim).unlink()
    bad = run_cli("verify", cwd=dst.root)
    assert bad.code == 1 and f"object {victim[:12]}" in bad.out and "is missing" in bad.out
    dst.objects.path(victim).write_bytes(kept)

    # a remote must be whole: a partial project cannot push
    run_cli("remote", "add", "usb", str(tmp_path / "usb"), cwd=dst.root)
    push = run_cli("push", cwd=dst.root)
    assert push.code == 1 and "a remote must be whole" in push.err
    assert not (tmp_path / "usb" / "HEAD").exists()

    # passed on from the partial project, what it lacks stays named after the first bundle
    create(dst, tmp_path / "relay.wb")
    third = _fresh(tmp_path, "third")
    assert import_(third, tmp_path / "relay.wb").left_out == len(parts["runs"])
    assert {v["by"] for v in third.objects.left_out().values()} == {
        "bundle data.wb (made with --only datasets)"
    }

    # the rest, since the first: exactly what was left out; then both sides are equal
    rest = create(src, tmp_path / "rest.wb", since=str(tmp_path / "data.wb"), only=["runs"])
    assert _carried(tmp_path / "rest.wb") == parts["runs"] and rest.left_out == 0
    filled = import_(dst, tmp_path / "rest.wb")
    assert not filled.up_to_date and filled.objects == len(parts["runs"])
    assert store_snapshot(dst) == store_snapshot(src)
    assert dst.objects.left_out() == {}
    assert "not here by choice" not in run_cli("verify", cwd=dst.root).out
    assert dst.models.load(mv) is not None


def test_only_models_carries_the_registered_files_and_a_wrong_part_is_one_line(
    models: Project, tmp_path: Path
) -> None:
    from workbench.core.store.verify import references_by_part

    with models.catalog.read() as con:
        parts = references_by_part(con)
    res = run_cli("bundle", "create", str(tmp_path / "m.wb"), "--only", "models", cwd=models.root)
    assert res.code == 0 and "only models carried" in res.out
    assert _carried(tmp_path / "m.wb") == parts["models"]
    dst = _fresh(tmp_path, "scoring-box")
    imp = run_cli("bundle", "import", str(tmp_path / "m.wb"), cwd=dst.root)
    assert imp.code == 0 and "Left out by the bundle" in imp.out
    assert dst.models.load(dst.models.resolve("churn-model@2")) is not None
    with pytest.raises(StoreError, match=r"left out of bundle m\.wb"):
        dst.datasets.load("churn@1")
    wrong = run_cli("bundle", "create", str(tmp_path / "x.wb"), "--only", "plots", cwd=models.root)
    assert wrong.code == 2 and "plots" in wrong.err and not (tmp_path / "x.wb").exists()
