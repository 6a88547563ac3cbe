"""Flash-crash measures of one run (issue 16, "what it must show"), from its ``trades`` and ``quotes``.

Pure functions on the recorded tables (see actors/exchange/exchange.py and marketdata.py):
``trades`` ``time_ns, price, qty, maker, taker, ...`` (one row per execution; ``maker`` is the owner
of the resting order, ``taker`` the aggressor's) and ``quotes`` ``time_ns, bid, bid_qty, ask,
ask_qty`` (a row per change of the top of book). Prices may be in any unit (ticks in the tables):
every figure below is a percentage or a ratio. Times are integer nanoseconds.

Definitions
    *Price path*: the trade prices in time order (last sale; auction prints included). A price
    holds until the next print (a step function), so the price "in force" at time ``x`` is the
    last print at or before ``x``.
    *Worst 15-minute fall* (``fall_15m_pct``): ``max over prints i of (M_i - p_i) / M_i * 100``
    where ``M_i`` is the highest price in force during ``[t_i - 15 min, t_i]``: the prints in that
    window and the price in force at its start (the last print before it). 0 for a path that never
    falls, NaN without prints. The *trough* is the first print attaining the maximum; the *peak* is
    the last print at price ``M`` before it, and the fall *starts* at ``max(t_peak, t_trough - 15
    min)`` (the window's start when the peak is the price carried into it).
    *Mid fall* (``mid_fall_15m_pct``): the same on the mid ``(bid + ask) / 2`` of the quote rows with
    both sides quoted (one-sided and empty books are left out).
    *Level fall* (``vwap_fall_15m_pct``): the same on the path of 1-minute volume-weighted average
    prices (each minute's VWAP of its prints, placed at the minute's end; minutes without prints
    left out): whether the *level* fell, not a few prints swept through an empty book. A sweep of
    100 shares to a stub quote in a minute of 20,000 shares moves it by 0.5 % of the gap. (The
    E-mini's fall of 6 May 2010, about 5 % in a few minutes, was a fall of the level.)
    *Recovered share within 20 minutes* (``recovered_20m_share``): ``(H - p_trough) / (M -
    p_trough)`` clipped to [0, 1], ``H`` the highest print after the trough up to ``t_trough + 20
    min`` (``p_trough`` when nothing prints): the share of the fall won back at best within 20
    minutes. NaN when there was no fall (0 %) or when the 20 minutes are not all inside the run
    (``t_trough + 20 min > end_ns``: a fall at the very end of the day has no recovery figure, it
    is not counted as "not recovered").
    *Fall window*: ``[start, start + max(t_trough - start, 1 min)]``, clipped at the end of the run:
    the fall itself, at least one minute long (an instantaneous sweep is judged over the minute it
    starts). *Before window*: the hour before the fall, ``[max(open, start - 60 min), start)`` (as
    much of it as the session has: 30 minutes for a fall at 10:00 in a 09:30 session). The three
    criteria below are NaN when either window is empty or when there was no fall.
    *Volume ratio* (``crash_volume_ratio``): shares traded per minute in the fall window / shares
    traded per minute in the before window (inf when nothing traded before and something during).
    2010 criterion: >= 3.
    *Depth ratio* (``crash_depth_min_ratio``): depth at the touch is ``bid_qty + ask_qty`` of the top
    of book (0 for an empty side and before the first quote), a step function of time. Normal depth
    is its time-weighted mean over the before window; the fall window is cut into ``max(1,
    round(length / 1 min))`` equal buckets (about a minute each) and the ratio is the smallest
    bucket's time-weighted mean / the normal depth (NaN when the normal depth is 0). 2010
    criterion: < 0.25 (the touch lost three quarters of its depth for a minute or more).
    *Maker-to-maker ratio* (``crash_m2m_ratio``): a maker-to-maker trade has both its resting and its
    aggressing order owned by market makers (the actors named in ``makers``). Its share of the
    volume (shares) in the fall window / its share in the before window (inf when the before
    share is 0 and the fall share is not; NaN when both are 0, when a window traded nothing or
    when ``makers`` is not given). 2010 criterion ("hot potato" trading rose): > 1.
    *One-sided share* (``crash_one_sided_share``): the time-weighted share of the crash episode,
    from the fall's start to 20 minutes after its trough (clipped at the end of the run), in which
    the book had no bid or no ask (a side with no quantity; before the first quote row counts as
    two-sided, as there is no book to judge). Not a 2010 criterion but a check on one: a large-cap
    book is not one-sided in continuous trading, not even on 6 May 2010 (the E-mini's depth fell to
    about 1 % of its morning level, never to nothing; the stocks that printed at a penny still had
    a stub quote on that side). A high share says the "crash" is trading in an empty book. NaN when
    there was no fall or no quotes.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sim.clock import MINUTE

#: length of the window a fall is measured in, of the recovery window and of the "before" window.
FALL_WINDOW_NS = 15 * MINUTE
RECOVERY_WINDOW_NS = 20 * MINUTE
BEFORE_WINDOW_NS = 60 * MINUTE
#: the shortest fall window the criteria are judged on, and the depth buckets' target length.
MIN_FALL_WINDOW_NS = MINUTE
DEPTH_BUCKET_NS = MINUTE

#: the 2010 thresholds (summary shares; see desksim/mc/summary.py).
CRASH_FALL_PCT = 5.0
BASELINE_FALL_PCT = 3.0
VOLUME_RATIO_MIN = 3.0
DEPTH_RATIO_MAX = 0.25
M2M_RATIO_MIN = 1.0
RECOVERED_MIN = 0.5

#: the columns :func:`crash_metrics` returns, in order (all float64; times in seconds after open).
KEYS = (
    "fall_15m_pct",
    "fall_15m_start_s",
    "fall_15m_trough_s",
    "recovered_20m_share",
    "mid_fall_15m_pct",
    "vwap_fall_15m_pct",
    "crash_volume_ratio",
    "crash_depth_min_ratio",
    "crash_m2m_ratio",
    "crash_one_sided_share",
)

NAN = math.nan


@dataclass(frozen=True, slots=True)
class Fall:
    """The worst fall within a window: % of the peak, where it starts and where it bottoms out.

    ``trough`` is the index of the trough print in the (time-sorted) path; the times and prices are
    None when there was no fall (``pct`` 0) or no path (``pct`` NaN)."""

    pct: float
    start_ns: int | None = None
    trough_ns: int | None = None
    peak_price: float | None = None
    trough_price: float | None = None
    trough: int | None = None

    @property
    def found(self) -> bool:
        return self.trough_ns is not None


def _path(times_ns: Any, prices: Any) -> tuple[np.ndarray, np.ndarray]:
    """Finite positive prices and their times, sorted by time (stable: record order kept)."""
    t = np.asarray(times_ns, dtype=np.int64)
    p = np.asarray(prices, dtype=np.float64)
    ok = np.isfinite(p) & (p > 0)
    t, p = t[ok], p[ok]
    order = np.argsort(t, kind="stable")
    return t[order], p[order]


def worst_fall(times_ns: Any, prices: Any, window_ns: int = FALL_WINDOW_NS) -> Fall:
    """The worst peak-to-trough fall within any ``window_ns`` (see the module docstring)."""
    t, p = _path(times_ns, prices)
    if p.size == 0:
        return Fall(NAN)
    inside = pd.Series(p, index=pd.to_timedelta(t, unit="ns")).rolling(pd.Timedelta(window_ns, "ns"), closed="both")
    peak = inside.max().to_numpy(dtype=np.float64)
    first = np.searchsorted(t, t - window_ns, side="left")  # first print inside each window
    # the price in force at the window's start: the print before it, unless a print falls exactly on it
    carries = (first > 0) & (t[first] > t - window_ns)
    carried = np.where(carries, p[np.maximum(first - 1, 0)], -np.inf)
    peak = np.maximum(peak, carried)
    fall = (peak - p) / peak
    i = int(np.argmax(fall))
    if not fall[i] > 0:
        return Fall(0.0)
    lo = int(first[i]) - 1 if carries[i] else int(first[i])
    top = float(peak[i])
    j = lo + int(np.nonzero(p[lo : i + 1] == top)[0][-1])  # the last print at the peak
    start = max(int(t[j]), int(t[i]) - window_ns)
    return Fall(float(fall[i] * 100.0), start, int(t[i]), top, float(p[i]), i)


def recovered_share(
    times_ns: Any,
    prices: Any,
    fall: Fall,
    end_ns: int | None = None,
    window_ns: int = RECOVERY_WINDOW_NS,
) -> float:
    """Share (0..1) of ``fall`` won back at best within ``window_ns`` after its trough; NaN when there
    was no fall or the window runs past ``end_ns`` (default: the last print). ``fall`` must come
    from :func:`worst_fall` on the same path."""
    if not fall.found or fall.trough is None or fall.peak_price is None or fall.trough_price is None:
        return NAN
    t, p = _path(times_ns, prices)
    end = int(t[-1]) if end_ns is None else int(end_ns)
    assert fall.trough_ns is not None
    limit = fall.trough_ns + window_ns
    if limit > end:
        return NAN
    after = p[fall.trough + 1 : int(np.searchsorted(t, limit, side="right"))]
    best = float(after.max()) if after.size else fall.trough_price
    share = (best - fall.trough_price) / (fall.peak_price - fall.trough_price)
    return float(min(1.0, max(0.0, share)))


def windows(fall: Fall, open_ns: int, end_ns: int) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """``((start, end) of the fall window, (start, end) of the before window)``, or None when there
    was no fall or either window is empty. The fall window is closed, the before window half-open."""
    if not fall.found or fall.start_ns is None or fall.trough_ns is None:
        return None
    a = fall.start_ns
    b = min(a + max(fall.trough_ns - a, MIN_FALL_WINDOW_NS), int(end_ns))
    c = max(int(open_ns), a - BEFORE_WINDOW_NS)
    if b <= a or a <= c:
        return None
    return (a, b), (c, a)


def _ratio(during: float, before: float) -> float:
    if not (math.isfinite(during) and math.isfinite(before)):
        return NAN
    if before > 0:
        return during / before
    return math.inf if during > 0 else NAN


def volume_ratio(trades: pd.DataFrame, fall: Fall, open_ns: int, end_ns: int) -> float:
    """Shares per minute in the fall window / in the before window (see the module docstring)."""
    w = windows(fall, open_ns, end_ns)
    if w is None or trades is None or not len(trades):
        return NAN
    (a, b), (c, _) = w
    t = trades["time_ns"].to_numpy(dtype=np.int64)
    q = trades["qty"].to_numpy(dtype=np.float64)
    during = q[(t >= a) & (t <= b)].sum() / ((b - a) / MINUTE)
    before = q[(t >= c) & (t < a)].sum() / ((a - c) / MINUTE)
    return _ratio(float(during), float(before))


def step_integral(times_ns: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``integral of v from -inf to x`` for each ``x`` in ``at``, ``v`` the step function that takes
    ``values[k]`` from ``times_ns[k]`` until the next row (the last row of equal times wins) and is
    0 before the first row. ``times_ns`` sorted."""
    t = np.asarray(times_ns, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    x = np.asarray(at, dtype=np.int64)
    if t.size == 0:
        return np.zeros(x.shape, dtype=np.float64)
    area = np.concatenate(([0.0], np.cumsum(v[:-1] * np.diff(t).astype(np.float64))))
    k = np.searchsorted(t, x, side="right") - 1
    kk = np.maximum(k, 0)
    out = area[kk] + v[kk] * (x - t[kk]).astype(np.float64)
    return np.where(k >= 0, out, 0.0)


def touch_sides(quotes: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times (sorted), bid quantity and ask quantity at the touch (missing as 0) of the quote rows."""
    t = quotes["time_ns"].to_numpy(dtype=np.int64)
    bid = pd.to_numeric(quotes["bid_qty"], errors="coerce").fillna(0).to_numpy(dtype=np.float64)
    ask = pd.to_numeric(quotes["ask_qty"], errors="coerce").fillna(0).to_numpy(dtype=np.float64)
    order = np.argsort(t, kind="stable")
    return t[order], bid[order], ask[order]


def touch_depth(quotes: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Times (sorted) and depth at the touch (``bid_qty + ask_qty``, missing as 0) of the quote rows."""
    t, bid, ask = touch_sides(quotes)
    return t, bid + ask


def one_sided_share(quotes: pd.DataFrame | None, fall: Fall, end_ns: int) -> float:
    """The time-weighted share of the crash episode with no bid or no ask (see the module docstring)."""
    if not fall.found or fall.start_ns is None or fall.trough_ns is None or quotes is None or not len(quotes):
        return NAN
    a, b = fall.start_ns, min(fall.trough_ns + RECOVERY_WINDOW_NS, int(end_ns))
    if b <= a:
        return NAN
    t, bid, ask = touch_sides(quotes)
    one_sided = ((bid <= 0) | (ask <= 0)).astype(np.float64)
    cum = step_integral(t, one_sided, np.array([a, b], dtype=np.int64))
    return float((cum[1] - cum[0]) / (b - a))


def depth_ratio(quotes: pd.DataFrame, fall: Fall, open_ns: int, end_ns: int) -> float:
    """The smallest ~1-minute time-weighted mean touch depth in the fall window / the time-weighted
    mean over the before window (see the module docstring)."""
    w = windows(fall, open_ns, end_ns)
    if w is None or quotes is None or not len(quotes):
        return NAN
    (a, b), (c, _) = w
    t, depth = touch_depth(quotes)
    n = max(1, round((b - a) / DEPTH_BUCKET_NS))
    edges = np.unique(np.linspace(a, b, n + 1).round().astype(np.int64))
    cum = step_integral(t, depth, np.concatenate(([c, a], edges)))
    normal = (cum[1] - cum[0]) / (a - c)
    buckets = np.diff(cum[2:]) / np.diff(edges).astype(np.float64)
    if not normal > 0:
        return NAN
    return float(buckets.min() / normal)


def maker_share_ratio(
    trades: pd.DataFrame, fall: Fall, open_ns: int, end_ns: int, makers: Collection[str] | None
) -> float:
    """Maker-to-maker share of the volume in the fall window / in the before window (see the
    module docstring); NaN without ``makers``."""
    w = windows(fall, open_ns, end_ns)
    if w is None or makers is None or trades is None or not len(trades):
        return NAN
    (a, b), (c, _) = w
    names = list(makers)
    t = trades["time_ns"].to_numpy(dtype=np.int64)
    q = trades["qty"].to_numpy(dtype=np.float64)
    m2m = (trades["maker"].isin(names) & trades["taker"].isin(names)).to_numpy()

    def share(mask: np.ndarray) -> float:
        total = q[mask].sum()
        return float(q[mask & m2m].sum() / total) if total > 0 else NAN

    during, before = share((t >= a) & (t <= b)), share((t >= c) & (t < a))
    if math.isnan(during) or math.isnan(before):
        return NAN
    return _ratio(during, before)


def mid_path(quotes: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """Times and mids of the quote rows with both sides quoted."""
    if quotes is None or not len(quotes):
        return np.empty(0, dtype=np.int64), np.empty(0)
    bid = pd.to_numeric(quotes["bid"], errors="coerce").to_numpy(dtype=np.float64)
    ask = pd.to_numeric(quotes["ask"], errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask > 0)
    return quotes["time_ns"].to_numpy(dtype=np.int64)[ok], (bid[ok] + ask[ok]) / 2.0


def minute_vwaps(times_ns: Any, prices: Any, qty: Any, origin_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Each minute's (counted from ``origin_ns``) volume-weighted average print price, placed at the
    minute's end; minutes without a print (or without volume) are left out."""
    t = np.asarray(times_ns, dtype=np.int64)
    p = np.asarray(prices, dtype=np.float64)
    q = np.asarray(qty, dtype=np.float64)
    ok = np.isfinite(p) & (p > 0) & np.isfinite(q) & (q > 0)
    if not ok.any():
        return np.empty(0, dtype=np.int64), np.empty(0)
    t, p, q = t[ok], p[ok], q[ok]
    minute = (t - int(origin_ns)) // MINUTE
    keys, idx = np.unique(minute, return_inverse=True)
    value = np.bincount(idx, weights=p * q)
    volume = np.bincount(idx, weights=q)
    return int(origin_ns) + (keys + 1) * MINUTE, value / volume


def crash_metrics(
    trades: pd.DataFrame | None,
    quotes: pd.DataFrame | None,
    open_ns: int,
    end_ns: int,
    makers: Collection[str] | None = None,
    fall: Fall | None = None,
) -> dict[str, float]:
    """Every measure of :data:`KEYS` for one run (see the module docstring); ``end_ns`` is when the
    run stopped (the close, or earlier for a shortened run); ``fall``: :func:`worst_fall` of the
    trade prices when the caller has it already."""
    from sim.clock import SECOND

    out = dict.fromkeys(KEYS, NAN)
    has = trades is not None and len(trades) > 0
    t = trades["time_ns"].to_numpy(dtype=np.int64) if has else np.empty(0, dtype=np.int64)  # type: ignore[index]
    p = trades["price"].to_numpy(dtype=np.float64) if has else np.empty(0)  # type: ignore[index]
    if fall is None:
        fall = worst_fall(t, p)
    out["fall_15m_pct"] = fall.pct
    if fall.found:
        assert fall.start_ns is not None and fall.trough_ns is not None
        out["fall_15m_start_s"] = (fall.start_ns - open_ns) / SECOND
        out["fall_15m_trough_s"] = (fall.trough_ns - open_ns) / SECOND
    out["recovered_20m_share"] = recovered_share(t, p, fall, end_ns)
    out["mid_fall_15m_pct"] = worst_fall(*mid_path(quotes)).pct
    if has:
        assert trades is not None
        out["vwap_fall_15m_pct"] = worst_fall(*minute_vwaps(t, p, trades["qty"].to_numpy(), open_ns)).pct
        out["crash_volume_ratio"] = volume_ratio(trades, fall, open_ns, end_ns)
        out["crash_m2m_ratio"] = maker_share_ratio(trades, fall, open_ns, end_ns, makers)
    if quotes is not None and len(quotes):
        out["crash_depth_min_ratio"] = depth_ratio(quotes, fall, open_ns, end_ns)
        out["crash_one_sided_share"] = one_sided_share(quotes, fall, end_ns)
    return out
