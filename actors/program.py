"""Program traders driven by a scenario: a percentage-of-volume program and a scripted trader."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, with_config

from actors.commands import SendOrderNow, StartProgram
from actors.messages import QuoteUpdated, SubscribeMarketData, TradePrinted
from actors.trader import Trader
from sim.actor import Wakeup, handles
from sim.clock import SECOND

PositiveInt = Annotated[int, Field(gt=0)]


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class ProgramParams:
    side: Literal["B", "S"] = "S"
    qty: PositiveInt = 100_000  # shares to work
    pov: Annotated[float, Field(gt=0, lt=1)] = 0.09  # target share of market volume
    interval_s: Annotated[float, Field(gt=0)] = 5.0  # how often it catches up with its target
    max_duration_s: Annotated[float, Field(gt=0)] = 1200.0  # stops after this even if unfinished
    min_clip: PositiveInt = 100  # smallest child order
    max_clip: PositiveInt = 5_000  # largest child order
    through_ticks: Annotated[int, Field(ge=0)] = 5  # marketable IOC limit this far through the touch
    lot_size: PositiveInt = 100


class ProgramTrader(Trader):
    """Works a large parent order as a share of market volume (the 6 May 2010 sell program).

    Once started (``StartProgram``), every ``interval_s`` it sends a marketable IOC child for
    ``pov / (1 − pov)`` of the volume others traded since the start, minus what it has done,
    clipped to ``[min_clip, max_clip]``; it stops when done or after ``max_duration_s``.
    """

    def __init__(
        self,
        name: str,
        symbol: str,
        params: ProgramParams,
        reference_price: int,
        open_ns: int,
        close_ns: int,
        location: str = "default",
    ) -> None:
        super().__init__(name, symbol, location=location)
        self.p = params
        self.reference_price = reference_price
        self.close_ns = close_ns
        self.active = False
        self.started_ns: int | None = None
        self.market_volume = 0  # volume traded by others since the start
        self.done_qty = 0
        self.best_bid: int | None = None
        self.best_ask: int | None = None
        self.last_price = reference_price

    def on_start(self) -> None:
        super().on_start()
        self.send(self.exchange, SubscribeMarketData(self.symbol, trades=True, quotes=True))

    @handles(StartProgram)
    def on_program_start(self, msg: StartProgram, src: int) -> None:
        if self.active or self.done_qty >= self.p.qty:
            return
        self.active = True
        self.started_ns = self.now
        self.wake_in(int(self.p.interval_s * SECOND), "slice")

    @handles(TradePrinted)
    def on_trade(self, msg: TradePrinted, src: int) -> None:
        self.last_price = msg.price
        if self.active:
            self.market_volume += msg.qty

    @handles(QuoteUpdated)
    def on_quote(self, msg: QuoteUpdated, src: int) -> None:
        self.best_bid, self.best_ask = msg.bid, msg.ask

    @handles(Wakeup)
    def on_wakeup(self, msg: Wakeup, src: int) -> None:
        if not self.active or self.started_ns is None:
            return
        p = self.p
        left = p.qty - self.done_qty
        expired = self.now - self.started_ns >= int(p.max_duration_s * SECOND)
        if left <= 0 or expired or self.now >= self.close_ns:
            self.active = False
            return
        others = max(0, self.market_volume - self.filled_qty)
        target = int(others * p.pov / (1.0 - p.pov))
        clip = min(left, p.max_clip, max(p.min_clip, target - self.done_qty))
        clip -= clip % p.lot_size
        if clip > 0 and not self.open_orders:
            touch = self.best_bid if p.side == "S" else self.best_ask
            anchor = touch if touch is not None else self.last_price
            price = max(1, anchor - p.through_ticks) if p.side == "S" else anchor + p.through_ticks
            self.submit(p.side, clip, price, tif="IOC")
            self.done_qty += clip
        self.wake_in(int(p.interval_s * SECOND), "slice")

    def on_canceled(self, msg) -> None:  # type: ignore[no-untyped-def]
        self.done_qty -= msg.canceled_qty  # the unfilled part of an IOC child is still to do

    def on_rejected(self, msg) -> None:  # type: ignore[no-untyped-def]
        pass


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class ScriptedParams:
    via: str = "exchange"  # the actor its orders go to: the exchange, or "oms" to use the desk's FIX path


class ScriptedTrader(Trader):
    """Sends the one-off orders a scenario tells it to (``SendOrderNow``), e.g. a fat finger."""

    def __init__(
        self,
        name: str,
        symbol: str,
        params: ScriptedParams,
        reference_price: int,
        open_ns: int,
        close_ns: int,
        location: str = "default",
    ) -> None:
        super().__init__(name, symbol, exchange=params.via, location=location)
        self.last_price = reference_price

    def on_start(self) -> None:
        super().on_start()
        self.send(self.exchange, SubscribeMarketData(self.symbol, trades=True, quotes=False))

    @handles(TradePrinted)
    def on_trade(self, msg: TradePrinted, src: int) -> None:
        self.last_price = msg.price

    @handles(SendOrderNow)
    def on_send(self, msg: SendOrderNow, src: int) -> None:
        if msg.price_offset_pct is None:
            self.submit(msg.side, msg.qty, None, tif="IOC")
            return
        price = max(1, round(self.last_price * (1 + msg.price_offset_pct / 100.0)))
        self.submit(msg.side, msg.qty, price)
