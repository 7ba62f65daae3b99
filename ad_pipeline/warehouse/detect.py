"""Detection of one chunk of whole series read from the warehouse: ONE engine batch call per chunk.

A chunk is an Arrow table sorted by key and timestamp (the key columns, the timestamp, then one
float column per value column). Its conversion to the engine's flat values + offsets and back is
:mod:`ad_pipeline.arrow`'s and :mod:`ad_pipeline.engine.layout`'s (shared with the DataFrame adapters);
this builds the Arrow table of rows to write and keeps the scan's counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..arrow import column_to_arrow, run_offsets, timestamps
from ..engine.layout import Column, FrameData, Layout, run_change_points, run_detect, run_last
from ..engine.result import COLUMN_BY_NAME
from .spec import MAX_ERRORS_REPORTED, Bounds, ScanSpec, ScanSummary, key_value, result_columns


def _frame(spec: ScanSpec, ts: np.ndarray, values: dict[str, np.ndarray], offsets: np.ndarray,
           key_of_row: Callable[[int], Any]) -> FrameData:
    """The chunk as the frame-free helpers take it; rows are already in key/timestamp order."""
    return FrameData(
        n_rows=len(ts), codes=None, timestamps=ts, values=values, key_of_row=key_of_row,
        prefixed=len(spec.values) > 1, layout=Layout(len(ts), None, offsets, ts),
    )


def _arrow(col: Column, name: str, rows: np.ndarray | slice | None = None) -> pa.Array:
    """Result column ``name`` (``col`` may carry a value-column prefix) as written: NULL where the series
    was invalid, for NaN and negative counts."""
    return column_to_arrow(col, COLUMN_BY_NAME[name].kind, rows)


def detect_chunk(
    spec: ScanSpec, tbl: pa.Table, bounds: Bounds, detected_at: dt.datetime, summary: ScanSummary
) -> pa.Table:
    """Detect every series of a chunk (sorted by key, timestamp) with ONE engine batch call."""
    nk, nv = len(spec.keys), len(spec.values)
    offs = run_offsets(tbl, list(range(nk)))
    n_series = len(offs) - 1
    key_cols = [tbl.column(j) for j in range(nk)]
    ts = timestamps(tbl.column(nk))
    values = {
        v: np.asarray(tbl.column(nk + 1 + i).to_numpy(zero_copy_only=False), dtype=np.float64)
        for i, v in enumerate(spec.values)
    }

    def key_at(row: int) -> tuple[Any, ...]:
        return tuple(c[int(row)].as_py() for c in key_cols)

    def key_of_row(row: int) -> Any:
        key = key_at(row)
        return key[0] if nk == 1 else key

    summary.series += nv * n_series
    if spec.kind == "last":
        return _detect_last_chunk(spec, tbl, ts, values, offs, key_at, key_of_row, bounds, detected_at, summary)

    data = _frame(spec, ts, values, offs, key_of_row)
    if spec.kind == "entire":
        cols = {c.name: c for c in run_detect(data, errors="coerce", **spec.params)}
    else:
        cols = {c.name: c for c in run_change_points(data, errors="coerce", **spec.params)}
    starts = offs[:-1]
    _report_invalids(spec, summary, cols, starts, key_at)
    rows = np.flatnonzero(np.ones(len(ts), dtype=bool) if bounds.write_start64 is None else ts >= bounds.write_start64)
    out, _ = _rows_out(spec, tbl, values, cols, rows, rows, summary)
    return _with_meta(out, spec.run_id, detected_at)


def _report_invalids(spec: ScanSpec, summary: ScanSummary, cols: dict[str, Column], rows: np.ndarray,
                     key_at: Callable[[int], tuple[Any, ...]]) -> None:
    """Report each invalid series (one result row per series in ``rows``: its first row, or its newest)."""
    for vcol in spec.values:
        pre = f"{vcol}_" if len(spec.values) > 1 else ""
        code, msg = cols[pre + "anomaly_error_code"], cols[pre + "anomaly_error"]
        for r in rows[code.mask[rows]] if code.mask is not None else []:
            _report_invalid(spec, summary, key_at(r), vcol, code.values[r], msg.values[r])


def _rows_out(spec: ScanSpec, tbl: pa.Table, values: dict[str, np.ndarray], cols: dict[str, Column],
              res_rows: np.ndarray, tbl_rows: np.ndarray, summary: ScanSummary) -> tuple[pa.Table, list[pa.Array]]:
    """The rows to write: the keys and timestamp of the chunk's ``tbl_rows`` with each value column's results at
    ``res_rows`` (side by side and prefixed for write-back; one block of rows per value column, with
    ``metric`` and ``value``, for a results table). Counts points and flags into ``summary``; returns the
    table and each value column's flags."""
    nk, nv = len(spec.keys), len(spec.values)
    flag = "is_change_point" if spec.kind == "change_points" else "is_anomaly"
    take = pa.array(tbl_rows)
    base = {spec.keys[j]: tbl.column(j).take(take) for j in range(nk)}
    base[spec.timestamp] = tbl.column(nk).take(take)
    names = [name for name, _ in result_columns(spec.kind)]
    parts, side_by_side, flags = [], {}, []
    for vcol in spec.values:
        pre = f"{vcol}_" if nv > 1 else ""
        result = {n: _arrow(cols[pre + n], n, res_rows) for n in names}
        flags.append(result[flag])
        summary.points += len(res_rows)
        summary.anomalies += int(pc.sum(result[flag]).as_py() or 0)
        if spec.write_back:
            side_by_side.update({pre + n: a for n, a in result.items()})
        else:
            t = dict(base)
            if nv > 1:
                t["metric"] = pa.repeat(pa.scalar(vcol), len(tbl_rows))
            v = values[vcol][tbl_rows]
            t["value"] = pa.array(v, mask=np.isnan(v))
            parts.append(pa.table({**t, **result}))
    return (pa.table({**base, **side_by_side}) if spec.write_back else pa.concat_tables(parts)), flags


def _report_invalid(spec: ScanSpec, summary: ScanSummary, key: tuple[Any, ...], vcol: str, code: Any, msg: Any) -> None:
    summary.invalid_count += 1
    if len(summary.invalid) < MAX_ERRORS_REPORTED:
        entry = {"key": key_value(key), "code": code, "message": msg}
        if len(spec.values) > 1:
            entry["value"] = vcol
        summary.invalid.append(entry)


def _detect_last_chunk(
    spec: ScanSpec,
    tbl: pa.Table,
    ts: np.ndarray,
    values: dict[str, np.ndarray],
    offs: np.ndarray,
    key_at: Callable[[int], tuple[Any, ...]],
    key_of_row: Callable[[int], Any],
    bounds: Bounds,
    detected_at: dt.datetime,
    summary: ScanSummary,
) -> pa.Table:
    """The newest point of each series, judged from its last ``window`` points (``"suggested"``: its
    ``suggested_window``, the longest among several value columns) in ONE engine call."""
    data = _frame(spec, ts, values, offs, key_of_row)
    newest, cols = run_last(data, errors="coerce", window=spec.last_window, **spec.params)  # rows of the chunk
    by = {c.name: c for c in cols}
    _report_invalids(spec, summary, by, np.arange(len(newest)), lambda s: key_at(newest[s]))
    in_window = np.ones(len(newest), dtype=bool)
    if bounds.write_start64 is not None:
        in_window = ts[newest] >= bounds.write_start64
    summary.stale_series += int(len(spec.values) * np.count_nonzero(~in_window))
    sel = np.flatnonzero(in_window)
    out, flags = _rows_out(spec, tbl, values, by, sel, newest[sel], summary)
    anomalous = np.zeros(len(sel), dtype=bool)
    for f in flags:
        anomalous |= np.asarray(f.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    summary.anomalous_keys.extend(key_value(key_at(newest[s])) for s in sel[anomalous])
    return _with_meta(out, spec.run_id, detected_at)


def _with_meta(out: pa.Table, run_id: str, detected_at: dt.datetime) -> pa.Table:
    n = out.num_rows
    out = out.append_column("run_id", pa.repeat(pa.scalar(run_id, pa.string()), n))
    return out.append_column("detected_at", pa.repeat(pa.scalar(detected_at, pa.timestamp("us", tz="UTC")), n))
