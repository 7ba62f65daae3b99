"""Airflow operator for tabular anomalies: fit (or load) a :class:`TabularDetector`, score a table.

:class:`TabularAnomalyOperator` reads rows through any ``common.sql`` hook (the backends of
:mod:`ad_pipeline.warehouse.backends`: DuckDB, PostgreSQL, generic DB-API), fits a model on one
table/query -- or loads a model saved with :meth:`TabularDetector.save` -- scores the rows of another
table/query, and writes ``anomaly``, ``is_anomaly`` and ``anomaly_top_features`` (JSON text) back:

- ``target_table=...``: a results table (created when missing) with the key column(s), the score
  columns, ``run_id`` and ``detected_at``; the rows of the scored keys are replaced, so a re-run
  leaves one row per key;
- ``write_back="columns"``: the score columns are added to ``table`` and filled in place, rows
  matched on the key column(s).

Both happen in one transaction: a failure leaves the target as it was. A bad argument (unknown
column, invalid parameter, foreign model file) fails the task without retries.

Example
-------
>>> op = TabularAnomalyOperator(  # doctest: +SKIP
...     task_id="score_cardio", conn_id="warehouse", fit_table="cardio_train", table="cardio_today",
...     key="key", ignore=["target"], target_table="cardio_anomalies",
...     model_params={"contamination": 0.1}, save_model_path="/models/cardio.npz")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from ..errors import AnomalyDetectorError, BadArgument
from ..warehouse.backends import backend_for
from ..warehouse.tabular import TabularSpec, run_tabular_scan
from .operators import _names, _ScanOperator, _table

__all__ = ["TabularAnomalyOperator"]


class TabularAnomalyOperator(BaseOperator):
    """Fit (or load) a tabular anomaly model and score a table, writing the scores back.

    Parameters
    ----------
    key : str or list of str
        Column(s) identifying a row (kept in the results; matched on for ``write_back``).
    table, sql : str
        The rows to score: a table (a string is one identifier; a tuple is ``(schema, table)``) or
        a SELECT (templated, ``.sql`` files allowed). Exactly one.
    fit_table, fit_sql : str, optional
        The rows to fit on; default: the scored rows (the Nexosis session).
    model_path : str, optional
        Load this saved model instead of fitting (templated). Exclusive with ``fit_table``/``fit_sql``.
    save_model_path : str, optional
        Save the fitted model there (templated), e.g. for a later ``model_path``.
    features : list of str, optional
        Feature columns; default: every numeric column of the fit rows but ``key`` and ``ignore``
        (with ``model_path``: the model's features).
    ignore : list of str
        Columns never used as features (e.g. a label).
    target_table : str or tuple, optional
        Results table, created when missing; the rows of the scored keys are replaced.
    write_back : "columns", optional
        Instead: add the score columns to ``table`` and fill them in place.
    top : int
        Features listed per row in ``anomaly_top_features`` (0: leave the column NULL, faster).
    model_params : dict, optional
        :class:`TabularDetector` parameters (``contamination``, ``n_estimators``, ...).
    conn_id, hook_params
        As for the time-series operators (default ``duckdb_default``).

    Returns (XCom) ``{"rows", "anomalies", "percent_anomalies", "features", "rows_written",
    "model": {"fitted_on_rows" | "loaded_from", "percent_anomalies_fit", "versions"}}``.
    """

    template_fields: Sequence[str] = (
        "table", "sql", "fit_table", "fit_sql", "model_path", "save_model_path", "target_table", "model_params",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "fit_sql": "sql", "model_params": "json"}
    ui_color = "#f4d5c4"

    # the hook logic of the time-series operators (connection lookup, DuckDB default, in-memory guard)
    hook: Any = _ScanOperator.hook

    def __init__(
        self,
        *,
        key: str | Sequence[str],
        conn_id: str = "duckdb_default",
        table: str | Sequence[str] | None = None,
        sql: str | None = None,
        fit_table: str | Sequence[str] | None = None,
        fit_sql: str | None = None,
        model_path: str | None = None,
        save_model_path: str | None = None,
        features: Sequence[str] | None = None,
        ignore: Sequence[str] = (),
        target_table: str | Sequence[str] | None = None,
        write_back: str | None = None,
        top: int = 3,
        model_params: dict[str, Any] | None = None,
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.key = _names(key, "key")
        self.conn_id = conn_id
        self.table, self.sql = table, sql
        self.fit_table, self.fit_sql = fit_table, fit_sql
        self.model_path, self.save_model_path = model_path, save_model_path
        self.features = None if features is None else _names(list(features), "features")
        self.ignore = list(ignore)
        self.target_table, self.write_back = target_table, write_back
        self.top = top
        self.model_params = dict(model_params or {})
        self.hook_params = dict(hook_params or {})
        if (table is None) == (sql is None):
            raise BadArgument("Exactly one of 'table' and 'sql' must be given (the rows to score).")
        if fit_table is not None and fit_sql is not None:
            raise BadArgument("At most one of 'fit_table' and 'fit_sql' may be given.")
        if model_path is not None and (fit_table is not None or fit_sql is not None or self.model_params):
            raise BadArgument("'model_path' loads a fitted model: do not also give fit_table/fit_sql/model_params.")
        if write_back not in (None, "columns"):
            raise BadArgument(f"The 'write_back' field must be None or 'columns', got {write_back!r}.")
        if (target_table is None) == (write_back is None):
            raise BadArgument("Exactly one of 'target_table' and write_back='columns' must be given.")
        if write_back == "columns" and table is None:
            raise BadArgument("write_back='columns' needs 'table' (a query's rows cannot be updated).")
        if not isinstance(top, int) or isinstance(top, bool) or top < 0:
            raise BadArgument(f"The 'top' field must be a non-negative integer, got {top!r}.")

    # ------------------------------------------------------------------ execution
    def execute(self, context: Any) -> dict[str, Any]:
        try:
            spec = TabularSpec(
                key=self.key, table=_table(self.table, "table"), sql=self.sql,
                fit_table=_table(self.fit_table, "fit_table"), fit_sql=self.fit_sql,
                model_path=self.model_path, save_model_path=self.save_model_path, features=self.features,
                ignore=self.ignore, target_table=_table(self.target_table, "target_table"),
                write_back=self.write_back == "columns", top=self.top, model_params=self.model_params,
                run_id=str(context.get("run_id") or ""), log=self.log.info,
            )  # fmt: skip
            backend = backend_for(self.hook)
            try:
                return run_tabular_scan(spec, backend)
            finally:
                backend.close()
        except AnomalyDetectorError as exc:
            raise AirflowFailException(f"{exc.code}: {exc.message}") from exc
