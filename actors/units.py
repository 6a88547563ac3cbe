"""The price and quantity convention, in one place.

Prices are integer ticks and quantities integer shares everywhere inside a run (the book, the
messages, the ledgers); a price in currency is ``ticks * tick_size``. ``tick_size`` is a
scenario's setting (``tick_size:``, currency per tick); :data:`DEFAULT_TICK_SIZE` is its default
and the default of every constructor that takes one. Money kept in integer ticks x shares is
converted the same way (``tick_shares * tick_size`` = currency).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

#: currency per price tick when a scenario does not say (one cent).
DEFAULT_TICK_SIZE = 0.01

_N = TypeVar("_N", float, np.ndarray)


def to_price(ticks: _N, tick_size: float) -> _N:
    """Ticks (or ticks x shares) -> currency: ``ticks * tick_size`` (scalars or numpy arrays)."""
    return ticks * tick_size


def to_ticks(price: float, tick_size: float) -> int:
    """A currency price -> the nearest whole number of ticks."""
    return round(price / tick_size)
