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
        flag = "is_anomaly"
    else:
        cols = {c.name: c for c in run_change_points(data, errors="coerce", **spec.params)}
        flag = "is_change_point"
    keep = np.ones(len(ts), dtype=bool) if bounds.write_start64 is None else ts >= bounds.write_start64
    rows = np.flatnonzero(keep)
    starts = offs[:-1]
    base = {spec.keys[j]: key_cols[j].take(pa.array(rows)) for j in range(nk)}
    base[spec.timestamp] = tbl.column(nk).take(pa.array(rows))
    names = [name for name, _ in result_columns(spec.kind)]
    parts, side_by_side = [], {}
    for vcol in spec.values:
        pre = f"{vcol}_" if nv > 1 else ""
        code, msg = cols[pre + "anomaly_error_code"], cols[pre + "anomaly_error"]
        for s in np.flatnonzero(code.mask[starts]) if code.mask is not None else []:
            _report_invalid(spec, summary, key_at(starts[s]), vcol, code.values[starts[s]], msg.values[starts[s]])
        flags = _arrow(cols[pre + flag], flag, rows)
        summary.points += len(rows)
        summary.anomalies += int(pc.sum(flags).as_py() or 0)
        result = {n: _arrow(cols[pre + n], n, rows) for n in names}
        if spec.write_back:
            side_by_side.update({pre + n: a for n, a in result.items()})
        else:
            t = dict(base)
            if nv > 1:
                t["metric"] = pa.repeat(pa.scalar(vcol), len(rows))
            t["value"] = pa.array(values[vcol][rows], mask=np.isnan(values[vcol][rows]))
            parts.append(pa.table({**t, **result}))
    out = pa.table({**base, **side_by_side}) if spec.write_back else pa.concat_tables(parts)
    return _with_meta(out, spec.run_id, detected_at)


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
    nk, nv = len(spec.keys), len(spec.values)
    pre = {v: (f"{v}_" if nv > 1 else "") for v in spec.values}
    data = _frame(spec, ts, values, offs, key_of_row)
    newest, cols = run_last(data, errors="coerce", window=spec.last_window, **spec.params)  # rows of the chunk
    in_window = np.ones(len(newest), dtype=bool)
    if bounds.write_start64 is not None:
        in_window = ts[newest] >= bounds.write_start64
    summary.stale_series += int(nv * np.count_nonzero(~in_window))
    sel = np.flatnonzero(in_window)
    take = pa.array(newest[sel])
    by = {c.name: c for c in cols}
    base = {spec.keys[j]: tbl.column(j).take(take) for j in range(nk)}
    base[spec.timestamp] = tbl.column(nk).take(take)
    names = [name for name, _ in result_columns("last")]
    parts, side_by_side, anomalous = [], {}, np.zeros(len(newest), dtype=bool)
    for vcol in spec.values:
        code, msg = by[pre[vcol] + "anomaly_error_code"], by[pre[vcol] + "anomaly_error"]
        for s in np.flatnonzero(code.mask) if code.mask is not None else []:
            _report_invalid(spec, summary, key_at(newest[s]), vcol, code.values[s], msg.values[s])
        flags = by[pre[vcol] + "is_anomaly"]
        is_anom = flags.values.astype(bool) & (~flags.mask if flags.mask is not None else True)
        anomalous |= is_anom & in_window
        summary.points += len(sel)
        summary.anomalies += int(np.count_nonzero(is_anom[sel]))
        result = {n: _arrow(by[pre[vcol] + n], n, sel) for n in names}
        if spec.write_back:
            side_by_side.update({pre[vcol] + n: a for n, a in result.items()})
        else:
            v = values[vcol][newest[sel]]
            t = dict(base)
            if nv > 1:
                t["metric"] = pa.repeat(pa.scalar(vcol), len(sel))
            t["value"] = pa.array(v, mask=np.isnan(v))
            parts.append(pa.table({**t, **result}))
    summary.anomalous_keys.extend(key_value(key_at(newest[s])) for s in np.flatnonzero(anomalous))
    out = pa.table({**base, **side_by_side}) if spec.write_back else pa.concat_tables(parts)
    return _with_meta(out, spec.run_id, detected_at)


def _with_meta(out: pa.Table, run_id: str, detected_at: dt.datetime) -> pa.Table:
    n = out.num_rows
    out = out.append_column("run_id", pa.repeat(pa.scalar(run_id, pa.string()), n))
    return out.append_column("detected_at", pa.repeat(pa.scalar(detected_at, pa.timestamp("us", tz="UTC")), n))
