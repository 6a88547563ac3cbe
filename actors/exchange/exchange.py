"""The exchange actor: one straight path per order; every time-driven transition on a timer.

It owns one pure ``OrderBook`` per symbol (actors/exchange/book.py) and, unless
``safeguards=None``, one pure ``Safeguards`` state machine per symbol (actors/exchange/safeguards.py:
LULD bands and limit states, price collar, market-wide circuit breakers).

**Per order.** Every order message (``SubmitOrder``, ``CancelOrder``, ``ReplaceOrder``) takes the
same four steps, in this order, each a function of its own:

1. *admit* (``_admit_submit`` / ``_admit_cancel`` / ``_admit_replace``): the symbol exists, the
   order id is the sender's, the session is open; then the safeguards' pure checks -- halted?
   collar? band? a market order capped at the band it may not trade through? (on the common path
   two comparisons against the safeguards' precomputed ranges). Nothing changes state; a refusal
   is answered at once (``OrderRejected`` / ``CancelRejected``).
2. *book*: ``OrderBook.submit`` / ``cancel`` / ``replace`` match. While the symbol is halted the
   halt's queue stands in for the book (``_queue_for_auction``, ``_cancel_queued``): new orders
   wait for the reopening auction (actors/exchange/auction.py), nothing matches.
3. *publish* (``_publish``): the book's events go to the order's owner, one message per event, in
   order, and into the ``orders`` table; trades into ``trades`` and to trade subscribers; a changed
   top of book into ``quotes`` and to quote subscribers (actors/exchange/marketdata.py).
4. *safeguard update* (``_update``): each trade feeds the reference price (bands; a circuit
   breaker may halt), the new touch moves the aggressive-side collar, and when the bands moved or
   the touch reached a band the book is guarded (``_guard_book``: resting orders beyond the bands
   canceled, the limit state entered or left). Status changes are recorded and published
   (``_status``), and a timer is armed for each transition the new state has pending (``_arm``).

**Stop orders.** A ``SubmitOrder`` with ``stop_price`` waits in the symbol's ``StopBook``
(actors/exchange/stops.py; ``_submit_stop``, ``_cancel_stop``, ``_replace_stop``), out of the book
and of market data. Every print (``_trade``; the reopening auction's in ``_reopen``) is noted, and
after the order's four steps ``_run_stops`` elects the stops the prints reach -- prints in order,
each one's stops in time priority -- and enters each (``_enter_elected``) through the same admit
-> book -> publish -> update, so its prints may elect more (a cascade, iterative, at most one entry
per stop). Stops elected by the reopening print enter after the auction, not in it. See
docs/architecture.md, "Stop and stop-limit orders".

**Per clock.** No order handler looks at the clock beyond the session hours. Each transition that
comes with time is a timer of the exchange (``Wakeup`` tag ``(kind, symbol, time)``), armed for the
time it is due and dispatched by kind (``_timer_handlers``):

* ``limit_expiry`` -- a limit state that lasted 15 s becomes a trading pause;
* ``reopening`` -- a pause, an extension or a halt ends: the reopening auction runs (or, with its
  indicative price outside the auction collars, the pause is extended: a new ``reopening``);
* ``band_window`` -- a doubled-band window opens or closes (9:45; 3:35): the bands are recomputed
  and the book guarded; armed at the start for the first boundary, then each for the next;
* ``auction_info`` -- the indicative price / imbalance feed while halted (``SubscribeAuctionInfo``).

The safeguard timers have priority ``TIMER_PRIORITY`` (-1): a transition comes before every order
of its instant, as if the clock had moved first. A timer whose transition is no longer due (the
limit state was left, the halt extended) does nothing. A run where nothing triggers records the
same events as one without safeguards. Status changes go to ``SubscribeTradingStatus``
subscribers and into the ``halts`` table (created at its first row, so runs without a halt have
the same tables -- and digest -- as before).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from actors.commands import HaltTrading, SetIndexLevel
from actors.exchange.auction import AuctionOrder, indicative, uncross
from actors.exchange.book import OrderBook
from actors.exchange.marketdata import MarketDataPublisher, Top
from actors.exchange.safeguards import (
    BAND_WINDOW,
    BIG,
    LIMIT_EXPIRY,
    OPEN,
    REOPENING,
    SafeguardParams,
    Safeguards,
    StatusEvent,
)
from actors.exchange.stops import StopBook, StopOrder
from actors.messages import (
    ORDER_ID_SHIFT,
    AuctionImbalanceUpdated,
    BookSnapshot,
    CancelOrder,
    CancelRejected,
    LimitStateEntered,
    LimitStateExited,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    QueryBook,
    ReplaceOrder,
    SubmitOrder,
    SubscribeAuctionInfo,
    SubscribeMarketData,
    SubscribeTradingStatus,
    TradingHalted,
    owner_of,
)
from sim.actor import Actor, Wakeup, handles
from sim.clock import SECOND
from sim.record import Recorder, Table

ORDER_COLUMNS = ("time_ns", "order_id", "owner", "event", "side", "price", "qty", "leaves_qty", "detail")
TRADE_COLUMNS = ("time_ns", "symbol", "price", "qty", "maker_id", "taker_id", "maker", "taker", "aggressor_side")
HALT_COLUMNS = ("time_ns", "symbol", "event", "reason", "price")
AUCTION_INFO_COLUMNS = (
    "time_ns", "symbol", "indicative_price", "paired_qty", "imbalance_qty", "imbalance_side", "lower_collar",
    "upper_collar", "extensions", "reopen_ns",
)  # fmt: skip
AUCTION_INFO = "auction_info"  # timer kind of the indicative price / imbalance feed
TIMER_PRIORITY = -1  # safeguard timers come before every message of their instant

DEFAULT_SAFEGUARDS = SafeguardParams()
AUCTION_SIDE = "A"  # aggressor_side of auction prints (trades table and TradePrinted)
HALTED_REASON = "trading halted"

# what admission decided beyond "refused": the halt's queue, or the terms for the book
TO_AUCTION = "to auction"  # halted: the order is kept for the reopening auction
REPRICED = "repriced"  # a limit beyond the band, repriced to it (outside_band="reprice")
MARKET = "market"  # a market order, an IOC limit at the band / collar it may not trade through
STOPPED = "stopped"  # a limit order capped at the stop logic's floor / cap (it would trade through)
STOPPED_MARKET = "stopped market"  # a market order, an IOC limit at the stop logic's floor / cap
Terms = tuple[Any, str, str]  # (price, tif, REPRICED | MARKET | STOPPED | STOPPED_MARKET | "") for the book


class Exchange(Actor):
    """A continuous limit-order-book exchange for one or more symbols (see the module docstring)."""

    placement_role: ClassVar[str] = "hub"  # the exchange side: one process with the exchange

    def __init__(
        self,
        name: str,
        symbols: list[str],
        recorder: Recorder,
        open_ns: int,
        close_ns: int,
        location: str = "exchange",
        safeguards: SafeguardParams | None = DEFAULT_SAFEGUARDS,
        reference_price: int | dict[str, int] | None = None,
    ) -> None:
        """``reference_price`` (ticks; one for all symbols or per symbol) is the safeguards'
        reference until the first trade, and the circuit breakers' previous close unless
        ``safeguards.previous_close`` is set; None: no bands or collar before the first trade."""
        super().__init__(name, location)
        self.books = {s: OrderBook(s) for s in symbols}
        self.open_ns = open_ns
        self.close_ns = close_ns
        self.recorder = recorder
        self.orders = recorder.table("orders", ORDER_COLUMNS)
        self.trades = recorder.table("trades", TRADE_COLUMNS)
        self.marketdata = MarketDataPublisher(self, recorder)
        self._sides: dict[int, str] = {}
        self._names: list[str] = []
        self.last_price: dict[str, int | None] = {s: None for s in symbols}
        self._event_rows: dict[type, Callable[[Any, int], None]] = {
            OrderAccepted: self._row_accepted,
            OrderRejected: self._row_rejected,
            OrderFilled: self._row_filled,
            OrderCanceled: self._row_canceled,
            OrderReplaced: self._row_replaced,
            CancelRejected: self._row_cancel_rejected,
        }
        self.guards: dict[str, Safeguards] = {}
        if safeguards is not None:
            for s in symbols:
                ref = reference_price.get(s) if isinstance(reference_price, dict) else reference_price
                self.guards[s] = Safeguards(safeguards, s, open_ns, close_ns, ref)
        self._auctions: dict[str, dict[int, AuctionOrder]] = {}  # symbol -> orders, while halted
        self._auction_seq = 0
        # timers: kind -> handler of (symbol); the tags (kind, symbol, time) armed and not yet fired
        self._timer_handlers: dict[str, Callable[[str], None]] = {
            LIMIT_EXPIRY: self._on_limit_expiry,
            REOPENING: self._on_reopening,
            BAND_WINDOW: self._on_band_window,
            AUCTION_INFO: self._auction_info_tick,
        }
        self._armed: set[tuple[str, str, int]] = set()
        self._halts: Table | None = None
        # indicative price / imbalance feed during halts (SubscribeAuctionInfo), recorded when sent
        self._info_subs: dict[str, list[int]] = {}
        self._info_last: dict[str, tuple[Any, ...]] = {}
        self._auction_info: Table | None = None
        # stop and stop-limit orders waiting for their election, per symbol (created at the first)
        self._stops: dict[str, StopBook] = {}

    def on_start(self) -> None:
        """Learn the actors' names; bring the bands to the start time and arm the first
        band-window timer of each symbol."""
        assert self.kernel is not None
        self._names = self.kernel.names()
        start = max(self.now, self.open_ns)
        for g in self.guards.values():
            g.update_bands(start)  # a run that starts mid-session (the constructor assumed the open)
            self._arm(g)

    # -- order entry: admit -> book -> publish -> safeguard update ----------------------------------
    @handles(SubmitOrder)
    def on_submit(self, msg: SubmitOrder, src: int) -> None:
        """A new order: admit, book (or the halt's queue), publish, safeguard update; then the
        stop orders its trades elected (``_run_stops``). A stop order waits in the stop book."""
        if msg.stop_price is not None:
            return self._submit_stop(msg, src)
        book = self.books.get(msg.symbol)
        g = self.guards.get(msg.symbol)
        terms = self._admit_submit(book, g, msg, src)
        if isinstance(terms, str):
            if terms is TO_AUCTION:
                assert book is not None and g is not None
                return self._queue_for_auction(book, g, msg, src)
            return self._refuse(msg.order_id, src, terms)
        assert book is not None
        price, tif, mark = terms
        owner = self._names[src]
        events = book.submit(
            msg.order_id, msg.side, msg.qty, price, owner=owner, tif=tif, post_only=msg.post_only, stp=msg.stp
        )
        self._record_submit(msg, owner, events, mark)
        top = self._publish(book, events, msg.side)
        if g is not None:
            self._update(book, g, events, top)
            if mark is STOPPED or mark is STOPPED_MARKET:
                self._stop_logic(g, msg, price, events)
        sb = self._stops.get(msg.symbol)
        if sb is not None and sb.prints:
            self._run_stops(book, g, sb)

    @handles(CancelOrder)
    def on_cancel(self, msg: CancelOrder, src: int) -> None:
        """A cancel: admit, book (or the halt's queue), publish, safeguard update."""
        book = self.books.get(msg.symbol)
        oid = msg.order_id
        reason = self._admit_cancel(book, oid, src)
        if reason is not None:
            return self._refuse(oid, src, reason, cancel=True)
        assert book is not None
        queue = self._auctions.get(msg.symbol)
        if queue is not None and oid in queue:
            return self._cancel_queued(queue, oid, src)
        sb = self._stops.get(msg.symbol)
        if sb is not None and oid in sb:
            return self._cancel_stop(sb, oid, src)
        events = book.cancel(oid)
        top = self._publish(book, events, None)
        g = self.guards.get(msg.symbol)
        if g is not None:
            self._update(book, g, events, top)

    @handles(ReplaceOrder)
    def on_replace(self, msg: ReplaceOrder, src: int) -> None:
        """A replace: admit, book, publish, safeguard update."""
        book = self.books.get(msg.symbol)
        g = self.guards.get(msg.symbol)
        side = self._sides.get(msg.order_id)
        reason = self._admit_replace(book, g, msg, src, side)
        if reason is not None:
            return self._refuse(msg.order_id, src, reason, cancel=True)
        assert book is not None
        sb = self._stops.get(msg.symbol)
        if sb is not None and msg.order_id in sb:
            return self._replace_stop(sb, msg, src)
        events = book.replace(msg.order_id, qty=msg.qty, price=msg.price, total_qty=msg.total_qty)
        top = self._publish(book, events, side)
        if g is not None:
            self._update(book, g, events, top)
        if sb is not None and sb.prints:
            self._run_stops(book, g, sb)

    # -- step 1: admit (pure checks) ----------------------------------------------------------------
    def _entry_refusal(self, book: OrderBook | None, oid: Any, src: int, session: bool) -> str | None:
        """Why the exchange cannot take this order message at all: an unknown symbol, an order id
        that is not the sender's, and (``session``) the market closed; None: it can."""
        if book is None:
            return "unknown symbol"
        if not isinstance(oid, int) or oid >> ORDER_ID_SHIFT != src:  # owner_of, inlined
            return "order id not owned by sender"
        if session and not (self.open_ns <= self.kernel.now < self.close_ns):  # type: ignore[union-attr]
            return "market closed"
        return None

    def _admit_submit(self, book: OrderBook | None, g: Safeguards | None, msg: SubmitOrder, src: int) -> Terms | str:
        """A refusal reason, ``TO_AUCTION`` (halted), or the terms for the book. A limit price
        inside the safeguards' fast-path range needs nothing more; anything else (market orders,
        bad input, halts, prices near the collar or a band) goes through ``_screen``."""
        reason = self._entry_refusal(book, msg.order_id, src, True)
        if reason is not None:
            return reason
        price = msg.price
        if g is None or (
            type(price) is int
            and ((g.buy_lo <= price <= g.buy_hi) if msg.side == "B" else (g.sell_lo <= price <= g.sell_hi))
        ):
            return price, msg.tif, ""
        return _screen(g, msg, self.now)

    def _admit_cancel(self, book: OrderBook | None, oid: Any, src: int) -> str | None:
        """A cancel is always allowed for the order's owner, halted or not."""
        return self._entry_refusal(book, oid, src, False)

    def _admit_replace(
        self, book: OrderBook | None, g: Safeguards | None, msg: ReplaceOrder, src: int, side: str | None
    ) -> str | None:
        """Refusal reason of a replace: entry checks, then halted (refused), then a new price
        outside the fast-path range is checked against the collar and the bands (the book
        answers for orders it does not hold and for bad input)."""
        reason = self._entry_refusal(book, msg.order_id, src, True)
        if reason is not None or g is None:
            return reason
        if g.halted:
            return HALTED_REASON
        price = msg.price
        if (
            type(price) is int
            and ((price < g.buy_lo or price > g.buy_hi) if side == "B" else (price < g.sell_lo or price > g.sell_hi))
            and price > 0
            and book.open_order(msg.order_id) is not None  # type: ignore[union-attr]
        ):
            return g.check_replace(side, price, self.now)
        return None

    def _refuse(self, order_id: int, src: int, reason: str, cancel: bool = False) -> None:
        event: Any = CancelRejected(order_id, reason) if cancel else OrderRejected(order_id, reason)
        self._emit(event, src, order_id)

    # -- step 2 while halted: the reopening auction's queue stands in for the book ---------------------
    def _queue_for_auction(
        self, book: OrderBook, g: Safeguards, msg: SubmitOrder, src: int, elected: bool = False
    ) -> None:
        """A new order while trading is halted: validated and kept for the reopening auction.
        ``elected``: a stop order elected by a trade that halted the symbol (accepted already:
        no second ``OrderAccepted``; a refusal cancels it)."""
        oid, price, qty = msg.order_id, msg.price, msg.qty
        queue = self._auctions.setdefault(msg.symbol, {})
        reason = _halt_refusal(queue, book, g, msg)
        if reason is not None:
            if elected:
                return self._emit(OrderCanceled(oid, qty, reason), src, oid)
            return self._refuse(oid, src, reason)
        owner = self._names[src]
        self._auction_seq += 1
        queue[oid] = AuctionOrder(oid, msg.side, price, qty, self._auction_seq, owner, False, msg.post_only, msg.stp)
        self._sides[oid] = msg.side
        if elected:
            return None
        detail = msg.tif + ("/post_only" if msg.post_only else "") + "/auction"
        self.orders.append((self.now, oid, owner, "submit", msg.side, price, qty, qty, detail))
        self._emit(OrderAccepted(oid), src, oid)

    def _cancel_queued(self, queue: dict[int, AuctionOrder], oid: int, src: int) -> None:
        order = queue.pop(oid)
        self._emit(OrderCanceled(order.order_id, order.qty, "canceled"), src, order.order_id)

    # -- stop and stop-limit orders: the stop book, election by trades, entry one after another -------
    def _submit_stop(self, msg: SubmitOrder, src: int) -> None:
        """A new stop / stop-limit order: validated and kept in the symbol's stop book (not in the
        order book, not in market data) until a trade elects it; ``OrderAccepted`` now."""
        oid, symbol = msg.order_id, msg.symbol
        book = self.books.get(symbol)
        reason = self._entry_refusal(book, oid, src, True)
        if reason is not None:
            return self._refuse(oid, src, reason)
        assert book is not None
        sb = self._stops.get(symbol)
        if sb is None:
            sb = self._stops[symbol] = StopBook(symbol)
        reason = _stop_refusal(book, sb, self._auctions.get(symbol), self.last_price[symbol], msg)
        if reason is not None:
            return self._refuse(oid, src, reason)
        owner = self._names[src]
        stop = msg.stop_price
        assert stop is not None
        sb.add(StopOrder(oid, msg.side, msg.qty, stop, msg.price, msg.tif, msg.stp, owner))
        self._sides[oid] = msg.side
        kind = "stop" if msg.price is None else "stop_limit"
        detail = f"{msg.tif}/{kind} {stop}"
        self.orders.append((self.now, oid, owner, "submit", msg.side, msg.price, msg.qty, msg.qty, detail))
        self._emit(OrderAccepted(oid), src, oid)

    def _cancel_stop(self, sb: StopBook, oid: int, src: int) -> None:
        order = sb.remove(oid)
        assert order is not None
        self._emit(OrderCanceled(oid, order.qty, "canceled"), src, oid)

    def _replace_stop(self, sb: StopBook, msg: ReplaceOrder, src: int) -> None:
        """A replace of a resting (unelected) stop: new quantity (``qty`` or ``total_qty``: nothing
        has filled), stop price, limit price (a stop-limit's only: a stop stays a stop). Time
        priority as in the order book: kept by a size decrease only."""
        oid = msg.order_id
        order = sb.get(oid)
        assert order is not None
        reason = _stop_replace_refusal(order, msg, self.last_price[sb.symbol])
        if reason is not None:
            return self._refuse(oid, src, reason, cancel=True)
        qty = msg.total_qty if msg.total_qty is not None else msg.qty if msg.qty is not None else order.qty
        stop = order.stop_price if msg.stop_price is None else msg.stop_price
        price = order.price if msg.price is None else msg.price
        sb.replace(oid, qty, stop, price)
        cum = 0 if msg.total_qty is not None else None
        self._emit(OrderReplaced(oid, price, qty, cum, stop), src, oid)

    def _run_stops(self, book: OrderBook, g: Safeguards | None, sb: StopBook) -> None:
        """The stop orders the pending prints elect enter the book one after another, each through
        admit -> book -> publish -> safeguard update; the prints of each may elect more (a
        cascade), appended behind. Prints are taken in order, and the orders one print elects in
        time priority. Iterative, and bounded: every stop order is elected at most once and none
        can arrive meanwhile, so there are at most ``len(sb)`` entries."""
        elected: deque[tuple[StopOrder, int]] = deque()
        while True:
            if sb.prints:
                prints, sb.prints = sb.prints, []
                for px in prints:
                    elected.extend((order, px) for order in sb.elect(px))
            if not elected:
                return
            order, px = elected.popleft()
            self._enter_elected(book, g, order, px)

    def _enter_elected(self, book: OrderBook, g: Safeguards | None, order: StopOrder, px: int) -> None:
        """An elected stop enters as a market order (a stop-limit as a limit order at its limit):
        the same admission as a new order (bands, collar, a market order capped at the band; while
        halted the reopening auction's queue), then book, publish, update. Its owner had its
        ``OrderAccepted`` at entry; a refusal now cancels it (``OrderCanceled`` with the reason)."""
        oid, side, qty = order.order_id, order.side, order.qty
        src = owner_of(oid)
        detail = f"stop {order.stop_price}"
        self.orders.append((self.now, oid, order.owner, "triggered", side, px, qty, qty, detail))
        msg = SubmitOrder(oid, book.symbol, side, qty, order.price, order.tif, False, order.stp)
        terms = self._admit_submit(book, g, msg, src)
        if isinstance(terms, str):
            if terms is TO_AUCTION:
                assert g is not None
                return self._queue_for_auction(book, g, msg, src, elected=True)
            return self._emit(OrderCanceled(oid, qty, terms), src, oid)
        price, tif, mark = terms
        events = book.submit(oid, side, qty, price, owner=order.owner, tif=tif, stp=order.stp)
        first = events[0] if events else None
        if first.__class__ is OrderRejected:  # cannot happen (checked at entry): cancel, not reject
            events = [OrderCanceled(oid, qty, first.reason)]  # type: ignore[union-attr]
        elif first.__class__ is OrderAccepted:
            del events[0]
            if mark is MARKET or mark is STOPPED_MARKET:
                _market_rest(events, oid)
        top = self._publish(book, events, side)
        if g is not None:
            self._update(book, g, events, top)
            if mark is STOPPED or mark is STOPPED_MARKET:
                self._stop_logic(g, msg, price, events)

    # -- market data requests ---------------------------------------------------------------------
    @handles(SubscribeMarketData)
    def on_subscribe(self, msg: SubscribeMarketData, src: int) -> None:
        self.marketdata.subscribe(msg.symbol, src, msg.trades, msg.quotes, msg.depth)
        book = self.books.get(msg.symbol)
        if msg.depth is not None and book is not None:
            self.marketdata.depth(book)  # the current levels at once: the subscriber's starting point

    @handles(SubscribeTradingStatus)
    def on_subscribe_status(self, msg: SubscribeTradingStatus, src: int) -> None:
        self.marketdata.subscribe_status(msg.symbol, src, msg.subscribe)

    @handles(QueryBook)
    def on_query(self, msg: QueryBook, src: int) -> None:
        book = self.books.get(msg.symbol)
        if book is None:
            self.send(src, BookSnapshot(msg.symbol, (), (), None, self.now))
            return
        bids, asks = book.depth(max(1, msg.levels))
        now = self.kernel.now  # type: ignore[union-attr]
        self.send(src, BookSnapshot(msg.symbol, tuple(bids), tuple(asks), self.last_price[msg.symbol], now))

    # -- step 3: publish ------------------------------------------------------------------------
    def _record_submit(self, msg: SubmitOrder, owner: str, events: list[Any], mark: str) -> None:
        """The ``submit`` row of an order the book accepted (before its events' rows); a market
        order's unfilled rest is canceled with reason ``"market"`` (the book says ``"ioc"``)."""
        if not events or events[0].__class__ is not OrderAccepted:
            return
        oid = msg.order_id
        self._sides[oid] = msg.side
        detail = msg.tif + ("/post_only" if msg.post_only else "")
        if mark is REPRICED:
            detail += "/repriced"
        elif mark is STOPPED or mark is STOPPED_MARKET:
            detail += "/stop_logic"
        self.orders.append((self.now, oid, owner, "submit", msg.side, msg.price, msg.qty, msg.qty, detail))
        if mark is MARKET or mark is STOPPED_MARKET:
            _market_rest(events, oid)

    def _publish(self, book: OrderBook, events: list[Any], aggressor_side: str | None) -> Top | None:
        """Each event to its order's owner and into ``orders``; each trade into ``trades`` and to
        trade subscribers; then the top of book (``quotes``). Returns the new top, or None when
        it did not change."""
        symbol = book.symbol
        rows = self._event_rows
        send = self.send
        for event in events:
            oid = event.order_id
            send(oid >> ORDER_ID_SHIFT, event)  # to owner_of(oid)
            rows[event.__class__](event, oid)
            if event.__class__ is OrderFilled and event.liquidity == "taker":
                self._trade(symbol, event, aggressor_side or self._sides.get(oid, "?"))
        return self.marketdata.top_of_book(book)

    def _emit(self, event: Any, dst: int, oid: int) -> None:
        self.send(dst, event)
        self._event_rows[event.__class__](event, oid)

    def _trade(self, symbol: str, fill: OrderFilled, aggressor_side: str) -> None:
        names = self._names
        maker_id, taker_id = fill.counterparty_id, fill.order_id
        self.trades.append(
            (
                self.now,
                symbol,
                fill.price,
                fill.qty,
                maker_id,
                taker_id,
                names[owner_of(maker_id)],
                names[owner_of(taker_id)],
                aggressor_side,
            )
        )
        self.last_price[symbol] = fill.price
        self.marketdata.trade(symbol, fill.price, fill.qty, aggressor_side)
        sb = self._stops.get(symbol)
        if sb:  # a print the symbol's stop orders have to see (``_run_stops``)
            sb.prints.append(fill.price)

    def _stop_logic(self, g: Safeguards, msg: SubmitOrder, stop: int, events: list[Any]) -> None:
        """An order capped at the stop logic's ``stop`` price, after its step 4: with quantity left
        it may pause the symbol (``Safeguards.stop_logic_pause``: the reserved state)."""
        oid = msg.order_id
        if sum(e.qty for e in events if e.__class__ is OrderFilled and e.order_id == oid) >= msg.qty:
            return
        halted = g.stop_logic_pause(msg.side, msg.price, stop, self.now)
        if halted is not None:
            self._status(g, [halted])

    # -- step 4: safeguard update -----------------------------------------------------------------
    def _update(self, book: OrderBook, g: Safeguards, events: list[Any], top: Top | None) -> None:
        """The safeguards learn what the order did: each trade (reference price and bands; a
        circuit breaker may halt), then the new touch (aggressive-side collar); the book is
        guarded when the bands moved, the touch reached a band or a limit state is on."""
        for event in events:
            if event.__class__ is OrderFilled and event.liquidity == "taker":
                status = g.on_trade(event.price, self.now)
                if status:
                    self._status(g, status, event.price)
        if top is not None:
            bid, ask = top[0], top[2]
            g.on_touch(bid, ask)
            if (
                (bid is not None and bid >= g.upper)
                or (ask is not None and ask <= g.lower)
                or g.state is not OPEN
                or g.bands_changed
            ):
                self._guard_book(book, g)
        elif g.bands_changed:
            self._guard_book(book, g)

    def _guard_book(self, book: OrderBook, g: Safeguards) -> None:
        """After a book or band change: cancel resting orders the bands no longer allow (so no
        trade can print outside them), then enter / leave the limit state."""
        if g.halted:
            return
        now = self.now
        if g.bands_changed:
            g.bands_changed = False
            swept = False
            for side, beyond in (("B", lambda px: px > g.upper), ("S", lambda px: px < g.lower)):
                best = book.best_bid() if side == "B" else book.best_ask()
                if best is None or not beyond(best[0]):
                    continue
                for oid, px, _leaves, _owner in book.orders(side):
                    if not beyond(px):
                        break
                    for ev in book.cancel(oid):
                        if ev.__class__ is OrderCanceled:
                            ev = OrderCanceled(oid, ev.canceled_qty, "price band")
                        self.send(owner_of(oid), ev)
                        self._event_rows[ev.__class__](ev, oid)
                        swept = True
            if swept:
                top = self.marketdata.top_of_book(book)
                if top is not None:
                    g.on_touch(top[0], top[2])
        bid, ask = book.best_bid(), book.best_ask()
        events = g.on_top(bid[0] if bid else None, ask[0] if ask else None, now)
        if events:
            self._status(g, events)

    def _status(self, g: Safeguards, events: Sequence[StatusEvent], price: int | None = None) -> None:
        """Record and publish status events (``price``: the trade that caused them, for the
        ``halts`` row; default the last price); spread a circuit-breaker halt market-wide; arm
        the timers the new states need."""
        for ev in events:
            self._record_status(ev, price)
            self.marketdata.status(ev.symbol, ev)
            if isinstance(ev, TradingHalted) and ev.reason.startswith("mwcb"):
                for other in self.guards.values():
                    if other is not g:
                        halted = other.halt(self.now, ev.reason, ev.resume_ns)
                        self._record_status(halted)
                        self.marketdata.status(other.symbol, halted)
                        self._arm(other)
        self._arm(g)

    def _record_status(self, ev: StatusEvent, price: int | None = None) -> None:
        sym = ev.symbol
        row: tuple[int, str, str, str, int | None]
        if isinstance(ev, LimitStateEntered):
            row = (ev.time_ns, sym, "limit_state_entered", ev.band, ev.price)
        elif isinstance(ev, LimitStateExited):
            row = (ev.time_ns, sym, "limit_state_exited", "", None)
        elif isinstance(ev, TradingHalted):
            row = (ev.time_ns, sym, "halted", ev.reason, self.last_price.get(sym) if price is None else price)
        else:
            reason = "auction" if ev.auction_qty else "auction: no cross"
            row = (ev.time_ns, sym, "resumed", reason, ev.auction_price)
        self._halt_row(row)

    def _halt_row(self, row: tuple[Any, ...]) -> None:
        if self._halts is None:
            self._halts = self.recorder.table("halts", HALT_COLUMNS)
        self._halts.append(row)

    # -- commands from the scenario -----------------------------------------------------------------
    @handles(HaltTrading)
    def on_halt_command(self, msg: HaltTrading, src: int) -> None:
        """A regulatory halt ordered by the scenario: halt now, reopen by auction after it."""
        g = self.guards.get(msg.symbol)
        if g is None:
            return
        resume = self.now + round(msg.duration_s * SECOND)
        self._status(g, [g.halt(self.now, msg.reason, resume)])

    @handles(SetIndexLevel)
    def on_index_level(self, msg: SetIndexLevel, src: int) -> None:
        """The market index moved (a scenario's ``set_index``): a fall to a breaker level trips the
        market-wide circuit breaker (``Safeguards.on_index``), which halts every symbol. The levels
        used up today are the market's, so every symbol's safeguards learn them."""
        guards = list(self.guards.values())
        if not guards:
            return
        first = guards[0]
        events = first.on_index(msg.change_bp, self.now)
        for other in guards[1:]:
            other.mwcb_triggered |= first.mwcb_triggered
        if events:
            self._status(first, events)  # spreads the halt to every other symbol

    # -- timers: one per time-driven transition ---------------------------------------------------------
    @handles(Wakeup)
    def on_wakeup(self, msg: Wakeup, src: int) -> None:
        """A timer ``(kind, symbol, time)`` fired: run its kind's handler for the symbol."""
        self._armed.discard(msg.tag)
        kind, symbol, _ = msg.tag
        self._timer_handlers[kind](symbol)

    def _arm(self, g: Safeguards) -> None:
        """A timer for each transition ``g`` has pending (``Safeguards.timers``), once per
        (kind, time); the auction-info feed while halted and subscribed."""
        symbol = g.symbol
        if g.halted and self._info_subs.get(symbol):
            self._arm_info(symbol)
        for kind, t in g.timers(self.now):
            tag = (kind, symbol, t)
            if tag not in self._armed:
                self._armed.add(tag)
                self.wake_at(t, tag, TIMER_PRIORITY)

    def _on_limit_expiry(self, symbol: str) -> None:
        """A limit state's 15 s are up: trading pause (nothing when the state was left)."""
        g = self.guards[symbol]
        events = g.expire_limit_state(self.now)
        if events:
            self._status(g, events)

    def _on_reopening(self, symbol: str) -> None:
        """A pause or halt ends: the reopening auction (nothing when the halt was extended)."""
        g = self.guards[symbol]
        if g.end_halt(self.now):
            self._reopen(g)
        self._arm(g)

    def _on_band_window(self, symbol: str) -> None:
        """A doubled-band window opens or closes: new bands, the book guarded against them; the
        next window's timer."""
        g = self.guards[symbol]
        if g.update_bands(self.now) and not g.halted:
            self._guard_book(self.books[symbol], g)
        self._arm(g)

    # -- the reopening auction --------------------------------------------------------------------
    def _reopen(self, g: Safeguards) -> None:
        """Reopening auction: uncross the book's resting orders together with the orders
        collected during the halt at one price, then resume continuous trading. With the
        indicative price outside the auction collars the pause is extended instead."""
        symbol = g.symbol
        book = self.books[symbol]
        queue = self._auctions.get(symbol, {})
        orders = self._auction_orders(book, queue)
        reference = g.reference if g.reference is not None else self.last_price[symbol]
        ind = indicative(orders, reference)
        collar = g.auction_collar
        if collar is not None and g.extend_auction(self.now, ind.price, ind.paired):
            reason = f"indicative {ind.price} outside collars {collar[1]}-{collar[2]}"
            self._halt_row((self.now, symbol, "extended", reason, ind.price))
            return None
        self._auctions.pop(symbol, None)
        result = uncross(orders, reference)
        names = self._names
        rows = self._event_rows
        filled: dict[int, int] = {}  # order id -> qty executed in the auction
        for ev in result.fills:
            self.send(owner_of(ev.order_id), ev)
            rows[OrderFilled](ev, ev.order_id)
            filled[ev.order_id] = filled.get(ev.order_id, 0) + ev.qty
        for buy_id, sell_id, qty in result.matches:
            self.trades.append(
                (self.now, symbol, result.price, qty, sell_id, buy_id, names[owner_of(sell_id)],
                 names[owner_of(buy_id)], AUCTION_SIDE)
            )  # fmt: skip
        later = self._settle_auction(book, orders, queue, filled)
        sb = self._stops.get(symbol)
        if result.qty and result.price is not None:
            self.last_price[symbol] = result.price
            for _, _, qty in result.matches:
                self.marketdata.trade(symbol, result.price, qty, AUCTION_SIDE)
            if sb:  # the reopening print elects stops; they enter after the auction (_run_stops)
                sb.prints.append(result.price)
        self._status(g, g.resume(self.now, result.price, result.qty))
        top = self._publish(book, later, None)
        self._update(book, g, later, top)
        if sb is not None and sb.prints:
            self._run_stops(book, g, sb)

    def _settle_auction(
        self, book: OrderBook, orders: list[AuctionOrder], queue: dict[int, AuctionOrder], filled: dict[int, int]
    ) -> list[Any]:
        """Bring the book in line with the auction (book events are not sent), then let what is
        left of the halt's orders join it in time order; returns their events to publish."""
        for o in orders:
            if o.in_book and o.qty != book.open_order(o.order_id)[2]:  # type: ignore[index]
                if o.qty:
                    book.replace(o.order_id, qty=o.qty)
                else:
                    book.cancel(o.order_id)
        later: list[Any] = []
        for o in queue.values():
            if not o.qty:
                continue
            if o.price is None:
                later.append(OrderCanceled(o.order_id, o.qty, "market"))
                continue
            events = book.submit(
                o.order_id, o.side, o.qty, o.price, owner=o.owner, tif="DAY", post_only=o.post_only, stp=o.stp
            )
            later.extend(ev for ev in events if ev.__class__ is not OrderAccepted)
        for oid, qty in filled.items():  # resting orders keep their filled qty (ReplaceOrder.total_qty)
            book.add_filled(oid, qty)
        return later

    def _auction_orders(self, book: OrderBook, queue: dict[int, AuctionOrder]) -> list[AuctionOrder]:
        """The book's resting orders (older than every order of the halt) and the halt's orders."""
        orders: list[AuctionOrder] = []
        seq = -len(book)
        for side in ("B", "S"):
            for oid, px, leaves, owner in book.orders(side):
                orders.append(AuctionOrder(oid, side, px, leaves, seq, owner, True))
                seq += 1
        orders.extend(queue.values())
        return orders

    # -- indicative price and imbalance during a halt ------------------------------------------
    @handles(SubscribeAuctionInfo)
    def on_subscribe_auction_info(self, msg: SubscribeAuctionInfo, src: int) -> None:
        subs = self._info_subs.setdefault(msg.symbol, [])
        if msg.subscribe and src not in subs:
            subs.append(src)
        elif not msg.subscribe and src in subs:
            subs.remove(src)
        g = self.guards.get(msg.symbol)
        if g is not None and g.halted and subs:
            self._arm_info(msg.symbol)

    def _arm_info(self, symbol: str) -> None:
        tag = (AUCTION_INFO, symbol, 0)
        if tag not in self._armed:
            self._armed.add(tag)
            interval = self.guards[symbol].params.auction_info_interval_s
            self.wake_in(round(interval * SECOND), tag)

    def _auction_info_tick(self, symbol: str) -> None:
        """While ``symbol`` is halted: publish what its reopening auction would do now, when that
        changed since the last publication (and record it in ``auction_info``)."""
        g = self.guards[symbol]
        subs = self._info_subs.get(symbol)
        if not g.halted or not subs:
            self._info_last.pop(symbol, None)
            return
        reference = g.reference if g.reference is not None else self.last_price[symbol]
        ind = indicative(self._auction_orders(self.books[symbol], self._auctions.get(symbol, {})), reference)
        collar = g.auction_collar
        body = (
            ind.price,
            ind.paired,
            abs(ind.imbalance),
            ind.side,
            None if collar is None else collar[1],
            None if collar is None else collar[2],
            g.extensions,
            None if g.resume_at == BIG else g.resume_at,
        )
        if self._info_last.get(symbol) != body:
            self._info_last[symbol] = body
            if self._auction_info is None:
                self._auction_info = self.recorder.table("auction_info", AUCTION_INFO_COLUMNS)
            self._auction_info.append((self.now, symbol, *body))
            msg = AuctionImbalanceUpdated(symbol, *body, self.now)
            for dst in subs:
                self.send(dst, msg)
        self._arm_info(symbol)

    # -- order log rows -------------------------------------------------------------------------
    def _owner_name(self, oid: int) -> str:
        owner = owner_of(oid) if isinstance(oid, int) and oid >= 0 else -1
        return self._names[owner] if 0 <= owner < len(self._names) else "?"

    def _row(self, oid: int, event: str, price: Any, qty: int, leaves: int, detail: str) -> None:
        names = self._names  # the owner's name as _owner_name gives it, inlined (a row per event)
        owner = oid >> ORDER_ID_SHIFT if isinstance(oid, int) and oid >= 0 else -1
        self.orders.append(
            (
                self.kernel.now,  # type: ignore[union-attr]
                oid,
                names[owner] if 0 <= owner < len(names) else "?",
                event,
                self._sides.get(oid, ""),
                price,
                qty,
                leaves,
                detail,
            )
        )

    def _row_accepted(self, e: OrderAccepted, oid: int) -> None:
        self._row(oid, "accepted", None, 0, 0, "")

    def _row_rejected(self, e: OrderRejected, oid: int) -> None:
        self._row(oid, "rejected", None, 0, 0, e.reason)

    def _row_filled(self, e: OrderFilled, oid: int) -> None:
        self._row(oid, "filled", e.price, e.qty, e.leaves_qty, e.liquidity)
        if e.leaves_qty == 0:
            self._sides.pop(oid, None)

    def _row_canceled(self, e: OrderCanceled, oid: int) -> None:
        self._row(oid, "canceled", None, e.canceled_qty, 0, e.reason)
        self._sides.pop(oid, None)

    def _row_replaced(self, e: OrderReplaced, oid: int) -> None:
        if e.qty == 0:  # a total-quantity replace at or below the filled quantity ended the order
            self._row(oid, "replaced", e.price, 0, 0, "done")
            self._sides.pop(oid, None)
            return
        self._row(oid, "replaced", e.price, e.qty, e.qty, "" if e.stop_price is None else f"stop {e.stop_price}")

    def _row_cancel_rejected(self, e: CancelRejected, oid: int) -> None:
        self._row(oid, "cancel_rejected", None, 0, 0, e.reason)


# -- admission helpers (pure: they read the safeguards and the book, change nothing) -------------------
def _screen(g: Safeguards, msg: SubmitOrder, now: int) -> Terms | str:
    """The slow path of a new order's admission: halted (``TO_AUCTION``), the collar and the
    bands (a refusal reason, or a limit repriced to the band), a market order capped at the band /
    collar it may not trade through (an IOC limit there), then the stop logic's floor / cap at
    ``now`` (``STOPPED`` / ``STOPPED_MARKET``: capped there). Malformed orders go to the book as
    they are: the book rejects them."""
    side, price, tif = msg.side, msg.price, msg.tif
    valid = (side == "B" or side == "S") and (price is None or (type(price) is int and price > 0))
    if valid and g.halted:
        return TO_AUCTION
    if not valid or (price is None and msg.post_only):
        return price, tif, ""
    reason, px = g.check_order(side, price)
    if reason is not None:
        return reason
    if g.stop_logic and not msg.post_only:
        stop = g.stop_logic_cap(side, px, now)
        if stop is not None:
            return (stop, ("IOC" if tif == "DAY" else tif), STOPPED_MARKET) if price is None else (stop, tif, STOPPED)
    if price is None and px is not None:
        return px, ("IOC" if tif == "DAY" else tif), MARKET
    return px, tif, (REPRICED if px != price else "")


def _market_rest(events: list[Any], oid: int) -> None:
    """A market order's unfilled rest (the book's ``"ioc"`` cancel of the IOC limit at the band it
    stood in for) is canceled with reason ``"market"``."""
    last = events[-1] if events else None
    if last.__class__ is OrderCanceled and last.order_id == oid and last.reason == "ioc":  # type: ignore[union-attr]
        events[-1] = OrderCanceled(oid, last.canceled_qty, MARKET)  # type: ignore[union-attr]


def _positive_int(x: Any) -> bool:
    return type(x) is int and x > 0


def _through_last(side: str, stop: int, last: int | None) -> bool:
    """Whether a stop price is already at or through the last trade (it would elect at once)."""
    return last is not None and (stop <= last if side == "B" else stop >= last)


def _stop_refusal(
    book: OrderBook, sb: StopBook, queue: dict[int, AuctionOrder] | None, last: int | None, msg: SubmitOrder
) -> str | None:
    """Why a new stop / stop-limit order is refused, or None: duplicate id, bad side / qty / stop
    price / limit price, not DAY, bad stp, post-only, or a stop price at or through the last trade
    (*choice*: refused, as futures venues do, rather than elected at once)."""
    oid, side = msg.order_id, msg.side
    if book.known(oid) or oid in sb or (queue is not None and oid in queue):
        return "duplicate order id"
    if side != "B" and side != "S":
        return "invalid side"
    if not _positive_int(msg.qty):
        return "invalid qty"
    if not _positive_int(msg.stop_price):
        return "invalid stop price"
    if msg.price is not None and not _positive_int(msg.price):
        return "invalid price"
    if msg.tif != "DAY":
        return "stop orders must be DAY"
    if msg.stp not in (None, "cancel_resting", "cancel_incoming"):
        return "invalid stp"
    if msg.post_only is not False:
        return "post_only not allowed on stop orders"
    if _through_last(side, msg.stop_price, last):  # type: ignore[arg-type]
        return "stop price through last trade"
    return None


def _stop_replace_refusal(order: StopOrder, msg: ReplaceOrder, last: int | None) -> str | None:
    """Why a replace of a resting stop is refused (``CancelRejected``), or None."""
    if msg.qty is not None and msg.total_qty is not None:
        return "invalid qty"
    qty = msg.total_qty if msg.total_qty is not None else msg.qty
    if qty is not None and not _positive_int(qty):
        return "invalid qty"
    if msg.price is not None and (order.price is None or not _positive_int(msg.price)):
        return "invalid price"  # a stop (market) order has no limit price to replace
    if msg.stop_price is not None and not _positive_int(msg.stop_price):
        return "invalid stop price"
    if qty is None and msg.price is None and msg.stop_price is None:
        return "nothing to replace"
    stop = msg.stop_price
    if stop is not None and stop != order.stop_price and _through_last(order.side, stop, last):
        return "stop price through last trade"
    return None


def _halt_refusal(queue: dict[int, AuctionOrder], book: OrderBook, g: Safeguards, msg: SubmitOrder) -> str | None:
    """Why a new order may not wait for the reopening auction (duplicate id, bad quantity, not a
    DAY order, bad stp / post_only, outside the static collar), or None."""
    oid, price, qty = msg.order_id, msg.price, msg.qty
    if oid in queue or book.known(oid):
        return "duplicate order id"
    if type(qty) is not int or qty <= 0:
        return "invalid qty"
    if msg.tif != "DAY":
        return HALTED_REASON
    if msg.stp not in (None, "cancel_resting", "cancel_incoming"):
        return "invalid stp"
    if msg.post_only is not False and (msg.post_only is not True or price is None):
        return "post_only requires a limit price" if price is None else "invalid post_only"
    if price is not None and (price < g.collar_lo or price > g.collar_hi):
        return "price collar"
    return None
