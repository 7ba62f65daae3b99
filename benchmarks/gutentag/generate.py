"""Generate the GutenTAG dev set (``benchmarks/gutentag/*.csv``) with PyPI ``timeeval-gutentag``.

``timeeval-gutentag`` 1.5 pins ``scipy<1.15``, which the project's lock cannot take (scipy 1.17), so
it is NOT a project dependency: the set is generated once in a scratch venv and the small CSVs
are committed beside this script::

    uv venv /tmp/gt && uv pip install --python /tmp/gt/bin/python timeeval-gutentag==1.5.0
    /tmp/gt/bin/python benchmarks/gutentag/generate.py        # rewrites benchmarks/gutentag/

The set: 7 anomaly kinds (the families of leave-one-family-out) x 4 base oscillations x 2
seeds, 1,500 hourly points each, two anomalies of the series' kind (one in the middle, one at
the beginning or the end, so edges are tested too). Noise 0.05-0.1 of the amplitude. A held-out
set generated with other seeds and kinds judges the result.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent
LENGTH = 1500
BASES = {
    "sine": {"kind": "sine", "frequency": 100 / 24, "amplitude": 1.0, "variance": 0.05},
    "randomwalk": {"kind": "random-walk", "amplitude": 2.0, "variance": 0.05, "smoothing": 0.01},
    "ecg": {"kind": "ecg", "frequency": 100 / 48, "amplitude": 1.0, "variance": 0.05},
    "sawtooth": {"kind": "sawtooth", "frequency": 100 / 24, "amplitude": 1.0, "variance": 0.1, "width": 0.8},
}
KINDS = {
    "extremum": lambda i: [{"kind": "extremum", "min": bool(i % 2), "local": False}],
    "platform": lambda i: [{"kind": "platform", "value": [0.5, -0.8][i % 2]}],
    "mean": lambda i: [{"kind": "mean", "offset": [0.6, -0.4][i % 2]}],
    "variance": lambda i: [{"kind": "variance", "variance": 0.3}],
    "frequency": lambda i: [{"kind": "frequency", "frequency_factor": [2.0, 0.5][i % 2]}],
    "pattern": lambda i: [{"kind": "pattern", "sinusoid_k": 5.0, "cbf_pattern_factor": 2.0, "sawtooth_width": 0.3}],
    "trend": lambda i: [{"kind": "trend", "oscillation": {"kind": "polynomial", "polynomial": [0.0, 0.02]}}],
}
LENGTHS = {"extremum": 1, "platform": 48, "mean": 48, "variance": 48, "frequency": 48, "pattern": 48, "trend": 50}
SEEDS = (11, 12)


def config() -> dict:
    series = []
    for kind, make in KINDS.items():
        for base, bo in BASES.items():
            for j, _seed in enumerate(SEEDS):
                edge = "beginning" if j == 0 else "end"
                anomalies = [
                    {"position": p, "length": LENGTHS[kind], "channel": 0, "kinds": make(i)}
                    for i, p in enumerate(("middle", edge))
                ]
                series.append({
                    "name": f"{kind}__{base}_{j}", "length": LENGTH, "semi-supervised": False,
                    "supervised": False, "base-oscillations": [bo], "anomalies": anomalies,
                })  # fmt: skip
    return {"timeseries": series}


def main() -> None:
    from gutenTAG import GutenTAG

    cfg = config()
    manifest = []
    for j, seed in enumerate(SEEDS):
        for one in (s for s in cfg["timeseries"] if s["name"].endswith(f"_{j}")):
            try:  # GutenTAG refuses some kind/base pairs (frequency or pattern on a random walk)
                gt = GutenTAG.from_dict({"timeseries": [one]}, seed=seed)
            except ValueError as exc:
                print("skipped:", exc)
                continue
            for ts in gt.generate(return_timeseries=True) or []:
                manifest.append(write(one["name"], ts.timeseries))
    (OUT / "manifest.json").write_text(json.dumps({"generator": "timeeval-gutentag 1.5.0", "seeds": SEEDS,
                                                    "config": cfg, "series": manifest}, indent=1))  # fmt: skip


def write(name: str, df) -> dict:
    values = np.asarray(df["value-0"], dtype=float)
    labels = np.asarray(df["is_anomaly"], dtype=int)
    ts = np.datetime64("2024-01-01T00:00", "s") + np.arange(len(values)).astype("timedelta64[h]")
    with open(OUT / f"{name}.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value", "label"])
        for t, v, y in zip(ts, values, labels, strict=True):
            w.writerow([str(t), f"{v:.6g}", int(y)])
    return {"file": f"{name}.csv", "family": name.split("__")[0], "length": len(values),
            "anomaly_points": int(labels.sum())}  # fmt: skip


if __name__ == "__main__":
    main()
