"""What happened to the desk in a run: the block a stress run's summary and report lead with.

``desk_outcome(summary, frames)`` reads only the run's summary sections (``desk``, ``risk``,
``reconciliation``) and tables (``desk_fills``, ``risk_events``, ``orders``, ``halts``):

* ``pnl``: the desk's total P&L (currency; its fills marked at the last mid), ``max_drawdown``
  (currency);
* ``worst_position``: the signed position (shares) furthest from flat at any fill, and when;
* ``final_position``;
* ``limit_breaches``: risk-officer events that refused an order or pulled the kill switch
  (``action`` reject / kill), in total and by limit ``kind``;
* ``kill_switch``: whether the officer's kill switch fired, and when (clock time);
* ``orders_rejected``: the desk's orders (new orders, and cancel / replace requests) the exchange
  refused, in total, ``in_halts`` (refused while the symbol was halted or paused: between a
  ``halted`` row and the next ``resumed`` row of the halts table, or the end of the run) and
  ``by_reason``;
* ``reconciled``: OMS, risk officer and exchange agree on the desk's account (no breaks).

Every key is present (None / 0 when the run has no desk), so a summary's shape does not depend
on the scenario.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sim.clock import format_clock

__all__ = ["DESK_OWNER", "desk_outcome", "halt_spans", "rejected_in_halts"]

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
    }
