"""Limits of the risk function, its audit events and the messages that carry them between actors.

:class:`RiskLimits` are the limits of one account (its FIX session) or account/symbol;
:class:`GateConfig` is what a gateway needs to build its own pre-trade gate (the scenario's limits
and reference prices, and the officer to report to); :class:`SetRiskLimits` changes a gateway's
limits at run time (risk officer -> gateway); :class:`RiskEvent` is one row of the audit trail
(the ``risk_events`` table), also sent as a message by the gateway to the officer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, with_config

from sim.clock import MS

__all__ = ["RISK_EVENT_COLUMNS", "GateConfig", "RiskEvent", "RiskLimits", "SetRiskLimits"]

# the audit trail: when, the session (actor), the rule (kind), the limit and the value that broke it,
# what was done, and the order concerned (ClOrdID / OrderID; "" for a session-wide event)
RISK_EVENT_COLUMNS = ("time_ns", "actor", "kind", "limit", "value", "action", "cl_ord_id", "order_id")

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Level = Annotated[float, Field(gt=0, lt=1)]


# =============================================================================================
# limits
# =============================================================================================


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Limits of one account or account/symbol. ``None`` switches a limit off."""

    # per order
    max_order_qty: PositiveInt | None = None  # shares
    max_order_notional: PositiveInt | None = None  # ticks x shares (market: the protection price, else the reference)
    collar_pct: NonNegativeFloat | None = None  # |price - reference| <= floor(reference * pct / 100)
    collar_ticks: NonNegativeInt | None = None  # |price - reference| <= ticks (tighter one wins)
    reference: Literal["last", "mid"] = "last"  # collar reference: "last" trade or "mid" of the top of book
    # market order protection: a market order goes to the exchange as an IOC limit at the protection
    # price (buy: the lowest, sell: the highest of the bounds below); what it cannot fill within it is
    # canceled. Unset market collar: the ordinary collar (collar_pct / collar_ticks) bounds it.
    market_collar_pct: NonNegativeFloat | None = None  # reference +- floor(reference * pct / 100)
    market_collar_ticks: NonNegativeInt | None = None  # reference +- ticks (tighter one wins)
    max_sweep_ticks: NonNegativeInt | None = None  # at most this far beyond the touch (none: the reference)
    duplicate_window_ms: PositiveFloat | None = None  # same side/qty/price refused within the window
    # positions (potential: position + open orders on that side + the order)
    max_long: NonNegativeInt | None = None  # shares
    max_short: NonNegativeInt | None = None  # shares (a positive number)
    # account-wide
    max_gross_notional: PositiveInt | None = None  # sum |position| x mark + open orders, ticks x shares
    max_daily_loss: NonNegativeInt | None = None  # -(cash + position x mark), ticks x shares
    max_messages: PositiveInt | None = None  # new orders + replaces + cancels per window
    message_window_ms: PositiveFloat = 1000.0
    max_orders: PositiveInt | None = None  # new orders per window
    order_window_ms: PositiveFloat = 1000.0
    max_var: NonNegativeFloat | None = None  # ticks x shares, checked on the officer's timer
    max_es: NonNegativeFloat | None = None
    # kill-switch triggers
    kill_on_loss: bool = True  # daily loss beyond max_daily_loss
    kill_on_position: bool = True  # a filled position beyond max_long / max_short
    kill_throttle_breaches: PositiveInt | None = None  # runaway: this many throttle refusals ...
    kill_throttle_window_ms: PositiveFloat = 10_000.0  # ... within this window
    kill_on_var: bool = False  # VaR / ES beyond its limit
    # compliance controls
    prevent_self_match: bool = False  # refuse an order that would trade with the session's own resting order
    restricted: tuple[str, ...] = ()  # symbols the session may not trade (a cancel is still allowed)
    after_kill: Literal["block", "reduce_only"] = "block"  # blocked session: nothing, or orders that reduce

    def __post_init__(self) -> None:
        if self.reference not in ("last", "mid"):
            raise ValueError(f"reference must be 'last' or 'mid', got {self.reference!r}")
        if self.after_kill not in ("block", "reduce_only"):
            raise ValueError(f"after_kill must be 'block' or 'reduce_only', got {self.after_kill!r}")
        for name in ("market_collar_pct", "market_collar_ticks", "max_sweep_ticks"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not value >= 0):
                raise ValueError(f"{name} must be >= 0, got {value!r}")

    @property
    def market_protection(self) -> bool:
        """Whether a market order is bounded by a protection price (a market collar, the ordinary
        collar it defaults to, or a sweep limit)."""
        return (
            self.market_collar_pct is not None
            or self.market_collar_ticks is not None
            or self.collar_pct is not None
            or self.collar_ticks is not None
            or self.max_sweep_ticks is not None
        )


def _ns(ms: float) -> int:
    return round(ms * MS)


@dataclass(frozen=True, slots=True)
class RiskEvent:
    time_ns: int
    actor: str  # the account concerned
    kind: str
    limit: float
    value: float
    action: str  # "reject" | "kill" | "alert" | "mass_cancel" | "cancels_acked" | "unblock" | "refused" | "cancel"
    cl_ord_id: str = ""  # the order concerned: its ClOrdID ...
    order_id: str = ""  # ... and the exchange's OrderID once it has one ("" for session-wide events)

    def row(self) -> tuple[int, str, str, float, float, str, str, str]:
        return (self.time_ns, self.actor, self.kind, self.limit, self.value, self.action, self.cl_ord_id, self.order_id)


@dataclass(frozen=True, slots=True)
class SetRiskLimits:
    """Risk officer -> gateway: install or replace the limits of ``key`` ("ACCOUNT",
    "ACCOUNT/SYMBOL", "*/SYMBOL"; "" = the default)."""

    key: str
    limits: RiskLimits


@dataclass(frozen=True, slots=True)
class GateConfig:
    """What a gateway needs to build its own pre-trade gate: the default limits, the overrides
    (key -> limits), the day's static reference prices (symbol -> ticks) and the name of the risk
    officer it reports risk events and kills to (None: no officer; the gate then also pulls the
    kill switch on its own loss / position triggers). Immutable: handing it to two actors shares
    nothing mutable."""

    default: RiskLimits = RiskLimits()
    overrides: tuple[tuple[str, RiskLimits], ...] = ()
    reference_prices: tuple[tuple[str, int], ...] = ()
    officer: str | None = "risk"

    @classmethod
    def of(
        cls,
        default: RiskLimits | None = None,
        overrides: Mapping[str, RiskLimits] | None = None,
        reference_prices: Mapping[str, int] | None = None,
        officer: str | None = "risk",
    ) -> GateConfig:
        return cls(
            default or RiskLimits(),
            tuple(sorted((overrides or {}).items())),
            tuple(sorted((reference_prices or {}).items())),
            officer,
        )
