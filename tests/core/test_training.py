"""Training from a dataset version: every model family, tracked and reproducible."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from workbench.core.errors import DataError, UsageError
from workbench.core.project import Project
from workbench.core.runs.training import Recipe, train


def churn(n: int = 600, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    plan = rng.choice(["basic", "plus", "pro"], n)
    income = rng.normal(50, 15, n)
    income[rng.random(n) < 0.05] = np.nan
    logit = 0.05 * (age - 45) + np.where(plan == "basic", 1.0, -0.5) + rng.normal(0, 1, n)
    return pl.DataFrame(
        {
            "age": age,
            "plan": plan,
            "income": income,
            "signup": pl.date_range(
                pl.date(2020, 1, 1), pl.date(2020, 1, 1) + pl.duration(days=n - 1), eager=True
            ),
            "churned": (logit > 0).astype(int),
            "spend": 100 + 2 * age + rng.normal(0, 5, n),
            "segment": rng.choice(["a", "b", "c"], n),
        }
    ).with_columns(
        pl.when(pl.col("age") % 17 == 0).then(None).otherwise(pl.col("plan")).alias("plan")
    )


@pytest.fixture
def data(project: Project, tmp_path: Path) -> Project:
    churn().write_parquet(tmp_path / "c.parquet")
    project.datasets.add(tmp_path / "c.parquet", name="churn")
    return project


def test_lightgbm_binary_run_logs_metrics_curves_and_a_usable_model(data: Project) -> None:
    run_id = train(data, Recipe(dataset="churn@1", target="churned", params={"n_estimators": 50}))
    info = data.runs.get(run_id)
    assert info["status"] == "finished" and info["dataset_ref"] == "churn@1"
    assert info["params"]["task"] == "binary" and info["params"]["model.n_estimators"] == "50"
    assert info["params"]["model.learning_rate"] == "0.05"  # defaults that mattered are logged
    m = info["metrics"]
    assert 0.7 < m["val_auc"]["last"] <= 1.0 and m["val_auc"]["step"] == 50
    for key in ("val_log_loss", "val_accuracy", "val_f1", "train_auc"):
        assert key in m
    assert m["val_log_loss_curve"]["count"] == 50 and m["val_auc_curve"]["count"] == 50
    arts = {a["path"]: a for a in info["artifacts"]}
    assert {
        "model.pkl",
        "signature.json",
        "feature_importance.json",
        "confusion_matrix.json",
    } <= set(arts)
    sig = json.loads(data.objects.read_bytes(arts["signature.json"]["hash"]))
    assert sig["inputs"] == {
        "age": "Int64",
        "plan": "String",
        "income": "Float64",
        "signup": "Date",
        "spend": "Float64",
        "segment": "String",
    }
    cm = json.loads(data.objects.read_bytes(arts["confusion_matrix.json"]["hash"]))
    assert sum(map(sum, cm["matrix"])) == int(info["params"]["n_val"])
    model = pickle.loads(data.objects.read_bytes(arts["model.pkl"]["hash"]))
    new = (
        churn(20, seed=5).drop("churned").with_columns(pl.lit("enterprise").alias("plan"))
    )  # unseen category
    pred = model.predict(new)
    assert pred.columns == ["prediction", "proba_0", "proba_1"] and pred.height == 20
    assert np.allclose(pred["proba_0"] + pred["proba_1"], 1.0)


@pytest.mark.parametrize(
    ("model", "target", "task", "metric"),
    [
        ("random_forest", "spend", "regression", "val_r2"),
        ("hist_gb", "segment", "multiclass", "val_accuracy"),
        ("logistic", "churned", "binary", "val_auc"),
        ("ridge", "spend", "regression", "val_rmse"),
        ("extra_trees", "churned", "binary", "val_f1"),
        ("lightgbm", "spend", "regression", "val_mae"),
    ],
)
def test_every_family_trains_with_categoricals_and_nulls(
    data: Project, model: str, target: str, task: str, metric: str
) -> None:
    params = {"n_estimators": 20} if model in ("random_forest", "extra_trees", "lightgbm") else {}
    if model == "hist_gb":
        params = {"max_iter": 20}
    run_id = train(data, Recipe(dataset="churn", target=target, model=model, params=params))
    info = data.runs.get(run_id)
    assert info["status"] == "finished" and info["params"]["task"] == task
    assert metric in info["metrics"]
    if task == "regression" and model != "ridge":
        assert info["metrics"]["val_r2"]["last"] > 0.8  # spend is 2*age plus noise


def test_same_recipe_and_seed_give_the_same_metrics(data: Project) -> None:
    recipe = Recipe(dataset="churn@1", target="churned", params={"n_estimators": 30}, seed=7)
    a = data.runs.get(train(data, recipe))["metrics"]
    b = data.runs.get(train(data, recipe))["metrics"]
    assert {k: v["last"] for k, v in a.items() if k != "fit_seconds"} == {
        k: v["last"] for k, v in b.items() if k != "fit_seconds"
    }


def test_time_split_trains_on_the_past(data: Project) -> None:
    run_id = train(
        data,
        Recipe(
            dataset="churn", target="churned", split="time:signup:0.25", params={"n_estimators": 10}
        ),
    )
    p = data.runs.get(run_id)["params"]
    assert (p["n_train"], p["n_val"]) == ("450", "150") and "signup" not in json.loads(
        p["features"]
    )


@pytest.mark.parametrize(
    ("recipe", "error", "fragment"),
    [
        (
            Recipe(dataset="churn", target="nope"),
            UsageError,
            "target column 'nope' is not in churn@1",
        ),
        (Recipe(dataset="churn", target="churned", model="svm"), UsageError, "unknown model 'svm'"),
        (Recipe(dataset="churn", target="churned", split="random:2"), UsageError, "invalid split"),
        (
            Recipe(dataset="churn", target="churned", split="time:nope"),
            UsageError,
            "time split column",
        ),
        (
            Recipe(dataset="churn", target="spend", model="logistic"),
            UsageError,
            "needs a classification",
        ),
        (
            Recipe(dataset="churn", target="segment", task="regression"),
            UsageError,
            "regression needs numbers",
        ),
        (
            Recipe(dataset="churn", target="churned", features=["nope"]),
            UsageError,
            "feature columns not in",
        ),
        (  # a typo is answered with the name meant, though it lies past the list's end
            Recipe(dataset="churn", target="churnd"),
            UsageError,
            "target column 'churnd' is not in churn@1; did you mean 'churned'?",
        ),
        (
            Recipe(dataset="churn", target="churned", features=["age", "incme"]),
            UsageError,
            "feature columns not in churn@1: incme; did you mean 'income'?",
        ),
        (
            Recipe(
                dataset="churn", target="churned", params={"bogus_param": 1}, model="random_forest"
            ),
            UsageError,
            "random_forest has no parameter .bogus_param.",
        ),
        (Recipe(dataset="nope", target="x"), Exception, "no dataset named 'nope'"),
    ],
)
def test_bad_recipes_are_refused_before_a_run_starts(
    data: Project, recipe: Recipe, error: type, fragment: str
) -> None:
    before = len(data.runs.list(limit=None))
    with pytest.raises(error, match=fragment):
        train(data, recipe)
    runs = data.runs.list(limit=None)
    assert len(runs) == before or runs[0]["status"] == "failed"


def test_single_class_target_is_refused(project: Project, tmp_path: Path) -> None:
    pl.DataFrame({"x": range(50), "y": [1] * 50}).write_csv(tmp_path / "a.csv")
    project.datasets.add(tmp_path / "a.csv", name="one")
    with pytest.raises(DataError, match="single class"):
        train(project, Recipe(dataset="one", target="y", task="binary"))


@pytest.mark.parametrize(
    ("task", "target"),
    [
        ("binary", lambda x: (x[:, 0] > 0).astype(int)),
        ("multiclass", lambda x: np.digitize(x[:, 0], [-0.5, 0.5])),
        ("regression", lambda x: x[:, 0] * 3 + x[:, 1]),
    ],
)
def test_lightgbm_metrics_from_its_own_outputs_equal_fresh_predictions(
    project: Project, tmp_path: Path, monkeypatch, task: str, target
) -> None:  # type: ignore[no-untyped-def]
    """A LightGBM run's metrics come from the outputs LightGBM computed while training
    (not a second prediction); they must be exactly what predicting again gives."""
    from workbench.core.runs import training

    x = np.random.default_rng(1).normal(size=(3000, 4))
    frame = pl.DataFrame({f"x{i}": x[:, i] for i in range(4)}).with_columns(
        pl.Series("y", target(x))
    )
    frame.write_parquet(tmp_path / "d.parquet")
    project.datasets.add(tmp_path / "d.parquet", name="d")
    recipe = Recipe(dataset="d", target="y", params={"n_estimators": 20})
    data = training.prepare(project, recipe)
    assert data["task"] == task
    used = []
    known = training._known_outputs

    def spy(*args):  # type: ignore[no-untyped-def]
        out = known(*args)
        used.append(out[1] is not None)
        return out

    monkeypatch.setattr(training, "_known_outputs", spy)
    model, _, scores, _ = training.fit(recipe, data)
    monkeypatch.setattr(training, "_known_outputs", known)
    assert used == [True]  # LightGBM's outputs were captured and used
    fresh, _ = training._metrics(task, data["y_val"], model, data["x_val"], "val")
    assert {k: scores[k] for k in fresh} == fresh
    # outputs that do not match a fresh prediction are not used
    wrong = {0: np.zeros(len(data["y_train"])), 1: np.zeros(len(data["y_val"]))}
    assert training._known_outputs(wrong, model, data["x_train"], data["x_val"]) == (None, None)


def test_a_time_split_never_puts_one_time_on_both_sides() -> None:
    """Cut at a value boundary, not a row count: 10 days of 37 rows each, 25% held out
    would cut inside a day by count; no day may be in training and validation both."""
    from workbench.core.runs.training import split_frame

    days = pl.Series("day", np.repeat(np.arange(10), 37))
    df = pl.DataFrame({"day": days.shuffle(seed=1), "x": np.arange(370)})
    train_df, val_df = split_frame(df, Recipe(dataset="d", target="x", split="time:day:0.25"))
    assert train_df.height + val_df.height == 370
    assert train_df["day"].max() < val_df["day"].min()
    # the whole boundary day goes to validation: 7.x days of 37 are 3 whole days
    assert sorted(val_df["day"].unique().to_list()) == [7, 8, 9]


@pytest.mark.parametrize("target", ["churned", "plan", "spend"])
def test_scoring_through_lightgbm_s_booster_gives_the_wrapper_s_numbers(target: str) -> None:
    """Serving predicts with a LightGBM model's booster directly (the scikit-learn wrapper
    re-checks its parameters on every call: 0.7 ms a row); the numbers must be the very
    same, for binary, multiclass and regression, missing values included."""
    import lightgbm as lgb

    from workbench.core.runs.feature_matrix import _booster, outputs

    df = churn(500, 3).with_columns(pl.col("plan").fill_null("basic"))
    x = df.select("age", "income").to_numpy()
    y = df.get_column(target).to_numpy()
    task = {"churned": "binary", "plan": "multiclass", "spend": "regression"}[target]
    est = (lgb.LGBMRegressor if task == "regression" else lgb.LGBMClassifier)(
        n_estimators=20, verbose=-1
    ).fit(x, y)
    assert _booster(est) is not None
    classes = None if task == "regression" else list(est.classes_)
    fast = outputs(est, x, task, classes)
    if task == "regression":
        assert np.array_equal(fast.get_column("prediction").to_numpy(), est.predict(x))
    else:
        proba = est.predict_proba(x)
        for i, cls in enumerate(classes or []):
            assert np.array_equal(fast.get_column(f"proba_{cls}").to_numpy(), proba[:, i])
        assert fast.get_column("prediction").to_list() == list(est.predict(x))
