"""Every package of the source tree ships in the wheel (pyproject lists packages explicitly); every
`pip install` line of the docs names our distribution."""

from __future__ import annotations

import re
import shlex
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


# --------------------------------------------------------------------------- the distribution name

# what a `pip install` line of the docs may name besides this project: tools and Azure's own SDK
OTHER_PACKAGES = {"uv", "azure-ai-anomalydetector"}
PIP_INSTALL = re.compile(r"pip install ((?:[^`\n#;&|)]|\\\n)+)")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_install_requirements(text: str) -> list[str]:
    """The requirement arguments of every ``pip install`` command in ``text`` (options and paths dropped)."""
    found = []
    for m in PIP_INSTALL.finditer(text):
        args = shlex.split(m.group(1).replace("\\\n", " "))
        skip_next = False
        for arg in args:
            if skip_next:
                skip_next = False
            elif arg in ("-r", "--requirement", "--python", "-c", "--constraint", "-e", "--editable"):
                skip_next = arg not in ("-e", "--editable")
            elif not arg.startswith("-") and arg not in (".", "./"):
                found.append(arg)
    return found


def test_pip_install_lines_name_our_distribution() -> None:
    from ad_pipeline.errors import DISTRIBUTION

    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"] == DISTRIBUTION
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    ours = 0
    for path in docs:
        for req in pip_install_requirements(path.read_text()):
            name = _normalize(re.split(r"[\[<>=!~ ]", req, maxsplit=1)[0])
            assert name == DISTRIBUTION or name in OTHER_PACKAGES, f"{path.name}: pip install {req!r}"
            ours += name == DISTRIBUTION
    assert ours >= 5, f"only {ours} install lines of {DISTRIBUTION} in README and docs/"


def test_the_install_line_check_catches_a_foreign_name() -> None:
    text = "```bash\npip install 'ad_pipeline[server]'   # FastAPI\n```\nuv pip install --python x -r req.txt -e ."
    assert pip_install_requirements(text) == ["ad_pipeline[server]"]


def test_missing_dependency_names_our_distribution() -> None:
    from ad_pipeline.errors import DISTRIBUTION, MissingDependency

    assert f"pip install '{DISTRIBUTION}[duckdb]'" in MissingDependency.for_extra("duckdb", "duckdb").message
