"""Every package of the source tree ships in the wheel (pyproject lists packages explicitly)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_declared() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = set(config["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "ad_pipeline").rglob("__init__.py")
    } | {"ad_pipeline.sql"}
    assert on_disk == declared, f"missing in pyproject: {on_disk - declared}, stale: {declared - on_disk}"
    assert config["package-dir"]["ad_pipeline.sql"] == "sql"
    assert sorted(p.name for p in (ROOT / "sql").glob("*.sql")), "no SQL macros in sql/"


def test_sql_macros_are_readable_as_package_resources() -> None:
    from importlib.resources import files

    names = {p.name for p in files("ad_pipeline.sql").iterdir() if p.name.endswith(".sql")}
    assert names == {p.name for p in (ROOT / "sql").glob("*.sql")}
