"""pandas quick start: anomalies in many series of a long DataFrame with one call.

Run: python examples/pandas_quickstart.py
"""

import numpy as np
import pandas as pd

import ad_pipeline  # noqa: F401  (registers DataFrame.anomaly and Series.anomaly)

# a long frame: one row per (host, timestamp), 5-minute data, in any row order
rng = np.random.default_rng(0)
ts = pd.date_range("2024-05-01", periods=288, freq="5min")
df = pd.concat(
    pd.DataFrame({"host": host, "timestamp": ts, "cpu": 40 + 10 * np.sin(np.arange(288) / 20) + rng.normal(0, 1, 288)})
    for host in ["web-1", "web-2", "db-1"]
).sample(frac=1.0, random_state=0)
df.loc[(df["host"] == "db-1") & (df["timestamp"] == ts[200]), "cpu"] = 95.0  # a spike

# every series in one engine call; the granularity (minutely, 5) is inferred per series
out = df.anomaly.detect(value="cpu", by="host", sensitivity=95)
print(out[out["is_anomaly"]][["host", "timestamp", "cpu", "expected_value", "upper_boundary"]])

# the newest point of each series, as a monitor would check it
print(df.anomaly.detect_last(value="cpu", by="host")[["host", "timestamp", "cpu", "is_anomaly"]])

# invalid series do not stop the others with errors="coerce"
bad = pd.concat([df, pd.DataFrame({"host": "new", "timestamp": ts[:3], "cpu": [1.0, 2.0, 3.0]})])
coerced = bad.anomaly.detect(value="cpu", by="host", errors="coerce")
print(coerced.loc[coerced["host"] == "new", ["host", "is_anomaly", "anomaly_error_code"]])

# a single Series with a DatetimeIndex
s = df[df["host"] == "web-1"].set_index("timestamp")["cpu"].sort_index()
print(s.anomaly.detect(sensitivity=95)["is_anomaly"].sum(), "anomalies in web-1")
