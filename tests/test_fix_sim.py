"""The desk's FIX path inside the simulation: Exchange + FixGateway + OMS + desk traders.

A scripted desk sends native commands to the OMS, which speaks FIX 4.4 to the gateway actor
next to the exchange; a scripted counterparty trades natively on the exchange.
"""

from __future__ import annotations

import pytest

from actors.exchange.exchange import Exchange
from actors.messages import (
    ORDER_ID_SHIFT,
    CancelOrder,
    CancelRejected,
    DropCopy,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    ReplaceOrder,
    SubmitOrder,
    SubscribeDropCopy,
    SubscribeMarketData,
    TradePrinted,
    owner_of,
)
from actors.oms import OMS
from actors.trader import Trader
from fix.gateway_actor import FixGateway, scan_frame
from fix.session import FixFrame, FixLinkDown, FixLinkUp, SessionState
from sim.actor import Actor, Wakeup, handles
from sim.kernel import Kernel
from sim.network import LinkSpec, Network, NetworkSpec
from sim.record import Recorder
from sim.rng import RandomStreams
from tests.helpers import Scripted

MS = 1_000_000
S = 1_000_000_000


class Events(Actor):
    """Sends scenario events ``(t_ns, [(actor name, message), ...])``."""

    def __init__(self, name, events):
        super().__init__(name)
        self.events = list(events)

    def on_start(self):
        for i, (t, _) in enumerate(self.events):
            self.wake_at(t, i)

    @handles(Wakeup)
    def on_wake(self, msg, src):
        for dst, event in self.events[msg.tag][1]:
            self.send(self.lookup(dst), event)


def world(desk_script=(), cp_script=(), *, events=(), seed=1, jitter_ns=0, gw_kw=None, oms_kw=None, extra=()):
    rec = Recorder()
    kernel = Kernel(Network(NetworkSpec(LinkSpec(1 * MS, jitter_ns))), RandomStreams(seed))
    exchange = Exchange("exchange", ["XYZ"], rec, 0, 10**13)
    gateway = FixGateway("gateway", rec, clients=["CLIENT1"], symbols=["XYZ"], **(gw_kw or {}))
    oms = OMS("oms", rec, **(oms_kw or {}))
    desk = Scripted("desk", desk_script, dst="oms")
    cp = Scripted("cp", cp_script)
    risk = Scripted("risk", [(0, lambda a: SubscribeDropCopy())], dst="gateway")
    for actor in (exchange, gateway, oms, desk, cp, risk, *extra):
        kernel.add(actor)
    if events:
        kernel.add(Events("scenario", events))
    return kernel, exchange, gateway, oms, desk, cp, risk, rec


def submit(n, side, qty, price, **kw):
    return lambda a: SubmitOrder(a.oid(n), "XYZ", side, qty, price, **kw)


def fields(raw):
    return dict(part.split("=", 1) for part in raw.split("\x01") if "=" in part)


def exchange_fills(rec, owner_name="gateway"):
    """(signed qty, notional) of the fills the exchange recorded for ``owner_name``'s orders."""
    frame = rec.tables["orders"].frame()
    sides = frame[frame.event == "submit"].set_index("order_id").side.to_dict()
    fills = frame[(frame.event == "filled") & (frame.owner == owner_name)]
    qty = sum(int(r.qty) if sides[r.order_id] == "B" else -int(r.qty) for r in fills.itertuples())
    notional = sum(int(r.qty) * int(r.price) for r in fills.itertuples())
    return qty, notional


def assert_drop_copies_complete(gateway, risk, rec):
    ers_out = [r for r in rec.tables["fix_messages"].rows if r[2] == "out" and r[3] == "8"]
    drops = risk.received(DropCopy)
    assert len(drops) == gateway.sessions["CLIENT1"].counters.app_sent - _non_er_apps(rec)
    assert len({d.exec_report_raw for d in drops}) == len(drops)
    assert all(d.session == "CLIENT1" and fields(d.exec_report_raw)["35"] == "8" for d in drops)
    sent_seqs = {r[4] for r in ers_out}
    assert sent_seqs <= {int(fields(d.exec_report_raw)["34"]) for d in drops}


def _non_er_apps(rec):
    rows = rec.tables["fix_messages"].rows
    seqs = {r[4] for r in rows if r[2] == "out" and r[3] not in ("8", "A", "0", "1", "2", "3", "4", "5")}
    return len(seqs)


# -- basic round trips ---------------------------------------------------------------------------
def test_limit_order_rests_and_is_filled_through_fix():
    kernel, _exchange, gateway, oms, desk, cp, risk, rec = world(
        [(100 * MS, submit(1, "B", 100, 1000))],
        [(200 * MS, submit(1, "S", 60, 1000)), (300 * MS, submit(2, "S", 50, 999))],
    )
    kernel.run(1 * S)
    oid = desk.oid(1)
    assert desk.received(OrderAccepted) == [OrderAccepted(oid)]
    fills = desk.received(OrderFilled)
    assert [(f.order_id, f.price, f.qty, f.leaves_qty, f.liquidity) for f in fills] == [
        (oid, 1000, 60, 40, "maker"),
        (oid, 1000, 40, 0, "maker"),
    ]
    state = oms.order_state(oid)
    assert (state["ord_status"], state["order_qty"], state["cum_qty"], state["leaves_qty"]) == ("2", 100, 100, 0)
    assert state["avg_px"] == 1000.0
    assert oms.position("XYZ") == 100 and oms.cash == -100_000
    # the counterparty's sell of 50 at 9.99 traded 40 with the desk, 10 rests
    assert [(f.qty, f.price) for f in cp.received(OrderFilled)] == [(60, 1000), (40, 1000)]
    snap = oms.snapshot()
    assert snap["breaks"] == 0 and snap["counters"]["er_applied"] == 3
    assert snap["positions"]["XYZ"]["mark"] == 1000
    # every ExecutionReport was copied to the drop-copy subscriber
    drops = risk.received(DropCopy)
    assert [fields(d.exec_report_raw)["150"] for d in drops] == ["0", "F", "F"]
    assert [fields(d.exec_report_raw)["14"] for d in drops] == ["0", "60", "100"]
    assert_drop_copies_complete(gateway, risk, rec)
    assert exchange_fills(rec) == (100, 100_000)
    assert gateway.errors == 0 and oms.counters["errors"] == 0 and not gateway.core.errors


def test_cancel_and_replace_round_trips():
    kernel, _exchange, _gateway, oms, desk, _cp, _risk, rec = world(
        [
            (100 * MS, submit(1, "B", 100, 1000)),
            (200 * MS, lambda a: ReplaceOrder(a.oid(1), "XYZ", 80, 1001)),
            (300 * MS, lambda a: ReplaceOrder(a.oid(1), "XYZ", None, 1002)),
            (400 * MS, lambda a: CancelOrder(a.oid(1), "XYZ")),
            (500 * MS, lambda a: CancelOrder(a.oid(1), "XYZ")),  # already canceled
        ],
    )
    kernel.run(1 * S)
    oid = desk.oid(1)
    assert desk.received(OrderReplaced) == [OrderReplaced(oid, 1001, 80), OrderReplaced(oid, 1002, 80)]
    assert desk.received(OrderCanceled) == [OrderCanceled(oid, 80, "canceled")]
    assert desk.received(CancelRejected) == [CancelRejected(oid, "unknown order")]
    state = oms.order_state(oid)
    assert state["chain"] == ["CLIENT1-1", "CLIENT1-2"] and state["cl_ord_id"] == "CLIENT1-3"
    assert (state["ord_status"], state["order_qty"], state["leaves_qty"], state["price"]) == ("4", 80, 0, 1002)
    # the FIX conversation: D, G (41 = first ClOrdID), G (41 = second), F (41 = third)
    ins = [(r[3], r[5]) for r in rec.tables["fix_messages"].rows if r[2] == "in" and r[3] not in ("A", "0")]
    assert ins == [("D", "CLIENT1-1"), ("G", "CLIENT1-2"), ("G", "CLIENT1-3"), ("F", "CLIENT1-4")]
    exch = rec.tables["orders"].frame()
    assert list(exch[exch.event == "replaced"].price) == [1001, 1002]
    assert oms.snapshot()["breaks"] == 0


def test_queued_cancel_after_pending_replace():
    kernel, _exchange, _gateway, oms, desk, _cp, _risk, _rec = world(
        [
            (100 * MS, submit(1, "B", 100, 1000)),
            (200 * MS, lambda a: ReplaceOrder(a.oid(1), "XYZ", 50, None)),
            (200 * MS + 1, lambda a: CancelOrder(a.oid(1), "XYZ")),
        ],
    )
    kernel.run(1 * S)
    oid = desk.oid(1)
    assert desk.received(OrderReplaced) == [OrderReplaced(oid, 1000, 50)]
    assert desk.received(OrderCanceled) == [OrderCanceled(oid, 50, "canceled")]
    assert oms.counters["queued_requests"] == 1 and oms.counters["cancel_rejects"] == 0


def test_rejects_reach_the_desk_as_native_events():
    kernel, _exchange, _gateway, oms, desk, _cp, _risk, _rec = world(
        [
            (300 * MS, submit(1, "B", 10, 1001, post_only=True)),  # crosses the resting ask
            (310 * MS, submit(2, "B", 10, 1001)),  # fills completely
            (400 * MS, lambda a: CancelOrder(a.oid(2), "XYZ")),  # too late: known done in the OMS
            (410 * MS, lambda a: SubmitOrder(a.oid(1), "XYZ", "B", 5, 1000)),  # duplicate id
            (420 * MS, lambda a: SubmitOrder((99 << ORDER_ID_SHIFT) | 1, "XYZ", "B", 5, 1000)),  # not owned
            (430 * MS, lambda a: SubmitOrder(a.oid(3), "ABC", "B", 5, 1000)),  # unknown symbol at the venue
        ],
        [(100 * MS, submit(1, "S", 20, 1001))],
    )
    kernel.run(1 * S)
    rejected = {r.order_id: r.reason for r in desk.received(OrderRejected)}
    assert rejected[desk.oid(1)] in ("post_only would cross", "duplicate order id")
    assert [r.reason for r in desk.received(OrderRejected) if r.order_id == desk.oid(1)] == [
        "post_only would cross",
        "duplicate order id",
    ]
    assert rejected[(99 << ORDER_ID_SHIFT) | 1] == "order id not owned by sender"
    assert rejected[desk.oid(3)].startswith("unknown symbol")
    assert desk.received(CancelRejected) == [CancelRejected(desk.oid(2), "unknown order")]
    assert oms.position("XYZ") == 10
    assert oms.snapshot()["breaks"] == 0


def test_cancel_racing_a_fill_gets_a_cancel_reject():
    # the cancel leaves the OMS while the fill is on its way back: the gateway answers 35=9
    kernel, _exchange, _gateway, oms, desk, _cp, _risk, rec = world(
        [(100 * MS, submit(1, "B", 10, 1000)), (200 * MS + 1 * MS, lambda a: CancelOrder(a.oid(1), "XYZ"))],
        [(200 * MS, submit(1, "S", 10, 1000))],
    )
    kernel.run(1 * S)
    oid = desk.oid(1)
    assert [f.qty for f in desk.received(OrderFilled)] == [10]
    [rej] = desk.received(CancelRejected)
    assert rej.order_id == oid
    ins = [r[3] for r in rec.tables["fix_messages"].rows if r[2] == "out"]
    assert "9" in ins
    assert oms.snapshot()["breaks"] == 0 and oms.order_state(oid)["ord_status"] == "2"


# -- disconnect and recovery ---------------------------------------------------------------------
def _stream_with_disconnect(cancel_on_disconnect, seed=1, jitter_ns=0):
    cp_script = [(200 * MS + i * 20 * MS, submit(i + 1, "S", 10, 1000)) for i in range(100)]
    desk_script = [
        (100 * MS, submit(1, "B", 1000, 1000)),
        (2 * S, submit(2, "B", 10, 990)),  # while the session is down
        (4 * S, submit(3, "B", 10, 990)),  # after the reconnect
    ]
    down = [("gateway", FixLinkDown("CLIENT1", "cable pulled")), ("oms", FixLinkDown("CLIENT1", "cable pulled"))]
    up = [("gateway", FixLinkUp("CLIENT1")), ("oms", FixLinkUp("CLIENT1"))]
    return world(
        desk_script,
        cp_script,
        events=[(1 * S + 500_000, down), (3 * S, up)],
        gw_kw={"cancel_on_disconnect": cancel_on_disconnect},
        seed=seed,
        jitter_ns=jitter_ns,
    )


@pytest.mark.parametrize("cancel_on_disconnect", [True, False])
def test_disconnect_mid_fills_recovers_every_execution_report(cancel_on_disconnect):
    kernel, _exchange, gateway, oms, desk, _cp, risk, rec = _stream_with_disconnect(cancel_on_disconnect)
    kernel.run(6 * S)
    oid = desk.oid(1)
    exch_qty, exch_notional = exchange_fills(rec)
    assert exch_qty > 0
    # the OMS position is the exchange's record of the desk's fills, to the share
    assert oms.position("XYZ") == exch_qty
    assert -oms.cash == exch_notional
    fills = [f for f in desk.received(OrderFilled) if f.order_id == oid]
    assert sum(f.qty for f in fills) == exch_qty
    assert [f.leaves_qty for f in fills] == [1000 - 10 * (i + 1) for i in range(len(fills))]
    # the order reached its end state and the desk was told once
    state = oms.order_state(oid)
    if cancel_on_disconnect:
        assert exch_qty < 1000
        assert desk.received(OrderCanceled) == [OrderCanceled(oid, 1000 - exch_qty, "cancel on disconnect")]
        assert state["ord_status"] == "4"
    else:
        assert exch_qty == 1000 and state["ord_status"] == "2"
        assert desk.received(OrderCanceled) == []
    assert state["cum_qty"] == exch_qty and state["leaves_qty"] == 0
    # reports really were lost and resent, and each counted exactly once
    s = oms.session
    assert s.counters.disconnects == 1 and s.state is SessionState.ACTIVE
    assert gateway.sessions["CLIENT1"].counters.resent > 0
    snap = oms.snapshot()
    assert snap["breaks"] == 0
    assert snap["counters"]["er_applied"] == len(risk.received(DropCopy))
    # the order sent while the session was down was refused, the one after went through
    assert OrderRejected(desk.oid(2), "fix session down") in desk.received(OrderRejected)
    assert OrderAccepted(desk.oid(3)) in desk.received(OrderAccepted)
    assert oms.session.next_in_seq == gateway.sessions["CLIENT1"].next_out_seq
    assert gateway.sessions["CLIENT1"].next_in_seq == oms.session.next_out_seq
    assert_drop_copies_complete(gateway, risk, rec)


def test_gateway_notices_a_silent_client_and_cancels_on_disconnect():
    """Only the OMS's link drops: the gateway finds out by heartbeat and cancels."""
    cp_script = [(200 * MS + i * 100 * MS, submit(i + 1, "S", 10, 1000)) for i in range(3)]
    kernel, _exchange, _gateway, oms, desk, _cp, _risk, rec = world(
        [(100 * MS, submit(1, "B", 100, 1000))],
        cp_script,
        events=[(1 * S, [("oms", FixLinkDown())]), (90 * S, [("oms", FixLinkUp())])],
        oms_kw={"heartbeat_s": 10},
    )
    kernel.run(100 * S)
    oid = desk.oid(1)
    assert desk.received(OrderCanceled) == [OrderCanceled(oid, 70, "cancel on disconnect")]
    assert oms.position("XYZ") == exchange_fills(rec)[0] == 30
    assert oms.session.state is SessionState.ACTIVE and oms.snapshot()["breaks"] == 0


# -- recorder, determinism, market data, robustness ------------------------------------------------
def test_fix_messages_table_and_pnl_recorded():
    kernel, _exchange, _gateway, _oms, desk, _cp, _risk, rec = world(
        [(100 * MS, submit(1, "B", 100, 1000)), (25 * S, submit(2, "S", 100, 1010))],
        [(200 * MS, submit(1, "S", 100, 1000)), (26 * S, submit(2, "B", 100, 1010))],
        oms_kw={"heartbeat_s": 10},
    )
    kernel.run(31 * S)
    fm = rec.tables["fix_messages"].frame()
    assert list(fm.columns) == ["time_ns", "session", "direction", "msg_type", "seq", "cl_ord_id", "text"]
    assert set(fm.direction) == {"in", "out"}
    assert {"A", "D", "8", "0"} <= set(fm.msg_type)  # logon, order, reports, heartbeats
    for direction in ("in", "out"):
        seqs = list(fm[fm.direction == direction].seq)
        assert seqs == sorted(seqs)
    pnl = rec.tables["pnl"].frame()
    assert list(pnl.columns) == ["time_ns", "symbol", "position", "cash", "realized", "unrealized", "mark"]
    assert list(pnl.time_ns) == [10 * S, 20 * S, 30 * S, 31 * S]
    assert list(pnl.position) == [100, 100, 0, 0]
    assert pnl.realized.iloc[-1] == 100 * 10 and pnl.unrealized.iloc[-1] == 0
    orders = rec.tables["oms_orders"].frame()
    assert list(orders[orders.order_id == desk.oid(1)].event) == ["submit", "accepted", "filled"]


def _digest(seed):
    kernel, _exchange, _gateway, oms, _desk, _cp, _risk, rec = _stream_with_disconnect(
        False, seed=seed, jitter_ns=300_000
    )
    kernel.run(6 * S)
    return rec.digest(), oms.position("XYZ")


def test_deterministic():
    a, b = _digest(3), _digest(3)
    assert a == b
    assert _digest(4)[0] != a[0]  # the jitter stream really moves with the seed


class DeskTrader(Trader):
    """A plain Trader whose exchange is the OMS; subscribes to market data through it."""

    def __init__(self, name):
        super().__init__(name, "XYZ", exchange="oms")
        self.trades = []

    def on_start(self):
        super().on_start()
        self.send(self.exchange, SubscribeMarketData("XYZ", trades=True, quotes=False))
        self.wake_at(100 * MS, "go")

    @handles(Wakeup)
    def on_wake(self, msg, src):
        self.submit("B", 50, 1000)
        self.submit("S", 20, 1005)

    @handles(TradePrinted)
    def on_trade(self, msg, src):
        self.trades.append(msg)


@pytest.mark.parametrize("market_data", ["native", "fix"])
def test_trader_subclass_trades_through_the_oms(market_data):
    trader = DeskTrader("desk2")
    kernel, _exchange, _gateway, oms, _desk, _cp, _risk, rec = world(
        cp_script=[(200 * MS, submit(1, "S", 50, 1000)), (300 * MS, submit(2, "B", 20, 1005))],
        oms_kw={"market_data": market_data},
        extra=[trader],
    )
    kernel.run(1 * S)
    assert trader.position == oms.position("XYZ") == 30
    assert trader.cash == oms.cash == -50 * 1000 + 20 * 1005
    assert trader.open_orders == {}
    assert [(t.price, t.qty) for t in trader.trades] == [(1000, 50), (1005, 20)]
    assert oms.marks["XYZ"] == 1005
    snap = oms.snapshot()
    assert snap["realized"] == 20 * 5 and snap["unrealized"] == 30 * 5
    if market_data == "fix":
        assert "X" in set(rec.tables["fix_messages"].frame().msg_type)


def test_gateway_survives_garbage_frames():
    class Garbage(Actor):
        def on_start(self):
            self.wake_at(50 * MS)

        @handles(Wakeup)
        def go(self, msg, src):
            gw = self.lookup("gateway")
            for raw in ("", "garbage", "8=FIX.4.4\x019=5\x0135=D\x0110=000\x01", None, "49=CLIENT1\x01"):
                self.send(gw, FixFrame(raw))

    kernel, _exchange, gateway, oms, desk, _cp, _risk, _rec = world(
        [(100 * MS, submit(1, "B", 10, 1000))], [(200 * MS, submit(1, "S", 10, 1000))], extra=[Garbage("garbage")]
    )
    kernel.run(1 * S)
    assert [f.qty for f in desk.received(OrderFilled)] == [10]
    assert gateway.counters["unknown_session"] == 4 and gateway.counters["foreign_frames"] == 1
    assert oms.snapshot()["breaks"] == 0


def test_scan_frame_and_order_ids():
    raw = "8=FIX.4.4\x019=10\x0135=8\x0149=DESKSIM\x0134=7\x0111=C1\x0158=hi\x0110=000\x01"
    assert scan_frame(raw) == ("8", 7, "C1", "hi", "DESKSIM")
    kernel, _exchange, gateway, _oms, _desk, _cp, _risk, rec = world([(100 * MS, submit(1, "B", 10, 1000))])
    kernel.run(1 * S)
    exch = rec.tables["orders"].frame()
    assert {owner_of(int(o)) for o in exch.order_id} == {gateway.id}
