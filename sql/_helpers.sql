-- Helpers of the table macros (internal; names start with __ad_).

-- Is column `c` one of the key columns? `key` is a column name or a list of names (case-insensitive).
CREATE OR REPLACE TEMP MACRO __ad_is_key(c, "key") AS CASE
    WHEN typeof("key") = 'VARCHAR' THEN lower(c) = lower("key"::VARCHAR)
    ELSE list_contains(list_transform("key"::VARCHAR[], lambda k: lower(k)), lower(c))
END;

-- The rows of a table, view or file (anything query_table() reads) as
--   __ad_key   STRUCT of the key column(s), original names and types
--   __ad_row   STRUCT of the timestamp and value columns, original names and types (for the output)
--   __ad_ts    the timestamp as TIMESTAMP, __ad_value the value as DOUBLE (what the engine reads)
-- A column that does not exist fails with DuckDB's 'Star expression ... resulted in an empty set
-- of columns' naming the column asked for.
CREATE OR REPLACE TEMP MACRO __ad_source(table_name, "key", ts, "value") AS TABLE
SELECT
    struct_pack(*COLUMNS(lambda c: __ad_is_key(c, "key"))) AS __ad_key,
    struct_pack(*COLUMNS(lambda c: lower(c) IN (lower(ts), lower("value")))) AS __ad_row,
    CAST(COLUMNS(lambda c: lower(c) = lower(ts)) AS TIMESTAMP) AS __ad_ts,
    CAST(COLUMNS(lambda c: lower(c) = lower("value")) AS DOUBLE) AS __ad_value
FROM query_table(table_name::VARCHAR);

-- The output columns of a table macro: the error columns only with errors := 'coerce'.
CREATE OR REPLACE TEMP MACRO __ad_keep(c, errors) AS
    c NOT IN ('anomaly_error_code', 'anomaly_error') OR coalesce(errors = 'coerce', false);
