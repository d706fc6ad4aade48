"""workbench.toml is read once, whole, into typed settings that refuse what they do not
know: a misspelt key or alias is one line naming the key and its line, and every
command refuses to run on a bad file rather than quietly ignoring part of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli, store_snapshot
from workbench.core import config
from workbench.core.errors import UsageError
from workbench.core.project import Project

SAMPLES = Path(__file__).resolve().parents[2] / "sample_projects"


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("sample", ["flights", "bikes"])
def test_the_sample_projects_settings_read_back_typed(sample: str) -> None:
    s = config.load(SAMPLES / sample / "workbench.toml")
    assert s.name == sample and s.train.model == "lightgbm" and s.train.seed == 7
    assert s.train.params["n_estimators"] in (200, 300)
    assert set(s.gates) == {"staging", "production"}
    assert all(g.text.startswith("metrics.") for g in s.gates["production"])
    if sample == "flights":
        monthly = s.pipelines["monthly"]
        assert (monthly.dataset, monthly.model, monthly.retrain) == (
            "flights",
            "flight-delays",
            "drift",
        )
        assert monthly.alias == "production" and not monthly.lower_is_better


MISTAKES = [
    # (text, the line's marker, what the message must say)
    ('[gates]\nprodution = ["metrics.val_auc >= 0.7"]\n', "prodution", "did you mean production?"),
    ('[gates]\nstagin = "metrics.val_auc >= 0.7"\n', "stagin", "did you mean staging?"),
    ('[gate]\nproduction = ["metrics.val_auc >= 0.7"]\n', "[gate]", "did you mean gates?"),
    (
        '[train]\nmodel = "lightgbm"\nlearning_rate = 0.1\n',
        "learning_rate",
        "unknown key 'learning_rate' in [train]",
    ),
    ('[train]\nmodel = "xgboost"\n', "xgboost", "train.model 'xgboost' is not one of"),
    ('train.seed = "seven"\n', "train.seed", "train.seed must be a whole number"),
    ('[train]\nsplit = "random:2"\n', "split", "train.split: invalid split 'random:2'"),
    (
        "[datasets]\nchunk_rows = 0\n",
        "chunk_rows",
        "datasets.chunk_rows must be a whole number above 0",
    ),
    ("[datasets]\nchunk_row = 1000\n", "chunk_row", "did you mean chunk_rows?"),
    ('[gates]\nproduction = ["metrics.val_auc >>= 0.7"]\n', "production", "gates.production:"),
    (
        '[pipeline.monthly]\ndataset = "d"\nmodel = "m"\ntarget = "y"\nretrian = "always"\n',
        "retrian",
        "did you mean retrain?",
    ),
    (
        '[pipeline.monthly]\ndataset = "d"\nmodel = "m"\n',
        "[pipeline.monthly]",
        'needs target = "..."',
    ),
    ('[checks.people]\nnot_nul = ["age"]\n', "not_nul", "did you mean not_null?"),
    ("[project]\nname = 3\n", "name = 3", "project.name must be a string"),
]


@pytest.mark.parametrize(("text", "marker", "says"), MISTAKES)
def test_each_mistake_is_refused_naming_its_key_and_line(text: str, marker: str, says: str) -> None:
    full = text + ("" if "[project]" in text else '\n[project]\nname = "p"\n')
    with pytest.raises(UsageError) as info:
        config.parse(full)
    message = info.value.message
    assert message.startswith(f"workbench.toml, line {_line(full, marker)}: "), message
    assert says in message, message
    assert "\n" not in message


def test_usual_alias_names_and_custom_ones_pass() -> None:
    s = config.parse(
        '[gates]\nproduction = "metrics.val_auc >= 0.7"\nprod = []\ncanary = ["status = finished"]\n'
    )
    assert [g.text for g in s.gates["production"]] == ["metrics.val_auc >= 0.7"]
    assert s.gates["prod"] == [] and len(s.gates["canary"]) == 1


def test_invalid_toml_names_the_line() -> None:
    with pytest.raises(UsageError, match=r"is not valid TOML: .*line 2"):
        config.parse('[train]\nmodel = "lightgbm\n')


def test_a_misspelt_gate_alias_no_longer_leaves_production_ungated(project: Project) -> None:
    """The case that started this: before, the gate was kept under 'prodution' and a
    promotion to production went through with no gate at all."""
    cfg = project.root / "workbench.toml"
    cfg.write_text(cfg.read_text() + '\n[gates]\nprodution = ["metrics.val_auc >= 0.99"]\n')
    before = store_snapshot(project)
    line = _line(cfg.read_text(), "prodution")
    for args in (
        ("config", "check"),
        ("model", "promote", "m", "1", "--to", "production"),
        ("data", "list"),
        ("runs", "list"),
        ("drift", "a", "b"),
    ):
        res = run_cli(*args, cwd=project.root)
        assert res.code == 2, (args, res.err)
        assert res.err.count("\n") == 1 and res.out == "", args
        assert f"workbench.toml, line {line}: gates.prodution:" in res.err, args
        assert "did you mean production?" in res.err
    assert store_snapshot(Project(project.root)) == before  # nothing written


def test_config_check_reports_what_it_read(project: Project) -> None:
    cfg = project.root / "workbench.toml"
    cfg.write_text(
        cfg.read_text()
        + '\n[train]\nmodel = "ridge"\n\n[gates]\nstaging = ["metrics.val_r2 >= 0.5"]\n'
    )
    res = run_cli("config", "check", cwd=project.root)
    assert res.code == 0 and ": ok. train ridge, gates: staging (1)" in res.out
    res = run_cli("config", "check", "--json", cwd=project.root)
    data = json.loads(res.out)
    assert data["train"] == {"model": "ridge", "seed": 42, "split": "random:0.2"}
    assert data["gates"] == {"staging": ["metrics.val_r2 >= 0.5"]}


def test_the_python_api_refuses_a_bad_file_on_first_use(project: Project) -> None:
    cfg = project.root / "workbench.toml"
    cfg.write_text(cfg.read_text() + "\n[trian]\nmodel = 'ridge'\n")
    p = Project(project.root)
    with pytest.raises(
        UsageError, match="unknown key 'trian' in the top level; did you mean train"
    ):
        p.datasets.list()
