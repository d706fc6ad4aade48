"""A model's inputs as its signature types them: the one contract that batch scoring,
the server, the prediction log's segments, drift and the pipeline all hold requests
to. Kept apart from scoring so that whatever reads or writes the log can conform rows
without depending on the scorer (and the scorer on it)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from workbench.core.errors import DataError

if TYPE_CHECKING:
    import polars as pl

_TIME_UNITS: dict[str, Literal["ns", "us", "ms"]] = {"ns": "ns", "us": "us", "ms": "ms"}


def dtype_of(text: str) -> pl.DataType | type[pl.DataType] | None:
    """A polars dtype from the string a signature stores (None when unknown)."""
    import polars as pl

    simple = {
        "Boolean": pl.Boolean,
        "Date": pl.Date,
        "String": pl.String,
        "Utf8": pl.String,
        "Categorical": pl.String,
        "Float32": pl.Float64,
        "Float64": pl.Float64,
    }
    if text in simple:
        return simple[text]
    if re.fullmatch(r"U?Int(8|16|32|64|128)", text):
        return pl.Float64  # the feature matrix is float: any integer type reads the same
    m = re.match(r"Datetime\(time_unit='(\w+)'", text)
    if m and m.group(1) in _TIME_UNITS:
        return pl.Datetime(_TIME_UNITS[m.group(1)])
    return None


def conform(df: pl.DataFrame, inputs: dict[str, str], where: str) -> pl.DataFrame:
    """The signature's columns in the signature's types, or a DataError that names them."""
    import polars as pl

    schema = df.schema  # built anew on every access: once, not per column
    missing = [c for c in inputs if c not in schema]
    if missing:
        raise DataError(
            f"{where} lacks column(s) the model needs: {', '.join(missing[:10])}"
            + (f" (and {len(missing) - 10} more)" if len(missing) > 10 else "")
        )
    exprs = []
    for col, text in inputs.items():
        want, have = dtype_of(text), schema[col]
        if want is None or have == want or (want == pl.String and have == pl.Categorical):
            continue
        c = pl.col(col)
        if want == pl.String or have == pl.Null:
            # a column with no value at all (a JSON request's one row with null, say)
            # is missing values of the model's type, as nulls in a typed column are
            exprs.append(c.cast(want))
        elif have == pl.String and want == pl.Date:
            exprs.append(c.str.to_date(strict=False))
        elif have == pl.String and isinstance(want, pl.Datetime):
            exprs.append(c.str.to_datetime(strict=False).cast(want))
        elif (have.is_numeric() or have in (pl.Boolean, pl.String)) and (
            want.is_numeric() or want == pl.Boolean
        ):
            exprs.append(c.cast(want, strict=False))
        elif have.is_temporal() and want.is_temporal():
            exprs.append(c.cast(want))
        else:
            raise DataError(f"column {col!r} is {have} in {where}, but the model needs {text}")
    if not exprs:
        return df
    out = df.with_columns(exprs)
    names = [e.meta.output_name() for e in exprs]
    # Values a cast turned into nulls, every column in one query (per-column Series
    # operations cost a query each: most of a one-row request's time).
    lost = df.select(
        (pl.col(n).is_not_null() & e.is_null()).sum().alias(n)
        for n, e in zip(names, exprs, strict=True)
    ).row(0)
    for col, count in zip(names, lost, strict=True):
        if count:
            bad = df.get_column(col).is_not_null() & out.get_column(col).is_null()
            value = df.get_column(col).filter(bad)[0]
            raise DataError(
                f"column {col!r} in {where} cannot be read as {inputs[col]}: e.g. {value!r} "
                f"({int(bad.sum()):,} such values in this batch)"
            )
    return out


def predict_frame(model: Any, df: pl.DataFrame, inputs: list[str]) -> pl.DataFrame:
    """Predictions (and class probabilities) for a conformed batch."""
    import polars as pl

    from workbench.core.runs.model import Model

    if isinstance(model, Model):
        return model.predict(df)
    # A model logged from a user's script: a plain estimator over the signature's columns.
    names = [str(n) for n in getattr(model, "feature_names_in_", [])]
    if names and set(names) <= set(df.columns):
        x = _named(df.select(names))
    else:
        x = df.select(inputs).to_numpy() if inputs else df.to_numpy()
    out = {"prediction": model.predict(x)}
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(x)
        for i, cls in enumerate(getattr(model, "classes_", range(proba.shape[1]))):
            out[f"proba_{cls}"] = proba[:, i]
    return pl.DataFrame(out)


def _named(df: pl.DataFrame) -> Any:
    """The columns an estimator was fitted on by name, in its order, as the frame it was
    fitted with: a bare array made scikit-learn warn on every call ("X does not have
    valid feature names") and would put a column in another's place if the script's
    frame and the input example listed them in different orders. pandas when there (one
    NumPy array a column keeps each column's type); else the polars frame, which
    scikit-learn reads by name too."""
    try:
        import pandas as pd
    except ImportError:
        return df
    return pd.DataFrame({c: df.get_column(c).to_numpy() for c in df.columns})
