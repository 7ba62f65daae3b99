"""Compare method="azure" and method="auto" on a real labeled NAB series; writes a PNG.

    python examples/detectors_on_real_data.py [SERIES] [OUT.png]

SERIES is a NAB file below ../shared/bench/nab (default realKnownCause/nyc_taxi.csv); OUT.png
defaults to detectors_nab.png in ``$AD_PIPELINE_OUT`` (default ``out/``, not tracked). The figure
in docs/img was made with ``OUT.png = docs/img/detectors_nab.png``.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import numpy as np

import ad_pipeline as ad
from ad_pipeline.plot import plot_series

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    name = argv[1] if len(argv) > 1 else "realKnownCause/nyc_taxi.csv"
    out = Path(argv[2]) if len(argv) > 2 else Path(os.environ.get("AD_PIPELINE_OUT", "out")) / "detectors_nab.png"
    with open(ROOT.parent / "shared" / "bench" / "nab" / name, newline="") as fh:
        rows = list(csv.DictReader(fh))
    ts = np.array([r["timestamp"].replace(" ", "T") for r in rows], dtype="datetime64[s]")
    keep = np.r_[True, np.diff(ts.astype(np.int64)) != 0]  # a few NAB files repeat a timestamp
    ts, values = ts[keep], np.array([float(r["value"]) for r in rows])[keep]
    labels = np.array([int(r["label"]) for r in rows])[keep].astype(bool)
    panels = []
    for method in ("azure", "auto"):
        r = ad.detect_entire(values, ts, method=method)
        hits = int((r.is_anomaly & labels).sum())
        panels.append(
            {
                "title": f"{name}  method={method!r}: period {r.period}, {int(r.is_anomaly.sum())} flags "
                f"({hits} inside labeled windows)",
                "timestamp": ts,
                "value": values,
                "expected_value": r.expected_values,
                "lower_boundary": r.lower_boundaries,
                "upper_boundary": r.upper_boundaries,
                "is_positive_anomaly": r.is_positive_anomaly,
                "is_negative_anomaly": r.is_negative_anomaly,
                "is_change_point": np.r_[False, np.diff(labels.astype(int)) == 1],
            }
        )
    plot_series(panels, path=out)  # the green "change point" lines mark where labeled windows start
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
