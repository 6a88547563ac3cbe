"""Realism statistics of a run: do its 1-minute returns show the stylised facts of real markets?

Input is a run's ``trades`` table (``time_ns``, ``price`` in integer ticks, ``qty``) and optionally its
``quotes`` table (top-of-book snapshots ``time_ns, bid, bid_qty, ask, ask_qty``; a missing side is
None/NaN; each row holds until the next one, the last until ``close_ns``).

Bars
    The session ``[open_ns, close_ns)`` is cut into 1-minute bins counted from ``open_ns`` (the last bin
    may be partial). A bar's price is the last trade price in its minute, forward-filled over minutes
    without a trade. Minutes before the first trade are dropped, so the bars run from the first trade's
    minute to the close. Trades outside the session are ignored. Returns are differences of log prices
    (tick size cancels out). k-minute returns use non-overlapping bars: every k-th bar from the first.

Output
    :func:`realism` returns a flat, JSON-serialisable dict (plain ``int``/``float``/``None``/lists; every
    statistic that cannot be computed — too few points, zero variance, no quotes — is ``None``).
    :func:`checks` turns it into pass/fail flags for the four stylised-fact targets and
    :func:`format_table` renders those per seed as plain text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

MINUTE_NS = 60_000_000_000
#: fewest points (returns, or pairs) a statistic is computed on; below that it is None.
MIN_POINTS = 8
#: lags of the |r| autocorrelation (volatility clustering).
ABS_ACF_LAGS = 10
#: aggregation scales (minutes) of the excess-kurtosis statistics.
KURTOSIS_SCALES = (1, 5, 30)

# Stylised-fact targets (see DESIGN.md "Facts worth knowing").
#: heavy tails: excess kurtosis of 1-minute returns must exceed this.
KURTOSIS_1M_MIN = 1.0
#: no linear predictability: |lag-1 autocorrelation of 1-minute returns| must stay below this.
ACF1_ABS_MAX = 0.10
#: volatility clustering: mean autocorrelation of |r| over lags 1..10 must exceed this.
ABS_ACF_MEAN_MIN = 0.05
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


def _num(value: Any) -> float | None:
    """A plain float, or None for None/NaN/inf."""
    if value is None:
        return None
    out = float(value)
    return out if math.isfinite(out) else None


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
    return _num(sps.kurtosis(arr, fisher=True, bias=False))


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    if a.size < MIN_POINTS or not np.ptp(a) > 0.0 or not np.ptp(b) > 0.0:
        return None
    return _num(np.corrcoef(a, b)[0, 1])


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    if a.size < MIN_POINTS or not np.ptp(a) > 0.0 or not np.ptp(b) > 0.0:
        return None
    ra = sps.rankdata(a)
    rb = sps.rankdata(b)
    return _num(np.corrcoef(ra, rb)[0, 1])


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float | None:
    """Inverse-CDF quantile of a weighted sample: smallest value whose cumulative weight reaches q."""
    keep = weights > 0
    values, weights = values[keep], weights[keep]
    if values.size == 0:
        return None
    order = np.argsort(values, kind="stable")
    values, cum = values[order], np.cumsum(weights[order])
    idx = int(np.searchsorted(cum, q * cum[-1], side="left"))
    return _num(values[min(idx, values.size - 1)])


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


# --------------------------------------------------------------------------- quotes


def _quote_stats(quotes: pd.DataFrame | None, open_ns: int, close_ns: int, tick_size: float) -> dict[str, Any]:
    """Time-weighted top-of-book statistics over ``[open_ns, close_ns)``.

    Each snapshot holds from its time until the next snapshot (the last until the close); times are
    clipped to the session, so a snapshot before the open sets the book at the open. Spread statistics
    are over the time both sides are present; depth (bid_qty + ask_qty, a missing side counting 0) and
    the empty-side fraction are over the whole session.
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
    out["frac_time_one_side_empty"] = _num(dur[~two_sided].sum() / total)
    out["depth_mean"] = _num(np.dot(bid_qty + ask_qty, dur) / total)
    w = dur[two_sided]
    if w.sum() > 0:
        spread = (ask - bid)[two_sided]
        mid = ((ask + bid) / 2.0)[two_sided]
        with np.errstate(divide="ignore", invalid="ignore"):
            bps = np.where(mid > 0, spread / mid * 1e4, np.nan)
        ok = np.isfinite(bps)
        mean_ticks = float(np.dot(spread, w) / w.sum())
        out["spread_mean_ticks"] = _num(mean_ticks)
        out["spread_mean_price"] = _num(mean_ticks * tick_size)
        if w[ok].sum() > 0:
            out["spread_mean_bps"] = _num(np.dot(bps[ok], w[ok]) / w[ok].sum())
        out["spread_median_ticks"] = _weighted_quantile(spread, w, 0.5)
        out["spread_p95_ticks"] = _weighted_quantile(spread, w, 0.95)
    return out


# --------------------------------------------------------------------------- public API


def realism(
    trades: pd.DataFrame | None,
    quotes: pd.DataFrame | None,
    open_ns: int,
    close_ns: int,
    tick_size: float,
) -> dict[str, Any]:
    """Stylised-fact statistics of one run (see the module docstring for the bar construction).

    Keys:
      counts — ``n_trades`` (in session), ``n_bars``, ``n_returns``, ``session_minutes``,
      ``minutes_no_trade`` (bars without a trade, i.e. forward-filled);
      returns — ``kurtosis_1m``, ``kurtosis_5m``, ``kurtosis_30m`` (excess, bias-corrected),
      ``n_returns_5m``, ``n_returns_30m``, ``acf1_1m`` (lag-1 autocorrelation of 1-minute returns),
      ``abs_acf`` (autocorrelation of |r| at lags 1..10, list), ``abs_acf_mean`` (mean of its non-None
      entries), ``corr_volume_absret`` (Pearson, volume of minute t vs |r_t| where r_t ends in minute
      t), ``corr_volume_absret_spearman``, ``return_std_1m``;
      quotes — ``n_quotes``, ``spread_mean_ticks``, ``spread_mean_bps``, ``spread_median_ticks``,
      ``spread_p95_ticks``, ``spread_mean_price``, ``frac_time_one_side_empty``, ``depth_mean``.
    Anything not computable is None; nothing raises on empty or degenerate input.
    """
    open_ns, close_ns = int(open_ns), int(close_ns)
    bars = minute_bars(trades if trades is not None else pd.DataFrame(), open_ns, close_ns)
    n_minutes = max(0, -(-(close_ns - open_ns) // MINUTE_NS))
    logp = np.log(bars["price"].to_numpy(dtype=np.float64)) if len(bars) else np.empty(0)
    r = np.diff(logp)
    volume = bars["volume"].to_numpy(dtype=np.float64)[1:] if len(bars) else np.empty(0)

    out: dict[str, Any] = {
        "n_trades": int(bars["trades"].sum()) if len(bars) else 0,
        "n_bars": len(bars),
        "n_returns": int(r.size),
        "session_minutes": int(n_minutes),
        "minutes_no_trade": int((bars["trades"] == 0).sum()) if len(bars) else 0,
    }
    for k in KURTOSIS_SCALES:
        rk = np.diff(logp[::k]) if k > 1 else r
        out[f"kurtosis_{k}m"] = excess_kurtosis(rk)
        if k > 1:
            out[f"n_returns_{k}m"] = int(rk.size)
    out["return_std_1m"] = _num(r.std(ddof=1)) if r.size >= MIN_POINTS else None
    out["acf1_1m"] = _num(acf(r, 1)[0])
    abs_acf = acf(np.abs(r), ABS_ACF_LAGS)
    out["abs_acf"] = [_num(v) for v in abs_acf]
    finite = abs_acf[np.isfinite(abs_acf)]
    out["abs_acf_mean"] = _num(finite.mean()) if finite.size else None
    absr = np.abs(r)
    out["corr_volume_absret"] = _pearson(volume, absr)
    out["corr_volume_absret_spearman"] = _spearman(volume, absr)
    out.update(_quote_stats(quotes, open_ns, close_ns, float(tick_size)))
    return out


def checks(stats: dict[str, Any]) -> dict[str, bool]:
    """Pass/fail of the four stylised-fact targets; a missing (None) statistic fails."""

    def val(key: str) -> float | None:
        return _num(stats.get(key))

    kurt, rho1, clus, corr = (val(CHECKS[name][0]) for name in CHECKS)
    return {
        "heavy_tails": kurt is not None and kurt > KURTOSIS_1M_MIN,
        "no_autocorrelation": rho1 is not None and abs(rho1) < ACF1_ABS_MAX,
        "volatility_clustering": clus is not None and clus > ABS_ACF_MEAN_MIN,
        "volume_volatility": corr is not None and corr > VOLUME_ABSRET_CORR_MIN,
    }


_HEADERS = {
    "heavy_tails": "kurt 1m",
    "no_autocorrelation": "acf1 1m",
    "volatility_clustering": "mean acf|r| 1-10",
    "volume_volatility": "corr(vol,|r|)",
}


def format_table(stats_by_seed: dict[int, dict[str, Any]]) -> str:
    """Plain-text table: one row per seed, the four checked statistics each marked ``ok``/``FAIL``."""
    header = ["seed", *(_HEADERS[name] for name in CHECKS), "passed"]
    rows: list[list[str]] = []
    for seed in sorted(stats_by_seed):
        stats = stats_by_seed[seed]
        flags = checks(stats)
        row = [str(seed)]
        for name, (key, _target) in CHECKS.items():
            v = _num(stats.get(key))
            shown = "n/a" if v is None else f"{v:+.3f}"
            row.append(f"{shown} {'ok' if flags[name] else 'FAIL'}")
        row.append(f"{sum(flags.values())}/{len(flags)}")
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    targets = "targets: " + "; ".join(target for _key, target in CHECKS.values())
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows), targets]) + "\n"
