"""Airflow operators that scan a warehouse table for anomalies and write the verdicts back.

* :class:`AnomalyDetectionOperator` -- entire-series detection of every series in the window.
* :class:`LastPointAnomalyOperator` -- monitoring: is the newest point of each key anomalous.
* :class:`ChangePointOperator` -- change points of every series in the window.

They work through any ``common.sql`` ``DbApiHook`` named by ``conn_id``: DuckDB
(``apache-airflow-providers-duckdb``, the embedded default) and PostgreSQL
(``apache-airflow-providers-postgres``) have bulk paths (Arrow reads, Arrow / ``COPY`` writes);
other databases go through plain DB-API calls. See ``docs/airflow.md``.

Example
-------
>>> from datetime import timedelta
>>> op = AnomalyDetectionOperator(  # doctest: +SKIP
...     task_id="scan", conn_id="warehouse", table="metrics", key="host", timestamp="ts",
...     value="cpu", lookback=timedelta(days=28), target_table="metrics_anomalies")
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any, TypeVar

from airflow.sdk import BaseHook, BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException, AirflowSkipException

from ..engine.params import (
    PARAMS,
    check_change_point_params,
    check_params,
    check_signature,
    params_for,
    with_param_docs,
)
from ..errors import AnomalyDetectorError, BadArgument
from ..warehouse.backends import Backend, backend_for
from ..warehouse.scan import run_scan
from ..warehouse.spec import ScanSpec

__all__ = ["AnomalyDetectionOperator", "LastPointAnomalyOperator", "ChangePointOperator"]

F = TypeVar("F", bound=Callable[..., Any])

ON_ANOMALY = ("continue", "fail", "skip")


def _names(value: str | Sequence[str], field: str) -> list[str]:
    names = [value] if isinstance(value, str) else list(value)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise BadArgument(f"The {field!r} field must be a column name or a list of column names, got {value!r}.")
    return names


def _table(value: str | Sequence[str] | None, field: str) -> tuple[str, ...] | None:
    """A table name: a string is ONE identifier (dots included); a tuple is schema-qualified."""
    if value is None:
        return None
    parts = (value,) if isinstance(value, str) else tuple(value)
    if not parts or not all(isinstance(p, str) and p for p in parts):
        raise BadArgument(
            f"The {field!r} field must be a table name or a (schema, table) tuple, got {value!r}."
        )
    return parts


def _when(value: Any, field: str) -> dt.datetime | None:
    """A window bound from the context or a rendered template; naive times are UTC."""
    if value is None or value == "" or value == "None":
        return None
    if isinstance(value, dt.datetime):
        t = value
    elif isinstance(value, dt.date):
        t = dt.datetime(value.year, value.month, value.day)
    else:
        try:
            t = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise BadArgument(f"The {field!r} field must be an ISO-8601 date-time, got {value!r}.") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


#: the engine parameters that are numbers (a template renders them as text)
_NUMERIC_PARAMS = frozenset(p.name for p in PARAMS if p.sql_type in ("INTEGER", "DOUBLE"))


def _table_parameters(job: str) -> Callable[[F], F]:
    """For an operator's ``__init__(self, *, <job's parameters>, **kwargs)``: its explicit signature is
    checked against engine/params.py's table at import (names, keyword-only, defaults, annotations), and
    a call hands the table's parameters (as given, defaults filled in) on as ``detect_params=`` in
    ``kwargs``. Airflow sees the explicit signature, so ``default_args`` may set them too."""
    table = params_for(job)

    def wrap(init: F) -> F:
        sig = inspect.signature(init)
        check_signature(init.__qualname__, sig, table, False)

        @functools.wraps(init)
        def with_params(self: Any, **kwargs: Any) -> None:
            params = {p.name: kwargs.pop(p.name, sig.parameters[p.name].default) for p in table}
            init(self, detect_params=params, **kwargs)

        return with_params  # type: ignore[return-value]

    return wrap


def _rendered_number(value: Any) -> Any:
    """A templated number rendered as text (``"{{ params.sensitivity }}"`` gives ``"95"``) as a number.

    Text that is not a number stays as it is, so the engine's check names the field and the value.

    >>> _rendered_number("95"), _rendered_number(" 0.1 "), _rendered_number("None"), _rendered_number("high")
    (95, 0.1, None, 'high')
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text in ("", "None"):
        return None
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return value


class _ScanOperator(BaseOperator):
    """What the three operators share: source, window, output, partitions, hook."""

    kind = "entire"
    template_fields: Sequence[str] = (
        "table",
        "sql",
        "target_table",
        "window_start",
        "window_end",
        "partition",
        "detect_params",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "detect_params": "json"}
    ui_color = "#f4d5c4"

    def __init__(
        self,
        *,
        key: str | Sequence[str],
        timestamp: str,
        value: str | Sequence[str],
        conn_id: str = "duckdb_default",
        table: str | Sequence[str] | None = None,
        sql: str | None = None,
        target_table: str | Sequence[str] | None = None,
        write_back: str | None = None,
        lookback: dt.timedelta | None = None,
        interval: dt.timedelta | None = None,
        window_start: str | dt.datetime | None = None,
        window_end: str | dt.datetime | None = None,
        partitions: int = 1,
        partition: int = 0,
        chunk_rows: int = 200_000,
        hook_params: dict[str, Any] | None = None,
        detect_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.table = table
        self.sql = sql
        self.key = _names(key, "key")
        if not isinstance(timestamp, str) or not timestamp:
            raise BadArgument(f"The 'timestamp' field must be a column name, got {timestamp!r}.")
        self.timestamp = timestamp
        self.value = _names(value, "value")
        if (table is None) == (sql is None):
            raise BadArgument("Exactly one of the 'table' and 'sql' fields must be given, got "
                              f"{'both' if table is not None else 'neither'}.")
        _table(table, "table")
        if write_back not in (None, "columns"):
            raise BadArgument(f"The 'write_back' field must be 'columns' or None, got {write_back!r}.")
        if (target_table is None) == (write_back is None):
            raise BadArgument("Exactly one output must be given: target_table=... or write_back='columns', got "
                              f"{'both' if target_table is not None else 'neither'}.")
        if write_back and table is None:
            raise BadArgument("write_back='columns' fills the source table: it needs table=..., not sql=....")
        _table(target_table, "target_table")
        self.target_table = target_table
        self.write_back = write_back
        for name, td in (("lookback", lookback), ("interval", interval)):
            if td is not None and (not isinstance(td, dt.timedelta) or td <= dt.timedelta(0)):
                raise BadArgument(f"The {name!r} field must be a positive timedelta or None, got {td!r}.")
        self.lookback = lookback
        self.interval = interval
        self.window_start = window_start
        self.window_end = window_end
        if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
            raise BadArgument(f"The 'partitions' field must be a positive integer, got {partitions!r}.")
        self.partitions = partitions
        self.partition = partition
        if not isinstance(chunk_rows, int) or chunk_rows < 1:
            raise BadArgument(f"The 'chunk_rows' field must be a positive integer, got {chunk_rows!r}.")
        self.chunk_rows = chunk_rows
        self.hook_params = dict(hook_params or {})
        self.detect_params = dict(detect_params or {})

    # ------------------------------------------------------------------ the hook
    @cached_property
    def hook(self) -> Any:
        """The ``DbApiHook`` of ``conn_id`` (``duckdb_default`` may be absent: then ``hook_params`` name the file)."""
        from airflow.providers.common.sql.hooks.sql import DbApiHook

        try:
            hook = BaseHook.get_connection(self.conn_id).get_hook(hook_params=self.hook_params)
        except AirflowNotFoundException:
            if self.conn_id != "duckdb_default":
                raise AirflowFailException(f"The connection {self.conn_id!r} is not defined.") from None
            from airflow.providers.duckdb.hooks.duckdb import DuckDBHook

            hook = DuckDBHook(**self.hook_params)
        if not isinstance(hook, DbApiHook):
            raise AirflowFailException(
                f"The connection {self.conn_id!r} gives a {type(hook).__name__}, not a common.sql DbApiHook."
            )
        get_db = getattr(hook, "get_database", None)
        if get_db is not None and get_db() == ":memory:":
            conn = getattr(hook, "airflow_connection", None)
            hint = ""
            if conn is not None and conn.schema and "/" in conn.schema:
                hint = (f" The connection URI put the path {conn.schema!r} in the schema field: write it as "
                        "duckdb://%2Fpath%2Fto.duckdb or set the host (or extra 'database') to the file path.")
            raise AirflowFailException(
                f"The DuckDB connection {self.conn_id!r} opens an in-memory database, where results are lost "
                f"when the task ends; point it at a database file (hook_params={{'database': ...}}).{hint}"
            )
        return hook

    # ------------------------------------------------------------------ execution
    def _engine_params(self) -> dict[str, Any]:
        """The engine parameters; numbers that templates rendered as text become numbers again."""
        return {k: _rendered_number(v) if k in _NUMERIC_PARAMS else v for k, v in self.detect_params.items()}

    def _check_params(self, params: dict[str, Any]) -> None:
        check_params(**params)

    def _window(self, context: Any) -> tuple[dt.datetime | None, dt.datetime | None, dt.datetime | None]:
        """(history start, write start, end) of this run."""
        end = _when(self.window_end if self.window_end is not None else context.get("data_interval_end"),
                    "window_end")
        start = _when(self.window_start if self.window_start is not None else context.get("data_interval_start"),
                      "window_start")
        if start is not None and end is not None and start > end:
            raise BadArgument(f"The window must not end before it starts, got {start.isoformat()} .. {end.isoformat()}.")
        if start is not None and start == end:  # a point, as Airflow 3's CronTriggerTimetable gives
            if self.interval is not None:
                start = end - self.interval
            elif self.kind == "last":
                start = None
            else:
                raise BadArgument(
                    f"The data interval of this run is empty ({end.isoformat()}); set interval=timedelta(...) "
                    "(the span each run scans), or schedule with data intervals (e.g. schedule=timedelta(days=1))."
                )
        elif start is None and end is not None and self.interval is not None:
            start = end - self.interval
        if self.kind == "last":
            history = (end - self.lookback) if (end is not None and self.lookback is not None) else None
        else:
            history = (start - self.lookback) if (start is not None and self.lookback is not None) else start
        return history, start, end

    def _spec(self, context: Any) -> ScanSpec:
        params = self._engine_params()
        self._check_params(params)
        partition = int(self.partition)
        if not 0 <= partition < self.partitions:
            raise BadArgument(f"The 'partition' field must be in 0 .. {self.partitions - 1}, got {self.partition!r}.")
        history, start, end = self._window(context)
        return ScanSpec(
            kind=self.kind,
            keys=self.key,
            timestamp=self.timestamp,
            values=self.value,
            table=_table(self.table, "table"),
            sql=self.sql,
            params=params,
            scan_start=history,
            write_start=start,
            end=end,
            target_table=_table(self.target_table, "target_table"),
            write_back=self.write_back == "columns",
            partitions=self.partitions,
            partition=partition,
            chunk_rows=self.chunk_rows,
            run_id=str(context.get("run_id") or ""),
            log=self.log.info,
        )

    def _backend(self) -> Backend:
        return backend_for(self.hook)

    def execute(self, context: Any) -> dict[str, Any]:
        try:
            spec = self._spec(context)
            backend = self._backend()
            try:
                summary = run_scan(spec, backend)
            finally:
                backend.close()
        except AnomalyDetectorError as exc:
            raise AirflowFailException(f"{exc.code}: {exc.message}") from exc
        self.log.info(
            "scanned %s series, %s points: %s flagged, %s invalid series",
            summary["series"], summary["points"], summary.get("anomalies", summary.get("change_points")),
            summary["invalid_series"],
        )
        return self._finish(summary, context)

    def _finish(self, summary: dict[str, Any], context: Any) -> dict[str, Any]:
        return summary


_DETECT_DOC = """
    Parameters
    ----------
    key : str or list of str
        Column(s) naming a series.
    timestamp : str
        The timestamp (or date) column.
    value : str or list of str
        Value column(s); each (key, value column) pair is one series.
    conn_id : str
        A common.sql connection (default ``duckdb_default``, DuckDB).
    table, sql : str
        The source: a table (a string is one identifier; a tuple is ``(schema, table)``) or a
        SELECT (templated, ``.sql`` files allowed). Exactly one.
    target_table : str or tuple, optional
        Results table, created when missing; the window's old rows of the scanned keys are replaced.
    write_back : "columns", optional
        Instead of a results table: add the result columns to ``table`` and fill them in place.
    lookback : timedelta, optional
        History read before the window (context for the model; not rewritten).
    interval : timedelta, optional
        The span one run scans when the data interval is a point (Airflow 3 cron schedules).
    window_start, window_end : str or datetime, optional
        Templated overrides of the data interval.
    partitions, partition : int
        Hash partitions of the keys: map ``partition`` over ``range(partitions)``.
    chunk_rows : int
        Rows read per chunk of whole series (memory bound).
    hook_params : dict, optional
        Passed to the hook (e.g. ``{"database": "/data/warehouse.duckdb"}`` for DuckDB).
"""


class AnomalyDetectionOperator(_ScanOperator):
    __doc__ = (
        """Entire-series anomaly detection of every series in the window, written to a table or back.

    The engine parameters (listed below) are keyword arguments with the engine's defaults. Returns
    (XCom) ``{"series", "points", "anomalies", "invalid_series", "errors": [{"key", "code", "message"}],
    ...}``.
    """
        + with_param_docs(_DETECT_DOC, params_for("entire"))
    )

    kind = "entire"

    @_table_parameters("entire")
    def __init__(
        self,
        *,
        granularity: str | None = None,
        custom_interval: int | None = None,
        period: int | None = None,
        max_anomaly_ratio: float = 0.25,
        sensitivity: float = 99,
        impute_mode: str = "auto",
        impute_fixed_value: float | None = None,
        boundary_version: str = "V1",
        method: str = "azure",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)  # kwargs hold detect_params: the parameters above (_table_parameters)


class LastPointAnomalyOperator(AnomalyDetectionOperator):
    __doc__ = (
        """Real-time monitoring: is the newest point of each key anomalous.

    Each key's newest point before the window end is judged from its last ``window`` points
    (``"suggested"``: the engine's ``suggested_window`` over the ``lookback`` history, see
    ``detect_last_batch(window=...)``). Keys whose newest point is older than the window start are stale and
    not judged. One result row per key (``suggested_window`` added). ``on_anomaly``: ``"continue"``
    (succeed), ``"fail"`` (fail without retry) or ``"skip"`` (mark the task skipped) once results are
    written; the anomalous keys go to XCom (``anomalous_keys``).
    """
        + with_param_docs(_DETECT_DOC, params_for("last"))
    )

    kind = "last"

    def __init__(self, *, window: int | str = "suggested", on_anomaly: str = "continue", **kwargs: Any) -> None:
        if on_anomaly not in ON_ANOMALY:
            raise BadArgument(f"The 'on_anomaly' field must be one of {', '.join(ON_ANOMALY)}, got {on_anomaly!r}.")
        if window != "suggested" and (not isinstance(window, int) or isinstance(window, bool) or window < 12):
            raise BadArgument(f"The 'window' field must be 'suggested' or an integer of at least 12, got {window!r}.")
        super().__init__(**kwargs)
        self.window = window
        self.on_anomaly = on_anomaly

    def _spec(self, context: Any) -> ScanSpec:
        spec = super()._spec(context)
        spec.last_window = self.window
        return spec

    def _finish(self, summary: dict[str, Any], context: Any) -> dict[str, Any]:
        keys = summary.get("anomalous_keys", [])
        ti = context.get("ti") if hasattr(context, "get") else None
        if ti is not None:
            ti.xcom_push(key="anomalous_keys", value=keys)
        if keys and self.on_anomaly == "fail":
            raise AirflowFailException(f"{len(keys)} anomalous key(s): {keys[:20]}")
        if keys and self.on_anomaly == "skip":
            raise AirflowSkipException(f"{len(keys)} anomalous key(s): {keys[:20]}")
        return summary


class ChangePointOperator(_ScanOperator):
    __doc__ = (
        """Change-point detection of every series in the window: ``is_change_point``, ``change_point_confidence``.

    The engine parameters (listed below) are keyword arguments with the engine's defaults.
    """
        + with_param_docs(_DETECT_DOC, params_for("change_points"))
    )

    kind = "change_points"

    @_table_parameters("change_points")
    def __init__(
        self,
        *,
        granularity: str | None = None,
        custom_interval: int | None = None,
        period: int | None = None,
        stable_trend_window: int | None = None,
        threshold: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)  # kwargs hold detect_params: the parameters above (_table_parameters)

    def _check_params(self, params: dict[str, Any]) -> None:
        check_change_point_params(**params)
