"""Detection quality on the labeled dev sets (KPI, NAB, CMD, GutenTAG): ``auto``, ``azure`` and two baselines.

Prints, per set, for ``method="auto"``, ``method="azure"`` and two baselines computed in the same
run (a global median/MAD robust z > 5, and a seasonal-naive robust z > 5: the difference to the
value one day earlier, or to the previous value for series shorter than three days, scored
against its median/MAD): pooled delay-adjusted F1 / precision / recall (KPI, CMD and GutenTAG
with k = 7 points after regridding, NAB with k = half the label window), anomaly segments caught
within k, and for NAB the label windows hit and alarms outside windows per series.

The constants of ``method="auto"`` that were chosen on data (``GRID`` below: the fast level's
window, the slow level's window in seasons) are chosen by **leave-one-family-out**: for every family (KPI family, NAB
category, CMD domain, GutenTAG kind) the grid point that maximises the mean delay-F1 of the four
sets *without that family* detects that family; the pooled result of those detections is the
cross-validated figure, printed beside the in-sample figure of the shipped constants. The
sensitivity (threshold) is not tuned: it is the Gaussian tail of the documented false-alarm rate.

Then the sensitivity sweep of ``auto`` (flags must grow with sensitivity) and the false-alarm rate
on NAB's anomaly-free series against the documented rate.

With ``--clean``: 200 clean hourly series per kind (daily sine + noise, random walk, trend +
noise, constant + noise; 336 and 1,000 points): flags per point in the first day, the middle and
the last day, and last-point alarms of ``detect_last``. With ``--demo``: the ``ad-pipeline demo``
data (``cli.make_demo_table``, 300 x 1,000 points) and the flags outside its injected anomalies.

    python -m benchmarks.quality                  # the sets (~3-5 minutes on 2 busy cores)
    python -m benchmarks.quality --no-lofo --sweep
    python -m benchmarks.quality --sets --clean --demo   # only the clean-data and demo checks
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from benchmarks.bench_data import Series, detect_set, load_scorer, load_set, series_counts

SETS = ("kpi", "nab", "cmd", "gutentag")
GRID = {"FAST_WINDOW": (15, 31), "SLOW_SEASONS": (0, 1, 2, 4)}
BASELINE_Z = 5.0
_DAY = 86_400


@contextmanager
def constants(**values: int) -> Iterator[None]:
    """Run ``method="auto"`` with other values of its module constants (the tuning grid)."""
    from ad_pipeline.engine import auto

    old = {k: getattr(auto, k) for k in values}
    try:
        for k, v in values.items():
            setattr(auto, k, v)
        yield
    finally:
        for k, v in old.items():
            setattr(auto, k, v)


def _robust_z(r: np.ndarray) -> np.ndarray:
    ok = r[~np.isnan(r)]
    if ok.size == 0:
        return np.zeros_like(r)
    med = float(np.median(ok))
    mad = 1.4826 * float(np.median(np.abs(ok - med)))
    if mad == 0:
        mad = 1.2533 * float(np.mean(np.abs(ok - med))) or 1e-12
    return np.nan_to_num(np.abs(r - med) / mad)


def global_z(s: Series) -> np.ndarray:
    """Baseline: robust z of the value against the series' median and MAD."""
    return _robust_z(s.values) > BASELINE_Z


def seasonal_naive_z(s: Series) -> np.ndarray:
    """Baseline: robust z of the difference to the value one day earlier (previous value if < 3 days)."""
    t = s.timestamps.astype(np.int64)
    step = int(np.median(np.diff(t))) if len(t) > 1 else 1
    lag = _DAY // step if step and _DAY % step == 0 and len(t) * step >= 3 * _DAY else 1
    r = np.full(len(s.values), np.nan)
    r[lag:] = s.values[lag:] - s.values[:-lag]
    return _robust_z(r) > BASELINE_Z


def counts_of(name: str, series: list[Series], flags: list[np.ndarray], scorer) -> list[dict]:
    return [series_counts(name, s, f, scorer) for s, f in zip(series, flags, strict=True)]


def pooled(rows: list[dict]) -> dict:
    tot = {k: sum(r[k] for r in rows) for k in rows[0]}
    p = tot["tp"] / (tot["tp"] + tot["fp"]) if tot["tp"] + tot["fp"] else 0.0
    r = tot["tp"] / (tot["tp"] + tot["fn"]) if tot["tp"] + tot["fn"] else 0.0
    return tot | {"f1": 2 * p * r / (p + r) if p + r else 0.0, "precision": p, "recall": r, "n": len(rows)}


def fmt(name: str, r: dict) -> str:
    s = f"{r['f1']:.3f}  {r['precision']:.3f} {r['recall']:.3f}  {r['caught']:3d}/{r['segments']:<3d}"
    if name == "nab":
        s += f"  {r['hit']}/{r['windows']} windows, {r['outside'] / r['n']:.0f} outside/series"
    return s


def lofo(sets: dict, per_config: dict) -> tuple[dict, dict]:
    """Cross-validated counts per set, and the grid point chosen for each family."""
    keys = list(per_config)
    default = keys.index(_default_key())
    chosen: dict[str, tuple] = {}
    cv: dict[str, list[dict]] = {}
    for name, series in sets.items():
        cv[name] = [dict() for _ in series]
        for fam in sorted({s.family for s in series}):
            scores = []
            for key in keys:
                f1s = []
                for other, oseries in sets.items():
                    rows = [
                        c for s, c in zip(oseries, per_config[key][other], strict=True)
                        if not (other == name and s.family == fam)
                    ]  # fmt: skip
                    f1s.append(pooled(rows)["f1"] if rows else 0.0)
                scores.append(float(np.mean(f1s)))
            best = max(range(len(keys)), key=lambda i: (round(scores[i], 6), i == default))
            chosen[f"{name}:{fam}"] = keys[best]
            for i, s in enumerate(series):
                if s.family == fam:
                    cv[name][i] = per_config[keys[best]][name][i]
    return {name: pooled(rows) for name, rows in cv.items()}, chosen


def _default_key() -> tuple:
    from ad_pipeline.engine import auto

    return tuple(getattr(auto, k) for k in GRID)


def clean_series(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n)
    if kind == "seasonal":
        return 10 + np.sin(2 * np.pi * (t + rng.uniform(0, 24)) / 24) + rng.normal(0, 0.1, n)
    if kind == "random walk":
        return 100 + np.cumsum(rng.normal(size=n))
    if kind == "trend":
        return 5 + 0.01 * t + rng.normal(size=n)
    return 50 + rng.normal(size=n)


def clean_check(method: str, sensitivity: float, m: int = 200) -> None:
    import ad_pipeline as ad

    print(f"\nclean hourly series, method={method}, {m} series each: flags per point (first day / middle / last day),"
          " last-point alarms")  # fmt: skip
    for kind in ("seasonal", "random walk", "trend", "constant"):
        for n in (336, 1000):
            rng = np.random.default_rng(1)
            x = np.concatenate([clean_series(kind, n, rng) for _ in range(m)])
            ts = np.tile(np.datetime64("2024-01-01T00", "h") + np.arange(n), m).astype("datetime64[ns]")
            off = np.arange(m + 1) * n
            f = ad.detect_entire_batch(x, off, ts, method=method, sensitivity=sensitivity).is_anomaly.reshape(m, n)
            last = ad.detect_last_batch(x, off, ts, method=method, sensitivity=sensitivity).is_anomaly
            print(f"  {kind:12s} n={n:5d}: {f[:, :24].mean():.1e} / {f[:, 24:-24].mean():.1e} / {f[:, -24:].mean():.1e}"
                  f"  all {f.mean():.1e}; last point flagged on {int(last.sum())} of {m}")  # fmt: skip


def demo_check(method: str, sensitivity: float) -> None:
    import duckdb

    import ad_pipeline as ad
    from ad_pipeline.cli import make_demo_table

    con = duckdb.connect()
    make_demo_table(con)
    key, ts, value, injected = (
        np.asarray(c)
        for c in con.execute(
            "SELECT key, ts, value, EXISTS (SELECT 1 FROM metrics_injected i WHERE i.key = m.key AND i.ts = m.ts) "
            "FROM metrics m ORDER BY key, ts"
        ).fetchnumpy().values()
    )
    con.close()
    off = np.r_[0, np.flatnonzero(key[1:] != key[:-1]) + 1, len(key)]
    f = ad.detect_entire_batch(value, off, ts.astype("datetime64[ns]"), method=method, sensitivity=sensitivity).is_anomaly
    out = int((f & ~injected).sum())
    print(f"\ndemo data, method={method}: {int(f.sum())} flags, {int((f & injected).sum())} of {int(injected.sum())} "
          f"injected caught, {out} outside the injected anomalies = {out / len(f):.4%} of {len(f):,} points")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sensitivity", type=float, default=99)
    ap.add_argument("--no-lofo", action="store_true", help="skip the grid and the leave-one-family-out figures")
    ap.add_argument("--sweep", action="store_true", help="auto sensitivity sweep and NAB false-alarm rate")
    ap.add_argument("--sets", nargs="*", default=list(SETS), choices=SETS)
    ap.add_argument("--clean", action="store_true", help="edge and last-point false alarms on clean series")
    ap.add_argument("--demo", action="store_true", help="flags outside the injected anomalies of the demo data")
    args = ap.parse_args(argv)
    if args.clean:
        for method in ("auto", "azure"):
            clean_check(method, args.sensitivity)
    if args.demo:
        for method in ("auto", "azure"):
            demo_check(method, args.sensitivity)
    if not args.sets:
        return 0
    scorer = load_scorer()
    sets = {name: load_set(name) for name in args.sets}
    print("; ".join(f"{k}: {len(v)} series, {len({s.family for s in v})} families" for k, v in sets.items()))
    results: dict[str, dict[str, dict]] = {name: {} for name in sets}
    speed = {}
    for method in ("auto", "azure"):
        secs = pts = 0.0
        for name, series in sets.items():
            flags, sec, p = detect_set(series, method=method, sensitivity=args.sensitivity)
            secs, pts = secs + sec, pts + p
            results[name][method] = pooled(counts_of(name, series, flags, scorer))
        speed[method] = pts / secs
    for label, fn in (("global robust z>5", global_z), ("seasonal-naive z>5", seasonal_naive_z)):
        for name, series in sets.items():
            results[name][label] = pooled(counts_of(name, series, [fn(s) for s in series], scorer))
    cv, chosen = {}, {}
    if not args.no_lofo:
        per_config = {}
        t0 = time.perf_counter()
        for key in itertools.product(*GRID.values()):
            with constants(**dict(zip(GRID, key, strict=True))):
                per_config[key] = {
                    name: counts_of(name, series, detect_set(series, method="auto", sensitivity=args.sensitivity)[0], scorer)
                    for name, series in sets.items()
                }  # fmt: skip
        cv, chosen = lofo(sets, per_config)
        print(f"grid {GRID} ({len(per_config)} points) in {time.perf_counter() - t0:.0f} s; in-sample delay-F1 "
              f"({', '.join(sets)}):")  # fmt: skip
        for key, rows in per_config.items():
            f1 = [pooled(rows[name])["f1"] for name in sets]
            print(f"  {key}: " + " ".join(f"{v:.3f}" for v in f1) + f"  mean {np.mean(f1):.3f}")
    print(f"\nsensitivity {args.sensitivity:g}; columns: delay-F1  precision recall  segments caught within k")
    for name in sets:
        print(f"\n{name.upper()}")
        if name in cv:
            print(f"  {'auto, leave-one-family-out':28s} {fmt(name, cv[name])}")
        for method, r in results[name].items():
            tag = "auto, in-sample" if method == "auto" else method
            print(f"  {tag:28s} {fmt(name, r)}")
    if chosen:
        print("\nLOFO choice per family (" + ", ".join(GRID) + "): " + "; ".join(
            f"{k} {v}" for k, v in chosen.items() if v != _default_key()) + f"; all others {_default_key()}")
    print(f"\npoints/s of the batch calls: auto {speed['auto']:,.0f}, azure {speed['azure']:,.0f}")
    if args.sweep and "nab" in sets:
        from ad_pipeline.engine.auto import documented_false_alarm_rate

        print("\nmethod=auto sensitivity sweep (flags must grow):")
        clean = [s for s in sets["nab"] if s.name.startswith("artificialNoAnomaly/")]
        for s in (50, 80, 95, 99):
            total = 0
            for series in sets.values():
                fl, _, _ = detect_set(series, method="auto", sensitivity=s)
                total += sum(int(f.sum()) for f in fl)
            fl, _, p = detect_set(clean, method="auto", sensitivity=s)
            rate = sum(int(f.sum()) for f in fl) / p
            doc = documented_false_alarm_rate(s)
            print(f"  sensitivity {s:4g}: {total:6d} flags on all sets; artificialNoAnomaly {rate:.2e}/point "
                  f"(documented {doc:.2e})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
