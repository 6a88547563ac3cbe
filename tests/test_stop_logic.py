"""Stop logic: no print through the floor / cap around the window's high / low; an order that
would trade through is capped there and the symbol pauses (reserved state), then reopens by
auction. Hand-computed cases from the rule (actors/exchange/safeguards.py, "Stop logic") and a
hypothesis property over random order streams."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.exchange.safeguards import OPEN, PAUSED, STOP_LOGIC, SafeguardParams
from actors.messages import (
    CancelRejected,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    ReplaceOrder,
    TradingHalted,
    TradingResumed,
)
from sim.clock import MS, SECOND, US
from tests.helpers import Scripted
from tests.test_safeguards import T0, guard, run_market, sub, trades, watcher

# 2010 rules (no bands, no collar) with a stop logic of 1 % over a 1-second window
SL = SafeguardParams(luld=False, collar_pct=0.0, stop_logic_pct=1.0, stop_logic_window_s=1.0)
LAT = US  # run_market's one-way latency: an order sent at t acts at t + LAT


def test_floor_and_cap_follow_the_window_high_and_low_and_keep_the_last_print():
    g = guard(SL)
    assert (g.sl_floor, g.sl_cap) == (0, 1 << 62)  # no print yet: no stop logic
    g.on_trade(10_000, T0)
    g.on_trade(9_980, T0 + 500 * MS)
    # high 10_000: floor 10_000 - 1 % = 9_900; low 9_980: cap 9_980 + round(99.8) = 10_080
    assert (g.sl_floor, g.sl_cap) == (9_900, 10_080)
    g.on_touch(9_950, None)
    assert g.stop_logic_cap("S", None, T0 + 600 * MS) == 9_900  # a market sell would reach the bid at 9_950 ...
    assert g.stop_logic_cap("S", 9_899, T0 + 600 * MS) == 9_900  # ... so would a sell at 9_899
    assert g.stop_logic_cap("S", 9_900, T0 + 600 * MS) is None  # at the floor: allowed
    assert g.stop_logic_cap("S", 9_960, T0 + 600 * MS) is None  # passive
    # a print counts for one second (inclusive); after that the 10_000 is out: high 9_980,
    # floor 9_980 - 100 = 9_880
    assert g.stop_logic_cap("S", 9_890, T0 + SECOND) == 9_900
    assert g.stop_logic_cap("S", 9_890, T0 + SECOND + 1) is None
    assert g.sl_floor == 9_880
    # the last print stays in the window however old it is
    assert g.stop_logic_cap("S", 9_870, T0 + 60 * SECOND) == 9_880
    g.on_touch(None, None)
    assert g.stop_logic_cap("S", None, T0 + 60 * SECOND) is None  # no bid: nothing to trade through
    g.on_touch(None, 10_100)
    assert g.stop_logic_cap("B", None, T0 + 60 * SECOND) == 10_080
    assert g.stop_logic_cap("B", 10_090, T0 + 60 * SECOND) is None  # the offer is above its price
    # the fast path sends every price through the floor or the cap to the slow path
    assert (g.sell_lo, g.buy_hi) == (9_880, 10_080)


def test_off_by_default():
    g = guard(SafeguardParams(luld=False, collar_pct=0.0))
    g.on_trade(10_000, T0)
    g.on_touch(9_000, None)
    assert g.stop_logic_cap("S", None, T0) is None and (g.sell_lo, g.buy_hi) == (0, 1 << 62)


def _ladder(t):
    """A first print at 10_000, then bids 100 each at 9_950, 9_900, 9_850, 9_800."""
    return Scripted(
        "bids",
        [(t, sub(1, "B", 100, 10_000))]
        + [(t, sub(i + 2, "B", 100, p)) for i, p in enumerate((9_950, 9_900, 9_850, 9_800))],
    )


@pytest.mark.parametrize("tif", ["DAY", "IOC"])
def test_market_sell_stops_at_the_floor_then_five_second_pause_and_reopening_auction(tif):
    t_sell = T0 + 100 * MS
    bids = _ladder(T0)
    first = Scripted("first", [(T0 + 50 * MS, sub(1, "S", 100, 10_000))])  # prints 10_000: floor 9_900
    seller = Scripted("seller", [(t_sell, sub(1, "S", 500, None, tif))])
    halt_t = t_sell + LAT
    reopen_t = halt_t + 5 * SECOND
    late = Scripted(
        "late",
        [
            (halt_t + SECOND, sub(1, "S", 100, 9_700, "IOC")),  # refused while paused
            (halt_t + SECOND, sub(2, "S", 150, 9_880)),  # waits for the auction
        ],
    )
    w = watcher()
    ex, rec = run_market(bids, first, seller, late, w, safeguards=SL, until=reopen_t + SECOND)
    fills = [(f.price, f.qty) for f in seller.received(OrderFilled)]
    assert fills == [(9_950, 100), (9_900, 100)]  # never below the floor
    assert seller.received(OrderCanceled) == [OrderCanceled(seller.oid(1), 300, "market")]
    assert w.received(TradingHalted) == [TradingHalted("XYZ", STOP_LOGIC, halt_t, reopen_t)]
    assert late.received(OrderRejected) == [OrderRejected(late.oid(1), "trading halted")]
    # the auction: bids 9_850 and 9_800 (100 each) against the sell of 150 at 9_880: no cross
    assert w.received(TradingResumed) == [TradingResumed("XYZ", reopen_t, None, 0)]
    tr = trades(rec)
    assert tr["price"].tolist() == [10_000, 9_950, 9_900]
    assert ex.guards["XYZ"].state == OPEN
    halts = rec.tables["halts"].frame()
    assert halts["event"].tolist() == ["halted", "resumed"] and halts["reason"].tolist()[0] == STOP_LOGIC


def test_limit_sell_through_the_floor_rests_at_it_and_crosses_in_the_auction():
    t_sell = T0 + 100 * MS
    bids = _ladder(T0)
    first = Scripted("first", [(T0 + 50 * MS, sub(1, "S", 100, 10_000))])
    seller = Scripted("seller", [(t_sell, sub(1, "S", 500, 9_700))])
    halt_t = t_sell + LAT
    reopen_t = halt_t + 5 * SECOND
    buyer = Scripted("buyer", [(halt_t + SECOND, sub(1, "B", 250, 9_920))])  # comes in during the pause
    w = watcher()
    ex, rec = run_market(bids, first, seller, buyer, w, safeguards=SL, until=reopen_t + SECOND)
    assert w.received(TradingHalted) == [TradingHalted("XYZ", STOP_LOGIC, halt_t, reopen_t)]
    fills = seller.received(OrderFilled)
    assert [(f.price, f.qty) for f in fills[:2]] == [(9_950, 100), (9_900, 100)]
    # the rest (300) rested at the floor through the pause and met the buy of 250 in the auction
    resumed = w.received(TradingResumed)
    assert len(resumed) == 1 and resumed[0].auction_qty == 250 and resumed[0].time_ns == reopen_t
    price = resumed[0].auction_price
    assert 9_900 <= price <= 9_920
    assert [(f.price, f.qty, f.liquidity) for f in fills[2:]] == [(price, 250, "auction")]
    assert ex.books["XYZ"].open_order(seller.oid(1))[1:3] == (9_900, 50)
    orders = rec.tables["orders"].frame()
    assert orders.loc[orders.order_id == seller.oid(1), "detail"].iloc[0] == "DAY/stop_logic"
    # after the reopening the auction price is the window: floor = price - 1 % (99 here)
    assert ex.guards["XYZ"].sl_floor == price - 99 and ex.guards["XYZ"].state == OPEN


def test_no_pause_when_the_floor_is_not_reached_or_nothing_is_left_beyond_it():
    t = T0 + 100 * MS
    bids = Scripted("bids", [(T0, sub(i + 1, "B", 100, p)) for i, p in enumerate((10_000, 9_950, 9_900, 9_700))])
    first = Scripted("first", [(T0 + 50 * MS, sub(1, "S", 100, 10_000))])  # prints 10_000: floor 9_900
    sellers = Scripted(
        "sellers",
        [
            (t, sub(1, "S", 150, None)),  # capped at 9_900: 100 at 9_950, 50 at 9_900, all filled
            # 970 ms on, the 10_000 print (1.02 s old) has left the window, the 9_950 (0.97 s) not:
            # high 9_950, floor 9_950 - round(99.5) = 9_850; capped there: 50 at 9_900, the rest
            # rests at 9_850; the bid at 9_700 is below its price (nothing to trade through)
            (t + 970 * MS, sub(2, "S", 100, 9_800)),
            (t + 990 * MS, sub(3, "S", 50, 9_750)),  # below the floor but passive (bid 9_700): not capped
        ],
    )
    w = watcher()
    ex, rec = run_market(bids, first, sellers, w, safeguards=SL, until=t + 3 * SECOND)
    assert w.received(TradingHalted) == []
    assert trades(rec)["price"].tolist() == [10_000, 9_950, 9_900, 9_900]
    book = ex.books["XYZ"]
    assert book.open_order(sellers.oid(2))[1:3] == (9_850, 50)
    assert book.open_order(sellers.oid(3))[1:3] == (9_750, 50)
    orders = rec.tables["orders"].frame()
    details = dict(
        zip(
            orders.loc[orders.event == "submit", "order_id"],
            orders.loc[orders.event == "submit", "detail"],
            strict=True,
        )
    )
    assert [details[sellers.oid(i)] for i in (1, 2, 3)] == ["DAY/stop_logic", "DAY/stop_logic", "DAY"]


def test_buy_side_cap_and_replace_through_the_floor_refused():
    t = T0 + 100 * MS
    asks = Scripted(
        "asks",
        [(T0, sub(1, "S", 100, 10_000))]
        + [(T0, sub(i + 2, "S", 100, p)) for i, p in enumerate((10_050, 10_100, 10_150))],
    )
    first = Scripted("first", [(T0 + 50 * MS, sub(1, "B", 100, 10_000))])  # prints 10_000: cap 10_100
    maker = Scripted("maker", [(T0, sub(1, "B", 100, 9_000))])
    buyer = Scripted("buyer", [(t, sub(1, "B", 400, None))])
    replacer = Scripted(
        "replacer",
        [(T0, sub(1, "S", 100, 10_500)), (t - 10 * MS, lambda a: ReplaceOrder(a.oid(1), "XYZ", price=8_900))],
    )
    w = watcher()
    ex, rec = run_market(asks, first, maker, buyer, replacer, w, safeguards=SL, until=t + SECOND)
    # the replace would sell into the bid at 9_000, below the floor 9_900: refused
    assert replacer.received(CancelRejected) == [CancelRejected(replacer.oid(1), STOP_LOGIC)]
    assert [(f.price, f.qty) for f in buyer.received(OrderFilled)] == [(10_050, 100), (10_100, 100)]
    assert buyer.received(OrderCanceled) == [OrderCanceled(buyer.oid(1), 200, "market")]
    assert [h.reason for h in w.received(TradingHalted)] == [STOP_LOGIC]
    assert trades(rec)["price"].max() == 10_100  # the cap
    assert ex.books["XYZ"].open_order(replacer.oid(1))[1] == 10_500  # the refused replace left it as it was


orders_strategy = st.lists(
    st.tuples(
        st.integers(0, 3_000),  # ms after T0
        st.sampled_from("BS"),
        st.integers(1, 5),  # lots of 100
        st.one_of(st.none(), st.integers(9_500, 10_500)),  # market or limit price
        st.sampled_from(["DAY", "DAY", "IOC"]),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(orders=orders_strategy)
def test_no_continuous_print_goes_through_the_floor_or_the_cap(orders):
    """On any order stream: no sale in continuous trading prints more than 1 % below the high of
    the window it came in to, no purchase more than 1 % above its low (an auction print opens a
    new window). (A sale hitting a bid that rested above the cap is not a rise the rule stops.)"""
    clients = [
        Scripted(f"c{i}", [(T0 + ms * MS, sub(1, side, 100 * lots, price, tif if price is not None else "DAY"))])
        for i, (ms, side, lots, price, tif) in enumerate(orders)
    ]
    ex, rec = run_market(*clients, safeguards=SL, until=T0 + 60 * SECOND)
    tr = trades(rec)
    window: list[tuple[int, int, int]] = []  # (time, price, taker id) of the prints so far
    for t, price, taker, aggressor in zip(
        tr["time_ns"], tr["price"], tr["taker_id"], tr["aggressor_side"], strict=True
    ):
        if aggressor == "A":  # a reopening auction: the window starts again at its price
            window = [(t, int(price), -1)]
            continue
        # what the order saw when it came in: the prints before it (not its own sweep's)
        seen = [(tt, p) for tt, p, tk in window if tk != taker]
        if seen:
            inside = [p for tt, p in seen if tt >= t - SECOND] + [seen[-1][1]]
            high, low = max(inside), min(inside)
            if aggressor == "S":  # a sale takes no bid below the floor
                assert price >= high - max(1, (high * 10_000 + 500_000) // 1_000_000)
            else:  # a purchase no offer above the cap
                assert price <= low + max(1, (low * 10_000 + 500_000) // 1_000_000)
        window.append((t, int(price), int(taker)))
    assert ex.guards["XYZ"].state in (OPEN, PAUSED)
