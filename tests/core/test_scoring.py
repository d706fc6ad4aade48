"""Batch scoring with a registered model: signature checks, batches, records, tampering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.conftest import store_snapshot
from tests.core.test_training import churn
from workbench.core.errors import DataError, UsageError, WorkbenchError
from workbench.core.models.scoring import predict, scorings
from workbench.core.project import Project
from workbench.core.runs.training import Recipe, train


@pytest.fixture
def prod(project: Project, tmp_path: Path) -> Project:
    churn(600, 0).write_parquet(tmp_path / "c1.parquet")
    project.datasets.add(tmp_path / "c1.parquet", name="churn")
    run = train(project, Recipe(dataset="churn@1", target="churned", params={"n_estimators": 30}))
    project.models.register(run, "churn-model")
    project.models.promote("churn-model", 1, "production")
    return project


def test_scores_a_version_in_batches_with_probabilities(prod: Project, tmp_path: Path) -> None:
    out = tmp_path / "scored.parquet"
    res = predict(prod, "churn-model@production", "churn@1", out, batch_rows=128)
    scored = pl.read_parquet(out)
    assert res.rows == scored.height == 600
    assert scored.columns[:7] == churn(1).columns  # the input is carried through
    assert {"prediction", "proba_0", "proba_1"} <= set(scored.columns)
    assert np.allclose(scored["proba_0"] + scored["proba_1"], 1.0)
    # batches give what one pass gives
    whole = tmp_path / "whole.parquet"
    predict(prod, "churn-model@1", "churn@1", whole)
    assert pl.read_parquet(whole).equals(scored)
    # the model is the one that was trained: same predictions as the run's own model
    model = prod.models.load(prod.models.resolve("churn-model@1"))
    direct = model.predict(prod.datasets.load("churn@1"))
    assert np.allclose(direct["proba_1"].to_numpy(), scored["proba_1"].to_numpy())
    record = scorings(prod, "churn-model")[0]
    assert record["rows"] == 600 and record["input"] == "churn@1" and record["version"] == 1
    shares = record["distribution"]["classes"]
    assert sum(shares.values()) == pytest.approx(1.0)


def test_file_input_with_safe_casts_and_extra_columns(prod: Project, tmp_path: Path) -> None:
    df = (
        churn(50, 3)
        .with_columns(pl.col("age").cast(pl.String), pl.lit("x").alias("extra"))
        .drop("churned")
    )
    src = tmp_path / "new.csv"
    df.write_csv(src)
    out = tmp_path / "out.csv"
    res = predict(prod, "churn-model@production", str(src), out)
    scored = pl.read_csv(out)
    assert res.rows == 50 and "extra" in scored.columns and "prediction" in scored.columns


def test_a_column_with_no_value_at_all_is_read_as_missing_values(
    prod: Project, tmp_path: Path
) -> None:
    typed = (
        churn(20, 4).drop("churned").with_columns(pl.lit(None, dtype=pl.Float64).alias("income"))
    )
    untyped = typed.with_columns(pl.lit(None).alias("income"))  # a column of type Null
    assert untyped.schema["income"] == pl.Null
    for df, name in ((typed, "typed"), (untyped, "untyped")):
        df.write_parquet(tmp_path / f"{name}.parquet")
        predict(prod, "churn-model@production", str(tmp_path / f"{name}.parquet"),
                tmp_path / f"{name}-out.parquet", log=False)  # fmt: skip
    scored = [pl.read_parquet(tmp_path / f"{n}-out.parquet") for n in ("typed", "untyped")]
    assert scored[0].drop("income").equals(scored[1].drop("income"))


def test_a_script_s_model_fitted_on_named_columns_is_given_them_by_name(
    project: Project, tmp_path: Path
) -> None:
    """The script fitted on ("spend", "age"); its input example lists ("age", "spend"):
    each column goes to the model by its name, and scikit-learn has nothing to warn of
    (a bare array in the example's order swapped the two, silently)."""
    import warnings

    from sklearn.linear_model import LogisticRegression

    from workbench import start_run

    df = churn(300, 2)
    model = LogisticRegression(max_iter=1000).fit(
        df.select("spend", "age").to_pandas(), df["churned"]
    )
    with start_run(project=project) as run:
        run.log_model(model, input_example=df.select("age", "spend").head(5))
    project.models.register(run.id, "script-model")
    df.select("age", "spend").write_parquet(tmp_path / "new.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "X does not have valid feature names" is an error
        predict(project, "script-model@1", str(tmp_path / "new.parquet"), tmp_path / "out.parquet")
    scored = pl.read_parquet(tmp_path / "out.parquet")
    want = model.predict_proba(df.select("spend", "age").to_pandas())[:, 1]
    assert np.allclose(scored["proba_1"].to_numpy(), want)


def test_missing_columns_and_impossible_values_name_them_and_write_nothing(
    prod: Project, tmp_path: Path
) -> None:
    out = tmp_path / "out.parquet"
    src = tmp_path / "bad.parquet"
    churn(40, 1).drop("age", "plan").write_parquet(src)
    before = store_snapshot(prod)
    with pytest.raises(DataError, match=r"lacks column\(s\) the model needs: age, plan"):
        predict(prod, "churn-model@production", str(src), out)
    churn(40, 1).with_columns(
        pl.when(pl.int_range(pl.len()) == 7)
        .then(pl.lit("forty"))
        .otherwise(pl.col("age").cast(pl.String))
        .alias("age")
    ).write_parquet(src)
    with pytest.raises(DataError, match=r"column 'age' .* cannot be read as Int64: e.g. 'forty'"):
        predict(prod, "churn-model@production", str(src), out)
    assert not out.exists() and not list(tmp_path.glob(".out.parquet*"))
    assert store_snapshot(prod) == before
    with pytest.raises(UsageError, match=r"must end in .parquet, .csv or .jsonl"):
        predict(prod, "churn-model@production", "churn@1", tmp_path / "out.xlsx")


def test_an_altered_model_file_is_never_loaded(prod: Project, tmp_path: Path) -> None:
    mv = prod.models.resolve("churn-model@production")
    path = prod.objects.path(mv.artifact)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(WorkbenchError, match=r"model file of .* is damaged.* refusing to read it"):
        predict(prod, "churn-model@production", "churn@1", tmp_path / "o.parquet")
    path.unlink()
    with pytest.raises(WorkbenchError, match="missing from the store"):
        predict(prod, "churn-model@production", "churn@1", tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()
