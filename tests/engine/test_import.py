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


# --------------------------------------------------------------------------- what the engine imports

PACKAGE = Path(ad_pipeline.__file__).resolve().parent
ALLOWED_ABOVE_ENGINE = {"ad_pipeline.errors"}  # the only module above the engine it may import


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Ids of the nodes under ``if TYPE_CHECKING:`` (never executed)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                out.update(id(n) for n in ast.walk(child))
    return out


def _package_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every ad_pipeline module the file ``path`` imports."""
    return _resolved_imports(path.read_text(encoding="utf-8"), _module_name(path), path.name == "__init__.py")


def _resolved_imports(source: str, name: str, is_package: bool) -> list[tuple[int, str]]:
    """``(line, module)`` of every ad_pipeline module the module ``name`` imports, relative forms resolved.

    ``from . import x`` names the module ``x`` when it is one, else the package; imports under
    ``if TYPE_CHECKING:`` are left out (they never run).
    """
    package = name if is_package else name.rpartition(".")[0]
    tree = ast.parse(source)
    skip = _type_checking_only(tree)
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "ad_pipeline"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "ad_pipeline":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.append((node.lineno, sub if sub in MODULES else target))
    return out


def _outside_engine(imports: list[tuple[int, str]]) -> list[str]:
    return [
        f"line {line}: {module}"
        for line, module in imports
        if not (module == "ad_pipeline.engine" or module.startswith("ad_pipeline.engine."))
        and module not in ALLOWED_ABOVE_ENGINE
    ]


@pytest.mark.parametrize(
    "path",
    ENGINE_FILES,
    ids=lambda p: str(p.relative_to(ENGINE)),
)
def test_engine_imports_nothing_above_it_but_errors(path: Path) -> None:
    bad = _outside_engine(_package_imports(path))
    assert not bad, f"{path.relative_to(PACKAGE)} imports above the engine: {bad}"


def test_upward_import_check_resolves_relative_imports() -> None:
    probe = (
        "from ...errors import BadArgument\nfrom .. import params\nfrom ... import duckdb\n"
        "from ..._frames import run_detect\nimport ad_pipeline.cli\nfrom . import stl\n"
        "def f():\n    from ... import __version__\n"
        "if TYPE_CHECKING:\n    from ...spark import x\n"
    )
    imports = _resolved_imports(probe, "ad_pipeline.engine.azure.probe", is_package=False)
    assert (2, "ad_pipeline.engine.params") in imports and (6, "ad_pipeline.engine.azure.stl") in imports
    assert _outside_engine(imports) == [
        "line 3: ad_pipeline.duckdb", "line 4: ad_pipeline._frames", "line 5: ad_pipeline.cli", "line 8: ad_pipeline",
    ]  # fmt: skip


# --------------------------------------------------------------------------- import circles


def _import_graph() -> dict[str, set[str]]:
    return {
        name: {m for _, m in _package_imports(path) if m in MODULES and m != name} for name, path in MODULES.items()
    }


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_circle_finder_finds_circles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"f"}, "f": {"e"}, "g": set()}
    assert _circles(graph) == [["a", "b", "c"], ["e", "f"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_among_ad_pipeline_modules() -> None:
    circles = _circles(_import_graph())
    assert circles == [], f"import circles (function-level imports included): {circles}"
