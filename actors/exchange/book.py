"""Pure price-time priority matching engine: one ``OrderBook`` per symbol, no I/O, no clock.

Every call returns a ``list`` of events from :mod:`actors.messages`, in causal order, and never
raises on bad input (bad input is answered with ``OrderRejected`` / ``CancelRejected`` and
leaves the book untouched)::

    book = OrderBook("XYZ")
    book.submit(order_id, side, qty, price=None, *, owner="", tif="DAY",
                post_only=False, stp=None)
    book.cancel(order_id)
    book.replace(order_id, qty=None, price=None)     # qty = new open (leaves) quantity
    book.replace(order_id, total_qty=n, price=None)  # n = new total: leaves = n - filled
    book.best_bid(), book.best_ask()                  # (price, total_qty) or None, O(1)
    book.top()                                        # (bid, bid_qty, ask, ask_qty), None / 0 if empty
    book.depth(levels)                                # ([(px, qty)...] bids high->low, asks low->high)
    book.orders(side), book.known(order_id)           # read-only helpers (auctions, band sweeps)
    book.filled_qty(order_id), book.add_filled(order_id, qty)  # filled qty of a live order

Semantics (the choices the brief left open are marked *choice*):

* Prices are positive ``int`` ticks, quantities positive ``int`` (``bool``, floats and int
  subclasses are rejected). ``side`` is ``"B"`` or ``"S"``; ``tif`` is ``"DAY"``, ``"IOC"`` or
  ``"FOK"``; ``stp`` is ``None``, ``"cancel_resting"`` or ``"cancel_incoming"``; ``owner`` must
  be a ``str``; ``post_only`` must be a ``bool``. ``price=None`` is a market order.
* Submit rejections (``OrderRejected``), checked in this order: ``"invalid order id"`` (None or
  unhashable), ``"duplicate order id"``, ``"invalid side"``, ``"invalid qty"``,
  ``"invalid price"``, ``"invalid tif"``, ``"invalid stp"``, ``"invalid input"`` (a comparison
  with the argument raised), ``"invalid owner"``, ``"invalid post_only"``,
  ``"post_only requires a limit price"``, ``"post_only requires DAY"``,
  ``"post_only would cross"``.
* Event order of a submit: ``OrderAccepted`` first, then for every match two ``OrderFilled``
  at the resting order's price -- *choice*: the taker's (incoming order's) fill first, then the
  maker's -- interleaved with ``OrderCanceled(maker, qty, "stp")`` for self-trades prevented
  by ``cancel_resting``, then at most one ``OrderCanceled`` for the part that does not rest.
  ``leaves_qty`` of a fill is the order's open quantity after it.
* Order ids: any hashable value except ``None``. *choice*: an id is consumed when its order is
  *accepted*; any later submit with that id (live or finished) is rejected with
  ``"duplicate order id"``. A rejected submit does not consume the id. (So the book remembers
  every accepted id, in a set: memory grows by one set slot per accepted order.)
* Market orders never rest; their unfilled remainder is canceled with reason ``"market"``
  (also for ``tif="IOC"``; a market FOK that cannot fill uses ``"fok"``). *choice*: a market
  order against an empty side is accepted then canceled for its full qty
  (``OrderAccepted`` + ``OrderCanceled(id, qty, "market")``), as FIX venues do.
* IOC limit: the unfilled remainder is canceled with reason ``"ioc"``.
* FOK: the quantity available at acceptable prices is checked first (resting orders the
  incoming order would self-trade with are not counted; with ``cancel_incoming`` only
  liquidity ahead of the first own order counts). *choice*: if it cannot fill completely it is
  accepted then canceled in full (``OrderCanceled(id, qty, "fok")``) and the book is not
  touched (no STP cancels happen either); otherwise it fills completely.
* ``post_only``: rejected with ``"post_only would cross"`` if it would take liquidity (even
  from its own owner); ``"post_only requires a limit price"`` for a market order; *choice*
  ``"post_only requires DAY"`` with IOC/FOK.
* Self-trade prevention applies when the incoming order has ``stp`` set, its ``owner`` is
  non-empty and equals the resting order's owner (``""`` means "no STP identity").
  ``cancel_resting``: the resting order is canceled (``OrderCanceled(resting, leaves, "stp")``)
  and matching continues. ``cancel_incoming``: matching stops and the incoming remainder is
  canceled (``OrderCanceled(incoming, remainder, "stp")``), even for a DAY limit order.
  ``stp=None``: self-trades are allowed. Only the incoming order's ``stp`` matters.
* ``cancel``: unknown / finished id (or garbage) -> ``CancelRejected(id, "unknown order")``;
  otherwise ``OrderCanceled(id, leaves, "canceled")``.
* ``replace(id, qty=None, price=None)``: ``qty`` is the new open (leaves) quantity. Unknown
  or finished id -> ``CancelRejected(id, "unknown order")``; then bad qty / price ->
  ``CancelRejected`` ``"invalid qty"`` / ``"invalid price"``; both ``None`` ->
  ``CancelRejected(id, "nothing to replace")``. *choice*: a replace to the current values is
  accepted (``OrderReplaced``) and changes nothing. A size decrease keeps time priority; a size
  increase or a price change moves the order to the back of the queue at its (new) price. A
  price change that crosses the book emits ``OrderReplaced(id, new_price, new_qty)`` and then
  matches as an aggressor with the order's own owner / stp (``cancel_incoming`` cancels the
  remainder with ``"stp"``); the remainder rests. A post-only order replaced to a crossing
  price -> ``CancelRejected(id, "post_only would cross")``, order unchanged.
* ``replace(id, total_qty=n, price=None)``: ``n`` is the new *total* order quantity (FIX
  OrderQty, FIX 4.4 Vol. 4 App. D). The book keeps each live order's filled quantity (every
  fill, as maker or taker, across replaces, plus ``add_filled``) and sets leaves = ``n`` -
  filled in the same step, so a fill that crossed the request on its way cannot make the order
  fill more than ``n``. Events are those of a ``qty=`` replace to that leaves quantity, with
  ``OrderReplaced.cum_qty`` = the filled quantity. If ``n`` <= filled the order is done: it is
  taken out of the book and the only event is ``OrderReplaced(id, new_price, 0, filled)``
  (the post-only cross check does not apply: nothing rests). Giving ``qty`` too, or an ``n``
  that is not a positive ``int`` -> ``CancelRejected(id, "invalid qty")``.
* ``depth(levels=None)``: all levels when ``levels`` is None. Extras: ``open_order(id)`` ->
  ``(side, price, leaves, owner)`` or None; ``len(book)`` = number of resting orders;
  ``filled_qty(id)`` -> the filled quantity of a live order (None if it does not rest);
  ``add_filled(id, qty)`` counts ``qty`` executed outside continuous matching (the exchange's
  reopening auction) in a live order's filled quantity, its open quantity untouched.

Implementation: per side a dict ``key -> level`` plus a heap of keys (key = price for asks,
-price for bids); the heap top is always a non-empty level, so best bid/ask are O(1); a level
that empties while not at the top stays (empty) in dict and heap until it surfaces or is
reused. A level is a list ``[total_qty, deque_of_entries, compaction_threshold, price, key,
heap, levels, is_buy]``; an entry is a list ``[leaves, order_id, owner, level, stp,
post_only, filled]``. Cancel is O(1): dict pop, the entry is zeroed in place (lazy deletion) and the
level total updated; dead entries are dropped when they reach the front of the queue, when the
level empties, or by compaction when a queue outgrows twice its live length (amortised O(1)).
``submit`` has a fast path for plain valid DAY limit orders (no STP / post-only); everything
else goes through the general path, which validates in the order above. Events are genuine
instances of the frozen slotted dataclasses, built via a layout-identical mutable twin class
whose ``__class__`` is then switched (about 2-3x cheaper than the dataclass ``__init__``, which
goes through ``object.__setattr__`` per field); an import-time self-check compares them with
normally constructed events.
"""

from __future__ import annotations

from collections import deque
from heapq import heappop, heappush
from typing import Any

from actors.messages import (
    CancelRejected,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
)

__all__ = ["Event", "OrderBook"]

Event = OrderAccepted | OrderRejected | OrderFilled | OrderCanceled | OrderReplaced | CancelRejected

_INF = float("inf")

# ---------------------------------------------------------------------------------------------
# Fast event construction.
#
# The event classes are frozen: their generated __init__ stores each field through
# object.__setattr__. A plain slotted class with the same __slots__ has the same memory layout,
# so we fill an instance of it with ordinary (specialised, fast) attribute stores and then set
# its __class__ to the real event class. The result is an ordinary instance of the frozen
# dataclass (type(), ==, hash, repr, immutability all as usual).
# ---------------------------------------------------------------------------------------------

_EXPECTED_SLOTS: dict[type, tuple[str, ...]] = {
    OrderAccepted: ("order_id",),
    OrderRejected: ("order_id", "reason"),
    OrderFilled: ("order_id", "counterparty_id", "price", "qty", "leaves_qty", "liquidity"),
    OrderCanceled: ("order_id", "canceled_qty", "reason"),
    OrderReplaced: ("order_id", "price", "qty", "cum_qty", "stop_price"),
    CancelRejected: ("order_id", "reason"),
}


def _twin(cls: type) -> Any:
    slots = tuple(getattr(cls, "__slots__", ()))
    if slots != _EXPECTED_SLOTS[cls]:
        raise ImportError(
            f"actors.exchange.book: {cls.__name__} slots {slots!r} != expected "
            f"{_EXPECTED_SLOTS[cls]!r}; update the fast event construction in book.py"
        )
    return type("_Fast" + cls.__name__, (), {"__slots__": slots})


_TAccepted = _twin(OrderAccepted)
_TRejected = _twin(OrderRejected)
_TFilled = _twin(OrderFilled)
_TCanceled = _twin(OrderCanceled)
_TReplaced = _twin(OrderReplaced)
_TCancelRejected = _twin(CancelRejected)


def _accepted(order_id: Any) -> OrderAccepted:
    ev = _TAccepted()
    ev.order_id = order_id
    ev.__class__ = OrderAccepted
    return ev  # type: ignore[no-any-return]


def _rejected(order_id: Any, reason: str) -> OrderRejected:
    ev = _TRejected()
    ev.order_id = order_id
    ev.reason = reason
    ev.__class__ = OrderRejected
    return ev  # type: ignore[no-any-return]


def _filled(order_id: Any, counterparty_id: Any, price: int, qty: int, leaves_qty: int, liquidity: str) -> OrderFilled:
    ev = _TFilled()
    ev.order_id = order_id
    ev.counterparty_id = counterparty_id
    ev.price = price
    ev.qty = qty
    ev.leaves_qty = leaves_qty
    ev.liquidity = liquidity
    ev.__class__ = OrderFilled
    return ev  # type: ignore[no-any-return]


def _canceled(order_id: Any, canceled_qty: int, reason: str) -> OrderCanceled:
    ev = _TCanceled()
    ev.order_id = order_id
    ev.canceled_qty = canceled_qty
    ev.reason = reason
    ev.__class__ = OrderCanceled
    return ev  # type: ignore[no-any-return]


def _replaced(order_id: Any, price: int, qty: int, cum_qty: int | None = None) -> OrderReplaced:
    ev = _TReplaced()
    ev.order_id = order_id
    ev.price = price
    ev.qty = qty
    ev.cum_qty = cum_qty
    ev.stop_price = None
    ev.__class__ = OrderReplaced
    return ev  # type: ignore[no-any-return]


def _cancel_rejected(order_id: Any, reason: str) -> CancelRejected:
    ev = _TCancelRejected()
    ev.order_id = order_id
    ev.reason = reason
    ev.__class__ = CancelRejected
    return ev  # type: ignore[no-any-return]


def _self_check() -> None:
    samples: list[tuple[Any, Any]] = [
        (_accepted(1), OrderAccepted(1)),
        (_rejected(1, "r"), OrderRejected(1, "r")),
        (_filled(1, 2, 3, 4, 5, "maker"), OrderFilled(1, 2, 3, 4, 5, "maker")),
        (_canceled(1, 2, "c"), OrderCanceled(1, 2, "c")),
        (_replaced(1, 2, 3), OrderReplaced(1, 2, 3)),
        (_replaced(1, 2, 3, 4), OrderReplaced(1, 2, 3, 4)),
        (_cancel_rejected(1, "r"), CancelRejected(1, "r")),
    ]
    for fast, slow in samples:
        if type(fast) is not type(slow) or fast != slow or hash(fast) != hash(slow):
            raise ImportError(f"actors.exchange.book: fast construction broken for {slow!r}")


_self_check()

# Level / entry layouts (the hot code uses the literal indices):
#   level: [0 total_qty, 1 deque of entries, 2 queue length that triggers compaction, 3 price,
#           4 heap key, 5 heap, 6 levels dict, 7 is_buy]
#   entry: [0 leaves_qty (0 = dead), 1 order_id, 2 owner, 3 level, 4 stp, 5 post_only,
#           6 filled qty (cumulative, carried across replaces)]

_COMPACT_MIN = 32


def _reason(price: int | None, tif: str) -> str:
    """Cancel reason for the part of an order that may not rest."""
    return "fok" if tif == "FOK" else "market" if price is None else "ioc"


class OrderBook:
    """Price-time priority limit order book for one symbol. See the module docstring."""

    __slots__ = ("_ask_heap", "_ask_levels", "_bid_heap", "_bid_levels", "_orders", "_seen", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self._orders: dict[Any, list[Any]] = {}  # live (resting) order_id -> entry
        self._seen: set[Any] = set()  # every accepted order_id (ids are never reused)
        self._bid_heap: list[int] = []  # -price
        self._ask_heap: list[int] = []  # price
        self._bid_levels: dict[int, list[Any]] = {}  # -price -> level
        self._ask_levels: dict[int, list[Any]] = {}  # price -> level

    # -----------------------------------------------------------------------------------------
    # queries
    # -----------------------------------------------------------------------------------------

    def best_bid(self) -> tuple[int, int] | None:
        """(price, total open qty) of the best bid level, or None. O(1)."""
        heap = self._bid_heap
        if heap:
            lv = self._bid_levels[heap[0]]
            return (lv[3], lv[0])
        return None

    def best_ask(self) -> tuple[int, int] | None:
        """(price, total open qty) of the best ask level, or None. O(1)."""
        heap = self._ask_heap
        if heap:
            lv = self._ask_levels[heap[0]]
            return (lv[3], lv[0])
        return None

    def top(self) -> tuple[int | None, int, int | None, int]:
        """``(bid, bid_qty, ask, ask_qty)`` of the best levels (None and 0 for an empty side): what
        ``best_bid()`` and ``best_ask()`` say, as one tuple (the exchange's top of book). O(1)."""
        heap = self._bid_heap
        if heap:
            lv = self._bid_levels[heap[0]]
            bid, bid_qty = lv[3], lv[0]
        else:
            bid, bid_qty = None, 0
        heap = self._ask_heap
        if heap:
            lv = self._ask_levels[heap[0]]
            return bid, bid_qty, lv[3], lv[0]
        return bid, bid_qty, None, 0

    def depth(self, levels: int | None = None) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Aggregated (price, qty) levels: bids high->low, asks low->high; all if levels is None."""
        n = None if levels is None else max(int(levels), 0)
        return _side_depth(self._bid_heap, self._bid_levels, n), _side_depth(self._ask_heap, self._ask_levels, n)

    def open_order(self, order_id: Any) -> tuple[str, int, int, str] | None:
        """(side, price, leaves_qty, owner) of a live (resting) order, or None."""
        try:
            e = self._orders.get(order_id)
        except Exception:
            return None
        if e is None:
            return None
        lv = e[3]
        return ("B" if lv[7] else "S", lv[3], e[0], e[2])

    def __len__(self) -> int:
        """Number of live (resting) orders."""
        return len(self._orders)

    def orders(self, side: str) -> list[tuple[Any, int, int, str]]:
        """Live orders of one side (``"B"`` / ``"S"``) in price-time priority, best first, as
        ``(order_id, price, leaves_qty, owner)``. Read-only snapshot, O(n + L log L); used by
        the exchange for auctions and price-band sweeps (not on the per-order path)."""
        levels = self._bid_levels if side == "B" else self._ask_levels if side == "S" else {}
        out: list[tuple[Any, int, int, str]] = []
        for key in sorted(k for k, lv in levels.items() if lv[0]):
            lv = levels[key]
            px = lv[3]
            out.extend((e[1], px, e[0], e[2]) for e in lv[1] if e[0])
        return out

    def filled_qty(self, order_id: Any) -> int | None:
        """Cumulative filled quantity of a live (resting) order, or None."""
        try:
            e = self._orders.get(order_id)
        except Exception:
            return None
        return None if e is None else e[6]  # type: ignore[no-any-return]

    def add_filled(self, order_id: Any, qty: int) -> bool:
        """Count ``qty`` executed outside continuous matching (a call auction) in a live order's
        filled quantity; its open quantity is not touched. False if the order does not rest."""
        try:
            e = self._orders.get(order_id)
        except Exception:
            return False
        if e is None:
            return False
        e[6] += qty
        return True

    def known(self, order_id: Any) -> bool:
        """Whether ``order_id`` was ever accepted by this book (live or finished)."""
        try:
            return order_id in self._seen
        except Exception:
            return False

    # -----------------------------------------------------------------------------------------
    # submit
    # -----------------------------------------------------------------------------------------

    def submit(
        self,
        order_id: Any,
        side: str,
        qty: int,
        price: int | None = None,
        *,
        owner: str = "",
        tif: str = "DAY",
        post_only: bool = False,
        stp: str | None = None,
    ) -> list[Event]:
        """Submit a new order; returns its events. Never raises."""
        # Fast path: a plain, fully valid DAY limit order without STP / post-only and with a new
        # id. Anything else (every rejection included) goes through _submit_general, so the
        # validation order, and hence the reject reason, is the same whichever path is taken.
        seen = self._seen
        try:  # comparisons with hostile objects may raise: they take the general path
            fast = (
                tif == "DAY"
                and stp is None
                and post_only is False
                and price.__class__ is int
                and qty.__class__ is int
                and owner.__class__ is str
                and price > 0  # type: ignore[operator]
                and qty > 0
                and order_id is not None
                and order_id not in seen
            )
            if fast:
                if side == "B":
                    buy = True
                elif side == "S":
                    buy = False
                else:
                    fast = False
        except Exception:
            fast = False
        if fast:
            if buy:
                h = self._ask_heap
                if h and h[0] <= price:  # type: ignore[operator]
                    seen.add(order_id)
                    acc = _TAccepted()
                    acc.order_id = order_id
                    acc.__class__ = OrderAccepted
                    events: list[Any] = [acc]
                    self._take(order_id, True, qty, price, price, owner, None, "DAY", events)  # type: ignore[arg-type]
                    return events
                levels = self._bid_levels
                key = -price  # type: ignore[operator]
            else:
                h = self._bid_heap
                if h and h[0] <= -price:  # type: ignore[operator]
                    seen.add(order_id)
                    acc = _TAccepted()
                    acc.order_id = order_id
                    acc.__class__ = OrderAccepted
                    events = [acc]
                    self._take(order_id, False, qty, price, -price, owner, None, "DAY", events)  # type: ignore[arg-type, operator]
                    return events
                levels = self._ask_levels
                key = price  # type: ignore[assignment]
            seen.add(order_id)
            lv = levels.get(key)
            if lv is None:
                lv = self._new_level(buy, key, price)  # type: ignore[arg-type]
            lv[0] += qty
            e = [qty, order_id, owner, lv, None, False, 0]
            dq = lv[1]
            dq.append(e)
            if len(dq) > lv[2]:
                _compact(lv)
            self._orders[order_id] = e
            acc = _TAccepted()
            acc.order_id = order_id
            acc.__class__ = OrderAccepted
            return [acc]
        return self._submit_general(order_id, side, qty, price, owner, tif, post_only, stp)

    def _submit_general(
        self,
        order_id: Any,
        side: Any,
        qty: Any,
        price: Any,
        owner: Any,
        tif: Any,
        post_only: Any,
        stp: Any,
    ) -> list[Event]:
        """Full validation, then any kind of order."""
        seen = self._seen
        try:
            if order_id is None:
                return [_rejected(order_id, "invalid order id")]
            if order_id in seen:
                return [_rejected(order_id, "duplicate order id")]
        except Exception:
            return [_rejected(order_id, "invalid order id")]
        try:
            if side == "B":
                buy = True
            elif side == "S":
                buy = False
            else:
                return [_rejected(order_id, "invalid side")]
            if qty.__class__ is not int or qty <= 0:
                return [_rejected(order_id, "invalid qty")]
            if price is not None and (price.__class__ is not int or price <= 0):
                return [_rejected(order_id, "invalid price")]
            # normalise to the canonical strings (later comparisons cannot misbehave)
            if tif == "DAY":
                tif = "DAY"
            elif tif == "IOC":
                tif = "IOC"
            elif tif == "FOK":
                tif = "FOK"
            else:
                return [_rejected(order_id, "invalid tif")]
            if stp is None:
                pass
            elif stp == "cancel_resting":
                stp = "cancel_resting"
            elif stp == "cancel_incoming":
                stp = "cancel_incoming"
            else:
                return [_rejected(order_id, "invalid stp")]
        except Exception:
            return [_rejected(order_id, "invalid input")]
        if owner.__class__ is not str:
            return [_rejected(order_id, "invalid owner")]
        if post_only is not False:
            if post_only is not True:
                return [_rejected(order_id, "invalid post_only")]
            if price is None:
                return [_rejected(order_id, "post_only requires a limit price")]
            if tif != "DAY":
                return [_rejected(order_id, "post_only requires DAY")]

        if buy:
            oheap = self._ask_heap
            lim: float = _INF if price is None else price
        else:
            oheap = self._bid_heap
            lim = _INF if price is None else -price
        crosses = bool(oheap) and oheap[0] <= lim
        if crosses and post_only:
            return [_rejected(order_id, "post_only would cross")]
        seen.add(order_id)
        events: list[Any] = [_accepted(order_id)]
        if not crosses or (tif == "FOK" and not self._fok_fillable(buy, qty, lim, owner, stp)):
            if price is None or tif != "DAY":
                events.append(_canceled(order_id, qty, _reason(price, tif)))
            else:
                self._rest(order_id, buy, qty, price, owner, stp, post_only)
            return events
        self._take(order_id, buy, qty, price, lim, owner, stp, tif, events)
        return events

    def _new_level(self, buy: bool, key: int, price: int) -> list[Any]:
        if buy:
            heap = self._bid_heap
            levels = self._bid_levels
        else:
            heap = self._ask_heap
            levels = self._ask_levels
        lv = levels[key] = [0, deque(), _COMPACT_MIN, price, key, heap, levels, buy]
        heappush(heap, key)
        return lv

    def _rest(
        self, order_id: Any, buy: bool, qty: int, price: int, owner: str, stp: Any, post_only: bool, filled: int = 0
    ) -> None:
        key = -price if buy else price
        lv = (self._bid_levels if buy else self._ask_levels).get(key)
        if lv is None:
            lv = self._new_level(buy, key, price)
        lv[0] += qty
        e = [qty, order_id, owner, lv, stp, post_only, filled]
        dq = lv[1]
        dq.append(e)
        if len(dq) > lv[2]:
            _compact(lv)
        self._orders[order_id] = e

    def _fok_fillable(self, buy: bool, qty: int, lim: float, owner: str, stp: str | None) -> bool:
        levels = self._ask_levels if buy else self._bid_levels
        avail = 0
        stp_owner = owner if (stp is not None and owner) else None
        for k in sorted(k for k, lv in levels.items() if k <= lim and lv[0]):
            lv = levels[k]
            if stp_owner is None:
                avail += lv[0]
            else:
                for e in lv[1]:
                    q = e[0]
                    if q:
                        if e[2] == stp_owner:
                            if stp == "cancel_incoming":
                                return avail >= qty
                            continue
                        avail += q
                        if avail >= qty:
                            return True
            if avail >= qty:
                return True
        return False

    def _take(
        self,
        tid: Any,
        buy: bool,
        rem: int,
        price: int | None,
        lim: float,
        owner: str,
        stp: str | None,
        tif: str,
        events: list[Any],
        filled: int = 0,
    ) -> None:
        """Match an accepted incoming order (``rem`` open, limit key ``lim``, ``filled`` already
        filled before) against the opposite side, appending events; then rest or cancel the
        remainder. Keeps the heap-top invariant. The caller has added ``tid`` to ``_seen``."""
        filled += rem  # minus what is left once matching stops
        if buy:
            heap = self._ask_heap
            levels = self._ask_levels
        else:
            heap = self._bid_heap
            levels = self._bid_levels
        orders = self._orders
        append = events.append
        stp_owner = owner if (stp is not None and owner) else None
        stopped = False
        TF = _TFilled
        F = OrderFilled
        while heap:
            k = heap[0]
            lv = levels[k]
            if not lv[0]:
                heappop(heap)
                del levels[k]
                continue
            if stopped or not rem or k > lim:
                break
            dq = lv[1]
            px = lv[3]
            while True:
                e = dq[0]
                mq = e[0]
                if not mq:
                    dq.popleft()
                    continue
                mid = e[1]
                if stp_owner is not None and e[2] == stp_owner:
                    if stp == "cancel_incoming":
                        stopped = True
                        break
                    e[0] = 0
                    dq.popleft()
                    del orders[mid]
                    lv[0] -= mq
                    append(_canceled(mid, mq, "stp"))
                    if not lv[0]:
                        break
                    continue
                if mq <= rem:
                    rem -= mq
                    e[0] = 0
                    dq.popleft()
                    del orders[mid]
                    lv[0] -= mq
                    f = TF()
                    f.order_id = tid
                    f.counterparty_id = mid
                    f.price = px
                    f.qty = mq
                    f.leaves_qty = rem
                    f.liquidity = "taker"
                    f.__class__ = F
                    append(f)
                    f = TF()
                    f.order_id = mid
                    f.counterparty_id = tid
                    f.price = px
                    f.qty = mq
                    f.leaves_qty = 0
                    f.liquidity = "maker"
                    f.__class__ = F
                    append(f)
                    if not rem or not lv[0]:
                        break
                else:
                    left = mq - rem
                    e[0] = left
                    e[6] += rem
                    lv[0] -= rem
                    f = TF()
                    f.order_id = tid
                    f.counterparty_id = mid
                    f.price = px
                    f.qty = rem
                    f.leaves_qty = 0
                    f.liquidity = "taker"
                    f.__class__ = F
                    append(f)
                    f = TF()
                    f.order_id = mid
                    f.counterparty_id = tid
                    f.price = px
                    f.qty = rem
                    f.leaves_qty = left
                    f.liquidity = "maker"
                    f.__class__ = F
                    append(f)
                    rem = 0
                    break
        if rem:
            if stopped:
                append(_canceled(tid, rem, "stp"))
            elif price is None or tif != "DAY":
                append(_canceled(tid, rem, _reason(price, tif)))
            else:
                self._rest(tid, buy, rem, price, owner, stp, False, filled - rem)

    # -----------------------------------------------------------------------------------------
    # cancel / replace
    # -----------------------------------------------------------------------------------------

    def cancel(self, order_id: Any) -> list[Event]:
        """Cancel a live order; returns [OrderCanceled] or [CancelRejected]. Never raises."""
        try:
            e = self._orders.pop(order_id, None)
        except Exception:
            e = None
        if e is None:
            ev = _TCancelRejected()
            ev.order_id = order_id
            ev.reason = "unknown order"
            ev.__class__ = CancelRejected
            return [ev]
        q = e[0]
        e[0] = 0
        lv = e[3]
        t = lv[0] - q
        lv[0] = t
        if not t:
            lv[1].clear()
            heap = lv[5]
            if heap[0] == lv[4]:
                _pop_empty(heap, lv[6])
        ev = _TCanceled()
        ev.order_id = order_id
        ev.canceled_qty = q
        ev.reason = "canceled"
        ev.__class__ = OrderCanceled
        return [ev]

    def replace(
        self, order_id: Any, qty: int | None = None, price: int | None = None, *, total_qty: int | None = None
    ) -> list[Event]:
        """Change open qty (``qty``) or total qty (``total_qty``) and/or price of a live order.
        Never raises. See module docstring."""
        orders = self._orders
        try:
            e = orders.get(order_id)
        except Exception:
            e = None
        if e is None:
            return [_cancel_rejected(order_id, "unknown order")]
        if total_qty is not None:
            if qty is not None or total_qty.__class__ is not int or total_qty <= 0:
                return [_cancel_rejected(order_id, "invalid qty")]
        elif qty is not None and (qty.__class__ is not int or qty <= 0):
            return [_cancel_rejected(order_id, "invalid qty")]
        if price is not None and (price.__class__ is not int or price <= 0):
            return [_cancel_rejected(order_id, "invalid price")]
        if qty is None and price is None and total_qty is None:
            return [_cancel_rejected(order_id, "nothing to replace")]
        lv = e[3]
        old_px: int = lv[3]
        old_q: int = e[0]
        new_px: int = old_px if price is None else price
        cum: int | None = None
        if total_qty is None:
            new_q: int = old_q if qty is None else qty
        else:
            cum = e[6]
            new_q = total_qty - e[6]  # leaves = new OrderQty - CumQty, atomically with the fills
            if new_q <= 0:  # asked for no more than is filled: the order is done
                self._detach(order_id, e)
                return [_replaced(order_id, new_px, 0, cum)]
        if new_px == old_px:
            if new_q < old_q:  # keeps priority
                e[0] = new_q
                lv[0] -= old_q - new_q
            elif new_q > old_q:  # loses priority: the old entry dies, a new one joins the back
                e[0] = 0
                lv[0] += new_q - old_q
                ne = [new_q, order_id, e[2], lv, e[4], e[5], e[6]]
                dq = lv[1]
                dq.append(ne)
                if len(dq) > lv[2]:
                    _compact(lv)
                orders[order_id] = ne
            return [_replaced(order_id, new_px, new_q, cum)]

        buy: bool = lv[7]
        if buy:
            oheap = self._ask_heap
            lim = new_px
        else:
            oheap = self._bid_heap
            lim = -new_px
        crosses = bool(oheap) and oheap[0] <= lim
        if crosses and e[5]:
            return [_cancel_rejected(order_id, "post_only would cross")]
        owner, stp, post_only, filled = e[2], e[4], e[5], e[6]
        self._detach(order_id, e)  # its level may empty and leave the heap
        events: list[Any] = [_replaced(order_id, new_px, new_q, cum)]
        if crosses:
            self._take(order_id, buy, new_q, new_px, lim, owner, stp, "DAY", events, filled)
        else:
            self._rest(order_id, buy, new_q, new_px, owner, stp, post_only, filled)
        return events

    def _detach(self, order_id: Any, e: list[Any]) -> None:
        """Take a live order's entry out of the book (as a cancel does)."""
        del self._orders[order_id]
        q = e[0]
        e[0] = 0
        lv = e[3]
        t = lv[0] - q
        lv[0] = t
        if not t:
            lv[1].clear()
            heap = lv[5]
            if heap[0] == lv[4]:
                _pop_empty(heap, lv[6])


def _compact(lv: list[Any]) -> None:
    """Drop dead entries from a level's queue once it outgrows its threshold (amortised O(1):
    the next compaction needs at least as many appends as there are live entries now)."""
    dq = lv[1]
    live = [x for x in dq if x[0]]
    if len(live) < len(dq):
        dq.clear()
        dq.extend(live)
    lv[2] = max(_COMPACT_MIN, 2 * len(live))


def _pop_empty(heap: list[int], levels: dict[int, list[Any]]) -> None:
    """Pop empty levels off the heap top (restores the 'top is non-empty' invariant)."""
    while heap:
        k = heap[0]
        if levels[k][0]:
            return
        heappop(heap)
        del levels[k]


def _side_depth(heap: list[int], levels: dict[int, list[Any]], n: int | None) -> list[tuple[int, int]]:
    """The first ``n`` (all if None) non-empty levels of one side as (price, qty), best first.

    Keys are unique per side and sort best first (-price for bids, price for asks). Every live
    level's key is in the heap, so a non-empty heap top is the best level: the top of book
    (``n == 1``, what ``QueryBook`` asks for) needs no scan."""
    if n == 1 and heap:
        lv = levels[heap[0]]
        if lv[0]:
            return [(lv[3], lv[0])]
    keys = sorted([k for k, lv in levels.items() if lv[0]])
    if n is not None:
        keys = keys[:n]
    return [(levels[k][3], levels[k][0]) for k in keys]
