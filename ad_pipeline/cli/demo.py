"""``ad-pipeline demo``: build a demo warehouse (hourly series with injected anomalies), scan it, summarise."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from ..warehouse import InputError

PROG = "ad-pipeline"
DEMO_DB = "ad_pipeline_demo.duckdb"
DEMO_SENSITIVITY = 85.0


def make_demo_table(con: Any, n_series: int = 300, n_points: int = 1000, seed: int = 0) -> int:
    """Create ``metrics(key, ts, value)`` (hourly, daily + weekly seasonality, noise) with injected anomalies.

    The injected points are listed in ``metrics_injected(key, ts, kind)``. Returns the number of
    injected anomalies.

    Examples
    --------
    >>> import duckdb
    >>> con = duckdb.connect()
    >>> make_demo_table(con, n_series=3, n_points=200) > 0
    True
    >>> con.execute("SELECT count(*) FROM metrics").fetchall()[0]
    (600,)
    >>> con.close()
    """
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    t = np.arange(n_points)
    level = rng.uniform(20, 200, n_series)[:, None]
    daily = (
        rng.uniform(0.1, 0.4, n_series)[:, None]
        * level
        * np.sin(2 * np.pi * (t + rng.integers(0, 24, (n_series, 1))) / 24)
    )
    weekly = rng.uniform(0.0, 0.1, n_series)[:, None] * level * np.sin(2 * np.pi * t / 168)
    trend = rng.normal(0, 0.02, n_series)[:, None] * level * t / n_points
    noise_sd = rng.uniform(0.01, 0.04, n_series)[:, None] * level
    values = level + daily + weekly + trend + noise_sd * rng.normal(size=(n_series, n_points))
    # about 3 anomalies per series, away from the first two days: spikes up and dips down
    n_anom = 3
    where = np.sort(rng.choice(np.arange(48, n_points), size=(n_series, n_anom), replace=True), axis=1)
    sign = rng.choice([-1.0, 1.0], size=(n_series, n_anom))
    size = (
        rng.uniform(8, 15, size=(n_series, n_anom)) * noise_sd
        + rng.uniform(0.3, 0.6, (n_series, n_anom)) * level * 0.3
    )
    rows = np.repeat(np.arange(n_series), n_anom)
    values[rows, where.ravel()] += (sign * size).ravel()
    keys = np.array([f"series_{i:04d}" for i in range(n_series)], dtype=object)
    start = np.datetime64("2024-01-01T00:00", "us")
    ts = start + t.astype("timedelta64[h]").astype("timedelta64[us]")
    table = pa.table({"key": np.repeat(keys, n_points), "ts": np.tile(ts, n_series), "value": values.ravel()})
    injected = pa.table({
        "key": keys[rows], "ts": ts[where.ravel()], "kind": np.where(sign.ravel() > 0, "spike", "dip"),
    })  # fmt: skip
    for name, tbl in (("metrics", table), ("metrics_injected", injected)):
        con.register("__ad_demo", tbl)
        try:
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT DISTINCT * FROM __ad_demo ORDER BY ALL"
                        if name == "metrics_injected" else f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM __ad_demo")  # fmt: skip
        finally:
            con.unregister("__ad_demo")
    return int(con.execute("SELECT count(*) FROM metrics_injected").fetchall()[0][0])


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db", default=DEMO_DB, help=f"demo database file (default: {DEMO_DB}, created or replaced)"
    )
    p.add_argument("--series", type=int, default=300, help="number of series (default 300)")
    p.add_argument("--points", type=int, default=1000, help="hourly points per series (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", help="write PNGs of the most anomalous series to this folder", metavar="DIR")
    p.add_argument(
        "--plot-top", type=int, default=6, help="how many series --plot draws (default 6)", metavar="N"
    )
    p.add_argument(
        "--sensitivity",
        type=float,
        default=DEMO_SENSITIVITY,
        help=f"0-100 (default {DEMO_SENSITIVITY:g} here: the demo's noise is clean; scan uses the engine's 99)",
    )


def run_demo(args: argparse.Namespace, scan: Callable[[list[str]], int]) -> int:
    """Build the demo warehouse, scan it into ``metrics_anomalies`` with ``scan`` (the ``ad-pipeline scan``
    command line -> exit status) and compare with what was injected."""
    import duckdb

    if args.series < 1 or args.points < 48:
        raise InputError(f"--series must be >= 1 and --points >= 48, got {args.series} and {args.points}")
    con = duckdb.connect(args.db)
    try:
        injected = make_demo_table(con, args.series, args.points, args.seed)
    finally:
        con.close()
    if not args.quiet:
        print(f"demo warehouse {args.db}: table metrics, {args.series:,} hourly series x {args.points:,} points, "
              f"{injected:,} injected anomalies (table metrics_injected)")  # fmt: skip
    scan_argv = (
        ["scan", "--db", args.db, "--table", "metrics", "--key", "key", "--timestamp", "ts", "--value", "value",
         "--into", "metrics_anomalies"]
        + (["--plot", args.plot, "--plot-top", str(args.plot_top)] if args.plot else [])
        + (["--sensitivity", str(args.sensitivity)] if args.sensitivity is not None else [])
        + (["--quiet"] if args.quiet else [])
    )  # fmt: skip
    code = scan(scan_argv)
    if code or args.quiet:
        return code
    con = duckdb.connect(args.db, read_only=True)
    try:
        found, flagged = con.execute(
            "SELECT count(*) FILTER (WHERE a.is_anomaly), (SELECT count(*) FROM metrics_anomalies WHERE is_anomaly) "
            "FROM metrics_injected i JOIN metrics_anomalies a USING (key, ts)"
        ).fetchall()[0]
    finally:
        con.close()
    print(
        f"found {found:,} of {injected:,} injected anomalies ({found / max(injected, 1):.1%}) "
        f"at sensitivity {args.sensitivity:g}; {flagged - found:,} other points flagged"
    )
    db = shlex.quote(args.db)
    print(
        f"scan again: {_self_command()} scan --db {db} --table metrics --key key --timestamp ts --value value "
        f"--into metrics_anomalies --sensitivity {args.sensitivity:g}"
    )
    explore = (
        f"import duckdb; duckdb.connect({json.dumps(args.db)}, read_only=True).sql(\"SELECT key, ts, value, "
        "expected_value, severity FROM metrics_anomalies WHERE is_anomaly ORDER BY severity DESC LIMIT 10\").show()"
    )
    print(f"explore:    {shlex.quote(sys.executable)} -c {shlex.quote(explore)}")
    return 0




def _self_command() -> str:
    """How to run this command again, as typed in a shell: the console script that runs, or the module."""
    if os.path.basename(sys.argv[0]) == PROG:
        return shlex.quote(sys.argv[0])
    return f"{shlex.quote(sys.executable)} -m ad_pipeline.cli"
