"""Stop and stop-limit orders at the exchange (issue 16 item 3), hand-computed.

Prices are ticks of $0.01: 9_950 is $99.50. Unless said otherwise the market runs under the
default safeguards with the reference 10_000 held fixed (``reference_update_pct=50``), so the
bands stay 9_500 - 10_500 whatever prints.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.background import MomentumParams, MomentumTrader
from actors.commands import HaltTrading
from actors.exchange.exchange import Exchange
from actors.exchange.stops import StopBook, StopOrder
from actors.messages import (
    ORDER_ID_SHIFT,
    BookSnapshot,
    CancelOrder,
    CancelRejected,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    QueryBook,
    ReplaceOrder,
    SubmitOrder,
)
from fix.codec import Codec, Invalid
from fix.gateway import GatewayCore
from sim.actor import Actor, Wakeup, handles
from sim.clock import MS, SECOND, US
from sim.kernel import Kernel
from sim.network import LinkSpec, Network, NetworkSpec
from sim.record import Recorder
from sim.rng import RandomStreams
from tests.helpers import Scripted
from tests.test_safeguards import CLOSE, T0, params, run_market, sub

FIXED_REF = params(reference_update_pct=50)


def stop(oid, side, qty, stop_price, price=None, tif="DAY"):
    return lambda a: SubmitOrder(a.oid(oid), "XYZ", side, qty, price, tif, stop_price=stop_price)


def opening_trade(t=T0):
    """A print at 10_000 (the last price every stop is checked against)."""
    return [
        Scripted("open-s", [(t, sub(1, "S", 100, 10_000))]),
        Scripted("open-b", [(t + MS, sub(1, "B", 100, 10_000))]),
    ]


def run(*clients, safeguards=FIXED_REF, until=None):
    return run_market(*opening_trade(), *clients, safeguards=safeguards, until=until or T0 + 10 * SECOND)


def prices(rec):
    return rec.tables["trades"].frame()["price"].tolist()


def order_rows(rec, event):
    f = rec.tables["orders"].frame()
    return f[f["event"] == event]


def test_sell_stop_elected_by_a_print_at_its_stop_not_one_tick_above():
    stopper = Scripted("stopper", [(T0 + 2 * MS, stop(1, "S", 100, 9_950))])
    bids = Scripted(
        "bids",
        [
            (T0 + 3 * MS, sub(1, "B", 100, 9_951)),
            (T0 + 3 * MS, sub(2, "B", 100, 9_950)),
            (T0 + 3 * MS, sub(3, "B", 500, 9_900)),
        ],
    )
    hit1 = Scripted("hit1", [(T0 + 4 * MS, sub(1, "S", 100, 9_951))])  # prints 9_951: not elected
    hit2 = Scripted("hit2", [(T0 + 5 * MS, sub(1, "S", 100, 9_950))])  # prints 9_950: elected
    probe = Scripted("probe", [(T0 + 4 * MS + 500 * US, lambda a: QueryBook("XYZ", 5))])
    _ex, rec = run(stopper, bids, hit1, hit2, probe)
    seen = [m for _, m in stopper.inbox]
    assert seen == [OrderAccepted(stopper.oid(1)), OrderFilled(stopper.oid(1), bids.oid(3), 9_900, 100, 0, "taker")]
    assert stopper.inbox[1][0] == T0 + 5 * MS + 2 * US  # elected by hit2's print, not by hit1's
    assert prices(rec) == [10_000, 9_951, 9_950, 9_900]
    trig = order_rows(rec, "triggered")
    assert trig[["order_id", "price", "qty", "detail"]].values.tolist() == [[stopper.oid(1), 9_950, 100, "stop 9950"]]
    # the resting stop is not in the book (nor in market data) before its election
    snap = probe.inbox[0][1]
    assert snap.asks == () and snap.bids == ((9_950, 100), (9_900, 500))


def test_two_stops_elected_by_one_print_enter_in_time_priority():
    """B's stop (9_960) is nearer the market, but A was accepted first: A enters first."""
    a = Scripted("a", [(T0 + 2 * MS, stop(1, "S", 100, 9_950))])
    b = Scripted("b", [(T0 + 3 * MS, stop(1, "S", 100, 9_960))])
    bids = Scripted(
        "bids",
        [
            (T0 + 4 * MS, sub(1, "B", 100, 9_950)),
            (T0 + 4 * MS, sub(2, "B", 100, 9_940)),
            (T0 + 4 * MS, sub(3, "B", 100, 9_930)),
        ],
    )
    hit = Scripted("hit", [(T0 + 5 * MS, sub(1, "S", 100, 9_950))])
    _ex, rec = run(a, b, bids, hit)
    assert a.received(OrderFilled) == [OrderFilled(a.oid(1), bids.oid(2), 9_940, 100, 0, "taker")]
    assert b.received(OrderFilled) == [OrderFilled(b.oid(1), bids.oid(3), 9_930, 100, 0, "taker")]
    assert order_rows(rec, "triggered")["order_id"].tolist() == [a.oid(1), b.oid(1)]
    assert prices(rec) == [10_000, 9_950, 9_940, 9_930]


def test_elected_stop_limit_rests_at_its_limit_when_it_cannot_fill():
    stopper = Scripted("stopper", [(T0 + 2 * MS, stop(1, "S", 100, 9_950, price=9_945))])
    bids = Scripted("bids", [(T0 + 3 * MS, sub(1, "B", 100, 9_950)), (T0 + 3 * MS, sub(2, "B", 100, 9_900))])
    hit = Scripted("hit", [(T0 + 4 * MS, sub(1, "S", 100, 9_950))])
    ex, rec = run(stopper, bids, hit)
    book = ex.books["XYZ"]
    assert book.open_order(stopper.oid(1)) == ("S", 9_945, 100, "stopper")
    assert book.best_ask() == (9_945, 100) and book.best_bid() == (9_900, 100)
    assert [m for _, m in stopper.inbox] == [OrderAccepted(stopper.oid(1))]  # one acceptance, no fill
    assert prices(rec) == [10_000, 9_950]


def test_cascade_each_stops_fills_elect_the_next():
    """9_950 prints -> A (stop 9_950) sells into 9_940 -> B (9_940) into 9_930 -> C (9_930) into
    9_900; D (9_890) is not reached. All at the trigger's instant, in that order."""
    stops = Scripted(
        "stops",
        [
            (T0 + 2 * MS, stop(1, "S", 100, 9_950)),
            (T0 + 2 * MS, stop(2, "S", 100, 9_940)),
            (T0 + 2 * MS, stop(3, "S", 100, 9_930)),
            (T0 + 2 * MS, stop(4, "S", 100, 9_890)),
        ],
    )
    bids = Scripted(
        "bids", [(T0 + 3 * MS, sub(i, "B", 100, px)) for i, px in enumerate((9_950, 9_940, 9_930, 9_900), 1)]
    )
    hit = Scripted("hit", [(T0 + 4 * MS, sub(1, "S", 100, 9_950))])
    ex, rec = run(stops, bids, hit)
    assert prices(rec) == [10_000, 9_950, 9_940, 9_930, 9_900]
    trig = order_rows(rec, "triggered")
    assert trig[["order_id", "price"]].values.tolist() == [
        [stops.oid(1), 9_950],
        [stops.oid(2), 9_940],
        [stops.oid(3), 9_930],
    ]
    assert set(trig["time_ns"]) == {T0 + 4 * MS + US}
    assert [o.order_id for o in ex._stops["XYZ"].orders()] == [stops.oid(4)]
    assert ex.books["XYZ"].best_bid() is None


def test_long_cascade_is_iterative():
    """1_500 stops, each elected by the print of the one before: no recursion, each elected once."""
    n = 1_500
    recorder = Recorder()
    kernel = Kernel(Network(NetworkSpec(LinkSpec(US))), RandomStreams(1))
    ex = Exchange("exchange", ["XYZ"], recorder, 0, 10**12, safeguards=None)
    kernel.add(ex)
    first = Scripted("open", [(0, sub(1, "S", 1, 20_000)), (MS, sub(2, "B", 1, 20_000))])
    bids = Scripted("bids", [(2 * MS, sub(i, "B", 1, 20_000 - i)) for i in range(1, n + 2)])
    stops = Scripted("stops", [(3 * MS, stop(i, "S", 1, 20_000 - i)) for i in range(1, n + 1)])
    hit = Scripted("hit", [(4 * MS, sub(1, "S", 1, 19_999))])
    for a in (first, bids, stops, hit):
        kernel.add(a)
    kernel.run(SECOND)
    assert len(order_rows(recorder, "triggered")) == n
    assert prices(recorder)[-1] == 20_000 - n - 1
    assert len(ex._stops["XYZ"]) == 0


def test_cancel_and_replace_of_a_resting_stop():
    s = Scripted(
        "s",
        [
            (T0 + 2 * MS, stop(1, "S", 100, 9_950)),
            (T0 + 2 * MS, stop(2, "S", 100, 9_950)),
            (T0 + 3 * MS, lambda a: ReplaceOrder(a.oid(1), "XYZ", qty=50, stop_price=9_940)),
            (T0 + 3 * MS, lambda a: ReplaceOrder(a.oid(2), "XYZ", stop_price=10_000)),  # through the last trade
            (T0 + 3 * MS, lambda a: ReplaceOrder(a.oid(2), "XYZ", price=9_900)),  # a stop has no limit to change
            (T0 + 3 * MS, lambda a: CancelOrder(a.oid(2), "XYZ")),
        ],
    )
    bids = Scripted("bids", [(T0 + 4 * MS, sub(1, "B", 100, 9_950)), (T0 + 4 * MS, sub(2, "B", 100, 9_940))])
    hit1 = Scripted("hit1", [(T0 + 5 * MS, sub(1, "S", 100, 9_950))])  # prints 9_950: neither elected
    hit2 = Scripted("hit2", [(T0 + 6 * MS, sub(1, "S", 50, 9_940))])  # prints 9_940: 1 elected (50)
    _ex, rec = run(s, bids, hit1, hit2)
    o1, o2 = s.oid(1), s.oid(2)
    assert [m for _, m in s.inbox] == [
        OrderAccepted(o1),
        OrderAccepted(o2),
        OrderReplaced(o1, None, 50, None, 9_940),
        CancelRejected(o2, "stop price through last trade"),
        CancelRejected(o2, "invalid price"),
        OrderCanceled(o2, 100, "canceled"),
        OrderFilled(o1, bids.oid(2), 9_940, 50, 0, "taker"),
    ]
    assert prices(rec) == [10_000, 9_950, 9_940, 9_940]
    assert order_rows(rec, "triggered")["order_id"].tolist() == [o1]


def test_replace_priority_kept_by_size_decrease_lost_by_a_new_stop():
    sb = StopBook("XYZ")
    for oid in (1, 2, 3):
        sb.add(StopOrder(oid, "S", 100, 9_950, None, "DAY", None, "x"))
    sb.replace(1, 50, 9_950, None)  # keeps its place
    sb.replace(2, 100, 9_960, None)  # new stop price: to the back
    assert [o.order_id for o in sb.elect(9_950)] == [1, 3, 2]
    assert len(sb) == 0 and sb.elect(1) == []


def test_stop_entry_refusals():
    s = Scripted(
        "s",
        [
            (T0 + 2 * MS, stop(1, "S", 100, 10_000)),  # at the last trade: would elect at once
            (T0 + 2 * MS, stop(2, "B", 100, 9_999)),  # a buy stop below the last trade
            (T0 + 2 * MS, stop(3, "S", 100, 9_900, tif="IOC")),
            (T0 + 2 * MS, stop(4, "S", 0, 9_900)),
            (T0 + 2 * MS, stop(5, "S", 100, -1)),
            (T0 + 2 * MS, lambda a: SubmitOrder(a.oid(6), "XYZ", "S", 100, 9_800, post_only=True, stop_price=9_900)),
            (T0 + 2 * MS, stop(7, "B", 100, 10_001)),
        ],
    )
    _ex, rec = run(s)
    assert [m for _, m in s.inbox] == [
        OrderRejected(s.oid(1), "stop price through last trade"),
        OrderRejected(s.oid(2), "stop price through last trade"),
        OrderRejected(s.oid(3), "stop orders must be DAY"),
        OrderRejected(s.oid(4), "invalid qty"),
        OrderRejected(s.oid(5), "invalid stop price"),
        OrderRejected(s.oid(6), "post_only not allowed on stop orders"),
        OrderAccepted(s.oid(7)),
    ]
    submit = order_rows(rec, "submit")
    assert submit[submit["order_id"] == s.oid(7)]["detail"].tolist() == ["DAY/stop 10001"]


def test_buy_stop_elected_by_a_print_at_or_above():
    b = Scripted("b", [(T0 + 2 * MS, stop(1, "B", 100, 10_050))])
    asks = Scripted("asks", [(T0 + 3 * MS, sub(1, "S", 100, 10_050)), (T0 + 3 * MS, sub(2, "S", 100, 10_060))])
    lift = Scripted("lift", [(T0 + 4 * MS, sub(1, "B", 100, 10_050))])
    _ex, _rec = run(b, asks, lift)
    assert b.received(OrderFilled) == [OrderFilled(b.oid(1), asks.oid(2), 10_060, 100, 0, "taker")]


# ---------------------------------------------------------------------------------------------
# LULD: limit state, halts
# ---------------------------------------------------------------------------------------------


def test_stops_elected_in_a_limit_state_are_held_to_the_band():
    """Lower band 9_500, offer at 9_500: limit state. A print at 9_500 elects a sell stop and a
    sell stop-limit: the stop, a market order capped at the band, finds no bid at or above 9_500
    (the only bid, 9_480, is below the band) and is canceled ("market"); the stop-limit's limit
    9_490 is below the band, so its entry is refused and it is canceled ("price band")."""
    s = Scripted("s", [(T0 + 2 * MS, stop(1, "S", 100, 9_500)), (T0 + 2 * MS, stop(2, "S", 100, 9_500, price=9_490))])
    book = Scripted("book", [(T0 + 3 * MS, sub(1, "B", 100, 9_480)), (T0 + 4 * MS, sub(2, "S", 200, 9_500))])
    lift = Scripted("lift", [(T0 + 5 * MS, sub(1, "B", 100, 9_500))])
    ex, rec = run(s, book, lift)
    assert ex.guards["XYZ"].state == "limit"
    assert [m for _, m in s.inbox] == [
        OrderAccepted(s.oid(1)),
        OrderAccepted(s.oid(2)),
        OrderCanceled(s.oid(1), 100, "market"),
        OrderCanceled(s.oid(2), 100, "price band"),
    ]
    assert prices(rec) == [10_000, 9_500]
    halts = rec.tables["halts"].frame()
    assert halts["event"].tolist() == ["limit_state_entered"]


def test_stop_elected_by_the_reopening_print_enters_after_the_auction():
    """A halt from T0 + 1 s to T0 + 61 s. The halt's orders cross at 9_850 in the reopening
    auction; that print elects the sell stop at 9_900, which does not take part in the auction
    but enters right after it, as a market order: 50 against the 9_800 bid, 50 canceled."""
    s = Scripted("s", [(T0 + 2 * MS, stop(1, "S", 100, 9_900))])
    halt = Scripted("director", [(T0 + SECOND, lambda a: HaltTrading("XYZ", 60.0))])
    flow = Scripted(
        "flow",
        [
            (T0 + 2 * SECOND, sub(1, "B", 100, 9_850)),
            (T0 + 2 * SECOND, sub(2, "S", 100, 9_850)),
            (T0 + 3 * SECOND, sub(3, "B", 50, 9_800)),
        ],
    )
    _ex, rec = run(s, halt, flow, until=T0 + 2 * 60 * SECOND)
    reopen = T0 + 61 * SECOND + US  # the halt command arrived after the link latency
    assert [m for _, m in s.inbox] == [
        OrderAccepted(s.oid(1)),
        OrderFilled(s.oid(1), flow.oid(3), 9_800, 50, 50, "taker"),
        OrderCanceled(s.oid(1), 50, "market"),
    ]
    trades = rec.tables["trades"].frame()
    assert trades[["time_ns", "price", "qty", "aggressor_side"]].values.tolist() == [
        [T0 + MS + US, 10_000, 100, "B"],
        [reopen, 9_850, 100, "A"],  # the auction: the stop is not in it
        [reopen, 9_800, 50, "S"],  # the stop, after it
    ]
    halts = rec.tables["halts"].frame()
    assert halts["event"].tolist() == ["halted", "resumed"]
    assert order_rows(rec, "triggered")[["time_ns", "price"]].values.tolist() == [[reopen, 9_850]]


def test_stops_wait_and_can_be_canceled_during_a_halt():
    s = Scripted(
        "s",
        [
            (T0 + 2 * SECOND, stop(1, "S", 100, 9_900)),  # accepted while halted: into the stop book
            (T0 + 3 * SECOND, lambda a: ReplaceOrder(a.oid(1), "XYZ", qty=10)),  # replaces refused while halted
            (T0 + 4 * SECOND, lambda a: CancelOrder(a.oid(1), "XYZ")),
        ],
    )
    halt = Scripted("director", [(T0 + SECOND, lambda a: HaltTrading("XYZ", 60.0))])
    _ex, _rec = run(s, halt, until=T0 + 10 * SECOND)
    assert [m for _, m in s.inbox] == [
        OrderAccepted(s.oid(1)),
        CancelRejected(s.oid(1), "trading halted"),
        OrderCanceled(s.oid(1), 100, "canceled"),
    ]


# ---------------------------------------------------------------------------------------------
# properties: quantity conserved, book never crossed, every election justified, with stops mixed in
# ---------------------------------------------------------------------------------------------

_order = st.tuples(
    st.sampled_from(["limit", "market", "stop", "stop_limit", "cancel"]),
    st.sampled_from(["B", "S"]),
    st.integers(1, 5),  # qty in lots of 10
    st.integers(-8, 8),  # price offset from 10_000
    st.integers(-8, 8),  # stop offset from 10_000
    st.integers(1, 60),  # target of a cancel (an earlier order number)
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_order, min_size=1, max_size=60))
def test_stops_conserve_quantity_and_never_cross_the_book(orders):
    def make(n, kind, side, lots, dpx, dstop, target):
        def build(a):
            if kind == "cancel":
                return CancelOrder(a.oid(target), "XYZ")
            price = None if kind in ("market", "stop") else 10_000 + dpx
            stop_price = 10_000 + dstop if kind in ("stop", "stop_limit") else None
            tif = "IOC" if kind == "market" else "DAY"
            return SubmitOrder(a.oid(n), "XYZ", side, 10 * lots, price, tif, stop_price=stop_price)

        return build

    script = []
    for n, o in enumerate(orders, 1):
        t = T0 + n * MS
        script.append((t, make(n, *o)))
        script.append((t, lambda a: QueryBook("XYZ", 1)))
    trader = Scripted("t", script)
    ex, rec = run(trader, until=T0 + SECOND)
    # never crossed: the touch after every message
    for _, m in trader.inbox:
        if m.__class__ is BookSnapshot and m.bids and m.asks:
            assert m.bids[0][0] < m.asks[0][0]
    # conservation: accepted qty = filled + canceled + resting in the book + waiting in the stop book
    qty = {trader.oid(n): 10 * o[2] for n, o in enumerate(orders, 1) if o[0] != "cancel"}
    done = dict.fromkeys(qty, 0)
    accepted = set()
    for _, m in trader.inbox:
        if m.__class__ is OrderAccepted:
            assert m.order_id not in accepted  # one acceptance, elected or not
            accepted.add(m.order_id)
        elif m.__class__ is OrderFilled:
            done[m.order_id] += m.qty
        elif m.__class__ is OrderCanceled:
            done[m.order_id] += m.canceled_qty
    book, sb = ex.books["XYZ"], ex._stops.get("XYZ")
    for oid in accepted:
        resting = book.open_order(oid)
        waiting = sb.get(oid) if sb is not None else None
        left = (resting[2] if resting else 0) + (waiting.qty if waiting else 0)
        assert done[oid] + left == qty[oid]
        assert not (resting and waiting)
    # every election was justified by its print, and none twice
    trig = order_rows(rec, "triggered")
    assert trig["order_id"].is_unique
    for _, row in trig.iterrows():
        stop_px = int(row["detail"].split()[1])
        assert row["price"] >= stop_px if row["side"] == "B" else row["price"] <= stop_px


# ---------------------------------------------------------------------------------------------
# FIX: OrdType 3 / 4 with StopPx(99), through the real codec, the gateway core and the exchange
# ---------------------------------------------------------------------------------------------

CODEC = Codec(0.01)


class FixClient(Actor):
    """A ``GatewayCore`` on its own actor: scripted FIX messages of session ``C1`` go in (a wire
    round trip with DataDictionary validation), the core's commands go to the exchange and the
    exchange's events back into the core; every outgoing message is kept."""

    def __init__(self, name, script):
        super().__init__(name, "default")
        self.script = list(script)
        self.out = []
        self._n = 0
        self.core = GatewayCore(
            CODEC,
            new_order_id=self._new_id,
            send_app=lambda k, m: self.out.append(m),
            send_command=lambda cmd: self.send(self.exchange, cmd),
            symbols=("XYZ",),
        )

    def _new_id(self):
        self._n += 1
        return (self.id << ORDER_ID_SHIFT) | self._n

    def on_start(self):
        self.exchange = self.lookup("exchange")
        for i, (t, _) in enumerate(self.script):
            self.wake_at(t, i)

    @handles(Wakeup)
    def _due(self, msg, src):
        m = self.script[msg.tag][1]
        h = m.getHeader()
        for tag, value in ((49, "C1"), (56, "DESKSIM"), (34, str(msg.tag + 1)), (52, "20260101-09:30:00.000")):
            h.setField(tag, value)
        self.core.on_app("C1", CODEC.decode(CODEC.encode(m)), self.now)

    def unhandled(self, msg, src):
        self.core.on_book_event(msg, self.now)


def fx(msg, tag):
    return msg.getField(tag) if msg.isSetField(tag) else None


def test_fix_stop_and_stop_limit_orders_through_the_gateway():
    """A sell stop (OrdType 3, StopPx 99.50) and a sell stop-limit (OrdType 4, StopPx 99.50, Price
    99.45), then a replace of the stop-limit's StopPx to 99.40 and its qty to 60; a print at 99.50
    elects the stop only: it sells 100 into the 99.00 bid. Every ExecutionReport echoes OrdType and
    StopPx, validates against FIX44.xml and has OrderQty = CumQty + LeavesQty."""
    client = FixClient(
        "client",
        [
            (T0 + 2 * MS, CODEC.new_order_single("s1", "XYZ", "S", 100, "STOP", None, stop_px_ticks=9_950)),
            (T0 + 2 * MS, CODEC.new_order_single("s2", "XYZ", "S", 100, "STOP_LIMIT", 9_945, stop_px_ticks=9_950)),
            (
                T0 + 3 * MS,
                CODEC.order_cancel_replace_request(
                    "s3", "s2", "XYZ", "S", 60, "STOP_LIMIT", 9_945, stop_px_ticks=9_940
                ),
            ),
        ],
    )
    bids = Scripted("bids", [(T0 + 4 * MS, sub(1, "B", 100, 9_950)), (T0 + 4 * MS, sub(2, "B", 100, 9_900))])
    hit = Scripted("hit", [(T0 + 5 * MS, sub(1, "S", 100, 9_950))])
    _ex, rec = run(client, bids, hit)
    assert not client.core.errors
    reports = [m for m in client.out if m.getHeader().getField(35) == "8"]
    for m in reports:
        CODEC.validate_body(m)
        assert int(fx(m, 38)) == int(fx(m, 14)) + int(fx(m, 151))
    got = [(fx(m, 11), fx(m, 150), fx(m, 39), fx(m, 40), fx(m, 99), fx(m, 44), fx(m, 38), fx(m, 14)) for m in reports]
    assert got == [
        ("s1", "0", "0", "3", "99.50", None, "100", "0"),
        ("s2", "0", "0", "4", "99.50", "99.45", "100", "0"),
        ("s3", "5", "0", "4", "99.40", "99.45", "60", "0"),
        ("s1", "F", "2", "3", "99.50", None, "100", "100"),
    ]
    assert fx(reports[-1], 31) == "99.00" and fx(reports[-1], 32) == "100"
    sent = [c for c in client.core.live_orders("C1")]
    assert [(o["cl_ord_id"], o["stop_px"], o["leaves_qty"]) for o in sent] == [("s3", 9_940, 60)]
    assert prices(rec) == [10_000, 9_950, 9_900]


def test_fix_codec_reads_stop_px_and_refuses_a_stop_without_it():
    nos = CODEC.decode(
        CODEC.encode(_stamped(CODEC.new_order_single("a", "XYZ", "B", 10, "STOP", None, stop_px_ticks=10_050)))
    )
    req = CODEC.read_new_order(nos)
    assert (req.ord_type, req.price_ticks, req.stop_px_ticks) == ("STOP", None, 10_050)
    lim = CODEC.decode(
        CODEC.encode(_stamped(CODEC.new_order_single("b", "XYZ", "B", 10, "STOP_LIMIT", 10_060, stop_px_ticks=10_050)))
    )
    req = CODEC.read_new_order(lim)
    assert (req.ord_type, req.price_ticks, req.stop_px_ticks) == ("STOP_LIMIT", 10_060, 10_050)
    bare = CODEC.decode(CODEC.encode(_stamped(CODEC.new_order_single("c", "XYZ", "B", 10, "STOP", None))))
    inv = CODEC.read_new_order(bare)
    assert isinstance(inv, Invalid) and inv.ref_tag == 99
    no_price = CODEC.decode(
        CODEC.encode(_stamped(CODEC.new_order_single("d", "XYZ", "B", 10, "STOP_LIMIT", None, stop_px_ticks=1)))
    )
    inv = CODEC.read_new_order(no_price)
    assert isinstance(inv, Invalid) and inv.ref_tag == 44
    plain = CODEC.read_new_order(
        CODEC.decode(CODEC.encode(_stamped(CODEC.new_order_single("e", "XYZ", "B", 10, "LIMIT", 100))))
    )
    assert plain.stop_px_ticks is None


def _stamped(m):
    h = m.getHeader()
    for tag, value in ((49, "C1"), (56, "DESKSIM"), (34, "1"), (52, "20260101-09:30:00.000")):
        h.setField(tag, value)
    return m


# ---------------------------------------------------------------------------------------------
# background traders: momentum traders' opt-in protective stops
# ---------------------------------------------------------------------------------------------


def momentum_market(*clients, stop_loss_ticks=50):
    recorder = Recorder()
    kernel = Kernel(Network(NetworkSpec(LinkSpec(US))), RandomStreams(1))
    ex = Exchange("exchange", ["XYZ"], recorder, 0, CLOSE, safeguards=FIXED_REF, reference_price=10_000)
    mom = MomentumTrader("mom", "XYZ", MomentumParams(stop_loss_ticks=stop_loss_ticks), 10_000, 0, CLOSE)
    for a in (ex, mom, *clients):
        kernel.add(a)
    return kernel, ex, mom, recorder


def test_momentum_protective_stop_follows_the_position_and_stops_it_out():
    """The trader buys 100 at 10_000: a sell stop for 100 at 9_950 waits at the exchange (not
    counted as exposure). A print at 9_950 elects it: it sells 100 at 9_900 and the position is flat."""
    maker = Scripted("maker", [(T0, sub(1, "S", 100, 10_000))])
    bids = Scripted("bids", [(T0 + 10 * MS, sub(1, "B", 100, 9_950)), (T0 + 10 * MS, sub(2, "B", 100, 9_900))])
    hit = Scripted("hit", [(T0 + 20 * MS, sub(1, "S", 100, 9_950))])
    kernel, ex, mom, rec = momentum_market(maker, bids, hit)
    kernel.advance(T0 + MS)
    mom._trade("B", 100, 10_000)
    kernel.advance(T0 + 5 * MS)
    assert mom.position == 100
    (waiting,) = ex._stops["XYZ"].orders()
    assert (waiting.side, waiting.qty, waiting.stop_price, waiting.price) == ("S", 100, 9_950, None)
    assert mom._stop_ids == {waiting.order_id}
    kernel.run(T0 + SECOND)
    assert mom.position == 0 and mom._stop_ids == set() and mom._stop_id is None and not mom.open_orders
    assert prices(rec) == [10_000, 9_950, 9_900]
    assert order_rows(rec, "triggered")["order_id"].tolist() == [waiting.order_id]


def test_momentum_protective_stop_canceled_when_the_position_is_closed():
    maker = Scripted("maker", [(T0, sub(1, "S", 100, 10_000)), (T0, sub(2, "B", 100, 9_990))])
    kernel, ex, mom, rec = momentum_market(maker)
    kernel.advance(T0 + MS)
    mom._trade("B", 100, 10_000)
    kernel.advance(T0 + 5 * MS)
    (stop_id,) = mom._stop_ids
    mom._trade("S", 100, 9_990)  # closes the long: the stop is canceled
    kernel.run(T0 + SECOND)
    assert mom.position == 0 and mom._stop_ids == set() and len(ex._stops["XYZ"]) == 0
    canceled = order_rows(rec, "canceled")
    assert canceled[canceled["order_id"] == stop_id]["detail"].tolist() == ["canceled"]


def test_a_gated_stop_order_stays_a_stop_and_leaves_no_protection_behind():
    """With a pre-trade gate that protects market orders (collar 5 %), a STOP order is checked at
    its worst case like a market order, but it reaches the exchange as a stop (not an IOC limit at
    the protection price), and the gate's per-order protection price is taken, not left behind."""
    from actors.risk import PreTradeGate, RiskLimits

    client = FixClient(
        "client", [(T0 + 2 * MS, CODEC.new_order_single("s1", "XYZ", "S", 100, "STOP", None, stop_px_ticks=9_950))]
    )
    gate = PreTradeGate(RiskLimits(collar_pct=5.0), reference_prices={"XYZ": 10_000})
    client.core.pretrade = gate
    bids = Scripted("bids", [(T0 + 4 * MS, sub(1, "B", 100, 9_950)), (T0 + 4 * MS, sub(2, "B", 100, 9_900))])
    hit = Scripted("hit", [(T0 + 5 * MS, sub(1, "S", 100, 9_950))])
    _ex, _rec = run(client, bids, hit)
    assert not client.core.errors
    reports = [m for m in client.out if m.getHeader().getField(35) == "8"]
    assert [(fx(m, 150), fx(m, 40), fx(m, 99)) for m in reports] == [("0", "3", "99.50"), ("F", "3", "99.50")]
    assert fx(reports[-1], 31) == "99.00"  # elected by the 99.50 print, then sold into the bid
    assert not gate._protections


def test_a_desk_stop_through_the_oms_waits_for_its_print():
    """The OMS sends a desk's stop and stop-limit as OrdType 3 / 4 with StopPx (it used to send a
    stop as a market order, filled at once), replaces a stop-limit's StopPx, and books the fills
    when a print elects them: desk -> OMS -FIX 4.4-> FixGateway -> Exchange."""
    from actors.messages import OrderAccepted, OrderFilled, OrderReplaced, ReplaceOrder, SubmitOrder
    from fix.gateway_actor import FixGateway
    from fix.oms import OMS

    rec = Recorder()
    kernel = Kernel(Network(NetworkSpec(LinkSpec(1 * MS))), RandomStreams(1))
    exchange = Exchange("exchange", ["XYZ"], rec, 0, 10**13, reference_price=10_000)
    gateway = FixGateway("gateway", rec, symbols=["XYZ"], clients=["CLIENT1"])
    oms = OMS("oms", rec, market_data="none")
    desk = Scripted(
        "desk",
        [
            (T0 + 10 * MS, lambda a: SubmitOrder(a.oid(1), "XYZ", "S", 100, None, stop_price=9_950)),
            (T0 + 10 * MS, lambda a: SubmitOrder(a.oid(2), "XYZ", "S", 100, 9_945, stop_price=9_950)),
            (T0 + 20 * MS, lambda a: ReplaceOrder(a.oid(2), "XYZ", stop_price=9_940)),
        ],
        dst="oms",
    )
    street = Scripted(
        "street",
        [
            (T0, sub(1, "B", 100, 10_000)),
            (T0 + 1 * MS, sub(2, "S", 100, 10_000)),  # the opening print at 100.00
            (T0 + 40 * MS, sub(3, "B", 100, 9_950)),
            (T0 + 40 * MS, sub(4, "B", 300, 9_900)),
            (T0 + 50 * MS, sub(5, "S", 100, 9_950)),  # prints 99.50: elects the stop, not the stop-limit
        ],
    )
    for actor in (exchange, gateway, oms, desk, street):
        kernel.add(actor)
    kernel.advance(T0 + 45 * MS)
    assert len(desk.received(OrderAccepted)) == 2 and not desk.received(OrderFilled)
    kernel.run(T0 + 200 * MS)
    fills = desk.received(OrderFilled)
    assert [(f.order_id, f.price, f.qty) for f in fills] == [(desk.oid(1), 9_900, 100)]
    assert [(r.order_id, r.price) for r in desk.received(OrderReplaced)] == [(desk.oid(2), 9_945)]
    assert oms.orders[desk.oid(2)].stop_px == 9_940 and oms.orders[desk.oid(2)].ord_type == "STOP_LIMIT"
    assert oms.orders[desk.oid(1)].ord_type == "STOP" and oms.orders[desk.oid(1)].leaves_qty == 0
    resting = [r for r in rec.tables["orders"].rows if r[3] == "accepted" and r[2] == "gateway"]
    assert len(resting) == 2


def test_noise_traders_retail_stops_rest_away_from_the_touch_and_expire():
    """``stop_prob`` 1: every limit arrival of a noise trader sends a stop instead, a sell stop-limit
    under the bid or a buy stop-limit over the ask (limit ``stop_limit_ticks`` through the stop);
    nothing of it enters the book, and each is canceled after ``stop_lifetime_s``."""
    from actors.background import NoiseParams, NoiseTrader

    book = Scripted("book", [(T0 + 2 * MS, sub(1, "B", 100, 9_990)), (T0 + 2 * MS, sub(2, "S", 100, 10_010))])
    noise_params = NoiseParams(
        rate_per_hour=3600.0, market_prob=0.0, stop_prob=1.0, stop_limit_ticks=5, stop_lifetime_s=30
    )
    recorder = Recorder()
    kernel = Kernel(Network(NetworkSpec(LinkSpec(US))), RandomStreams(3))
    ex = Exchange("exchange", ["XYZ"], recorder, 0, CLOSE, safeguards=FIXED_REF, reference_price=10_000)
    noise = NoiseTrader("noise", "XYZ", noise_params, 10_000, T0 + 10 * MS, CLOSE)
    for a in (ex, noise, *opening_trade(), book):
        kernel.add(a)
    kernel.run(T0 + 20 * SECOND)
    waiting = ex._stops["XYZ"].orders()
    assert len(waiting) >= 5 and {o.side for o in waiting} == {"B", "S"}
    for o in waiting:
        assert o.owner == "noise"
        if o.side == "S":
            assert o.stop_price < 9_990 and o.price == o.stop_price - 5
        else:
            assert o.stop_price > 10_010 and o.price == o.stop_price + 5
    assert set(noise.open_orders) == {o.order_id for o in waiting}
    kernel.run(T0 + 80 * SECOND)  # every stop sent in the first 50 s has expired by now
    early = order_rows(recorder, "accepted")
    early = early[(early["time_ns"] < T0 + 50 * SECOND) & early["order_id"].isin({o.order_id for o in waiting})]
    assert len(early) and not (set(early["order_id"]) & {o.order_id for o in ex._stops["XYZ"].orders()})
