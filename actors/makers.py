"""Market makers: a simple ladder and an Avellaneda–Stoikov inventory-aware quoter.

Both quote with post-only limit orders in integer ticks and keep their own order bookkeeping
through :class:`actors.trader.Trader`. Time is integer nanoseconds; floats appear only inside
the pricing formula and its online estimators.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, with_config

from actors.commands import ResumeQuotes, WithdrawQuotes
from actors.messages import (
    CancelRejected,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    QuoteUpdated,
    SubscribeMarketData,
    TradePrinted,
)
from actors.registry import agent_kind
from actors.rolling import RollingRange
from actors.trader import OpenOrder, Trader
from actors.world import Fundamental
from sim.actor import Wakeup, handles
from sim.clock import MS, SECOND

REFRESH = "refresh"
COOLDOWN = "cooldown"
REQUOTE = "requote"
GUARD = "guard"  # (GUARD, generation): a guard's cool-down is over, check whether to come back
UNLOAD = "unload"  # retry an unload whose marketable order found nothing to trade with
HOLD = "hold"  # an inventory held at or beyond hold_inventory may have been held for hold_s
STUB = "stub"  # a stub of the quoting obligation is missing and may be sent again


PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Weight = Annotated[float, Field(gt=0, le=1)]
Fraction = Annotated[float, Field(ge=0, le=1)]


# ---------------------------------------------------------------------------------------------
# Guards every maker runs: hard limits with unloading, toxic flow, stale data
# ---------------------------------------------------------------------------------------------


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class GuardParams:
    """A maker's own risk guards (every one off by default).

    * ``hard_inventory`` (shares): when ``|position|`` reaches it the maker *unloads* with
      marketable IOC orders of at most ``unload_clip`` shares, ``unload_through_ticks`` through
      the far touch, down to ``unload_to`` × ``hard_inventory``. This is what makes hot-potato
      volume: makers passing inventory to each other at worse and worse prices.
    * ``hold_inventory`` (shares) with ``hold_s``: an inventory of at least ``hold_inventory``
      on one side, held that long without once falling under it, is unloaded the same way down
      to ``unload_to`` × ``hold_inventory``. A maker quoting both sides turns such a position
      over in ordinary trading; one that keeps buying from a one-sided seller does not, and
      passes it on to the other makers, who then hold it (the hot potato of 6 May 2010, as
      the CFTC-SEC report describes the HFTs' aggressive selling of the contracts they bought).
    * ``max_loss`` (ticks × shares; 500_000 = $5,000 at a $0.01 tick): when the marked-to-mid
      P&L since the last (re)start falls below ``−max_loss`` it pulls its quotes, unloads to
      flat, and stays out for ``loss_cooldown_s``; it then comes back with the P&L reference reset.
    * toxic flow: over the last ``toxic_window_ms`` the aggressor-signed traded volume has an
      order-flow imbalance ``|buy − sell| / (buy + sell)`` above ``toxic_imbalance`` (0: off) on
      at least ``toxic_min_volume`` shares (a volume-bucket VPIN in spirit): pull every quote;
      every ``guard_cooldown_s`` look again and come back once the imbalance over the window
      has fallen to ``toxic_imbalance`` × ``toxic_resume`` or the volume below the minimum.
    * stale data (``stale_ms`` > 0): a market-data message that arrives more than ``stale_ms``
      after its exchange timestamp pulls the quotes; the first fresh one brings them back.
    * fair value (``fair_weight`` > 0): the quote centre leans on the world's fundamental (a
      public fair value such as the index future), so prices move by quote revision, not only by
      trades against stale quotes. ``fair_pause_ticks`` > 0: a data-integrity pause (as some
      firms took on 6 May 2010) when the book centre strays that far from the fair value; back
      after ``fair_pause_s``, trusting the book, its fair weight ramping back over ``fair_recover_s``.
    * learning from order flow (``flow_impact_ticks`` > 0, with a fair value): the fair value is
      moved toward the recent aggressor-signed flow of others when it is more one-sided than
      balanced flow would be (:class:`FlowImpact`); ``flow_size_ticks`` shrinks the quotes as it
      moves and ``flow_aside_ticks`` pulls them past a point: a sale that persists lowers the
      makers' quotes and their size, not a script. ``flow_unload_ticks``: once the flow has
      moved the value that far, a position on the side the flow is against (long in a sale,
      short in a purchase) is unloaded to flat the same way while the maker goes on quoting:
      it keeps buying from the seller and passes each lot on at once (the HFTs' "hot potato"
      of 6 May 2010: inventory handed from maker to maker, volume that grows with the sale);
      with ``flow_unload_either_side`` a position on either side is (the maker gets flat).
    * the quoting obligation (``stub_pct`` > 0): one lot bid and offered ``stub_pct`` % from the
      last sale (or the maker's value, ``stub_anchor``) at all times, moved back when the
      reference has left it beyond ``stub_limit_pct``: a book in which every maker has pulled its
      quotes still has a bid and an offer until someone trades with them.
    """

    hard_inventory: PositiveInt | None = None
    unload_to: Fraction = 0.5
    unload_clip: PositiveInt = 500
    unload_through_ticks: NonNegativeInt = 3
    unload_retry_ms: PositiveFloat = 250.0
    # an inventory (shares) held at or beyond this on one side for hold_s without once falling
    # under it is unloaded to unload_to x hold_inventory (None: off)
    hold_inventory: PositiveInt | None = None
    hold_s: PositiveFloat = 10.0
    max_loss: PositiveInt | None = None
    loss_cooldown_s: PositiveFloat = 300.0
    toxic_imbalance: Fraction = 0.0
    toxic_window_ms: PositiveFloat = 5000.0
    toxic_min_volume: NonNegativeInt = 2000
    toxic_resume: Fraction = 0.5
    guard_cooldown_s: PositiveFloat = 5.0
    stale_ms: NonNegativeFloat = 0.0
    # a book wider than this (ticks) is no anchor (a thin book's mid can sit at a stub quote):
    # the last trade, kept inside the touch, is used instead
    anchor_max_spread_ticks: PositiveInt = 20
    # a fair-value anchor (a public fair value: the index future, the ETF, the sector): the quote
    # centre is (1 - fair_weight) x the book's anchor + fair_weight x the world's fundamental as
    # it was fair_delay_ms ago, and the inventory skew comes on top;
    fair_weight: Fraction = 0.0  # 0: the book alone
    fair_delay_ms: NonNegativeFloat = 0.0  # the fundamental as it was this long ago
    # a data-integrity pause: at a requote, a book centre more than this many ticks from the fair
    # value pulls every quote for fair_pause_s (0: off)
    fair_pause_ticks: NonNegativeInt = 0
    fair_pause_s: PositiveFloat = 60.0  # how long a pause lasts
    # after a pause the maker trusts the book: its fair_weight ramps back from 0 over this long
    fair_recover_s: NonNegativeFloat = 0.0
    # learning from order flow (needs fair_weight > 0; see FlowImpact): the maker's value is the
    # fair value moved toward the order flow by flow_impact_ticks per standard deviation that the
    # aggressor-signed volume of others (its own unloads left out), weighted with a half-life of
    # flow_impact_half_life_s, is one-sided beyond flow_impact_dead_zone standard deviations.
    # One-sided flow that persists is taken for informed flow (Kyle 1985): the quotes move away
    # from it (0: off)
    flow_impact_ticks: NonNegativeFloat = 0.0
    flow_impact_half_life_s: PositiveFloat = 300.0  # the memory of the weighted flow
    # standard deviations of one-sidedness that ordinary flow reaches, and that move nothing
    flow_impact_dead_zone: NonNegativeFloat = 3.0
    flow_impact_warmup_qty: NonNegativeInt = 10_000  # weighted shares traded before the flow counts
    flow_impact_max_ticks: NonNegativeFloat = 0.0  # the flow moves the value at most this far (0: no bound)
    # and the quoted size shrinks with that move: size x (1 - |move| / flow_size_ticks) to the
    # nearest lot of 100 shares, at least one (0: off) ...
    flow_size_ticks: NonNegativeFloat = 0.0
    # ... and the maker stands aside (no quotes) while |move| >= flow_aside_ticks (0: never)
    flow_aside_ticks: NonNegativeFloat = 0.0
    # while |move| >= flow_unload_ticks a position against the flow is unloaded to flat (0: never)
    flow_unload_ticks: NonNegativeFloat = 0.0
    # ... but not while the move is at flow_impact_max_ticks: a value at its bound is not running
    flow_unload_hold_at_max: bool = False
    # ... a position on either side, not only against the flow: the maker gets flat whichever way
    flow_unload_either_side: bool = False
    # the quoting obligation of a registered maker (0: off): a bid and an offer of stub_qty shares
    # kept all session, stub_pct % below and above the reference, whatever the guards do (the
    # maker's quotes come and go, the obligation stays). A stub that the reference has left
    # further than stub_limit_pct % away (default stub_pct x 9.5 / 8) is moved back to stub_pct %
    # (SEC approval of the exchanges' market-maker quoting rules, Release 34-63255, Nov 2010:
    # within 8 % of the NBBO, moved back once 9.5 % away; with no NBBO, of the last sale). A stub
    # is (re)sent at most once per stub_min_ms. stub_pct of 8 is today's rule; 2010 had no such bound,
    # and the stubs of that afternoon sat anywhere out to a penny
    stub_pct: NonNegativeFloat = 0.0
    # what the stubs are pegged to: "last", the last sale (the rule's reference without an NBBO;
    # a sale at a stub moves the next one a further stub_pct away, so in a book with no one else
    # the stubs walk the price down), or "value", the maker's own value (the fair value moved by
    # the order flow; needs fair_weight > 0): a floor as far under the value as the maker chooses
    stub_anchor: Literal["last", "value"] = "last"
    stub_qty: PositiveInt = 100
    stub_limit_pct: PositiveFloat | None = None
    stub_min_ms: PositiveFloat = 1000.0

    def __post_init__(self) -> None:
        if self.stub_pct and self.stub_limit_pct is not None and self.stub_limit_pct < self.stub_pct:
            raise ValueError("stub_limit_pct must be >= stub_pct (a stub is moved back once further than the limit)")
        if self.stub_pct and self.stub_anchor == "value" and not self.fair_weight:
            raise ValueError("stub_anchor 'value' needs fair_weight > 0 (the maker's value is the fair value)")


class FlowImpact:
    """How far the recent order flow is from balanced, and the value offset it gives.

    Each trade adds its aggressor-signed quantity ``q`` to ``net`` and ``q**2`` to ``sq``, both
    exponentially weighted with a half-life of ``half_life_ns``. Under balanced flow (each trade's
    side a fair coin) ``net`` has mean 0 and variance ``sq``, so ``z = net / sqrt(sq)`` is how many
    standard deviations the flow is one-sided, at any volume. The offset is ``ticks`` per
    standard deviation beyond ``±dead_zone``, toward the flow, as in Kyle (1985), where the price
    moves by the net order flow over the noise traders' standard deviation times the value's
    uncertainty. No offset while the weighted volume is under ``min_volume`` (the first trades);
    never more than ``max_ticks`` either way (0: no bound).
    """

    __slots__ = ("dead_zone", "max_ticks", "min_volume", "net", "rate", "sq", "t", "ticks", "total")

    def __init__(
        self, ticks: float, half_life_ns: int, dead_zone: float = 0.0, min_volume: float = 0.0, max_ticks: float = 0.0
    ) -> None:
        self.ticks = ticks
        self.max_ticks = max_ticks
        self.dead_zone = dead_zone
        self.min_volume = min_volume
        self.rate = math.log(2.0) / half_life_ns
        self.net = 0.0
        self.total = 0.0
        self.sq = 0.0
        self.t = 0

    def _decay(self, now: int) -> None:
        if now > self.t:
            f = math.exp(-self.rate * (now - self.t))
            self.net *= f
            self.total *= f
            self.sq *= f * f
            self.t = now

    def add(self, now: int, signed_qty: int) -> None:
        self._decay(now)
        self.net += signed_qty
        self.total += abs(signed_qty)
        self.sq += signed_qty * signed_qty

    def remove(self, now: int, signed_qty: int) -> None:
        """Take back a trade added before (the maker's own, known from its fill)."""
        self._decay(now)
        self.net -= signed_qty
        self.total = max(0.0, self.total - abs(signed_qty))
        self.sq = max(0.0, self.sq - signed_qty * signed_qty)

    def z(self, now: int) -> float:
        """The weighted net flow in standard deviations of balanced flow (0 under the minimum volume)."""
        self._decay(now)
        if self.total <= 0 or self.total < self.min_volume:
            return 0.0
        return self.net / math.sqrt(self.sq)

    def offset(self, now: int) -> float:
        """The value offset in ticks at ``now``: toward the flow, beyond the dead zone."""
        z = self.z(now)
        excess = abs(z) - self.dead_zone
        if excess <= 0:
            return 0.0
        move = self.ticks * excess
        if self.max_ticks and move > self.max_ticks:
            move = self.max_ticks
        return move if z > 0 else -move


class MakerGuard:
    """Hard inventory and loss limits with unloading, toxic-flow and stale-data withdrawal.

    Mixed into a :class:`Trader` whose ``p`` is a :class:`GuardParams`; the maker calls
    ``_guard_trade`` / ``_guard_quote`` on market data, ``_guard_fill`` after its fills and
    ``_guard_order_done`` when an order ends, and implements ``_pull_quotes`` and ``requote``.
    Public state: ``guard_out`` (None, "toxic", "stale", "loss" or "fair"), counters
    ``toxic_withdrawals``, ``stale_withdrawals``, ``loss_stops``, ``fair_pauses``, ``unload_orders``,
    ``flow_unloads``.
    """

    p: GuardParams
    position: int
    cash: int
    open_orders: dict[int, OpenOrder]

    def _guard_init(self, fundamental: Fundamental | None = None) -> None:
        p = self.p
        self._fair_any = p.fair_weight > 0 or p.fair_pause_ticks > 0  # one test on the requote path
        if self._fair_any and fundamental is None:
            raise ValueError(f"{self.name}: fair_weight and fair_pause_ticks need the world's fundamental")  # type: ignore[attr-defined]
        self._impact: FlowImpact | None = None
        if p.flow_impact_ticks > 0:
            if not p.fair_weight:
                raise ValueError(f"{self.name}: flow_impact_ticks moves the fair value: it needs fair_weight > 0")  # type: ignore[attr-defined]
            self._impact = FlowImpact(
                p.flow_impact_ticks,
                int(p.flow_impact_half_life_s * SECOND),
                p.flow_impact_dead_zone,
                p.flow_impact_warmup_qty,
                p.flow_impact_max_ticks,
            )
        elif p.flow_unload_ticks > 0:
            raise ValueError(f"{self.name}: flow_unload_ticks needs flow_impact_ticks > 0")  # type: ignore[attr-defined]
        self._flow_unload = p.flow_unload_ticks  # (0 without a flow impact: checked above)
        self._flow_unloading = False  # the current unload is against the flow (to flat)
        self.flow_unloads = 0
        self._flow_move = 0.0  # |the order flow's move of the value| at the last requote, ticks
        self.fundamental = fundamental
        self._fair_delay_ns = int(p.fair_delay_ms * MS)
        self.guard_out: str | None = None
        self._guard_gen = 0
        self._flow: deque[tuple[int, int]] = deque()  # (time, signed aggressor qty)
        self._flow_buy = 0
        self._flow_sell = 0
        self._flow_ns = int(p.toxic_window_ms * MS)
        self._stale_ns = int(p.stale_ms * MS)
        self.pub_bid: int | None = None
        self.pub_ask: int | None = None
        self.pub_bid_qty = 0
        self.pub_ask_qty = 0
        self.mark_price: int | None = None
        self._loss_ref = 0
        self._unload_id: int | None = None
        self._unload_retry = False
        self._unload_hit = False
        self.unloading = False
        self.toxic_withdrawals = 0
        self.stale_withdrawals = 0
        self.loss_stops = 0
        self.fair_pauses = 0
        self._fair_armed = True
        self._fair_back_ns = -(1 << 62)  # when the last data-integrity pause ended
        self._fair_recover_ns = int(p.fair_recover_s * SECOND)
        self.unload_orders = 0
        self.unloaded_qty = 0
        self._hold_ns = int(p.hold_s * SECOND)
        self._hold_sign = 0  # the side (+1 long, -1 short) held at or beyond hold_inventory, 0: none
        self._hold_since = 0  # since when, ns
        self._hold_timer = False  # a HOLD wake-up is pending
        self._hold_unloading = False  # the current unload is a holding-time one
        self.hold_unloads = 0
        # the quoting obligation, in basis points of the last sale (0: off)
        self._stub_bp = round(p.stub_pct * 100)
        limit = p.stub_limit_pct if p.stub_limit_pct is not None else p.stub_pct * 9.5 / 8.0
        self._stub_limit_bp = round(limit * 100)
        self._stub_gap_ns = int(p.stub_min_ms * MS)
        self._stub_next_ns = 0  # no stub is (re)sent before this time
        self._stub_timer = False  # a STUB wake-up is pending
        self._stub_value = p.stub_anchor == "value"  # (fair_weight > 0, so a fundamental: checked above)
        self._stub_ref: int | None = None  # the sale or value the stubs are pegged to
        self.stub_ids: dict[str, int] = {}  # side -> order id of the stub resting (or on its way)
        self.stub_prices: dict[str, int] = {}  # side -> its price
        self.stub_orders = 0  # stubs sent or moved

    def fair_centre2(self, book2: int) -> int | None:
        """The quote centre in half ticks: the book's ``book2`` blended with the fair value, or
        None when the data-integrity pause starts now (the book centre more than
        ``fair_pause_ticks`` from the fair value; one pause per excursion: after it the maker
        quotes again, and only a book back within the limit re-arms the check)."""
        p = self.p
        now = self.kernel.now  # type: ignore[attr-defined]
        fair = self.fundamental.value_at(now - self._fair_delay_ns)  # type: ignore[union-attr]
        limit = p.fair_pause_ticks
        if limit:
            if abs(book2 / 2 - fair) <= limit:
                self._fair_armed = True
            elif self._fair_armed:
                self._fair_armed = False
                self.fair_pauses += 1
                self._go_out("fair", int(p.fair_pause_s * SECOND))
                return None
        w = p.fair_weight
        if not w:
            return book2
        since = now - self._fair_back_ns
        if since < self._fair_recover_ns:
            w *= since / self._fair_recover_ns
        impact = self._impact
        if impact is not None:
            offset = impact.offset(now)
            self._flow_move = abs(offset)
            fair += offset
        return round((1.0 - w) * book2 + w * 2.0 * fair)

    def _value_ticks(self, now: int) -> int:
        """The maker's value in ticks: the fair value as seen ``fair_delay_ms`` ago, moved by the
        order flow when the maker learns from it."""
        value = self.fundamental.value_at(now - self._fair_delay_ns)  # type: ignore[union-attr]
        if self._impact is not None:
            value += self._impact.offset(now)
        return max(1, round(value))

    def quote_size(self, size: int) -> int:
        """``size`` cut by the order flow's move of the value at this requote (``fair_centre2``
        computes it; the maker calls this only when it is not 0): to the nearest lot of ``size`` x
        (1 - |move| / ``flow_size_ticks``) but at least one, and 0 (no quote) once |move| reaches
        ``flow_aside_ticks``."""
        p = self.p
        move = self._flow_move
        if p.flow_aside_ticks and move >= p.flow_aside_ticks:
            return 0
        if not p.flow_size_ticks:
            return size
        keep = 1.0 - move / p.flow_size_ticks
        lot = min(size, 100)
        return max(lot, round(size * keep / lot) * lot)

    # -- hooks the maker implements ---------------------------------------------------------------
    def _pull_quotes(self) -> None:
        raise NotImplementedError

    def requote(self) -> None:
        raise NotImplementedError

    # -- state ----------------------------------------------------------------------------------
    def pnl(self) -> int:
        """Marked-to-market P&L, ticks × shares (mark: the last mid or trade seen)."""
        mark = self.mark_price
        return self.cash + (self.position * mark if mark is not None else 0)

    def imbalance(self, now: int) -> tuple[float, int]:
        """(|buy − sell| / (buy + sell), buy + sell) of the aggressor volume within the window."""
        horizon = now - self._flow_ns
        flow = self._flow
        while flow and flow[0][0] <= horizon:
            q = flow.popleft()[1]
            if q > 0:
                self._flow_buy -= q
            else:
                self._flow_sell += q
        total = self._flow_buy + self._flow_sell
        return (abs(self._flow_buy - self._flow_sell) / total if total else 0.0), total

    def _go_out(self, reason: str, delay_ns: int) -> None:
        self.guard_out = reason
        self._guard_gen += 1
        self._pull_quotes()
        if delay_ns > 0:
            self.wake_in(delay_ns, (GUARD, self._guard_gen))  # type: ignore[attr-defined]

    def _come_back(self) -> None:
        if self.guard_out == "loss":
            self._loss_ref = self.pnl()
        self.guard_out = None
        self._guard_gen += 1
        self.requote()

    # -- market data ----------------------------------------------------------------------------
    def _guard_trade(self, price: int, qty: int, aggressor: str, time_ns: int) -> bool:
        """Track the flow; True when the maker is (now) out."""
        p = self.p
        if self._stub_bp:
            self._stub_ref = price  # (a value peg replaces it with the value in the check)
            self._stub_check()
        if self.pub_bid is None or self.pub_ask is None:
            self.mark_price = price
        if aggressor != "B" and aggressor != "S":  # an auction print: no side, no flow to learn from
            return self._guard_after_trade(time_ns)
        if p.toxic_imbalance > 0:
            signed = qty if aggressor == "B" else -qty
            self._flow.append((time_ns, signed))
            if signed > 0:
                self._flow_buy += signed
            else:
                self._flow_sell -= signed
            if self.guard_out is None:
                now: int = self.now  # type: ignore[attr-defined]
                imb, total = self.imbalance(now)
                if imb > p.toxic_imbalance and total >= p.toxic_min_volume:
                    self.toxic_withdrawals += 1
                    self._go_out("toxic", int(p.guard_cooldown_s * SECOND))
        impact = self._impact
        if impact is not None:
            impact.add(self.now, qty if aggressor == "B" else -qty)  # type: ignore[attr-defined]
            if self._flow_unload and self.position:
                self._flow_unload_check()
        return self._guard_after_trade(time_ns)

    def _guard_after_trade(self, time_ns: int) -> bool:
        """The stale-data check after a print; True when the maker is (now) out."""
        if self._stale_ns and self._stale_check(time_ns):
            return True
        return self.guard_out is not None

    def _guard_quote(self, msg: QuoteUpdated) -> bool:
        """Keep the published top of book; True when the maker is (now) out."""
        self.pub_bid, self.pub_ask = msg.bid, msg.ask
        self.pub_bid_qty, self.pub_ask_qty = msg.bid_qty, msg.ask_qty
        if msg.bid is not None and msg.ask is not None:
            self.mark_price = (msg.bid + msg.ask) // 2
            if self.p.max_loss is not None and self.position:
                self._check_loss()
        if self._stale_ns and self._stale_check(msg.time_ns):
            return True
        return self.guard_out is not None

    def _stale_check(self, time_ns: int) -> bool:
        lag = self.kernel.now - time_ns  # type: ignore[attr-defined]
        if lag > self._stale_ns:
            if self.guard_out is None:
                self.stale_withdrawals += 1
                self._go_out("stale", 0)
            return True
        if self.guard_out == "stale":
            self._come_back()
        return False

    def _guard_wake(self, gen: int) -> None:
        if gen != self._guard_gen:
            return
        reason = self.guard_out
        if reason == "toxic":
            p = self.p
            imb, total = self.imbalance(self.now)  # type: ignore[attr-defined]
            if imb > p.toxic_imbalance * p.toxic_resume and total >= p.toxic_min_volume:
                self.wake_in(int(p.guard_cooldown_s * SECOND), (GUARD, gen))  # type: ignore[attr-defined]
                return
            self._come_back()
        elif reason == "loss":
            self._come_back()
        elif reason == "fair":
            self._fair_back_ns = self.now  # type: ignore[attr-defined]
            self._come_back()

    # -- limits ---------------------------------------------------------------------------------
    def _guard_fill(self, order_id: int, qty: int, side: str) -> None:
        if order_id == self._unload_id:
            self.unloaded_qty += qty
            self._unload_hit = True
            if self._impact is not None:  # its own unload is not news to it
                self._impact.remove(self.now, qty if side == "B" else -qty)  # type: ignore[attr-defined]
        p = self.p
        if p.max_loss is not None:
            self._check_loss()
        hard = p.hard_inventory
        if hard is not None and abs(self.position) >= hard:
            self.unloading = True
        if p.hold_inventory is not None:
            self._hold_track()
        if self._flow_unload and self.position:
            self._flow_unload_check()
        if self.unloading:
            self._unload()

    def _flow_unload_check(self) -> None:
        """Start unloading to flat when the flow has moved the value ``flow_unload_ticks`` or more
        and the position is on the side the flow is against (either side with
        ``flow_unload_either_side``)."""
        if self._flow_unloading:
            return
        impact = self._impact
        assert impact is not None
        offset = impact.offset(self.now)  # type: ignore[attr-defined]
        if -self._flow_unload < offset < self._flow_unload:
            return
        if self.p.flow_unload_hold_at_max and impact.max_ticks and abs(offset) >= impact.max_ticks:
            return  # the value is pinned at its bound, no longer running from the flow: hold
        pos = self.position
        if self.p.flow_unload_either_side or (offset < 0 < pos) or (pos < 0 < offset):
            self.flow_unloads += 1
            self._flow_unloading = True
            self.unloading = True
            self._unload()

    def _hold_track(self) -> None:
        """Note when the position reached ``hold_inventory`` on its side (or fell back under it)."""
        level = self.p.hold_inventory
        assert level is not None
        pos = self.position
        sign = (pos > 0) - (pos < 0) if abs(pos) >= level else 0
        if sign == self._hold_sign:
            return
        self._hold_sign = sign
        if sign:
            self._hold_start()
        # else: a pending HOLD wake-up finds no side held and lapses

    def _hold_start(self) -> None:
        """Start the holding clock now; one HOLD wake-up at a time (a pending one checks the due time)."""
        self._hold_since = now = self.now  # type: ignore[attr-defined]
        if not self._hold_timer:
            self._hold_timer = True
            self.wake_at(now + self._hold_ns, HOLD)  # type: ignore[attr-defined]

    def _hold_wake(self) -> None:
        """Unload a position held at or beyond ``hold_inventory`` for ``hold_s``; else wait on."""
        self._hold_timer = False
        if not self._hold_sign:
            return
        due = self._hold_since + self._hold_ns
        if self.now < due:  # type: ignore[attr-defined]
            self._hold_timer = True
            self.wake_at(due, HOLD)  # type: ignore[attr-defined]
            return
        self.hold_unloads += 1
        self._hold_unloading = True
        self.unloading = True
        # the clock starts again: a position still at or beyond the level hold_s from now (an
        # unload to the level itself, unload_to = 1, then more bought) is unloaded again
        self._hold_start()
        self._unload()

    def _check_loss(self) -> None:
        p = self.p
        assert p.max_loss is not None
        if self.guard_out != "loss" and self.pnl() - self._loss_ref < -p.max_loss:
            self.loss_stops += 1
            self._go_out("loss", int(p.loss_cooldown_s * SECOND))
            self.unloading = True
            self._unload()

    def _guard_order_done(self, order_id: int) -> None:
        """An order of ours ended (filled, canceled or rejected)."""
        if self._stub_bp and order_id in self.stub_ids.values():
            side = "B" if self.stub_ids.get("B") == order_id else "S"
            del self.stub_ids[side]
            self._stub_check()
            return
        if order_id != self._unload_id:
            return
        self._unload_id = None
        if self._unload_hit:
            self._unload()
        elif self.unloading and not self._unload_retry:
            self._unload_retry = True
            self.wake_in(int(self.p.unload_retry_ms * MS), UNLOAD)  # type: ignore[attr-defined]

    def _unload(self) -> None:
        """Send the next marketable order toward the unload target, one at a time."""
        if self._unload_id is not None:
            return
        p = self.p
        pos = self.position
        hard = p.hard_inventory
        if self.guard_out == "loss" or self._flow_unloading:
            target = 0
        elif self._hold_unloading and p.hold_inventory is not None:
            target = int(p.hold_inventory * p.unload_to)
        else:
            target = 0 if hard is None else int(hard * p.unload_to)
        excess = abs(pos) - target
        if excess <= 0:
            self.unloading = False
            self._hold_unloading = False
            self._flow_unloading = False
            return
        sell = pos > 0
        far = self.pub_bid if sell else self.pub_ask
        anchor = far if far is not None else self.mark_price
        qty = min(p.unload_clip, excess)
        if anchor is None:
            price = None
        else:
            price = max(1, anchor - p.unload_through_ticks) if sell else anchor + p.unload_through_ticks
        self.unload_orders += 1
        self._unload_hit = False
        # its own quotes in the way are canceled, not traded with
        self._unload_id = self.submit(  # type: ignore[attr-defined]
            "S" if sell else "B", qty, price, tif="IOC", stp="cancel_resting"
        )

    def _unload_wake(self) -> None:
        self._unload_retry = False
        if self.unloading:
            self._unload()

    # -- the quoting obligation -----------------------------------------------------------------
    def _stub_check(self) -> None:
        """Send a missing stub, or move one the reference has left beyond the limit, at most once
        per ``stub_min_ms``: a missing one when that gap is over, a move at the next sale after it."""
        now: int = self.now  # type: ignore[attr-defined]
        if self._stub_value:
            self._stub_ref = self._value_ticks(now)
        ref = self._stub_ref
        if ref is None or not (self.open_ns <= now < self.close_ns):  # type: ignore[attr-defined]
            return
        if now < self._stub_next_ns:
            if len(self.stub_ids) < 2 and not self._stub_timer:  # send it when the gap is over
                self._stub_timer = True
                self.wake_at(self._stub_next_ns, STUB)  # type: ignore[attr-defined]
            return
        bp, limit = self._stub_bp, self._stub_limit_bp
        sent = False
        for side in ("B", "S"):
            if side == "B":
                want = max(1, ref * (10_000 - bp) // 10_000)
                edge = ref * (10_000 - limit)  # x 10^4: a bid below this is too far
            else:
                want = -(-ref * (10_000 + bp) // 10_000)
                edge = ref * (10_000 + limit)
            oid = self.stub_ids.get(side)
            if oid is None:
                self.stub_ids[side] = self.submit(side, self.p.stub_qty, want, post_only=True)  # type: ignore[attr-defined]
            else:
                price = self.stub_prices[side] * 10_000
                if (price >= edge) if side == "B" else (price <= edge):
                    continue
                self.replace(oid, price=want)  # type: ignore[attr-defined]
            self.stub_prices[side] = want
            self.stub_orders += 1
            sent = True
        if sent:
            self._stub_next_ns = now + self._stub_gap_ns

    # -- requote throttle and the timers both makers share ---------------------------------------
    _last_requote: int
    _requote_pending: bool

    def _requote_throttled(self, min_ns: int) -> None:
        """Requote now, or once when ``min_ns`` since the last requote has passed (one timer at a time)."""
        due = self._last_requote + min_ns
        if self.kernel.now >= due:  # type: ignore[attr-defined]
            self.requote()
        elif not self._requote_pending:
            self._requote_pending = True
            self.wake_at(due, REQUOTE)  # type: ignore[attr-defined]

    def _shared_wake(self, tag: object) -> bool:
        """The unload retry and the throttled requote timers; True if ``tag`` was one of them."""
        if tag == UNLOAD:
            self._unload_wake()
            return True
        if tag == HOLD:
            self._hold_wake()
            return True
        if tag == STUB:
            self._stub_timer = False
            self._stub_check()
            return True
        if tag == REQUOTE:
            self._requote_pending = False
            self.requote()
            return True
        return False


# ---------------------------------------------------------------------------------------------
# Ladder maker
# ---------------------------------------------------------------------------------------------


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class LadderParams(GuardParams):
    levels: PositiveInt = 5
    half_spread_ticks: PositiveInt = 2  # distance of the first level from the centre
    spacing_ticks: PositiveInt = 1  # distance between levels
    size: PositiveInt = 500
    refresh_ms: PositiveFloat = 1000.0
    skew_ticks_per_lot: NonNegativeFloat = 0.05  # centre shift per 100 shares held
    max_inventory: PositiveInt = 20_000  # stop quoting the side that adds to inventory beyond this
    # the centre: "last" (the last trade, the original ladder), "mid" (of the published top of
    # book, in half ticks) or "micro" (its microprice); a one-sided or too wide book falls back
    # to the last trade kept inside the visible side. Measured on the baseline: a ladder that
    # is most of the touch and anchors on the book it makes is self-referential ("micro" chases
    # its own queue, ~50 requotes/s; "mid" gives 1-min return sd 40-100 bp on seeds 1-4), so
    # the baseline's ladder keeps "last"; the A-S maker quotes around the others' mid.
    anchor: Literal["micro", "mid", "last"] = "last"
    min_requote_ms: NonNegativeFloat = 10.0  # at most one market-data requote per this
    requote_ticks: PositiveInt = 1  # market data moves the ladder only when its centre moves this far
    # volatility withdrawal: when the range (max - min) of trade prices seen within the last
    # ``vol_window_ms`` exceeds ``withdraw_vol_ticks``, pull every quote for ``cooldown_s``; at
    # the end of the cool-down return if the range has dropped to the threshold, else stay out
    # for another cool-down. ``withdraw_vol_ticks = 0`` turns the feature off.
    vol_window_ms: PositiveFloat = 5000.0
    withdraw_vol_ticks: NonNegativeInt = 20
    cooldown_s: PositiveFloat = 10.0


class ScenarioQuoteControl:
    """Scenario commands every market maker obeys: pull all quotes / quote again."""

    def withdraw(self) -> None:
        raise NotImplementedError

    def resume(self) -> None:
        raise NotImplementedError

    @handles(WithdrawQuotes)
    def _on_withdraw_command(self, msg: WithdrawQuotes, src: int) -> None:
        self.withdraw()

    @handles(ResumeQuotes)
    def _on_resume_command(self, msg: ResumeQuotes, src: int) -> None:
        self.resume()


@agent_kind("ladder_maker", LadderParams, world=("fundamental",))
class LadderMaker(MakerGuard, ScenarioQuoteControl, Trader):
    """Quotes ``levels`` prices each side around a centre, skewed against inventory.

    The centre (in half ticks) is the microprice, the mid or the last trade (``anchor``), moved
    by ``−skew_ticks_per_lot`` per 100 shares held; level ``l`` is ``floor(c − h − l·s)`` on the
    bid and ``ceil(c + h + l·s)`` on the ask. A requote keeps every order already at a wanted
    price (its queue priority), moves the others there by ``ReplaceOrder`` and only then sends or
    cancels. Guards: :class:`GuardParams` (hard limits, unloading, toxic flow, stale data).

    Public state: ``quoting`` (False while withdrawn by command or volatility), ``withdrawals``
    (volatility withdrawals), ``guard_out`` and the guard counters.
    """

    placement_role: ClassVar[str] = "solo"
    p: LadderParams

    def __init__(
        self,
        name: str,
        symbol: str,
        params: LadderParams,
        reference_price: int,
        open_ns: int,
        close_ns: int,
        location: str = "default",
        *,
        fundamental: Fundamental | None = None,
    ) -> None:
        super().__init__(name, symbol, location=location)
        self.p = params
        self.centre = reference_price  # last trade
        self.centre2 = 2 * reference_price  # the anchor, half ticks
        self.open_ns = open_ns
        self.close_ns = close_ns
        self.slots: dict[tuple[str, int], int] = {}  # (side, price) -> order id
        self.quoting = True
        self.withdrawals = 0
        self._vol_ns = int(params.vol_window_ms * MS)
        self._cooldown_ns = int(params.cooldown_s * SECOND)
        self._prices = RollingRange(self._vol_ns)  # trade prices of the volatility window
        self._vol_out = False  # withdrawn because of volatility (a cool-down timer is pending)
        self._cooldown_gen = 0  # stale cool-down timers carry an older generation
        self._min_requote_ns = int(params.min_requote_ms * MS)
        self._last_requote = -(1 << 62)
        self._requote_pending = False
        self._quoted2 = self.centre2  # the centre of the ladder as last quoted
        self._guard_init(fundamental)

    def on_start(self) -> None:
        super().on_start()
        quotes = self.p.anchor != "last" or self.p.stale_ms > 0 or self.p.max_loss is not None
        self.send(self.exchange, SubscribeMarketData(self.symbol, trades=True, quotes=quotes))
        self.wake_at(max(self.now, self.open_ns), REFRESH)

    def quote_centre2(self) -> int:
        """The skewed centre, in half ticks."""
        skew = self.position / 100 * self.p.skew_ticks_per_lot
        return self.centre2 - round(2 * skew)

    def quote_centre(self) -> int:
        return self.quote_centre2() // 2

    def _anchor(self) -> None:
        """Recompute ``centre2`` from the published top of book (or the last trade)."""
        anchor = self.p.anchor
        last2 = 2 * self.centre
        if anchor == "last":
            self.centre2 = last2
            return
        bid, ask = self.pub_bid, self.pub_ask
        if bid is not None and ask is not None and ask - bid <= self.p.anchor_max_spread_ticks:
            if anchor == "micro":
                bq, aq = self.pub_bid_qty, self.pub_ask_qty
                self.centre2 = (2 * (bid * aq + ask * bq) + (bq + aq) // 2) // (bq + aq) if bq + aq else bid + ask
            else:
                self.centre2 = bid + ask
            return
        c2 = last2
        if ask is not None and c2 > 2 * ask - 1:
            c2 = 2 * ask - 1
        if bid is not None and c2 < 2 * bid + 1:
            c2 = 2 * bid + 1
        self.centre2 = c2

    def requote(self) -> None:
        now = self.kernel.now  # type: ignore[union-attr]
        if not self.quoting or self.guard_out is not None or not (self.open_ns <= now < self.close_ns):
            return
        c2 = self.quote_centre2()
        if self._fair_any:
            centre2 = self.fair_centre2(self.centre2)
            if centre2 is None:
                return
            c2 += centre2 - self.centre2
        self._last_requote = now
        p = self.p
        self._quoted2 = self.centre2
        # level i: floor(c - h - i*s) on the bid, ceil(c + h + i*s) on the ask (c in half ticks;
        # h and s are whole ticks, so each side is an arithmetic progression of step s)
        n, step = p.levels, p.spacing_ticks
        bid0 = (c2 - 2 * p.half_spread_ticks) // 2
        ask0 = -((-(c2 + 2 * p.half_spread_ticks)) // 2)
        size = self.quote_size(p.size) if self._flow_move else p.size
        shrink = size < p.size
        aside = not size  # the order flow has moved the value so far that the maker stands aside
        open_orders = self.open_orders
        slots = self.slots
        pos = self.position  # orders sent below change neither the position nor unloading
        unloading = self.unloading
        # blocked: a fill on this side would add to the inventory while unloading, or the
        # inventory is at its limit on this side
        if aside or (pos > 0 and unloading) or pos >= p.max_inventory:
            bids = range(0)
        else:
            bids = range(bid0, max(0, bid0 - n * step), -step)  # the positive prices only
        if aside or (pos < 0 and unloading) or pos <= -p.max_inventory:
            asks = range(0)
        else:
            asks = range(ask0, ask0 + n * step, step)
        # one look at the slots: our orders at prices no longer wanted are spare (in slot order);
        # the bid side's orders below touch no ask slot, so both sides can be sorted out first
        spare_bids: list[int] = []
        spare_asks: list[int] = []
        for key, oid in list(slots.items()):
            if oid not in open_orders:
                del slots[key]
            elif key[1] not in (bids if key[0] == "B" else asks):
                del slots[key]
                (spare_bids if key[0] == "B" else spare_asks).append(oid)
        for side, wanted, spare in (("B", bids, spare_bids), ("S", asks, spare_asks)):
            for price in wanted:
                key = (side, price)
                if key in slots:
                    if shrink and open_orders[slots[key]].leaves_qty > size:
                        self.replace(slots[key], qty=size, price=price)
                    continue
                if spare:
                    oid = spare.pop()
                    self.replace(oid, qty=size, price=price)
                    slots[key] = oid
                else:
                    slots[key] = self.submit(side, size, price, post_only=True)
            for oid in spare:
                self.cancel(oid)

    def withdraw(self) -> None:
        """Pull every quote and stay out until :meth:`resume` (cancels a volatility cool-down)."""
        self._vol_out = False
        self._cooldown_gen += 1
        self._pull()

    def resume(self) -> None:
        """Quote again now."""
        self._vol_out = False
        self._cooldown_gen += 1
        self.quoting = True
        self.requote()

    def _pull(self) -> None:
        self.quoting = False
        self._pull_quotes()

    def _pull_quotes(self) -> None:
        for oid in self.slots.values():
            if oid in self.open_orders:
                self.cancel(oid)
        self.slots.clear()

    # -- volatility -------------------------------------------------------------------------------
    def vol_range(self) -> int:
        """Range (max - min) in ticks of the trade prices seen within the last ``vol_window_ms``."""
        seen = self._prices.high_low(self.now)
        return seen[0] - seen[1] if seen else 0

    def _track(self, price: int) -> None:
        self._prices.add(self.now, price)

    def _cooldown(self) -> None:
        self.wake_in(self._cooldown_ns, (COOLDOWN, self._cooldown_gen))

    def _market_data(self) -> None:
        """Recentre; requote now or at most once per ``min_requote_ms``."""
        self._anchor()
        if abs(self.centre2 - self._quoted2) < 2 * self.p.requote_ticks or not self.quoting:
            return
        self._requote_throttled(self._min_requote_ns)

    @handles(Wakeup)
    def on_wakeup(self, msg: Wakeup, src: int) -> None:
        tag = msg.tag
        if tag.__class__ is tuple:
            if tag[0] == GUARD:
                self._guard_wake(tag[1])
                return
            if tag[1] != self._cooldown_gen or not self._vol_out:
                return
            if self.vol_range() > self.p.withdraw_vol_ticks:
                self._cooldown()  # still turbulent: stay out for another cool-down
            else:
                self._vol_out = False
                self.quoting = True
                self.requote()
            return
        if self._shared_wake(tag):
            return
        self.requote()
        nxt = self.now + int(self.p.refresh_ms * MS)
        if nxt < self.close_ns:
            self.wake_at(nxt, REFRESH)

    @handles(TradePrinted)
    def on_trade(self, msg: TradePrinted, src: int) -> None:
        price = msg.price
        out = self._guard_trade(price, msg.qty, msg.aggressor_side, msg.time_ns)
        threshold = self.p.withdraw_vol_ticks
        if threshold:
            self._track(price)
            if self.quoting and self.vol_range() > threshold:
                self.withdrawals += 1
                self._vol_out = True
                self._cooldown_gen += 1
                self._pull()
                self._cooldown()
        if price != self.centre:
            self.centre = price
            if not out and self.p.anchor == "last":
                self._market_data()

    @handles(QuoteUpdated)
    def on_quote(self, msg: QuoteUpdated, src: int) -> None:
        if not self._guard_quote(msg):
            self._market_data()

    def on_filled(self, msg: OrderFilled, side: str) -> None:
        self._guard_fill(msg.order_id, msg.qty, side)
        if msg.leaves_qty == 0:
            self._guard_order_done(msg.order_id)
            self.requote()
        elif self.position >= self.p.max_inventory or self.position <= -self.p.max_inventory:
            self.requote()

    def on_canceled(self, msg: OrderCanceled) -> None:
        self._guard_order_done(msg.order_id)

    def on_rejected(self, msg: OrderRejected) -> None:
        self._guard_order_done(msg.order_id)


# ---------------------------------------------------------------------------------------------
# Avellaneda–Stoikov maker
# ---------------------------------------------------------------------------------------------


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class ASParams(GuardParams):
    """Avellaneda–Stoikov parameters. Prices in ticks, inventory in lots, σ in ticks/√s.

    The formula only uses σ²·(T−t): the variance of the mid, in ticks², until the horizon. So
    ``gamma`` is in 1/(ticks·lots): ``gamma * sigma**2 * seconds_left`` is the reservation-price
    shift per lot held. Pick it for the horizon: with the default whole-session horizon of
    6.5 h and σ = 0.5 ticks/√s, σ²(T−t) ≈ 5850 ticks² at the open, and γ = 1e-4 skews the
    quotes by ≈ 0.6 tick per lot, fading to zero at the close. With ``horizon_s`` set and
    ``rolling_horizon`` the horizon rolls: it is always ``horizon_s`` ahead (τ = 1), so the
    inventory aversion never vanishes at the close.
    """

    gamma: PositiveFloat = 1e-4  # risk aversion, 1/(ticks·lots)
    horizon_s: PositiveFloat | None = None  # T: None = the session close; else a horizon this long
    rolling_horizon: bool = True  # with horizon_s: always horizon_s ahead (τ = 1), not min(left, T)
    # σ: EWMA of squared changes of the mid (ticks²) sampled every ``sample_ms``, in ticks/√s
    sigma_prior: NonNegativeFloat = 0.5  # starting estimate, ticks/√s
    sigma_floor: PositiveFloat = 0.05  # lower bound, ticks/√s
    sigma_alpha: Weight = 0.05  # EWMA weight of one sample
    sample_ms: PositiveFloat = 1000.0  # sampling grid of the mid for σ
    # k: trade intensity λ(δ) = A·exp(−k·δ), δ in ticks from the mid; k = 1 / EWMA(δ of trades)
    k_prior: PositiveFloat = 1.0  # starting estimate, 1/ticks
    k_floor: PositiveFloat = 0.2  # lower bound (caps the spread term 2/k at 10 ticks)
    k_cap: PositiveFloat = 20.0  # upper bound
    k_alpha: Weight = 0.05  # EWMA weight of one trade
    # "fills": fit log λ(δ) = log A − kδ to its own fill rates by quote depth δ (fills / time
    # quoted at that depth, counts halving every k_half_life_s); "trades": 1 / EWMA(trade distance)
    k_method: Literal["fills", "trades"] = "fills"
    k_depth_buckets: PositiveInt = 12  # depths 0 .. buckets-1 ticks (deeper counts in the last)
    k_half_life_s: PositiveFloat = 1800.0
    k_min_fills: PositiveInt = 8  # fills (in at least two depths) before the fit replaces k_prior
    size: PositiveInt = 100  # shares per quote
    lot_size: PositiveInt = 100  # shares per lot: q = position / lot_size
    max_inventory: PositiveInt = 2000  # shares; a side is not quoted if a fill would exceed it
    refresh_ms: PositiveFloat = 1000.0  # timer requote period
    min_requote_ns: NonNegativeInt = 10_000_000  # at most one market-data requote per this
    requote_ticks: PositiveInt = 1  # a resting quote is moved only when its price is off by this much
    # guards a real desk puts on a model quote: the inventory skew (|r − s|) and the half spread
    # are capped, so a σ estimate blown up by a crash cannot send quotes to absurd prices
    max_skew_ticks: PositiveFloat = 50.0
    max_half_spread_ticks: PositiveFloat = 50.0


@agent_kind("as_maker", ASParams, world=("fundamental",))
class AvellanedaStoikovMaker(MakerGuard, ScenarioQuoteControl, Trader):
    """Avellaneda–Stoikov (2008) market maker: one post-only bid and ask, skewed against inventory.

    * ``s`` (mid, ticks): mid of the top of book *without its own quotes* (its order alone at the
      touch does not count); when a side is missing, the last trade (else the reference price)
      kept inside the visible side. Stored in half ticks (``mid2``).
    * reservation price ``r = s − q·γ·σ²·τ``; total spread ``δ = γσ²τ + (2/γ)·ln(1 + γ/k)``;
      ``bid = floor(r − δ/2)``, ``ask = ceil(r + δ/2)``, at least one tick apart. ``q`` =
      position / lot_size; ``τ`` = time left to the horizon as a fraction of the horizon, and
      σ is then in ticks per √horizon (``sigma_horizon``), so σ²τ is in ticks².
    * σ: the mid is sampled on a fixed grid of ``sample_ms`` from the open (lazily, when a
      message arrives: grid points passed in silence count as zero changes); an EWMA of the
      squared changes, in ticks², divided by the sample length gives σ² in ticks²/s.
    * k (``k_method="fills"``, the default): the order-arrival decay of λ(δ) = A·exp(−kδ) fitted
      to its *own* fill rates by quote depth: every quote is booked at its depth δ (ticks from
      the mid when placed, ``0 .. k_depth_buckets − 1``), the time it rests there and the fills
      it gets; every refresh the counts decay (half-life ``k_half_life_s``) and a weighted
      least-squares line through ``log(fills_δ / time_δ)`` gives ``−k`` (clamped to
      ``[k_floor, k_cap]``); until ``k_min_fills`` fills at two depths or more, ``k_prior``.
      Not from the prevailing spread, which would be circular for a maker that sets it.
      ``k_method="trades"``: each printed trade is at distance ``δ = |price − s|`` ticks from
      the mid it met, exponential with mean 1/k, so k = 1 / EWMA(δ) (δ clipped at 5× the mean).
    * τ: with ``horizon_s`` and ``rolling_horizon`` the horizon is always ``horizon_s`` ahead
      (τ = 1): the inventory skew does not fade at the close.
    * guards (:class:`GuardParams`): hard inventory and loss limits with unloading by
      marketable orders, withdrawal on toxic flow or stale data and the rule to come back.
    * Requotes on market data (at most once per ``min_requote_ns``; a later one is scheduled),
      on every fill, and every ``refresh_ms``; an existing quote is moved by ``ReplaceOrder``.
      Quotes never cross the visible book (post-only). A side whose fill would take
      ``|position|`` beyond ``max_inventory`` is not quoted.
    """

    placement_role: ClassVar[str] = "solo"
    p: ASParams

    def __init__(
        self,
        name: str,
        symbol: str,
        params: ASParams,
        reference_price: int,
        open_ns: int,
        close_ns: int,
        location: str = "default",
        *,
        fundamental: Fundamental | None = None,
    ) -> None:
        super().__init__(name, symbol, location=location)
        p = self.p = params
        self.reference_price = reference_price
        self.open_ns = open_ns
        self.close_ns = close_ns
        self.quoting = True
        # market state (ticks; the mid in half ticks)
        self.ext_bid: int | None = None
        self.ext_ask: int | None = None
        self.last_trade: int | None = None
        self.mid2 = 2 * reference_price
        # horizon
        self.horizon_ns = int(p.horizon_s * SECOND) if p.horizon_s is not None else max(1, close_ns - open_ns)
        self._sqrt_horizon_s = math.sqrt(self.horizon_ns / SECOND)
        # σ estimator: EWMA of squared mid changes per sample (ticks²)
        self._sample_ns = max(1, int(p.sample_ms * MS))
        self._sample_s = self._sample_ns / SECOND
        self._var = p.sigma_prior * p.sigma_prior * self._sample_s
        self._grid_next = open_ns + self._sample_ns
        self._grid_mid2 = self.mid2
        # k estimator: EWMA of trade distances from the mid (ticks)
        self._dist = 1.0 / p.k_prior
        self.trades_seen = 0
        # quotes
        self.bid_id: int | None = None
        self.ask_id: int | None = None
        self._sent: dict[str, tuple[int, int]] = {}  # side -> (price, qty) last asked for
        self._last_requote = -(1 << 62)
        self._requote_pending = False
        self.requotes = 0
        # k fit: per depth bucket, fills and seconds quoted (decaying); the side's current booking
        nb = p.k_depth_buckets
        self._kf_fills = [0.0] * nb
        self._kf_time = [0.0] * nb
        self._kf_open: dict[str, tuple[int, int]] = {}  # side -> (depth, since ns)
        self._kf_last = open_ns
        self._k_fit: float | None = None
        self._guard_init(fundamental)

    def on_start(self) -> None:
        super().on_start()
        self.send(self.exchange, SubscribeMarketData(self.symbol, trades=True, quotes=True))
        self.wake_at(max(self.now, self.open_ns), REFRESH)

    # -- pricing (pure) -------------------------------------------------------------------------
    def reservation_price(self, mid: float, inventory_lots: float, sigma: float, tau: float) -> float:
        """r = s − q·γ·σ²·τ (ticks)."""
        return mid - inventory_lots * self.p.gamma * sigma * sigma * tau

    def optimal_spread(self, sigma: float, k: float, tau: float) -> float:
        """δ = γσ²τ + (2/γ)·ln(1 + γ/k) (ticks, bid to ask)."""
        g = self.p.gamma
        return g * sigma * sigma * tau + 2.0 / g * math.log1p(g / k)

    def quotes(self, mid: float, inventory_lots: float, sigma: float, k: float, tau: float) -> tuple[int, int]:
        """(bid, ask) in ticks: r ∓ δ/2 rounded outward, at least one tick apart.

        ``sigma`` and ``tau`` must use one time unit (σ in ticks/√unit, τ in units), e.g.
        ticks/√s and seconds, or ticks/√horizon and the fraction of the horizon left.
        """
        p = self.p
        r = self.reservation_price(mid, inventory_lots, sigma, tau)
        r = min(mid + p.max_skew_ticks, max(mid - p.max_skew_ticks, r))
        half = min(p.max_half_spread_ticks, 0.5 * self.optimal_spread(sigma, k, tau))
        bid = math.floor(r - half)
        ask = math.ceil(r + half)
        if ask <= bid:
            ask = bid + 1
        return bid, ask

    def sides_allowed(self, position: int) -> tuple[bool, bool]:
        """(bid, ask): may this side be quoted without a fill taking |position| over the limit?"""
        p = self.p
        return position + p.size <= p.max_inventory, position - p.size >= -p.max_inventory

    # -- estimates ------------------------------------------------------------------------------
    @property
    def sigma(self) -> float:
        """Volatility estimate, ticks/√s (floored)."""
        return max(self.p.sigma_floor, math.sqrt(self._var / self._sample_s))

    @property
    def sigma_horizon(self) -> float:
        """Volatility estimate in ticks per √horizon (the unit that goes with ``tau``)."""
        return self.sigma * self._sqrt_horizon_s

    @property
    def k(self) -> float:
        """Order-arrival decay estimate, 1/ticks (clamped)."""
        p = self.p
        if p.k_method == "fills":
            k = self._k_fit if self._k_fit is not None else p.k_prior
        else:
            k = 1.0 / self._dist if self._dist > 0 else p.k_cap
        return min(p.k_cap, max(p.k_floor, k))

    # -- k from fill rates by depth -------------------------------------------------------------
    def _kf_book(self, side: str, price: int | None) -> None:
        """Close the side's current depth booking; open one at ``price`` (None: not quoted)."""
        now = self.now
        booked = self._kf_open.pop(side, None)
        if booked is not None:
            self._kf_time[booked[0]] += (now - booked[1]) / SECOND
        if price is not None:
            d2 = self.mid2 - 2 * price if side == "B" else 2 * price - self.mid2
            depth = min(len(self._kf_time) - 1, max(0, (d2 + 1) // 2))
            self._kf_open[side] = (depth, now)

    def _kf_fill(self, side: str) -> None:
        booked = self._kf_open.get(side)
        if booked is not None:
            self._kf_fills[booked[0]] += 1.0

    def fill_rates(self) -> list[tuple[int, float, float]]:
        """(depth, fills, seconds quoted) per depth bucket with time booked (open bookings included)."""
        time = list(self._kf_time)
        for depth, since in self._kf_open.values():
            time[depth] += (self.now - since) / SECOND
        return [(d, f, t) for d, (f, t) in enumerate(zip(self._kf_fills, time, strict=True)) if t > 0]

    def fit_k(self) -> float | None:
        """−slope of a weighted least-squares line through log(fill rate) by depth, or None."""
        pts = [(d, f, t) for d, f, t in self.fill_rates() if t >= 1.0]
        fills, filled_depths = 0.0, 0  # the sum of the fills (added in order), the depths with one
        for _, f, _ in pts:
            fills += f
            if f >= 1.0:
                filled_depths += 1
        if fills < self.p.k_min_fills or filled_depths < 2:
            return None
        sw = sx = sy = 0.0
        ys: list[float] = []
        for d, f, t in pts:
            w = f + 0.5
            y = math.log(w / t)
            ys.append(y)
            sw += w
            sx += w * d
            sy += w * y
        mx, my = sx / sw, sy / sw
        sxx = sxy = 0.0
        for (d, f, _), y in zip(pts, ys, strict=True):
            w = f + 0.5
            sxx += w * (d - mx) * (d - mx)
            sxy += w * (d - mx) * (y - my)
        if sxx <= 0:
            return None
        return -sxy / sxx

    def _kf_refit(self) -> None:
        now = self.now
        decay = 0.5 ** ((now - self._kf_last) / SECOND / self.p.k_half_life_s)
        self._kf_last = now
        for side in list(self._kf_open):  # fold the open bookings in before decaying
            depth, since = self._kf_open[side]
            self._kf_time[depth] += (now - since) / SECOND
            self._kf_open[side] = (depth, now)
        self._kf_fills = [f * decay for f in self._kf_fills]
        self._kf_time = [t * decay for t in self._kf_time]
        k = self.fit_k()
        if k is not None:
            self._k_fit = k

    @property
    def tau(self) -> float:
        """Time left to the horizon, as a fraction of the horizon (0..1)."""
        left = self.close_ns - self.kernel.now  # type: ignore[union-attr]
        if left <= 0:
            return 0.0
        if self.p.rolling_horizon and self.p.horizon_s is not None:
            return 1.0
        return min(left, self.horizon_ns) / self.horizon_ns

    @property
    def mid(self) -> float:
        return self.mid2 / 2

    def _advance_grid(self) -> None:
        """Fold the grid points passed since the last call into the σ EWMA (O(1))."""
        now = self.kernel.now  # type: ignore[union-attr]
        if now < self._grid_next:
            return
        n = (now - self._grid_next) // self._sample_ns + 1
        d = (self.mid2 - self._grid_mid2) / 2
        a = self.p.sigma_alpha
        v = self._var + a * (d * d - self._var)
        if n > 1:
            v *= (1.0 - a) ** (n - 1)
        self._var = v
        self._grid_mid2 = self.mid2
        self._grid_next += n * self._sample_ns

    def _update_mid(self) -> None:
        bid, ask = self.ext_bid, self.ext_ask
        if bid is not None and ask is not None and ask - bid <= self.p.anchor_max_spread_ticks:
            self.mid2 = bid + ask
            return
        m2 = 2 * (self.last_trade if self.last_trade is not None else self.reference_price)
        if ask is not None and m2 > 2 * ask - 1:
            m2 = 2 * ask - 1
        if bid is not None and m2 < 2 * bid + 1:
            m2 = 2 * bid + 1
        self.mid2 = m2

    def _own_alone(self, oid: int | None, price: int, qty: int) -> bool:
        order = self.open_orders.get(oid) if oid is not None else None
        return order is not None and order.price == price and order.leaves_qty >= qty

    # -- quoting --------------------------------------------------------------------------------
    def requote(self) -> None:
        now = self.kernel.now  # type: ignore[union-attr]
        if not self.quoting or self.guard_out is not None or not (self.open_ns <= now < self.close_ns):
            return
        mid2 = self.mid2
        if self._fair_any:
            centre2 = self.fair_centre2(mid2)
            if centre2 is None:
                return
            mid2 = centre2
        self._last_requote = now
        self.requotes += 1
        p = self.p
        position = self.position
        bid, ask = self.quotes(mid2 / 2, position / p.lot_size, self.sigma_horizon, self.k, self.tau)
        if self.ext_ask is not None and bid >= self.ext_ask:
            bid = self.ext_ask - 1
        if self.ext_bid is not None and ask <= self.ext_bid:
            ask = self.ext_bid + 1
        bid_ok, ask_ok = self.sides_allowed(position)
        if self.unloading:  # quote only the side that reduces the inventory
            bid_ok, ask_ok = bid_ok and position < 0, ask_ok and position > 0
        new_bid = bid if bid_ok and bid > 0 else None
        new_ask = ask if ask_ok else None
        # move the side that would otherwise cross our own other quote first (post-only)
        sent_bid = self._sent.get("B")
        if new_bid is not None and sent_bid is not None and new_bid > sent_bid[0]:
            self._place("S", new_ask)
            self._place("B", new_bid)
        else:
            self._place("B", new_bid)
            self._place("S", new_ask)

    def _place(self, side: str, price: int | None) -> None:
        buy = side == "B"
        oid = self.bid_id if buy else self.ask_id
        order = self.open_orders.get(oid) if oid is not None else None
        size = self.quote_size(self.p.size) if self._flow_move else self.p.size
        if price is None or not size:
            if order is not None:
                self.cancel(order.order_id)
            self._set_id(side, None)
            return
        if order is None:
            self._set_id(side, self.submit(side, size, price, post_only=True))
            self._sent[side] = (price, size)
            self._kf_book(side, price)
        elif (
            (sent := self._sent.get(side)) is None
            or abs(sent[0] - price) >= self.p.requote_ticks
            or (order.leaves_qty != size and sent[0] != price)
        ):
            self.replace(order.order_id, qty=size, price=price)
            self._sent[side] = (price, size)
            self._kf_book(side, price)

    def _set_id(self, side: str, oid: int | None) -> None:
        if side == "B":
            self.bid_id = oid
        else:
            self.ask_id = oid
        if oid is None:
            self._sent.pop(side, None)
            self._kf_book(side, None)

    def _forget(self, oid: int) -> None:
        if oid == self.bid_id:
            self._set_id("B", None)
        elif oid == self.ask_id:
            self._set_id("S", None)

    def _market_data(self) -> None:
        if not self.quoting:
            return
        self._requote_throttled(self.p.min_requote_ns)

    def withdraw(self) -> None:
        """Pull both quotes and stop quoting until :meth:`resume`."""
        self.quoting = False
        self.cancel_all()
        self._set_id("B", None)
        self._set_id("S", None)

    def _pull_quotes(self) -> None:
        for side, oid in (("B", self.bid_id), ("S", self.ask_id)):
            if oid is not None and oid in self.open_orders:
                self.cancel(oid)
            self._set_id(side, None)

    def resume(self) -> None:
        """Start quoting again now."""
        self.quoting = True
        self.requote()

    # -- handlers -------------------------------------------------------------------------------
    @handles(Wakeup)
    def on_wakeup(self, msg: Wakeup, src: int) -> None:
        self._advance_grid()
        tag = msg.tag
        if tag.__class__ is tuple:
            self._guard_wake(tag[1])
            return
        if self._shared_wake(tag):
            return
        if self.p.k_method == "fills":
            self._kf_refit()
        self.requote()
        nxt = self.now + int(self.p.refresh_ms * MS)
        if nxt < self.close_ns:
            self.wake_at(nxt, REFRESH)

    @handles(QuoteUpdated)
    def on_quote(self, msg: QuoteUpdated, src: int) -> None:
        self._advance_grid()
        out = self._guard_quote(msg)
        bid, ask = msg.bid, msg.ask
        if bid is not None and self._own_alone(self.bid_id, bid, msg.bid_qty):
            bid = None
        if ask is not None and self._own_alone(self.ask_id, ask, msg.ask_qty):
            ask = None
        self.ext_bid, self.ext_ask = bid, ask
        self._update_mid()
        if not out:
            self._market_data()

    @handles(TradePrinted)
    def on_trade(self, msg: TradePrinted, src: int) -> None:
        self._advance_grid()
        out = self._guard_trade(msg.price, msg.qty, msg.aggressor_side, msg.time_ns)
        if self.p.k_method == "trades":
            d = abs(2 * msg.price - self.mid2) / 2
            cap = 5.0 * self._dist
            if d > cap:
                d = cap
            self._dist += self.p.k_alpha * (d - self._dist)
        self.trades_seen += 1
        self.last_trade = msg.price
        self._update_mid()
        if not out:
            self._market_data()

    def on_filled(self, msg: OrderFilled, side: str) -> None:
        oid = msg.order_id
        if oid == self.bid_id:
            self._kf_fill("B")
        elif oid == self.ask_id:
            self._kf_fill("S")
        if msg.leaves_qty == 0:
            self._forget(oid)
        self._guard_fill(oid, msg.qty, side)
        if msg.leaves_qty == 0:
            self._guard_order_done(oid)
        self.requote()

    def on_canceled(self, msg: OrderCanceled) -> None:
        self._forget(msg.order_id)
        self._guard_order_done(msg.order_id)

    def on_rejected(self, msg: OrderRejected) -> None:
        self._forget(msg.order_id)  # retried at the next requote
        self._guard_order_done(msg.order_id)

    def on_cancel_rejected(self, msg: CancelRejected) -> None:
        # a refused replace leaves the order as it was: ask again at the next requote
        if msg.order_id == self.bid_id:
            self._sent.pop("B", None)
        elif msg.order_id == self.ask_id:
            self._sent.pop("S", None)
