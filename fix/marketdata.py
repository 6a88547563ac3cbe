"""FIX market data of a gateway, level by level: one implementation for both transports.

``MarketDataFeed`` turns the exchange's native feeds (``BookDepthChanged`` for the book,
``TradePrinted`` for trades) into MarketDataSnapshotFullRefresh (W) and
MarketDataIncrementalRefresh (X) for the MarketDataRequest (V) subscriptions that
:class:`~fix.gateway.GatewayCore` keeps. The gateway actor
(:class:`fix.gateway_actor.FixGateway`) owns one, in a run and in ``desksim serve`` alike, so a
client sees the same market data on either transport.

What a request means:

* MarketDepth(264) N in 1..``MAX_MARKET_DEPTH``: the best N price levels per side; 0: the full
  book (every level). A deeper N is refused by the codec (Y, reason 5), as are entry types
  other than bid / offer / trade (Y, reason 8).
* The W answering a request holds the levels and the last trade, trimmed to its depth and
  entry types. The gateway subscribes the exchange's depth feed at the deepest depth its
  subscriptions need (the full book when one asks for it) and answers a request from the book
  it holds when that is deep enough, else as soon as the exchange's answer to the deeper
  subscription arrives.
* Every change within a subscription's depth is published when it happens (a new order below
  the touch included): X for MDUpdateType(265) 1 or absent, a new W for 265=0. Trades go out as
  X New entries (or a W) to subscriptions that asked for trades.

X entries for the book (MDUpdateAction 279 with MDEntryType, MDEntryPx, MDEntrySize and
MDEntryPositionNo 290, the position counted from 1 = best) follow the position-based book of
FIX: New inserts a level at its position (the levels below move down), Change replaces the size
of the level at its position, Delete removes the level at its position (the levels below move
up). Within one X the Deletes come first, from the deepest position up, then the News and
Changes from the top down, so a client never holds more than its depth in between and a
client keying levels by price (MDEntryPx is on every entry) gets the same book. A level that
moves into the subscribed depth because one above it went is sent as New.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors.messages import BookDepthChanged, TradePrinted
from fix.codec import Codec, MarketDataReq, MDEntry

__all__ = ["Levels", "MarketDataFeed", "covers", "level_entries"]

Levels = tuple[tuple[int, int], ...]
_ALL_TYPES = frozenset({"0", "1", "2"})


def covers(have: int, want: int) -> bool:
    """Whether a book of depth ``have`` (0 = full) holds what a request for ``want`` levels needs."""
    return have == 0 or (want != 0 and want <= have)


def level_entries(old: Levels, new: Levels, entry_type: str, symbol: str) -> list[MDEntry]:
    """X entries that turn the levels ``old`` into ``new`` (one side, best first)."""
    if old == new:
        return []
    new_px = {px for px, _ in new}
    old_qty = dict(old)
    out = [
        MDEntry("2", entry_type, px, None, symbol, pos)
        for pos, (px, _) in reversed(list(enumerate(old, 1)))
        if px not in new_px
    ]
    for pos, (px, qty) in enumerate(new, 1):
        before = old_qty.get(px)
        if before is None:
            out.append(MDEntry("0", entry_type, px, qty, symbol, pos))
        elif before != qty:
            out.append(MDEntry("1", entry_type, px, qty, symbol, pos))
    return out


def _types(req: MarketDataReq) -> frozenset[str]:
    return frozenset(req.entry_types) or _ALL_TYPES


def _needs_book(req: MarketDataReq) -> bool:
    types = _types(req)
    return "0" in types or "1" in types


def _ready(book_depth: int, req: MarketDataReq) -> bool:
    return not _needs_book(req) or covers(book_depth, req.depth)


class MarketDataFeed:
    """Market data of one gateway. See the module docstring.

    ``subscribe(symbol, depth)`` must send the exchange
    ``SubscribeMarketData(symbol, trades=True, quotes=False, depth=depth)``; ``send_app`` and
    ``subscriptions`` are the core's. Nothing here raises for a client's request: a failure
    while answering one session is recorded in ``errors`` and the others are served.
    """

    def __init__(
        self,
        codec: Codec,
        send_app: Callable[[str, Any], None],
        subscriptions: Callable[[str], list[tuple[str, MarketDataReq]]],
        subscribe: Callable[[str, int | None], None],
    ) -> None:
        self.codec = codec
        self.send_app = send_app
        self.subscriptions = subscriptions
        self._subscribe = subscribe
        self.books: dict[str, tuple[int, Levels, Levels]] = {}  # symbol -> (depth, bids, asks)
        self.last_trade: dict[str, tuple[int, int]] = {}
        self.subscribed: dict[str, int | None] = {}  # depth asked of the exchange (None: trades only)
        self.pending: dict[str, list[tuple[str, MarketDataReq]]] = {}  # requests waiting for a book
        self.views: dict[tuple[str, str, str], tuple[Levels, Levels]] = {}  # what each client holds
        self.errors: list[str] = []

    # -- requests --------------------------------------------------------------------------------
    def watch(self, symbol: str) -> None:
        """Follow a symbol's trades before any request (the last trade goes into snapshots)."""
        if symbol not in self.subscribed:
            self.subscribed[symbol] = None
            self._subscribe(symbol, None)

    def on_request(self, session_key: str, req: MarketDataReq) -> None:
        """The core's ``on_md_request``: answer with a W now if the book held is deep enough."""
        for symbol in req.symbols:
            book = self.books.get(symbol)
            if book is not None and _ready(book[0], req) and not self.pending.get(symbol):
                self._start(session_key, req, symbol, book)
            else:
                self.pending.setdefault(symbol, []).append((session_key, req))
            self._resubscribe(symbol)

    def _start(self, key: str, req: MarketDataReq, symbol: str, book: tuple[int, Levels, Levels]) -> None:
        bids, asks = self._trim(req, book[1], book[2])
        try:
            self._send_snapshot(key, req, symbol, bids, asks)
        except Exception as exc:
            self._error(f"snapshot for {key}: {type(exc).__name__}: {exc}")
        if req.subscription_type == "1":
            self.views[(key, req.md_req_id, symbol)] = (bids, asks)

    # -- the exchange's feeds ----------------------------------------------------------------------
    def on_depth(self, msg: BookDepthChanged) -> None:
        symbol = msg.symbol
        book = (msg.depth, msg.bids, msg.asks)
        self.books[symbol] = book
        waiting = self.pending.get(symbol)
        if waiting:
            still = []
            for key, req in waiting:
                if _ready(msg.depth, req):
                    self._start(key, req, symbol, book)
                else:
                    still.append((key, req))
            self.pending[symbol] = still
        live = set()
        for key, req in self.subscriptions(symbol):
            vkey = (key, req.md_req_id, symbol)
            live.add(vkey)
            old = self.views.get(vkey)
            if old is None or not _ready(msg.depth, req):
                continue  # not started yet, or a shallower book from before the last subscribe
            new = self._trim(req, msg.bids, msg.asks)
            if new == old:
                continue
            self.views[vkey] = new
            try:
                if req.update_type == "0":
                    self._send_snapshot(key, req, symbol, new[0], new[1])
                else:
                    entries = level_entries(old[0], new[0], "0", symbol) + level_entries(old[1], new[1], "1", symbol)
                    self.send_app(key, self.codec.market_data_incremental(entries, req.md_req_id))
            except Exception as exc:
                self._error(f"update for {key}: {type(exc).__name__}: {exc}")
        for vkey in [v for v in self.views if v[2] == symbol and v not in live]:
            del self.views[vkey]  # unsubscribed, or the session went
        self._resubscribe(symbol)

    def on_trade(self, msg: TradePrinted) -> None:
        symbol = msg.symbol
        self.last_trade[symbol] = (msg.price, msg.qty)
        entry = MDEntry("0", "2", msg.price, msg.qty, symbol)
        for key, req in self.subscriptions(symbol):
            view = self.views.get((key, req.md_req_id, symbol))
            if view is None or "2" not in _types(req):
                continue
            try:
                if req.update_type == "0":
                    self._send_snapshot(key, req, symbol, view[0], view[1])
                else:
                    self.send_app(key, self.codec.market_data_incremental([entry], req.md_req_id))
            except Exception as exc:
                self._error(f"trade for {key}: {type(exc).__name__}: {exc}")

    # -- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _trim(req: MarketDataReq, bids: Levels, asks: Levels) -> tuple[Levels, Levels]:
        types = _types(req)
        n = req.depth
        return (
            (bids[:n] if n else bids) if "0" in types else (),
            (asks[:n] if n else asks) if "1" in types else (),
        )

    def _send_snapshot(self, key: str, req: MarketDataReq, symbol: str, bids: Levels, asks: Levels) -> None:
        last = self.last_trade.get(symbol)
        trades = [last] if last is not None and "2" in _types(req) else []
        self.send_app(key, self.codec.market_data_snapshot(symbol, bids, asks, trades, req.md_req_id))

    def _resubscribe(self, symbol: str) -> None:
        """Ask the exchange for the depth the live and waiting requests need (0 wins: full book).

        Once subscribed, the depth feed is never dropped, only narrowed (to one level when no
        request needs the book): the exchange publishes every change across a change of depth,
        so the book held stays current, which it would not across an unsubscribe."""
        depths = [req.depth for _, req in self.subscriptions(symbol) if _needs_book(req)]
        depths += [req.depth for _, req in self.pending.get(symbol, ()) if _needs_book(req)]
        needed: int | None
        if depths:
            needed = 0 if 0 in depths else max(depths)
        else:
            needed = 1 if self.pending.get(symbol) or self.subscribed.get(symbol) is not None else None
        if symbol not in self.subscribed or self.subscribed[symbol] != needed:
            self.subscribed[symbol] = needed
            self._subscribe(symbol, needed)

    def _error(self, text: str) -> None:
        self.errors.append(text)
        del self.errors[:-100]
