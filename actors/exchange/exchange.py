"""The exchange actor: order entry, forwarding of book events, market data publication.

It owns one pure ``OrderBook`` per symbol. Every command is answered to the order's owner
with the book's events, one message per event, in order. Trades and top-of-book changes are
recorded and published to market-data subscribers over the network.

Safeguards (actors/exchange/safeguards.py; on by default, ``safeguards=None`` turns them off):
every order is screened against the LULD bands and the price collar (two comparisons on the
common path), every trade updates the reference price, every top-of-book change is checked
against the bands (limit state). Limit-state expiry and the end of a pause / halt are timers
(``wake_at``); band changes at the doubled-band boundaries are applied lazily before the next
command, so a run where nothing triggers schedules no extra wake-ups and records the same
events as without safeguards. During a halt, orders are collected for the reopening auction
(actors/exchange/auction.py) and nothing matches. Status changes go to ``SubscribeTradingStatus``
subscribers and into the ``halts`` table (created at its first row, so runs without a halt
have the same tables -- and digest -- as before).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from actors.commands import HaltTrading, SetIndexLevel
from actors.exchange.auction import AuctionOrder, indicative, uncross
from actors.exchange.book import OrderBook
from actors.exchange.marketdata import MarketDataPublisher
from actors.exchange.safeguards import BIG, OPEN, SafeguardParams, Safeguards, StatusEvent
from actors.messages import (
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
AUCTION_INFO = "auction_info"  # wake-up tag of the indicative price / imbalance feed

DEFAULT_SAFEGUARDS = SafeguardParams()
AUCTION_SIDE = "A"  # aggressor_side of auction prints (trades table and TradePrinted)
HALTED_REASON = "trading halted"


class Exchange(Actor):
    """A continuous limit-order-book exchange for one or more symbols."""

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
        self._armed: set[tuple[str, int]] = set()
        self._halts: Table | None = None
        # indicative price / imbalance feed during halts (SubscribeAuctionInfo), recorded when sent
        self._info_subs: dict[str, list[int]] = {}
        self._info_last: dict[str, tuple[Any, ...]] = {}
        self._info_armed: set[str] = set()
        self._auction_info: Table | None = None

    def on_start(self) -> None:
        assert self.kernel is not None
        self._names = self.kernel.names()

    # -- order entry ----------------------------------------------------------------------------
    def _refuse(self, order_id: int, src: int, reason: str, cancel: bool = False) -> None:
        event: Any = CancelRejected(order_id, reason) if cancel else OrderRejected(order_id, reason)
        self._emit(event, src, order_id)

    def _session_closed(self) -> bool:
        return not (self.open_ns <= self.now < self.close_ns)

    @handles(SubmitOrder)
    def on_submit(self, msg: SubmitOrder, src: int) -> None:
        book = self.books.get(msg.symbol)
        oid = msg.order_id
        if book is None:
            return self._refuse(oid, src, "unknown symbol")
        if not isinstance(oid, int) or owner_of(oid) != src:
            return self._refuse(oid, src, "order id not owned by sender")
        if self._session_closed():
            return self._refuse(oid, src, "market closed")
        owner = self._names[src]
        price = msg.price
        g = self.guards.get(msg.symbol)
        if g is not None:
            if self.now >= g.deadline:
                self._poll(g)
            if type(price) is not int or (
                (price < g.buy_lo or price > g.buy_hi) if msg.side == "B" else (price < g.sell_lo or price > g.sell_hi)
            ):
                return self._screen(book, g, msg, src, owner)
        events = book.submit(
            oid, msg.side, msg.qty, price, owner=owner, tif=msg.tif, post_only=msg.post_only, stp=msg.stp
        )
        if events and events[0].__class__ is OrderAccepted:
            self._sides[oid] = msg.side
            detail = msg.tif + ("/post_only" if msg.post_only else "")
            self.orders.append((self.now, oid, owner, "submit", msg.side, msg.price, msg.qty, msg.qty, detail))
        self._publish(book, events, msg.side)

    def _screen(self, book: OrderBook, g: Safeguards, msg: SubmitOrder, src: int, owner: str) -> None:
        """Slow path of a submit when safeguards apply: halts, collar, bands, market orders."""
        oid, side, price, tif = msg.order_id, msg.side, msg.price, msg.tif
        valid = (side == "B" or side == "S") and (price is None or (type(price) is int and price > 0))
        if valid and g.halted:
            return self._submit_halted(book, msg, src, owner)
        market = False
        if valid and not (price is None and msg.post_only):  # malformed orders: the book rejects them
            reason, px = g.check_order(side, price)
            if reason is not None:
                return self._refuse(oid, src, reason)
            if price is None and px is not None:  # a market order may not trade through the band
                market = True
                if tif == "DAY":
                    tif = "IOC"
            price = px
        events = book.submit(oid, side, msg.qty, price, owner=owner, tif=tif, post_only=msg.post_only, stp=msg.stp)
        if events and events[0].__class__ is OrderAccepted:
            self._sides[oid] = side
            detail = msg.tif + ("/post_only" if msg.post_only else "")
            if price != msg.price and not market:
                detail += "/repriced"
            self.orders.append((self.now, oid, owner, "submit", side, msg.price, msg.qty, msg.qty, detail))
            if market:
                last = events[-1]
                if last.__class__ is OrderCanceled and last.order_id == oid and last.reason == "ioc":
                    events[-1] = OrderCanceled(oid, last.canceled_qty, "market")
        self._publish(book, events, side)

    def _submit_halted(self, book: OrderBook, msg: SubmitOrder, src: int, owner: str) -> None:
        """A new order while trading is halted: validated and kept for the reopening auction."""
        oid, price, qty = msg.order_id, msg.price, msg.qty
        queue = self._auctions.setdefault(msg.symbol, {})
        if oid in queue or book.known(oid):
            return self._refuse(oid, src, "duplicate order id")
        if type(qty) is not int or qty <= 0:
            return self._refuse(oid, src, "invalid qty")
        if msg.tif != "DAY":
            return self._refuse(oid, src, HALTED_REASON)
        if msg.stp not in (None, "cancel_resting", "cancel_incoming"):
            return self._refuse(oid, src, "invalid stp")
        if msg.post_only is not False and (msg.post_only is not True or price is None):
            return self._refuse(oid, src, "post_only requires a limit price" if price is None else "invalid post_only")
        g = self.guards[msg.symbol]
        if price is not None and (price < g.collar_lo or price > g.collar_hi):
            return self._refuse(oid, src, "price collar")
        self._auction_seq += 1
        queue[oid] = AuctionOrder(oid, msg.side, price, qty, self._auction_seq, owner, False, msg.post_only, msg.stp)
        self._sides[oid] = msg.side
        detail = msg.tif + ("/post_only" if msg.post_only else "") + "/auction"
        self.orders.append((self.now, oid, owner, "submit", msg.side, price, qty, qty, detail))
        self._emit(OrderAccepted(oid), src, oid)

    @handles(CancelOrder)
    def on_cancel(self, msg: CancelOrder, src: int) -> None:
        book = self.books.get(msg.symbol)
        if book is None:
            return self._refuse(msg.order_id, src, "unknown symbol", cancel=True)
        if not isinstance(msg.order_id, int) or owner_of(msg.order_id) != src:
            return self._refuse(msg.order_id, src, "order id not owned by sender", cancel=True)
        if self._auctions:
            g = self.guards[msg.symbol]
            if self.now >= g.deadline:
                self._poll(g)
            queue = self._auctions.get(msg.symbol)
            if queue is not None and msg.order_id in queue:
                order = queue.pop(msg.order_id)
                self._emit(OrderCanceled(order.order_id, order.qty, "canceled"), src, order.order_id)
                return None
        self._publish(book, book.cancel(msg.order_id), None)

    @handles(ReplaceOrder)
    def on_replace(self, msg: ReplaceOrder, src: int) -> None:
        book = self.books.get(msg.symbol)
        if book is None:
            return self._refuse(msg.order_id, src, "unknown symbol", cancel=True)
        if not isinstance(msg.order_id, int) or owner_of(msg.order_id) != src:
            return self._refuse(msg.order_id, src, "order id not owned by sender", cancel=True)
        if self._session_closed():
            return self._refuse(msg.order_id, src, "market closed", cancel=True)
        side = self._sides.get(msg.order_id)
        g = self.guards.get(msg.symbol)
        if g is not None:
            if self.now >= g.deadline:
                self._poll(g)
            price = msg.price
            if g.halted:
                return self._refuse(msg.order_id, src, HALTED_REASON, cancel=True)
            if (
                type(price) is int
                and (
                    (price < g.buy_lo or price > g.buy_hi) if side == "B" else (price < g.sell_lo or price > g.sell_hi)
                )
                and price > 0
                and book.open_order(msg.order_id) is not None
            ):
                reason = g.check_replace(side, price)
                if reason is not None:
                    return self._refuse(msg.order_id, src, reason, cancel=True)
        events = book.replace(msg.order_id, qty=msg.qty, price=msg.price, total_qty=msg.total_qty)
        self._publish(book, events, side)

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
        self.send(src, BookSnapshot(msg.symbol, tuple(bids), tuple(asks), self.last_price[msg.symbol], self.now))

    # -- event fan-out --------------------------------------------------------------------------
    def _publish(self, book: OrderBook, events: list[Any], aggressor_side: str | None) -> None:
        symbol = book.symbol
        rows = self._event_rows
        for event in events:
            oid = event.order_id
            self.send(owner_of(oid), event)
            rows[event.__class__](event, oid)
            if event.__class__ is OrderFilled and event.liquidity == "taker":
                self._trade(symbol, event, aggressor_side or self._sides.get(oid, "?"))
        top = self.marketdata.top_of_book(book)
        g = self.guards.get(symbol)
        if g is not None:
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
        g = self.guards.get(symbol)
        if g is not None:
            status = g.on_trade(fill.price, self.now)
            if status:
                self._status(g, status)

    # -- safeguards -----------------------------------------------------------------------------
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
        for g in guards:
            if self.now >= g.deadline:
                self._poll(g)
        if not guards:
            return
        first = guards[0]
        events = first.on_index(msg.change_bp, self.now)
        for other in guards[1:]:
            other.mwcb_triggered |= first.mwcb_triggered
        if events:
            self._status(first, events)  # spreads the halt to every other symbol

    @handles(Wakeup)
    def on_wakeup(self, msg: Wakeup, src: int) -> None:
        if len(msg.tag) == 3:  # (AUCTION_INFO, symbol, 0): the feed's timer
            return self._auction_info_tick(msg.tag[1])
        symbol, t = msg.tag
        self._armed.discard((symbol, t))
        g = self.guards.get(symbol)
        if g is not None and self.now >= g.deadline:
            self._poll(g)

    def _poll(self, g: Safeguards) -> None:
        """Let the safeguards catch up with the clock and carry out what they decided."""
        self._status(g, g.poll(self.now))
        if g.auction_due:
            self._reopen(g)
        elif g.bands_changed and not g.halted:
            self._guard_book(self.books[g.symbol], g)
        self._arm(g)

    def _arm(self, g: Safeguards) -> None:
        if g.halted and self._info_subs.get(g.symbol):
            self._arm_info(g.symbol)
        t = g.timer_at
        if t < BIG and (g.symbol, t) not in self._armed:
            self._armed.add((g.symbol, t))
            self.wake_at(t, (g.symbol, t))

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

    def _status(self, g: Safeguards, events: Sequence[StatusEvent]) -> None:
        """Record and publish status events; spread a circuit-breaker halt market-wide."""
        for ev in events:
            self._record_status(ev)
            self.marketdata.status(ev.symbol, ev)
            if isinstance(ev, TradingHalted) and ev.reason.startswith("mwcb"):
                for other in self.guards.values():
                    if other is not g:
                        halted = other.halt(self.now, ev.reason, ev.resume_ns)
                        self._record_status(halted)
                        self.marketdata.status(other.symbol, halted)
                        self._arm(other)
        self._arm(g)

    def _record_status(self, ev: StatusEvent) -> None:
        if self._halts is None:
            self._halts = self.recorder.table("halts", HALT_COLUMNS)
        sym = ev.symbol
        row: tuple[int, str, str, str, int | None]
        if isinstance(ev, LimitStateEntered):
            row = (ev.time_ns, sym, "limit_state_entered", ev.band, ev.price)
        elif isinstance(ev, LimitStateExited):
            row = (ev.time_ns, sym, "limit_state_exited", "", None)
        elif isinstance(ev, TradingHalted):
            row = (ev.time_ns, sym, "halted", ev.reason, self.last_price.get(sym))
        else:
            reason = "auction" if ev.auction_qty else "auction: no cross"
            row = (ev.time_ns, sym, "resumed", reason, ev.auction_price)
        self._halts.append(row)

    def _reopen(self, g: Safeguards) -> None:
        """Reopening auction: uncross the book's resting orders together with the orders
        collected during the halt at one price, then resume continuous trading."""
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
        for o in orders:  # bring the book in line with the auction (book events are not sent)
            if o.in_book and o.qty != book.open_order(o.order_id)[2]:  # type: ignore[index]
                if o.qty:
                    book.replace(o.order_id, qty=o.qty)
                else:
                    book.cancel(o.order_id)
        later: list[Any] = []
        for o in queue.values():  # what is left of the halt's orders joins the book, in time order
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
        if result.qty and result.price is not None:
            self.last_price[symbol] = result.price
            for _, _, qty in result.matches:
                self.marketdata.trade(symbol, result.price, qty, AUCTION_SIDE)
        self._status(g, g.resume(self.now, result.price, result.qty))
        self._publish(book, later, None)

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

    def _halt_row(self, row: tuple[Any, ...]) -> None:
        if self._halts is None:
            self._halts = self.recorder.table("halts", HALT_COLUMNS)
        self._halts.append(row)

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
        if symbol not in self._info_armed:
            self._info_armed.add(symbol)
            interval = self.guards[symbol].params.auction_info_interval_s
            self.wake_in(round(interval * SECOND), (AUCTION_INFO, symbol, 0))

    def _auction_info_tick(self, symbol: str) -> None:
        """While ``symbol`` is halted: publish what its reopening auction would do now, when that
        changed since the last publication (and record it in ``auction_info``)."""
        self._info_armed.discard(symbol)
        g = self.guards[symbol]
        if self.now >= g.deadline:
            self._poll(g)
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
        side = self._sides.get(oid, "")
        self.orders.append((self.now, oid, self._owner_name(oid), event, side, price, qty, leaves, detail))

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
        self._row(oid, "replaced", e.price, e.qty, e.qty, "")

    def _row_cancel_rejected(self, e: CancelRejected, oid: int) -> None:
        self._row(oid, "cancel_rejected", None, 0, 0, e.reason)
