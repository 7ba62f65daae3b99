"""PROVISIONAL placeholder of the Azure-compatible model (to be replaced by the faithful one)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...errors import AnomalyDetectorError
from ..model import EntireOutput, GridSeries, LastOutput


def _entire_one(gs: GridSeries) -> EntireOutput:
    x = gs.values.copy()
    miss = np.isnan(x)
    if miss.any():
        idx = np.arange(len(x))
        x[miss] = np.interp(idx[miss], idx[~miss], x[~miss])
    med = np.median(x)
    mad = np.median(np.abs(x - med)) / 0.6745 or np.std(x) or 1.0
    z = (x - med) / mad
    s = gs.params.sensitivity
    exp = np.full(len(x), med)
    margin = np.abs(exp) * (100 - s) / 100
    flag = (np.abs(z) > 3) & (np.abs(x - exp) > margin)
    k = int(np.ceil(len(x) * gs.params.max_anomaly_ratio))
    if flag.sum() > k:
        keep = np.argsort(-np.abs(z))[:k]
        f2 = np.zeros_like(flag)
        f2[keep] = True
        flag &= f2
    margin = np.where(~flag & (np.abs(x - exp) > margin), 1.01 * np.abs(x - exp), margin)
    return EntireOutput(
        period=0,
        expected=exp,
        upper_margin=margin,
        lower_margin=margin.copy(),
        is_anomaly=flag,
        is_positive=flag & (x > exp),
        is_negative=flag & (x < exp),
        severity=np.where(flag, np.minimum(np.abs(x - exp) / np.maximum(np.abs(exp), 1e-12), 1.0), 0.0),
    )


class _Azure:
    def entire(self, batch: Sequence[GridSeries]) -> list[EntireOutput | AnomalyDetectorError]:
        return [_entire_one(gs) for gs in batch]

    def last(self, batch: Sequence[GridSeries]) -> list[LastOutput | AnomalyDetectorError]:
        out: list[LastOutput | AnomalyDetectorError] = []
        for gs in batch:
            e = _entire_one(gs)
            out.append(
                LastOutput(
                    period=e.period,
                    suggested_window=len(gs.values),
                    expected=float(e.expected[-1]),
                    upper_margin=float(e.upper_margin[-1]),
                    lower_margin=float(e.lower_margin[-1]),
                    is_anomaly=bool(e.is_anomaly[-1]),
                    is_positive=bool(e.is_positive[-1]),
                    is_negative=bool(e.is_negative[-1]),
                    severity=float(e.severity[-1]),
                )
            )
        return out


AZURE = _Azure()
