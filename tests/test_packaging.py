"""The wheel carries every package and the sample projects that `workbench demo` needs."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_lists_every_package_and_maps_the_samples() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "workbench").rglob("__init__.py")
    }
    listed = set(config["packages"])
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"
    assert listed - on_disk == {"workbench.samples"}
    assert config["package-dir"]["workbench.samples"] == "sample_projects"
    patterns = config["package-data"]["workbench.samples"]
    for sample in ("flights", "bikes"):
        folder = ROOT / "sample_projects" / sample
        for needed in ("README.md", "workbench.toml", "train.py", "data/x.parquet"):
            assert any(Path(f"{sample}/{needed}").match(p) for p in patterns), (
                f"{sample}/{needed} would not ship"
            )
        assert (folder / "README.md").is_file()
