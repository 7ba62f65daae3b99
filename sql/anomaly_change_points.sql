-- anomaly_change_points(table_name, key := 'key', ts := 'ts', value := 'value', <parameters>)
--
-- Change-point detection: where does the trend of each series shift?
--   SELECT * FROM anomaly_change_points('metrics', key := 'host') WHERE is_change_point;
-- One row per input row: the key column(s), the timestamp and value columns, then
-- is_change_point, change_point_confidence (+ anomaly_error_code, anomaly_error with
-- errors := 'coerce'). Parameters: granularity, custom_interval, period, stable_trend_window,
-- threshold (NULL: the engine's defaults).

CREATE OR REPLACE TEMP MACRO anomaly_change_points(
    table_name, "key" := 'key', ts := 'ts', "value" := 'value', granularity := NULL,
    custom_interval := NULL, period := NULL, stable_trend_window := NULL, threshold := NULL,
    errors := NULL
) AS TABLE
WITH __ad_series AS (
    SELECT
        __ad_key,
        list(__ad_row ORDER BY __ad_ts) AS __ad_rows,
        __ad_change_points(
            list(__ad_value ORDER BY __ad_ts), list(__ad_ts ORDER BY __ad_ts), __ad_key::VARCHAR,
            granularity, custom_interval, period, stable_trend_window, threshold, errors
        ) AS __ad_result
    FROM __ad_source(table_name, "key", ts, "value")
    GROUP BY __ad_key
)
SELECT COLUMNS(lambda c: __ad_keep(c, errors))
FROM (
    SELECT unnest(__ad_key), unnest(__ad_rows, recursive := true), unnest(__ad_result, recursive := true)
    FROM __ad_series
);
