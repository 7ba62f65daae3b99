"""Bad inputs to ``ad-pipeline scan``: the exit status and stderr line of each, then the counts.

Every bad input should exit 2 with one line, and no run may change the scanned table.
Run: ``python -m benchmarks.cli_bad_inputs`` (in a temporary folder; about a minute).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections import Counter
from pathlib import Path

import duckdb

from ad_pipeline.cli import main, make_demo_table

WAREHOUSE = ["--db", "w.duckdb"]
CHECKSUM = "SELECT count(*), md5(string_agg(CAST(m AS VARCHAR), '|' ORDER BY key, ts)) FROM metrics m"


def build() -> None:
    """The warehouse (``metrics`` and ill-typed copies) and the bad files, in the current folder."""
    con = duckdb.connect("w.duckdb")
    make_demo_table(con, n_series=3, n_points=100, seed=1)
    for sql in (
        "CREATE TABLE txt AS SELECT key, CAST(ts AS VARCHAR) AS ts, value FROM metrics",
        "UPDATE txt SET ts = 'not a time' WHERE key = 'series_0001' AND ts = (SELECT min(ts) FROM txt)",
        "CREATE TABLE nullts AS SELECT * FROM metrics",
        "UPDATE nullts SET ts = NULL WHERE key = 'series_0001' AND ts = (SELECT min(ts) FROM nullts)",
        "CREATE TABLE strval AS SELECT key, ts, CAST(value AS VARCHAR) AS v FROM metrics",
        "CREATE TABLE intts AS SELECT key, epoch(ts)::BIGINT AS ts, value FROM metrics",
        "CREATE TABLE listkey AS SELECT [key] AS key, ts, value FROM metrics",
        "CREATE VIEW v AS SELECT * FROM metrics",
        "CREATE SCHEMA s2",
        "COPY metrics TO 'good.parquet'",
    ):
        con.execute(sql)
    con.close()
    good = Path("good.parquet").read_bytes()
    files: dict[str, bytes] = {
        "empty.parquet": b"", "empty.csv": b"", "bad.parquet": b"PAR1garbagegarbagePAR1",
        "trunc.parquet": good[:500], "bin.csv": bytes(range(256)) * 10, "header.csv": b"key,ts,value\n",
        "ragged.csv": b"key,ts,value\na,2024-01-01,1\nb,2024-01-02\nc\n", "badgz.csv.gz": b"\x1f\x8bnotgzip",
        "notdb.duckdb": b"hello world" * 100, "plotfile": b"x",
        "utf16.csv": "key,ts,value\na,2024-01-01,1\n".encode("utf-16"),
    }  # fmt: skip
    for name, data in files.items():
        Path(name).write_bytes(data)
    os.makedirs("adir.csv", exist_ok=True)


CASES: dict[str, list[str]] = {
    "into main.metrics": ["scan", *WAREHOUSE, "--table", "metrics", "--into", "main.metrics"],
    "into w.main.metrics": ["scan", *WAREHOUSE, "--table", "metrics", "--into", "w.main.metrics"],
    "into METRICS": ["scan", *WAREHOUSE, "--table", "main.metrics", "--into", "METRICS"],
    "empty parquet": ["scan", "--input", "empty.parquet", "--out", "o.csv"],
    "corrupt parquet": ["scan", "--input", "bad.parquet", "--out", "o.csv"],
    "truncated parquet": ["scan", "--input", "trunc.parquet", "--out", "o.csv"],
    "empty csv": ["scan", "--input", "empty.csv", "--out", "o.csv"],
    "binary csv": ["scan", "--input", "bin.csv", "--out", "o.csv"],
    "header-only csv": ["scan", "--input", "header.csv", "--out", "o.csv"],
    "ragged csv": ["scan", "--input", "ragged.csv", "--out", "o.csv"],
    "corrupt gzip": ["scan", "--input", "badgz.csv.gz", "--out", "o.csv"],
    "utf-16 csv": ["scan", "--input", "utf16.csv", "--out", "o.csv"],
    "input is a folder": ["scan", "--input", "adir.csv", "--out", "o.csv"],
    "out in a missing folder": ["scan", "--input", "good.parquet", "--out", "no/such/o.csv"],
    "out is a folder": ["scan", "--input", "good.parquet", "--out", "adir.csv"],
    "out bad suffix": ["scan", "--input", "good.parquet", "--out", "o.txt"],
    "plot is a file": ["scan", "--input", "good.parquet", "--out", "o2.csv", "--plot", "plotfile"],
    "db not duckdb": ["scan", "--db", "notdb.duckdb", "--table", "metrics", "--out", "o.csv"],
    "db is a folder": ["scan", "--db", "adir.csv", "--table", "metrics", "--out", "o.csv"],
    "db is parquet": ["scan", "--db", "good.parquet", "--table", "metrics", "--out", "o.csv"],
    "table of 4 parts": ["scan", *WAREHOUSE, "--table", "a.b.c.d", "--out", "o.csv"],
    "empty table": ["scan", *WAREHOUSE, "--table", "", "--out", "o.csv"],
    "empty into": ["scan", *WAREHOUSE, "--table", "metrics", "--into", ""],
    "into of 4 parts": ["scan", *WAREHOUSE, "--table", "metrics", "--into", "a.b.c.d"],
    "into missing schema": ["scan", *WAREHOUSE, "--table", "metrics", "--into", "nosuch.t"],
    "into a view": ["scan", *WAREHOUSE, "--table", "metrics", "--into", "v"],
    "text value column": ["scan", *WAREHOUSE, "--table", "strval", "--value", "v", "--out", "o.csv"],
    "integer timestamp": ["scan", *WAREHOUSE, "--table", "intts", "--out", "o.csv"],
    "list-typed key": ["scan", *WAREHOUSE, "--table", "listkey", "--out", "o.csv"],
    "bad memory limit": ["scan", *WAREHOUSE, "--table", "metrics", "--out", "o.csv", "--memory-limit", "lots"],
    "chunk rows 0": ["scan", *WAREHOUSE, "--table", "metrics", "--out", "o.csv", "--chunk-rows", "0"],
    "empty key": ["scan", *WAREHOUSE, "--table", "metrics", "--out", "o.csv", "--key", ""],
    "missing db": ["scan", "--db", "nope.duckdb", "--table", "metrics", "--out", "o.csv"],
    "bad granularity": ["scan", *WAREHOUSE, "--table", "metrics", "--out", "o.csv", "--granularity", "weekly2"],
    "sensitivity nan": ["scan", *WAREHOUSE, "--table", "metrics", "--out", "o.csv", "--sensitivity", "nan"],
}
# Inputs where one series is bad: errors="coerce" (the default) should scan the others (exit 0).
COERCED: dict[str, list[str]] = {
    "one unparsable text timestamp": ["scan", *WAREHOUSE, "--table", "txt", "--into", "r_txt"],
    "one NULL timestamp": ["scan", *WAREHOUSE, "--table", "nullts", "--into", "r_null"],
}


def run_one(argv: list[str]) -> tuple[int | str, list[str]]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code: int | str = main([*argv, "--quiet"])
        except SystemExit as exc:
            code = int(exc.code or 0)
        except BaseException as exc:  # noqa: BLE001 - a crash is a finding, printed
            code = f"crash {type(exc).__name__}"
    return code, [line for line in err.getvalue().splitlines() if line.strip()]


def run() -> None:
    build()
    with duckdb.connect("w.duckdb", read_only=True) as con:
        before = con.execute(CHECKSUM).fetchall()
    counts: Counter[str] = Counter()
    for group, cases, want in (("bad input", CASES, 2), ("one bad series", COERCED, 0)):
        print(f"-- {group} (want exit {want})")
        for name, argv in cases.items():
            code, lines = run_one(argv)
            ok = code == want and (want == 0 or len(lines) == 1)
            counts[f"{group}: {'as wanted' if ok else f'exit {code}, {len(lines)} line(s)'}"] += 1
            print(f"{code!s:>3}  {name:30s} {lines[-1][:140] if lines else ''}")
    with duckdb.connect("w.duckdb", read_only=True) as con:
        after = con.execute(CHECKSUM).fetchall()
    print("\n".join(f"{n:4d}  {k}" for k, n in sorted(counts.items())))
    print(f"scanned table metrics unchanged: {before == after}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="ad_cli_bad_") as folder:
        here = os.getcwd()
        os.chdir(folder)
        try:
            run()
        finally:
            os.chdir(here)
