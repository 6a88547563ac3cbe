"""The independent risk officer: pre-trade limits in the order path, its own positions and P&L
from drop copies, intraday VaR / ES, the kill switch, and reconciliation.

Three layers:

* :class:`RiskLimits` -- the limits of one account (or one account/symbol), pydantic-friendly so a
  scenario can carry them.
* :class:`PreTradeGate` -- pure and clock-driven (the caller passes ``now_ns``). It answers
  ``check(account, symbol, side, qty, price, now_ns) -> reason | None`` and keeps its own
  :class:`Ledger` (positions, cash, open orders) built only from what it is told: execution
  reports (drop copies), fills and marks. It is also the ``pretrade`` hook of
  :class:`fix.gateway.GatewayCore`: ``gate(session_key, NewOrder | ReplaceRequest, now_ns)``.
* :class:`RiskOfficer` -- the actor that owns and configures the gate. It subscribes to the FIX
  gateway's drop copies and to the exchange's trades, feeds the gate's ledger (its independent
  view, never the OMS's), computes VaR / ES on a timer, and runs the kill switch.

Wiring (the gate lives in the order path, configured and owned by the officer)::

    gate = PreTradeGate(RiskLimits(max_order_qty=10_000), {"DESK": RiskLimits(...)})
    officer = RiskOfficer("risk", recorder, gate, symbols=["XYZ"], gateway="gateway",
                          exchange="exchange", desk="desk")
    core = GatewayCore(codec, ..., pretrade=gate)     # the same object, inside the gateway

The gate is shared by two actors (the gateway calls it, the officer feeds it), so the two must
live in one process (the ``"core"`` placement, or the local runtime). The gate never sends
messages: a kill it decides itself (runaway order rate) blocks the account at once and is queued
(:meth:`PreTradeGate.take_kills`); the officer carries it out (mass cancel, desk notice) when its
next message arrives -- at the latest the drop copy of the rejected order that tripped it.

Units: prices in integer ticks, quantities in shares, cash / notional / P&L / VaR in
ticks x shares (cents when the tick is 0.01). Boundaries are inclusive: a limit of X allows X and
refuses X + 1 (one share, one tick or one unit over). Sliding windows hold the events of the last
``window`` nanoseconds: an event at ``t`` still counts at ``t + window - 1`` and no longer at
``t + window``.

Limits are looked up most specific first: ``"ACCOUNT/SYMBOL"``, ``"ACCOUNT"``, ``"*/SYMBOL"``,
then the default. Per-order and position limits (order qty / notional, collar, duplicates, max
long / short) come from that lookup for the order's symbol; account-wide limits (gross notional,
daily loss, throttles, VaR / ES, kill-switch triggers) from the account's entry (``"ACCOUNT"`` or
the default).

The account of an order is its FIX session (SenderCompID: who is authenticated), never the
client-supplied Account(1) tag, which may only narrow (its own per-order limits apply on top). Risk events are
``(time_ns, actor, kind, limit, value, action)`` with ``actor`` the account concerned.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, with_config

from actors.messages import (
    DropCopy,
    KillSwitch,
    KillSwitchActivated,
    KillSwitchReleased,
    MassCancelAccount,
    QuoteUpdated,
    SubscribeDropCopy,
    SubscribeMarketData,
    TradePrinted,
)
from actors.riskstats import CONVENTION, normal_var_es, var_es
from sim.actor import Actor, Wakeup, handles
from sim.clock import MINUTE, MS, SECOND
from sim.record import Recorder

__all__ = [
    "OFFICER_LEG",
    "OMS_LEG",
    "RISK_EVENT_COLUMNS",
    "Break",
    "ExecReport",
    "Ledger",
    "OpenOrder",
    "PreTradeGate",
    "RiskEvent",
    "RiskLimits",
    "RiskOfficer",
    "VaRFigures",
    "fills_from_orders_table",
    "historical_var_es",
    "minute_returns",
    "parametric_var_es",
    "parse_execution_report",
    "positions_from_fills",
    "reconcile",
]

RISK_EVENT_COLUMNS = ("time_ns", "actor", "kind", "limit", "value", "action")

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Level = Annotated[float, Field(gt=0, lt=1)]


# =============================================================================================
# limits
# =============================================================================================


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Limits of one account or account/symbol. ``None`` switches a limit off."""

    # per order
    max_order_qty: PositiveInt | None = None  # shares
    max_order_notional: PositiveInt | None = None  # ticks x shares (market orders: at the reference)
    collar_pct: NonNegativeFloat | None = None  # |price - reference| <= floor(reference * pct / 100)
    collar_ticks: NonNegativeInt | None = None  # |price - reference| <= ticks (tighter one wins)
    reference: Literal["last", "mid"] = "last"  # collar reference: "last" trade or "mid" of the top of book
    duplicate_window_ms: PositiveFloat | None = None  # same side/qty/price refused within the window
    # positions (potential: position + open orders on that side + the order)
    max_long: NonNegativeInt | None = None  # shares
    max_short: NonNegativeInt | None = None  # shares (a positive number)
    # account-wide
    max_gross_notional: PositiveInt | None = None  # sum |position| x mark + open orders, ticks x shares
    max_daily_loss: NonNegativeInt | None = None  # -(cash + position x mark), ticks x shares
    max_messages: PositiveInt | None = None  # new orders + replaces + cancels per window
    message_window_ms: PositiveFloat = 1000.0
    max_orders: PositiveInt | None = None  # new orders per window
    order_window_ms: PositiveFloat = 1000.0
    max_var: NonNegativeFloat | None = None  # ticks x shares, checked on the officer's timer
    max_es: NonNegativeFloat | None = None
    # kill-switch triggers
    kill_on_loss: bool = True  # daily loss beyond max_daily_loss
    kill_on_position: bool = True  # a filled position beyond max_long / max_short
    kill_throttle_breaches: PositiveInt | None = None  # runaway: this many throttle refusals ...
    kill_throttle_window_ms: PositiveFloat = 10_000.0  # ... within this window
    kill_on_var: bool = False  # VaR / ES beyond its limit

    def __post_init__(self) -> None:
        if self.reference not in ("last", "mid"):
            raise ValueError(f"reference must be 'last' or 'mid', got {self.reference!r}")


def _ns(ms: float) -> int:
    return round(ms * MS)


@dataclass(frozen=True, slots=True)
class RiskEvent:
    time_ns: int
    actor: str  # the account concerned
    kind: str
    limit: float
    value: float
    action: str  # "reject" | "kill" | "alert" | "mass_cancel" | "cancels_acked" | "unblock" | "refused"

    def row(self) -> tuple[int, str, str, float, float, str]:
        return (self.time_ns, self.actor, self.kind, self.limit, self.value, self.action)


# =============================================================================================
# execution reports (drop copies)
# =============================================================================================


@dataclass(frozen=True, slots=True)
class ExecReport:
    """The fields of an ExecutionReport the risk function needs (prices in ticks)."""

    exec_type: str
    ord_status: str
    order_id: str
    cl_ord_id: str | None
    orig_cl_ord_id: str | None
    account: str | None
    symbol: str
    side: str  # "B" | "S"
    leaves_qty: int
    cum_qty: int
    price: int | None
    last_qty: int
    last_px: int | None
    text: str | None


_SIDE = {"1": "B", "2": "S"}


def _fix_fields(raw: Any) -> dict[str, str]:
    text = raw if isinstance(raw, str) else raw.toString()
    sep = "\x01" if "\x01" in text else "|"
    d: dict[str, str] = {}
    for part in text.split(sep):
        k, eq, v = part.partition("=")
        if eq and k not in d:
            d[k] = v
    return d


def _to_ticks(px: str | None, tick: Decimal) -> int | None:
    if px is None or px == "":
        return None
    q = Decimal(px) / tick
    return int(q.to_integral_value())


def parse_execution_report(raw: Any, tick_size: Decimal | str | float = "0.01") -> ExecReport | None:
    """An ExecutionReport (raw FIX string, SOH- or ``|``-delimited, or a quickfix Message) as an
    :class:`ExecReport`; None for any other message type."""
    d = _fix_fields(raw)
    if d.get("35") != "8":
        return None
    tick = tick_size if isinstance(tick_size, Decimal) else Decimal(str(tick_size))
    return ExecReport(
        exec_type=d.get("150", ""),
        ord_status=d.get("39", ""),
        order_id=d.get("37", "NONE"),
        cl_ord_id=d.get("11"),
        orig_cl_ord_id=d.get("41"),
        account=d.get("1") or None,
        symbol=d.get("55", ""),
        side=_SIDE.get(d.get("54", ""), d.get("54", "")),
        leaves_qty=int(d.get("151") or 0),
        cum_qty=int(d.get("14") or 0),
        price=_to_ticks(d.get("44"), tick),
        last_qty=int(d.get("32") or 0),
        last_px=_to_ticks(d.get("31"), tick),
        text=d.get("58"),
    )


# =============================================================================================
# the ledger: the risk function's own view
# =============================================================================================


@dataclass(slots=True)
class OpenOrder:
    account: str
    symbol: str
    side: str
    leaves_qty: int
    px: int  # price for exposure (a market order: the reference when it was entered; 0 if none)
    cum_qty: int = 0


class Ledger:
    """Positions, cash and open orders per account, from execution reports and fills only.

    Open orders are keyed by OrderID once acknowledged; an order the gate let through but not yet
    acknowledged is *pending*, keyed by (session, ClOrdID), and counts as exposure meanwhile."""

    def __init__(self) -> None:
        self.positions: dict[str, dict[str, int]] = {}  # account -> symbol -> shares
        self.cash: dict[str, int] = {}  # account -> ticks x shares
        self.marks: dict[str, int] = {}  # symbol -> last trade price (else the last fill's)
        self.market_marks: set[str] = set()  # symbols marked from market data
        self.orders: dict[str, OpenOrder] = {}  # OrderID -> open order
        self.pending: dict[tuple[str, str], OpenOrder] = {}  # (session, ClOrdID) -> not yet acked
        self.cl_index: dict[tuple[str, str], str] = {}  # (session, ClOrdID) -> OrderID
        self.fills: list[tuple[str, str, str, int, int]] = []  # (account, symbol, side, qty, price)
        # aggregates of open + pending orders
        self._open_qty: dict[tuple[str, str, str], int] = {}  # (account, symbol, side) -> shares
        self._open_notional: dict[str, int] = {}  # account -> sum leaves x px
        self._open_count: dict[str, int] = {}  # account -> number of open + pending orders
        self._holders: dict[str, set[str]] = {}  # symbol -> accounts with a position

    # -- aggregates ---------------------------------------------------------------------------------
    def _book(self, o: OpenOrder, sign: int) -> None:
        k = (o.account, o.symbol, o.side)
        self._open_qty[k] = self._open_qty.get(k, 0) + sign * o.leaves_qty
        self._open_notional[o.account] = self._open_notional.get(o.account, 0) + sign * o.leaves_qty * o.px
        self._open_count[o.account] = self._open_count.get(o.account, 0) + sign

    def open_qty(self, account: str, symbol: str, side: str) -> int:
        return self._open_qty.get((account, symbol, side), 0)

    def open_notional(self, account: str) -> int:
        return self._open_notional.get(account, 0)

    def open_count(self, account: str) -> int:
        return self._open_count.get(account, 0)

    def open_orders(self, account: str | None = None) -> dict[str, OpenOrder]:
        return {k: o for k, o in self.orders.items() if account is None or o.account == account}

    def position(self, account: str, symbol: str) -> int:
        return self.positions.get(account, {}).get(symbol, 0)

    def accounts(self) -> list[str]:
        seen = set(self.positions) | set(self.cash) | {o.account for o in self.orders.values()}
        seen |= {o.account for o in self.pending.values()}
        return sorted(seen)

    def holders(self, symbol: str) -> set[str]:
        return self._holders.get(symbol, set())

    def mark(self, symbol: str) -> int | None:
        return self.marks.get(symbol)

    def gross(self, account: str) -> int:
        """Sum of |position| x mark over symbols plus the open orders' notional."""
        total = self.open_notional(account)
        for symbol, qty in self.positions.get(account, {}).items():
            total += abs(qty) * self.marks.get(symbol, 0)
        return total

    def pnl(self, account: str) -> int:
        """cash + sum position x mark (ticks x shares)."""
        total = self.cash.get(account, 0)
        for symbol, qty in self.positions.get(account, {}).items():
            total += qty * self.marks.get(symbol, 0)
        return total

    # -- updates ------------------------------------------------------------------------------------
    def add_pending(self, session: str, cl_ord_id: str, order: OpenOrder) -> None:
        key = (session, cl_ord_id)
        old = self.pending.pop(key, None)
        if old is not None:
            self._book(old, -1)
        self.pending[key] = order
        self._book(order, +1)

    def find(self, session: str, cl_ord_id: str | None, order_id: str | None) -> OpenOrder | None:
        oid = self.cl_index.get((session, cl_ord_id)) if cl_ord_id else None
        if oid is None and order_id:
            oid = order_id
        order = self.orders.get(oid) if oid is not None else None
        if order is None and cl_ord_id:
            order = self.pending.get((session, cl_ord_id))
        return order

    def apply_fill(self, account: str, symbol: str, side: str, qty: int, price: int) -> None:
        signed = qty if side == "B" else -qty
        book = self.positions.setdefault(account, {})
        book[symbol] = book.get(symbol, 0) + signed
        self.cash[account] = self.cash.get(account, 0) - signed * price
        self._holders.setdefault(symbol, set()).add(account)
        if symbol not in self.market_marks:
            self.marks[symbol] = price
        self.fills.append((account, symbol, side, qty, price))

    def apply(self, session: str, er: ExecReport) -> tuple[str, bool]:
        """Update from one execution report; returns (account, whether it was a fill). The account
        is the FIX session that carried the order (its authenticated identity), never the
        client-supplied Account(1) tag."""
        account = session
        oid = er.order_id if er.order_id and er.order_id != "NONE" else None
        if oid is not None:
            for cl in (er.cl_ord_id, er.orig_cl_ord_id):
                if cl:
                    self.cl_index[(session, cl)] = oid
        if er.exec_type == "I":  # a status reply changes nothing
            return account, False
        pend = self.pending.pop((session, er.cl_ord_id), None) if er.cl_ord_id else None
        if pend is not None:
            self._book(pend, -1)
        old = self.orders.pop(oid, None) if oid is not None else None
        if old is not None:
            self._book(old, -1)
        filled = er.exec_type == "F" and er.last_qty > 0 and er.last_px is not None
        if filled:
            self.apply_fill(account, er.symbol, er.side, er.last_qty, er.last_px)  # type: ignore[arg-type]
        done = er.ord_status in ("2", "4", "8", "C") or er.exec_type in ("4", "8", "C")
        if oid is not None and not done and er.leaves_qty > 0:
            px = er.price
            if px is None:  # a market order: keep the value it was entered at
                prior = old or pend
                px = prior.px if prior is not None else self.marks.get(er.symbol, 0)
            order = OpenOrder(account, er.symbol, er.side, er.leaves_qty, px, er.cum_qty)
            self.orders[oid] = order
            self._book(order, +1)
        return account, filled

    def snapshot(self) -> dict[str, Any]:
        """``{"positions": {account: {symbol: shares}}, "cash": {account: ticks x shares}}``."""
        return {
            "positions": {a: dict(sorted(p.items())) for a, p in sorted(self.positions.items())},
            "cash": dict(sorted(self.cash.items())),
        }


# =============================================================================================
# the pre-trade gate
# =============================================================================================


class PreTradeGate:
    """Pre-trade checks (SEC 15c3-5 / MiFID RTS 6 style) with an independent ledger.

    ``check(...)`` returns None to accept or the refusal text. Order of checks: kill switch,
    message throttle, order throttle, order quantity, order notional, price collar, duplicate,
    position, gross notional, daily loss. Throttle windows count messages that passed the
    throttle (a throttled message does not count, so a well-behaved sender recovers when the
    window slides); cancels count as messages (:meth:`on_cancel`) and are never refused. A
    collar fails closed: its reference is the last trade or mid, else the static reference price
    (``reference_prices``), else the order is refused. Every refusal, kill and release is a
    :class:`RiskEvent` passed to ``sink`` (or kept in ``events`` when there is no sink)."""

    def __init__(
        self,
        default: RiskLimits | None = None,
        overrides: Mapping[str, RiskLimits] | None = None,
        *,
        ledger: Ledger | None = None,
        sink: Callable[[RiskEvent], None] | None = None,
        reference_prices: Mapping[str, int] | None = None,
    ) -> None:
        self.default = default or RiskLimits()
        self.overrides = dict(overrides or {})
        self.ledger = ledger or Ledger()
        self.sink = sink
        self.events: list[RiskEvent] = []
        self.blocked: dict[str, str] = {}  # account -> reason
        self.block_all: str | None = None  # reason when every account is blocked
        self.reference: dict[str, int] = {}  # symbol -> last trade
        self.mid: dict[str, int] = {}  # symbol -> floor((bid + ask) / 2)
        # symbol -> the day's static reference (the scenario's reference price / prior close): the
        # collar's reference before the market has one, and the mark until the first trade (so the
        # account's P&L is never marked on its own prints)
        self.prior: dict[str, int] = dict(reference_prices or {})
        for symbol, price in self.prior.items():
            self.ledger.marks[symbol] = price
            self.ledger.market_marks.add(symbol)
        self.now_ns = 0
        self.accepted = 0
        self.rejected = 0
        self._kills: list[tuple[str, str, int]] = []
        self._messages: dict[str, deque[int]] = {}
        self._orders: dict[str, deque[int]] = {}
        self._breaches: dict[str, deque[int]] = {}
        self._recent: dict[tuple[str, str, str, int, int | None], int] = {}  # duplicate detection
        self._cache: dict[tuple[str, str | None], RiskLimits] = {}

    # -- configuration ------------------------------------------------------------------------------
    def limits_for(self, account: str, symbol: str | None = None) -> RiskLimits:
        key = (account, symbol)
        lim = self._cache.get(key)
        if lim is None:
            o = self.overrides
            names = [f"{account}/{symbol}", account, f"*/{symbol}"] if symbol is not None else [account]
            lim = next((o[n] for n in names if n in o), self.default)
            self._cache[key] = lim
        return lim

    def set_limits(self, key: str, limits: RiskLimits) -> None:
        """Install or replace the limits of ``key`` ("ACCOUNT", "ACCOUNT/SYMBOL", "*/SYMBOL")."""
        self.overrides[key] = limits
        self._cache.clear()

    # -- market inputs ------------------------------------------------------------------------------
    def on_reference(self, symbol: str, price: int) -> None:
        """The last trade price of ``symbol``: collar reference ("last") and mark."""
        self.reference[symbol] = price
        self.ledger.marks[symbol] = price
        self.ledger.market_marks.add(symbol)

    def on_quote(self, symbol: str, bid: int | None, ask: int | None) -> None:
        if bid is not None and ask is not None:
            self.mid[symbol] = (bid + ask) // 2

    def on_mark(self, symbol: str, price: int, now_ns: int | None = None) -> None:
        """A new mark (trade price): update and check the loss of every holder."""
        self.on_reference(symbol, price)
        now = self._clock(now_ns)
        for account in sorted(self.ledger.holders(symbol)):
            self.evaluate(account, now)

    def _ref(self, lim: RiskLimits, symbol: str) -> int | None:
        """The collar / notional reference: the limit's own ("last" trade or "mid"), else the
        other market one, else the static reference price; None when nothing is known."""
        if lim.reference == "mid":
            m = self.mid.get(symbol)
            if m is not None:
                return m
        last = self.reference.get(symbol)
        if last is not None:
            return last
        m = self.mid.get(symbol)
        return m if m is not None else self.prior.get(symbol)

    # -- order-flow inputs (the drop-copy view) ---------------------------------------------------
    def on_execution_report(self, session: str, raw: Any, now_ns: int | None = None, tick_size: Any = "0.01") -> Any:
        """Feed one drop copy (raw string / quickfix Message / :class:`ExecReport`). Returns the
        parsed report (None if not an 8)."""
        er = raw if isinstance(raw, ExecReport) else parse_execution_report(raw, tick_size)
        if er is None:
            return None
        account, filled = self.ledger.apply(session, er)
        if filled:
            self.evaluate(account, self._clock(now_ns))
        return er

    def on_fill(self, account: str, symbol: str, side: str, qty: int, price: int, now_ns: int | None = None) -> None:
        """A fill known otherwise than by an execution report (tests, native order paths)."""
        self.ledger.apply_fill(account, symbol, side, qty, price)
        self.evaluate(account, self._clock(now_ns))

    def evaluate(self, account: str, now_ns: int | None = None) -> None:
        """Kill-switch triggers on the filled state: daily loss and position beyond their limits."""
        if account in self.blocked:
            return
        now = self._clock(now_ns)
        lim = self.limits_for(account)
        if lim.max_daily_loss is not None and lim.kill_on_loss:
            loss = -self.ledger.pnl(account)
            if loss > lim.max_daily_loss:
                self._event(now, account, "daily_loss", lim.max_daily_loss, loss, "kill")
                self.kill(account, f"daily loss {loss} > {lim.max_daily_loss}", now, kind=None)
                return
        for symbol, pos in sorted(self.ledger.positions.get(account, {}).items()):
            sl = self.limits_for(account, symbol)
            if not sl.kill_on_position:
                continue
            if sl.max_long is not None and pos > sl.max_long:
                self._event(now, account, "position_long", sl.max_long, pos, "kill")
                self.kill(account, f"{symbol} position {pos} > max long {sl.max_long}", now, kind=None)
                return
            if sl.max_short is not None and -pos > sl.max_short:
                self._event(now, account, "position_short", sl.max_short, -pos, "kill")
                self.kill(account, f"{symbol} position {pos} < -max short {sl.max_short}", now, kind=None)
                return

    # -- kill switch -------------------------------------------------------------------------------
    def is_blocked(self, account: str) -> bool:
        return self.block_all is not None or account in self.blocked

    def kill(self, account: str, reason: str, now_ns: int | None = None, kind: str | None = "kill_switch") -> None:
        """Block every new order of ``account`` (``""`` or ``"*"``: every account) and queue the
        kill for the officer (:meth:`take_kills`). Idempotent while blocked."""
        now = self._clock(now_ns)
        if account in ("", "*"):
            if self.block_all is not None:
                return
            self.block_all = reason
            targets = [a for a in self.ledger.accounts() if a not in self.blocked]
            for a in targets:
                self.blocked[a] = reason
            self._event(now, "*", kind or "kill_switch", 0, 1, "kill")
            self._kills.append(("", reason, now))
            return
        if account in self.blocked:
            return
        self.blocked[account] = reason
        if kind is not None:
            self._event(now, account, kind, 0, 1, "kill")
        self._kills.append((account, reason, now))

    def unblock(self, account: str, now_ns: int | None = None, reason: str = "command") -> None:
        """Re-enable ``account`` (``""`` / ``"*"``: all). Only an explicit command does this."""
        now = self._clock(now_ns)
        if account in ("", "*"):
            self.block_all = None
            for a in sorted(self.blocked):
                self._event(now, a, "kill_switch", 0, 0, "unblock")
            self.blocked.clear()
            return
        if self.blocked.pop(account, None) is not None:
            self._event(now, account, "kill_switch", 0, 0, "unblock")

    def take_kills(self) -> list[tuple[str, str, int]]:
        """Kills decided since the last call: (account, reason, time_ns); ``""`` = all accounts."""
        kills, self._kills = self._kills, []
        return kills

    # -- the check ----------------------------------------------------------------------------------
    def on_cancel(self, session_key: str, account: str | None = None, now_ns: int | None = None) -> None:
        """A cancel (F) or mass cancel (q) received by the gateway: one message in the account's
        message-rate window (RTS 6 counts every message). A cancel is never refused -- it only
        takes risk off -- but the new orders and replaces after it meet a fuller window."""
        who = account or session_key
        lim = self.limits_for(who)
        if lim.max_messages is not None:
            now = self._clock(now_ns)
            _window(self._messages, who, now, _ns(lim.message_window_ms)).append(now)

    def __call__(self, session_key: str, req: Any, now_ns: int | None = None) -> str | None:
        """The ``pretrade`` hook of :class:`fix.gateway.GatewayCore` (a ``NewOrder`` or a
        ``ReplaceRequest`` of ``fix.codec``). Every control keys on the session (SenderCompID, the
        authenticated client); an Account(1) tag may only narrow: when the tag has limits of its
        own, its per-order limits apply on top of the session's."""
        account = session_key
        tag = getattr(req, "account", None)
        if tag and tag != session_key:
            refused = self._narrow(account, tag, req.symbol, req.qty, req.price_ticks, now_ns)
            if refused is not None:
                self.rejected += 1
                return refused
        if hasattr(req, "orig_cl_ord_id"):  # a replace: OrderQty is the new total
            old = self.ledger.find(session_key, req.orig_cl_ord_id, req.order_id)
            return self.check(
                account, req.symbol, req.side, req.qty, req.price_ticks, now_ns, replaces=old, session=session_key
            )
        return self.check(
            account,
            req.symbol,
            req.side,
            req.qty,
            req.price_ticks,
            now_ns,
            session=session_key,
            cl_ord_id=req.cl_ord_id,
        )

    def _narrow(
        self, account: str, tag: str, symbol: str, qty: int, price: int | None, now_ns: int | None
    ) -> str | None:
        """The per-order limits (quantity, notional) of an Account tag's own entry, if it has one."""
        names = (f"{tag}/{symbol}", tag)
        lim = next((self.overrides[n] for n in names if n in self.overrides), None)
        if lim is None:
            return None
        now = self._clock(now_ns)
        if lim.max_order_qty is not None and qty > lim.max_order_qty:
            return self._reject(now, account, "max_order_qty", lim.max_order_qty, qty)
        px = price if price is not None else self._ref(lim, symbol)
        if lim.max_order_notional is not None and px is not None and qty * px > lim.max_order_notional:
            return self._reject(now, account, "max_order_notional", lim.max_order_notional, qty * px)
        return None

    def check(
        self,
        account: str,
        symbol: str,
        side: str,
        qty: int,
        price: int | None,
        now_ns: int | None = None,
        *,
        session: str | None = None,
        cl_ord_id: str | None = None,
        replaces: OpenOrder | None = None,
    ) -> str | None:
        """Accept (None) or refuse (the reason) a new order -- or, with ``replaces``, a replace of
        that open order to total quantity ``qty`` at ``price``. With ``cl_ord_id`` an accepted new
        order is kept as pending exposure under ``(session or account, cl_ord_id)`` until its
        execution report arrives."""
        now = self._clock(now_ns)
        reason = self._check(account, symbol, side, qty, price, now, session, cl_ord_id, replaces)
        if reason is None:
            self.accepted += 1
        else:
            self.rejected += 1
        return reason

    def _check(
        self,
        account: str,
        symbol: str,
        side: str,
        qty: int,
        price: int | None,
        now: int,
        session: str | None,
        cl_ord_id: str | None,
        old: OpenOrder | None,
    ) -> str | None:
        is_new = old is None
        if self.block_all is not None or account in self.blocked:
            self._event(now, account, "kill_switch", 0, 1, "reject")
            return f"risk: kill switch active ({self.blocked.get(account) or self.block_all})"
        acct = self.limits_for(account)
        lim = self.limits_for(account, symbol)
        # -- throttles (both windows are checked before either counts: a throttled message takes
        # no slot, so a well-behaved sender recovers when the window slides) --------------------
        msg_dq = order_dq = None
        if acct.max_messages is not None:
            msg_dq = _window(self._messages, account, now, _ns(acct.message_window_ms))
            if len(msg_dq) >= acct.max_messages:
                return self._throttled(now, account, acct, "message_rate", acct.max_messages, len(msg_dq) + 1)
        if is_new and acct.max_orders is not None:
            order_dq = _window(self._orders, account, now, _ns(acct.order_window_ms))
            if len(order_dq) >= acct.max_orders:
                return self._throttled(now, account, acct, "order_rate", acct.max_orders, len(order_dq) + 1)
        if msg_dq is not None:
            msg_dq.append(now)
        if order_dq is not None:
            order_dq.append(now)
        # -- the order itself ------------------------------------------------------------------
        if lim.max_order_qty is not None and qty > lim.max_order_qty:
            return self._reject(now, account, "max_order_qty", lim.max_order_qty, qty)
        ref = self._ref(lim, symbol)
        px = price if price is not None else (ref if ref is not None else self.ledger.marks.get(symbol))
        if px is None and (lim.max_order_notional is not None or acct.max_gross_notional is not None):
            return self._reject(now, account, "no_reference", 0, 0, "risk: no reference price for a market order")
        notional = qty * (px or 0)
        if lim.max_order_notional is not None and notional > lim.max_order_notional:
            return self._reject(now, account, "max_order_notional", lim.max_order_notional, notional)
        if price is not None and (lim.collar_pct is not None or lim.collar_ticks is not None):
            if ref is None:  # fail closed: a collar that cannot be checked refuses the order
                return self._reject(now, account, "no_reference", 0, 0, "risk: no reference price for the collar")
            width = _collar_width(ref, lim)
            if abs(price - ref) > width:
                bound = ref + width if price > ref else ref - width
                return self._reject(
                    now, account, "price_collar", bound, price, f"risk: price {price} outside collar {ref}+-{width}"
                )
        dup_key = None
        if is_new and lim.duplicate_window_ms is not None:
            dup_key = (account, symbol, side, qty, price)
            t = self._recent.get(dup_key)
            if t is not None and now - t < _ns(lim.duplicate_window_ms):
                return self._reject(
                    now, account, "duplicate_order", _ns(lim.duplicate_window_ms), now - t, "risk: duplicate order"
                )
        # -- exposure ---------------------------------------------------------------------------
        ledger = self.ledger
        open_qty = qty - (old.cum_qty if old is not None else 0)
        if lim.max_long is not None or lim.max_short is not None:
            pos = ledger.position(account, symbol)
            same = ledger.open_qty(account, symbol, side)
            if old is not None and old.side == side and old.symbol == symbol:
                same -= old.leaves_qty
            if side == "B":
                potential = pos + same + open_qty
                if lim.max_long is not None and potential > lim.max_long:
                    return self._reject(now, account, "max_long", lim.max_long, potential)
            else:
                potential = -(pos - same - open_qty)
                if lim.max_short is not None and potential > lim.max_short:
                    return self._reject(now, account, "max_short", lim.max_short, potential)
        if acct.max_gross_notional is not None:
            gross = ledger.gross(account) + open_qty * (px or 0)
            if old is not None:
                gross -= old.leaves_qty * old.px
            if gross > acct.max_gross_notional:
                return self._reject(now, account, "gross_notional", acct.max_gross_notional, gross)
        if acct.max_daily_loss is not None:
            loss = -ledger.pnl(account)
            if loss > acct.max_daily_loss:
                return self._reject(now, account, "daily_loss", acct.max_daily_loss, loss)
        # -- accepted ---------------------------------------------------------------------------
        if dup_key is not None:
            self._recent[dup_key] = now
            if len(self._recent) > 4096:
                self._prune_recent(now)
        if is_new and cl_ord_id is not None:
            ledger.add_pending(session or account, cl_ord_id, OpenOrder(account, symbol, side, qty, px or 0))
        return None

    # -- helpers -----------------------------------------------------------------------------------
    def _clock(self, now_ns: int | None) -> int:
        if now_ns is not None and now_ns > self.now_ns:
            self.now_ns = now_ns
        return self.now_ns if now_ns is None else now_ns

    def _event(self, now: int, account: str, kind: str, limit: float, value: float, action: str) -> None:
        ev = RiskEvent(now, account, kind, float(limit), float(value), action)
        if self.sink is not None:
            self.sink(ev)
        else:
            self.events.append(ev)

    def _reject(self, now: int, account: str, kind: str, limit: int, value: int, text: str | None = None) -> str:
        self._event(now, account, kind, limit, value, "reject")
        return text or f"risk: {kind.replace('_', ' ')} {value} > {limit}"

    def _throttled(self, now: int, account: str, acct: RiskLimits, kind: str, limit: int, value: int) -> str:
        self._event(now, account, kind, limit, value, "reject")
        n = acct.kill_throttle_breaches
        if n is not None:
            dq = _window(self._breaches, account, now, _ns(acct.kill_throttle_window_ms))
            dq.append(now)
            if len(dq) >= n:
                self._event(now, account, "runaway_order_rate", n, len(dq), "kill")
                self.kill(account, f"runaway order rate: {len(dq)} throttle breaches", now, kind=None)
        return f"risk: {kind.replace('_', ' ')} {value} > {limit} per window"

    def _prune_recent(self, now: int) -> None:
        keep = {}
        for key, t in self._recent.items():
            lim = self.limits_for(key[0], key[1])
            if lim.duplicate_window_ms is not None and now - t < _ns(lim.duplicate_window_ms):
                keep[key] = t
        self._recent = keep


def _window(table: dict[str, deque[int]], account: str, now: int, window: int) -> deque[int]:
    dq = table.get(account)
    if dq is None:
        dq = table[account] = deque()
    cutoff = now - window
    while dq and dq[0] <= cutoff:
        dq.popleft()
    return dq


def _collar_width(ref: int, lim: RiskLimits) -> int:
    widths = []
    if lim.collar_pct is not None:
        widths.append(math.floor(ref * Fraction(str(lim.collar_pct)) / 100))
    if lim.collar_ticks is not None:
        widths.append(lim.collar_ticks)
    return min(widths)


# =============================================================================================
# VaR / ES
# =============================================================================================


#: the officer's VaR: losses of the current exposure over this horizon ...
VAR_HORIZON_S = 60
#: ... from mid-price returns over the horizon, sampled (overlapping) on this grid ...
VAR_STEP_S = 10
#: ... and shown only with at least this many observations in the tail (N (1 - alpha) >= 3),
#: else "n/a" (None): a 99% VaR needs 300 observations, 51 minutes of quotes.
VAR_MIN_TAIL = 3


def var_min_observations(alpha: float) -> int:
    """Fewest observations for an intraday VaR at ``alpha``: ``ceil(VAR_MIN_TAIL / (1 - alpha))``."""
    return math.ceil(VAR_MIN_TAIL / (1 - Fraction(str(alpha))))


def historical_var_es(losses: Sequence[float], alpha: float = 0.99) -> tuple[float, float]:
    """Historical VaR (the ``ceil(N (1 - alpha))``-th largest loss) and Acerbi-Tasche ES, from
    :mod:`actors.riskstats` (the one definition Monte Carlo uses too). ``(nan, nan)`` without
    outcomes."""
    return var_es(losses, alpha)


def parametric_var_es(losses: Sequence[float], alpha: float = 0.99) -> tuple[float, float]:
    """Normal VaR and ES of losses with the sample mean ``mu`` and standard deviation ``s``
    (n - 1): VaR = mu + z s, ES = mu + s phi(z) / (1 - alpha), z = Phi^-1(alpha); nan below 2."""
    return normal_var_es(losses, alpha)


def grid_returns(
    series: Mapping[str, Sequence[tuple[int, int]]], symbols: Iterable[str], lag: int, last: int
) -> list[dict[str, float]]:
    """Returns over ``lag`` grid steps of ``symbols`` at every grid slot up to ``last`` (overlapping
    windows), on a common grid of forward-filled prices starting where every symbol has one.
    ``series[symbol]`` is (slot, price) in increasing slot order (any price unit: 2 x mid)."""
    symbols = sorted(set(symbols))
    data = {s: dict(series.get(s, ())) for s in symbols}
    if not symbols or any(not v for v in data.values()):
        return []
    start = max(min(v) for v in data.values())
    if last - start < lag:
        return []
    filled: dict[str, list[int]] = {}
    for s in symbols:
        px = data[s][max(t for t in data[s] if t <= start)]
        col = []
        for t in range(start, last + 1):
            px = data[s].get(t, px)
            col.append(px)
        filled[s] = col
    return [{s: filled[s][i] / filled[s][i - lag] - 1.0 for s in symbols} for i in range(lag, last - start + 1)]


def minute_returns(closes: Mapping[str, Sequence[tuple[int, int]]], symbols: Iterable[str]) -> list[dict[str, float]]:
    """Simple 1-minute returns of ``symbols`` on a common minute grid (forward-filled closes),
    starting at the first minute where every symbol has a price. ``closes[symbol]`` is a list of
    (minute index, last trade price) in increasing minute order."""
    symbols = sorted(set(symbols))
    series = {s: dict(closes.get(s, ())) for s in symbols}
    if not symbols or any(not v for v in series.values()):
        return []
    start = max(min(v) for v in series.values())
    end = max(max(v) for v in series.values())
    last: dict[str, int] = {}
    for s in symbols:
        before = [m for m in series[s] if m <= start]
        last[s] = series[s][max(before)]
    out = []
    for m in range(start + 1, end + 1):
        row = {}
        for s in symbols:
            p = series[s].get(m, last[s])
            row[s] = p / last[s] - 1.0
            last[s] = p
        out.append(row)
    return out


# =============================================================================================
# reconciliation
# =============================================================================================


OMS_LEG = "OMS vs exchange"
OFFICER_LEG = "officer vs exchange"


@dataclass(frozen=True, slots=True)
class Break:
    """A disagreement: ``what`` is "position" (shares) or "cash" (ticks x shares = cents at tick
    0.01); ``symbol`` is "" for cash; a side missing the account/symbol reports 0."""

    account: str
    symbol: str
    what: str
    oms: int
    risk: int
    exchange: int

    @property
    def legs(self) -> list[str]:
        """The legs that disagree with the exchange (the book of record): ``"OMS vs exchange"``,
        ``"officer vs exchange"``, or both."""
        return [name for name, v in ((OMS_LEG, self.oms), (OFFICER_LEG, self.risk)) if v != self.exchange]

    def __str__(self) -> str:
        where = f"{self.account}/{self.symbol}" if self.symbol else self.account
        legs = ", ".join(self.legs)
        return f"{legs}: {self.what} break {where}: oms={self.oms} risk={self.risk} exchange={self.exchange}"


def _fill_tuple(f: Any) -> tuple[str, str, str, int, int]:
    if isinstance(f, Mapping):
        return (str(f["account"]), str(f["symbol"]), str(f["side"]), int(f["qty"]), int(f["price"]))
    if isinstance(f, tuple | list):
        a, s, side, q, p = f
        return (str(a), str(s), str(side), int(q), int(p))
    return (str(f.account), str(f.symbol), str(f.side), int(f.qty), int(f.price))


def fills_from_orders_table(
    rows: Any, account_of: Mapping[int, str] | Callable[[int], str | None], symbol: str | None = None
) -> list[tuple[str, str, str, int, int]]:
    """Exchange-side fills ``(account, symbol, side, qty, price)`` from the exchange's ``orders``
    table (a DataFrame or its row tuples: time_ns, order_id, owner, event, side, price, qty, ...)
    for the order ids ``account_of`` knows (e.g. the gateway's order id -> account map). The
    orders table has no symbol column: pass ``symbol`` for a single-symbol exchange, or let
    ``account_of`` return ``"account/symbol"``."""
    look = account_of.get if isinstance(account_of, Mapping) else account_of
    it = rows.itertuples(index=False, name=None) if hasattr(rows, "itertuples") else rows
    out = []
    for row in it:
        if row[3] != "filled":
            continue
        who = look(int(row[1]))
        if who is None:
            continue
        account, _, sym = who.partition("/") if symbol is None else (who, "", symbol)
        out.append((account, sym, str(row[4]), int(row[6]), int(row[5])))
    return out


def positions_from_fills(fills: Iterable[Any]) -> dict[str, Any]:
    """Snapshot (as :meth:`Ledger.snapshot`) from fills ``(account, symbol, side, qty, price)``
    (tuples, mappings or objects with those attributes)."""
    positions: dict[str, dict[str, int]] = {}
    cash: dict[str, int] = {}
    for f in fills:
        account, symbol, side, qty, price = _fill_tuple(f)
        signed = qty if side in ("B", "1", "buy") else -qty
        book = positions.setdefault(account, {})
        book[symbol] = book.get(symbol, 0) + signed
        cash[account] = cash.get(account, 0) - signed * price
    return {"positions": positions, "cash": cash}


def reconcile(
    oms_snapshot: Mapping[str, Any], exchange_fills: Iterable[Any], risk_snapshot: Mapping[str, Any] | None = None
) -> list[Break]:
    """Compare positions (shares) and cash (ticks x shares) of the OMS, the risk officer and the
    exchange. Snapshots are ``{"positions": {account: {symbol: shares}}, "cash": {account: n}}``
    (:meth:`RiskOfficer.snapshot` gives the officer's); the exchange side is computed from its
    fills ``(account, symbol, side, qty, price)``. With ``risk_snapshot`` None only OMS vs
    exchange is compared (``risk`` is then reported equal to ``exchange``). Zero positions and
    missing entries agree. Breaks are sorted by account, what, symbol."""
    ex = positions_from_fills(exchange_fills)
    views = [oms_snapshot, risk_snapshot if risk_snapshot is not None else ex, ex]
    pos = [v.get("positions", {}) for v in views]
    cash = [v.get("cash", {}) for v in views]
    breaks: list[Break] = []
    keys = sorted({(a, s) for p in pos for a, book in p.items() for s in book})
    for a, s in keys:
        vals = [int(p.get(a, {}).get(s, 0)) for p in pos]
        if len(set(vals)) > 1:
            breaks.append(Break(a, s, "position", *vals))
    for a in sorted({a for c in cash for a in c}):
        vals = [int(c.get(a, 0)) for c in cash]
        if len(set(vals)) > 1:
            breaks.append(Break(a, "", "cash", *vals))
    breaks.sort(key=lambda b: (b.account, b.what, b.symbol))
    return breaks


# =============================================================================================
# the risk officer actor
# =============================================================================================


@dataclass(slots=True)
class _KillRun:
    reason: str
    trigger_ns: int
    done_ns: int | None = None
    resent: int = 0
    account: str = ""
    canceled: int = 0  # orders the gateway reported canceled for this kill (ExecType 4, Text = reason)


@dataclass(slots=True)
class VaRFigures:
    """VaR / ES of one account at ``time_ns`` over ``horizon_s``; the figures are None ("n/a")
    with fewer than ``min_n`` observations."""

    time_ns: int
    account: str
    n: int
    hist_var: float | None
    hist_es: float | None
    param_var: float | None
    param_es: float | None
    exposure: dict[str, int] = field(default_factory=dict)
    horizon_s: int = VAR_HORIZON_S
    min_n: int = 0

    def view(self) -> dict[str, Any]:
        figs = {"hist_var": self.hist_var, "hist_es": self.hist_es, "param_var": self.param_var}
        figs["param_es"] = self.param_es
        status = "ok" if self.hist_var is not None else f"n/a: {self.n} of {self.min_n} observations"
        return {**figs, "n": self.n, "horizon_s": self.horizon_s, "status": status}


class RiskOfficer(Actor):
    """Independent control function. Handles ``DropCopy`` (from the FIX gateway actor it
    subscribed to with ``SubscribeDropCopy``), ``TradePrinted`` / ``QuoteUpdated`` (market
    data it subscribed to at the exchange), ``KillSwitch`` (a command: ``on=True`` pulls it,
    ``on=False`` releases it -- the only way to re-enable) and its VaR timer.

    On a kill (its own trigger, the gate's runaway detection or a command) it sends
    ``MassCancelAccount(account, reason)`` to the gateway, ``KillSwitchActivated(account, reason,
    trigger time)`` to every desk actor, and records ``kill_switch`` events: ``mass_cancel`` at the
    trigger, ``cancels_acked`` (value = nanoseconds from trigger to the last cancel acknowledged,
    seen in the drop copies) when the account has no open order left; ``kill_latency_ns`` keeps
    those figures. An order of a blocked account acknowledged after the mass cancel makes it send
    the mass cancel again.
    """

    placement_role: ClassVar[str] = "hub"  # the exchange side: one process with the exchange

    def __init__(
        self,
        name: str,
        recorder: Recorder,
        gate: PreTradeGate | None = None,
        *,
        symbols: Sequence[str] = (),
        gateway: str | None = "gateway",
        exchange: str | None = "exchange",
        desk: str | Sequence[str] | None = None,
        tick_size: Decimal | str | float = "0.01",
        var_interval_s: float = 60.0,
        var_lookback_min: int = 60,
        var_alpha: float = 0.99,
        location: str = "risk",
        accounts: Sequence[str] = (),
    ) -> None:
        super().__init__(name, location)
        self.known_accounts = set(accounts)  # the FIX sessions the officer answers for
        self.recorder = recorder
        self.table = recorder.table("risk_events", RISK_EVENT_COLUMNS)
        self.gate = gate if gate is not None else PreTradeGate()
        self.gate.sink = self._record
        self.ledger = self.gate.ledger
        self.symbols = list(symbols)
        self.gateway_name = gateway
        self.exchange_name = exchange
        self.desk_names = [desk] if isinstance(desk, str) else list(desk or ())
        self.tick = tick_size if isinstance(tick_size, Decimal) else Decimal(str(tick_size))
        self.var_interval_ns = round(var_interval_s * SECOND)
        self.var_lookback_min = int(var_lookback_min)
        self.var_alpha = float(var_alpha)
        self.gateway = -1
        self.exchange = -1
        self.desks: list[int] = []
        self.closes: dict[str, deque[tuple[int, int]]] = {}
        self.mids: dict[str, deque[tuple[int, int]]] = {}  # symbol -> (grid slot, bid + ask) closes
        self.kills: dict[str, _KillRun] = {}
        self.kill_log: list[_KillRun] = []  # every kill of the run, released or not
        self.kill_latency_ns: dict[str, list[int]] = {}
        self.var: dict[str, VaRFigures] = {}
        self.drop_copies = 0
        self.errors: list[str] = []

    # -- start ------------------------------------------------------------------------------------
    def on_start(self) -> None:
        if self.gateway_name is not None:
            self.gateway = self.lookup(self.gateway_name)
            self.send(self.gateway, SubscribeDropCopy())
        if self.exchange_name is not None:
            self.exchange = self.lookup(self.exchange_name)
            for symbol in self.symbols:  # quotes: the VaR runs on mid prices (no bid-ask bounce)
                self.send(self.exchange, SubscribeMarketData(symbol, trades=True, quotes=True))
        self.desks = [self.lookup(n) for n in self.desk_names]
        if self.var_interval_ns > 0:
            self.wake_in(self.var_interval_ns, "var")

    # -- inputs ----------------------------------------------------------------------------------
    @handles(DropCopy)
    def _on_drop_copy(self, msg: DropCopy, src: int) -> None:
        self.on_drop_copy(msg.session, msg.exec_report_raw)

    def on_drop_copy(self, session: str, raw: Any) -> None:
        """One drop copy (also callable directly by a gateway adapter)."""
        self.drop_copies += 1
        try:
            er = parse_execution_report(raw, self.tick)
        except Exception as exc:
            self._error(f"drop copy: {type(exc).__name__}: {exc}")
            return
        if er is None:
            return
        self.gate.on_execution_report(session, er, self.now)
        account = session  # controls key on the session, never on the Account(1) tag
        if er.exec_type == "4":  # the gateway's answer to a kill: a cancel carrying its reason
            killed = self.kills.get(account) or self.kills.get("")
            if killed is not None and er.text == killed.reason:
                killed.canceled += 1
        if er.exec_type in ("0", "5") and self.gate.is_blocked(account):
            run = self.kills.get(account) or self.kills.get("")
            if run is not None and self.gateway >= 0:
                run.resent += 1
                self.send(self.gateway, self._mass_cancel(account, run.reason))
        self._after()

    @handles(TradePrinted)
    def on_trade(self, msg: TradePrinted, src: int) -> None:
        minute = msg.time_ns // MINUTE
        dq = self.closes.get(msg.symbol)
        if dq is None:
            dq = self.closes[msg.symbol] = deque(maxlen=self.var_lookback_min + 2)
        if dq and dq[-1][0] == minute:
            dq[-1] = (minute, msg.price)
        else:
            dq.append((minute, msg.price))
        self.gate.on_mark(msg.symbol, msg.price, self.now)
        self._after()

    @handles(QuoteUpdated)
    def on_quote(self, msg: QuoteUpdated, src: int) -> None:
        self.gate.on_quote(msg.symbol, msg.bid, msg.ask)
        if msg.bid is None or msg.ask is None:
            return
        slot = msg.time_ns // (VAR_STEP_S * SECOND)
        dq = self.mids.get(msg.symbol)
        if dq is None:
            steps = (self.var_lookback_min * 60 + VAR_HORIZON_S) // VAR_STEP_S + 2
            dq = self.mids[msg.symbol] = deque(maxlen=steps)
        if dq and dq[-1][0] == slot:
            dq[-1] = (slot, msg.bid + msg.ask)
        else:
            dq.append((slot, msg.bid + msg.ask))

    @handles(Wakeup)
    def on_wakeup(self, msg: Wakeup, src: int) -> None:
        if msg.tag == "var":
            self.compute_var()
            self.wake_in(self.var_interval_ns, "var")
        self._after()

    def is_known(self, account: str) -> bool:
        """An account the kill switch can act on: ``""`` / ``"*"`` (all), a configured session, one
        seen in the drop copies, or one with limits of its own. Case-sensitive, as CompIDs are."""
        if account in ("", "*") or account in self.known_accounts or account in self.gate.overrides:
            return True
        return account in self.ledger.accounts()

    @handles(KillSwitch)
    def on_kill_switch(self, msg: KillSwitch, src: int) -> None:
        if not self.is_known(msg.account):  # nothing would be canceled or blocked: refuse, say so
            on = 1.0 if msg.on else 0.0
            self._record(RiskEvent(self.now, msg.account, "kill_switch_command", 0.0, on, "refused"))
            self._error(f"kill switch {'on' if msg.on else 'off'} for unknown account {msg.account!r} refused")
            return
        if msg.on:
            self.gate.kill(msg.account, msg.reason or "command", self.now, kind="kill_switch_command")
        else:
            self.gate.unblock(msg.account, self.now, msg.reason)
            if msg.account in ("", "*"):
                self.kills.clear()
            else:
                self.kills.pop(msg.account, None)
            for d in self.desks:
                self.send(d, KillSwitchReleased(msg.account, msg.reason, self.now))
        self._after()

    # -- kill switch -----------------------------------------------------------------------------
    def _mass_cancel(self, account: str, reason: str) -> MassCancelAccount:
        return MassCancelAccount(account, reason)

    def _after(self) -> None:
        for account, reason, t0 in self.gate.take_kills():
            self._start_kill(account, reason, t0)
        for account, run in list(self.kills.items()):
            if run.done_ns is None and self._quiet(account):
                run.done_ns = self.now
                latency = self.now - run.trigger_ns
                self.kill_latency_ns.setdefault(account, []).append(latency)
                self._record(RiskEvent(self.now, account or "*", "kill_switch", 0.0, float(latency), "cancels_acked"))

    def _quiet(self, account: str) -> bool:
        if account == "":
            return not self.ledger.orders and not self.ledger.pending
        return self.ledger.open_count(account) == 0

    def _start_kill(self, account: str, reason: str, t0: int) -> None:
        run = self.kills[account] = _KillRun(reason, t0, account=account)
        self.kill_log.append(run)
        self._record(RiskEvent(self.now, account or "*", "kill_switch", 0.0, float(self.now - t0), "mass_cancel"))
        if self.gateway >= 0:
            self.send(self.gateway, self._mass_cancel(account, reason))
        for d in self.desks:
            self.send(d, KillSwitchActivated(account, reason, t0))

    # -- VaR / ES ------------------------------------------------------------------------------
    def compute_var(self) -> dict[str, VaRFigures]:
        """VaR / ES (historical and parametric normal, level ``var_alpha``) of every account's
        current exposure over a ``VAR_HORIZON_S`` horizon, from mid-price returns over that
        horizon sampled every ``VAR_STEP_S`` (overlapping windows) in the last
        ``var_lookback_min`` minutes of complete grid steps; "n/a" (None) with fewer than
        :func:`var_min_observations`; checked against ``max_var`` / ``max_es`` when known."""
        now = self.now
        current = now // (VAR_STEP_S * SECOND)
        closes = {s: [c for c in dq if c[0] < current] for s, dq in self.mids.items()}
        out = {}
        desk: dict[str, int] = {}
        books = [(a, self.ledger.positions[a]) for a in sorted(self.ledger.positions)]
        for account, book in books:
            exposure = {s: q * self.ledger.marks.get(s, 0) for s, q in sorted(book.items()) if q}
            for s, v in exposure.items():
                desk[s] = desk.get(s, 0) + v
            if exposure:
                out[account] = self._var_of(account, exposure, closes, now)
        if len(out) > 1 and any(desk.values()):  # the whole desk ("*"), netted across accounts
            out["*"] = self._var_of("*", {s: v for s, v in desk.items() if v}, closes, now)
        return out

    def _var_of(self, account: str, exposure: dict[str, int], closes: Mapping[str, Any], now: int) -> VaRFigures:
        last = now // (VAR_STEP_S * SECOND) - 1
        keep = self.var_lookback_min * 60 // VAR_STEP_S
        rets = grid_returns(closes, exposure, VAR_HORIZON_S // VAR_STEP_S, last)[-keep:]
        losses = [-math.fsum(v * r[s] for s, v in exposure.items()) for r in rets]
        need = var_min_observations(self.var_alpha)
        hv = he = pv = pe = None
        if len(losses) >= need:
            hv, he = historical_var_es(losses, self.var_alpha)
            pv, pe = parametric_var_es(losses, self.var_alpha)
        fig = VaRFigures(now, account, len(losses), hv, he, pv, pe, exposure=exposure, min_n=need)
        self.var[account] = fig
        if account != "*" or "*" in self.gate.overrides:  # desk-wide limits: an override "*"
            self._check_var(account, fig)
        return fig

    def _check_var(self, account: str, fig: VaRFigures) -> None:
        lim = self.gate.limits_for(account)
        breached = []
        if lim.max_var is not None:
            breached += [(k, lim.max_var, v) for k, v in (("var_hist", fig.hist_var), ("var_param", fig.param_var))]
        if lim.max_es is not None:
            breached += [(k, lim.max_es, v) for k, v in (("es_hist", fig.hist_es), ("es_param", fig.param_es))]
        breached = [(k, limit, v) for k, limit, v in breached if v is not None and v > limit]
        for kind, limit, value in breached:
            self._record(
                RiskEvent(self.now, account, kind, float(limit), float(value), "kill" if lim.kill_on_var else "alert")  # type: ignore[arg-type]
            )
        if breached and lim.kill_on_var:
            self.gate.kill(
                account, f"{breached[0][0]} {breached[0][2]:.0f} > {breached[0][1]:.0f}", self.now, kind=None
            )

    # -- views ---------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Positions and cash from the drop copies (for :func:`reconcile`), plus P&L at marks."""
        snap = self.ledger.snapshot()
        snap["pnl"] = {a: self.ledger.pnl(a) for a in sorted(set(self.ledger.positions) | set(self.ledger.cash))}
        return snap

    def pnl(self, account: str) -> int:
        return self.ledger.pnl(account)

    def position(self, account: str, symbol: str) -> int:
        return self.ledger.position(account, symbol)

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for row in self.table.rows:
            key = f"{row[2]}:{row[5]}"
            counts[key] = counts.get(key, 0) + 1
        return {
            "events": dict(sorted(counts.items())),
            "blocked": sorted(self.gate.blocked),
            "kill_latency_ns": {a: list(v) for a, v in sorted(self.kill_latency_ns.items())},
            "kills": [
                {
                    "account": k.account or "*",
                    "reason": k.reason,
                    "trigger_ns": k.trigger_ns,
                    "canceled": k.canceled,  # from the gateway's execution reports
                    "acked_ns": k.done_ns,
                    "blocked": self.gate.is_blocked(k.account),
                }
                for k in self.kill_log
            ],
            "var": {a: f.view() for a, f in sorted(self.var.items())},
            "var_method": (
                f"{self.var_alpha:g} VaR / ES of the current exposure over {VAR_HORIZON_S} s, from mid-price returns "
                f"over {VAR_HORIZON_S} s sampled every {VAR_STEP_S} s in the last {self.var_lookback_min} min; "
                f"historical ({CONVENTION}) and normal; n/a below {var_min_observations(self.var_alpha)} observations"
            ),
            "gate": {"accepted": self.gate.accepted, "rejected": self.gate.rejected},
        }

    def _record(self, ev: RiskEvent) -> None:
        self.table.append(ev.row())

    def _error(self, text: str) -> None:
        self.errors.append(text)
        if len(self.errors) > 100:
            del self.errors[0]
