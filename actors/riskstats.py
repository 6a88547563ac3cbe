"""Risk statistics, one definition for the whole project: historical VaR / ES and their intervals.

Pure numpy functions (scipy only for the binomial quantiles of :func:`var_interval`), used by the
risk officer (intraday, :mod:`actors.risk`) and by Monte Carlo (:mod:`desksim.montecarlo`).

Conventions (losses are positive = money lost; ``level`` is the confidence, e.g. 0.99):

* **Tail size** ``m = N (1 - level)``, computed exactly (``level`` is read as the decimal it
  was written as, so 200 x 0.01 is 2, not 2.0000000000000004).
* **VaR** is an order statistic: the ``k``-th largest loss, ``k = max(1, ceil(m))`` -- the
  empirical ``level``-quantile of the losses (lower inverse of the empirical cdf).
* **ES** per Acerbi & Tasche (2002): the mean of the ``m`` worst losses, the ``floor(m)``
  largest at full weight and the next one weighted by the fractional part ``m - floor(m)``::

      ES = ( sum_{i <= floor(m)} L_(i) + (m - floor(m)) L_(floor(m)+1) ) / m,   L_(1) >= L_(2) >= ...

  It depends only on the sorted values (coherent with ties: a loss repeated at the VaR counts
  only as much as the tail needs), and ``ES >= VaR`` always.
* **VaR interval** (distribution free, any continuous loss law): the number of losses at or
  below the true quantile ``q`` is Binomial(N, level), so ``[L^(l), L^(u)]`` (ascending order
  statistics) covers ``q`` with probability ``F(u-1) - F(l-1)``, F the binomial cdf. ``(l, u)``
  is the pair with the smallest exact coverage >= c (neither tail missing more than 3/4 of
  1 - c), so the interval is not needlessly conservative (N = 1,000, 99%: ranks 983..996,
  coverage 95.75%; the plain equal-tailed pair covers 97.6%). The exact coverage is reported with
  the interval. An end beyond the sample is ``None`` (e.g. the upper end of a 99% VaR from 100
  outcomes: the sample cannot bound it).
* **ES interval**: studentized bootstrap (bootstrap-t, Hall 1992), seeded, with the standard
  error from ES's influence function, ``se = sd((L - VaR)^+) / ((1 - level) sqrt(N))``. A plain
  percentile bootstrap covers a 1% tail in ~85-88% of samples at N = 1,000; the studentized one
  in ~92-95% (normal and Student-t(4) losses, N = 500...3,000; tests/test_riskstats.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np

__all__ = [
    "Interval",
    "es_interval",
    "expected_shortfall",
    "historical_var",
    "normal_var_es",
    "tail_size",
    "var_es",
    "var_interval",
    "var_rank",
]

#: what the figures are, for summaries and reports
CONVENTION = (
    "historical VaR = the ceil(N(1-a))-th largest loss; ES (Acerbi-Tasche) = mean of the N(1-a) worst losses, "
    "the last one weighted by the fractional part"
)


@dataclass(frozen=True, slots=True)
class Interval:
    """A confidence interval; an end is None when the sample cannot bound it."""

    lo: float | None
    hi: float | None
    confidence: float
    method: str
    coverage: float | None = None  # exact coverage when the method gives one


def _level(level: float) -> Fraction:
    lv = Fraction(str(level))
    if not 0 < lv < 1:
        raise ValueError("level must be in (0, 1)")
    return lv


def tail_size(n: int, level: float) -> Fraction:
    """``m = n (1 - level)``, exact."""
    return n * (1 - _level(level))


def var_rank(n: int, level: float) -> int:
    """Rank (1 = largest) of the loss that is the VaR: ``max(1, ceil(n (1 - level)))``, at most n."""
    return min(max(1, math.ceil(tail_size(n, level))), max(n, 1))


def _losses(losses: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(losses, dtype=np.float64).ravel()
    return arr[np.isfinite(arr)]


def _desc_top(arr: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest values along the last axis, largest first."""
    n = arr.shape[-1]
    k = min(k, n)
    top = np.partition(arr, n - k, axis=-1)[..., n - k :]
    return -np.sort(-top, axis=-1)


def _var_es_sorted(top: np.ndarray, n: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    """VaR and ES from the largest losses (descending, last axis) of samples of size ``n``."""
    m = tail_size(n, level)
    whole = math.floor(m)
    frac = float(m - whole)
    k = var_rank(n, level)
    var = top[..., k - 1]
    total = top[..., :whole].sum(axis=-1)
    if frac > 0.0:
        total = total + frac * top[..., whole]
    return var, total / float(m)


def var_es(losses: Sequence[float] | np.ndarray, level: float) -> tuple[float, float]:
    """Historical VaR and Acerbi-Tasche ES at ``level``; non-finite losses are dropped; (nan, nan)
    when none remain."""
    _level(level)
    arr = _losses(losses)
    if arr.size == 0:
        return math.nan, math.nan
    n = arr.size
    top = _desc_top(arr, math.floor(tail_size(n, level)) + 1)
    var, es = _var_es_sorted(top, n, level)
    return float(var), float(es)


def historical_var(losses: Sequence[float] | np.ndarray, level: float) -> float:
    return var_es(losses, level)[0]


def expected_shortfall(losses: Sequence[float] | np.ndarray, level: float) -> float:
    return var_es(losses, level)[1]


def normal_var_es(losses: Sequence[float] | np.ndarray, level: float) -> tuple[float, float]:
    """Parametric normal VaR / ES with the sample mean and standard deviation (ddof 1):
    ``VaR = mu + z s``, ``ES = mu + s phi(z) / (1 - level)``, ``z = Phi^-1(level)``; nan below 2."""
    lv = float(_level(level))
    arr = _losses(losses)
    if arr.size < 2:
        return math.nan, math.nan
    from statistics import NormalDist

    mu, sd = float(arr.mean()), float(arr.std(ddof=1))
    nd = NormalDist()
    z = nd.inv_cdf(lv)
    return mu + z * sd, mu + sd * nd.pdf(z) / (1.0 - lv)


@lru_cache(maxsize=256)
def _binomial_ranks(n: int, level: float, confidence: float) -> tuple[int, int, float]:
    """Ascending ranks ``(l, u)`` (1-based; 0 or n + 1 = beyond the sample) of the shortest
    interval whose exact coverage ``F(u-1) - F(l-1)`` is at least ``confidence``, neither tail
    missing more than 3/4 of ``1 - confidence`` (F: Binomial(n, level) cdf)."""
    from scipy.stats import binom

    miss = 1.0 - confidence
    l0 = int(binom.ppf(miss / 2.0, n, level))
    best: tuple[float, float, int, int] | None = None
    for lo in range(max(0, l0 - 12), min(n, l0 + 3) + 1):
        below = float(binom.cdf(lo - 1, n, level)) if lo >= 1 else 0.0
        if below + confidence >= 1.0:
            break
        hi = int(binom.ppf(below + confidence, n, level)) + 1
        above = 1.0 - float(binom.cdf(hi - 1, n, level))
        cover = 1.0 - below - above
        if cover < confidence - 1e-12 or max(below, above) > 0.75 * miss:
            continue
        key = (cover, max(below, above), lo, hi)
        if best is None or key < best:
            best = key
    if best is None:  # the plain equal-tailed pair (conservative)
        lo, hi = l0, int(binom.ppf(1.0 - miss / 2.0, n, level)) + 1
        below = float(binom.cdf(lo - 1, n, level)) if lo >= 1 else 0.0
        return lo, hi, float(binom.cdf(hi - 1, n, level)) - below
    return best[2], best[3], best[0]


def var_interval(losses: Sequence[float] | np.ndarray, level: float, confidence: float = 0.95) -> Interval:
    """Distribution-free order-statistic interval for the true VaR (the ``level``-quantile of the
    loss law); see the module docstring. Ends outside the sample are None."""
    lv = float(_level(level))
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    arr = np.sort(_losses(losses))
    n = arr.size
    method = "order statistics (binomial)"
    if n == 0:
        return Interval(None, None, confidence, method)
    lo_rank, hi_rank, coverage = _binomial_ranks(n, lv, confidence)
    lo = float(arr[lo_rank - 1]) if 1 <= lo_rank <= n else None
    hi = float(arr[hi_rank - 1]) if 1 <= hi_rank <= n else None
    return Interval(lo, hi, confidence, method, coverage)


def _es_se(top: np.ndarray, full: np.ndarray, n: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    """ES and its influence-function standard error for samples ``full`` (last axis, size n)."""
    var, es = _var_es_sorted(top, n, level)
    excess = np.maximum(full - var[..., None], 0.0)
    sd = excess.std(axis=-1, ddof=1) if n > 1 else np.zeros_like(var)
    return es, sd / (float(1 - _level(level)) * math.sqrt(n))


def es_interval(
    losses: Sequence[float] | np.ndarray,
    level: float,
    confidence: float = 0.95,
    *,
    rng: np.random.Generator | None = None,
    samples: int = 1000,
) -> Interval:
    """Studentized-bootstrap interval for the ES (see the module docstring); seeded by ``rng``."""
    _level(level)
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    arr = _losses(losses)
    n = arr.size
    method = f"studentized bootstrap ({samples} resamples)"
    if n < 2 or samples < 1:
        return Interval(None, None, confidence, method)
    rng = rng if rng is not None else np.random.default_rng(0)
    keep = math.floor(tail_size(n, level)) + 1
    es, se = _es_se(_desc_top(arr[None, :], keep), arr[None, :], n, level)
    es0, se0 = float(es[0]), float(se[0])
    if se0 <= 0.0:
        return Interval(es0, es0, confidence, method)
    stats = []
    chunk = max(1, min(samples, 4_000_000 // n))
    for start in range(0, samples, chunk):
        res = arr[rng.integers(0, n, size=(min(chunk, samples - start), n))]
        b_es, b_se = _es_se(_desc_top(res, keep), res, n, level)
        ok = b_se > 0.0
        stats.append((b_es[ok] - es0) / b_se[ok])
    t = np.concatenate(stats)
    if t.size == 0:
        return Interval(es0, es0, confidence, method)
    a = (1.0 - confidence) / 2.0
    t_lo, t_hi = np.quantile(t, [a, 1.0 - a])
    return Interval(float(es0 - t_hi * se0), float(es0 - t_lo * se0), confidence, method)
