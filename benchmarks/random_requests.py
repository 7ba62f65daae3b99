"""Random Azure detect requests of many shapes, as JSON case files, for replays beyond the recorded cases.

Writes ``--count`` files ``{"type": "entire" | "last", "request": {...}}`` into ``OUT``:
granularities hourly, daily, weekly, monthly, yearly, minutely and secondly (custom intervals
1-30) or none; 12 to ``--max-points`` points; sines, noise, random walks, counts, multiplicative
seasons, steps, flat lines with spikes, 0/1 steps, majority values and many zeros, with spikes;
gaps; every impute mode but ``fixed``; sensitivities 0-100, ratios 0.01-0.49, V1/V2/V3; 45% last
detect. Another implementation answers them into files with a ``response`` (camelCase, as the
recorded cases), and ``python -m benchmarks.golden DIR --strict`` judges ours against those answers::

    .venv/bin/python -m benchmarks.random_requests /tmp/requests --count 300 --seed 1
    # ... answer them with the other implementation into /tmp/answers ...
    .venv/bin/python -m benchmarks.golden /tmp/answers --strict

That is how the Azure model was checked against Microsoft's open-source release
(``docs/azure_model.md``): the release ran in a scratch environment of its own, never as a
dependency of this package.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

STEP = {  # numpy unit of each granularity
    "yearly": "Y", "monthly": "M", "weekly": "W", "daily": "D", "hourly": "h", "minutely": "m", "secondly": "s",
}
PERIODS = {"daily": (7, 7, 30), "hourly": (24, 24, 168, 12), "minutely": (60, 1440, 30, 20), "monthly": (12, 12, 6),
           "weekly": (4, 12, 52)}


def values(rng: np.random.Generator, n: int, granularity: str) -> np.ndarray:
    """One series of ``n`` values of a random family, with spikes most of the time."""
    t = np.arange(n)
    kind = rng.choice(["sine", "sine", "noise", "walk", "counts", "mult", "steps", "flatspike", "trend", "zeros",
                       "binary", "majority"])
    p = int(rng.choice(PERIODS.get(granularity, (7, 10, 24, 12))))
    level = float(rng.choice([0.0, 1.0, 10.0, 1000.0, 1e6, -50.0]))
    amp = abs(level) * rng.uniform(0.05, 0.5) + rng.uniform(0.5, 5)
    noise = amp * rng.uniform(0.0, 0.4)
    if kind == "sine":
        x = level + amp * np.sin(2 * np.pi * t / p + rng.uniform(0, 6)) + noise * rng.normal(size=n)
    elif kind == "noise":
        x = level + amp * rng.standard_t(3, size=n)
    elif kind == "walk":
        x = level + np.cumsum(rng.normal(size=n)) * amp * 0.2
    elif kind == "counts":
        x = rng.poisson(rng.uniform(0.3, 20) * (1 + 0.5 * np.sin(2 * np.pi * t / p)), size=n).astype(float)
    elif kind == "mult":
        base = abs(level) + 5
        x = base * np.exp(0.8 * np.sin(2 * np.pi * t / p)) * (1 + 0.05 * rng.normal(size=n)) + 0.002 * base * t
    elif kind == "steps":
        x = level + amp * np.repeat(rng.normal(size=n // 20 + 1), 20)[:n] * 3 + noise * rng.normal(size=n)
    elif kind == "flatspike":
        x = np.full(n, level)
        x[rng.integers(0, n, size=max(1, n // 50))] += amp * 5
        return x
    elif kind == "trend":
        x = level + amp * t / n * rng.uniform(-5, 5) + amp * 0.5 * np.sin(2 * np.pi * t / p) + noise * rng.normal(size=n)
    elif kind == "zeros":
        x = np.where(rng.random(n) < 0.6, 0.0, rng.exponential(amp, size=n))
    elif kind == "binary":
        return (rng.random(n) < 0.1).astype(float) * float(rng.choice([1.0, 100.0]))
    else:  # majority
        return np.where(rng.random(n) < rng.uniform(0.55, 0.9), 3.0, rng.normal(3, 2, size=n))
    if rng.random() < 0.7:
        k = int(rng.integers(1, max(2, n // 40) + 1))
        x[rng.integers(0, n, size=k)] += rng.choice([-1, 1], size=k) * (amp * rng.uniform(2, 8) + noise * 5)
    if rng.random() < 0.3:
        x = np.round(x, int(rng.integers(0, 3)))
    return x


def request(rng: np.random.Generator, max_points: int) -> dict[str, Any]:
    """One random case: ``{"type": ..., "request": ...}``."""
    granularity = str(rng.choice(["daily", "hourly", "hourly", "minutely", "monthly", "weekly", "secondly", "yearly",
                                  "none", "daily"]))
    sizes = [s for s in (12, 20, 30, 48, 60, 100, 150, 200, 300, 400, 673, 1000) if s <= max_points]
    n = int(rng.choice(sizes))
    if granularity == "yearly":
        n = min(n, 60)
    interval = int(rng.choice([1, 1, 5, 15, 30])) if granularity in ("minutely", "secondly") else 1
    unit = STEP.get(granularity, "D")
    start = np.datetime64("2021-03-01T00:00:00", "s").astype(f"datetime64[{unit}]")
    stamps = start + np.arange(n) * interval
    x = values(rng, n, granularity)
    keep = np.ones(n, dtype=bool)
    if rng.random() < 0.3 and n > 12:
        keep[rng.choice(np.arange(1, n - 1), size=int(rng.integers(1, max(2, n // 12))), replace=False)] = False
    body: dict[str, Any] = {
        "series": [{"timestamp": str(np.datetime64(s, "s")) + "Z", "value": float(v)}
                   for s, v in zip(stamps[keep], x[keep], strict=True)],
    }
    if granularity != "none":
        body["granularity"] = granularity
    if interval > 1:
        body["customInterval"] = interval
    if rng.random() < 0.6:
        body["sensitivity"] = int(rng.choice([0, 50, 80, 90, 95, 95, 99, 99, 100]))
    if rng.random() < 0.4:
        body["maxAnomalyRatio"] = float(rng.choice([0.01, 0.05, 0.1, 0.25, 0.4, 0.49]))
    if rng.random() < 0.3:
        body["boundaryVersion"] = str(rng.choice(["V1", "V2", "V3"]))
    if rng.random() < 0.3:
        body["imputeMode"] = str(rng.choice(["auto", "previous", "linear", "zero", "notFill"]))
    if rng.random() < 0.1 and granularity != "none":
        body["period"] = int(rng.choice([0, 7, 12, 24]))
    return {"type": "last" if rng.random() < 0.45 else "entire", "request": body}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="folder for the case files")
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-points", type=int, default=400, help="longest series (more is slower to answer)")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for i in range(args.count):
        case = request(rng, args.max_points)
        (args.out / f"s{args.seed}_{i:05d}_{case['type']}.json").write_text(json.dumps(case))
    print(f"wrote {args.count} requests to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
