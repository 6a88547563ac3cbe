"""Intraday shape of a run: volume and spread by time of day (the U-shape of real sessions).

Definitions
    *Edges*: the first and the last ``EDGE_MIN`` (30) minutes of the session ``[open_ns, close_ns)``;
    *middle*: the rest. Defined only when the session is longer than two edges.
    *Volume U-shape*: mean volume per minute over both edges / mean volume per minute over the
    middle (``volume_u_shape``); ``volume_first_ratio`` / ``volume_last_ratio`` use one edge each.
    *Spread U-shape*: time-weighted mean quoted spread (bp of the mid, over the time both sides are
    quoted) in the edges / in the middle (``spread_u_shape``, ``spread_first_ratio``,
    ``spread_last_ratio``).
    *Profile* (:func:`profile`, for the plot): volume per minute and time-weighted mean spread in bp
    per ``bucket_min``-minute bucket from the open.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from desksim.analytics.numbers import finite_or_none
from sim.clock import MINUTE as MINUTE_NS

EDGE_MIN = 30

KEYS = (
    "volume_u_shape",
    "volume_first_ratio",
    "volume_last_ratio",
    "spread_u_shape",
    "spread_first_ratio",
    "spread_last_ratio",
)


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b > 0:
        return None
    return finite_or_none(a / b)


def volume_in(trades: pd.DataFrame | None, lo_ns: int, hi_ns: int) -> float:
    """Total traded quantity with ``lo_ns <= time_ns < hi_ns``."""
    if trades is None or not len(trades):
        return 0.0
    t = trades["time_ns"].to_numpy(dtype=np.int64)
    return float(trades["qty"].to_numpy(dtype=np.float64)[(t >= lo_ns) & (t < hi_ns)].sum())


def _spread_segments(quotes: pd.DataFrame | None, open_ns: int, close_ns: int) -> tuple[np.ndarray, ...]:
    """(start, end, spread_bps) of the two-sided stretches of the top of book within the session."""
    if quotes is None or not len(quotes):
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    q = quotes.sort_values("time_ns", kind="stable")
    t = np.clip(q["time_ns"].to_numpy(dtype=np.int64), open_ns, close_ns)
    end = np.r_[t[1:], np.int64(close_ns)]
    bid = pd.to_numeric(q["bid"], errors="coerce").to_numpy(dtype=np.float64)
    ask = pd.to_numeric(q["ask"], errors="coerce").to_numpy(dtype=np.float64)
    mid = (bid + ask) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        bps = (ask - bid) / mid * 1e4
    ok = np.isfinite(bps) & (mid > 0) & (end > t)
    return t[ok], end[ok], bps[ok]


def spread_in(segments: tuple[np.ndarray, ...], lo_ns: int, hi_ns: int) -> float | None:
    """Time-weighted mean spread (bp) over the two-sided time within ``[lo_ns, hi_ns)``."""
    start, end, bps = segments
    w = (np.minimum(end, hi_ns) - np.maximum(start, lo_ns)).clip(min=0).astype(np.float64)
    return finite_or_none(np.dot(w, bps) / w.sum()) if w.sum() > 0 else None


def intraday(trades: pd.DataFrame | None, quotes: pd.DataFrame | None, open_ns: int, close_ns: int) -> dict[str, Any]:
    """The U-shape ratios (keys in ``KEYS``; definitions in the module docstring); None when the
    session is not longer than two edges or the middle has no volume / no two-sided quote."""
    out: dict[str, Any] = dict.fromkeys(KEYS)
    edge = EDGE_MIN * MINUTE_NS
    if close_ns - open_ns <= 2 * edge:
        return out
    a, b = open_ns + edge, close_ns - edge
    mid_min = (b - a) / MINUTE_NS
    first, last = volume_in(trades, open_ns, a) / EDGE_MIN, volume_in(trades, b, close_ns) / EDGE_MIN
    middle = volume_in(trades, a, b) / mid_min
    out["volume_u_shape"] = _ratio((first + last) / 2, middle)
    out["volume_first_ratio"] = _ratio(first, middle)
    out["volume_last_ratio"] = _ratio(last, middle)
    seg = _spread_segments(quotes, open_ns, close_ns)
    s_first, s_last, s_mid = spread_in(seg, open_ns, a), spread_in(seg, b, close_ns), spread_in(seg, a, b)
    w_first = _two_sided_time(seg, open_ns, a)
    w_last = _two_sided_time(seg, b, close_ns)
    edges: float | None
    if s_first is not None and s_last is not None:
        edges = (s_first * w_first + s_last * w_last) / (w_first + w_last)
    else:
        edges = s_first if s_first is not None else s_last
    out["spread_u_shape"] = _ratio(edges, s_mid)
    out["spread_first_ratio"] = _ratio(s_first, s_mid)
    out["spread_last_ratio"] = _ratio(s_last, s_mid)
    return out


def _two_sided_time(segments: tuple[np.ndarray, ...], lo_ns: int, hi_ns: int) -> float:
    start, end, _ = segments
    return float((np.minimum(end, hi_ns) - np.maximum(start, lo_ns)).clip(min=0).sum())


def profile(
    trades: pd.DataFrame | None, quotes: pd.DataFrame | None, open_ns: int, close_ns: int, bucket_min: int = 15
) -> pd.DataFrame:
    """Per bucket from the open: ``start_min``, ``volume_per_min``, ``spread_bps`` (None without quotes)."""
    step = bucket_min * MINUTE_NS
    seg = _spread_segments(quotes, open_ns, close_ns)
    rows = []
    for lo in range(open_ns, close_ns, step):
        hi = min(lo + step, close_ns)
        rows.append(
            {
                "start_min": (lo - open_ns) / MINUTE_NS,
                "volume_per_min": volume_in(trades, lo, hi) / ((hi - lo) / MINUTE_NS),
                "spread_bps": spread_in(seg, lo, hi),
            }
        )
    return pd.DataFrame(rows, columns=["start_min", "volume_per_min", "spread_bps"])
