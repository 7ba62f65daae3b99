"""Score the rows of a warehouse table with a :class:`~ad_pipeline.engine.tabular.TabularDetector`.

:func:`run_tabular_scan` reads the fit rows (or loads a saved model), reads the rows to score,
scores them in one call and writes ``anomaly``, ``is_anomaly`` and ``anomaly_top_features`` (JSON
text) back, in ONE transaction (``with backend.transaction():``): a failure leaves the output as
it was. Nothing here imports Airflow (:class:`ad_pipeline.airflow.tabular.TabularAnomalyOperator`
builds the :class:`TabularSpec`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ..engine.tabular import TabularDetector
from ..errors import BadArgument
from ..frames.tabular import arrow_default_features, arrow_to_columns
from .backends import Backend
from .spec import MAX_PARAMS, META_COLUMNS
from .sql import (
    Params,
    TwinDDL,
    is_bad_request,
    key_in,
    output_ddl,
    refusing,
    run_ddl,
    source_query,
    sql_type,
)

SCORE_COLUMNS = (("anomaly", "double"), ("is_anomaly", "bool"), ("anomaly_top_features", "text"))


@dataclass
class TabularSpec:
    """A tabular scan, validated by the caller: where the rows are, the model, the output."""

    key: list[str]
    table: tuple[str, ...] | None = None
    sql: str | None = None
    fit_table: tuple[str, ...] | None = None
    fit_sql: str | None = None
    model_path: str | None = None
    save_model_path: str | None = None
    features: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    target_table: tuple[str, ...] | None = None
    write_back: bool = False
    top: int = 3
    model_params: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""
    log: Callable[..., None] = lambda *args: None


def _source(backend: Backend, table: tuple[str, ...] | None, sql: str | None, *, read: bool = True) -> str:
    if table is not None:
        return backend.qualified(table, read=read)
    return source_query(backend, sql, read=read)


def _read(backend: Backend, table: tuple[str, ...] | None, sql: str | None, columns: Sequence[str] | None) -> pa.Table:
    cols = "*" if columns is None else ", ".join(backend.quote_read(c) for c in columns)
    what = f"table {table[-1] if table and len(table) == 1 else table!r}" if table is not None else "sql query"
    try:
        return backend.query_arrow(f"SELECT {cols} FROM {_source(backend, table, sql)}")
    except Exception as exc:
        if is_bad_request(exc):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BadArgument(f"The {what} could not be read: {first}") from exc
        raise


def _model(spec: TabularSpec, backend: Backend) -> tuple[TabularDetector, dict[str, Any]]:
    if spec.model_path is not None:
        return TabularDetector.load(spec.model_path), {"loaded_from": str(spec.model_path)}
    own = spec.fit_table is not None or spec.fit_sql is not None
    fit_table, fit_sql = (spec.fit_table, spec.fit_sql) if own else (spec.table, spec.sql)
    rows = _read(backend, fit_table, fit_sql, spec.features)
    features = spec.features or arrow_default_features(rows, key=spec.key, ignore=spec.ignore)
    model = TabularDetector(**spec.model_params).fit(arrow_to_columns(rows, features))
    if spec.save_model_path:
        model.save(spec.save_model_path)
    return model, {"fitted_on_rows": rows.num_rows}


def _prepare(spec: TabularSpec, backend: Backend) -> list[str]:
    """The DDL of the output (see :func:`.sql.output_ddl`): none when it exists with the right types."""
    q = backend.quote
    wanted = (*SCORE_COLUMNS, *META_COLUMNS)
    if spec.target_table is None:
        return output_ddl(backend, backend.qualified(spec.table or ()), "source table (write_back)", wanted, None)
    target = backend.qualified(spec.target_table)
    sel = [q(k) for k in spec.key] + [f"CAST(NULL AS {sql_type(backend, typ)}) AS {q(name)}" for name, typ in wanted]
    source = _source(backend, spec.table, spec.sql, read=False)
    create = f"CREATE TABLE IF NOT EXISTS {target} AS SELECT {', '.join(sel)} FROM {source} WHERE 1 = 0"
    return output_ddl(backend, target, "output table", wanted, create)


def _write(spec: TabularSpec, backend: Backend, out: pa.Table) -> None:
    """Replace the scored keys' rows (inside the open transaction)."""
    if spec.write_back:
        backend.update_from_arrow(backend.qualified(spec.table or ()), spec.key, out)
        return
    target = backend.qualified(spec.target_table or ())
    keys = list(zip(*(out.column(k).to_pylist() for k in spec.key), strict=True))
    step = max(1, MAX_PARAMS // len(spec.key))
    for start in range(0, len(keys), step):
        p = Params(backend.write_style)
        cond = key_in(backend.quote, spec.key, p, keys[start : start + step])
        backend.execute(f"DELETE FROM {target} WHERE {cond}", p.values)
    backend.insert_arrow(target, out)


def _scores(spec: TabularSpec, model: TabularDetector, rows: pa.Table, features: list[str]) -> pa.Table:
    cols = arrow_to_columns(rows, features)
    anomaly = model.decision_function(cols)
    out = {k: rows.column(k) for k in spec.key}
    out["anomaly"] = pa.array(anomaly, type=pa.float64())
    out["is_anomaly"] = pa.array(anomaly < 0, type=pa.bool_())
    if spec.top:
        top = model.explain(cols, top=spec.top).to_list()
        out["anomaly_top_features"] = pa.array([json.dumps(t) for t in top], type=pa.string())
    else:
        out["anomaly_top_features"] = pa.nulls(rows.num_rows, type=pa.string())
    n = rows.num_rows
    out["run_id"] = pa.repeat(pa.scalar(spec.run_id, pa.string()), n)
    out["detected_at"] = pa.repeat(pa.scalar(dt.datetime.now(dt.UTC), pa.timestamp("us", tz="UTC")), n)
    return pa.table(out)


def run_tabular_scan(spec: TabularSpec, backend: Backend) -> dict[str, Any]:
    """Fit (or load) the model, score the rows, write the scores; returns the XCom summary."""
    what = "output table" if spec.target_table is not None else "source table (write_back)"
    _prepare(spec, backend)  # the output's column types are checked before the model is fitted
    model, model_info = _model(spec, backend)
    features = [str(f) for f in model.feature_names_in_]
    rows = _read(backend, spec.table, spec.sql, [*spec.key, *[f for f in features if f not in spec.key]])
    out = _scores(spec, model, rows, features)
    for attempt in (0, 1):  # a twin task creating the same output at the same moment: prepare again, once
        ddl = _prepare(spec, backend)
        try:
            with refusing("The database refused the scan"), backend.transaction():  # BEGIN ... COMMIT
                run_ddl(backend, ddl, what, twin_retry=attempt == 0)  # DDL first: a failure leaves none behind
                _write(spec, backend, out)
            break
        except TwinDDL:
            continue
    n = out.num_rows
    flags = out.column("is_anomaly").to_numpy(zero_copy_only=False)
    summary = {
        "rows": n,
        "anomalies": int(flags.sum()),
        "percent_anomalies": float(flags.mean()) if n else 0.0,
        "features": features,
        "rows_written": n,
        "model": {**model_info, "percent_anomalies_fit": model.percent_anomalies_, "versions": model.versions_},
    }
    spec.log("scored %s rows: %s anomalous (%.4f)", n, summary["anomalies"], summary["percent_anomalies"])
    return summary
