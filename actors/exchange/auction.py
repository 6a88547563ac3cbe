"""Single-price call auction (reopening after a halt): pure functions, no actors, no clock.

``auction_price(bids, asks, reference, market_buy, market_sell)`` picks the auction price from
aggregated ``(price, qty)`` limit levels plus market-order quantities:

1. the price that maximises the executed volume ``min(D(p), S(p))``, where ``D(p)`` is the buy
   quantity willing to trade at ``p`` (market buys + bids priced ``>= p``) and ``S(p)`` the sell
   quantity (market sells + asks priced ``<= p``);
2. ties: the least absolute imbalance ``|D(p) - S(p)|``;
3. then the price closest to ``reference`` (skipped when ``reference`` is None);
4. then the lower price.

Every positive integer tick is a possible auction price, not only the submitted limit prices:
``D`` and ``S`` are constant between two consecutive limit prices, so the search evaluates each
distinct limit price and, for each gap between them (and below the lowest / above the highest),
the point of the gap closest to the reference. That is the same answer as a brute force over
every tick (tests/test_auction.py checks it with hypothesis).

``indicative(orders, reference)`` is what the auction would do now, without executing it: the
indicative price, the paired quantity and the imbalance that the exchange publishes while trading
is halted (``AuctionImbalanceUpdated``, see actors/exchange/exchange.py).

``uncross(orders, reference)`` executes the auction: every order eligible at the price (market
orders first, then by price, then by time priority ``seq``) trades at that one price until the
executed volume is reached. It returns the matches and the ``OrderFilled`` events (buyer's fill
then seller's fill per match, ``liquidity="auction"``), and reduces ``AuctionOrder.qty`` in
place. After an uncross no remaining buy limit is ``>=`` a remaining sell limit (otherwise a
higher volume would have been possible), so the remainder can rest in a continuous book.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate, pairwise

from actors.messages import OrderFilled

__all__ = ["AuctionOrder", "AuctionResult", "Indication", "auction_price", "indicative", "uncross"]

AUCTION = "auction"


def _levels(levels: Iterable[tuple[int, int]]) -> tuple[list[int], list[int]]:
    agg: dict[int, int] = {}
    for price, qty in levels:
        if qty > 0:
            agg[price] = agg.get(price, 0) + qty
    prices = sorted(agg)
    return prices, [agg[p] for p in prices]


def auction_price(
    bids: Iterable[tuple[int, int]],
    asks: Iterable[tuple[int, int]],
    reference: int | None,
    market_buy: int = 0,
    market_sell: int = 0,
) -> tuple[int | None, int, int]:
    """``(price, executed_qty, imbalance)`` of a call auction; ``imbalance = D - S`` at the
    price (positive: buy surplus). ``price`` is None only when there is no limit price and no
    reference. See the module docstring for the rule."""
    bid_px, bid_q = _levels(bids)
    ask_px, ask_q = _levels(asks)
    bid_total = sum(bid_q)
    bid_cum = [0, *accumulate(bid_q)]  # bid_cum[i] = qty of the i lowest bid levels
    ask_cum = [0, *accumulate(ask_q)]
    limits = sorted(set(bid_px) | set(ask_px))
    if not limits:
        if reference is None:
            return None, 0, market_buy - market_sell
        candidates = [reference]
    else:
        ref = reference
        candidates = list(limits)
        lo, hi = limits[0], limits[-1]
        if lo > 1:
            candidates.append(1 if ref is None else min(max(ref, 1), lo - 1))
        candidates.append(hi + 1 if ref is None else max(ref, hi + 1))
        for a, b in pairwise(limits):
            if b - a >= 2:
                candidates.append(a + 1 if ref is None else min(max(ref, a + 1), b - 1))
    best: tuple[int, int, int, int] | None = None
    best_out: tuple[int, int, int] = (0, 0, 0)
    for p in candidates:
        d = market_buy + bid_total - bid_cum[bisect_left(bid_px, p)]
        s = market_sell + ask_cum[bisect_right(ask_px, p)]
        vol = d if d < s else s
        imb = d - s
        key = (-vol, abs(imb), 0 if reference is None else abs(p - reference), p)
        if best is None or key < best:
            best = key
            best_out = (p, vol, imb)
    return best_out


@dataclass(slots=True)
class AuctionOrder:
    """An order taking part in an auction. ``qty`` is its open quantity (reduced by
    ``uncross``); ``seq`` its time priority (lower = earlier); ``price=None`` is a market order.
    ``in_book``, ``owner``, ``post_only`` and ``stp`` are carried for the caller."""

    order_id: int
    side: str  # "B" | "S"
    price: int | None
    qty: int
    seq: int
    owner: str = ""
    in_book: bool = False
    post_only: bool = False
    stp: str | None = None


@dataclass(frozen=True, slots=True)
class AuctionResult:
    price: int | None
    qty: int  # executed volume
    imbalance: int  # D - S at the price
    matches: tuple[tuple[int, int, int], ...]  # (buy order id, sell order id, qty)
    fills: tuple[OrderFilled, ...]  # per match: the buyer's fill, then the seller's


@dataclass(frozen=True, slots=True)
class Indication:
    """What a call auction would do now: ``price`` (None: no limit price and no reference),
    ``paired`` (the quantity that would execute) and ``imbalance`` (``D - S`` at the price;
    positive: more to buy than to sell)."""

    price: int | None
    paired: int
    imbalance: int

    @property
    def side(self) -> str:
        """The side with the surplus: "B", "S", or "" when balanced."""
        return "B" if self.imbalance > 0 else "S" if self.imbalance < 0 else ""


def _split(orders: Iterable[AuctionOrder]) -> tuple[list[AuctionOrder], list[AuctionOrder]]:
    buys: list[AuctionOrder] = []
    sells: list[AuctionOrder] = []
    for o in orders:
        if o.qty > 0:
            (buys if o.side == "B" else sells).append(o)
    return buys, sells


def _indicate(buys: list[AuctionOrder], sells: list[AuctionOrder], reference: int | None) -> Indication:
    return Indication(
        *auction_price(
            ((o.price, o.qty) for o in buys if o.price is not None),
            ((o.price, o.qty) for o in sells if o.price is not None),
            reference,
            sum(o.qty for o in buys if o.price is None),
            sum(o.qty for o in sells if o.price is None),
        )
    )


def indicative(orders: Iterable[AuctionOrder], reference: int | None) -> Indication:
    """The indicative price, paired quantity and imbalance of an auction over ``orders`` now
    (the price ``uncross`` would execute at; nothing is changed)."""
    return _indicate(*_split(orders), reference)


def uncross(orders: Iterable[AuctionOrder], reference: int | None) -> AuctionResult:
    """Run a single-price auction over ``orders`` (any mix of sides; see the module docstring)."""
    buys, sells = _split(orders)
    ind = _indicate(buys, sells, reference)
    price, qty, imbalance = ind.price, ind.paired, ind.imbalance
    if not qty or price is None:
        return AuctionResult(price, 0, imbalance, (), ())
    px = price
    eligible_buys = sorted(
        (o for o in buys if o.price is None or o.price >= px),
        key=lambda o: (0, 0, o.seq) if o.price is None else (1, -o.price, o.seq),
    )
    eligible_sells = sorted(
        (o for o in sells if o.price is None or o.price <= px),
        key=lambda o: (0, 0, o.seq) if o.price is None else (1, o.price, o.seq),
    )
    matches: list[tuple[int, int, int]] = []
    fills: list[OrderFilled] = []
    left = qty
    i = j = 0
    while left:
        b, s = eligible_buys[i], eligible_sells[j]
        q = min(b.qty, s.qty, left)
        b.qty -= q
        s.qty -= q
        left -= q
        matches.append((b.order_id, s.order_id, q))
        fills.append(OrderFilled(b.order_id, s.order_id, px, q, b.qty, AUCTION))
        fills.append(OrderFilled(s.order_id, b.order_id, px, q, s.qty, AUCTION))
        if not b.qty:
            i += 1
        if not s.qty:
            j += 1
    return AuctionResult(price, qty, imbalance, tuple(matches), tuple(fills))
