-- Scalar functions over ONE series given as lists (one row per series), e.g. after GROUP BY:
--
--   SELECT key, anomaly_detect_list(list(value ORDER BY ts), list(ts ORDER BY ts), sensitivity := 95)
--   FROM metrics GROUP BY key;
--
-- Every parameter left NULL takes the engine's default (the parameter table, ad_pipeline/engine/params.py;
-- docs/engine.md lists it): granularity inferred from the timestamps, period detected, ...
-- `key` only labels the series in error messages.
-- errors := 'coerce' turns an invalid series into NULL results plus anomaly_error_code/anomaly_error.
-- The __ad_* functions are vectorized Arrow UDFs registered by ad_pipeline.duckdb.register().

CREATE OR REPLACE TEMP MACRO anomaly_detect_list(
    "values", timestamps := NULL, granularity := NULL, custom_interval := NULL, period := NULL,
    max_anomaly_ratio := NULL, sensitivity := NULL, impute_mode := NULL, impute_fixed_value := NULL,
    boundary_version := NULL, method := NULL, errors := NULL, "key" := NULL
) AS __ad_detect_entire(
    "values", timestamps, "key"::VARCHAR, granularity, custom_interval, period, max_anomaly_ratio,
    sensitivity, impute_mode, impute_fixed_value, boundary_version, method, errors
);

CREATE OR REPLACE TEMP MACRO anomaly_detect_last_list(
    "values", timestamps := NULL, granularity := NULL, custom_interval := NULL, period := NULL,
    max_anomaly_ratio := NULL, sensitivity := NULL, impute_mode := NULL, impute_fixed_value := NULL,
    boundary_version := NULL, method := NULL, errors := NULL, "key" := NULL
) AS __ad_detect_last(
    "values", timestamps, "key"::VARCHAR, granularity, custom_interval, period, max_anomaly_ratio,
    sensitivity, impute_mode, impute_fixed_value, boundary_version, method, errors
);

CREATE OR REPLACE TEMP MACRO anomaly_change_points_list(
    "values", timestamps := NULL, granularity := NULL, custom_interval := NULL, period := NULL,
    stable_trend_window := NULL, threshold := NULL, errors := NULL, "key" := NULL
) AS __ad_change_points(
    "values", timestamps, "key"::VARCHAR, granularity, custom_interval, period, stable_trend_window,
    threshold, errors
);
