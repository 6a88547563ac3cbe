"""The desk's order management system: native order entry in, FIX 4.4 out.

Desk actors talk to the OMS exactly as they would to an exchange: ``SubmitOrder`` /
``CancelOrder`` / ``ReplaceOrder`` with their own order ids (``owner << 32 | n``, owner-checked)
and get the native events back (``OrderAccepted``, ``OrderFilled``, ``OrderCanceled``,
``OrderRejected``, ``OrderReplaced``, ``CancelRejected``). A desk strategy is therefore a plain
``actors.trader.Trader`` whose exchange name is the OMS's name. ``SubscribeMarketData``,
``SubscribeTradingStatus`` and ``QueryBook`` sent to the OMS are relayed too (the OMS subscribes
at the exchange and fans the feed out), so such a Trader needs nothing else.

Towards the exchange the OMS is the initiator of one FIX 4.4 session (SenderCompID e.g.
``CLIENT1``, TargetCompID ``DESKSIM``) to a :class:`fix.gateway_actor.FixGateway`:
NewOrderSingle (D), OrderCancelRequest (F) and OrderCancelReplaceRequest (G) with ClOrdIDs
``<prefix><n>`` and OrigClOrdID chains (the order's ClOrdID becomes the replace's on a
Replaced report). ExecutionReports (8) and OrderCancelRejects (9) come back as native events.

Order state (FIX 4.4 Order State Change Matrices): per order OrdStatus, OrderQty, CumQty,
LeavesQty, AvgPx (sum of LastQty x LastPx in ticks). Every report is reconciled and the breaks
counted in ``counters`` (``break_*``): CumQty must grow by exactly LastQty, OrderQty = CumQty +
LeavesQty on a live order, AvgPx must equal the OMS's own average, OrdStatus must agree with
the quantities (Filled iff LeavesQty 0 on a fill), no report may move a finished order. A
report whose ExecID was already applied is ignored (``er_duplicates``): with the session
layer's sequence numbers this makes every ExecutionReport count exactly once, also when it
arrives again by resend (PossDupFlag=Y) after a reconnect.

Choices:

* Cancel/replace while another cancel/replace of the same order is outstanding: the new request
  is queued in the OMS and sent when the outstanding one is answered (FIX venues reject
  overlapping requests). A queued request for an order that finished meanwhile is answered with
  ``CancelRejected(order_id, "unknown order")``, as the exchange does for a finished order.
* Native ``ReplaceOrder.qty`` is the new *open* quantity (as at the exchange); the G carries
  OrderQty = CumQty (as the OMS knows it) + qty. ``qty=None`` keeps OrderQty, ``price=None``
  keeps the price. ``stp`` has no FIX equivalent and is not sent.
* FIX session down (``FixLinkDown``, logout, lost heartbeat): new orders are **rejected** at once
  with reason ``"fix session down"`` (and cancels/replaces with ``CancelRejected`` of that
  reason) rather than queued: a desk must not believe an order is working when it cannot
  reach the market, and the gateway's cancel-on-disconnect has pulled its resting orders
  anyway. While the session is logging on (initial logon, reconnect) orders are accepted and
  go out right after the Logon. After an unexpected disconnect with the link up, the OMS logs
  on again after ``reconnect_s``.
* Parent orders: ``NewParentOrder`` registers a parent; a child is tied to it by
  ``AttachChild(order_id, parent_id)`` sent by the desk right after (or before) the
  ``SubmitOrder`` -- so an execution algorithm stays a plain ``Trader``:
  ``oid = self.submit(...); self.send(self.exchange, AttachChild(oid, parent_id))``.
  Progress: filled qty, average price, implementation shortfall against the arrival price
  (execution cost in ticks x shares and bps, plus the opportunity cost of the unfilled rest at
  the current mark).
* Marks: the last trade price of the symbol from market data (native ``TradePrinted`` from the
  exchange by default; ``market_data="fix"`` takes them from the gateway's MarketDataRequest
  stream instead), else the last fill price.

Accounting is integer ticks x shares: ``cash`` (-sum of signed qty x price), per symbol
``position`` and ``cost`` (signed cost basis of the open position, average-cost method; the
part removed by a reduction is rounded half-even, exact whenever the position goes flat).
``realized = cash + cost`` and ``unrealized = position x mark - cost`` always hold.

Recorder tables: ``oms_orders`` (one row per desk command and per native event sent back) and
``pnl`` (sampled every ``pnl_interval_s`` and at the end of the run, one row per symbol).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, ClassVar

import quickfix44 as fix44

from actors.messages import (
    AttachChild,
    BookSnapshot,
    CancelOrder,
    CancelRejected,
    LimitStateEntered,
    LimitStateExited,
    NewParentOrder,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    QueryBook,
    QuoteUpdated,
    ReplaceOrder,
    SubmitOrder,
    SubscribeMarketData,
    SubscribeTradingStatus,
    TradePrinted,
    TradingHalted,
    TradingResumed,
    owner_of,
)
from actors.units import DEFAULT_TICK_SIZE
from fix.codec import LIQUIDITY_OF, Codec, PriceError
from fix.session import FixFrame, FixLinkDown, FixLinkUp, FixSession, SessionState
from sim.actor import Actor, Wakeup, handles
from sim.clock import SECOND
from sim.record import Recorder

__all__ = ["OMS", "OMS_ORDER_COLUMNS", "PNL_COLUMNS", "OmsOrder", "Parent", "Position"]

OMS_ORDER_COLUMNS = (
    "time_ns",
    "order_id",
    "parent_id",
    "cl_ord_id",
    "event",
    "side",
    "price",
    "qty",
    "cum_qty",
    "leaves_qty",
    "avg_px",
    "ord_status",
    "detail",
)
PNL_COLUMNS = ("time_ns", "symbol", "position", "cash", "realized", "unrealized", "mark")

SESSION_DOWN = "fix session down"

# OrdStatus(39)
NEW, PARTIAL, FILLED, CANCELED, REPLACED, REJECTED, EXPIRED, PENDING_NEW = "0", "1", "2", "4", "5", "8", "C", "A"
DONE = frozenset((FILLED, CANCELED, REJECTED, EXPIRED, "3"))

_ER_TAGS = (11, 41, 37, 17, 150, 39, 38, 44, 32, 31, 151, 14, 6, 58, 851, 103)
_STATUS_EVENTS = (LimitStateEntered, LimitStateExited, TradingHalted, TradingResumed)


@dataclass(slots=True)
class _Request:
    """A cancel or replace sent (or queued) for an order."""

    kind: str  # "cancel" | "replace"
    cl_ord_id: str = ""
    qty: int | None = None  # replace: new open qty (native semantics)
    price: int | None = None
    stop_price: int | None = None  # replace of a stop order: its new StopPx (None: unchanged)


@dataclass(slots=True)
class OmsOrder:
    order_id: int  # the desk's id
    owner: int  # desk actor id
    symbol: str
    side: str
    ord_type: str  # "LIMIT" | "MARKET" | "STOP" | "STOP_LIMIT"
    tif: str
    post_only: bool
    price: int | None
    order_qty: int
    cl_ord_id: str  # current ClOrdID (the last accepted replace's)
    stop_px: int | None = None  # StopPx (99) of a stop or stop-limit order, in ticks
    parent_id: int | None = None
    chain: list[str] = field(default_factory=list)  # earlier ClOrdIDs, oldest first
    exch_order_id: str | None = None  # OrderID(37)
    ord_status: str = PENDING_NEW
    cum_qty: int = 0
    leaves_qty: int = 0
    filled: int = 0  # sum LastQty (the OMS's own count; cum_qty is the venue's CumQty)
    notional: int = 0  # sum LastQty x LastPx (ticks)
    pending: _Request | None = None
    queued: deque[_Request] = field(default_factory=deque)

    @property
    def done(self) -> bool:
        return self.ord_status in DONE

    @property
    def avg_px(self) -> float:
        return self.notional / self.filled if self.filled else 0.0


@dataclass(slots=True)
class Parent:
    parent_id: int
    owner: int
    symbol: str
    side: str
    qty: int
    algo: str
    arrival_price: int | None
    time_ns: int
    filled_qty: int = 0
    notional: int = 0
    children: list[int] = field(default_factory=list)

    def view(self, mark: int | None) -> dict[str, Any]:
        sign = 1 if self.side == "B" else -1
        avg = self.notional / self.filled_qty if self.filled_qty else None
        arrival = self.arrival_price
        cost = opp = bps = None
        if arrival is not None:
            cost = sign * (self.notional - self.filled_qty * arrival)
            if self.filled_qty and arrival:
                bps = cost / (self.filled_qty * arrival) * 1e4
            rest = max(0, self.qty - self.filled_qty)
            if mark is not None or rest == 0:
                opp = 0 if rest == 0 else sign * (mark - arrival) * rest  # type: ignore[operator]
        return {
            "parent_id": self.parent_id,
            "symbol": self.symbol,
            "side": self.side,
            "qty": self.qty,
            "algo": self.algo,
            "arrival_price": arrival,
            "filled_qty": self.filled_qty,
            "remaining_qty": max(0, self.qty - self.filled_qty),
            "progress": self.filled_qty / self.qty if self.qty else 0.0,
            "avg_price": avg,
            "children": len(self.children),
            "shortfall_ticks": cost,  # execution cost vs arrival, ticks x shares (+ = cost)
            "shortfall_bps": bps,
            "opportunity_ticks": opp,  # unfilled rest marked at the current price
            "total_shortfall_ticks": None if cost is None else cost + (opp or 0),
        }


@dataclass(slots=True)
class Position:
    position: int = 0
    cost: int = 0  # signed cost basis of the open position, ticks x shares
    cash: int = 0
    bought: int = 0
    sold: int = 0
    last_fill: int | None = None

    def fill(self, side: str, qty: int, price: int) -> None:
        """Apply a fill (average-cost method, integer arithmetic)."""
        s = qty if side == "B" else -qty
        self.cash -= s * price
        if side == "B":
            self.bought += qty
        else:
            self.sold += qty
        self.last_fill = price
        p = self.position
        if p == 0 or (p > 0) == (s > 0):
            self.cost += s * price
            self.position = p + s
            return
        closing = min(abs(s), abs(p))
        removed = self.cost if closing == abs(p) else round(Fraction(self.cost * closing, abs(p)))
        self.cost -= removed
        self.position = p + (closing if s > 0 else -closing)
        rest = abs(s) - closing
        if rest:
            signed_rest = rest if s > 0 else -rest
            self.cost += signed_rest * price
            self.position += signed_rest

    @property
    def realized(self) -> int:
        return self.cash + self.cost

    def unrealized(self, mark: int | None) -> int:
        if mark is None or self.position == 0:
            return 0
        return self.position * mark - self.cost

    @property
    def avg_cost(self) -> float | None:
        return self.cost / self.position if self.position else None


def _int(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        try:
            d = Decimal(raw)
        except InvalidOperation:
            return None
        return int(d) if d.is_finite() and d == d.to_integral_value() else None


class OMS(Actor):
    """Order management system of a desk: native in, FIX 4.4 out. See the module docstring."""

    placement_role: ClassVar[str] = "desk"  # desk and OMS share a process

    def __init__(
        self,
        name: str,
        recorder: Recorder,
        *,
        gateway: str = "gateway",
        exchange: str = "exchange",
        sender_comp_id: str = "CLIENT1",
        target_comp_id: str = "DESKSIM",
        tick_size: float | str = DEFAULT_TICK_SIZE,
        symbols: tuple[str, ...] | list[str] = ("XYZ",),
        account: str | None = None,
        heartbeat_s: int = 30,
        reconnect_s: float = 5.0,
        pnl_interval_s: float = 10.0,
        market_data: str = "native",
        cl_ord_prefix: str = "",
        codec: Codec | None = None,
        location: str = "default",
    ) -> None:
        super().__init__(name, location)
        if market_data not in ("native", "fix", "none"):
            raise ValueError(f"market_data must be 'native', 'fix' or 'none', got {market_data!r}")
        self.gateway_name = gateway
        self.exchange_name = exchange
        self.gateway = self.exchange = -1
        self.sender_comp_id = sender_comp_id
        self.target_comp_id = target_comp_id
        self.codec = codec if codec is not None else Codec(tick_size)
        self.symbols = list(symbols)
        self.account = account
        self.reconnect_ns = int(reconnect_s * SECOND)
        self.pnl_interval_ns = int(pnl_interval_s * SECOND)
        self.market_data = market_data
        self.cl_prefix = cl_ord_prefix or f"{sender_comp_id}-"
        self.orders_table = recorder.table("oms_orders", OMS_ORDER_COLUMNS)
        self.pnl_table = recorder.table("pnl", PNL_COLUMNS)
        self.link_up = True
        self._last_pnl_ns = -1
        self.session = FixSession(
            sender_comp_id,
            target_comp_id,
            initiator=True,
            heartbeat_s=heartbeat_s,
            send_raw=self._send_raw,
            now_ns=lambda: self.now,
            on_app=self._on_fix_app,
            on_admin=self._on_fix_admin,
            on_state=self._on_state,
            set_timer=lambda t: self.wake_at(t, "fix"),
            clock=self.codec.clock,  # SendingTime on the trading date of TransactTime
        )
        self.orders: dict[int, OmsOrder] = {}
        self.parents: dict[int, Parent] = {}
        self.positions: dict[str, Position] = {}
        self.marks: dict[str, int] = {}
        self._by_cl: dict[str, OmsOrder] = {}  # every ClOrdID (orders and requests)
        self._requests: dict[str, tuple[OmsOrder, _Request]] = {}
        self._by_exch: dict[str, OmsOrder] = {}
        self._by_seq: dict[int, str] = {}  # outgoing MsgSeqNum -> ClOrdID (for session Rejects)
        self._exec_ids: set[str] = set()
        self._attach: dict[int, int] = {}  # order id -> parent id, for children not yet submitted
        self._next_cl = 0
        # market data relay
        self._md_trades: dict[str, list[int]] = {}
        self._md_quotes: dict[str, list[int]] = {}
        self._md_status: dict[str, list[int]] = {}
        self._md_sent: dict[str, tuple[bool, bool]] = {}  # symbol -> (trades, quotes) subscribed
        self._status_sent: set[str] = set()
        self._queries: deque[int] = deque()
        self._fix_md_req = 0
        self._fix_md_symbols: set[str] = set()
        self._fix_top: dict[str, list[Any]] = {}  # symbol -> [bid, bid_qty, ask, ask_qty]
        self.counters: dict[str, int] = {
            "orders": 0,
            "desk_rejects": 0,  # rejected by the OMS itself (ownership, validation, duplicates)
            "rejected_session_down": 0,
            "er_received": 0,
            "er_applied": 0,
            "er_duplicates": 0,
            "er_unknown": 0,
            "fills": 0,
            "cancel_rejects": 0,
            "business_rejects": 0,
            "session_rejects": 0,
            "queued_requests": 0,
            "reconnects": 0,
            "break_cum_qty": 0,
            "break_qty": 0,
            "break_avg_px": 0,
            "break_ord_status": 0,
            "break_terminal": 0,
            "parent_overfill": 0,
            "errors": 0,
        }
        self.last_errors: list[str] = []

    # =========================================================================================
    # lifecycle
    # =========================================================================================
    def on_start(self) -> None:
        self.gateway = self.lookup(self.gateway_name)
        try:
            self.exchange = self.lookup(self.exchange_name)
        except Exception:
            self.exchange = -1
        if self.market_data == "native":
            for symbol in self.symbols:
                self._subscribe_native(symbol)
        self.session.connect()
        if self.pnl_interval_ns > 0:
            self.wake_in(self.pnl_interval_ns, "pnl")

    def on_stop(self) -> None:
        if self._last_pnl_ns != self.now:
            self._sample_pnl()

    # =========================================================================================
    # FIX transport
    # =========================================================================================
    def _send_raw(self, raw: str) -> None:
        if self.link_up:
            self.send(self.gateway, FixFrame(raw))

    @handles(FixFrame)
    def on_frame(self, msg: FixFrame, src: int) -> None:
        if self.link_up:
            self.session.on_raw(msg.raw)  # never raises; on_app errors are contained below

    def _applies(self, target: str) -> bool:
        return not target or target in (self.sender_comp_id, self.target_comp_id)

    @handles(FixLinkDown)
    def on_link_down(self, msg: FixLinkDown, src: int) -> None:
        if self._applies(msg.target):
            self.link_up = False
            self.session.disconnect(msg.reason)

    @handles(FixLinkUp)
    def on_link_up(self, msg: FixLinkUp, src: int) -> None:
        if self._applies(msg.target):
            self.link_up = True
            self.session.connect()

    def _on_state(self, old: SessionState, new: SessionState) -> None:
        if new is SessionState.DISCONNECTED and self.link_up and self.reconnect_ns > 0:
            self.wake_in(self.reconnect_ns, "reconnect")
        elif new is SessionState.ACTIVE and self.market_data == "fix":
            pending = [s for s in self.symbols if s not in self._fix_md_symbols]
            if pending:
                self._fix_md_request(pending)

    @handles(Wakeup)
    def on_wakeup(self, msg: Wakeup, src: int) -> None:
        tag = msg.tag
        if tag == "fix":
            self.session.on_timer()
        elif tag == "pnl":
            self._sample_pnl()
            self.wake_in(self.pnl_interval_ns, "pnl")
        elif tag == "reconnect" and self.link_up and self.session.state is SessionState.DISCONNECTED:
            self.counters["reconnects"] += 1
            self.session.connect()

    @property
    def session_up(self) -> bool:
        """Orders may be sent: logged on, or logging on (they go out right after the Logon)."""
        state = self.session.state
        return self.link_up and (state is SessionState.ACTIVE or state is SessionState.LOGON_SENT)

    def _send_fix(self, msg: Any, cl: str | None) -> None:
        seq = self.session.send_app(msg)
        if cl is not None:
            self._by_seq[seq] = cl

    def _next_cl_ord_id(self) -> str:
        self._next_cl += 1
        return f"{self.cl_prefix}{self._next_cl}"

    def _error(self, text: str) -> None:
        self.counters["errors"] += 1
        self.last_errors.append(text)
        if len(self.last_errors) > 100:
            del self.last_errors[0]

    # =========================================================================================
    # desk commands
    # =========================================================================================
    def _desk_reject(self, oid: Any, src: int, reason: str) -> None:
        self.counters["desk_rejects"] += 1
        self.send(src, OrderRejected(oid, reason))
        self._row_raw(oid, None, "", "rejected", "", None, 0, 0, 0, 0.0, REJECTED, reason)

    @handles(SubmitOrder)
    def on_submit(self, msg: SubmitOrder, src: int) -> None:
        oid = msg.order_id
        try:
            if not isinstance(oid, int) or owner_of(oid) != src:
                return self._desk_reject(oid, src, "order id not owned by sender")
            if oid in self.orders:
                return self._desk_reject(oid, src, "duplicate order id")
            reason = _validate(msg)
            if reason is not None:
                return self._desk_reject(oid, src, reason)
            if not self.session_up:
                self.counters["rejected_session_down"] += 1
                return self._desk_reject(oid, src, SESSION_DOWN)
            cl = self._next_cl_ord_id()
            stop = msg.stop_price
            ord_type = ("MARKET" if msg.price is None else "LIMIT") if stop is None else _STOP_TYPE[msg.price is None]
            order = OmsOrder(
                oid,
                src,
                msg.symbol,
                msg.side,
                ord_type,
                msg.tif,
                bool(msg.post_only),
                msg.price,
                msg.qty,
                cl,
                stop_px=stop,
            )
            order.leaves_qty = msg.qty
            self.orders[oid] = order
            self._by_cl[cl] = order
            self.counters["orders"] += 1
            parent_id = self._attach.pop(oid, None)
            if parent_id is not None:
                self._attach_child(order, parent_id)
            if self.market_data == "native" and msg.symbol not in self._md_sent:
                self._subscribe_native(msg.symbol)
            nos = self.codec.new_order_single(
                cl,
                msg.symbol,
                msg.side,
                msg.qty,
                ord_type,
                msg.price,
                msg.tif,
                bool(msg.post_only),
                self.account,
                now_ns=self.now,
                stop_px_ticks=stop,
            )
            detail = msg.tif + ("/post_only" if msg.post_only else "") + ("" if stop is None else f"/stop {stop}")
            self._row(order, "submit", msg.price, msg.qty, detail)
            self._send_fix(nos, cl)
        except Exception as exc:
            self._error(f"submit: {type(exc).__name__}: {exc}")
        return None

    def _cancel_refused(self, oid: Any, src: int, reason: str) -> None:
        self.send(src, CancelRejected(oid, reason))
        order = self.orders.get(oid) if isinstance(oid, int) else None
        if order is not None:
            self._row(order, "cancel_rejected", None, 0, reason)
        else:
            self._row_raw(oid, None, "", "cancel_rejected", "", None, 0, 0, 0, 0.0, "", reason)

    def _desk_request(self, oid: Any, src: int, req: _Request) -> None:
        if not isinstance(oid, int) or owner_of(oid) != src:
            return self._cancel_refused(oid, src, "order id not owned by sender")
        order = self.orders.get(oid)
        if order is None or order.done:
            return self._cancel_refused(oid, src, "unknown order")
        if not self.session_up:
            return self._cancel_refused(oid, src, SESSION_DOWN)
        if order.pending is not None:
            self.counters["queued_requests"] += 1
            order.queued.append(req)
            return None
        self._send_request(order, req)
        return None

    @handles(CancelOrder)
    def on_cancel(self, msg: CancelOrder, src: int) -> None:
        try:
            self._desk_request(msg.order_id, src, _Request("cancel"))
        except Exception as exc:
            self._error(f"cancel: {type(exc).__name__}: {exc}")

    @handles(ReplaceOrder)
    def on_replace(self, msg: ReplaceOrder, src: int) -> None:
        try:
            if msg.qty is not None and (type(msg.qty) is not int or msg.qty <= 0):
                return self._cancel_refused(msg.order_id, src, "invalid qty")
            if msg.price is not None and (type(msg.price) is not int or msg.price <= 0):
                return self._cancel_refused(msg.order_id, src, "invalid price")
            stop = msg.stop_price
            if stop is not None and (type(stop) is not int or stop <= 0):
                return self._cancel_refused(msg.order_id, src, "invalid stop price")
            self._desk_request(msg.order_id, src, _Request("replace", "", msg.qty, msg.price, stop))
        except Exception as exc:
            self._error(f"replace: {type(exc).__name__}: {exc}")
        return None

    def _send_request(self, order: OmsOrder, req: _Request) -> None:
        cl = self._next_cl_ord_id()
        req.cl_ord_id = cl
        order.pending = req
        self._by_cl[cl] = order
        self._requests[cl] = (order, req)
        codec = self.codec
        if req.kind == "cancel":
            msg = codec.order_cancel_request(
                cl, order.cl_ord_id, order.symbol, order.side, order.order_qty, order.exch_order_id, now_ns=self.now
            )
            self._row(order, "cancel", None, order.leaves_qty, cl)
        else:
            total = order.order_qty if req.qty is None else order.cum_qty + req.qty
            price = order.price if req.price is None else req.price
            msg = codec.order_cancel_replace_request(
                cl,
                order.cl_ord_id,
                order.symbol,
                order.side,
                total,
                order.ord_type,
                price,
                order.tif,
                order.post_only,
                order.exch_order_id,
                self.account,
                now_ns=self.now,
                stop_px_ticks=order.stop_px if req.stop_price is None or order.stop_px is None else req.stop_price,
            )
            self._row(order, "replace", price, total, cl)
        self._send_fix(msg, cl)

    def _resolve(self, order: OmsOrder, req: _Request | None) -> None:
        """An outstanding request was answered: send the next queued one (or refuse it)."""
        if req is not None and order.pending is req:
            order.pending = None
        while order.pending is None and order.queued:
            nxt = order.queued.popleft()
            if order.done:
                self._cancel_refused(order.order_id, order.owner, "unknown order")
            elif not self.session_up:
                self._cancel_refused(order.order_id, order.owner, SESSION_DOWN)
            else:
                self._send_request(order, nxt)

    # -- parents ---------------------------------------------------------------------------------
    @handles(NewParentOrder)
    def on_new_parent(self, msg: NewParentOrder, src: int) -> None:
        try:
            if msg.parent_id in self.parents:
                self._error(f"duplicate parent id {msg.parent_id}")
                return
            self.parents[msg.parent_id] = Parent(
                msg.parent_id, src, msg.symbol, msg.side, msg.qty, msg.algo, msg.arrival_price, msg.time_ns
            )
            row = (msg.parent_id, msg.parent_id, "", "parent", msg.side, msg.arrival_price, msg.qty, 0, msg.qty)
            self._row_raw(*row, 0.0, "", msg.algo)
        except Exception as exc:
            self._error(f"parent: {type(exc).__name__}: {exc}")

    @handles(AttachChild)
    def on_attach(self, msg: AttachChild, src: int) -> None:
        try:
            if not isinstance(msg.order_id, int) or owner_of(msg.order_id) != src:
                self._error(f"attach: order {msg.order_id} not owned by sender")
                return
            order = self.orders.get(msg.order_id)
            if order is None:
                self._attach[msg.order_id] = msg.parent_id  # the SubmitOrder follows
            else:
                self._attach_child(order, msg.parent_id)
        except Exception as exc:
            self._error(f"attach: {type(exc).__name__}: {exc}")

    def _attach_child(self, order: OmsOrder, parent_id: int) -> None:
        parent = self.parents.get(parent_id)
        if parent is None:
            self._error(f"attach: unknown parent {parent_id}")
            return
        if order.parent_id is not None:
            return
        order.parent_id = parent_id
        parent.children.append(order.order_id)
        if order.filled:
            self._parent_fill(parent, order.filled, order.notional)

    def _parent_fill(self, parent: Parent, qty: int, notional: int) -> None:
        parent.filled_qty += qty
        parent.notional += notional
        if parent.filled_qty > parent.qty:
            self.counters["parent_overfill"] += 1

    # =========================================================================================
    # FIX application messages from the gateway
    # =========================================================================================
    def _on_fix_app(self, msg: Any) -> None:
        """Never raises: errors are counted (the session must not see them)."""
        try:
            handler = _APP_HANDLERS.get(msg.getHeader().getField(35))
            if handler is not None:  # Y (MarketDataRequestReject), r, h, f: nothing to do
                handler(self, msg)
        except Exception as exc:
            self._error(f"fix app: {type(exc).__name__}: {exc}")

    def _on_fix_admin(self, msg: Any) -> None:
        try:
            if msg.getHeader().getField(35) != "3":
                return
            self.counters["session_rejects"] += 1
            ref = _int(msg.getField(45)) if msg.isSetField(45) else None
            cl = self._by_seq.get(ref) if ref is not None else None
            text = msg.getField(58) if msg.isSetField(58) else "session reject"
            if cl is not None:
                self._refused_by_venue(cl, f"session reject: {text}")
        except Exception as exc:
            self._error(f"fix admin: {type(exc).__name__}: {exc}")

    def _refused_by_venue(self, cl: str, text: str) -> None:
        """A D/F/G that the venue refused without an ExecutionReport (3 or j)."""
        req = self._requests.pop(cl, None)
        if req is not None:
            order, r = req
            self.counters["cancel_rejects"] += 1
            self.send(order.owner, CancelRejected(order.order_id, text))
            self._row(order, "cancel_rejected", None, 0, text)
            self._resolve(order, r)
            return
        pending = self._by_cl.get(cl)
        if pending is not None and pending.cl_ord_id == cl and pending.ord_status == PENDING_NEW:
            order = pending
            order.ord_status = REJECTED
            order.leaves_qty = 0
            self.send(order.owner, OrderRejected(order.order_id, text))
            self._row(order, "rejected", None, 0, text)
            self._resolve(order, None)

    def _on_business_reject(self, d: dict[str, str]) -> None:
        self.counters["business_rejects"] += 1
        cl = d.get("379")
        if cl is None:
            cl = self._by_seq.get(_int(d.get("45")) or -1)
        if cl is not None:
            self._refused_by_venue(cl, d.get("58") or "business message reject")

    def _find(self, d: dict[str, str]) -> OmsOrder | None:
        order = self._by_cl.get(d.get("11", ""))
        if order is None:
            order = self._by_cl.get(d.get("41", ""))
        if order is None:
            order = self._by_exch.get(d.get("37", ""))
        return order

    def _on_execution_report(self, d: dict[str, str]) -> None:
        c = self.counters
        c["er_received"] += 1
        exec_id = d.get("17", "")
        if exec_id in self._exec_ids:
            c["er_duplicates"] += 1
            return
        order = self._find(d)
        if order is None:
            c["er_unknown"] += 1
            return
        self._exec_ids.add(exec_id)
        c["er_applied"] += 1
        exch_id = d.get("37")
        if exch_id and exch_id != "NONE" and order.exch_order_id != exch_id:
            order.exch_order_id = exch_id
            self._by_exch[exch_id] = order
        exec_type = d.get("150", "")
        status = d.get("39", "")
        cum = _int(d.get("14"))
        leaves = _int(d.get("151"))
        prev_cum = order.cum_qty
        if order.done and exec_type != "I":
            c["break_terminal"] += 1  # a report moving a finished order
            if exec_type != "F":
                return  # the state stays final; only a fill (real shares) is still applied
        handler = _ER_HANDLERS.get(exec_type)
        if handler is None:
            return
        handler(self, order, d, status, cum, leaves)
        self._reconcile(order, d, status, cum, leaves, exec_type, prev_cum)

    def _reconcile(
        self,
        order: OmsOrder,
        d: dict[str, str],
        status: str,
        cum: int | None,
        leaves: int | None,
        exec_type: str,
        prev_cum: int,
    ) -> None:
        """Compare the report with the OMS's own state; count breaks. The venue's CumQty wins."""
        c = self.counters
        expected = prev_cum + ((_int(d.get("32")) or 0) if exec_type == "F" else 0)
        if cum is not None:
            if cum != expected:
                c["break_cum_qty"] += 1  # CumQty must grow by exactly LastQty
            order.cum_qty = cum
        order_qty = _int(d.get("38"))
        if order_qty is not None and order.cum_qty and order_qty != order.order_qty and exec_type == "F":
            order.order_qty = order_qty  # the gateway's replace race: OrderQty follows the book
        total = order_qty if order_qty is not None else order.order_qty
        if leaves is not None and status not in (CANCELED, REJECTED, EXPIRED) and total != (cum or 0) + leaves:
            c["break_qty"] += 1  # OrderQty = CumQty + LeavesQty on a live (or filled) order
        avg = d.get("6")
        if avg is not None and order.filled:
            try:
                if Decimal(avg) != Decimal(self.codec.avg_px(order.notional, order.filled)):
                    c["break_avg_px"] += 1
            except InvalidOperation:
                c["break_avg_px"] += 1

    # -- exec type handlers (called with the order, the fields, OrdStatus, CumQty, LeavesQty) --
    def _er_new(self, order: OmsOrder, d: dict[str, str], status: str, cum: Any, leaves: Any) -> None:
        if status != NEW:
            self.counters["break_ord_status"] += 1
        if order.ord_status != PENDING_NEW:
            return  # a second New: nothing to tell the desk
        order.ord_status = NEW
        if leaves is not None:
            order.leaves_qty = leaves
        self.send(order.owner, OrderAccepted(order.order_id))
        self._row(order, "accepted", order.price, 0, "")

    def _er_rejected(self, order: OmsOrder, d: dict[str, str], status: str, cum: Any, leaves: Any) -> None:
        if status != REJECTED:
            self.counters["break_ord_status"] += 1
        was_done = order.done
        order.ord_status = REJECTED
        order.leaves_qty = 0
        reason = d.get("58") or "rejected"
        if not was_done:
            self.send(order.owner, OrderRejected(order.order_id, reason))
        self._row(order, "rejected", None, 0, reason)
        self._resolve(order, None)

    def _er_fill(self, order: OmsOrder, d: dict[str, str], status: str, cum: Any, leaves: Any) -> None:
        last_qty = _int(d.get("32"))
        raw_px = d.get("31")
        if last_qty is None or last_qty <= 0 or raw_px is None or leaves is None:
            self._error(f"fill without LastQty/LastPx/LeavesQty on {order.cl_ord_id}")
            return
        try:
            last_px = self.codec.to_ticks(raw_px)
        except PriceError as exc:
            self._error(f"fill price: {exc}")
            return
        self.counters["fills"] += 1
        order.cum_qty += last_qty  # _reconcile checks the report's CumQty against this
        order.filled += last_qty
        order.notional += last_qty * last_px
        order.leaves_qty = leaves
        expected = FILLED if leaves == 0 else PARTIAL
        if status != expected:
            self.counters["break_ord_status"] += 1
        if order.ord_status == PENDING_NEW:  # a fill before the New: tell the desk first
            self.send(order.owner, OrderAccepted(order.order_id))
        order.ord_status = expected
        pos = self.positions.get(order.symbol)
        if pos is None:
            pos = self.positions[order.symbol] = Position()
        pos.fill(order.side, last_qty, last_px)
        if order.parent_id is not None:
            parent = self.parents.get(order.parent_id)
            if parent is not None:
                self._parent_fill(parent, last_qty, last_qty * last_px)
        liq = d.get("851")
        liquidity = LIQUIDITY_OF.get(liq or "", "")
        self.send(order.owner, OrderFilled(order.order_id, 0, last_px, last_qty, leaves, liquidity))
        self._row(order, "filled", last_px, last_qty, liquidity)
        if leaves == 0:
            self._resolve(order, None)

    def _er_canceled(self, order: OmsOrder, d: dict[str, str], status: str, cum: Any, leaves: Any) -> None:
        if status not in (CANCELED, EXPIRED):
            self.counters["break_ord_status"] += 1
        was_done = order.done
        canceled_qty = order.leaves_qty
        order.ord_status = status if status in (CANCELED, EXPIRED) else CANCELED
        order.leaves_qty = 0
        entry = self._requests.pop(d.get("11", ""), None)
        reason = d.get("58") or "canceled"
        if not was_done:
            self.send(order.owner, OrderCanceled(order.order_id, canceled_qty, reason))
        self._row(order, "canceled", None, canceled_qty, reason)
        self._resolve(order, entry[1] if entry is not None and entry[1].kind == "cancel" else None)

    def _er_replaced(self, order: OmsOrder, d: dict[str, str], status: str, cum: Any, leaves: Any) -> None:
        cl = d.get("11", "")
        entry = self._requests.pop(cl, None)
        for tag, attr in (("44", "price"), ("99", "stop_px")):  # what the venue says the order now is
            text = d.get(tag)
            if text is not None:
                try:
                    setattr(order, attr, self.codec.to_ticks(text))
                except PriceError as exc:
                    self._error(f"replace {attr}: {exc}")
        if leaves is not None:
            order.leaves_qty = leaves
        qty = _int(d.get("38"))
        if qty is not None:
            order.order_qty = qty
        if entry is not None and cl != order.cl_ord_id:
            order.chain.append(order.cl_ord_id)
            order.cl_ord_id = cl
        # a replace that met a fill in flight and asked for no more than CumQty ends the order:
        # OrderQty amended to CumQty, LeavesQty 0, OrdStatus Filled (FIX 4.4 Vol. 4 App. D)
        expected = FILLED if order.leaves_qty == 0 and order.cum_qty else PARTIAL if order.cum_qty else NEW
        if status != expected:
            self.counters["break_ord_status"] += 1
        order.ord_status = status or expected
        self.send(order.owner, OrderReplaced(order.order_id, order.price or 0, order.leaves_qty))
        self._row(order, "replaced", order.price, order.leaves_qty, cl)
        self._resolve(order, entry[1] if entry is not None else None)

    def _er_status(self, order: OmsOrder, d: dict[str, str], status: str, cum: Any, leaves: Any) -> None:
        if leaves is not None and status not in DONE:
            order.leaves_qty = leaves

    def _on_cancel_reject(self, d: dict[str, str]) -> None:
        self.counters["cancel_rejects"] += 1
        cl = d.get("11", "")
        entry = self._requests.pop(cl, None)
        if entry is None:
            order = self._find(d)
            if order is None:
                self.counters["er_unknown"] += 1
            return
        order, req = entry
        reason = d.get("58") or "cancel rejected"
        self.send(order.owner, CancelRejected(order.order_id, reason))
        self._row(order, "cancel_rejected", None, 0, reason)
        self._resolve(order, req)

    # =========================================================================================
    # market data (marks, and the relay to desk actors)
    # =========================================================================================
    def _subscribe_native(self, symbol: str) -> None:
        if self.exchange < 0:
            return
        quotes = bool(self._md_quotes.get(symbol))
        want = (True, quotes)
        if self._md_sent.get(symbol) != want:
            self._md_sent[symbol] = want
            self.send(self.exchange, SubscribeMarketData(symbol, trades=True, quotes=quotes))

    def _fix_md_request(self, symbols: list[str]) -> None:
        self._fix_md_req += 1
        self._fix_md_symbols.update(symbols)
        req = self.codec.market_data_request(f"{self.cl_prefix}MD{self._fix_md_req}", symbols, "1", 1)
        self.session.send_app(req)

    @handles(SubscribeMarketData)
    def on_subscribe_md(self, msg: SubscribeMarketData, src: int) -> None:
        for table, wanted in ((self._md_trades, msg.trades), (self._md_quotes, msg.quotes)):
            subs = table.setdefault(msg.symbol, [])
            if wanted and src not in subs:
                subs.append(src)
            elif not wanted and src in subs:
                subs.remove(src)
        if self.market_data == "fix":
            if msg.symbol not in self._fix_md_symbols and self.session.is_logged_on:
                self._fix_md_request([msg.symbol])
            elif msg.symbol not in self.symbols:
                self.symbols.append(msg.symbol)  # requested at logon
        else:
            self._subscribe_native(msg.symbol)

    @handles(SubscribeTradingStatus)
    def on_subscribe_status(self, msg: SubscribeTradingStatus, src: int) -> None:
        subs = self._md_status.setdefault(msg.symbol, [])
        if msg.subscribe and src not in subs:
            subs.append(src)
        elif not msg.subscribe and src in subs:
            subs.remove(src)
        if msg.symbol not in self._status_sent and self.exchange >= 0:
            self._status_sent.add(msg.symbol)
            self.send(self.exchange, SubscribeTradingStatus(msg.symbol, True))

    @handles(QueryBook)
    def on_query(self, msg: QueryBook, src: int) -> None:
        if self.exchange < 0:
            self.send(src, BookSnapshot(msg.symbol, (), (), self.marks.get(msg.symbol), self.now))
            return
        self._queries.append(src)
        self.send(self.exchange, msg)

    @handles(BookSnapshot)
    def on_snapshot(self, msg: BookSnapshot, src: int) -> None:
        if self._queries:
            self.send(self._queries.popleft(), msg)

    @handles(TradePrinted)
    def on_trade(self, msg: TradePrinted, src: int) -> None:
        self.marks[msg.symbol] = msg.price
        for dst in self._md_trades.get(msg.symbol, ()):
            self.send(dst, msg)

    @handles(QuoteUpdated)
    def on_quote(self, msg: QuoteUpdated, src: int) -> None:
        for dst in self._md_quotes.get(msg.symbol, ()):
            self.send(dst, msg)

    @handles(*_STATUS_EVENTS)
    def on_status(self, msg: Any, src: int) -> None:
        for dst in self._md_status.get(msg.symbol, ()):
            self.send(dst, msg)

    def _md_entries(self, msg: Any, group: Any) -> list[dict[str, str]]:
        out = []
        n = _int(msg.getField(268)) if msg.isSetField(268) else 0
        for i in range(1, (n or 0) + 1):
            msg.getGroup(i, group)
            out.append({str(t): group.getField(t) for t in (279, 269, 55, 270, 271, 290) if group.isSetField(t)})
        return out

    def _on_md_incremental(self, msg: Any) -> None:
        entries = self._md_entries(msg, fix44.MarketDataIncrementalRefresh.NoMDEntries())
        self._apply_md(entries, None)

    def _on_md_snapshot(self, msg: Any) -> None:
        symbol = msg.getField(55) if msg.isSetField(55) else ""
        entries = self._md_entries(msg, fix44.MarketDataSnapshotFullRefresh.NoMDEntries())
        top = self._fix_top.setdefault(symbol, [None, 0, None, 0])
        top[:] = [None, 0, None, 0]
        self._apply_md(entries, symbol)

    def _apply_md(self, entries: list[dict[str, str]], symbol: str | None) -> None:
        changed: set[str] = set()
        now = self.now
        for e in entries:
            sym = e.get("55") or symbol or ""
            kind = e.get("269")
            px = e.get("270")
            ticks = self.codec.to_ticks(px) if px is not None else None
            size = _int(e.get("271")) or 0
            if kind == "2":
                if ticks is not None:
                    self.marks[sym] = ticks
                    trade = TradePrinted(sym, ticks, size, "?", now)
                    for dst in self._md_trades.get(sym, ()):
                        self.send(dst, trade)
            elif kind in ("0", "1") and e.get("290", "1") == "1":
                top = self._fix_top.setdefault(sym, [None, 0, None, 0])
                i = 0 if kind == "0" else 2
                if e.get("279") == "2" or ticks is None:
                    top[i], top[i + 1] = None, 0
                else:
                    top[i], top[i + 1] = ticks, size
                changed.add(sym)
        for sym in sorted(changed):
            top = self._fix_top[sym]
            quote = QuoteUpdated(sym, top[0], top[1], top[2], top[3], now)
            for dst in self._md_quotes.get(sym, ()):
                self.send(dst, quote)

    def unhandled(self, msg: Any, src: int) -> None:
        self._error(f"unhandled {type(msg).__name__} from {src}")

    # =========================================================================================
    # P&L, records, snapshot
    # =========================================================================================
    def mark(self, symbol: str) -> int | None:
        m = self.marks.get(symbol)
        if m is None:
            pos = self.positions.get(symbol)
            m = pos.last_fill if pos is not None else None
        return m

    @property
    def cash(self) -> int:
        return sum(p.cash for p in self.positions.values())

    @property
    def realized(self) -> int:
        return sum(p.realized for p in self.positions.values())

    @property
    def unrealized(self) -> int:
        return sum(p.unrealized(self.mark(s)) for s, p in self.positions.items())

    def position(self, symbol: str) -> int:
        pos = self.positions.get(symbol)
        return 0 if pos is None else pos.position

    def _sample_pnl(self) -> None:
        now = self._last_pnl_ns = self.now
        for symbol in sorted(set(self.symbols) | set(self.positions)):
            pos = self.positions.get(symbol) or Position()
            mark = self.mark(symbol)
            self.pnl_table.append((now, symbol, pos.position, pos.cash, pos.realized, pos.unrealized(mark), mark))

    def _row(self, order: OmsOrder, event: str, price: Any, qty: int, detail: str) -> None:
        self.orders_table.append(
            (
                self.now,
                order.order_id,
                order.parent_id,
                order.cl_ord_id,
                event,
                order.side,
                price,
                qty,
                order.cum_qty,
                order.leaves_qty,
                order.avg_px,
                order.ord_status,
                detail,
            )
        )

    def _row_raw(
        self,
        oid: Any,
        parent: Any,
        cl: str,
        event: str,
        side: str,
        price: Any,
        qty: int,
        cum: int,
        leaves: int,
        avg: float,
        status: str,
        detail: str,
    ) -> None:
        oid = oid if isinstance(oid, int) else -1
        self.orders_table.append((self.now, oid, parent, cl, event, side, price, qty, cum, leaves, avg, status, detail))

    def order_state(self, order_id: int) -> dict[str, Any] | None:
        o = self.orders.get(order_id)
        if o is None:
            return None
        return {
            "order_id": o.order_id,
            "cl_ord_id": o.cl_ord_id,
            "chain": list(o.chain),
            "exch_order_id": o.exch_order_id,
            "symbol": o.symbol,
            "side": o.side,
            "price": o.price,
            "ord_status": o.ord_status,
            "order_qty": o.order_qty,
            "cum_qty": o.cum_qty,
            "leaves_qty": o.leaves_qty,
            "avg_px": o.avg_px,
            "parent_id": o.parent_id,
            "pending": None if o.pending is None else o.pending.kind,
        }

    def parent_state(self, parent_id: int) -> dict[str, Any] | None:
        p = self.parents.get(parent_id)
        return None if p is None else p.view(self.mark(p.symbol))

    def snapshot(self) -> dict[str, Any]:
        """Positions, cash and P&L (ticks x shares; ``*_ccy`` in currency), parents, order and
        reconciliation counters, FIX session state."""
        tick = float(self.codec.tick)
        positions = {}
        for symbol in sorted(self.positions):
            pos = self.positions[symbol]
            mark = self.mark(symbol)
            positions[symbol] = {
                "position": pos.position,
                "avg_cost": pos.avg_cost,
                "cost": pos.cost,
                "cash": pos.cash,
                "bought": pos.bought,
                "sold": pos.sold,
                "mark": mark,
                "realized": pos.realized,
                "unrealized": pos.unrealized(mark),
            }
        realized, unrealized, cash = self.realized, self.unrealized, self.cash
        live = sum(1 for o in self.orders.values() if not o.done)
        s = self.session
        return {
            "positions": positions,
            "cash": cash,
            "realized": realized,
            "unrealized": unrealized,
            "total_pnl": realized + unrealized,
            "cash_ccy": cash * tick,
            "realized_ccy": realized * tick,
            "unrealized_ccy": unrealized * tick,
            "total_pnl_ccy": (realized + unrealized) * tick,
            "tick_size": tick,
            "orders": len(self.orders),
            "live_orders": live,
            "parents": {pid: p.view(self.mark(p.symbol)) for pid, p in sorted(self.parents.items())},
            "counters": dict(self.counters),
            "breaks": sum(v for k, v in self.counters.items() if k.startswith("break_")),
            "fix": {
                "state": s.state.value,
                "next_in_seq": s.next_in_seq,
                "next_out_seq": s.next_out_seq,
                "resent": s.counters.resent,
                "resend_requests": s.counters.resend_requests,
                "disconnects": s.counters.disconnects,
                "rejects": s.counters.rejects,
                "errors": s.counters.errors + s.counters.app_errors,
            },
        }


def _validate(msg: SubmitOrder) -> str | None:
    if not isinstance(msg.symbol, str) or not msg.symbol:
        return "unknown symbol"
    if msg.side not in ("B", "S"):
        return "invalid side"
    if type(msg.qty) is not int or msg.qty <= 0:
        return "invalid qty"
    if msg.price is not None and (type(msg.price) is not int or msg.price <= 0):
        return "invalid price"
    if msg.tif not in ("DAY", "IOC", "FOK"):
        return "invalid tif"
    if msg.post_only not in (False, True):
        return "invalid post_only"
    if msg.post_only and msg.price is None:
        return "post_only requires a limit price"
    if msg.stop_price is not None:
        if type(msg.stop_price) is not int or msg.stop_price <= 0:
            return "invalid stop price"
        if msg.post_only:
            return "post_only not allowed on stop orders"
    return None


_STOP_TYPE = {True: "STOP", False: "STOP_LIMIT"}  # by "has no limit price"


_APP_HANDLERS: dict[str, Callable[[OMS, Any], None]] = {
    "8": lambda oms, msg: oms._on_execution_report(oms.codec.fields(msg, _ER_TAGS)),
    "9": lambda oms, msg: oms._on_cancel_reject(oms.codec.fields(msg, (11, 41, 37, 39, 58, 102, 434))),
    "j": lambda oms, msg: oms._on_business_reject(oms.codec.fields(msg, (45, 58, 372, 379, 380))),
    "X": lambda oms, msg: oms._on_md_incremental(msg),
    "W": lambda oms, msg: oms._on_md_snapshot(msg),
}

_ER_HANDLERS = {
    "0": OMS._er_new,
    "8": OMS._er_rejected,
    "F": OMS._er_fill,
    "4": OMS._er_canceled,
    "C": OMS._er_canceled,
    "5": OMS._er_replaced,
    "D": OMS._er_replaced,
    "I": OMS._er_status,
}
