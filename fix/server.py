"""``desksim serve``: the simulated exchange behind a real quickfix SocketAcceptor on loopback.

    desksim serve --port 9878 --scenario quiet          # FIX 4.4 order entry, CLIENT1..CLIENT8
    desksim serve --profile conformance --port 9879     # QuickFIX acceptance-test target

Default profile. FIX.4.4 sessions ``DESKSIM`` <-> ``CLIENT1`` ... ``CLIENT8`` (DataDictionary
validation with the FIX44.xml of the quickfix install). The scenario runs paced to wall-clock
time: one thread (the caller's) loops over

    acceptor.poll()                      quickfix reads sockets, runs the session layer and calls
                                         the Application, which only queues what it got
    drain the queue                      app messages -> ClientGateway (a kernel actor owning the
                                         same ``fix.gateway.GatewayCore`` the simulation uses)
    kernel.advance(start + wall x speed) exchange, agents and gateway run; ExecutionReports and
                                         market data leave with ``Session.sendToTarget``

so every piece of simulation state, and quickfix itself, is touched by one thread only (the
acceptor is driven with ``poll()``; quickfix starts no thread of its own). FIX clients' orders
enter the same Exchange actor as the simulated agents. MarketDataRequest -> a W snapshot from
the exchange book (``QueryBook``), then X incrementals on top-of-book changes and trades. A
logout or disconnect cancels the session's open orders (``--no-cancel-on-disconnect`` turns
that off); the cancel ExecutionReports wait in the session's store for the next logon.

Conformance profile (``--profile conformance``): the settings of QuickFIX's own FIX 4.4
acceptance tests -- BeginString FIX.4.4, SenderCompID ``ISLD``, TargetCompID ``TW44``,
ResetOnLogon=Y, FIX44.xml validation -- and the behaviour of their test application: a
NewOrderSingle or SecurityDefinition is echoed back, a NewOrderSingle resent (PossResend=Y)
with a ClOrdID already seen in the session is ignored (the set is cleared at logout), and every
other application message gets BusinessMessageReject (UnsupportedMessageType). No scenario runs.

Binding (``--host``). quickfix 1.16's SocketAcceptor binds 0.0.0.0 whatever SocketAcceptHost
says. The server therefore owns the listening socket: the first ``poll()`` makes quickfix create
its listener; before quickfix accepts anything, that descriptor is replaced (``dup2``) by a
socket bound to ``--host``:``--port``, and quickfix goes on accepting from it. Sessions also
carry ``AllowedRemoteAddresses=127.0.0.1`` (quickfix drops a logon from any other peer), so a
failed swap (a platform without /proc or /dev/fd) still refuses non-loopback peers; the server
says so on stderr. A non-loopback ``--host`` needs ``--allow-remote``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import ipaddress
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from string import Template
from typing import Any

import quickfix as fix

from actors.messages import (
    ORDER_ID_SHIFT,
    BookSnapshot,
    CancelRejected,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    QueryBook,
    QuoteUpdated,
    SubscribeMarketData,
    TradePrinted,
)
from fix.codec import Codec, MarketDataReq, default_data_dictionary_path
from fix.gateway import GatewayCore
from sim.actor import Actor, handles

__all__ = [
    "CONFORMANCE_SENDER",
    "CONFORMANCE_TARGET",
    "DEFAULT_PORT",
    "SENDER_COMP_ID",
    "TARGET_COMP_IDS",
    "ClientGateway",
    "FixServer",
    "ServeError",
    "ServeOptions",
    "add_arguments",
    "main",
]

log = logging.getLogger("desksim.serve")

DEFAULT_PORT = 9878
SENDER_COMP_ID = "DESKSIM"
TARGET_COMP_IDS = tuple(f"CLIENT{i}" for i in range(1, 9))
CONFORMANCE_SENDER = "ISLD"
CONFORMANCE_TARGET = "TW44"
BEGIN_STRING = "FIX.4.4"
SPEC_DIR = Path(__file__).resolve().parent / "spec"
FULL_BOOK_LEVELS = 1000  # MarketDepth 0 (full book) is served as this many levels
_SHUTDOWN_LOGOUT_S = 2.0


class ServeError(Exception):
    """Bad options or an environment the server cannot run in (exit code 2)."""


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    scenario: str = "baseline"
    seed: int | None = None
    profile: str = "default"  # "default" | "conformance"
    speed: float = 1.0  # simulated seconds per wall-clock second
    duration: float | None = None  # stop after this many wall-clock seconds
    store: str | None = None  # FileStore + FileLog directory (default: memory store, no log)
    cancel_on_disconnect: bool = True
    allow_remote: bool = False
    step_ms: float = 1.0  # wall-clock granularity of the kernel's steps


# =============================================================================================
# the gateway actor
# =============================================================================================
class ClientGateway(Actor):
    """Kernel actor between the FIX sessions of ``desksim serve`` and the Exchange actor.

    The server thread calls :meth:`deliver` / :meth:`disconnected` between kernel steps; book
    events, market data and book snapshots arrive as kernel messages. Outbound FIX messages go
    to ``send_app(session_key, message)``.
    """

    def __init__(
        self,
        name: str,
        codec: Codec,
        exchange: str,
        symbol: str,
        send_app: Any,
        *,
        cancel_on_disconnect: bool = True,
        epoch_offset_ns: int = 0,
        location: str = "fix",
    ) -> None:
        super().__init__(name, location)
        self.exchange_name = exchange
        self.symbol = symbol
        self.epoch_offset_ns = epoch_offset_ns  # simulated time-of-day -> TransactTime
        self.exchange = -1
        self._n = 0
        self._pending_books: collections.deque[tuple[str | None, MarketDataReq | None]] = collections.deque()
        self.last_trade: tuple[int, int] | None = None
        self.core = GatewayCore(
            codec,
            new_order_id=self._new_order_id,
            send_app=send_app,
            send_command=self._send_command,
            on_md_request=self._on_md_request,
            symbols=[symbol],
            cancel_on_disconnect=cancel_on_disconnect,
        )

    def on_start(self) -> None:
        self.exchange = self.lookup(self.exchange_name)
        self.send(self.exchange, SubscribeMarketData(self.symbol))

    # -- from the server thread ------------------------------------------------------------------
    def wall_now(self) -> int:
        return self.epoch_offset_ns + self.now

    def deliver(self, session_key: str, msg: Any) -> None:
        self.core.on_app(session_key, msg, self.wall_now())

    def disconnected(self, session_key: str) -> None:
        self.core.now_ns = self.wall_now()
        self.core.on_disconnect(session_key)

    # -- core callbacks --------------------------------------------------------------------------
    def _new_order_id(self) -> int:
        self._n += 1
        return (self.id << ORDER_ID_SHIFT) | self._n

    def _send_command(self, cmd: Any) -> None:
        self.send(self.exchange, cmd)

    def _on_md_request(self, session_key: str, req: MarketDataReq) -> None:
        levels = req.depth if req.depth > 0 else FULL_BOOK_LEVELS
        for symbol in req.symbols:
            self._pending_books.append((session_key, req))
            self.send(self.exchange, QueryBook(symbol, levels))

    # -- kernel messages -------------------------------------------------------------------------
    @handles(OrderAccepted, OrderRejected, OrderFilled, OrderCanceled, OrderReplaced, CancelRejected)
    def on_book_event(self, event: Any, src: int) -> None:
        self.core.on_book_event(event, self.wall_now())

    @handles(BookSnapshot)
    def on_book(self, snap: BookSnapshot, src: int) -> None:
        if not self._pending_books:
            return
        session_key, req = self._pending_books.popleft()
        if session_key is None or req is None:
            return
        self.core.now_ns = self.wall_now()
        bids, asks = list(snap.bids), list(snap.asks)
        trades = [self.last_trade] if self.last_trade is not None else []
        types = set(req.entry_types) or {"0", "1", "2"}
        try:
            self.core.publish_snapshot(
                session_key,
                snap.symbol,
                bids if "0" in types else [],
                asks if "1" in types else [],
                trades if "2" in types else [],
                req.md_req_id,
            )
        except Exception as exc:  # never let the kernel die for a market-data message
            log.exception("snapshot for %s failed: %s", session_key, exc)

    @handles(QuoteUpdated)
    def on_quote(self, q: QuoteUpdated, src: int) -> None:
        self.core.now_ns = self.wall_now()
        entries = GatewayCore.top_of_book_entries(q.symbol, q.bid, q.bid_qty, q.ask, q.ask_qty)
        self._publish(q.symbol, entries)

    @handles(TradePrinted)
    def on_trade(self, t: TradePrinted, src: int) -> None:
        self.core.now_ns = self.wall_now()
        self.last_trade = (t.price, t.qty)
        self._publish(t.symbol, [GatewayCore.trade_entry(t.symbol, t.price, t.qty)])

    def _publish(self, symbol: str, entries: list[Any]) -> None:
        subs = self.core.subscriptions(symbol)
        if not subs:
            return
        try:
            self.core.publish_incremental(symbol, entries)
        except Exception as exc:
            log.exception("incremental refresh failed: %s", exc)
        for session_key, req in subs:  # full-refresh subscribers get a fresh snapshot
            if req.update_type == "0":
                self._pending_books.append((session_key, req))
                self.send(self.exchange, QueryBook(symbol, req.depth if req.depth > 0 else FULL_BOOK_LEVELS))

    def unhandled(self, msg: Any, src: int) -> None:
        pass  # e.g. trading-status events: not part of this gateway's FIX surface


# =============================================================================================
# quickfix Application
# =============================================================================================
class _Application(fix.Application):
    """Queues what quickfix hands over; everything is processed by the server loop.

    Callbacks never raise: an exception escaping into quickfix would tear the session down. The
    one exception is deliberate: :func:`screen_inbound` raises quickfix's own IncorrectDataFormat /
    IncorrectTagValue from ``fromApp``, which quickfix answers with a session Reject (35=3).
    """

    def __init__(self, conformance: bool, codec: Codec) -> None:
        super().__init__()
        self.conformance = conformance
        self.codec = codec
        self.inbox: collections.deque[tuple[str, str, Any]] = collections.deque()
        self.sessions: dict[str, Any] = {}  # session key -> SessionID
        self.logged_on: set[str] = set()
        self._seen: dict[str, set[str]] = {}  # conformance: ClOrdIDs per session
        self.errors = 0

    def onCreate(self, sessionID: Any) -> None:
        self.sessions[sessionID.toString()] = sessionID

    def onLogon(self, sessionID: Any) -> None:
        key = sessionID.toString()
        self.logged_on.add(key)
        self.inbox.append(("logon", key, None))

    def onLogout(self, sessionID: Any) -> None:
        key = sessionID.toString()
        self.logged_on.discard(key)
        self._seen.pop(key, None)
        self.inbox.append(("logout", key, None))

    def toAdmin(self, message: Any, sessionID: Any) -> None:
        pass

    def fromAdmin(self, message: Any, sessionID: Any) -> None:
        pass

    def toApp(self, message: Any, sessionID: Any) -> None:
        pass

    def fromApp(self, message: Any, sessionID: Any) -> None:
        if not self.conformance:
            screen_inbound(message)  # raises the quickfix exception -> quickfix sends the Reject (3)
        try:
            if self.conformance:
                self._echo(message, sessionID)
            else:
                self.inbox.append(("app", sessionID.toString(), fix.Message(message)))
        except Exception as exc:
            self.errors += 1
            log.exception("fromApp failed: %s", exc)
            with contextlib.suppress(Exception):
                msg_type = message.getHeader().getField(35)
                seq = int(message.getHeader().getField(34))
                send(self.codec.business_message_reject(msg_type, 0, f"internal error: {exc}", seq), sessionID)

    # -- QuickFIX acceptance-test application ------------------------------------------------------
    def _echo(self, message: Any, sessionID: Any) -> None:
        header = message.getHeader()
        msg_type = header.getField(35)
        if msg_type == "D":
            key = sessionID.toString()
            cl = message.getField(11) if message.isSetField(11) else ""
            seen = self._seen.setdefault(key, set())
            if header.isSetField(97) and header.getField(97) == "Y" and cl in seen:
                return
            seen.add(cl)
            send(fix.Message(message), sessionID)
        elif msg_type == "d":
            send(fix.Message(message), sessionID)
        else:
            seq = int(header.getField(34)) if header.isSetField(34) else None
            send(self.codec.business_message_reject(msg_type, 3, "Unsupported Message Type", seq), sessionID)


# OrderQty and Price become exact integers inside (Decimal arithmetic, 28 significant digits):
# beyond this magnitude a value is refused before it reaches the gateway (found by fuzzing: a
# 400-digit Price passed the DataDictionary, then building the ExecutionReport that echoes it
# raised decimal.InvalidOperation and the client got no answer at all).
_MAX_MAGNITUDE = {38: Decimal(10) ** 15, 44: Decimal(10) ** 15}


def screen_inbound(message: Any) -> None:
    """Refuse an application message the gateway could not answer, by raising the exception
    quickfix turns into a session-level Reject (35=3) with RefTagID, RefSeqNum and
    SessionRejectReason:

    * a value that is not UTF-8 (the Python binding hands it over with surrogate escapes, and
      no message echoing it -- ExecutionReport, BusinessMessageReject -- can be built): 373=6;
    * an OrderQty or Price whose magnitude the codec cannot represent exactly: 373=5.
    """
    raw = message.toString()
    if not raw.isascii():
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError as exc:
            start = raw.rfind("\x01", 0, exc.start) + 1
            tag = raw[start : raw.find("=", start)]
            raise fix.IncorrectDataFormat(int(tag) if tag.isdigit() else 0) from None
    for tag, limit in _MAX_MAGNITUDE.items():
        if message.isSetField(tag):
            try:
                value = Decimal(message.getField(tag))
            except (InvalidOperation, ValueError):
                continue  # a format problem: the DataDictionary has already refused it
            if not value.is_finite() or abs(value) >= limit:
                raise fix.IncorrectTagValue(tag)


def send(msg: Any, session_id: Any) -> bool:
    """``Session.sendToTarget`` that never raises (False when the session is unknown)."""
    try:
        return bool(fix.Session.sendToTarget(msg, session_id))
    except Exception as exc:
        log.warning("sendToTarget %s failed: %s", session_id.toString(), exc)
        return False


# =============================================================================================
# helpers
# =============================================================================================
def is_loopback(host: str) -> bool:
    try:
        addr = socket.gethostbyname(host)
    except OSError:
        return False
    return ipaddress.ip_address(addr).is_loopback


def session_settings_text(
    profile: str, port: int, store: str, log_dir: str, data_dictionary: str, loopback_only: bool
) -> str:
    template = Template((SPEC_DIR / ("conformance.cfg" if profile == "conformance" else "serve.cfg")).read_text())
    text = template.substitute(
        port=port,
        store=store,
        log=log_dir,
        data_dictionary=data_dictionary,
        allowed_remote="AllowedRemoteAddresses=127.0.0.1" if loopback_only else "",
    )
    if profile == "conformance":
        pairs = [(CONFORMANCE_SENDER, CONFORMANCE_TARGET)]
    else:
        pairs = [(SENDER_COMP_ID, t) for t in TARGET_COMP_IDS]
    for sender, target in pairs:
        text += f"\n[SESSION]\nBeginString={BEGIN_STRING}\nSenderCompID={sender}\nTargetCompID={target}\n"
    return text


def _find_listener(port: int) -> int | None:
    """The descriptor of this process's listening TCP socket on ``port`` (quickfix's)."""
    fd_dir = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return None
    for name in names:
        try:
            fd = int(name)
            dup = os.dup(fd)
        except (ValueError, OSError):
            continue
        try:
            s = socket.socket(fileno=dup)
        except OSError:
            os.close(dup)
            continue
        try:
            if (
                s.type == socket.SOCK_STREAM
                and s.family == socket.AF_INET
                and s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                and s.getsockname()[1] == port
            ):
                return fd
        except OSError:
            pass
        finally:
            s.close()
    return None


def rebind_listener(port: int, host: str) -> bool:
    """Replace quickfix's 0.0.0.0 listener on ``port`` by one bound to ``host`` (same fd)."""
    fd = _find_listener(port)
    if fd is None:
        return False
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fresh = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    os.dup2(fresh.fileno(), fd)  # closes quickfix's listener: the port is free again
    fresh.close()
    s = socket.socket(fileno=os.dup(fd))
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(128)
    finally:
        s.close()
    fcntl.fcntl(fd, fcntl.F_SETFL, flags)
    return True


def _utc_midnight_ns() -> int:
    now = time.time_ns()
    return now - now % (86_400 * 1_000_000_000)


# =============================================================================================
# the server
# =============================================================================================
class FixServer:
    """One ``desksim serve`` process: kernel + acceptor, driven by :meth:`run` in one thread."""

    def __init__(self, opts: ServeOptions) -> None:
        self.opts = opts
        self._validate()
        self._stop = False
        self._tmp: str | None = None
        self.kernel: Any = None
        self.gateway: ClientGateway | None = None
        self.scenario: Any = None
        self.acceptor: Any = None
        self.rebound = False
        conformance = opts.profile == "conformance"
        tick = 0.01
        if not conformance:
            tick = self._build_simulation().tick_size
        self.codec = Codec(tick)
        self.app = _Application(conformance, self.codec)
        self._make_acceptor()

    # -- set-up ---------------------------------------------------------------------------------
    def _validate(self) -> None:
        o = self.opts
        if o.profile not in ("default", "conformance"):
            raise ServeError(f"--profile must be 'default' or 'conformance', got {o.profile!r}")
        if not 0 < o.port < 65536:
            raise ServeError(f"--port must be 1..65535, got {o.port}")
        if not o.speed > 0:
            raise ServeError("--speed must be > 0")
        if o.duration is not None and not o.duration > 0:
            raise ServeError("--duration must be > 0 seconds")
        if o.step_ms <= 0:
            raise ServeError("--step-ms must be > 0")
        try:
            socket.gethostbyname(o.host)
        except OSError:
            raise ServeError(f"--host {o.host!r}: cannot resolve") from None
        if not is_loopback(o.host) and not o.allow_remote:
            raise ServeError(
                f"--host {o.host} is not a loopback address: an order-entry port open to the network "
                "is refused unless --allow-remote is given"
            )

    def _build_simulation(self) -> Any:
        """Kernel with the scenario's actors plus the FIX gateway; returns the scenario."""
        from actors.build import build
        from scenarios.schema import load
        from sim.kernel import Kernel
        from sim.network import Network
        from sim.record import Recorder
        from sim.rng import RandomStreams

        scenario = load(self.opts.scenario)  # ScenarioError -> caller (exit 2)
        seed = scenario.seed if self.opts.seed is None else int(self.opts.seed)
        assembly = build(scenario, Recorder(), seed)
        kernel = Kernel(Network(assembly.network), RandomStreams(seed), assembly.start_ns)
        for actor in assembly.actors:
            kernel.add(actor)
        self.gateway = ClientGateway(
            "fix-gateway",
            Codec(scenario.tick_size),
            assembly.exchange.name,
            scenario.symbol,
            self._send_app,
            cancel_on_disconnect=self.opts.cancel_on_disconnect,
            epoch_offset_ns=_utc_midnight_ns(),
        )
        kernel.add(self.gateway)
        self.scenario, self.kernel, self.assembly, self.seed = scenario, kernel, assembly, seed
        return scenario

    def _make_acceptor(self) -> None:
        o = self.opts
        if o.store:
            base = Path(o.store)
            base.mkdir(parents=True, exist_ok=True)
        else:
            self._tmp = tempfile.mkdtemp(prefix="desksim-serve-")
            base = Path(self._tmp)
        store, log_dir = base / "store", base / "log"
        loopback_only = not o.allow_remote
        text = session_settings_text(
            o.profile, o.port, str(store), str(log_dir), default_data_dictionary_path(), loopback_only
        )
        cfg = base / f"{o.profile}.cfg"
        cfg.write_text(text, encoding="utf-8")
        settings = fix.SessionSettings(str(cfg))
        self._settings = settings  # quickfix keeps references: keep the Python objects alive
        if o.store:
            self._store_factory: Any = fix.FileStoreFactory(settings)
            self._log_factory: Any = fix.FileLogFactory(settings)
            self.acceptor = fix.SocketAcceptor(self.app, self._store_factory, settings, self._log_factory)
        else:
            self._store_factory = fix.MemoryStoreFactory()
            self.acceptor = fix.SocketAcceptor(self.app, self._store_factory, settings)

    # -- outbound -------------------------------------------------------------------------------
    def _send_app(self, session_key: str, msg: Any) -> None:
        sid = self.app.sessions.get(session_key)
        if sid is None:
            log.warning("no session %s", session_key)
            return
        send(msg, sid)

    # -- running --------------------------------------------------------------------------------
    def listen(self) -> None:
        """Create the listener (first poll) and move it to ``--host``."""
        try:
            self.acceptor.poll()
        except Exception as exc:
            raise ServeError(f"cannot listen on port {self.opts.port}: {exc}") from None
        try:
            self.rebound = rebind_listener(self.opts.port, socket.gethostbyname(self.opts.host))
        except OSError as exc:
            self.stop_acceptor()
            raise ServeError(f"cannot bind {self.opts.host}:{self.opts.port}: {exc}") from None
        if not self.rebound:
            print(
                "desksim serve: warning: could not rebind quickfix's listener; it listens on every "
                "interface, and logons from non-loopback peers are refused (AllowedRemoteAddresses)",
                file=sys.stderr,
            )

    def banner(self) -> str:
        o = self.opts
        if o.profile == "conformance":
            what = f"conformance profile, session {CONFORMANCE_SENDER}<-{CONFORMANCE_TARGET}, ResetOnLogon=Y"
        else:
            what = (
                f"scenario {self.scenario.name}, symbol {self.scenario.symbol}, "
                f"sessions {TARGET_COMP_IDS[0]}..{TARGET_COMP_IDS[-1]}"
            )
        return f"desksim serve: listening on {o.host}:{o.port} ({what})"

    def request_stop(self, *_: Any) -> None:
        self._stop = True

    def _drain(self) -> int:
        inbox = self.app.inbox
        n = 0
        gw = self.gateway
        while inbox:
            kind, key, msg = inbox.popleft()
            n += 1
            if gw is None:
                continue
            try:
                if kind == "app":
                    gw.deliver(key, msg)
                elif kind == "logout":
                    gw.disconnected(key)
            except Exception as exc:  # GatewayCore never raises; belt and braces
                log.exception("gateway failed on %s from %s: %s", kind, key, exc)
        return n

    def run(self) -> None:
        """Serve until :meth:`request_stop` (signals) or ``--duration``."""
        o = self.opts
        kernel = self.kernel
        step_s = o.step_ms / 1000.0
        t0 = time.perf_counter()
        deadline = None if o.duration is None else t0 + o.duration
        sim0 = kernel.now if kernel is not None else 0
        if kernel is not None:
            kernel.start()
        poll = self.acceptor.poll
        next_step = t0
        while not self._stop:
            poll()
            busy = self._drain()
            now = time.perf_counter()
            if deadline is not None and now >= deadline:
                break
            if kernel is not None and (busy or now >= next_step):
                target = sim0 + int((now - t0) * o.speed * 1e9)
                if target > kernel.now:
                    kernel.advance(target)
                next_step = now + step_s
            if not busy and not self.app.inbox:
                time.sleep(min(step_s, 0.0005))

    def shutdown(self) -> None:
        """Log every session out (waiting briefly for the answers), then stop the acceptor."""
        try:
            for key in list(self.app.logged_on):
                sid = self.app.sessions.get(key)
                session = fix.Session.lookupSession(sid) if sid is not None else None
                if session is not None:
                    session.logout("server shutting down")
            end = time.perf_counter() + _SHUTDOWN_LOGOUT_S
            while self.app.logged_on and time.perf_counter() < end:
                self.acceptor.poll()
                self._drain()
                time.sleep(0.005)
        except Exception as exc:
            log.warning("logout at shutdown: %s", exc)
        self.stop_acceptor()

    def stop_acceptor(self) -> None:
        with contextlib.suppress(Exception):
            self.acceptor.stop(True)
        if self.kernel is not None:
            with contextlib.suppress(Exception):
                self.kernel.stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


# =============================================================================================
# command line
# =============================================================================================
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    p.add_argument("--scenario", default="baseline", help="scenario file or bundled name (default baseline)")
    p.add_argument("--seed", type=int, default=None, help="root seed (default: the scenario's)")
    p.add_argument("--profile", choices=("default", "conformance"), default="default")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall-clock second")
    p.add_argument("--duration", type=float, default=None, help="stop after S wall-clock seconds")
    p.add_argument("--store", default=None, help="FileStore/FileLog directory (default: memory store)")
    p.add_argument(
        "--no-cancel-on-disconnect",
        dest="cancel_on_disconnect",
        action="store_false",
        help="keep a session's orders working after it logs out",
    )
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    p.add_argument("--step-ms", type=float, default=1.0, help="kernel step in wall-clock ms (default 1)")


def options_from_args(args: argparse.Namespace) -> ServeOptions:
    return ServeOptions(
        host=args.host,
        port=args.port,
        scenario=args.scenario,
        seed=args.seed,
        profile=args.profile,
        speed=args.speed,
        duration=args.duration,
        store=args.store,
        cancel_on_disconnect=args.cancel_on_disconnect,
        allow_remote=args.allow_remote,
        step_ms=args.step_ms,
    )


def serve(opts: ServeOptions) -> int:
    """Run the server in this thread; returns the exit code."""
    from scenarios.schema import ScenarioError

    logging.basicConfig(level=logging.WARNING, format="desksim serve: %(levelname)s %(message)s")
    state: dict[str, Any] = {"server": None, "stop": False}

    def on_signal(signum: int, frame: Any) -> None:
        state["stop"] = True
        if state["server"] is not None:
            state["server"].request_stop()

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):  # installed first: a signal during start-up stops cleanly
        with contextlib.suppress(ValueError):  # not the main thread: no signal handling
            previous[sig] = signal.signal(sig, on_signal)
    try:
        try:
            server = FixServer(opts)
        except (ServeError, ScenarioError) as exc:
            print(f"desksim: error: {exc}", file=sys.stderr)
            return 2
        try:
            server.listen()
        except ServeError as exc:
            server.stop_acceptor()
            print(f"desksim: error: {exc}", file=sys.stderr)
            return 2
        state["server"] = server
        if state["stop"]:
            server.request_stop()
        try:
            print(server.banner(), flush=True)
            server.run()
        finally:
            server.shutdown()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("desksim serve: stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="desksim serve", description="FIX 4.4 exchange on loopback.")
    add_arguments(parser)
    return serve(options_from_args(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
