"""Several real processes writing at once: nothing lost, numbering stays whole."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from workbench.core.project import Project
from workbench.core.store import audit
from workbench.core.store.verify import verify

WORKER = textwrap.dedent(
    """
    import sys
    import polars as pl
    from workbench import Project

    root, worker, n, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    project = Project(root)
    for i in range(n):
        path = f"{out}/w{worker}_{i}.csv"
        pl.DataFrame({"worker": [worker] * 50, "i": [i] * 50, "x": list(range(50))}).write_csv(path)
        project.datasets.add(path, name="shared", message=f"w{worker} v{i}")
        project.datasets.add(path, name=f"own{worker}")
    print("done")
    """
)


@pytest.mark.slow
def test_parallel_writers_lose_nothing(project: Project, tmp_path: Path) -> None:
    workers, per_worker = 4, 5
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(project.root),
                str(w),
                str(per_worker),
                str(tmp_path),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0 and out.strip() == "done", err

    shared = project.datasets.versions("shared")
    assert [v.number for v in shared] == list(range(1, workers * per_worker + 1))
    assert sorted(v.message for v in shared) == sorted(
        f"w{w} v{i}" for w in range(workers) for i in range(per_worker)
    )
    for w in range(workers):
        assert len(project.datasets.versions(f"own{w}")) == per_worker
    for v in shared:  # every version reads back as the data its worker wrote
        df = project.datasets.load(v)
        w, i = (int(x) for x in v.message.replace("w", "").replace("v", "").split())
        assert df["worker"].unique().to_list() == [w] and df["i"].unique().to_list() == [i]
    with project.catalog.read() as con:
        assert con.execute("SELECT count(*) FROM audit").fetchone()[0] == 2 * workers * per_worker
        assert audit.verify_chain(con) == []
    report = verify(project)
    assert report.ok and report.orphans == []
