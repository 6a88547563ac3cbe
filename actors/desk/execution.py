"""Execution schedules: TWAP, VWAP and Almgren–Chriss. Pure functions, no actors, no clocks.

A schedule slices a parent quantity ``qty`` over ``[start_ns, end_ns)`` into ``n_slices``
child slices on an equal grid: slice ``j`` is sent at ``t_j = start_ns + j·(end_ns - start_ns)
// n_slices`` (integer nanoseconds) and is meant to be done by ``t_{j+1}``. Slices are integer
share counts that sum *exactly* to ``qty``:

- the real-valued target of each slice (``qty·w_j / Σw``) is rounded in whole lots by the
  largest-remainder (Hamilton) method — floors first, then the leftover lots one each to the
  largest fractional parts, earlier slices first on ties;
- when ``qty`` is not a multiple of ``lot_size``, the odd lot goes to the slice with the largest
  weight (the earliest of the largest on ties).

So TWAP slices differ by at most one lot (plus the odd lot), VWAP follows the volume curve and
Almgren–Chriss its trade list, to the lot.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import ConfigDict, Field, with_config

from sim.clock import SECOND

Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]


@dataclass(frozen=True, slots=True)
class Schedule:
    """Child slices of one parent: ``times_ns[j]`` and ``qtys[j]`` (shares, may be 0)."""

    algo: str
    times_ns: tuple[int, ...]
    qtys: tuple[int, ...]
    end_ns: int

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(zip(self.times_ns, self.qtys, strict=True))

    def __len__(self) -> int:
        return len(self.qtys)

    @property
    def total(self) -> int:
        return sum(self.qtys)

    def cumulative(self) -> list[int]:
        out, acc = [], 0
        for q in self.qtys:
            acc += q
            out.append(acc)
        return out


def grid(start_ns: int, end_ns: int, n_slices: int) -> list[int]:
    """Send times of ``n_slices`` equal slices over ``[start_ns, end_ns)``."""
    if n_slices <= 0:
        raise ValueError("n_slices must be positive")
    if end_ns < start_ns:
        raise ValueError("end_ns must not be before start_ns")
    span = end_ns - start_ns
    return [start_ns + j * span // n_slices for j in range(n_slices)]


def allocate(weights: Sequence[float], qty: int, lot_size: int = 1) -> list[int]:
    """Split ``qty`` shares in proportion to ``weights`` (largest remainder, in whole lots).

    Sums exactly to ``qty``; every slice is a multiple of ``lot_size`` except the one that takes
    the odd lot (``qty % lot_size`` shares, given to the largest weight). Negative weights are
    treated as 0; all-zero weights are treated as equal.
    """
    if qty < 0:
        raise ValueError("qty must be non-negative")
    if lot_size <= 0:
        raise ValueError("lot_size must be positive")
    n = len(weights)
    if n == 0:
        raise ValueError("need at least one weight")
    w = [x if x > 0.0 and math.isfinite(x) else 0.0 for x in weights]
    total_w = math.fsum(w)
    if total_w <= 0.0:
        w = [1.0] * n
        total_w = float(n)
    lots, odd = divmod(qty, lot_size)
    quotas = [lots * x / total_w for x in w]
    out = [math.floor(q) for q in quotas]
    left = lots - sum(out)
    if left < 0:  # float noise pushed a floor up: take back from the smallest remainders
        order = sorted((j for j in range(n) if out[j] > 0), key=lambda j: (quotas[j] - out[j], -j))
        for j in order[:-left]:
            out[j] -= 1
        left = 0
    if left:
        order = sorted(range(n), key=lambda j: (-(quotas[j] - out[j]), j))
        for j in order[:left]:
            out[j] += 1
    out = [k * lot_size for k in out]
    if odd:
        big = max(range(n), key=lambda j: (w[j], -j))
        out[big] += odd
    return out


def _schedule(algo: str, weights: Sequence[float], qty: int, start_ns: int, end_ns: int, lot_size: int) -> Schedule:
    times = grid(start_ns, end_ns, len(weights))
    return Schedule(algo, tuple(times), tuple(allocate(weights, qty, lot_size)), end_ns)


# ---------------------------------------------------------------------------------------------
# TWAP
# ---------------------------------------------------------------------------------------------


def twap_schedule(qty: int, start_ns: int, end_ns: int, n_slices: int, lot_size: int = 1) -> Schedule:
    """Equal slices (to one lot) at equal intervals."""
    return _schedule("twap", [1.0] * n_slices, qty, start_ns, end_ns, lot_size)


# ---------------------------------------------------------------------------------------------
# VWAP
# ---------------------------------------------------------------------------------------------


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class VolumeCurve:
    """Intraday U-shaped volume rate over the session, ``u`` = fraction of the session in [0, 1]:

    ``v(u) = base + open_amp·exp(-u / open_decay) + close_amp·exp(-(1 - u) / close_decay)``

    Heavy at the open (decaying over ``open_decay`` of the day), heavy into the close, flat
    around midday. Slice weights are the exact integral of ``v`` over each slice's interval, so
    any grid gets a normalised profile.
    """

    base: NonNegative = 1.0
    open_amp: NonNegative = 2.0
    open_decay: Positive = 0.08
    close_amp: NonNegative = 2.5
    close_decay: Positive = 0.06

    def integral(self, u0: float, u1: float) -> float:
        """∫ v(u) du over [u0, u1] (clipped to [0, 1])."""
        u0, u1 = max(0.0, min(1.0, u0)), max(0.0, min(1.0, u1))
        if u1 <= u0:
            return 0.0
        a, d = self.open_amp, self.open_decay
        c, e = self.close_amp, self.close_decay
        return (
            self.base * (u1 - u0)
            + a * d * (math.exp(-u0 / d) - math.exp(-u1 / d))
            + c * e * (math.exp(-(1.0 - u1) / e) - math.exp(-(1.0 - u0) / e))
        )

    def profile(self, n_bins: int) -> list[float]:
        """Share of the day's volume in each of ``n_bins`` equal bins (sums to 1)."""
        weights = [self.integral(i / n_bins, (i + 1) / n_bins) for i in range(n_bins)]
        total = math.fsum(weights)
        return [w / total for w in weights] if total > 0 else [1.0 / n_bins] * n_bins


DEFAULT_CURVE = VolumeCurve()


def vwap_schedule(
    qty: int,
    start_ns: int,
    end_ns: int,
    n_slices: int,
    open_ns: int,
    close_ns: int,
    curve: VolumeCurve = DEFAULT_CURVE,
    lot_size: int = 1,
) -> Schedule:
    """Slices proportional to the expected volume of each slice's interval under ``curve``
    (the session is ``[open_ns, close_ns)``; the parent's window may be any part of it)."""
    times = grid(start_ns, end_ns, n_slices)
    session = max(1, close_ns - open_ns)
    bounds = [*times, end_ns]
    weights = [
        curve.integral((bounds[j] - open_ns) / session, (bounds[j + 1] - open_ns) / session) for j in range(n_slices)
    ]
    if math.fsum(weights) <= 0.0:  # window outside the session (or zero length): fall back to TWAP
        weights = [1.0] * n_slices
    return Schedule("vwap", tuple(times), tuple(allocate(weights, qty, lot_size)), end_ns)


# ---------------------------------------------------------------------------------------------
# Almgren–Chriss
# ---------------------------------------------------------------------------------------------


def ac_kappa(risk_aversion: float, volatility: float, eta: float) -> float:
    """Urgency ``κ = sqrt(λσ² / η)`` in 1/second.

    Units: ``risk_aversion`` λ in 1/currency; ``volatility`` σ of the price in currency per share
    per √second; ``eta`` η, the temporary impact, in currency per share per (share/second) of
    trading rate (so a rate of ``v`` shares/s costs ``η·v`` per share). Then ``λσ²/η`` is in
    1/second². ``eta <= 0`` is refused; a zero risk aversion or volatility gives κ = 0 (TWAP).
    """
    if eta <= 0:
        raise ValueError("eta (temporary impact) must be positive")
    if risk_aversion < 0 or volatility < 0:
        raise ValueError("risk_aversion and volatility must be non-negative")
    return math.sqrt(risk_aversion * volatility * volatility / eta)


def ac_holdings(qty: float, kappa: float, horizon_s: float, times_s: Sequence[float]) -> list[float]:
    """Optimal holdings ``x(t) = X·sinh(κ(T - t)) / sinh(κT)`` at ``times_s`` (seconds from start).

    Evaluated in a form that neither overflows for large κT nor loses precision for small κT
    (κT -> 0 gives the straight line ``X·(1 - t/T)``, i.e. TWAP).
    """
    T = horizon_s
    if T <= 0:
        return [0.0 for _ in times_s]
    kT = kappa * T
    out = []
    for t in times_s:
        t = min(max(t, 0.0), T)
        if kT < 1e-6:
            out.append(qty * (T - t) / T)
        else:
            # sinh(κ(T-t))/sinh(κT) = e^{-κt} (1 - e^{-2κ(T-t)}) / (1 - e^{-2κT})
            out.append(qty * math.exp(-kappa * t) * (-math.expm1(-2.0 * kappa * (T - t))) / (-math.expm1(-2.0 * kT)))
    return out


def almgren_chriss_schedule(
    qty: int,
    start_ns: int,
    end_ns: int,
    n_slices: int,
    kappa: float | None = None,
    *,
    risk_aversion: float = 0.0,
    volatility: float = 0.0,
    eta: float = 1.0,
    lot_size: int = 1,
) -> Schedule:
    """Trade list ``n_j = x_{j-1} - x_j`` of the Almgren–Chriss holdings on the slice grid.

    ``kappa`` (1/second) is used when given, else ``κ = sqrt(λσ²/η)`` from ``risk_aversion``,
    ``volatility`` and ``eta`` (units in :func:`ac_kappa`). κ > 0 front-loads the trades; κ -> 0
    is TWAP. (This uses the continuous-time κ on the discrete grid, as in the design note; the
    exact discrete-time κ̃ of Almgren–Chriss, ``cosh(κ̃τ) = 1 + κ²τ²/2``, differs by O(κ²τ²).)
    """
    k = ac_kappa(risk_aversion, volatility, eta) if kappa is None else kappa
    if k < 0:
        raise ValueError("kappa must be non-negative")
    times = grid(start_ns, end_ns, n_slices)
    T = (end_ns - start_ns) / SECOND
    tau = T / n_slices
    x = ac_holdings(float(qty), k, T, [j * tau for j in range(n_slices + 1)])
    trades = [x[j] - x[j + 1] for j in range(n_slices)]
    return Schedule("almgren_chriss", tuple(times), tuple(allocate(trades, qty, lot_size)), end_ns)
