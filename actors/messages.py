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


# ---------------------------------------------------------------------------------------------
# Trading status (exchange safeguards: LULD limit states and pauses, circuit-breaker halts)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubscribeTradingStatus:
    """Ask for (``subscribe=True``) or stop the trading-status events of ``symbol``:
    ``LimitStateEntered`` / ``LimitStateExited`` / ``TradingHalted`` / ``TradingResumed``."""

    symbol: str
    subscribe: bool = True


@dataclass(frozen=True, slots=True)
class LimitStateEntered:
    """LULD: the best offer sits at the lower band (``band="lower"``) or the best bid at the
    upper band (``band="upper"``); a trading pause follows unless it leaves within 15 s."""

    symbol: str
    band: str  # "lower" | "upper"
    price: int  # the band price
    time_ns: int


@dataclass(frozen=True, slots=True)
class LimitStateExited:
    symbol: str
    time_ns: int


@dataclass(frozen=True, slots=True)
class TradingHalted:
    """Continuous trading stopped: orders are collected for a reopening auction (IOC/FOK and
    replaces are refused, cancels accepted). ``resume_ns`` is None when no reopening is due
    (e.g. a level-3 circuit breaker halts for the rest of the day)."""

    symbol: str
    reason: str  # "luld pause" | "mwcb level 1" | "mwcb level 2" | "mwcb level 3"
    time_ns: int
    resume_ns: int | None = None


@dataclass(frozen=True, slots=True)
class TradingResumed:
    """Continuous trading resumed after a reopening auction. ``auction_price`` is None when the
    auction did not cross (``auction_qty == 0``)."""

    symbol: str
    time_ns: int
    auction_price: int | None
    auction_qty: int


# ---------------------------------------------------------------------------------------------
# Drop copies (fix.gateway_actor.FixGateway) and parent orders (actors.oms.OMS)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubscribeDropCopy:
    """Ask a FIX gateway for a copy of every ExecutionReport of ``session`` (a client CompID;
    empty: every session). ``subscribe=False`` stops them."""

    session: str = ""
    subscribe: bool = True


@dataclass(frozen=True, slots=True)
class DropCopy:
    """A copy of one ExecutionReport (35=8) the gateway sent on ``session``: the raw FIX string
    as stamped for the wire (MsgSeqNum included)."""

    session: str
    exec_report_raw: str
    time_ns: int


@dataclass(frozen=True, slots=True)
class NewParentOrder:
    """Desk -> OMS: register a parent order; child orders are attached with ``AttachChild``.
    ``arrival_price`` (ticks) is the benchmark of implementation shortfall."""

    parent_id: int
    symbol: str
    side: str  # "B" | "S"
    qty: int
    algo: str
    arrival_price: int | None
    time_ns: int


@dataclass(frozen=True, slots=True)
class AttachChild:
    """Desk -> OMS: order ``order_id`` (a SubmitOrder of the same sender, sent before or after
    this message) is a child of ``parent_id``."""

    order_id: int
    parent_id: int


# ---------------------------------------------------------------------------------------------
# Risk officer (actors.risk.RiskOfficer): kill switch
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KillSwitch:
    """Scenario -> risk officer: pull (``on=True``) or release (``on=False``) the kill switch of
    ``account`` ("" = every account). Releasing is the only way to re-enable an account."""

    account: str
    on: bool
    reason: str = "command"


@dataclass(frozen=True, slots=True)
class MassCancelAccount:
    """Risk officer -> FIX gateway: cancel every open order of ``account`` ("" = every account;
    an order's account is its Account(1), else its session's CompID)."""

    account: str
    reason: str = "kill switch"


@dataclass(frozen=True, slots=True)
class KillSwitchActivated:
    """Risk officer -> desk: new orders of ``account`` are blocked and its open orders are being
    canceled; ``time_ns`` is when the kill switch was triggered."""

    account: str
    reason: str
    time_ns: int


@dataclass(frozen=True, slots=True)
class KillSwitchReleased:
    """Risk officer -> desk: ``account`` may trade again (an explicit ``KillSwitch(on=False)``)."""

    account: str
    reason: str
    time_ns: int
