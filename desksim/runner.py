"""One run of a validated scenario in this process, and the summary every runtime shares."""

from __future__ import annotations

import dataclasses
import platform
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from desksim.analytics import fees as fee_math
from desksim.analytics.anatomy import maker_names, worst_fall_section
from desksim.analytics.desk_outcome import desk_outcome
from desksim.analytics.realism import realism
from desksim.assembly import build
from desksim.extras import actor_extras, jsonable
from scenarios.schema import Scenario
from sim.clock import SECOND, format_clock
from sim.record import Recorder
from sim.runtime.local import run_local

VERSION = "0.1.0"


@dataclass
class RunResult:
    summary: dict[str, Any]
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def trades(self) -> pd.DataFrame:
        return self.frames["trades"]

    @property
    def quotes(self) -> pd.DataFrame:
        return self.frames["quotes"]

    @property
    def orders(self) -> pd.DataFrame:
        return self.frames["orders"]


def shorten(scenario: Scenario, duration_s: float | None) -> Scenario:
    """The scenario run for only its first ``duration_s`` seconds of trading: a prefix of the full
    run (the session keeps its close, so close-time rules do not apply early; the run stops)."""
    if duration_s is None:
        return scenario
    if duration_s <= 0:
        raise ValueError("duration must be > 0 seconds")
    return scenario.model_copy(update={"stop_after_s": float(duration_s)})


def run_scenario(scenario: Scenario, seed: int | None = None, *, source: str = "") -> RunResult:
    """Run a validated scenario in this process and return its summary and tables."""
    seed = scenario.seed if seed is None else int(seed)
    recorder = Recorder()
    assembly = build(scenario, recorder, seed)
    _kernel, stats = run_local(assembly.actors, assembly.network, seed, assembly.start_ns, assembly.end_ns)
    return summarise(
        scenario,
        seed,
        source,
        recorder,
        stats,
        runtime="local",
        actors=len(assembly.actors),
        extras=actor_extras(assembly),
    )


def summarise(
    scenario: Scenario,
    seed: int,
    source: str,
    recorder: Recorder,
    stats: Any,
    *,
    runtime: str,
    actors: int,
    extras: dict[str, Any],
    more: dict[str, Any] | None = None,
) -> RunResult:
    """The run's summary and tables from its recorder, kernel counters and actor extras (the same
    code for every runtime, so summaries agree key for key)."""
    start_ns, end_ns = scenario.session.open_ns, scenario.end_ns
    recorder.table("kernel", ("messages", "wakeups")).append((stats.messages, stats.wakeups))
    frames = recorder.frames()
    trades = frames["trades"]
    tick = scenario.tick_size
    fees = fee_math.schedule_of(scenario)  # accounting only (desksim/analytics/fees.py): the digest never sees it
    groups, aliases = fee_math.participant_groups(scenario)
    frames["participants"] = table = fee_math.participants(trades, fees, tick, groups, aliases)
    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "source": source,
        "seed": seed,
        "digest": recorder.digest(),
        "symbol": scenario.symbol,
        "tick_size": tick,
        "runtime": runtime,
        "actors": actors,
        "sim_start": scenario.session.open,
        "sim_end": scenario.session.close if end_ns == scenario.session.close_ns else format_clock(end_ns)[:8],
        "sim_seconds": (end_ns - start_ns) / SECOND,
        "wall_seconds": round(stats.wall_s, 4),
        "messages_delivered": stats.messages,
        "wakeups_delivered": stats.wakeups,
        "messages_per_second": round(stats.messages / stats.wall_s, 1) if stats.wall_s > 0 else None,
        "orders": int((frames["orders"]["event"] == "submit").sum()) if len(frames["orders"]) else 0,
        "trades": len(trades),
        "volume": int(trades["qty"].sum()) if len(trades) else 0,
        "price": _price_stats(trades, tick),
        "realism": realism(trades, frames["quotes"], start_ns, end_ns, tick, orders=frames["orders"]),
        "python": platform.python_version(),
        "desksim": VERSION,
    }
    if "desk" in extras:
        summary["desk"] = dict(extras["desk"])
        frames.update(extras.get("desk_frames", {}))
        summary["desk"]["max_position"] = _max_abs_position(frames.get("desk_fills"))
        figures, parents = fee_math.desk_fee_figures(
            summary["desk"], frames.get("desk_fills"), frames.get("desk_parents"), fees, tick
        )
        summary["desk"].update(figures)
        if parents is not None:
            frames["desk_parents"] = parents
    if "oms" in extras:
        summary["oms"] = oms_summary(extras["oms"], tick)
        summary["reconciliation"] = reconciliation(
            scenario, extras["oms"], extras.get("risk_snapshot"), frames["orders"]
        )
        if "desk" in summary:
            summary["pnl"] = pnl_summary(summary["desk"], extras["oms"], scenario.symbol, tick)
            account_fees = fee_math.units_of(table, fee_math.DESK_ACCOUNT)
            summary["pnl"].update(pnl_fees(summary["desk"], extras["oms"], account_fees, tick))
    if "risk" in extras:
        summary["risk"] = _risk_summary(extras["risk"], tick)
        summary["risk"].update(_risk_events_summary(frames.get("risk_events")))
    summary["fees"] = fee_math.fee_section(table, fees, tick)
    # the worst 15-minute fall (the crash measures of a Monte Carlo row) and who traded it
    makers = maker_names(scenario)
    summary["worst_fall"] = worst_fall_section(trades, frames["quotes"], start_ns, end_ns, groups, makers)
    halts = frames.get("halts")
    summary["halts"] = int((halts["event"] == "halted").sum()) if halts is not None and len(halts) else 0
    if "desk" in summary:  # what happened to the desk, first thing a stress run's reader looks for
        summary["desk_outcome"] = desk_outcome(summary, frames)
    summary.update(more or {})
    return RunResult(summary, {k: v for k, v in frames.items() if k != "kernel"})


def oms_summary(snap: dict[str, Any], tick: float) -> dict[str, Any]:
    """The OMS's books as the summary shows them: money once, in currency (the OMS keeps integer
    ticks x shares), prices in ticks, quantities in shares; per-parent detail is in the
    ``oms_orders`` and ``desk_parents`` tables."""

    def ccy(x: Any) -> float | None:
        return None if x is None else round(x * tick, 10)

    positions = {
        sym: {
            "position": p["position"],
            "bought_qty": p["bought"],
            "sold_qty": p["sold"],
            "avg_cost_ticks": p["avg_cost"],
            "mark_ticks": p["mark"],
            "cash_ccy": ccy(p["cash"]),
            "realized_ccy": ccy(p["realized"]),
            "unrealized_ccy": ccy(p["unrealized"]),
        }
        for sym, p in snap["positions"].items()
    }
    return {
        "positions": positions,
        "cash_ccy": ccy(snap["cash"]),
        "realized_ccy": ccy(snap["realized"]),
        "unrealized_ccy": ccy(snap["unrealized"]),
        "pnl_ccy": ccy(snap["realized"] + snap["unrealized"]),
        "orders": snap["orders"],
        "live_orders": snap["live_orders"],
        "parents": len(snap["parents"]),
        "breaks": snap["breaks"],
        "counters": snap["counters"],
        "fix": snap["fix"],
    }


def pnl_summary(desk: dict[str, Any], snap: dict[str, Any], symbol: str, tick: float) -> dict[str, Any]:
    """One P&L, and what separates the desk strategy's figure from the account's books (gross of
    fees; :func:`pnl_fees` gives both net of fees): the marks (the desk marks its position at the
    final mid, the OMS at the last trade) and fills on the account that the desk did not make
    (others sending through the OMS)."""
    account = (snap["realized"] + snap["unrealized"]) * tick
    desk_pnl = float(desk.get("pnl_ccy") or 0.0)
    mark = (snap["positions"].get(symbol) or {}).get("mark")
    mid = desk.get("final_mid_ticks")
    pos = int(desk.get("final_position") or 0)
    marks = pos * (mark - mid) * tick if pos and mark is not None and mid is not None else 0.0
    diff = account - desk_pnl
    return {
        "account_ccy": round(account, 10),
        "desk_ccy": round(desk_pnl, 10),
        "difference_ccy": round(diff, 10),
        "marks_ccy": round(marks, 10),
        "other_fills_ccy": round(diff - marks, 10),
    }


def pnl_fees(desk: dict[str, Any], snap: dict[str, Any], account_units: int, tick: float) -> dict[str, Any]:
    """Both P&Ls of :func:`pnl_summary` net of fees: the account's (every fill of the desk's FIX
    account, from the exchange's trades) and the desk strategy's (its own fills)."""
    return {
        "account_fees_ccy": fee_math.fee_ccy(account_units),
        "account_net_ccy": fee_math.ccy(account_units, snap["realized"] + snap["unrealized"], tick),
        "desk_fees_ccy": float(desk.get("fees_ccy") or 0.0),
        "desk_net_ccy": float(desk.get("pnl_net_ccy") or 0.0),
    }


def _risk_summary(risk: dict[str, Any], tick: float) -> dict[str, Any]:
    """The officer's summary with its VaR / ES (kept in ticks x shares) in currency, named so."""
    out = dict(risk)
    var = {}
    for account, fig in (risk.get("var") or {}).items():
        row = {f"{k}_ccy": (None if v is None else v * tick) for k, v in fig.items() if k.endswith(("_var", "_es"))}
        row.update({k: v for k, v in fig.items() if not k.endswith(("_var", "_es"))})
        var[account] = row
    out["var"] = var
    accounts = {}
    for account, view in (risk.get("accounts") or {}).items():
        row = dict(view)
        for key in ("pnl", "gross"):  # the officer keeps money in ticks x shares
            value = row.pop(f"{key}_tick_shares", None)
            row[f"{key}_ccy"] = None if value is None else round(value * tick, 10)
        accounts[account] = row
    out["accounts"] = accounts
    return out


def _risk_events_summary(events: pd.DataFrame | None) -> dict[str, Any]:
    """Kill switch (fired, first time) and the number of limit breaches, from risk_events."""
    if events is None or not len(events):
        return {"kill_switch": {"fired": False, "time_ns": None}, "breaches": 0}
    kills = events[events["action"] == "kill"]
    fired = bool(len(kills))
    return {
        "kill_switch": {"fired": fired, "time_ns": int(kills["time_ns"].iloc[0]) if fired else None},
        "breaches": _breaches(events),
    }


# rows of risk_events that are the kill switch at work, not a limit breach
_NOT_BREACHES = frozenset({"kill_switch", "kill_switch_command", "reduce_only"})  # reduce_only: a blocked session
_VAR_KINDS = frozenset({"var_hist", "var_param", "es_hist", "es_param"})


def _breaches(events: pd.DataFrame) -> int:
    """Limit breaches: refusals and kill triggers, without the kill switch's own rows (its rejects
    of a blocked account, the command) and without a VaR / ES kill repeated after the first one
    of that account (the officer re-checks every interval while the account is blocked)."""
    rows = events[events["action"].isin(["reject", "kill"]) & ~events["kind"].isin(_NOT_BREACHES)]
    var_kills = rows[rows["kind"].isin(_VAR_KINDS) & (rows["action"] == "kill")]
    repeated = var_kills[var_kills["time_ns"] > var_kills.groupby("actor")["time_ns"].transform("min")]
    return int(len(rows) - len(repeated))


def _max_abs_position(fills: pd.DataFrame | None) -> int:
    if fills is None or not len(fills) or "side" not in fills:
        return 0
    signed = fills["qty"].where(fills["side"] == "B", -fills["qty"])
    return int(signed.cumsum().abs().max())


def reconciliation(
    scenario: Scenario, oms_snapshot: dict[str, Any], risk_snapshot: dict[str, Any] | None, orders: pd.DataFrame
) -> dict[str, Any]:
    """End-of-run reconciliation of the desk's account: OMS vs risk officer vs exchange, to the
    share (positions) and to the tick x share (cash). Each break names its ``legs`` ("OMS vs
    exchange", "officer vs exchange"); ``legs`` at the top is every leg that broke. A scenario with
    a risk officer whose snapshot is missing is a break of the officer leg (``what`` "missing"),
    never a silent pass."""
    from actors.risk import OFFICER_LEG, fills_from_orders_table, reconcile

    account = scenario.desk.fix.comp_id if scenario.desk else ""
    symbol = scenario.symbol
    oms_view: dict[str, Any] = {
        "positions": {account: {sym: int(p["position"]) for sym, p in oms_snapshot["positions"].items()}},
        "cash": {account: int(oms_snapshot["cash"])},
    }
    gateway_orders = orders[orders["owner"] == "gateway"] if len(orders) else orders
    fills = fills_from_orders_table(gateway_orders, lambda _oid: account, symbol=symbol)
    rows = [jsonable({**dataclasses.asdict(b), "legs": b.legs}) for b in reconcile(oms_view, fills, risk_snapshot)]
    if risk_snapshot is None and scenario.desk is not None and scenario.desk.risk is not None:
        missing = {"account": account, "symbol": "", "what": "missing", "oms": 0, "risk": 0, "exchange": 0}
        rows.insert(0, {**missing, "legs": [OFFICER_LEG], "detail": "no snapshot from the risk officer"})
    legs = sorted({leg for b in rows for leg in b["legs"]}, key=lambda leg: leg != "OMS vs exchange")
    return {
        "account": account,
        "position": oms_view["positions"][account].get(symbol, 0),
        "cash_tick_shares": oms_view["cash"][account],
        "breaks": rows,
        "legs": legs,
    }


def _price_stats(trades: pd.DataFrame, tick: float) -> dict[str, float | None]:
    if not len(trades):
        return {"open": None, "close": None, "high": None, "low": None}
    px = trades["price"]
    return {
        "open": round(float(px.iloc[0]) * tick, 10),
        "close": round(float(px.iloc[-1]) * tick, 10),
        "high": round(float(px.max()) * tick, 10),
        "low": round(float(px.min()) * tick, 10),
    }
