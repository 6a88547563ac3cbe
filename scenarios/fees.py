"""The scenario's ``fees:`` section: a maker-taker (or inverted) fee schedule per venue.

```yaml
fees:
  exchange:                   # the venue: the exchange's name (exchange.name)
    maker_per_share: -0.0020  # a resting order's fill earns a 0.20 cent rebate per share
    taker_per_share: 0.0030   # an aggressing order's fill pays 0.30 cent per share
    overrides:                # actor-name globs, first match wins; unset rates inherit the venue's
      mm*: {maker_per_share: -0.0032}
```

Rates are currency per share, positive = the participant pays the venue, negative = the venue
pays a rebate. An inverted venue is the same schedule with the signs swapped (the maker pays,
the taker is paid). Every rate is a whole multiple of ``FEE_UNIT`` (0.000001 currency per share,
1/10,000 of a cent), so the arithmetic is exact in integers (``desksim/analytics/fees.py``).

Fees are accounting, not behaviour: no actor sees them, the matching and the event stream (and
so every digest) are the same with or without a ``fees:`` section. A scenario without one has no
fees.
"""

from __future__ import annotations

import fnmatch
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

__all__ = ["FEE_UNIT", "MICROS", "FeeOverride", "VenueFees", "fee_problems", "micros"]

#: the unit of every fee rate: 1e-6 currency per share (1/10,000 of a cent)
FEE_UNIT = Decimal("0.000001")
MICROS = 1_000_000  # fee units per currency unit
#: sanity bound on a rate (real access fees are capped at a few tenths of a cent)
MAX_RATE = Decimal("0.1")


def micros(value: Decimal) -> int:
    """``value`` (currency, a whole multiple of ``FEE_UNIT``) as an integer number of fee units."""
    units = value / FEE_UNIT
    if units != units.to_integral_value():
        raise ValueError(f"{value:f} is not a whole multiple of {FEE_UNIT} (1/10,000 of a cent)")
    return int(units)


def _rate(value: Decimal) -> Decimal:
    if not value.is_finite() or abs(value) > MAX_RATE:
        raise ValueError(f"a rate must lie within ±{MAX_RATE} currency per share, got {value:f}")
    micros(value)
    return value


Rate = Annotated[Decimal, AfterValidator(_rate)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeeOverride(_Strict):
    """Rates for the actors an override's glob matches; a rate left out is the venue's."""

    maker_per_share: Rate | None = None  # currency per share for a fill of a resting order
    taker_per_share: Rate | None = None  # currency per share for a fill of an aggressing order
    auction_per_share: Rate | None = None  # currency per share, each side of an auction print


class VenueFees(_Strict):
    """One venue's schedule. Positive = the participant pays, negative = a rebate."""

    # currency per share for a fill of a resting (passive, maker) order; negative: a rebate
    maker_per_share: Rate = Decimal(0)
    # currency per share for a fill of an aggressing (taker) order; negative (inverted venue): paid
    taker_per_share: Rate = Decimal(0)
    # currency per share charged to each side of an auction print (open, reopening after a halt)
    auction_per_share: Rate = Decimal(0)
    # each fill's fee is rounded to this (currency), half away from zero, as the venue bills it
    round_to: Decimal = Field(default=Decimal("0.0001"), gt=0)
    # actor-name glob -> rates (first match wins); the desk's account is its desk's name
    overrides: dict[str, FeeOverride] = {}

    @field_validator("round_to")
    @classmethod
    def _unit(cls, value: Decimal) -> Decimal:
        micros(value)
        return value


def fee_problems(fees: dict[str, VenueFees], venues: list[str], actors: list[str]) -> list[tuple[str, str]]:
    """``(field path, message)`` for a venue that is not an exchange of the scenario and an override
    glob that matches no actor."""
    problems: list[tuple[str, str]] = []
    for venue, schedule in fees.items():
        if venue not in venues:
            problems.append((f"fees.{venue}", f"unknown venue (venues: {', '.join(venues)})"))
        for glob in schedule.overrides:
            if not any(fnmatch.fnmatchcase(name, glob) for name in actors):
                problems.append((f"fees.{venue}.overrides.{glob}", "matches no actor"))
    return problems
