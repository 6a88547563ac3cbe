"""Order-flow statistics of a run (Vyetrenko et al. 2019 "Get Real"; LOB-Bench), from its ``orders``,
``trades`` and ``quotes`` tables.

Tables (as the exchange records them, see actors/exchange/exchange.py)
    ``orders``: ``time_ns, order_id, owner, event, side, price, qty, leaves_qty, detail`` with events
    ``submit`` (detail ``TIF[/post_only][/repriced|/auction]``, price NaN for a market order),
    ``replaced`` (price = new price, qty = new open qty; detail ``done`` when the replace ended the
    order), ``filled`` (detail ``taker`` / ``maker`` / ``auction``, leaves_qty after the fill),
    ``canceled`` (detail = reason: ``canceled``, ``ioc``, ``fok``, ``market``, ``price band``, ...).
    ``trades``: one row per execution against one resting order (``time_ns, price, qty, ...``).
    ``quotes``: top-of-book snapshots ``time_ns, bid, bid_qty, ask, ask_qty``.

Definitions (the message-level conventions of LOBSTER, so the figures compare with its sample days)
    *New resting order*: a DAY limit ``submit`` that was not completely filled on arrival (IOC, FOK and
    market orders are left out: they never rest), plus every ``replaced`` that leaves open quantity
    (a replace is a new order, as LOBSTER records it: deletion of the old order + a new submission).
    *Cancel*: a ``canceled`` row of a resting order (reasons ``ioc``, ``fok``, ``market`` are the
    remainders of orders that never rested and are left out) plus every replace (the deletion half).
    *Execution*: one row of the trades table (one resting order hit; a sweep of three levels counts 3).
    *Gaps*: differences of consecutive event times in seconds, zero gaps (same instant) included.
    *Coefficient of variation* (CV): ``std / mean`` of the gaps (population std); 1 for a Poisson
    process, above 1 for bursty (clustered) arrivals.
    *Weibull fit*: maximum-likelihood shape ``k`` and scale ``lambda`` (location 0) of the positive
    gaps: ``k = 1`` exponential (Poisson), ``k < 1`` bursty. The shape solves
    ``sum(x^k ln x) / sum(x^k) - 1/k = mean(ln x)``; then ``lambda = (mean(x^k))^(1/k)``.
    *Time to cancel*: seconds from an order's latest new-resting event (submit or replace) to its
    explicit cancel.
    *Placement distance*: for each new resting order, ticks behind the same side's best price just
    before it (the last quote snapshot strictly earlier): ``best_bid - price`` for a buy,
    ``price - best_ask`` for a sell; 0 = joins the touch, negative = improves inside the spread.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from desksim.analytics.numbers import finite_or_none
from sim.clock import SECOND as SECOND_NS

#: fewest points a distribution statistic is computed on; below that it is None.
MIN_POINTS = 8
#: cancel reasons of orders that never rested (remainders of IOC / FOK / market orders).
NON_RESTING_CANCELS = frozenset({"ioc", "fok", "market"})

KEYS = (
    "n_new_resting",
    "n_replaces",
    "n_cancels",
    "n_executions",
    "new_order_gap_mean_s",
    "new_order_gap_cv",
    "new_order_weibull_shape",
    "new_order_weibull_scale_s",
    "exec_gap_mean_s",
    "exec_gap_cv",
    "exec_weibull_shape",
    "executions_per_new_order",
    "cancels_per_new_order",
    "explicit_cancels_per_new_order",
    "order_size_median",
    "order_size_mean",
    "trade_size_median",
    "trade_size_mean",
    "time_to_cancel_median_s",
    "time_to_cancel_mean_s",
    "placement_median_ticks",
    "placement_mean_ticks",
    "placement_share_at_touch",
    "placement_share_inside",
)


def gap_cv(times_ns: np.ndarray) -> float | None:
    """CV (population std / mean) of the gaps between sorted event times; None below ``MIN_POINTS``
    gaps or when every gap is zero."""
    gaps = np.diff(np.sort(np.asarray(times_ns, dtype=np.int64))).astype(np.float64)
    if gaps.size < MIN_POINTS or not gaps.mean() > 0:
        return None
    return finite_or_none(gaps.std() / gaps.mean())


def weibull_fit(x: np.ndarray) -> tuple[float, float] | None:
    """Maximum-likelihood Weibull ``(shape, scale)`` with location 0 of the positive values of ``x``
    (see the module docstring); None below ``MIN_POINTS`` positive values or when they are all equal."""
    arr = np.asarray(x, dtype=np.float64)
    arr = arr[np.isfinite(arr) & (arr > 0)]
    if arr.size < MIN_POINTS or not np.ptp(arr) > 0:
        return None
    unit = float(arr.mean())
    arr = arr / unit  # scale-free: the shape does not depend on units
    logx = np.log(arr)
    mean_log = float(logx.mean())

    def score(k: float) -> float:
        w = np.exp(k * logx - np.max(k * logx))  # x^k, rescaled against overflow (ratio unchanged)
        return float(np.dot(w, logx) / w.sum()) - 1.0 / k - mean_log

    lo, hi = 1e-3, 1.0
    while score(hi) < 0 and hi < 1e3:  # score rises with k: bracket the root
        hi *= 2.0
    if score(lo) > 0 or score(hi) < 0:
        return None
    k = float(optimize.brentq(score, lo, hi, xtol=1e-10))
    scale = float(np.mean(arr**k) ** (1.0 / k))
    return k, scale * unit


def new_resting(orders: pd.DataFrame) -> pd.DataFrame:
    """The new-resting-order events (``time_ns, order_id, side, price, qty, kind``) sorted by time;
    kind is ``submit`` or ``replace`` (see the module docstring)."""
    cols = ["time_ns", "order_id", "side", "price", "qty", "kind"]
    if orders is None or not len(orders):
        return pd.DataFrame({c: [] for c in cols})
    ev = orders["event"]
    sub = orders[ev == "submit"]
    detail = sub["detail"].astype(str)
    sub = sub[((detail == "DAY") | detail.str.startswith("DAY/")) & sub["price"].notna()]
    fills = orders[(ev == "filled") & (orders["detail"] == "taker") & (orders["leaves_qty"] == 0)]
    if len(fills) and len(sub):  # completely filled on arrival: never rested
        done = pd.MultiIndex.from_arrays([fills["order_id"], fills["time_ns"]])
        sub = sub[~pd.MultiIndex.from_arrays([sub["order_id"], sub["time_ns"]]).isin(done)]
    rep = orders[(ev == "replaced") & (orders["detail"] != "done") & (orders["qty"] > 0)]
    out = pd.concat([sub.assign(kind="submit"), rep.assign(kind="replace")])[cols]
    return out.sort_values("time_ns", kind="stable").reset_index(drop=True)


def _placement(new: pd.DataFrame, quotes: pd.DataFrame | None) -> np.ndarray:
    """Placement distance in ticks of each new resting order (NaN when that side had no best price)."""
    if quotes is None or not len(quotes) or not len(new):
        return np.empty(0)
    q = quotes.sort_values("time_ns", kind="stable")
    qt = q["time_ns"].to_numpy(dtype=np.int64)
    bid = pd.to_numeric(q["bid"], errors="coerce").to_numpy(dtype=np.float64)
    ask = pd.to_numeric(q["ask"], errors="coerce").to_numpy(dtype=np.float64)
    idx = np.searchsorted(qt, new["time_ns"].to_numpy(dtype=np.int64), side="left") - 1
    ok = idx >= 0
    safe = np.where(ok, idx, 0)
    price = new["price"].to_numpy(dtype=np.float64)
    buy = (new["side"] == "B").to_numpy()
    dist = np.where(buy, bid[safe] - price, price - ask[safe])
    return np.where(ok, dist, np.nan)


def _median(x: np.ndarray) -> float | None:
    return finite_or_none(np.median(x)) if x.size else None


def _mean(x: np.ndarray) -> float | None:
    return finite_or_none(x.mean()) if x.size else None


def orderflow(orders: pd.DataFrame | None, trades: pd.DataFrame | None, quotes: pd.DataFrame | None) -> dict[str, Any]:
    """Order-flow statistics (keys in ``KEYS``; definitions in the module docstring). Anything that
    cannot be computed is None; nothing raises on empty input."""
    out: dict[str, Any] = dict.fromkeys(KEYS)
    orders = orders if orders is not None else pd.DataFrame(columns=["time_ns", "order_id", "event"])
    new = new_resting(orders) if len(orders) else new_resting(pd.DataFrame())
    n_new = len(new)
    n_rep = int((new["kind"] == "replace").sum()) if n_new else 0
    canceled = orders[orders["event"] == "canceled"] if len(orders) else orders
    explicit = canceled[~canceled["detail"].isin(NON_RESTING_CANCELS)] if len(canceled) else canceled
    n_exec = len(trades) if trades is not None else 0
    out.update(n_new_resting=n_new, n_replaces=n_rep, n_cancels=len(explicit) + n_rep, n_executions=n_exec)
    if n_new:
        out["executions_per_new_order"] = n_exec / n_new
        out["cancels_per_new_order"] = (len(explicit) + n_rep) / n_new
        out["explicit_cancels_per_new_order"] = len(explicit) / n_new
        t = new["time_ns"].to_numpy(dtype=np.int64)
        gaps = np.diff(t) / SECOND_NS
        out["new_order_gap_mean_s"] = _mean(gaps)
        out["new_order_gap_cv"] = gap_cv(t)
        fit = weibull_fit(gaps)
        if fit is not None:
            out["new_order_weibull_shape"], out["new_order_weibull_scale_s"] = fit
        size = new["qty"].to_numpy(dtype=np.float64)
        out["order_size_median"], out["order_size_mean"] = _median(size), _mean(size)
        dist = _placement(new, quotes)
        dist = dist[np.isfinite(dist)]
        if dist.size:
            out["placement_median_ticks"] = _median(dist)
            out["placement_mean_ticks"] = _mean(dist)
            out["placement_share_at_touch"] = finite_or_none((dist == 0).mean())
            out["placement_share_inside"] = finite_or_none((dist < 0).mean())
        if len(explicit):
            last_new = new[["order_id", "time_ns"]].drop_duplicates("order_id", keep="last")  # a cancel ends it
            both = explicit[["order_id", "time_ns"]].merge(last_new, on="order_id", suffixes=("", "_new"))
            life = (both["time_ns"] - both["time_ns_new"]).to_numpy(dtype=np.float64) / SECOND_NS
            life = life[life >= 0]
            out["time_to_cancel_median_s"], out["time_to_cancel_mean_s"] = _median(life), _mean(life)
    if n_exec:
        assert trades is not None
        te = trades["time_ns"].to_numpy(dtype=np.int64)
        out["exec_gap_mean_s"] = _mean(np.diff(np.sort(te)) / SECOND_NS)
        out["exec_gap_cv"] = gap_cv(te)
        fit = weibull_fit(np.diff(np.sort(te)) / SECOND_NS)
        out["exec_weibull_shape"] = fit[0] if fit is not None else None
        size = trades["qty"].to_numpy(dtype=np.float64)
        out["trade_size_median"], out["trade_size_mean"] = _median(size), _mean(size)
    return {k: (finite_or_none(v) if isinstance(v, float | np.floating) else v) for k, v in out.items()}
