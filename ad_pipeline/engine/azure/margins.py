"""Margins and severity: boundary version V1 and V2/V3 (reference: AZURE_API.md, Margins)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .util import BoolArray, FloatArray

# AZURE_API.md prints entries 86..93 rounded to 6 digits; these are the release's values
FACTORS = np.array(
    [
        532,
        492.8,
        455.2,
        419.2,
        384.8,
        352,
        320.8,
        291.2,
        263.2,
        236.8,
        212,
        188.8,
        167.2,
        147.2,
        128.8,
        112,
        96.8,
        83.2,
        71.2,
        60.8,
        52,
        44.8,
        39.2,
        35.2,
        32.8,
        30,
        28.75,
        27.5,
        26.25,
        25,
        23.75,
        22.5,
        21.25,
        20,
        18.75,
        17.5,
        16.25,
        15,
        13.75,
        12.5,
        11.25,
        10,
        8.75,
        7.5,
        6.25,
        5,
        4.6,
        4.2,
        3.8,
        3.4,
        3,
        2.6,
        2.2,
        1.8,
        1.4,
        1,
        0.96,
        0.92,
        0.88,
        0.84,
        0.8,
        0.76,
        0.72,
        0.68,
        0.64,
        0.6,
        0.57,
        0.54,
        0.51,
        0.48,
        0.45,
        0.42,
        0.39,
        0.36,
        0.33,
        0.3,
        0.285,
        0.27,
        0.255,
        0.24,
        0.225,
        0.21,
        0.195,
        0.18,
        0.165,
        0.15,
        0.13818181818181818,
        0.12636363636363646,
        0.1145454545454545,
        0.10272727272727278,
        0.09090909090909083,
        0.0790909090909091,
        0.06727272727272737,
        0.043636363636363695,
        0.012,
        0.008,
        0.006075,
        0.00415,
        0.002225,
        0.0003,
        0,
    ]
)


@dataclass
class Margins:
    upper: FloatArray
    lower: FloatArray
    flags: BoolArray
    severity: FloatArray


def factor(sensitivity: float) -> float:
    """The V2/V3 margin factor of a sensitivity (linear between integer entries)."""
    lo = int(np.floor(sensitivity))
    if lo >= 100:
        return float(FACTORS[100])
    frac = sensitivity - lo
    return float(FACTORS[lo] + frac * (FACTORS[lo + 1] - FACTORS[lo]))


def _v1_severity(x: FloatArray, expected: FloatArray, flags: BoolArray) -> FloatArray:
    """``min(|x - e| / |e|, 1)`` at flags (``|e|`` taken as 0.3 when it is about 0), else 0."""
    ae = np.abs(expected)
    base = np.where(ae <= 1e-8, 0.3, ae)
    return np.where(flags, np.minimum(np.abs(x - expected) / base, 1.0), 0.0)


def v1(x: FloatArray, expected: FloatArray, flags: BoolArray, margin: FloatArray, sensitivity: float) -> Margins:
    """Clip boundaries to the data range (as the release does); an unflagged point outside gets both margins
    ``1.01 |x - e|``; a flag inside its boundaries is dropped (at sensitivity 100 it stays, with
    margins 0)."""
    lo_all = min(float(np.min(x)), float(np.min(expected)))
    hi_all = max(float(np.max(x)), float(np.max(expected)))
    upper_b = np.minimum(expected + margin, hi_all)
    lower_b = expected - margin
    # the release's np.clip(lower_b, lo_all, max(lower_b)): when every lower boundary lies below
    # the data (wide margins at low sensitivity), all of them become the highest one
    lower_b = np.minimum(np.maximum(lower_b, lo_all), float(np.max(lower_b)))
    up = upper_b - expected
    lo = expected - lower_b
    inside = (x <= upper_b) & (x >= lower_b)
    above = ~flags & (x > upper_b)
    below = ~flags & (x < lower_b)
    wide = np.where(above, 1.01 * (x - expected), 1.01 * (expected - x))
    up = np.where(above | below, wide, up)
    lo = np.where(above | below, wide, lo)
    if sensitivity == 100:
        up = np.where(flags & inside, 0.0, up)
        lo = np.where(flags & inside, 0.0, lo)
    else:
        flags = flags & ~inside
    return Margins(up, lo, flags, _v1_severity(x, expected, flags))


def v1_relative(x: FloatArray, expected: FloatArray, flags: BoolArray, sensitivity: float) -> Margins:
    """V1 for the seasonal and dynamic models: margin ``|expected| * (100 - s) / 100``."""
    return v1(x, expected, flags, np.abs(expected) * (100 - sensitivity) / 100, sensitivity)


def v1_sr(
    x: FloatArray, expected: FloatArray, flags: BoolArray, score: FloatArray, sensitivity: float
) -> Margins:
    """V1 for the Spectral Residual model: normal points get 1% of the normal-value range."""
    normal = score <= 1e-8
    base = 0.01 * float(np.ptp(x[normal])) if normal.any() else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        other = np.abs(x - expected) / score * (1 - sensitivity / 100)
    margin = np.where(normal, base, other)
    return v1(x, expected, flags, margin, sensitivity)


def _severity_score(ratio: FloatArray) -> FloatArray:
    """Place ``|v-e|/unit`` in the factor table read backwards: a sensitivity in 0..100."""
    rev = FACTORS[::-1]  # ascending: index j <-> sensitivity 100 - j
    j = np.interp(ratio, rev, np.arange(len(rev), dtype=np.float64))
    score = 100 - j
    score = np.where(ratio < rev[0], 0.0, score)
    return np.where(ratio > rev[-1], 100.0, score)


def v3(
    x: FloatArray, expected: FloatArray, trend: FloatArray, flags: BoolArray, sensitivity: float
) -> Margins:
    """Boundary versions V2/V3: margins from the trend's magnitude and the factor table."""
    at = np.abs(trend)
    normal_mean = float(np.mean(at[~flags])) if (~flags).any() else float(np.mean(at))
    unit = 0.5 * at + 0.5 * normal_mean
    if np.all(np.abs(trend[~flags]) < 1e-8):
        unit = np.full(len(x), 0.3)
    unit = np.maximum(unit, 0.3)
    delta = unit * factor(sensitivity)
    dev = np.abs(x - expected)
    d2 = dev + 0.5 * delta
    above = x > expected
    up = np.where(above, d2, d2 / 3)
    lo = np.where(above, d2 / 3, d2)
    fd = delta
    if sensitivity == 99:
        fd = np.where((1e-4 * delta < dev) & (dev < delta), 0.5 * dev, delta)
    up = np.where(flags, fd, up)
    lo = np.where(flags, fd, lo)
    flags = flags & ((x > expected + up) | (x < expected - lo))
    sev = np.where(flags, _severity_score(dev / unit) / 100, 0.0)
    return Margins(up, lo, flags, sev)
