"""A damaged or missing object is never read as data.

Each kind of stored object (a dataset chunk, a patch over a chunk, a model file, a run's
artifact) is damaged in the two ways a disk or a hand does it: one byte flipped in the
middle, or the file gone. Every command that reads that object then refuses with one
line that names what is damaged (the version and the object), exits 1 and changes
nothing: no output file appears and the catalog and objects are as they were.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import frame, run_cli, store_snapshot
from workbench.core.errors import StoreError
from workbench.core.project import Project


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """t@1 in chunks of at most 1,000 rows, t@2 = t@1 with five cells edited (as patches),
    a run trained on t@1 registered as m v1 and promoted to production."""
    from workbench.core.runs.training import Recipe, train

    root = tmp_path_factory.mktemp("corrupt") / "p"
    data = root.parent
    p, _ = Project.init(root)
    cfg = root / "workbench.toml"
    cfg.write_text(cfg.read_text().replace("# chunk_rows = 262144", "chunk_rows = 1000"))
    with cfg.open("a") as fh:
        fh.write('\n[checks.t]\nnot_null = ["id"]\n')
    p = Project(root)
    df = frame(3000)
    # CSV: a Parquet file's first version is kept as given, one object for every chunk
    # (tests/core/test_given.py damages that one)
    df.write_csv(data / "a.csv")
    p.datasets.add(data / "a.csv", name="t")
    edited = df.with_columns(
        pl.when(pl.col("id").is_in([5, 1500, 1501, 2100, 2999]))
        .then(pl.col("income") + 1)
        .otherwise(pl.col("income"))
        .alias("income")
    )
    edited.write_csv(data / "b.csv")
    v1 = p.datasets.resolve("t@1")
    v2 = p.datasets.add(data / "b.csv", name="t").version
    assert [s.blob for s in v2.segments] == [s.blob for s in v1.segments]  # no chunk anew
    assert sum(bool(s.patches) for s in v2.segments) >= 3  # the edits, as patches
    run = train(p, Recipe(dataset="t@1", target="churned", params={"n_estimators": 5}))
    p.models.register(run, "m")
    p.models.promote("m", 1, "production", reason="test")
    return root


def _project(built: Path, tmp_path: Path) -> Project:
    root = tmp_path / "p"
    shutil.copytree(built, root)
    return Project(root)


def _chunk(p: Project) -> tuple[str, str]:
    segments = p.datasets.resolve("t@1").segments
    return segments[1].blob, f"dataset t@1 (chunk 2 of {len(segments)})"


def _patch(p: Project) -> tuple[str, str]:
    segments = p.datasets.resolve("t@2").segments
    at = next(i for i, s in enumerate(segments) if s.patches)
    return segments[at].patches[0], f"dataset t@2 (a patch of chunk {at + 1}"


def _model(p: Project) -> tuple[str, str]:
    return p.models.resolve("m@1").artifact, "the model file of m@1"


def _signature(p: Project) -> tuple[str, str]:
    info = p.runs.get(p.runs.list()[0].id)
    art = next(a for a in info.artifacts if a.path.endswith("signature.json"))
    return art.hash, "signature.json"


def flip(path: Path) -> None:
    """One byte in the middle, as a bad sector or a stray write leaves it."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


# (what is damaged, the command that reads it, the output file it must not leave)
CASES: list[tuple[str, Callable[[Project], tuple[str, str]], tuple[str, ...], str | None]] = [
    ("chunk", _chunk, ("data", "export", "t@1", "-o", "{out}/t.csv"), "t.csv"),
    ("chunk", _chunk, ("data", "head", "t@1", "-n", "1500"), None),  # reaches chunk 2
    ("chunk", _chunk, ("data", "diff", "t@1", "t@2"), None),
    ("chunk", _chunk, ("data", "check", "t@1"), None),
    ("chunk", _chunk, ("train", "t@1", "--target", "churned", "-p", "n_estimators=3"), None),
    ("chunk", _chunk, ("drift", "compare", "t@1", "t@2"), None),
    ("chunk", _chunk, ("predict", "m@production", "t@1", "-o", "{out}/s.parquet"), "s.parquet"),
    ("patch", _patch, ("data", "export", "t@2", "-o", "{out}/t2.parquet"), "t2.parquet"),
    ("patch", _patch, ("data", "head", "t@2", "-n", "3000"), None),
    ("model", _model, ("predict", "m@production", "t@2", "-o", "{out}/s.parquet"), "s.parquet"),
    ("artifact", _signature, ("model", "register", "run:{run}", "-n", "m2"), None),
    ("artifact", _signature, ("export", "mlflow", "{out}/mlruns"), "mlruns"),
]


@pytest.mark.parametrize("damage", ["flipped byte", "missing"])
@pytest.mark.parametrize(
    ("kind", "target", "command", "leaves"),
    CASES,
    ids=[f"{c[0]}-{' '.join(c[2][:2])}" for c in CASES],
)
def test_a_damaged_object_is_refused_by_every_read(
    built: Path,
    tmp_path: Path,
    kind: str,
    target: Callable[[Project], tuple[str, str]],
    command: tuple[str, ...],
    leaves: str | None,
    damage: str,
) -> None:
    p = _project(built, tmp_path)
    digest, names = target(p)
    run_id = p.runs.list()[0].id
    out = tmp_path / "out"
    out.mkdir()
    path = p.objects.path(digest)
    if damage == "missing":
        path.unlink()
    else:
        flip(path)
    before = store_snapshot(p)

    args = [a.format(out=out, run=run_id[:8]) for a in command]
    r = run_cli(*args, cwd=p.root)

    assert r.code == 1, (r.out, r.err)
    line = r.err.strip()
    assert "\n" not in line and "Traceback" not in r.err and "unexpected" not in line
    word = "missing" if damage == "missing" else "damaged"
    assert word in line and digest[:12] in line and names in line, line
    assert store_snapshot(p) == before
    if leaves is not None:
        assert not (out / leaves).exists()
    assert list(out.iterdir()) == []


def test_an_intact_store_reads_as_before_and_pages_read_only_their_chunks(
    built: Path, tmp_path: Path
) -> None:
    p = _project(built, tmp_path)
    t1 = frame(3000)
    assert p.datasets.load("t@1").equals(t1)
    assert p.datasets.rows("t@1", 990, 20).equals(t1.slice(990, 20))
    assert p.datasets.rows("t@1", 2990, 50).equals(t1.slice(2990, 10))
    assert p.datasets.rows("t@1", 5000, 5).columns == t1.columns
    assert p.datasets.head("t@1", 0).height == 0
    # a page away from the damage still reads: only the chunks that hold it are checked
    segments = p.datasets.resolve("t@1").segments
    start = segments[0].n_rows + segments[1].n_rows  # the third chunk's first row
    flip(p.objects.path(segments[2].blob))
    assert p.datasets.rows("t@1", 0, start).equals(t1.slice(0, start))
    damaged = rf"t@1 \(chunk 3 of {len(segments)}\) is damaged"
    with pytest.raises(StoreError, match=damaged):
        p.datasets.rows("t@1", start - 1, 2)
    with pytest.raises(StoreError, match=damaged):
        p.datasets.scan("t@1")
