"""Market makers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import ConfigDict, Field, with_config

from actors.messages import OrderFilled, SubscribeMarketData, TradePrinted
from actors.trader import Trader
from sim.actor import Wakeup, handles
from sim.clock import MS

REFRESH = "refresh"


PositiveInt = Annotated[int, Field(gt=0)]


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class LadderParams:
    levels: PositiveInt = 5
    half_spread_ticks: PositiveInt = 2  # distance of the first level from the centre
    spacing_ticks: PositiveInt = 1  # distance between levels
    size: PositiveInt = 500
    refresh_ms: Annotated[float, Field(gt=0)] = 1000.0
    skew_ticks_per_lot: Annotated[float, Field(ge=0)] = 0.05  # centre shift per 100 shares held
    max_inventory: PositiveInt = 20_000  # stop quoting the side that adds to inventory beyond this


class LadderMaker(Trader):
    """Quotes ``levels`` prices each side around the last trade, skewed against inventory."""

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
        """Pull every quote."""
        self.quoting = False
        self.cancel_all()
        self.slots.clear()

    @handles(Wakeup)
    def on_wakeup(self, msg: Wakeup, src: int) -> None:
        self.requote()
        nxt = self.now + int(self.p.refresh_ms * MS)
        if nxt < self.close_ns:
            self.wake_at(nxt, REFRESH)

    @handles(TradePrinted)
    def on_trade(self, msg: TradePrinted, src: int) -> None:
        if msg.price != self.centre:
            self.centre = msg.price
            self.requote()

    def on_filled(self, msg: OrderFilled, side: str) -> None:
        if msg.leaves_qty == 0:
            self.requote()
