"""Build a workbench project from the monthly flight batches.

    python sample_projects/flights/run.py [PROJECT_DIR]

Creates PROJECT_DIR (default: ./flights-project) as a workbench project and adds
each month of 2013 as a version of the dataset `flights`, as a team receiving
one batch a month would. Safe to run again: the same bytes make no new version.
"""

from __future__ import annotations

import sys
from pathlib import Path

from workbench import Project

HERE = Path(__file__).resolve().parent


def main(target: str) -> Project:
    project, created = Project.init(target, name="flights")
    print(("Created" if created else "Using") + f" project at {project.root}")
    for path in sorted((HERE / "data").glob("flights_2013_*.parquet")):
        month = path.stem.rsplit("_", 1)[-1]
        res = project.datasets.add(path, name="flights", message=f"2013-{month} batch")
        v = res.version
        state = "added" if res.created else "already stored"
        print(f"  {v.ref:<12} {v.n_rows:>6,} rows  {state}")
    # How far did the label move between a calm and a stormy month?
    prof = {m: project.datasets.profile(f"flights@{m}") for m in (9, 12)}
    rate = {
        m: next(c for c in p["columns"] if c["name"] == "delayed")["mean"] for m, p in prof.items()
    }
    print(f"Delay rate: September {rate[9]:.1%}, December {rate[12]:.1%}")
    print(
        f"Next: cd {project.root} && workbench data list flights && workbench data diff flights@9 flights@12"
    )
    return project


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "flights-project")
