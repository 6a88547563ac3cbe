"""actors.riskstats: one definition of historical VaR / ES and their confidence intervals, checked
against exact fractions, closed forms (normal, Student-t) and coverage simulations."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from actors.riskstats import es_interval, normal_var_es, tail_size, var_es, var_interval, var_rank

LEVELS = (0.5, 0.9, 0.95, 0.975, 0.99)


def brute_es(losses, level) -> Fraction:
    """ES = (1 / (1 - level)) x integral over u in (level, 1) of the empirical quantile function,
    with exact fractions: each sorted loss owns a slice 1/N of probability."""
    n = len(losses)
    lv = Fraction(str(level))
    total = Fraction(0)
    for i, x in enumerate(sorted(losses)):  # ascending; loss i covers u in (i/n, (i+1)/n]
        lo, hi = max(Fraction(i, n), lv), Fraction(i + 1, n)
        if hi > lo:
            total += (hi - lo) * Fraction(x)
    return total / (1 - lv)


def test_hand_examples_acerbi_tasche():
    losses = list(range(1, 101))
    assert var_es(losses, 0.95) == (96.0, 98.0)  # m = 5: mean(96..100)
    assert var_es(losses, 0.975) == (98.0, pytest.approx(99.2))  # m = 2.5: (100 + 99 + 0.5 x 98) / 2.5
    assert var_es(losses, 0.99) == (100.0, 100.0)
    assert var_es(list(range(1, 201)), 0.99) == (199.0, 199.5)  # 200 x 0.01 is exactly 2
    # ties: a loss repeated at the VaR counts only as much as the tail needs
    assert var_es([7, 5, 5, 1], 0.5) == (5.0, 6.0)
    assert var_es([10, 10, 10, 1, 0, 0, 0, 0, 0, 0], 0.9) == (10.0, 10.0)
    # fewer than 1 / (1 - level) outcomes: the worst one, ES too
    assert var_es([-3.0, -1.0, float("nan")], 0.99) == (-1.0, -1.0)
    assert all(math.isnan(x) for x in var_es([], 0.95))
    assert var_rank(1000, 0.99) == 10 and tail_size(1000, 0.975) == 25


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-50, 50), min_size=1, max_size=60),  # small integers: many ties
    st.sampled_from(LEVELS),
)
def test_es_is_the_tail_integral_of_the_quantile_function(losses, level):
    var, es = var_es(losses, level)
    assert es == pytest.approx(float(brute_es(losses, level)), abs=1e-9)
    k = var_rank(len(losses), level)
    assert var == sorted(losses, reverse=True)[k - 1]
    assert var <= es + 1e-9 <= max(losses) + 2e-9


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-100, 100), st.integers(-100, 100)), min_size=1, max_size=50),
    st.sampled_from(LEVELS),
    st.integers(-1000, 1000),
    st.integers(1, 9),
)
def test_es_is_coherent_on_a_sample(pairs, level, shift, scale):
    x = np.array([p[0] for p in pairs], dtype=float)
    y = np.array([p[1] for p in pairs], dtype=float)
    es = lambda v: var_es(v, level)[1]  # noqa: E731
    assert es(x + y) <= es(x) + es(y) + 1e-9  # subadditive
    assert es(x + shift) == pytest.approx(es(x) + shift)  # translation
    assert es(x * scale) == pytest.approx(es(x) * scale)  # positive homogeneity
    assert es(np.maximum(x, y)) >= max(es(x), es(y)) - 1e-9  # monotone
    assert es(x[::-1]) == pytest.approx(es(x))


def _t_es(level: float, nu: float) -> float:
    t = stats.t.ppf(level, nu)
    return stats.t.pdf(t, nu) * (nu + t * t) / (nu - 1) / (1 - level)


@pytest.mark.parametrize("dist", ["normal", "t4"])
def test_estimates_converge_to_closed_forms(dist):
    rng = np.random.default_rng(42)
    n, level = 400_000, 0.99
    if dist == "normal":
        x = rng.standard_normal(n)
        true_var, true_es = stats.norm.ppf(level), stats.norm.pdf(stats.norm.ppf(level)) / (1 - level)
    else:
        x = rng.standard_t(4, n)
        true_var, true_es = stats.t.ppf(level, 4), _t_es(level, 4)
    var, es = var_es(x, level)
    assert var == pytest.approx(true_var, rel=0.02)
    assert es == pytest.approx(true_es, rel=0.03)
    assert var == np.sort(x)[n - var_rank(n, level)]  # the k-th largest
    pv, pe = normal_var_es(x, level)
    if dist == "normal":
        assert pv == pytest.approx(true_var, rel=0.01) and pe == pytest.approx(true_es, rel=0.01)


def test_normal_var_es_closed_form():
    x = np.array([1.0, 2.0, 4.0, 7.0, 11.0])
    mu, sd = x.mean(), x.std(ddof=1)
    var, es = normal_var_es(x, 0.975)
    assert var == pytest.approx(stats.norm.ppf(0.975, mu, sd))
    assert es == pytest.approx(mu + sd * stats.norm.pdf(stats.norm.ppf(0.975)) / 0.025)
    assert all(math.isnan(v) for v in normal_var_es([1.0], 0.99))


def test_var_interval_order_statistics_and_exact_coverage():
    x = np.arange(1.0, 1001.0)
    ci = var_interval(x, 0.99, 0.95)
    lo, hi = int(ci.lo), int(ci.hi)  # x_(j) = j: the ranks
    binom = stats.binom(1000, 0.99)
    assert ci.coverage == pytest.approx(binom.cdf(hi - 1) - binom.cdf(lo - 1))
    assert 0.95 <= ci.coverage <= 0.965
    assert max(binom.cdf(lo - 1), binom.sf(hi - 1)) <= 0.0375  # neither tail takes most of the 5%
    assert ci.lo <= var_es(x, 0.99)[0] <= ci.hi
    # 100 outcomes cannot bound a 99% VaR from above: say so rather than invent a number
    small = var_interval(np.arange(100.0), 0.99)
    assert small.lo is not None and small.hi is None


@pytest.mark.parametrize("dist", ["normal", "t3"])
def test_var_interval_covers_the_true_var99_at_its_nominal_rate(dist):
    """1,000 samples of 1,000 outcomes: the nominal 95% interval covers the true 99% quantile in
    93-97% of them (a plain percentile bootstrap would not)."""
    rng = np.random.default_rng(2024)
    sims, n = 1000, 1000
    if dist == "normal":
        x, truth = rng.standard_normal((sims, n)), stats.norm.ppf(0.99)
    else:
        x, truth = rng.standard_t(3, (sims, n)), stats.t.ppf(0.99, 3)
    hits = 0
    for row in x:
        ci = var_interval(row, 0.99, 0.95)
        hits += ci.lo <= truth <= ci.hi
    assert 0.93 <= hits / sims <= 0.97, hits / sims


def test_es_interval_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(5)
    x = rng.standard_t(4, 2000)
    a = es_interval(x, 0.99, rng=np.random.default_rng(1), samples=300)
    b = es_interval(x, 0.99, rng=np.random.default_rng(1), samples=300)
    assert a == b
    es = var_es(x, 0.99)[1]
    assert a.lo < es < a.hi
    assert es_interval([1.0], 0.99).lo is None


@pytest.mark.slow
@pytest.mark.parametrize("dist", ["normal", "t4"])
def test_es_interval_coverage(dist):
    """Studentized bootstrap: the nominal 95% interval covers the true ES99 in about 90-98% of
    200 samples of 1,000 (a percentile bootstrap covers ~85%)."""
    rng = np.random.default_rng(7)
    sims, n = 200, 1000
    if dist == "normal":
        x, truth = rng.standard_normal((sims, n)), stats.norm.pdf(stats.norm.ppf(0.99)) / 0.01
    else:
        x, truth = rng.standard_t(4, (sims, n)), _t_es(0.99, 4)
    hits = 0
    for row in x:
        ci = es_interval(row, 0.99, rng=rng, samples=300)
        hits += ci.lo <= truth <= ci.hi
    assert 0.90 <= hits / sims <= 0.98, hits / sims
