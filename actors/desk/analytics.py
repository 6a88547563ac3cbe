"""Desk analytics: pure functions over a desk's fills, parent orders and a price series.

Inputs are plain records (what :class:`actors.desk.desk.StrategyDesk` keeps):

- fills: mappings with ``time_ns``, ``side`` ("B"/"S"), ``price`` (ticks), ``qty``, and for the
  execution figures ``parent_id`` and ``child_mid`` (mid in ticks when the child was sent);
- parents: mappings with ``parent_id``, ``side``, ``qty``, ``arrival_mid`` (ticks) and
  optionally ``end_mid`` (mid when the parent closed, for the opportunity cost);
- prices: ``(time_ns, price_in_ticks)`` pairs in time order (the desk's ``marks``: the mid at
  every decision time and at the end of the run).

Money is currency: ticks × ``tick_size``. Definitions:

- **P&L** (mark to market) at each price time ``t``: ``cash + position·price`` over the fills
  up to and including ``t`` (no fees).
- **Horizons.** Every ratio states its horizon (``ratio_horizons`` in the summary). Intraday
  P&L is not annualised as if its increments were daily returns: a ratio needs at least
  ``MIN_INCREMENTS`` (30) increments, else it is None ("n/a").
- **Sharpe** (horizon: one mark interval, ``interval_s``): mean / standard deviation (ddof = 1)
  of the P&L increments between consecutive marks (P&L on a fixed capital, scale free).
- **Annualised Sharpe**: only for runs of at least one trading day (``MIN_ANNUALISE_S``, 6.5 h):
  the per-interval Sharpe times Lo's (2002) ``eta(q) = q / sqrt(q + 2 sum_{k=1}^{q-1} (q-k) rho_k)``,
  ``q = seconds_per_year / interval_s`` (252 days of 6.5 h), with the increments' sample
  autocorrelations ``rho_k`` up to ``LO_MAX_LAG`` lags (zero beyond); ``eta = sqrt(q)`` when they
  are uncorrelated. Shorter runs: None.
- **Sortino** (horizon: one interval): mean increment / downside deviation
  ``sqrt(mean(min(d, 0)^2))`` (target 0); None without a losing interval.
- **Max drawdown**: the largest fall of the P&L from its running peak, the peak starting at 0
  (before the first trade); in currency, and as a fraction of ``capital`` when given.
- **Calmar** (horizon: the run, not annualised): total P&L / max drawdown.
- **Win rate**: per round trip. A round trip runs from flat to flat (a fill that flips the
  position closes one round trip at its price and opens the next); its P&L is the realised P&L
  on average cost. Win rate = round trips with P&L > 0 / closed round trips.
- **Implementation shortfall** per parent, against the arrival mid (positive = cost, for buys
  and sells alike): execution cost ``s·Σ(fill - arrival)·qty`` (s = +1 buy, -1 sell), in
  currency and in bps of ``arrival · filled``; the opportunity cost of the unfilled part
  ``s·(end_mid - arrival)·unfilled``; and their total in bps of ``arrival · qty``.
- **Slippage**: per fill ``s·(price - child_mid) / child_mid`` in bps; the desk figure is the
  quantity-weighted mean (positive = paid away from the mid).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from actors.units import DEFAULT_TICK_SIZE
from sim.clock import SECOND

TRADING_SECONDS_PER_YEAR = 252 * 6.5 * 3600
#: fewest P&L increments for a Sharpe / Sortino ratio (else None: "n/a")
MIN_INCREMENTS = 30
#: shortest run whose Sharpe may be annualised: one trading day
MIN_ANNUALISE_S = 6.5 * 3600
#: autocorrelation lags in Lo's (2002) correction
LO_MAX_LAG = 10

PARENT_COLUMNS = [
    "parent_id", "side", "qty", "algo", "arrival_mid", "decision_ns", "start_ns", "end_ns",
    "position_at_decision", "target_position", "signal", "edge", "filled_qty", "notional_ticks",
    "avg_price", "n_children", "status", "done_ns", "end_mid", "unfilled_qty", "oms_parent_id",
]  # fmt: skip
FILL_COLUMNS = ["time_ns", "parent_id", "child_id", "side", "price", "qty", "liquidity", "child_mid", "arrival_mid"]
SHORTFALL_COLUMNS = ["is_bps", "is_currency", "opportunity_currency", "total_is_bps", "total_is_currency"]

Record = Mapping[str, Any]


def _sign(side: str) -> int:
    return 1 if side == "B" else -1


def _by_time(fills: Iterable[Record]) -> list[Record]:
    return sorted(fills, key=lambda f: f["time_ns"])  # stable: same-time fills keep their order


# ---------------------------------------------------------------------------------------------
# P&L and risk-adjusted figures
# ---------------------------------------------------------------------------------------------


def position_series(fills: Iterable[Record]) -> list[tuple[int, int]]:
    """(time_ns, position after the fill) for every fill."""
    pos = 0
    out = []
    for f in _by_time(fills):
        pos += _sign(f["side"]) * f["qty"]
        out.append((f["time_ns"], pos))
    return out


def pnl_series(
    fills: Iterable[Record], prices: Sequence[tuple[int, float]], tick_size: float = 1.0
) -> list[tuple[int, float]]:
    """Mark-to-market P&L (currency) at each price time: fills at or before it count."""
    return [(t, pnl) for t, _, _, pnl in _pnl_rows(fills, prices, tick_size)]


def _pnl_rows(
    fills: Iterable[Record], prices: Sequence[tuple[int, float]], tick_size: float
) -> list[tuple[int, float, int, float]]:
    fs = _by_time(fills)
    i, n = 0, len(fs)
    pos, cash = 0, 0.0
    out = []
    for t, px in prices:
        while i < n and fs[i]["time_ns"] <= t:
            f = fs[i]
            q = _sign(f["side"]) * f["qty"]
            pos += q
            cash -= q * f["price"]
            i += 1
        out.append((t, float(px), pos, (cash + pos * px) * tick_size))
    return out


def total_pnl(fills: Iterable[Record], final_price: float, tick_size: float = 1.0) -> float:
    """P&L (currency) of all fills marked at ``final_price`` (ticks)."""
    pos, cash = 0, 0.0
    for f in fills:
        q = _sign(f["side"]) * f["qty"]
        pos += q
        cash -= q * f["price"]
    return (cash + pos * final_price) * tick_size


def increments(values: Sequence[float]) -> list[float]:
    return [values[k] - values[k - 1] for k in range(1, len(values))]


def sharpe_ratio(pnl_values: Sequence[float], min_increments: int = MIN_INCREMENTS) -> float | None:
    """Sharpe of the P&L increments at their own horizon (one interval); None with fewer than
    ``min_increments`` increments or no variation."""
    d = increments(pnl_values)
    if len(d) < max(2, min_increments):
        return None
    mean = math.fsum(d) / len(d)
    var = math.fsum((x - mean) ** 2 for x in d) / (len(d) - 1)
    if var <= 0.0:
        return None
    return mean / math.sqrt(var)


def sortino_ratio(pnl_values: Sequence[float], min_increments: int = MIN_INCREMENTS) -> float | None:
    """Mean increment / downside deviation ``sqrt(mean(min(d, 0)^2))`` (target 0), one interval."""
    d = increments(pnl_values)
    if len(d) < max(2, min_increments):
        return None
    down = math.fsum(min(x, 0.0) ** 2 for x in d) / len(d)
    if down <= 0.0:
        return None
    return math.fsum(d) / len(d) / math.sqrt(down)


def autocorrelations(d: Sequence[float], max_lag: int) -> list[float]:
    """Sample autocorrelations rho_1..rho_max_lag (biased estimator: sums over n)."""
    n = len(d)
    mean = math.fsum(d) / n
    c0 = math.fsum((x - mean) ** 2 for x in d)
    if c0 <= 0.0:
        return [0.0] * max_lag
    return [math.fsum((d[i] - mean) * (d[i + k] - mean) for i in range(n - k)) / c0 for k in range(1, max_lag + 1)]


def lo_eta(q: float, rhos: Sequence[float]) -> float:
    """Lo (2002): the factor taking a one-period Sharpe to ``q`` periods with autocorrelated returns,
    ``q / sqrt(q + 2 sum_k (q - k) rho_k)`` (``sqrt(q)`` when uncorrelated)."""
    inner = q + 2.0 * math.fsum((q - k) * r for k, r in enumerate(rhos, start=1) if k < q)
    return q / math.sqrt(inner) if inner > 0 else math.nan


def annualised_sharpe(
    pnl_values: Sequence[float],
    interval_s: float,
    elapsed_s: float,
    seconds_per_year: float = TRADING_SECONDS_PER_YEAR,
    max_lag: int = LO_MAX_LAG,
) -> float | None:
    """Per-interval Sharpe times Lo's eta(q), q = periods per year; None for runs shorter than a
    trading day (one intraday episode says nothing about a year) or too few increments."""
    sr = sharpe_ratio(pnl_values)
    if sr is None or interval_s <= 0 or elapsed_s < MIN_ANNUALISE_S:
        return None
    d = increments(pnl_values)
    eta = lo_eta(seconds_per_year / interval_s, autocorrelations(d, min(max_lag, len(d) - 1)))
    return sr * eta if math.isfinite(eta) else None


def max_drawdown(values: Sequence[float], start: float = 0.0) -> float:
    """Largest fall from a running peak (peak starts at ``start``); >= 0."""
    peak, worst = start, 0.0
    for v in values:
        if v > peak:
            peak = v
        elif peak - v > worst:
            worst = peak - v
    return worst


def calmar_ratio(total: float, max_dd: float) -> float | None:
    """P&L over the run / max drawdown (horizon: the run, not annualised); None without drawdown."""
    if max_dd <= 0.0:
        return None
    return total / max_dd


def round_trips(fills: Iterable[Record], tick_size: float = 1.0) -> list[float]:
    """Realised P&L (currency) of each closed flat-to-flat round trip, in time order."""
    pos = 0
    avg = 0.0  # average cost of the open position (ticks)
    current = 0.0
    out: list[float] = []
    for f in _by_time(fills):
        s, qty, px = _sign(f["side"]), f["qty"], f["price"]
        while qty > 0:
            if pos == 0 or (pos > 0) == (s > 0):  # open or add
                avg = (avg * abs(pos) + px * qty) / (abs(pos) + qty)
                pos += s * qty
                qty = 0
            else:  # reduce, maybe close (and flip with the rest)
                closing = min(qty, abs(pos))
                current += (px - avg) * closing * (1 if pos > 0 else -1)
                pos += s * closing
                qty -= closing
                if pos == 0:
                    out.append(current * tick_size)
                    current = 0.0
                    avg = 0.0
    return out


def win_rate(trips: Sequence[float]) -> float | None:
    return sum(1 for x in trips if x > 0) / len(trips) if trips else None


# ---------------------------------------------------------------------------------------------
# Execution quality
# ---------------------------------------------------------------------------------------------


def implementation_shortfall(parent: Record, fills: Iterable[Record], tick_size: float = 1.0) -> dict[str, Any]:
    """Shortfall of one parent against its arrival mid (``fills`` = that parent's fills)."""
    s = _sign(parent["side"])
    arrival = float(parent["arrival_mid"])
    qty = int(parent["qty"])
    filled, notional = 0, 0.0
    for f in fills:
        filled += f["qty"]
        notional += f["qty"] * f["price"]
    exec_ticks = s * (notional - arrival * filled)
    unfilled = max(0, qty - filled)
    end_mid = parent.get("end_mid")
    end = float(end_mid) if end_mid is not None else arrival
    opp_ticks = s * (end - arrival) * unfilled
    return {
        "parent_id": parent["parent_id"],
        "side": parent["side"],
        "qty": qty,
        "filled_qty": filled,
        "avg_price": notional / filled if filled else None,
        "arrival_mid": arrival,
        "is_bps": exec_ticks / (arrival * filled) * 1e4 if filled and arrival else None,
        "is_currency": exec_ticks * tick_size,
        "opportunity_currency": opp_ticks * tick_size,
        "total_is_bps": (exec_ticks + opp_ticks) / (arrival * qty) * 1e4 if qty and arrival else None,
        "total_is_currency": (exec_ticks + opp_ticks) * tick_size,
    }


def shortfalls(parents: Iterable[Record], fills: Iterable[Record], tick_size: float = 1.0) -> list[dict[str, Any]]:
    """:func:`implementation_shortfall` of every parent."""
    by_parent: dict[Any, list[Record]] = {}
    for f in fills:
        by_parent.setdefault(f["parent_id"], []).append(f)
    return [implementation_shortfall(p, by_parent.get(p["parent_id"], ()), tick_size) for p in parents]


def fill_slippage_bps(fill: Record) -> float | None:
    mid = fill.get("child_mid")
    if not mid:
        return None
    return _sign(fill["side"]) * (fill["price"] - mid) / mid * 1e4


def slippage_bps(fills: Iterable[Record]) -> float | None:
    """Quantity-weighted mean slippage vs the mid at child submission (bps)."""
    num = den = 0.0
    for f in fills:
        s = fill_slippage_bps(f)
        if s is not None:
            num += s * f["qty"]
            den += f["qty"]
    return num / den if den else None


# ---------------------------------------------------------------------------------------------
# Summary and tables
# ---------------------------------------------------------------------------------------------


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def desk_summary(
    fills: Sequence[Record],
    parents: Sequence[Record],
    prices: Sequence[tuple[int, float]],
    *,
    tick_size: float = DEFAULT_TICK_SIZE,
    interval_s: float = 60.0,
    capital: float | None = None,
    seconds_per_year: float = TRADING_SECONDS_PER_YEAR,
) -> dict[str, Any]:
    """JSON-friendly desk figures (plain ints, floats and None) for ``summary.json``.

    Keys: parents, parents_filled, fills, filled_qty, bought_qty, sold_qty, ordered_qty,
    fill_rate, final_position, final_mid_ticks (the last mark), pnl_ccy, sharpe, sharpe_annual, sortino,
    max_drawdown_ccy, max_drawdown_pct, calmar, ratio_horizons, round_trips, win_rate, is_bps,
    is_currency, opportunity_currency, total_is_bps, total_is_currency, slippage_bps.
    """
    series = pnl_series(fills, prices, tick_size)
    values = [v for _, v in series]
    if prices:
        final_price: float | None = float(prices[-1][1])
    elif fills:
        final_price = float(_by_time(fills)[-1]["price"])
    else:
        final_price = None
    total = total_pnl(fills, final_price, tick_size) if final_price is not None else 0.0
    if values:
        values[-1] = total  # fills after the last mark still count
    dd = max_drawdown(values)
    elapsed = (prices[-1][0] - prices[0][0]) / SECOND if len(prices) > 1 else 0.0
    trips = round_trips(fills, tick_size)
    sf = shortfalls(parents, fills, tick_size)
    bought = sum(f["qty"] for f in fills if f["side"] == "B")
    sold = sum(f["qty"] for f in fills if f["side"] != "B")
    ordered = sum(int(p["qty"]) for p in parents)
    exec_ticks = sum(x["is_currency"] for x in sf) / tick_size
    exec_base = sum(x["arrival_mid"] * x["filled_qty"] for x in sf)
    total_ticks = sum(x["total_is_currency"] for x in sf) / tick_size
    total_base = sum(x["arrival_mid"] * x["qty"] for x in sf)
    out = {
        "parents": len(parents),
        "parents_filled": sum(1 for x in sf if x["filled_qty"] >= x["qty"]),
        "fills": len(fills),
        "filled_qty": bought + sold,
        "bought_qty": bought,
        "sold_qty": sold,
        "ordered_qty": ordered,
        "fill_rate": (sum(x["filled_qty"] for x in sf) / ordered) if ordered else None,
        "final_position": bought - sold,
        "final_mid_ticks": final_price,
        "pnl_ccy": total,
        "sharpe": sharpe_ratio(values),
        "sharpe_annual": annualised_sharpe(values, interval_s, elapsed, seconds_per_year),
        "sortino": sortino_ratio(values),
        "max_drawdown_ccy": dd,
        "max_drawdown_pct": dd / capital * 100.0 if capital else None,
        "calmar": calmar_ratio(total, dd),
        "ratio_horizons": {
            "sharpe": f"{interval_s:g} s P&L increments",
            "sortino": f"{interval_s:g} s P&L increments",
            "sharpe_annual": "a year of 252 x 6.5 h, Lo (2002) autocorrelation-corrected; runs of >= 6.5 h only",
            "calmar": f"the run ({elapsed:g} s), not annualised",
        },
        "round_trips": len(trips),
        "win_rate": win_rate(trips),
        "is_bps": exec_ticks / exec_base * 1e4 if exec_base else None,
        "is_currency": exec_ticks * tick_size,
        "opportunity_currency": sum(x["opportunity_currency"] for x in sf),
        "total_is_bps": total_ticks / total_base * 1e4 if total_base else None,
        "total_is_currency": total_ticks * tick_size,
        "slippage_bps": slippage_bps(fills),
    }
    return {k: _clean(v) for k, v in out.items()}


def desk_frames(
    fills: Sequence[Record],
    parents: Sequence[Record],
    prices: Sequence[tuple[int, float]],
    *,
    tick_size: float = DEFAULT_TICK_SIZE,
    desk: str | None = None,
) -> dict[str, Any]:
    """pandas DataFrames for Parquet tables: ``desk_pnl`` (time_ns, price, position, pnl),
    ``desk_parents`` (parent records joined with their shortfall) and ``desk_fills`` (fills with
    their slippage in bps). A ``desk`` column is added when ``desk`` is given."""
    import pandas as pd

    pnl = pd.DataFrame(_pnl_rows(fills, prices, tick_size), columns=["time_ns", "price", "position", "pnl"]).astype(
        {"time_ns": "int64", "price": "float64", "position": "int64", "pnl": "float64"}
    )
    sf = {x["parent_id"]: x for x in shortfalls(parents, fills, tick_size)}
    parent_rows = []
    for p in parents:
        row = dict(p)
        extra = sf[p["parent_id"]]
        for key in SHORTFALL_COLUMNS:
            row[key] = extra[key]
        parent_rows.append(row)
    parent_cols = [c for c in PARENT_COLUMNS if not parents or c in parents[0]] + SHORTFALL_COLUMNS
    parents_df = pd.DataFrame(parent_rows, columns=parent_cols)
    fill_cols = [c for c in FILL_COLUMNS if not fills or c in fills[0]] + ["slippage_bps"]
    fills_df = pd.DataFrame([{**f, "slippage_bps": fill_slippage_bps(f)} for f in fills], columns=fill_cols)
    frames = {"desk_pnl": pnl, "desk_parents": parents_df, "desk_fills": fills_df}
    if desk is not None:
        for df in frames.values():
            df.insert(0, "desk", desk)
    return frames
