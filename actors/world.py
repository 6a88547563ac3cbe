"""Exogenous processes shared by many agents of one run: a fundamental value and market activity.

Each process is a pure function of a numpy ``Generator`` (built from a named stream, see
``sim.rng.RandomStreams.numpy``), its parameters and the session's start and end. The whole path
is precomputed on a regular grid when the object is built (a full 09:30–16:00 day at 1 s is
23,400 points, well under a millisecond of numpy work), so agents read it with O(1) pure-Python
lookups on the hot path and never touch numpy per message.

Units: times are integer nanoseconds, values are ticks (floats), a "trading day" is 6.5 hours
(``TRADING_DAY_S`` = 23,400 s) whatever the session length.

``Fundamental``
    Ornstein–Uhlenbeck value around the reference price, integrated with the exact OU
    discretisation, plus optional compound-Poisson jumps in percent of the current value. A
    jump moves the value; its ``jump_permanence`` share also moves the level the value reverts
    to (news), the rest decays with the OU half-life (noise). Scenario events can add jumps and
    scale volatility afterwards: the standard normal draws are kept and the path re-integrated
    from the affected time, so everything before it is unchanged and the result is as
    deterministic as the original path.

``Activity``
    A shared intensity multiplier (how busy the market is): ``exp`` of an OU process in log
    space times an optional U-shaped intraday profile, normalised to mean 1 over the session.
    ``next_arrival(t, gap)`` maps a gap of "business time" (seconds at activity 1) to calendar
    time by inverting the cumulative intensity, which gives every agent that uses it the same
    bursts of activity: volume and volatility clustering.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import ConfigDict, Field, with_config

from sim import detmath
from sim.clock import SECOND
from sim.rng import RandomStreams

TRADING_DAY_S = 23_400.0
"""Seconds in the trading day the daily units refer to (09:30–16:00)."""

Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]


def _grid(start_ns: int, end_ns: int, grid_s: float) -> tuple[int, int]:
    """Grid step in ns and the number of cells covering ``[start, end]`` (at least one)."""
    if end_ns <= start_ns:
        raise ValueError(f"session end ({end_ns}) must be after its start ({start_ns})")
    step = max(1, round(grid_s * SECOND))
    return step, max(1, -(-(end_ns - start_ns) // step))


def _ar1(a: float, innovations: np.ndarray, y0: float) -> np.ndarray:
    """``y[k] = a * y[k-1] + innovations[k]`` with ``y[-1] = y0``.

    A plain loop of IEEE double operations: the same bits as ``scipy.signal.lfilter([1], [1, -a],
    zi=[a * y0])`` (which it replaced), without the second of scipy.signal's import in every process
    that builds a world (each Ray partition does). It does lfilter's own operations in its order
    (direct form II transposed: ``y = z + 1 * x``, then ``z = x * 0 - y * (-a)``), so even the signs
    of zeros agree, which ``a * y + x`` does not (``a = -0.0, x = -0.0``)."""
    out = []
    neg_a = -float(a)
    z = float(a) * float(y0)
    for x in innovations.tolist():
        y = z + 1.0 * x
        z = x * 0.0 - y * neg_a
        out.append(y)
    return np.array(out, dtype=float)


def _stationary_ar1(a: float, sd: float, z: np.ndarray) -> np.ndarray:
    """A zero-mean AR(1) ``y_k = a y_{k-1} + e_k`` with stationary standard deviation ``sd``,
    driven by the standard normals ``z`` and started from its stationary law."""
    innov = z * (sd * math.sqrt(max(0.0, 1.0 - a * a)))
    innov[0] = sd * z[0]  # a stationary first value
    return _ar1(a, innov, 0.0)


def _burst_scale(p: FundamentalParams, n: int, dt: float, rng: np.random.Generator) -> np.ndarray:
    """Step sd multipliers of a two-state (calm, burst) Markov regime on a grid of ``n`` steps of
    ``dt`` seconds: sojourns are geometric (in steps) with means ``burst_mean_min`` (bursts) and
    ``burst_mean_min * (1 - share) / share`` (calm), the first state is drawn from the stationary
    law, and the calm and burst sds ``c`` and ``c * scale`` make the mean variance 1."""
    share, scale = p.burst_share, p.burst_scale
    burst_steps = max(1.0, p.burst_mean_min * 60.0 / dt)
    calm_steps = max(1.0, burst_steps * (1.0 - share) / share)
    calm = 1.0 / math.sqrt((1.0 - share) + share * scale * scale)
    out = np.full(n, calm)
    in_burst = bool(rng.random() < share)
    k = 0
    while k < n:
        length = int(rng.geometric(1.0 / (burst_steps if in_burst else calm_steps)))
        if in_burst:
            out[k : k + length] = calm * scale
        k += length
        in_burst = not in_burst
    return out


# ---------------------------------------------------------------------------------------------
# Fundamental value
# ---------------------------------------------------------------------------------------------


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class FundamentalParams:
    """Mean-reverting fundamental value (ticks) around the reference price.

    ``sigma_pct_day`` is the diffusion coefficient in percent of the reference price per
    sqrt(trading day): with no mean reversion the value would move that much (one standard
    deviation) in 6.5 hours. Mean reversion (``half_life_min``, kappa = ln 2 / half-life) caps
    the spread: the stationary standard deviation is sigma / sqrt(2 kappa).
    """

    sigma_pct_day: NonNegative = 1.5  # % of reference per sqrt(6.5 h)
    half_life_min: Positive = 60.0  # mean-reversion half-life, minutes (inf = random walk)
    jump_rate_per_day: NonNegative = 2.0  # expected random jumps per 6.5 h (compound Poisson)
    jump_dist: Literal["normal", "laplace"] = "laplace"  # jump size distribution
    jump_sd_pct: NonNegative = 0.3  # standard deviation of a jump, % of the current value
    jump_mean_pct: float = 0.0  # mean of a jump, % of the current value
    jump_permanence: Fraction = 1.0  # share of a jump that also moves the reversion level
    grid_s: Positive = 1.0  # path resolution, seconds
    # share of the variance that runs in business time (scaled by the activity intensity); the
    # rest runs in calendar time. 1 = fully subordinated; lower it to decouple volatility from volume
    business_time: Fraction = 1.0
    # stochastic volatility of its own (independent of the activity, so of volume): the step
    # standard deviation is scaled by exp(h - sv_log_sd^2), h a log-OU with stationary sd
    # ``sv_log_sd`` and half-life ``sv_half_life_min`` (mean variance 1); 0 = off
    sv_log_sd: NonNegative = 0.0
    sv_half_life_min: Positive = 30.0
    # volatility bursts (a two-state Markov regime, independent of the activity): a share
    # ``burst_share`` of the time the step sd is ``burst_scale`` times the calm one, in bursts of
    # ``burst_mean_min`` minutes on average (mean variance 1); 0 = off. A bounded mixture gives
    # heavy 1-minute tails whose sample kurtosis varies far less from day to day than a log-OU's
    burst_share: Annotated[float, Field(ge=0, lt=1)] = 0.0
    burst_scale: Annotated[float, Field(ge=1)] = 2.5
    burst_mean_min: Positive = 3.0

    @property
    def kappa_per_s(self) -> float:
        return math.log(2.0) / (self.half_life_min * 60.0)


class Fundamental:
    """A precomputed fundamental-value path; ``value_at(t_ns)`` is an O(1) lookup (ticks).

    ``activity`` (optional) scales the variance of each step by the activity intensity, so
    the fundamental moves more when the market is busy (a subordinated OU).
    """

    def __init__(
        self,
        params: FundamentalParams,
        reference_price: float,
        start_ns: int,
        end_ns: int,
        rng: np.random.Generator,
        *,
        activity: Activity | None = None,
    ) -> None:
        self.p = params
        self.reference_price = float(reference_price)
        self.start_ns = int(start_ns)
        self.end_ns = int(end_ns)
        self.step_ns, n = _grid(self.start_ns, self.end_ns, params.grid_s)
        self.n = n  # steps; the path has n + 1 points t_k = start + k * step
        dt = self.step_ns / SECOND
        kappa = params.kappa_per_s
        self._a = math.exp(-kappa * dt)
        sigma = params.sigma_pct_day / 100.0 * self.reference_price / math.sqrt(TRADING_DAY_S)  # ticks/sqrt(s)
        if kappa > 0:  # exact OU: Var[x(t+dt) | x(t)] = sigma^2 (1 - exp(-2 kappa dt)) / (2 kappa)
            step_sd = sigma * math.sqrt(-math.expm1(-2.0 * kappa * dt) / (2.0 * kappa))
        else:
            step_sd = sigma * math.sqrt(dt)
        # random inputs, drawn once in a fixed order: re-integration reuses them
        self._z = rng.standard_normal(n)
        counts = rng.poisson(params.jump_rate_per_day * dt / TRADING_DAY_S, n + 1)
        total = int(counts.sum())
        if params.jump_dist == "normal":
            sizes = rng.normal(params.jump_mean_pct, params.jump_sd_pct, total)
        else:
            sizes = rng.laplace(params.jump_mean_pct, params.jump_sd_pct / math.sqrt(2.0), total)
        # jump at grid index k (k >= 1: within (t_{k-1}, t_k]); k = 0 never gets one
        idx = np.repeat(np.arange(n + 1), counts)
        self._jumps: dict[int, list[tuple[float, float]]] = {}
        for k, pct in zip(idx.tolist(), sizes.tolist(), strict=True):
            if k > 0:
                self._jumps.setdefault(k, []).append((pct, params.jump_permanence))
        self._step_sd = np.full(n, step_sd)
        if params.sv_log_sd > 0:  # drawn after the path's own draws, which stay as they were
            a_sv = math.exp(-math.log(2.0) / (params.sv_half_life_min * 60.0) * dt)
            sd_sv = params.sv_log_sd
            h = _stationary_ar1(a_sv, sd_sv, rng.standard_normal(n))
            # sd scale exp(h - sd^2): the variance scale exp(2h - 2 sd^2) has mean 1
            self._step_sd *= detmath.exp(h - sd_sv * sd_sv)
        if params.burst_share > 0:  # drawn after everything above, which stays as it was
            self._step_sd *= _burst_scale(params, n, dt, rng)
        if activity is not None:
            mids = self.start_ns + self.step_ns * np.arange(n)
            intensity = activity.intensity_array(mids)
            b = params.business_time
            self._step_sd *= np.sqrt(intensity if b == 1.0 else (1.0 - b) + b * intensity)
        self._vol_scale = np.ones(n)
        self._y = np.zeros(n + 1)  # deviation from the reversion level, after jumps
        self._m = np.full(n + 1, self.reference_price)  # reversion level, after jumps
        self._values: list[float] = []
        self._integrate(0)

    @classmethod
    def from_streams(
        cls,
        streams: RandomStreams,
        params: FundamentalParams,
        reference_price: float,
        start_ns: int,
        end_ns: int,
        *,
        name: str = "world/fundamental",
        activity: Activity | None = None,
    ) -> Fundamental:
        return cls(params, reference_price, start_ns, end_ns, streams.numpy(name), activity=activity)

    # -- integration ----------------------------------------------------------------------------
    def _integrate(self, k0: int) -> None:
        """Re-integrate points ``k0..n`` from the stored state at ``k0 - 1`` and the stored draws."""
        y, m = self._y, self._m
        innov = self._z * self._step_sd * self._vol_scale  # innov[k-1] drives point k
        if k0 <= 0:  # point 0 is the reference level (plus any jump added at or before the start)
            y_prev, m_prev = self._apply_jumps(0, 0.0, self.reference_price)
            y[0], m[0] = y_prev, m_prev
            k = 1
        else:
            y_prev, m_prev = float(y[k0 - 1]), float(m[k0 - 1])
            k = k0
        jump_points = sorted(j for j in self._jumps if j >= k)
        for stop in [*jump_points, self.n + 1]:
            if stop > k:  # points k..stop-1 are plain OU steps
                seg = _ar1(self._a, innov[k - 1 : stop - 1], y_prev)
                y[k:stop] = seg
                m[k:stop] = m_prev
                y_prev = float(seg[-1])
                k = stop
            if stop <= self.n:  # point `stop` has jumps: one OU step, then the jumps
                y_prev = self._a * y_prev + float(innov[stop - 1])
                y_prev, m_prev = self._apply_jumps(stop, y_prev, m_prev)
                y[stop], m[stop] = y_prev, m_prev
                k = stop + 1
        self._values = (y + m).tolist()

    def _apply_jumps(self, k: int, y: float, m: float) -> tuple[float, float]:
        for pct, permanence in self._jumps.get(k, ()):
            size = (m + y) * pct / 100.0
            m += permanence * size
            y += (1.0 - permanence) * size
        return y, m

    def _index_at_or_after(self, t_ns: int) -> int:
        return min(self.n, max(0, -(-(int(t_ns) - self.start_ns) // self.step_ns)))

    # -- reading ------------------------------------------------------------------------------
    def value_at(self, t_ns: int) -> float:
        """Fundamental value (ticks) at ``t_ns``: the last grid point at or before it."""
        k = (t_ns - self.start_ns) // self.step_ns
        values = self._values
        if k < 0:
            return values[0]
        return values[k] if k <= self.n else values[-1]

    @property
    def times_ns(self) -> np.ndarray:
        return self.start_ns + self.step_ns * np.arange(self.n + 1, dtype=np.int64)

    @property
    def path(self) -> np.ndarray:
        """Values at ``times_ns`` (ticks)."""
        return self._y + self._m

    @property
    def level(self) -> np.ndarray:
        """The level the value reverts to at ``times_ns`` (moves with permanent jumps)."""
        return self._m.copy()

    @property
    def jump_times_ns(self) -> list[int]:
        """Grid times that carry at least one jump (random or added)."""
        return [self.start_ns + k * self.step_ns for k in sorted(self._jumps)]

    def stationary_sd(self) -> float:
        """Stationary standard deviation of the OU part (ticks), ignoring jumps and scaling."""
        p = self.p
        sigma = p.sigma_pct_day / 100.0 * self.reference_price / math.sqrt(TRADING_DAY_S)
        kappa = p.kappa_per_s
        return sigma / math.sqrt(2.0 * kappa) if kappa > 0 else math.inf

    # -- scenario shocks ----------------------------------------------------------------------
    def add_jump(self, t_ns: int, pct: float, permanence: float | None = None) -> None:
        """Add a jump of ``pct`` percent of the value at the first grid point at or after ``t_ns``.

        ``permanence`` (default: the params' ``jump_permanence``) is the share that also moves
        the reversion level. With permanence 1 and unchanged volatility the path from ``t_ns``
        on is shifted by exactly the jump size.
        """
        perm = self.p.jump_permanence if permanence is None else float(permanence)
        if not 0.0 <= perm <= 1.0:
            raise ValueError("permanence must be within [0, 1]")
        if pct <= -100.0:
            raise ValueError("a jump of -100% or less would make the value non-positive")
        k = self._index_at_or_after(t_ns)
        self._jumps.setdefault(k, []).append((float(pct), perm))
        self._integrate(k)

    def scale_volatility(self, t_from_ns: int, t_to_ns: int, factor: float) -> None:
        """Multiply the volatility of the steps in ``[t_from_ns, t_to_ns)`` by ``factor``."""
        if factor < 0:
            raise ValueError("volatility factor must be >= 0")
        if t_to_ns <= t_from_ns:
            return
        k_from = self._index_at_or_after(t_from_ns)
        k_to = self._index_at_or_after(t_to_ns)
        if k_to <= k_from:
            return
        self._vol_scale[k_from:k_to] *= factor  # step k drives point k + 1
        self._integrate(k_from + 1)


# ---------------------------------------------------------------------------------------------
# Activity
# ---------------------------------------------------------------------------------------------


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class ActivityParams:
    """Shared activity multiplier: exp(OU in log space) x U-shaped profile, mean 1.

    ``log_sd`` is the stationary standard deviation of the log intensity (0 = no random
    component), ``half_life_min`` its mean-reversion half-life. ``u_shape`` in [0, 1) is the
    amplitude of the intraday profile ``1 + u * (12 (s - 1/2)^2 - 1)`` (s = fraction of the
    session): 1 + 2u at the open and close, 1 - u at midday, mean 1.
    """

    log_sd: NonNegative = 0.6
    half_life_min: Positive = 15.0
    u_shape: Annotated[float, Field(ge=0, lt=1)] = 0.5
    grid_s: Positive = 1.0


class Activity:
    """Precomputed intensity (mean 1 over the session) and its cumulative integral.

    Business time ``B(t)`` (seconds) is the integral of the intensity from the start; outside
    the session the intensity is taken as 1. ``next_arrival(t, gap)`` solves
    ``B(t') = B(t) + gap`` by bisection on the cumulative array.
    """

    def __init__(
        self,
        params: ActivityParams,
        start_ns: int,
        end_ns: int,
        rng: np.random.Generator,
    ) -> None:
        self.p = params
        self.start_ns = int(start_ns)
        self.end_ns = int(end_ns)
        self.step_ns, n = _grid(self.start_ns, self.end_ns, params.grid_s)
        self.n = n
        dt = self.step_ns / SECOND
        a = math.exp(-math.log(2.0) / (params.half_life_min * 60.0) * dt)
        log_i = _stationary_ar1(a, params.log_sd, rng.standard_normal(n))
        # cells k = 0..n-1 cover [t_k, t_{k+1}); the last one may be shorter than a step
        lengths = np.full(n, dt)
        lengths[-1] = (self.end_ns - self.start_ns - (n - 1) * self.step_ns) / SECOND
        mids = (np.arange(n) * dt + lengths / 2.0) / ((self.end_ns - self.start_ns) / SECOND)
        profile = 1.0 + params.u_shape * (12.0 * (mids - 0.5) ** 2 - 1.0)
        intensity = detmath.exp(log_i - log_i.max()) * profile  # np.exp differs between CPUs
        # an exactly rounded sum, not np.dot: BLAS splits a long dot product over its threads, so the
        # result (and every arrival time after it) depended on the thread count of the process
        intensity /= math.fsum((intensity * lengths).tolist()) / math.fsum(lengths.tolist())
        self._intensity = intensity
        cum = np.empty(n + 1)
        cum[0] = 0.0
        np.cumsum(intensity * lengths, out=cum[1:])
        self._cum = cum
        self._lam: list[float] = intensity.tolist()
        self._cum_list: list[float] = cum.tolist()
        self._t0: list[float] = (self.start_ns + self.step_ns * np.arange(n + 1)).astype(float).tolist()
        self._t0[-1] = float(self.end_ns)

    @classmethod
    def from_streams(
        cls,
        streams: RandomStreams,
        params: ActivityParams,
        start_ns: int,
        end_ns: int,
        *,
        name: str = "world/activity",
    ) -> Activity:
        return cls(params, start_ns, end_ns, streams.numpy(name))

    # -- reading ------------------------------------------------------------------------------
    @property
    def intensity(self) -> np.ndarray:
        """Intensity of each grid cell ``[start + k step, start + (k+1) step)``."""
        return self._intensity.copy()

    @property
    def cumulative(self) -> np.ndarray:
        """Business seconds elapsed at each grid point (``n + 1`` values, the last at the end)."""
        return self._cum.copy()

    @property
    def session_business_s(self) -> float:
        return self._cum_list[-1]

    def intensity_at(self, t_ns: int) -> float:
        if t_ns < self.start_ns or t_ns >= self.end_ns:
            return 1.0
        return self._lam[(t_ns - self.start_ns) // self.step_ns]

    def intensity_array(self, t_ns: np.ndarray) -> np.ndarray:
        t = np.asarray(t_ns, dtype=np.int64)
        k = np.clip((t - self.start_ns) // self.step_ns, 0, self.n - 1)
        out = self._intensity[k]
        return np.where((t < self.start_ns) | (t >= self.end_ns), 1.0, out)

    def business_time(self, t_ns: int) -> float:
        """Business seconds from the session start to ``t_ns`` (negative before the start)."""
        if t_ns <= self.start_ns:
            return (t_ns - self.start_ns) / SECOND
        if t_ns >= self.end_ns:
            return self._cum_list[-1] + (t_ns - self.end_ns) / SECOND
        k = (t_ns - self.start_ns) // self.step_ns
        return self._cum_list[k] + self._lam[k] * ((t_ns - self.start_ns - k * self.step_ns) / SECOND)

    def calendar_time(self, business_s: float) -> int:
        """Inverse of ``business_time``: the first ns at which ``business_s`` is reached."""
        cum = self._cum_list
        if business_s <= 0.0:
            return self.start_ns + math.ceil(business_s * SECOND)
        if business_s >= cum[-1]:
            return self.end_ns + math.ceil((business_s - cum[-1]) * SECOND)
        k = bisect_right(cum, business_s) - 1
        lam = self._lam[k]
        t = self._t0[k] + (business_s - cum[k]) / lam * SECOND if lam > 0 else self._t0[k + 1]
        return min(math.ceil(t), int(self._t0[k + 1]))

    def next_arrival(self, t_ns: int, business_gap: float) -> int:
        """Calendar time reached from ``t_ns`` after ``business_gap`` seconds of business time."""
        return max(int(t_ns), self.calendar_time(self.business_time(t_ns) + business_gap))
