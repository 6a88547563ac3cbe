"""FIX round trips over real TCP on loopback, and the codec's encode/decode rates.

Starts ``desksim serve --scenario quiet`` on a free loopback port (``--port`` to choose it,
``--no-server`` to use one already running there), logs a real ``quickfix.SocketInitiator`` on
as ``--client`` (generated settings in a temporary directory, memory store, no log, FIX44.xml
validation like any conformant client), and sends
``--orders`` NewOrderSingle. Each round trip is timed from just before ``Session.sendToTarget``
to the arrival (``fromApp``) of the first ExecutionReport for that ClOrdID.

* pipelined: at most ``--window`` orders in flight (default 16; with 64 the queueing alone
  puts p50 near 64 / rate);
* sequential: then ``--sequential-orders`` more, one at a time (window 1; 0 skips it).

The server and the client get a core each (``--pin``, the default, when this process may use
two or more CPUs: the server on the first, this client on the second), as a latency-sensitive
server is deployed; ``--no-pin`` leaves them to the scheduler, which on a 2-core machine moves
three busy threads (the server's, the client's sender and quickfix's socket thread) between two
cores and makes the figures vary from run to run.

Orders (``--kind``): ``limit`` (default) alternates a buy at 99.00 and a sell at 101.00, day
limit orders that never cross (one ExecutionReport each, New; they rest until the logout at
the end cancels them, the server's default cancel-on-disconnect); ``ioc`` sends the same as IOC
(New then Canceled; the book stays empty).

``--cpu``: the server's CPU per round trip, independent of the wall clock and of other load
on the machine: the same server (``WireServer`` on the ``--scenario``, its TCP acceptor on
loopback) driven turn by turn in this process by a raw-socket client that writes pre-built
NewOrderSingle frames ``--window`` at a time and reads the ExecutionReports; process CPU time
per round trip (the raw client's share is small), against a reference done with quickfix
alone (parse + validate the NewOrderSingle, build and serialise an ExecutionReport with
setField per tag: the least a quickfix-based server does per order).

Then, in this process: the codec (fix/codec.py) building + encoding a NewOrderSingle, decoding
+ validating one (FIX44.xml), reading it into a desksim NewOrder, and building an
ExecutionReport, each against a reference done with quickfix alone (Message + setField +
toString; Message(str) without a dictionary). Target (issue 17): >= 10,000 round trips/s with
p99 < 2 ms. The server and this client share the machine's cores.

    python benchmarks/bench_fix.py
    python benchmarks/bench_fix.py --orders 20000 --window 64 --sequential-orders 2000
    python benchmarks/bench_fix.py --window 1 --orders 5000 --sequential-orders 0
    python benchmarks/bench_fix.py --codec-only
    python benchmarks/bench_fix.py --cpu
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import quickfix as fix  # noqa: E402

from fix.codec import Codec, default_data_dictionary_path, fix_timestamp  # noqa: E402

TARGET = "DESKSIM"
TARGET_RATE = 10_000.0
TARGET_P99_MS = 2.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# =============================================================================================
# the server
# =============================================================================================
def pinning(enabled: bool) -> tuple[int, int] | None:
    """(server CPU, client CPU) when both can have a core of their own, else None."""
    if not enabled or not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else None


class Server:
    def __init__(self, port: int, scenario: str, cpu: int | None = None) -> None:
        cmd = [sys.executable, "-m", "desksim.cli", "serve", "--scenario", scenario, "--port", str(port)]
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            preexec_fn=None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu})),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                if "listening on" in self.lines.get(timeout=0.2):
                    return
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
        self.stop()
        sys.exit("bench_fix: the server did not start")

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


# =============================================================================================
# the client
# =============================================================================================
class BenchApp(fix.Application):
    """Times the first ExecutionReport of each order (ClOrdID = the order's index)."""

    def __init__(self) -> None:
        super().__init__()
        self.logged_on = threading.Event()
        self.sent_ns: list[int] = []
        self.rtt_ns: list[int] = []
        self.window: threading.Semaphore = threading.Semaphore(1)
        self.done = threading.Event()
        self.expected = 0
        self.received = 0
        self.base = 0
        self.rejects = 0

    def arm(self, n: int, window: int) -> None:
        self.sent_ns = [0] * n
        self.rtt_ns = [-1] * n
        self.window = threading.Semaphore(window)
        self.done.clear()
        self.expected, self.received = n, 0

    def onCreate(self, sessionID: Any) -> None:
        pass

    def onLogon(self, sessionID: Any) -> None:
        self.logged_on.set()

    def onLogout(self, sessionID: Any) -> None:
        self.logged_on.clear()

    def toAdmin(self, message: Any, sessionID: Any) -> None:
        pass

    def fromAdmin(self, message: Any, sessionID: Any) -> None:
        if message.getHeader().getField(35) == "3":
            self.rejects += 1

    def toApp(self, message: Any, sessionID: Any) -> None:
        pass

    def fromApp(self, message: Any, sessionID: Any) -> None:
        now = time.perf_counter_ns()
        msg_type = message.getHeader().getField(35)
        if msg_type != "8":
            return
        cl = message.getField(11)
        if not cl.isdigit():
            return
        i = int(cl) - self.base
        if 0 <= i < len(self.rtt_ns) and self.rtt_ns[i] < 0:
            self.rtt_ns[i] = now - self.sent_ns[i]
            if message.getField(150) == "8":
                self.rejects += 1
            self.received += 1
            self.window.release()
            if self.received >= self.expected:
                self.done.set()


def client_settings(base: Path, port: int, sender: str) -> Path:
    cfg = base / "client.cfg"
    cfg.write_text(
        "[DEFAULT]\nConnectionType=initiator\nSocketConnectHost=127.0.0.1\n"
        f"SocketConnectPort={port}\nHeartBtInt=30\nReconnectInterval=1\n"
        "StartTime=00:00:00\nEndTime=00:00:00\nResetOnLogon=Y\nSocketNodelay=Y\n"
        f"UseDataDictionary=Y\nDataDictionary={default_data_dictionary_path()}\n"
        f"[SESSION]\nBeginString=FIX.4.4\nSenderCompID={sender}\nTargetCompID={TARGET}\n",
        encoding="utf-8",
    )
    return cfg


def run_orders(
    app: BenchApp, sid: Any, codec: Codec, n: int, window: int, kind: str, base: int, timeout: float
) -> tuple[float, list[int]]:
    """Send ``n`` orders with at most ``window`` in flight; (seconds, round trips in ns)."""
    app.base = base
    app.arm(n, window)
    tif = "IOC" if kind == "ioc" else "DAY"
    buy, sell = codec.to_ticks("99.00"), codec.to_ticks("101.00")
    send = fix.Session.sendToTarget
    acquire = app.window.acquire
    sent = app.sent_ns
    clock = time.perf_counter_ns
    msgs = [
        codec.new_order_single(
            str(base + i), "XYZ", "B" if i % 2 == 0 else "S", 1, "LIMIT", buy if i % 2 == 0 else sell, tif
        )
        for i in range(n)
    ]
    t0 = time.perf_counter()
    for i, msg in enumerate(msgs):
        if not acquire(timeout=timeout):
            raise RuntimeError(f"no ExecutionReport within {timeout}s ({app.received} of {i} answered)")
        sent[i] = clock()
        send(msg, sid)
    if not app.done.wait(timeout):
        raise RuntimeError(f"only {app.received} of {n} ExecutionReports within {timeout}s")
    elapsed = time.perf_counter() - t0
    return elapsed, app.rtt_ns


def percentile(sorted_ns: list[int], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    k = max(0, min(len(sorted_ns) - 1, round(q / 100.0 * len(sorted_ns) + 0.5) - 1))
    return sorted_ns[k] / 1e6


def report_rtt(label: str, n: int, window: int, elapsed: float, rtt: list[int], judge: bool = True) -> None:
    s = sorted(rtt)
    rate = n / elapsed
    p50, p99, p999, mx = percentile(s, 50), percentile(s, 99), percentile(s, 99.9), s[-1] / 1e6
    verdict = ""
    if judge:
        ok = rate >= TARGET_RATE and p99 < TARGET_P99_MS
        verdict = f"  ({'meets' if ok else 'misses'} the target: >= {TARGET_RATE:,.0f}/s, p99 < {TARGET_P99_MS} ms)"
    print(
        f"{label:<11} {n:>7} orders  window {window:>3}  {elapsed:7.2f} s  {rate:>9,.0f} round trips/s  "
        f"p50 {p50:6.3f} ms  p99 {p99:6.3f} ms  p99.9 {p999:6.3f} ms  max {mx:7.3f} ms{verdict}"
    )


def bench_tcp(args: argparse.Namespace) -> None:
    port = args.port or free_port()
    pins = pinning(args.pin and not args.no_server)
    server = None if args.no_server else Server(port, args.scenario, pins[0] if pins else None)
    if pins:  # the client (its sender and quickfix's socket thread) on the other core
        os.sched_setaffinity(0, {pins[1]})
    tmp = tempfile.TemporaryDirectory(prefix="bench-fix-")
    initiator = None
    try:
        settings = fix.SessionSettings(str(client_settings(Path(tmp.name), port, args.client)))
        store = fix.MemoryStoreFactory()
        app = BenchApp()
        initiator = fix.SocketInitiator(app, store, settings)
        initiator.start()
        if not app.logged_on.wait(15):
            sys.exit("bench_fix: the initiator did not log on")
        sid = fix.SessionID("FIX.4.4", args.client, TARGET)
        codec = Codec(0.01)
        where = "started" if server else "running"
        pinned = f", server on CPU {pins[0]}, client on CPU {pins[1]}" if pins else ", unpinned"
        print(f"desksim serve ({where}) on 127.0.0.1:{port}, {args.client}, {args.kind} orders{pinned}")
        # warm-up (not measured): imports, caches, the first kernel steps
        run_orders(app, sid, codec, min(500, args.orders), args.window, args.kind, 10_000_000, args.timeout)
        base = 20_000_000
        elapsed, rtt = run_orders(app, sid, codec, args.orders, args.window, args.kind, base, args.timeout)
        report_rtt("pipelined", args.orders, args.window, elapsed, rtt)
        if args.sequential_orders > 0 and args.window != 1:
            base += args.orders
            n = args.sequential_orders
            elapsed, rtt = run_orders(app, sid, codec, n, 1, args.kind, base, args.timeout)
            report_rtt("sequential", n, 1, elapsed, rtt, judge=False)
        if app.rejects:
            print(f"warning: {app.rejects} orders were rejected")
    finally:
        if initiator is not None:
            initiator.stop()
        if server is not None:
            code = server.stop()
            if code != 0:
                print(f"warning: the server exited with {code}")
        tmp.cleanup()


# =============================================================================================
# server CPU per round trip, in process
# =============================================================================================
def _frame(mtype: str, seq: int, sender: str, fields: list[tuple[int, str]]) -> bytes:
    m = fix.Message()
    h = m.getHeader()
    for tag, value in ((8, "FIX.4.4"), (35, mtype), (49, sender), (56, TARGET), (34, str(seq)), (52, fix_timestamp())):
        h.setField(tag, value)
    for tag, value in fields:
        m.setField(tag, value)
    return m.toString().encode()  # type: ignore[no-any-return]


def bench_cpu(args: argparse.Namespace) -> None:
    from desksim.serve import build_market
    from fix.serve_config import ServeOptions
    from fix.wire_server import WireServer, long_lived_collector

    n, window, sender = args.orders, args.window, args.client
    server = WireServer(ServeOptions(port=free_port(), scenario=args.scenario), build_market)
    server.listen()
    kernel = server.kernel
    kernel.start()
    client = socket.create_connection(("127.0.0.1", server.port))
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    tif = "3" if args.kind == "ioc" else "0"
    ts = fix_timestamp()
    orders = [
        _frame("D", i + 2, sender, [(11, f"C{i}"), (55, "XYZ"), (54, "1" if i % 2 == 0 else "2"), (60, ts),
                                    (38, "1"), (40, "2"), (44, "99.00" if i % 2 == 0 else "101.00"), (59, tif)])
        for i in range(n)
    ]  # fmt: skip
    batches = [b"".join(orders[i : i + window]) for i in range(0, n, window)]
    er = b"\x0135=8\x01"

    def turn() -> None:  # sockets in, the simulation 1 ms on (every latency elapsed), sockets out
        server.step(0.0)
        kernel.advance(kernel.now + 1_000_000)
        server.step(0.0)

    def answers() -> int:
        got = 0
        while True:
            try:
                got += client.recv(1 << 20).count(er)
            except BlockingIOError:
                return got

    client.sendall(_frame("A", 1, sender, [(98, "0"), (108, "30"), (141, "Y")]))
    while not server.sessions()[sender].is_logged_on:
        turn()
    client.setblocking(False)
    turn()
    answers()
    received = 0
    with long_lived_collector():  # the collector as ``desksim serve`` runs it
        c0 = time.process_time()
        for batch in batches:
            client.sendall(batch)
            turn()
            received += answers()
        cpu = time.process_time() - c0
    client.close()
    server.close()

    dd = Codec(0.01).dd
    raw = orders[0].decode()

    def reference(i: int) -> str:
        m = fix.Message(raw, dd, True)
        dd.validate(m)
        out = fix.Message()
        h = out.getHeader()
        for tag, value in ((8, "FIX.4.4"), (35, "8"), (49, TARGET), (56, sender), (34, str(i)), (52, ts)):
            h.setField(tag, value)
        for tag, value in ((6, "0"), (11, m.getField(11)), (14, "0"), (17, str(i)), (37, str(i)), (38, "1"),
                           (39, "0"), (40, "2"), (44, "99.00"), (54, "1"), (55, "XYZ"), (59, "0"), (60, ts),
                           (150, "0"), (151, "1")):  # fmt: skip
            out.setField(tag, value)
        return out.toString()  # type: ignore[no-any-return]

    ref_n = min(n, 20_000)
    r0 = time.process_time()
    for i in range(ref_n):
        reference(i)
    ref = (time.process_time() - r0) / ref_n
    per = cpu / n
    print(
        f"server CPU, in process ({args.scenario}, {args.kind}, window {window}): {n} orders, {received} "
        f"ExecutionReports, {per * 1e6:.1f} us CPU per round trip; reference (quickfix alone: parse + validate "
        f"the order, build + serialise the report) {ref * 1e6:.1f} us; ratio {per / ref:.2f}"
    )


# =============================================================================================
# codec rates
# =============================================================================================
def rate(fn: Callable[[int], Any], n: int, repeat: int) -> float:
    """Best-of-``repeat`` operations per second of ``fn(i)`` over ``n`` calls."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, time.perf_counter() - t0)
    return n / best


def bench_codec(n: int, repeat: int) -> None:
    codec = Codec(0.01)
    px = codec.to_ticks("100.25")
    ts = fix_timestamp()

    def full_header(m: Any, seq: int = 1) -> Any:
        h = m.getHeader()
        h.setField(49, "CLIENT1")
        h.setField(56, TARGET)
        h.setField(34, str(seq))
        h.setField(52, ts)
        return m

    # -- encode: build a NewOrderSingle and serialise it -------------------------------------
    def codec_encode(i: int) -> str:
        return codec.encode(codec.new_order_single(str(i), "XYZ", "B", 100, "LIMIT", px, "DAY"))

    def ref_encode(i: int) -> str:
        m = fix.Message()
        h = m.getHeader()
        h.setField(8, "FIX.4.4")
        h.setField(35, "D")
        m.setField(11, str(i))
        m.setField(55, "XYZ")
        m.setField(54, "1")
        m.setField(60, ts)
        m.setField(38, "100")
        m.setField(40, "2")
        m.setField(44, "100.25")
        m.setField(59, "0")
        return m.toString()  # type: ignore[no-any-return]

    # -- decode: parse + validate (codec) vs parse only (quickfix, no dictionary) ---------------
    raw = full_header(codec.new_order_single("123", "XYZ", "B", 100, "LIMIT", px, "DAY")).toString()

    def codec_decode(i: int) -> Any:
        return codec.decode(raw)

    def codec_decode_read(i: int) -> Any:
        return codec.read_new_order(codec.decode(raw))

    def ref_decode(i: int) -> Any:
        return fix.Message(raw)

    dd = codec.dd

    def ref_decode_validate(i: int) -> Any:
        m = fix.Message(raw, dd, True)
        dd.validate(m)
        return m

    # -- ExecutionReport: the codec's one-string build vs setField per tag ---------------------
    def codec_er(i: int) -> str:
        m = codec.execution_report(
            order_id=str(i),
            exec_id=f"E{i}",
            exec_type="0",
            ord_status="0",
            side="B",
            symbol="XYZ",
            leaves_qty=100,
            cum_qty=0,
            avg_px="0",
            cl_ord_id=str(i),
            order_qty=100,
            price_ticks=px,
            ord_type="LIMIT",
            tif="DAY",
        )
        return m.toString()  # type: ignore[no-any-return]

    def ref_er(i: int) -> str:
        m = fix.Message()
        h = m.getHeader()
        h.setField(8, "FIX.4.4")
        h.setField(35, "8")
        for tag, value in (
            (37, str(i)),
            (11, str(i)),
            (17, f"E{i}"),
            (150, "0"),
            (39, "0"),
            (55, "XYZ"),
            (54, "1"),
            (38, "100"),
            (40, "2"),
            (44, "100.25"),
            (59, "0"),
            (151, "100"),
            (14, "0"),
            (6, "0"),
            (60, ts),
        ):
            m.setField(tag, value)
        return m.toString()  # type: ignore[no-any-return]

    rows = [
        ("NewOrderSingle build + encode", codec_encode, "quickfix setField + toString", ref_encode),
        ("NewOrderSingle decode + validate", codec_decode, "quickfix Message(str), no dictionary", ref_decode),
        ("  the same + read_new_order", codec_decode_read, "quickfix Message(str, dd) + validate", ref_decode_validate),
        ("ExecutionReport build + encode", codec_er, "quickfix setField per tag + toString", ref_er),
    ]
    print(f"codec (fix/codec.py), best of {repeat} x {n:,} in this process:")
    for name, fn, ref_name, ref in rows:
        r_codec, r_ref = rate(fn, n, repeat), rate(ref, n, repeat)
        print(
            f"  {name:<34} {r_codec:>10,.0f} /s   reference ({ref_name}) {r_ref:>10,.0f} /s   "
            f"ratio {r_codec / r_ref:5.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=20_000, help="orders in the measured pipelined run")
    p.add_argument("--window", type=int, default=16, help="orders in flight at most (1: sequential)")
    p.add_argument("--sequential-orders", type=int, default=2_000, help="then this many with window 1")
    p.add_argument("--kind", choices=("limit", "ioc"), default="limit")
    p.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    p.add_argument("--no-server", action="store_true", help="use a desksim serve already on --port")
    p.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="give the server and the client a core each (the first two this process may use), as a "
        "latency-sensitive server is deployed; --no-pin lets the scheduler move them",
    )
    p.add_argument("--scenario", default="quiet")
    p.add_argument("--client", default="CLIENT8", help="SenderCompID (CLIENT1..CLIENT8)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds without progress before giving up")
    p.add_argument("--codec-n", type=int, default=20_000, help="operations per codec measurement")
    p.add_argument("--repeat", type=int, default=3, help="best of this many codec measurements")
    p.add_argument("--codec-only", action="store_true")
    p.add_argument("--tcp-only", action="store_true")
    p.add_argument("--cpu", action="store_true", help="only the server's CPU per round trip, in process")
    args = p.parse_args(argv)
    if args.orders < 1 or args.window < 1:
        p.error("--orders and --window must be >= 1")
    if args.no_server and not args.port:
        p.error("--no-server needs --port")
    if args.cpu:
        bench_cpu(args)
        return 0
    if not args.codec_only:
        bench_tcp(args)
    if not args.tcp_only:
        bench_codec(args.codec_n, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
