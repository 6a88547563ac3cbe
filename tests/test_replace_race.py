"""Issue 13 item 3: a replace never overfills, whatever crosses it in flight.

FIX 4.4 Vol. 4 App. D: a Cancel/Replace request's OrderQty is the new *total*; the venue sets
LeavesQty = OrderQty - CumQty where the fills happen, and when that is <= 0 the order is done
("Cancel/replace request sent whilst execution is being reported -- the requested order qty
equals / is below the cum qty -- order qty is amended to cum qty": ExecType=Replace,
OrdStatus=Filled, OrderQty=CumQty, LeavesQty=0). A replace that reaches an order already
filled gets an OrderCancelReject (CxlRejReason 0, too late).

The tests run the real path on the simulated network: a ``GatewayCore`` hosted in an actor next
to the exchange (the FIX session layer is not needed for this: client messages are fed to
``on_app`` as an acceptor would after decoding), the ``Exchange`` actor with its ``OrderBook``,
and a native counterparty whose orders reach the book while the gateway's ``ReplaceOrder`` is
on the wire, so the gateway's own CumQty is stale when it translates the replace.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.exchange.exchange import Exchange
from actors.messages import (
    CancelRejected,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    SubmitOrder,
)
from fix.codec import Codec
from fix.gateway import GatewayCore
from sim.actor import Actor, Wakeup, handles
from sim.kernel import Kernel
from sim.network import LinkSpec, Network, NetworkSpec
from sim.record import Recorder
from sim.rng import RandomStreams
from tests.helpers import Scripted

US = 1_000
MS = 1_000_000
LATENCY = 1 * MS  # every link: the window in which a fill and a replace cross
CODEC = Codec(0.01)
SESSION = "C1"


class CoreHost(Actor):
    """A ``GatewayCore`` as an actor next to the exchange. ``script`` holds ``(t_ns, build)``
    with ``build(codec)`` returning a FIX application message from the client."""

    def __init__(self, name: str, script: list[tuple[int, Any]]) -> None:
        super().__init__(name, "exchange")
        self.script = list(script)
        self.out: list[tuple[int, Any]] = []  # (time, message sent to the client)
        self.commands: list[Any] = []
        self._n = 0
        self.core = GatewayCore(
            CODEC,
            new_order_id=self._new_id,
            send_app=lambda key, msg: self.out.append((self.now, msg)),
            send_command=self._command,
            symbols=["XYZ"],
        )

    def _new_id(self) -> int:
        self._n += 1
        return (self.id << 32) | self._n

    def _command(self, cmd: Any) -> None:
        self.commands.append(cmd)
        self.send(self.exchange, cmd)

    def on_start(self) -> None:
        self.exchange = self.lookup("exchange")
        for i, (t, _) in enumerate(self.script):
            self.wake_at(t, i)

    @handles(Wakeup)
    def _due(self, msg: Wakeup, src: int) -> None:
        fix_msg = self.script[msg.tag][1](CODEC)
        h = fix_msg.getHeader()
        h.setField(49, SESSION)
        h.setField(56, "DESKSIM")
        h.setField(34, str(msg.tag + 1))
        h.setField(52, "20260101-09:30:00.000")
        self.core.on_app(SESSION, CODEC.decode(CODEC.encode(fix_msg)), self.now)

    @handles(OrderAccepted, OrderRejected, OrderFilled, OrderCanceled, OrderReplaced, CancelRejected)
    def _book_event(self, msg: Any, src: int) -> None:
        self.core.on_book_event(msg, self.now)


def new_order(cl: str, qty: int, price: int) -> Any:
    return lambda codec: codec.new_order_single(cl, "XYZ", "S", qty, "LIMIT", price, "DAY")


def replace(cl: str, orig: str, qty: int, price: int) -> Any:
    return lambda codec: codec.order_cancel_replace_request(cl, orig, "XYZ", "S", qty, "LIMIT", price)


def buy(n: int, qty: int, price: int, tif: str = "DAY") -> Any:
    return lambda a: SubmitOrder(a.oid(n), "XYZ", "B", qty, price, tif)


def run(client: list[tuple[int, Any]], counterparty: list[tuple[int, Any]], until_ns: int):
    rec = Recorder()
    kernel = Kernel(Network(NetworkSpec(LinkSpec(LATENCY))), RandomStreams(1))
    exchange = Exchange("exchange", ["XYZ"], rec, 0, 10**13)
    host = CoreHost("gateway", client)
    cp = Scripted("cp", counterparty)
    for actor in (exchange, host, cp):
        kernel.add(actor)
    kernel.run(until_ns)
    assert not host.core.errors, host.core.errors
    return host, exchange, rec


def f(msg: Any, tag: int) -> str | None:
    if tag == 35:
        return msg.getHeader().getField(35)  # type: ignore[no-any-return]
    return msg.getField(tag) if msg.isSetField(tag) else None


def report(msg: Any) -> tuple[str | None, ...]:
    """(35, ExecType, OrdStatus, ClOrdID, OrderQty, CumQty, LeavesQty, LastQty)."""
    return tuple(f(msg, t) for t in (35, 150, 39, 11, 38, 14, 151, 32))


def exchange_filled(rec: Recorder, order_id: int) -> int:
    frame = rec.tables["orders"].frame()
    return int(frame[(frame.event == "filled") & (frame.order_id == order_id)].qty.sum())


def check_never_overfilled(host: CoreHost, requested: dict[str, int], rec: Recorder) -> None:
    """The client's view of one order (every message the gateway sent it):

    * every ExecutionReport states OrderQty = CumQty + LeavesQty, CumQty = sum of LastQty;
    * CumQty never exceeds the last accepted OrderQty (of the 35=8 ExecType 0 or 5);
    * a replace is accepted with OrderQty = max(requested OrderQty, CumQty): never more than the
      client asked for; LeavesQty 0 and OrdStatus Filled exactly when it asked for <= CumQty;
    * the order's fills at the exchange add up to the final CumQty.
    """
    accepted: int | None = None
    cum = 0
    order_id = None
    for _, m in host.out:
        if f(m, 35) != "8":
            assert f(m, 35) == "9", m.toString()
            continue
        exec_type, status = f(m, 150), f(m, 39)
        order_qty, cum_qty, leaves = int(f(m, 38) or -1), int(f(m, 14) or -1), int(f(m, 151) or -1)
        order_id = int(f(m, 37) or 0)
        assert status not in ("4", "8"), m.toString()  # nothing in these runs cancels or rejects
        assert order_qty == cum_qty + leaves, m.toString()
        if exec_type == "F":
            cum += int(f(m, 32) or 0)
        assert cum_qty == cum, m.toString()
        if exec_type in ("0", "5"):
            asked = requested[f(m, 11) or ""]
            assert order_qty == max(asked, cum_qty), (asked, m.toString())
            assert (leaves == 0) == (asked <= cum_qty), m.toString()
            assert status == ("2" if leaves == 0 else "1" if cum_qty else "0"), m.toString()
            accepted = order_qty
        assert accepted is not None and cum_qty <= accepted, (accepted, m.toString())
    assert order_id is not None
    assert exchange_filled(rec, order_id) == cum


# =============================================================================================
# a fill crosses the replace in flight
# =============================================================================================
def test_fill_crossing_a_replace_in_flight_does_not_overfill() -> None:
    """Sell 100; the client replaces to OrderQty 50 while a buy of 70 is about to hit the order.

    The gateway translates the G at 10 ms knowing CumQty 0; the buy reaches the book at 10.5 ms
    (fills 70), the ReplaceOrder at 11 ms. OrderQty 50 < CumQty 70: the replace is accepted and
    the order is done (App. D: OrderQty amended to CumQty 70, OrdStatus Filled, LeavesQty 0); a
    later buy finds nothing to trade with. Before the fix the book was given an open quantity of
    50 - 0 = 50 and the order went on to fill 120."""
    host, exchange, rec = run(
        [(0, new_order("s1", 100, 1001)), (10 * MS, replace("s1r", "s1", 50, 1001))],
        [(9 * MS + 500 * US, buy(1, 70, 1001)), (20 * MS, buy(2, 100, 1001))],
        30 * MS,
    )
    oid = host.commands[0].order_id
    assert [report(m) for _, m in host.out] == [
        ("8", "0", "0", "s1", "100", "0", "100", None),
        ("8", "F", "1", "s1", "100", "70", "30", "70"),
        ("8", "5", "2", "s1r", "70", "70", "0", None),
    ]
    assert exchange_filled(rec, oid) == 70
    assert exchange.books["XYZ"].open_order(oid) is None  # done: nothing rests
    assert exchange.books["XYZ"].best_bid() == (1001, 100)  # the second buy found no seller
    state = host.core.order_state(SESSION, "s1r")
    assert state is not None
    assert (state["ord_status"], state["order_qty"], state["cum_qty"], state["leaves_qty"]) == ("2", 70, 70, 0)
    assert host.core.live_orders(SESSION) == []
    check_never_overfilled(host, {"s1": 100, "s1r": 50}, rec)


def test_replace_in_flight_above_the_new_cumqty_leaves_the_difference() -> None:
    """Sell 100, replace to 80 while 30 fill in flight: leaves 50 (= 80 - 30), not 80. A later
    buy of 100 fills exactly 50, so CumQty ends at the requested 80."""
    host, _exchange, rec = run(
        [(0, new_order("s1", 100, 1001)), (10 * MS, replace("s1r", "s1", 80, 1001))],
        [(9 * MS + 500 * US, buy(1, 30, 1001)), (20 * MS, buy(2, 100, 1001))],
        30 * MS,
    )
    assert [report(m) for _, m in host.out] == [
        ("8", "0", "0", "s1", "100", "0", "100", None),
        ("8", "F", "1", "s1", "100", "30", "70", "30"),
        ("8", "5", "1", "s1r", "80", "30", "50", None),
        ("8", "F", "2", "s1r", "80", "80", "0", "50"),
    ]
    check_never_overfilled(host, {"s1": 100, "s1r": 80}, rec)


def test_replace_reaching_a_filled_order_is_refused_too_late() -> None:
    """The order fills completely while the replace is in flight: OrderCancelReject, too late."""
    host, _exchange, rec = run(
        [(0, new_order("s1", 100, 1001)), (10 * MS, replace("s1r", "s1", 150, 1001))],
        [(9 * MS + 500 * US, buy(1, 100, 1001))],
        30 * MS,
    )
    msgs = [m for _, m in host.out]
    assert [report(m)[:3] for m in msgs] == [("8", "0", "0"), ("8", "F", "2"), ("9", None, "2")]
    assert (f(msgs[2], 11), f(msgs[2], 41), f(msgs[2], 102), f(msgs[2], 434)) == ("s1r", "s1", "0", "2")
    check_never_overfilled(host, {"s1": 100}, rec)


def test_replace_to_the_known_cumqty_fills_the_order() -> None:
    """No race: the gateway already knows CumQty 40 and the client asks for OrderQty 40. Same
    answer as in the race (App. D: the balance is canceled, Filled takes precedence), so the
    outcome depends on the book's state only, not on what the gateway had heard."""
    host, _exchange, rec = run(
        [(0, new_order("s1", 100, 1001)), (10 * MS, replace("s1r", "s1", 40, 1001))],
        [(5 * MS, buy(1, 40, 1001))],
        30 * MS,
    )
    assert [report(m) for _, m in host.out][-1] == ("8", "5", "2", "s1r", "40", "40", "0", None)
    check_never_overfilled(host, {"s1": 100, "s1r": 40}, rec)


# =============================================================================================
# property: random interleavings of fills and replaces
# =============================================================================================
GAPS = st.sampled_from([0, 100 * US, 500 * US, 900 * US, 1 * MS, 1 * MS + 100 * US, 2 * MS, 5 * MS])
STEP = st.one_of(
    st.tuples(st.just("replace"), GAPS, st.integers(1, 160), st.sampled_from([1000, 1001, 1002])),
    st.tuples(st.just("hit"), GAPS, st.integers(1, 70), st.just(1002)),  # IOC: takes, never rests
    st.tuples(st.just("bid"), GAPS, st.integers(1, 40), st.just(1000)),  # rests: a replace to 10.00 takes it
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(first=st.integers(1, 120), steps=st.lists(STEP, min_size=1, max_size=14))
def test_random_fills_and_replaces_never_overfill(first: int, steps: list[tuple[str, int, int, int]]) -> None:
    """Random interleavings of replaces (up or down, below the filled quantity too, price moves
    that cross resting bids) and counterparty orders arriving before, with or after the
    gateway's ReplaceOrder, with one link latency (1 ms) between gateway, exchange and
    counterparty. See ``check_never_overfilled`` for what holds on every report."""
    client: list[tuple[int, Any]] = [(0, new_order("s1", first, 1001))]
    cp: list[tuple[int, Any]] = []
    requested = {"s1": first}
    t = 3 * MS
    for i, (kind, gap, qty, price) in enumerate(steps):
        t += gap
        if kind == "replace":
            cl = f"r{i}"
            requested[cl] = qty
            client.append((t, replace(cl, "s1", qty, price)))
        else:
            cp.append((t, buy(i + 1, qty, price, "IOC" if kind == "hit" else "DAY")))
    host, _exchange, rec = run(client, cp, t + 20 * MS)
    check_never_overfilled(host, requested, rec)
