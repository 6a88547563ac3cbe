"""Pure stop book: one ``StopBook`` per symbol, the stop and stop-limit orders waiting for a trade.

A stop order (``SubmitOrder.stop_price`` set) is not in the ``OrderBook`` and not in market data
until a trade *elects* it: a buy stop when a trade prints at or above its stop price, a sell stop
when one prints at or below. ``elect(price)`` takes out every order one print elects, in time
priority (the order they were accepted in, a replace that changes the stop or limit price or
raises the quantity counting as a new acceptance); the exchange (actors/exchange/exchange.py)
then enters them one after another, a stop as a market order and a stop-limit as a limit order
at its limit price. No I/O, no clock; never raises on the ids it is given.

Per side a heap of ``(key, seq, order_id)`` (key = stop price for buys, -stop price for sells: the
next order to elect on top) with lazy deletion: an entry counts only while its order is live with
the same ``seq``; the heaps are rebuilt when dead entries outnumber live ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from heapq import heapify, heappop, heappush

__all__ = ["StopBook", "StopOrder"]

_REBUILD_MIN = 64


@dataclass(slots=True)
class StopOrder:
    """A resting stop (``price`` None) or stop-limit (``price`` = its limit) order."""

    order_id: int
    side: str  # "B" | "S"
    qty: int
    stop_price: int
    price: int | None
    tif: str
    stp: str | None
    owner: str
    seq: int = 0  # time priority: the order of acceptance


class StopBook:
    """The stop orders of one symbol that wait for their election (see the module docstring)."""

    __slots__ = ("_buys", "_orders", "_sells", "_seq", "prints", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self._orders: dict[int, StopOrder] = {}  # live stop orders, by id
        self._buys: list[tuple[int, int, int]] = []  # (stop, seq, id): lowest stop first
        self._sells: list[tuple[int, int, int]] = []  # (-stop, seq, id): highest stop first
        self._seq = 0
        self.prints: list[int] = []  # trade prices since the exchange last ran the elections

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, order_id: object) -> bool:
        try:
            return order_id in self._orders
        except TypeError:
            return False

    def get(self, order_id: int) -> StopOrder | None:
        return self._orders.get(order_id)

    def orders(self) -> list[StopOrder]:
        """The live stop orders in time priority (a read-only snapshot)."""
        return sorted(self._orders.values(), key=lambda o: o.seq)

    def add(self, order: StopOrder) -> None:
        """A newly accepted stop order: the last in time priority."""
        self._orders[order.order_id] = order
        self._push(order)

    def remove(self, order_id: int) -> StopOrder | None:
        """Take a live stop order out (a cancel); None when it is not here."""
        order = self._orders.pop(order_id, None)
        if order is not None:
            self._maybe_rebuild()
        return order

    def replace(self, order_id: int, qty: int, stop_price: int, price: int | None) -> StopOrder | None:
        """New quantity / stop price / limit price of a live stop order. A quantity decrease
        keeps its time priority; a new stop or limit price or a larger quantity moves it to the
        back. None when it is not here."""
        order = self._orders.get(order_id)
        if order is None:
            return None
        keep = stop_price == order.stop_price and price == order.price and qty <= order.qty
        order.qty, order.stop_price, order.price = qty, stop_price, price
        if not keep:
            self._push(order)  # the old heap entry is dead (its seq no longer matches)
            self._maybe_rebuild()
        return order

    def elect(self, price: int) -> list[StopOrder]:
        """Take out every stop order a trade at ``price`` elects (buys with stop <= price, sells
        with stop >= price), in time priority."""
        out: list[StopOrder] = []
        orders = self._orders
        for heap, key in ((self._buys, price), (self._sells, -price)):
            while heap and heap[0][0] <= key:
                _, seq, oid = heappop(heap)
                order = orders.get(oid)
                if order is not None and order.seq == seq:
                    del orders[oid]
                    out.append(order)
        out.sort(key=lambda o: o.seq)
        return out

    def _push(self, order: StopOrder) -> None:
        self._seq += 1
        order.seq = self._seq
        if order.side == "B":
            heappush(self._buys, (order.stop_price, order.seq, order.order_id))
        else:
            heappush(self._sells, (-order.stop_price, order.seq, order.order_id))

    def _maybe_rebuild(self) -> None:
        if len(self._buys) + len(self._sells) <= max(_REBUILD_MIN, 2 * len(self._orders)):
            return
        live = self._orders
        for heap in (self._buys, self._sells):
            heap[:] = [e for e in heap if (o := live.get(e[2])) is not None and o.seq == e[1]]
            heapify(heap)
