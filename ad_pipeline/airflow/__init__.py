"""Airflow provider of ad_pipeline: operators that scan warehouse tables for anomalies.

Importing this package imports nothing heavy: Airflow calls :func:`get_provider_info` through the
``apache_airflow_provider`` entry point, and the operators live in
:mod:`ad_pipeline.airflow.operators` (imported when used).

>>> get_provider_info()["package-name"]
'ad-pipeline-anomaly'
"""

from __future__ import annotations

from typing import Any

from ..errors import DISTRIBUTION

__all__ = ["get_provider_info", "AnomalyDetectionOperator", "LastPointAnomalyOperator", "ChangePointOperator",
           "TabularAnomalyOperator"]

_OPERATORS = ("AnomalyDetectionOperator", "LastPointAnomalyOperator", "ChangePointOperator")


def get_provider_info() -> dict[str, Any]:
    """The provider's metadata as Airflow's provider manager expects it (a plain dict).

    Examples
    --------
    >>> info = get_provider_info()
    >>> info["operators"][0]["python-modules"]
    ['ad_pipeline.airflow.operators', 'ad_pipeline.airflow.tabular']
    """
    return {
        "package-name": DISTRIBUTION,
        "name": "ad_pipeline",
        "description": "Time-series anomaly detection (Azure Anomaly Detector compatible) over SQL tables.",
        "versions": ["0.1.0"],
        "integrations": [
            {
                "integration-name": "ad_pipeline",
                "external-doc-url": "https://github.com/ad-pipeline/ad_pipeline/blob/main/docs/airflow.md",
                "tags": ["software"],
            }
        ],
        "operators": [
            {
                "integration-name": "ad_pipeline",
                "python-modules": ["ad_pipeline.airflow.operators", "ad_pipeline.airflow.tabular"],
            }
        ],
    }


def __getattr__(name: str) -> Any:  # lazy: `from ad_pipeline.airflow import AnomalyDetectionOperator`
    if name in _OPERATORS:
        from . import operators

        return getattr(operators, name)
    if name == "TabularAnomalyOperator":  # tabular anomalies, see ad_pipeline/airflow/tabular.py
        from .tabular import TabularAnomalyOperator

        return TabularAnomalyOperator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
