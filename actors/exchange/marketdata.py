"""Market data: top-of-book tracking, the quotes table, fan-out to subscribers.

Four feeds per symbol: trades (``TradePrinted``), top of book (``QuoteUpdated``), book depth
(``BookDepthChanged``, for actors that sent ``SubscribeMarketData`` with ``depth``: the top N
levels, or the full book for 0, sent when subscribing and then whenever those levels change --
a new order below the touch included) and trading status (``LimitStateEntered`` /
``LimitStateExited`` / ``TradingHalted`` / ``TradingResumed``, for actors that sent
``SubscribeTradingStatus``). The depth feed costs nothing while nobody subscribes to it; it is
neither recorded nor sent to anyone else, so runs without depth subscribers are unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.messages import BookDepthChanged, QuoteUpdated, TradePrinted
from sim.actor import Actor
from sim.record import Recorder

if TYPE_CHECKING:
    from actors.exchange.book import OrderBook

QUOTE_COLUMNS = ("time_ns", "symbol", "bid", "bid_qty", "ask", "ask_qty")

Top = tuple[int | None, int, int | None, int]
Levels = tuple[tuple[int, int], ...]


class MarketDataPublisher:
    """Publishes trades and top-of-book changes of an exchange to subscribed actors."""

    def __init__(self, owner: Actor, recorder: Recorder) -> None:
        self.owner = owner
        self.quotes = recorder.table("quotes", QUOTE_COLUMNS)
        self.trade_subscribers: dict[str, list[int]] = {}
        self.quote_subscribers: dict[str, list[int]] = {}
        self.status_subscribers: dict[str, list[int]] = {}
        self.last_top: dict[str, Top] = {}
        # symbol -> {actor id: [depth (0 = full book), last (bids, asks) sent]}, in subscription order
        self.depth_subscribers: dict[str, dict[int, list[Any]]] = {}

    def subscribe(
        self, symbol: str, actor_id: int, trades: bool = True, quotes: bool = True, depth: int | None = None
    ) -> None:
        for wanted, table in ((trades, self.trade_subscribers), (quotes, self.quote_subscribers)):
            subs = table.setdefault(symbol, [])
            if wanted and actor_id not in subs:
                subs.append(actor_id)
            elif not wanted and actor_id in subs:
                subs.remove(actor_id)
        depth_subs = self.depth_subscribers.get(symbol)
        if depth is None or type(depth) is not int or depth < 0:
            if depth_subs is not None:
                depth_subs.pop(actor_id, None)
                if not depth_subs:
                    del self.depth_subscribers[symbol]
        else:
            self.depth_subscribers.setdefault(symbol, {})[actor_id] = [depth, None]  # None: send it now

    def unsubscribe(self, symbol: str, actor_id: int) -> None:
        self.subscribe(symbol, actor_id, trades=False, quotes=False, depth=None)
        self.subscribe_status(symbol, actor_id, False)

    def subscribe_status(self, symbol: str, actor_id: int, wanted: bool = True) -> None:
        subs = self.status_subscribers.setdefault(symbol, [])
        if wanted and actor_id not in subs:
            subs.append(actor_id)
        elif not wanted and actor_id in subs:
            subs.remove(actor_id)

    def status(self, symbol: str, msg: Any) -> None:
        """Send a trading-status event to the symbol's status subscribers."""
        subs = self.status_subscribers.get(symbol)
        if subs:
            self.owner.send_all(subs, msg)

    def trade(self, symbol: str, price: int, qty: int, aggressor_side: str) -> None:
        subs = self.trade_subscribers.get(symbol)
        if subs:
            self.owner.send_all(subs, TradePrinted(symbol, price, qty, aggressor_side, self.owner.now))

    def depth(self, book: OrderBook) -> None:
        """Send ``BookDepthChanged`` to each depth subscriber whose levels changed since the
        last one it got (or that has not had one yet)."""
        subs = self.depth_subscribers.get(book.symbol)
        if not subs:
            return
        levels = [sub[0] for sub in subs.values()]
        full_bids, full_asks = book.depth(None if 0 in levels else max(levels))
        now = self.owner.now
        send = self.owner.send
        for dst, sub in subs.items():
            n = sub[0]
            bids: Levels = tuple(full_bids[:n] if n else full_bids)
            asks: Levels = tuple(full_asks[:n] if n else full_asks)
            if sub[1] != (bids, asks):
                sub[1] = (bids, asks)
                send(dst, BookDepthChanged(book.symbol, n, bids, asks, now))

    def top_of_book(self, book: OrderBook) -> Top | None:
        """Called after every change of the book: publishes depth (:meth:`depth`), then records
        and publishes the top of book if it changed since the last call; returns the new top
        ``(bid, bid_qty, ask, ask_qty)``, or None when it did not change."""
        if self.depth_subscribers:
            self.depth(book)
        top: Top = book.top()
        symbol = book.symbol
        if self.last_top.get(symbol) == top:
            return None
        self.last_top[symbol] = top
        now = self.owner.now
        self.quotes.append((now, symbol, *top))
        subs = self.quote_subscribers.get(symbol)
        if subs:
            self.owner.send_all(subs, QuoteUpdated(symbol, top[0], top[1], top[2], top[3], now))
        return top
