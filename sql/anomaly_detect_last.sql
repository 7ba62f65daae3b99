-- anomaly_detect_last(table_name, key := 'key', ts := 'ts', value := 'value', <engine parameters>)
--
-- Last-point detection: is the newest point of each series anomalous?
--   SELECT * FROM anomaly_detect_last('metrics', key := 'host') WHERE is_anomaly;
-- One row per series: the key column(s), the newest row's timestamp and value, then
-- is_anomaly, is_positive_anomaly, is_negative_anomaly, expected_value, lower_boundary,
-- upper_boundary, lower_margin, upper_margin, severity, period, suggested_window
-- (+ anomaly_error_code, anomaly_error with errors := 'coerce'). Every point of a series builds
-- the model; to judge against a recent window only, filter the rows first (a view).

CREATE OR REPLACE TEMP MACRO anomaly_detect_last(
    table_name, "key" := 'key', ts := 'ts', "value" := 'value', granularity := NULL,
    custom_interval := NULL, period := NULL, max_anomaly_ratio := NULL, sensitivity := NULL,
    impute_mode := NULL, impute_fixed_value := NULL, boundary_version := NULL, method := NULL,
    errors := NULL
) AS TABLE
WITH __ad_series AS (
    SELECT
        __ad_key,
        arg_max(__ad_row, __ad_ts) AS __ad_last_row,
        __ad_detect_last(
            list(__ad_value ORDER BY __ad_ts), list(__ad_ts ORDER BY __ad_ts), __ad_key::VARCHAR,
            granularity, custom_interval, period, max_anomaly_ratio, sensitivity, impute_mode,
            impute_fixed_value, boundary_version, method, errors
        ) AS __ad_result
    FROM __ad_source(table_name, "key", ts, "value")
    GROUP BY __ad_key
)
SELECT COLUMNS(lambda c: __ad_keep(c, errors))
FROM (SELECT unnest(__ad_key), unnest(__ad_last_row), unnest(__ad_result) FROM __ad_series);
