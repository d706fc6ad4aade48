"""Model families: which estimator each ``--model`` name builds, with which defaults, and
how its inputs are prepared (native categoricals for the boosters, imputation, scaling
and one-hot encoding in a Pipeline for the others).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from workbench.core.errors import UsageError

if TYPE_CHECKING:
    import polars as pl

    from workbench.core.runs.model import Features
    from workbench.core.runs.recipe import Recipe


def infer_task(y: pl.Series) -> str:
    import polars as pl

    n = y.drop_nulls().n_unique()
    if y.dtype in (pl.String, pl.Boolean, pl.Categorical) or (y.dtype.is_integer() and n <= 20):
        return "binary" if n == 2 else "multiclass"
    if y.dtype.is_float() and n <= 2 and set(y.drop_nulls().unique().to_list()) <= {0.0, 1.0}:
        return "binary"
    return "regression"


@functools.cache
def valid_params(model: str) -> frozenset[str]:
    """Every parameter name ``model`` understands, to refuse a misspelt one up front.

    scikit-learn estimators name theirs in ``get_params``; LightGBM also takes its core
    parameters and their aliases (read from the library itself), which it would
    otherwise warn about and ignore: ``-p bogus_param=1`` trained as if never given.
    """
    if model == "lightgbm":
        import lightgbm as lgb

        names = set(lgb.LGBMClassifier().get_params())
        try:
            from lightgbm.basic import _ConfigAliases

            for name, aliases in _ConfigAliases._get_all_param_aliases().items():
                names.add(name)
                names.update(aliases)
        except (ImportError, AttributeError):  # a LightGBM that moved its alias table
            pass
        return frozenset(names)
    from sklearn import ensemble, linear_model

    classes = {
        "random_forest": (ensemble.RandomForestClassifier, ensemble.RandomForestRegressor),
        "extra_trees": (ensemble.ExtraTreesClassifier, ensemble.ExtraTreesRegressor),
        "hist_gb": (
            ensemble.HistGradientBoostingClassifier,
            ensemble.HistGradientBoostingRegressor,
        ),
        "logistic": (linear_model.LogisticRegression,),
        "linear": (linear_model.LinearRegression,),
        "ridge": (linear_model.Ridge,),
    }[model]
    return frozenset(name for cls in classes for name in cls().get_params())


def check_params(model: str, keys: Iterable[str]) -> None:
    """Refuse a parameter ``model`` does not have, naming the nearest one it does."""
    import difflib

    valid = valid_params(model)
    for key in keys:
        if key in valid:
            continue
        if key == "features":
            raise UsageError("features is not a model parameter: give them with --features a,b")
        same_case = [v for v in sorted(valid) if v.lower() == key.lower()]
        near = same_case or difflib.get_close_matches(key, sorted(valid), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise UsageError(f"{model} has no parameter {key!r}{hint}")


def build_estimator(
    recipe: Recipe, task: str, features: Features, n_classes: int
) -> tuple[Any, dict[str, Any]]:
    """The estimator and the full parameter set it was built with."""
    seed = recipe.seed
    p = dict(recipe.params)
    cat_idx = features.categorical
    if recipe.model == "lightgbm":
        import lightgbm as lgb

        defaults = {
            "n_estimators": 200,
            "learning_rate": 0.05,
            "num_leaves": 31,
            "min_child_samples": 20,
            "subsample": 1.0,
            "colsample_bytree": 1.0,
            "reg_lambda": 0.0,
            "n_jobs": 2,
        }
        params = {**defaults, **p, "random_state": seed, "verbose": -1}
        cls = lgb.LGBMRegressor if task == "regression" else lgb.LGBMClassifier
        try:
            return cls(**params), params
        except TypeError as exc:
            raise UsageError(f"bad LightGBM parameter: {exc}") from None
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    reg = task == "regression"
    table: dict[str, tuple[Any, dict[str, Any]]] = {
        "random_forest": (
            RandomForestRegressor if reg else RandomForestClassifier,
            {"n_estimators": 200, "max_depth": None, "min_samples_leaf": 1, "n_jobs": 2},
        ),
        "extra_trees": (
            ExtraTreesRegressor if reg else ExtraTreesClassifier,
            {"n_estimators": 200, "max_depth": None, "min_samples_leaf": 1, "n_jobs": 2},
        ),
        "hist_gb": (
            HistGradientBoostingRegressor if reg else HistGradientBoostingClassifier,
            {"max_iter": 200, "learning_rate": 0.1, "max_leaf_nodes": 31, "early_stopping": False},
        ),
        "logistic": (LogisticRegression, {"C": 1.0, "max_iter": 1000}),
        "linear": (LinearRegression, {}),
        "ridge": (Ridge, {"alpha": 1.0}),
    }
    if recipe.model == "logistic" and reg:
        raise UsageError("logistic regression needs a classification target; use linear or ridge")
    if recipe.model in ("linear", "ridge") and not reg:
        raise UsageError(f"{recipe.model} is for regression; use logistic for classification")
    est_cls, defaults = table[recipe.model]
    params = {**defaults, **p}
    if recipe.model not in ("linear",):
        params["random_state"] = seed
    if recipe.model == "hist_gb":
        mask = [i in cat_idx for i in range(len(features.columns))]
        params["categorical_features"] = mask if any(mask) else None
    try:
        est = est_cls(**params)
        est._validate_params()  # what fit() would refuse, refused before a run exists
    except (TypeError, ValueError) as exc:
        raise UsageError(f"bad {recipe.model} parameter: {exc}") from None
    if recipe.model == "hist_gb":
        return est, {k: v for k, v in params.items() if k != "categorical_features"}
    num_idx = [i for i in range(len(features.columns)) if i not in cat_idx]
    numeric = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
    if recipe.model in ("logistic", "linear", "ridge"):
        numeric.append(("scale", StandardScaler()))
    parts = [("num", Pipeline(numeric), num_idx)]
    if cat_idx:
        parts.append(
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value=-1.0)),
                        ("onehot", OneHotEncoder(handle_unknown="ignore")),
                    ]
                ),
                cat_idx,
            )
        )
    return Pipeline([("prep", ColumnTransformer(parts)), ("model", est)]), params
