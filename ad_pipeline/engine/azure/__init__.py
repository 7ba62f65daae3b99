"""The Azure-compatible model (``method="azure"``): a re-implementation of the retired Azure
Anomaly Detector's univariate model, written from ``AZURE_API.md`` and ``AZURE_ALGORITHM.md``.

Files, one idea each: ``period`` (period detection), ``impute`` (fill modes), ``seasonal``
(STL path), ``esd`` (ESD, Z test, merge), ``sr`` (Spectral Residual), ``spline`` and ``dynamic``
(spline-trend path), ``difference`` (non-stationary differencing), ``margins`` (V1, V2/V3),
``detect`` (model selection, entire and last mode). Azure request bodies are read by
:mod:`ad_pipeline.rest.request`.

>>> import numpy as np
>>> from ad_pipeline.engine.azure import AZURE
>>> hasattr(AZURE, "entire") and hasattr(AZURE, "last")
True
"""

from __future__ import annotations

from collections.abc import Sequence

from ...errors import AnomalyDetectorError
from ..model import EntireOutput, GridSeries, LastOutput
from .detect import detect_many


class AzureModel:
    """The Model interface (:mod:`ad_pipeline.engine.model`) over the Azure pipeline."""

    def entire(self, batch: Sequence[GridSeries]) -> list[EntireOutput | AnomalyDetectorError]:
        return detect_many(batch, last=False)  # type: ignore[return-value]

    def last(self, batch: Sequence[GridSeries]) -> list[LastOutput | AnomalyDetectorError]:
        return detect_many(batch, last=True)  # type: ignore[return-value]


AZURE = AzureModel()

__all__ = ["AZURE", "AzureModel"]
