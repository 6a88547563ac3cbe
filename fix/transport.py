"""Real TCP for desksim's own FIX sessions: framing, a wall clock, and a selectors-based acceptor.

The simulation carries FIX frames between actors as ``FixFrame`` messages; ``desksim serve``
carries the very same frames over TCP. This module is the TCP side only -- it knows no session
logic and no market:

* :class:`FrameSplitter` cuts a byte stream into FIX frames ``8=FIX...|9=len|...|10=ccc|``:
  BodyLength locates the trailer, CheckSum is checked, anything else is skipped up to the next
  ``8=FIX`` (garbage, a frame whose BodyLength or CheckSum is wrong: quickfix's behaviour, a
  garbled frame is dropped without using a MsgSeqNum). A frame may not claim more than
  ``max_frame`` bytes, so the buffer of a connection stays bounded.
* :class:`WallClock` is the session clock on TCP: nanoseconds since midnight UTC of the day the
  server started, read from the wall clock, so SendingTime is real UTC (a FIX peer checks it
  against its own clock) and heartbeats and timeouts run on wall time, whatever pace the
  simulated market keeps.
* :class:`TcpAcceptor` listens on one address (``--host``, loopback by default), accepts any
  number of connections (bounded), and is driven by :meth:`TcpAcceptor.poll` from the caller's
  thread (no thread of its own). The first frame of a connection names the session: its
  SenderCompID/TargetCompID go to :meth:`FixEndpoint.route`; an unknown pair, or a session that
  already has a connection, is refused with a Logout (or without one, ``refuse_with_logout=False``,
  as quickfix) and the connection closed (and logged); so is a connection whose first frame is
  garbled.
  Frames then go to :meth:`FixEndpoint.on_frame`; outbound frames come back through
  :meth:`TcpAcceptor.send` (the :class:`FrameTransport` the session owner holds), are buffered
  per connection (bounded: a peer that does not read is dropped) and written by
  :meth:`TcpAcceptor.flush`. :meth:`TcpAcceptor.close` ends a session's connection once what is
  queued for it has been written (a Logout, say).

Nothing a peer sends or does escapes :meth:`TcpAcceptor.poll`: socket errors close that
connection, an exception from the endpoint is logged and drops only that connection.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import logging
import re
import selectors
import socket
import time
import zlib
from dataclasses import dataclass
from typing import Protocol

from fix.clock import FixClock

__all__ = [
    "MAX_FRAME",
    "FixEndpoint",
    "FrameSplitter",
    "FrameTransport",
    "SessionClock",
    "TcpAcceptor",
    "WallClock",
    "byte_sum",
    "decode_frame",
    "refusal_logout",
]

log = logging.getLogger("desksim.serve")

MAX_FRAME = 1 << 20
"""Largest BodyLength accepted (bytes); a frame claiming more is treated as garbage."""
MAX_OUTBOUND = 32 << 20
"""Bytes queued for a peer that does not read, beyond which its connection is dropped."""
MAX_CONNECTIONS = 256
UNIDENTIFIED_TIMEOUT_S = 10.0
"""A connection that has not sent a complete frame naming a session by then is closed."""
CLOSE_LINGER_S = 2.0
"""A closing connection whose queued bytes cannot be written by then is dropped."""
_RECV = 1 << 16
_BEGIN = b"8=FIX"


# =============================================================================================
# framing
# =============================================================================================
def byte_sum(data: bytes | bytearray) -> int:
    """``sum(data)`` (the FIX CheckSum is it modulo 256) without iterating in Python: Adler-32's
    first half is 1 + the byte sum modulo 65521, exact for up to 256 bytes (at most 65,280)."""
    n = len(data)
    if n <= 256:
        return (zlib.adler32(data) & 0xFFFF) - 1
    view = memoryview(data)
    try:
        return sum((zlib.adler32(view[i : i + 256]) & 0xFFFF) - 1 for i in range(0, n, 256))
    finally:
        view.release()


class FrameSplitter:
    """Splits a TCP byte stream into complete, checksummed FIX frames (bytes).

    A frame whose BodyLength does not lead to its trailer is garbled. By default the stream is
    resynchronised at the next ``8=FIX`` after its start, so a frame a too-long BodyLength ran
    into is kept; ``to_trailer=True`` drops everything up to the next CheckSum field at or after
    the claimed end instead, as quickfix's parser does (the frames it ran into are lost with it)."""

    __slots__ = ("_buf", "bad", "max_frame", "skipped", "to_trailer")

    def __init__(self, max_frame: int = MAX_FRAME, to_trailer: bool = False) -> None:
        self._buf = bytearray()
        self.to_trailer = to_trailer
        self.max_frame = max_frame
        self.skipped = 0  # bytes skipped while resynchronising
        self.bad = 0  # frames dropped for a wrong BodyLength / CheckSum

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos = 0
        n = len(buf)
        while True:
            start = buf.find(_BEGIN, pos)
            if start < 0:
                keep = max(pos, n - (len(_BEGIN) - 1))  # a "8=FI" at the end may be a frame's start
                self.skipped += keep - pos
                pos = keep
                break
            self.skipped += start - pos
            pos = start
            soh1 = buf.find(b"\x01", start, start + 16)
            if soh1 < 0:
                if n - start < 16:
                    break  # wait for more
                pos = start + 1
                continue
            if n < soh1 + 3:
                break
            if buf[soh1 + 1 : soh1 + 3] != b"9=":
                pos = start + 1
                continue
            soh2 = buf.find(b"\x01", soh1 + 3, soh1 + 3 + 12)
            if soh2 < 0:
                if n - (soh1 + 3) < 12:
                    break
                pos = start + 1
                continue
            digits = bytes(buf[soh1 + 3 : soh2])
            if not digits.isdigit() or int(digits) > self.max_frame:
                pos = start + 1
                continue
            body_end = soh2 + 1 + int(digits)
            end = body_end + 7  # "10=ccc\x01"
            if n < end:
                break  # wait for the rest of the frame (at most max_frame bytes)
            trailer = bytes(buf[body_end:end])
            if trailer[:3] != b"10=" or trailer[6] != 1 or not trailer[3:6].isdigit():
                if self.to_trailer:
                    k = buf.find(b"\x0110=", body_end - 1)
                    e = buf.find(b"\x01", k + 4) if k >= 0 else -1
                    if e < 0 and n - start <= self.max_frame:
                        break  # wait for the CheckSum field the garbled frame runs to
                    if e >= 0:
                        self.bad += 1
                        pos = e + 1  # dropped up to and with that CheckSum field
                        continue
                self.bad += 1
                pos = start + 1  # BodyLength does not lead to the trailer: resync
                continue
            if byte_sum(buf[start:body_end]) & 255 != int(trailer[3:6]):
                self.bad += 1
                pos = end  # a whole frame with a wrong CheckSum: dropped
                continue
            out.append(bytes(buf[start:end]))
            pos = end
        if pos:
            del buf[:pos]
        return out


def decode_frame(data: bytes) -> str:
    """A frame as the ``str`` the session layer reads: UTF-8; bytes that are not UTF-8 become
    lone surrogates (``surrogateescape``), which the session answers with a Reject (373=6)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", "surrogateescape")


def _encode(raw: str) -> bytes:
    try:
        return raw.encode("utf-8")
    except UnicodeEncodeError:
        return raw.encode("utf-8", "surrogateescape")


_COMP_RE = re.compile(r"\x01(49|56)=([^\x01]*)")


def comp_ids(raw: str) -> tuple[str, str]:
    """(SenderCompID, TargetCompID) of a frame ("" when absent), from its header."""
    sender = target = ""
    for tag, value in _COMP_RE.findall(raw[:512]):
        if tag == "49" and not sender:
            sender = value
        elif tag == "56" and not target:
            target = value
    return sender, target


def refusal_logout(sender: str, target: str, text: str, clock: FixClock, now_ns: int) -> bytes:
    """A Logout (35=5, MsgSeqNum 1) from ``sender`` to ``target`` refusing a connection."""
    import quickfix as fix

    msg = fix.Message()
    header = msg.getHeader()
    header.setField(8, "FIX.4.4")
    header.setField(35, "5")
    header.setField(49, sender or "?")
    header.setField(56, target or "?")
    header.setField(34, "1")
    header.setField(52, clock.timestamp(now_ns))
    msg.setField(58, text)
    return _encode(msg.toString())


# =============================================================================================
# the session clock on TCP
# =============================================================================================
class SessionClock(Protocol):
    """Time of a FIX session: ``now_ns()`` for its timers and, through ``fix_clock``, SendingTime."""

    @property
    def fix_clock(self) -> FixClock: ...

    def now_ns(self) -> int: ...


@dataclass(frozen=True, slots=True)
class WallClock:
    """Wall-clock session time: ns since midnight UTC of ``fix_clock.trading_date`` (the day the
    server started), so ``fix_clock.timestamp(now_ns())`` is the UTC time now, also after midnight."""

    fix_clock: FixClock
    origin_ns: int

    @classmethod
    def start(cls) -> WallClock:
        clock = FixClock(_dt.datetime.now(_dt.UTC).date())
        return cls(clock, clock.epoch_ns(0))

    def now_ns(self) -> int:
        return time.time_ns() - self.origin_ns


# =============================================================================================
# the acceptor
# =============================================================================================
class FrameTransport(Protocol):
    """What a session owner (a gateway) needs from a real transport."""

    def send(self, key: str, raw: str) -> None:
        """Queue a frame for the connection of session ``key`` (dropped when it has none)."""

    def close(self, key: str) -> None:
        """The session ended: close its connection once what is queued is written."""


class FixEndpoint(Protocol):
    """The session owner behind a :class:`TcpAcceptor` (the FIX gateway, or the echo application)."""

    def route(self, sender: str, target: str) -> str | None:
        """The session a connection whose first frame is ``sender -> target`` belongs to (None: refuse)."""

    def on_frame(self, key: str, raw: str) -> None:
        """A frame for session ``key``. Must not raise."""

    def on_connection_lost(self, key: str, reason: str) -> None:
        """The connection of session ``key`` is gone (the peer closed it, or an error)."""


class _Conn:
    __slots__ = ("addr", "close_by", "closing", "key", "opened", "out", "sock", "splitter", "want_write")

    def __init__(self, sock: socket.socket, addr: str, now: float, to_trailer: bool = False) -> None:
        self.sock = sock
        self.addr = addr
        self.key: str | None = None
        self.splitter = FrameSplitter(to_trailer=to_trailer)
        self.out = bytearray()
        self.closing = False
        self.close_by = 0.0
        self.opened = now
        self.want_write = False


class TcpAcceptor:
    """Listening socket + connections, driven by :meth:`poll` in the caller's thread."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        own_comp_id: str,
        clock: SessionClock,
        max_connections: int = MAX_CONNECTIONS,
        backlog: int = 64,
        refuse_with_logout: bool = True,
        quickfix_framing: bool = False,
    ) -> None:
        self.host, self.port = host, port
        self.own_comp_id = own_comp_id
        # a refused connection (unknown CompIDs, session already connected) gets a Logout saying
        # why before it is closed; False: it is just closed, as quickfix's acceptor does
        self.refuse_with_logout = refuse_with_logout
        self.quickfix_framing = quickfix_framing  # garbled frames dropped as quickfix does (FrameSplitter)
        self.clock = clock
        self.max_connections = max_connections
        self.endpoint: FixEndpoint | None = None
        self.selector = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind((host, port))
            self.listener.listen(backlog)
            self.listener.setblocking(False)
        except OSError:
            self.listener.close()
            raise
        self.port = int(self.listener.getsockname()[1])
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        self.conns: dict[int, _Conn] = {}  # fd -> connection
        self.by_key: dict[str, _Conn] = {}
        self._dirty: set[_Conn] = set()
        self.counters = {"accepted": 0, "refused": 0, "frames_in": 0, "bytes_in": 0, "bytes_out": 0, "errors": 0}

    # -- FrameTransport ---------------------------------------------------------------------------
    def send(self, key: str, raw: str) -> None:
        conn = self.by_key.get(key)
        if conn is None or conn.closing:
            return
        conn.out += _encode(raw)
        self._dirty.add(conn)
        if len(conn.out) > MAX_OUTBOUND:
            log.warning("%s (%s) does not read its messages (%d bytes queued): connection dropped",
                        key, conn.addr, len(conn.out))  # fmt: skip
            conn.out.clear()
            self._lost(conn, "peer does not read")

    def close(self, key: str) -> None:
        conn = self.by_key.pop(key, None)
        if conn is None:
            return
        conn.key = None  # the session is over: nothing more goes to it from this connection
        self._closing(conn)

    # -- driving ----------------------------------------------------------------------------------
    def poll(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for socket events, handle them; returns the frames delivered."""
        n = 0
        try:
            events = self.selector.select(timeout)
        except InterruptedError:
            return 0
        for key, mask in events:
            conn = key.data
            if conn is None:
                self._accept()
                continue
            if mask & selectors.EVENT_WRITE:
                self._write(conn)
            if mask & selectors.EVENT_READ and conn.sock.fileno() >= 0:
                n += self._read(conn)
        return n

    def flush(self) -> None:
        """Write what is queued (what the socket takes now; the rest when it is writable)."""
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        for conn in dirty:
            self._write(conn)

    def housekeeping(self) -> None:
        """Close connections that never named a session, and closing ones that cannot drain."""
        now = time.monotonic()
        for conn in list(self.conns.values()):
            if conn.closing:
                if not conn.out or now >= conn.close_by:
                    self._shut(conn)
            elif conn.key is None and now - conn.opened > UNIDENTIFIED_TIMEOUT_S:
                log.warning("connection from %s sent no valid FIX frame within %.0f s: closed",
                            conn.addr, UNIDENTIFIED_TIMEOUT_S)  # fmt: skip
                self._shut(conn)

    def connected(self) -> list[str]:
        return list(self.by_key)

    def shutdown(self) -> None:
        """Close every connection and the listener."""
        self.flush()
        for conn in list(self.conns.values()):
            self._shut(conn)
        with contextlib.suppress(Exception):
            self.selector.unregister(self.listener)
        with contextlib.suppress(OSError):
            self.listener.close()
        with contextlib.suppress(Exception):
            self.selector.close()

    # -- internals --------------------------------------------------------------------------------
    def _accept(self) -> None:
        for _ in range(64):  # bounded: other sockets get their turn
            try:
                sock, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. EMFILE: leave it in the backlog
                log.warning("accept failed: %s", exc)
                return
            peer = f"{addr[0]}:{addr[1]}"
            if len(self.conns) >= self.max_connections:
                log.warning("connection from %s refused: %d connections open", peer, len(self.conns))
                self.counters["refused"] += 1
                with contextlib.suppress(OSError):
                    sock.close()
                continue
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn = _Conn(sock, peer, time.monotonic(), self.quickfix_framing)
                self.selector.register(sock, selectors.EVENT_READ, conn)
            except OSError as exc:
                log.warning("connection from %s: %s", peer, exc)
                with contextlib.suppress(OSError):
                    sock.close()
                continue
            self.conns[sock.fileno()] = conn
            self.counters["accepted"] += 1
            log.info("connection from %s", peer)

    def _read(self, conn: _Conn) -> int:
        try:
            data = conn.sock.recv(_RECV)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            self._lost(conn, f"connection error: {exc}")
            return 0
        if not data:
            self._lost(conn, "connection closed by peer")
            return 0
        if conn.closing:
            return 0  # the session is over: what a closing peer still sends is discarded
        self.counters["bytes_in"] += len(data)
        frames = conn.splitter.feed(data)
        if conn.key is None and conn.splitter.bad and not frames:
            # the connection's first frame is garbled (BodyLength or CheckSum): no Logon will
            # come of it, so it is closed (quickfix drops a connection whose Logon is invalid)
            log.warning("connection from %s closed: its first frame is garbled", conn.addr)
            self.counters["refused"] += 1
            self._closing(conn)
            return 0
        n = 0
        for frame in frames:
            if conn.closing:
                break
            raw = decode_frame(frame)
            if conn.key is None and not self._identify(conn, raw):
                break
            n += 1
            key = conn.key
            assert key is not None and self.endpoint is not None
            try:
                self.endpoint.on_frame(key, raw)
            except Exception:
                self.counters["errors"] += 1
                log.exception("session %s: error handling a frame; connection dropped", key)
                self._lost(conn, "internal error")
                break
        self.counters["frames_in"] += n
        return n

    def _identify(self, conn: _Conn, raw: str) -> bool:
        """Bind the connection to the session its first frame names, or refuse it."""
        sender, target = comp_ids(raw)
        assert self.endpoint is not None
        try:
            key = self.endpoint.route(sender, target)
        except Exception:
            log.exception("routing %s -> %s failed", sender, target)
            key = None
        if key is None:
            self._refuse(conn, sender, target, f"unknown session {sender}->{target}")
            log.warning("connection from %s refused: unknown CompIDs %r -> %r", conn.addr, sender, target)
            return False
        if key in self.by_key:
            self._refuse(conn, sender, target, f"session {sender}->{target} is already connected")
            log.warning("connection from %s refused: session %s already has a connection (%s)",
                        conn.addr, key, self.by_key[key].addr)  # fmt: skip
            return False
        conn.key = key
        self.by_key[key] = conn
        return True

    def _refuse(self, conn: _Conn, sender: str, target: str, text: str) -> None:
        self.counters["refused"] += 1
        if not self.refuse_with_logout:
            self._closing(conn)
            return
        own = target if target == self.own_comp_id else self.own_comp_id
        try:
            conn.out += refusal_logout(own, sender, text, self.clock.fix_clock, self.clock.now_ns())
        except Exception as exc:  # a CompID quickfix cannot carry: just close
            log.warning("refusal Logout to %s not sent: %s", conn.addr, exc)
        self._closing(conn)
        self._write(conn)

    def _closing(self, conn: _Conn) -> None:
        if conn.closing:
            return
        conn.closing = True
        conn.close_by = time.monotonic() + CLOSE_LINGER_S
        if conn.out:
            self._dirty.add(conn)
        else:
            self._shut(conn)

    def _write(self, conn: _Conn) -> None:
        sock = conn.sock
        if sock.fileno() < 0:
            return
        out = conn.out
        while out:
            try:
                sent = sock.send(out)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno not in (errno.EPIPE, errno.ECONNRESET):
                    log.info("%s: write failed: %s", conn.key or conn.addr, exc)
                out.clear()
                self._lost(conn, f"connection error: {exc}")
                return
            self.counters["bytes_out"] += sent
            del out[:sent]
        if out and not conn.want_write:
            conn.want_write = True
            with contextlib.suppress(Exception):
                self.selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
        elif not out:
            if conn.want_write:
                conn.want_write = False
                with contextlib.suppress(Exception):
                    self.selector.modify(sock, selectors.EVENT_READ, conn)
            if conn.closing:
                self._shut(conn)

    def _lost(self, conn: _Conn, reason: str) -> None:
        key = conn.key
        self._shut(conn)
        if key is not None and self.by_key.get(key) is conn:
            del self.by_key[key]
            if self.endpoint is not None:
                try:
                    self.endpoint.on_connection_lost(key, reason)
                except Exception:
                    self.counters["errors"] += 1
                    log.exception("session %s: error handling the connection loss", key)

    def _shut(self, conn: _Conn) -> None:
        sock = conn.sock
        fd = sock.fileno()
        if fd < 0:
            return
        with contextlib.suppress(Exception):
            self.selector.unregister(sock)
        self.conns.pop(fd, None)
        self._dirty.discard(conn)
        conn.closing = True
        with contextlib.suppress(OSError):
            sock.close()
