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
