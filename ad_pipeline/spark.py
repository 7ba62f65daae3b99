"""Spark adapter: :func:`detect`, :func:`detect_last`, :func:`change_points` on a Spark DataFrame.

The same call as the pandas accessor, on a cluster. The rows are shuffled by key
(``repartition(*by)``), sorted within each partition by key and timestamp, and handed to
``mapInArrow``; every Arrow batch of a partition holds many whole series and goes through the
pandas accessor's own conversion and ONE engine batch call. A series that continues past the
end of an Arrow batch is held back and processed with the next batch, so no series is ever
split across engine calls.

Memory per task is bounded by the Arrow batch size: at most
``spark.sql.execution.arrow.maxRecordsPerBatch`` rows (default 10,000; 100,000 to 1,000,000
make the engine calls cheaper per series) plus the rows of the longest series.

Output columns are exactly those of the pandas accessor: the input columns (last-point
detection: the key columns, the timestamp and the value columns) plus the result columns; with
``errors="coerce"`` an invalid series gets nulls (as does a NaN result: :mod:`ad_pipeline.arrow`) and ``anomaly_error_code`` /
``anomaly_error``, and never fails the job. :func:`output_schema` gives the output schema as a
Spark DDL string. :func:`score_outliers` scores a Spark DataFrame with a fitted
:class:`~ad_pipeline.TabularDetector`.

Spark itself is not imported by this module (the functions only call methods of the DataFrame
they get), so it works on classic Spark and on Spark Connect (``mapInArrow`` needs Spark 3.3+).

Example (a notebook with a ``spark`` session)::

    from ad_pipeline import spark as ads
    out = ads.detect(spark.table("metrics"), value="value", timestamp="ts", by=["host", "metric"],
                     errors="coerce")
    out.filter("is_anomaly").show()
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import BadArgument, MissingDependency
from .frames.methods import AnomalyMethods, Request, non_numeric, non_temporal, run

try:
    import pyarrow as pa
    import pyarrow.compute as pc
except ImportError:  # pragma: no cover - depends on the environment
    raise MissingDependency.for_extra("pyarrow", "spark") from None

from .arrow import column_to_arrow  # noqa: E402  (after the pyarrow check above)

if TYPE_CHECKING:
    from .engine.tabular import TabularDetector

__all__ = ["detect", "detect_last", "change_points", "output_schema", "score_outliers", "whole_series"]

#: Spark SQL type of each result column kind (see ``engine.result``; Arrow types: ``arrow.ARROW_TYPES``).
SPARK_TYPES = {"bool": "boolean", "float": "double", "int": "bigint", "str": "string"}

_NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal")
_TEMPORAL = ("timestamp", "timestamp_ntz", "date")


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _ddl(fields: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{_quote(n)} {t}" for n, t in fields)


# --------------------------------------------------------------------------- the Arrow side (runs in the workers)


def _last_series_start(table: pa.Table, keys: Sequence[str]) -> int:
    """The first row of the table's last series (rows sorted by key; no keys: one series, row 0)."""
    n = table.num_rows
    if not keys or n == 0:
        return 0
    same = None
    for k in keys:
        col = table.column(k)
        last = col[n - 1]
        if not last.is_valid:
            eq = pc.is_null(col)
        elif pa.types.is_floating(col.type) and np.isnan(last.as_py()):
            eq = pc.fill_null(pc.is_nan(col), False)
        else:
            eq = pc.fill_null(pc.equal(col, last), False)
        same = eq if same is None else pc.and_(same, eq)
    other = np.flatnonzero(~np.asarray(same))
    return int(other[-1]) + 1 if len(other) else 0


def whole_series(batches: Iterator[pa.RecordBatch], keys: Sequence[str]) -> Iterator[pa.Table]:
    """Tables of whole series from Arrow batches of rows sorted by key.

    Each incoming batch yields one table: the rows held back from the previous batch plus the
    batch, less the rows of its last series, which are held back in turn (that series may go on
    in the next batch). The held-back rows come out at the end. A table thus holds at most one
    batch plus the longest series.

    >>> t = pa.table({"k": ["a", "a", "b", "b", "b", "c"], "v": range(6)})
    >>> [s.column("k").to_pylist() for s in whole_series(iter(t.to_batches(max_chunksize=2)), ["k"])]
    [['a', 'a'], ['b', 'b', 'b'], ['c']]
    """
    carry: pa.Table | None = None
    for batch in batches:
        if batch.num_rows == 0:
            continue
        table = pa.Table.from_batches([batch])
        if carry is not None:
            table = pa.concat_tables([carry, table])
        cut = _last_series_start(table, keys)
        if cut > 0:
            yield table.slice(0, cut)
        carry = table.slice(cut)
    if carry is not None and carry.num_rows:
        yield carry


def detect_table(table: pa.Table, req: Request, string: pa.DataType | None = None) -> pa.Table:
    """Run ``req`` over a table of whole series: the pandas accessor's conversion, one engine call.

    Returns the input columns (last-point detection: keys, timestamp and values of each series'
    newest row) plus the result columns, as Arrow columns (str results as ``string``).

    >>> from ad_pipeline.frames.methods import Request
    >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 12); x[9] = 30.0
    >>> t = pa.table({"key": np.repeat(["a", "b"], 24), "value": x})
    >>> out = detect_table(t, Request("detect", "value", None, "key", "raise", {"period": 4}))
    >>> out.filter(out["is_anomaly"]).select(["key", "value"]).to_pylist()
    [{'key': 'a', 'value': 30.0}]
    """
    from .frames.pandas import AnomalyFrameAccessor

    ts = [req.timestamp] if req.timestamp else []
    need = list(dict.fromkeys([*req.keys, *ts, *req.values]))
    part = table.select(need)
    for i, f in enumerate(part.schema):  # decimals as doubles (pandas would make them objects)
        if pa.types.is_decimal(f.type):
            part = part.set_column(i, f.name, part.column(i).cast(pa.float64()))
    pdf = part.to_pandas(date_as_object=False)
    rows, columns = run(req, AnomalyFrameAccessor(pdf)._read(req))
    kinds = req.result_kinds()
    if rows is None:
        out = table.drop_columns([c for c in kinds if c in table.column_names])
    else:
        out = table.select(need).take(pa.array(rows))
    for col in columns:
        out = out.append_column(col.name, column_to_arrow(col, kinds[col.name], str_type=string or pa.string()))
    return out


def _mapper(req: Request, string: pa.DataType) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def detect_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for table in whole_series(batches, req.keys):
            yield from detect_table(table, req, string).to_batches()

    return detect_batches


# --------------------------------------------------------------------------- the driver side


class _SparkMethods(AnomalyMethods):
    """The accessor's methods over a Spark DataFrame (``ddl``: return the output schema instead)."""

    def __init__(self, sdf: Any, ddl: bool = False) -> None:
        self._sdf = sdf
        self._ddl_only = ddl

    def _fields(self, req: Request) -> tuple[list[tuple[str, str]], dict[str, str]]:
        """Check ``req`` against the schema; the output's ``(name, Spark type)`` and the input types."""
        schema = self._sdf.schema
        types = {f.name: f.dataType.simpleString() for f in schema.fields}
        req.check(list(types))
        if req.timestamp is None:
            raise BadArgument(
                "A Spark DataFrame has no row order: pass the 'timestamp' column that orders each series."
            )
        for c in req.values:
            if not types[c].startswith(_NUMERIC):
                raise non_numeric(c, types[c])
        if types[req.timestamp] not in _TEMPORAL:
            raise non_temporal(req.timestamp, types[req.timestamp])
        kinds = req.result_kinds()
        if req.kind == "last":
            base = [(c, types[c]) for c in dict.fromkeys([*req.keys, req.timestamp, *req.values])]
        else:
            base = [(c, t) for c, t in types.items() if c not in kinds]
        return base + [(c, SPARK_TYPES[k]) for c, k in kinds.items()], types

    def _apply(self, req: Request) -> Any:
        fields, _ = self._fields(req)
        ddl = _ddl(fields)
        if self._ddl_only:
            return ddl
        conf = self._sdf.sparkSession.conf.get("spark.sql.execution.arrow.useLargeVarTypes", "false")
        string = pa.large_string() if str(conf).lower() == "true" else pa.string()
        sdf = self._sdf.repartition(*req.keys) if req.keys else self._sdf.repartition(1)
        sdf = sdf.sortWithinPartitions(*req.keys, req.timestamp)
        return sdf.mapInArrow(_mapper(req, string), ddl)

    def plot(self, *args: Any, **kwargs: Any) -> Any:
        raise BadArgument("Plot a Spark DataFrame after collecting a few series: sdf.toPandas().anomaly.plot(...).")


def detect(sdf: Any, value: str | Sequence[str] = "value", timestamp: str = "timestamp",
           by: str | Sequence[str] | None = None, **parameters: Any) -> Any:
    """Entire-series detection of every series of a Spark DataFrame: the rows plus the result columns.

    Arguments and result columns as :meth:`ad_pipeline.frames.methods.AnomalyMethods.detect` (the pandas
    accessor), except that ``timestamp`` is required (a Spark DataFrame has no row order). Returns
    a Spark DataFrame (lazy: nothing runs before an action).
    """
    return _SparkMethods(sdf).detect(value, timestamp, by, **parameters)


def detect_last(sdf: Any, value: str | Sequence[str] = "value", timestamp: str = "timestamp",
                by: str | Sequence[str] | None = None, **parameters: Any) -> Any:
    """Last-point detection: one row per series (keys, newest timestamp, values, result columns).

    As :meth:`ad_pipeline.frames.methods.AnomalyMethods.detect_last`; rows come in no particular order.
    """
    return _SparkMethods(sdf).detect_last(value, timestamp, by, **parameters)


def change_points(sdf: Any, value: str | Sequence[str] = "value", timestamp: str = "timestamp",
                  by: str | Sequence[str] | None = None, **parameters: Any) -> Any:
    """Change-point detection: the rows plus ``is_change_point`` and ``change_point_confidence``.

    As :meth:`ad_pipeline.frames.methods.AnomalyMethods.change_points`.
    """
    return _SparkMethods(sdf).change_points(value, timestamp, by, **parameters)


_METHODS = {"detect": "detect", "last": "detect_last", "change_points": "change_points"}


def output_schema(sdf: Any, kind: str = "detect", value: str | Sequence[str] = "value",
                  timestamp: str = "timestamp", by: str | Sequence[str] | None = None, **parameters: Any) -> str:
    """The output schema of :func:`detect` (``kind="detect"``), :func:`detect_last` (``"last"``) or
    :func:`change_points` (``"change_points"``) on ``sdf`` as a Spark DDL string.

    Only the schema of ``sdf`` is read: e.g. ``ddl = output_schema(sdf, "last", by="host")`` to
    create the target table before a job writes to it.
    """
    if kind not in _METHODS:
        raise BadArgument(f"The 'kind' argument must be one of {', '.join(_METHODS)}, got {kind!r}.")
    return str(getattr(_SparkMethods(sdf, ddl=True), _METHODS[kind])(value, timestamp, by, **parameters))


# --------------------------------------------------------------------------- tabular scoring


def score_outliers(sdf: Any, model: TabularDetector, *, top: int = 3) -> Any:
    """Score the rows of a Spark DataFrame with a fitted :class:`~ad_pipeline.TabularDetector`.

    Adds ``anomaly`` (double, < 0 = anomalous), ``is_anomaly`` (boolean) and, unless ``top=0``,
    ``anomaly_top_features`` (``array<struct<feature: string, contribution: double>>``), as
    :meth:`df.anomaly.score_outliers <ad_pipeline.frames.tabular.score_outliers>` does for
    pandas. Each Arrow batch is scored in one call; rows stay where they are (no shuffle).
    """
    from .frames.tabular import (
        SCORE_COLUMNS,
        arrow_to_columns,
        check_model,
        model_scores,
        top_features_arrow,
    )

    if not isinstance(top, int) or isinstance(top, bool) or top < 0:
        raise BadArgument(f"The 'top' field must be a non-negative integer, got {top!r}.")
    check_model(model, list(sdf.columns))
    added = {
        "anomaly": "double",
        "is_anomaly": "boolean",
        "anomaly_top_features": "array<struct<feature:string,contribution:double>>",
    }
    added = {c: added[c] for c in SCORE_COLUMNS[: 3 if top else 2]}
    fields = [(f.name, f.dataType.simpleString()) for f in sdf.schema.fields if f.name not in added]
    keep = [n for n, _ in fields]
    features = list(model.feature_names_in_)

    def score_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            table = pa.Table.from_batches([batch])
            anomaly, explanation = model_scores(model, arrow_to_columns(table, features), top)
            out = table.select(keep)
            out = out.append_column("anomaly", pa.array(anomaly, type=pa.float64()))
            out = out.append_column("is_anomaly", pa.array(anomaly < 0))
            if explanation is not None:
                out = out.append_column("anomaly_top_features", top_features_arrow(explanation))
            yield from out.to_batches()

    return sdf.mapInArrow(score_batches, _ddl(fields + list(added.items())))
