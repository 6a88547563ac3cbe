"""The desk's FIX path inside the simulation: Exchange + FixGateway + OMS + desk traders.

A scripted desk sends native commands to the OMS, which speaks FIX 4.4 to the gateway actor
next to the exchange; a scripted counterparty trades natively on the exchange.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import pytest
import quickfix44 as fix44

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
from actors.trader import Trader
from fix.clock import DEFAULT_TRADING_DATE, FixClock
from fix.codec import MAX_MARKET_DEPTH, Codec
from fix.gateway_actor import FixGateway, scan_frame
from fix.oms import OMS
from fix.session import FixFrame, FixLinkDown, FixLinkUp, FixSession, SessionState
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
    gateway = FixGateway("gateway", rec, symbols=["XYZ"], **{"clients": ["CLIENT1"], **(gw_kw or {})})
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


# =============================================================================================
# market data deeper than the touch (issue 13 item 9) and timestamps (item 7)
# =============================================================================================
def md_entries(raw: str) -> tuple[str, list[dict[int, str]]]:
    """(MsgType, entries) of a W or X: one {tag: value} per NoMDEntries group, in order."""
    parts = [p.partition("=") for p in raw.split("\x01") if p]
    msg_type = next(v for t, _, v in parts if t == "35")
    start = "279" if msg_type == "X" else "269"
    entries: list[dict[int, str]] = []
    inside = False
    for tag, _, value in parts:
        if tag == "268":
            inside = True
        elif inside and tag == start:
            entries.append({})
        if inside and entries and tag not in ("10",):
            entries[-1][int(tag)] = value
    return msg_type, entries


class ClientBook:
    """A FIX client's book kept from W (snapshot) and X (position-based New/Change/Delete)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.sides: dict[str, list[tuple[str, int]]] = {"0": [], "1": []}
        self.updates = 0
        self.deep_updates = 0  # X book entries below the top (position > 1)

    def apply(self, raw: str) -> None:
        msg_type, entries = md_entries(raw)
        if msg_type == "W":
            self.sides = {"0": [], "1": []}
            for e in entries:
                if e.get(269) in self.sides:
                    self.sides[e[269]].append((e[270], int(e[271])))
            return
        for e in entries:
            side = self.sides.get(e.get(269, ""))
            if side is None:
                continue
            self.updates += 1
            pos = int(e[290]) - 1
            self.deep_updates += pos > 0
            action = e[279]
            assert 0 <= pos < len(side) + (action == "0"), f"279={action} at 290={pos + 1}: the book has {len(side)}"
            if action == "0":
                side.insert(pos, (e[270], int(e[271])))
            elif action == "1":
                assert side[pos][0] == e[270], f"Change at {pos + 1} names {e[270]}, the level there is {side[pos]}"
                side[pos] = (e[270], int(e[271]))
            else:
                assert side[pos][0] == e[270], f"Delete at {pos + 1} names {e[270]}, the level there is {side[pos]}"
                del side[pos]
            assert self.depth == 0 or len(side) <= self.depth, "more levels than subscribed"

    def levels(self, codec: Any) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        return tuple([(codec.to_ticks(px), q) for px, q in self.sides[s]] for s in ("0", "1"))  # type: ignore[return-value]


class MdClient(Actor):
    """A FIX initiator (CLIENT2) that logs on to the gateway, subscribes market data with the
    given (MDReqID, MarketDepth, MDUpdateType) requests and keeps one ClientBook per request."""

    def __init__(self, name: str, requests: list[tuple[str, int, str | None]], date: Any = None) -> None:
        super().__init__(name)
        self.requests = requests
        self.codec = Codec(0.01, clock=FixClock(date) if date is not None else None)
        self.books = {req_id: ClientBook(depth) for req_id, depth, _ in requests}
        self.raw: list[str] = []
        self.session = FixSession(
            "CLIENT2",  # the OMS of world() is CLIENT1
            "DESKSIM",
            initiator=True,
            send_raw=lambda raw: self.send(self.gw, FixFrame(raw)),
            now_ns=lambda: self.now,
            on_app=self._on_app,
            on_state=self._on_state,
            set_timer=lambda t: self.wake_at(t, "fix"),
            clock=self.codec.clock,
        )

    def on_start(self) -> None:
        self.gw = self.lookup("gateway")
        self.session.connect()

    def _on_state(self, old: Any, new: Any) -> None:
        if new is SessionState.ACTIVE:
            for req_id, depth, update_type in self.requests:
                self.session.send_app(
                    self.codec.market_data_request(req_id, ["XYZ"], "1", depth, ("0", "1", "2"), update_type)
                )

    def _on_app(self, msg: Any) -> None:
        raw = msg.toString()
        self.raw.append(raw)
        req_id = dict(p.partition("=")[::2] for p in raw.split("\x01") if p).get("262")
        if req_id in self.books:
            self.books[req_id].apply(raw)

    @handles(FixFrame)
    def on_frame(self, msg: FixFrame, src: int) -> None:
        self.session.on_raw(msg.raw)

    @handles(Wakeup)
    def on_wake(self, msg: Wakeup, src: int) -> None:
        self.session.on_timer()


MD_GW = {"clients": ["CLIENT1", "CLIENT2"]}


def random_flow(seed: int, n: int) -> list[tuple[int, Any]]:
    """Seeded orders and cancels on both sides around 100.00, some crossing, some far below the touch."""
    import random as _random

    r = _random.Random(seed)
    script: list[tuple[int, Any]] = []
    live: list[int] = []
    for i in range(1, n + 1):
        t = 1 * S + i * 3 * MS
        if live and r.random() < 0.25:
            k = live.pop(r.randrange(len(live)))
            script.append((t, lambda a, k=k: CancelOrder(a.oid(k), "XYZ")))
            continue
        side = r.choice("BS")
        offset = r.choice((r.randint(1, 12), r.randint(1, 12), r.randint(-2, 0)))  # mostly rests
        px = 10_000 - offset if side == "B" else 10_000 + offset
        script.append((t, submit(i, side, r.randint(1, 9) * 10, px)))
        live.append(i)
    return script


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_fix_market_data_keeps_a_client_book_equal_to_the_exchange(seed):
    """Issue 13 item 9: with MarketDepth 5, 0 (full book) and 1, plus a full-refresh (265=0)
    subscription at depth 3, a client keeping its book from W + X has, after a random flow of
    orders, the exchange's book at every subscribed level -- changes below the touch included."""
    requests = [("d5", 5, "1"), ("full", 0, "1"), ("top", 1, None), ("w3", 3, "0")]
    client = MdClient("client", requests)
    kernel, exchange, gateway, *_ = world(cp_script=random_flow(seed, 300), extra=(client,), gw_kw=MD_GW)
    kernel.run(3 * S)
    book = exchange.books["XYZ"]
    bids, asks = book.depth(None)
    assert len(bids) > 5 and len(asks) > 5, "the flow should build a book deeper than 5 levels"
    for req_id, depth, _ in requests:
        n = depth or len(bids) + len(asks)
        got = client.books[req_id].levels(client.codec)
        assert got == (bids[:n], asks[:n]), f"{req_id}: client book differs from the exchange's"
    assert client.books["d5"].deep_updates > 0 and client.books["full"].deep_updates > 0
    assert gateway.errors == 0 and not gateway.md.errors


def test_an_order_below_the_touch_is_published_at_once():
    """Issue 13 item 9: a new bid below the best bid reaches a depth-5 subscriber as an X at once
    (the top of book does not change), and not a depth-1 one."""
    requests = [("d5", 5, "1"), ("top", 1, "1")]
    client = MdClient("client", requests)
    cp = [(1 * S, submit(1, "B", 10, 9_990)), (1 * S + 1 * MS, submit(2, "S", 10, 10_010))]
    cp += [(2 * S, submit(3, "B", 7, 9_980))]  # below the touch
    kernel, *_ = world(cp_script=cp, extra=(client,), gw_kw=MD_GW)
    kernel.advance(2 * S - 1)
    before = len(client.raw)
    kernel.run(2 * S + 5 * MS)  # a few link latencies later
    new = [md_entries(raw) for raw in client.raw[before:]]
    assert [(t, e[279], e[269], e[270], e[271], e[290]) for t, es in new for e in es] == [
        ("X", "0", "0", "99.80", "7", "2")
    ]
    assert client.books["d5"].sides["0"] == [("99.90", 10), ("99.80", 7)]
    assert client.books["top"].sides["0"] == [("99.90", 10)]


def test_unsupported_depth_and_entry_type_get_a_market_data_request_reject():
    """Issue 13 item 9: a depth or an entry type the gateway does not serve gets 35=Y with the reason."""
    codec = Codec(0.01)
    deep = codec.market_data_request("deep", ["XYZ"], "1", MAX_MARKET_DEPTH + 1, ("0", "1"))
    odd = codec.market_data_request("odd", ["XYZ"], "1", 5, ("0", "1"))
    odd.setField(267, "3")
    g = fix44.MarketDataRequest.NoMDEntryTypes()
    g.setField(269, "4")  # opening price: not served
    odd.addGroup(g)
    sent: list[Any] = []
    client = MdClient("client", [])
    client._on_state = lambda old, new: new is SessionState.ACTIVE and [client.session.send_app(m) for m in (deep, odd)]
    client.session._on_state = client._on_state
    client._on_app = lambda msg: sent.append(msg.toString())  # type: ignore[method-assign]
    client.session._on_app = client._on_app
    kernel, *_ = world(extra=(client,), gw_kw=MD_GW)
    kernel.run(1 * S)
    rejects = [dict(p.partition("=")[::2] for p in raw.split("\x01") if p) for raw in sent]
    assert [(r["35"], r["262"], r["281"]) for r in rejects] == [("Y", "deep", "5"), ("Y", "odd", "8")]
    assert str(MAX_MARKET_DEPTH) in rejects[0]["58"] and "MDEntryType" in rejects[1]["58"]


@pytest.mark.parametrize("date", [None, _dt.date(2024, 3, 15), _dt.date(1999, 12, 31)])
def test_transact_time_and_sending_time_agree_to_the_date(date):
    """Issue 13 item 7: every ExecutionReport of a run carries the trading date in both
    TransactTime (60) and SendingTime (52) -- the scenario's ``date`` or the default."""
    clock = FixClock(date) if date is not None else FixClock()
    codec = lambda: Codec(0.01, clock=clock)  # noqa: E731
    desk = [(1 * S, submit(1, "B", 10, 10_000)), (1 * S + 5 * MS, submit(2, "S", 5, 9_990))]
    kernel, _, gateway, oms, *_ = world(desk, gw_kw={"codec": codec()}, oms_kw={"codec": codec()})
    got: list[str] = []
    gateway_send_raw = gateway._send_raw
    oms_send_raw = oms._send_raw
    gateway._send_raw = lambda comp, raw: (got.append(raw), gateway_send_raw(comp, raw))[-1]
    oms._send_raw = lambda raw: (got.append(raw), oms_send_raw(raw))[-1]
    oms.session._send_raw = oms._send_raw
    for s in gateway.sessions.values():
        s._send_raw = lambda raw, s=s: gateway._send_raw(s.target_comp_id, raw)
    kernel.run(2 * S)
    day = (date or DEFAULT_TRADING_DATE).strftime("%Y%m%d")
    stamped = [dict(p.partition("=")[::2] for p in raw.split("\x01") if p) for raw in got]
    with_60 = [d for d in stamped if "60" in d]
    assert {d["35"] for d in with_60} >= {"D", "8"}
    for d in with_60:
        assert d["60"][:8] == d["52"][:8] == day, d
    assert all(d["52"][:8] == day for d in stamped)
