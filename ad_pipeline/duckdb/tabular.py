"""DuckDB side of tabular anomalies: score rows in SQL with a fitted :class:`TabularDetector`.

``register_model(con, "cardio_model", model)`` adds to the connection:

- ``cardio_model(x1, x2, ...) -> DOUBLE``: the ``anomaly`` score (``decision_function``; < 0 =
  anomalous), one argument per model feature in the fitted order (numeric features as DOUBLE,
  categorical ones as VARCHAR; NULL = missing);
- ``cardio_model_top_features(x1, x2, ..., top) -> STRUCT(feature VARCHAR, contribution DOUBLE)[]``:
  the ``top`` features of :meth:`TabularDetector.explain`;
- the table macro ``cardio_model_outliers(table_name, top := 3)``: every column of a table, view
  or file plus ``anomaly``, ``is_anomaly`` and ``anomaly_top_features`` (the model's feature
  columns are found by name).

Both functions are vectorized Arrow UDFs: DuckDB hands over a chunk of up to 2048 rows and the
UDF makes one engine call for the chunk. UDFs and temp macros live with the connection: call
``register_model`` on every new connection.

>>> import duckdb, numpy as np
>>> from ad_pipeline import TabularDetector
>>> from ad_pipeline.duckdb import register_model
>>> con = duckdb.connect()
>>> _ = con.execute("CREATE TABLE t AS SELECT i AS key, (i % 7)::DOUBLE AS a, (i % 5)::DOUBLE AS b "
...                 "FROM range(200) r(i)")
>>> _ = con.execute("UPDATE t SET a = 60 WHERE key = 13")
>>> model = TabularDetector(contamination=0.01).fit(con.sql("SELECT a, b FROM t").fetchnumpy())
>>> _ = register_model(con, "m", model)
>>> con.sql("SELECT key FROM t WHERE m(a, b) < 0 ORDER BY m(a, b) LIMIT 1").fetchall()
[(13,)]
>>> con.sql("SELECT key, is_anomaly FROM m_outliers('t') WHERE key = 13").fetchall()
[(13, True)]
"""

from __future__ import annotations

import inspect
import os
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BadArgument
from ..frames.tabular import arrow_column, top_features_arrow
from .common import quote_identifier, require_duckdb, require_pyarrow

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

    from ..engine.tabular import TabularDetector

__all__ = ["register_model"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOP_TYPE = "STRUCT(feature VARCHAR, contribution DOUBLE)[]"


def _columns(model: TabularDetector, args: tuple[Any, ...]) -> dict[str, np.ndarray]:
    return {
        str(name): arrow_column(a, kind == "numeric")
        for name, a, kind in zip(model.feature_names_in_, args, model._kinds, strict=True)
    }


def _signature(n: int) -> inspect.Signature:
    return inspect.Signature([inspect.Parameter(f"x{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(n)])


def register_model(
    con: duckdb.DuckDBPyConnection,
    name: str,
    model: TabularDetector | str | os.PathLike[str],
) -> duckdb.DuckDBPyConnection:
    """Register ``model`` (a fitted :class:`TabularDetector` or the path of a saved one) as SQL
    functions ``name(...)``, ``name_top_features(...)`` and the table macro ``name_outliers``.

    Registering the same name again replaces the functions. Returns ``con``.

    >>> import duckdb, numpy as np
    >>> from ad_pipeline import TabularDetector
    >>> con = duckdb.connect()
    >>> m = TabularDetector().fit({"x": np.r_[np.zeros(50), 9.0]})
    >>> register_model(con, "zero_model", m).sql("SELECT zero_model(9.0) < 0").fetchall()
    [(True,)]
    """
    # imported when used: `import ad_pipeline.duckdb` stays light (no numba kernels)
    from ..engine.tabular import TabularDetector

    require_duckdb()  # raise MissingDependency naming the extra when missing
    pa = require_pyarrow()
    if not isinstance(name, str) or not _NAME.match(name):
        raise BadArgument(f"The 'name' field must be a SQL identifier (letters, digits, _), got {name!r}.")
    if isinstance(model, str | os.PathLike):
        model = TabularDetector.load(model)
    if not isinstance(model, TabularDetector):
        raise BadArgument(f"The 'model' field must be a TabularDetector or a path, got {type(model).__name__}.")
    model._check_fitted()
    kinds = list(model._kinds)
    types = ["DOUBLE" if k == "numeric" else "VARCHAR" for k in kinds]
    d = len(types)

    def score(*args: Any) -> Any:
        return pa.array(model.decision_function(_columns(model, args)), type=pa.float64())

    def top_features(*args: Any) -> Any:
        top = args[d]
        top = top.combine_chunks() if hasattr(top, "combine_chunks") else top
        k = top[0].as_py() if len(top) else 3
        explanation = model.explain(_columns(model, args[:d]), top=3 if k is None else int(k))
        return top_features_arrow(explanation)

    # DuckDB counts the Python function's parameters: give the variadic functions a fixed signature
    score.__signature__ = _signature(d)  # type: ignore[attr-defined]
    top_features.__signature__ = _signature(d + 1)  # type: ignore[attr-defined]
    top_name = f"{name}_top_features"
    for fn_name, fn, params, ret in (
        (name, score, types, "DOUBLE"),
        (top_name, top_features, [*types, "INTEGER"], _TOP_TYPE),
    ):
        try:
            con.remove_function(fn_name)
        except Exception:  # noqa: BLE001 - not registered yet
            pass
        con.create_function(fn_name, fn, params, ret, type="arrow", null_handling="special")  # type: ignore[call-overload]

    cols = ", ".join(quote_identifier(str(f)) for f in model.feature_names_in_)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP MACRO {name}_outliers(table_name, top := 3) AS TABLE
        SELECT * EXCLUDE (anomaly_top_features), anomaly < 0 AS is_anomaly, anomaly_top_features
        FROM (
            SELECT *, {name}({cols}) AS anomaly, {top_name}({cols}, top) AS anomaly_top_features
            FROM query_table(table_name::VARCHAR)
        )
        """
    )
    return con
