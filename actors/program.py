"""Program traders driven by a scenario: a percentage-of-volume program and a scripted trader."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, with_config

from actors.commands import SendOrderNow, StartProgram
from actors.messages import QuoteUpdated, SubscribeMarketData, TradePrinted
from actors.registry import agent_kind
from actors.trader import Trader
from sim.actor import Wakeup, handles
from sim.clock import SECOND

PositiveInt = Annotated[int, Field(gt=0)]


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class ProgramParams:
    """``pace``: ``"cumulative"`` (the original program: catch up with ``pov`` of the volume others
    traded since the start, at least ``min_clip`` per interval) or ``"trailing"`` (the 6 May 2010
    Sell Algorithm as the CFTC-SEC report describes it: every ``interval_s`` it sells ``pov`` of
    the *whole market's* volume of the trailing ``window_s``, pro rata to the interval, with no
    regard to price or time: ``through_ticks: null`` sends market orders, ``max_duration_s:
    null`` never gives up). In trailing mode the pace feeds on the volume it causes: hot-potato
    trading among makers unloading inventory raises the trailing volume and so the next clip."""

    side: Literal["B", "S"] = "S"
    qty: PositiveInt = 100_000  # shares to work
    pov: Annotated[float, Field(gt=0, lt=1)] = 0.09  # target share of market volume
    interval_s: Annotated[float, Field(gt=0)] = 5.0  # how often it catches up with its target
    max_duration_s: Annotated[float, Field(gt=0)] | None = 1200.0  # stops after this (None: never)
    min_clip: PositiveInt = 100  # smallest child order (cumulative pace)
    max_clip: PositiveInt = 5_000  # largest child order
    # marketable IOC limit this far through the touch; None: market orders (no price limit)
    through_ticks: Annotated[int, Field(ge=0)] | None = 5
    lot_size: PositiveInt = 100
    pace: Literal["cumulative", "trailing"] = "cumulative"
    window_s: Annotated[float, Field(gt=0)] = 60.0  # trailing pace: the volume window


@agent_kind("program", ProgramParams)
class ProgramTrader(Trader):
    """Works a large parent order as a share of market volume (the 6 May 2010 sell program).

    Once started (``StartProgram``), every ``interval_s`` it sends one marketable IOC child:

    * ``pace="cumulative"``: ``pov / (1 − pov)`` of the volume others traded since the start,
      minus what it has done, clipped to ``[min_clip, max_clip]``;
    * ``pace="trailing"``: ``pov × V × interval_s / window_s`` where ``V`` is the whole market's
      volume (its own fills included) over the trailing ``window_s``; the fractional lots carry
      over to the next interval, and the clip is capped at ``max_clip``. Nothing traded in the
      last window means nothing sent.

    It stops when done, at the close, or after ``max_duration_s`` (None: only when done).
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
        # trailing pace: prints of the last window (time, qty) and their sum
        self._window_ns = int(params.window_s * SECOND)
        self._prints: deque[tuple[int, int]] = deque()
        self.window_volume = 0
        self._carry = 0.0  # shares owed but below one lot
        self.children: list[tuple[int, int]] = []  # (time, qty) of each child sent

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
        prints = self._prints
        prints.append((msg.time_ns, msg.qty))
        self.window_volume += msg.qty
        horizon = msg.time_ns - self._window_ns
        while prints[0][0] <= horizon:
            self.window_volume -= prints.popleft()[1]

    def trailing_volume(self) -> int:
        """The market's volume over the last ``window_s`` (prints stamped after now − window)."""
        horizon = self.now - self._window_ns
        prints = self._prints
        while prints and prints[0][0] <= horizon:
            self.window_volume -= prints.popleft()[1]
        return self.window_volume

    @handles(QuoteUpdated)
    def on_quote(self, msg: QuoteUpdated, src: int) -> None:
        self.best_bid, self.best_ask = msg.bid, msg.ask

    def _clip(self, left: int) -> int:
        p = self.p
        if p.pace == "trailing":
            owed = self._carry + p.pov * self.trailing_volume() * p.interval_s / p.window_s
            clip = min(left, p.max_clip, int(owed))
            clip -= clip % p.lot_size
            self._carry = owed - clip if clip < p.max_clip else 0.0
            return clip
        others = max(0, self.market_volume - self.filled_qty)
        target = int(others * p.pov / (1.0 - p.pov))
        clip = min(left, p.max_clip, max(p.min_clip, target - self.done_qty))
        return clip - clip % p.lot_size

    @handles(Wakeup)
    def on_wakeup(self, msg: Wakeup, src: int) -> None:
        if not self.active or self.started_ns is None:
            return
        p = self.p
        left = p.qty - self.done_qty
        expired = p.max_duration_s is not None and self.now - self.started_ns >= int(p.max_duration_s * SECOND)
        if left <= 0 or expired or self.now >= self.close_ns:
            self.active = False
            return
        if not self.open_orders:
            clip = self._clip(left)
            if clip > 0:
                if p.through_ticks is None:
                    price = None
                else:
                    touch = self.best_bid if p.side == "S" else self.best_ask
                    anchor = touch if touch is not None else self.last_price
                    price = max(1, anchor - p.through_ticks) if p.side == "S" else anchor + p.through_ticks
                self.submit(p.side, clip, price, tif="IOC")
                self.done_qty += clip
                self.children.append((self.now, clip))
        self.wake_in(int(p.interval_s * SECOND), "slice")

    def on_canceled(self, msg) -> None:  # type: ignore[no-untyped-def]
        self.done_qty -= msg.canceled_qty  # the unfilled part of an IOC child is still to do

    def on_rejected(self, msg) -> None:  # type: ignore[no-untyped-def]
        pass


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class ScriptedParams:
    via: str = "exchange"  # the actor its orders go to: the exchange, or "oms" to use the desk's FIX path


@agent_kind("scripted", ScriptedParams)
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
