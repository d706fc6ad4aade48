"""A Parquet file with nothing to share with a previous version is stored as given.

Its bytes become one object named by their SHA-256 (the version's id), and its
content-defined pieces become ranges of it, so the next version of the file still
shares every unchanged piece, as it would with pieces written one by one."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tests.conftest import frame, run_cli
from workbench.core.data import segments as seg
from workbench.core.errors import StoreError
from workbench.core.project import Project


def _objects(p: Project) -> list[Path]:
    return sorted(f for f in (p.store_dir / "objects").rglob("*") if f.is_file())


def _parquet(df: pl.DataFrame, path: Path) -> Path:
    df.write_parquet(path, row_group_size=2_000)
    return path


def test_a_parquet_file_is_kept_as_given_and_reads_back_exactly(
    small_chunks: Project, tmp_path: Path
) -> None:
    df = frame(20_000)
    path = _parquet(df, tmp_path / "t.parquet")
    v = small_chunks.datasets.add(path, name="t").version
    (obj,) = _objects(small_chunks)
    assert obj.read_bytes() == path.read_bytes()
    assert (
        v.id == hashlib.sha256(path.read_bytes()).hexdigest() == {s.blob for s in v.segments}.pop()
    )
    # cut by content as any version is (<= chunk_rows each), as consecutive ranges
    assert 10 <= len(v.segments) <= 80 and all(s.n_rows <= 1000 for s in v.segments)
    starts = [s.start for s in v.segments]
    assert starts == [sum(s.n_rows for s in v.segments[:i]) for i in range(len(v.segments))]
    assert v.stored_bytes == path.stat().st_size
    assert_frame_equal(small_chunks.datasets.load("t@1"), df)
    for offset, length in ((0, 7), (v.segments[0].n_rows - 3, 10), (19_990, 50), (4_321, 5_000)):
        assert_frame_equal(
            small_chunks.datasets.rows("t@1", offset, length), df.slice(offset, length)
        )
    assert small_chunks.datasets.profile("t@1")["rows"] == 20_000
    r = run_cli("verify", cwd=small_chunks.root)
    assert r.code == 0 and "verify: OK" in r.out, r.out


@pytest.mark.parametrize("change", ["append", "insert", "edit", "drop a piece"])
def test_the_next_version_shares_the_given_files_pieces(
    small_chunks: Project, tmp_path: Path, change: str
) -> None:
    df = frame(20_000)
    v1 = small_chunks.datasets.add(_parquet(df, tmp_path / "a.parquet"), name="t").version
    given = _objects(small_chunks)[0].stat().st_size
    if change == "append":
        new = pl.concat([df, frame(50, seed=1).with_columns(pl.col("id") + 20_000)])
    elif change == "insert":
        new = pl.concat([df.head(9_000), frame(1, seed=2), df.slice(9_000)])
    elif change == "edit":
        hit = pl.col("id").is_in([10, 7_000, 7_001, 15_000])
        new = df.with_columns(pl.when(hit).then(pl.col("income") + 1).otherwise("income"))
    else:  # exactly the rows of one piece: its neighbours meet, two ranges not adjoining
        gone = v1.segments[5]
        assert gone.start is not None
        new = pl.concat([df.head(gone.start), df.slice(gone.start + gone.n_rows)])
    v2 = small_chunks.datasets.add(_parquet(new, tmp_path / "b.parquet"), name="t").version
    shared = [s for s in v2.segments if s.blob == v1.id]
    assert len(shared) >= len(v1.segments) - 2  # ranges of the first file, kept
    assert v2.stored_bytes < given / 4
    if change == "edit":
        patched = [s for s in v2.segments if s.patches]
        assert patched and all(s.start is not None for s in patched)
        for s in patched:  # a patch over a range reads back as the scan does
            path_of = small_chunks.objects.path
            assert_frame_equal(
                seg.segment_frame(s, path_of), seg.scan_segments([s], path_of).collect()
            )
    assert_frame_equal(small_chunks.datasets.load("t@2"), new)
    assert_frame_equal(small_chunks.datasets.load("t@1"), df)
    assert run_cli("verify", cwd=small_chunks.root).code == 0


def test_new_columns_make_a_new_file_kept_as_given(small_chunks: Project, tmp_path: Path) -> None:
    df = frame(5_000)
    small_chunks.datasets.add(_parquet(df, tmp_path / "a.parquet"), name="t")
    wider = df.with_columns((pl.col("income") / 12).alias("monthly"))
    v2 = small_chunks.datasets.add(_parquet(wider, tmp_path / "b.parquet"), name="t").version
    assert {s.blob for s in v2.segments} == {v2.id} and len(_objects(small_chunks)) == 2
    assert_frame_equal(small_chunks.datasets.load("t@2"), wider)


@pytest.mark.parametrize("kept_rows", [0, 1_000, 4_000])
def test_a_batch_of_new_rows_is_kept_as_given_unless_much_of_it_is_shared(
    small_chunks: Project, tmp_path: Path, kept_rows: int
) -> None:
    """Monthly batches (same columns, new rows) are stored as given, beside whatever
    pieces they still share; a version that shares over a tenth is stored as pieces."""
    df = frame(20_000)
    v1 = small_chunks.datasets.add(_parquet(df, tmp_path / "a.parquet"), name="t").version
    new = pl.concat([df.head(kept_rows), frame(20_000, seed=3).with_columns(pl.col("id") + 50_000)])
    path = _parquet(new, tmp_path / "b.parquet")
    v2 = small_chunks.datasets.add(path, name="t").version
    shared = [s for s in v2.segments if s.blob == v1.id]
    ranges = [s for s in v2.segments if s.blob == v2.id]
    stored = {d for s in v2.segments for d in s.digests} - {v1.id}  # blobs and patches
    assert sum(s.n_rows for s in shared) >= kept_rows - 1_000
    assert len(_objects(small_chunks)) == 1 + len(stored)  # nothing else was kept
    if kept_rows < 0.1 * new.height:
        assert {s.blob for s in v2.segments} <= {v1.id, v2.id} and ranges
        assert small_chunks.objects.path(v2.id).read_bytes() == path.read_bytes()
    else:  # the copy of the file was dropped: only the new pieces were stored
        assert not ranges and not small_chunks.objects.has(v2.id) and v2.id not in stored
    assert_frame_equal(small_chunks.datasets.load("t@2"), new)
    for offset in (0, max(0, kept_rows - 10), 20_990):
        assert_frame_equal(small_chunks.datasets.rows("t@2", offset, 30), new.slice(offset, 30))
    assert run_cli("verify", cwd=small_chunks.root).code == 0


def test_a_file_of_large_row_groups_is_cut_and_written_as_pieces(
    small_chunks: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A range of a file whose row groups are large would decode far more than itself
    on every read (each piece compared for the next version, each page shown)."""
    monkeypatch.setattr(seg, "GIVEN_GROUP_ROWS", 1_999)
    df = frame(20_000)
    v = small_chunks.datasets.add(_parquet(df, tmp_path / "t.parquet"), name="t").version
    assert all(s.start is None for s in v.segments)
    assert len(_objects(small_chunks)) == len(v.segments)
    assert_frame_equal(small_chunks.datasets.load("t@1"), df)


def test_a_damaged_given_file_is_refused_naming_its_chunks(
    small_chunks: Project, tmp_path: Path
) -> None:
    df = frame(5_000)
    v = small_chunks.datasets.add(_parquet(df, tmp_path / "t.parquet"), name="t").version
    (obj,) = _objects(small_chunks)
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0xFF
    obj.write_bytes(bytes(data))
    n = len(v.segments)
    with pytest.raises(StoreError, match=rf"dataset t@1 \(chunks 1-{n} of {n}\) is damaged"):
        small_chunks.datasets.rows("t@1", 4_990, 5)
    r = run_cli("data", "head", "t@1", cwd=small_chunks.root)
    assert r.code == 1 and "is damaged" in r.err and "Traceback" not in r.err


def test_a_store_from_before_ranges_reads_and_takes_them(
    small_chunks: Project, tmp_path: Path
) -> None:
    """A catalog of schema 12 (segments were whole blobs) gets the column on opening."""
    df = frame(3_000)
    df.write_csv(tmp_path / "a.csv")
    small_chunks.datasets.add(tmp_path / "a.csv", name="old")
    with small_chunks.catalog.write() as con:
        con.execute("ALTER TABLE dataset_segments DROP COLUMN first_hash")  # schema 14's
        con.execute("ALTER TABLE dataset_segments DROP COLUMN start")
        con.execute("UPDATE wb_meta SET value = '12' WHERE key = 'schema_version'")
    p = Project(small_chunks.root)
    assert_frame_equal(p.datasets.load("old@1"), df)
    p.datasets.add(_parquet(df, tmp_path / "b.parquet"), name="new")
    assert_frame_equal(p.datasets.load("new@1"), df)
    assert run_cli("verify", cwd=p.root).code == 0


def test_an_add_refused_by_its_checks_leaves_no_copy_of_the_file(
    small_chunks: Project, tmp_path: Path
) -> None:
    cfg = small_chunks.root / "workbench.toml"
    cfg.write_text(cfg.read_text() + "\n[checks.t]\nrows = [1000000, -1]\n")
    p = Project(small_chunks.root)
    r = run_cli(
        "data", "add", str(_parquet(frame(5_000), tmp_path / "t.parquet")), "-n", "t", cwd=p.root
    )
    assert r.code != 0 and "Traceback" not in r.err
    assert _objects(p) == [] and not any((p.store_dir / "tmp").rglob("*.parquet"))
    assert not [f for f in (p.store_dir / "tmp").rglob("*") if f.is_file()]


def test_a_copy_told_to_stop_stops_and_leaves_nothing(project: Project, tmp_path: Path) -> None:
    import threading

    path = _parquet(frame(1_000), tmp_path / "t.parquet")
    stop = threading.Event()
    stop.set()
    with project.objects.stage() as stage:
        with pytest.raises(StoreError, match="stopped"):
            stage.put_file(path, stop)
        assert list(stage.area.iterdir()) == [] and stage.sizes == {}
        assert stage.put_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_new_pieces_are_never_read_from_a_damaged_stored_copy(
    small_chunks: Project, tmp_path: Path
) -> None:
    """The file's bytes are already in the store (another dataset kept them as given):
    the pieces a mostly shared version needs are read from there only if it is intact."""
    df = frame(20_000)
    path = _parquet(df, tmp_path / "f.parquet")
    kept = small_chunks.datasets.add(path, name="other").version
    small_chunks.datasets.add(_parquet(df.head(19_000), tmp_path / "a.parquet"), name="t")
    stored = small_chunks.objects.path(kept.id)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    before = _objects(small_chunks)
    with pytest.raises(StoreError, match="the stored copy of this file is damaged"):
        small_chunks.datasets.add(path, name="t")
    assert _objects(small_chunks) == before and len(small_chunks.datasets.versions("t")) == 1
