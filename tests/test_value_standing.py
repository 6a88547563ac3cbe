"""Value traders' standing orders at their valuation (``ValueParams.standing_edge_ticks``)."""

import math
import random

from actors.background import ValueParams, ValueTrader
from actors.messages import BookSnapshot, CancelOrder, OrderFilled, ReplaceOrder, SubmitOrder
from actors.world import Fundamental, FundamentalParams
from sim.clock import MINUTE, SECOND, parse_clock
from sim.rng import RandomStreams

OPEN = parse_clock("09:30")
CLOSE = parse_clock("16:00")
REF = 10_000


def trader(**params):
    """A value trader outside a kernel: a fake clock, sent messages kept in ``sent``; no bias, no
    noise, no taking and no passive orders unless asked, so only standing orders are sent."""
    fund = Fundamental.from_streams(
        RandomStreams(1), FundamentalParams(sigma_pct_day=0, jump_rate_per_day=0), REF, OPEN, CLOSE
    )
    base = {"bias_sd_ticks": 0, "noise_sd_ticks": 0, "threshold_ticks": 1_000, "passive_prob": 0.0}
    t = ValueTrader("v", "XYZ", ValueParams(**{**base, **params}), REF, OPEN, CLOSE, fundamental=fund)
    t.kernel = type("Clock", (), {"now": OPEN + MINUTE, "schedule": lambda *a: None})()
    t.sent = []
    t.send = lambda dst, msg, priority=0: t.sent.append(msg)
    return t, fund


def look(t, bid, ask, qty=1_000):
    t.on_arrival()
    t.sent.clear()
    t.on_snapshot(BookSnapshot("XYZ", ((bid, qty),), ((ask, qty),), None, OPEN), 0)
    return list(t.sent)


def test_off_by_default_sends_nothing_new():
    t, _ = trader()
    assert look(t, REF - 50, REF + 50) == []


def test_standing_bid_and_ask_rest_at_the_valuation_and_move_only_when_it_does():
    t, fund = trader(standing_edge_ticks=20, standing_lots=3, standing_requote_ticks=2)
    sent = look(t, REF - 50, REF + 50)
    assert [(m.side, m.qty, m.price, m.tif) for m in sent] == [("B", 300, REF - 20, "DAY"), ("S", 300, REF + 20, "DAY")]
    assert look(t, REF - 50, REF + 50) == []  # same view: the orders keep their queue places
    fund.add_jump(t.now, 0.01)  # view + 1 tick: below standing_requote_ticks, nothing moves
    assert look(t, REF - 50, REF + 50) == []
    fund.add_jump(t.now, 0.05)  # view about REF + 6
    moved = look(t, REF - 50, REF + 50)
    view = t.valuation()
    assert all(isinstance(m, ReplaceOrder) for m in moved)
    assert sorted(m.price for m in moved) == [math.floor(view - 20), math.ceil(view + 20)]
    assert REF + 5 <= view <= REF + 7


def test_a_filled_standing_order_is_replaced_and_the_position_limit_holds():
    t, _ = trader(standing_edge_ticks=20, standing_lots=2, max_position=500)
    bid_id = look(t, REF - 50, REF + 50)[0].order_id
    t._filled(OrderFilled(bid_id, 1, REF - 20, 200, 0, "maker"), 0)  # long 200
    t._filled(OrderFilled(99, 1, REF - 20, 200, 0, "taker"), 0)  # long 400 (some other buy)
    (new,) = look(t, REF - 50, REF + 50)
    assert (new.side, new.qty) == ("B", 100)  # only 100 shares of room left to 500


def test_standing_orders_never_go_through_the_valuation_minus_edge_nor_cross():
    # random books and views: a standing buy is always at or below view - edge and below the
    # ask; a standing sell at or above view + edge and above the bid
    rnd = random.Random(7)
    edge = 12
    t, fund = trader(standing_edge_ticks=edge, standing_lots=1)
    for _ in range(400):
        fund.add_jump(t.now, rnd.gauss(0.0, 0.3))
        t.kernel.now += SECOND
        mid = REF + rnd.randint(-120, 120)
        half = rnd.randint(1, 5)
        bid, ask = mid - half, mid + half
        view = t.valuation()
        for m in look(t, bid, ask):
            if isinstance(m, CancelOrder):
                continue
            assert isinstance(m, SubmitOrder | ReplaceOrder)
            side = m.side if isinstance(m, SubmitOrder) else t.open_orders[m.order_id].side
            if side == "B":
                assert m.price <= math.floor(view - edge) and m.price < ask
            else:
                assert m.price >= math.ceil(view + edge) and m.price > bid
        for oid, order in list(t.open_orders.items()):  # the exchange applies the replaces
            order.price = next(
                (m.price for m in reversed(t.sent) if isinstance(m, ReplaceOrder) and m.order_id == oid), order.price
            )
