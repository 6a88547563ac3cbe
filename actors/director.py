"""The scenario director: carries out a scenario's timeline of events during a run.

Each event fires at a time (``at`` a clock time or ``after_s`` seconds after the open) or the
first time a market condition holds (``when``: the last trade has moved ``price_change_pct``
from the first trade). Actions are a handler table from action name to method; most send a
command message to the actors whose names match ``target`` (a glob). Changes to the exogenous
world (fundamental jumps, volatility shocks) are applied before the run, because the world is a
pure function of the seed and the timeline; the director only logs them when they happen.
Every fired event is a row of the ``scenario_events`` table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

from actors.commands import HaltTrading, ResumeQuotes, SendOrderNow, SetIndexLevel, StartProgram, WithdrawQuotes
from actors.messages import FixLinkDown, FixLinkUp, KillSwitch, SubscribeMarketData, TradePrinted
from sim.actor import Actor, Wakeup, handles
from sim.clock import SECOND
from sim.record import Recorder

EVENT_COLUMNS = ("time_ns", "action", "target", "detail")


@dataclass(frozen=True, slots=True)
class TimedEvent:
    """One resolved timeline entry: ``time_ns`` None means 'when the condition holds'."""

    index: int
    action: str
    target: str
    params: dict[str, Any] = field(default_factory=dict)
    time_ns: int | None = None
    price_change_pct: float | None = None
    armed_ns: int | None = None  # a condition is watched from this time (else from the first trade)


class Director(Actor):
    """Fires the scenario's events and records them."""

    placement_role: ClassVar[str] = "hub"  # the exchange side: one process with the exchange

    def __init__(
        self,
        name: str,
        events: list[TimedEvent],
        recorder: Recorder,
        symbol: str,
        exchange: str = "exchange",
        location: str = "exchange",
    ) -> None:
        super().__init__(name, location)
        self.events = events
        self.symbol = symbol
        self.exchange_name = exchange
        self.table = recorder.table("scenario_events", EVENT_COLUMNS)
        self.pending_conditions = [e for e in events if e.time_ns is None]
        self.armed_price: dict[int, int] = {}  # event index -> price when its condition was armed
        self.latency_at: dict[int, int] = {}  # event index -> when its latency change takes effect
        self.actions: dict[str, Callable[[TimedEvent], str]] = {
            "withdraw_makers": self._broadcast(WithdrawQuotes),
            "return_makers": self._broadcast(ResumeQuotes),
            "start_program": self._broadcast(StartProgram),
            "fat_finger": self._fat_finger,
            "latency": self._latency,
            "latency_restore": self._latency_restore,
            "fix_disconnect": self._fix_disconnect,
            "fix_reconnect": self._fix_reconnect,
            "halt": self._halt,
            "kill_switch": self._kill_switch,
            "set_index": self._set_index,
            "fundamental_jump": self._world_note,
            "volatility": self._world_note,
        }

    def on_start(self) -> None:
        for event in self.events:
            if event.time_ns is not None:
                self.wake_at(max(self.now, event.time_ns), event.index)
                if event.action == "latency":  # known ahead: asked for now, in effect at its time
                    self._change_latency(event, event.time_ns)
        if self.pending_conditions:
            self.send(self.lookup(self.exchange_name), SubscribeMarketData(self.symbol, trades=True, quotes=False))

    # -- firing -----------------------------------------------------------------------------------
    @handles(Wakeup)
    def on_wakeup(self, msg: Wakeup, src: int) -> None:
        tag = msg.tag
        if isinstance(tag, tuple):  # the second half of a timed action (e.g. reconnect)
            action, event = tag
            self._fire(event, action)
        else:
            self._fire(self.events[tag])

    @handles(TradePrinted)
    def on_trade(self, msg: TradePrinted, src: int) -> None:
        for event in list(self.pending_conditions):
            if event.armed_ns is not None and self.now < event.armed_ns:
                continue
            armed = self.armed_price.setdefault(event.index, msg.price)
            change = (msg.price / armed - 1.0) * 100.0
            threshold = event.price_change_pct
            assert threshold is not None
            if (threshold < 0 and change <= threshold) or (threshold >= 0 and change >= threshold):
                self.pending_conditions.remove(event)
                self._fire(event)

    def _fire(self, event: TimedEvent, action: str | None = None) -> None:
        name = action or event.action
        detail = self.actions[name](event)
        self.table.append((self.now, name, event.target, detail))

    # -- actions ----------------------------------------------------------------------------------
    def _broadcast(self, command: type) -> Callable[[TimedEvent], str]:
        def fire(event: TimedEvent) -> str:
            ids = self.lookup_matching(event.target)
            for dst in ids:
                self.send(dst, command())
            duration = event.params.get("duration_s")
            if command is WithdrawQuotes and duration:
                self.wake_in(int(duration * SECOND), ("return_makers", event))
            return f"{len(ids)} actors"

        return fire

    def _fat_finger(self, event: TimedEvent) -> str:
        p = event.params
        msg = SendOrderNow(p.get("side", "S"), int(p["qty"]), p.get("price_offset_pct"))
        for dst in self.lookup_matching(event.target):
            self.send(dst, msg)
        return f"{msg.side} {msg.qty} offset {msg.price_offset_pct}"

    def _change_latency(self, event: TimedEvent, at_ns: int) -> None:
        """Ask the kernel for the change (and the restore after ``duration_s``): it takes effect at
        ``at_ns`` or, if that is sooner, after the kernel's notice (see ``Kernel.change_latency``)."""
        assert self.kernel is not None
        p = event.params
        at = self.kernel.change_latency(self, at_ns, p["from"], p["to"], float(p["factor"]))
        self.latency_at[event.index] = at
        if p.get("duration_s"):
            self.kernel.change_latency(self, at + int(p["duration_s"] * SECOND), p["from"], p["to"], 1.0)

    def _latency(self, event: TimedEvent) -> str:
        p = event.params
        if event.index not in self.latency_at:  # a condition fired it: in effect after the notice
            self._change_latency(event, self.now)
        if p.get("duration_s"):
            self.wake_at(self.latency_at[event.index] + int(p["duration_s"] * SECOND), ("latency_restore", event))
        return f"{p['from']}<->{p['to']} x{p['factor']}"

    def _latency_restore(self, event: TimedEvent) -> str:
        p = event.params
        return f"{p['from']}<->{p['to']} x1"

    def _fix_disconnect(self, event: TimedEvent) -> str:
        ids = self.lookup_matching(event.target)
        for dst in ids:
            self.send(dst, FixLinkDown(reason="scenario"))
        duration = event.params.get("duration_s")
        if duration:
            self.wake_in(int(duration * SECOND), ("fix_reconnect", event))
        return f"{len(ids)} sessions down for {duration} s"

    def _fix_reconnect(self, event: TimedEvent) -> str:
        ids = self.lookup_matching(event.target)
        for dst in ids:
            self.send(dst, FixLinkUp())
        return f"{len(ids)} sessions up"

    def _halt(self, event: TimedEvent) -> str:
        duration = float(event.params.get("duration_s", 300))
        self.send(self.lookup(self.exchange_name), HaltTrading(self.symbol, duration, "scenario halt"))
        return f"halt {duration} s"

    def _kill_switch(self, event: TimedEvent) -> str:
        on = bool(event.params.get("on", True))
        account = str(event.params.get("account", ""))
        for dst in self.lookup_matching(event.target):
            self.send(dst, KillSwitch(account, on, "scenario"))
        return f"kill switch {'on' if on else 'off'} {account}"

    def _set_index(self, event: TimedEvent) -> str:
        """The market index moves (``change_pct`` from its previous close, or ``level`` against
        ``previous_close``): the exchange's market-wide circuit breakers see it."""
        msg = index_command(event.params)
        self.send(self.lookup(self.exchange_name), msg)
        level = "" if msg.level is None else f"level {msg.level / 100:g} "
        return f"index {level}{msg.change_bp:+d} bp"

    def _world_note(self, event: TimedEvent) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(event.params.items()))


def _hundredths(value: Any) -> int:
    """An index level or percentage in exact hundredths (no binary-float surprises: 4650.01 stays 465001)."""
    return int((Decimal(str(value)) * 100).to_integral_value(rounding=ROUND_HALF_UP))


def index_command(params: dict[str, Any]) -> SetIndexLevel:
    """``SetIndexLevel`` from a ``set_index`` event's params: ``change_pct`` (percent from the
    previous close), or ``level`` and ``previous_close`` (index points). The change is truncated
    toward zero to whole basis points, so a fall of 6.999 % is 699 bp and trips no 7 % level."""
    if params.get("change_pct") is not None:
        change = Decimal(str(params["change_pct"])) * 100
        return SetIndexLevel(int(change.to_integral_value(rounding=ROUND_DOWN)))
    level, close = _hundredths(params["level"]), _hundredths(params["previous_close"])
    change_bp = abs(level - close) * 10_000 // close
    return SetIndexLevel(change_bp if level >= close else -change_bp, level)
