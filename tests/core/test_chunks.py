"""Chunked storage: appends and small edits store only what changed, data stays exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tests.conftest import frame
from workbench.core.data.segments import parquet_bytes
from workbench.core.project import Project


def _add(project: Project, df: pl.DataFrame, path: Path, name: str = "t"):
    df.write_parquet(path)
    return project.datasets.add(path, name=name).version


def _disk(project: Project) -> int:
    return sum(p.stat().st_size for p in (project.store_dir / "objects").rglob("*") if p.is_file())


def test_append_stores_only_the_new_rows(small_chunks: Project, tmp_path: Path) -> None:
    base = frame(10_000)
    v1 = _add(small_chunks, base, tmp_path / "a.parquet")
    # cut by content: at most chunk_rows (1000) rows a segment, about half on average
    assert all(s.n_rows <= 1000 for s in v1.segments) and 10 <= len(v1.segments) <= 40
    grown = pl.concat([base, frame(100, seed=1).with_columns(pl.col("id") + 10_000)])
    v2 = _add(small_chunks, grown, tmp_path / "b.parquet")
    assert v2.segments[: len(v1.segments)] == v1.segments  # every old chunk reused as is
    assert v2.stored_bytes < v1.stored_bytes / 20
    assert_frame_equal(small_chunks.datasets.load("t@2"), grown)
    assert_frame_equal(small_chunks.datasets.load("t@1"), base)


@pytest.mark.slow  # 100k rows, ten versions
def test_scattered_edits_become_patches_and_read_back_exactly(
    small_chunks: Project, tmp_path: Path
) -> None:
    # At 10k-row chunks a 1% patch is ~100 rows; smaller data would measure Parquet footers.
    cfg = small_chunks.root / "workbench.toml"
    cfg.write_text(cfg.read_text().replace("chunk_rows = 1000", "chunk_rows = 10000"))
    small_chunks = Project(small_chunks.root)
    rng = np.random.default_rng(7)
    df = frame(100_000)
    _add(small_chunks, df, tmp_path / "v1.parquet")
    one_version = _disk(small_chunks)
    versions = [df]
    for i in range(9):  # nine more versions, each editing 1% of the rows at random
        idx = rng.choice(df.height, size=df.height // 100, replace=False)
        mask = pl.Series(np.isin(np.arange(df.height), idx))
        df = df.with_columns(
            pl.when(mask)
            .then(pl.col("income") + 1.0 + i)
            .otherwise(pl.col("income"))
            .alias("income")
        )
        v = _add(small_chunks, df, tmp_path / f"v{i + 2}.parquet")
        assert all(s.patches for s in v.segments)  # no chunk rewritten in full
        versions.append(df)
    for n, expected in enumerate(versions, start=1):
        assert_frame_equal(small_chunks.datasets.load(f"t@{n}"), expected)
    assert _disk(small_chunks) <= 1.5 * one_version


@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_long_patch_chains_are_collapsed_into_one_patch(
    small_chunks: Project, tmp_path: Path
) -> None:
    df = frame(1000)
    first = _add(small_chunks, df, tmp_path / "v0.parquet")
    for i in range(12):
        df = df.with_columns(
            pl.when(pl.col("id") == i).then(pl.lit(-1)).otherwise(pl.col("age")).alias("age")
        )
        v = _add(small_chunks, df, tmp_path / f"v{i}.parquet")
        assert len(v.segments[0].patches) <= 8
        assert v.segments[0].blob == first.segments[0].blob  # collapsed, not rewritten
    assert_frame_equal(small_chunks.datasets.load("t"), df)


@pytest.mark.parametrize("nested", [False, True])
def test_a_chunk_read_whole_is_its_patches_applied_as_a_scan_applies_them(
    small_chunks: Project, tmp_path: Path, nested: bool
) -> None:
    """A new version is compared with the chunks it builds on read whole (each patch's
    values written at its rows); that must be the very table a scan gives (a patch
    per join), whatever the column's type and with nulls written over values and values
    over nulls. A table with a list column goes the scan's way."""
    from workbench.core.data.segments import scan_segments, segment_frame

    rng = np.random.default_rng(3)
    df = frame(3000).with_columns(
        when=pl.datetime(2024, 1, 1, time_zone="UTC") + pl.duration(hours=pl.col("id")),
        day=pl.date(2024, 1, 1) + pl.duration(days=pl.col("id") % 40),
        flag=pl.col("churned") == 1,
        note=pl.when(pl.col("id") % 7 == 0).then(None).otherwise(pl.format("n{}", pl.col("id"))),
        kind=pl.col("plan").cast(pl.Categorical),
        tier=pl.col("plan").cast(pl.Enum(["basic", "plus", "pro", "max"])),
    )
    if nested:
        df = df.with_columns(tags=pl.concat_list(pl.col("plan"), pl.col("note")))
    _add(small_chunks, df, tmp_path / "v0.parquet")
    edits = [("income", pl.col("income") + 1.0), ("note", pl.lit(None, pl.String)),
             ("when", pl.col("when") + pl.duration(minutes=5)), ("flag", ~pl.col("flag")),
             ("note", pl.lit("back")), ("day", pl.lit(None, pl.Date)),
             ("kind", pl.lit("new", pl.Categorical)),
             ("tier", pl.lit("max", pl.Enum(["basic", "plus", "pro", "max"])))]  # fmt: skip
    for i, (column, value) in enumerate(edits):
        hit = pl.Series(np.isin(np.arange(df.height), rng.choice(df.height, 20, replace=False)))
        df = df.with_columns(pl.when(hit).then(value).otherwise(pl.col(column)).alias(column))
        v = _add(small_chunks, df, tmp_path / f"v{i + 1}.parquet")
    patched = [s for s in v.segments if len(s.patches) >= 3]
    assert patched  # the edits landed as patch chains, not new chunks
    path_of = small_chunks.objects.path
    for s in v.segments:
        assert_frame_equal(segment_frame(s, path_of), scan_segments([s], path_of).collect())
    assert_frame_equal(small_chunks.datasets.load("t"), df)


def test_rows_deleted_in_the_middle_cost_one_segment_and_read_back_exactly(
    small_chunks: Project, tmp_path: Path
) -> None:
    df = frame(20_000)
    v1 = _add(small_chunks, df, tmp_path / "a.parquet")
    shorter = df.filter((pl.col("id") < 9_000) | (pl.col("id") >= 9_100))
    v2 = _add(small_chunks, shorter, tmp_path / "b.parquet")
    assert len(set(v2.segments) - set(v1.segments)) <= 2  # the rest shared as they were
    assert v2.stored_bytes < 3 * v1.stored_bytes / len(v1.segments)
    assert_frame_equal(small_chunks.datasets.load("t@2"), shorter)
    assert_frame_equal(small_chunks.datasets.load("t@1"), df)


@pytest.mark.parametrize("at", [0, 4_321, 10_000, 19_999])
def test_a_row_inserted_anywhere_costs_about_one_segment(
    small_chunks: Project, tmp_path: Path, at: int
) -> None:
    """Cut by content, the rows after an insert keep their segments (cut at fixed sizes,
    every later boundary would shift and the rest of the table be stored again)."""
    df = frame(20_000)
    v1 = _add(small_chunks, df, tmp_path / "a.parquet")
    one = frame(1, seed=9).with_columns(pl.lit(-1, dtype=df.schema["id"]).alias("id"))
    grown = pl.concat([df.head(at), one, df.slice(at)])
    before = _disk(small_chunks)
    v2 = _add(small_chunks, grown, tmp_path / "b.parquet")
    new = [s for s in v2.segments if s not in v1.segments]
    assert len(new) <= 2 and len(v2.segments) >= len(v1.segments) - 1
    # v1 is the file as given; what the insert stores is new segments in workbench's own
    # format: about one segment of the table written that way
    one_segment = len(parquet_bytes(df.head(df.height // len(v1.segments))))
    assert _disk(small_chunks) - before < 3 * one_segment
    assert_frame_equal(small_chunks.datasets.load("t@2"), grown)
    assert_frame_equal(small_chunks.datasets.load("t@1"), df)


@pytest.mark.slow  # wide and narrow tables of a million cells
def test_chunk_size_is_fixed_per_dataset_and_adapts_to_row_width(
    project: Project, tmp_path: Path
) -> None:
    wide = pl.DataFrame({f"c{i}": np.arange(3000, dtype=np.float64) for i in range(2000)})
    v = _add(project, wide, tmp_path / "wide.parquet", name="wide")
    assert len(v.segments) >= 2  # ~16 KB a row: far fewer rows per chunk than a narrow table
    narrow = _add(project, frame(3000), tmp_path / "n.parquet", name="narrow")
    assert len(narrow.segments) == 1


@pytest.mark.parametrize("kept", ["as written", "none", "stale"])
def test_a_later_version_is_matched_by_the_first_row_hashes_the_catalog_keeps(
    small_chunks: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kept: str
) -> None:
    """Each segment keeps its first row's hash, so the next version matches its pieces
    without reading a row of each old segment. A store from before (none kept) or a
    Polars that hashes otherwise (stale) reads them all again, and dedups the same."""
    from workbench.core.data import segments

    df = frame(20_000)
    v1 = _add(small_chunks, df, tmp_path / "a.parquet")
    stored = small_chunks.datasets.resolve("t@1").segments
    path_of = small_chunks.objects.path
    assert [s.first_hash for s in stored] == [segments.first_row_hash(s, path_of) for s in stored]
    if kept != "as written":
        with small_chunks.catalog.write() as con:
            con.execute(
                "UPDATE dataset_segments SET first_hash = "
                + ("NULL" if kept == "none" else "first_hash // 2 + 1")
            )
    reads: list[int] = []
    real = segments.first_row_hash
    monkeypatch.setattr(segments, "first_row_hash", lambda s, p: reads.append(1) or real(s, p))
    one = frame(1, seed=9).with_columns(pl.lit(-1, dtype=df.schema["id"]).alias("id"))
    grown = pl.concat([df.head(8_765), one, df.slice(8_765)])
    v2 = _add(small_chunks, grown, tmp_path / "b.parquet")
    # the stored hashes, checked against one row; else every segment's row read
    assert len(reads) == {"as written": 1, "none": len(stored), "stale": 1 + len(stored)}[kept]
    assert len([s for s in v2.segments if s not in v1.segments]) <= 2
    assert_frame_equal(small_chunks.datasets.load("t@2"), grown)
    monkeypatch.undo()
    again = small_chunks.datasets.resolve("t@2").segments
    assert [s.first_hash for s in again] == [segments.first_row_hash(s, path_of) for s in again]
