"""Single-price reopening auction: price rule against a brute force, uncross in price-time priority."""

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.exchange.auction import AuctionOrder, auction_price, uncross
from actors.messages import OrderFilled


def brute_force(bids, asks, reference, market_buy=0, market_sell=0):
    """Every tick from 1 to above the highest price: max volume, least imbalance, closest to
    the reference, lower price."""
    prices = [p for p, _ in bids] + [p for p, _ in asks] + ([reference] if reference is not None else [])
    best = None
    for p in range(1, max(prices, default=1) + 3):
        d = market_buy + sum(q for x, q in bids if x >= p)
        s = market_sell + sum(q for x, q in asks if x <= p)
        key = (-min(d, s), abs(d - s), 0 if reference is None else abs(p - reference), p)
        if best is None or key < best[0]:
            best = (key, (p, min(d, s), d - s))
    return best[1]


levels = st.lists(st.tuples(st.integers(1, 40), st.integers(1, 500)), max_size=8)


@settings(max_examples=400, deadline=None)
@given(
    bids=levels,
    asks=levels,
    reference=st.one_of(st.none(), st.integers(1, 45)),
    market_buy=st.integers(0, 600),
    market_sell=st.integers(0, 600),
)
def test_auction_price_matches_brute_force(bids, asks, reference, market_buy, market_sell):
    if not bids and not asks and reference is None:
        assert auction_price(bids, asks, None, market_buy, market_sell) == (None, 0, market_buy - market_sell)
        return
    assert auction_price(bids, asks, reference, market_buy, market_sell) == brute_force(
        bids, asks, reference, market_buy, market_sell
    )


def test_auction_price_examples():
    # classic: volume maximised at 10 (300 shares)
    bids = [(11, 100), (10, 200), (9, 300)]
    asks = [(9, 100), (10, 200), (12, 300)]
    assert auction_price(bids, asks, 10) == (10, 300, 0)
    # equal volume and imbalance over a whole gap: the reference inside the gap wins
    assert auction_price([(20, 100)], [(10, 100)], 14) == (14, 100, 0)
    assert auction_price([(20, 100)], [(10, 100)], 30) == (20, 100, 0)
    assert auction_price([(20, 100)], [(10, 100)], None) == (10, 100, 0)
    # least imbalance beats closeness to the reference
    # (at 10: 100 shares, imbalance -50; at 8 and 9: 100 shares, imbalance 0; 9 is closer)
    assert auction_price([(10, 100)], [(8, 100), (10, 50)], 10) == (9, 100, 0)
    # only market orders: the reference
    assert auction_price([], [], 50, 100, 70) == (50, 70, 30)
    # no cross: zero volume
    assert auction_price([(9, 100)], [(11, 100)], 10)[1] == 0


def _orders(spec):
    return [AuctionOrder(i + 1, side, px, q, seq) for i, (side, px, q, seq) in enumerate(spec)]


def test_uncross_price_time_priority_and_fills():
    orders = _orders(
        [
            ("B", 10, 100, 3),  # later at 10
            ("B", 10, 100, 1),  # earlier at 10: first among the 10s
            ("B", None, 50, 5),  # market: first of all
            ("B", 11, 100, 4),
            ("S", 9, 120, 2),
            ("S", 10, 200, 6),
            ("S", 12, 500, 7),
        ]
    )
    res = uncross(orders, 10)
    assert (res.price, res.qty) == (10, 320)
    assert res.matches == ((3, 5, 50), (4, 5, 70), (4, 6, 30), (2, 6, 100), (1, 6, 70))
    assert all(f.price == 10 and f.liquidity == "auction" for f in res.fills)
    assert res.fills[0] == OrderFilled(3, 5, 10, 50, 0, "auction")
    assert res.fills[1] == OrderFilled(5, 3, 10, 50, 70, "auction")
    assert res.fills[-2:] == (OrderFilled(1, 6, 10, 70, 30, "auction"), OrderFilled(6, 1, 10, 70, 0, "auction"))
    left = {o.order_id: o.qty for o in orders}
    assert left == {1: 30, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 7: 500}


order_specs = st.lists(
    st.tuples(st.sampled_from("BS"), st.one_of(st.none(), st.integers(1, 30)), st.integers(1, 300)),
    max_size=14,
)


@settings(max_examples=300, deadline=None)
@given(spec=order_specs, reference=st.integers(1, 30))
def test_uncross_properties(spec, reference):
    orders = [AuctionOrder(i + 1, side, px, q, i) for i, (side, px, q) in enumerate(spec)]
    before = {o.order_id: o.qty for o in orders}
    limits = {"B": [], "S": []}
    market = {"B": 0, "S": 0}
    for o in orders:
        if o.price is None:
            market[o.side] += o.qty
        else:
            limits[o.side].append((o.price, o.qty))
    expected = brute_force(limits["B"], limits["S"], reference, market["B"], market["S"])
    res = uncross(orders, reference)
    assert (res.price, res.imbalance) == (expected[0], expected[2]) or expected[1] == 0
    assert res.qty == expected[1]
    assert sum(q for _, _, q in res.matches) == res.qty
    by_id = {o.order_id: o for o in orders}
    for buy_id, sell_id, _ in res.matches:
        b, s = by_id[buy_id], by_id[sell_id]
        assert b.side == "B" and s.side == "S"
        assert b.price is None or b.price >= res.price
        assert s.price is None or s.price <= res.price
    for o in orders:
        assert before[o.order_id] - o.qty == sum(q for b, s, q in res.matches if o.order_id in (b, s))
    # nothing left that still crosses
    best_bid = max((o.price for o in orders if o.side == "B" and o.qty and o.price is not None), default=None)
    best_ask = min((o.price for o in orders if o.side == "S" and o.qty and o.price is not None), default=None)
    if best_bid is not None and best_ask is not None:
        assert best_bid < best_ask
    # price-time priority: an order that did not fully execute has no worse-priced/later
    # same-side order that executed
    executed = {b for b, _, _ in res.matches} | {s for _, s, _ in res.matches}

    def rank(o):
        return (0, 0, o.seq) if o.price is None else (1, -o.price if o.side == "B" else o.price, o.seq)

    for o in orders:
        if o.qty and (o.price is None or (o.price >= res.price if o.side == "B" else o.price <= res.price)):
            for other in orders:
                if other.side == o.side and other.order_id in executed and rank(other) > rank(o):
                    raise AssertionError(f"{other} executed ahead of {o}")


def test_indicative_is_the_uncross_price_without_executing():
    """Bids 100 @ 9_400 and 100 @ 9_000, asks 300 @ 8_900 and 1_000 @ 9_500, reference 10_000:
    200 can pair anywhere in 8_900..9_000 with 100 more to sell; the closest to the reference is
    9_000. Nothing changes in the orders; ``uncross`` then trades exactly that."""
    from actors.exchange.auction import Indication, indicative

    orders = [
        AuctionOrder(1, "B", 9_400, 100, 0),
        AuctionOrder(2, "B", 9_000, 100, 1),
        AuctionOrder(3, "S", 8_900, 300, 2),
        AuctionOrder(4, "S", 9_500, 1_000, 3),
    ]
    ind = indicative(orders, 10_000)
    assert ind == Indication(9_000, 200, -100) and ind.side == "S"
    assert [o.qty for o in orders] == [100, 100, 300, 1_000]
    result = uncross(orders, 10_000)
    assert (result.price, result.qty, result.imbalance) == (ind.price, ind.paired, ind.imbalance)
    assert indicative([AuctionOrder(1, "B", None, 50, 0)], 10_000) == Indication(10_000, 0, 50)
    assert indicative([], None) == Indication(None, 0, 0) and Indication(1, 0, 0).side == ""
