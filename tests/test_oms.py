"""fix.oms: P&L accounting, parent orders, reconciliation of ExecutionReports.

The OMS runs in a kernel against a scripted venue: an actor holding the acceptor FixSession
that answers with hand-built ExecutionReports (so wrong ones can be sent on purpose).
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from actors.messages import (
    AttachChild,
    CancelOrder,
    CancelRejected,
    NewParentOrder,
    OrderAccepted,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    ReplaceOrder,
    SubmitOrder,
)
from fix.codec import Codec
from fix.oms import OMS, Parent, Position
from fix.session import FixFrame, FixLinkDown, FixLinkUp, FixSession
from sim.actor import Actor, Wakeup, handles
from sim.kernel import Kernel
from sim.network import LinkSpec, Network, NetworkSpec
from sim.record import Recorder
from sim.rng import RandomStreams
from tests.helpers import Scripted

MS = 1_000_000
S = 1_000_000_000
CODEC = Codec(0.01)


# -- positions and P&L -----------------------------------------------------------------------------
def test_average_cost_through_position_flips():
    p = Position()
    p.fill("B", 100, 1000)
    p.fill("B", 100, 1010)
    assert (p.position, p.cost, p.avg_cost) == (200, 201_000, 1005.0)
    assert p.realized == 0 and p.unrealized(1020) == 200 * 1020 - 201_000
    p.fill("S", 50, 1020)  # close 50 at +15 a share
    assert p.realized == 50 * 15 and p.position == 150 and p.avg_cost == 1005.0
    p.fill("S", 250, 1000)  # close 150 at -5, open a short of 100 at 1000
    assert p.realized == 750 - 150 * 5
    assert (p.position, p.cost, p.avg_cost) == (-100, -100_000, 1000.0)
    assert p.unrealized(990) == 100 * 10  # a short gains when the price falls
    p.fill("B", 40, 990)
    assert p.realized == 750 - 750 + 40 * 10 and p.position == -60
    p.fill("B", 60, 1005)  # flat
    assert p.position == 0 and p.cost == 0
    assert p.realized == 400 - 60 * 5 == p.cash
    assert p.unrealized(12345) == 0 and p.avg_cost is None
    assert (p.bought, p.sold) == (300, 300)


def test_rounding_of_the_removed_cost_is_exact_when_flat():
    p = Position()
    for qty, px in ((1, 1000), (1, 1001), (1, 1001)):  # average 1000.666...
        p.fill("B", qty, px)
    p.fill("S", 1, 1002)
    assert p.cost == 3002 - round(Fraction(3002, 3))
    assert p.realized == p.cash + p.cost
    p.fill("S", 2, 1002)
    assert p.position == 0 and p.cost == 0 and p.realized == 3 * 1002 - 3002


@pytest.mark.parametrize("seed", range(5))
def test_realized_plus_unrealized_is_cash_plus_marked_position(seed):
    import random

    rng = random.Random(seed)
    p = Position()
    for _ in range(200):
        p.fill(rng.choice("BS"), rng.randint(1, 50), rng.randint(990, 1010))
        mark = rng.randint(990, 1010)
        assert p.realized + p.unrealized(mark) == p.cash + p.position * mark
        assert p.realized == p.cash + p.cost


def test_parent_implementation_shortfall():
    buy = Parent(1, 0, "XYZ", "B", 1000, "twap", 1000, 0)
    buy.filled_qty, buy.notional = 600, 600 * 1002
    v = buy.view(mark=1005)
    assert (v["progress"], v["avg_price"], v["remaining_qty"]) == (0.6, 1002.0, 400)
    assert v["shortfall_ticks"] == 600 * 2 and v["shortfall_bps"] == pytest.approx(20.0)
    assert v["opportunity_ticks"] == 400 * 5 and v["total_shortfall_ticks"] == 1200 + 2000
    sell = Parent(2, 0, "XYZ", "S", 100, "vwap", 1000, 0)
    sell.filled_qty, sell.notional = 100, 100 * 999
    v = sell.view(mark=None)
    assert v["shortfall_ticks"] == 100 and v["opportunity_ticks"] == 0  # sold 1 tick below arrival
    assert Parent(3, 0, "XYZ", "B", 10, "x", None, 0).view(1000)["shortfall_ticks"] is None


# -- a scripted venue ---------------------------------------------------------------------------------
class Venue(Actor):
    """Acceptor end of the FIX session; ``script`` = [(t, fn(venue))]; received apps in ``apps``."""

    def __init__(self, name, script=()):
        super().__init__(name, "exchange")
        self.script = list(script)
        self.apps = []
        self.link_up = True
        self.exec_n = 0
        self.notional = {}
        self.session = FixSession(
            "DESKSIM",
            "CLIENT1",
            initiator=False,
            send_raw=lambda raw: self.send(self.lookup("oms"), FixFrame(raw)) if self.link_up else None,
            now_ns=lambda: self.now,
            on_app=lambda m: self.apps.append(CODEC.fields(m)),
            set_timer=lambda t: self.wake_at(t, "fix"),
        )

    def on_start(self):
        self.session.connect()
        for i, (t, _) in enumerate(self.script):
            self.wake_at(t, i)

    @handles(FixFrame)
    def on_frame(self, msg, src):
        if self.link_up:
            self.session.on_raw(msg.raw)

    @handles(Wakeup)
    def on_wake(self, msg, src):
        if msg.tag == "fix":
            self.session.on_timer()
        else:
            self.script[msg.tag][1](self)

    @handles(FixLinkDown)
    def on_down(self, msg, src):
        self.link_up = False
        self.session.disconnect()

    @handles(FixLinkUp)
    def on_up(self, msg, src):
        self.link_up = True
        self.session.connect()

    def er(self, cl, exec_type, status, cum, leaves, qty=100, last=None, exec_id=None, side="B", **kw):
        self.exec_n += 1
        if last is not None:
            self.notional[cl] = self.notional.get(cl, 0) + last[0] * last[1]
        fields = {
            "order_id": "77",
            "exec_id": exec_id or f"E{self.exec_n}",
            "exec_type": exec_type,
            "ord_status": status,
            "side": side,
            "symbol": "XYZ",
            "leaves_qty": leaves,
            "cum_qty": cum,
            "avg_px": kw.pop("avg_px", CODEC.avg_px(self.notional.get(cl, 0), cum)),
            "cl_ord_id": cl,
            "order_qty": qty,
            "price_ticks": 1000,
            "ord_type": "LIMIT",
            "now_ns": self.now,
        }
        if last is not None:
            fields["last_qty"], fields["last_px_ticks"] = last
        fields.update(kw)
        self.session.send_app(CODEC.execution_report(**fields))


def venue_world(venue_script, desk_script, events=(), **oms_kw):
    rec = Recorder()
    kernel = Kernel(Network(NetworkSpec(LinkSpec(1 * MS))), RandomStreams(1))
    venue = Venue("gateway", venue_script)
    oms = OMS("oms", rec, market_data="none", **oms_kw)
    desk = Scripted("desk", desk_script, dst="oms")
    for actor in (venue, oms, desk):
        kernel.add(actor)
    if events:

        class Events(Actor):
            def on_start(self):
                for i, (t, _) in enumerate(events):
                    self.wake_at(t, i)

            @handles(Wakeup)
            def go(self, msg, src):
                for name in ("gateway", "oms"):
                    self.send(self.lookup(name), events[msg.tag][1])

        kernel.add(Events("scenario"))
    return kernel, venue, oms, desk, rec


def buy(n, qty=100, price=1000):
    return lambda a: SubmitOrder(a.oid(n), "XYZ", "B", qty, price)


def test_reconciliation_counts_breaks_and_ignores_duplicates():
    cl = "CLIENT1-1"
    script = [
        (20 * MS, lambda v: v.er(cl, "0", "0", 0, 100)),
        (30 * MS, lambda v: v.er(cl, "F", "1", 30, 70, last=(30, 1000), avg_px="10")),  # clean
        (40 * MS, lambda v: v.er(cl, "F", "1", 30, 70, last=(30, 1000), avg_px="10", exec_id="E2")),  # dup
        (50 * MS, lambda v: v.er(cl, "F", "1", 70, 20, last=(20, 1000), avg_px="10")),  # CumQty jumps
        (60 * MS, lambda v: v.er(cl, "F", "1", 75, 25, last=(5, 1000), avg_px="10.5")),  # qty, avg px
        (70 * MS, lambda v: v.er(cl, "F", "1", 100, 0, last=(25, 1000), avg_px="10")),  # should be 2
        (80 * MS, lambda v: v.er(cl, "4", "4", 100, 0)),  # after the order finished
        (90 * MS, lambda v: v.er("nobody", "0", "0", 0, 100, order_id="999")),  # unknown ClOrdID
        (95 * MS, lambda v: v.er(cl, "F", "2", 100, 0, last=(0, 1000), avg_px="10")),  # LastQty 0: an error
    ]
    kernel, _venue, oms, desk, _rec = venue_world(script, [(10 * MS, buy(1))])
    kernel.run(1 * S)
    c = oms.counters
    assert c["er_received"] == 9 and c["er_duplicates"] == 1 and c["er_unknown"] == 1
    assert c["break_cum_qty"] == 1  # 70 reported where 30 + 20 = 50 was due (the venue's wins)
    assert c["break_qty"] == 1  # 70 + 20 != 100
    assert c["break_avg_px"] == 1  # 10.5 reported, 10.00 computed
    assert c["break_ord_status"] == 1  # LeavesQty 0 reported as PartiallyFilled
    assert c["break_terminal"] == 2  # a report for the filled order (canceled, then the bad fill)
    assert c["errors"] == 1 and c["fills"] == 4
    assert oms.position("XYZ") == 80  # fills count by LastQty: 30 + 20 + 5 + 25
    assert [f.qty for f in desk.received(OrderFilled)] == [30, 20, 5, 25]
    assert desk.received(OrderAccepted) == [OrderAccepted(desk.oid(1))]
    assert oms.snapshot()["breaks"] == 6


def test_resent_reports_after_reconnect_apply_once():
    cl = "CLIENT1-1"
    script = [(20 * MS, lambda v: v.er(cl, "0", "0", 0, 100))]
    script += [
        (1 * S + i * 100 * MS, lambda v, i=i: v.er(cl, "F", "1", 10 * (i + 1), 90 - 10 * i, last=(10, 1000)))
        for i in range(9)
    ]
    events = [(1250 * MS, FixLinkDown()), (2500 * MS, FixLinkUp())]
    kernel, venue, oms, desk, _rec = venue_world(script, [(10 * MS, buy(1)), (2 * S, buy(2))], events=events)
    kernel.run(5 * S)
    assert oms.position("XYZ") == 90
    assert [f.leaves_qty for f in desk.received(OrderFilled)] == [90 - 10 * i for i in range(9)]
    assert venue.session.counters.resent > 0
    assert oms.counters["er_applied"] == 10 and oms.snapshot()["breaks"] == 0
    assert desk.received(OrderRejected) == [OrderRejected(desk.oid(2), "fix session down")]
    assert oms.counters["rejected_session_down"] == 1


def test_cancel_while_session_down_is_refused():
    script = [(20 * MS, lambda v: v.er("CLIENT1-1", "0", "0", 0, 100))]
    desk_script = [(10 * MS, buy(1)), (2 * S, lambda a: CancelOrder(a.oid(1), "XYZ"))]
    kernel, _venue, _oms, desk, _rec = venue_world(script, desk_script, events=[(1 * S, FixLinkDown())])
    kernel.run(3 * S)
    assert desk.received(CancelRejected) == [CancelRejected(desk.oid(1), "fix session down")]


def test_parent_progress_from_attached_children():
    def fill(cl, cum, leaves, last):
        return lambda v: v.er(cl, "F", "1" if leaves else "2", cum, leaves, qty=cum + leaves, last=last)

    script = [
        (20 * MS, lambda v: v.er("CLIENT1-1", "0", "0", 0, 100)),
        (30 * MS, fill("CLIENT1-1", 100, 0, (100, 1002))),
        (40 * MS, lambda v: v.er("CLIENT1-2", "0", "0", 0, 200, qty=200)),
        (50 * MS, fill("CLIENT1-2", 50, 150, (50, 1004))),
        (60 * MS, fill("CLIENT1-2", 200, 0, (150, 1000))),
        (70 * MS, lambda v: v.er("CLIENT1-3", "0", "0", 0, 10, qty=10)),
        (80 * MS, fill("CLIENT1-3", 10, 0, (10, 1001))),  # not a child
    ]
    desk_script = [
        (1 * MS, lambda a: NewParentOrder(7, "XYZ", "B", 500, "twap", 1000, 1 * MS)),
        (10 * MS, buy(1)),
        (10 * MS, lambda a: AttachChild(a.oid(1), 7)),  # after its SubmitOrder
        (11 * MS, lambda a: AttachChild(a.oid(2), 7)),  # before its SubmitOrder
        (12 * MS, buy(2, qty=200)),
        (13 * MS, buy(3, qty=10)),
    ]
    kernel, _venue, oms, desk, rec = venue_world(script, desk_script)
    kernel.run(1 * S)
    p = oms.parent_state(7)
    assert p["filled_qty"] == 300 and p["children"] == 2 and p["progress"] == 0.6
    notional = 100 * 1002 + 50 * 1004 + 150 * 1000
    assert p["avg_price"] == notional / 300
    assert p["shortfall_ticks"] == notional - 300 * 1000
    assert p["opportunity_ticks"] == 200 * (1001 - 1000)  # marked at the last fill: 10.01
    assert oms.order_state(desk.oid(2))["parent_id"] == 7
    assert oms.order_state(desk.oid(3))["parent_id"] is None
    snap = oms.snapshot()
    assert snap["parents"][7]["filled_qty"] == 300 and snap["breaks"] == 0
    orders = rec.tables["oms_orders"].frame()
    assert list(orders[orders.event == "parent"].order_id) == [7]


def test_fix_input_errors_never_escape():
    script = [
        (20 * MS, lambda v: v.session.send_app(CODEC.order_cancel_reject(
            order_id="1", cl_ord_id="zzz", orig_cl_ord_id="y", ord_status="0", response_to="1"))),
        (30 * MS, lambda v: v.session.send_app(CODEC.business_message_reject("D", 3, "nope", 2))),
        (40 * MS, lambda v: v.session.send_app(CODEC.trading_session_status("2"))),
    ]  # fmt: skip
    kernel, _venue, oms, desk, _rec = venue_world(script, [(10 * MS, buy(1))])
    kernel.run(1 * S)
    # the j refers to MsgSeqNum 2 = our NewOrderSingle: the desk hears a reject
    assert desk.received(OrderRejected) == [OrderRejected(desk.oid(1), "nope")]
    assert oms.counters["business_rejects"] == 1 and oms.counters["er_unknown"] == 1
    assert oms.session.counters.app_errors == 0 and oms.session.counters.errors == 0


def test_replace_that_meets_a_fill_in_flight_ends_the_order():
    """The desk asks for 50 more while 60 fill in flight: the venue amends OrderQty to CumQty and
    answers Replaced with OrdStatus Filled, LeavesQty 0 (FIX 4.4 App. D); the order is done."""
    new_cl, replace_cl = "CLIENT1-1", "CLIENT1-2"
    script = [
        (20 * MS, lambda v: v.er(new_cl, "0", "0", 0, 100)),
        (31 * MS, lambda v: v.er(new_cl, "F", "1", 60, 40, last=(60, 1000))),
        (40 * MS, lambda v: v.er(replace_cl, "5", "2", 60, 0, qty=60, orig_cl_ord_id=new_cl, avg_px="10")),
    ]
    desk_script = [(10 * MS, buy(1)), (30 * MS, lambda a: ReplaceOrder(a.oid(1), "XYZ", 50, 1000))]
    kernel, _venue, oms, desk, _rec = venue_world(script, desk_script)
    kernel.run(1 * S)
    assert oms.counters["break_ord_status"] == 0
    assert desk.received(OrderReplaced) == [OrderReplaced(desk.oid(1), 1000, 0)]
    order = next(iter(oms.orders.values()))
    assert order.done and order.cum_qty == 60 and order.leaves_qty == 0
    assert oms.position("XYZ") == 60
