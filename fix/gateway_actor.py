"""The exchange-side FIX 4.4 order-entry gateway as an actor of the simulation.

``FixGateway`` sits next to the exchange (location ``"exchange"``). It owns one acceptor
:class:`~fix.session.FixSession` per client CompID (SenderCompID ``DESKSIM``) and one
:class:`~fix.gateway.GatewayCore`:

* FIX frames arrive as ``FixFrame`` messages from client actors (an OMS) over the network; the
  session is chosen by the frame's SenderCompID(49) (the sending actor once known, for frames
  too garbled to name one). Application messages go to ``GatewayCore.on_app``.
* The core's commands (``SubmitOrder`` / ``CancelOrder`` / ``ReplaceOrder``, order ids owned by
  this actor: ``self.id << 32 | n``) go to the exchange actor; the exchange's order events come
  back here and go to ``GatewayCore.on_book_event``; outgoing application messages leave through
  the right session.
* Every ExecutionReport is copied, as stamped for the wire, to the ``SubscribeDropCopy``
  subscribers as a native ``DropCopy`` message (the risk officer reads them).
* A MarketDataRequest (V) subscribes the gateway to the exchange's native market data once per
  symbol and asks for a book snapshot (``QueryBook``) that is answered as a W; trades and
  top-of-book changes then stream as X (incremental subscribers) or W (full-refresh ones).
* Cancel-on-disconnect (on by default): when a session drops (link down, logout, silence) the
  core cancels the session's live orders; their ExecutionReports are stored and reach the client
  by resend after it logs on again.
* ``FixLinkDown`` / ``FixLinkUp`` (scenario events; ``target`` = a client CompID, or empty for
  every session) drop and restore the transport: frames that arrive while it is down are lost.

Every FIX frame in and out is recorded in the ``fix_messages`` table
``(time_ns, session, direction, msg_type, seq, cl_ord_id, text)`` where ``direction`` is
``"in"``/``"out"`` and ``text`` is Text(58) ("" when absent). Nothing that handles FIX input
lets an exception escape: errors are counted in ``errors`` and kept in ``last_errors``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from actors.messages import (
    ORDER_ID_SHIFT,
    BookSnapshot,
    CancelRejected,
    DropCopy,
    LimitStateEntered,
    LimitStateExited,
    MassCancelAccount,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    QueryBook,
    QuoteUpdated,
    SubscribeDropCopy,
    SubscribeMarketData,
    SubscribeTradingStatus,
    TradePrinted,
    TradingHalted,
    TradingResumed,
)
from fix.codec import Codec, MarketDataReq
from fix.gateway import GatewayCore
from fix.session import FixFrame, FixLinkDown, FixLinkUp, FixSession, SessionState
from sim.actor import Actor, Wakeup, handles
from sim.record import Recorder

__all__ = ["FIX_MESSAGE_COLUMNS", "FixGateway", "scan_frame"]

FIX_MESSAGE_COLUMNS = ("time_ns", "session", "direction", "msg_type", "seq", "cl_ord_id", "text")

_BOOK_EVENTS = (OrderAccepted, OrderRejected, OrderFilled, OrderCanceled, OrderReplaced, CancelRejected)
_SNAPSHOT_LEVELS = 10  # levels asked for a MarketDepth=0 (full book) request


def scan_frame(raw: str) -> tuple[str, int, str, str, str]:
    """(MsgType, MsgSeqNum, ClOrdID, Text, SenderCompID) of a raw frame; "" / -1 when absent."""
    msg_type = cl = text = sender = ""
    seq = -1
    for part in raw.split("\x01"):
        tag, _, value = part.partition("=")
        if tag == "35":
            msg_type = value
        elif tag == "34":
            seq = int(value) if value.isdigit() and len(value) < 19 else -1
        elif tag == "11":
            cl = value
        elif tag == "58":
            text = value
        elif tag == "49":
            sender = value
    return msg_type, seq, cl, text, sender


class FixGateway(Actor):
    """Exchange-side FIX 4.4 order-entry gateway actor. See the module docstring."""

    def __init__(
        self,
        name: str,
        recorder: Recorder,
        *,
        exchange: str = "exchange",
        clients: Iterable[str] = ("CLIENT1",),
        sender_comp_id: str = "DESKSIM",
        tick_size: float | str = 0.01,
        symbols: Iterable[str] | None = None,
        cancel_on_disconnect: bool = True,
        heartbeat_s: int = 30,
        codec: Codec | None = None,
        location: str = "exchange",
    ) -> None:
        super().__init__(name, location)
        self.exchange_name = exchange
        self.exchange = -1
        self.sender_comp_id = sender_comp_id
        self.codec = codec if codec is not None else Codec(tick_size)
        self.fix_messages = recorder.table("fix_messages", FIX_MESSAGE_COLUMNS)
        self.core = GatewayCore(
            self.codec,
            new_order_id=self._new_order_id,
            send_app=self._send_app,
            send_command=self._send_command,
            drop_copy=None,  # copies are taken in _send_app, after the session stamped them
            on_md_request=self._on_md_request,
            symbols=symbols,
            cancel_on_disconnect=cancel_on_disconnect,
        )
        self.sessions: dict[str, FixSession] = {}
        self.peers: dict[str, int] = {}  # client CompID -> actor id (learned from its frames)
        self._by_src: dict[int, str] = {}
        self.link_up: dict[str, bool] = {}
        for comp in clients:
            if comp in self.sessions:
                continue
            self.sessions[comp] = self._make_session(comp, heartbeat_s)
            self.link_up[comp] = True
        self._drop_subs: list[tuple[int, str]] = []  # (actor id, session filter)
        self._md_symbols: set[str] = set()
        self.status_symbols: list[str] = list(symbols) if symbols is not None else []
        self._snapshots: dict[str, deque[tuple[str, str]]] = {}  # symbol -> (session, MDReqID)
        self._next_order = 0
        self.counters: dict[str, int] = {
            "frames_in": 0,
            "frames_out": 0,
            "frames_lost": 0,  # arrived while the link was down
            "unknown_session": 0,  # frames naming no configured client
            "foreign_frames": 0,  # frames from an actor that is not the session's peer
            "drop_copies": 0,
            "commands": 0,
            "book_events": 0,
        }
        self.errors = 0
        self.last_errors: list[str] = []

    def _make_session(self, comp: str, heartbeat_s: int) -> FixSession:
        return FixSession(
            self.sender_comp_id,
            comp,
            initiator=False,
            heartbeat_s=heartbeat_s,
            send_raw=lambda raw, comp=comp: self._send_raw(comp, raw),  # type: ignore[misc]
            now_ns=lambda: self.now,
            on_app=lambda msg, comp=comp: self.core.on_app(comp, msg, self.now),  # type: ignore[misc]
            on_state=lambda old, new, comp=comp: self._on_state(comp, old, new),  # type: ignore[misc]
            set_timer=lambda t, comp=comp: self.wake_at(t, ("fix", comp)),  # type: ignore[misc]
        )

    def on_start(self) -> None:
        self.exchange = self.lookup(self.exchange_name)
        for session in self.sessions.values():
            session.connect()
        for symbol in self.status_symbols:
            self.send(self.exchange, SubscribeTradingStatus(symbol))

    # -- trading status -> FIX TradingSessionStatus (h) -----------------------------------------
    def _trading_status(self, symbol: str, status: str, text: str) -> None:
        """Tell every logged-on client: TradSesStatus 1 halted / 2 open, with the reason in Text."""
        for comp, session in self.sessions.items():
            if session.is_logged_on:
                self._send_app(comp, self.codec.trading_session_status(status, text=text, symbol=symbol))

    @handles(TradingHalted)
    def on_trading_halted(self, msg: TradingHalted, src: int) -> None:
        self._trading_status(msg.symbol, "1", msg.reason)

    @handles(TradingResumed)
    def on_trading_resumed(self, msg: TradingResumed, src: int) -> None:
        self._trading_status(msg.symbol, "2", "reopened by auction")

    @handles(LimitStateEntered, LimitStateExited)
    def on_limit_state(self, msg: Any, src: int) -> None:
        """LULD limit states are market data only; continuous trading goes on."""

    # -- wiring of the core -------------------------------------------------------------------
    def _new_order_id(self) -> int:
        self._next_order += 1
        return (self.id << ORDER_ID_SHIFT) | self._next_order

    def _send_command(self, cmd: Any) -> None:
        self.counters["commands"] += 1
        self.send(self.exchange, cmd)

    def _send_app(self, comp: str, msg: Any) -> None:
        session = self.sessions.get(comp)
        if session is None:
            self._error(f"no session {comp!r} for an outgoing message")
            return
        session.send_app(msg)  # stamps the header in place (and sends when logged on)
        if self._drop_subs and msg.getHeader().getField(35) == "8":
            raw = msg.toString()
            now = self.now
            for dst, wanted in self._drop_subs:
                if not wanted or wanted == comp:
                    self.counters["drop_copies"] += 1
                    self.send(dst, DropCopy(comp, raw, now))

    def _send_raw(self, comp: str, raw: str) -> None:
        self._record(comp, "out", raw)
        self.counters["frames_out"] += 1
        dst = self.peers.get(comp)
        if dst is not None and self.link_up.get(comp, True):
            self.send(dst, FixFrame(raw))

    def _on_state(self, comp: str, old: SessionState, new: SessionState) -> None:
        if new is SessionState.DISCONNECTED:
            self.core.on_disconnect(comp)  # cancel-on-disconnect (never raises)

    def _record(self, comp: str, direction: str, raw: str) -> None:
        try:
            msg_type, seq, cl, text, _ = scan_frame(raw)
        except Exception:  # pragma: no cover - split/partition do not raise on str
            msg_type, seq, cl, text = "?", -1, "", ""
        self.fix_messages.append((self.now, comp, direction, msg_type, seq, cl, text))

    def _error(self, text: str) -> None:
        self.errors += 1
        self.last_errors.append(text)
        if len(self.last_errors) > 100:
            del self.last_errors[0]

    # -- FIX input ------------------------------------------------------------------------------
    @handles(FixFrame)
    def on_frame(self, msg: FixFrame, src: int) -> None:
        """Route a frame to its session. The sending actor becomes a session's peer when it
        sends a Logon while the session is not logged on; frames from any other actor while
        that peer holds the session are dropped (``foreign_frames``)."""
        try:
            raw = msg.raw if isinstance(msg.raw, str) else ""
            msg_type, _, _, _, sender = scan_frame(raw)
            comp = sender if sender in self.sessions else self._by_src.get(src)
            if comp is None:
                self.counters["unknown_session"] += 1
                return
            if not self.link_up.get(comp, True):
                self.counters["frames_lost"] += 1
                return
            session = self.sessions[comp]
            if self.peers.get(comp) != src:
                if msg_type != "A" or sender != comp or session.state is SessionState.ACTIVE:
                    self.counters["foreign_frames"] += 1
                    return
                old = self.peers.get(comp)
                if old is not None:
                    self._by_src.pop(old, None)
                self.peers[comp] = src
                self._by_src[src] = comp
            self.counters["frames_in"] += 1
            self._record(comp, "in", raw)
            session.on_raw(raw)  # never raises
        except Exception as exc:
            self._error(f"frame: {type(exc).__name__}: {exc}")

    @handles(Wakeup)
    def on_wakeup(self, msg: Wakeup, src: int) -> None:
        tag = msg.tag
        if isinstance(tag, tuple) and tag and tag[0] == "fix":
            session = self.sessions.get(tag[1])
            if session is not None:
                session.on_timer()

    def _targets(self, target: str) -> list[str]:
        if not target or target == self.sender_comp_id:
            return list(self.sessions)
        return [target] if target in self.sessions else []

    @handles(FixLinkDown)
    def on_link_down(self, msg: FixLinkDown, src: int) -> None:
        for comp in self._targets(msg.target):
            self.link_up[comp] = False
            self.sessions[comp].disconnect(msg.reason)  # -> _on_state -> cancel-on-disconnect

    @handles(FixLinkUp)
    def on_link_up(self, msg: FixLinkUp, src: int) -> None:
        for comp in self._targets(msg.target):
            self.link_up[comp] = True
            self.sessions[comp].connect()  # acceptor: wait for the client's Logon

    # -- exchange events ------------------------------------------------------------------------
    @handles(*_BOOK_EVENTS)
    def on_book_event(self, msg: Any, src: int) -> None:
        self.counters["book_events"] += 1
        self.core.on_book_event(msg, self.now)  # never raises

    # -- drop copies ------------------------------------------------------------------------------
    @handles(MassCancelAccount)
    def on_mass_cancel_account(self, msg: MassCancelAccount, src: int) -> None:
        """The risk officer's kill switch: cancel every live order of the account."""
        self.core.cancel_account(msg.account, msg.reason)

    @handles(SubscribeDropCopy)
    def on_subscribe_drop_copy(self, msg: SubscribeDropCopy, src: int) -> None:
        entry = (src, msg.session)
        if msg.subscribe and entry not in self._drop_subs:
            self._drop_subs.append(entry)
        elif not msg.subscribe:
            self._drop_subs = [(d, s) for d, s in self._drop_subs if d != src or (msg.session and s != msg.session)]

    # -- market data ----------------------------------------------------------------------------
    def _on_md_request(self, comp: str, req: MarketDataReq) -> None:
        levels = req.depth if req.depth > 0 else _SNAPSHOT_LEVELS
        for symbol in req.symbols:
            if symbol not in self._md_symbols:
                self._md_symbols.add(symbol)
                self.send(self.exchange, SubscribeMarketData(symbol, trades=True, quotes=True))
            self._snapshots.setdefault(symbol, deque()).append((comp, req.md_req_id))
            self.send(self.exchange, QueryBook(symbol, levels))

    @handles(BookSnapshot)
    def on_book_snapshot(self, msg: BookSnapshot, src: int) -> None:
        try:
            pending = self._snapshots.get(msg.symbol)
            if not pending:
                return
            comp, md_req_id = pending.popleft()
            self.core.publish_snapshot(comp, msg.symbol, msg.bids, msg.asks, (), md_req_id)
        except Exception as exc:
            self._error(f"snapshot: {type(exc).__name__}: {exc}")

    @handles(QuoteUpdated)
    def on_quote(self, msg: QuoteUpdated, src: int) -> None:
        try:
            core = self.core
            entries = core.top_of_book_entries(msg.symbol, msg.bid, msg.bid_qty, msg.ask, msg.ask_qty)
            core.publish_incremental(msg.symbol, entries)
            for comp, req in core.subscriptions(msg.symbol):
                if req.update_type == "0":  # full-refresh subscribers get a top-of-book W
                    bids = [(msg.bid, msg.bid_qty)] if msg.bid is not None else []
                    asks = [(msg.ask, msg.ask_qty)] if msg.ask is not None else []
                    core.publish_snapshot(comp, msg.symbol, bids, asks, (), req.md_req_id)
        except Exception as exc:
            self._error(f"quote: {type(exc).__name__}: {exc}")

    @handles(TradePrinted)
    def on_trade(self, msg: TradePrinted, src: int) -> None:
        try:
            self.core.publish_incremental(msg.symbol, [self.core.trade_entry(msg.symbol, msg.price, msg.qty)])
        except Exception as exc:
            self._error(f"trade: {type(exc).__name__}: {exc}")

    def unhandled(self, msg: Any, src: int) -> None:
        """Trading-status events and anything else the gateway does not translate: ignored."""

    # -- introspection --------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        return {
            "sessions": {
                comp: {
                    "state": s.state.value,
                    "next_in_seq": s.next_in_seq,
                    "next_out_seq": s.next_out_seq,
                    **{k: getattr(s.counters, k) for k in type(s.counters).__dataclass_fields__},
                }
                for comp, s in self.sessions.items()
            },
            "counters": dict(self.counters),
            "errors": self.errors,
            "core_errors": len(self.core.errors),
        }
