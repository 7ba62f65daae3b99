"""Tabular anomalies: quality on cardio and speed/memory on a large synthetic table.

Prints

1. cardio (Nexosis sample, 1,831 rows x 21 features, 176 labelled anomalies), fitted WITHOUT the
   ``target`` column, default parameters: ROC-AUC and average precision of ``-anomaly`` against
   ``target`` (issue bar: >= 0.90 and >= 0.50), ``percent_anomalies`` with ``contamination="auto"``
   and with each share asked for (bar: within 0.02);
2. with ``--seeds N``: the spread of ROC-AUC/AP over N seeds for a few ``n_estimators`` (how the
   default was chosen; see docs/tabular.md);
3. fit, score and explain throughput on ``--rows`` x ``--features`` (default 1,000,000 x 20) and
   memory: the peak extra memory during fit, score and explain, on top of
   the input (RSS growth during each step, sampled), and the process's peak RSS.

    python -m benchmarks.tabular                          # everything at full size
    python -m benchmarks.tabular --rows 100000 --seeds 20 # smaller table, seed spread
"""

from __future__ import annotations

import argparse
import csv
import gc
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from ad_pipeline import TabularDetector

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CARDIO = ROOT.parent / "shared" / "tabular" / "cardio.csv"


def load_cardio(path: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    names = [c for c in rows[0] if c not in ("target", "key")]
    X = {c: np.array([float(r[c]) for r in rows]) for c in names}
    y = np.array([int(r["target"]) for r in rows])
    return X, y


def cardio_quality(path: Path, contaminations: list[float]) -> bool:
    X, y = load_cardio(path)
    print(f"cardio: {len(y)} rows x {len(X)} features, {int(y.sum())} labelled anomalies ({y.mean():.4f})")
    model = TabularDetector().fit(X)  # defaults; target and key not used
    anomaly = model.decision_function(X)
    auc = roc_auc_score(y, -anomaly)
    ap = average_precision_score(y, -anomaly)
    ok = auc >= 0.90 and ap >= 0.50
    print(f"  defaults {model!r}")
    print(f"  ROC-AUC  {auc:.4f}  (bar >= 0.90)")
    print(f"  avg prec {ap:.4f}  (bar >= 0.50)")
    print(f"  percent_anomalies (contamination='auto') {model.percent_anomalies_:.4f}  (Nexosis reported 0.1005)")
    for c in contaminations:
        m = TabularDetector(contamination=c).fit(X)
        share = float(m.predict(X).mean())
        good = abs(m.percent_anomalies_ - c) <= 0.02 and share == m.percent_anomalies_
        ok &= good
        print(f"  percent_anomalies (contamination={c}) {m.percent_anomalies_:.4f}  {'ok' if good else 'FAIL'}")
    top = model.explain({k: v[:1] for k, v in X.items()}, top=3).to_list()[0]
    print("  row key=1 top features: " + ", ".join(f"{t['feature']} {t['contribution']:+.4f}" for t in top))
    print(f"  -> {'PASS' if ok else 'FAIL'}")
    return ok


def seed_spread(path: Path, seeds: int) -> None:
    X, y = load_cardio(path)
    print(f"\nseed spread on cardio over random_state 0..{seeds - 1}")
    print("  n_estimators  AUC mean  AUC min   AP mean   AP min   AP sd")
    for n in (100, 200, 500):
        aucs, aps = [], []
        for seed in range(seeds):
            a = TabularDetector(n_estimators=n, random_state=seed).fit(X).decision_function(X)
            aucs.append(roc_auc_score(y, -a))
            aps.append(average_precision_score(y, -a))
        print(
            f"  {n:>12}  {np.mean(aucs):.4f}    {np.min(aucs):.4f}    {np.mean(aps):.4f}    {np.min(aps):.4f}"
            f"   {np.std(aps):.4f}"
        )


def _traced(fn):  # type: ignore[no-untyped-def]
    """Run fn; return (result, seconds, peak RSS growth in bytes) -- RSS sampled every 5 ms by a thread,
    so the timing is not slowed down the way tracemalloc slows Python-heavy code."""
    import psutil

    proc = psutil.Process()
    gc.collect()
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            done.wait(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    try:
        out = fn()
    finally:
        seconds = time.perf_counter() - t0
        done.set()
        sampler.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    return out, seconds, peak[0] - base


def throughput(rows: int, features: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, features))
    X[rng.random(rows) < 0.01] *= 6.0  # ~1% outlying rows
    mb = X.nbytes / 2**20
    print(f"\nthroughput on {rows:,} rows x {features} features (float64 input {mb:.0f} MiB)")
    TabularDetector(n_estimators=5).fit(X[:1000]).explain(X[:10])  # compile/load the kernels first
    model, fit_s, fit_peak = _traced(lambda: TabularDetector().fit(X))
    print(f"  fit     {fit_s:7.2f} s  {rows / fit_s:>12,.0f} rows/s  peak +RSS   {fit_peak / 2**20:7.0f} MiB"
          "  (grows 200 trees + scores the training rows for percent_anomalies_)")
    _, score_s, score_peak = _traced(lambda: model.decision_function(X))
    print(f"  score   {score_s:7.2f} s  {rows / score_s:>12,.0f} rows/s  peak +RSS   {score_peak / 2**20:7.0f} MiB")
    n_explain = min(rows, 100_000)
    _, ex_s, ex_peak = _traced(lambda: model.explain(X[:n_explain], top=3))
    print(f"  explain {ex_s:7.2f} s  {n_explain / ex_s:>12,.0f} rows/s  peak +RSS   {ex_peak / 2**20:7.0f} MiB"
          f"  (on {n_explain:,} rows)")
    n_sql = min(rows, 200_000)
    try:
        import duckdb
        import pyarrow as pa

        from ad_pipeline.duckdb import register_model
    except ImportError:
        print("  duckdb UDF: skipped (duckdb/pyarrow not installed)")
    else:
        con = duckdb.connect()
        names = [f"x{j}" for j in range(features)]
        con.register("bench_rows", pa.table({name: X[:n_sql, j] for j, name in enumerate(names)}))
        register_model(con, "bench_model", model)
        t0 = time.perf_counter()
        con.sql(f"SELECT bench_model({', '.join(names)}) AS anomaly FROM bench_rows").fetchnumpy()
        sql_s = time.perf_counter() - t0
        con.close()
        print(f"  duckdb  {sql_s:7.2f} s  {n_sql / sql_s:>12,.0f} rows/s  (SELECT bench_model(x0, ...) on {n_sql:,} rows)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"  process peak RSS {rss:.0f} MiB (includes the {mb:.0f} MiB input and the libraries)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cardio", type=Path, default=DEFAULT_CARDIO)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--features", type=int, default=20)
    p.add_argument("--contamination", type=float, nargs="*", default=[0.05, 0.1, 0.2])
    p.add_argument("--seeds", type=int, default=0, help="also print the seed spread over this many seeds")
    p.add_argument("--skip-throughput", action="store_true")
    args = p.parse_args(argv)
    ok = cardio_quality(args.cardio, args.contamination)
    if args.seeds:
        seed_spread(args.cardio, args.seeds)
    if not args.skip_throughput:
        throughput(args.rows, args.features)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
