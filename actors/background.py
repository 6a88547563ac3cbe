"""Background traders that make a market's order flow."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from pydantic import ConfigDict, Field, with_config

from actors.messages import BookSnapshot, QueryBook
from actors.trader import Trader
from sim.actor import Wakeup, handles
from sim.clock import SECOND

ARRIVE, EXPIRE = "arrive", "expire"


PositiveInt = Annotated[int, Field(gt=0)]
Probability = Annotated[float, Field(ge=0, le=1)]
NonNegative = Annotated[float, Field(ge=0)]


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class NoiseParams:
    rate_per_hour: NonNegative = 2.0  # mean arrivals per hour (Poisson)
    market_prob: Probability = 0.1  # share of arrivals that send a market order
    offset_mean_ticks: NonNegative = 5.0  # limit price distance from the touch (exponential)
    min_lots: PositiveInt = 1
    max_lots: PositiveInt = 10
    lot_size: PositiveInt = 100
    order_lifetime_s: Annotated[float, Field(gt=0)] = 300.0  # unfilled limit orders canceled after


class NoiseTrader(Trader):
    """Arrives at Poisson times, looks at the book, sends a random buy or sell order."""

    def __init__(
        self,
        name: str,
        symbol: str,
        params: NoiseParams,
        reference_price: int,
        open_ns: int,
        close_ns: int,
        location: str = "default",
    ) -> None:
        super().__init__(name, symbol, location=location)
        self.p = params
        self.reference_price = reference_price
        self.open_ns = open_ns
        self.close_ns = close_ns
        self._mean_gap_ns = 3600 * SECOND / params.rate_per_hour if params.rate_per_hour > 0 else math.inf

    def on_start(self) -> None:
        super().on_start()
        self._schedule_arrival(max(self.now, self.open_ns))

    def _schedule_arrival(self, after_ns: int) -> None:
        if math.isinf(self._mean_gap_ns):
            return
        t = after_ns + int(self.random.expovariate(1.0) * self._mean_gap_ns) + 1
        if t < self.close_ns:
            self.wake_at(t, ARRIVE)

    @handles(Wakeup)
    def on_wakeup(self, msg: Wakeup, src: int) -> None:
        if msg.tag == ARRIVE:
            self.send(self.exchange, QueryBook(self.symbol, 1))
            self._schedule_arrival(self.now)
        else:
            oid = msg.tag
            if oid in self.open_orders:
                self.cancel(oid)

    @handles(BookSnapshot)
    def on_snapshot(self, msg: BookSnapshot, src: int) -> None:
        rnd = self.random
        p = self.p
        side = "B" if rnd.random() < 0.5 else "S"
        qty = rnd.randint(p.min_lots, p.max_lots) * p.lot_size
        if rnd.random() < p.market_prob:
            self.submit(side, qty, None, tif="IOC")
            return
        bid = msg.bids[0][0] if msg.bids else None
        ask = msg.asks[0][0] if msg.asks else None
        anchor_ref = msg.last_price if msg.last_price is not None else self.reference_price
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
