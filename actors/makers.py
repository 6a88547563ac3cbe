"""Market makers: a simple ladder and an Avellaneda–Stoikov inventory-aware quoter.

Both quote with post-only limit orders in integer ticks and keep their own order bookkeeping
through :class:`actors.trader.Trader`. Time is integer nanoseconds; floats appear only inside
the pricing formula and its online estimators.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Annotated, ClassVar

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
from actors.trader import Trader
from sim.actor import Wakeup, handles
from sim.clock import MS, SECOND

REFRESH = "refresh"
COOLDOWN = "cooldown"
REQUOTE = "requote"


PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Weight = Annotated[float, Field(gt=0, le=1)]


# ---------------------------------------------------------------------------------------------
# Ladder maker
# ---------------------------------------------------------------------------------------------


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class LadderParams:
    levels: PositiveInt = 5
    half_spread_ticks: PositiveInt = 2  # distance of the first level from the centre
    spacing_ticks: PositiveInt = 1  # distance between levels
    size: PositiveInt = 500
    refresh_ms: PositiveFloat = 1000.0
    skew_ticks_per_lot: NonNegativeFloat = 0.05  # centre shift per 100 shares held
    max_inventory: PositiveInt = 20_000  # stop quoting the side that adds to inventory beyond this
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


class LadderMaker(ScenarioQuoteControl, Trader):
    """Quotes ``levels`` prices each side around the last trade, skewed against inventory.

    Public state: ``quoting`` (False while withdrawn) and ``withdrawals`` (how many times it
    pulled its quotes because of volatility).
    """

    placement_role: ClassVar[str] = "solo"

    def __init__(
        self,
        name: str,
        symbol: str,
        params: LadderParams,
        reference_price: int,
        open_ns: int,
        close_ns: int,
        location: str = "default",
    ) -> None:
        super().__init__(name, symbol, location=location)
        self.p = params
        self.centre = reference_price
        self.open_ns = open_ns
        self.close_ns = close_ns
        self.slots: dict[tuple[str, int], int] = {}  # (side, level) -> order id
        self.quoting = True
        self.withdrawals = 0
        # rolling max / min of trade prices over the window: monotonic deques of (time, price)
        self._vol_ns = int(params.vol_window_ms * MS)
        self._cooldown_ns = int(params.cooldown_s * SECOND)
        self._hi: deque[tuple[int, int]] = deque()
        self._lo: deque[tuple[int, int]] = deque()
        self._vol_out = False  # withdrawn because of volatility (a cool-down timer is pending)
        self._cooldown_gen = 0  # stale cool-down timers carry an older generation

    def on_start(self) -> None:
        super().on_start()
        self.send(self.exchange, SubscribeMarketData(self.symbol, trades=True, quotes=False))
        self.wake_at(max(self.now, self.open_ns), REFRESH)

    def quote_centre(self) -> int:
        skew = self.position / 100 * self.p.skew_ticks_per_lot
        return self.centre - round(skew)

    def requote(self) -> None:
        if not self.quoting or not (self.open_ns <= self.now < self.close_ns):
            return
        p = self.p
        centre = self.quote_centre()
        open_orders = self.open_orders
        for side, sign in (("B", -1), ("S", 1)):
            blocked = (side == "B" and self.position >= p.max_inventory) or (
                side == "S" and self.position <= -p.max_inventory
            )
            for level in range(p.levels):
                price = centre + sign * (p.half_spread_ticks + level * p.spacing_ticks)
                key = (side, level)
                oid = self.slots.get(key)
                order = open_orders.get(oid) if oid is not None else None
                if blocked or price <= 0:
                    if order is not None:
                        self.cancel(order.order_id)
                        del self.slots[key]
                    continue
                if order is None:
                    self.slots[key] = self.submit(side, p.size, price, post_only=True)
                elif order.price != price or order.leaves_qty != p.size:
                    self.replace(order.order_id, qty=p.size, price=price)

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
        self.cancel_all()
        self.slots.clear()

    # -- volatility -------------------------------------------------------------------------------
    def vol_range(self) -> int:
        """Range (max - min) in ticks of the trade prices seen within the last ``vol_window_ms``."""
        horizon = self.now - self._vol_ns
        hi, lo = self._hi, self._lo
        while hi and hi[0][0] < horizon:
            hi.popleft()
        while lo and lo[0][0] < horizon:
            lo.popleft()
        return hi[0][1] - lo[0][1] if hi else 0

    def _track(self, price: int) -> None:
        now = self.now
        hi, lo = self._hi, self._lo
        while hi and hi[-1][1] <= price:
            hi.pop()
        hi.append((now, price))
        while lo and lo[-1][1] >= price:
            lo.pop()
        lo.append((now, price))

    def _cooldown(self) -> None:
        self.wake_in(self._cooldown_ns, (COOLDOWN, self._cooldown_gen))

    @handles(Wakeup)
    def on_wakeup(self, msg: Wakeup, src: int) -> None:
        tag = msg.tag
        if tag.__class__ is tuple:
            if tag[1] != self._cooldown_gen or not self._vol_out:
                return
            if self.vol_range() > self.p.withdraw_vol_ticks:
                self._cooldown()  # still turbulent: stay out for another cool-down
            else:
                self._vol_out = False
                self.quoting = True
                self.requote()
            return
        self.requote()
        nxt = self.now + int(self.p.refresh_ms * MS)
        if nxt < self.close_ns:
            self.wake_at(nxt, REFRESH)

    @handles(TradePrinted)
    def on_trade(self, msg: TradePrinted, src: int) -> None:
        price = msg.price
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
            self.requote()

    def on_filled(self, msg: OrderFilled, side: str) -> None:
        if msg.leaves_qty == 0:
            self.requote()


# ---------------------------------------------------------------------------------------------
# Avellaneda–Stoikov maker
# ---------------------------------------------------------------------------------------------


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class ASParams:
    """Avellaneda–Stoikov parameters. Prices in ticks, inventory in lots, σ in ticks/√s.

    The formula only uses σ²·(T−t): the variance of the mid, in ticks², until the horizon. So
    ``gamma`` is in 1/(ticks·lots): ``gamma * sigma**2 * seconds_left`` is the reservation-price
    shift per lot held. Pick it for the horizon: with the default whole-session horizon of
    6.5 h and σ = 0.5 ticks/√s, σ²(T−t) ≈ 5850 ticks² at the open, and γ = 1e-4 skews the
    quotes by ≈ 0.6 tick per lot, fading to zero at the close.
    """

    gamma: PositiveFloat = 1e-4  # risk aversion, 1/(ticks·lots)
    horizon_s: PositiveFloat | None = None  # T: None = the session close; else a rolling horizon
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
    size: PositiveInt = 100  # shares per quote
    lot_size: PositiveInt = 100  # shares per lot: q = position / lot_size
    max_inventory: PositiveInt = 2000  # shares; a side is not quoted if a fill would exceed it
    refresh_ms: PositiveFloat = 1000.0  # timer requote period
    min_requote_ns: NonNegativeInt = 10_000_000  # at most one market-data requote per this
    # guards a real desk puts on a model quote: the inventory skew (|r − s|) and the half spread
    # are capped, so a σ estimate blown up by a crash cannot send quotes to absurd prices
    max_skew_ticks: PositiveFloat = 50.0
    max_half_spread_ticks: PositiveFloat = 50.0


class AvellanedaStoikovMaker(ScenarioQuoteControl, Trader):
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
    * k: each printed trade is at distance ``δ = |price − s|`` ticks from the mid it met;
      under λ(δ) = A·exp(−kδ) the distances are exponential with mean 1/k, so k = 1 / EWMA(δ),
      starting from ``1/k_prior``, each δ clipped at 5× the current mean (robust to sweeps) and
      k clamped to ``[k_floor, k_cap]``.
    * Requotes on market data (at most once per ``min_requote_ns``; a later one is scheduled),
      on every fill, and every ``refresh_ms``; an existing quote is moved by ``ReplaceOrder``.
      Quotes never cross the visible book (post-only). A side whose fill would take
      ``|position|`` beyond ``max_inventory`` is not quoted.
    """

    placement_role: ClassVar[str] = "solo"

    def __init__(
        self,
        name: str,
        symbol: str,
        params: ASParams,
        reference_price: int,
        open_ns: int,
        close_ns: int,
        location: str = "default",
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
        return min(p.k_cap, max(p.k_floor, 1.0 / self._dist if self._dist > 0 else p.k_cap))

    @property
    def tau(self) -> float:
        """Time left to the horizon, as a fraction of the horizon (0..1)."""
        left = self.close_ns - self.now
        if left <= 0:
            return 0.0
        return min(left, self.horizon_ns) / self.horizon_ns

    @property
    def mid(self) -> float:
        return self.mid2 / 2

    def _advance_grid(self) -> None:
        """Fold the grid points passed since the last call into the σ EWMA (O(1))."""
        now = self.now
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
        if bid is not None and ask is not None:
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
        now = self.now
        if not self.quoting or not (self.open_ns <= now < self.close_ns):
            return
        self._last_requote = now
        self.requotes += 1
        p = self.p
        position = self.position
        bid, ask = self.quotes(self.mid2 / 2, position / p.lot_size, self.sigma_horizon, self.k, self.tau)
        if self.ext_ask is not None and bid >= self.ext_ask:
            bid = self.ext_ask - 1
        if self.ext_bid is not None and ask <= self.ext_bid:
            ask = self.ext_bid + 1
        bid_ok, ask_ok = self.sides_allowed(position)
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
        if price is None:
            if order is not None:
                self.cancel(order.order_id)
            self._set_id(side, None)
            return
        size = self.p.size
        if order is None:
            self._set_id(side, self.submit(side, size, price, post_only=True))
            self._sent[side] = (price, size)
        elif self._sent.get(side) != (price, size) or order.leaves_qty != size:
            self.replace(order.order_id, qty=size, price=price)
            self._sent[side] = (price, size)

    def _set_id(self, side: str, oid: int | None) -> None:
        if side == "B":
            self.bid_id = oid
        else:
            self.ask_id = oid
        if oid is None:
            self._sent.pop(side, None)

    def _forget(self, oid: int) -> None:
        if oid == self.bid_id:
            self._set_id("B", None)
        elif oid == self.ask_id:
            self._set_id("S", None)

    def _market_data(self) -> None:
        if not self.quoting:
            return
        due = self._last_requote + self.p.min_requote_ns
        if self.now >= due:
            self.requote()
        elif not self._requote_pending:
            self._requote_pending = True
            self.wake_at(due, REQUOTE)

    def withdraw(self) -> None:
        """Pull both quotes and stop quoting until :meth:`resume`."""
        self.quoting = False
        self.cancel_all()
        self.bid_id = self.ask_id = None
        self._sent.clear()

    def resume(self) -> None:
        """Start quoting again now."""
        self.quoting = True
        self.requote()

    # -- handlers -------------------------------------------------------------------------------
    @handles(Wakeup)
    def on_wakeup(self, msg: Wakeup, src: int) -> None:
        self._advance_grid()
        if msg.tag == REQUOTE:
            self._requote_pending = False
            self.requote()
            return
        self.requote()
        nxt = self.now + int(self.p.refresh_ms * MS)
        if nxt < self.close_ns:
            self.wake_at(nxt, REFRESH)

    @handles(QuoteUpdated)
    def on_quote(self, msg: QuoteUpdated, src: int) -> None:
        self._advance_grid()
        bid, ask = msg.bid, msg.ask
        if bid is not None and self._own_alone(self.bid_id, bid, msg.bid_qty):
            bid = None
        if ask is not None and self._own_alone(self.ask_id, ask, msg.ask_qty):
            ask = None
        self.ext_bid, self.ext_ask = bid, ask
        self._update_mid()
        self._market_data()

    @handles(TradePrinted)
    def on_trade(self, msg: TradePrinted, src: int) -> None:
        self._advance_grid()
        d = abs(2 * msg.price - self.mid2) / 2
        cap = 5.0 * self._dist
        if d > cap:
            d = cap
        self._dist += self.p.k_alpha * (d - self._dist)
        self.trades_seen += 1
        self.last_trade = msg.price
        self._update_mid()
        self._market_data()

    def on_filled(self, msg: OrderFilled, side: str) -> None:
        if msg.leaves_qty == 0:
            self._forget(msg.order_id)
        self.requote()

    def on_canceled(self, msg: OrderCanceled) -> None:
        self._forget(msg.order_id)

    def on_rejected(self, msg: OrderRejected) -> None:
        self._forget(msg.order_id)  # retried at the next requote

    def on_cancel_rejected(self, msg: CancelRejected) -> None:
        # a refused replace leaves the order as it was: ask again at the next requote
        if msg.order_id == self.bid_id:
            self._sent.pop("B", None)
        elif msg.order_id == self.ask_id:
            self._sent.pop("S", None)
