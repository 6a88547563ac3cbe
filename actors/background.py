"""Background traders that make a market's order flow: noise, value and momentum traders.

All three share the constructor ``(name, symbol, params, reference_price, open_ns, close_ns,
location="default", *, activity=None[, fundamental=None])``. Hot-path work is plain Python on
floats and ``self.random``: no numpy per message, O(1) per market-data message.

Arrivals (noise and value traders) form a renewal process in *business time*: inter-arrival
gaps are drawn with mean ``3600 / rate_per_hour`` seconds from ``arrival`` (``"exponential"`` =
Poisson; ``"weibull"``, ``"lognormal"`` or ``"pareto"`` are heavier-tailed, burstier, with
``arrival_shape`` = Weibull shape k (k < 1: coefficient of variation > 1), lognormal sigma
(CV > 1 when sigma > 0.83) or Pareto-II (Lomax) tail index alpha > 1 (CV > 1 always)). The gap
is mapped to calendar time through a shared ``actors.world.Activity`` when one is given, so
all agents speed up and slow down together; without one, business time is calendar time.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, with_config

from actors.messages import (
    BookSnapshot,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    PriceAlert,
    QueryBook,
    SubscribeMarketData,
    TradePrinted,
)
from actors.registry import agent_kind
from actors.trader import Trader
from actors.world import Activity, Fundamental
from sim.actor import Wakeup, handles
from sim.clock import SECOND

ARRIVE, EXPIRE = "arrive", "expire"
#: wake-up tags of a look answering a price alert, and the direction of the move each answers
ALERTED = {"alerted-down": "down", "alerted-up": "up"}


PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Probability = Annotated[float, Field(ge=0, le=1)]
NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
ArrivalDist = Literal["exponential", "weibull", "lognormal", "pareto"]


def check_arrival(arrival: str, shape: float) -> None:
    if arrival == "pareto" and shape <= 1.0:
        raise ValueError("arrival_shape of a pareto arrival (tail index) must be > 1 for a finite mean")


def gap_sampler(rnd: random.Random, arrival: str, shape: float) -> Callable[[], float]:
    """A function drawing inter-arrival gaps with mean 1 from ``rnd``."""
    if arrival == "exponential":
        return partial(rnd.expovariate, 1.0)
    if arrival == "weibull":
        return partial(rnd.weibullvariate, 1.0 / math.gamma(1.0 + 1.0 / shape), shape)
    if arrival == "lognormal":
        return partial(rnd.lognormvariate, -0.5 * shape * shape, shape)
    if arrival == "pareto":  # Lomax: paretovariate(a) - 1 has mean 1 / (a - 1)
        pareto, scale = rnd.paretovariate, shape - 1.0
        return lambda: (pareto(shape) - 1.0) * scale
    raise ValueError(f"unknown arrival distribution {arrival!r}")


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class NoiseParams:
    rate_per_hour: NonNegative = 2.0  # mean arrivals per hour (of business time)
    market_prob: Probability = 0.1  # share of arrivals that send a market order
    offset_mean_ticks: NonNegative = 5.0  # limit price distance from the touch (exponential)
    min_lots: PositiveInt = 1
    max_lots: PositiveInt = 10
    lot_size: PositiveInt = 100
    order_lifetime_s: Positive = 300.0  # unfilled limit orders canceled after
    arrival: ArrivalDist = "exponential"  # inter-arrival distribution (see module docstring)
    arrival_shape: Positive = 0.6  # Weibull k / lognormal sigma / Pareto alpha; unused by exponential
    # None: "market" arrivals send true market orders; N: marketable IOC limits N ticks through
    # the far touch (what retail brokers route), so an empty book cannot print absurd prices
    market_limit_ticks: Annotated[int, Field(ge=0)] | None = None
    # retail stop orders: this share of the limit-order arrivals sends a stop instead (a sell stop
    # below the bid, a buy stop above the ask, ``stop_offset_mean_ticks`` away on average,
    # exponential), elected by a trade at or through it, canceled after ``stop_lifetime_s``; a
    # fall elects the sell stops one after another (a cascade). 0 = off (no extra draws)
    stop_prob: Probability = 0.0
    stop_offset_mean_ticks: NonNegative = 30.0
    stop_lifetime_s: Positive = 1800.0
    # None: a stop becomes a market order when elected; N: a stop-limit N ticks through its stop
    stop_limit_ticks: Annotated[int, Field(ge=0)] | None = None
    # price alerts (actors/attention.py): the chance of answering one with an extra look at the
    # market, after an exponential delay of this mean; 0 = alerts are ignored (no draws)
    alert_prob: Probability = 0.0
    alert_react_s: Positive = 30.0
    # attention is finite: after answering an alert, a trader ignores the alerts of the next
    # ``alert_refractory_s`` seconds (no draws for them); 0 = answers every alert
    alert_refractory_s: NonNegative = 0.0
    # what an alerted look sends: a marketable order with this chance (else a limit order as
    # usual), on the side of the move (a sell after a fall) with chance ``alert_follow`` (else
    # either side at even odds): 0.5 / 0.0 is an ordinary look, higher values a crowd that panics
    alert_market_prob: Probability = 0.5
    alert_follow: Probability = 0.0

    def __post_init__(self) -> None:
        check_arrival(self.arrival, self.arrival_shape)
        if self.max_lots < self.min_lots:
            raise ValueError("max_lots must be >= min_lots")


class BackgroundTrader(Trader):
    """Arrival scheduling in business time, and expiry of resting orders.

    ``params`` carries the arrival process: ``rate_per_hour``, ``arrival``, ``arrival_shape``."""

    def __init__(
        self,
        name: str,
        symbol: str,
        params: NoiseParams | ValueParams,
        reference_price: int,
        open_ns: int,
        close_ns: int,
        location: str,
        activity: Activity | None,
    ) -> None:
        super().__init__(name, symbol, location=location)
        self.p = params
        rate_per_hour, arrival, arrival_shape = params.rate_per_hour, params.arrival, params.arrival_shape
        self.reference_price = reference_price
        self.open_ns = open_ns
        self.close_ns = close_ns
        self.activity = activity
        self._arrival = (arrival, arrival_shape)
        self._mean_gap_ns = 3600 * SECOND / rate_per_hour if rate_per_hour > 0 else math.inf
        self._mean_gap_s = self._mean_gap_ns / SECOND
        self._draw_gap: Callable[[], float] = partial(random.expovariate, 1.0)
        self._canceling: set[int] = set()
        self._refractory_ns = int(params.alert_refractory_s * SECOND)
        self._attentive_from = 0  # alerts before this time are ignored (the refractory period)

    def on_start(self) -> None:
        super().on_start()
        self._draw_gap = gap_sampler(self.random, *self._arrival)
        self._schedule_arrival(max(self.now, self.open_ns))

    def _schedule_arrival(self, after_ns: int) -> None:
        if self._mean_gap_ns == math.inf:
            return
        activity = self.activity
        if activity is None:
            t = after_ns + int(self._draw_gap() * self._mean_gap_ns) + 1
        else:
            t = activity.next_arrival(after_ns, self._draw_gap() * self._mean_gap_s) + 1
        if t < self.close_ns:
            self.wake_at(t, ARRIVE)

    def cancel_once(self, order_id: int) -> None:
        """Cancel an open order unless a cancel for it is already on its way."""
        if order_id in self.open_orders and order_id not in self._canceling:
            self._canceling.add(order_id)
            self.cancel(order_id)

    @handles(Wakeup)
    def on_wakeup(self, msg: Wakeup, src: int) -> None:
        if msg.tag == ARRIVE:
            self.on_arrival()
            self._schedule_arrival(self.kernel.now)  # type: ignore[union-attr]
        elif msg.tag in ALERTED:
            self.on_alerted(ALERTED[msg.tag])  # an extra look: the renewal chain goes on as it was
        else:
            self.cancel_once(msg.tag)

    def on_arrival(self) -> None:
        self.send(self.exchange, QueryBook(self.symbol, 1))

    @handles(PriceAlert)
    def on_alert(self, msg: PriceAlert, src: int) -> None:
        """With chance ``alert_prob``, one extra look after an exponential delay of mean
        ``alert_react_s`` (actors/attention.py); no draw at all when ``alert_prob`` is 0 or within
        ``alert_refractory_s`` of the last alert answered."""
        p = self.p
        now = self.now
        if p.alert_prob <= 0 or now >= self.close_ns or now < self._attentive_from:
            return
        rnd = self.random
        if rnd.random() < p.alert_prob:
            tag = "alerted-down" if msg.direction == "down" else "alerted-up"
            self.wake_in(1 + int(rnd.expovariate(1.0) * p.alert_react_s * SECOND), tag)
            self._attentive_from = now + self._refractory_ns

    def on_alerted(self, direction: str) -> None:
        """The extra look an alert brought: by default an ordinary arrival."""
        self.on_arrival()

    def on_canceled(self, msg: OrderCanceled) -> None:
        self._canceling.discard(msg.order_id)

    def on_filled(self, msg: OrderFilled, side: str) -> None:
        if msg.leaves_qty == 0:
            self._canceling.discard(msg.order_id)

    def on_rejected(self, msg: OrderRejected) -> None:
        self._canceling.discard(msg.order_id)


@agent_kind("noise", NoiseParams, world=("activity",))
class NoiseTrader(BackgroundTrader):
    """Arrives at renewal times, looks at the book, sends a random buy or sell order.

    With ``arrival="exponential"`` and no ``activity`` its draws are exactly those of the
    original Poisson noise trader, so existing golden digests hold.
    """

    p: NoiseParams

    def __init__(
        self,
        name: str,
        symbol: str,
        params: NoiseParams,
        reference_price: int,
        open_ns: int,
        close_ns: int,
        location: str = "default",
        *,
        activity: Activity | None = None,
    ) -> None:
        super().__init__(name, symbol, params, reference_price, open_ns, close_ns, location, activity)
        self._alerted: deque[str] = deque()  # directions of the alerts whose looks are on their way

    def on_alerted(self, direction: str) -> None:
        self._alerted.append(direction)
        self.on_arrival()

    @handles(BookSnapshot)
    def on_snapshot(self, msg: BookSnapshot, src: int) -> None:
        rnd = self.random
        p = self.p
        market_prob = p.market_prob
        side = None
        if self._alerted:  # this look answers an alert (snapshots come back in the order asked)
            market_prob = p.alert_market_prob
            direction = self._alerted.popleft()
            if rnd.random() < p.alert_follow:
                side = "S" if direction == "down" else "B"
        if side is None:
            side = "B" if rnd.random() < 0.5 else "S"
        qty = rnd.randint(p.min_lots, p.max_lots) * p.lot_size
        bid = msg.bids[0][0] if msg.bids else None
        ask = msg.asks[0][0] if msg.asks else None
        if rnd.random() < market_prob:
            limit = p.market_limit_ticks
            if limit is None:
                self.submit(side, qty, None, tif="IOC")
            else:
                far = ask if side == "B" else bid
                if far is not None:
                    self.submit(side, qty, far + limit if side == "B" else max(1, far - limit), tif="IOC")
            return
        anchor_ref = msg.last_price if msg.last_price is not None else self.reference_price
        if p.stop_prob > 0 and rnd.random() < p.stop_prob:
            self._send_stop(side, qty, bid, ask, anchor_ref)
            return
        offset = int(rnd.expovariate(1.0) * p.offset_mean_ticks)
        if side == "B":
            touch = bid if bid is not None else (ask - 1 if ask is not None else anchor_ref - 1)
            price = touch - offset
        else:
            touch = ask if ask is not None else (bid + 1 if bid is not None else anchor_ref + 1)
            price = touch + offset
        price = max(1, price)
        oid = self.submit(side, qty, price)
        self.wake_in(int(p.order_lifetime_s * SECOND), oid)

    def _send_stop(self, side: str, qty: int, bid: int | None, ask: int | None, last: int) -> None:
        """A stop (or stop-limit) order away from the market: a sell stop under the bid (the last
        price when there is none), a buy stop over the ask."""
        p = self.p
        offset = 1 + int(self.random.expovariate(1.0) * p.stop_offset_mean_ticks)
        if side == "S":
            stop = (bid if bid is not None else last) - offset
            limit = None if p.stop_limit_ticks is None else stop - p.stop_limit_ticks
        else:
            stop = (ask if ask is not None else last) + offset
            limit = None if p.stop_limit_ticks is None else stop + p.stop_limit_ticks
        if stop <= 0 or (limit is not None and limit <= 0):
            return
        oid = self.submit(side, qty, limit, stop_price=stop)
        self.wake_in(int(p.stop_lifetime_s * SECOND), oid)


# ---------------------------------------------------------------------------------------------
# Value traders
# ---------------------------------------------------------------------------------------------


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class ValueParams:
    """A value trader: trades toward its private, noisy view of the fundamental (ticks)."""

    rate_per_hour: NonNegative = 6.0  # mean arrivals per hour (of business time)
    arrival: ArrivalDist = "weibull"
    arrival_shape: Positive = 0.6
    bias_sd_ticks: NonNegative = 5.0  # sd of the trader's persistent bias, drawn once
    noise_sd_ticks: NonNegative = 4.0  # sd of the fresh noise of each look
    threshold_ticks: NonNegative = 3.0  # take liquidity when view - ask (bid - view) exceeds this
    through_ticks: NonNegativeInt = 1  # a taking limit may go this far through the touch ...
    # ... but never beyond view -/+ threshold_ticks
    base_lots: PositiveInt = 1  # lots at the threshold
    lots_per_tick: NonNegative = 0.25  # extra lots per tick of mispricing beyond the threshold
    max_lots: PositiveInt = 5
    lot_size: PositiveInt = 100
    passive_prob: Probability = 0.5  # when not taking: chance to post a passive limit order
    passive_edge_ticks: NonNegative = 2.0  # a passive buy rests at least this far below the view
    order_lifetime_s: Positive = 120.0  # resting orders canceled after
    max_position: PositiveInt = 5_000  # shares, long or short, counting open orders
    # "touch": a passive order rests one tick inside the touch (never nearer its view than
    # passive_edge_ticks); "value": it rests at its valuation, view -/+ passive_edge_ticks,
    # wherever that is in the book (only kept from crossing)
    passive_at: Literal["touch", "value"] = "touch"
    # finite capital: gross position value (shares x price, ticks x shares) it may hold; None: no cap
    capital: PositiveInt | None = None
    # loss stop: below -max_loss (ticks x shares, marked to the mid) it cancels, flattens with one
    # marketable order and trades no more that day; None: no stop
    max_loss: PositiveInt | None = None
    reaction_delay_s: NonNegative = 0.0  # its view uses the fundamental as it was this long ago
    # learning from order flow: an EWMA (weight flow_alpha per look) of the sign of the last
    # trade against the quotes (+1 at or above the ask, -1 at or below the bid) moves its view
    # by flow_ticks per unit: persistent selling lowers the valuation
    flow_ticks: NonNegative = 0.0
    flow_alpha: Annotated[float, Field(gt=0, le=1)] = 0.2
    # standing orders at its valuation (None: off): at every look it keeps one resting bid at
    # view - standing_edge_ticks and one ask at view + standing_edge_ticks (standing_lots each,
    # within its position room, kept from crossing), moved only when the wanted price is
    # standing_requote_ticks or more away: value traders' liquidity far from the touch, so a
    # sweep or a maker spiral meets a wall of valuations instead of an empty book
    standing_edge_ticks: NonNegative | None = None
    standing_lots: PositiveInt = 1  # size of each standing order, lots
    standing_requote_ticks: PositiveInt = 2  # a standing order is moved when this far from wanted
    # price alerts (actors/attention.py): the chance of answering one with an extra look at the
    # market (buying a fall it sees through its view), after an exponential delay of this mean
    alert_prob: Probability = 0.0
    alert_react_s: Positive = 30.0
    alert_refractory_s: NonNegative = 0.0  # as the noise trader's: alerts ignored after one answered

    def __post_init__(self) -> None:
        check_arrival(self.arrival, self.arrival_shape)
        if self.max_lots < self.base_lots:
            raise ValueError("max_lots must be >= base_lots")


@agent_kind("value", ValueParams, world=("activity", "fundamental"))
class ValueTrader(BackgroundTrader):
    """Arrives at renewal times, looks at the fundamental and the book, trades toward value.

    On arrival it forms a view = fundamental (``reaction_delay_s`` ago) + its persistent bias +
    fresh noise + ``flow_ticks`` × its order-flow estimate, and queries the top of book. If the
    view is above the ask by more than ``threshold_ticks`` it buys
    with an IOC limit at the ask (up to ``through_ticks`` through it, never above view -
    threshold), the size growing with the mispricing; symmetrically it sells. Otherwise, with
    probability ``passive_prob``, it posts a DAY limit order on the side of its view, one tick
    inside the touch but at least ``passive_edge_ticks`` from its view; such orders are
    canceled after ``order_lifetime_s`` or as soon as a later view makes them wrong; with
    ``passive_at="value"`` it rests at view ∓ ``passive_edge_ticks`` instead (a deep book of
    valuations). With ``standing_edge_ticks`` it also keeps one standing bid and one ask at
    view ∓ ``standing_edge_ticks`` (moved at a look when ``standing_requote_ticks`` off, never
    crossing, no expiry). ``capital`` caps the gross value held, ``max_loss`` stops it for the day
    (``stopped``) after one flattening order. An IOC refused because trading is halted becomes a
    DAY limit for the reopening auction at a price from its valuation (view ∓ threshold).
    """

    p: ValueParams

    def __init__(
        self,
        name: str,
        symbol: str,
        params: ValueParams,
        reference_price: int,
        open_ns: int,
        close_ns: int,
        location: str = "default",
        *,
        activity: Activity | None = None,
        fundamental: Fundamental | None = None,
    ) -> None:
        if fundamental is None:
            raise ValueError("a ValueTrader needs a fundamental (actors.world.Fundamental)")
        super().__init__(name, symbol, params, reference_price, open_ns, close_ns, location, activity)
        self.fundamental = fundamental
        self.bias = 0.0
        self.view = float(reference_price)
        self._ioc: dict[int, tuple[str, int, int]] = {}  # live IOC orders: id -> (side, qty, price)
        self.flow = 0.0  # EWMA of the last trade's sign against the quotes, per look
        self.stopped = False  # loss stop hit: no more trading today
        self._delay_ns = int(params.reaction_delay_s * SECOND)
        self._standing: dict[str, int] = {}  # side -> id of its standing order (standing_edge_ticks)

    def _take(self, side: str, qty: int, price: int) -> None:
        """An IOC at ``price``; if trading is halted it joins the reopening auction instead."""
        self._ioc[self.submit(side, qty, price, tif="IOC")] = (side, qty, price)

    def on_rejected(self, msg: OrderRejected) -> None:
        super().on_rejected(msg)
        order = self._ioc.pop(msg.order_id, None)
        if order is not None and msg.reason == "trading halted" and not self.stopped:
            # a DAY limit for the reopening auction, priced from its valuation now
            side, qty, _ = order
            view = self.valuation()
            t = self.p.threshold_ticks
            price = math.floor(view - t) if side == "B" else math.ceil(view + t)
            if price > 0:
                oid = self.submit(side, qty, price)
                self.wake_in(int(self.p.order_lifetime_s * SECOND), oid)

    def on_canceled(self, msg: OrderCanceled) -> None:
        super().on_canceled(msg)
        self._ioc.pop(msg.order_id, None)

    def on_filled(self, msg: OrderFilled, side: str) -> None:
        super().on_filled(msg, side)
        if msg.leaves_qty == 0:
            self._ioc.pop(msg.order_id, None)

    def on_start(self) -> None:
        self.bias = self.random.gauss(0.0, self.p.bias_sd_ticks) if self.p.bias_sd_ticks > 0 else 0.0
        super().on_start()

    def valuation(self) -> float:
        """Fundamental (as seen with its reaction delay) + bias + what order flow taught it."""
        now = self.kernel.now  # type: ignore[union-attr]
        return self.fundamental.value_at(now - self._delay_ns) + self.bias + self.p.flow_ticks * self.flow

    def on_arrival(self) -> None:
        if self.stopped:
            return
        noise = self.p.noise_sd_ticks
        self.view = self.valuation() + (self.random.gauss(0.0, noise) if noise else 0.0)
        super().on_arrival()

    def _learn(self, msg: BookSnapshot, bid: int | None, ask: int | None) -> None:
        last = msg.last_price
        if last is None:
            return
        sign = 1.0 if ask is not None and last >= ask else -1.0 if bid is not None and last <= bid else 0.0
        old = self.flow
        self.flow = old + self.p.flow_alpha * (sign - old)
        self.view += self.p.flow_ticks * (self.flow - old)  # the view formed at arrival used the old estimate

    def _loss_stop(self, bid: int | None, ask: int | None, last: int | None) -> bool:
        """True (and it stops for the day) when the marked loss passes ``max_loss``."""
        if bid is not None and ask is not None:
            mark = (bid + ask) / 2.0
        elif last is not None:
            mark = float(last)
        else:
            return False
        assert self.p.max_loss is not None
        if self.cash + self.position * mark >= -self.p.max_loss:
            return False
        self.stopped = True
        for oid in list(self.open_orders):
            self.cancel_once(oid)
        pos = self.position
        if pos > 0 and bid is not None:
            self.submit("S", pos, max(1, bid - self.p.through_ticks), tif="IOC")
        elif pos < 0 and ask is not None:
            self.submit("B", -pos, ask + self.p.through_ticks, tif="IOC")
        return True

    @handles(BookSnapshot)
    def on_snapshot(self, msg: BookSnapshot, src: int) -> None:
        if self.stopped:
            return
        p = self.p
        bid = msg.bids[0][0] if msg.bids else None
        ask = msg.asks[0][0] if msg.asks else None
        if p.flow_ticks:
            self._learn(msg, bid, ask)
        if p.max_loss is not None and self._loss_stop(bid, ask, msg.last_price):
            return
        view = self.view
        edge = p.passive_edge_ticks
        open_buy = open_sell = 0
        for order in list(self.open_orders.values()):
            if order.price is not None and (
                (order.side == "B" and order.price > view - edge) or (order.side == "S" and order.price < view + edge)
            ):
                self.cancel_once(order.order_id)
            elif order.side == "B":
                open_buy += order.leaves_qty
            else:
                open_sell += order.leaves_qty
        lot = p.lot_size
        buy_room = (p.max_position - self.position - open_buy) // lot * lot
        sell_room = (p.max_position + self.position - open_sell) // lot * lot
        if p.capital is not None:
            px = max(1.0, view)
            buy_room = min(buy_room, int((p.capital / px - self.position - open_buy) // lot * lot))
            sell_room = min(sell_room, int((p.capital / px + self.position - open_sell) // lot * lot))
        if p.standing_edge_ticks is not None:
            buy_room, sell_room = self._stand(view, bid, ask, buy_room, sell_room)
        threshold = p.threshold_ticks
        if ask is not None and view - ask > threshold:
            if buy_room > 0:
                lots = min(p.max_lots, p.base_lots + int((view - ask - threshold) * p.lots_per_tick))
                price = min(ask + p.through_ticks, math.floor(view - threshold))
                self._take("B", min(lots * lot, buy_room), max(price, ask))
            return
        if bid is not None and bid - view > threshold:
            if sell_room > 0:
                lots = min(p.max_lots, p.base_lots + int((bid - view - threshold) * p.lots_per_tick))
                price = max(bid - p.through_ticks, math.ceil(view + threshold))
                self._take("S", min(lots * lot, sell_room), min(price, bid))
            return
        if p.passive_prob <= 0 or self.random.random() >= p.passive_prob:
            return
        if bid is not None and ask is not None:
            mid = (bid + ask) / 2.0
        else:
            mid = float(msg.last_price if msg.last_price is not None else self.reference_price)
        qty = p.base_lots * lot
        at_touch = p.passive_at == "touch"
        if view >= mid and buy_room >= qty:
            price = math.floor(view - edge)
            if bid is not None and at_touch:
                price = min(price, bid + 1)
            if ask is not None:
                price = min(price, ask - 1)
            side = "B"
        elif view < mid and sell_room >= qty:
            price = math.ceil(view + edge)
            if ask is not None and at_touch:
                price = max(price, ask - 1)
            if bid is not None:
                price = max(price, bid + 1)
            side = "S"
        else:
            return
        if price <= 0:
            return
        oid = self.submit(side, qty, price)
        self.wake_in(int(p.order_lifetime_s * SECOND), oid)

    def _stand(self, view: float, bid: int | None, ask: int | None, buy_room: int, sell_room: int) -> tuple[int, int]:
        """Keep the standing bid and ask at view -/+ ``standing_edge_ticks`` (off by default);
        returns the position rooms left for the look's other orders."""
        p = self.p
        edge = p.standing_edge_ticks
        assert edge is not None
        rooms = {"B": buy_room, "S": sell_room}
        for side in ("B", "S"):
            oid = self._standing.get(side)
            order = self.open_orders.get(oid) if oid is not None else None
            if order is not None and oid in self._canceling:
                order = None  # the passive logic is canceling it (the view moved through it)
            held = order.leaves_qty if order is not None else 0
            if side == "B":
                price = math.floor(view - edge)
                if ask is not None:
                    price = min(price, ask - 1)
            else:
                price = math.ceil(view + edge)
                if bid is not None:
                    price = max(price, bid + 1)
            qty = min(p.standing_lots * p.lot_size, rooms[side] + held)
            if qty <= 0 or price <= 0:
                if order is not None:
                    self.cancel_once(order.order_id)
                self._standing.pop(side, None)
                continue
            if order is None:
                self._standing[side] = self.submit(side, qty, price)
                rooms[side] -= qty
            elif order.price is None or abs(order.price - price) >= p.standing_requote_ticks:
                self.replace(order.order_id, qty=qty, price=price)
                rooms[side] -= qty - held
        return rooms["B"], rooms["S"]


# ---------------------------------------------------------------------------------------------
# Momentum traders
# ---------------------------------------------------------------------------------------------


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class MomentumParams:
    """A trend follower on time-based EWMAs of the last trade price (ticks, seconds)."""

    fast_s: Positive = 30.0  # time constant of the fast EWMA, seconds
    slow_s: Positive = 300.0  # time constant of the slow EWMA, seconds
    threshold_ticks: NonNegative = 2.0  # act when |fast - slow| exceeds this
    lots: PositiveInt = 5  # size of one clip, in lots
    lot_size: PositiveInt = 100
    max_position: PositiveInt = 2_000  # shares, long or short, counting open orders
    min_interval_s: NonNegative = 30.0  # minimum time between two orders
    warmup_s: NonNegative = 120.0  # no orders until this long after the first trade seen
    use_market_orders: bool = False  # market IOC; otherwise IOC limit at last -/+ slippage
    max_slippage_ticks: NonNegativeInt = 5
    flatten_on_reverse: bool = True  # close the position when the signal crosses back through 0
    add_on_trend: bool = False  # keep adding a clip per min_interval while the trend lasts
    jitter: Annotated[float, Field(ge=0, lt=1)] = 0.2  # each trader scales fast_s, slow_s and
    # threshold_ticks by its own U(1 - jitter, 1 + jitter), so a crowd does not act as one

    # None: off. N: after every fill that leaves a position, a protective stop order (a sell stop
    # N ticks below the fill for a long, a buy stop N above for a short) for the whole position,
    # replacing the previous one; canceled when the position is closed. Stops elect each other's
    # fills at the exchange, so a crowd of them can cascade.
    stop_loss_ticks: PositiveInt | None = None

    def __post_init__(self) -> None:
        if self.fast_s >= self.slow_s:
            raise ValueError("fast_s must be shorter than slow_s")


@agent_kind("momentum", MomentumParams)
class MomentumTrader(Trader):
    """Trades on crossovers of a fast and a slow EWMA of the trade price.

    The EWMAs are the exact continuous-time exponential averages of the last-trade-price step
    function: on each trade, ``ema += (1 - exp(-dt / tau)) * (previous price - ema)``, two
    ``math.exp`` per trade whatever the window. When ``fast - slow`` rises above
    ``threshold_ticks`` it buys a clip (covering any short first), below ``-threshold_ticks``
    it sells; with ``flatten_on_reverse`` it closes its position as soon as the signal crosses
    back through zero. ``activity`` and ``fundamental`` are accepted for a uniform builder
    signature and unused.
    """

    def __init__(
        self,
        name: str,
        symbol: str,
        params: MomentumParams,
        reference_price: int,
        open_ns: int,
        close_ns: int,
        location: str = "default",
        *,
        activity: Activity | None = None,
        fundamental: Fundamental | None = None,
    ) -> None:
        super().__init__(name, symbol, location=location)
        self.p = params
        self.reference_price = reference_price
        self.open_ns = open_ns
        self.close_ns = close_ns
        self.fast = self.slow = float(reference_price)
        self.last_price: int | None = None
        self.regime = 0  # +1 long trend acted on, -1 short, 0 none
        self._inv_fast = 1.0 / params.fast_s
        self._inv_slow = 1.0 / params.slow_s
        self._threshold = params.threshold_ticks
        self._last_t = 0
        self._gate_ns = 0  # no decision on trades printed before this (warm-up, min interval)
        self._min_interval_ns = int(params.min_interval_s * SECOND)
        self._stop_id: int | None = None  # the protective stop in force (stop_loss_ticks)
        self._stop_ids: set[int] = set()  # every protective stop not yet done (old ones being canceled)

    def on_start(self) -> None:
        super().on_start()
        j = self.p.jitter
        if j > 0:
            rnd = self.random
            self._inv_fast /= rnd.uniform(1.0 - j, 1.0 + j)
            self._inv_slow /= rnd.uniform(1.0 - j, 1.0 + j)
            self._threshold *= rnd.uniform(1.0 - j, 1.0 + j)
        self.send(self.exchange, SubscribeMarketData(self.symbol, trades=True, quotes=False))

    @property
    def signal(self) -> float:
        return self.fast - self.slow

    @handles(TradePrinted)
    def on_trade(self, msg: TradePrinted, src: int) -> None:
        t = msg.time_ns
        last = self.last_price
        if last is None:
            self.fast = self.slow = float(msg.price)
            self._gate_ns = max(self._gate_ns, t + int(self.p.warmup_s * SECOND))
        elif t > self._last_t:
            dt = (self._last_t - t) / SECOND  # negative: exp(dt / tau) is the weight kept
            self.fast += (1.0 - math.exp(dt * self._inv_fast)) * (last - self.fast)
            self.slow += (1.0 - math.exp(dt * self._inv_slow)) * (last - self.slow)
        self.last_price = msg.price
        self._last_t = t
        if t < self._gate_ns:  # warming up or too soon after the last order
            return
        now = self.kernel.now  # type: ignore[union-attr]
        if self.open_ns <= now < self.close_ns:
            self._decide(self.fast - self.slow, msg.price)

    def _decide(self, sig: float, price: int) -> None:
        p = self.p
        threshold = self._threshold
        regime = self.regime
        if sig > threshold:
            if regime != 1:
                self.regime = 1
                self._trade("B", p.lots * p.lot_size + max(0, -self.position), price)
            elif p.add_on_trend:
                self._trade("B", p.lots * p.lot_size, price)
        elif sig < -threshold:
            if regime != -1:
                self.regime = -1
                self._trade("S", p.lots * p.lot_size + max(0, self.position), price)
            elif p.add_on_trend:
                self._trade("S", p.lots * p.lot_size, price)
        elif p.flatten_on_reverse and ((regime == 1 and sig <= 0) or (regime == -1 and sig >= 0)):
            self.regime = 0
            pos = self.position
            if pos > 0:
                self._trade("S", pos, price)
            elif pos < 0:
                self._trade("B", -pos, price)

    def _trade(self, side: str, qty: int, price: int) -> None:
        p = self.p
        exposure = self.position
        stops = self._stop_ids
        for order in self.open_orders.values():
            if stops and order.order_id in stops:
                continue  # a protective stop only ever reduces the position
            exposure += order.leaves_qty if order.side == "B" else -order.leaves_qty
        room = p.max_position - exposure if side == "B" else p.max_position + exposure
        qty = min(qty, room)
        if qty <= 0:
            return
        if p.use_market_orders:
            self.submit(side, qty, None, tif="IOC")
        else:
            limit = price + p.max_slippage_ticks if side == "B" else max(1, price - p.max_slippage_ticks)
            self.submit(side, qty, limit, tif="IOC")
        self._gate_ns = max(self._gate_ns, self.now + self._min_interval_ns)

    # -- protective stops (stop_loss_ticks; off by default) ---------------------------------------
    def on_filled(self, msg: OrderFilled, side: str) -> None:
        if self.p.stop_loss_ticks is None:
            return
        oid = msg.order_id
        if oid in self._stop_ids:
            if msg.leaves_qty == 0:
                self._stop_done(oid)
            if oid == self._stop_id:
                return  # the stop in force is doing its job
        self._protect(msg.price)

    def on_canceled(self, msg: OrderCanceled) -> None:
        self._stop_done(msg.order_id)

    def on_rejected(self, msg: OrderRejected) -> None:
        self._stop_done(msg.order_id)  # e.g. the market already went through the stop price

    def _stop_done(self, oid: int) -> None:
        self._stop_ids.discard(oid)
        if oid == self._stop_id:
            self._stop_id = None

    def _protect(self, price: int) -> None:
        """Replace the protective stop by one for the current position, ``stop_loss_ticks`` from
        ``price`` (the last fill); none when the position is flat."""
        old = self._stop_id
        if old is not None:
            self._stop_id = None
            self.cancel(old)  # its OrderCanceled (or last fill) takes it out of _stop_ids
        pos = self.position
        n = self.p.stop_loss_ticks
        if pos == 0 or n is None:
            return
        side, stop = ("S", price - n) if pos > 0 else ("B", price + n)
        if stop <= 0:
            return
        oid = self.submit(side, abs(pos), None, stop_price=stop)
        self._stop_ids.add(oid)
        self._stop_id = oid
