-- anomaly_detect(table_name, key := 'key', ts := 'ts', value := 'value', <engine parameters>)
--
-- Entire-series detection of every series of a table, view or file:
--   SELECT * FROM anomaly_detect('metrics', key := 'host', ts := 'ts', value := 'cpu', sensitivity := 95);
--   SELECT * FROM anomaly_detect('data/*.parquet', key := ['region', 'host']);
-- One row per input row: the key column(s), the timestamp and value columns (names and types
-- kept), then is_anomaly, is_positive_anomaly, is_negative_anomaly, expected_value,
-- lower_boundary, upper_boundary, lower_margin, upper_margin, severity, period
-- (+ anomaly_error_code, anomaly_error with errors := 'coerce'). Rows come series by series;
-- add ORDER BY for a fixed order. NULL values are missing points (kept, never flagged).
-- Parameters left NULL take the engine's defaults (see anomaly_detect_list.sql).

CREATE OR REPLACE TEMP MACRO anomaly_detect(
    table_name, "key" := 'key', ts := 'ts', "value" := 'value', granularity := NULL,
    custom_interval := NULL, period := NULL, max_anomaly_ratio := NULL, sensitivity := NULL,
    impute_mode := NULL, impute_fixed_value := NULL, boundary_version := NULL, method := NULL,
    errors := NULL
) AS TABLE
WITH __ad_series AS (
    SELECT
        __ad_key,
        list(__ad_row ORDER BY __ad_ts) AS __ad_rows,
        __ad_detect_entire(
            list(__ad_value ORDER BY __ad_ts), list(__ad_ts ORDER BY __ad_ts), __ad_key::VARCHAR,
            granularity, custom_interval, period, max_anomaly_ratio, sensitivity, impute_mode,
            impute_fixed_value, boundary_version, method, errors
        ) AS __ad_result
    FROM __ad_source(table_name, "key", ts, "value")
    GROUP BY __ad_key
)
SELECT COLUMNS(lambda c: __ad_keep(c, errors))
FROM (
    SELECT unnest(__ad_key), unnest(__ad_rows, recursive := true), unnest(__ad_result, recursive := true)
    FROM __ad_series
);
