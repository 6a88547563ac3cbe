"""Exchange safeguards: LULD price bands, static price collars, market-wide circuit breakers.

``Safeguards`` is the per-symbol state machine. It is pure: no actors, no timers of its own;
every method that depends on time takes ``now`` (integer ns). The exchange actor
(actors/exchange/exchange.py) drives it and carries out what it decides, in two ways:

* per order: ``check_order`` / ``check_replace`` and the fast-path ranges (``buy_lo`` ...) are
  pure checks (no state change); ``on_trade``, ``on_touch`` and ``on_top`` feed it what the order
  did (reference price, collar, limit state; a circuit breaker may halt);
* per clock: ``timers(now)`` lists the transitions pending in the current state as
  ``(kind, time)`` -- ``LIMIT_EXPIRY`` (a limit state's 15 s), ``REOPENING`` (the end of a pause,
  an extension or a halt) and ``BAND_WINDOW`` (the doubled-band windows opening or closing) --
  and the exchange arms one timer for each and calls ``expire_limit_state``, ``end_halt`` or
  ``update_bands`` when it fires. A transition whose time has gone (a stale timer) does nothing.
  ``poll(now)`` runs all three, for driving the machine by hand.

Rules (US Limit Up-Limit Down Plan and Market-Wide Circuit Breakers, simplified; *choice* marks
what the rules leave to the venue or what this simulator simplifies):

* **Reference price**: the arithmetic mean of the trade prices of the last
  ``reference_window_s`` (5 minutes), rounded half up to a tick, recomputed on every trade;
  until the first trade, the opening/reference price given to the constructor (None: no bands
  and no collar until the first trade). As in the Plan, the reference in force only changes
  when the new mean differs from it by at least ``reference_update_pct`` (1%; 0 = every trade).
  With no trade in the window the reference stays. After a reopening auction the reference is
  the auction price.
* **Band width** (``band_width``): ``tier1_pct`` (5%) or ``tier2_pct`` (10%) of the reference
  (``tier`` selects) when the reference is above $3.00; ``low_price_pct`` (20%) from $0.75 to
  $3.00; below $0.75 the lesser of ``sub_dollar_pct`` (75%) and ``sub_dollar_cap`` ($0.15).
  Dollars are ``ticks * tick_size``. Widths are rounded half up to a tick. Bands are doubled
  (Plan Appendix A as amended by the 18th Amendment, 2019) from 9:30 to 9:45 for every reference
  price (``double_open_min`` = 15 minutes after the session open) and from 3:35 to 4:00 only for
  reference prices at or below $3.00 (``double_close_min`` = 25 minutes before the session close,
  ``double_close_max_price`` = 3.0; None doubles every price, as before that amendment).
  ``lower = reference - width``, ``upper = reference + width``.
* **Orders** (continuous trading): the price collar (exchange limit-order price protection, not
  a Plan rule) is on the aggressive side only (``collar_mode="aggressive"``): a buy priced more
  than ``collar_pct`` (10%) above the best offer, or a sell more than that below the best bid,
  is rejected with ``"price collar"`` (against the reference when that side is empty); orders
  resting away from the touch are allowed, so deep books and stub quotes exist.
  ``collar_mode="static"``: the older static collar, ``collar_pct`` from the reference on either
  side. 0 turns the collar off. A buy priced above the upper band or a sell below the lower band is rejected
  with ``"price band"`` (``outside_band="reject"``, the default) or repriced to the band
  (``"reprice"``). A market order is accepted but becomes an IOC limit at the band (or collar)
  it may not trade through; its unfilled rest is canceled with reason ``"market"`` as before. A
  replace to a price outside the collar / band is refused (``CancelRejected``), in both modes.
  Because resting orders are also kept inside the bands (when the bands move, resting buys above
  the new upper band and sells below the new lower band are canceled with reason
  ``"price band"`` -- *choice*: canceled, not repriced), no trade ever prints outside the bands.
* **Limit state**: entered when the best offer sits at (or below) the lower band or the best
  bid at (or above) the upper band; exited when the book moves back inside. A limit state that
  lasts ``limit_state_s`` (15 s) starts a trading pause of ``pause_min`` (5) minutes, then a
  reopening auction. A pause that would end at or after the close has no reopening.
* **Market-wide circuit breaker**: levels ``mwcb_levels_pct`` (7 / 13 / 20%) below the previous
  close of the market index, triggered once a day each: a single stock's move triggers LULD
  only, so by default (``mwcb_trigger="index"``) only ``on_index`` (the index level, which a
  scenario drives from its timeline) trips it. ``mwcb_trigger="trades"`` (a one-symbol
  stand-in for the index) trips it on this symbol's trades against ``previous_close`` (ticks;
  default the reference price given to the constructor, else the first trade). Halt times
  (``mwcb_rule``, see ``mwcb_halt_min_for``): ``2013`` levels 1 and 2 halt ``mwcb_halt_min``
  (15) minutes unless triggered within ``mwcb_cutoff_min`` (35) minutes of the close, level 3
  ends the day; ``1998`` the then-current 10 / 20 / 30% rule with halts by time of day. The
  exchange halts every symbol (market-wide). ``rules_params`` maps a scenario's ``rules:``
  regime (``current`` / ``2010``) onto these parameters.
* **Reopening after a LULD pause: auction collars and extensions** (``auction_collars``). The
  LULD Plan (Section VII(B) as amended by the 12th Amendment, 2017) leaves the reopening to the
  primary listing exchange's procedures; this follows the harmonised procedures the listing
  exchanges adopted with it (NYSE Arca Rule 7.35-E(e)(7), SR-NYSEArca-2016-130, approved
  Release 34-79846; Nasdaq Rule 4120(c)(10) is the same in substance). *Choice* where the texts
  are more detailed: the Auction Reference Price is the Price Band that triggered the pause (the
  lower band for a pause at the lower band, the upper for the upper); the Auction Collars are
  that price minus / plus the Price Band width of that price (``band_width``, not doubled: 5 %
  for a tier-1 stock above $3.00); if, when the pause ends, the indicative price of an auction
  that would execute lies outside the collars, the pause is extended by ``auction_extension_min``
  (5) minutes and the collar on that side (the side of the imbalance) widens by the same width,
  and so again at the end of every extension. An extension that would end at or after the close
  leaves the symbol halted to the close. Regulatory halts and circuit-breaker halts reopen by the
  auction without collars (*choice*). ``extend_auction`` decides; ``auction_collar`` /
  ``extensions`` are published with the indicative price during the pause.
* **Stop logic** (``stop_logic_pct``; 0, the default, turns it off): a momentary pause of the
  kind CME Globex has run since 2003 (its "Stop Logic Functionality"; the pause that ended the
  E-mini's fall on 6 May 2010 at 14:45:28 CT was one, 5 seconds). No incoming sell may trade
  more than ``stop_logic_pct`` below the highest trade of the last ``stop_logic_window_s``
  seconds (the *floor*; the last trade when none is that recent), no incoming buy more than that
  above the lowest (the *cap*): the rule stops a fall driven by sales and a spike driven by
  purchases, not a sale that hits a bid resting high. An incoming
  order that would trade through it (a sell priced below the floor or a market sell, with a bid
  at or above its own price: ``stop_logic_cap``) is capped there -- a limit order at the floor, a
  market order an IOC limit at the floor whose rest is canceled with reason ``"market"`` (*choice*:
  Globex rests it at its protection price) -- and when, after matching, it still has quantity and
  such a bid is left, the symbol enters the reserved state: a trading pause (``PAUSED``, reason
  ``"stop logic"``) of ``stop_logic_pause_s`` (5) seconds, then the reopening auction without
  collars (``stop_logic_pause``). A replace that would trade through is
  refused with ``"stop logic"``. After a reopening that crosses, the auction price is the only
  price in the window. Post-only orders never take, so they are not screened.
* **Halted** (pause or circuit breaker): nothing matches. New DAY orders (limit or market) are
  accepted for the reopening auction, IOC/FOK orders and replaces are refused with
  ``"trading halted"``, cancels work. See actors/exchange/auction.py for the auction.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, with_config

from actors.messages import LimitStateEntered, LimitStateExited, TradingHalted, TradingResumed
from actors.rolling import RollingRange
from actors.units import DEFAULT_TICK_SIZE
from sim.clock import MINUTE as MINUTE_NS
from sim.clock import SECOND as SECOND_NS

__all__ = [
    "BAND_WINDOW",
    "BIG",
    "HALTED",
    "LIMIT",
    "LIMIT_EXPIRY",
    "OPEN",
    "PAUSED",
    "REOPENING",
    "STOP_LOGIC",
    "SafeguardParams",
    "Safeguards",
    "StatusEvent",
    "band_width",
]

BIG = 1 << 62  # "no bound" for prices and times

OPEN = "open"  # continuous trading
LIMIT = "limit"  # continuous trading in a LULD limit state
STOP_LOGIC = "stop logic"  # the reason of a stop-logic pause, and of a replace refused by it
PAUSED = "paused"  # LULD trading pause
HALTED = "halted"  # market-wide circuit breaker halt

# kinds of time-driven transition (``Safeguards.timers``)
LIMIT_EXPIRY = "limit_expiry"  # a limit state lasted limit_state_s: trading pause
REOPENING = "reopening"  # a pause / halt / extension ends: reopening auction
BAND_WINDOW = "band_window"  # a doubled-band window opens or closes: bands recomputed

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Percent = Annotated[float, Field(ge=0, lt=100)]

StatusEvent = LimitStateEntered | LimitStateExited | TradingHalted | TradingResumed

_NONE: tuple[Any, ...] = ()


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class SafeguardParams:
    """Exchange safeguards (see the module docstring). Percentages are in percent."""

    luld: bool = True
    tier: Literal[1, 2] = 1
    tier1_pct: Percent = 5.0
    tier2_pct: Percent = 10.0
    low_price_pct: Percent = 20.0  # reference from $0.75 to $3.00 (both tiers)
    sub_dollar_pct: Percent = 75.0  # reference below $0.75: the lesser of this ...
    sub_dollar_cap: PositiveFloat = 0.15  # ... and this many dollars
    tick_size: PositiveFloat = DEFAULT_TICK_SIZE  # dollars per tick: selects the price tier
    reference_window_s: PositiveFloat = 300.0
    reference_update_pct: Percent = 1.0
    double_open_min: NonNegativeFloat = 15.0  # 9:30-9:45: every reference price
    double_close_min: NonNegativeFloat = 25.0  # 3:35-4:00: ...
    double_close_max_price: NonNegativeFloat | None = 3.0  # ... only references <= $3.00 (None: all)
    limit_state_s: PositiveFloat = 15.0
    pause_min: PositiveFloat = 5.0
    outside_band: Literal["reject", "reprice"] = "reject"
    collar_pct: Percent = 10.0  # 0 = no collar
    collar_mode: Literal["aggressive", "static"] = "aggressive"
    circuit_breakers: bool = True
    mwcb_levels_pct: tuple[Percent, Percent, Percent] = (7.0, 13.0, 20.0)
    mwcb_halt_min: PositiveFloat = 15.0  # levels 1 and 2
    mwcb_cutoff_min: NonNegativeFloat = 35.0  # no level 1/2 halt this close to the close
    mwcb_rule: Literal["2013", "1998"] = "2013"  # halt-time table (see mwcb_halt_min_for)
    mwcb_trigger: Literal["index", "trades"] = "index"
    previous_close: Annotated[int, Field(gt=0)] | None = None  # ticks; None = reference price
    auction_collars: bool = True  # LULD reopening: collars around the band that paused, extensions
    auction_extension_min: PositiveFloat = 5.0  # an extension of the pause when outside the collars
    auction_info_interval_s: PositiveFloat = 1.0  # indicative price / imbalance feed during a halt
    stop_logic_pct: Percent = 0.0  # no sale this far below the window's high, no purchase above its low (0 = off)
    stop_logic_window_s: NonNegativeFloat = 1.0  # the look-back of that high / low (0: the last trade)
    stop_logic_pause_s: PositiveFloat = 5.0  # the reserved state before its reopening auction


#: ``rules:`` regimes of a scenario: what each changes in the exchange's SafeguardParams.
RULES = ("current", "2010")


def rules_params(rules: str, base: SafeguardParams | None) -> SafeguardParams | None:
    """The safeguards of a rules regime, from the scenario's ``exchange.safeguards`` (None: off).

    ``current``: ``base`` as given (its defaults are today's rules). ``2010`` (the rules of 6 May
    2010): no LULD, no price collar (stub quotes rest anywhere), and the market-wide breakers then
    in force (NYSE Rule 80B as of 1998: 10 / 20 / 30 % of the DJIA, halt times by time of day, see
    :func:`mwcb_halt_min_for`), triggered by the market index only."""
    if rules not in RULES:
        raise ValueError(f"unknown rules regime {rules!r} (one of {', '.join(RULES)})")
    if base is None or rules == "current":
        return base
    return replace(
        base, luld=False, collar_pct=0.0, mwcb_levels_pct=(10.0, 20.0, 30.0), mwcb_rule="1998", mwcb_trigger="index"
    )


DAY = -1.0  # a halt for the rest of the day


def mwcb_halt_min_for(params: SafeguardParams, level: int, minutes_to_close: float) -> float:
    """Minutes a level-``level`` market-wide halt lasts when triggered ``minutes_to_close`` before
    the close (16:00): 0 = no halt, ``DAY`` = the rest of the day.

    ``2013`` (Rule 80B as amended 2013, today): levels 1 and 2 halt ``mwcb_halt_min`` (15) minutes
    when triggered before 3:25 pm (more than ``mwcb_cutoff_min`` = 35 minutes before the close),
    else not at all; level 3 ends the day.
    ``1998`` (Rule 80B 1998-2013, in force in May 2010): level 1 (10 %) before 2:00 pm 1 hour,
    2:00-2:30 pm 30 minutes, at or after 2:30 pm none; level 2 (20 %) before 1:00 pm 2 hours,
    1:00-2:00 pm 1 hour, at or after 2:00 pm the rest of the day; level 3 (30 %) the rest of the day."""
    if level >= 3:
        return DAY
    if params.mwcb_rule == "2013":
        return params.mwcb_halt_min if minutes_to_close > params.mwcb_cutoff_min else 0.0
    if level == 1:
        return 60.0 if minutes_to_close > 120 else 30.0 if minutes_to_close > 90 else 0.0
    return 120.0 if minutes_to_close > 180 else 60.0 if minutes_to_close > 120 else DAY


def _bp(pct: float) -> int:
    """Percent -> integer hundredths of a basis point (exact for up to 4 decimals)."""
    return round(pct * 10_000)


def _pct_of(ref: int, hbp: int) -> int:
    """``ref * pct`` rounded half up, with ``hbp`` from ``_bp`` (integer arithmetic)."""
    return (ref * hbp + 500_000) // 1_000_000


def band_width(params: SafeguardParams, reference: int, doubled: bool = False) -> int:
    """LULD band half-width in ticks for a reference price in ticks."""
    tick = params.tick_size
    if reference > round(3.0 / tick):
        width = _pct_of(reference, _bp(params.tier1_pct if params.tier == 1 else params.tier2_pct))
    elif reference >= round(0.75 / tick):
        width = _pct_of(reference, _bp(params.low_price_pct))
    else:
        width = min(_pct_of(reference, _bp(params.sub_dollar_pct)), round(params.sub_dollar_cap / tick))
    return 2 * width if doubled else width


class Safeguards:
    """LULD / collar / circuit-breaker state of one symbol. Pure; see the module docstring.

    Hot-path attributes (read by the exchange for its inline checks): a limit order at price
    ``p`` needs no further screening when ``buy_lo <= p <= buy_hi`` (buy) or
    ``sell_lo <= p <= sell_hi`` (sell); anything else (market orders, bad input, halts) goes
    through ``check_order``. ``lower`` / ``upper`` are the bands (0 / ``BIG`` when inactive).
    """

    def __init__(
        self,
        params: SafeguardParams,
        symbol: str,
        open_ns: int,
        close_ns: int,
        reference_price: int | None = None,
        previous_close: int | None = None,
    ) -> None:
        p = params
        self.params = p
        self.symbol = symbol
        self.open_ns = open_ns
        self.close_ns = close_ns
        self.state = OPEN
        self.halted = False  # True during a LULD pause or a circuit-breaker halt (nothing matches)
        self.reference: int | None = None
        self.lower = 0
        self.upper = BIG
        self.collar_lo = 0
        self.collar_hi = BIG
        self.buy_lo = self.sell_lo = 0
        self.buy_hi = self.sell_hi = BIG
        self.market_buy_cap = BIG  # a market order's caps (bands, collar), without the stop logic's
        self.market_sell_floor = 0
        self.bands_changed = False
        self.auction_due = False
        self.limit_band: str | None = None
        self.limit_deadline = BIG
        self.resume_at = BIG
        self.halt_reason = ""
        self.auction_collar: tuple[int, int, int] | None = None  # (reference, lower, upper) of a LULD reopening
        self.extensions = 0  # of the current pause
        self._collar_step = 0  # ticks a collar widens by at each extension
        self._window_ns = round(p.reference_window_s * SECOND_NS)
        self._window: deque[tuple[int, int]] = deque()
        self._sum = 0
        self._ref_lo = self._ref_hi = 0  # the mean must reach these to update the reference
        self._double_until = open_ns + round(p.double_open_min * MINUTE_NS)
        self._double_from = close_ns - round(p.double_close_min * MINUTE_NS)
        cap = p.double_close_max_price
        self._close_double_max = BIG if cap is None else round(cap / p.tick_size)
        self.doubled = self._doubled_at(open_ns)  # None, "open" or "close": the doubling window we are in
        self.best_bid: int | None = None  # the touch, for the aggressive-side collar (on_touch)
        self.best_ask: int | None = None
        self._aggressive = p.collar_mode == "aggressive"
        self._update_hbp = _bp(p.reference_update_pct)
        self._collar_hbp = _bp(p.collar_pct)
        self.previous_close = previous_close or p.previous_close or reference_price
        self.stop_logic = p.stop_logic_pct > 0
        self.sl_floor = 0  # stop logic: no sell may trade below this, no buy above sl_cap
        self.sl_cap = BIG
        self._sl_hbp = _bp(p.stop_logic_pct)
        self._sl_window_ns = round(p.stop_logic_window_s * SECOND_NS)
        self._sl_range = RollingRange(self._sl_window_ns)  # the window's high and low
        self._sl_last: int | None = None  # the last print
        self.mwcb_triggered: set[int] = set()
        self.cb_price = 0  # a trade at or below this triggers the next circuit-breaker level
        self._set_cb()
        if reference_price is not None:
            self._set_reference(reference_price)

    # -- state --------------------------------------------------------------------------------
    def _doubled_at(self, now: int) -> str | None:
        return "open" if now < self._double_until else "close" if now >= self._double_from else None

    def _bands_doubled(self, ref: int) -> bool:
        """LULD Plan Appendix A as amended by the 18th Amendment (2019): bands double from 9:30 to
        9:45 for every reference price, from 3:35 to 4:00 only for reference prices <= $3.00
        (the session's open and close stand for 9:30 and 4:00)."""
        return self.doubled == "open" or (self.doubled == "close" and ref <= self._close_double_max)

    def _set_reference(self, ref: int) -> None:
        self.reference = ref
        d = max(1, -(-ref * self._update_hbp // 1_000_000)) if self._update_hbp else 0
        self._ref_lo, self._ref_hi = ref - d, ref + d
        self._recompute()

    def _recompute(self) -> None:
        ref = self.reference
        p = self.params
        if ref is not None and p.luld:
            w = band_width(p, ref, self._bands_doubled(ref))
            self.lower, self.upper = max(ref - w, 1), ref + w
        else:
            self.lower, self.upper = 0, BIG
        if ref is not None and self._collar_hbp:
            c = _pct_of(ref, self._collar_hbp)
            self.collar_lo, self.collar_hi = max(ref - c, 1), ref + c
        else:
            self.collar_lo, self.collar_hi = 0, BIG
        self.bands_changed = True
        self._set_fast_path()

    def _set_fast_path(self) -> None:
        if self.halted:  # every order takes the slow path
            self.buy_lo = self.sell_lo = BIG
            self.buy_hi = self.sell_hi = -1
            return
        if self._aggressive:  # resting away from the touch is always allowed
            self.buy_lo, self.sell_hi = 0, BIG
            self.market_buy_cap = min(self.upper, self.buy_cap)
            self.market_sell_floor = max(self.lower, self.sell_floor)
        else:
            self.buy_lo = self.collar_lo
            self.sell_hi = self.collar_hi
            self.market_buy_cap = min(self.upper, self.collar_hi)
            self.market_sell_floor = max(self.lower, self.collar_lo)
        # a price through the stop-logic floor / cap takes the slow path (``stop_logic_cap``)
        self.buy_hi = min(self.market_buy_cap, self.sl_cap)
        self.sell_lo = max(self.market_sell_floor, self.sl_floor)

    @property
    def buy_cap(self) -> int:
        """Aggressive-side collar: the highest buy price allowed, ``collar_pct`` above the best offer
        (the reference when there is no offer; no cap without either, or with the collar off)."""
        base = self.best_ask if self.best_ask is not None else self.reference
        return base + _pct_of(base, self._collar_hbp) if base is not None and self._collar_hbp else BIG

    @property
    def sell_floor(self) -> int:
        """Aggressive-side collar: the lowest sell price allowed, ``collar_pct`` below the best bid."""
        base = self.best_bid if self.best_bid is not None else self.reference
        return max(base - _pct_of(base, self._collar_hbp), 1) if base is not None and self._collar_hbp else 0

    def on_touch(self, bid: int | None, ask: int | None) -> None:
        """The best bid / ask changed (None: empty side): moves the aggressive-side collar."""
        self.best_bid, self.best_ask = bid, ask
        if self._aggressive and self._collar_hbp:
            self._set_fast_path()

    def _set_cb(self) -> None:
        pc = self.previous_close
        self.cb_price = 0
        if pc is None or not self.params.circuit_breakers or self.params.mwcb_trigger != "trades":
            return
        for level, pct in enumerate(self.params.mwcb_levels_pct, 1):
            if level not in self.mwcb_triggered:
                self.cb_price = pc - _pct_of(pc, _bp(pct))
                return

    # -- time ---------------------------------------------------------------------------------
    def timers(self, now: int) -> list[tuple[str, int]]:
        """The time-driven transitions pending now, ``(kind, time)``, each for one timer: the
        limit state's expiry, the end of a pause or halt (not while its auction is due), the next
        doubled-band boundary inside the session (after ``now``)."""
        out: list[tuple[str, int]] = []
        if self.state is LIMIT:
            out.append((LIMIT_EXPIRY, self.limit_deadline))
        if self.halted and not self.auction_due and self.resume_at < BIG:
            out.append((REOPENING, self.resume_at))
        band = self.next_band_change(now)
        if band < BIG:
            out.append((BAND_WINDOW, band))
        return out

    def next_band_change(self, now: int) -> int:
        """When the next doubled-band window opens or closes after ``now`` (inside the session;
        ``BIG``: no more today)."""
        for t in (self._double_until, self._double_from):
            if now < t and self.open_ns < t < self.close_ns:
                return t
        return BIG

    def update_bands(self, now: int) -> bool:
        """Doubled bands on / off as the window at ``now`` says (``BAND_WINDOW``); True when that
        changed (the bands were recomputed: ``bands_changed``)."""
        doubled = self._doubled_at(now)
        if doubled == self.doubled:
            return False
        self.doubled = doubled
        self._recompute()
        return True

    def expire_limit_state(self, now: int) -> list[StatusEvent]:
        """A limit state that has lasted ``limit_state_s`` at ``now`` becomes a trading pause
        (``LIMIT_EXPIRY``), with the reopening's auction collars; [] when none is due."""
        if self.state is not LIMIT or now < self.limit_deadline:
            return []
        band = self.lower if self.limit_band == "lower" else self.upper
        halted = self._halt(now, PAUSED, "luld pause", now + round(self.params.pause_min * MINUTE_NS))
        if self.params.auction_collars:
            self._open_collar(band)
        return [halted]

    def end_halt(self, now: int) -> bool:
        """The end of a pause or halt (``REOPENING``): True when its reopening auction is due (the
        caller runs it, then calls ``extend_auction`` or ``resume``)."""
        if self.halted and now >= self.resume_at:
            self.auction_due = True
        return self.auction_due

    def poll(self, now: int) -> list[StatusEvent]:
        """Every transition due by ``now``, in order: the band window, limit-state expiry, the end
        of a pause or halt. Idempotent. For driving the machine by hand (tests); the exchange
        runs each transition from its own timer (``timers``)."""
        self.update_bands(now)
        events = self.expire_limit_state(now)
        self.end_halt(now)
        return events

    # -- orders -------------------------------------------------------------------------------
    def check_order(self, side: str, price: int | None) -> tuple[str | None, int | None]:
        """Screen a valid order in continuous trading (not halted): ``(reason, None)`` to reject
        it, else ``(None, price_to_submit)``: the price itself, a band price (repriced limit
        order), or for a market order the band/collar it may not trade through (None when
        there is none)."""
        buy = side == "B"
        if price is None:
            cap = self.market_buy_cap if buy else self.market_sell_floor
            return None, (cap if 0 < cap < BIG else None)
        if self._collar_refuses(buy, price):
            return "price collar", None
        if buy and price > self.upper:
            return (None, self.upper) if self.params.outside_band == "reprice" else ("price band", None)
        if not buy and price < self.lower:
            return (None, self.lower) if self.params.outside_band == "reprice" else ("price band", None)
        return None, price

    def _collar_refuses(self, buy: bool, price: int) -> bool:
        if self._aggressive:  # a buy too far above the offer, a sell too far below the bid
            return price > self.buy_cap if buy else price < self.sell_floor
        return price < self.collar_lo or price > self.collar_hi

    def check_replace(self, side: str | None, price: int, now: int | None = None) -> str | None:
        """Reason to refuse a replace to ``price`` (collar, band, or trading through the stop
        logic's floor / cap at ``now``), or None."""
        if self._collar_refuses(side == "B", price):
            return "price collar"
        if (side == "B" and price > self.upper) or (side == "S" and price < self.lower):
            return "price band"
        if self.stop_logic and now is not None and side is not None and self.stop_logic_cap(side, price, now):
            return STOP_LOGIC
        return None

    # -- stop logic ---------------------------------------------------------------------------
    def stop_logic_cap(self, side: str, price: int | None, now: int) -> int | None:
        """The floor (a sell) or cap (a buy) an order priced ``price`` (None: market) at ``now``
        would trade through, or None when it would not: its price lies beyond it and the other
        side of the book holds an order it would take (a bid at or above a sell's price)."""
        if not self.stop_logic:
            return None
        self._sl_expire(now)
        if self._takes(side, price) is None:
            return None
        if side == "B":
            return self.sl_cap if price is None or price > self.sl_cap else None
        return self.sl_floor if price is None or price < self.sl_floor else None

    def stop_logic_pause(self, side: str, price: int | None, stop: int, now: int) -> TradingHalted | None:
        """After an order capped at ``stop`` matched and kept quantity: the reserved state (a
        ``stop_logic_pause_s`` pause, then the reopening auction) when the book still holds an
        order it would have taken beyond ``stop``; None when it does not."""
        best = self._takes(side, price)
        if self.halted or best is None or (best <= stop if side == "B" else best >= stop):
            return None
        return self._halt(now, PAUSED, STOP_LOGIC, now + round(self.params.stop_logic_pause_s * SECOND_NS))

    def _takes(self, side: str, price: int | None) -> int | None:
        """The best price on the other side of the book that an order priced ``price`` (None:
        market) would take, or None."""
        if side == "B":
            ask = self.best_ask
            return ask if ask is not None and ask <= (price or BIG) else None
        bid = self.best_bid
        return bid if bid is not None and bid >= (price or 1) else None

    def _sl_note(self, price: int, now: int) -> None:
        """A print enters the stop logic's window."""
        self._sl_range.add(now, price)
        self._sl_last = price
        self._sl_expire(now)

    def _sl_expire(self, now: int) -> None:
        """The floor and cap at ``now``: from the window's high and low, or from the last print
        when it is older than the window (then so is every other)."""
        last = self._sl_last
        if last is None:
            return
        top, bottom = self._sl_range.high_low(now) or (last, last)
        floor = max(top - max(1, _pct_of(top, self._sl_hbp)), 1)
        cap = bottom + max(1, _pct_of(bottom, self._sl_hbp))
        if floor != self.sl_floor or cap != self.sl_cap:
            self.sl_floor, self.sl_cap = floor, cap
            self._set_fast_path()

    # -- market events ------------------------------------------------------------------------
    def on_trade(self, price: int, now: int) -> Sequence[StatusEvent]:
        """A trade printed: update the reference (and bands); may trigger a circuit breaker."""
        w = self._window
        w.append((now, price))
        total = self._sum + price
        cutoff = now - self._window_ns
        while w[0][0] <= cutoff:
            total -= w.popleft()[1]
        self._sum = total
        if self.stop_logic:
            self._sl_note(price, now)
        n = len(w)
        mean = (2 * total + n) // (2 * n)
        if self.reference is None:
            if self.previous_close is None:
                self.previous_close = price
                self._set_cb()
            self._set_reference(mean)
        elif mean <= self._ref_lo or mean >= self._ref_hi:
            self._set_reference(mean)
        if price <= self.cb_price:
            return self._circuit_breaker(price, now)
        return _NONE

    def on_top(self, bid: int | None, ask: int | None, now: int) -> list[StatusEvent]:
        """The best bid/ask (prices, None for an empty side) after a book change or a band
        change: enters or leaves the limit state."""
        if self.state is not OPEN and self.state is not LIMIT:
            return []
        at = None
        if ask is not None and ask <= self.lower:
            at = "lower"
        elif bid is not None and bid >= self.upper:
            at = "upper"
        events: list[StatusEvent] = []
        if self.state is LIMIT and at != self.limit_band:
            self.state = OPEN
            self.limit_band = None
            self.limit_deadline = BIG
            events.append(LimitStateExited(self.symbol, now))
        if at is not None and self.state is OPEN:
            self.state = LIMIT
            self.limit_band = at
            self.limit_deadline = now + round(self.params.limit_state_s * SECOND_NS)
            events.append(LimitStateEntered(self.symbol, at, self.lower if at == "lower" else self.upper, now))
        return events

    def _circuit_breaker(self, price: int, now: int) -> list[StatusEvent]:
        pc = self.previous_close
        assert pc is not None
        level = 0
        for lv, pct in enumerate(self.params.mwcb_levels_pct, 1):
            if price <= pc - _pct_of(pc, _bp(pct)):
                level = lv
        return self._trip(level, now)

    def on_index(self, change_bp: int, now: int) -> list[StatusEvent]:
        """The market index now stands ``change_bp`` basis points from its previous close: a fall to
        a level not yet triggered today trips the market-wide breaker (``mwcb_trigger="index"``)."""
        p = self.params
        if not p.circuit_breakers or p.mwcb_trigger != "index":
            return []
        level = 0
        for lv, pct in enumerate(p.mwcb_levels_pct, 1):
            if -change_bp * 100 >= _bp(pct):
                level = lv
        if not level or level in self.mwcb_triggered:
            return []
        return self._trip(level, now)

    def _trip(self, level: int, now: int) -> list[StatusEvent]:
        """Level ``level`` (and every lower one) is used up for the day; halt as the rule table says."""
        for lv in range(1, level + 1):
            self.mwcb_triggered.add(lv)
        self._set_cb()
        halt_min = mwcb_halt_min_for(self.params, level, (self.close_ns - now) / MINUTE_NS)
        if halt_min == DAY:
            return [self.halt(now, f"mwcb level {level}", None)]
        if halt_min > 0:
            return [self.halt(now, f"mwcb level {level}", now + round(halt_min * MINUTE_NS))]
        return []

    def halt(self, now: int, reason: str, resume_ns: int | None) -> TradingHalted:
        """Halt trading (circuit breaker; also used to spread a market-wide halt to every
        symbol) until ``resume_ns`` (None: rest of the day)."""
        return self._halt(now, HALTED, reason, resume_ns)

    def _halt(self, now: int, state: str, reason: str, resume_ns: int | None) -> TradingHalted:
        if resume_ns is not None and resume_ns >= self.close_ns:
            resume_ns = None  # no reopening before the close
        if self.halted:  # already halted: the longer halt wins
            old = None if self.resume_at == BIG else self.resume_at
            resume_ns = None if old is None or resume_ns is None else max(old, resume_ns)
        self.state = state
        self.halted = True
        self.halt_reason = reason
        self.auction_collar = None  # a LULD pause sets its collars after this (expire_limit_state)
        self.extensions = 0
        self.limit_band = None
        self.limit_deadline = BIG
        self.resume_at = BIG if resume_ns is None else resume_ns
        self.auction_due = False
        self._set_fast_path()
        return TradingHalted(self.symbol, reason, now, resume_ns)

    def _open_collar(self, band: int) -> None:
        """Auction collars of the reopening after a LULD pause triggered at ``band`` (ticks)."""
        step = band_width(self.params, band)
        self._collar_step = step
        self.auction_collar = (band, max(band - step, 1), band + step)

    def extend_auction(self, now: int, price: int | None, paired: int) -> bool:
        """At the scheduled reopening, with the auction's indicative ``price`` and ``paired``
        quantity: True (and the pause extended, the collar on the price's side widened) when an
        auction that would execute lies outside the collars; False when it may go ahead."""
        collar = self.auction_collar
        if collar is None or not paired or price is None or collar[1] <= price <= collar[2]:
            return False
        ref, lo, hi = collar
        if price < lo:
            lo = max(lo - self._collar_step, 1)
        else:
            hi += self._collar_step
        self.auction_collar = (ref, lo, hi)
        self.extensions += 1
        resume = now + round(self.params.auction_extension_min * MINUTE_NS)
        self.resume_at = BIG if resume >= self.close_ns else resume
        self.auction_due = False
        return True

    def resume(self, now: int, auction_price: int | None, auction_qty: int) -> list[StatusEvent]:
        """Continuous trading again after the reopening auction (called by the exchange once it
        has run the auction that ``auction_due`` asked for). A crossed auction sets the
        reference (and the 5-minute window) to the auction price; it may trigger a circuit
        breaker."""
        self.state = OPEN
        self.halted = False
        self.auction_due = False
        self.resume_at = BIG
        self.halt_reason = ""
        self.auction_collar = None
        self.extensions = 0
        self.doubled = self._doubled_at(now)
        price = auction_price if auction_qty else None
        events: list[StatusEvent] = [TradingResumed(self.symbol, now, price, auction_qty)]
        if auction_qty and auction_price is not None:
            if self.stop_logic:
                self._sl_range = RollingRange(self._sl_window_ns)
                self._sl_note(auction_price, now)
            self._window.clear()
            self._window.append((now, auction_price))
            self._sum = auction_price
            if self.previous_close is None:
                self.previous_close = auction_price
                self._set_cb()
            self._set_reference(auction_price)
        else:
            self._recompute()
        if auction_qty and auction_price is not None and auction_price <= self.cb_price:
            events.extend(self._circuit_breaker(auction_price, now))
        return events
