"""Messages between actors: frozen, slotted dataclasses.

Commands are verbs (``SubmitOrder``), events are past tense (``OrderFilled``). Prices are
integer ticks, quantities integers, times integer nanoseconds. The first block holds the
events the pure matching engine returns; the exchange forwards them to the order's owner.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sim.fastinit import fast_init

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
    """A replace took effect: ``qty`` is the order's open (leaves) quantity after it, 0 when a
    ``ReplaceOrder.total_qty`` at or below the filled quantity ended the order (nothing rests).
    ``cum_qty`` is the order's filled quantity when the replace was applied, given only for a
    ``total_qty`` replace (None for an open-quantity one), so the new total OrderQty is
    ``cum_qty + qty`` as the book computed it. For a resting (not yet elected) stop order
    ``stop_price`` is its stop price after the replace and ``price`` its limit price (None for a
    stop market order); ``stop_price`` is None for every other order."""

    order_id: int
    price: int | None
    qty: int
    cum_qty: int | None = None
    stop_price: int | None = None


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
    # ticks; set: a stop order (price None) or stop-limit order (price = its limit), kept out of
    # the book until a trade prints at or through it (buy: >= stop_price, sell: <= stop_price)
    stop_price: int | None = None


@dataclass(frozen=True, slots=True)
class CancelOrder:
    order_id: int
    symbol: str


@dataclass(frozen=True, slots=True)
class ReplaceOrder:
    """Change a live order's size and/or price. Give at most one of the two sizes:

    * ``qty``: the new *open* (leaves) quantity, as native (OUCH-style) participants use it;
    * ``total_qty``: the new *total* order quantity (FIX OrderQty). The book sets leaves =
      ``total_qty`` - the order's filled quantity at the moment it applies the replace, so a
      fill crossing the request in flight can never make the order fill more than
      ``total_qty``; when that is <= 0 the order is done (``OrderReplaced`` with ``qty=0``).
    """

    order_id: int
    symbol: str
    qty: int | None = None  # new open quantity
    price: int | None = None
    total_qty: int | None = None  # new total quantity (FIX OrderQty): leaves = total - filled
    stop_price: int | None = None  # a resting (unelected) stop's new stop price; ignored otherwise


# ---------------------------------------------------------------------------------------------
# Market data (native, ITCH-style)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubscribeMarketData:
    """Subscribe to a symbol's trades (``TradePrinted``), top of book (``QuoteUpdated``) and, with
    ``depth`` set, book depth (``BookDepthChanged``: the top ``depth`` levels, 0 = the full book;
    sent at once, then on every change of those levels). Sending it again replaces the choice."""

    symbol: str
    trades: bool = True
    quotes: bool = True
    depth: int | None = None


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
class BookDepthChanged:
    """The top ``depth`` levels of a book (0: every level) as they are now, aggregated per price:
    bids best (highest) first, asks best (lowest) first. Sent to depth subscribers only."""

    symbol: str
    depth: int
    bids: tuple[tuple[int, int], ...]
    asks: tuple[tuple[int, int], ...]
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
# Drop copies (fix.gateway_actor.FixGateway) and parent orders (fix.oms.OMS)
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
    """Scenario -> risk officer, and risk officer -> FIX gateway: pull (``on=True``) or release
    (``on=False``) the kill switch of ``account`` (a session; "" = every account). Releasing is
    the only way to re-enable an account. ``time_ns``: when the officer decided (its trigger)."""

    account: str
    on: bool
    reason: str = "command"
    time_ns: int | None = None


@dataclass(frozen=True, slots=True)
class MassCancelAccount:
    """Risk officer -> FIX gateway: cancel every open order of ``account`` ("" = every account;
    an order's account is its Account(1), else its session's CompID)."""

    account: str
    reason: str = "kill switch"


@dataclass(frozen=True, slots=True)
class KillSwitchActivated:
    """Risk officer -> desk: new orders of ``account`` are blocked and its open orders are being
    canceled; ``time_ns`` is when the kill switch was triggered. FIX gateway -> risk officer, the
    answer to a kill (``confirmed_ns`` set): ``canceled`` orders were canceled at the exchange (its
    answers) and the ``blocked`` sessions refuse new orders, as of ``confirmed_ns``."""

    account: str
    reason: str
    time_ns: int
    canceled: int = 0
    blocked: tuple[str, ...] = ()
    confirmed_ns: int | None = None


@dataclass(frozen=True, slots=True)
class KillSwitchReleased:
    """Risk officer -> desk: ``account`` may trade again (an explicit ``KillSwitch(on=False)``)."""

    account: str
    reason: str
    time_ns: int


# -- FIX transport on the simulated wire (encoded and decoded by fix/) --------------------------
@dataclass(frozen=True, slots=True)
class FixFrame:
    """One FIX message on the simulated wire: the raw SOH-delimited string."""

    raw: str


@dataclass(frozen=True, slots=True)
class FixLinkDown:
    """Scenario event: the transport of a FIX session drops (frames in flight are lost).

    ``target`` names the counterparty's CompID when an actor holds several sessions; empty
    means all of the receiving actor's sessions.
    """

    target: str = ""
    reason: str = "link down"


@dataclass(frozen=True, slots=True)
class FixLinkUp:
    """Scenario event: the transport is back; the initiator logs on again (no reset)."""

    target: str = ""


@dataclass(frozen=True, slots=True)
class SubscribeAuctionInfo:
    """Subscribe (``subscribe=False``: unsubscribe) to ``AuctionImbalanceUpdated`` of ``symbol``."""

    symbol: str
    subscribe: bool = True


@dataclass(frozen=True, slots=True)
class AuctionImbalanceUpdated:
    """Market data while ``symbol`` is halted: what the reopening auction would do now (sent every
    ``auction_info_interval_s`` when it changed). ``indicative_price`` None: no price yet;
    ``imbalance_qty`` is the unpaired quantity at that price on ``imbalance_side`` ("B", "S" or "").
    The collars (None: none) and ``extensions`` are those of a LULD reopening; ``reopen_ns`` is
    when the auction is due (None: not before the close)."""

    symbol: str
    indicative_price: int | None
    paired_qty: int
    imbalance_qty: int
    imbalance_side: str
    lower_collar: int | None
    upper_collar: int | None
    extensions: int
    reopen_ns: int | None
    time_ns: int


@dataclass(frozen=True, slots=True)
class PriceAlert:
    """A fast move in ``symbol`` (a price-alert service's notice, not the exchange's): trades
    within the last ``window_s`` spanned ``move_pct`` percent of their high; ``direction`` is
    "down" when the last trade is nearer the low, else "up"."""

    symbol: str
    move_pct: float
    direction: str
    window_s: float


# Every message class above gets the faster constructor of sim.fastinit (same signature, same
# instances): a run builds hundreds of thousands of them.
for _message in [v for v in list(globals().values()) if isinstance(v, type) and dataclasses.is_dataclass(v)]:
    if _message.__module__ == __name__:
        fast_init(_message)
del _message
