"""Exchange safeguards: LULD bands and limit states, collars, circuit breakers, reopening auctions.

Pure tests drive ``Safeguards`` with explicit times; integration tests run an exchange with
scripted actors in a kernel (see tests/helpers.py).
"""

import dataclasses

import pytest

from actors.exchange.exchange import Exchange
from actors.exchange.safeguards import (
    BAND_WINDOW,
    HALTED,
    LIMIT,
    LIMIT_EXPIRY,
    OPEN,
    PAUSED,
    REOPENING,
    SafeguardParams,
    Safeguards,
    band_width,
)
from actors.messages import (
    CancelOrder,
    CancelRejected,
    LimitStateEntered,
    LimitStateExited,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    ReplaceOrder,
    SubmitOrder,
    SubscribeTradingStatus,
    TradingHalted,
    TradingResumed,
)
from sim.clock import MINUTE, SECOND, US
from sim.kernel import Kernel
from sim.network import LinkSpec, Network, NetworkSpec
from sim.record import Recorder
from sim.rng import RandomStreams
from tests.helpers import Scripted
from tests.test_auction import brute_force

CLOSE = 390 * MINUTE  # a 6.5 h session opening at 0
T0 = 20 * MINUTE  # past the doubled opening bands
REF = 10_000  # $100.00


def params(**kw):
    return SafeguardParams(**kw)


def guard(p=None, ref=REF, open_ns=0, close_ns=CLOSE, **kw):
    g = Safeguards(p or params(**kw), "XYZ", open_ns, close_ns, ref)
    g.poll(T0)
    return g


def run_market(*clients, safeguards=None, reference=REF, close_ns=CLOSE, latency_ns=US, until=None):
    recorder = Recorder()
    kernel = Kernel(Network(NetworkSpec(LinkSpec(latency_ns))), RandomStreams(1))
    sg = params() if safeguards is None else safeguards
    exchange = Exchange("exchange", ["XYZ"], recorder, 0, close_ns, safeguards=sg, reference_price=reference)
    kernel.add(exchange)
    for c in clients:
        kernel.add(c)
    kernel.run(until if until is not None else close_ns)
    return exchange, recorder


def sub(oid, side, qty, price, tif="DAY"):
    return lambda a: SubmitOrder(a.oid(oid), "XYZ", side, qty, price, tif)


def watcher(t=0):
    return Scripted("watcher", [(t, lambda a: SubscribeTradingStatus("XYZ"))])


def trades(rec):
    return rec.tables["trades"].frame()


# ---------------------------------------------------------------------------------------------
# bands and tiers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "ref", "width"),
    [
        (1, 10_000, 500),  # $100, 5%
        (2, 10_000, 1_000),  # $100, 10%
        (1, 301, 15),  # $3.01 is tier-priced: 5% of 301 = 15.05 -> 15
        (1, 300, 60),  # $3.00: 20%
        (2, 300, 60),
        (1, 75, 15),  # $0.75: 20%
        (1, 74, 15),  # below $0.75: the lesser of $0.15 and 75% (55.5)
        (1, 10, 8),  # 75% of $0.10 = 7.5 -> 8 ticks
    ],
)
def test_band_width_tiers(tier, ref, width):
    p = params(tier=tier)
    assert band_width(p, ref) == width
    assert band_width(p, ref, doubled=True) == 2 * width


@pytest.mark.parametrize(("tier", "ref"), [(1, 10_000), (2, 10_000), (1, 250), (2, 50)])
@pytest.mark.parametrize("mode", ["reject", "reprice"])
def test_band_boundary_one_tick(tier, ref, mode):
    g = guard(ref=ref, tier=tier, collar_pct=0, outside_band=mode)
    w = band_width(g.params, ref)
    assert (g.lower, g.upper) == (ref - w, ref + w)
    assert g.check_order("B", ref + w) == (None, ref + w)
    assert g.check_order("S", ref - w) == (None, ref - w)
    outside = ("price band", None) if mode == "reject" else (None, ref + w)
    assert g.check_order("B", ref + w + 1) == outside
    outside = ("price band", None) if mode == "reject" else (None, ref - w)
    assert g.check_order("S", ref - w - 1) == outside
    # passive prices beyond the far band are not LULD's business
    assert g.check_order("S", ref + w + 1) == (None, ref + w + 1)
    assert g.check_order("B", ref - w - 1) == (None, ref - w - 1)
    # the fast-path ranges agree
    assert g.buy_hi == ref + w and g.sell_lo == ref - w
    # market orders become limits at the band
    assert g.check_order("B", None) == (None, ref + w)
    assert g.check_order("S", None) == (None, ref - w)


def test_bands_doubled_in_first_and_last_15_minutes_for_every_price_before_the_18th_amendment():
    g = Safeguards(params(collar_pct=0, double_close_min=15, double_close_max_price=None), "XYZ", 0, CLOSE, REF)
    g.poll(0)
    assert (g.lower, g.upper) == (9_000, 11_000)
    g.poll(15 * MINUTE - 1)
    assert g.upper == 11_000
    assert g.timers(15 * MINUTE - 1) == [(BAND_WINDOW, 15 * MINUTE)]  # the exchange's next band timer
    g.poll(15 * MINUTE)
    assert (g.lower, g.upper) == (9_500, 10_500)
    g.poll(CLOSE - 15 * MINUTE - 1)
    assert g.upper == 10_500
    g.poll(CLOSE - 15 * MINUTE)
    assert (g.lower, g.upper) == (9_000, 11_000)


def test_exchange_band_boundary_inside_trades_outside_rejected():
    maker = Scripted("maker", [(T0, sub(1, "S", 100, 10_500)), (T0, sub(2, "S", 100, 10_501))])
    taker = Scripted(
        "taker",
        [(T0 + SECOND, sub(1, "B", 50, 10_501)), (T0 + 2 * SECOND, sub(2, "B", 50, 10_500))],
    )
    _, rec = run_market(maker, taker, safeguards=params(collar_pct=0), until=T0 + MINUTE)
    assert maker.received(OrderAccepted) == [OrderAccepted(maker.oid(1)), OrderAccepted(maker.oid(2))]
    assert taker.received(OrderRejected) == [OrderRejected(taker.oid(1), "price band")]
    assert trades(rec)[["price", "qty"]].values.tolist() == [[10_500, 50]]


def test_exchange_reprice_mode_and_market_order_capped_at_band():
    maker = Scripted("maker", [(T0, sub(1, "S", 100, 10_400)), (T0, sub(2, "S", 100, 10_600))])
    taker = Scripted(
        "taker",
        [(T0 + SECOND, sub(1, "B", 300, None, "IOC")), (T0 + 2 * SECOND, sub(2, "B", 50, 10_700))],
    )
    sg = params(collar_pct=0, outside_band="reprice", reference_update_pct=50)  # reference stays at 10_000
    ex, rec = run_market(maker, taker, safeguards=sg, until=T0 + MINUTE)
    # the market buy fills 100 at 10_400 and is not allowed to reach 10_600 (above the band)
    assert [(f.price, f.qty) for f in taker.received(OrderFilled)] == [(10_400, 100)]
    assert taker.received(OrderCanceled)[0] == OrderCanceled(taker.oid(1), 200, "market")
    # the buy limit 10_700 is repriced to the band (10_500) and rests there
    assert ex.books["XYZ"].open_order(taker.oid(2))[1] == 10_500
    assert trades(rec)["price"].max() <= ex.guards["XYZ"].upper


def test_doubled_band_at_open_then_resting_order_outside_new_band_is_canceled():
    buyer = Scripted("buyer", [(MINUTE, sub(1, "B", 100, 10_800))])  # inside the doubled band
    late = Scripted("late", [(16 * MINUTE, sub(1, "B", 100, 10_600)), (16 * MINUTE + SECOND, sub(2, "S", 100, 9_000))])
    seller = Scripted("seller", [(17 * MINUTE, sub(1, "S", 100, 9_600))])
    ex, rec = run_market(buyer, late, seller, safeguards=params(collar_pct=0), until=18 * MINUTE)
    assert buyer.received(OrderAccepted) == [OrderAccepted(buyer.oid(1))]
    # at 15 min the bands narrow to 9_500..10_500: the resting 10_800 bid is canceled, and the
    # same price or one tick over the new band is refused
    assert buyer.received(OrderCanceled) == [OrderCanceled(buyer.oid(1), 100, "price band")]
    assert [m.reason for m in late.received(OrderRejected)] == ["price band", "price band"]
    assert len(trades(rec)) == 0
    assert ex.books["XYZ"].best_ask() == (9_600, 100)


def test_replace_outside_band_refused():
    t = Scripted(
        "t",
        [(T0, sub(1, "B", 100, 10_000)), (T0 + SECOND, lambda a: ReplaceOrder(a.oid(1), "XYZ", price=10_501))],
    )
    run_market(t, safeguards=params(collar_pct=0), until=T0 + MINUTE)
    assert t.received(CancelRejected) == [CancelRejected(t.oid(1), "price band")]


# ---------------------------------------------------------------------------------------------
# reference price
# ---------------------------------------------------------------------------------------------


def test_reference_is_five_minute_average_with_one_percent_update():
    g = guard(reference_update_pct=1.0)
    g.on_trade(10_050, T0)  # mean 10_050: less than 1% away, reference stays
    assert g.reference == REF
    g.on_trade(10_150, T0 + SECOND)  # mean 10_100: 1% -> update
    assert g.reference == 10_100 and g.upper == 10_100 + 505
    # five minutes later the first two trades have left the window
    g.on_trade(10_400, T0 + SECOND + 5 * MINUTE)
    assert g.reference == 10_400 - 0  # window: 10_400 only (10_150 at exactly -5 min is out)
    # every-trade mode
    g2 = guard(reference_update_pct=0)
    g2.on_trade(10_001, T0)
    g2.on_trade(10_004, T0 + 1)
    assert g2.reference == 10_003  # (10_001 + 10_004) / 2 rounded half up


def test_no_reference_until_first_trade():
    g = guard(ref=None)
    assert (g.lower, g.upper, g.collar_lo) == (0, 1 << 62, 0)
    assert g.check_order("B", 50_000) == (None, 50_000)
    g.on_trade(10_000, T0)
    assert (g.reference, g.lower, g.upper) == (10_000, 9_500, 10_500)
    assert g.previous_close == 10_000


# ---------------------------------------------------------------------------------------------
# collar
# ---------------------------------------------------------------------------------------------


def test_collar_boundary_pure():
    g = guard(luld=False, collar_pct=10, collar_mode="static")
    assert g.check_order("B", 11_000) == (None, 11_000)
    assert g.check_order("B", 11_001) == ("price collar", None)
    assert g.check_order("S", 9_000) == (None, 9_000)
    assert g.check_order("S", 8_999) == ("price collar", None)
    assert g.check_order("B", 8_999) == ("price collar", None)  # either side
    assert g.check_order("B", None) == (None, 11_000)  # market orders allowed, capped


def test_fat_finger_limit_order_rejected_by_collar():
    maker = Scripted("maker", [(T0, sub(1, "S", 100, 10_010))])
    fat = Scripted("fat", [(T0 + SECOND, sub(1, "B", 100, 100_000)), (T0 + 2 * SECOND, sub(2, "B", 100, None))])
    _, rec = run_market(maker, fat, until=T0 + MINUTE)
    assert fat.received(OrderRejected) == [OrderRejected(fat.oid(1), "price collar")]
    assert trades(rec)[["price", "qty"]].values.tolist() == [[10_010, 100]]  # the market order traded


# ---------------------------------------------------------------------------------------------
# limit state, pause
# ---------------------------------------------------------------------------------------------


def test_limit_state_enter_exit_pure():
    g = guard()
    assert g.on_top(9_400, 9_600, T0) == []
    assert g.on_top(9_400, 9_500, T0) == [LimitStateEntered("XYZ", "lower", 9_500, T0)]
    assert g.state == LIMIT and (LIMIT_EXPIRY, T0 + 15 * SECOND) in g.timers(T0)
    assert g.on_top(9_400, 9_501, T0 + 14 * SECOND) == [LimitStateExited("XYZ", T0 + 14 * SECOND)]
    assert g.state == OPEN
    assert g.poll(T0 + 15 * SECOND) == []
    assert g.on_top(10_500, None, T0 + 20 * SECOND) == [LimitStateEntered("XYZ", "upper", 10_500, T0 + 20 * SECOND)]


def test_limit_state_for_15_s_pauses_5_minutes_pure():
    g = guard()
    g.on_top(9_400, 9_500, T0)
    assert g.poll(T0 + 15 * SECOND - 1) == []
    pause_end = T0 + 15 * SECOND + 5 * MINUTE
    assert g.poll(T0 + 15 * SECOND) == [TradingHalted("XYZ", "luld pause", T0 + 15 * SECOND, pause_end)]
    assert g.state == PAUSED and g.halted and (REOPENING, pause_end) in g.timers(T0 + 15 * SECOND)
    assert g.buy_hi < g.buy_lo  # every order takes the slow path
    g.poll(pause_end - 1)
    assert not g.auction_due
    g.poll(pause_end)
    assert g.auction_due
    assert g.resume(pause_end, 9_450, 300) == [TradingResumed("XYZ", pause_end, 9_450, 300)]
    assert g.state == OPEN and g.reference == 9_450 and g.lower == 9_450 - 473


def test_limit_state_exits_in_exchange_when_book_moves_back_within_15_s():
    w = watcher()
    seller = Scripted("seller", [(T0, sub(1, "S", 100, 9_500))])
    buyer = Scripted("buyer", [(T0 + 10 * SECOND, sub(1, "B", 100, 9_500))])
    _, rec = run_market(w, seller, buyer, until=T0 + 2 * MINUTE)
    entered = w.received(LimitStateEntered)
    assert entered == [LimitStateEntered("XYZ", "lower", 9_500, T0 + US)]
    assert w.received(LimitStateExited) == [LimitStateExited("XYZ", T0 + 10 * SECOND + US)]
    assert w.received(TradingHalted) == []
    assert rec.tables["halts"].frame()["event"].tolist() == ["limit_state_entered", "limit_state_exited"]


# ---------------------------------------------------------------------------------------------
# synthetic crash: limit state -> pause -> reopening auction
# ---------------------------------------------------------------------------------------------


def test_synthetic_crash_limit_state_pause_and_reopening_auction():
    box = {}
    lat = US
    w = watcher()
    bids = Scripted(
        "bids",
        [(T0, sub(1, "B", 100, 9_950)), (T0, sub(2, "B", 100, 9_900)), (T0, sub(3, "B", 100, 9_850))],
    )

    def at_lower(oid, qty, offset=0):
        return lambda a: SubmitOrder(a.oid(oid), "XYZ", "S", qty, box["ex"].guards["XYZ"].lower + offset)

    t1 = T0 + SECOND
    sellers = Scripted(
        "sellers",
        [
            (t1, sub(1, "S", 300, None, "IOC")),  # walks the bids: 9_950, 9_900, 9_850
            (t1 + SECOND, at_lower(2, 1_000, -1)),  # through the band: refused
            (t1 + 2 * SECOND, at_lower(3, 1_000)),  # sits at the lower band: limit state
        ],
    )
    limit_t = t1 + 2 * SECOND + lat
    pause_t = limit_t + 15 * SECOND
    reopen_t = pause_t + 5 * MINUTE
    during = pause_t + MINUTE
    auction_buyers = Scripted(
        "abuy",
        [
            (during, sub(1, "B", 400, 9_300)),
            (during, sub(2, "B", 300, 9_420)),
            (during, sub(3, "B", 200, None)),
            (during + SECOND, sub(4, "B", 500, 9_200)),
            (during + 2 * SECOND, sub(5, "B", 100, 9_350, "IOC")),  # refused while halted
            (during + 3 * SECOND, lambda a: CancelOrder(a.oid(4), "XYZ")),
        ],
    )
    auction_sellers = Scripted(
        "asell",
        [
            (during, sub(1, "S", 300, 9_250)),
            (during, sub(2, "S", 250, 9_380)),
            (during + SECOND, sub(3, "S", 100, None)),
        ],
    )
    recorder = Recorder()
    kernel = Kernel(Network(NetworkSpec(LinkSpec(lat))), RandomStreams(1))
    ex = Exchange("exchange", ["XYZ"], recorder, 0, CLOSE, reference_price=REF)
    box["ex"] = ex
    for a in (ex, w, bids, sellers, auction_buyers, auction_sellers):
        kernel.add(a)

    kernel.run(reopen_t - 1)
    g = ex.guards["XYZ"]
    # the walk set the reference to the 5-minute mean (9_900) and the bands around it
    assert (g.reference, g.lower) == (9_900, 9_405)
    assert sellers.received(OrderRejected) == [OrderRejected(sellers.oid(2), "price band")]
    assert w.received(LimitStateEntered) == [LimitStateEntered("XYZ", "lower", 9_405, limit_t)]
    assert w.received(TradingHalted) == [TradingHalted("XYZ", "luld pause", pause_t, reopen_t)]
    assert g.state == PAUSED
    assert auction_buyers.received(OrderRejected) == [OrderRejected(auction_buyers.oid(5), "trading halted")]
    assert auction_buyers.received(OrderCanceled) == [OrderCanceled(auction_buyers.oid(4), 500, "canceled")]
    assert len(auction_buyers.received(OrderAccepted)) == 4
    n_trades = len(recorder.tables["trades"])
    assert n_trades == 3  # no trade during the limit state or the pause

    # the auction, against a brute force over every price
    book_bids, book_asks = ex.books["XYZ"].depth()
    queue = ex._auctions["XYZ"]
    lim_b = book_bids + [(o.price, o.qty) for o in queue.values() if o.side == "B" and o.price is not None]
    lim_s = book_asks + [(o.price, o.qty) for o in queue.values() if o.side == "S" and o.price is not None]
    mkt_b = sum(o.qty for o in queue.values() if o.side == "B" and o.price is None)
    mkt_s = sum(o.qty for o in queue.values() if o.side == "S" and o.price is None)
    exp_price, exp_qty, _ = brute_force(lim_b, lim_s, g.reference, mkt_b, mkt_s)
    assert exp_qty > 0

    kernel.run(reopen_t + MINUTE)
    resumed = w.received(TradingResumed)
    assert resumed == [TradingResumed("XYZ", reopen_t, exp_price, exp_qty)]
    tr = trades(recorder).iloc[n_trades:]
    assert set(tr["price"]) == {exp_price} and tr["qty"].sum() == exp_qty
    assert set(tr["time_ns"]) == {reopen_t} and set(tr["aggressor_side"]) == {"A"}
    fills = [m for a in (sellers, auction_buyers, auction_sellers) for m in a.received(OrderFilled)]
    assert all(f.price == exp_price and f.liquidity == "auction" for f in fills if f.liquidity == "auction")
    assert sum(f.qty for f in fills if f.liquidity == "auction") == 2 * exp_qty
    # market orders have priority: both execute in full; the sellers' band order (9_405) does not
    assert sum(f.qty for f in auction_buyers.received(OrderFilled) if f.order_id == auction_buyers.oid(3)) == 200
    assert sum(f.qty for f in auction_sellers.received(OrderFilled) if f.order_id == auction_sellers.oid(3)) == 100
    assert [f.price for f in sellers.received(OrderFilled)] == [9_950, 9_900, 9_850]
    assert ex.books["XYZ"].open_order(sellers.oid(3))[1:3] == (9_405, 1_000)
    assert g.state == OPEN and g.reference == exp_price
    bid, ask = ex.books["XYZ"].best_bid(), ex.books["XYZ"].best_ask()
    assert bid is None or ask is None or bid[0] < ask[0]
    halts = recorder.tables["halts"].frame()
    assert halts["event"].tolist() == ["limit_state_entered", "halted", "resumed"]
    assert halts["price"].tolist()[-1] == exp_price


# ---------------------------------------------------------------------------------------------
# market-wide circuit breaker
# ---------------------------------------------------------------------------------------------


def test_circuit_breaker_levels_pure():
    g = guard(luld=False, collar_pct=0, mwcb_trigger="trades")
    assert g.cb_price == 9_300
    assert list(g.on_trade(9_301, T0)) == []
    (ev,) = g.on_trade(9_300, T0 + 1)
    assert ev == TradingHalted("XYZ", "mwcb level 1", T0 + 1, T0 + 1 + 15 * MINUTE)
    assert g.state == HALTED and g.cb_price == 8_700
    g.poll(T0 + 1 + 15 * MINUTE)
    g.resume(T0 + 1 + 15 * MINUTE, None, 0)
    (ev,) = g.on_trade(7_999, T0 + 20 * MINUTE)  # straight through levels 2 and 3
    assert ev.reason == "mwcb level 3" and ev.resume_ns is None
    assert [kind for kind, _ in g.timers(T0 + 20 * MINUTE)] == [BAND_WINDOW]  # no reopening: the rest of the day


def test_circuit_breaker_level_1_no_halt_near_close():
    g = guard(luld=False, collar_pct=0, mwcb_trigger="trades")
    assert list(g.on_trade(9_300, CLOSE - 35 * MINUTE)) == []
    assert g.state == OPEN and g.cb_price == 8_700  # level 1 used up


def test_circuit_breaker_at_7_percent_halts_15_minutes_then_reopens():
    sg = params(luld=False, collar_pct=0, mwcb_trigger="trades")
    w = watcher()
    resting = Scripted("resting", [(T0, sub(1, "B", 100, 9_301)), (T0, sub(2, "B", 100, 9_300))])
    seller = Scripted(
        "seller",
        [
            (T0 + SECOND, sub(1, "S", 100, None, "IOC")),  # 9_301: just above level 1
            (T0 + 2 * SECOND, sub(2, "S", 100, None, "IOC")),  # 9_300: level 1 (-7%)
            (T0 + 3 * SECOND, sub(3, "S", 50, 9_000)),  # halted: kept for the auction
        ],
    )
    buyer = Scripted("buyer", [(T0 + 4 * SECOND, sub(1, "B", 80, 9_100))])
    halt_t = T0 + 2 * SECOND + US
    ex, rec = run_market(w, resting, seller, buyer, safeguards=sg, until=halt_t + 20 * MINUTE)
    assert w.received(TradingHalted) == [TradingHalted("XYZ", "mwcb level 1", halt_t, halt_t + 15 * MINUTE)]
    tr = trades(rec)
    # nothing matched during the halt; the auction at its end crossed 50 shares, at the end of
    # the equal-volume, equal-imbalance range 9_000..9_100 closest to the reference (9_301)
    assert brute_force([(9_100, 80)], [(9_000, 50)], 9_301) == (9_100, 50, 30)
    assert tr["price"].tolist() == [9_301, 9_300, 9_100]
    assert tr["time_ns"].tolist()[-1] == halt_t + 15 * MINUTE
    assert w.received(TradingResumed) == [TradingResumed("XYZ", halt_t + 15 * MINUTE, 9_100, 50)]
    assert ex.books["XYZ"].best_bid() == (9_100, 30)


def test_status_subscription_and_no_halts_table_without_events():
    maker = Scripted("maker", [(T0, sub(1, "S", 100, 10_010))])
    _, rec = run_market(watcher(), maker, until=T0 + MINUTE)
    assert "halts" not in rec.tables


def test_safeguards_off():
    fat = Scripted("fat", [(T0, sub(1, "B", 100, 100_000))])
    recorder = Recorder()
    kernel = Kernel(Network(NetworkSpec(LinkSpec(US))), RandomStreams(1))
    ex = Exchange("exchange", ["XYZ"], recorder, 0, CLOSE, safeguards=None, reference_price=REF)
    kernel.add(ex)
    kernel.add(fat)
    kernel.run(T0 + MINUTE)
    assert fat.received(OrderAccepted) == [OrderAccepted(fat.oid(1))]
    assert ex.guards == {}


def test_params_are_pydantic_validated():
    from pydantic import TypeAdapter, ValidationError

    ta = TypeAdapter(SafeguardParams)
    assert ta.validate_python({"tier": 2}).tier == 2
    with pytest.raises(ValidationError):
        ta.validate_python({"tier": 3})
    with pytest.raises(ValidationError):
        ta.validate_python({"bogus": 1})
    assert dataclasses.replace(SafeguardParams(), collar_pct=0).collar_pct == 0


def test_circuit_breaker_is_market_wide():
    recorder = Recorder()
    kernel = Kernel(Network(NetworkSpec(LinkSpec(US))), RandomStreams(1))
    sg = params(luld=False, collar_pct=0, mwcb_trigger="trades")
    ex = Exchange(
        "exchange", ["XYZ", "ABC"], recorder, 0, CLOSE, safeguards=sg, reference_price={"XYZ": REF, "ABC": 500}
    )
    w = Scripted("w", [(0, lambda a: SubscribeTradingStatus("ABC"))])
    a = Scripted("a", [(T0, sub(1, "B", 100, 9_000)), (T0 + SECOND, sub(2, "S", 100, 9_000))])
    b = Scripted("b", [(T0 + 2 * SECOND, lambda x: SubmitOrder(x.oid(1), "ABC", "B", 10, 500, "IOC"))])
    for actor in (ex, w, a, b):
        kernel.add(actor)
    kernel.run(T0 + 20 * MINUTE)
    halt_t = T0 + SECOND + US
    assert w.received(TradingHalted) == [TradingHalted("ABC", "mwcb level 1", halt_t, halt_t + 15 * MINUTE)]
    assert b.received(OrderRejected) == [OrderRejected(b.oid(1), "trading halted")]
    assert w.received(TradingResumed) == [TradingResumed("ABC", halt_t + 15 * MINUTE, None, 0)]
    assert ex.guards["ABC"].state == OPEN and ex.guards["XYZ"].state == OPEN
