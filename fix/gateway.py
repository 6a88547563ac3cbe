"""Exchange-side FIX 4.4 order-entry logic, independent of transport.

``GatewayCore`` turns application messages from FIX sessions into exchange commands
(:mod:`actors.messages` ``SubmitOrder`` / ``CancelOrder`` / ``ReplaceOrder``) and exchange events
back into ExecutionReports, following the FIX 4.4 Order State Change Matrices. The same core
serves the in-simulation gateway actor and the quickfix SocketAcceptor of ``desksim serve``:
the wrapper feeds it and routes what it emits.

    core = GatewayCore(
        codec,                                   # fix.codec.Codec (tick size, DataDictionary)
        new_order_id=lambda: ...,                # -> int, unique (owner << 32 | n)
        send_app=lambda session_key, msg: ...,   # an application message to one FIX session
        send_command=lambda cmd: ...,            # SubmitOrder / CancelOrder / ReplaceOrder
        drop_copy=lambda session_key, msg: ...,  # a copy of every ExecutionReport (optional)
        on_md_request=lambda session_key, req: ...,  # a MarketDataRequest needing a snapshot
        pretrade=lambda session_key, req, now_ns: None,  # pre-trade risk gate (optional)
    )
    core.on_app(session_key, msg, now_ns)        # D F G H q V; anything else -> 35=j
    core.on_book_event(event, now_ns)            # OrderAccepted/Rejected/Filled/Canceled/...
    core.on_disconnect(session_key)              # cancel-on-disconnect (default on)

Choices (the FIX spec leaves them to the venue):

* No PendingNew / PendingCancel / PendingReplace ExecutionReports are sent; an order not yet
  acknowledged by the book reports OrdStatus ``A`` (Pending New) in a 9 or a status reply.
* A second cancel/replace while one is outstanding -> 9 with CxlRejReason 3 (already pending).
* OrigClOrdID may name any ClOrdID of the order's chain; OrderID(37) is used when the
  OrigClOrdID is unknown.
* Stop (OrdType 3) and stop-limit (4) orders carry StopPx(99), passed to the exchange as
  ``SubmitOrder.stop_price``: the exchange keeps them out of the book until a trade at or
  through the stop elects them (actors/exchange/exchange.py). The client gets New (0) at entry
  and fills once elected; every ExecutionReport echoes OrdType and StopPx (FIX 4.4 has no
  "triggered" ExecType). A replace of a stop may change StopPx too (while it waits; once
  elected the exchange ignores it).
* A replace may change OrderQty and Price only (and StopPx): Side, Symbol, OrdType and
  TimeInForce must match (else 9, CxlRejReason 99); market orders cannot be replaced. ExecInst
  on a replace is ignored (post-only stays as entered).
  OrderQty is the new total and goes to the book as it is (``ReplaceOrder.total_qty``): the
  book sets LeavesQty = OrderQty - CumQty in the step that applies the replace, with the CumQty
  of every fill it executed so far -- the gateway's own CumQty may be stale while a fill is on
  its way, so it is never used for this. FIX 4.4 Vol. 4 App. D (cancel/replace request sent
  whilst execution is being reported): if OrderQty <= CumQty the replace is accepted and the
  order is done -- ExecutionReport ExecType=5 (Replaced), OrdStatus=2 (Filled takes precedence
  over Replaced and Canceled), OrderQty amended to CumQty, LeavesQty=0 -- whether or not the
  gateway had heard of the fills (one rule, decided where the fills happen). If the order was
  already filled (or otherwise done) when the replace reached the book: OrderCancelReject (9),
  CxlRejReason 0 (too late). So CumQty never exceeds the last OrderQty accepted, and a replace
  is never granted more than the OrderQty it asked for.
* Every ClOrdID seen in a session (D, F, G, q) is remembered; reusing one -> reject (ER with
  OrdRejReason 6 for D, 9 with CxlRejReason 6 for F/G). A duplicate D with PossResend(97)=Y is
  ignored silently (FIX: a resent order already received).
* Canceled has precedence over PartiallyFilled: an IOC/FOK/market remainder or a canceled
  partially filled order reports OrdStatus 4 with its CumQty kept and LeavesQty 0.
* Mass cancel / cancel-on-disconnect ExecutionReports carry the order's own ClOrdID.
* Pre-trade risk (``pretrade``, optional; e.g. an ``actors.risk.PreTradeGate`` owned by the risk
  officer): called as ``pretrade(session_key, req, now_ns)`` with the ``NewOrder`` of a D or the
  ``ReplaceRequest`` of a G after the gateway's own checks and just before the order / replace
  would go to the book. A returned string refuses it: a D gets an ExecutionReport
  ExecType=8/OrdStatus=8, OrdRejReason 3 (exceeds limit), Text = the string (drop-copied like
  every 8); a G gets an OrderCancelReject (9) with CxlRejReason 2 and Text = the string. None
  lets it through. A kill switch is a gate that refuses everything for the account.
* Market order protection: when the gate accepts a market order and gives it a protection price
  (``pretrade.take_protection(session_key, cl_ord_id)``, e.g. reference +- a collar), the order
  goes to the book as an IOC limit (FOK stays FOK) at that price, so it never trades beyond it.
  The client still sees its own order (OrdType 1, its TimeInForce, no Price); what did not fill
  within the bound is canceled (ExecType 4, OrdStatus 4, CumQty kept, LeavesQty 0) with Text
  ``market order protection: ...`` and reported to ``pretrade.on_protection_cancel``.
* Market data: MarketDataRequest subscriptions are kept per session; the wrapper answers the
  ``on_md_request`` callback with :meth:`publish_snapshot` and streams changes with
  :meth:`publish_incremental` (top of book as MDUpdateAction Change/Delete at position 1,
  trades as New).

Nothing raises out of ``on_app`` / ``on_book_event`` / ``on_disconnect``: an unexpected error is
recorded in ``errors`` and, for ``on_app``, answered with BusinessMessageReject (reason 0).
Incoming messages are read into dataclasses at once and never kept, so callers may reuse them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from actors.messages import (
    CancelOrder,
    CancelRejected,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    ReplaceOrder,
    SubmitOrder,
)
from fix.codec import (
    CancelRequest,
    Codec,
    Invalid,
    MarketDataReq,
    MassCancelRequest,
    MDEntry,
    NewOrder,
    ReplaceRequest,
    StatusRequest,
)

__all__ = ["GatewayCore"]

SendApp = Callable[[str, Any], None]
SendCommand = Callable[[Any], None]
PreTrade = Callable[[str, Any, int | None], str | None]  # (session, NewOrder | ReplaceRequest, now)

# OrdStatus(39)
NEW, PARTIAL, FILLED, CANCELED, REJECTED, PENDING_NEW = "0", "1", "2", "4", "8", "A"
_DONE = frozenset((FILLED, CANCELED, REJECTED))

_REPLACEABLE = frozenset(("LIMIT", "STOP", "STOP_LIMIT"))  # OrdType a replace may keep (never change)
_CANCEL_KINDS = frozenset(("cancel", "mass", "disconnect", "kill"))  # "kill": cancel_account (kill switch)
_ADMIN_MSG_TYPES = frozenset(("0", "1", "2", "3", "4", "5", "A"))

# OrdRejReason(103) for the book's / exchange's reject reasons
_ORD_REJ_REASON = {
    "unknown symbol": "1",
    "market closed": "2",
    "duplicate order id": "6",
    "invalid qty": "13",
}


@dataclass(slots=True)
class _Pending:
    kind: str  # "cancel" | "replace" | "mass" | "disconnect"
    cl_ord_id: str | None = None
    text: str | None = None


@dataclass(slots=True)
class _Order:
    order_id: int
    session: str
    cl_ord_id: str
    symbol: str
    side: str
    ord_type: str
    tif: str
    post_only: bool
    account: str | None
    price: int | None
    order_qty: int
    leaves_qty: int
    cum_qty: int = 0
    notional: int = 0  # sum of LastQty * LastPx in ticks
    status: str = PENDING_NEW
    pending: list[_Pending] = field(default_factory=list)
    protection: int | None = None  # a market order's protection price: sent as an IOC limit there
    stop_px: int | None = None  # StopPx(99) of a STOP / STOP_LIMIT order (ticks)

    @property
    def done(self) -> bool:
        return self.status in _DONE


@dataclass(slots=True)
class _Session:
    key: str
    cl_ord_ids: dict[str, _Order | None] = field(default_factory=dict)  # every ClOrdID seen
    by_order_id: dict[str, _Order] = field(default_factory=dict)
    live: dict[int, _Order] = field(default_factory=dict)  # insertion (entry) order
    md: dict[str, MarketDataReq] = field(default_factory=dict)
    cancel_on_disconnect: bool | None = None  # None: the core's default


class GatewayCore:
    """Per-session FIX order state and translation to/from the matching engine. See module doc."""

    def __init__(
        self,
        codec: Codec,
        *,
        new_order_id: Callable[[], int],
        send_app: SendApp,
        send_command: SendCommand,
        drop_copy: SendApp | None = None,
        on_md_request: Callable[[str, MarketDataReq], None] | None = None,
        symbols: Iterable[str] | None = None,
        cancel_on_disconnect: bool = True,
        pretrade: PreTrade | None = None,
    ) -> None:
        self.codec = codec
        self.pretrade = pretrade
        self.new_order_id = new_order_id
        self.send_app = send_app
        self.send_command = send_command
        self.drop_copy = drop_copy
        self.on_md_request = on_md_request
        self.symbols: frozenset[str] | None = None if symbols is None else frozenset(symbols)
        self.cancel_on_disconnect = cancel_on_disconnect
        self.now_ns: int | None = None
        self.errors: list[str] = []  # unexpected exceptions caught (kept to the last 100)
        self._sessions: dict[str, _Session] = {}
        self._orders: dict[int, _Order] = {}  # orders that may still get book events
        self._exec_seq = 0
        self._mass_seq = 0
        self._app_handlers: dict[str, Callable[[_Session, Any], None]] = {
            "D": self._on_new_order,
            "F": self._on_cancel_request,
            "G": self._on_replace_request,
            "H": self._on_status_request,
            "q": self._on_mass_cancel_request,
            "V": self._on_md_request,
        }
        self._event_handlers: dict[type, Callable[[Any, _Order], None]] = {
            OrderAccepted: self._ev_accepted,
            OrderRejected: self._ev_rejected,
            OrderFilled: self._ev_filled,
            OrderCanceled: self._ev_canceled,
            OrderReplaced: self._ev_replaced,
            CancelRejected: self._ev_cancel_rejected,
        }

    # =========================================================================================
    # inputs
    # =========================================================================================
    def on_app(self, session_key: str, msg: Any, now_ns: int | None = None) -> None:
        """An application message received on ``session_key``. Never raises."""
        if now_ns is not None:
            self.now_ns = now_ns
        msg_type = ""
        try:
            flat = getattr(msg, "flat", None)  # a received message's fields, read once (fix.codec.Inbound)
            if flat is not None:
                msg_type = flat.get("35") or ""
                poss_resend = flat.get("97") == "Y"
            else:
                header = msg.getHeader()
                msg_type = header.getField(35) if header.isSetField(35) else ""
                poss_resend = msg_type == "D" and header.isSetField(97) and header.getField(97) == "Y"
            handler = self._app_handlers.get(msg_type)
            if handler is None:
                if msg_type in _ADMIN_MSG_TYPES:
                    return  # session-level traffic is not ours
                self._business_reject(session_key, msg, msg_type, 3, f"unsupported message type {msg_type!r}")
                return
            if msg_type == "D" and poss_resend:
                cl = msg.getField(11) if msg.isSetField(11) else None
                sess = self._sessions.get(session_key)
                if cl is not None and sess is not None and cl in sess.cl_ord_ids:
                    return  # a resent order already received: ignore
            handler(self._session(session_key), msg)
        except Exception as exc:  # never let anything escape into quickfix
            self._record_error(f"on_app {msg_type}: {type(exc).__name__}: {exc}")
            try:
                self._business_reject(session_key, msg, msg_type or "?", 0, f"internal error: {type(exc).__name__}")
            except Exception as exc2:
                self._record_error(f"on_app reject: {type(exc2).__name__}: {exc2}")

    def on_book_event(self, event: Any, now_ns: int | None = None) -> None:
        """An event from the exchange about an order this core submitted. Never raises."""
        if now_ns is not None:
            self.now_ns = now_ns
        try:
            order = self._orders.get(event.order_id)
            if order is None:
                return  # not ours (or long finished)
            handler = self._event_handlers.get(type(event))
            if handler is not None:
                handler(event, order)
            if order.done and not order.pending:
                self._orders.pop(order.order_id, None)
        except Exception as exc:
            self._record_error(f"on_book_event {type(event).__name__}: {type(exc).__name__}: {exc}")

    def on_disconnect(self, session_key: str) -> None:
        """The session dropped: cancel its live orders (if enabled) and end its subscriptions."""
        try:
            sess = self._sessions.get(session_key)
            if sess is None:
                return
            sess.md.clear()
            flag = self.cancel_on_disconnect if sess.cancel_on_disconnect is None else sess.cancel_on_disconnect
            if flag:
                self._cancel_all(sess, "disconnect", None, "cancel on disconnect")
        except Exception as exc:
            self._record_error(f"on_disconnect: {type(exc).__name__}: {exc}")

    def set_cancel_on_disconnect(self, session_key: str, enabled: bool | None) -> None:
        """Per-session override of the cancel-on-disconnect default (None: use the default)."""
        self._session(session_key).cancel_on_disconnect = enabled

    def forget_session(self, session_key: str) -> None:
        """Drop the ClOrdID history of a session (e.g. end of day). Live orders are kept."""
        sess = self._sessions.get(session_key)
        if sess is not None:
            keep = {o.cl_ord_id: o for o in sess.live.values()}
            sess.cl_ord_ids = dict(keep)
            sess.by_order_id = {str(o.order_id): o for o in sess.live.values()}

    # -- introspection (tests, reconciliation) -------------------------------------------------
    def live_orders(self, session_key: str) -> list[dict[str, Any]]:
        sess = self._sessions.get(session_key)
        if sess is None:
            return []
        return [self._order_view(o) for o in sess.live.values()]

    def order_state(self, session_key: str, cl_ord_id: str) -> dict[str, Any] | None:
        sess = self._sessions.get(session_key)
        order = None if sess is None else sess.cl_ord_ids.get(cl_ord_id)
        return None if order is None else self._order_view(order)

    @staticmethod
    def _order_view(o: _Order) -> dict[str, Any]:
        return {
            "order_id": o.order_id,
            "cl_ord_id": o.cl_ord_id,
            "symbol": o.symbol,
            "side": o.side,
            "price": o.price,
            "stop_px": o.stop_px,
            "order_qty": o.order_qty,
            "cum_qty": o.cum_qty,
            "leaves_qty": o.leaves_qty,
            "notional": o.notional,
            "ord_status": o.status,
            "pending": [p.kind for p in o.pending],
        }

    # =========================================================================================
    # application messages
    # =========================================================================================
    def _on_new_order(self, sess: _Session, msg: Any) -> None:
        req = self.codec.read_new_order(msg)
        if isinstance(req, Invalid):
            self._reject_new_invalid(sess, msg, req)
            return
        if req.cl_ord_id in sess.cl_ord_ids:
            self._reject_new(sess, req.cl_ord_id, req.symbol, req.side, "6", "duplicate ClOrdID", req.qty)
            return
        sess.cl_ord_ids[req.cl_ord_id] = None
        if self.symbols is not None and req.symbol not in self.symbols:
            self._reject_new(sess, req.cl_ord_id, req.symbol, req.side, "1", f"unknown symbol {req.symbol}", req.qty)
            return
        if req.post_only and (req.ord_type != "LIMIT" or req.tif != "DAY"):
            self._reject_new(
                sess, req.cl_ord_id, req.symbol, req.side, "11", "post-only requires a DAY limit order", req.qty
            )
            return
        protection = None
        if self.pretrade is not None:
            refused = self.pretrade(sess.key, req, self.now_ns)
            if refused:
                self._reject_new(sess, req.cl_ord_id, req.symbol, req.side, "3", refused, req.qty)
                return
            if req.price_ticks is None:  # the gate gives every priceless order a protection price
                protection = self._take_protection(sess, req.cl_ord_id)
                if req.ord_type != "MARKET":  # a STOP waits unpriced at the exchange (bands cap it when elected)
                    protection = None
        self._submit(sess, req, protection)

    def _take_protection(self, sess: _Session, cl_ord_id: str) -> int | None:
        """The protection price the pre-trade gate gave an accepted market order (a gate without
        ``take_protection``: none). Never raises."""
        take = getattr(self.pretrade, "take_protection", None)
        if take is None:
            return None
        try:
            px = take(sess.key, cl_ord_id)
        except Exception as exc:
            self._record_error(f"pretrade take_protection: {type(exc).__name__}: {exc}")
            return None
        return px if isinstance(px, int) and px > 0 else None

    def _submit(self, sess: _Session, req: NewOrder, protection: int | None = None) -> None:
        oid = self.new_order_id()
        order = _Order(
            order_id=oid,
            session=sess.key,
            cl_ord_id=req.cl_ord_id,
            symbol=req.symbol,
            side=req.side,
            ord_type=req.ord_type,
            tif=req.tif,
            post_only=req.post_only,
            account=req.account,
            price=req.price_ticks,
            order_qty=req.qty,
            leaves_qty=req.qty,
            protection=protection,
            stop_px=req.stop_px_ticks,
        )
        sess.cl_ord_ids[req.cl_ord_id] = order
        sess.by_order_id[str(oid)] = order
        sess.live[oid] = order
        self._orders[oid] = order
        if protection is not None:  # market order protection: an IOC (or FOK) limit at the protection price
            tif = "FOK" if req.tif == "FOK" else "IOC"
            self.send_command(SubmitOrder(oid, req.symbol, req.side, req.qty, protection, tif, req.post_only, None))
            return
        self.send_command(
            SubmitOrder(
                oid, req.symbol, req.side, req.qty, req.price_ticks, req.tif, req.post_only, None, req.stop_px_ticks
            )
        )

    def _reject_new_invalid(self, sess: _Session, msg: Any, inv: Invalid) -> None:
        cl = _field(msg, 11)
        symbol = _field(msg, 55)
        raw_side = _field(msg, 54)
        dd = self.codec.dd
        if not cl or not symbol or not raw_side or not dd.isFieldValue(54, raw_side):
            # an ExecutionReport needs ClOrdID, Symbol and a valid Side: answer at business level
            self._business_reject(sess.key, msg, "D", 5 if inv.ref_tag in (11, 55, 54) else 0, inv.text, cl)
            return
        if cl in sess.cl_ord_ids:
            self._reject_new(sess, cl, symbol, raw_side, "6", "duplicate ClOrdID", None)
            return
        sess.cl_ord_ids[cl] = None
        self._reject_new(sess, cl, symbol, raw_side, inv.code, inv.text, None)

    def _reject_new(
        self, sess: _Session, cl: str, symbol: str, side: str, reason: str, text: str, qty: int | None
    ) -> None:
        msg = self.codec.execution_report(
            order_id="NONE",
            exec_id=self._next_exec_id(),
            exec_type=REJECTED,
            ord_status=REJECTED,
            side=side,
            symbol=symbol,
            leaves_qty=0,
            cum_qty=0,
            avg_px="0",
            cl_ord_id=cl,
            order_qty=qty,
            ord_rej_reason=reason,
            text=text,
            now_ns=self.now_ns,
        )
        self._send_er(sess.key, msg)

    # -- cancel / replace -----------------------------------------------------------------------
    def _find(self, sess: _Session, orig_cl_ord_id: str | None, order_id: str | None) -> _Order | None:
        order = sess.cl_ord_ids.get(orig_cl_ord_id) if orig_cl_ord_id else None
        if order is None and order_id:
            order = sess.by_order_id.get(order_id)
        return order

    def _count_cancel(self, sess: _Session) -> None:
        """Tell the pre-trade gate a cancel arrived (it counts toward message-rate limits, RTS 6);
        a gate without ``on_cancel`` ignores cancels. Never raises, never refuses the cancel."""
        counter = getattr(self.pretrade, "on_cancel", None)
        if counter is None:
            return
        try:
            counter(sess.key, None, self.now_ns)
        except Exception as exc:
            self._record_error(f"pretrade on_cancel: {type(exc).__name__}: {exc}")

    def _on_cancel_request(self, sess: _Session, msg: Any) -> None:
        self._count_cancel(sess)
        req = self.codec.read_cancel(msg)
        if isinstance(req, Invalid):
            self._cancel_reject_raw(sess, msg, "1", req.text)
            return
        self._cancel_or_replace(sess, req, "1")

    def _on_replace_request(self, sess: _Session, msg: Any) -> None:
        req = self.codec.read_replace(msg)
        if isinstance(req, Invalid):
            self._cancel_reject_raw(sess, msg, "2", req.text)
            return
        self._cancel_or_replace(sess, req, "2")

    def _cancel_or_replace(self, sess: _Session, req: CancelRequest | ReplaceRequest, response_to: str) -> None:
        cl = req.cl_ord_id
        if cl in sess.cl_ord_ids:
            self._cancel_reject(sess.key, None, cl, req.orig_cl_ord_id, response_to, "6", "duplicate ClOrdID")
            return
        order = self._find(sess, req.orig_cl_ord_id, req.order_id)
        if order is None:
            sess.cl_ord_ids[cl] = None
            self._cancel_reject(sess.key, None, cl, req.orig_cl_ord_id, response_to, "1", "unknown order")
            return
        sess.cl_ord_ids[cl] = order
        if order.done:
            self._cancel_reject(sess.key, order, cl, req.orig_cl_ord_id, response_to, "0", "too late: order is done")
            return
        if order.pending:
            self._cancel_reject(
                sess.key, order, cl, req.orig_cl_ord_id, response_to, "3", "a cancel or replace is already pending"
            )
            return
        if req.side != order.side or (req.symbol and req.symbol != order.symbol):
            self._cancel_reject(
                sess.key, order, cl, req.orig_cl_ord_id, response_to, "99", "Side/Symbol do not match the order"
            )
            return
        if isinstance(req, CancelRequest):
            order.pending.append(_Pending("cancel", cl))
            self.send_command(CancelOrder(order.order_id, order.symbol))
            return
        # replace
        problem = None
        if req.ord_type != order.ord_type:
            problem = "OrdType cannot change"
        elif order.ord_type not in _REPLACEABLE:
            problem = "only limit, stop and stop-limit orders can be replaced"
        elif req.tif is not None and req.tif != order.tif:
            problem = "TimeInForce cannot change"
        if problem is not None:
            self._cancel_reject(sess.key, order, cl, req.orig_cl_ord_id, response_to, "99", problem)
            return
        if self.pretrade is not None:
            refused = self.pretrade(sess.key, req, self.now_ns)
            if refused:
                self._cancel_reject(sess.key, order, cl, req.orig_cl_ord_id, response_to, "2", refused)
                return
        order.pending.append(_Pending("replace", cl))
        # the new total OrderQty: the book, not this core's possibly stale CumQty, sets the leaves
        self.send_command(
            ReplaceOrder(
                order.order_id, order.symbol, None, req.price_ticks, total_qty=req.qty, stop_price=req.stop_px_ticks
            )
        )

    def _cancel_reject_raw(self, sess: _Session, msg: Any, response_to: str, text: str) -> None:
        cl = _field(msg, 11)
        if not cl:
            self._business_reject(sess.key, msg, "F" if response_to == "1" else "G", 5, text)
            return
        orig = _field(msg, 41) or "NONE"
        if cl not in sess.cl_ord_ids:
            sess.cl_ord_ids[cl] = None
        order = self._find(sess, orig, _field(msg, 37))
        self._cancel_reject(sess.key, order, cl, orig, response_to, "99", text)

    def _cancel_reject(
        self,
        session_key: str,
        order: _Order | None,
        cl: str,
        orig: str,
        response_to: str,
        reason: str,
        text: str,
    ) -> None:
        msg = self.codec.order_cancel_reject(
            order_id="NONE" if order is None else str(order.order_id),
            cl_ord_id=cl,
            orig_cl_ord_id=orig,
            ord_status=REJECTED if order is None else order.status,
            response_to=response_to,
            reason=reason,
            text=text,
            account=None if order is None else order.account,
            now_ns=self.now_ns,
        )
        self.send_app(session_key, msg)

    # -- status, mass cancel ---------------------------------------------------------------------
    def _on_status_request(self, sess: _Session, msg: Any) -> None:
        req = self.codec.read_status(msg)
        if isinstance(req, Invalid):
            self._business_reject(sess.key, msg, "H", 5, req.text, _field(msg, 11))
            return
        assert isinstance(req, StatusRequest)
        order = self._find(sess, req.cl_ord_id, req.order_id)
        if order is None:
            er = self.codec.execution_report(
                order_id=req.order_id or "NONE",
                exec_id=self._next_exec_id(),
                exec_type="I",
                ord_status=REJECTED,
                side=req.side,
                symbol=req.symbol or "?",
                leaves_qty=0,
                cum_qty=0,
                avg_px="0",
                cl_ord_id=req.cl_ord_id,
                ord_rej_reason="5",
                text="unknown order",
                now_ns=self.now_ns,
            )
            self._send_er(sess.key, er)
            return
        self._er(order, "I", cl_ord_id=order.cl_ord_id)

    def _on_mass_cancel_request(self, sess: _Session, msg: Any) -> None:
        self._count_cancel(sess)
        req = self.codec.read_mass_cancel(msg)
        self._mass_seq += 1
        report_id = f"MC{self._mass_seq}"
        if isinstance(req, Invalid):
            rt = _field(msg, 530)
            self._mass_report(
                sess.key,
                report_id,
                rt if rt and self.codec.dd.isFieldValue(530, rt) else "7",
                "0",
                _field(msg, 11),
                reject_reason=req.code if req.code in ("0", "1") else "99",
                text=req.text,
            )
            return
        assert isinstance(req, MassCancelRequest)
        if req.cl_ord_id in sess.cl_ord_ids:
            self._mass_report(
                sess.key, report_id, req.request_type, "0", req.cl_ord_id, reject_reason="99", text="duplicate ClOrdID"
            )
            return
        sess.cl_ord_ids[req.cl_ord_id] = None
        affected = self._mark_cancel_all(sess, "mass", req.symbol if req.request_type == "1" else None, "mass cancel")
        self._mass_report(
            sess.key,
            report_id,
            req.request_type,
            req.request_type,
            req.cl_ord_id,
            total=len(affected),
            affected=[(o.cl_ord_id, str(o.order_id)) for o in affected],
            symbol=req.symbol,
        )
        self._send_cancels(affected)

    def cancel_account(self, account: str, text: str = "kill switch") -> int:
        """Cancel every live order of a session (``account`` = its CompID; ``""`` = every session),
        e.g. for the risk officer's kill switch. Returns the number of orders canceled."""
        try:
            count = 0
            for key, sess in list(self._sessions.items()):
                if account in ("", key):
                    count += len(self._cancel_all(sess, "kill", None, text))
            return count
        except Exception as exc:  # never raise into the caller's actor loop
            self._record_error(f"cancel_account({account!r}): {exc!r}")
            return 0

    def cancel_order(
        self, session_key: str, cl_ord_id: str | None = None, order_id: str | None = None, text: str = "kill switch"
    ) -> int:
        """Cancel one live order of a session, named by any ClOrdID of its chain or by its OrderID
        (e.g. an order that was in flight when the kill switch blocked its session). Returns 1 if a
        cancel was sent, 0 if the order is unknown, done or already being canceled. Never raises."""
        try:
            sess = self._sessions.get(session_key)
            if sess is None:
                return 0
            order = self._find(sess, cl_ord_id, order_id)
            if order is None or order.done or order.order_id not in sess.live:
                return 0
            if any(p.kind in _CANCEL_KINDS for p in order.pending):
                return 0  # a cancel is already on its way
            order.pending.append(_Pending("kill", None, text))
            self._send_cancels([order])
            return 1
        except Exception as exc:  # never raise into the caller's actor loop
            self._record_error(f"cancel_order({session_key!r}, {cl_ord_id!r}, {order_id!r}): {exc!r}")
            return 0

    def _cancel_all(self, sess: _Session, kind: str, symbol: str | None, text: str) -> list[_Order]:
        affected = self._mark_cancel_all(sess, kind, symbol, text)
        self._send_cancels(affected)
        return affected

    def _send_cancels(self, orders: list[_Order]) -> None:
        for order in orders:
            self.send_command(CancelOrder(order.order_id, order.symbol))

    def _mark_cancel_all(self, sess: _Session, kind: str, symbol: str | None, text: str) -> list[_Order]:
        affected = []
        for order in list(sess.live.values()):
            if order.done or (symbol is not None and order.symbol != symbol):
                continue
            if any(p.kind in _CANCEL_KINDS for p in order.pending):
                continue  # a cancel is already on its way
            order.pending.append(_Pending(kind, None, text))
            affected.append(order)
        return affected

    def _mass_report(
        self,
        session_key: str,
        report_id: str,
        request_type: str,
        response: str,
        cl: str | None,
        *,
        reject_reason: str | None = None,
        text: str | None = None,
        total: int | None = None,
        affected: Iterable[tuple[str, str]] = (),
        symbol: str | None = None,
    ) -> None:
        msg = self.codec.order_mass_cancel_report(
            order_id=report_id,
            request_type=request_type,
            response=response,
            cl_ord_id=cl,
            reject_reason=reject_reason,
            total_affected=total,
            affected=affected,
            symbol=symbol,
            text=text,
            now_ns=self.now_ns,
        )
        self.send_app(session_key, msg)

    # -- market data ----------------------------------------------------------------------------
    def _on_md_request(self, sess: _Session, msg: Any) -> None:
        req = self.codec.read_market_data_request(msg)
        if isinstance(req, Invalid):
            req_id = _field(msg, 262)
            if not req_id:
                self._business_reject(sess.key, msg, "V", 5, req.text)
            else:
                self.send_app(sess.key, self.codec.market_data_request_reject(req_id, req.code, req.text))
            return
        assert isinstance(req, MarketDataReq)
        if req.subscription_type == "2":
            sess.md.pop(req.md_req_id, None)
            return
        if self.symbols is not None:
            unknown = [s for s in req.symbols if s not in self.symbols]
            if unknown:
                self.send_app(
                    sess.key,
                    self.codec.market_data_request_reject(req.md_req_id, "0", f"unknown symbol {unknown[0]}"),
                )
                return
        if req.subscription_type == "1":
            if req.md_req_id in sess.md:
                self.send_app(sess.key, self.codec.market_data_request_reject(req.md_req_id, "1", "duplicate MDReqID"))
                return
            sess.md[req.md_req_id] = req
        if self.on_md_request is not None:
            self.on_md_request(sess.key, req)

    def subscriptions(self, symbol: str) -> list[tuple[str, MarketDataReq]]:
        """(session_key, request) of every live subscription to ``symbol``, in a stable order."""
        out = []
        for key, sess in self._sessions.items():
            for req in sess.md.values():
                if symbol in req.symbols:
                    out.append((key, req))
        return out

    def market_data_snapshot(
        self,
        session_key: str,
        symbol: str,
        bids: Iterable[tuple[int, int]],
        asks: Iterable[tuple[int, int]],
        trades: Iterable[tuple[int, int]] = (),
        md_req_id: str | None = None,
    ) -> Any:
        """Build a W for one session, trimmed to that request's depth and entry types."""
        req = None
        sess = self._sessions.get(session_key)
        if sess is not None and md_req_id is not None:
            req = sess.md.get(md_req_id)
        bids, asks, trades = list(bids), list(asks), list(trades)
        if req is not None:
            if req.depth > 0:
                bids, asks = bids[: req.depth], asks[: req.depth]
            types = set(req.entry_types) or {"0", "1", "2"}
            bids = bids if "0" in types else []
            asks = asks if "1" in types else []
            trades = trades if "2" in types else []
        return self.codec.market_data_snapshot(symbol, bids, asks, trades, md_req_id)

    def publish_snapshot(
        self,
        session_key: str,
        symbol: str,
        bids: Iterable[tuple[int, int]],
        asks: Iterable[tuple[int, int]],
        trades: Iterable[tuple[int, int]] = (),
        md_req_id: str | None = None,
    ) -> None:
        self.send_app(session_key, self.market_data_snapshot(session_key, symbol, bids, asks, trades, md_req_id))

    def market_data_incremental(self, symbol: str, entries: Iterable[MDEntry]) -> list[tuple[str, Any]]:
        """One X per incremental subscription to ``symbol`` (entries filtered by its entry types
        and depth); returns (session_key, message) pairs."""
        entries = list(entries)
        out = []
        for key, req in self.subscriptions(symbol):
            if req.update_type == "0":
                continue  # full-refresh subscribers get snapshots from the wrapper
            types = set(req.entry_types) or {"0", "1", "2"}
            mine = [
                e
                for e in entries
                if e.entry_type in types and (req.depth <= 0 or e.position is None or e.position <= req.depth)
            ]
            if mine:
                out.append((key, self.codec.market_data_incremental(mine, req.md_req_id)))
        return out

    def publish_incremental(self, symbol: str, entries: Iterable[MDEntry]) -> None:
        for key, msg in self.market_data_incremental(symbol, entries):
            self.send_app(key, msg)

    @staticmethod
    def top_of_book_entries(symbol: str, bid: int | None, bid_qty: int, ask: int | None, ask_qty: int) -> list[MDEntry]:
        """Top-of-book change (e.g. from ``QuoteUpdated``) as X entries at position 1."""
        out = []
        for entry_type, px, qty in (("0", bid, bid_qty), ("1", ask, ask_qty)):
            if px is None:
                out.append(MDEntry("2", entry_type, None, None, symbol, 1))
            else:
                out.append(MDEntry("1", entry_type, px, qty, symbol, 1))
        return out

    @staticmethod
    def trade_entry(symbol: str, price: int, qty: int) -> MDEntry:
        return MDEntry("0", "2", price, qty, symbol)

    # =========================================================================================
    # book events
    # =========================================================================================
    def _ev_accepted(self, ev: OrderAccepted, order: _Order) -> None:
        if order.status != PENDING_NEW:
            return
        order.status = NEW
        self._er(order, NEW, cl_ord_id=order.cl_ord_id)

    def _ev_rejected(self, ev: OrderRejected, order: _Order) -> None:
        order.status = REJECTED
        order.leaves_qty = 0
        self._finish(order)
        self._er(
            order,
            REJECTED,
            cl_ord_id=order.cl_ord_id,
            ord_rej_reason=_ORD_REJ_REASON.get(ev.reason, "99"),
            text=ev.reason,
        )

    def _ev_filled(self, ev: OrderFilled, order: _Order) -> None:
        order.cum_qty += ev.qty
        order.notional += ev.qty * ev.price
        order.leaves_qty = ev.leaves_qty
        order.order_qty = order.cum_qty + order.leaves_qty  # equal unless the replace race hit
        if ev.leaves_qty == 0:
            order.status = FILLED
            self._finish(order)
        else:
            order.status = PARTIAL
        self._er(
            order,
            "F",
            cl_ord_id=order.cl_ord_id,
            last_qty=ev.qty,
            last_px_ticks=ev.price,
            liquidity=ev.liquidity,
        )

    def _ev_canceled(self, ev: OrderCanceled, order: _Order) -> None:
        pending = None
        if ev.reason == "canceled":
            for i, p in enumerate(order.pending):
                if p.kind in _CANCEL_KINDS:
                    pending = order.pending.pop(i)
                    break
        order.status = CANCELED
        order.leaves_qty = 0
        self._finish(order)
        if pending is not None and pending.kind == "cancel":
            self._er(order, CANCELED, cl_ord_id=pending.cl_ord_id, orig_cl_ord_id=order.cl_ord_id)
        elif pending is None and order.protection is not None and ev.reason in ("ioc", "fok"):
            px = order.protection
            why = (
                f"market order protection: {ev.canceled_qty} unfilled within the protection price "
                f"{self.codec.from_ticks(px)} canceled"
            )
            self._er(order, CANCELED, cl_ord_id=order.cl_ord_id, text=why)
            report = getattr(self.pretrade, "on_protection_cancel", None)
            if report is not None:
                try:
                    report(order.session, order.cl_ord_id, str(order.order_id), ev.canceled_qty, px, self.now_ns)
                except Exception as exc:
                    self._record_error(f"pretrade on_protection_cancel: {type(exc).__name__}: {exc}")
        else:
            text = pending.text if pending is not None else ev.reason
            self._er(order, CANCELED, cl_ord_id=order.cl_ord_id, text=text)

    def _ev_replaced(self, ev: OrderReplaced, order: _Order) -> None:
        pending = None
        for i, p in enumerate(order.pending):
            if p.kind == "replace":
                pending = order.pending.pop(i)
                break
        order.price = ev.price
        if ev.stop_price is not None:  # a resting stop's replace (the exchange ignores it once elected)
            order.stop_px = ev.stop_price
        order.leaves_qty = ev.qty
        if ev.cum_qty is not None and ev.cum_qty != order.cum_qty:
            # cannot happen: the book's fills reach us before its OrderReplaced (FIFO link)
            self._record_error(f"OrderReplaced {order.order_id}: book CumQty {ev.cum_qty} != {order.cum_qty}")
        order.order_qty = order.cum_qty + ev.qty  # OrderQty amended to CumQty when the replace ended it
        if ev.qty == 0:  # a total at or below CumQty: done, Filled takes precedence (App. D)
            order.status = FILLED
            self._finish(order)
        else:
            order.status = PARTIAL if order.cum_qty else NEW
        if pending is None or pending.cl_ord_id is None:
            self._er(order, "D", cl_ord_id=order.cl_ord_id, text="restated")
            return
        old = order.cl_ord_id
        order.cl_ord_id = pending.cl_ord_id
        self._er(order, "5", cl_ord_id=order.cl_ord_id, orig_cl_ord_id=old)

    def _ev_cancel_rejected(self, ev: CancelRejected, order: _Order) -> None:
        if not order.pending:
            return
        pending = order.pending.pop(0)
        if pending.kind not in ("cancel", "replace") or pending.cl_ord_id is None:
            return  # a mass / disconnect cancel that found the order already done
        too_late = order.done or ev.reason == "unknown order"
        self._cancel_reject(
            order.session,
            order,
            pending.cl_ord_id,
            order.cl_ord_id,
            "1" if pending.kind == "cancel" else "2",
            "0" if too_late else "99",
            ev.reason,
        )

    # =========================================================================================
    # helpers
    # =========================================================================================
    def _session(self, key: str) -> _Session:
        sess = self._sessions.get(key)
        if sess is None:
            sess = self._sessions[key] = _Session(key)
        return sess

    def _finish(self, order: _Order) -> None:
        sess = self._sessions.get(order.session)
        if sess is not None:
            sess.live.pop(order.order_id, None)

    def _next_exec_id(self) -> str:
        self._exec_seq += 1
        return str(self._exec_seq)

    def _er(self, order: _Order, exec_type: str, **extra: Any) -> None:
        codec = self.codec
        msg = codec.execution_report(
            order_id=str(order.order_id),
            exec_id=self._next_exec_id(),
            exec_type=exec_type,
            ord_status=order.status,
            side=order.side,
            symbol=order.symbol,
            leaves_qty=order.leaves_qty,
            cum_qty=order.cum_qty,
            avg_px=codec.avg_px(order.notional, order.cum_qty),
            order_qty=order.order_qty,
            price_ticks=order.price,
            ord_type=order.ord_type,
            tif=order.tif,
            post_only=order.post_only,
            account=order.account,
            now_ns=self.now_ns,
            stop_px_ticks=order.stop_px,
            lazy=True,  # read by quickfix only if someone reads it (fix.codec.Prebuilt)
            **extra,
        )
        self._send_er(order.session, msg)

    def _send_er(self, session_key: str, msg: Any) -> None:
        if self.drop_copy is not None:
            self.drop_copy(session_key, type(msg)(msg))
        self.send_app(session_key, msg)

    def _business_reject(
        self, session_key: str, msg: Any, ref_msg_type: str, reason: int, text: str, ref_id: str | None = None
    ) -> None:
        seq = None
        try:
            h = msg.getHeader()
            if h.isSetField(34):
                seq = int(h.getField(34))
        except Exception:
            seq = None
        self.send_app(session_key, self.codec.business_message_reject(ref_msg_type, reason, text, seq, ref_id))

    def _record_error(self, text: str) -> None:
        self.errors.append(text)
        if len(self.errors) > 100:
            del self.errors[0]


def _field(msg: Any, tag: int) -> str | None:
    try:
        return msg.getField(tag) if msg.isSetField(tag) else None  # type: ignore[no-any-return]
    except Exception:
        return None
