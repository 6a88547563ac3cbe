"""``desksim serve``: the simulated exchange over real TCP, on desksim's own FIX stack.

    desksim serve --port 9878 --scenario quiet          # FIX 4.4 order entry, CLIENT1..CLIENT8
    desksim serve --profile conformance --port 9879     # QuickFIX acceptance-test target

The same session layer (:class:`fix.session.FixSession`) and the same gateway actor
(:class:`fix.gateway_actor.FixGateway`) as in a simulated run; only the transport differs: a
:class:`fix.transport.TcpAcceptor` bound to ``--host`` (127.0.0.1 by default; another address
needs ``--allow-remote``) instead of the simulated links. quickfix is the codec and the
DataDictionary, nothing else. One thread (the caller's) loops over

    acceptor.poll(timeout)      read sockets, split frames, FixSession.on_raw -> GatewayCore
                                (orders become kernel messages to the exchange)
    kernel.advance(wall x speed) exchange, agents and gateway run; ExecutionReports and market
                                data leave through the sessions into the connections' buffers
    session timers              heartbeats, TestRequest, timeouts on wall time
    acceptor.flush()            write what is queued

so every piece of state is touched by one thread and no lock is needed. The wait in ``poll``
ends when the kernel's next event is due (at most ``--step-ms`` while events are pending; an
event due within a millisecond, which select() cannot wait for, is awaited in short naps).
Writes are batched: what one turn produces leaves in one ``send`` per connection.

Default profile: sessions ``DESKSIM`` <- ``CLIENT1`` .. ``CLIENT8`` (the first frame of a
connection names the session; an unknown pair, or a second connection for a session already
connected, gets a Logout and is closed, and is logged). Sequence numbers persist across
reconnects unless the Logon carries ResetSeqNumFlag=Y. SendingTime is the wall clock (UTC),
TransactTime today's date with the simulated time of day. A logout or disconnect cancels the
session's open orders (``--no-cancel-on-disconnect`` turns that off); their ExecutionReports
reach the client by resend after its next logon.

Conformance profile: :class:`fix.conformance.EchoEndpoint` (``ISLD`` <- ``TW`` and ``TW44``, reset on
logon, the acceptance tests' echo application). No market runs.

Nothing a client sends, or how it disconnects, stops the server: the session layer never
raises, the transport contains socket errors per connection, and an unexpected exception at
any call into the sessions or the kernel is logged and drops at most the session concerned.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fix.codec import Codec, FixClock
from fix.conformance import CONFORMANCE_SENDER, CONFORMANCE_TARGETS, EchoEndpoint
from fix.gateway_actor import FixGateway
from fix.serve_config import (
    SENDER_COMP_ID,
    TARGET_COMP_IDS,
    ServedMarket,
    ServeError,
    ServeOptions,
    validate,
)
from fix.session import FixSession
from fix.transport import TcpAcceptor, WallClock
from sim.clock import SECOND
from sim.record import Recorder

__all__ = ["WireServer", "long_lived_collector", "serve"]

log = logging.getLogger("desksim.serve")

_SHUTDOWN_LOGOUT_S = 2.0
_IDLE_WAIT_S = 0.05  # longest wait in select when nothing is due
_HOUSEKEEPING_S = 0.1
_SPIN_S = 0.001  # an event due within this is awaited in naps (select() waits whole milliseconds)
_NAP_S = 0.0001  # longest sleep while an event is due within _SPIN_S (the sockets are polled after each)
_GC_MIDDLE = 3  # young collections per middle-generation collection (Python's default: 10)
_TIMERS_S = 0.001  # the sessions' timers (heartbeats, timeouts) are checked at most this often


def _freeze_survivors(phase: str, info: dict[str, int]) -> None:
    """gc callback: what survived a collection of the middle (or the old) generation leaves the
    collector's sight (``gc.freeze``), so that no collection of ``desksim serve`` scans it again."""
    if phase == "stop" and info["generation"] >= 1:
        gc.freeze()


@contextlib.contextmanager
def long_lived_collector() -> Iterator[None]:
    """The garbage collector as a long-running server wants it, for the ``with`` block.

    What start-up built (the scenario, the market, imports) lives as long as the server: out of
    the collector's sight, so that a collection is a pause of the young objects only. So is what
    survives the middle generation (resting orders, the books, the logs): a full collection
    would scan the whole growing market, tens of ms with some 10^5 orders. The middle generation
    is kept small (a pause well under a millisecond). The price: a reference cycle that becomes
    garbage once that old is not reclaimed (the order path makes none; short-lived cycles are
    collected while young)."""
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], _GC_MIDDLE, thresholds[2])
    gc.callbacks.append(_freeze_survivors)
    try:
        yield
    finally:
        gc.callbacks.remove(_freeze_survivors)
        gc.set_threshold(*thresholds)


class _GatewayEndpoint:
    """The FIX gateway actor as the acceptor's endpoint (sessions keyed by the client's CompID)."""

    def __init__(self, gateway: FixGateway) -> None:
        self.gateway = gateway

    def route(self, sender: str, target: str) -> str | None:
        gw = self.gateway
        return sender if target == gw.sender_comp_id and sender in gw.sessions else None

    def on_frame(self, key: str, raw: str) -> None:
        self.gateway.receive(key, raw)

    def on_connection_lost(self, key: str, reason: str) -> None:
        self.gateway.transport_lost(key, reason)


class WireServer:
    """One ``desksim serve`` process: kernel + TCP acceptor, driven by :meth:`run` in one thread."""

    def __init__(self, opts: ServeOptions, build: Callable[[ServeOptions], ServedMarket] | None = None) -> None:
        validate(opts)
        self.opts = opts
        self._build = build
        self._stop = False
        self.clock = WallClock.start()  # the sessions' clock: SendingTime, heartbeats, timeouts
        self.kernel: Any = None
        self.scenario: Any = None
        self.gateway: FixGateway | None = None
        self.echo: EchoEndpoint | None = None
        self.recorder = Recorder()
        self.acceptor: TcpAcceptor | None = None
        self.kernel_errors = 0
        self.transport_errors = 0
        self._next_housekeeping = 0.0
        self.market: ServedMarket | None = None
        if opts.profile != "conformance":
            if build is None:
                raise ServeError(
                    "the default profile needs a market: WireServer(opts, build=...) (desksim serve does it)"
                )
            self.market = build(opts)  # ScenarioError -> caller (exit 2)
            self.scenario, self.kernel = self.market.scenario, self.market.kernel
            if self.market.recorder is not None:  # one recorder: the run folder of --out holds both
                self.recorder = self.market.recorder

    # -- set-up -----------------------------------------------------------------------------------
    def listen(self) -> None:
        """Bind ``--host:--port`` and attach the sessions to the acceptor."""
        o = self.opts
        own = CONFORMANCE_SENDER if o.profile == "conformance" else SENDER_COMP_ID
        try:
            host = socket.gethostbyname(o.host)
            # the conformance profile refuses (the connection is closed, no Logout) and drops a
            # garbled frame (up to the next CheckSum field) as quickfix does
            quickfix = o.profile == "conformance"
            self.acceptor = TcpAcceptor(
                host,
                o.port,
                own_comp_id=own,
                clock=self.clock,
                refuse_with_logout=not quickfix,
                quickfix_framing=quickfix,
            )
        except OSError as exc:
            raise ServeError(f"cannot listen on port {o.port}: {exc}") from None
        if self.market is None:
            self.echo = EchoEndpoint(self.acceptor, self.clock, CONFORMANCE_SENDER, CONFORMANCE_TARGETS)
            self.acceptor.endpoint = self.echo
            return
        market = self.market
        self.gateway = FixGateway(
            "fix-gateway",
            self.recorder,
            exchange=market.exchange_name,
            clients=TARGET_COMP_IDS,
            sender_comp_id=SENDER_COMP_ID,
            symbols=(market.symbol,),
            cancel_on_disconnect=o.cancel_on_disconnect,
            # TransactTime: the simulated time of day on today's date (UTC), the date of SendingTime
            codec=Codec(market.tick_size, clock=FixClock(self.clock.fix_clock.trading_date)),
            transport=self.acceptor,
            session_clock=self.clock,
            record_frames=bool(o.store or o.out),  # the FIX message log is kept only when it will be written
            risk=market.risk,  # the pre-trade gate (--risk or the scenario's desk.risk); None: none
        )
        if o.out and self.gateway.risk is not None:  # the gate's audit trail goes into the run folder too
            self.gateway.risk.record_to(self.recorder)
        self.kernel.add(self.gateway)
        self.acceptor.endpoint = _GatewayEndpoint(self.gateway)

    @property
    def port(self) -> int:
        return self.acceptor.port if self.acceptor is not None else self.opts.port

    def sessions(self) -> dict[str, FixSession]:
        if self.gateway is not None:
            return self.gateway.sessions
        if self.echo is not None:
            return self.echo.sessions
        return {}

    def banner(self) -> str:
        o = self.opts
        if o.profile == "conformance":
            peers = " and ".join(f"{CONFORMANCE_SENDER}<-{t}" for t in CONFORMANCE_TARGETS)
            what = f"conformance profile, sessions {peers}, ResetOnLogon=Y"
        else:
            what = (
                f"scenario {self.scenario.name}, symbol {self.scenario.symbol}, "
                f"sessions {TARGET_COMP_IDS[0]}..{TARGET_COMP_IDS[-1]}"
            )
        return f"desksim serve: listening on {o.host}:{self.port} ({what})"

    def request_stop(self, *_: Any) -> None:
        self._stop = True

    # -- running ----------------------------------------------------------------------------------
    def _timers(self) -> None:
        try:
            if self.gateway is not None:
                self.gateway.poll_session_timers()
            elif self.echo is not None:
                self.echo.poll_session_timers()
        except Exception:  # FixSession.on_timer never raises; belt and braces
            log.exception("session timers failed")

    def _advance(self, target: int) -> None:
        try:
            self.kernel.advance(target)
        except Exception:
            self.kernel_errors += 1
            log.exception("the simulation raised while advancing to %d ns; serving on", target)
            if self.kernel_errors % 100 == 0:
                time.sleep(0.01)

    def step(self, timeout: float) -> int:
        """One turn of the loop without the kernel (shutdown, conformance): sockets, timers, writes."""
        n = self._poll(timeout)
        self._timers()
        self._flush()
        return n

    def _poll(self, timeout: float) -> int:
        """``acceptor.poll`` that never raises (it contains what a peer can cause; belt and braces)."""
        assert self.acceptor is not None
        try:
            return self.acceptor.poll(timeout)
        except Exception:
            self.transport_errors += 1
            log.exception("serving the connections failed; serving on")
            if self.transport_errors % 100 == 0:
                time.sleep(0.01)
            return 0

    def _flush(self) -> None:
        assert self.acceptor is not None
        try:
            self.acceptor.flush()
            if time.perf_counter() >= self._next_housekeeping:
                self.acceptor.housekeeping()
                self._next_housekeeping = time.perf_counter() + _HOUSEKEEPING_S
        except Exception:
            self.transport_errors += 1
            log.exception("writing to the connections failed; serving on")

    def run(self) -> None:
        """Serve until :meth:`request_stop` (signals) or ``--duration``."""
        kernel = self.kernel
        sim0 = kernel.now if kernel is not None else 0
        if kernel is not None:
            try:
                kernel.start()
            except Exception:
                log.exception("starting the simulation failed")
        with long_lived_collector():
            self._loop(sim0)

    def _loop(self, sim0: int) -> None:
        o = self.opts
        kernel = self.kernel
        speed = o.speed
        step_s = o.step_ms / 1000.0
        clock = time.perf_counter
        t0 = clock()
        deadline = None if o.duration is None else t0 + o.duration
        timeout = 0.0
        next_timers = 0.0
        while not self._stop:
            self._poll(timeout)
            now = clock()
            if deadline is not None and now >= deadline:
                break
            timeout = _IDLE_WAIT_S
            if kernel is not None:
                # what the frames just read caused is delivered in this turn if its simulated
                # latency has elapsed (the kernel's clock stood at the previous turn's time)
                target = sim0 + int((now - t0) * speed * SECOND)
                if target > kernel.now:
                    self._advance(target)  # cheap when nothing is due
                nxt = kernel.next_time()
                if nxt is not None:
                    due = t0 + (nxt - sim0) / (speed * SECOND) - clock()
                    timeout = max(0.0, min(due, step_s))
            if now >= next_timers:
                self._timers()
                next_timers = now + _TIMERS_S
            self._flush()
            if deadline is not None:
                timeout = min(timeout, max(deadline - now, 0.0))
            if 0.0 < timeout < _SPIN_S:
                # select() waits whole milliseconds: an event due sooner is awaited in naps (which
                # leave the core to the clients), polling the sockets without blocking in between
                time.sleep(min(timeout, _NAP_S))
                timeout = 0.0

    def shutdown(self) -> None:
        """Log every session out (waiting briefly for the answers), then close everything."""
        try:
            for session in self.sessions().values():
                if session.is_logged_on:
                    session.logout("server shutting down")
            if self.acceptor is not None:
                end = time.perf_counter() + _SHUTDOWN_LOGOUT_S
                while any(s.is_logged_on or s.state.value == "logout_sent" for s in self.sessions().values()):
                    if time.perf_counter() >= end:
                        break
                    self.step(0.01)
                    if self.kernel is not None:
                        self._advance(self.kernel.now)
        except Exception:
            log.exception("logout at shutdown")
        self.close()

    def close(self) -> None:
        if self.acceptor is not None:
            with contextlib.suppress(Exception):
                self.acceptor.shutdown()
        if self.kernel is not None:
            with contextlib.suppress(Exception):
                self.kernel.stop()
        if self.opts.store and self.gateway is not None:
            try:
                out = Path(self.opts.store)
                out.mkdir(parents=True, exist_ok=True)
                frame = self.recorder.frames().get("fix_messages")
                if frame is not None:
                    tmp = out / "fix_messages.csv.tmp"
                    frame.to_csv(tmp, index=False)
                    tmp.replace(out / "fix_messages.csv")
            except Exception as exc:
                log.warning("could not write the FIX message log to %s: %s", self.opts.store, exc)


def serve(
    opts: ServeOptions,
    build: Callable[[ServeOptions], ServedMarket] | None = None,
    input_errors: tuple[type[Exception], ...] = (),
) -> int:
    """Run the server in this thread; returns the exit code.

    ``build`` assembles the market (the application layer's job); ``input_errors`` are the
    exception types it raises for bad input (printed as one line, exit 2).
    """
    logging.basicConfig(level=logging.WARNING, format="desksim serve: %(levelname)s %(message)s")
    logging.getLogger("desksim.gateway").setLevel(logging.INFO)  # logons and logouts; refusals are warnings
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
            server = WireServer(opts, build)
        except (ServeError, *input_errors) as exc:  # type: ignore[misc]  # a tuple of exception types
            print(f"desksim: error: {exc}", file=sys.stderr)
            return 2
        try:
            server.listen()
        except ServeError as exc:
            server.close()
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
