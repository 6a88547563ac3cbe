"""The application of ``desksim serve --profile conformance``, on desksim's own session layer.

The settings and the behaviour of QuickFIX's FIX 4.4 acceptance tests: one acceptor session
SenderCompID ``ISLD`` <- TargetCompID ``TW44``, sequence numbers reset on every logon, FIX44.xml
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

__all__ = ["CONFORMANCE_SENDER", "CONFORMANCE_TARGET", "EchoEndpoint"]

log = logging.getLogger("desksim.serve")

CONFORMANCE_SENDER = "ISLD"
CONFORMANCE_TARGET = "TW44"


class EchoEndpoint:
    """One session ``ISLD <- TW44`` answering like the QuickFIX acceptance-test application."""

    def __init__(
        self,
        transport: FrameTransport,
        clock: SessionClock,
        sender_comp_id: str = CONFORMANCE_SENDER,
        target_comp_id: str = CONFORMANCE_TARGET,
    ) -> None:
        self.transport = transport
        self.clock = clock
        self.key = target_comp_id
        self._seen: set[str] = set()  # ClOrdIDs of this logon
        self.errors = 0
        self.session = FixSession(
            sender_comp_id,
            target_comp_id,
            initiator=False,
            reset_on_logon=True,
            send_raw=lambda raw: self.transport.send(self.key, raw),
            now_ns=clock.now_ns,
            on_app=self._on_app,
            on_state=self._on_state,
            clock=clock.fix_clock,
            max_latency_s=120.0,
            reject_garbled=False,
        )
        self.sessions = {self.key: self.session}

    # -- FixEndpoint ------------------------------------------------------------------------------
    def route(self, sender: str, target: str) -> str | None:
        s = self.session
        return self.key if sender == s.target_comp_id and target == s.sender_comp_id else None

    def on_frame(self, key: str, raw: str) -> None:
        self.session.on_raw(raw)  # never raises

    def on_connection_lost(self, key: str, reason: str) -> None:
        self.session.disconnect(reason)

    # -- the owner's loop -------------------------------------------------------------------------
    def poll_session_timers(self) -> None:
        due = self.session.next_timer_ns()
        if due is not None and self.clock.now_ns() >= due:
            self.session.on_timer()

    def logged_on(self) -> list[str]:
        return [self.key] if self.session.is_logged_on else []

    # -- the acceptance-test application ----------------------------------------------------------
    def _on_state(self, old: SessionState, new: SessionState) -> None:
        if new is SessionState.ACTIVE:
            log.info("%s logged on", self.key)
        elif new is SessionState.DISCONNECTED:
            log.info("%s disconnected: %s", self.key, self.session.last_disconnect_reason)
            self._seen.clear()
            self.transport.close(self.key)

    def _on_app(self, msg: Any) -> None:
        header = msg.getHeader()
        msg_type = header.getField(35)
        if msg_type == "D":
            cl = msg.getField(11) if msg.isSetField(11) else ""
            if header.isSetField(97) and header.getField(97) == "Y" and cl in self._seen:
                return
            self._seen.add(cl)
            self.session.send_app(fix.Message(msg))  # a copy, stamped with our header
        elif msg_type == "d":
            self.session.send_app(fix.Message(msg))
        else:
            self.session.business_reject(msg, 3, "Unsupported Message Type")
