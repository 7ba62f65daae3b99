"""The Airflow environment of the test session, set when this module is first imported.

Airflow reads its configuration when first imported, so every test module that imports Airflow
imports this module first (tests/airflow/conftest.py, tests/tabular, the contract suite): a
temporary ``AIRFLOW_HOME`` with a SQLite metadata database and ``dags/`` of the repository as the
DAGs folder, removed at exit.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOME = Path(tempfile.mkdtemp(prefix="ad_airflow_home_"))
AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow.db'}",
    "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(HOME / "logs"),
    "AD_PIPELINE_DEMO_DUCKDB": str(HOME / "demo.duckdb"),
    # the in-process execution API validates tokens with this secret (generated once otherwise,
    # which does not happen when operators ran outside a task runner first)
    "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
}
os.environ.update(AIRFLOW_ENV)
atexit.register(shutil.rmtree, HOME, ignore_errors=True)
