"""Messages between actors: frozen, slotted dataclasses.

Commands are verbs (``SubmitOrder``), events are past tense (``OrderFilled``). Prices are
integer ticks, quantities integers, times integer nanoseconds. The first block holds the
events the pure matching engine returns; the exchange forwards them to the order's owner.
"""

from __future__ import annotations

from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------
# Order events (returned by actors.exchange.book.OrderBook, forwarded by the exchange)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    order_id: int


@dataclass(frozen=True, slots=True)
class OrderRejected:
    order_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class OrderFilled:
    """One side of one match, at the resting order's price."""

    order_id: int
    counterparty_id: int
    price: int
    qty: int
    leaves_qty: int
    liquidity: str  # "maker" | "taker"


@dataclass(frozen=True, slots=True)
class OrderCanceled:
    order_id: int
    canceled_qty: int
    reason: str


@dataclass(frozen=True, slots=True)
class OrderReplaced:
    order_id: int
    price: int
    qty: int


@dataclass(frozen=True, slots=True)
class CancelRejected:
    order_id: int
    reason: str


# ---------------------------------------------------------------------------------------------
# Order entry commands (native, OUCH-style)
# ---------------------------------------------------------------------------------------------

ORDER_ID_SHIFT = 32
"""Order ids are ``(owner actor id << ORDER_ID_SHIFT) | n``: unique per run, owner checkable."""


def owner_of(order_id: int) -> int:
    return order_id >> ORDER_ID_SHIFT


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    order_id: int
    symbol: str
    side: str  # "B" | "S"
    qty: int
    price: int | None  # ticks; None = market
    tif: str = "DAY"  # "DAY" | "IOC" | "FOK"
    post_only: bool = False
    stp: str | None = None  # None | "cancel_resting" | "cancel_incoming"


@dataclass(frozen=True, slots=True)
class CancelOrder:
    order_id: int
    symbol: str


@dataclass(frozen=True, slots=True)
class ReplaceOrder:
    order_id: int
    symbol: str
    qty: int | None = None  # new open quantity
    price: int | None = None


# ---------------------------------------------------------------------------------------------
# Market data (native, ITCH-style)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubscribeMarketData:
    symbol: str
    trades: bool = True
    quotes: bool = True


@dataclass(frozen=True, slots=True)
class QueryBook:
    """Ask the exchange for a snapshot of the top ``levels`` of the book."""

    symbol: str
    levels: int = 1


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    symbol: str
    bids: tuple[tuple[int, int], ...]
    asks: tuple[tuple[int, int], ...]
    last_price: int | None
    time_ns: int


@dataclass(frozen=True, slots=True)
class TradePrinted:
    symbol: str
    price: int
    qty: int
    aggressor_side: str
    time_ns: int


@dataclass(frozen=True, slots=True)
class QuoteUpdated:
    """Top of book changed. Prices are None when a side is empty."""

    symbol: str
    bid: int | None
    bid_qty: int
    ask: int | None
    ask_qty: int
    time_ns: int
