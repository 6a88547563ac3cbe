"""Realism statistics of a run, after Vyetrenko et al. 2019 ("Get Real") and LOB-Bench.

Input is a run's ``trades`` table (``time_ns``, ``price`` in integer ticks, ``qty``), optionally its
``quotes`` table (top-of-book snapshots ``time_ns, bid, bid_qty, ask, ask_qty``; a missing side is
None/NaN; each row holds until the next one, the last until ``close_ns``) and its ``orders`` table
(order-flow statistics: desksim/analytics/orderflow.py; intraday shape: desksim/analytics/intraday.py;
real-market reference ranges and pass/fail: desksim/analytics/targets.py).

Bars
    The session ``[open_ns, close_ns)`` is cut into 1-minute bins counted from ``open_ns`` (the last bin
    may be partial). A bar's price is the **mid** ``(bid + ask) / 2`` of the book at the end of its
    minute (the last two-sided snapshot strictly before the minute's end; one-sided stretches carry
    the last two-sided mid) when the run has two-sided quotes -- the real-market figures are mid
    returns, free of bid-ask bounce; without quotes it is the last trade price in the minute
    (``return_basis`` says which). Prices are forward-filled over minutes without a change. Minutes
    before the first price are dropped, so the bars run from the first price's minute to the close.
    Trades outside the session are ignored. Returns are differences of log prices (tick size cancels
    out). k-minute returns use non-overlapping bars: every k-th bar, on each of the k grids that start
    at the first bar and at each of the k - 1 bars after it.

Return statistics (Cont 2001; "Get Real" section 4)
    ``kurtosis_{1,5,30}m``: excess (Fisher) kurtosis, bias-corrected -- heavy tails, which should fade
    as returns aggregate (``kurtosis_drop_1m_30m = kurtosis_1m - kurtosis_30m`` > 0). At k > 1 minutes
    it is the mean over the k grids (``grid_kurtosis``): a day has only 12-13 half-hour returns, and
    on one grid the estimate swings with the minute the grid happens to start on (the baseline's
    seed 2: from -1.1 to 7.2 over its 30 grids); the mean keeps each grid's sample size, so the
    same small-sample quantity, without the dependence on the phase. ``n_returns_{5,30}m``: returns
    on the first grid.
    ``acf1_1m``: lag-1 autocorrelation of 1-minute returns (no linear predictability), also per
    30-minute window (``acf1_30m_windows``: consecutive, non-overlapping windows of 30 returns from the
    first one; a partial last window is dropped) with its mean, min and max.
    ``abs_acf``: autocorrelation of |r| at lags 1..10 and its mean (volatility clustering).
    ``corr_volume_absret``: Pearson correlation of volume in minute t with |r_t| (r_t ends in minute t);
    also Spearman.
    ``leverage``: ``corr(r_t, r_{t+k}^2)`` for lags 1..10 and its mean (negative: the leverage effect,
    falls raise later volatility).
    ``return_std_1m_bps``: sample standard deviation of 1-minute log returns in basis points.

Output
    :func:`realism` returns a flat, JSON-serialisable dict (plain ``int``/``float``/``None``/lists; every
    statistic that cannot be computed -- too few points, zero variance, no quotes -- is ``None``), with
    ``grades``: ``{statistic: pass}`` against the real-market ranges (targets.py).
    :func:`checks` turns it into pass/fail flags for the four classic stylised-fact targets (used by
    Monte Carlo pass rates) and :func:`format_table` renders those per seed as plain text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from desksim.analytics.intraday import intraday
from desksim.analytics.numbers import finite_or_none
from desksim.analytics.orderflow import orderflow
from desksim.analytics.targets import SOURCE, TARGETS, grade
from sim.clock import MINUTE as MINUTE_NS

#: fewest points (returns, or pairs) a statistic is computed on; below that it is None.
MIN_POINTS = 8
#: lags of the |r| autocorrelation (volatility clustering).
ABS_ACF_LAGS = 10
#: aggregation scales (minutes) of the excess-kurtosis statistics.
KURTOSIS_SCALES = (1, 5, 30)
#: returns per window of the rolling lag-1 autocorrelation.
ACF_WINDOW = 30
#: lags of the leverage correlation corr(r_t, r_{t+k}^2).
LEVERAGE_LAGS = 10

# Stylised-fact targets (see DESIGN.md "Facts worth knowing").
#: heavy tails: excess kurtosis of 1-minute returns must exceed this.
KURTOSIS_1M_MIN = 1.0
#: no linear predictability: |lag-1 autocorrelation of 1-minute returns| must stay below this.
ACF1_ABS_MAX = 0.10
#: volatility clustering: mean autocorrelation of |r| over lags 1..10 must exceed this: the lower
#: end of the real-day range (targets.py; real large-cap days 0.04-0.07). It was 0.05 until
#: 2026-12-05, which failed about half of the real days it stands for.
ABS_ACF_MEAN_MIN = 0.02
#: volume-volatility relation: Pearson corr(volume per minute, |r| per minute) must exceed this.
VOLUME_ABSRET_CORR_MIN = 0.2

#: check name -> (statistic key, human-readable target); the order of the table columns.
CHECKS: dict[str, tuple[str, str]] = {
    "heavy_tails": ("kurtosis_1m", f"excess kurtosis 1m > {KURTOSIS_1M_MIN:g}"),
    "no_autocorrelation": ("acf1_1m", f"|acf lag 1| < {ACF1_ABS_MAX:g}"),
    "volatility_clustering": ("abs_acf_mean", f"mean acf |r| lags 1-{ABS_ACF_LAGS} > {ABS_ACF_MEAN_MIN:g}"),
    "volume_volatility": ("corr_volume_absret", f"corr(volume, |r|) > {VOLUME_ABSRET_CORR_MIN:g}"),
}


# --------------------------------------------------------------------------- small numeric helpers


def acf(x: Sequence[float] | np.ndarray, nlags: int) -> np.ndarray:
    """Sample autocorrelation at lags 1..nlags (standard estimator, mean removed, common denominator).

    ``rho_k = sum_{t<n-k} (x_t - m)(x_{t+k} - m) / sum_t (x_t - m)^2``. Entries are NaN when the series
    has zero variance, fewer than ``MIN_POINTS`` points, or the lag is not shorter than the series.
    """
    arr = np.asarray(x, dtype=np.float64)
    out = np.full(nlags, np.nan)
    n = arr.size
    if n < MIN_POINTS:
        return out
    xc = arr - arr.mean()
    denom = float(np.dot(xc, xc))
    if not denom > 0.0 or not math.isfinite(denom):
        return out
    for k in range(1, min(nlags, n - 1) + 1):
        out[k - 1] = float(np.dot(xc[:-k], xc[k:])) / denom
    return out


def excess_kurtosis(x: Sequence[float] | np.ndarray) -> float | None:
    """Bias-corrected excess (Fisher) kurtosis; None below ``MIN_POINTS`` points or at zero variance."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.size < MIN_POINTS or not np.ptp(arr) > 0.0:
        return None
    return finite_or_none(sps.kurtosis(arr, fisher=True, bias=False))


def grid_kurtosis(logp: np.ndarray, k: int) -> float | None:
    """Mean over the k phase grids (offsets 0..k-1) of the excess kurtosis of non-overlapping
    k-minute log returns; grids with too few returns are left out, None when none has enough."""
    values = [v for off in range(k) if (v := excess_kurtosis(np.diff(logp[off::k]))) is not None]
    return finite_or_none(float(np.mean(values))) if values else None


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    if a.size < MIN_POINTS or not np.ptp(a) > 0.0 or not np.ptp(b) > 0.0:
        return None
    return finite_or_none(np.corrcoef(a, b)[0, 1])


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    if a.size < MIN_POINTS or not np.ptp(a) > 0.0 or not np.ptp(b) > 0.0:
        return None
    ra = sps.rankdata(a)
    rb = sps.rankdata(b)
    return finite_or_none(np.corrcoef(ra, rb)[0, 1])


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float | None:
    """Inverse-CDF quantile of a weighted sample: smallest value whose cumulative weight reaches q."""
    keep = weights > 0
    values, weights = values[keep], weights[keep]
    if values.size == 0:
        return None
    order = np.argsort(values, kind="stable")
    values, cum = values[order], np.cumsum(weights[order])
    idx = int(np.searchsorted(cum, q * cum[-1], side="left"))
    return finite_or_none(values[min(idx, values.size - 1)])


# --------------------------------------------------------------------------- bars


def minute_bars(trades: pd.DataFrame, open_ns: int, close_ns: int) -> pd.DataFrame:
    """1-minute bars from the first trade's minute to the close.

    Columns: ``minute`` (index since open), ``price`` (last trade price, forward-filled, float ticks),
    ``volume`` (sum of qty, 0 when empty), ``trades`` (count). Empty frame when there is no trade.
    """
    n_minutes = max(0, -(-(int(close_ns) - int(open_ns)) // MINUTE_NS))
    empty = pd.DataFrame({"minute": [], "price": [], "volume": [], "trades": []})
    if trades is None or len(trades) == 0 or n_minutes == 0:
        return empty
    t = trades["time_ns"].to_numpy(dtype=np.int64)
    price = trades["price"].to_numpy(dtype=np.float64)
    qty = trades["qty"].to_numpy(dtype=np.float64)
    keep = (t >= open_ns) & (t < close_ns) & np.isfinite(price) & (price > 0)
    if not keep.any():
        return empty
    t, price, qty = t[keep], price[keep], qty[keep]
    order = np.argsort(t, kind="stable")  # same-instant trades keep their recorded order
    t, price, qty = t[order], price[order], qty[order]
    minute = (t - int(open_ns)) // MINUTE_NS
    first = int(minute[0])
    n_bars = n_minutes - first
    rel = minute - first
    last = np.r_[rel[1:] != rel[:-1], True]  # last trade of each minute
    bar_price = np.full(n_bars, np.nan)
    bar_price[rel[last]] = price[last]
    bar_price = pd.Series(bar_price).ffill().to_numpy()
    volume = np.bincount(rel, weights=np.nan_to_num(qty), minlength=n_bars)
    count = np.bincount(rel, minlength=n_bars)
    return pd.DataFrame({"minute": np.arange(first, n_minutes), "price": bar_price, "volume": volume, "trades": count})


def mid_bars(quotes: pd.DataFrame | None, trades: pd.DataFrame | None, open_ns: int, close_ns: int) -> pd.DataFrame:
    """1-minute mid bars from the first two-sided quote's minute to the close (columns as
    :func:`minute_bars`; ``price`` is the mid in ticks at the end of the minute, ``volume`` and
    ``trades`` come from the trades table). Empty frame when no two-sided quote exists."""
    n_minutes = max(0, -(-(int(close_ns) - int(open_ns)) // MINUTE_NS))
    empty = pd.DataFrame({"minute": [], "price": [], "volume": [], "trades": []})
    if quotes is None or not len(quotes) or n_minutes == 0:
        return empty
    bid = pd.to_numeric(quotes["bid"], errors="coerce").to_numpy(dtype=np.float64)
    ask = pd.to_numeric(quotes["ask"], errors="coerce").to_numpy(dtype=np.float64)
    t = quotes["time_ns"].to_numpy(dtype=np.int64)
    ok = np.isfinite(bid) & np.isfinite(ask) & (t < close_ns)
    if not ok.any():
        return empty
    order = np.argsort(t[ok], kind="stable")
    t, mid = t[ok][order], ((bid + ask) / 2.0)[ok][order]
    ends = np.minimum(int(open_ns) + (np.arange(n_minutes, dtype=np.int64) + 1) * MINUTE_NS, int(close_ns))
    idx = np.searchsorted(t, ends, side="left") - 1
    first = int(np.argmax(idx >= 0)) if (idx >= 0).any() else n_minutes
    idx = idx[first:]
    price = mid[idx]
    vol: np.ndarray = np.zeros(idx.size)
    count: np.ndarray = np.zeros(idx.size, dtype=np.int64)
    if trades is not None and len(trades):
        tt = trades["time_ns"].to_numpy(dtype=np.int64)
        keep = (tt >= open_ns) & (tt < close_ns)
        rel = (tt[keep] - int(open_ns)) // MINUTE_NS - first
        inb = rel >= 0
        q = np.nan_to_num(trades["qty"].to_numpy(dtype=np.float64)[keep][inb])
        vol = np.bincount(rel[inb], weights=q, minlength=idx.size)[: idx.size]
        count = np.bincount(rel[inb], minlength=idx.size)[: idx.size]
    return pd.DataFrame({"minute": np.arange(first, n_minutes), "price": price, "volume": vol, "trades": count})


def window_acf1(r: np.ndarray, window: int = ACF_WINDOW) -> list[float | None]:
    """Lag-1 autocorrelation of each consecutive, non-overlapping window of ``window`` returns."""
    return [finite_or_none(acf(r[i : i + window], 1)[0]) for i in range(0, r.size - window + 1, window)]


def leverage(r: np.ndarray, nlags: int = LEVERAGE_LAGS) -> list[float | None]:
    """``corr(r_t, r_{t+k}^2)`` for k = 1..nlags (Pearson; None when not computable)."""
    return [_pearson(r[:-k], r[k:] ** 2) if r.size > k else None for k in range(1, nlags + 1)]


# --------------------------------------------------------------------------- quotes


def _quote_stats(quotes: pd.DataFrame | None, open_ns: int, close_ns: int, tick_size: float) -> dict[str, Any]:
    """Time-weighted top-of-book statistics over ``[open_ns, close_ns)``.

    Each snapshot holds from its time until the next snapshot (the last until the close); times are
    clipped to the session, so a snapshot before the open sets the book at the open. Spread statistics
    are over the time both sides are present; depth (bid_qty + ask_qty, a missing side counting 0) and
    the empty-side fraction are over the whole session. ``spread_median_bps`` is the time-weighted
    median of the spread in bp of the mid, ``depth_touch_median`` the time-weighted median of the mean
    size at the touch ``(bid_qty + ask_qty) / 2``, both over the two-sided time.
    """
    out: dict[str, Any] = {
        "n_quotes": 0,
        "spread_mean_ticks": None,
        "spread_mean_bps": None,
        "spread_median_ticks": None,
        "spread_p95_ticks": None,
        "spread_mean_price": None,
        "frac_time_one_side_empty": None,
        "depth_mean": None,
        "spread_median_bps": None,
        "depth_touch_median": None,
    }
    if quotes is None or len(quotes) == 0 or close_ns <= open_ns:
        return out
    out["n_quotes"] = len(quotes)
    t = quotes["time_ns"].to_numpy(dtype=np.int64)
    order = np.argsort(t, kind="stable")
    t = np.clip(t[order], open_ns, close_ns)
    dur = np.diff(np.r_[t, np.int64(close_ns)]).astype(np.float64)

    def col(name: str) -> np.ndarray:
        return pd.to_numeric(quotes[name], errors="coerce").to_numpy(dtype=np.float64)[order]

    bid, ask = col("bid"), col("ask")
    bid_qty, ask_qty = np.nan_to_num(col("bid_qty")), np.nan_to_num(col("ask_qty"))
    total = float(dur.sum())
    if not total > 0:
        return out
    two_sided = np.isfinite(bid) & np.isfinite(ask)
    out["frac_time_one_side_empty"] = finite_or_none(dur[~two_sided].sum() / total)
    out["depth_mean"] = finite_or_none(np.dot(bid_qty + ask_qty, dur) / total)
    w = dur[two_sided]
    if w.sum() > 0:
        spread = (ask - bid)[two_sided]
        mid = ((ask + bid) / 2.0)[two_sided]
        with np.errstate(divide="ignore", invalid="ignore"):
            bps = np.where(mid > 0, spread / mid * 1e4, np.nan)
        ok = np.isfinite(bps)
        mean_ticks = float(np.dot(spread, w) / w.sum())
        out["spread_mean_ticks"] = finite_or_none(mean_ticks)
        out["spread_mean_price"] = finite_or_none(mean_ticks * tick_size)
        if w[ok].sum() > 0:
            out["spread_mean_bps"] = finite_or_none(np.dot(bps[ok], w[ok]) / w[ok].sum())
        out["spread_median_ticks"] = _weighted_quantile(spread, w, 0.5)
        if w[ok].sum() > 0:
            out["spread_median_bps"] = _weighted_quantile(bps[ok], w[ok], 0.5)
        touch = ((bid_qty + ask_qty) / 2.0)[two_sided]
        out["depth_touch_median"] = _weighted_quantile(touch, w, 0.5)
        out["spread_p95_ticks"] = _weighted_quantile(spread, w, 0.95)
    return out


# --------------------------------------------------------------------------- public API


def realism(
    trades: pd.DataFrame | None,
    quotes: pd.DataFrame | None,
    open_ns: int,
    close_ns: int,
    tick_size: float,
    orders: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Realism statistics of one run (see the module docstring for the bars and definitions).

    Keys:
      counts -- ``n_trades`` (in session), ``n_bars``, ``n_returns``, ``session_minutes``,
      ``minutes_no_trade`` (minutes from the first trade on without a trade), ``return_basis``
      (``"mid"`` or ``"trade"``);
      returns -- ``kurtosis_1m``, ``kurtosis_5m``, ``kurtosis_30m``, ``kurtosis_drop_1m_30m``,
      ``n_returns_5m``, ``n_returns_30m``, ``acf1_1m``, ``acf1_30m_windows`` (list) with ``_mean``,
      ``_min``, ``_max``, ``abs_acf`` (lags 1..10, list), ``abs_acf_mean``, ``corr_volume_absret``,
      ``corr_volume_absret_spearman``, ``leverage`` (lags 1..10, list), ``leverage_mean``,
      ``return_std_1m``, ``return_std_1m_bps``;
      quotes -- ``n_quotes``, ``spread_mean_ticks``, ``spread_mean_bps``, ``spread_median_ticks``,
      ``spread_median_bps``, ``spread_p95_ticks``, ``spread_mean_price``, ``frac_time_one_side_empty``,
      ``depth_mean``, ``depth_touch_median``, ``depth_touch_to_trade_size`` (over the median trade size);
      order flow -- orderflow.KEYS (needs ``orders``; trade sizes and execution gaps need only trades);
      intraday -- intraday.KEYS; ``grades`` -- ``{statistic: pass or None}`` (targets.py).
    Anything not computable is None; nothing raises on empty or degenerate input.
    """
    open_ns, close_ns = int(open_ns), int(close_ns)
    tbars = minute_bars(trades if trades is not None else pd.DataFrame(), open_ns, close_ns)
    bars = mid_bars(quotes, trades, open_ns, close_ns)
    basis = "mid" if len(bars) else "trade"
    if not len(bars):
        bars = tbars
    n_minutes = max(0, -(-(close_ns - open_ns) // MINUTE_NS))
    logp = np.log(bars["price"].to_numpy(dtype=np.float64)) if len(bars) else np.empty(0)
    r = np.diff(logp)
    volume = bars["volume"].to_numpy(dtype=np.float64)[1:] if len(bars) else np.empty(0)

    out: dict[str, Any] = {
        "n_trades": int(tbars["trades"].sum()) if len(tbars) else 0,
        "n_bars": len(bars),
        "n_returns": int(r.size),
        "session_minutes": int(n_minutes),
        "minutes_no_trade": int((tbars["trades"] == 0).sum()) if len(tbars) else 0,
        "return_basis": basis,
    }
    for k in KURTOSIS_SCALES:
        out[f"kurtosis_{k}m"] = grid_kurtosis(logp, k) if k > 1 else excess_kurtosis(r)
        if k > 1:
            out[f"n_returns_{k}m"] = max(0, (logp.size - 1) // k)
    k1, k30 = out["kurtosis_1m"], out["kurtosis_30m"]
    out["kurtosis_drop_1m_30m"] = finite_or_none(k1 - k30) if k1 is not None and k30 is not None else None
    out["return_std_1m"] = finite_or_none(r.std(ddof=1)) if r.size >= MIN_POINTS else None
    out["return_std_1m_bps"] = finite_or_none(out["return_std_1m"] * 1e4) if out["return_std_1m"] is not None else None
    out["acf1_1m"] = finite_or_none(acf(r, 1)[0])
    windows = window_acf1(r)
    out["acf1_30m_windows"] = windows
    finite_w = [w for w in windows if w is not None]
    out["acf1_30m_windows_mean"] = finite_or_none(np.mean(finite_w)) if finite_w else None
    out["acf1_30m_windows_min"] = finite_or_none(min(finite_w)) if finite_w else None
    out["acf1_30m_windows_max"] = finite_or_none(max(finite_w)) if finite_w else None
    abs_acf = acf(np.abs(r), ABS_ACF_LAGS)
    out["abs_acf"] = [finite_or_none(v) for v in abs_acf]
    finite = abs_acf[np.isfinite(abs_acf)]
    out["abs_acf_mean"] = finite_or_none(finite.mean()) if finite.size else None
    absr = np.abs(r)
    out["corr_volume_absret"] = _pearson(volume, absr)
    out["corr_volume_absret_spearman"] = _spearman(volume, absr)
    lev = leverage(r)
    out["leverage"] = lev
    finite_l = [v for v in lev if v is not None]
    out["leverage_mean"] = finite_or_none(np.mean(finite_l)) if finite_l else None
    out.update(_quote_stats(quotes, open_ns, close_ns, float(tick_size)))
    out.update(orderflow(orders, _in_session(trades, open_ns, close_ns), quotes))
    depth, size = out["depth_touch_median"], out["trade_size_median"]
    out["depth_touch_to_trade_size"] = finite_or_none(depth / size) if depth is not None and size else None
    out.update(intraday(trades, quotes, open_ns, close_ns))
    out["grades"] = grade(out)
    return out


def _in_session(trades: pd.DataFrame | None, open_ns: int, close_ns: int) -> pd.DataFrame | None:
    if trades is None or not len(trades):
        return trades
    t = trades["time_ns"].to_numpy(dtype=np.int64)
    return trades[(t >= open_ns) & (t < close_ns)]


def checks(stats: dict[str, Any]) -> dict[str, bool]:
    """Pass/fail of the four stylised-fact targets; a missing (None) statistic fails."""

    def val(key: str) -> float | None:
        return finite_or_none(stats.get(key))

    kurt, rho1, clus, corr = (val(CHECKS[name][0]) for name in CHECKS)
    return {
        "heavy_tails": kurt is not None and kurt > KURTOSIS_1M_MIN,
        "no_autocorrelation": rho1 is not None and abs(rho1) < ACF1_ABS_MAX,
        "volatility_clustering": clus is not None and clus > ABS_ACF_MEAN_MIN,
        "volume_volatility": corr is not None and corr > VOLUME_ABSRET_CORR_MIN,
    }


def format_table(stats_by_seed: Mapping[Any, dict[str, Any]]) -> str:
    """Plain-text table: one row per realism target (targets.py), one column per seed (int keys,
    sorted, headed "seed N") or per label (str keys, in the given order), each cell the value marked
    ``ok`` / ``FAIL`` (``n/a`` when not computed); the last row counts the passes."""
    seeds: list[Any] = list(stats_by_seed)
    if not any(isinstance(k, str) for k in seeds):
        seeds.sort()
    header = ["statistic", "range", *(k if isinstance(k, str) else f"seed {k}" for k in seeds)]
    rows: list[list[str]] = []
    passed = dict.fromkeys(seeds, 0)
    for t in TARGETS:
        row = [t.key, t.text]
        for seed in seeds:
            v = finite_or_none(stats_by_seed[seed].get(t.key))
            ok = t.check(v)
            passed[seed] += bool(ok)
            row.append("n/a" if v is None else f"{v:+.3f} {'ok' if ok else 'FAIL'}")
        rows.append(row)
    rows.append(["passed", "", *(f"{passed[seed]}/{len(TARGETS)}" for seed in seeds)])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in pairs)

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header).rstrip(), sep, *(line(r).rstrip() for r in rows), f"ranges: {SOURCE}"]) + "\n"
