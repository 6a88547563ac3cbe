"""What happened to the desk in a run: the block a stress run's summary and report lead with.

``desk_outcome(summary, frames)`` reads only the run's summary sections (``desk``, ``risk``,
``reconciliation``) and tables (``desk_fills``, ``risk_events``, ``orders``, ``halts``):

* ``pnl``: the desk's total P&L (currency; its fills marked at the last mid), ``max_drawdown``
  (currency);
* ``fees``: the venue fees of the desk's fills (currency; positive paid, negative a net rebate;
  desksim/analytics/fees.py), ``pnl_net``: ``pnl`` − ``fees``;
* ``worst_position``: the signed position (shares) furthest from flat at any fill, and when;
* ``final_position``;
* ``limit_breaches``: risk-officer events that refused an order or pulled the kill switch
  (``action`` reject / kill), in total and by limit ``kind``;
* ``kill_switch``: whether the officer's kill switch fired, and when (clock time);
* ``orders_rejected``: the desk's orders (new orders, and cancel / replace requests) the exchange
  refused, in total, ``in_halts`` (refused while the symbol was halted or paused: between a
  ``halted`` row and the next ``resumed`` row of the halts table, or the end of the run) and
  ``by_reason``;
* ``reconciled``: OMS, risk officer and exchange agree on the desk's account (no breaks);
* ``kill``: what the first kill switch did to the desk's FIX session (:func:`kill_response`):
  orders resting at the exchange at the kill and canceled by it, new orders rejected and
  reduce-only orders accepted (and their filled shares) while the session was blocked, and the
  account's position (the exchange's own fills) at the kill and at the close.

Every key is present (None / 0 when the run has no desk), so a summary's shape does not depend
on the scenario.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sim.clock import format_clock

__all__ = ["DESK_OWNER", "desk_outcome", "halt_spans", "kill_response", "rejected_in_halts"]

DESK_OWNER = "gateway"  # the desk's orders reach the exchange through the FIX gateway
REFUSALS = ("rejected", "cancel_rejected")


def halt_spans(halts: pd.DataFrame | None, end_ns: int | None = None) -> list[tuple[int, int]]:
    """``[(halted_ns, resumed_ns), ...]`` from the halts table; an unfinished halt runs to ``end_ns``
    (or forever when None). Halts of the same symbol only pair with that symbol's resumptions."""
    if halts is None or not len(halts):
        return []
    spans: list[tuple[int, int]] = []
    open_at: dict[str, int] = {}
    for t, sym, event in zip(halts["time_ns"], halts["symbol"], halts["event"], strict=True):
        if event == "halted":
            open_at.setdefault(sym, int(t))
        elif event == "resumed" and sym in open_at:
            spans.append((open_at.pop(sym), int(t)))
    last = (1 << 62) if end_ns is None else int(end_ns)
    spans.extend((start, last) for start in open_at.values())
    return sorted(spans)


def rejected_in_halts(refusals: pd.DataFrame, spans: list[tuple[int, int]]) -> int:
    """How many of the ``refusals`` rows (with ``time_ns``) fall inside a halt span ``[start, end)``."""
    if not len(refusals) or not spans:
        return 0
    t = refusals["time_ns"].to_numpy(dtype=np.int64)
    inside = np.zeros(len(t), dtype=bool)
    for start, end in spans:
        inside |= (t >= start) & (t < end)
    return int(inside.sum())


def _worst_position(fills: pd.DataFrame | None) -> tuple[int, int | None]:
    if fills is None or not len(fills) or "side" not in fills:
        return 0, None
    ordered = fills.sort_values("time_ns", kind="stable") if "time_ns" in fills else fills
    signed = ordered["qty"].where(ordered["side"] == "B", -ordered["qty"]).cumsum().to_numpy()
    i = int(np.argmax(np.abs(signed)))
    when = int(ordered["time_ns"].iloc[i]) if "time_ns" in ordered else None
    return int(signed[i]), when


def _first(source: dict[str, Any], *keys: str) -> Any:
    """The first of ``keys`` that ``source`` has (the desk summary's names, newest first)."""
    return next((source[k] for k in keys if source.get(k) is not None), None)


def _clock(ns: int | None) -> str | None:
    return None if ns is None else format_clock(int(ns))[:12]


def desk_outcome(summary: dict[str, Any], frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The desk's outcome of a run (see the module docstring)."""
    desk = summary.get("desk") or {}
    risk = summary.get("risk") or {}
    recon = summary.get("reconciliation")
    worst, worst_ns = _worst_position(frames.get("desk_fills"))
    events = frames.get("risk_events")
    breaches: dict[str, int] = {}
    if events is not None and len(events):
        hit = events[events["action"].isin(["reject", "kill"])]
        breaches = {str(k): int(v) for k, v in hit.groupby("kind").size().sort_index().items()}
    kill = risk.get("kill_switch") or {}
    orders = frames.get("orders")
    refused = pd.DataFrame({"time_ns": [], "detail": []})
    if orders is not None and len(orders) and desk:
        refused = orders[(orders["owner"] == DESK_OWNER) & orders["event"].isin(REFUSALS)]
    spans = halt_spans(frames.get("halts"))  # a halt still open at the end runs past every row
    by_reason = (
        {str(k): int(v) for k, v in refused.groupby("detail").size().sort_index().items()} if len(refused) else {}
    )
    return {
        "has_desk": bool(desk),
        "pnl": _first(desk, "pnl_ccy", "total_pnl"),
        "fees": desk.get("fees_ccy"),
        "pnl_net": desk.get("pnl_net_ccy"),
        "max_drawdown": _first(desk, "max_drawdown_ccy", "max_drawdown"),
        "worst_position": worst,
        "worst_position_at": _clock(worst_ns),
        "final_position": desk.get("final_position"),
        "limit_breaches": sum(breaches.values()),
        "limit_breaches_by_kind": breaches,
        "kill_switch": bool(kill.get("fired", False)),
        "kill_switch_at": _clock(kill.get("time_ns")),
        "orders_rejected": len(refused),
        "orders_rejected_in_halts": rejected_in_halts(refused, spans),
        "orders_rejected_by_reason": by_reason,
        "reconciled": None if recon is None else not recon.get("breaks"),
        "kill": kill_response(summary, frames),
    }


def _empty_kill() -> dict[str, Any]:
    return {
        "fired": False,
        "at": None,
        "time_ns": None,
        "released_at": None,
        "released_ns": None,
        "reason": None,
        "resting_orders": 0,
        "canceled_orders": 0,
        "rejected_orders": 0,
        "rejected_by_kind": {},
        "reduce_only_orders": 0,
        "reduce_only_filled_qty": 0,
        "reduce_only_from": None,
        "reduce_only_until": None,
        "reduce_only_from_ns": None,
        "reduce_only_until_ns": None,
        "position_at_kill": None,
        "position_at_close": None,
    }


def _signed_fills(orders: pd.DataFrame) -> pd.DataFrame:
    fills = orders[(orders["owner"] == DESK_OWNER) & (orders["event"] == "filled")]
    return pd.DataFrame({"time_ns": fills["time_ns"], "qty": fills["qty"].where(fills["side"] == "B", -fills["qty"])})


def _live_at(orders: pd.DataFrame, t_ns: int) -> set[int]:
    """The desk's orders live at the exchange at ``t_ns`` (the exchange's orders table alone)."""
    g = orders[(orders["owner"] == DESK_OWNER) & (orders["time_ns"] <= t_ns)]
    live: set[int] = set()
    for oid, event, leaves in zip(g["order_id"], g["event"], g["leaves_qty"], strict=True):
        if event == "accepted":
            live.add(int(oid))
        elif event in ("canceled", "rejected", "expired") or (event == "filled" and leaves == 0):
            live.discard(int(oid))
    return live


def kill_response(summary: dict[str, Any], frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The first kill of the desk's session, from the tables (every key present; zeros / None
    without a kill):

    * ``time_ns`` / ``at``: when the gateway blocked the session and sent its mass cancel
      (``risk_events`` kill_switch / mass_cancel; else the kill row); ``released_*``: the next
      ``unblock`` row, if any; ``reason``: the kill's reason (the officer's ``risk.kills``);
    * ``resting_orders``: the desk's orders live at the exchange at the kill (``orders``);
      ``canceled_orders``: ExecutionReports to the session carrying the kill's reason as Text
      (``fix_messages``): the orders the kill canceled at the exchange;
    * while blocked (after the kill, to the release or the end), the new orders (D) the session sent, as the OMS
      saw them answered (``oms_orders``): ``rejected_orders`` (``rejected_by_kind``: the gate's
      refusal rows in ``risk_events``, by kind), ``reduce_only_orders`` (accepted: with
      ``after_kill: reduce_only``, orders that only reduce the position), their
      ``reduce_only_filled_qty`` and the phase from the first such order (``reduce_only_from``)
      to its last fill or answer (``reduce_only_until``);
    * ``position_at_kill`` / ``position_at_close``: the account's position from the exchange's
      own fills (``orders``) up to the kill and over the whole run (shares, signed).
    """
    out = _empty_kill()
    events = frames.get("risk_events")
    if events is None or not len(events):
        return out
    kills = events[events["action"] == "kill"]
    if not len(kills):
        return out
    trigger = int(kills["time_ns"].iloc[0])
    mass = events[(events["action"] == "mass_cancel") & (events["time_ns"] >= trigger)]
    t0 = int(mass["time_ns"].iloc[0]) if len(mass) else trigger
    unblock = events[(events["action"] == "unblock") & (events["time_ns"] >= t0)]
    t1 = int(unblock["time_ns"].iloc[0]) if len(unblock) else None
    end = (1 << 62) if t1 is None else t1
    risk_kills = (summary.get("risk") or {}).get("kills") or []
    reason = risk_kills[0].get("reason") if risk_kills else None
    out.update(fired=True, time_ns=t0, at=_clock(t0), released_ns=t1, released_at=_clock(t1), reason=reason)
    # after the kill: strictly later than the block (the order that tripped a runaway kill is refused at t0)
    refused = events[(events["action"] == "reject") & (events["time_ns"] > t0) & (events["time_ns"] < end)]
    out["rejected_by_kind"] = {str(k): int(v) for k, v in refused.groupby("kind").size().sort_index().items()}
    orders = frames.get("orders")
    if orders is not None and len(orders):
        out["resting_orders"] = len(_live_at(orders, t0))
        signed = _signed_fills(orders)
        out["position_at_kill"] = int(signed[signed["time_ns"] <= t0]["qty"].sum())
        out["position_at_close"] = int(signed["qty"].sum())
    fix = frames.get("fix_messages")
    oms = frames.get("oms_orders")
    if fix is None or not len(fix):
        return out
    session = (summary.get("reconciliation") or {}).get("account")
    mine = fix[fix["session"] == session] if session else fix
    if reason is not None:
        reports = mine[(mine["direction"] == "out") & (mine["msg_type"] == "8") & (mine["time_ns"] >= t0)]
        out["canceled_orders"] = int((reports["text"] == reason).sum())
    news = mine[(mine["direction"] == "in") & (mine["msg_type"] == "D") & (mine["time_ns"] > t0)]
    news = news[news["time_ns"] < end]
    if oms is None or not len(oms) or not len(news):
        return out
    submits = oms[(oms["event"] == "submit") & oms["cl_ord_id"].isin(set(news["cl_ord_id"]))]
    ids = set(submits["order_id"].astype("int64"))
    rows = oms[oms["order_id"].isin(ids)]
    accepted = rows[rows["event"] == "accepted"]
    out["rejected_orders"] = int((rows["event"] == "rejected").sum())
    out["reduce_only_orders"] = len(accepted)
    if len(accepted):
        kept = set(accepted["order_id"].astype("int64"))
        phase = rows[rows["order_id"].isin(kept)]
        fills = phase[phase["event"] == "filled"]
        out["reduce_only_filled_qty"] = int(fills["qty"].sum())
        first, last = int(phase["time_ns"].min()), int(phase["time_ns"].max())
        out.update(
            reduce_only_from_ns=first,
            reduce_only_until_ns=last,
            reduce_only_from=_clock(first),
            reduce_only_until=_clock(last),
        )
    return out
