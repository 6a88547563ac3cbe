"""The exchange actor: order entry, forwarding of book events, market data publication.

It owns one pure ``OrderBook`` per symbol. Every command is answered to the order's owner
with the book's events, one message per event, in order. Trades and top-of-book changes are
recorded and published to market-data subscribers over the network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors.exchange.book import OrderBook
from actors.exchange.marketdata import MarketDataPublisher
from actors.messages import (
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
    SubscribeMarketData,
    owner_of,
)
from sim.actor import Actor, handles
from sim.record import Recorder

ORDER_COLUMNS = ("time_ns", "order_id", "owner", "event", "side", "price", "qty", "leaves_qty", "detail")
TRADE_COLUMNS = ("time_ns", "symbol", "price", "qty", "maker_id", "taker_id", "maker", "taker", "aggressor_side")


class Exchange(Actor):
    """A continuous limit-order-book exchange for one or more symbols."""

    def __init__(
        self,
        name: str,
        symbols: list[str],
        recorder: Recorder,
        open_ns: int,
        close_ns: int,
        location: str = "exchange",
    ) -> None:
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
        events = book.submit(
            oid, msg.side, msg.qty, msg.price, owner=owner, tif=msg.tif, post_only=msg.post_only, stp=msg.stp
        )
        if events and events[0].__class__ is OrderAccepted:
            self._sides[oid] = msg.side
            detail = msg.tif + ("/post_only" if msg.post_only else "")
            self.orders.append((self.now, oid, owner, "submit", msg.side, msg.price, msg.qty, msg.qty, detail))
        self._publish(book, events, msg.side)

    @handles(CancelOrder)
    def on_cancel(self, msg: CancelOrder, src: int) -> None:
        book = self.books.get(msg.symbol)
        if book is None:
            return self._refuse(msg.order_id, src, "unknown symbol", cancel=True)
        if not isinstance(msg.order_id, int) or owner_of(msg.order_id) != src:
            return self._refuse(msg.order_id, src, "order id not owned by sender", cancel=True)
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
        self._publish(book, book.replace(msg.order_id, qty=msg.qty, price=msg.price), side)

    # -- market data requests ---------------------------------------------------------------------
    @handles(SubscribeMarketData)
    def on_subscribe(self, msg: SubscribeMarketData, src: int) -> None:
        self.marketdata.subscribe(msg.symbol, src, msg.trades, msg.quotes)

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
        self.marketdata.top_of_book(book)

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
        self._row(oid, "replaced", e.price, e.qty, e.qty, "")

    def _row_cancel_rejected(self, e: CancelRejected, oid: int) -> None:
        self._row(oid, "cancel_rejected", None, 0, 0, e.reason)
