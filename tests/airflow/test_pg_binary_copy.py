"""PostgreSQL binary COPY (``warehouse.pgcopy``) and the ``UPDATE ... FROM`` write-back built on it, on a real server.

The binary rows must land exactly as the CSV (text) path lands them: every supported type, nulls,
fallbacks for types without a fixed-width encoding, and keys that need quoting.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from ad_pipeline.warehouse import pgcopy

Warehouse = Any

pytest.importorskip("airflow.providers.postgres")

TYPES = """b BOOLEAN, i2 SMALLINT, i4 INTEGER, i8 BIGINT, f4 REAL, f8 DOUBLE PRECISION, d DATE,
           ts TIMESTAMP, tz TIMESTAMP WITH TIME ZONE, num NUMERIC, txt TEXT"""


def _backend(wh: Warehouse) -> Any:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from ad_pipeline.warehouse.backends import PostgresBackend

    return PostgresBackend(PostgresHook(postgres_conn_id=wh.conn_id))


def _sample(n: int = 50) -> pa.Table:
    rng = np.random.default_rng(3)
    null = rng.random(n) < 0.2
    t0 = np.datetime64("1999-12-31T23:00:00.123456", "us")
    ts = t0 + rng.integers(-10**12, 10**12, n).astype("timedelta64[us]")
    return pa.table({
        "b": pa.array(rng.random(n) < 0.5, mask=null),
        "i2": pa.array(rng.integers(-30000, 30000, n), pa.int64()),  # cast down to the column's type
        "i4": pa.array(rng.integers(-2**31, 2**31 - 1, n), pa.int32()),
        "i8": pa.array(rng.integers(-2**62, 2**62, n)),
        "f4": pa.array(rng.normal(size=n).astype(np.float32)),
        "f8": pa.array(rng.normal(size=n) * 1e300, mask=np.roll(null, 1)),
        "d": pa.array(np.datetime64("1970-01-01") + rng.integers(-40000, 40000, n).astype("timedelta64[D]")),
        "ts": pa.array(ts),
        "tz": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "num": pa.array(rng.normal(size=n)),  # NUMERIC has no binary form here: text for the whole table
        "txt": pa.array([f'k "{i}", ü' for i in range(n)]),
    })


def test_encode_round_trips_every_fixed_width_type(postgres_wh: Warehouse) -> None:
    wh = postgres_wh
    wh.run(f"CREATE TABLE via_text ({TYPES}); CREATE TABLE via_binary ({TYPES})")
    data = _sample()
    fixed = data.drop_columns(["num", "txt"])
    be = _backend(wh)
    try:
        with be.transaction():
            be._copy_in("via_text", fixed)
            be._copy_in_binary("via_binary", fixed)
    finally:
        be.close()
    cols = ", ".join(fixed.column_names)
    text_rows = wh.run(f"SELECT {cols} FROM via_text ORDER BY i8")
    assert len(text_rows) == data.num_rows
    assert wh.run(f"SELECT {cols} FROM via_binary ORDER BY i8") == text_rows
    assert wh.run("SELECT count(*) FROM via_binary WHERE b IS NULL")[0][0] == data.column("b").null_count > 0


def test_types_without_binary_form_and_lossy_casts_fall_back_to_text(postgres_wh: Warehouse) -> None:
    wh = postgres_wh
    wh.run(f"CREATE TABLE via_text ({TYPES}); CREATE TABLE via_fallback ({TYPES}); CREATE TABLE narrow (i2 SMALLINT)")
    data = _sample()
    assert pgcopy.encode([data.column("num").combine_chunks()], [1700]) is None  # numeric
    assert pgcopy.encode([data.column("tz").combine_chunks()], [pgcopy.TIMESTAMP]) is None  # aware -> naive
    too_big = pa.array([1, 70_000], pa.int64())
    assert pgcopy.encode([too_big], [pgcopy.INT2]) is None
    be = _backend(wh)
    try:
        with be.transaction():
            be._copy_in("via_text", data)
            be._copy_in_binary("via_fallback", data)
            be._copy_in_binary("narrow", pa.table({"i2": pa.array([1, 2], pa.int64())}))
        with pytest.raises(Exception, match="out of range"):  # the server refuses it, as with text
            be._copy_in_binary("narrow", pa.table({"i2": too_big}))
    finally:
        be.close()
    assert wh.run("SELECT * FROM via_fallback ORDER BY i8") == wh.run("SELECT * FROM via_text ORDER BY i8")
    assert wh.run("SELECT i2 FROM narrow ORDER BY i2") == [(1,), (2,)]


def test_update_from_arrow_writes_only_the_matching_rows(postgres_wh: Warehouse) -> None:
    """Text and integer keys, a key needing quotes, nulls in results, rows outside the data untouched."""
    wh = postgres_wh
    wh.run('CREATE TABLE "m t" ("Host Name" TEXT, shard INT, ts TIMESTAMP, v DOUBLE PRECISION, '
           'flag BOOLEAN, expected DOUBLE PRECISION, run_id TEXT, at TIMESTAMPTZ, PRIMARY KEY ("Host Name", shard, ts))')
    hosts = ["a", 'b "quoted"', "c'; drop table x; --"]
    t0 = dt.datetime(2024, 1, 1)
    rows = [(h, s, t0 + dt.timedelta(hours=k), float(k)) for h in hosts for s in (1, 2) for k in range(30)]
    wh.executemany('INSERT INTO "m t" ("Host Name", shard, ts, v) VALUES (?, ?, ?, ?)', rows)
    # results for host a and b, shard 1, hours 5..24 only; one null expected value
    chosen = [r for r in rows if r[0] != hosts[2] and r[1] == 1 and 5 <= (r[2] - t0).total_seconds() / 3600 < 25]
    expected = [r[3] * 10 for r in chosen]
    expected[3] = None
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    data = pa.table({
        "Host Name": [r[0] for r in chosen], "shard": pa.array([r[1] for r in chosen], pa.int64()),
        "ts": pa.array([r[2] for r in chosen], pa.timestamp("us")),
        "flag": [r[3] > 20 for r in chosen], "expected": pa.array(expected, pa.float64()),
        "run_id": ["run 1"] * len(chosen), "at": pa.array([at] * len(chosen), pa.timestamp("us", tz="UTC")),
    })
    data = pa.concat_tables([data.slice(0, 7), data.slice(7)])  # chunked columns, as scans produce them
    be = _backend(wh)
    try:
        with be.transaction():
            be.update_from_arrow(be.qualified(["m t"]), ["Host Name", "shard", "ts"], data)
    finally:
        be.close()
    got = wh.run('SELECT "Host Name", shard, ts, flag, expected, run_id, at FROM "m t" WHERE run_id IS NOT NULL '
                 'ORDER BY 1, 2, 3')
    want = sorted((r[0], r[1], r[2], r[3] > 20, e, "run 1", at) for r, e in zip(chosen, expected, strict=True))
    assert got == want
    untouched = wh.run('SELECT count(*) FROM "m t" WHERE run_id IS NULL AND flag IS NULL AND expected IS NULL')[0][0]
    assert untouched == len(rows) - len(chosen)
    assert wh.run("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'ad_pipeline_%'")[0][0] == 0


def test_insert_arrow_lands_the_rows_the_text_path_lands(postgres_wh: Warehouse) -> None:
    """Staged insert (binary rows + dictionaries for text) equals a plain CSV COPY, with and without
    a column that forces the text fallback."""
    wh = postgres_wh
    wh.run(f"CREATE TABLE via_text ({TYPES}); CREATE TABLE via_insert ({TYPES})")
    data = _sample()
    be = _backend(wh)
    try:
        with be.transaction():
            for part in (data.drop_columns(["num"]), data):
                be._copy_in("via_text", part)
                be.insert_arrow("via_insert", part)
    finally:
        be.close()
    rows = wh.run("SELECT * FROM via_insert ORDER BY i8, num NULLS FIRST")
    assert len(rows) == 2 * data.num_rows
    assert rows == wh.run("SELECT * FROM via_text ORDER BY i8, num NULLS FIRST")
    assert wh.run("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'ad_pipeline_%'")[0][0] == 0


@pytest.mark.parametrize("indexed", [True, False])
def test_write_back_updates_per_chunk_only_through_an_index(postgres_wh: Warehouse, indexed: bool) -> None:
    """With an index on the key each chunk's UPDATE runs at once; without one the chunks are
    staged and a single UPDATE runs as the deferred write, before the commit (each UPDATE would otherwise scan the whole table)."""
    wh = postgres_wh
    wh.run("CREATE TABLE m (host TEXT, ts TIMESTAMP, v DOUBLE PRECISION, expected DOUBLE PRECISION, run_id TEXT)"
           + ("; CREATE INDEX m_key ON m (host, ts)" if indexed else ""))
    t0 = dt.datetime(2024, 1, 1)
    rows = [(f"h{k}", t0 + dt.timedelta(hours=i), float(i)) for k in range(6) for i in range(20)]
    wh.executemany("INSERT INTO m (host, ts, v) VALUES (?, ?, ?)", rows)
    be = _backend(wh)
    updates: list[str] = []
    execute = be.execute

    def spy(sql: str, params: Any = ()) -> None:
        if sql.startswith("UPDATE"):
            updates.append(sql)
        execute(sql, params)

    be.execute = spy
    try:
        with be.transaction():  # the deferred UPDATE runs as its last step, before COMMIT
            for k in range(0, 6, 2):  # three chunks of two series, each with its own run_id text
                chunk = [r for r in rows if r[0] in (f"h{k}", f"h{k + 1}")]
                be.update_from_arrow("m", ["host", "ts"], pa.table({
                    "host": [r[0] for r in chunk], "ts": pa.array([r[1] for r in chunk], pa.timestamp("us")),
                    "expected": [r[2] * 2 for r in chunk], "run_id": [f"chunk {k}"] * len(chunk)}))
            assert len(updates) == (3 if indexed else 0)
    finally:
        be.close()
    assert len(updates) == (3 if indexed else 1)
    got = wh.run("SELECT host, v, expected, run_id FROM m ORDER BY host, ts")
    assert got == [(h, v, 2 * v, f"chunk {int(h[1:]) // 2 * 2}") for h, _, v in sorted(rows)]
