"""The ``ad-pipeline`` command: scan every series of a DuckDB table (or CSV/Parquet file) and write the results.

::

    ad-pipeline demo                                   # build a demo warehouse, scan it, summarise
    ad-pipeline scan --db warehouse.duckdb --table metrics --key key --timestamp ts --value value \\
                     --into metrics_anomalies           # results table, replaced in one transaction
    ad-pipeline scan --input metrics.parquet --out anomalies.parquet
    ad-pipeline last ...  /  ad-pipeline change-points ...   # same options

The source is read in chunks of whole series (key ranges, ``--chunk-rows`` rows at most), so
memory stays bounded whatever the table size; each chunk goes to the engine as one batch.
Exit status: 0 done, 2 bad input (one line naming the problem: a missing column, a parameter
out of range, ...), 1 anything else. Subcommands live in :data:`COMMANDS` (name -> add_arguments,
run), so adding one is a few lines.

>>> main(["scan", "--input", "no/such/file.parquet", "--quiet"])
2
"""


from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import AnomalyDetectorError, BadArgument, MissingDependency
from ..warehouse import InputError

PROG = "ad-pipeline"
DEFAULT_CHUNK_ROWS = 1_000_000
KINDS = ("entire", "last", "change_points")  # what `scan`, `last` and `change-points` compute


@dataclass(frozen=True)
class Command:
    """One subcommand: its help line, its options and what it runs (returns the exit status)."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]



# --------------------------------------------------------------------------- options


def _add_source_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("source")
    src.add_argument("--db", help="DuckDB database file (read from --table; written with --into)")
    src.add_argument("--table", help="table or view to scan (in --db)")
    src.add_argument("--input", help="CSV or Parquet file to scan instead of --db/--table")
    src.add_argument(
        "--key",
        action="append",
        help="series key column (repeat for several; default: key)",
        metavar="COLUMN",
    )
    src.add_argument("--timestamp", default="ts", help="timestamp column (default: ts)", metavar="COLUMN")
    src.add_argument("--value", default="value", help="value column (default: value)", metavar="COLUMN")
    out = p.add_argument_group("output")
    out.add_argument(
        "--into", help="results table in --db, replaced atomically (one transaction)", metavar="TABLE"
    )
    out.add_argument(
        "--out", help="results file: .parquet or .csv (written to a temporary file, then renamed)"
    )
    out.add_argument("--plot", help="write PNGs of the most anomalous series to this folder", metavar="DIR")
    out.add_argument(
        "--plot-top", type=int, default=6, help="how many series --plot draws (default 6)", metavar="N"
    )
    run = p.add_argument_group("run")
    run.add_argument(
        "--errors",
        choices=("coerce", "raise"),
        default="coerce",
        help="coerce (default): an invalid series gets NULL results and anomaly_error_code/anomaly_error; "
        "raise: stop at the first invalid series",
    )
    run.add_argument(
        "--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS, help="rows read per chunk", metavar="N"
    )
    run.add_argument("--memory-limit", default="1GB", help="DuckDB memory limit (default 1GB)")



#: argparse type of each parameter's SQL type (engine/params.py's table)
_ARG_TYPES: dict[str, Callable[[str], Any]] = {"VARCHAR": str, "INTEGER": int, "DOUBLE": float}


def _add_parameters(p: argparse.ArgumentParser, kind: str) -> None:
    """One flag per parameter of the engine's table, its help the table's doc (default: the engine's)."""
    from ..engine.params import params_for

    what = "change-point" if kind == "change_points" else "detection"
    g = p.add_argument_group(f"{what} parameters (default: the engine's)")
    for prm in params_for(kind):
        g.add_argument(prm.flag, type=_ARG_TYPES[prm.sql_type], help=f"{prm.doc} (default: {prm.default})")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary (errors only)")
    p.add_argument("--traceback", action="store_true", help=argparse.SUPPRESS)


def _parameters(args: argparse.Namespace, kind: str) -> dict[str, Any]:
    """The parameters given on the command line (checked by the engine's table before any reading)."""
    from ..engine.params import check_change_point_params, check_params, params_for

    given = {p.name: getattr(args, p.name) for p in params_for(kind) if getattr(args, p.name, None) is not None}
    (check_change_point_params if kind == "change_points" else check_params)(**given)
    return given


# --------------------------------------------------------------------------- scan


def run_scan(args: argparse.Namespace, kind: str) -> int:
    """Scan every series of the source with ``kind`` and write/print the results."""
    from ..warehouse.local import Stats, detect_piece, make_plan, open_source, record, table_identity
    from ..warehouse.outputs import FileWriter, TableWriter
    from .report import plot_top_series, progress, summary

    params = _parameters(args, kind)  # a bad parameter fails before any reading
    for option in ("db", "table", "input", "into", "out", "plot", "timestamp", "value"):
        if getattr(args, option) is not None and not getattr(args, option).strip():
            raise InputError(f"--{option} must not be empty")
    if args.into and not args.db:
        raise InputError("--into needs --db (the database to write the results table into)")
    if args.plot_top < 0:
        raise InputError(f"--plot-top must be at least 0, got {args.plot_top}")
    if args.plot and os.path.exists(args.plot) and not os.path.isdir(args.plot):
        raise InputError(f"--plot {args.plot!r} is a file, not a folder")
    writer_file = FileWriter(args.out) if args.out else None
    src = open_source(args)
    started = time.perf_counter()
    writer_table = None
    ok = False
    try:
        if args.into and args.table and not args.input:
            # compare what the database resolves both names to: `metrics` is `main.metrics` is `demo.main.METRICS`
            if table_identity(src.con, args.into) == table_identity(src.con, args.table):
                raise InputError(
                    f"--into {args.into!r} would replace the table being scanned ({args.table!r}); choose another name"
                )
        plan = make_plan(src, kind, args.key or ["key"], args.timestamp, args.value, args.chunk_rows,
                         coerce=args.errors == "coerce")
        if plan.null_key_rows and not args.quiet:
            print(f"{PROG}: {plan.null_key_rows} row(s) with a NULL key skipped", file=sys.stderr)
        writers: list[Any] = [w for w in (writer_file,) if w is not None]
        if args.into:
            writer_table = TableWriter(src.con, args.into)
            writers.append(writer_table)
        stats = Stats()
        bar = progress(plan.n_series, args.quiet)
        try:
            for part, offsets, n_series in plan.pieces():
                result = detect_piece(kind, plan, part, offsets, args.errors, params)
                for w in writers:
                    w.write(result)
                record(stats, kind, result, offsets, args.plot_top if args.plot else 0)
                bar.update(n_series)
        finally:
            bar.close()
        ok = True
    finally:
        for w in (writer_file, writer_table):
            if w is not None:
                w.close(ok)
        src.con.close()
    elapsed = time.perf_counter() - started
    if args.plot:
        plot_top_series(stats, plan, kind, args.plot, args.quiet)
    if not args.quiet:
        print(summary(stats, kind, plan, elapsed, args))
    return 0



from .demo import add_demo_arguments, run_demo  # noqa: E402
from .demo import make_demo_table as make_demo_table  # noqa: E402  (tests, benchmarks and examples use it)

# --------------------------------------------------------------------------- command table and main


def _scan_command(kind: str, help: str) -> Command:
    def add(p: argparse.ArgumentParser) -> None:
        _add_source_arguments(p)
        _add_parameters(p, kind)

    return Command(help, add, lambda args: run_scan(args, kind))


def _serve_add(p: argparse.ArgumentParser) -> None:
    from ..rest.server import build_parser as serve_parser

    serve_parser(p)


def _serve_run(args: argparse.Namespace) -> int:
    from ..rest.server import serve

    return serve(args)


#: subcommand -> (help, add_arguments, run). Options are only built for the subcommand being run,
#: so a heavy one (serve imports FastAPI) costs nothing to the others.
COMMANDS: dict[str, Command] = {
    "scan": _scan_command("entire", "detect anomalies in every series (one result row per input row)"),
    "last": _scan_command("last", "is the newest point of every series anomalous (one row per series)"),
    "change-points": _scan_command("change_points", "find change points in every series"),
    "demo": Command("create a demo warehouse, scan it and summarise", add_demo_arguments,
                    lambda args: run_demo(args, scan=lambda argv: run_scan(build_parser(argv).parse_args(argv), "entire"))),
    "serve": Command("serve the Azure Anomaly Detector compatible REST API", _serve_add, _serve_run),
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; only the subcommand named in ``argv`` gets its options built."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Time-series anomaly detection over DuckDB tables and CSV/Parquet files.",
        epilog=f"example: {PROG} demo   |   {PROG} scan --db warehouse.duckdb --table metrics --into metrics_anomalies",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((a for a in (argv or []) if a in COMMANDS), None)
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help)
        if name == chosen:  # `ad-pipeline --help` imports no command's dependencies
            cmd.add_arguments(p)
            _add_common(p)
    return parser


#: how DuckDB wraps an exception raised inside one of our UDFs (the text timestamp reader)
_UDF_WRAPPER = "Python exception occurred while executing the UDF: "


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


#: the extra that brings each optional package a command imports
_EXTRA_OF = {"duckdb": "duckdb", "pyarrow": "duckdb", "tqdm": "duckdb", "fastapi": "server", "uvicorn": "server",
             "starlette": "server", "pydantic": "server", "matplotlib": "plot"}  # fmt: skip


def _missing_extra(exc: ImportError) -> MissingDependency | None:
    """The MissingDependency naming the extra to install, for an optional package that is absent."""
    if isinstance(exc, MissingDependency):
        return exc
    root = (exc.name or "").split(".")[0]
    return MissingDependency.for_extra(root, _EXTRA_OF[root]) if root in _EXTRA_OF else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ad-pipeline``; returns the exit status (0 done, 2 bad input, 1 other failure)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(argv).parse_args(argv)
    except ImportError as exc:  # the options of `serve` come from the server module
        missing = _missing_extra(exc)
        if missing is None:
            raise
        print(f"{PROG}: error: {missing.code}: {missing.message}", file=sys.stderr)
        return 2
    try:
        return COMMANDS[args.command].run(args)
    except ImportError as exc:
        missing = _missing_extra(exc)
        if missing is None or getattr(args, "traceback", False):
            raise
        print(f"{PROG}: error: {missing.code}: {missing.message}", file=sys.stderr)
        return 2
    except (InputError, AnomalyDetectorError) as exc:
        msg = f"{exc.code}: {exc.message}" if isinstance(exc, AnomalyDetectorError) else str(exc)
        print(f"{PROG}: error: {msg.splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the command line reports, it does not crash
        if getattr(args, "traceback", False):
            raise
        status = 2 if _is_input_error(exc) else 1
        line = _first_line(exc)
        if _UDF_WRAPPER in line:  # our own error raised inside a UDF: say it as ours
            print(f"{PROG}: error: {line.split(_UDF_WRAPPER, 1)[1]}", file=sys.stderr)
        else:
            print(f"{PROG}: error: {type(exc).__name__}: {line}", file=sys.stderr)
        return status


def _is_input_error(exc: BaseException) -> bool:
    """DuckDB errors caused by the input (unknown table, unreadable file, bad cast) exit with status 2."""
    try:
        import duckdb
    except ImportError:  # pragma: no cover
        return False
    return isinstance(
        exc,
        (duckdb.CatalogException, duckdb.BinderException, duckdb.ConversionException, duckdb.IOException,
         duckdb.ParserException, duckdb.InvalidInputException, duckdb.InvalidTypeException,
         duckdb.TypeMismatchException, BadArgument),
    )  # fmt: skip


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
