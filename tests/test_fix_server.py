"""``desksim serve`` end to end: a subprocess on a free loopback port and real quickfix initiators.

Each client is a ``quickfix.SocketInitiator`` with its own generated settings, FileStore and
FileLog under ``tmp_path``; its Application puts every application message (and every session
Reject) it receives into a thread-safe queue. All waits are bounded.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import quickfix as fix

from fix.codec import Codec, default_data_dictionary_path

ROOT = Path(__file__).resolve().parents[1]
CODEC = Codec(0.01)
DD = default_data_dictionary_path()
WAIT = 10.0  # seconds: upper bound of every wait for a message
_ids = itertools.count(1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def uid(prefix: str) -> str:
    return f"{prefix}{os.getpid()}-{next(_ids)}"


# =============================================================================================
# the server subprocess
# =============================================================================================
class Server:
    def __init__(self, *args: str, duration: float = 300.0) -> None:
        self.port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "desksim.cli",
            "serve",
            "--port",
            str(self.port),
            "--duration",
            str(duration),
            *args,
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: list[str] = []
        self._pumper = threading.Thread(target=self._pump, daemon=True)
        self._pumper.start()
        self.banner = self._wait_listening()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout.append(line)
            self.lines.put(line)

    def _wait_listening(self, timeout: float = 30.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if "listening on" in line:
                return line
        self.terminate()
        err = self.proc.stderr.read() if self.proc.stderr else ""
        raise AssertionError(f"server did not start: {self.stdout} {err}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._pumper.join(5)
        return int(self.proc.returncode)


def serving(*args: str) -> Iterator[Server]:
    """A server for a module's tests, stopped at the end."""
    srv = Server(*args)
    try:
        yield srv
    finally:
        srv.terminate()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    yield from serving("--scenario", "quiet")


# =============================================================================================
# quickfix clients
# =============================================================================================
class ClientApp(fix.Application):
    def __init__(self) -> None:
        super().__init__()
        self.messages: queue.Queue[Any] = queue.Queue()
        self.logged_on = threading.Event()
        self.logged_out = threading.Event()

    def onCreate(self, sessionID: Any) -> None:
        pass

    def onLogon(self, sessionID: Any) -> None:
        self.logged_out.clear()
        self.logged_on.set()

    def onLogout(self, sessionID: Any) -> None:
        self.logged_on.clear()
        self.logged_out.set()

    def toAdmin(self, message: Any, sessionID: Any) -> None:
        pass

    def fromAdmin(self, message: Any, sessionID: Any) -> None:
        if message.getHeader().getField(35) == "3":  # session-level Reject
            self.messages.put(fix.Message(message))

    def toApp(self, message: Any, sessionID: Any) -> None:
        pass

    def fromApp(self, message: Any, sessionID: Any) -> None:
        self.messages.put(fix.Message(message))


class Client:
    """One FIX initiator session ``sender -> target`` against the server."""

    def __init__(
        self, tmp: Path, port: int, sender: str, target: str = "DESKSIM", extra: str = "", reset: bool = False
    ) -> None:
        self.sender, self.target = sender, target
        base = tmp / f"client-{sender}-{next(_ids)}"
        base.mkdir(parents=True)
        cfg = base / "client.cfg"
        cfg.write_text(
            "[DEFAULT]\n"
            "ConnectionType=initiator\n"
            "SocketConnectHost=127.0.0.1\n"
            f"SocketConnectPort={port}\n"
            "HeartBtInt=30\n"
            "ReconnectInterval=1\n"
            "StartTime=00:00:00\n"
            "EndTime=00:00:00\n"
            f"FileStorePath={base / 'store'}\n"
            f"FileLogPath={base / 'log'}\n"
            "UseDataDictionary=Y\n"
            f"DataDictionary={DD}\n"
            f"ResetOnLogon={'Y' if reset else 'N'}\n"
            f"{extra}"
            "[SESSION]\n"
            "BeginString=FIX.4.4\n"
            f"SenderCompID={sender}\n"
            f"TargetCompID={target}\n",
            encoding="utf-8",
        )
        self.app = ClientApp()
        self.settings = fix.SessionSettings(str(cfg))
        self.store = fix.FileStoreFactory(self.settings)
        self.logs = fix.FileLogFactory(self.settings)
        self.initiator = fix.SocketInitiator(self.app, self.store, self.settings, self.logs)
        self.sid = fix.SessionID("FIX.4.4", sender, target)
        self.started = False

    def start(self, timeout: float = WAIT) -> Client:
        self.initiator.start()
        self.started = True
        assert self.app.logged_on.wait(timeout), f"{self.sender} did not log on"
        return self

    def stop(self, force: bool = False) -> None:
        """Log out (``force``: just drop the connection) and stop the initiator."""
        if self.started:
            self.started = False
            with contextlib.suppress(Exception):
                self.initiator.stop(force)

    def send(self, msg: Any) -> None:
        assert fix.Session.sendToTarget(msg, self.sid), "sendToTarget failed"

    def expect(
        self, pred: Callable[[dict[int, str]], bool] | None = None, timeout: float = WAIT, what: str = ""
    ) -> dict[int, str]:
        """Next message matching ``pred`` (as a {tag: value} dict with 35 from the header)."""
        end = time.monotonic() + timeout
        seen: list[dict[int, str]] = []
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.sender}: no message {what} within {timeout}s; saw {seen}")
            try:
                msg = self.app.messages.get(timeout=left)
            except queue.Empty:
                continue
            d = fields(msg)
            if pred is None or pred(d):
                return d
            seen.append(d)

    def quiet(self, seconds: float = 0.5) -> list[dict[int, str]]:
        """Everything received during ``seconds``."""
        out = []
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                out.append(fields(self.app.messages.get(timeout=left)))
            except queue.Empty:
                break
        return out


def md_entries(raw: list[tuple[int, str]]) -> list[tuple[str, str, str]]:
    """(MDEntryType, MDEntryPx, MDEntrySize) of each entry of a W / X."""
    entries: list[dict[int, str]] = []
    for tag, value in raw:
        if tag == 269:
            entries.append({})
        if entries:
            entries[-1][tag] = value
    return [(e.get(269, ""), e.get(270, ""), e.get(271, "")) for e in entries]


def fields(msg: Any) -> dict[int, str]:
    d: dict[int, str] = {}
    raw = msg.toString()
    for part in raw.split("\x01"):
        if "=" in part:
            tag, value = part.split("=", 1)
            if tag.isdigit():
                d.setdefault(int(tag), value)
    d[0] = raw  # type: ignore[assignment]  # the whole message, for repeating groups
    return d


def mt(msg_type: str, **kv: str) -> Callable[[dict[int, str]], bool]:
    tags = {int(k[1:]): v for k, v in kv.items()}
    return lambda d: d.get(35) == msg_type and all(d.get(t) == v for t, v in tags.items())


@pytest.fixture
def clients(tmp_path: Path, server: Server) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(sender: str, **kw: Any) -> Client:
        c = Client(tmp_path, server.port, sender, **kw)
        made.append(c)
        return c.start()

    try:
        yield make
    finally:
        for c in made:
            c.stop(force=True)  # a dropped connection: cancel-on-disconnect cleans the book


def new_order(cl: str, side: str, qty: int, px: str | None, tif: str = "DAY") -> Any:
    return CODEC.new_order_single(
        cl, "XYZ", side, qty, "LIMIT" if px is not None else "MARKET", CODEC.to_ticks(px) if px else None, tif
    )


# ---------------------------------------------------------------------------------------------
# The quiet market is shared by the tests of this module: each test uses its own price level
# far from the others' so that resting orders left behind never interfere.
# ---------------------------------------------------------------------------------------------


def test_banner_names_loopback_and_sessions(server: Server) -> None:
    assert f"listening on 127.0.0.1:{server.port}" in server.banner
    assert "CLIENT1..CLIENT8" in server.banner and "quiet" in server.banner


def non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (None if there is none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") else str(addr)


def test_listens_on_loopback_only(server: Server) -> None:
    """quickfix 1.16 binds 0.0.0.0; the server moves its listener to --host."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5):
        pass
    addr = non_loopback_address()
    if addr is None:
        pytest.skip("no non-loopback interface")
    with pytest.raises(OSError), socket.create_connection((addr, server.port), timeout=5):
        pass


def test_non_loopback_host_refused_without_allow_remote() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "desksim.cli", "serve", "--host", "192.0.2.1", "--scenario", "quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "not a loopback address" in out.stderr and "--allow-remote" in out.stderr


def test_two_clients_cross_and_both_get_fills(clients: Callable[..., Client]) -> None:
    c1, c2 = clients("CLIENT1"), clients("CLIENT2")
    sell, buy = uid("S"), uid("B")
    c1.send(new_order(sell, "S", 100, "101.00"))
    er = c1.expect(mt("8", _11=sell, _150="0"), what="New for the sell")
    assert er[39] == "0" and er[151] == "100" and er[14] == "0" and er[38] == "100"
    c2.send(new_order(buy, "B", 60, "101.05"))  # marketable limit: trades at the resting price
    er = c2.expect(mt("8", _11=buy, _150="0"), what="New for the buy")
    fill = c2.expect(mt("8", _11=buy, _150="F"), what="Fill for the buy")
    assert fill[39] == "2" and fill[31] == "101.00" and fill[32] == "60"
    assert fill[14] == "60" and fill[151] == "0" and fill[6] == "101" and fill[38] == "60"
    part = c1.expect(mt("8", _11=sell, _150="F"), what="Fill for the sell")
    assert part[39] == "1" and part[31] == "101.00" and part[32] == "60"
    assert part[14] == "60" and part[151] == "40" and part[6] == "101"
    assert int(part[38]) == int(part[14]) + int(part[151])
    # a second buy finishes the sell
    buy2 = uid("B")
    c2.send(new_order(buy2, "B", 40, "101.00"))
    c2.expect(mt("8", _11=buy2, _150="F", _39="2"), what="second buy filled")
    done = c1.expect(mt("8", _11=sell, _150="F"), what="sell filled")
    assert done[39] == "2" and done[14] == "100" and done[151] == "0" and done[32] == "40"


def test_cancel_live_order_and_unknown_order(clients: Callable[..., Client]) -> None:
    c = clients("CLIENT3")
    cl, cx = uid("O"), uid("C")
    c.send(new_order(cl, "B", 10, "97.00"))
    c.expect(mt("8", _11=cl, _150="0"))
    c.send(CODEC.order_cancel_request(cx, cl, "XYZ", "B"))
    er = c.expect(mt("8", _11=cx), what="Canceled")
    assert er[150] == "4" and er[39] == "4" and er[41] == cl and er[151] == "0" and er[14] == "0"
    # unknown order -> OrderCancelReject
    cx2 = uid("C")
    c.send(CODEC.order_cancel_request(cx2, "NO-SUCH-ORDER", "XYZ", "B"))
    rej = c.expect(mt("9", _11=cx2), what="OrderCancelReject")
    assert rej[434] == "1" and rej[102] == "1" and rej[41] == "NO-SUCH-ORDER"
    # cancel of a canceled (done) order -> 9, too late
    cx3 = uid("C")
    c.send(CODEC.order_cancel_request(cx3, cl, "XYZ", "B"))
    rej = c.expect(mt("9", _11=cx3), what="too-late reject")
    assert rej[102] == "0" and rej[39] == "4"


def test_duplicate_clordid_rejected(clients: Callable[..., Client]) -> None:
    c = clients("CLIENT4")
    cl = uid("D")
    c.send(new_order(cl, "S", 5, "104.50"))
    c.expect(mt("8", _11=cl, _150="0"))
    c.send(new_order(cl, "S", 5, "104.50"))
    rej = c.expect(mt("8", _11=cl, _150="8"), what="duplicate reject")
    assert rej[39] == "8" and rej[103] == "6"


def test_unsupported_message_gets_business_reject(clients: Callable[..., Client]) -> None:
    c = clients("CLIENT5")
    # NewOrderCross-like 'AB' would need many fields; a Quote Request 'R' is valid but not ours
    msg = fix.Message()
    msg.getHeader().setField(35, "R")
    msg.setField(131, uid("QR"))
    grp = fix.Group(146, 55)
    grp.setField(55, "XYZ")
    msg.addGroup(grp)
    c.send(msg)
    j = c.expect(mt("j"), what="BusinessMessageReject")
    assert j[372] == "R" and j[380] == "3"


def test_invalid_field_value_gets_session_reject_and_session_stays_up(clients: Callable[..., Client]) -> None:
    c = clients("CLIENT6")
    bad = new_order(uid("X"), "B", 10, "97.50")
    bad.setField(54, "Z")  # Side: not a valid enum value
    c.send(bad)
    rej = c.expect(mt("3"), what="session Reject")
    assert rej[371] == "54" and rej[373] == "5" and rej[372] == "D"
    cl = uid("OK")
    c.send(new_order(cl, "B", 10, "97.50"))
    c.expect(mt("8", _11=cl, _150="0"), what="order after the reject")
    assert c.app.logged_on.is_set()
    c.send(CODEC.order_mass_cancel_request(uid("M"), "7"))
    c.expect(mt("r"), what="mass cancel report")


def test_market_data_snapshot_and_incremental(clients: Callable[..., Client]) -> None:
    maker, watcher = clients("CLIENT7"), clients("CLIENT8")
    bid, ask = uid("MB"), uid("MA")
    maker.send(new_order(bid, "B", 7, "98.00"))
    maker.send(new_order(ask, "S", 9, "103.00"))
    maker.expect(mt("8", _11=bid, _150="0"))
    maker.expect(mt("8", _11=ask, _150="0"))
    req = uid("MD")
    watcher.send(CODEC.market_data_request(req, ["XYZ"], "1", 0, ("0", "1", "2"), "1"))
    snap = watcher.expect(mt("W", _262=req), what="W snapshot")
    assert snap[55] == "XYZ"
    entries = md_entries(raw_pairs(snap))
    assert ("0", "98.00", "7") in entries and ("1", "103.00", "9") in entries
    # an improving bid -> an incremental refresh: top of book changed at position 1
    better = uid("MB")
    maker.send(new_order(better, "B", 3, "98.50"))
    x = watcher.expect(lambda d: d.get(35) == "X" and d.get(262) == req and "270=98.50" in d[0], what="X bid")
    assert ("0", "98.50", "3") in md_entries(raw_pairs(x))
    maker.send(CODEC.order_mass_cancel_request(uid("M"), "7"))
    maker.expect(mt("r"))
    watcher.send(CODEC.market_data_request(req, ["XYZ"], "2", 0, ("0", "1"), None))


def raw_pairs(d: dict[int, str]) -> list[tuple[int, str]]:
    return [(int(t), v) for t, v in (p.split("=", 1) for p in d[0].split("\x01") if "=" in p) if t.isdigit()]


def test_logout_cancels_resting_orders(tmp_path: Path, server: Server) -> None:
    c1 = Client(tmp_path, server.port, "CLIENT1")
    c2 = Client(tmp_path, server.port, "CLIENT2")
    try:
        c1.start()
        c2.start()
        cl = uid("L")
        c1.send(new_order(cl, "S", 11, "104.00"))
        c1.expect(mt("8", _11=cl, _150="0"))
        c1.stop()  # Logout -> cancel on disconnect
        assert c1.app.logged_out.wait(WAIT)
        # CLIENT2 crosses at 104.00 with an IOC: nothing is left to trade against
        ioc = uid("I")
        c2.send(new_order(ioc, "B", 11, "104.00", tif="IOC"))
        er = c2.expect(mt("8", _11=ioc, _39="4"), what="IOC canceled unfilled")
        assert er[14] == "0" and er[151] == "0"
        # the market data snapshot shows no offer at 104.00
        req = uid("MD")
        c2.send(CODEC.market_data_request(req, ["XYZ"], "0", 0, ("1",), None))
        snap = c2.expect(mt("W", _262=req), what="snapshot after logout")
        assert all(px != "104.00" for _, px, _ in md_entries(raw_pairs(snap)))
    finally:
        c1.stop()
        c2.stop()


def test_replace_fok_market_and_mass_cancel(clients: Callable[..., Client]) -> None:
    c1, c2 = clients("CLIENT5"), clients("CLIENT6")
    # replace: size down keeps priority, price change loses it
    a, b = uid("RA"), uid("RB")
    c1.send(new_order(a, "S", 10, "102.50"))
    c1.expect(mt("8", _11=a, _150="0"))
    c1.send(new_order(b, "S", 10, "102.50"))
    c1.expect(mt("8", _11=b, _150="0"))
    a2 = uid("RA")
    c1.send(CODEC.order_cancel_replace_request(a2, a, "XYZ", "S", 6, "LIMIT", CODEC.to_ticks("102.50")))
    er = c1.expect(mt("8", _11=a2, _150="5"), what="Replaced")
    assert er[41] == a and er[38] == "6" and er[151] == "6" and er[39] == "0"
    ioc = uid("I")
    c2.send(new_order(ioc, "B", 6, "102.50", tif="IOC"))
    c2.expect(mt("8", _11=ioc, _150="F", _39="2"), what="IOC filled")
    fill = c1.expect(mt("8", _150="F"), what="maker fill")
    assert fill[11] == a2, "a size-down replace keeps time priority"
    # FOK larger than the book -> canceled, nothing traded
    fok = uid("F")
    c2.send(new_order(fok, "B", 50, "102.50", tif="FOK"))
    er = c2.expect(mt("8", _11=fok, _39="4"), what="FOK canceled")
    assert er[14] == "0" and er[151] == "0"
    # IOC bigger than the book -> partial fill then the remainder canceled
    ioc2 = uid("I")
    c2.send(new_order(ioc2, "B", 15, "102.50", tif="IOC"))
    part = c2.expect(mt("8", _11=ioc2, _150="F"), what="IOC partial")
    assert part[32] == "10" and part[39] == "1"
    rest = c2.expect(mt("8", _11=ioc2, _150="4"), what="IOC remainder canceled")
    assert rest[39] == "4" and rest[14] == "10" and rest[151] == "0"
    # market order against an empty side -> canceled, nothing traded
    mkt = uid("MKT")
    c2.send(new_order(mkt, "B", 5, None, tif="IOC"))
    er = c2.expect(mt("8", _11=mkt, _39="4"), what="market order canceled")
    assert er[14] == "0"
    # mass cancel of everything CLIENT5 has working
    for _ in range(3):
        cl = uid("MC")
        c1.send(new_order(cl, "B", 1, "97.20"))
        c1.expect(mt("8", _11=cl, _150="0"))
    mc = uid("MC")
    c1.send(CODEC.order_mass_cancel_request(mc, "7"))
    rep = c1.expect(mt("r", _11=mc), what="OrderMassCancelReport")
    assert rep[531] == "7" and rep[533] == "3"
    canceled = [c1.expect(mt("8", _150="4"), what="mass-canceled order") for _ in range(3)]
    assert all(er[39] == "4" for er in canceled)


def test_conformance_profile_echoes_like_the_quickfix_acceptance_application(tmp_path: Path) -> None:
    srv = Server("--profile", "conformance")
    client = Client(tmp_path, srv.port, "TW44", "ISLD", reset=True)
    try:
        assert "ISLD" in srv.banner and "TW44" in srv.banner
        client.start()
        cl = uid("E")
        order = new_order(cl, "B", 100, "10.00")
        client.send(order)
        echo = client.expect(mt("D", _11=cl), what="echoed NewOrderSingle")
        assert echo[49] == "ISLD" and echo[56] == "TW44" and echo[38] == "100"
        resent = new_order(cl, "B", 100, "10.00")
        resent.getHeader().setField(97, "Y")  # PossResend of a ClOrdID already seen: ignored
        client.send(resent)
        other = uid("E")
        client.send(new_order(other, "S", 1, "10.00"))
        nxt = client.expect(mt("D"), what="next echo")
        assert nxt[11] == other, "the PossResend duplicate must be ignored"
        msg = fix.Message()
        msg.getHeader().setField(35, "R")
        msg.setField(131, uid("QR"))
        grp = fix.Group(146, 55)
        grp.setField(55, "XYZ")
        msg.addGroup(grp)
        client.send(msg)
        j = client.expect(mt("j"), what="BusinessMessageReject")
        assert j[372] == "R" and j[380] == "3"
    finally:
        client.stop()
        assert srv.terminate() == 0


def test_sigterm_and_duration_exit_cleanly(tmp_path: Path) -> None:
    srv = Server("--scenario", "quiet")
    c = Client(tmp_path, srv.port, "CLIENT1")
    try:
        c.start()
        assert srv.terminate(signal.SIGTERM) == 0
        assert c.app.logged_out.wait(WAIT), "the server logs its sessions out when stopping"
        assert any("stopped" in line for line in srv.stdout)
    finally:
        c.stop()
        srv.terminate()
    short = Server("--scenario", "quiet", duration=1.0)
    try:
        assert short.proc.wait(30) == 0
    finally:
        short.terminate()


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "desksim.cli",
                "serve",
                "--port",
                str(port),
                "--scenario",
                "quiet",
                "--duration",
                "5",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 2
    assert f"cannot listen on port {port}" in out.stderr


@pytest.mark.parametrize("seed", [1, 2])
def test_market_data_depth_keeps_a_quickfix_client_book_right(clients: Callable[..., Client], seed: int) -> None:
    """Issue 13 item 9 over TCP: a quickfix initiator subscribed at MarketDepth 5 and 0 (full
    book) keeps its books from W + X; after a random sequence of orders and cancels (most of
    them below the touch), each book equals the snapshot (263=0) the server answers next, which
    is the exchange's book at that moment (messages of one session arrive in order)."""
    import random

    from tests.test_fix_sim import ClientBook

    r = random.Random(seed)
    maker, watcher = clients("CLIENT3", reset=True), clients("CLIENT4", reset=True)
    subs = {uid("D5"): 5, uid("FULL"): 0}
    for req, depth in subs.items():
        watcher.send(CODEC.market_data_request(req, ["XYZ"], "1", depth, ("0", "1"), "1"))
    books = {req: ClientBook(depth) for req, depth in subs.items()}
    live: list[tuple[str, str]] = []
    sent = []
    for _ in range(60):
        if live and r.random() < 0.25:
            cl, side = live.pop(r.randrange(len(live)))
            maker.send(CODEC.order_cancel_request(uid("C"), cl, "XYZ", side, 10))
            continue
        side = r.choice("BS")
        px = f"{(9_700 + r.randint(0, 25) * 10 if side == 'B' else 10_300 - r.randint(0, 25) * 10) / 100:.2f}"
        cl = uid("O")
        maker.send(new_order(cl, side, r.randint(1, 9) * 10, px))
        live.append((cl, side))
        sent.append(cl)
    for cl in sent:
        maker.expect(lambda d, cl=cl: d.get(35) == "8" and d.get(11) == cl, what=f"ER for {cl}")
    snaps = {uid("S5"): 5, uid("SFULL"): 0}
    for req, depth in snaps.items():
        watcher.send(CODEC.market_data_request(req, ["XYZ"], "0", depth, ("0", "1"), None))
    checked = 0
    end = time.monotonic() + WAIT
    while checked < len(snaps) and time.monotonic() < end:
        d = watcher.expect(lambda d: d.get(35) in ("W", "X"), timeout=max(0.1, end - time.monotonic()))
        req = d.get(262, "")
        if req in books:
            books[req].apply(d[0])  # type: ignore[arg-type]
        elif req in snaps:
            truth = ClientBook(snaps[req])
            truth.apply(d[0])  # type: ignore[arg-type]
            mine = next(b for r_, b in books.items() if subs[r_] == snaps[req])
            assert mine.sides == truth.sides, f"depth {snaps[req]}: client book != snapshot"
            assert snaps[req] == 0 or len(truth.sides["0"]) == snaps[req]
            checked += 1
    assert checked == len(snaps), "no snapshot answer"
    assert all(b.deep_updates > 0 for b in books.values()), "no update below the touch"
    maker.send(CODEC.order_mass_cancel_request(uid("M"), "7"))
    maker.expect(mt("r"))


# ---------------------------------------------------------------------------------------------
# desksim's own session layer on the wire (fix/transport.py, fix/wire_server.py)
# ---------------------------------------------------------------------------------------------
def _listeners(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp{,6} write them) of the sockets listening on ``port``."""
    out = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(name, encoding="ascii") as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                addr, _, hexport = cols[1].rpartition(":")
                if cols[3] == "0A" and int(hexport, 16) == port:  # 0A: TCP_LISTEN
                    out.append(addr)
    return out


def test_listener_is_bound_to_127_0_0_1_only(server: Server) -> None:
    """The kernel's own table (what ``ss -ltn`` reads): one listener, on 127.0.0.1, none on 0.0.0.0/::."""
    if not os.path.exists("/proc/net/tcp"):
        pytest.skip("no /proc/net/tcp")
    assert _listeners(server.port) == ["0100007F"]  # 127.0.0.1, little-endian hex
    ss = subprocess.run(["ss", "-ltn"], capture_output=True, text=True, timeout=10) if shutil.which("ss") else None
    if ss is not None and ss.returncode == 0:
        local = [line.split()[3] for line in ss.stdout.splitlines()[1:] if line.split()[3].endswith(f":{server.port}")]
        assert local == [f"127.0.0.1:{server.port}"], ss.stdout


def raw_frame(fields: list[tuple[int, str]]) -> bytes:
    body = b"".join(b"%d=%s\x01" % (t, v.encode()) for t, v in fields)
    head = b"8=FIX.4.4\x019=%d\x01" % len(body)
    return head + body + b"10=%03d\x01" % (sum(head + body) % 256)


def raw_msg(msg_type: str, seq: int, sender: str, extra: list[tuple[int, str]] | None = None) -> bytes:
    ts = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime()) + ".000"
    return raw_frame([(35, msg_type), (49, sender), (56, "DESKSIM"), (34, str(seq)), (52, ts), *(extra or [])])


def read_frames(
    sock: socket.socket, until: Callable[[list[dict[int, str]]], bool], timeout: float = WAIT
) -> list[dict[int, str]]:
    """Frames the server sends (as tag dicts) until ``until(frames)`` or the connection closes."""
    buf, out = b"", []
    end = time.monotonic() + timeout
    while not until(out) and time.monotonic() < end:
        sock.settimeout(max(0.01, min(0.2, end - time.monotonic())))
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        if not data:
            out.append({0: "closed"})  # type: ignore[dict-item]
            break
        buf += data
        while (k := buf.find(b"\x0110=")) >= 0 and (e := buf.find(b"\x01", k + 1)) >= 0:
            frame, buf = buf[: e + 1], buf[e + 1 :]
            out.append(
                {int(t): v.decode() for t, _, v in (p.partition(b"=") for p in frame.split(b"\x01")) if t.isdigit()}
            )
    return out


def test_refusals_reconnect_and_wall_clock_sending_time(server: Server) -> None:
    """Unknown CompIDs and a second connection get a Logout and are closed; the server keeps
    sequence numbers across a reconnect (no ResetSeqNumFlag); SendingTime is UTC now."""
    port = server.port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as intruder:
        intruder.sendall(raw_msg("A", 1, "CLIENT9", [(98, "0"), (108, "30")]))
        got = read_frames(intruder, lambda fs: bool(fs) and fs[-1].get(0) == "closed")
        assert got[0][35] == "5" and "unknown session" in got[0][58] and got[-1].get(0) == "closed"
    a = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        a.sendall(raw_msg("A", 1, "CLIENT8", [(98, "0"), (108, "30"), (141, "Y")]))
        logon = read_frames(a, lambda fs: any(f.get(35) == "A" for f in fs))[-1]
        assert logon[35] == "A" and logon[34] == "1" and logon[141] == "Y"
        sent = time.mktime(time.strptime(logon[52][:17], "%Y%m%d-%H:%M:%S"))
        assert abs(sent - time.mktime(time.gmtime())) < 10, "SendingTime is the wall clock (UTC)"
        with socket.create_connection(("127.0.0.1", port), timeout=5) as second:
            second.sendall(raw_msg("A", 1, "CLIENT8", [(98, "0"), (108, "30")]))
            got = read_frames(second, lambda fs: bool(fs) and fs[-1].get(0) == "closed")
            assert got[0][35] == "5" and "already connected" in got[0][58]
        a.sendall(raw_msg("1", 2, "CLIENT8", [(112, "PING")]))
        assert read_frames(a, lambda fs: any(f.get(112) == "PING" for f in fs))[-1][35] == "0"
        a.sendall(raw_msg("5", 3, "CLIENT8"))
        got = read_frames(a, lambda fs: bool(fs) and fs[-1].get(0) == "closed")
        assert [f.get(35) for f in got[:-1]] == ["5"]
    finally:
        a.close()
    # logged out: a new connection logs on with the next numbers, and the server goes on counting
    with socket.create_connection(("127.0.0.1", port), timeout=5) as b:
        b.sendall(raw_msg("A", 4, "CLIENT8", [(98, "0"), (108, "30")]))
        got = read_frames(b, lambda fs: any(f.get(35) == "A" for f in fs))
        assert got[-1][35] == "A" and got[-1][34] == "4" and 141 not in got[-1]
        b.sendall(raw_msg("5", 5, "CLIENT8"))
        read_frames(b, lambda fs: bool(fs) and fs[-1].get(0) == "closed")


def test_out_writes_the_served_session_as_a_run_folder_and_logons_are_logged(tmp_path: Path) -> None:
    """``serve --out DIR``: at exit the session's orders, trades and FIX messages are a run folder;
    the server's log names each logon and logout."""
    out = tmp_path / "served"
    srv = Server("--scenario", "quiet", "--out", str(out), duration=60.0)
    client = Client(tmp_path, srv.port, "CLIENT3")
    try:
        client.start()
        cl = uid("O")
        client.send(new_order(cl, "B", 7, "95.00"))
        client.expect(mt("8", _11=cl, _150="0"))
        client.stop()
        assert client.app.logged_out.wait(WAIT)
    finally:
        client.stop()
        code = srv.terminate()
    err = srv.proc.stderr.read() if srv.proc.stderr else ""
    assert code == 0, err
    assert "CLIENT3 logged on" in err and "CLIENT3 disconnected" in err
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["mode"] == "serve" and summary["scenario"] == "quiet" and len(summary["digest"]) == 64
    fix_messages = pd.read_parquet(out / "fix_messages.parquet")
    assert cl in set(fix_messages["cl_ord_id"])
    orders = pd.read_parquet(out / "orders.parquet")
    mine = orders[(orders["owner"] == "fix-gateway") & (orders["qty"] == 7)]
    assert not mine.empty and (mine["price"] == 9500).any()
    refused = subprocess.run(
        [sys.executable, "-m", "desksim.cli", "serve", "--port", str(free_port()), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "exists" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


# =============================================================================================
# the conformance profile: the session behaviour QuickFIX's FIX 4.4 acceptance definitions check
# =============================================================================================
@pytest.fixture(scope="module")
def conformance() -> Iterator[Server]:
    yield from serving("--profile", "conformance")


def at_msg(
    msg_type: str,
    seq: int,
    fields: list[tuple[int, str]] | None = None,
    *,
    sender: str = "TW",
    target: str = "ISLD",
    header: list[tuple[int, str]] | None = None,
    offset_s: float = 0.0,
) -> bytes:
    """A frame to the conformance session (TW or TW44 -> ISLD), SendingTime now + ``offset_s``."""
    ts = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(time.time() + offset_s))
    return raw_frame([(35, msg_type), (34, str(seq)), (49, sender), (52, ts), (56, target), *(header or []),
                      *(fields or [])])  # fmt: skip


def at_logon(sock: socket.socket, sender: str = "TW", extra: list[tuple[int, str]] | None = None) -> dict[int, str]:
    sock.sendall(at_msg("A", 1, [(98, "0"), (108, "30"), *(extra or [])], sender=sender))
    got = read_frames(sock, lambda fs: any(f.get(35) == "A" for f in fs))
    assert got and got[-1][35] == "A", got
    return got[-1]


def until_type(msg_type: str) -> Callable[[list[dict[int, str]]], bool]:
    return lambda fs: any(f.get(35) == msg_type or f.get(0) == "closed" for f in fs)


ORDER = [(11, "ID"), (21, "3"), (40, "1"), (54, "1"), (55, "INTC"), (60, time.strftime("%Y%m%d-%H:%M:%S"))]


def test_conformance_logon_answer_carries_reset_flag_only_when_asked(conformance: Server) -> None:
    """Both TW and TW44 are served; ResetOnLogon restarts at 1 without 141=Y in the answer unless
    the Logon asked for it (failed before: every answer carried 141=Y, and TW was refused)."""
    for sender in ("TW", "TW44"):
        with socket.create_connection(("127.0.0.1", conformance.port), timeout=5) as s:
            answer = at_logon(s, sender)
            assert answer[34] == "1" and answer[56] == sender and 141 not in answer
    with socket.create_connection(("127.0.0.1", conformance.port), timeout=5) as s:
        assert at_logon(s, extra=[(141, "Y")])[141] == "Y"
        # a Logon with 141=Y while logged on resets both sides: answered with 34=1, 141=Y
        s.sendall(at_msg("0", 2))
        s.sendall(at_msg("A", 1, [(98, "0"), (108, "30"), (141, "Y")]))
        again = read_frames(s, until_type("A"))[-1]
        assert again[35] == "A" and again[34] == "1" and again[141] == "Y"
        s.sendall(at_msg("1", 2, [(112, "AFTER")]))
        hb = read_frames(s, lambda fs: any(f.get(112) == "AFTER" for f in fs))[-1]
        assert hb[35] == "0" and hb[34] == "2"


def test_conformance_rejects_use_standard_text_reverse_route_and_ref_fields(conformance: Server) -> None:
    """Session Rejects as FIX engines word them: the standard Text, RefTagID for the offending
    tag, RefMsgType even for an unknown type, the routing fields reversed (OnBehalfOf -> DeliverTo);
    an empty routing field is a Reject 373=4 and is not carried back."""
    with socket.create_connection(("127.0.0.1", conformance.port), timeout=5) as s:
        at_logon(s, "TW44")
        cases = [
            (at_msg("0", 2, [(999, "HI")], sender="TW44"), {58: "Invalid tag number", 371: "999", 373: "0"}),
            (at_msg("D", 3, [*ORDER[:2], (40, "w"), *ORDER[3:]], sender="TW44", header=[(115, "JCD"), (116, "CS")]),
             {58: "Value is incorrect (out of range) for this tag", 371: "40", 372: "D", 373: "5", 128: "JCD",
              129: "CS"}),
            (at_msg("*", 4, sender="TW44"), {58: "Invalid MsgType", 372: "*", 373: "11"}),
            (at_msg("D", 5, ORDER, sender="TW44", header=[(115, "")]),
             {58: "Tag specified without a value", 371: "115", 372: "D", 373: "4"}),
            (at_msg("D", 6, [(11, "ID"), (21, "1"), (40, "1"), (54, "1"), (38, "+200.00"), (55, "INTC"),
                             (60, ORDER[-1][1])], sender="TW44"),
             {58: "Incorrect data format for value", 371: "38", 372: "D", 373: "6"}),
        ]  # fmt: skip
        for frame, want in cases:
            s.sendall(frame)
            reject = read_frames(s, until_type("3"))[-1]
            assert reject[35] == "3", reject
            assert {k: reject.get(k) for k in want} == want, reject
            routing = {115, 116, 128, 129, 144, 145}
            assert routing & set(reject) == routing & set(want), reject  # nothing else routed back
            assert (371 in reject) == (371 in want), reject


def test_conformance_compid_problem_is_reject_logout_then_the_session_ends(conformance: Server) -> None:
    """A wrong CompID while logged on: Reject 373=9 without RefTagID, then a Logout without Text;
    the session ends when the peer answers it. A Logon to an unknown session is not answered
    (the connection just closes), nor is a connection whose first frame is garbled."""
    with socket.create_connection(("127.0.0.1", conformance.port), timeout=5) as s:
        at_logon(s)
        s.sendall(at_msg("D", 2, ORDER, sender="WT"))
        got = read_frames(s, until_type("5"))
        reject, logout = got[-2], got[-1]
        assert reject[35] == "3" and reject[373] == "9" and reject[58] == "CompID problem" and 371 not in reject
        assert logout[35] == "5" and 58 not in logout and logout[34] == "3"
        s.sendall(at_msg("5", 3))
        assert read_frames(s, lambda fs: bool(fs) and fs[-1].get(0) == "closed")[-1] == {0: "closed"}
    for first in (
        at_msg("A", 1, [(98, "0"), (108, "30")], sender="WT"),  # unknown session
        re.sub(rb"\x019=\d+", b"\x019=40", at_msg("A", 1, [(98, "0"), (108, "30")]), count=1),
    ):  # garbled
        with socket.create_connection(("127.0.0.1", conformance.port), timeout=5) as s:
            s.sendall(first)
            assert read_frames(s, lambda fs: bool(fs) and fs[-1].get(0) == "closed") == [{0: "closed"}]


def test_conformance_possdup_too_low_checks_orig_sending_time(conformance: Server) -> None:
    """A PossDup message below the expected MsgSeqNum: without OrigSendingTime a Reject 373=1
    (371=122); with OrigSendingTime after SendingTime a Reject 373=10 and a Logout; a
    ResendRequest is honoured even with a MsgSeqNum already used (a GapFill over admin messages)."""
    with socket.create_connection(("127.0.0.1", conformance.port), timeout=5) as s:
        at_logon(s, "TW44")
        s.sendall(at_msg("D", 2, ORDER, sender="TW44"))
        assert read_frames(s, until_type("D"))[-1][11] == "ID"
        s.sendall(at_msg("D", 2, ORDER, sender="TW44", header=[(43, "Y")]))
        missing = read_frames(s, until_type("3"))[-1]
        assert (missing[373], missing[371], missing[58]) == ("1", "122", "Required tag missing")
        s.sendall(at_msg("2", 2, [(7, "1"), (16, "0")], sender="TW44"))  # too low, honoured anyway
        gap = read_frames(s, until_type("4"))
        fills = [f for f in gap if f.get(35) == "4"]
        assert fills and fills[0][123] == "Y" and fills[0][43] == "Y"
        s.sendall(at_msg("0", 3, sender="TW44"))
        later = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(time.time() + 10))
        s.sendall(at_msg("D", 2, ORDER, sender="TW44", header=[(43, "Y"), (122, later)]))
        got = read_frames(s, until_type("5"))
        assert [f.get(35) for f in got[-2:]] == ["3", "5"] and got[-2][373] == "10" and 371 not in got[-2]
