"""Airflow operator for tabular anomalies: fit (or load) a :class:`TabularDetector`, score a table.

:class:`TabularAnomalyOperator` reads rows through any ``common.sql`` hook (the backends of
:mod:`ad_pipeline.airflow._backends`: DuckDB, PostgreSQL, generic DB-API), fits a model on one
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

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from ..engine.tabular import TabularDetector
from ..errors import AnomalyDetectorError, BadArgument
from ..frames.tabular import arrow_default_features, arrow_to_columns
from ._backends import Backend, Params, backend_for
from ._scan import MAX_PARAMS, META_COLUMNS, _is_bad_request, output_ddl, refused_write, run_ddl
from .operators import _names, _ScanOperator, _table

__all__ = ["TabularAnomalyOperator"]

SCORE_COLUMNS = (("anomaly", "double"), ("is_anomaly", "bool"), ("anomaly_top_features", "text"))


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

    # ------------------------------------------------------------------ reading
    def _source(self, backend: Backend, table: Any, sql: str | None, *, read: bool = True) -> str:
        if table is not None:
            return backend.qualified(_table(table, "table") or (), read=read)
        body = (sql or "").strip().rstrip(";").strip()
        if (backend.read_style if read else backend.write_style) == "format":
            body = body.replace("%", "%%")  # a literal % in a statement run with %s placeholders
        return f"({body}) AS ad_source"

    def _read(self, backend: Backend, table: Any, sql: str | None, columns: Sequence[str] | None) -> pa.Table:
        cols = "*" if columns is None else ", ".join(backend.quote_read(c) for c in columns)
        what = f"table {table!r}" if table is not None else "sql query"
        try:
            return backend.query_arrow(f"SELECT {cols} FROM {self._source(backend, table, sql)}")
        except Exception as exc:
            if _is_bad_request(exc):
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise BadArgument(f"The {what} could not be read: {first}") from exc
            raise

    def _model(self, backend: Backend) -> tuple[TabularDetector, dict[str, Any]]:
        if self.model_path is not None:
            model = TabularDetector.load(self.model_path)
            return model, {"loaded_from": str(self.model_path)}
        fit_table = self.fit_table if self.fit_table is not None or self.fit_sql is not None else self.table
        fit_sql = self.fit_sql if self.fit_table is not None or self.fit_sql is not None else self.sql
        rows = self._read(backend, fit_table, fit_sql, None if self.features is None else self.features)
        features = self.features or arrow_default_features(rows, key=self.key, ignore=self.ignore)
        model = TabularDetector(**self.model_params).fit(arrow_to_columns(rows, features))
        if self.save_model_path:
            model.save(self.save_model_path)
        return model, {"fitted_on_rows": rows.num_rows}

    # ------------------------------------------------------------------ writing
    def _sql_type(self, backend: Backend, typ: str) -> str:
        return {"double": backend.double_type, "bool": "BOOLEAN", "text": backend.text_type,
                "tstz": backend.tstz_type}[typ]

    def _prepare(self, backend: Backend) -> list[str]:
        """The DDL of the output (see ``_scan.output_ddl``): none when it exists with the right types."""
        q = backend.quote
        wanted = (*SCORE_COLUMNS, *META_COLUMNS)
        if self.target_table is None:
            source = backend.qualified(_table(self.table, "table") or ())
            return output_ddl(backend, source, "source table (write_back)", wanted, None)
        target = backend.qualified(_table(self.target_table, "target_table") or ())
        sel = [q(k) for k in self.key] + [
            f"CAST(NULL AS {self._sql_type(backend, typ)}) AS {q(name)}" for name, typ in wanted
        ]
        source = self._source(backend, self.table, self.sql, read=False)
        create = f"CREATE TABLE IF NOT EXISTS {target} AS SELECT {', '.join(sel)} FROM {source} WHERE 1 = 0"
        return output_ddl(backend, target, "output table", wanted, create)

    def _write(self, backend: Backend, out: pa.Table) -> None:
        if self.write_back == "columns":
            backend.update_from_arrow(backend.qualified(_table(self.table, "table") or ()), self.key, out)
            return
        target = backend.qualified(_table(self.target_table, "target_table") or ())
        keys = list(zip(*(out.column(k).to_pylist() for k in self.key), strict=True))
        step = max(1, MAX_PARAMS // len(self.key))
        cols = [backend.quote(k) for k in self.key]
        for start in range(0, len(keys), step):
            p = Params(backend.write_style)
            part = keys[start : start + step]
            if len(cols) == 1:
                cond = f"{cols[0]} IN ({', '.join(p.add(k[0]) for k in part)})"
            else:
                tuples = ", ".join("(" + ", ".join(p.add(v) for v in k) + ")" for k in part)
                cond = f"({', '.join(cols)}) IN ({tuples})"
            backend.execute(f"DELETE FROM {target} WHERE {cond}", p.values)
        backend.insert_arrow(target, out)

    # ------------------------------------------------------------------ execution
    def execute(self, context: Any) -> dict[str, Any]:
        try:
            backend = backend_for(self.hook)
            try:
                return self._run(backend, context)
            finally:
                backend.close()
        except AnomalyDetectorError as exc:
            raise AirflowFailException(f"{exc.code}: {exc.message}") from exc

    def _run(self, backend: Backend, context: Any) -> dict[str, Any]:
        self._prepare(backend)  # the output's column types are checked before the model is fitted
        model, model_info = self._model(backend)
        features = [str(f) for f in model.feature_names_in_]
        rows = self._read(backend, self.table, self.sql, [*self.key, *[f for f in features if f not in self.key]])
        cols = arrow_to_columns(rows, features)
        anomaly = model.decision_function(cols)
        flags = anomaly < 0
        out = {k: rows.column(k) for k in self.key}
        out["anomaly"] = pa.array(anomaly, type=pa.float64())
        out["is_anomaly"] = pa.array(flags, type=pa.bool_())
        if self.top:
            top = model.explain(cols, top=self.top).to_list()
            out["anomaly_top_features"] = pa.array([json.dumps(t) for t in top], type=pa.string())
        else:
            out["anomaly_top_features"] = pa.nulls(rows.num_rows, type=pa.string())
        n = rows.num_rows
        out["run_id"] = pa.repeat(pa.scalar(str(context.get("run_id") or ""), pa.string()), n)
        out["detected_at"] = pa.repeat(pa.scalar(dt.datetime.now(dt.UTC), pa.timestamp("us", tz="UTC")), n)
        table = pa.table(out)
        what = "output table" if self.target_table is not None else "source table (write_back)"
        run_ddl(backend, lambda: self._prepare(backend), what)  # the DDL opens the write transaction
        try:
            self._write(backend, table)
            backend.commit()
        except BaseException as exc:
            backend.rollback()
            refused = refused_write(exc)
            if refused is exc:
                raise
            raise refused from exc
        summary = {
            "rows": n,
            "anomalies": int(flags.sum()),
            "percent_anomalies": float(flags.mean()) if n else 0.0,
            "features": features,
            "rows_written": n,
            "model": {**model_info, "percent_anomalies_fit": model.percent_anomalies_, "versions": model.versions_},
        }
        self.log.info("scored %s rows: %s anomalous (%.4f)", n, summary["anomalies"], summary["percent_anomalies"])
        return summary
