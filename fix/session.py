"""FIX 4.4 session layer in simulated time, embedded in an actor.

``FixSession`` is one end of a FIX 4.4 session (initiator or acceptor). It is *not* an actor: the
owning actor carries raw FIX strings over the simulated network in ``FixFrame`` messages, feeds
received frames to ``on_raw``, timer ticks to ``on_timer`` and sends business messages with
``send_app``. Every message on the wire is a real SOH-delimited FIX string built and parsed by
``quickfix`` and validated on receipt against the FIX44.xml ``DataDictionary``.

Covered: Logon (35=A, HeartBtInt, ResetSeqNumFlag; a Logon with 141=Y while logged on resets
both sides), Heartbeat (0), TestRequest (1) after ``1.2 x HeartBtInt`` of silence and a disconnect
after a further ``1.2 x HeartBtInt`` (no Heartbeat while it is unanswered), ResendRequest (2) on a
gap (out-of-order messages are queued and processed in order once the gap is filled; one received
is honoured whatever its MsgSeqNum), resends from the message store with PossDupFlag=Y and
OrigSendingTime, SequenceReset-GapFill (4, 123=Y) over admin messages, SequenceReset-Reset,
too-low MsgSeqNum without PossDupFlag -> Logout + disconnect, PossDup duplicates ignored once
their OrigSendingTime is checked, session Reject (3) with RefSeqNum/RefTagID/RefMsgType/
SessionRejectReason, the standard Text and the routing fields reversed, a wrong CompID or
SendingTime -> Reject + Logout, Logout (5) handshake. Where the FIX specification leaves a choice
this follows quickfix's Session, so QuickFIX's acceptance definitions apply (README, serve).

Embedding (see ``tests/test_fix_session.py`` for a complete actor)::

    class Oms(Actor):
        def __init__(self, name):
            super().__init__(name)
            self.link_up = True
            self.session = FixSession(
                "DESK", "EXCH", initiator=True,
                send_raw=lambda raw: self.send(self.gw, FixFrame(raw)),
                now_ns=lambda: self.now,
                on_app=self.on_fix_app,
                set_timer=lambda t: self.wake_at(t, "fix"),
            )

        def on_start(self):
            self.gw = self.lookup("gateway")
            self.session.connect()

        @handles(FixFrame)
        def on_frame(self, msg, src):
            if self.link_up:               # frames are lost while the link is down
                self.session.on_raw(msg.raw)

        @handles(Wakeup)
        def on_wake(self, msg, src):
            if msg.tag == "fix":
                self.session.on_timer()

        @handles(FixLinkDown)
        def on_down(self, msg, src):
            self.link_up = False
            self.session.disconnect("link down")

        @handles(FixLinkUp)
        def on_up(self, msg, src):
            self.link_up = True
            self.session.connect()         # initiator: Logon with the next seq numbers

Without ``set_timer`` the owner polls ``next_timer_ns()`` and calls ``on_timer()`` when due.
"""

from __future__ import annotations

import datetime as _dt
import functools
import logging
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import quickfix as fix

from actors.messages import FixFrame, FixLinkDown, FixLinkUp
from fix.clock import DEFAULT_TRADING_DATE, FixClock
from fix.codec import Inbound, Prebuilt, flat_fields, structure_tags
from fix.transport import byte_sum
from sim.clock import SECOND

__all__ = [
    "BEGIN_STRING",
    "SESSION_DATE",
    "FixFrame",
    "FixLinkDown",
    "FixLinkUp",
    "FixSession",
    "SessionCounters",
    "SessionState",
    "default_data_dictionary",
    "utc_timestamp",
]

log = logging.getLogger(__name__)

BEGIN_STRING = "FIX.4.4"
SESSION_DATE = _dt.datetime.combine(DEFAULT_TRADING_DATE, _dt.time(), tzinfo=_dt.UTC)
"""Midnight UTC of the default trading date: simulated time 0 of a session built without a clock."""
_DEFAULT_CLOCK = FixClock()


_ADMIN_TYPES = frozenset({"0", "1", "2", "3", "4", "5", "A"})
_SEQNUM_RE = re.compile(r"(?:^|\x01)34=(\d{1,18})\x01")

# quickfix exception -> SessionRejectReason (373), as quickfix's own Session does.
_REJECT_REASONS: tuple[tuple[type[BaseException], int], ...] = (
    (fix.InvalidTagNumber, 0),
    (fix.RequiredTagMissing, 1),
    (fix.TagNotDefinedForMessage, 2),
    (fix.NoTagValue, 4),
    (fix.IncorrectTagValue, 5),
    (fix.IncorrectDataFormat, 6),
    (fix.InvalidMessageType, 11),
    (fix.RepeatedTag, 13),
    (fix.TagOutOfOrder, 14),
    (fix.RepeatingGroupCountMismatch, 16),
    (fix.FieldNotFound, 1),
    (fix.FieldConvertError, 6),
)
REASON_COMPID = 9
REASON_SENDING_TIME = 10
REASON_OTHER = 99
#: the Text (58) of a session Reject for each SessionRejectReason, as quickfix words it (what FIX
#: engineers and conformance suites expect); the offending tag is in RefTagID (371)
REJECT_TEXT: dict[int, str] = {
    0: "Invalid tag number",
    1: "Required tag missing",
    2: "Tag not defined for this message type",
    3: "Undefined Tag",
    4: "Tag specified without a value",
    5: "Value is incorrect (out of range) for this tag",
    6: "Incorrect data format for value",
    9: "CompID problem",
    10: "SendingTime accuracy problem",
    11: "Invalid MsgType",
    13: "Tag appears more than once",
    14: "Tag specified out of required order",
    15: "Repeating group fields out of order",
    16: "Incorrect NumInGroup count for repeating group",
}
#: routing fields a Reject carries back reversed: OnBehalfOf* of the message -> DeliverTo* of
#: the Reject and the other way round (CompID 115/128, SubID 116/129, LocationID 144/145)
REVERSE_ROUTE: tuple[tuple[int, int], ...] = ((115, 128), (128, 115), (116, 129), (129, 116), (144, 145), (145, 144))


# -- messages the owning actors exchange -------------------------------------------------------
class SessionState(StrEnum):
    DISCONNECTED = "disconnected"
    AWAITING_LOGON = "awaiting_logon"  # acceptor: transport up, waiting for the peer's Logon
    LOGON_SENT = "logon_sent"  # initiator: Logon sent, waiting for the answer
    ACTIVE = "active"  # logged on
    LOGOUT_SENT = "logout_sent"  # Logout sent, waiting for the peer's Logout


@dataclass(slots=True)
class SessionCounters:
    sent: int = 0  # frames handed to send_raw (including resends and gap fills)
    received: int = 0  # frames parsed (not garbled, not dropped while disconnected)
    app_sent: int = 0  # business messages stamped by send_app (also while disconnected)
    app_received: int = 0  # business messages delivered to on_app
    resent: int = 0  # business messages resent with PossDupFlag=Y
    gap_fills: int = 0  # SequenceReset-GapFill sent
    resend_requests: int = 0  # ResendRequest sent
    test_requests: int = 0  # TestRequest sent
    heartbeats: int = 0  # Heartbeat sent
    rejects: int = 0  # session Reject (3) sent
    rejects_received: int = 0  # session Reject (3) received
    business_rejects: int = 0  # BusinessMessageReject (j) sent by the session
    duplicates: int = 0  # PossDup messages with an already processed seq, ignored
    garbled: int = 0  # frames that did not parse (checksum, body length, syntax)
    dropped: int = 0  # frames received while disconnected
    queued: int = 0  # messages held because of a sequence gap
    disconnects: int = 0
    app_errors: int = 0  # exceptions raised by on_app (logged, swallowed)
    errors: int = 0  # internal errors caught in on_raw (should stay 0)


# -- helpers -----------------------------------------------------------------------------------
def _default_dd_path() -> str:
    return str(Path(sys.prefix) / "share" / "quickfix" / "FIX44.xml")


@functools.cache
def default_data_dictionary() -> fix.DataDictionary:
    """The FIX44.xml DataDictionary shipped with the quickfix install (loaded once)."""
    return fix.DataDictionary(_default_dd_path())


def utc_timestamp(t_ns: int, precision: int = 3) -> str:
    """FIX UTCTimestamp of simulated time ``t_ns`` on the default trading date (``FixClock()``)."""
    return _DEFAULT_CLOCK.timestamp(t_ns, precision)


def _reject_reason(exc: BaseException) -> int:
    for klass, reason in _REJECT_REASONS:
        if isinstance(exc, klass):
            return reason
    return REASON_OTHER


def _exc_field(exc: BaseException) -> int:
    try:
        return int(getattr(exc, "field", 0) or 0)
    except (TypeError, ValueError):
        return 0


def _get(fmap: Any, tag: int) -> str | None:
    """A field of a quickfix FieldMap (message, header) as a string, or None."""
    return fmap.getField(tag) if fmap.isSetField(tag) else None


def _printable(text: str, limit: int = 200) -> str:
    """Text safe for a STRING field: printable ASCII only (an SOH echoed from a garbled frame
    would garble our own Reject and start a reject ping-pong)."""
    return "".join(c if " " <= c <= "~" else "?" for c in text[:limit])


_UNDECODABLE_RE = re.compile("[\udc80-\udcff]")


def _undecodable_tag(raw: str, msg: fix.Message, dd: fix.DataDictionary) -> int:
    """For a frame holding bytes that are not UTF-8 (lone surrogates from ``surrogateescape``,
    which quickfix's Python binding cannot take): parse it with each such byte read as ``?`` into
    ``msg`` and return the tag of the first field concerned; 0 when that is not possible (a
    tag itself is not UTF-8, or the frame does not parse either way). The byte count is kept, and
    BodyLength and CheckSum were checked by the transport on the bytes as received."""
    match = _UNDECODABLE_RE.search(raw)
    if match is None:
        return 0
    start = raw.rfind("\x01", 0, match.start()) + 1
    tag = raw[start : raw.find("=", start)]
    if not tag.isdigit() or len(tag) > 9:
        return 0
    try:
        msg.setString(_UNDECODABLE_RE.sub("?", raw), False, dd)
    except Exception:
        return 0
    return int(tag)


@functools.lru_cache(maxsize=1024)  # the frames of one millisecond carry the same SendingTime
def _utc_ns(text: str) -> int | None:
    """ns since the Unix epoch of a UTCTimestamp ``YYYYMMDD-HH:MM:SS[.fff...]`` (None if malformed)."""
    if len(text) < 17 or text[8] != "-" or text[11] != ":" or text[14] != ":":
        return None
    second = _utc_second_ns(text[:17])
    if second is None:
        return None
    try:
        frac = text[18:] if len(text) > 18 and text[17] == "." else ""
        ns = int(frac.ljust(9, "0")[:9]) if frac else 0
    except ValueError:
        return None
    return second + ns


@functools.lru_cache(maxsize=256)
def _utc_second_ns(text: str) -> int | None:
    """ns since the Unix epoch of ``YYYYMMDD-HH:MM:SS`` (None if malformed); every frame of a
    second has the same, so it is parsed once."""
    try:
        day = _dt.date(int(text[0:4]), int(text[4:6]), int(text[6:8]))
        secs = int(text[9:11]) * 3600 + int(text[12:14]) * 60 + int(text[15:17])
    except ValueError:
        return None
    return (day.toordinal() - _EPOCH_ORDINAL) * 86_400 * SECOND + secs * SECOND


_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()


_HEADER_TAGS = frozenset(
    {"8", "9", "34", "35", "43", "49", "52", "56", "97", "115", "116", "122", "128", "129", "144", "145"}
)


class _FieldView:
    """``get("tag")`` through the quickfix getters (header or body, as ``flat`` would give it),
    for a received message without a flat view."""

    __slots__ = ("_header", "_msg")

    def __init__(self, msg: fix.Message) -> None:
        self._msg = msg
        self._header = msg.getHeader()

    def get(self, tag: str) -> str | None:
        return _get(self._header if tag in _HEADER_TAGS else self._msg, int(tag))


def _fields_of(msg: fix.Message) -> Callable[[str], str | None]:
    """``field("tag")`` of a received message: its flat view when it has one, else the getters."""
    flat = getattr(msg, "flat", None)
    return flat.get if flat is not None else _FieldView(msg).get


def _route(field: Callable[[str], str | None]) -> list[tuple[int, str]]:
    """The header routing fields of a Reject to a message, reversed (REVERSE_ROUTE); empty
    values are not carried back."""
    return [(back, value) for tag, back in REVERSE_ROUTE if (value := field(str(tag)))]


class _Fatal(Exception):
    """Internal: stop processing the current frame."""


# -- the session -------------------------------------------------------------------------------
class FixSession:
    """One end of a FIX 4.4 session in simulated time. See the module docstring."""

    def __init__(
        self,
        sender_comp_id: str,
        target_comp_id: str,
        *,
        send_raw: Callable[[str], None],
        now_ns: Callable[[], int],
        on_app: Callable[[fix.Message], None],
        initiator: bool,
        heartbeat_s: int = 30,
        reset_on_logon: bool = False,
        data_dictionary: fix.DataDictionary | str | None = None,
        on_state: Callable[[SessionState, SessionState], None] | None = None,
        on_admin: Callable[[fix.Message], None] | None = None,
        set_timer: Callable[[int], None] | None = None,
        validate: bool = True,
        reject_garbled: bool = True,
        logon_timeout_s: float = 10.0,
        logout_timeout_s: float = 2.0,
        time_precision: int = 3,
        clock: FixClock | None = None,
        max_latency_s: float | None = None,
        test_request_id: str | None = None,
    ) -> None:
        self.sender_comp_id = sender_comp_id
        self.target_comp_id = target_comp_id
        self.initiator = initiator
        self.heartbeat_s = int(heartbeat_s)
        self.reset_on_logon = reset_on_logon
        # received frames are also read once as {tag: value} (fix.codec.flat_fields) where the
        # dictionary is known by its file; for a DataDictionary object only the quickfix getters
        dd_path: str | None = None
        if data_dictionary is None:
            data_dictionary = default_data_dictionary()
            dd_path = _default_dd_path()
        elif isinstance(data_dictionary, str):
            dd_path = data_dictionary
            data_dictionary = fix.DataDictionary(data_dictionary)
        self.dd: fix.DataDictionary = data_dictionary
        self._structure = structure_tags(dd_path) if dd_path is not None else None
        self.validate = validate
        self.reject_garbled = reject_garbled
        self.logon_timeout_ns = int(logon_timeout_s * SECOND)
        self.logout_timeout_ns = int(logout_timeout_s * SECOND)
        self.time_precision = time_precision
        # SendingTime further than this from our clock: Reject (373=10) + Logout, as quickfix's
        # CheckLatency/MaxLatency (for a peer on the wall clock; None: not checked)
        self.max_latency_ns = None if max_latency_s is None else int(max_latency_s * SECOND)
        # TestReqID of our TestRequests: None numbers them (TEST1, TEST2, ...); quickfix sends "TEST"
        self.test_request_id = test_request_id
        self.clock = clock if clock is not None else _DEFAULT_CLOCK  # simulated time -> SendingTime
        self._send_raw = send_raw
        # the CompID fields of a frame _frame builds, around SendingTime
        self._frame_ids = (f"\x0149={sender_comp_id}\x0152=", f"\x0156={target_comp_id}\x01")
        self._now = now_ns
        self._on_app = on_app
        self._on_state = on_state
        self._on_admin = on_admin
        self._set_timer = set_timer

        self.state = SessionState.DISCONNECTED
        self.next_out_seq = 1  # MsgSeqNum of the next message we send
        self.next_in_seq = 1  # MsgSeqNum we expect next from the peer
        self.counters = SessionCounters()
        self.last_error: BaseException | None = None
        self.last_disconnect_reason = ""
        self.last_logout_text = ""

        self._store: dict[int, str] = {}  # seq -> raw business message as first sent
        self._queue: dict[int, tuple[fix.Message, str, bool]] = {}  # seq -> (msg, type, consume only)
        self._unsent: list[int] = []  # stamped after our Logon left, sent once logged on
        self._logon_seq = 0  # MsgSeqNum of our last Logon
        self._last_sent_ns = 0
        self._last_recv_ns = 0
        self._test_req_pending = False
        self._test_req_sent_ns = 0
        self._test_req_n = 0
        self._resend_until = 0  # a ResendRequest is outstanding until next_in_seq passes this
        self._resend_sent_ns = 0
        self._deadline_ns = 0  # logon / logout timeout
        self._armed: int | None = None
        self._undecodable: dict[int, int] = {}  # seq -> first tag whose value is not UTF-8
        self._logout_why = ""  # why we sent the Logout we wait on (a CompID problem, ...)

    # -- properties -----------------------------------------------------------------------------
    @property
    def heartbeat_ns(self) -> int:
        return self.heartbeat_s * SECOND

    @property
    def is_logged_on(self) -> bool:
        return self.state is SessionState.ACTIVE

    @property
    def store_size(self) -> int:
        return len(self._store)

    # -- owner API ------------------------------------------------------------------------------
    def connect(self) -> None:
        """Transport up. The initiator sends Logon (next seq numbers, or 1 with ResetSeqNumFlag
        when ``reset_on_logon``); the acceptor waits for the peer's Logon."""
        if self.state is not SessionState.DISCONNECTED:
            return
        if self.initiator:
            if self.reset_on_logon:
                self._reset_sequences()
            self._set_state(SessionState.LOGON_SENT)
            self._deadline_ns = self._now() + self.logon_timeout_ns
            self._send_logon(reset=self.reset_on_logon)
        else:
            self._set_state(SessionState.AWAITING_LOGON)
        self._arm()

    def disconnect(self, reason: str = "disconnect") -> None:
        """Transport down: no frames go out, the gap queue is cleared; the store is kept."""
        if self.state is SessionState.DISCONNECTED:
            return
        self.counters.disconnects += 1
        self.last_disconnect_reason = reason
        self._queue.clear()
        self._unsent.clear()
        self._undecodable.clear()
        self._test_req_pending = False
        self._resend_until = 0
        self._set_state(SessionState.DISCONNECTED)

    def logout(self, text: str = "") -> None:
        """Start the Logout handshake (disconnects when the peer answers or after a timeout)."""
        if self.state is SessionState.ACTIVE:
            text = _printable(text)
            self._send_admin("5", [(58, text)] if text else [])
            self._deadline_ns = self._now() + self.logout_timeout_ns
            self._set_state(SessionState.LOGOUT_SENT)
            self._arm()
        else:
            self.disconnect(text or "logout")

    def send_app(self, msg: fix.Message, keep_poss_resend: bool = False) -> int:
        """Stamp the header of a business message (in place), store it for resend and send it
        if logged on. Returns its MsgSeqNum; while disconnected the message is only stored and
        reaches the peer by resend after the next logon. PossDupFlag and OrigSendingTime are
        always cleared, PossResend (97) too unless ``keep_poss_resend``."""
        body = msg.body if isinstance(msg, Prebuilt) else None
        if body is not None and msg.msg_type not in _ADMIN_TYPES and body.isascii():
            # built by the codec as one string (an ExecutionReport): framed here, byte for byte
            # what quickfix writes, and the message stamped in place by one parse
            seq = self.next_out_seq
            self.next_out_seq += 1
            raw = self._frame(msg.msg_type, seq, body)
            msg.stamp(raw)  # stamped in place, read into the header when next read; keeps msg.body
        else:
            header = msg.getHeader()
            mtype = _get(header, 35)
            if not mtype:
                raise ValueError("send_app: message has no MsgType (35)")
            if mtype in _ADMIN_TYPES:
                raise ValueError(f"send_app: {mtype!r} is a session-level message type")
            for tag in (43, 122) if keep_poss_resend else (43, 97, 122):  # a fresh send is no duplicate
                if header.isSetField(tag):
                    header.removeField(tag)
            seq = self.next_out_seq
            self.next_out_seq += 1
            raw = self._stamp(msg, seq)
        self._store[seq] = raw
        self.counters.app_sent += 1
        if self.state is SessionState.ACTIVE:
            self._transmit(raw)
        elif self.state is SessionState.LOGON_SENT:
            self._unsent.append(seq)
        self._arm()
        return seq

    def business_reject(self, ref: fix.Message, reason: int, text: str = "", ref_id: str = "") -> int:
        """Send a BusinessMessageReject (j) referring to the received message ``ref``."""
        header = ref.getHeader()
        msg = fix.Message()
        msg.getHeader().setField(35, "j")
        msg.setField(45, _get(header, 34) or "0")
        msg.setField(372, _get(header, 35) or "?")
        if ref_id:
            msg.setField(379, ref_id)
        msg.setField(380, str(int(reason)))
        text = _printable(text)
        if text:
            msg.setField(58, text)
        self.counters.business_rejects += 1
        return self.send_app(msg)

    def send_resend_request(self, begin: int, end: int = 0) -> None:
        """Ask the peer to resend ``begin..end`` (0 = everything after ``begin``)."""
        if self.state is SessionState.ACTIVE:
            self._send_admin("2", [(7, str(begin)), (16, str(end))])
            self.counters.resend_requests += 1
            self._arm()

    def send_sequence_reset(self, new_seq_no: int) -> None:
        """SequenceReset-Reset: the peer's next expected MsgSeqNum becomes ``new_seq_no``."""
        if self.state is SessionState.ACTIVE and new_seq_no > self.next_out_seq:
            msg = self._admin("4", [(36, str(new_seq_no))])
            self._transmit(self._stamp(msg, self.next_out_seq))
            self.next_out_seq = new_seq_no
            self._arm()

    def next_timer_ns(self) -> int | None:
        """When ``on_timer`` must next be called (None: no timer needed)."""
        state = self.state
        if state is SessionState.LOGON_SENT or state is SessionState.LOGOUT_SENT:
            return self._deadline_ns
        if state is not SessionState.ACTIVE or self.heartbeat_s <= 0:
            return None
        hb = self.heartbeat_ns
        grace = hb + hb // 5
        if self._test_req_pending:  # no Heartbeat while a TestRequest is unanswered (quickfix)
            due = self._test_req_sent_ns + grace
        else:
            due = min(self._last_sent_ns + hb, self._last_recv_ns + grace)
        if self._resend_until:
            due = min(due, self._resend_sent_ns + hb)
        return due

    def on_timer(self) -> None:
        """Timer tick: heartbeats, TestRequest, silence/logon/logout timeouts, resend retry."""
        try:
            now = self._now()
            if self._armed is not None and now >= self._armed:
                self._armed = None
            state = self.state
            if state is SessionState.LOGON_SENT and now >= self._deadline_ns:
                self.disconnect("logon timeout")
            elif state is SessionState.LOGOUT_SENT and now >= self._deadline_ns:
                self.disconnect(self._logout_reason("logout timeout"))
            elif state is SessionState.ACTIVE and self.heartbeat_s > 0:
                hb = self.heartbeat_ns
                grace = hb + hb // 5
                if self._test_req_pending and now >= self._test_req_sent_ns + grace:
                    self.disconnect("peer silent: TestRequest unanswered")
                    return
                if not self._test_req_pending and now >= self._last_recv_ns + grace:
                    self._test_req_n += 1
                    self._send_admin("1", [(112, self.test_request_id or f"TEST{self._test_req_n}")])
                    self.counters.test_requests += 1
                    self._test_req_pending = True
                    self._test_req_sent_ns = now
                if not self._test_req_pending and now >= self._last_sent_ns + hb:
                    self._send_admin("0", [])
                    self.counters.heartbeats += 1
                if self._resend_until and now >= self._resend_sent_ns + hb:
                    self._request_resend()  # the request or its answer was lost: ask again
        finally:
            self._arm()

    def on_raw(self, raw: str) -> None:
        """Feed one received frame. Never raises."""
        try:
            self._on_raw(raw)
        except _Fatal:
            pass
        except Exception as exc:  # a bug here must not take the owning actor down
            self.counters.errors += 1
            self.last_error = exc
            log.exception("%s->%s: error handling a frame", self.target_comp_id, self.sender_comp_id)
        finally:
            try:
                self._arm()
            except Exception as exc:
                self.counters.errors += 1
                self.last_error = exc

    # -- receiving ------------------------------------------------------------------------------
    def _on_raw(self, raw: str) -> None:
        state = self.state
        if state is SessionState.DISCONNECTED and (self.initiator or "\x0135=A\x01" not in raw):
            self.counters.dropped += 1
            return
        msg = Inbound()
        bad_tag = 0
        try:
            msg.setString(raw, True, self.dd)
        except Exception as exc:
            bad_tag = _undecodable_tag(raw, msg, self.dd)  # a TCP peer's bytes that are not UTF-8
            if not bad_tag:
                if not self.initiator and state in (SessionState.DISCONNECTED, SessionState.AWAITING_LOGON):
                    self._refuse_logon(f"invalid Logon ({exc})")  # quickfix: the connection is dropped
                    return
                self._garbled(raw, f"garbled frame ignored ({exc})")
                return
        # the fields are read from the frame once (not through a SWIG call per tag) when that
        # is exactly what quickfix parsed: no repeating group, raw data or repeated tag
        flat = None if bad_tag or self._structure is None else flat_fields(raw, self._structure)
        msg.flat = flat
        field = flat.get if flat is not None else _FieldView(msg).get
        mtype = field("35") or ""
        begin = field("8")
        if begin != BEGIN_STRING:
            if state is SessionState.ACTIVE or state is SessionState.LOGOUT_SENT:
                self._logout_and_wait("Incorrect BeginString")
            self._refuse_logon(f"Incorrect BeginString {begin}")
        seq_text = field("34")
        if seq_text is None or not seq_text.isdigit():
            reason = 1 if seq_text is None else 6
            self._garbled(raw, "MsgSeqNum (34) missing or not a number", ref_tag=34, reason=reason)
            return
        seq = int(seq_text)
        if bad_tag:
            self._undecodable[seq] = bad_tag  # answered by a Reject (373=6) when processed
        self.counters.received += 1
        now = self._now()
        self._last_recv_ns = now
        self._test_req_pending = False
        if state is SessionState.DISCONNECTED:  # acceptor: a new transport carrying a Logon
            self._set_state(SessionState.AWAITING_LOGON)
            state = self.state
        # a CompID or SendingTime that is missing or empty is the dictionary's Reject (373=1/4),
        # given when the message is processed; a wrong one is a Reject, a Logout and, once the
        # peer answers it, the end of the session (quickfix's doBadCompID / doBadTime); a Logon
        # with either wrong is not answered: the connection is dropped
        sender, target = field("49"), field("56")
        if sender and target and (sender != self.target_comp_id or target != self.sender_comp_id):
            self._bad_header(seq, mtype, REASON_COMPID, field)
        sending_time = field("52")
        if self.max_latency_ns is not None and sending_time and not self._good_time(sending_time):
            self._bad_header(seq, mtype, REASON_SENDING_TIME, field)
        if state is SessionState.AWAITING_LOGON or state is SessionState.LOGON_SENT:
            if mtype != "A":
                self.disconnect(f"first message was 35={mtype}, not Logon")
                return
            self._on_logon(msg, seq)
            return
        poss_dup = field("43") == "Y"
        if mtype == "4" and field("123") != "Y":
            self._on_sequence_reset(msg, seq)
            return
        if mtype == "5":
            self._on_logout(msg, seq)
            return
        consume_only = False
        if mtype == "2" and self._valid(msg, seq, mtype, reject=False):
            self._on_resend_request(msg)  # honoured at once, across our own gap, whatever its seq
            if seq < self.next_in_seq:
                return  # as quickfix: a ResendRequest's MsgSeqNum is not checked for too low
            consume_only = True
        elif mtype == "A":
            if field("141") == "Y":  # a reset while logged on: both sides restart at 1
                self._on_logon(msg, seq)
                return
            consume_only = True  # a second Logon while logged on: take its seq, nothing else
        self._sequenced(msg, seq, mtype, poss_dup, consume_only)

    def _sequenced(self, msg: fix.Message, seq: int, mtype: str, poss_dup: bool, consume_only: bool) -> None:
        expected = self.next_in_seq
        if seq == expected:
            self._process(msg, seq, mtype, consume_only)
            self._drain()
        elif seq > expected:
            if seq not in self._queue:
                self._queue[seq] = (msg, mtype, consume_only)
                self.counters.queued += 1
            if not self._resend_until:
                self._request_resend()
            self._resend_until = max(self._resend_until, seq)
        elif poss_dup:
            self._possible_duplicate(msg, seq, mtype)
        else:
            self._fatal_logout(f"MsgSeqNum too low, expecting {expected} but received {seq}")

    def _possible_duplicate(self, msg: fix.Message, seq: int, mtype: str) -> None:
        """A PossDup message below the expected MsgSeqNum: ignored as already processed, once its
        OrigSendingTime is checked (missing: Reject 373=1; later than SendingTime: Reject 373=10
        and Logout), as quickfix's doPossDup."""
        self.counters.duplicates += 1
        if mtype == "4":
            return
        field = _fields_of(msg)
        orig = field("122")
        if not orig:
            self._reject(seq, mtype, 1, 122, route=_route(field))
            return
        orig_ns, sent_ns = _utc_ns(orig), _utc_ns(field("52") or "")
        if orig_ns is not None and sent_ns is not None and orig_ns > sent_ns:
            self._bad_header(seq, mtype, REASON_SENDING_TIME, field)

    def _drain(self) -> None:
        queue = self._queue
        while queue and self.state in (SessionState.ACTIVE, SessionState.LOGOUT_SENT):
            entry = queue.pop(self.next_in_seq, None)
            if entry is None:
                break
            msg, mtype, consume_only = entry
            self._process(msg, self.next_in_seq, mtype, consume_only)
        if queue:
            for seq in [s for s in queue if s < self.next_in_seq]:
                del queue[seq]
        if self._resend_until and self.next_in_seq > self._resend_until:
            self._resend_until = 0

    def _process(self, msg: fix.Message, seq: int, mtype: str, consume_only: bool) -> None:
        """Handle the in-order message ``seq`` (== next_in_seq) and advance next_in_seq."""
        self.next_in_seq = seq + 1
        if consume_only:
            return
        if self._undecodable:
            bad_tag = self._undecodable.pop(seq, 0)
            if bad_tag:
                self._reject(seq, mtype, 6, bad_tag, f"Incorrect data format for value: tag {bad_tag} is not UTF-8")
                return
        field = _fields_of(msg)
        if field("43") == "Y" and field("122") is None and mtype != "4":
            self._reject(seq, mtype, 1, 122, route=_route(field))
            return
        if not self._valid(msg, seq, mtype):
            return
        if mtype in _ADMIN_TYPES:
            if mtype == "0":
                pass
            elif mtype == "1":
                self._send_admin("0", [(112, msg.getField(112))])
                self.counters.heartbeats += 1
            elif mtype == "3":
                self.counters.rejects_received += 1
            elif mtype == "4":  # GapFill
                new_seq = int(msg.getField(36))
                if new_seq > seq:
                    self.next_in_seq = new_seq
                else:
                    self._reject(seq, mtype, 5, 36, f"NewSeqNo {new_seq} not above MsgSeqNum {seq}")
                    return
            self._notify_admin(msg)
            return
        self.counters.app_received += 1
        try:
            self._on_app(msg)
        except fix.UnsupportedMessageType:
            self.business_reject(msg, 3, f"Unsupported message type {mtype}")
        except (
            fix.FieldNotFound,
            fix.IncorrectTagValue,
            fix.IncorrectDataFormat,
            fix.RequiredTagMissing,
            fix.FieldConvertError,
        ) as exc:
            self._reject(seq, mtype, _reject_reason(exc), _exc_field(exc), str(exc), _route(field))
        except Exception as exc:
            self.counters.app_errors += 1
            self.last_error = exc
            log.exception("%s: on_app raised on 35=%s seq %d", self.sender_comp_id, mtype, seq)

    def _valid(self, msg: fix.Message, seq: int, mtype: str, reject: bool = True) -> bool:
        if not self.validate:
            return True
        try:
            self.dd.validate(msg)
        except Exception as exc:
            if reject:
                text = str(exc) or type(exc).__name__
                self._reject(seq, mtype, _reject_reason(exc), _exc_field(exc), text, _route(_fields_of(msg)))
            return False
        return True

    def _good_time(self, sending_time: str | None) -> bool:
        t = _utc_ns(sending_time) if sending_time else None
        if t is None:
            return False
        assert self.max_latency_ns is not None
        return abs(t - self.clock.epoch_ns(self._now())) <= self.max_latency_ns

    def _on_logon(self, msg: fix.Message, seq: int) -> None:
        if not self._valid(msg, seq, "A", reject=False):
            self._fatal_logout("Invalid Logon message")
        hb_text = _get(msg, 108) or "0"
        if not self.initiator:
            self.heartbeat_s = int(hb_text)  # the acceptor adopts the initiator's interval
        reset = _get(msg, 141) == "Y"
        if reset:
            if not self.initiator:  # the peer asks for a reset: both directions restart at 1
                self._reset_sequences()
            self.next_in_seq = 1
        elif not self.initiator and self.reset_on_logon:
            # our own ResetOnLogon restarts both directions at 1 without telling the peer: the
            # answer carries ResetSeqNumFlag only when the peer's Logon asked for the reset
            self._reset_sequences()
        if seq < self.next_in_seq:
            self._fatal_logout(f"MsgSeqNum too low, expecting {self.next_in_seq} but received {seq}")
        if not self.initiator:
            self._send_logon(reset=reset)
        now = self._now()
        self._last_recv_ns = self._last_sent_ns = now
        self._set_state(SessionState.ACTIVE)
        for out_seq in self._unsent:
            raw = self._store.get(out_seq)
            if raw is not None:
                self._transmit(raw)
        self._unsent.clear()
        self._notify_admin(msg)
        self._sequenced(msg, seq, "A", False, consume_only=True)

    def _on_logout(self, msg: fix.Message, seq: int) -> None:
        self.last_logout_text = _get(msg, 58) or ""
        if seq == self.next_in_seq:
            self.next_in_seq += 1
        self._notify_admin(msg)
        if self.state is SessionState.LOGOUT_SENT:
            self.disconnect(self._logout_reason("logout complete"))
        else:
            self._send_admin("5", [])
            self.disconnect(f"peer logged out: {self.last_logout_text}" if self.last_logout_text else "peer logged out")

    def _on_sequence_reset(self, msg: fix.Message, seq: int) -> None:
        """SequenceReset-Reset: MsgSeqNum is ignored; NewSeqNo may only move forward."""
        if not self._valid(msg, seq, "4"):
            return
        new_seq = int(msg.getField(36))
        if new_seq < self.next_in_seq:
            self._reject(seq, "4", 5, 0, f"NewSeqNo {new_seq} below expected {self.next_in_seq}")
            return
        self.next_in_seq = new_seq
        self._drain()

    def _on_resend_request(self, msg: fix.Message) -> None:
        begin = int(msg.getField(7))
        end = int(msg.getField(16))
        last = self.next_out_seq - 1
        if end == 0 or end > last:
            end = last
        begin = max(begin, 1)
        gap_start = 0
        store = self._store
        for seq in range(begin, end + 1):
            raw = store.get(seq)
            if raw is None:
                if not gap_start:
                    gap_start = seq
                continue
            if gap_start:
                self._send_gap_fill(gap_start, seq)
                gap_start = 0
            self._resend(raw)
        if gap_start:
            self._send_gap_fill(gap_start, end + 1)

    # -- sending --------------------------------------------------------------------------------
    def _stamp(self, msg: fix.Message, seq: int, sending_time: str | None = None) -> str:
        header = msg.getHeader()
        header.setField(8, BEGIN_STRING)
        header.setField(49, self.sender_comp_id)
        header.setField(56, self.target_comp_id)
        header.setField(34, str(seq))
        header.setField(52, sending_time or self.clock.timestamp(self._now(), self.time_precision))
        return msg.toString()

    def _frame(self, mtype: str, seq: int, body: str) -> str:
        """The frame ``_stamp`` makes of a message of type ``mtype`` whose body (ASCII, ascending
        tags, SOH-terminated) is ``body`` and whose header holds nothing else: the fields in
        quickfix's order (8, 9, 35, then the header by tag number), BodyLength and CheckSum."""
        sending_time = self.clock.timestamp(self._now(), self.time_precision)
        sender, target = self._frame_ids
        rest = f"35={mtype}\x0134={seq}{sender}{sending_time}{target}{body}"
        data = rest.encode()
        head = f"8={BEGIN_STRING}\x019={len(data)}\x01"
        checksum = (byte_sum(head.encode()) + byte_sum(data)) & 255
        return f"{head}{rest}10={checksum:03d}\x01"

    def _transmit(self, raw: str) -> None:
        if self.state is SessionState.DISCONNECTED:
            return
        self.counters.sent += 1
        self._last_sent_ns = self._now()
        self._send_raw(raw)

    @staticmethod
    def _admin(mtype: str, fields: list[tuple[int, str]], header: Sequence[tuple[int, str]] = ()) -> fix.Message:
        """A session message of type ``mtype``: ``fields`` in the body, ``header`` fields beside
        the ones ``_stamp`` sets."""
        msg = fix.Message()
        head = msg.getHeader()
        head.setField(35, mtype)
        for tag, value in header:
            head.setField(tag, value)
        for tag, value in fields:
            msg.setField(tag, value)
        return msg

    def _send_admin(self, mtype: str, fields: list[tuple[int, str]], header: Sequence[tuple[int, str]] = ()) -> int:
        seq = self.next_out_seq
        self.next_out_seq += 1
        self._transmit(self._stamp(self._admin(mtype, fields, header), seq))
        return seq

    def _send_logon(self, reset: bool) -> None:
        fields = [(98, "0"), (108, str(self.heartbeat_s))]
        if reset:
            fields.append((141, "Y"))
        self._logon_seq = self._send_admin("A", fields)

    def _send_gap_fill(self, seq: int, new_seq: int) -> None:
        now = self.clock.timestamp(self._now(), self.time_precision)
        msg = self._admin("4", [(123, "Y"), (36, str(new_seq))], [(43, "Y"), (122, now)])
        self._transmit(self._stamp(msg, seq, now))
        self.counters.gap_fills += 1

    def _resend(self, raw: str) -> None:
        msg = fix.Message()
        msg.setString(raw, False, self.dd)
        header = msg.getHeader()
        header.setField(43, "Y")
        header.setField(122, header.getField(52))
        header.setField(52, self.clock.timestamp(self._now(), self.time_precision))
        self._transmit(msg.toString())
        self.counters.resent += 1

    def _request_resend(self) -> None:
        self._send_admin("2", [(7, str(self.next_in_seq)), (16, "0")])
        self.counters.resend_requests += 1
        self._resend_sent_ns = self._now()
        if not self._resend_until:
            self._resend_until = self.next_in_seq

    def _reject(
        self,
        ref_seq: int,
        ref_type: str,
        reason: int,
        ref_tag: int = 0,
        text: str = "",
        route: list[tuple[int, str]] | None = None,
    ) -> None:
        """Session Reject (3): RefSeqNum, RefTagID (when known), RefMsgType, the reason and its
        Text as quickfix words it (``text``, our own detail, goes to the log only when the reason
        has a standard wording); ``route``: the reversed routing fields for its header."""
        if self.state is not SessionState.ACTIVE and self.state is not SessionState.LOGOUT_SENT:
            return
        fields = [(45, str(ref_seq))]
        if ref_tag or reason == 0:
            fields.append((371, str(ref_tag)))
        if ref_type and ref_type == _printable(ref_type):
            fields.append((372, ref_type))
        fields.append((373, str(reason)))
        standard = REJECT_TEXT.get(reason)
        if standard is not None and text and text != standard:
            log.debug("%s: Reject of %s seq %d: %s", self.sender_comp_id, ref_type, ref_seq, text)
        text = _printable(standard or text)
        if text:
            fields.append((58, text))
        self._send_admin("3", fields, route or ())
        self.counters.rejects += 1

    def _bad_header(self, seq: int, mtype: str, reason: int, field: Callable[[str], str | None]) -> None:
        """A wrong CompID or SendingTime: Reject + Logout while logged on (the session ends when
        the peer answers the Logout, or at its timeout); the Logon is not answered."""
        if self.state is SessionState.ACTIVE or self.state is SessionState.LOGOUT_SENT:
            self._reject(seq, mtype, reason, route=_route(field))
            self._logout_and_wait("", why=REJECT_TEXT[reason])
        self._refuse_logon(REJECT_TEXT[reason])

    def _logout_and_wait(self, text: str, why: str = "") -> None:
        """Send Logout (Text ``text`` if any) and stop handling this frame; the session ends when
        the peer's Logout arrives or after ``logout_timeout_s`` (``why`` goes into the reason)."""
        self._logout_why = why or text
        if self.state is SessionState.ACTIVE:
            text = _printable(text)
            self._send_admin("5", [(58, text)] if text else [])
            self._deadline_ns = self._now() + self.logout_timeout_ns
            self._set_state(SessionState.LOGOUT_SENT)
        raise _Fatal(text or "logout")

    def _logout_reason(self, ending: str) -> str:
        """How the Logout we waited on ended (``ending``), with why we sent it, once."""
        why, self._logout_why = self._logout_why, ""
        return f"{ending} ({why})" if why else ending

    def _refuse_logon(self, reason: str) -> None:
        """Drop the connection without a word (quickfix does not answer a Logon it refuses)."""
        if self.state is SessionState.DISCONNECTED:
            self._set_state(SessionState.AWAITING_LOGON)  # so the owner sees the drop and closes
        self.disconnect(reason)
        raise _Fatal(reason)

    def _garbled(self, raw: str, text: str, ref_tag: int = 0, reason: int = REASON_OTHER) -> None:
        """A frame we cannot trust: counted, answered with a Reject if asked; MsgSeqNum is not
        consumed, so a real message garbled in transit is recovered by the next gap's resend."""
        self.counters.garbled += 1
        if self.reject_garbled:
            match = _SEQNUM_RE.search(raw)
            self._reject(int(match.group(1)) if match else 0, "", reason, ref_tag, text)

    def _fatal_logout(self, text: str) -> None:
        text = _printable(text)
        if self.state is not SessionState.DISCONNECTED:
            self._send_admin("5", [(58, text)])
        self.disconnect(text)
        raise _Fatal(text)

    # -- internals ------------------------------------------------------------------------------
    def _reset_sequences(self) -> None:
        self.next_out_seq = 1
        self.next_in_seq = 1
        self._store.clear()
        self._queue.clear()
        self._unsent.clear()
        self._resend_until = 0

    def _notify_admin(self, msg: fix.Message) -> None:
        if self._on_admin is None:
            return
        try:
            self._on_admin(msg)
        except Exception as exc:
            self.counters.app_errors += 1
            self.last_error = exc
            log.exception("%s: on_admin raised", self.sender_comp_id)

    def _set_state(self, new: SessionState) -> None:
        old = self.state
        if old is new:
            return
        self.state = new
        if self._on_state is not None:
            self._on_state(old, new)

    def _arm(self) -> None:
        if self._set_timer is None:
            return
        due = self.next_timer_ns()
        if due is None:
            return
        now = self._now()
        due = max(due, now)
        if self._armed is None or due < self._armed or self._armed < now:
            self._armed = due
            self._set_timer(due)
