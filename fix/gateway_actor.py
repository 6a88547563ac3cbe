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
* Market data: a MarketDataRequest (V) is served by :class:`fix.marketdata.MarketDataFeed` (the
  one ``desksim serve`` uses too) from the exchange's native depth and trade feeds: a W, then
  every change within the requested depth (0 = the full book) as X (or W for MDUpdateType 0).
* Cancel-on-disconnect (on by default): when a session drops (link down, logout, silence) the
  core cancels the session's live orders; their ExecutionReports are stored and reach the client
  by resend after it logs on again.
* ``FixLinkDown`` / ``FixLinkUp`` (scenario events; ``target`` = a client CompID, or empty for
  every session) drop and restore the transport: frames that arrive while it is down are lost.

Two transports, one gateway. In a run (``transport=None``) frames travel over the simulated
links as above, and the sessions' clock is the kernel's. In ``desksim serve`` a
:class:`fix.transport.FrameTransport` (the TCP acceptor) carries them: it hands inbound frames
to :meth:`FixGateway.receive` (the connection's first frame has named the session) and
connection losses to :meth:`FixGateway.transport_lost`, takes outbound frames, and closes a
session's connection when the session ends. Its sessions then run on ``session_clock`` (wall
time: SendingTime is real UTC, heartbeats and timeouts on wall time) and their timers are polled
by the owner (:meth:`FixGateway.poll_session_timers`); TransactTime stays the codec's
(simulated) time. Application messages are screened (:func:`fix.screen.screen_inbound`) before
the core reads them, on either transport.

Every FIX frame in and out is recorded in the ``fix_messages`` table
``(time_ns, session, direction, msg_type, seq, cl_ord_id, text)`` where ``direction`` is
``"in"``/``"out"`` and ``text`` is Text(58) ("" when absent). Nothing that handles FIX input
lets an exception escape: errors are counted in ``errors`` and kept in ``last_errors``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any, ClassVar

from actors.messages import (
    ORDER_ID_SHIFT,
    AuctionImbalanceUpdated,
    BookDepthChanged,
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
    QuoteUpdated,
    SubscribeAuctionInfo,
    SubscribeDropCopy,
    SubscribeMarketData,
    SubscribeTradingStatus,
    TradePrinted,
    TradingHalted,
    TradingResumed,
)
from actors.messages import KillSwitch as KillSwitchCommand
from actors.risk import GateConfig, SetRiskLimits
from actors.units import DEFAULT_TICK_SIZE
from fix.codec import Codec, FixClock, MarketDataReq, message_type
from fix.gateway import GatewayCore
from fix.marketdata import MarketDataFeed
from fix.risk_gate import GatewayRisk
from fix.screen import screen_inbound
from fix.session import FixFrame, FixLinkDown, FixLinkUp, FixSession, SessionState
from fix.transport import FrameTransport, SessionClock
from sim.actor import Actor, Wakeup, handles
from sim.record import Recorder

__all__ = ["FIX_MESSAGE_COLUMNS", "FixGateway", "scan_frame"]

log = logging.getLogger("desksim.gateway")

MAX_LATENCY_S = 120.0
"""SendingTime tolerance of a session on a real transport (quickfix's default MaxLatency)."""

FIX_MESSAGE_COLUMNS = ("time_ns", "session", "direction", "msg_type", "seq", "cl_ord_id", "text")

_BOOK_EVENTS = (OrderAccepted, OrderRejected, OrderFilled, OrderCanceled, OrderReplaced, CancelRejected)


_SCAN_RE = re.compile(r"(?:^|\x01)(35|34|11|58|49)=([^\x01]*)")


def scan_frame(raw: str) -> tuple[str, int, str, str, str]:
    """(MsgType, MsgSeqNum, ClOrdID, Text, SenderCompID) of a raw frame; "" / -1 when absent
    (the last occurrence of a repeated tag)."""
    found = dict(_SCAN_RE.findall(raw))
    seq_text = found.get("34", "")
    seq = int(seq_text) if seq_text.isdigit() and len(seq_text) < 19 else -1
    return found.get("35", ""), seq, found.get("11", ""), found.get("58", ""), found.get("49", "")


class FixGateway(Actor):
    """Exchange-side FIX 4.4 order-entry gateway actor. See the module docstring."""

    placement_role: ClassVar[str] = "hub"  # the exchange side: one process with the exchange

    def __init__(
        self,
        name: str,
        recorder: Recorder,
        *,
        exchange: str = "exchange",
        clients: Iterable[str] = ("CLIENT1",),
        sender_comp_id: str = "DESKSIM",
        tick_size: float | str = DEFAULT_TICK_SIZE,
        symbols: Iterable[str] | None = None,
        cancel_on_disconnect: bool = True,
        heartbeat_s: int = 30,
        codec: Codec | None = None,
        clock: FixClock | None = None,
        location: str = "exchange",
        transport: FrameTransport | None = None,
        session_clock: SessionClock | None = None,
        record_frames: bool = True,
        risk: GateConfig | None = None,
    ) -> None:
        super().__init__(name, location)
        self.transport = transport  # None: the simulated links (FixFrame messages)
        self.session_clock = session_clock  # None: the kernel's clock
        self.record_frames = record_frames  # the fix_messages table (a long-running server may not want it)
        self.exchange_name = exchange
        self.exchange = -1
        self.sender_comp_id = sender_comp_id
        self.codec = codec if codec is not None else Codec(tick_size, clock=clock)  # clock: the trading date
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
        self.md = MarketDataFeed(self.codec, self._send_app, self.core.subscriptions, self._md_subscribe)
        self.status_symbols: list[str] = list(symbols) if symbols is not None else []
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
        # the pre-trade gate in the order path: the gateway's own (fix.risk_gate), set by messages
        self.risk = GatewayRisk(self, risk) if risk is not None else None

    def _make_session(self, comp: str, heartbeat_s: int) -> FixSession:
        wall = self.session_clock
        return FixSession(
            self.sender_comp_id,
            comp,
            initiator=False,
            heartbeat_s=heartbeat_s,
            send_raw=lambda raw, comp=comp: self._send_raw(comp, raw),  # type: ignore[misc]
            now_ns=(lambda: self.now) if wall is None else wall.now_ns,
            on_app=lambda msg, comp=comp: self._on_app(comp, msg),  # type: ignore[misc]
            on_state=lambda old, new, comp=comp: self._on_state(comp, old, new),  # type: ignore[misc]
            set_timer=self._timer_setter(comp) if wall is None else None,  # polled by the owner on wall time
            clock=self.codec.clock if wall is None else wall.fix_clock,  # SendingTime
            max_latency_s=None if wall is None else MAX_LATENCY_S,  # a peer on the wall clock
            reject_garbled=self.transport is None,  # on TCP a garbled frame is ignored (FIX, quickfix)
        )

    def _timer_setter(self, comp: str) -> Any:
        return lambda t: self.wake_at(t, ("fix", comp))

    def _on_app(self, comp: str, msg: Any) -> None:
        screen_inbound(msg)  # raises what the session answers with a Reject (3)
        self.core.on_app(comp, msg, self.now)
        if self.risk is not None:
            self.risk.after()  # a kill the gate decided on this message is carried out now

    def on_start(self) -> None:
        self.exchange = self.lookup(self.exchange_name)
        for session in self.sessions.values():
            session.connect()
        for symbol in self.status_symbols:
            self.send(self.exchange, SubscribeTradingStatus(symbol))
            self.send(self.exchange, SubscribeAuctionInfo(symbol))
        if self.risk is not None:
            self.risk.start(self.status_symbols)

    # -- trading status -> FIX SecurityStatus (f) ---------------------------------------------
    def _trading_status(self, symbol: str, status: str, text: str) -> None:
        """Tell every logged-on client: SecurityTradingStatus 2 halt / 3 resume, reason in Text."""
        for comp, session in self.sessions.items():
            if session.is_logged_on:
                self._send_app(comp, self.codec.security_status(symbol, status, text, self.now))

    @handles(TradingHalted)
    def on_trading_halted(self, msg: TradingHalted, src: int) -> None:
        self._trading_status(msg.symbol, "2", msg.reason)

    @handles(TradingResumed)
    def on_trading_resumed(self, msg: TradingResumed, src: int) -> None:
        self._trading_status(msg.symbol, "3", "reopened by auction")

    @handles(AuctionImbalanceUpdated)
    def on_auction_info(self, msg: AuctionImbalanceUpdated, src: int) -> None:
        """While halted: the reopening auction's indicative price and imbalance, as a SecurityStatus."""
        price = "none yet" if msg.indicative_price is None else self.codec.from_ticks(msg.indicative_price)
        side = {"B": "buy", "S": "sell"}.get(msg.imbalance_side, "")
        text = f"indicative {price}, paired {msg.paired_qty}, imbalance {msg.imbalance_qty} {side}".rstrip()
        for comp, session in self.sessions.items():
            if session.is_logged_on:
                m = self.codec.auction_indication(
                    msg.symbol,
                    msg.indicative_price,
                    msg.paired_qty,
                    msg.imbalance_qty,
                    msg.imbalance_side,
                    (msg.lower_collar, msg.upper_collar),
                    text,
                    self.now,
                )
                self._send_app(comp, m)

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
        if self.risk is not None:
            self.risk.on_outbound(comp, msg)  # the gate's ledger: the gateway's own reports
        if self._drop_subs and message_type(msg) == "8":
            raw = msg.toString()
            now = self.now
            for dst, wanted in self._drop_subs:
                if not wanted or wanted == comp:
                    self.counters["drop_copies"] += 1
                    self.send(dst, DropCopy(comp, raw, now))

    def _send_raw(self, comp: str, raw: str) -> None:
        self._record(comp, "out", raw)
        self.counters["frames_out"] += 1
        if self.transport is not None:
            self.transport.send(comp, raw)
            return
        dst = self.peers.get(comp)
        if dst is not None and self.link_up.get(comp, True):
            self.send(dst, FixFrame(raw))

    def _on_state(self, comp: str, old: SessionState, new: SessionState) -> None:
        if new is SessionState.DISCONNECTED:
            self.core.on_disconnect(comp)  # cancel-on-disconnect (never raises)
        if self.transport is None:
            return
        if new is SessionState.ACTIVE:
            log.info("%s logged on", comp)
        elif new is SessionState.DISCONNECTED:
            log.info("%s disconnected: %s", comp, self.sessions[comp].last_disconnect_reason)
            self.transport.close(comp)

    # -- a real transport -----------------------------------------------------------------------
    def receive(self, comp: str, raw: str) -> None:
        """A frame from the transport's connection of session ``comp``. Never raises."""
        try:
            session = self.sessions.get(comp)
            if session is None:
                self.counters["unknown_session"] += 1
                return
            self.counters["frames_in"] += 1
            self._record(comp, "in", raw)
            session.on_raw(raw)  # never raises
        except Exception as exc:
            self._error(f"frame: {type(exc).__name__}: {exc}")

    def transport_lost(self, comp: str, reason: str) -> None:
        """The transport's connection of session ``comp`` is gone (cancel-on-disconnect follows)."""
        session = self.sessions.get(comp)
        if session is not None:
            session.disconnect(reason)

    def poll_session_timers(self) -> None:
        """Heartbeats, TestRequests and timeouts of the sessions due now (on ``session_clock``)."""
        if self.session_clock is None:
            return
        now = self.session_clock.now_ns()
        for session in self.sessions.values():
            due = session.next_timer_ns()
            if due is not None and now >= due:
                session.on_timer()

    def _record(
        self, comp: str, direction: str, raw: str, scanned: tuple[str, int, str, str, str] | None = None
    ) -> None:
        if not self.record_frames:
            return
        try:
            msg_type, seq, cl, text, _ = scan_frame(raw) if scanned is None else scanned
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
            scanned = scan_frame(raw)
            msg_type, sender = scanned[0], scanned[4]
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
            self._record(comp, "in", raw, scanned)  # scanned once, for routing and the log
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
        self.md.on_request(comp, req)

    def _md_subscribe(self, symbol: str, depth: int | None) -> None:
        quotes = self.risk is not None  # the gate's collar reference (replaces the subscription)
        self.send(self.exchange, SubscribeMarketData(symbol, trades=True, quotes=quotes, depth=depth))

    @handles(BookDepthChanged)
    def on_depth(self, msg: BookDepthChanged, src: int) -> None:
        try:
            self.md.on_depth(msg)
        except Exception as exc:
            self._error(f"market data: {type(exc).__name__}: {exc}")

    @handles(TradePrinted)
    def on_trade(self, msg: TradePrinted, src: int) -> None:
        try:
            self.md.on_trade(msg)
            if self.risk is not None:
                self.risk.on_trade(msg)
        except Exception as exc:
            self._error(f"trade: {type(exc).__name__}: {exc}")

    # -- the pre-trade gate, set by the risk officer's messages --------------------------------------
    @handles(QuoteUpdated)
    def on_quote(self, msg: QuoteUpdated, src: int) -> None:
        if self.risk is not None:
            self.risk.on_quote(msg)

    @handles(SetRiskLimits)
    def on_set_risk_limits(self, msg: SetRiskLimits, src: int) -> None:
        if self.risk is not None:
            self.risk.on_set_limits(msg)

    @handles(KillSwitchCommand)
    def on_kill_switch(self, msg: KillSwitchCommand, src: int) -> None:
        """The risk officer's kill switch: block the session(s) and cancel their live orders."""
        if self.risk is not None:
            self.risk.on_kill_switch(msg)
        elif msg.on:
            self.core.cancel_account(msg.account, msg.reason)

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
            **({"risk": self.risk.summary()} if self.risk is not None else {}),
        }
