"""Per-run metrics: the columns of ``runs.parquet`` and the one row a finished run gives.

``run_metrics`` turns a ``desksim.api.RunResult`` into a row of :data:`SCHEMA` (the sampled
parameters follow as ``param.<path>`` columns, see :meth:`desksim.mc.plan.Plan.schema`);
``metrics_digest`` is the Monte Carlo digest over those rows.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from actors.units import to_price
from desksim.analytics.anatomy import ROLE_KEYS, measures_of, role_nets
from desksim.analytics.crash import KEYS as CRASH_KEYS
from desksim.analytics.targets import TARGETS
from sim.clock import SECOND

#: a market "recovered" when a trade prints within this fraction of the pre-drop peak.
RECOVERY_BAND = 0.01
REALISM_CHECKS = ("heavy_tails", "no_autocorrelation", "volatility_clustering", "volume_volatility")
_FIRST_STATS = ("kurtosis_1m", "acf1_1m", "abs_acf_mean", "corr_volume_absret", "spread_mean_ticks", "depth_mean")
#: the run's realism statistics kept per run: the first six, then every other real-day target's
#: (desksim/analytics/targets.py), so a Monte Carlo says on how many seeds each range holds
REALISM_STATS = (*_FIRST_STATS, *(t.key for t in TARGETS if t.key not in _FIRST_STATS))

#: metric columns of runs.parquet in order (the sampled parameters follow as ``param.<path>``).
SCHEMA = pa.schema(
    [
        ("run", pa.int64()),
        ("run_seed", pa.string()),  # 128-bit: decimal digits
        ("scenario", pa.string()),
        ("digest", pa.string()),
        ("orders", pa.int64()),
        ("trades", pa.int64()),
        ("volume", pa.int64()),
        ("messages", pa.int64()),
        ("market_open", pa.float64()),
        ("market_close", pa.float64()),
        ("market_low", pa.float64()),
        ("market_high", pa.float64()),
        ("market_return_pct", pa.float64()),
        ("market_max_drawdown_pct", pa.float64()),
        ("market_mid_max_drawdown_pct", pa.float64()),
        ("market_trough_s", pa.float64()),
        ("market_time_to_recover_s", pa.float64()),
        ("desk_pnl", pa.float64()),
        ("desk_fees", pa.float64()),  # venue fees of the desk's fills (paid > 0, net rebate < 0)
        ("desk_pnl_net", pa.float64()),  # desk_pnl - desk_fees
        ("desk_max_drawdown", pa.float64()),
        ("desk_max_position", pa.float64()),
        ("desk_worst_position", pa.float64()),  # signed: the position furthest from flat
        ("desk_rejected_in_halts", pa.float64()),  # the desk's orders the exchange refused while halted
        ("kill_switch", pa.bool_()),
        ("kill_switch_s", pa.float64()),
        ("risk_breaches", pa.int64()),
        ("halts", pa.int64()),
        ("reconciliation_breaks", pa.int64()),
        # flash-crash measures (desksim/analytics/crash.py): worst 15-minute fall, its recovery, 2010 criteria
        *((name, pa.float64()) for name in CRASH_KEYS),
        # who traded the fall (desksim/analytics/anatomy.py): net shares bought by role, fall and recovery
        *((name, pa.float64()) for name in ROLE_KEYS),
        *((f"realism_{name}", pa.bool_()) for name in REALISM_CHECKS),
        ("realism_passed", pa.int64()),
        *((name, pa.float64()) for name in REALISM_STATS),
        ("realism_targets_met", pa.int64()),  # how many of the real-day targets' ranges hold (None: not met)
        ("wall_s", pa.float64()),
    ]
)
#: columns that measure the machine, not the simulation (excluded from equality checks).
TIMING_COLUMNS = ("wall_s",)


def market_path_metrics(times_ns: np.ndarray, prices: np.ndarray, open_ns: int) -> dict[str, float]:
    """Drawdown and recovery of a trade-price path (prices in any unit, times in ns).

    ``max_drawdown_pct``: largest peak-to-trough fall, % of the peak. The trough of that fall is
    "the low" (``trough_s`` seconds after ``open_ns``); ``time_to_recover_s`` runs from it to the
    first later trade within ``RECOVERY_BAND`` of the pre-drop peak (0 if the fall was smaller
    than the band, NaN if the market never got back).
    """
    nan = math.nan
    out = {"max_drawdown_pct": nan, "trough_s": nan, "time_to_recover_s": nan}
    p = np.asarray(prices, dtype=np.float64)
    t = np.asarray(times_ns, dtype=np.int64)
    if p.size == 0:
        return out
    peak = np.maximum.accumulate(p)
    dd = (peak - p) / peak
    j = int(np.argmax(dd))
    out["max_drawdown_pct"] = float(dd[j] * 100.0)
    out["trough_s"] = (int(t[j]) - int(open_ns)) / SECOND
    target = peak[j] * (1.0 - RECOVERY_BAND)
    later = np.nonzero(p[j:] >= target)[0]
    if later.size:
        out["time_to_recover_s"] = (int(t[j + int(later[0])]) - int(t[j])) / SECOND
    return out


def _pick(source: Any, *keys: str) -> Any:
    if not isinstance(source, dict):
        return None
    for key in keys:
        if source.get(key) is not None:
            return source[key]
    return None


def _float(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def _count(value: Any) -> int:
    """A count from an int, a list/dict of items, or a dict with a count-like key."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return int(value) if math.isfinite(value) else 0
    if isinstance(value, dict):
        inner = _pick(value, "count", "breaks", "total", "n")
        if inner is not None:
            return _count(inner)
        return len(value)
    if isinstance(value, list | tuple):
        return len(value)
    return 0


def _event_figures(summary: dict[str, Any], frames: dict[str, pd.DataFrame], open_ns: int) -> dict[str, Any]:
    """Desk / risk / halt / reconciliation figures from the summary (or the tables) when present."""
    desk = summary.get("desk") or {}
    risk = summary.get("risk") or {}
    out: dict[str, Any] = {
        "desk_pnl": _float(_pick(desk, "pnl_ccy")),
        "desk_fees": _float(_pick(desk, "fees_ccy")),
        "desk_pnl_net": _float(_pick(desk, "pnl_net_ccy")),
        "desk_max_drawdown": _float(_pick(desk, "max_drawdown_ccy")),
        "desk_max_position": _float(_pick(desk, "max_position", "max_abs_position")),
    }
    outcome = summary.get("desk_outcome") or {}  # desksim/analytics/desk_outcome.py
    out["desk_worst_position"] = _float(outcome.get("worst_position")) if outcome.get("has_desk") else math.nan
    out["desk_rejected_in_halts"] = (
        _float(outcome.get("orders_rejected_in_halts")) if outcome.get("has_desk") else math.nan
    )
    kill = _pick(risk, "kill_switch", "kill_switch_fired")
    kill_ns = _pick(risk, "kill_switch_ns", "kill_switch_time_ns")
    if isinstance(kill, dict):
        kill_ns = _pick(kill, "time_ns", "fired_ns", "trigger_ns") if kill_ns is None else kill_ns
        kill = _pick(kill, "fired", "triggered")
        kill = bool(kill) if kill is not None else kill_ns is not None
    events = frames.get("risk_events")
    if kill is None and events is not None and len(events) and "kind" in events:
        is_kill = events["kind"].astype(str).str.contains("kill", case=False)
        kill = bool(is_kill.any())
        if kill and "time_ns" in events:
            kill_ns = int(events.loc[is_kill, "time_ns"].iloc[0])
    out["kill_switch"] = bool(kill)
    out["kill_switch_s"] = (int(kill_ns) - open_ns) / SECOND if kill and kill_ns is not None else math.nan
    breaches = _pick(risk, "breaches", "risk_breaches", "n_events", "events")
    if breaches is None and events is not None:
        breaches = len(events)
    out["risk_breaches"] = _count(breaches)
    halts = summary.get("halts")
    table = frames.get("halts")
    if halts is None and table is not None and len(table) and "event" in table:
        halts = int((table["event"] == "halted").sum())
    out["halts"] = _count(halts)
    out["reconciliation_breaks"] = _count(summary.get("reconciliation"))
    return out


def mid_drawdown_pct(quotes: pd.DataFrame | None, open_ns: int) -> float:
    """The worst peak-to-trough fall of the mid (both sides quoted) within the run, % of the peak."""
    if quotes is None or not len(quotes):
        return math.nan
    bid = pd.to_numeric(quotes["bid"], errors="coerce").to_numpy(dtype=np.float64)
    ask = pd.to_numeric(quotes["ask"], errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask > 0)
    t = quotes["time_ns"].to_numpy(dtype=np.int64)[ok]
    return market_path_metrics(t, (bid[ok] + ask[ok]) / 2.0, open_ns)["max_drawdown_pct"]


def run_metrics(result: Any, index: int, seed: int, open_ns: int, tick: float) -> dict[str, Any]:
    """One row of runs.parquet from a ``desksim.api.RunResult``; the crash measures and each role's
    net in the fall are the run summary's ``worst_fall`` (computed once, in ``desksim.runner``)."""
    from desksim.analytics.realism import checks

    s = result.summary
    trades = result.frames.get("trades")
    row: dict[str, Any] = {
        "run": int(index),
        "run_seed": str(int(seed)),
        "scenario": s.get("scenario", ""),
        "digest": s["digest"],
        "orders": int(s.get("orders", 0)),
        "trades": int(s.get("trades", 0)),
        "volume": int(s.get("volume", 0)),
        "messages": int(s.get("messages_delivered", 0)),
    }
    has = trades is not None and len(trades) > 0
    px = to_price(trades["price"].to_numpy(dtype=np.float64), tick) if has else np.empty(0)
    row["market_open"] = float(px[0]) if has else math.nan
    row["market_close"] = float(px[-1]) if has else math.nan
    row["market_low"] = float(px.min()) if has else math.nan
    row["market_high"] = float(px.max()) if has else math.nan
    row["market_return_pct"] = (px[-1] / px[0] - 1.0) * 100.0 if has else math.nan
    path = market_path_metrics(trades["time_ns"].to_numpy() if has else np.empty(0), px, open_ns)
    row["market_max_drawdown_pct"] = path["max_drawdown_pct"]
    row["market_trough_s"] = path["trough_s"]
    row["market_time_to_recover_s"] = path["time_to_recover_s"]
    row["market_mid_max_drawdown_pct"] = mid_drawdown_pct(result.frames.get("quotes"), open_ns)
    row.update(_event_figures(s, result.frames, open_ns))
    fall = s.get("worst_fall") or {}
    row.update(measures_of(fall))
    row.update(role_nets(fall.get("by_group") or {}))
    stats = s.get("realism") or {}
    flags = checks(stats) if stats else dict.fromkeys(REALISM_CHECKS, False)
    for name in REALISM_CHECKS:
        row[f"realism_{name}"] = bool(flags.get(name, False))
    row["realism_passed"] = int(sum(bool(flags.get(n, False)) for n in REALISM_CHECKS))
    for name in REALISM_STATS:
        row[name] = _float(stats.get(name))
    row["realism_targets_met"] = int(sum(t.check(row[t.key]) is True for t in TARGETS))
    row["wall_s"] = float(s.get("wall_seconds", math.nan))
    return row


def metrics_digest(runs: pd.DataFrame) -> str:
    """sha256 over every metric of every run (all columns but the timing ones), in run order:
    one JSON line per run (floats as Python writes them back exactly, NaN as NaN)."""
    cols = [c for c in runs.columns if c not in TIMING_COLUMNS]
    ordered = runs.sort_values("run", kind="stable")
    h = hashlib.sha256(json.dumps(cols).encode())
    values = [ordered[c].tolist() for c in cols]
    for row in zip(*values, strict=True):
        h.update(b"\n" + json.dumps(row, default=str).encode())
    return h.hexdigest()
