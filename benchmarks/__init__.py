"""Benchmark scripts that print figures (they assert nothing).

Run each one from the repository root as a module, ``python -m benchmarks.<name> [args]`` (e.g.
``.venv/bin/python -m benchmarks.golden``), so that ``benchmarks`` and ``tests.support`` (the shared
PostgreSQL server) import as packages, without any ``sys.path`` edits.
"""
