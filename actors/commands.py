"""Control commands a scenario's timeline sends to participants (verbs, frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WithdrawQuotes:
    """A market maker pulls every quote and stops quoting until ``ResumeQuotes``."""

    reason: str = "scenario"


@dataclass(frozen=True, slots=True)
class ResumeQuotes:
    reason: str = "scenario"


@dataclass(frozen=True, slots=True)
class StartProgram:
    """A program trader starts working its parent order now."""

    reason: str = "scenario"


@dataclass(frozen=True, slots=True)
class SendOrderNow:
    """A scripted trader sends one order now: ``price_offset_pct`` from the last trade (None =
    market order)."""

    side: str
    qty: int
    price_offset_pct: float | None = None


@dataclass(frozen=True, slots=True)
class HaltTrading:
    """The exchange halts ``symbol`` for ``duration_s`` (regulatory halt), then reopens by auction."""

    symbol: str
    duration_s: float
    reason: str = "scenario halt"


@dataclass(frozen=True, slots=True)
class SetIndexLevel:
    """The market index (the S&P 500 for today's breakers, the DJIA for 2010's) now stands
    ``change_bp`` basis points from its previous close (negative: a decline), truncated toward
    zero to a whole basis point so that a decline trips a breaker level only once it is reached.
    ``level`` is the index level itself in hundredths of a point when the timeline gave one (for
    the record). The exchange passes the change to every symbol's market-wide circuit breaker."""

    change_bp: int
    level: int | None = None
    reason: str = "scenario"
