"""The gateway's own pre-trade gate and kill switch (issue 17 item 3: risk in the message path).

A :class:`GatewayRisk` lives inside one gateway actor (:class:`fix.gateway_actor.FixGateway`). It
builds its :class:`~actors.risk.PreTradeGate` from a :class:`~actors.risk.GateConfig` (the
scenario's limits, given to the gateway when the world is assembled) and installs it as the
core's ``pretrade`` hook, so every D and G meets it in the order path. Nothing is shared with the
risk officer; it talks to it by messages:

* in: ``SetRiskLimits`` (new limits) and ``KillSwitch`` (block a session and cancel its live
  orders at the exchange, or release it);
* out: every :class:`~actors.risk.RiskEvent` of the gate (refusals, the runaway kill, the mass
  cancel) and, per kill, one ``KillSwitchActivated`` once the exchange has answered every cancel:
  the orders it canceled, the sessions blocked and when (``confirmed_ns``).

The gate's ledger is fed by the gateway's own ExecutionReports (the ones it drop-copies), its
collar reference by the exchange's trades and quotes (the gateway subscribes to them). A kill
the gate decides itself (a runaway order rate) is carried out here at once. Without an officer
(``desksim serve`` with a risk section) the gate also pulls the switch on its own loss and
position triggers, and keeps its events in ``events`` (the last 10,000).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actors.messages import KillSwitch, KillSwitchActivated, QuoteUpdated, SubscribeMarketData, TradePrinted
from actors.risk import (
    RISK_EVENT_COLUMNS,
    GateConfig,
    PreTradeGate,
    RiskEvent,
    SetRiskLimits,
    parse_execution_report,
)
from fix.codec import message_type
from sim.record import Recorder, Table

__all__ = ["GatewayRisk"]

MAX_EVENTS = 10_000


@dataclass(slots=True)
class _Kill:
    reason: str
    trigger_ns: int
    sent: int = 0  # cancels sent to the exchange
    canceled: int = 0  # canceled at the exchange (ExecType 4 carrying the kill's reason)
    blocked: tuple[str, ...] = ()
    confirmed: bool = False


class GatewayRisk:
    """The pre-trade gate of one gateway actor (``owner``: ``send``, ``lookup``, ``now``, ``core``,
    ``codec``, ``exchange``). See the module docstring."""

    def __init__(self, owner: Any, config: GateConfig) -> None:
        self.owner = owner
        self.config = config
        self.gate = PreTradeGate.from_config(config, sink=self._on_event)
        self.officer = -1
        self.events: list[RiskEvent] = []
        self.kills: dict[str, _Kill] = {}
        self.table: Table | None = None  # the risk_events table of a gate without an officer (serve --out)
        owner.core.pretrade = self.gate

    # -- wiring -------------------------------------------------------------------------------
    def start(self, symbols: list[str]) -> None:
        if self.config.officer is not None:
            try:
                self.officer = self.owner.lookup(self.config.officer)
            except KeyError:
                self.officer = -1
        for symbol in sorted(set(symbols) | {s for s, _ in self.config.reference_prices}):
            self.owner.send(self.owner.exchange, SubscribeMarketData(symbol, trades=True, quotes=True))

    def record_to(self, recorder: Recorder) -> None:
        """Without an officer: keep every event in ``recorder``'s ``risk_events`` table too (the
        columns of a simulated run's), e.g. for the run folder of ``desksim serve --out``."""
        self.table = recorder.table("risk_events", RISK_EVENT_COLUMNS)
        for ev in self.events:
            self.table.append(ev.row())

    def _on_event(self, ev: RiskEvent) -> None:
        if self.officer >= 0:
            self.owner.send(self.officer, ev)
        else:
            if self.table is not None:
                self.table.append(ev.row())
            self.events.append(ev)
            if len(self.events) > MAX_EVENTS:
                del self.events[: MAX_EVENTS // 10]

    # -- inputs ---------------------------------------------------------------------------------
    def on_trade(self, msg: TradePrinted) -> None:
        self.gate.on_mark(msg.symbol, msg.price, self.owner.now)
        self.after()

    def on_quote(self, msg: QuoteUpdated) -> None:
        self.gate.on_quote(msg.symbol, msg.bid, msg.ask)

    def on_set_limits(self, msg: SetRiskLimits) -> None:
        self.gate.set_limits(msg.key, msg.limits)

    def on_kill_switch(self, msg: KillSwitch) -> None:
        now = self.owner.now
        if msg.on:
            self.gate.kill(msg.account, msg.reason, now, kind=None)
            self.after(msg.time_ns)
        else:
            self.gate.unblock(msg.account, now, msg.reason)
            for key in list(self.kills) if msg.account in ("", "*") else [msg.account]:
                self.kills.pop(key, None)

    def on_outbound(self, comp: str, msg: Any) -> None:
        """An application message the gateway sent to session ``comp`` (stamped): ExecutionReports
        feed the gate's ledger, an OrderCancelReject releases a refused replace's reservation."""
        msg_type = message_type(msg)  # a codec-built report stays unread by quickfix
        if msg_type == "9":
            self.gate.on_cancel_reject(comp, msg.getField(11) if msg.isSetField(11) else None)
            return
        if msg_type != "8":
            return
        er = parse_execution_report(msg.toString(), self.owner.codec.tick)
        if er is None:
            return
        self.gate.on_execution_report(comp, er, self.owner.now)
        run = self.kills.get(comp) or self.kills.get("")
        if run is not None and not run.confirmed:
            if er.exec_type == "4" and er.text == run.reason:
                run.canceled += 1
            elif (
                er.exec_type in ("0", "5")
                and self.gate.is_blocked(comp)
                and (comp, er.cl_ord_id or "") not in self.gate.reduce_only_orders
            ):  # in flight at the kill: cancel that order only (a reduce-only order sent after it stays)
                run.sent += self.owner.core.cancel_order(comp, er.cl_ord_id, er.order_id, run.reason)
        self.after()

    # -- kills ----------------------------------------------------------------------------------
    def after(self, trigger_ns: int | None = None) -> None:
        """Carry out the kills the gate decided, and confirm the kills the exchange has answered."""
        for account, reason, t0 in self.gate.take_kills():
            self._carry_out(account, reason, trigger_ns if trigger_ns is not None else t0)
        for account, run in self.kills.items():
            if not run.confirmed and self._quiet(account):
                run.confirmed = True
                if self.officer >= 0:
                    answer = KillSwitchActivated(
                        account, run.reason, run.trigger_ns, run.canceled, run.blocked, self.owner.now
                    )
                    self.owner.send(self.officer, answer)

    def _carry_out(self, account: str, reason: str, t0: int) -> None:
        now = self.owner.now
        blocked = tuple(sorted(self.gate.blocked)) if account in ("", "*") else (account,)
        run = self.kills[account] = _Kill(reason, t0, blocked=blocked)
        self.gate.record(RiskEvent(now, account or "*", "kill_switch", 0.0, float(now - t0), "mass_cancel"))
        run.sent = self.owner.core.cancel_account("" if account == "*" else account, reason)

    def _quiet(self, account: str) -> bool:
        """Nothing of the killed session(s) live or in flight but what reduce-only mode accepted
        after the kill."""
        gate = self.gate
        ledger = gate.ledger
        everyone = account in ("", "*")
        if not gate.reduce_only_orders:
            return not ledger.orders and not ledger.pending if everyone else ledger.open_count(account) == 0
        after = gate.reduce_only_orders
        after_ids = {ledger.cl_index.get(k) for k in after}
        return not any(
            (everyone or o.account == account) and oid not in after_ids for oid, o in ledger.orders.items()
        ) and not any((everyone or o.account == account) and k not in after for k, o in ledger.pending.items())

    def summary(self) -> dict[str, Any]:
        return {
            "accepted": self.gate.accepted,
            "rejected": self.gate.rejected,
            "blocked": sorted(self.gate.blocked),
            "kills": [
                {"account": a or "*", "reason": k.reason, "sent": k.sent, "canceled": k.canceled}
                for a, k in self.kills.items()
            ],
        }
