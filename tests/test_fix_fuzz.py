"""Fuzzing ``desksim serve``: 10,000 malformed FIX frames over raw TCP, then valid traffic.

A raw-socket FIX client (no quickfix on the sending side, so that it can send anything) logs on
as CLIENT1 with a Logon built by ``quickfix.Message.toString`` and sends a seeded mix of frames:

=============  ==============================================================  ===============
class          what                                                            expected answer
=============  ==============================================================  ===============
garbled        bad CheckSum, BodyLength too short / too long, non-numeric      nothing (FIX:
               tag, garbage bytes, junk frames                                 ignored, no
                                                                               MsgSeqNum used)
invalid        valid header, body refused by the FIX44 dictionary: required    Reject (3) or
               tag missing, letters in OrderQty/Price/TransactTime, values     BusinessMessage
               out of enum, empty value, repeated tag, undefined tag, header   Reject (j), by
               tag in the body, NumInGroup mismatch, unknown MsgType, known    RefSeqNum (45)
               but unsupported MsgType, 400-digit Price/OrderQty, non-UTF-8
business       valid for the dictionary, refused by the exchange: quantity     3 / j by
               0 / negative / fractional, off-tick price, price collar,        RefSeqNum, or
               unknown symbol, unsupported OrdType / TimeInForce, cancel or    8 (150=8) / 9
               replace of an unknown order                                     by ClOrdID
valid          IOC orders (never rest), mass cancel, market data requests,     an 8 / r / W
               64 KB Text, 8 KB ClOrdID, UTF-8 Text                            for it
breaker        truncated frame, non-numeric BodyLength, BodyLength beyond      the client drops
               the stream: the client disconnects (a client crash mid-frame)   the connection
fatal          wrong SenderCompID / TargetCompID / BeginString, SendingTime    Logout and/or
               a day off, MsgSeqNum too low                                    disconnect
=============  ==============================================================  ===============

MsgSeqNum is kept right for every frame with a valid header. The client answers TestRequest,
answers ResendRequest with SequenceReset-GapFill, and logs on again (next MsgSeqNum) whenever
the server logs it out or drops it. Every 40 frames it sends a TestRequest and waits for the
Heartbeat, which bounds what is in flight. At the end: the server is alive, has logged no
error, every ``invalid`` frame got 3/j, every ``business`` frame a reject, every ``valid`` one
its answer; then a fresh quickfix initiator (CLIENT2) and a clean raw session (CLIENT1 again)
trade normally. About 7 s in all (the 10,000 frames take about 2 s).

``FUZZ_FRAMES=1000`` sends fewer frames; ``FUZZ_TRACE=1`` writes every event to trace.txt in
the test's tmp_path (printed with ``-s``).
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import quickfix as fix

from fix.codec import default_data_dictionary_path

ROOT = Path(__file__).resolve().parents[1]
SOH = b"\x01"
SENDER, TARGET = "CLIENT1", "DESKSIM"
N_FRAMES = int(os.environ.get("FUZZ_FRAMES", "10000"))
SEED = 20240605
TRACE = bool(os.environ.get("FUZZ_TRACE"))
BATCH = 40  # frames between two TestRequest probes
PROBE_WAIT = 5.0  # seconds for the Heartbeat answering a probe
CONNECT_WAIT = 10.0  # seconds for a Logon answer
SETTLE_WAIT = 15.0  # seconds for the last answers after the last frame
FUZZ_BUDGET = 120.0  # seconds for sending everything (about 2 s on an idle machine)
BUY_PX = ("95.00", "95.50", "96.00")  # IOC buys: nothing rests, the book stays empty
SELL_PX = ("104.00", "104.50", "105.00")


# =============================================================================================
# the server subprocess
# =============================================================================================
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``desksim serve --scenario quiet`` on a free loopback port; stderr goes to a file."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.err_path = tmp / "serve.stderr"
        self._err = open(self.err_path, "w")  # noqa: SIM115  # closed in terminate()
        cmd = [sys.executable, "-m", "desksim.cli", "serve", "--scenario", "quiet", "--port", str(self.port)]
        cmd += ["--duration", "600"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=self._err, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self._pump = threading.Thread(target=self._read_stdout, daemon=True)
        self._pump.start()
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                if "listening on" in self.lines.get(timeout=0.2):
                    return
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
        self.terminate()
        raise AssertionError(f"server did not start: {self.stderr()}")

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr(self) -> str:
        self._err.flush()
        return self.err_path.read_text(errors="replace")

    def terminate(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._pump.join(5)
        self._err.close()
        return self.proc.returncode


# =============================================================================================
# raw FIX frames
# =============================================================================================
Fields = list[tuple[Any, Any]]


def _b(v: Any) -> bytes:
    return v if isinstance(v, bytes) else str(v).encode()


def checksum(data: bytes) -> bytes:
    return b"%03d" % (sum(data) % 256)


def frame(fields: Fields, begin: bytes = b"FIX.4.4", body_length: bytes | None = None) -> bytes:
    """``8=begin|9=len|<fields>|10=sum|`` with BodyLength and CheckSum computed (or forced)."""
    body = b"".join(_b(t) + b"=" + _b(v) + SOH for t, v in fields)
    head = b"8=" + begin + SOH + b"9=" + (body_length if body_length is not None else b"%d" % len(body)) + SOH
    return head + body + b"10=" + checksum(head + body) + SOH


def now_ts(offset_s: float = 0.0) -> str:
    t = time.time() + offset_s
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}"


def logon_frame(seq: int, sender: str = SENDER) -> bytes:
    """A Logon built by quickfix itself (BodyLength and CheckSum as quickfix computes them)."""
    m = fix.Message()
    h = m.getHeader()
    h.setField(8, "FIX.4.4")
    h.setField(35, "A")
    h.setField(49, sender)
    h.setField(56, TARGET)
    h.setField(34, str(seq))
    h.setField(52, now_ts())
    m.setField(98, "0")
    m.setField(108, "30")
    return bytes(m.toString(), "utf-8")


def header(msg_type: str, seq: int, sender: str = SENDER, target: str = TARGET, sending: str | None = None) -> Fields:
    return [(35, msg_type), (49, sender), (56, target), (34, seq), (52, sending or now_ts())]


class FrameReader:
    """Splits the server's byte stream into frames (BodyLength, then ``10=nnn|``, CheckSum checked)."""

    def __init__(self) -> None:
        self.buf = b""
        self.bad = 0

    def feed(self, data: bytes) -> list[dict[int, str]]:
        self.buf += data
        out: list[dict[int, str]] = []
        while True:
            start = self.buf.find(b"8=")
            if start < 0:
                self.buf = b""
                return out
            self.buf = self.buf[start:]
            i = self.buf.find(SOH + b"9=")
            j = self.buf.find(SOH, i + 1) if i >= 0 else -1
            if j < 0:
                return out
            body_end = j + 1 + int(self.buf[i + 3 : j])
            end = self.buf.find(SOH, body_end + 1)
            if end < 0:
                return out
            raw, self.buf = self.buf[: end + 1], self.buf[end + 1 :]
            trailer = raw[body_end:]
            if not trailer.startswith(b"10=") or trailer[3:6] != checksum(raw[:body_end]):
                self.bad += 1
                continue
            d: dict[int, str] = {}
            for part in raw.split(SOH):
                tag, _, value = part.partition(b"=")
                if tag.isdigit():
                    d.setdefault(int(tag), value.decode("latin-1"))
            out.append(d)


# =============================================================================================
# the fuzz cases
# =============================================================================================
@dataclass
class Case:
    kind: str  # garbled | invalid | business | valid | breaker | fatal
    name: str
    data: bytes
    consumes_seq: bool
    cl: str | None = None  # ClOrdID (business / valid) to match 8 / 9 by


REQUIRED = {
    "D": (11, 54, 60, 40),
    "F": (11, 41, 54, 60),
    "G": (11, 41, 54, 60, 40),
    "q": (11, 530, 60),
    "V": (262, 263, 264),
}
WRONG_TYPE = {"D": (38, 44, 60), "F": (60, 38), "G": (38, 44, 60), "q": (60,), "V": (264,)}
OUT_OF_ENUM = {"D": ((54, "Z"), (40, "Z"), (59, "9"), (21, "7")), "F": ((54, "Q"),), "G": ((40, "#"),)}
OUT_OF_ENUM["q"] = ((530, "Z"),)
OUT_OF_ENUM["V"] = ((263, "7"), (265, "5"))


class Fuzzer:
    """Builds the seeded mix; ``make(seq)`` returns the next Case for MsgSeqNum ``seq``."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.n = 0
        kinds = {
            "garbled": 26,
            "invalid": 44,
            "business": 14,
            "valid": 12,
            "breaker": 1.5,
            "fatal": 1.0,
        }
        self.kinds, self.weights = list(kinds), list(kinds.values())

    def cl(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    # -- well-formed bodies -------------------------------------------------------------------
    def body(self, msg_type: str, cl: str) -> Fields:
        r = self.rng
        if msg_type == "D":
            side = r.choice("12")
            px = r.choice(BUY_PX if side == "1" else SELL_PX)
            return [
                (11, cl),
                (55, "XYZ"),
                (54, side),
                (60, now_ts()),
                (38, r.randint(1, 500)),
                (40, "2"),
                (44, px),
                (59, "3"),
            ]
        if msg_type == "F":
            return [(41, "NO-SUCH-" + cl), (11, cl), (55, "XYZ"), (54, "1"), (60, now_ts())]
        if msg_type == "G":
            return [
                (41, "NO-SUCH-" + cl),
                (11, cl),
                (55, "XYZ"),
                (54, "2"),
                (60, now_ts()),
                (38, 10),
                (40, "2"),
                (44, "104.00"),
            ]
        if msg_type == "q":
            return [(11, cl), (530, "7"), (60, now_ts())]
        if msg_type == "V":  # a snapshot request, no subscription
            return [(262, cl), (263, "0"), (264, "1"), (267, "2"), (269, "0"), (269, "1"), (146, "1"), (55, "XYZ")]
        raise AssertionError(msg_type)

    def app(self, msg_type: str, seq: int, body: Fields) -> bytes:
        return frame(header(msg_type, seq) + body)

    # -- the classes --------------------------------------------------------------------------
    def next_kind(self) -> str:
        return self.rng.choices(self.kinds, self.weights)[0]

    def make(self, kind: str, seq: int) -> Case:
        return getattr(self, kind)(seq)  # type: ignore[no-any-return]

    def garbled(self, seq: int) -> Case:
        r = self.rng
        cl = self.cl("G")
        good = self.app("D", seq, self.body("D", cl))
        how = r.choice(("checksum", "checksum-text", "short-length", "long-length", "tag", "garbage", "junk"))
        if how == "checksum":
            cs = int(good[-4:-1])
            data = good[:-4] + b"%03d" % ((cs + r.randint(1, 255)) % 256) + SOH
        elif how == "checksum-text":
            data = good[:-4] + r.choice((b"abc", b"1", b"", b"2560")) + SOH
        elif how in ("short-length", "long-length"):
            i = good.index(b"\x019=") + 3
            j = good.index(SOH, i)
            n = int(good[i:j])
            if how == "short-length":
                data = good[:i] + b"%d" % r.randint(0, n - 1) + good[j:]
            else:  # too long: padding and a junk trailer complete the claimed length
                extra = r.randint(1, 64)
                pad = bytes(r.choice(b"abcdefXYZ0123") for _ in range(extra + 8)) + b"\x0110=000\x01"
                data = good[:i] + b"%d" % (n + extra) + good[j:] + pad
        elif how == "tag":
            data = frame([*header("D", seq), ("1x", "v"), *self.body("D", cl)])
        elif how == "garbage":
            data = bytes(r.randrange(256) for _ in range(r.randint(1, 300))).replace(b"8=", b"8-")
        else:  # a structurally complete junk frame
            junk = bytes(r.randrange(256) for _ in range(r.randint(0, 200)))
            junk = junk.replace(b"\x0110=", b"\x0111=").replace(b"8=", b"8-")
            data = b"8=FIX.4.4\x019=%d\x01" % r.randint(0, len(junk)) + junk + b"\x0110=000\x01"
        return Case("garbled", how, data, consumes_seq=False)

    def invalid(self, seq: int) -> Case:
        r = self.rng
        msg_type = r.choice("DDDFGqV")
        cl = self.cl("I")
        body = self.body(msg_type, cl)
        how = r.choice(
            (
                "missing",
                "wrong-type",
                "enum",
                "empty",
                "repeated",
                "undefined-tag",
                "not-in-message",
                "header-in-body",
                "group-count",
                "unknown-msgtype",
                "unsupported-msgtype",
                "huge-number",
                "not-utf8",
                "admin-missing",
            )
        )
        if how == "missing":
            tag = r.choice(REQUIRED[msg_type])
            body = [(t, v) for t, v in body if t != tag]
        elif how == "wrong-type":
            tag = r.choice(WRONG_TYPE[msg_type])
            bad = r.choice(("abc", "1O", "12x", "--1", "1.2.3", "NaN", "1e3", "0x10", "1,5"))
            body = [(t, bad if t == tag else v) for t, v in body]
            if tag not in dict(body):
                body.append((tag, bad))
        elif how == "enum":
            tag, bad = r.choice(OUT_OF_ENUM[msg_type])
            body = [(t, v) for t, v in body if t != tag] + [(tag, bad)]
        elif how == "empty":  # (quickfix does not check empty values inside repeating groups)
            tag = r.choice([t for t, _ in body if msg_type != "V" or t in (262, 263, 264, 267, 146)])
            body = [(t, "" if t == tag else v) for t, v in body]
        elif how == "repeated":
            k = r.randrange(len(body))
            body = [*body[: k + 1], body[k], *body[k + 1 :]]
        elif how == "undefined-tag":
            body = [*body, (r.choice((0, 4999, 9999, 123456)), "x")]
        elif how == "not-in-message":
            body = [*body, (r.choice((112, 7, 16, 36)), "1")]
        elif how == "header-in-body":
            body = [*body, (r.choice((115, 128, 50)), "X")]
        elif how == "group-count":
            msg_type, body = "V", [(t, "3" if t == 146 else v) for t, v in self.body("V", cl)]
        elif how == "unknown-msgtype":
            msg_type = r.choice(("ZZ", "Z9", "zz", "XX", "U1"))
        elif how == "unsupported-msgtype":
            if r.random() < 0.5:
                msg_type, body = "R", [(131, cl), (146, "1"), (55, "XYZ")]
            else:
                msg_type, body = "B", [(148, "headline"), (33, "1"), (58, "line")]
        elif how == "huge-number":
            msg_type, body = "D", self.body("D", cl)
            tag = r.choice((38, 44))
            digits = "9" * r.randint(16, 400)
            body = [(t, (digits + ".00" if t == 44 else digits) if t == tag else v) for t, v in body]
        elif how == "not-utf8":
            tag = r.choice([t for t in (11, 55, 58, 262) if t in dict(body) or t == 58])
            raw_bytes = r.choice((b"\xff\xfe", b"ab\xc3", b"\x80x", b"\xed\xa0\x80"))
            body = [(t, raw_bytes if t == tag else v) for t, v in body]
            if tag == 58:
                body.append((58, raw_bytes))
        else:  # admin message without its required field
            msg_type, body = "1", []
        return Case("invalid", f"{how}:{msg_type}", frame(header(msg_type, seq) + body), consumes_seq=True)

    def business(self, seq: int) -> Case:
        r = self.rng
        cl = self.cl("B")
        body = self.body("D", cl)
        how = r.choice(("qty-zero", "qty-negative", "qty-fraction", "off-tick", "collar", "symbol", "ordtype", "tif"))
        change = {
            "qty-zero": (38, "0"),
            "qty-negative": (38, "-5"),
            "qty-fraction": (38, "1.5"),
            "off-tick": (44, "95.005"),
            "collar": (44, "1.00"),
            "symbol": (55, "NOPE"),
            "ordtype": (40, "3"),
            "tif": (59, "1"),
        }[how]
        body = [(t, change[1] if t == change[0] else v) for t, v in body]
        if how == "collar":  # the collar is on the aggressive side only: a sell far below the market
            body = [(t, "2" if t == 54 else v) for t, v in body]
        msg_type = "D"
        if r.random() < 0.2:
            msg_type, how = r.choice("FG"), "unknown-order"
            body = self.body(msg_type, cl)
        return Case("business", f"{how}:{msg_type}", self.app(msg_type, seq, body), consumes_seq=True, cl=cl)

    def valid(self, seq: int) -> Case:
        r = self.rng
        cl = self.cl("V")
        how = r.choice(("ioc", "ioc", "ioc", "huge-text", "huge-clordid", "utf8-text", "mass-cancel", "md"))
        if how == "huge-clordid":
            cl = cl + "-" + "c" * r.randint(1000, 8000)
        body = self.body({"mass-cancel": "q", "md": "V"}.get(how, "D"), cl)
        if how == "huge-text":
            body.append((58, "t" * r.randint(1000, 65000)))
        elif how == "utf8-text":
            body.append((58, "caf\u00e9 \u20ac".encode()))
        msg_type = {"mass-cancel": "q", "md": "V"}.get(how, "D")
        return Case("valid", f"{how}:{msg_type}", self.app(msg_type, seq, body), consumes_seq=True, cl=cl)

    def breaker(self, seq: int) -> Case:
        r = self.rng
        good = self.app("D", seq, self.body("D", self.cl("K")))
        how = r.choice(("truncated", "length-text", "length-beyond"))
        if how == "truncated":
            data = good[: r.randint(1, len(good) - 2)]
        elif how == "length-text":
            i = good.index(b"\x019=") + 3
            data = good[:i] + r.choice((b"abc", b"-5", b"")) + good[good.index(SOH, i) :]
        else:
            i = good.index(b"\x019=") + 3
            data = good[:i] + b"99999999" + good[good.index(SOH, i) :]
        return Case("breaker", how, data, consumes_seq=False)

    def fatal(self, seq: int) -> Case:
        r = self.rng
        cl = self.cl("X")
        body = self.body("D", cl)
        how = r.choice(("sender", "target", "begin-string", "sending-time", "seq-too-low"))
        if how == "sender":
            data = frame(header("D", seq, sender="CLIENT9") + body)
        elif how == "target":
            data = frame(header("D", seq, target="NOTDESK") + body)
        elif how == "begin-string":
            data = frame(header("D", seq) + body, begin=b"FIX.4.2")
        elif how == "sending-time":
            data = frame(header("D", seq, sending=now_ts(-86_400)) + body)
        else:
            data = frame(header("D", max(1, seq - r.randint(1, 50))) + body)
        # the server may or may not count it: using the number is safe (a gap is gap-filled)
        return Case("fatal", how, data, consumes_seq=True)


# =============================================================================================
# the raw session
# =============================================================================================
ANSWERED_BY = {"invalid": ("3", "j"), "business": ("3", "j", "8", "9"), "valid": ("8", "r", "W", "Y")}


@dataclass
class Tally:
    """What was sent that needs an answer, and what came back."""

    pending: dict[int, Case] = field(default_factory=dict)  # MsgSeqNum -> case awaiting its answer
    by_cl: dict[str, int] = field(default_factory=dict)  # ClOrdID / MDReqID -> MsgSeqNum
    answered: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # kind -> count
    excused: list[Case] = field(default_factory=list)  # never processed: inside a gap we filled
    wrong: list[str] = field(default_factory=list)  # e.g. a valid order answered with a Reject
    counts: Counter[str] = field(default_factory=Counter)
    logout_texts: list[str] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)  # with FUZZ_TRACE=1: every event, for debugging

    def log(self, text: str) -> None:
        if TRACE:
            self.trace.append(text)

    def expect(self, seq: int, case: Case) -> None:
        if case.kind in ANSWERED_BY:
            self.pending[seq] = case
            if case.cl is not None:
                self.by_cl[case.cl] = seq

    def answer(self, seq: int | None, msg_type: str, exec_type: str | None = None) -> None:
        case = self.pending.get(seq) if seq is not None else None
        if seq is None or case is None:
            return
        if msg_type not in ANSWERED_BY[case.kind] or (case.kind == "business" and exec_type not in (None, "8")):
            if case.kind == "valid" and msg_type in ("3", "j"):
                self.wrong.append(f"{case.name} seq {seq} answered with {msg_type}")
            return
        del self.pending[seq]
        self.answered[case.kind] += 1


class RawSession:
    def __init__(self, port: int, tally: Tally, sender: str = SENDER) -> None:
        self.port, self.tally, self.sender = port, tally, sender
        self.next_seq = 1
        self.logon_seq = 1
        self.last_rx = 0.0
        self.sock: socket.socket | None = None
        self.reader = FrameReader()
        self.logged_on = False
        self.heartbeats: set[str] = set()
        self.fills: dict[str, list[str]] = defaultdict(list)  # ClOrdID -> ExecTypes (final check)
        self._probe = 0

    # -- connection ---------------------------------------------------------------------------
    def connect(self) -> None:
        """Connect and log on with the next MsgSeqNum (several attempts, all bounded)."""
        for _attempt in range(10):
            self.close()
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.reader = FrameReader()
            self.logon_seq = self.next_seq
            self.sock.sendall(logon_frame(self.next_seq, self.sender))
            self.next_seq += 1
            self.tally.counts["logons"] += 1
            # a ResendRequest may follow the Logon: the probe's Heartbeat comes after it is filled
            if self.pump_until(lambda: self.logged_on, CONNECT_WAIT) and self.probe():
                return
        raise AssertionError(f"could not log on again; logouts: {self.tally.logout_texts[-5:]}")

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None
        self.logged_on = False

    def send(self, data: bytes) -> bool:
        if self.sock is None:
            return False
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            self.tally.counts["send failed"] += 1
            self.close()
            return False

    def send_admin(self, msg_type: str, body: Fields) -> None:
        self.send(frame(header(msg_type, self.next_seq, sender=self.sender) + body))
        self.next_seq += 1

    # -- reading ------------------------------------------------------------------------------
    def pump_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Read and handle what the server sends until ``done()`` or a disconnect or timeout."""
        end = time.monotonic() + timeout
        while not done():
            left = end - time.monotonic()
            if left <= 0 or self.sock is None:
                return done()
            self.sock.settimeout(min(left, 0.25))
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError:
                data = b""
            if not data:
                self.tally.counts["disconnected by server"] += 1
                self.tally.log("disconnected by server")
                self.close()
                return done()
            self.last_rx = time.monotonic()
            for msg in self.reader.feed(data):
                self.handle(msg)
        return True

    def handle(self, m: dict[int, str]) -> None:
        t = self.tally
        mt = m.get(35, "")
        t.counts[f"recv {mt}"] += 1
        t.log(f"recv {mt} ref={m.get(45)} cl={m.get(11, '')[:20]} 150={m.get(150)} 7={m.get(7)} {m.get(58, '')[:60]}")
        if mt == "A":
            self.logged_on = True
        elif mt == "0":
            if 112 in m:
                self.heartbeats.add(m[112])
        elif mt == "1":  # TestRequest -> Heartbeat
            self.send_admin("0", [(112, m.get(112, ""))])
        elif mt == "2":  # ResendRequest -> SequenceReset-GapFill (nothing is resent)
            begin = int(m[7])
            # after a Logon with a number above the server's, the gap is what the server missed
            # before that Logon (it queues the Logon and what follows); otherwise fill it all
            new_seq = self.logon_seq if begin < self.logon_seq else self.next_seq
            seq_fill = [(43, "Y"), (122, now_ts()), (123, "Y"), (36, new_seq)]
            self.send(frame(header("4", begin, sender=self.sender) + seq_fill))
            t.counts["gap fills"] += 1
            for seq in [s for s in t.pending if begin <= s < new_seq]:
                t.excused.append(t.pending.pop(seq))
        elif mt == "5":
            t.logout_texts.append(m.get(58, ""))
            with contextlib.suppress(Exception):
                self.send_admin("5", [])
            self.close()
        elif mt in ("3", "j"):
            if 45 in m:
                t.answer(int(m[45]), mt)
            else:
                t.counts[f"{mt} without RefSeqNum"] += 1
        elif mt in ("8", "9"):
            cl = m.get(11, "")
            self.fills[cl].append(m.get(150, ""))
            t.answer(t.by_cl.get(cl), mt, m.get(150) if mt == "8" else None)
        elif mt in ("r", "W", "Y"):
            t.answer(t.by_cl.get(m.get(11) or m.get(262, "")), mt)

    def probe(self) -> bool:
        """TestRequest -> Heartbeat: everything sent before has been read by the server."""
        self._probe += 1
        test_id = f"P{self._probe}"
        self.send_admin("1", [(112, test_id)])
        self.tally.log(f"probe {test_id} seq {self.next_seq - 1}")
        return self.pump_until(lambda: test_id in self.heartbeats, PROBE_WAIT)

    def flush(self, timeout: float = 3.0, idle: float = 0.1) -> bool:
        """Probe, then read until every answer awaited has come, or nothing has come for
        ``idle`` seconds (an answer that never comes must not cost ``timeout`` each time)."""
        if not self.probe():
            return False
        return self.pump_until(lambda: not self.tally.pending or time.monotonic() - self.last_rx > idle, timeout)


# =============================================================================================
# a quickfix initiator for the check afterwards
# =============================================================================================
class ClientApp(fix.Application):
    def __init__(self) -> None:
        super().__init__()
        self.messages: queue.Queue[dict[int, str]] = queue.Queue()
        self.logged_on = threading.Event()

    def onCreate(self, sessionID: Any) -> None:
        pass

    def onLogon(self, sessionID: Any) -> None:
        self.logged_on.set()

    def onLogout(self, sessionID: Any) -> None:
        self.logged_on.clear()

    def toAdmin(self, message: Any, sessionID: Any) -> None:
        pass

    def fromAdmin(self, message: Any, sessionID: Any) -> None:
        pass

    def toApp(self, message: Any, sessionID: Any) -> None:
        pass

    def fromApp(self, message: Any, sessionID: Any) -> None:
        d: dict[int, str] = {}
        for part in message.toString().split("\x01"):
            tag, _, value = part.partition("=")
            if tag.isdigit():
                d.setdefault(int(tag), value)
        self.messages.put(d)


def quickfix_initiator(tmp: Path, port: int, sender: str, reset: bool = False) -> tuple[Any, ClientApp, Any]:
    base = tmp / f"qf-{sender}"
    base.mkdir()
    cfg = base / "client.cfg"
    cfg.write_text(
        "[DEFAULT]\nConnectionType=initiator\nSocketConnectHost=127.0.0.1\n"
        f"SocketConnectPort={port}\nHeartBtInt=30\nReconnectInterval=1\n"
        "StartTime=00:00:00\nEndTime=00:00:00\n"
        f"FileStorePath={base / 'store'}\nFileLogPath={base / 'log'}\n"
        f"UseDataDictionary=Y\nDataDictionary={default_data_dictionary_path()}\n"
        f"ResetOnLogon={'Y' if reset else 'N'}\n"
        f"[SESSION]\nBeginString=FIX.4.4\nSenderCompID={sender}\nTargetCompID={TARGET}\n",
        encoding="utf-8",
    )
    app = ClientApp()
    settings = fix.SessionSettings(str(cfg))
    store = fix.FileStoreFactory(settings)
    logs = fix.FileLogFactory(settings)
    initiator = fix.SocketInitiator(app, store, settings, logs)
    return initiator, app, (settings, store, logs)


def expect(app: ClientApp, pred: Callable[[dict[int, str]], bool], what: str, timeout: float = 10.0) -> dict[int, str]:
    end = time.monotonic() + timeout
    seen = []
    while (left := end - time.monotonic()) > 0:
        try:
            d = app.messages.get(timeout=left)
        except queue.Empty:
            break
        if pred(d):
            return d
        seen.append(d)
    raise AssertionError(f"no {what} within {timeout}s; saw {seen}")


# =============================================================================================
# the test
# =============================================================================================
def test_fuzzed_frames_do_not_break_the_server(tmp_path: Path) -> None:
    server = Server(tmp_path)
    tally = Tally()
    t0 = time.monotonic()
    raw = RawSession(server.port, tally)
    try:
        raw.connect()
        fuzz = Fuzzer(SEED)
        in_batch = 0
        deadline = t0 + FUZZ_BUDGET
        for _ in range(N_FRAMES):
            if time.monotonic() > deadline:
                break  # reported below, after what was answered and what was not
            if raw.sock is None:
                tally.counts["reconnects"] += 1
                raw.connect()
            kind = fuzz.next_kind()
            if kind in ("breaker", "fatal") and not raw.flush():
                # every answer awaited must be read before the connection goes
                tally.counts["flush timeouts"] += 1
            if raw.sock is None:
                tally.counts["reconnects"] += 1
                raw.connect()
            seq = raw.next_seq
            case = fuzz.make(kind, seq)
            if case.consumes_seq:
                raw.next_seq += 1
            raw.send(case.data)
            tally.expect(seq, case)
            tally.log(f"sent {seq} {case.kind} {case.name} connected={raw.sock is not None}")
            tally.counts[f"sent {case.kind}"] += 1
            in_batch += 1
            if case.kind == "breaker":  # the stream is broken for good: drop it, log on again
                raw.close()
                in_batch = 0
            elif case.kind == "fatal":  # the server logs out and/or drops us (or not): find out
                raw.pump_until(lambda: raw.sock is None, 1.0)
                in_batch = 0
            elif in_batch >= BATCH:
                in_batch = 0
                if raw.sock is not None and not raw.probe():
                    tally.counts["probe timeouts"] += 1
                    raw.close()
        fuzz_s = time.monotonic() - t0

        # -- the last answers --------------------------------------------------------------
        if raw.sock is None:
            raw.connect()
        raw.pump_until(lambda: not tally.pending, SETTLE_WAIT)
        assert raw.probe(), "the fuzzed session does not answer a TestRequest any more"
        report = (
            f"{N_FRAMES} frames in {fuzz_s:.1f}s; answered {dict(tally.answered)}; "
            f"{dict(sorted(tally.counts.items()))}; excused (inside gaps): {len(tally.excused)}; "
            f"logouts: {Counter(tally.logout_texts).most_common(8)}"
        )
        print(report)
        if TRACE:
            (tmp_path / "trace.txt").write_text("\n".join(tally.trace))
            print("trace:", tmp_path / "trace.txt")
        assert server.alive(), "the server died"
        assert raw.reader.bad == 0, "the server sent frames with a bad checksum"
        missing = sorted((s, c.kind, c.name) for s, c in tally.pending.items())
        assert not missing, f"unanswered: {missing[:20]} ({len(missing)}); {report}"
        assert fuzz_s < FUZZ_BUDGET, f"fuzzing took longer than {FUZZ_BUDGET}s; {report}"
        assert not tally.wrong, f"valid messages rejected: {tally.wrong[:10]}"
        # a gap fill excuses a frame the server never processed; keep that rare
        assert len(tally.excused) <= 0.01 * tally.counts["sent invalid"], report
        assert tally.answered["invalid"] > 3000 and tally.counts["sent garbled"] > 2000, report
        assert tally.answered["business"] > 500 and tally.answered["valid"] > 500, report

        # -- valid traffic afterwards: the raw session and a fresh quickfix initiator ------
        cl = f"AFTER{os.getpid()}"
        px = "100.25"
        body = [(11, cl), (55, "XYZ"), (54, "2"), (60, now_ts()), (38, 10), (40, "2"), (44, px), (59, "0")]
        raw.send(frame(header("D", raw.next_seq) + body))
        raw.next_seq += 1
        assert raw.pump_until(lambda: "0" in raw.fills[cl], 10), "no New for a valid order"

        initiator, app, _keep = quickfix_initiator(tmp_path, server.port, "CLIENT2")
        initiator.start()
        try:
            assert app.logged_on.wait(10), "a quickfix initiator cannot log on after the fuzzing"
            nos = fix.Message()
            nos.getHeader().setField(35, "D")
            for tag, value in ((11, cl + "B"), (55, "XYZ"), (54, "1"), (60, now_ts()), (38, "10"), (40, "2")):
                nos.setField(tag, value)
            nos.setField(44, px)
            nos.setField(59, "3")
            assert fix.Session.sendToTarget(nos, fix.SessionID("FIX.4.4", "CLIENT2", TARGET))
            fill = expect(app, lambda d: d.get(35) == "8" and d.get(150) == "F", "fill for CLIENT2")
            assert fill[11] == cl + "B" and fill[32] == "10" and fill[31] == px and fill[39] == "2"
            assert raw.pump_until(lambda: "F" in raw.fills[cl], 10), "no fill for the resting order"
        finally:
            initiator.stop()
        assert server.alive()
        errors = [line for line in server.stderr().splitlines() if "ERROR" in line or "Traceback" in line]
        assert not errors, f"the server logged errors: {errors[:10]}"
    finally:
        raw.close()
        server.terminate()


# =============================================================================================
# session churn: logons, logouts and TCP drops interleaved with malformed frames
# =============================================================================================
CHURN_COMPS = ("CLIENT1", "CLIENT3", "CLIENT4", "CLIENT5")
CHURN_ACTIONS = 500  # per seed; about 3 s
CHURN_BUDGET = 60.0  # seconds, whatever the machine


def as_sender(data: bytes, comp: str) -> bytes:
    """A well-formed frame re-addressed from ``comp`` (BodyLength and CheckSum recomputed);
    anything that does not parse as one frame is returned unchanged."""
    parts = data.split(SOH)
    if len(parts) < 4 or not parts[0].startswith(b"8=") or not parts[1].startswith(b"9=") or parts[-1] != b"":
        return data
    fields: Fields = []
    for p in parts[2:-2]:
        tag, sep, value = p.partition(b"=")
        if not sep or not tag.isdigit():
            return data
        fields.append((tag.decode(), comp if tag == b"49" else value))
    return frame(fields, begin=parts[0][2:])


class Churner:
    """Raw sessions that log on (in many flavours), log out, drop the TCP connection, sometimes
    mid-frame, and send session-level frames that play with the session state (ResetSeqNumFlag,
    PossDupFlag, SequenceReset Reset mode with any NewSeqNo, ResendRequest), mixed with the
    malformed application frames of :class:`Fuzzer`. Answers are read and thrown away."""

    def __init__(self, port: int, seed: int) -> None:
        self.port = port
        self.rng = random.Random(seed)
        self.fuzz = Fuzzer(seed)
        self.socks: dict[str, socket.socket | None] = dict.fromkeys(CHURN_COMPS)
        self.seq = dict.fromkeys(CHURN_COMPS, 1)
        self.counts: Counter[str] = Counter()

    def _send(self, comp: str, data: bytes) -> None:
        s = self.socks[comp]
        if s is None:
            return
        try:
            s.sendall(data)
        except OSError:
            self.counts["send failed"] += 1
            self.drop(comp)

    def drain(self) -> None:
        for comp, s in self.socks.items():
            if s is None:
                continue
            try:
                while s.recv(1 << 16):
                    pass
                self.counts["closed by server"] += 1  # recv() == b"": the server hung up
                self.drop(comp)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self.drop(comp)

    def drop(self, comp: str) -> None:
        s = self.socks[comp]
        if s is not None:
            with contextlib.suppress(OSError):
                s.close()
        self.socks[comp] = None

    def connect(self, comp: str) -> None:
        self.drop(comp)
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        self.socks[comp] = s

    def logon(self, comp: str) -> None:
        r = self.rng
        how = r.choice(("plain", "plain", "reset", "reset-possdup-low", "possdup-low", "bad-time", "no-heartbeat"))
        self.counts[f"logon {how}"] += 1
        seq = self.seq[comp]
        ts = now_ts()
        fields: Fields = [(35, "A"), (49, comp), (56, TARGET)]
        if how == "reset":
            seq = 1
        elif how in ("reset-possdup-low", "possdup-low"):
            seq = 0 if how == "reset-possdup-low" else max(0, seq - r.randint(1, 5))
            fields += [(43, "Y"), (122, ts)]
        fields += [(34, seq), (52, now_ts(-3600) if how == "bad-time" else ts), (98, "0")]
        if how != "no-heartbeat":
            fields.append((108, "30"))
        if how.startswith("reset"):
            fields.append((141, "Y"))
        self._send(comp, frame(fields))
        self.seq[comp] = seq + 1 if how != "reset-possdup-low" else 1

    def admin(self, comp: str) -> None:
        r = self.rng
        seq = self.seq[comp]
        how = r.choice(("seq-reset", "seq-reset", "gap-fill", "resend", "test", "heartbeat", "reject", "logout"))
        self.counts[f"admin {how}"] += 1
        if how == "seq-reset":  # Reset mode, NewSeqNo anywhere (below what is expected too)
            body: Fields = [(36, r.randint(0, seq + 3))]
            if r.random() < 0.5:
                body.insert(0, (123, "N"))
            data = frame(header("4", seq, sender=comp) + body)
        elif how == "gap-fill":
            data = frame([*header("4", seq, sender=comp), (123, "Y"), (36, r.randint(0, seq + 3))])
        elif how == "resend":
            data = frame([*header("2", seq, sender=comp), (7, r.randint(0, seq + 3)), (16, r.randint(0, seq + 3))])
        elif how == "test":
            data = frame([*header("1", seq, sender=comp), (112, f"T{seq}")])
        elif how == "heartbeat":
            data = frame(header("0", seq, sender=comp))
        elif how == "reject":
            data = frame([*header("3", seq, sender=comp), (45, max(1, seq - 1))])
        else:
            data = frame(header("5", seq, sender=comp))
        self._send(comp, data)
        self.seq[comp] = seq + 1

    def malformed(self, comp: str) -> None:
        kind = self.rng.choice(("garbled", "invalid", "invalid", "business", "valid", "breaker", "fatal"))
        case = self.fuzz.make(kind, self.seq[comp])
        self.counts[f"frame {kind}"] += 1
        if case.consumes_seq:
            self.seq[comp] += 1
        self._send(comp, as_sender(case.data, comp))

    def step(self) -> None:
        r = self.rng
        comp = r.choice(CHURN_COMPS)
        if self.socks[comp] is None:
            self.counts["connects"] += 1
            self.connect(comp)
            if r.random() < 0.9:
                self.logon(comp)
            return
        what = r.choices(("logon", "admin", "malformed", "drop", "half-frame"), (10, 30, 50, 6, 4))[0]
        if what == "logon":
            self.logon(comp)
        elif what == "admin":
            self.admin(comp)
        elif what == "malformed":
            self.malformed(comp)
        elif what == "drop":
            self.counts["tcp drops"] += 1
            self.drop(comp)
        else:  # a frame cut in the middle, then the connection goes
            self.counts["half frames"] += 1
            data = frame(header("D", self.seq[comp], sender=comp) + self.fuzz.body("D", self.fuzz.cl("H")))
            self._send(comp, data[: r.randint(1, len(data) - 1)])
            self.drop(comp)

    def close(self) -> None:
        for comp in CHURN_COMPS:
            self.drop(comp)


@pytest.fixture(scope="module")
def churn_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One server for the seeds (a start costs seconds): each seed meets what the last one left."""
    server = Server(tmp_path_factory.mktemp("churn"))
    try:
        yield server
    finally:
        server.terminate()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_session_churn_does_not_stop_the_server(churn_server: Server, tmp_path: Path, seed: int) -> None:
    """Issue 13 item 11: nothing a client sends, nor how it disconnects, stops ``desksim serve``.
    Before the fix a Logon with ResetSeqNumFlag=Y, PossDupFlag=Y and MsgSeqNum 0, followed by a
    SequenceReset below the expected number, made quickfix raise ``RuntimeError: Tried to send a
    reject while not logged on`` out of ``acceptor.poll()`` and the server exited."""
    server = churn_server
    assert server.alive(), "the server died before this seed"
    churn = Churner(server.port, seed)
    t0 = time.monotonic()
    try:
        end = time.monotonic() + CHURN_BUDGET
        for i in range(CHURN_ACTIONS):
            if time.monotonic() > end:
                break
            try:
                churn.step()
            except ConnectionRefusedError:  # the listener is gone: is the server on its way out?
                with contextlib.suppress(subprocess.TimeoutExpired):
                    server.proc.wait(5)
                assert server.alive(), f"the server died after {i} actions: {server.stderr()[-3000:]}"
                raise
            time.sleep(0.004)  # one frame per read, mostly: a state left by one frame meets the next
            churn.drain()
            if i % 50 == 49:
                assert server.alive(), f"the server died after {i + 1} actions: {server.stderr()[-3000:]}"
        churn.close()
        print(f"seed {seed}: churn {time.monotonic() - t0:.1f}s {dict(sorted(churn.counts.items()))}")
        assert server.alive(), f"the server died: {server.stderr()[-3000:]}"

        # -- the server still serves: a quickfix initiator logs on and trades ---------------
        initiator, app, _keep = quickfix_initiator(tmp_path, server.port, "CLIENT2", reset=True)
        initiator.start()
        try:
            assert app.logged_on.wait(10), "a quickfix initiator cannot log on after the churn"
            cl = f"CHURN{seed}-{os.getpid()}"
            nos = fix.Message()
            nos.getHeader().setField(35, "D")
            for tag, value in ((11, cl), (55, "XYZ"), (54, "1"), (60, now_ts()), (38, "10"), (40, "2")):
                nos.setField(tag, value)
            nos.setField(44, "95.00")
            nos.setField(59, "3")
            assert fix.Session.sendToTarget(nos, fix.SessionID("FIX.4.4", "CLIENT2", TARGET))
            er = expect(app, lambda d: d.get(35) == "8" and d.get(11) == cl and d.get(39) in ("2", "4"), "final ER")
            assert er[150] in ("4", "F")  # an IOC buy: filled or canceled, whatever the churn left in the book
        finally:
            initiator.stop()
        assert server.alive()
        print(f"seed {seed}: all {time.monotonic() - t0:.1f}s")
        errors = [line for line in server.stderr().splitlines() if "Traceback" in line or " ERROR " in line]
        assert not errors, f"the server logged errors: {errors[:10]}"
    finally:
        churn.close()
