"""Importing ad_pipeline stays light: no DataFrame, database, workflow or plotting library."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import ad_pipeline

HEAVY = ("pandas", "polars", "duckdb", "pyarrow", "airflow", "sklearn", "matplotlib", "fastapi")
# The engine sees arrays only: these never appear in its source, not even imported lazily.
# (scikit-learn, matplotlib and fastapi may be imported inside a function of an optional feature,
# e.g. TabularDetector.fit and the [tabular] extra, but never when a module is imported.)
NEVER_IN_ENGINE = ("pandas", "polars", "duckdb", "pyarrow", "airflow")
ENGINE = Path(ad_pipeline.__file__).resolve().parent / "engine"


def test_fresh_import_loads_no_heavy_library() -> None:
    code = (
        "import sys, json\n"
        "import ad_pipeline\n"
        "import ad_pipeline.errors\n"
        "import numpy as np\n"
        "ad_pipeline.detect_entire(np.tile([1.0, 2.0, 3.0, 2.0], 6))\n"
        "ad_pipeline.detect_change_points(np.r_[np.zeros(20), np.ones(20)])\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == [], f"importing ad_pipeline loaded {loaded}"


def _imported_modules(path: Path, *, top_level: bool = False) -> set[str]:
    """Top-level package names a file imports (``top_level``: only when the module is imported)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    nodes = _module_level(tree) if top_level else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                names.add(node.args[0].value.split(".")[0])
    return names


def _module_level(tree: ast.Module):  # type: ignore[no-untyped-def]
    """Nodes executed on import: everything outside function bodies (classes and ifs included)."""
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))


ENGINE_FILES = sorted(ENGINE.rglob("*.py"))


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: str(p.relative_to(ENGINE)))
def test_engine_source_never_imports_data_libraries(path: Path) -> None:
    heavy = _imported_modules(path) & set(NEVER_IN_ENGINE)
    assert not heavy, f"{path.relative_to(ENGINE.parent)} imports {sorted(heavy)}"


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: str(p.relative_to(ENGINE)))
def test_engine_modules_import_no_heavy_library_when_loaded(path: Path) -> None:
    heavy = _imported_modules(path, top_level=True) & set(HEAVY)
    assert not heavy, f"{path.relative_to(ENGINE.parent)} imports {sorted(heavy)} at module level"


def test_source_check_sees_every_import_form(tmp_path: Path) -> None:
    assert len(ENGINE_FILES) >= 5
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import numpy as np\nimport pandas.api as pa\nfrom polars import col\nfrom . import sibling\n"
        "def f():\n    import duckdb\n    importlib.import_module('pyarrow.compute')\n",
        encoding="utf-8",
    )
    assert _imported_modules(probe) & set(HEAVY) == {"pandas", "polars", "duckdb", "pyarrow"}
    assert _imported_modules(probe, top_level=True) & set(HEAVY) == {"pandas", "polars"}
