"""Replay the recorded Azure cases (``../shared/golden/*.json``) through ad_pipeline.

Each case is judged as the original test suite did: ``period`` equal when the response gives it,
``isAnomaly`` equal at every point, every expected value within ±5% of the recorded one. Prints
the pass count, the failing cases with the reason, and the point-level F1 of our flags.
``--strict`` also requires expected values and both margins within 1e-6 (relative) where the
answers carry them: how replies of another implementation to ``random_requests.py`` are judged.

    .venv/bin/python -m benchmarks.golden [DIR] [--strict]
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import ad_pipeline as ad
from ad_pipeline.rest.request import parse_request

GOLDEN_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "golden"
if not GOLDEN_DIR.is_dir():  # running from a checkout elsewhere
    GOLDEN_DIR = Path("/work/shared/golden")
REL_TOL = 0.05


@dataclass
class Outcome:
    name: str
    ok: bool
    reasons: list[str] = field(default_factory=list)
    ours: np.ndarray | None = None  # our flags where Azure gave flags
    theirs: np.ndarray | None = None


def load_cases(directory: Path = GOLDEN_DIR) -> list[tuple[str, dict[str, Any]]]:
    """``(name, case)`` for every recorded case, sorted by name."""
    return [(p.stem, json.loads(p.read_text())) for p in sorted(directory.glob("*.json"))]


def _close(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    return np.abs(ours - theirs) <= REL_TOL * np.abs(theirs) + 1e-9


STRICT_TOL = 1e-6


def _margin_mismatches(x: np.ndarray, expected: np.ndarray, ours: tuple, theirs: tuple, tol: np.ndarray) -> np.ndarray:
    """Points whose upper/lower margins differ by more than ``tol``; where the value equals the
    expected value up to rounding (side undecidable) the pair is compared unordered."""
    (ou, ol), (tu, tl) = ours, theirs
    same = (np.abs(ou - tu) <= tol) & (np.abs(ol - tl) <= tol)
    swapped = (np.abs(ou - tl) <= tol) & (np.abs(ol - tu) <= tol)
    tie = np.abs(x - expected) <= 1e-9 * max(float(np.max(np.abs(x))), 1e-300)
    return np.flatnonzero(~(same | (tie & swapped)))


def run_case(name: str, case: dict[str, Any], strict: bool = False) -> Outcome:
    """Replay one case and judge it (``strict``: also expected values and both margins to 1e-6)."""
    values, timestamps, kwargs = parse_request(case["request"])
    resp = case["response"]
    out = Outcome(name, True)
    try:
        if case["type"] == "entire":
            res = ad.detect_entire(values, timestamps, **kwargs)
            period, flags, expected = res.period, res.is_anomaly, res.expected_values
            margins = (res.upper_margins, res.lower_margins)
            rec_margins = (
                (np.asarray(resp["upperMargins"], dtype=float), np.asarray(resp["lowerMargins"], dtype=float))
                if "upperMargins" in resp and "lowerMargins" in resp else None
            )
            x = values
            rec_flags = np.asarray(resp["isAnomaly"], dtype=bool) if "isAnomaly" in resp else None
            rec_exp = np.asarray(resp["expectedValues"], dtype=float) if "expectedValues" in resp else None
        else:
            r = ad.detect_last(values, timestamps, **kwargs)
            period, flags, expected = r.period, np.array([r.is_anomaly]), np.array([r.expected_value])
            margins = (np.array([r.upper_margin]), np.array([r.lower_margin]))
            rec_margins = (
                (np.array([resp["upperMargin"]], dtype=float), np.array([resp["lowerMargin"]], dtype=float))
                if "upperMargin" in resp and "lowerMargin" in resp else None
            )
            x = values[-1:]
            rec_flags = np.array([resp["isAnomaly"]], dtype=bool) if "isAnomaly" in resp else None
            rec_exp = np.array([resp["expectedValue"]], dtype=float) if "expectedValue" in resp else None
    except Exception as exc:  # noqa: BLE001 - report and go on
        return Outcome(name, False, [f"raised {type(exc).__name__}: {exc}"])
    if "period" in resp and int(resp["period"]) != int(period):
        out.reasons.append(f"period {period} != {resp['period']}")
    if rec_flags is not None:
        out.ours, out.theirs = np.asarray(flags, dtype=bool), rec_flags
        bad = np.flatnonzero(out.ours != rec_flags)
        if len(bad):
            out.reasons.append(
                f"isAnomaly differs at {len(bad)} point(s) {bad[:8].tolist()} "
                f"(ours {int(out.ours.sum())}, azure {int(rec_flags.sum())})"
            )
    if rec_exp is not None:
        bad = np.flatnonzero(~_close(np.asarray(expected, dtype=float), rec_exp))
        if len(bad):
            i = int(bad[0])
            out.reasons.append(
                f"expected off >5% at {len(bad)} point(s), first {i}: {expected[i]:.6g} vs {rec_exp[i]:.6g}"
            )
    if strict and rec_exp is not None:
        # 1e-6 of |e| + |upper| + |lower| (the recorded ones), for expected values and margins alike
        tol = STRICT_TOL * np.abs(rec_exp) + 1e-12
        if rec_margins is not None:
            tol = tol + STRICT_TOL * (np.abs(rec_margins[0]) + np.abs(rec_margins[1]))
        ours = np.asarray(expected, dtype=float)
        bad = np.flatnonzero(np.abs(ours - rec_exp) > tol)
        if len(bad):
            out.reasons.append(f"strict: expected values differ at {len(bad)} point(s), first {int(bad[0])}")
        if rec_margins is not None:
            bad = _margin_mismatches(np.asarray(x, dtype=float), ours, margins, rec_margins, tol)
            if len(bad):
                out.reasons.append(f"strict: margins differ at {len(bad)} point(s), first {int(bad[0])}")
    out.ok = not out.reasons
    return out


def f1(outcomes: list[Outcome]) -> tuple[float, int, int, int]:
    """Point-level F1 of our flags against Azure's, pooled over the cases that give flags."""
    tp = fp = fn = 0
    for o in outcomes:
        if o.ours is None or o.theirs is None:
            continue
        tp += int(np.sum(o.ours & o.theirs))
        fp += int(np.sum(o.ours & ~o.theirs))
        fn += int(np.sum(~o.ours & o.theirs))
    score = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return score, tp, fp, fn


def main(argv: list[str]) -> int:
    args = [a for a in argv[1:] if a != "--strict"]
    strict = "--strict" in argv[1:]
    directory = Path(args[0]) if args else GOLDEN_DIR
    outcomes = [run_case(name, case, strict) for name, case in load_cases(directory)]
    for o in outcomes:
        if not o.ok:
            print(f"FAIL {o.name}: {'; '.join(o.reasons)}")
    passed = sum(o.ok for o in outcomes)
    score, tp, fp, fn = f1(outcomes)
    print(f"golden cases passed: {passed}/{len(outcomes)}")
    print(f"point-level flag F1 vs Azure: {score:.4f} (tp {tp}, fp {fp}, fn {fn})")
    return 0 if passed == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
