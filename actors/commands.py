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
