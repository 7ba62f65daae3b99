"""polars quick start: DataFrame.anomaly and LazyFrame.anomaly (the plan stays lazy).

Run: python examples/polars_quickstart.py
"""

from datetime import datetime

import numpy as np
import polars as pl

import ad_pipeline  # noqa: F401  (registers the polars "anomaly" namespaces)

rng = np.random.default_rng(0)
n = 24 * 14
ts = pl.datetime_range(datetime(2024, 5, 1), datetime(2024, 5, 14, 23), "1h", eager=True)
df = pl.concat(
    pl.DataFrame({"sensor": name, "timestamp": ts, "temp": 20 + 3 * np.sin(2 * np.pi * np.arange(n) / 24) + rng.normal(0, 0.3, n)})
    for name in ["a", "b", "c"]
).sample(fraction=1.0, shuffle=True, seed=0)
df = df.with_columns(
    pl.when((pl.col("sensor") == "b") & (pl.col("timestamp") == datetime(2024, 5, 9, 3)))
    .then(35.0)
    .otherwise(pl.col("temp"))
    .alias("temp")
)

# eager
out = df.anomaly.detect(value="temp", by="sensor", sensitivity=80)
print(out.filter(pl.col("is_anomaly")).select("sensor", "timestamp", "temp", "expected_value", "severity"))

# lazy: nothing runs until collect(); the output schema is known up front
plan = (
    df.lazy()
    .filter(pl.col("timestamp") >= datetime(2024, 5, 3))
    .anomaly.detect(value="temp", by="sensor", sensitivity=80)
)
print(plan.collect_schema().names()[-4:])
print(plan.filter(pl.col("is_anomaly")).select("sensor", "timestamp", "temp").collect())

# last point per series, and change points
print(df.anomaly.detect_last(value="temp", by="sensor").select("sensor", "timestamp", "temp", "is_anomaly"))
print(df.anomaly.change_points(value="temp", by="sensor").filter(pl.col("is_change_point")).height, "change points")
