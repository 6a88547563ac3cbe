"""The TCP side of desksim's FIX stack (fix/transport.py): framing, refusals, the wall clock.

No server subprocess: the splitter is fed bytes directly, and a :class:`TcpAcceptor` on an
ephemeral loopback port is driven by ``poll`` in the test's thread with a stand-in endpoint.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator

import pytest
import quickfix as fix

from fix.clock import fix_timestamp
from fix.session import FixSession
from fix.transport import MAX_FRAME, FrameSplitter, TcpAcceptor, WallClock, comp_ids, decode_frame

SOH = b"\x01"


def frame(fields: list[tuple[int, str]], body_length: int | None = None, checksum: int | None = None) -> bytes:
    body = b"".join(b"%d=%s\x01" % (t, v.encode()) for t, v in fields)
    head = b"8=FIX.4.4\x019=%d\x01" % (len(body) if body_length is None else body_length)
    cs = sum(head + body) % 256 if checksum is None else checksum
    return head + body + b"10=%03d\x01" % cs


def heartbeat(seq: int, sender: str = "CLIENT1", target: str = "DESKSIM") -> bytes:
    return frame([(35, "0"), (49, sender), (56, target), (34, str(seq)), (52, fix_timestamp())])


# =============================================================================================
# FrameSplitter
# =============================================================================================
def test_frames_split_across_any_chunking() -> None:
    frames = [heartbeat(i) for i in range(1, 51)]
    stream = b"".join(frames)
    rng = random.Random(5)
    for _ in range(20):
        sp = FrameSplitter()
        out: list[bytes] = []
        pos = 0
        while pos < len(stream):
            n = rng.randint(1, 97)
            out += sp.feed(stream[pos : pos + n])
            pos += n
        assert out == frames
        assert sp.buffered == 0 and sp.skipped == 0 and sp.bad == 0


def test_garbage_bad_checksum_and_bad_length_are_skipped_and_the_stream_resyncs() -> None:
    good = [heartbeat(i) for i in range(1, 5)]
    bad_sum = frame([(35, "0"), (34, "9")], checksum=7)
    short_len = frame([(35, "0"), (34, "9"), (58, "abcdef")], body_length=5)
    long_len = frame([(35, "0"), (34, "9")], body_length=500)  # the claimed end lies in later frames
    junk = bytes(range(256)).replace(b"8=", b"8-")
    more = [heartbeat(i) for i in range(5, 15)]
    stream = junk + good[0] + bad_sum + good[1] + short_len + good[2] + b"8=FIX.4.4\x019=abc\x01" + long_len + good[3]
    sp = FrameSplitter()
    out = sp.feed(stream)
    assert out == good[:3], "what follows a frame claiming 500 bytes waits until 500 bytes are there"
    # ... then long_len swallows nothing: its trailer is not where BodyLength says, the splitter resyncs
    out = sp.feed(b"".join(more))
    assert out == [good[3], *more]
    assert sp.bad >= 2 and sp.skipped > len(junk)
    assert sp.buffered == 0


def test_quickfix_framing_drops_a_garbled_frame_up_to_the_next_checksum_field() -> None:
    """``to_trailer``: a frame whose BodyLength is too long runs into the next frame and both are
    dropped up to that frame's CheckSum (quickfix's parser; its acceptance definition 2m expects
    it); one too short is dropped alone. The default resynchronises at the next 8=FIX instead
    and keeps the frame the bad length ran into."""
    good = [heartbeat(i) for i in range(1, 5)]
    fields = [(35, "0"), (34, "9"), (49, "CLIENT1")]
    body_length = sum(len(b"%d=%s\x01" % (t, v.encode())) for t, v in fields)
    too_long = frame(fields, body_length=body_length + 30)  # its claimed end lies inside good[1]
    too_short = frame([(35, "0"), (34, "9"), (58, "abcdef")], body_length=5)
    stream = good[0] + too_long + good[1] + too_short + good[2] + good[3]
    quickfix = FrameSplitter(to_trailer=True)
    assert quickfix.feed(stream) == [good[0], good[2], good[3]]
    assert quickfix.bad == 2 and quickfix.buffered == 0
    ours = FrameSplitter()
    assert ours.feed(stream) == good and ours.bad == 2
    # byte by byte, the same frames
    one = FrameSplitter(to_trailer=True)
    assert [f for i in range(len(stream)) for f in one.feed(stream[i : i + 1])] == [good[0], good[2], good[3]]


def test_a_frame_claiming_more_than_max_frame_is_garbage_and_the_buffer_stays_bounded() -> None:
    sp = FrameSplitter()
    assert sp.feed(b"8=FIX.4.4\x019=%d\x0135=0\x01" % (MAX_FRAME + 1)) == []
    for _ in range(100):  # a peer streaming junk forever: nothing accumulates
        sp.feed(b"x" * 10_000)
    assert sp.buffered < 16
    beat = heartbeat(1)  # one frame: two calls may stamp different milliseconds
    assert sp.feed(beat) == [beat]
    # an incomplete frame within the limit waits, at most MAX_FRAME bytes of it
    part = frame([(35, "0"), (58, "t" * 100_000)])
    assert sp.feed(part[:60_000]) == [] and sp.buffered == 60_000
    assert sp.feed(part[60_000:]) == [part]


def test_bytes_that_are_not_utf8_reach_the_session_as_surrogates_and_get_a_reject_6() -> None:
    data = frame([(35, "0"), (49, "C"), (56, "S"), (34, "2"), (52, fix_timestamp()), (112, "x")])
    data = data.replace(b"112=x", b"112=\xff")
    data = data[: data.rindex(b"10=")] + b"10=%03d\x01" % (sum(data[: data.rindex(b"10=")]) % 256)
    text = decode_frame(data)
    assert "\udcff" in text
    sent: list[str] = []
    session = FixSession(
        "S", "C", initiator=False, send_raw=sent.append, now_ns=time.time_ns, on_app=lambda m: None,
        clock=WallClock.start().fix_clock,
    )  # fmt: skip
    session.connect()
    logon = frame([(35, "A"), (49, "C"), (56, "S"), (34, "1"), (52, fix_timestamp()), (98, "0"), (108, "30")])
    session.on_raw(decode_frame(logon))
    assert session.is_logged_on
    session.on_raw(text)  # a Heartbeat whose TestReqID is not UTF-8
    reject = fix.Message(sent[-1])
    assert reject.getHeader().getField(35) == "3"
    assert reject.getField(45) == "2" and reject.getField(373) == "6" and reject.getField(371) == "112"
    assert session.next_in_seq == 3, "the MsgSeqNum is used: no resend of a message that can never pass"


def test_comp_ids_of_a_first_frame() -> None:
    assert comp_ids(heartbeat(1).decode()) == ("CLIENT1", "DESKSIM")
    assert comp_ids("8=FIX.4.4\x019=5\x0135=0\x0110=000\x01") == ("", "")


def test_wall_clock_stamps_utc_now() -> None:
    clock = WallClock.start()
    stamp = clock.fix_clock.timestamp(clock.now_ns())
    assert abs(time.mktime(time.strptime(stamp[:17], "%Y%m%d-%H:%M:%S")) - time.mktime(time.gmtime())) < 5


# =============================================================================================
# TcpAcceptor
# =============================================================================================
class Endpoint:
    def __init__(self) -> None:
        self.frames: list[tuple[str, str]] = []
        self.lost: list[tuple[str, str]] = []
        self.acceptor: TcpAcceptor | None = None

    def route(self, sender: str, target: str) -> str | None:
        return sender if target == "DESKSIM" and sender in ("CLIENT1", "CLIENT2") else None

    def on_frame(self, key: str, raw: str) -> None:
        self.frames.append((key, raw))
        if "\x01112=BOOM\x01" in raw:
            raise RuntimeError("a bug in the endpoint")
        assert self.acceptor is not None
        self.acceptor.send(key, raw)  # echo

    def on_connection_lost(self, key: str, reason: str) -> None:
        self.lost.append((key, reason))


@pytest.fixture
def acceptor() -> Iterator[tuple[TcpAcceptor, Endpoint]]:
    acc = TcpAcceptor("127.0.0.1", 0, own_comp_id="DESKSIM", clock=WallClock.start())
    ep = Endpoint()
    ep.acceptor = acc
    acc.endpoint = ep
    try:
        yield acc, ep
    finally:
        acc.shutdown()


def pump(acc: TcpAcceptor, until: object, seconds: float = 5.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until():  # type: ignore[operator]
        acc.poll(0.01)
        acc.flush()
        acc.housekeeping()


def recv_all(sock: socket.socket, acc: TcpAcceptor, seconds: float = 2.0) -> bytes:
    sock.settimeout(0.01)
    data = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        acc.poll(0.005)
        acc.flush()
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        data += chunk
    return data


def test_acceptor_routes_echoes_refuses_unknown_and_second_connections(
    acceptor: tuple[TcpAcceptor, Endpoint], caplog: pytest.LogCaptureFixture
) -> None:
    acc, ep = acceptor
    c1 = socket.create_connection(("127.0.0.1", acc.port), timeout=5)
    h1, h2 = heartbeat(1), heartbeat(2)
    c1.sendall(h1[:30])
    pump(acc, lambda: acc.counters["accepted"] == 1)
    c1.sendall(h1[30:] + b"junk" + h2)
    pump(acc, lambda: len(ep.frames) == 2)
    assert [k for k, _ in ep.frames] == ["CLIENT1", "CLIENT1"]
    assert FrameSplitter().feed(recv_all(c1, acc, 0.3)) == [h1, h2]
    # a second connection for CLIENT1 while the first is up: a Logout, closed, logged
    c2 = socket.create_connection(("127.0.0.1", acc.port), timeout=5)
    c2.sendall(heartbeat(1))
    answer = FrameSplitter().feed(recv_all(c2, acc))
    assert len(answer) == 1 and b"\x0135=5\x01" in answer[0] and b"already connected" in answer[0]
    # an unknown CompID: the same
    c3 = socket.create_connection(("127.0.0.1", acc.port), timeout=5)
    c3.sendall(heartbeat(1, sender="INTRUDER"))
    answer = FrameSplitter().feed(recv_all(c3, acc))
    assert len(answer) == 1 and b"\x0135=5\x01" in answer[0] and b"unknown session" in answer[0]
    assert acc.counters["refused"] == 2 and len(ep.frames) == 2
    assert any("INTRUDER" in r.getMessage() for r in caplog.records)
    # an exception in the endpoint drops that connection only; CLIENT2 goes on
    c4 = socket.create_connection(("127.0.0.1", acc.port), timeout=5)
    c4.sendall(heartbeat(1, sender="CLIENT2"))
    pump(acc, lambda: len(ep.frames) == 3)
    c1.sendall(frame([(35, "0"), (49, "CLIENT1"), (56, "DESKSIM"), (34, "3"), (112, "BOOM")]))
    pump(acc, lambda: ep.lost)
    assert ep.lost == [("CLIENT1", "internal error")]
    c4.sendall(heartbeat(2, sender="CLIENT2"))
    pump(acc, lambda: len(ep.frames) == 5)
    assert ep.frames[-1][0] == "CLIENT2"
    # the peer closing its socket is reported as the session's connection loss
    c4.close()
    pump(acc, lambda: len(ep.lost) == 2)
    assert ep.lost[-1][0] == "CLIENT2" and ep.lost[-1][1].startswith("connection")  # closed or reset
    for s in (c1, c2, c3):
        s.close()


def test_close_writes_what_is_queued_then_closes(acceptor: tuple[TcpAcceptor, Endpoint]) -> None:
    acc, ep = acceptor
    c = socket.create_connection(("127.0.0.1", acc.port), timeout=5)
    c.sendall(heartbeat(1))
    pump(acc, lambda: ep.frames)
    acc.send("CLIENT1", "last words")
    acc.close("CLIENT1")
    data = recv_all(c, acc)
    assert data.endswith(b"last words")
    assert c.recv(10) == b""  # closed by the server
    assert acc.connected() == [] and ep.lost == []  # a session that ended is not "lost"
    c.close()
