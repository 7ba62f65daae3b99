"""Every door spells the model parameters as params.py's table does (and the result columns as result.py's).

The table (:data:`ad_pipeline.engine.params.PARAMS`) is the one place a parameter is declared; each
door keeps an explicit signature for its readers and is held against the table here: the engine's
single and batch functions, the pandas accessor and polars namespaces, the Airflow operators, the
CLI flags, the REST (OpenAPI) request models, the SQL macros and the numpydoc parameter blocks.
Doors are reached through public objects only, so the tests survive module moves.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from importlib import resources
from typing import Any

import pytest

import ad_pipeline as ad
from ad_pipeline.engine.params import PARAMS, Param, params_for
from ad_pipeline.engine.result import COLUMN_BY_NAME, columns_for

JOBS = ("entire", "last", "change_points")
# a door's method name -> the job whose parameters it takes
METHOD_JOBS = {"detect": "entire", "detect_last": "last", "change_points": "change_points"}


def _signature_mismatches(fn: Callable[..., Any], job: str, *, annotation: Callable[[Param], str] | None) -> list[str]:
    """How ``fn``'s signature differs from the table of ``job``: names, keyword-only, defaults, annotations."""
    params = inspect.signature(fn).parameters
    out = []
    for p in params_for(job):
        got = params.get(p.name)
        if got is None:
            out.append(f"{p.name} missing")
            continue
        if got.kind is not inspect.Parameter.KEYWORD_ONLY:
            out.append(f"{p.name} is {got.kind.description}, not keyword-only")
        if got.default != p.default or type(got.default) is not type(p.default):
            out.append(f"{p.name} default {got.default!r}, table {p.default!r}")
        if annotation is not None and got.annotation != annotation(p):
            out.append(f"{p.name} annotated {got.annotation!r}, table {annotation(p)!r}")
    others = set(params) - {p.name for p in params_for(job)}
    strays = [n for n in others if n in {p.name for p in PARAMS}]
    out += [f"{n} belongs to another job" for n in strays]
    return out


def _doc_entries(doc: str | None) -> dict[str, tuple[str, str]]:
    """``{name: (type, description)}`` of the numpydoc ``Parameters`` block of ``doc``."""
    lines = inspect.cleandoc(doc or "").splitlines()
    try:
        start = next(i for i, s in enumerate(lines[:-1]) if s.strip() == "Parameters" and set(lines[i + 1]) == {"-"})
    except StopIteration:
        return {}
    out: dict[str, tuple[str, str]] = {}
    names: list[str] = []
    for i in range(start + 2, len(lines)):
        s = lines[i]
        if i + 1 < len(lines) and s.strip() and set(lines[i + 1].strip()) == {"-"}:
            break  # the next section
        if s and not s.startswith(" "):
            head, _, typ = s.partition(" : ")
            names = [n.strip() for n in head.split(",")]
            for n in names:
                out[n] = (typ.strip(), "")
        elif s.strip() and names:
            for n in names:
                out[n] = (out[n][0], (out[n][1] + " " + s.strip()).strip())
    return out


def _doc_mismatches(doc: str | None, job: str, *, per_series: bool = False) -> list[str]:
    entries = _doc_entries(doc)
    out = []
    for p in params_for(job):
        want_type = f"{p.per_series_annotation if per_series else p.annotation}, default {p.default!r}"
        if p.name not in entries:
            out.append(f"{p.name} not documented")
        elif entries[p.name] != (want_type, p.doc):
            out.append(f"{p.name} documented {entries[p.name]}, table {(want_type, p.doc)}")
    return out


# --------------------------------------------------------------------------- the table itself


def test_table_is_consistent() -> None:
    names = [p.name for p in PARAMS]
    assert len(set(names)) == len(names)
    assert len({p.azure for p in PARAMS}) == len(PARAMS)
    for p in PARAMS:
        assert p.jobs and p.jobs <= set(JOBS), p.name
        assert p.sql_type in ("VARCHAR", "INTEGER", "DOUBLE"), p.name
        # the JSON type, the SQL type and the annotation say the same
        kind = {"string": ("VARCHAR", "str"), "integer": ("INTEGER", "int"), "number": ("DOUBLE", "float")}
        sql, py = kind[p.json_schema["type"]]
        assert p.sql_type == sql and p.annotation.split(" | ")[0] == py, p.name
        assert p.azure[0].islower() and "_" not in p.azure
        assert p.doc.endswith(".") and "\n" not in p.doc
        # the default passes the table's own check
        p.check(p.default, {q.name: q.check(q.default, {}) for q in PARAMS[: PARAMS.index(p)] if q.name in
                            ("granularity", "impute_mode")})
    # entire and last detection take the same parameters
    assert params_for("entire") == params_for("last")


@pytest.mark.parametrize("p", PARAMS, ids=lambda p: p.name)
def test_json_schema_bounds_are_the_checks_bounds(p: Param) -> None:
    """The OpenAPI fragment accepts what the check accepts, at the edges (no drift like 0-99 vs 0-100)."""
    s = p.json_schema
    done = {"granularity": None, "impute_mode": "fixed"}
    probes: list[tuple[Any, bool]] = []
    if "minimum" in s:
        probes += [(s["minimum"], True), (s["minimum"] - (1 if s["type"] == "integer" else 1e-9), False)]
    if "maximum" in s:
        probes += [(s["maximum"], True), (s["maximum"] + 1e-9, False)]
    if "exclusiveMinimum" in s:
        probes += [(s["exclusiveMinimum"], False), (s["exclusiveMinimum"] + 1e-9, True)]
    if "exclusiveMaximum" in s:
        probes += [(s["exclusiveMaximum"], False), (s["exclusiveMaximum"] - 1e-9, True)]
    for value in s.get("enum", ()):
        probes.append((value, True))
    if "enum" in s:
        probes.append(("surely-not-a-choice", False))
    for value, ok in probes:
        if ok:
            p.check(value, done)
        else:
            with pytest.raises(ad.errors.AnomalyDetectorError, match=f"'{p.name}' field"):
                p.check(value, done)


# --------------------------------------------------------------------------- engine doors


@pytest.mark.parametrize("job", JOBS)
def test_engine_single_series_signatures(job: str) -> None:
    fn = {"entire": ad.detect_entire, "last": ad.detect_last, "change_points": ad.detect_change_points}[job]
    assert _signature_mismatches(fn, job, annotation=lambda p: p.annotation) == []
    assert _doc_mismatches(fn.__doc__, job) == []
    assert "values" in _doc_entries(fn.__doc__) and "timestamps" in _doc_entries(fn.__doc__)


@pytest.mark.parametrize("job", JOBS)
def test_engine_batch_signatures(job: str) -> None:
    fn = {"entire": ad.detect_entire_batch, "last": ad.detect_last_batch,
          "change_points": ad.detect_change_points_batch}[job]  # fmt: skip
    assert _signature_mismatches(fn, job, annotation=lambda p: p.per_series_annotation) == []
    assert _doc_mismatches(fn.__doc__, job, per_series=True) == []
    assert {"values", "offsets", "timestamps", "errors", "keys"} <= set(_doc_entries(fn.__doc__))


def test_forwards_refuses_a_door_that_drifts() -> None:
    from ad_pipeline.engine.params import forwards

    def impl(*, params: dict[str, Any]) -> dict[str, Any]:
        return params

    kw = ", ".join(f"{p.name}: {p.annotation} = {p.default!r}" for p in params_for("change_points"))
    ns: dict[str, Any] = {}
    exec(f"def door(*, {kw}):\n    '''Door.'''\n", ns)  # the table's own signature: accepted
    door = forwards("change_points", impl)(ns["door"])
    assert door(threshold=0.9) == {**{p.name: p.default for p in params_for("change_points")}, "threshold": 0.9}
    with pytest.raises(ad.errors.BadArgument, match=r"Unknown parameter\(s\) \['treshold'\]"):
        door(treshold=0.9)
    for drift in (kw.replace("threshold: float | None = None", "threshold: float | None = 0.5"),
                  kw.replace(", threshold: float | None = None", ""),
                  kw.replace("threshold: float | None", "threshold: float")):  # fmt: skip
        exec(f"def door(*, {drift}):\n    '''Door.'''\n", ns)
        with pytest.raises(TypeError, match="threshold"):
            forwards("change_points", impl)(ns["door"])


# --------------------------------------------------------------------------- frame doors



def _frame_methods() -> list[Any]:
    try:  # collected at import: a missing extra leaves these doors out, not the whole module
        import pandas as pd
        import polars as pl
    except ImportError:
        return []
    doors = []
    for label, obj in (("pandas", pd.DataFrame({"v": [1.0]}).anomaly), ("polars", pl.DataFrame({"v": [1.0]}).anomaly),
                       ("polars lazy", pl.LazyFrame({"v": [1.0]}).anomaly)):  # fmt: skip
        for method, job in METHOD_JOBS.items():
            doors.append(pytest.param(getattr(obj, method), job, id=f"{label}.{method}"))
    return doors


@pytest.mark.parametrize(("method", "job"), _frame_methods())
def test_frame_method_signatures(method: Callable[..., Any], job: str) -> None:
    assert _signature_mismatches(method, job, annotation=lambda p: p.annotation) == []


@pytest.mark.parametrize(("method", "job"), _frame_methods())
def test_frame_method_docstrings(method: Callable[..., Any], job: str) -> None:
    assert _doc_mismatches(method.__doc__, job) == []


# --------------------------------------------------------------------------- Airflow operators

_AIRFLOW_PROBE = r"""
import inspect, json, sys
import ad_pipeline.airflow as af
out = {}
for name, job in (("AnomalyDetectionOperator", "entire"), ("LastPointAnomalyOperator", "last"),
                  ("ChangePointOperator", "change_points")):
    params, doc = {}, ""
    for cls in getattr(af, name).__mro__:  # follow **kwargs up the constructors
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        sig = inspect.signature(init)
        for p in sig.parameters.values():
            if p.kind is p.KEYWORD_ONLY and p.name not in params:
                params[p.name] = {"default": repr(p.default), "annotation": str(p.annotation)}
        if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            break
    out[name] = {"job": job, "params": params, "doc": getattr(af, name).__doc__}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def operators(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The operators' constructor parameters, read in a fresh interpreter with a throwaway AIRFLOW_HOME."""
    pytest.importorskip("airflow")
    home = tmp_path_factory.mktemp("airflow_home")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}"}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", _AIRFLOW_PROBE], capture_output=True, text=True, env=env,
                          timeout=300, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", ["AnomalyDetectionOperator", "LastPointAnomalyOperator", "ChangePointOperator"])
def test_operator_constructor_parameters(operators: dict[str, Any], name: str) -> None:
    op = operators[name]
    got = op["params"]
    bad = []
    for p in params_for(op["job"]):
        if p.name not in got:
            bad.append(f"{p.name} missing")
        elif got[p.name]["default"] != repr(p.default):
            bad.append(f"{p.name} default {got[p.name]['default']}, table {p.default!r}")
        elif got[p.name]["annotation"] != p.annotation:
            bad.append(f"{p.name} annotated {got[p.name]['annotation']}, table {p.annotation}")
    strays = set(got) & {p.name for p in PARAMS} - {p.name for p in params_for(op["job"])}
    assert bad == [] and not strays, (bad, strays)


@pytest.mark.parametrize("name", ["AnomalyDetectionOperator", "ChangePointOperator"])
def test_operator_docstrings(operators: dict[str, Any], name: str) -> None:
    assert _doc_mismatches(operators[name]["doc"], operators[name]["job"]) == []


# --------------------------------------------------------------------------- CLI flags


def _flag_groups(command: str) -> dict[str, argparse.Action]:
    """``{flag: action}`` of the model-parameter group of a CLI subcommand."""
    from ad_pipeline.cli import build_parser

    parser = build_parser([command])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    p = sub.choices[command]
    group = next(g for g in p._action_groups if g.title and "parameters" in g.title)
    return {s: a for a in group._group_actions for s in a.option_strings}


@pytest.mark.parametrize(("command", "job"), [("scan", "entire"), ("last", "last"), ("change-points", "change_points")])
def test_cli_flags(command: str, job: str) -> None:
    pytest.importorskip("duckdb")
    flags = _flag_groups(command)
    assert set(flags) == {p.flag for p in params_for(job)}
    for p in params_for(job):
        action = flags[p.flag]
        assert action.dest == p.name
        assert action.default is None  # an omitted flag leaves the engine's default
        want = {"str": None, "int": int, "float": float}[p.annotation.split(" | ")[0]]
        assert action.type in ((want,) if want else (None, str)), p.name


# --------------------------------------------------------------------------- REST (OpenAPI)


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    pytest.importorskip("fastapi")
    from ad_pipeline.rest import create_app

    return create_app(keys=None).openapi()["components"]["schemas"]


def _value_schema(prop: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of an optional property, without pydantic's title."""
    branches = [b for b in prop.get("anyOf", [prop]) if b.get("type") != "null"]
    assert len(branches) == 1, prop
    return {k: v for k, v in branches[0].items() if k not in ("title", "description", "default")}


@pytest.mark.parametrize(("model", "job"), [("DetectRequest", "entire"), ("ChangePointRequest", "change_points")])
def test_rest_request_models(openapi: dict[str, Any], model: str, job: str) -> None:
    props = openapi[model]["properties"]
    table = {p.azure: p for p in params_for(job)}
    assert set(table) <= set(props)
    strays = set(props) & {p.azure for p in PARAMS} - set(table)
    assert not strays
    for name, p in table.items():
        assert _value_schema(props[name]) == dict(p.json_schema), name
        assert props[name].get("default") is None  # absent = the engine's default
    if job == "entire":  # the drift issue 16 found: a number 0-100, as the engine checks
        assert _value_schema(props["sensitivity"]) == {"type": "number", "minimum": 0, "maximum": 100}


@pytest.mark.parametrize(("model", "job"), [("DetectRequest", "entire"), ("ChangePointRequest", "change_points")])
def test_rest_descriptions(openapi: dict[str, Any], model: str, job: str) -> None:
    # where an omitted REST field differs from the engine's default
    from ad_pipeline.rest.request import ABSENT

    props = openapi[model]["properties"]
    assert {p.azure: props[p.azure].get("description") for p in params_for(job)} == {
        p.azure: ABSENT[p.name][1] if p.name in ABSENT else p.doc for p in params_for(job)
    }


@pytest.mark.parametrize("job", ["entire", "last"])
def test_rest_responses_carry_the_result_columns(openapi: dict[str, Any], job: str) -> None:
    model = {"entire": "EntireResponse", "last": "LastResponse"}[job]
    want = {c.azure_name(job) for c in columns_for(job)} - {None}
    assert set(openapi[model]["properties"]) == want


# --------------------------------------------------------------------------- SQL macros

_MACRO = re.compile(r"CREATE\s+OR\s+REPLACE\s+TEMP\s+MACRO\s+(\w+)\s*\(", re.I)
_UDF_CALL = re.compile(r"__ad_(detect_entire|detect_last|change_points)\s*\(")


def _balanced(text: str, start: int) -> str:
    """The text between the parenthesis opened just before ``start`` and its match."""
    depth = 1
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    raise AssertionError("unbalanced parentheses")


def _split_top(args: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in args:
        depth += {"(": 1, ")": -1, "[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [*out, cur.strip()] if cur.strip() else out


def _macros() -> list[Any]:
    out = []
    for f in sorted(resources.files("ad_pipeline.sql").iterdir(), key=lambda f: f.name):
        if not f.name.endswith(".sql"):
            continue
        text = re.sub(r"--[^\n]*", "", f.read_text(encoding="utf-8"))
        starts = [m for m in _MACRO.finditer(text)]
        for k, m in enumerate(starts):
            if m.group(1).startswith("__"):
                continue  # helpers
            body_end = starts[k + 1].start() if k + 1 < len(starts) else len(text)
            out.append(pytest.param(m.group(1), text[m.end():body_end], _balanced(text, m.end()),
                                    id=f"{f.name}:{m.group(1)}"))  # fmt: skip
    return out


MACROS = _macros()


def test_every_public_macro_is_checked() -> None:
    assert {p.values[0] for p in MACROS} == {
        "anomaly_detect", "anomaly_detect_last", "anomaly_change_points",
        "anomaly_detect_list", "anomaly_detect_last_list", "anomaly_change_points_list",
    }  # fmt: skip


@pytest.mark.parametrize(("name", "body", "params"), MACROS)
def test_sql_macro_parameters(name: str, body: str, params: str) -> None:
    job = "change_points" if "change_points" in name else "last" if "last" in name else "entire"
    given = {}
    for item in _split_top(params):
        left, _, default = item.partition(":=")
        given[left.strip().strip('"')] = default.strip()
    table = [p.name for p in params_for(job)]
    # every table parameter, in table order, NULL by default (NULL = the engine's default)
    assert [n for n in given if n in {p.name for p in PARAMS}] == table
    assert all(given[n] == "NULL" for n in table)
    # and passed to the UDF in table order right after (values, timestamps, key)
    call = _UDF_CALL.search(body)
    assert call is not None and call.group(1) == {"entire": "detect_entire", "last": "detect_last",
                                                  "change_points": "change_points"}[job]  # fmt: skip
    args = _split_top(_balanced(body, call.end()))
    assert args[3 : 3 + len(table)] == table and args[3 + len(table)] == "errors"


@pytest.mark.parametrize(("udf", "job"), [("__ad_detect_entire", "entire"), ("__ad_detect_last", "last"),
                                         ("__ad_change_points", "change_points")])  # fmt: skip
def test_duckdb_udf_types_come_from_the_table(udf: str, job: str) -> None:
    duckdb = pytest.importorskip("duckdb")
    from ad_pipeline.duckdb import register

    con = register(duckdb.connect())
    (types,) = con.execute(
        "SELECT parameter_types FROM duckdb_functions() WHERE function_name = ?", [udf]
    ).fetchone()
    # (values, timestamps, key, <the table's parameters in table order>, errors), as registered
    assert types[3:-1] == [p.sql_type for p in params_for(job)]
    con.close()


# --------------------------------------------------------------------------- result columns


@pytest.mark.parametrize("job", JOBS)
def test_result_columns_are_the_result_attributes(job: str) -> None:
    import numpy as np

    x = np.tile([1.0, 2.0, 3.0, 2.0], 8)
    fn = {"entire": ad.detect_entire_batch, "last": ad.detect_last_batch,
          "change_points": ad.detect_change_points_batch}[job]  # fmt: skip
    res = fn(x, [0, len(x)], errors="coerce")
    for c in columns_for(job, errors=True):
        assert len(getattr(res, c.attribute_for(job))) == (1 if c.per_series or job == "last" else len(x)), c.name
    one = res.series(0).to_dict()
    # every Azure body carries the period; frames carry it as a column for detection only
    assert set(one) == {c.azure_name(job) for c in columns_for(job)} - {None} | {"period"}
    assert set(COLUMN_BY_NAME) == {c.name for j in JOBS for c in columns_for(j, errors=True)}


def test_the_checks_here_see_drift() -> None:
    def drifted(x: float, *, granularity: str | None = None, custom_interval: int = 1, period: int | None = None,
                stable_trend_window: int | None = None, sensitivity: float = 99) -> None:
        """Drifted.

        Parameters
        ----------
        granularity : str | None, default None
            Something else.
        """

    assert _signature_mismatches(drifted, "change_points", annotation=lambda p: p.annotation) == [
        "custom_interval default 1, table None",
        "custom_interval annotated 'int', table 'int | None'",
        "threshold missing",
        "sensitivity belongs to another job",
    ]
    assert [m.split(" ")[0] for m in _doc_mismatches(drifted.__doc__, "change_points")] == [
        "granularity", "custom_interval", "period", "stable_trend_window", "threshold",
    ]  # fmt: skip


@pytest.mark.parametrize("job", ["entire", "change_points"])
def test_checked_params_objects_have_the_table_fields(job: str) -> None:
    """SeriesParams / ChangePointParams (what the models read, typed) hold the table's parameters,
    and their defaults are the table defaults as checked."""
    from dataclasses import asdict, fields

    from ad_pipeline.engine.params import (
        ChangePointParams,
        SeriesParams,
        check_change_point_params,
        check_params,
    )

    cls, check = (SeriesParams, check_params) if job == "entire" else (ChangePointParams, check_change_point_params)
    assert [f.name for f in fields(cls)] == [p.name for p in params_for(job)]
    assert asdict(cls()) == asdict(check())
