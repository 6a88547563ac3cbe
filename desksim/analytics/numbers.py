"""Small numeric helpers shared by the analytics modules."""

from __future__ import annotations

import math
from typing import Any


def finite_or_none(value: Any) -> float | None:
    """A plain float, or None for None/NaN/inf (a statistic that cannot be computed)."""
    if value is None:
        return None
    out = float(value)
    return out if math.isfinite(out) else None
