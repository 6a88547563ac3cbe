"""Real-market reference ranges for the realism statistics, and pass/fail against them.

The ranges are issue 16's "baseline realism" table: real large-cap days (public LOBSTER sample days,
2012-06-21, AAPL / AMZN / GOOG; DESIGN.md "Facts worth knowing") widened to what one simulated day
must reach. A statistic that cannot be computed (None) neither passes nor fails: its grade is None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

SOURCE = "issue 16 baseline realism (LOBSTER 2012-06-21 AAPL/AMZN/GOOG)"


@dataclass(frozen=True, slots=True)
class Target:
    """``lo <= value <= hi`` (a None bound is open; ``strict``: ``lo < value``)."""

    key: str
    label: str  # the fact it measures
    lo: float | None
    hi: float | None
    real: str  # what the real days show
    strict: bool = False

    def check(self, value: Any) -> bool | None:
        if value is None or isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return None
        if self.lo is not None and (value <= self.lo if self.strict else value < self.lo):
            return False
        return not (self.hi is not None and value > self.hi)

    @property
    def text(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"{self.lo:g} to {self.hi:g}"
        if self.lo is not None:
            return f"{'>' if self.strict else '>='} {self.lo:g}"
        return f"<= {self.hi:g}"


TARGETS: tuple[Target, ...] = (
    Target("kurtosis_1m", "heavy tails", 1.2, 6.5, "2.4 to 3.4"),
    Target("kurtosis_drop_1m_30m", "aggregational normality", 0.0, None, "kurtosis falls with horizon", strict=True),
    Target("acf1_1m", "no autocorrelation", -0.1, 0.1, "-0.14 to +0.05"),
    Target("abs_acf_mean", "volatility clustering", 0.02, 0.12, "0.04 to 0.07"),
    Target("corr_volume_absret", "volume volatility", 0.2, 0.45, "0.27 to 0.38"),
    Target("return_std_1m_bps", "1-min volatility (bp)", 2.5, 14.0, "large caps"),
    Target("spread_median_bps", "median spread (bp)", 1.3, 11.0, "large caps"),
    Target("depth_touch_to_trade_size", "touch depth / trade size", 0.6, 4.0, "large caps"),
    Target("volume_u_shape", "intraday volume U-shape", 1.6, 4.5, "2.4 to 3.0"),
    Target("exec_gap_cv", "bursty executions (gap CV)", 1.7, 4.0, "bursty"),
    Target("new_order_gap_cv", "bursty order arrivals (gap CV)", 1.7, 4.0, "2.5 to 2.7"),
    Target("executions_per_new_order", "executions per new order", 0.08, 0.3, "0.15 to 0.16"),
    Target("cancels_per_new_order", "cancels per new order", 0.6, 1.0, "0.87 to 0.91"),
)
BY_KEY = {t.key: t for t in TARGETS}


def grade(stats: dict[str, Any]) -> dict[str, bool | None]:
    """``{key: pass}`` for every target (None when the statistic is missing)."""
    return {t.key: t.check(stats.get(t.key)) for t in TARGETS}
