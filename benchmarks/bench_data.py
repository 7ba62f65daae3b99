"""Load the labeled benchmark series (NAB, KPI, CMD, GutenTAG) and score detections with ``../shared/bench/score.py``.

Shared by ``benchmarks/quality.py`` and the quality tests, so both measure the same way:

- every series of a set goes through ONE ``detect_entire_batch`` call (granularity and custom
  interval inferred from the timestamps, no 8,640-point chunking);
- a few NAB files repeat a timestamp: the first row of each timestamp is kept for detection, and
  every row is scored with the verdict of its timestamp;
- KPI: delay-adjusted F1 with k = 7 after regridding (the KPI-competition protocol); CMD (Microsoft's
  Cloud Monitoring Dataset, ``../shared/bench/cmd``) and GutenTAG (``benchmarks/gutentag``, generated
  by ``benchmarks/gutentag/generate.py``) are scored the same way (k = 7 points);
- NAB: delay-adjusted F1 with k = half the label window of each series, on the rows as labelled
  (no regridding: NAB's windows are defined on its rows; regridding is the KPI protocol), pooled
  over series, plus window recall and alarms outside windows per series. Scored this way, our
  ``method="azure"`` lands within ~0.01 of the figures the issue measured for Microsoft's
  release (0.663 / 0.523 / 0.905); regridded, it would not (0.632 / 0.515 / 0.817).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GUTENTAG = ROOT / "benchmarks" / "gutentag"
SHARED = ROOT.parent / "shared"
BENCH = SHARED / "bench"


def load_shared(filename: str, bench: Path = BENCH) -> Any:
    """Import a script of the shared bench folder (``score.py``, ``tcpd_score.py``) from its path.

    The one place where benchmarks and tests load code that lives beside the repository rather than
    in a package (``../shared`` is read-only data with two scoring scripts): no ``sys.path`` edits.
    """
    name = "ad_bench_" + Path(filename).stem
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, bench / filename)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {bench / filename}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses and pickling look their module up here
    spec.loader.exec_module(mod)
    return mod


def load_scorer(bench: Path = BENCH) -> Any:
    """``score.py`` of the shared bench folder (delay-adjusted F1 and the NAB window measures)."""
    return load_shared("score.py", bench)


@dataclass
class Series:
    name: str
    timestamps: np.ndarray  # datetime64[s], one per row
    values: np.ndarray
    labels: np.ndarray  # 0/1 per row
    k: int  # delay for the delay-adjusted F1
    windows: list[tuple[np.datetime64, np.datetime64]]
    family: str = ""  # the unit of leave-one-family-out: KPI family, NAB category, CMD domain, GutenTAG kind


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    ts = np.array([r["timestamp"].replace("Z", "").replace(" ", "T") for r in rows], dtype="datetime64[s]")
    vals = np.array([float(r["value"]) if r["value"] not in ("", "nan", "NaN") else np.nan for r in rows])
    labels = np.array([int(float(r["label"])) for r in rows], dtype=np.int8)
    return ts, vals, labels


def load_set(name: str, bench: Path = BENCH) -> list[Series]:
    """``"kpi"``, ``"nab"``, ``"cmd"`` or ``"gutentag"``: every series of the set with labels, delay k and windows."""
    folder = GUTENTAG if name == "gutentag" else bench / name
    manifest = json.loads((folder / "manifest.json").read_text())
    windows_all: dict[str, list[list[str]]] = {}
    if name == "nab":
        windows_all = json.loads((folder / "combined_windows.json").read_text())
    out = []
    for entry in manifest["series"]:
        ts, vals, labels = _read_csv(folder / entry["file"])
        key = entry.get("series", entry["file"])
        wins = [
            (np.datetime64(a.replace(" ", "T")[:19], "s"), np.datetime64(b.replace(" ", "T")[:19], "s"))
            for a, b in windows_all.get(key, [])
        ]
        if name != "nab":
            k = 7
        else:
            sizes = [int(((ts >= a) & (ts <= b)).sum()) for a, b in wins]
            k = max(sizes) // 2 if sizes else 0
        family = entry.get("family") or entry.get("domain") or key.split("/")[0]
        out.append(Series(key, ts, vals, labels, k, wins, str(family)))
    return out


def detect_set(series: list[Series], **params: Any) -> tuple[list[np.ndarray], float, int]:
    """Flags per row of every series from ONE batch call; returns (flags, seconds, points)."""
    import ad_pipeline as ad

    firsts = []
    for s in series:
        keep = np.r_[True, np.diff(s.timestamps.astype(np.int64)) != 0]
        firsts.append(keep)
    values = np.concatenate([s.values[k] for s, k in zip(series, firsts, strict=True)])
    ts = np.concatenate([s.timestamps[k] for s, k in zip(series, firsts, strict=True)]).astype("datetime64[ns]")
    offsets = np.r_[0, np.cumsum([int(k.sum()) for k in firsts])]
    t0 = time.perf_counter()
    res = ad.detect_entire_batch(values, offsets, ts, errors="coerce", **params)
    seconds = time.perf_counter() - t0
    bad = [(series[i].name, res.error_code[i], res.error_message[i]) for i in np.flatnonzero(~res.valid)]
    if bad:
        raise RuntimeError(f"detection refused series: {bad}")
    flags = []
    for i, keep in enumerate(firsts):
        f = res.is_anomaly[offsets[i] : offsets[i + 1]]
        # rows that repeat a timestamp take the verdict of the first row of that timestamp
        idx = np.cumsum(keep) - 1
        flags.append(f[idx])
    return flags, seconds, int(len(values))


def series_counts(name: str, s: Series, flags: np.ndarray, scorer: Any) -> dict[str, int]:
    """One series' delay-adjusted tp/fp/fn, segments (caught within k) and, for NAB, windows hit
    and alarms outside windows: sums of these over series are the pooled figures of ``score_set``."""
    if name != "nab":
        r = scorer.evaluate_series_set([(s.timestamps.astype(np.int64), s.labels, flags)], k=s.k)
        d, ev = r["delay_adjusted"], r["events"]
        return {"tp": d["tp"], "fp": d["fp"], "fn": d["fn"], "segments": ev["segments"],
                "caught": ev["detected_within_k"], "windows": 0, "hit": 0, "outside": 0, "flags": int(flags.sum())}  # fmt: skip
    r = scorer.delay_prf(s.labels, flags, s.k)
    ev = scorer.event_stats(s.labels, flags, s.k)
    w = scorer.window_recall(s.windows, s.timestamps[flags.astype(bool)])
    return {"tp": r["tp"], "fp": r["fp"], "fn": r["fn"], "segments": ev["segments"], "caught": ev["detected_within_k"],
            "windows": w["windows"], "hit": w["windows_detected"], "outside": w["detections_outside_windows"],
            "flags": int(flags.sum())}  # fmt: skip


def score_set(name: str, series: list[Series], flags: list[np.ndarray], scorer: Any) -> dict[str, Any]:
    """Pooled delay-adjusted P/R/F1; for NAB also windows hit and alarms outside windows per series."""
    if name != "nab":
        items = [(s.timestamps.astype(np.int64), s.labels, f) for s, f in zip(series, flags, strict=True)]
        r = scorer.evaluate_series_set(items, k=7)["delay_adjusted"]
        return {"f1": r["f1"], "precision": r["precision"], "recall": r["recall"], "flag_share": _share(flags)}
    tp = fp = fn = 0
    hit = n_windows = outside = 0
    for s, f in zip(series, flags, strict=True):
        r = scorer.delay_prf(s.labels, f, s.k)
        tp, fp, fn = tp + r["tp"], fp + r["fp"], fn + r["fn"]
        w = scorer.window_recall(s.windows, s.timestamps[f.astype(bool)])
        hit, n_windows, outside = hit + w["windows_detected"], n_windows + w["windows"], outside + w[
            "detections_outside_windows"
        ]
    prf = scorer._prf(tp, fp, fn)
    return {
        "f1": prf["f1"],
        "precision": prf["precision"],
        "recall": prf["recall"],
        "windows_hit": hit,
        "windows": n_windows,
        "outside_per_series": outside / len(series),
        "flag_share": _share(flags),
    }


def _share(flags: list[np.ndarray]) -> float:
    return float(sum(int(f.sum()) for f in flags) / max(1, sum(len(f) for f in flags)))
