"""Hostile inputs through every entry point: bounded, seeded, printing counts.

Draws series with hostile values (NaN runs, ±inf, beyond ±1e100, constants, values near 0, huge
and tiny scales), hostile timestamps (unsorted, duplicated, missing, out of range, spans over
292 years, off-grid, unreadable strings and UTC offsets such as ``+99:99``) and hostile
parameters (out of range, wrong types, ``2**62``, ``10**20``, a granularity far finer than the
data, per-series lists) and sends them, with ``errors="coerce"``, through

- the engine batch API (``detect_entire_batch``, ``detect_last_batch``, ``detect_change_points_batch``),
- the pandas accessor and the polars namespace (``df.anomaly.*``),
- the DuckDB table macros (``anomaly_detect``, ``anomaly_detect_last``, ``anomaly_change_points``),
- the REST service (a real ``ad-pipeline serve`` on a free 127.0.0.1 port) for a subset.

It counts, per entry point: calls, series, exceptions that are not ``AnomalyDetectorError``
(for DuckDB: query errors without an engine code; for REST: 5xx answers), calls over 5 s with at
most 10,000 points, and invariant violations of valid results (boundaries ordered, an unflagged
point inside its boundaries, flags consistent, confidences in [0, 1], an invalid series named
in its message). ``--storm`` instead runs 16 clients against one server (valid and hostile
bodies, uploads cut off mid-body) and prints 5xx count, p99 latency of valid requests, the
server's RSS after warm-up and at the end, and its ERROR log lines. Only loopback addresses.

Run::

    .venv/bin/python -m benchmarks.fuzz                        # 100,000+ series, all entry points
    .venv/bin/python -m benchmarks.fuzz --series 5000 --seed 3 # quicker
    .venv/bin/python -m benchmarks.fuzz --storm --requests 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import ad_pipeline as ad
from ad_pipeline.engine.granularity import parse_timestamps
from ad_pipeline.errors import AnomalyDetectorError

SLOW_S = 5.0
WARM_SERIES = 400
DUMP = os.environ.get("AD_FUZZ_DUMP")  # a folder: slow engine calls are pickled there to replay
SMALL_POINTS = 10_000
CODES = (
    "BadArgument", "InvalidSeries", "InvalidGranularity", "InvalidCustomInterval", "InvalidPeriod",
    "InvalidModelArgument", "InvalidImputeMode", "InvalidImputeFixedValue", "InvalidBoundaryVersion",
)  # fmt: skip
GRANULARITIES = ("yearly", "monthly", "weekly", "daily", "hourly", "minutely", "secondly", "microsecond", "none")
_UNIT = {"weekly": "W", "daily": "D", "hourly": "h", "minutely": "m", "secondly": "s", "microsecond": "us"}


# --------------------------------------------------------------------------- hostile series


@dataclass
class Series:
    values: np.ndarray
    timestamps: np.ndarray | None  # datetime64[ns] (NaT allowed) or ISO strings (object)
    params: dict[str, Any] = field(default_factory=dict)  # drawn per series (batch: per-series lists)


def _values(rng: np.random.Generator, n: int, period: int) -> np.ndarray:
    if n == 0:
        return np.zeros(0)
    shape = int(rng.integers(12))
    scale = 10.0 ** rng.integers(-300, 300) if rng.random() < 0.1 else 10.0 ** rng.integers(-16, 6)
    t = np.arange(n)
    if shape == 0:
        x = rng.normal(size=n) * scale
    elif shape == 1:
        x = np.full(n, float(rng.normal()) * scale)
    elif shape == 2:  # values near 0 with a seasonal profile (the tiny-margin case)
        x = np.tile(rng.normal(size=max(period, 1)), n // max(period, 1) + 1)[:n] * 1e-15
        x[rng.random(n) < 0.5] = 0.0
    elif shape == 3:
        x = np.where(rng.random(n) < 0.8, 0.0, rng.normal(size=n)) * scale
    elif shape == 4:
        x = np.round(rng.normal(size=n) * 3)
    elif shape == 5:
        x = (np.sin(2 * np.pi * t / max(period, 2)) + 0.1 * rng.normal(size=n)) * scale
    elif shape == 6:
        x = np.r_[np.zeros(n // 2), np.full(n - n // 2, 8.0)] * scale + rng.normal(size=n) * scale
    elif shape == 7:
        x = np.cumsum(rng.normal(size=n)) * scale
    elif shape == 8:
        x = rng.normal(size=n) * scale
        x[rng.integers(n, size=max(1, n // 20))] *= 1e6
    elif shape == 9:
        x = rng.choice([0.0, 1.0], size=n)
    elif shape == 10:
        x = rng.standard_cauchy(size=n) * scale
    else:
        x = np.exp(rng.normal(size=n) * 30).clip(max=1e300)
    x = x.astype(np.float64)
    hostile = rng.random()
    if hostile < 0.15:
        x[rng.random(n) < rng.uniform(0, 0.9)] = np.nan
    elif hostile < 0.2 and n:
        x[rng.integers(n)] = rng.choice([np.inf, -np.inf, 1e101, -5e200, np.nan])
    elif hostile < 0.22:
        x[:] = np.nan
    elif hostile < 0.3 and n > 3:
        a = int(rng.integers(n - 2))
        x[a : a + int(rng.integers(1, n - a))] = np.nan  # a run of missing points
    return x


def _grid(rng: np.random.Generator, n: int, gran: str, ci: int) -> np.ndarray:
    if gran in ("monthly", "yearly"):
        step = ci * (12 if gran == "yearly" else 1)
        start = np.datetime64("1990-01", "M") + int(rng.integers(-200, 200))
        k = np.arange(n) * step
        return (start + k).astype("datetime64[ns]") + np.timedelta64(int(rng.integers(3)), "D")
    unit = _UNIT.get(gran, "h")
    start = np.datetime64("2000-01-01T00:00:00", "s") + np.timedelta64(int(rng.integers(-10**8, 10**8)), "s")
    return start.astype("datetime64[ns]") + (np.arange(n) * ci).astype(f"timedelta64[{unit}]")


def _timestamps(rng: np.random.Generator, n: int) -> tuple[np.ndarray | None, str, int]:
    """Timestamps for ``n`` points, their granularity and custom interval (before any damage)."""
    r = rng.random()
    if r < 0.25:
        return None, "none", 1
    gran = str(rng.choice(GRANULARITIES[:-1]))
    ci = int(rng.choice([1, 1, 1, 5, 15, 60, int(rng.integers(1, 400))]))
    if gran in ("monthly", "yearly"):
        ci = min(ci, 3)
    ts = _grid(rng, n + n // 5 + 1, gran, ci)
    keep = np.sort(rng.choice(len(ts), size=n, replace=False)) if rng.random() < 0.4 else np.arange(n)
    ts = ts[keep]
    d = rng.random()
    if n >= 2 and d < 0.25:
        kind = int(rng.integers(9))
        i = int(rng.integers(n))
        if kind == 0:
            rng.shuffle(ts)
        elif kind == 1:
            ts[i] = ts[(i + 1) % n]  # duplicate
        elif kind == 2:
            ts[i] = np.datetime64("NaT")
        elif kind == 3:  # sorted, spanning over 292 years
            ts = np.r_[np.datetime64("1678-02-01", "ns"), _grid(rng, n - 1, "daily", 1).astype("datetime64[D]")
                       .astype("datetime64[ns]") - np.datetime64("2000-01-01") + np.datetime64("2262-01-01")]  # fmt: skip
        elif kind == 4:  # a backward jump of over 292 years
            ts = np.r_[np.datetime64("2262-01-01", "ns"), _grid(rng, n - 1, "daily", 1) - np.datetime64("2000-01-01")
                       + np.datetime64("1678-02-01")]  # fmt: skip
        elif kind == 5:  # off the grid
            ts[i] += np.timedelta64(int(rng.integers(1, 10**9)), "ns")
        elif kind == 6:
            ts = ts[::-1].copy()  # newest first
        elif kind == 7:
            return _strings(rng, ts, bad="year"), gran, ci
        else:
            return _strings(rng, ts, bad="offset"), gran, ci
    if rng.random() < 0.15:
        return _strings(rng, ts, bad=None), gran, ci
    return ts, gran, ci


def _strings(rng: np.random.Generator, ts: np.ndarray, bad: str | None) -> np.ndarray:
    s = np.datetime_as_string(ts, unit="us").astype(object)
    s = np.array([f"{v}Z" if v != "NaT" else v for v in s], dtype=object)
    if len(s) and bad is not None:
        i = int(rng.integers(len(s)))
        s[i] = {
            "year": str(rng.choice(["3000-01-01T00:00:00Z", "1500-06-01", "0001-01-01T00:00:00"])),
            "offset": str(s[i])[:-1] + str(rng.choice(["+99:99", "-24:00", "+05:60", "+0a:00", "+05:30", "+-1:00"])),
        }[bad] if rng.random() < 0.8 else str(rng.choice(["soon", "", "2024-13-01", "2024-02-30T00:00:00", "\x00"]))
    return s


def _param_pool(rng: np.random.Generator, n: int, kind: str) -> dict[str, Any]:
    """Hostile and valid parameter values (each key absent half of the time)."""
    big = [2**62, 10**20, 2_562_048, 10**7, -1, 0, 2.5, float("nan"), float("inf"), "5", True, None]
    pool: dict[str, list[Any]] = {
        "granularity": [*GRANULARITIES, "Daily", "fortnightly", 7, "", None],
        "custom_interval": [1, 1, 5, 60, *big],
        "period": [0, 2, 4, 7, 12, 24, max(n // 2, 1), n, *big],
    }
    if kind == "change_points":
        pool |= {
            "stable_trend_window": [3, 5, 10, 30, max(3, n), n + 1, 2, *big],
            "threshold": [0.1, 0.5, 0.9, 0, 1, float("nan"), "x", None],
        }
    else:
        pool |= {
            "max_anomaly_ratio": [0.25, 0.01, 0.49, 0, 0.5, -1, float("nan"), "x", None],
            "sensitivity": [99, 95, 80, 50, 0, 100, 99.5, 101, -1, float("nan"), "high", None],
            "impute_mode": ["auto", "previous", "linear", "fixed", "zero", "notFill", "bogus", 3, None],
            "impute_fixed_value": [0, 1.5, 1e300, float("nan"), "x", None],
            "boundary_version": ["V1", "V2", "V3", "v2", "V9", None],
            "method": ["azure"] * 30 + ["auto", "bogus"],
        }
    out = {}
    for k, vals in pool.items():
        if rng.random() < 0.5:
            v = vals[int(rng.integers(len(vals)))]
            if rng.random() < 0.7 and k in ("custom_interval", "period", "stable_trend_window") and v in big:
                continue  # mostly plausible values, so that most series reach the model
            out[k] = v
    return out


def draw_series(rng: np.random.Generator, kind: str) -> Series:
    r = rng.random()
    n = int(rng.choice([0, 1, 11, 12, 13])) if r < 0.05 else int(rng.integers(12, 400))
    if rng.random() < 0.004:
        n = int(rng.integers(2000, 10_000))
    period = int(rng.integers(2, 30))
    x = _values(rng, n, period)
    ts, gran, ci = _timestamps(rng, n)
    params = _param_pool(rng, n, kind)
    if ts is not None and rng.random() < 0.5:  # usually the true grid, sometimes a far finer one
        params["granularity"] = gran if rng.random() < 0.7 else str(rng.choice(["secondly", "microsecond", "minutely"]))
        params["custom_interval"] = ci
    if rng.random() < 0.3 and gran != "none":
        params["period"] = period
    return Series(x, ts, params)


# --------------------------------------------------------------------------- invariants


def _check_entire(r: Any, values: np.ndarray, offsets: np.ndarray, keys: list[str]) -> list[str]:
    bad = []
    v = values
    for i in range(len(offsets) - 1):
        a, b = offsets[i], offsets[i + 1]
        x = v[a:b]
        if not r.valid[i]:
            if keys[i] not in (r.error_message[i] or "") or r.error_code[i] not in CODES:
                bad.append(f"invalid series {keys[i]} not named / odd code: {r.error_code[i]} {r.error_message[i]!r:.120}")
            if np.isfinite(r.expected_values[a:b]).any():
                bad.append(f"invalid series {keys[i]} has results")
            continue
        obs = ~np.isnan(x)
        e, ub, lb = r.expected_values[a:b][obs], r.upper_boundaries[a:b][obs], r.lower_boundaries[a:b][obs]
        flag, pos, neg = r.is_anomaly[a:b][obs], r.is_positive_anomaly[a:b][obs], r.is_negative_anomaly[a:b][obs]
        xo = x[obs]
        if not (np.isfinite(e).all() and np.isfinite(ub).all() and np.isfinite(lb).all()):
            bad.append(f"{keys[i]}: non-finite expected/boundary")
            continue
        if not ((lb <= e) & (e <= ub)).all():
            bad.append(f"{keys[i]}: boundaries out of order")
        if (r.upper_margins[a:b][obs] < 0).any() or (r.lower_margins[a:b][obs] < 0).any():
            bad.append(f"{keys[i]}: negative margin")
        inside = (lb <= xo) & (xo <= ub)
        if (~flag & ~inside).any():
            j = int(np.flatnonzero(~flag & ~inside)[0])
            bad.append(f"{keys[i]}: unflagged point outside its boundaries ({xo[j]!r} not in [{lb[j]!r}, {ub[j]!r}])")
        if not np.array_equal(flag, pos | neg) or (pos & neg).any():
            bad.append(f"{keys[i]}: flags inconsistent")
        if (pos & (xo < e)).any() or (neg & (xo > e)).any():
            bad.append(f"{keys[i]}: flag direction")
        if r.is_anomaly[a:b][~obs].any():
            bad.append(f"{keys[i]}: a missing point flagged")
    return bad


def _check_last(r: Any, values: np.ndarray, offsets: np.ndarray, keys: list[str]) -> list[str]:
    bad = []
    for i in range(len(offsets) - 1):
        if not r.valid[i]:
            if keys[i] not in (r.error_message[i] or "") or r.error_code[i] not in CODES:
                bad.append(f"invalid series {keys[i]} not named / odd code: {r.error_code[i]} {r.error_message[i]!r:.120}")
            continue
        x = values[offsets[i + 1] - 1]
        e, ub, lb = r.expected_value[i], r.upper_boundary[i], r.lower_boundary[i]
        if not (np.isfinite(e) and lb <= e <= ub):
            bad.append(f"{keys[i]}: last boundaries out of order / non-finite")
        elif not r.is_anomaly[i] and not (lb <= x <= ub):
            bad.append(f"{keys[i]}: unflagged last point outside its boundaries ({x!r} not in [{lb!r}, {ub!r}])")
        if bool(r.is_anomaly[i]) != bool(r.is_positive_anomaly[i] or r.is_negative_anomaly[i]):
            bad.append(f"{keys[i]}: last flags inconsistent")
    return bad


def _check_cp(r: Any, values: np.ndarray, offsets: np.ndarray, keys: list[str]) -> list[str]:
    bad = []
    for i in range(len(offsets) - 1):
        a, b = offsets[i], offsets[i + 1]
        if not r.valid[i]:
            if keys[i] not in (r.error_message[i] or "") or r.error_code[i] not in CODES:
                bad.append(f"invalid series {keys[i]} not named / odd code: {r.error_code[i]} {r.error_message[i]!r:.120}")
            continue
        c = r.confidence_scores[a:b]
        if not (np.isfinite(c).all() and ((c >= 0) & (c <= 1)).all()):
            bad.append(f"{keys[i]}: confidence outside [0, 1]")
        if (r.is_change_point[a:b] & np.isnan(values[a:b])).any():
            bad.append(f"{keys[i]}: a missing point is a change point")
    return bad


CHECKS = {"entire": _check_entire, "last": _check_last, "change_points": _check_cp}


# --------------------------------------------------------------------------- tallies


@dataclass
class Tally:
    name: str
    calls: int = 0
    series: int = 0
    refused_calls: int = 0  # a whole call refused with an AnomalyDetectorError (e.g. a bad scalar)
    invalid_series: int = 0
    foreign: list[str] = field(default_factory=list)  # exceptions that are not AnomalyDetectorError
    slow: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    max_s: float = 0.0
    first_slow: int = 0  # calls over SLOW_S the first time (imports, JIT), re-run once
    codes: Counter = field(default_factory=Counter)

    def timed(self, seconds: float, points: int, what: str) -> None:
        self.max_s = max(self.max_s, seconds) if points <= SMALL_POINTS else self.max_s
        if seconds > SLOW_S and points <= SMALL_POINTS:
            self.slow.append(f"{seconds:.1f} s, {points} points: {what}")

    def line(self) -> str:
        return (
            f"{self.name:<10} calls {self.calls:>6}  series {self.series:>7}  refused calls {self.refused_calls:>5}  "
            f"invalid series {self.invalid_series:>6}  non-AnomalyDetectorError {len(self.foreign)}  "
            f"calls > {SLOW_S:.0f} s (<= {SMALL_POINTS} points) {len(self.slow)} (first time {self.first_slow})  "
            f"slowest {self.max_s:.2f} s  "
            f"invariant violations {len(self.violations)}"
        )


def _describe(batch: list[Series], params: dict[str, Any]) -> str:
    lens = [len(s.values) for s in batch]
    return f"{len(batch)} series of {min(lens, default=0)}..{max(lens, default=0)} points, params {params!r:.300}"


# --------------------------------------------------------------------------- entry points


def batch_params(rng: np.random.Generator, batch: list[Series], kind: str) -> dict[str, Any]:
    """Scalars drawn for the whole batch, or (half of the time) the series' own values as lists."""
    if rng.random() < 0.5:
        return _param_pool(rng, 50, kind)
    names = {k for s in batch for k in s.params}
    return {k: [s.params.get(k) for s in batch] for k in names}


def _flat(batch: list[Series]) -> tuple[np.ndarray, np.ndarray, Any]:
    values = np.concatenate([s.values for s in batch]) if batch else np.zeros(0)
    offsets = np.r_[0, np.cumsum([len(s.values) for s in batch])].astype(np.int64)
    if batch[0].timestamps is None:
        return values, offsets, None
    if any(s.timestamps.dtype == object for s in batch):  # type: ignore[union-attr]
        parts = [s.timestamps if s.timestamps.dtype == object else _strings(np.random.default_rng(0), s.timestamps, None)
                 for s in batch]  # type: ignore[union-attr]  # fmt: skip
        return values, offsets, np.concatenate(parts) if parts else np.zeros(0, dtype=object)
    return values, offsets, np.concatenate([s.timestamps for s in batch])  # type: ignore[misc]


def run_engine(tally: Tally, rng: np.random.Generator, batch: list[Series], kind: str) -> None:
    fn = {"entire": ad.detect_entire_batch, "last": ad.detect_last_batch, "change_points": ad.detect_change_points_batch}[kind]
    values, offsets, ts = _flat(batch)
    params = batch_params(rng, batch, kind)
    keys = [f"s{tally.series + i}" for i in range(len(batch))]
    tally.calls += 1
    tally.series += len(batch)

    def call() -> Any:
        return fn(values, offsets, ts, errors="coerce", keys=keys, **params)

    t = time.perf_counter()
    try:
        r = call()
    except AnomalyDetectorError as exc:
        tally.refused_calls += 1
        tally.codes[exc.code] += 1
        return
    except Exception as exc:  # noqa: BLE001 - counted: the point of the harness
        tally.foreign.append(f"{type(exc).__name__}: {str(exc)[:200]} <- {_describe(batch, params)}")
        return
    finally:
        seconds = time.perf_counter() - t
        if seconds > SLOW_S and len(values) <= SMALL_POINTS:
            # a first call may import a module or compile a kernel: the same call again tells
            tally.first_slow += 1
            t = time.perf_counter()
            try:
                call()
            except Exception:  # noqa: BLE001, S110 - its outcome was counted above
                pass
            seconds = time.perf_counter() - t
        tally.timed(seconds, len(values), _describe(batch, params))
        _dump(seconds > SLOW_S, "slow", kind, tally, (kind, values, offsets, ts, params, seconds))
    tally.invalid_series += int((~r.valid).sum())
    tally.codes.update(c for c in r.error_code if c)
    found = CHECKS[kind](r, values, offsets, keys)
    tally.violations += found
    _dump(bool(found), "violation", kind, tally, (kind, values, offsets, ts, params, found))


def _dump(when: bool, what: str, kind: str, tally: Tally, payload: tuple) -> None:
    """With $AD_FUZZ_DUMP set, pickle a slow or violating engine call there to replay it."""
    if DUMP and when:
        import pickle

        with open(Path(DUMP) / f"{what}_{kind}_{tally.calls}.pkl", "wb") as f:
            pickle.dump(payload, f)


def _frame_parts(batch: list[Series]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, list[str]]:
    keys = [f"k{i}" for i in range(len(batch))]
    key = np.repeat(np.array(keys, dtype=object), [len(s.values) for s in batch])
    values = np.concatenate([s.values for s in batch])
    ts = None
    if batch[0].timestamps is not None:
        ts = np.concatenate([parse_timestamps(s.timestamps)[0] for s in batch])  # type: ignore[arg-type]
    return key, ts, values, keys


def run_frames(tally: Tally, rng: np.random.Generator, batch: list[Series], kind: str, lib: str) -> None:
    import pandas as pd

    key, ts, values, keys = _frame_parts(batch)
    data = {"key": key, "value": values}
    if ts is not None:
        data["timestamp"] = ts
    df: Any = pd.DataFrame(data)
    if lib == "polars":
        import polars as pl

        df = pl.from_pandas(df)
    params = _param_pool(rng, 50, kind)
    method = {"entire": "detect", "last": "detect_last", "change_points": "change_points"}[kind]
    tally.calls += 1
    tally.series += len(batch)
    t = time.perf_counter()
    try:
        out = getattr(df.anomaly, method)(
            value="value", timestamp="timestamp" if ts is not None else None, by="key", errors="coerce", **params
        )
    except AnomalyDetectorError as exc:
        tally.refused_calls += 1
        tally.codes[exc.code] += 1
        return
    except Exception as exc:  # noqa: BLE001
        tally.foreign.append(f"{type(exc).__name__}: {str(exc)[:200]} <- {_describe(batch, params)}")
        return
    finally:
        tally.timed(time.perf_counter() - t, len(values), _describe(batch, params))
    pdf = out if lib == "pandas" else out.to_pandas()
    errs = pdf.groupby("key", sort=False)["anomaly_error"].first()
    tally.invalid_series += int(errs.notna().sum())
    for k, msg in errs.dropna().items():
        if repr(k) not in msg:
            tally.violations.append(f"{lib}: series {k!r} not named in {msg!r:.120}")
    if kind != "change_points":
        ok = pdf["anomaly_error"].isna() & pdf["value"].notna() & ~pdf["is_anomaly"].fillna(True).astype(bool)
        lo, up = ("lower_boundary", "upper_boundary")
        outside = ok & ((pdf["value"] < pdf[lo]) | (pdf["value"] > pdf[up]))
        if outside.any():
            tally.violations.append(f"{lib}: {int(outside.sum())} unflagged points outside their boundaries")


def run_duckdb(tally: Tally, rng: np.random.Generator, con: Any, batch: list[Series], kind: str) -> None:
    import pyarrow as pa

    key, ts, values, keys = _frame_parts(batch)
    n = len(values)
    ts_col = ts if ts is not None else np.datetime64("2000-01-01", "ns") + np.arange(n).astype("timedelta64[h]")
    table = pa.table({"key": pa.array(key.astype(str)), "ts": pa.array(ts_col, mask=np.isnat(ts_col)),
                      "value": pa.array(values, mask=np.isnan(values) & (rng.random(n) < 0.5))})  # fmt: skip
    con.register("fuzz_src", table)
    params = {k: v for k, v in _param_pool(rng, 50, kind).items() if v is not None}
    args = ", ".join(f"{k} := {_sql_literal(v)}" for k, v in params.items())
    macro = {"entire": "anomaly_detect", "last": "anomaly_detect_last", "change_points": "anomaly_change_points"}[kind]
    sql = f"SELECT key, anomaly_error_code, anomaly_error FROM {macro}('fuzz_src', errors := 'coerce'{', ' + args if args else ''})"
    tally.calls += 1
    tally.series += len(batch)
    t = time.perf_counter()
    try:
        rows = con.sql(sql).fetchall()
    except Exception as exc:  # noqa: BLE001
        text = str(exc)
        if any(f"{c}:" in text for c in CODES) or "Binder Error" in text or "Conversion Error" in text:
            tally.refused_calls += 1  # an engine refusal, or SQL refusing a parameter of the wrong type
        else:
            tally.foreign.append(f"{type(exc).__name__}: {text[:200]} <- {sql[:200]}")
        return
    finally:
        tally.timed(time.perf_counter() - t, n, sql[:200])
        con.unregister("fuzz_src")
    named = {}
    for k, code, msg in rows:
        if code is not None:
            named[k] = (code, msg)
    tally.invalid_series += len(named)
    for k, (code, msg) in named.items():
        if code not in CODES or k not in msg:
            tally.violations.append(f"duckdb: series {k!r} not named / odd code in {code} {msg!r:.120}")


def _sql_literal(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    if isinstance(v, float) and not np.isfinite(v):
        return f"'{v}'::DOUBLE"
    return repr(v)


# --------------------------------------------------------------------------- REST


def rest_body(rng: np.random.Generator, s: Series, kind: str) -> bytes:
    """An Azure request body of a drawn series, sometimes damaged on purpose."""
    ts = s.timestamps
    if ts is not None and ts.dtype != object:
        ts = _strings(rng, ts, None)
    points = []
    for i, v in enumerate(s.values):
        p: dict[str, Any] = {"value": None if np.isnan(v) else (float(v) if np.isfinite(v) else ("Infinity" if v > 0 else "-Infinity"))}
        if ts is not None:
            p["timestamp"] = ts[i]
        points.append(p)
    camel = {"granularity": "granularity", "custom_interval": "customInterval", "period": "period",
             "max_anomaly_ratio": "maxAnomalyRatio", "sensitivity": "sensitivity", "impute_mode": "imputeMode",
             "impute_fixed_value": "imputeFixedValue", "boundary_version": "boundaryVersion", "method": "method",
             "stable_trend_window": "stableTrendWindow", "threshold": "threshold"}  # fmt: skip
    body: dict[str, Any] = {"series": points}
    for k, v in s.params.items():
        if isinstance(v, float) and not np.isfinite(v):
            continue
        body[camel[k]] = v
    r = rng.random()
    if r < 0.05:
        body["sensitivity"] = [95]
    elif r < 0.08 and ts is not None:
        body["series"] = body["series"][::-1]  # newest first: refused (without timestamps it is another series)
    text = json.dumps(body).replace('"Infinity"', "1e999").replace('"-Infinity"', "-1e999")
    return text.encode()


HOSTILE_BODIES = [
    b"", b"{", b"[]", b"null", b'"x"', b"{}", b'{"series": 5}', b'{"series": [1, 2, 3]}', b"[" * 5000 + b"]" * 5000,
    b'{"series": [{"value": "a"}]}', b'{"series": [], "bogus": 1}', b"\xff\xfe\x00", b'{"series": [{"value": NaN}]}',
    json.dumps({"series": [{"value": 1.0}] * 20, "stableTrendWindow": 10**8}).encode(),
    json.dumps({"series": [{"value": float(i % 5), "timestamp": f"2024-01-{i + 1:02d}T00:00:00Z"} for i in range(12)],
                "granularity": "secondly"}).encode(),  # fmt: skip
    json.dumps({"series": [{"value": 1.0 * i, "timestamp": f"2024-01-{i + 1:02d}T00:00:00+99:99"} for i in range(20)]}).encode(),
    json.dumps({"series": [{"value": 1.0 * i} for i in range(20)], "customInterval": 10**30, "granularity": "monthly"}).encode(),
    json.dumps({"series": [{"value": 1.0 * i} for i in range(20)], "period": 10**400}).encode(),
]


class Server:
    """A real ``ad-pipeline serve`` on a free loopback port (its log kept to count ERROR lines)."""

    def __init__(self, max_points: int = 10_000) -> None:
        from benchmarks.serve import start_server
        from tests.support.net import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile("w+", prefix="ad_pipeline_fuzz_", suffix=".log", delete=False)
        self.proc = start_server(self.port, max_points, 1, self.log)

    async def ready(self) -> None:
        from benchmarks.serve import wait_ready

        await wait_ready(self.url, self.proc)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> str:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")


PATHS = {"entire": "entire", "last": "last", "change_points": "changepoint"}


async def _post(client: Any, url: str, kind: str, body: bytes) -> tuple[int, Any, float]:
    from benchmarks.serve import KEY

    t = time.perf_counter()
    r = await client.post(f"{url}/anomalydetector/v1.1/timeseries/{PATHS[kind]}/detect", content=body,
                          headers={"Content-Type": "application/json", "Ocp-Apim-Subscription-Key": KEY})  # fmt: skip
    dt = time.perf_counter() - t
    try:
        payload = r.json()
    except ValueError:
        payload = None
    return r.status_code, payload, dt


def _check_rest(payload: Any, body: bytes, kind: str) -> list[str]:
    """Invariants of an entire-detect answer against the values of the body that was sent."""
    if kind == "entire":
        x = np.array([np.nan if p["value"] is None else p["value"] for p in json.loads(body)["series"]], dtype=float)
        e = np.array(payload["expectedValues"], dtype=float)
        up = e + np.array(payload["upperMargins"], dtype=float)
        lo = e - np.array(payload["lowerMargins"], dtype=float)
        flag = np.array(payload["isAnomaly"], dtype=bool)
        ok = ~np.isnan(x) & ~flag & np.isfinite(e)
        if ((x[ok] > up[ok]) | (x[ok] < lo[ok])).any():
            return ["rest: unflagged point outside its boundaries"]
    return []


async def run_rest(tally: Tally, rng: np.random.Generator, series: list[tuple[Series, str]]) -> None:
    import httpx

    server = Server()
    try:
        await server.ready()
        async with httpx.AsyncClient(timeout=120) as client:
            warm = np.random.default_rng(10**6)
            for kind in ("entire", "last", "change_points") * (WARM_SERIES // 10):  # compile the server's engine
                await _post(client, server.url, kind, rest_body(warm, draw_series(warm, kind), kind))
            for s, kind in series:
                hostile = rng.random() < 0.1
                body = HOSTILE_BODIES[int(rng.integers(len(HOSTILE_BODIES)))] if hostile else rest_body(rng, s, kind)
                tally.calls += 1
                tally.series += 1
                status, payload, dt = await _post(client, server.url, kind, body)
                tally.timed(dt, len(s.values), f"REST {kind} {body[:200]!r}")
                if status >= 500:
                    tally.foreign.append(f"HTTP {status} {payload} <- {body[:300]!r}")
                elif status == 400:
                    tally.invalid_series += 1
                    tally.codes[(payload or {}).get("code")] += 1
                elif status == 200 and not hostile:
                    found = _check_rest(payload, body, kind)
                    tally.violations += found
                    _dump(bool(found), "violation", "rest", tally, (body, payload))
    finally:
        log = server.stop()
    errors = [line for line in log.splitlines() if "ERROR" in line or "Traceback" in line]
    if errors:
        tally.foreign.append(f"server log: {len(errors)} ERROR/Traceback lines, first {errors[0][:200]}")


# --------------------------------------------------------------------------- storm


async def _cut_upload(port: int, path: str) -> None:
    """Send headers and half a body, then hang up (a client that goes away mid-upload)."""
    from benchmarks.serve import KEY

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = b'{"series": [' + b'{"value": 1.0},' * 200
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Ocp-Apim-Subscription-Key: {KEY}\r\nContent-Length: {len(body) * 4}\r\n\r\n".encode() + body
    )
    await writer.drain()
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass


async def storm(args: argparse.Namespace) -> int:
    import httpx

    rng = np.random.default_rng(args.seed)
    valid_bodies = []
    for _i in range(200):
        n = int(rng.integers(48, 400))
        x = 10 + np.sin(np.arange(n) * 2 * np.pi / 24) + rng.normal(0, 0.2, n)
        start = np.datetime64("2024-01-01T00:00")
        pts = [{"timestamp": f"{start + np.timedelta64(j, 'h')}:00Z", "value": round(float(v), 4)} for j, v in enumerate(x)]
        valid_bodies.append((str(rng.choice(["entire", "last", "change_points"])),
                             json.dumps({"series": pts, "granularity": "hourly"}).encode()))  # fmt: skip
    hostile = []
    for _ in range(300):
        s = draw_series(rng, "entire")
        kind = str(rng.choice(["entire", "last", "change_points"]))
        hostile.append((kind, rest_body(rng, s, kind) if rng.random() < 0.7 else HOSTILE_BODIES[int(rng.integers(len(HOSTILE_BODIES)))]))
    server = Server()
    statuses: Counter = Counter()
    valid_lat: list[float] = []
    rss: dict[str, float] = {}
    try:
        await server.ready()
        async with httpx.AsyncClient(timeout=120) as client:  # warm-up: JIT compiles on first requests
            for kind, body in valid_bodies[:100] + hostile[:200]:
                await _post(client, server.url, kind, body)
        rss["after warm-up"] = server.rss_mb()
        next_i = 0
        deadline = time.monotonic() + args.storm_seconds
        cut = 0

        async def worker() -> None:
            nonlocal next_i, cut
            limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
            async with httpx.AsyncClient(limits=limits, timeout=120) as client:
                while next_i < args.requests and time.monotonic() < deadline:
                    i = next_i
                    next_i += 1
                    r = rng.random()
                    if r < 0.01:
                        await _cut_upload(server.port, "/anomalydetector/v1.1/timeseries/entire/detect")
                        cut += 1
                        continue
                    if r < 0.5:
                        kind, body = valid_bodies[i % len(valid_bodies)]
                        status, _, dt = await _post(client, server.url, kind, body)
                        valid_lat.append(dt)
                    else:
                        kind, body = hostile[i % len(hostile)]
                        status, _, dt = await _post(client, server.url, kind, body)
                    statuses[status] += 1
                    if i % 2000 == 0:
                        rss[f"after {i} requests"] = server.rss_mb()

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.clients)))
        wall = time.perf_counter() - t0
        rss["end"] = server.rss_mb()
    finally:
        log = server.stop()
    errors = [line for line in log.splitlines() if "ERROR" in line or "Traceback" in line]
    infos = [line for line in log.splitlines() if "disconnected" in line]
    lat = np.array(valid_lat) * 1000
    n5 = sum(v for k, v in statuses.items() if k >= 500)
    print(f"storm: {args.clients} clients on {server.url}, {sum(statuses.values())} answered requests + {cut} uploads cut off, "
          f"{wall:.1f} s ({sum(statuses.values()) / wall:.0f} requests/s)")  # fmt: skip
    print(f"  statuses          {dict(sorted(statuses.items()))}")
    print(f"  5xx answers       {n5}")
    print(f"  valid requests    {len(lat)}: latency ms p50 {np.percentile(lat, 50):.1f}  p99 {np.percentile(lat, 99):.1f}  max {lat.max():.1f}")
    print("  server RSS MB     " + ", ".join(f"{k} {v:.0f}" for k, v in rss.items()))
    print(f"  server log        {len(errors)} ERROR/Traceback lines, {len(infos)} disconnect lines ({server.log.name})")
    print(f"  machine           {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (clients and server share it)")
    return 1 if n5 or errors else 0


# --------------------------------------------------------------------------- main


def batches(rng: np.random.Generator, n_series: int, kind: str, max_points: int = SMALL_POINTS) -> list[list[Series]]:
    """Series grouped into calls: with and without timestamps apart, at most ``max_points`` per call."""
    out: list[list[Series]] = []
    cur: dict[bool, list[Series]] = {True: [], False: []}
    size = {True: 0, False: 0}
    for _ in range(n_series):
        s = draw_series(rng, kind)
        has = s.timestamps is not None
        if cur[has] and (size[has] + len(s.values) > max_points or len(cur[has]) >= int(rng.integers(1, 80))):
            out.append(cur[has])
            cur[has], size[has] = [], 0
        cur[has].append(s)
        size[has] += len(s.values)
    out += [b for b in cur.values() if b]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--series", type=int, default=100_000, help="series through the engine batch API (each kind)")
    p.add_argument("--frame-series", type=int, default=None, help="series through pandas and polars (default series/10)")
    p.add_argument("--sql-series", type=int, default=None, help="series through DuckDB (default series/10)")
    p.add_argument("--rest-series", type=int, default=None, help="series through REST (default series/50)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--storm", action="store_true", help="the REST storm instead")
    p.add_argument("--requests", type=int, default=20_000, help="storm: requests")
    p.add_argument("--clients", type=int, default=16, help="storm: concurrent clients")
    p.add_argument("--storm-seconds", type=float, default=600, help="storm: stop after this long")
    p.add_argument("--show", type=int, default=5, help="examples printed per kind of failure")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    if args.storm:
        return asyncio.run(storm(args))
    rng = np.random.default_rng(args.seed)
    frame_n = args.frame_series if args.frame_series is not None else args.series // 10
    sql_n = args.sql_series if args.sql_series is not None else args.series // 10
    rest_n = args.rest_series if args.rest_series is not None else args.series // 50
    t_start = time.perf_counter()
    # warm-up: the engine's numba kernels compile on first use (not counted; seconds each)
    warm = Tally("warm-up")
    for kind in ("entire", "last", "change_points"):
        for b in batches(np.random.default_rng(10**6), WARM_SERIES, kind):
            run_engine(warm, np.random.default_rng(1), b, kind)
    print(f"warm-up: {warm.series} series, slowest call {warm.max_s:.1f} s (compiling)", flush=True)
    tallies = []
    for kind in ("entire", "last", "change_points"):
        t = Tally(f"engine {kind}")
        for b in batches(rng, args.series // 3 + (kind == "entire") * (args.series % 3), kind):
            run_engine(t, rng, b, kind)
        tallies.append(t)
        print(t.line(), flush=True)
    for lib in ("pandas", "polars"):
        t = Tally(lib)
        for kind in ("entire", "last", "change_points"):
            for b in batches(rng, frame_n // 6, kind, max_points=5_000):
                run_frames(t, rng, b, kind, lib)
        tallies.append(t)
        print(t.line(), flush=True)
    import ad_pipeline.duckdb as add

    con = add.connect()
    t = Tally("duckdb")
    for kind in ("entire", "last", "change_points"):
        for b in batches(rng, sql_n // 3, kind, max_points=5_000):
            run_duckdb(t, rng, con, b, kind)
    tallies.append(t)
    print(t.line(), flush=True)
    t = Tally("rest")
    rest = [(draw_series(rng, k), k) for k in np.resize(["entire", "last", "change_points"], rest_n).tolist()]
    asyncio.run(run_rest(t, rng, rest))
    tallies.append(t)
    print(t.line(), flush=True)

    total = sum(t.series for t in tallies)
    foreign = sum(len(t.foreign) for t in tallies)
    slow = sum(len(t.slow) for t in tallies)
    viol = sum(len(t.violations) for t in tallies)
    print(f"\nseed {args.seed}: {total} series in {sum(t.calls for t in tallies)} calls, {time.perf_counter() - t_start:.0f} s")
    print(f"  non-AnomalyDetectorError exceptions / 5xx   {foreign}")
    print(f"  calls over {SLOW_S:.0f} s with <= {SMALL_POINTS} points      {slow}")
    print(f"  invariant violations                        {viol}")
    codes = sum((t.codes for t in tallies), Counter())
    print("  refusal codes  " + ", ".join(f"{k} {v}" for k, v in codes.most_common()))
    for t in tallies:
        for what, items in (("exception", t.foreign), ("slow", t.slow), ("violation", t.violations)):
            for item in items[: args.show]:
                print(f"  [{t.name}] {what}: {item}")
    return 1 if foreign or slow or viol else 0


if __name__ == "__main__":
    sys.exit(main())
