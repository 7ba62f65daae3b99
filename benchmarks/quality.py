"""Detection quality on the labeled dev sets (KPI, NAB), ``method="azure"`` vs ``method="auto"``.

Prints, per method and sensitivity: pooled delay-adjusted F1 / precision / recall on KPI (k = 7
after regridding) and NAB (k = half the label window), NAB windows hit and alarms outside windows
per series, the share of points flagged, wall time and points/s of the one batch call per set.
Then the sensitivity sweep (flags must grow strictly with sensitivity) and the false-alarm rate
on NAB's anomaly-free series against the documented rate of ``method="auto"``.

    python benchmarks/quality.py                    # both methods at their defaults + sweep
    python benchmarks/quality.py --methods azure --sensitivities 95 99
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import detect_set, load_scorer, load_set, score_set  # noqa: E402

REFERENCE_ROWS = [
    ("Microsoft release, sensitivity 95", "0.256 / 0.151 / 0.829", "0.663 / 0.523 / 0.905 (55, 431)"),
    ("Microsoft release, sensitivity 80", "0.336 / 0.211 / 0.822", "0.676 (54, 382)"),
    ("seasonal-naive robust z (thr 5)", "0.378 / 0.307 / 0.492", "0.734 (49, 223)"),
    ("ADTK SeasonalAD c=3", "0.283 / 0.203 / 0.471", "0.823 / 0.760 / 0.899 (51, 148)"),
]


def run(method: str, sensitivity: float, sets: dict, scorer) -> dict:
    out = {}
    for name, series in sets.items():
        flags, seconds, points = detect_set(series, method=method, sensitivity=sensitivity)
        out[name] = score_set(name, series, flags, scorer) | {"seconds": seconds, "points": points}
        out[name]["flags"] = int(sum(int(f.sum()) for f in flags))
    return out


def fmt(name: str, r: dict) -> str:
    s = f"{r['f1']:.3f} / {r['precision']:.3f} / {r['recall']:.3f}"
    if name == "nab":
        s += f" ({r['windows_hit']}/{r['windows']}, {r['outside_per_series']:.0f})"
    return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=["azure", "auto"])
    ap.add_argument("--sensitivities", nargs="+", type=float, default=[99])
    ap.add_argument("--sweep", nargs="*", type=float, default=[50, 80, 95, 99], help="auto sensitivity sweep")
    args = ap.parse_args(argv)
    scorer = load_scorer()
    sets = {"kpi": load_set("kpi"), "nab": load_set("nab")}
    print(f"KPI dev: {len(sets['kpi'])} series, NAB dev: {len(sets['nab'])} series\n")
    print(f"{'detector':44s} {'KPI delay-F1 / P / R':24s} {'NAB delay-F1 / P / R (hit, outside/series)':46s} time  pts/s")
    for label, kpi, nab in REFERENCE_ROWS:
        print(f"{label:44s} {kpi:24s} {nab:46s} (measured by the issue)")
    for method in args.methods:
        for s in args.sensitivities:
            r = run(method, s, sets, scorer)
            secs = r["kpi"]["seconds"] + r["nab"]["seconds"]
            pts = r["kpi"]["points"] + r["nab"]["points"]
            print(
                f"{'ad_pipeline method=' + method + f', sensitivity {s:g}':44s} {fmt('kpi', r['kpi']):24s} "
                f"{fmt('nab', r['nab']):46s} {secs:5.1f}s {pts / secs:,.0f}"
            )
    if args.sweep and "auto" in args.methods:
        from ad_pipeline.engine.auto import documented_false_alarm_rate

        print("\nmethod=auto sensitivity sweep (flags must grow strictly):")
        clean = [s for s in sets["nab"] if s.name.startswith("artificialNoAnomaly/")]
        for s in args.sweep:
            r = run("auto", s, sets, scorer)
            fl, _, pts = detect_set(clean, method="auto", sensitivity=s)
            rate = sum(int(f.sum()) for f in fl) / pts
            doc = documented_false_alarm_rate(s)
            print(
                f"  sensitivity {s:4g}: KPI flags {r['kpi']['flags']:6d} F1 {r['kpi']['f1']:.3f} | "
                f"NAB flags {r['nab']['flags']:6d} F1 {r['nab']['f1']:.3f} | false alarms on "
                f"artificialNoAnomaly {rate:.2e}/point (documented {doc:.2e}, ratio {rate / doc:.2f})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
