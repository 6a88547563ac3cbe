"""The application of ``desksim serve --profile conformance``, on desksim's own session layer.

The settings and the behaviour of QuickFIX's FIX 4.4 acceptance tests: acceptor sessions
SenderCompID ``ISLD`` <- TargetCompID ``TW`` and ``TW44``, sequence numbers reset on every logon, FIX44.xml
validation, and their test application: a NewOrderSingle (D) or SecurityDefinition (d) is
echoed back, a NewOrderSingle resent (PossResend 97=Y) with a ClOrdID already seen in the
session is ignored (the set is cleared at logout), every other application message gets a
BusinessMessageReject (j, reason 3 UnsupportedMessageType). No market runs.

:class:`EchoEndpoint` is a :class:`fix.transport.FixEndpoint`: the TCP acceptor routes frames to
its :class:`fix.session.FixSession` (the class the simulation's gateway uses) and the endpoint
sends through the acceptor.
"""

from __future__ import annotations

import logging
from typing import Any

import quickfix as fix

from fix.session import FixSession, SessionState
from fix.transport import FrameTransport, SessionClock

__all__ = ["CONFORMANCE_SENDER", "CONFORMANCE_TARGETS", "EchoEndpoint"]

log = logging.getLogger("desksim.serve")

CONFORMANCE_SENDER = "ISLD"
#: the counterparties of QuickFIX's FIX 4.4 acceptance definitions (some log on as TW, some as TW44)
CONFORMANCE_TARGETS = ("TW", "TW44")


class EchoEndpoint:
    """Sessions ``ISLD <- TW`` and ``ISLD <- TW44`` answering like the QuickFIX acceptance-test
    application (one :class:`FixSession` each, keyed by the counterparty's CompID)."""

    def __init__(
        self,
        transport: FrameTransport,
        clock: SessionClock,
        sender_comp_id: str = CONFORMANCE_SENDER,
        target_comp_ids: tuple[str, ...] = CONFORMANCE_TARGETS,
    ) -> None:
        self.transport = transport
        self.clock = clock
        self.sender_comp_id = sender_comp_id
        self._seen: dict[str, set[str]] = {t: set() for t in target_comp_ids}  # ClOrdIDs of this logon
        self.errors = 0
        self.sessions = {t: self._session(t) for t in target_comp_ids}

    def _session(self, key: str) -> FixSession:
        return FixSession(
            self.sender_comp_id,
            key,
            initiator=False,
            reset_on_logon=True,
            send_raw=lambda raw: self.transport.send(key, raw),
            now_ns=self.clock.now_ns,
            on_app=lambda msg: self._on_app(key, msg),
            on_state=lambda old, new: self._on_state(key, old, new),
            clock=self.clock.fix_clock,
            max_latency_s=120.0,
            reject_garbled=False,
            test_request_id="TEST",
        )

    # -- FixEndpoint ------------------------------------------------------------------------------
    def route(self, sender: str, target: str) -> str | None:
        return sender if sender in self.sessions and target == self.sender_comp_id else None

    def on_frame(self, key: str, raw: str) -> None:
        self.sessions[key].on_raw(raw)  # never raises

    def on_connection_lost(self, key: str, reason: str) -> None:
        self.sessions[key].disconnect(reason)

    # -- the owner's loop -------------------------------------------------------------------------
    def poll_session_timers(self) -> None:
        now = self.clock.now_ns()
        for session in self.sessions.values():
            due = session.next_timer_ns()
            if due is not None and now >= due:
                session.on_timer()

    def logged_on(self) -> list[str]:
        return [key for key, session in self.sessions.items() if session.is_logged_on]

    # -- the acceptance-test application ----------------------------------------------------------
    def _on_state(self, key: str, old: SessionState, new: SessionState) -> None:
        if new is SessionState.ACTIVE:
            log.info("%s logged on", key)
        elif new is SessionState.DISCONNECTED:
            log.info("%s disconnected: %s", key, self.sessions[key].last_disconnect_reason)
            self._seen[key].clear()
            self.transport.close(key)

    def _on_app(self, key: str, msg: Any) -> None:
        session = self.sessions[key]
        header = msg.getHeader()
        msg_type = header.getField(35)
        if msg_type == "D":
            cl = msg.getField(11) if msg.isSetField(11) else ""
            if header.isSetField(97) and header.getField(97) == "Y" and cl in self._seen[key]:
                return
            self._seen[key].add(cl)
            session.send_app(fix.Message(msg), keep_poss_resend=True)  # a copy, stamped with our header
        elif msg_type == "d":
            session.send_app(fix.Message(msg))
        else:
            session.business_reject(msg, 3, "Unsupported Message Type")
