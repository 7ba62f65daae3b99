"""Anomaly detection in DuckDB SQL: table macros, list functions, and a file database.

Run: ``python examples/duckdb_sql.py`` (needs ``pip install 'ad-pipeline-anomaly[duckdb]'``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import ad_pipeline.duckdb as add
from ad_pipeline.cli import make_demo_table


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "warehouse.duckdb")

        # 1. a warehouse file with 20 hourly series (key, ts, value) and a few injected anomalies
        con = add.connect(path)  # = duckdb.connect(path) + ad_pipeline.duckdb.register(con)
        make_demo_table(con, n_series=20, n_points=500)

        # 2. every point of every series: one row per input row, result columns appended
        print(
            con.sql(
                "SELECT key, ts, value, expected_value, severity "
                "FROM anomaly_detect('metrics', key := 'key', ts := 'ts', value := 'value', sensitivity := 95) "
                "WHERE is_anomaly ORDER BY severity DESC LIMIT 5"
            )
        )

        # 3. the newest point of each series (alerting), and change points
        print(con.sql("SELECT key, ts, value, is_anomaly FROM anomaly_detect_last('metrics') ORDER BY key LIMIT 3"))
        print(con.sql("SELECT count(*) AS change_points FROM anomaly_change_points('metrics') WHERE is_change_point"))

        # 4. the list functions compose with any GROUP BY, here per series and per week
        print(
            con.sql(
                "SELECT key, date_trunc('week', ts) AS week, "
                "  list_count(list_filter(anomaly_detect_list(list(value ORDER BY ts), list(ts ORDER BY ts)), "
                "             lambda r: r.is_anomaly)) AS anomalies "
                "FROM metrics GROUP BY ALL HAVING count(*) >= 24 ORDER BY anomalies DESC LIMIT 3"
            )
        )

        # 5. a bad parameter fails the query with the engine's error code
        try:
            con.sql("SELECT * FROM anomaly_detect('metrics', sensitivity := 120)").fetchall()
        except Exception as exc:  # duckdb.InvalidInputException
            print(str(exc).split("UDF: ")[-1])
        con.close()

        # 6. functions live in the connection, not in the file: register again after reopening
        con = add.connect(path, read_only=True)
        print(con.execute("SELECT count(*) FROM anomaly_detect('metrics') WHERE is_anomaly").fetchall())
        con.close()


if __name__ == "__main__":
    main()
