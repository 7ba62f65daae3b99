"""Plot detection results: one panel per series, from plain numpy arrays.

Used by ``df.anomaly.plot(...)`` (pandas, polars) and reusable by any adapter (the DuckDB CLI):
build one ``dict`` per series and call :func:`plot_series`. matplotlib is imported only here,
when called (``pip install 'ad-pipeline-anomaly[plot]'``), and no pyplot state is touched: the figure
is a plain :class:`matplotlib.figure.Figure` rendered by the Agg canvas.

>>> import numpy as np
>>> x = np.sin(np.arange(60) / 4); x[30] = 3.0
>>> panel = {"title": "demo", "value": x, "expected_value": np.sin(np.arange(60) / 4),
...          "lower_boundary": np.sin(np.arange(60) / 4) - 0.5, "upper_boundary": np.sin(np.arange(60) / 4) + 0.5,
...          "is_positive_anomaly": x > 2}
>>> fig = plot_series([panel])
>>> len(fig.axes)
1
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import BadArgument, MissingDependency

__all__ = ["plot_series", "PANEL_FIELDS"]

#: The keys a panel may hold (all arrays aligned with ``value``; all but ``value`` optional).
PANEL_FIELDS = (
    "title",  # str
    "timestamp",  # datetime64 array (None: positions 0..n-1)
    "value",  # float array, NaN = missing
    "expected_value",
    "lower_boundary",
    "upper_boundary",
    "is_anomaly",  # bool; used when the positive/negative split is absent
    "is_positive_anomaly",
    "is_negative_anomaly",
    "is_change_point",
    "error",  # str: why the series has no results (drawn as a note)
)

COLOURS = {
    "value": "#243b53",
    "expected": "#2f80c4",
    "band": "#9cc8ee",
    "positive": "#d64545",
    "negative": "#f29b38",
    "anomaly": "#d64545",
    "change": "#2e9e6a",
}


def plot_series(
    panels: Sequence[dict[str, Any]],
    path: str | os.PathLike[str] | None = None,
    *,
    title: str | None = None,
    width: float = 11.0,
    panel_height: float = 2.4,
    dpi: int = 110,
) -> Any:
    """Draw one panel per series and return the :class:`~matplotlib.figure.Figure`.

    Each panel shows the value line, the expected line, the shaded band between the lower and
    upper boundaries, positive anomalies (red ▲) and negative anomalies (orange ▼), and change
    points as vertical green lines.

    Parameters
    ----------
    panels : sequence of dict
        One dict per series with the keys in :data:`PANEL_FIELDS`: ``value`` (required), and
        optionally ``timestamp`` (datetime64; default positions), ``title``, ``expected_value``,
        ``lower_boundary``, ``upper_boundary``, ``is_positive_anomaly``, ``is_negative_anomaly``
        (or just ``is_anomaly``), ``is_change_point``, ``error``. The names are the result
        column names, so rows of a detection result map onto a panel directly.
    path : str or path-like, optional
        Save the figure there as PNG (parent folders are created).
    title : str, optional
        A title above all panels.
    width, panel_height, dpi : float, float, int
        Figure width and height per panel in inches, and resolution of the saved PNG.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> x = np.r_[np.zeros(50), np.ones(50)] + 0.1 * np.random.default_rng(0).normal(size=100)
    >>> fig = plot_series([{"value": x, "is_change_point": np.arange(100) == 50, "title": "step"}])
    >>> fig.axes[0].get_title(loc="left")
    'step'
    """
    try:
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingDependency.for_extra("matplotlib", "plot") from None
    if len(panels) == 0:
        raise BadArgument("The 'panels' argument must hold at least one series, got none.")

    n = len(panels)
    fig = Figure(figsize=(width, panel_height * n + (0.5 if title else 0.0) + 0.45), dpi=dpi, layout="constrained")
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    seen: dict[str, Any] = {}
    for ax, panel in zip(axes, panels, strict=True):
        _draw(ax, panel, seen)
        if panel.get("timestamp") is not None:
            locator = AutoDateLocator()
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    legend = {
        "value": Line2D([], [], color=COLOURS["value"], lw=1.2, label="value"),
        "expected": Line2D([], [], color=COLOURS["expected"], lw=1.2, ls="--", label="expected"),
        "band": Patch(color=COLOURS["band"], alpha=0.45, label="boundaries"),
        "positive": Line2D([], [], color=COLOURS["positive"], marker="^", ls="", label="positive anomaly"),
        "negative": Line2D([], [], color=COLOURS["negative"], marker="v", ls="", label="negative anomaly"),
        "anomaly": Line2D([], [], color=COLOURS["anomaly"], marker="o", ls="", label="anomaly"),
        "change": Line2D([], [], color=COLOURS["change"], ls=":", lw=1.5, label="change point"),
    }
    handles = [h for k, h in legend.items() if k in seen]
    fig.legend(handles=handles, loc="outside upper right", ncols=len(handles), frameon=False, fontsize=9)
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontsize=12, fontweight="bold")
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, format="png", dpi=dpi)
    return fig


def _bool(panel: dict[str, Any], key: str, n: int) -> np.ndarray | None:
    a = panel.get(key)
    if a is None:
        return None
    # nullable results (errors="coerce") arrive as object or masked arrays: null means False
    return np.asarray([bool(v) if v is not None and v == v else False for v in a] if np.asarray(a).dtype == object
                      else np.asarray(a, dtype=bool))[:n]


def _draw(ax: Any, panel: dict[str, Any], seen: dict[str, Any]) -> None:
    if "value" not in panel:
        raise BadArgument(f"Each panel must hold a 'value' array, got keys {sorted(panel)}.")
    y = np.asarray(panel["value"], dtype=np.float64)
    n = len(y)
    ts = panel.get("timestamp")
    x = np.arange(n) if ts is None else np.asarray(ts).astype("datetime64[ns]")

    lo, hi, ex = (panel.get(k) for k in ("lower_boundary", "upper_boundary", "expected_value"))
    if lo is not None and hi is not None:
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        ax.fill_between(x, lo, hi, color=COLOURS["band"], alpha=0.45, lw=0, step=None, zorder=1)
        seen["band"] = True
    ax.plot(x, y, color=COLOURS["value"], lw=1.1, zorder=3)
    seen["value"] = True
    if ex is not None:
        ax.plot(x, np.asarray(ex, dtype=np.float64), color=COLOURS["expected"], lw=1.1, ls="--", zorder=2)
        seen["expected"] = True

    pos, neg = _bool(panel, "is_positive_anomaly", n), _bool(panel, "is_negative_anomaly", n)
    anom = None
    if pos is None and neg is None:
        anom = _bool(panel, "is_anomaly", n)
        if anom is not None and anom.any():
            ax.scatter(x[anom], y[anom], s=36, color=COLOURS["anomaly"], marker="o", zorder=5,
                       edgecolors="white", linewidths=0.6)
            seen["anomaly"] = True
    for flags, key, marker in ((pos, "positive", "^"), (neg, "negative", "v")):
        if flags is not None and flags.any():
            ax.scatter(x[flags], y[flags], s=46, color=COLOURS[key], marker=marker, zorder=5,
                       edgecolors="white", linewidths=0.6)
            seen[key] = True
    cps = _bool(panel, "is_change_point", n)
    if cps is not None:
        for xc in x[cps]:
            ax.axvline(xc, color=COLOURS["change"], ls=":", lw=1.5, zorder=4)
        if cps.any():
            seen["change"] = True

    if panel.get("error"):
        ax.text(0.5, 0.5, f"not detected: {panel['error']}", transform=ax.transAxes, ha="center", va="center",
                fontsize=9, color="#8a1c1c", wrap=True,
                bbox={"boxstyle": "round", "fc": "#fff4f4", "ec": "#e3b5b5"})
    ax.set_title(str(panel.get("title", "")), loc="left", fontsize=10, color="#333333")
    counted = [f for f in (pos, neg, anom) if f is not None]
    if counted:
        k = int(sum(int(f.sum()) for f in counted))
        ax.set_title(f"{k} anomal{'y' if k == 1 else 'ies'}", loc="right", fontsize=9, color="#777777")
    ax.grid(True, color="#e6e6e6", lw=0.7)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8.5, colors="#444444")
    finite = y[np.isfinite(y)]
    if finite.size:
        ax.margins(x=0.01)
