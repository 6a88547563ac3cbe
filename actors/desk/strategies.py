"""Trading signals of the strategy desk: pure, incremental, O(1) per update, plain floats.

Every signal has the same small surface, so the desk does not care which one it runs:

- ``update_price(t_ns, price)``: a new reference price (the desk feeds the mid, or the last
  trade while one side of the book is empty). Prices are in ticks (floats allowed).
- ``update_quote(t_ns, bid, bid_qty, ask, ask_qty)``: a new top of book.
- ``ready``: enough data seen to trade on.
- ``signal``: a number in [-1, 1] (+1 = strongest buy).
- ``expected_edge(horizon_s)``: expected *fractional* return (0.001 = 10 bps) of holding one
  share long over the next ``horizon_s`` seconds.

:func:`fractional_kelly_size` turns an edge and a variance of returns over the same horizon
into a fraction of capital; :class:`ReturnVariance` estimates that variance.

Sampling. The mean-reversion fit and the volatility estimate need equally spaced prices:
:class:`GridSampler` turns the irregular update stream into the step-function value on a grid of
``sample_s`` seconds (the price at grid time ``k * dt`` is the last price seen *before* it).
Each grid point costs O(1), so the amortised cost per update is O(1) + O(grid points elapsed).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Annotated

from pydantic import ConfigDict, Field, with_config

from sim.clock import SECOND

LN2 = math.log(2.0)

Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
PositiveInt = Annotated[int, Field(gt=0)]


def clip(x: float, lo: float = -1.0, hi: float = 1.0) -> float:
    return lo if x < lo else hi if x > hi else x


# ---------------------------------------------------------------------------------------------
# Sizing
# ---------------------------------------------------------------------------------------------


def fractional_kelly_size(edge: float, variance: float, fraction: float, cap: float) -> float:
    """Fraction of capital to hold: ``f = edge / variance * fraction``, clipped to ``[-cap, cap]``.

    ``edge`` is the expected return and ``variance`` the variance of that return over the same
    horizon (both dimensionless; the Kelly optimum for small returns is ``edge / variance``).
    ``fraction`` scales it down (0.25 = "quarter Kelly"); ``cap`` is the largest fraction of
    capital (leverage) allowed. No variance estimate (``variance <= 0``) means no bet: 0.0.
    The desk turns the fraction into shares (``f * capital / price``) and then applies its
    share limits (max position, max order quantity, max order notional).
    """
    if variance <= 0.0 or not math.isfinite(variance) or not math.isfinite(edge) or cap <= 0.0:
        return 0.0
    return clip(edge / variance * fraction, -cap, cap)


# ---------------------------------------------------------------------------------------------
# Sampling and volatility
# ---------------------------------------------------------------------------------------------


class GridSampler:
    """Step-function sampler: ``feed(t_ns, x)`` returns the grid values completed by time ``t_ns``.

    Grid points are ``t0 + k·dt`` (k >= 1, ``t0`` = first feed time); the value at grid time
    ``g`` is the last value fed strictly before ``g``. ``feed`` returns how many grid points it
    completed and their value (they all carry the previous value). ``n`` is capped at
    ``max_fill`` so a long silence never costs a caller that loops on it more than ``max_fill``
    iterations (a silence of more than ``max_fill`` points counts as ``max_fill`` points).
    """

    __slots__ = ("dt_ns", "last", "max_fill", "next_ns")

    def __init__(self, sample_s: float, max_fill: int = 100_000) -> None:
        self.dt_ns = max(1, round(sample_s * SECOND))
        self.next_ns: int | None = None
        self.last: float | None = None
        self.max_fill = max_fill

    def feed(self, t_ns: int, x: float) -> tuple[int, float | None]:
        """Record ``x`` at ``t_ns``; return ``(n, value)``: ``n`` grid points of ``value`` closed."""
        nxt = self.next_ns
        if nxt is None:
            self.next_ns = t_ns + self.dt_ns
            self.last = x
            return 0, None
        n = 0
        prev = self.last
        if t_ns >= nxt:
            n = (t_ns - nxt) // self.dt_ns + 1
            self.next_ns = nxt + n * self.dt_ns
        self.last = x
        return (min(n, self.max_fill), prev)


class ReturnVariance:
    """EWMA variance of log returns between grid samples (zero-mean, RiskMetrics style).

    The first samples are averaged with weight ``max(alpha, 1/n)`` so the estimate is the plain
    mean of squared returns until the EWMA's own weight takes over (no bias toward 0 at start).

    ``variance(horizon_s)`` scales the per-sample variance to the horizon under a random walk:
    ``var_H = var_dt * horizon_s / sample_s``.
    """

    __slots__ = ("_alpha", "_last", "_sampler", "n", "sample_s", "var")

    def __init__(self, sample_s: float = 5.0, halflife_samples: float = 60.0) -> None:
        self.sample_s = sample_s
        self._sampler = GridSampler(sample_s)
        self._alpha = 1.0 - 0.5 ** (1.0 / halflife_samples)
        self._last: float | None = None
        self.var = 0.0
        self.n = 0

    def update_price(self, t_ns: int, price: float) -> None:
        n, value = self._sampler.feed(t_ns, price)
        if n and value is not None and value > 0:
            self._sample(value)  # one return (the first point), then n - 1 zero returns
            if n > 1:
                self.var *= (1.0 - self._alpha) ** (n - 1)
                self.n += n - 1

    def _sample(self, x: float) -> None:
        last = self._last
        self._last = x
        if last is None:
            return
        r = math.log(x / last)
        self.n += 1
        a = max(self._alpha, 1.0 / self.n)  # warm start: the plain mean until the EWMA takes over
        self.var += a * (r * r - self.var)

    @property
    def ready(self) -> bool:
        return self.n >= 10 and self.var > 0.0

    def variance(self, horizon_s: float) -> float:
        return self.var * horizon_s / self.sample_s


# ---------------------------------------------------------------------------------------------
# Mean reversion (Ornstein–Uhlenbeck)
# ---------------------------------------------------------------------------------------------


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class MeanReversionParams:
    """Mean reversion on a z-score of price against an EWMA mean.

    Every ``sample_s`` seconds the price is sampled; the last ``window`` samples feed an OLS
    regression ``Δp_k = a + b·p_{k-1} + ε`` (running sums, O(1) per sample). Every
    ``refit_every`` samples the fit is refreshed: an Ornstein–Uhlenbeck process sampled every
    ``dt`` has ``b = exp(-θ·dt) - 1``, so ``θ = -ln(1 + b) / dt`` and the half-life is
    ``ln 2 / θ`` seconds, clamped to ``[min_half_life_s, max_half_life_s]``. The EWMA mean and the
    EWMA variance of the deviation use that half-life. ``b >= 0`` (no reversion found) turns the
    signal off until a later fit finds reversion.
    """

    sample_s: Positive = 5.0  # seconds between samples
    window: Annotated[int, Field(ge=10)] = 240  # samples in the regression window
    refit_every: PositiveInt = 12  # samples between two fits
    min_samples: Annotated[int, Field(ge=3)] = 30  # samples needed before the first fit
    half_life_s: Positive = 300.0  # prior half-life, used until the first fit
    min_half_life_s: Positive = 10.0
    max_half_life_s: Positive = 3600.0
    z_cap: Positive = 2.0  # |z| at which the signal saturates at -/+1

    def __post_init__(self) -> None:
        if self.min_half_life_s > self.max_half_life_s:
            raise ValueError("min_half_life_s must be <= max_half_life_s")


class MeanReversionSignal:
    """See :class:`MeanReversionParams`. ``signal = clip(-z / z_cap)``; the expected edge over a
    horizon H is the OU expected move back to the mean: ``(m - p) / p · (1 - exp(-θH))``."""

    def __init__(self, params: MeanReversionParams | None = None) -> None:
        p = params or MeanReversionParams()
        self.p = p
        self.dt = p.sample_s
        self._sampler = GridSampler(p.sample_s, max_fill=p.window)
        self._buf: deque[float] = deque()  # the last window + 1 samples
        self._ref: float | None = None  # centring constant of the regression sums
        # running sums over the (x = p_{k-1} - ref, y = p_k - p_{k-1}) pairs in the window
        self._sx = self._sy = self._sxx = self._sxy = 0.0
        self._since_fit = 0
        self.samples = 0
        self.fitted = False
        self.reverting = True
        self.b = 0.0
        self.ou_mean: float | None = None  # μ of the last fit (ticks)
        self.half_life_s = p.half_life_s
        self.theta = LN2 / p.half_life_s
        self._alpha = 0.0
        self._set_alpha()
        self.mean: float | None = None  # EWMA mean (ticks)
        self.var = 0.0  # EWMA variance of the deviation
        self.price: float | None = None  # the latest price fed

    def _set_alpha(self) -> None:
        self._alpha = 1.0 - 0.5 ** (self.dt / self.half_life_s)

    # -- updates ----------------------------------------------------------------------------------
    def update_quote(self, t_ns: int, bid: float | None, bid_qty: int, ask: float | None, ask_qty: int) -> None:
        pass

    def update_price(self, t_ns: int, price: float) -> None:
        self.price = price
        n, value = self._sampler.feed(t_ns, price)
        if value is not None:
            for _ in range(n):
                self._sample(value)

    def _sample(self, x: float) -> None:
        self.samples += 1
        # EWMA mean and variance of the deviation (standard exponentially weighted update)
        mean = self.mean
        if mean is None:
            self.mean = x
        else:
            a = self._alpha
            d = x - mean
            self.mean = mean + a * d
            self.var = (1.0 - a) * (self.var + a * d * d)
        # rolling regression sums
        buf = self._buf
        if self._ref is None:
            self._ref = x
        if buf:
            self._add_pair(buf[-1], x, 1.0)
        buf.append(x)
        if len(buf) > self.p.window + 1:
            old = buf.popleft()
            self._add_pair(old, buf[0], -1.0)
        self._since_fit += 1
        if len(buf) - 1 >= self.p.min_samples and (not self.fitted or self._since_fit >= self.p.refit_every):
            self.fit()

    def _add_pair(self, prev: float, cur: float, sign: float) -> None:
        # With prices on a tick or half-tick grid every term is a small multiple of 1/4, so the
        # running sums are exact in binary floating point: removing a pair leaves no drift.
        x = prev - self._ref  # type: ignore[operator]
        y = cur - prev
        self._sx += sign * x
        self._sy += sign * y
        self._sxx += sign * x * x
        self._sxy += sign * x * y

    def fit(self) -> None:
        """Refit the OU parameters from the regression sums (O(1))."""
        self._since_fit = 0
        n = len(self._buf) - 1
        if n < 3:
            return
        sxx = n * self._sxx - self._sx * self._sx
        if sxx <= 0.0:
            return  # flat prices: keep the previous fit
        self.fitted = True
        b = (n * self._sxy - self._sx * self._sy) / sxx
        self.b = b
        p = self.p
        if -1.0 < b < 0.0:
            self.reverting = True
            theta = -math.log1p(b) / self.dt
            a = (self._sy - b * self._sx) / n
            self.ou_mean = self._ref - a / b  # type: ignore[operator]
            half = LN2 / theta
        elif b <= -1.0:  # overshooting: faster than the grid can see
            self.reverting = True
            half = p.min_half_life_s
        else:
            self.reverting = False
            half = p.max_half_life_s
        self.half_life_s = min(p.max_half_life_s, max(p.min_half_life_s, half))
        self.theta = LN2 / self.half_life_s
        self._set_alpha()

    # -- outputs ----------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.fitted and self.var > 0.0 and self.price is not None

    @property
    def z(self) -> float:
        if self.mean is None or self.price is None or self.var <= 0.0:
            return 0.0
        return (self.price - self.mean) / math.sqrt(self.var)

    @property
    def signal(self) -> float:
        if not self.ready or not self.reverting:
            return 0.0
        return clip(-self.z / self.p.z_cap)

    def expected_edge(self, horizon_s: float) -> float:
        if not self.ready or not self.reverting or self.mean is None or not self.price:
            return 0.0
        return (self.mean - self.price) / self.price * (1.0 - math.exp(-self.theta * horizon_s))


def ou_half_life(prices: list[float] | tuple[float, ...], dt: float = 1.0) -> float:
    """Half-life (in units of ``dt``) of an equally spaced series by the OLS fit of
    :class:`MeanReversionSignal` on all of it; ``inf`` when no mean reversion is found."""
    n = len(prices) - 1
    if n < 3:
        return math.inf
    ref = prices[0]
    sx = sy = sxx = sxy = 0.0
    for k in range(1, n + 1):
        x = prices[k - 1] - ref
        y = prices[k] - prices[k - 1]
        sx += x
        sy += y
        sxx += x * x
        sxy += x * y
    den = n * sxx - sx * sx
    if den <= 0:
        return math.inf
    b = (n * sxy - sx * sy) / den
    if not -1.0 < b < 0.0:
        return math.inf if b >= 0 else 0.0
    return LN2 / (-math.log1p(b) / dt)


# ---------------------------------------------------------------------------------------------
# Momentum
# ---------------------------------------------------------------------------------------------


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class MomentumSignalParams:
    """Fast/slow EWMA crossover of the price (continuous-time EWMAs of the step function).

    ``trend = (fast - slow) / slow``; ``signal = clip(trend / full_signal_bps · 1e4)``; the
    expected edge over any horizon is ``signal · edge_bps / 1e4`` (a calibration constant: the
    return a full-strength trend is believed to continue by over the desk's horizon).
    """

    fast_s: Positive = 60.0  # time constant of the fast EWMA, seconds
    slow_s: Positive = 600.0  # time constant of the slow EWMA, seconds
    full_signal_bps: Positive = 20.0  # trend (bps) at which the signal saturates
    edge_bps: NonNegative = 5.0  # expected return (bps) at signal = ±1
    warmup_s: NonNegative = 600.0  # not ready until this long after the first price

    def __post_init__(self) -> None:
        if self.fast_s >= self.slow_s:
            raise ValueError("fast_s must be shorter than slow_s")


class MomentumSignal:
    """See :class:`MomentumSignalParams`. Two ``math.exp`` per update."""

    def __init__(self, params: MomentumSignalParams | None = None) -> None:
        p = params or MomentumSignalParams()
        self.p = p
        self.fast = self.slow = 0.0
        self.price: float | None = None
        self._t = 0
        self._t0: int | None = None
        self._inv_fast = 1.0 / (p.fast_s * SECOND)
        self._inv_slow = 1.0 / (p.slow_s * SECOND)

    def update_quote(self, t_ns: int, bid: float | None, bid_qty: int, ask: float | None, ask_qty: int) -> None:
        pass

    def update_price(self, t_ns: int, price: float) -> None:
        last = self.price
        if last is None:
            self.fast = self.slow = float(price)
            self._t0 = t_ns
        elif t_ns > self._t:
            dt = self._t - t_ns  # negative: exp(dt / tau) is the weight kept
            self.fast += (1.0 - math.exp(dt * self._inv_fast)) * (last - self.fast)
            self.slow += (1.0 - math.exp(dt * self._inv_slow)) * (last - self.slow)
        self.price = price
        self._t = t_ns

    @property
    def ready(self) -> bool:
        return self._t0 is not None and self._t - self._t0 >= self.p.warmup_s * SECOND

    @property
    def trend(self) -> float:
        return (self.fast - self.slow) / self.slow if self.slow > 0 else 0.0

    @property
    def signal(self) -> float:
        if not self.ready:
            return 0.0
        return clip(self.trend * 1e4 / self.p.full_signal_bps)

    def expected_edge(self, horizon_s: float) -> float:
        return self.signal * self.p.edge_bps / 1e4


# ---------------------------------------------------------------------------------------------
# Order-book imbalance
# ---------------------------------------------------------------------------------------------


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class ImbalanceParams:
    """Top-of-book imbalance ``(bid_qty - ask_qty) / (bid_qty + ask_qty)`` in [-1, 1].

    ``smoothing_s`` > 0 averages it over time (continuous-time EWMA of the step function);
    0 uses the latest quote. Expected edge: ``signal · edge_bps / 1e4``.
    """

    smoothing_s: NonNegative = 0.0
    edge_bps: NonNegative = 2.0  # expected return (bps) at signal = ±1


def book_imbalance(bid_qty: float, ask_qty: float) -> float:
    total = bid_qty + ask_qty
    return (bid_qty - ask_qty) / total if total > 0 else 0.0


class ImbalanceSignal:
    """See :class:`ImbalanceParams`."""

    def __init__(self, params: ImbalanceParams | None = None) -> None:
        p = params or ImbalanceParams()
        self.p = p
        self.raw = 0.0
        self.smoothed = 0.0
        self._seen = False
        self._t = 0
        self._inv_tau = 1.0 / (p.smoothing_s * SECOND) if p.smoothing_s > 0 else 0.0

    def update_price(self, t_ns: int, price: float) -> None:
        pass

    def update_quote(self, t_ns: int, bid: float | None, bid_qty: int, ask: float | None, ask_qty: int) -> None:
        value = book_imbalance(bid_qty if bid is not None else 0, ask_qty if ask is not None else 0)
        if not self._seen:
            self.smoothed = value
            self._seen = True
        elif self._inv_tau and t_ns > self._t:
            self.smoothed += (1.0 - math.exp((self._t - t_ns) * self._inv_tau)) * (self.raw - self.smoothed)
        self.raw = value
        self._t = t_ns
        if not self._inv_tau:
            self.smoothed = value

    @property
    def ready(self) -> bool:
        return self._seen

    @property
    def signal(self) -> float:
        return self.smoothed if self._seen else 0.0

    def expected_edge(self, horizon_s: float) -> float:
        return self.signal * self.p.edge_bps / 1e4


Signal = MeanReversionSignal | MomentumSignal | ImbalanceSignal
