"""A price-alert service: fast moves draw attention, so order arrivals come in bursts (a crash's
volume) instead of at the pace of a calm market.

The ``price_alert`` agent watches the trade tape. When the trades of the last ``window_s`` span
``move_pct`` percent of their high (``(high - low) / high``), it sends a ``PriceAlert`` to every
actor whose name matches ``audience`` (globs), then stays quiet for ``cooldown_s``. Background
traders with ``alert_prob`` > 0 (actors/background.py) answer an alert, each with that chance, by
one extra look at the market after an exponential delay of mean ``alert_react_s``: the busier the
tape moves, the more of the crowd is watching. It is the one endogenous part of market activity;
the shared ``Activity`` process (actors/world.py) stays exogenous.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

from pydantic import ConfigDict, Field, with_config

from actors.messages import PriceAlert, SubscribeMarketData, TradePrinted
from actors.registry import agent_kind
from actors.rolling import RollingRange
from sim.actor import Actor, handles
from sim.clock import SECOND

Positive = Annotated[float, Field(gt=0)]


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class PriceAlertParams:
    move_pct: Positive = 1.0  # alert when the trades of the window span this % of their high
    window_s: Positive = 60.0  # seconds of tape the move is measured over
    cooldown_s: Positive = 60.0  # at most one alert per this many seconds
    audience: str = "noise*,value*"  # comma-separated globs of the actors alerted


@agent_kind("price_alert", PriceAlertParams)
class PriceAlerter(Actor):
    """Sends ``PriceAlert`` to its audience when the tape moves ``move_pct`` within ``window_s``."""

    placement_role: ClassVar[str] = "hub"  # reads every trade: next to the exchange

    def __init__(
        self,
        name: str,
        symbol: str,
        params: PriceAlertParams,
        reference_price: int,
        open_ns: int,
        close_ns: int,
        location: str = "default",
        exchange: str = "exchange",
    ) -> None:
        super().__init__(name, location)
        self.p = params
        self.symbol = symbol
        self.exchange_name = exchange
        self._window_ns = int(params.window_s * SECOND)
        self._cooldown_ns = int(params.cooldown_s * SECOND)
        self._prices = RollingRange(self._window_ns)  # the tape's high and low over the window
        self._quiet_until = 0
        self._audience: list[int] | None = None
        self.alerts: list[tuple[int, float, str]] = []  # (time, move %, direction) of each alert sent

    def on_start(self) -> None:
        self.send(self.lookup(self.exchange_name), SubscribeMarketData(self.symbol, trades=True, quotes=False))

    def audience(self) -> list[int]:
        """Ids of the actors alerted (resolved once, at the first alert)."""
        if self._audience is None:
            self._audience = [i for i in self.lookup_matching(self.p.audience) if i != self.id]
        return self._audience

    @handles(TradePrinted)
    def on_trade(self, msg: TradePrinted, src: int) -> None:
        if msg.symbol != self.symbol:
            return
        t, price = msg.time_ns, msg.price
        self._prices.add(t, price)
        if t < self._quiet_until:
            return
        high_low = self._prices.high_low(t)
        assert high_low is not None  # the print just added is inside the window
        high, low = high_low
        move = (high - low) / high * 100.0
        if move < self.p.move_pct:
            return
        direction = "down" if price - low < high - price else "up"
        alert = PriceAlert(self.symbol, move, direction, self.p.window_s)
        self.send_all(self.audience(), alert)
        self.alerts.append((t, move, direction))
        self._quiet_until = t + self._cooldown_ns
