"""World processes (fundamental, activity) and background traders (noise, value, momentum)."""

import math
import random

import numpy as np
import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from actors.background import (
    MomentumParams,
    MomentumTrader,
    NoiseParams,
    NoiseTrader,
    ValueParams,
    ValueTrader,
    gap_sampler,
)
from actors.exchange.exchange import Exchange
from actors.messages import BookSnapshot, OrderFilled, OrderRejected, SubmitOrder, SubscribeMarketData, TradePrinted
from actors.trader import Trader
from actors.world import TRADING_DAY_S, Activity, ActivityParams, Fundamental, FundamentalParams
from sim.actor import Actor, Wakeup, handles
from sim.clock import HOUR, MINUTE, SECOND, US, parse_clock
from sim.kernel import Kernel
from sim.network import LinkSpec, Network, NetworkSpec
from sim.record import Recorder
from sim.rng import RandomStreams

OPEN = parse_clock("09:30")
CLOSE = parse_clock("16:00")
REF = 10_000


def rng(seed=0):
    return np.random.default_rng(seed)


def days(n):
    return OPEN + int(n * TRADING_DAY_S * SECOND)


# ---------------------------------------------------------------------------------------------
# Fundamental
# ---------------------------------------------------------------------------------------------


def test_ou_path_mean_reverts_to_stationary_law():
    p = FundamentalParams(sigma_pct_day=1.5, half_life_min=10, jump_rate_per_day=0)
    f = Fundamental(p, REF, OPEN, days(20), rng(1))
    x = f.path
    sd = f.stationary_sd()
    assert 15 < sd < 25  # 1.5% daily diffusion, 10 min half-life, $100 stock
    # standard error of the mean of an OU path is about sd * sqrt(2 / (kappa T)) ~ 0.06 sd
    assert abs(x.mean() - REF) < 0.3 * sd
    assert x.var() == pytest.approx(sd**2, rel=0.2)
    lag = 600  # one half-life at a 1 s grid: autocorrelation 0.5
    dev = x - x.mean()
    rho = float(np.dot(dev[:-lag], dev[lag:]) / np.dot(dev, dev))
    assert rho == pytest.approx(0.5, abs=0.1)


def test_exact_discretisation_does_not_depend_on_grid():
    p = FundamentalParams(sigma_pct_day=1.5, half_life_min=10, jump_rate_per_day=0, grid_s=60)
    f = Fundamental(p, REF, OPEN, days(40), rng(2))
    assert f.path.var() == pytest.approx(f.stationary_sd() ** 2, rel=0.2)
    # the exact one-step autocorrelation at dt = 60 s is exp(-kappa 60)
    dev = f.path - f.path.mean()
    rho1 = float(np.dot(dev[:-1], dev[1:]) / np.dot(dev, dev))
    assert rho1 == pytest.approx(math.exp(-p.kappa_per_s * 60), abs=0.03)


def test_start_value_lookup_and_clamping():
    f = Fundamental(FundamentalParams(), REF, OPEN, CLOSE, rng(3))
    assert f.n == 23_400 and len(f.path) == 23_401
    assert f.value_at(OPEN) == REF
    assert f.value_at(OPEN - HOUR) == REF
    assert f.value_at(OPEN + 10 * SECOND + 999_999_999) == f.path[10]
    assert f.value_at(CLOSE) == f.path[-1] == f.value_at(CLOSE + HOUR)
    assert isinstance(f.value_at(OPEN + 5 * SECOND), float)


def test_same_generator_seed_same_path_and_streams_are_named():
    p = FundamentalParams()
    a = Fundamental(p, REF, OPEN, CLOSE, rng(5)).path
    assert np.array_equal(a, Fundamental(p, REF, OPEN, CLOSE, rng(5)).path)
    assert not np.array_equal(a, Fundamental(p, REF, OPEN, CLOSE, rng(6)).path)
    s = RandomStreams(7)
    b = Fundamental.from_streams(s, p, REF, OPEN, CLOSE).path
    assert np.array_equal(b, Fundamental.from_streams(RandomStreams(7), p, REF, OPEN, CLOSE).path)


def test_jump_rate_and_size_match_parameters():
    p = FundamentalParams(sigma_pct_day=0, jump_rate_per_day=20, jump_sd_pct=0.3, jump_dist="laplace")
    f = Fundamental(p, REF, OPEN, days(50), rng(4))
    n_jumps = len(f.jump_times_ns)
    assert abs(n_jumps - 1000) < 4 * math.sqrt(1000)
    x = f.path  # no diffusion: the path only moves at jumps
    rel = np.diff(x) / x[:-1] * 100
    moves = rel[rel != 0]
    assert len(moves) == n_jumps
    assert moves.std() == pytest.approx(0.3, rel=0.15)
    # laplace jumps are heavy-tailed: excess kurtosis near 3
    assert ((moves - moves.mean()) ** 4).mean() / moves.var() ** 2 > 4.5


def test_add_jump_shifts_the_path_from_t_onward():
    p = FundamentalParams(jump_rate_per_day=0)
    f = Fundamental(p, REF, OPEN, CLOSE, rng(8))
    before = f.path.copy()
    t = OPEN + HOUR
    k = HOUR // SECOND
    f.add_jump(t, -3.0)
    after = f.path
    assert np.array_equal(after[:k], before[:k])
    # a permanent jump moves value and reversion level: the OU path is shifted by a constant
    jump = -0.03 * before[k]
    assert np.allclose(after[k:] - before[k:], jump)
    assert f.value_at(t - 1) == before[k - 1]
    assert f.value_at(t) == pytest.approx(before[k] + jump)
    assert f.level[k] == pytest.approx(REF + jump)


def test_transient_jump_decays_with_the_half_life():
    p = FundamentalParams(jump_rate_per_day=0, half_life_min=30)
    f = Fundamental(p, REF, OPEN, CLOSE, rng(9))
    before = f.path.copy()
    k = HOUR // SECOND
    f.add_jump(OPEN + HOUR, 2.0, permanence=0.0)
    shift = f.path - before
    assert shift[k] == pytest.approx(0.02 * before[k])
    assert shift[k + 1800] == pytest.approx(shift[k] / 2, rel=0.01)
    assert np.array_equal(f.level, np.full(f.n + 1, float(REF)))


def test_scale_volatility_changes_only_its_window():
    f = Fundamental(FundamentalParams(jump_rate_per_day=0), REF, OPEN, CLOSE, rng(10))
    before = f.path.copy()
    a, b = HOUR // SECOND, 2 * HOUR // SECOND
    f.scale_volatility(OPEN + HOUR, OPEN + 2 * HOUR, 4.0)
    after = f.path
    assert np.array_equal(after[: a + 1], before[: a + 1])
    ratio = np.diff(after[a : b + 1]).std() / np.diff(before[a : b + 1]).std()
    assert ratio == pytest.approx(4.0, rel=0.1)
    # re-integration reuses the draws: scaling back gives the original path
    f.scale_volatility(OPEN + HOUR, OPEN + 2 * HOUR, 0.25)
    assert np.allclose(f.path, before)


def test_fundamental_is_busier_when_activity_is_high():
    act = Activity(ActivityParams(log_sd=1.0, u_shape=0.0), OPEN, CLOSE, rng(11))
    f = Fundamental(FundamentalParams(jump_rate_per_day=0), REF, OPEN, CLOSE, rng(12), activity=act)
    lam = act.intensity
    moves = np.abs(np.diff(f.path))
    busy, quiet = lam > np.quantile(lam, 0.8), lam < np.quantile(lam, 0.2)
    assert moves[busy].mean() > 2 * moves[quiet].mean()


def test_business_time_share_decouples_volatility_from_activity():
    """``business_time`` = 1 is the subordinated path (the default, bit for bit); 0 makes the
    moves independent of the activity; in between the busy/quiet ratio falls with the share."""
    act = Activity(ActivityParams(log_sd=1.0, u_shape=0.0), OPEN, CLOSE, rng(11))
    lam = act.intensity
    busy, quiet = lam > np.quantile(lam, 0.8), lam < np.quantile(lam, 0.2)

    def ratio(share):
        p = FundamentalParams(jump_rate_per_day=0, business_time=share)
        moves = np.abs(np.diff(Fundamental(p, REF, OPEN, CLOSE, rng(12), activity=act).path))
        return moves[busy].mean() / moves[quiet].mean()

    default = Fundamental(FundamentalParams(jump_rate_per_day=0), REF, OPEN, CLOSE, rng(12), activity=act).path
    full = FundamentalParams(jump_rate_per_day=0, business_time=1.0)
    one = Fundamental(full, REF, OPEN, CLOSE, rng(12), activity=act)
    assert np.array_equal(default, one.path)
    r0, r_half, r1 = ratio(0.0), ratio(0.5), ratio(1.0)
    assert 0.9 < r0 < 1.1 and r0 < r_half < r1


def test_stochastic_volatility_clusters_moves_and_keeps_the_other_draws():
    """``sv_log_sd`` > 0: |moves| cluster (autocorrelated at lags of minutes) with about the same
    mean variance, and the jumps (drawn before) are the same as without it."""
    base = FundamentalParams(jump_rate_per_day=5, half_life_min=600)
    sv = FundamentalParams(jump_rate_per_day=5, half_life_min=600, sv_log_sd=0.8, sv_half_life_min=30)
    a = Fundamental(base, REF, OPEN, days(20), rng(21))
    b = Fundamental(sv, REF, OPEN, days(20), rng(21))
    assert a._jumps == b._jumps
    m_a, m_b = np.abs(np.diff(a.path)), np.abs(np.diff(b.path))

    def abs_acf(x, lag):
        x = x - x.mean()
        return float(np.dot(x[:-lag], x[lag:]) / np.dot(x, x))

    assert abs_acf(m_b, 60) > 0.1 > abs_acf(m_a, 60)
    assert 0.8 < np.mean(np.diff(b.path) ** 2) / np.mean(np.diff(a.path) ** 2) < 1.25


def test_volatility_bursts_take_their_share_length_and_scale_and_keep_the_other_draws():
    """``burst_share`` > 0: a two-state regime whose burst steps have ``burst_scale`` times the calm
    sd, cover about ``burst_share`` of the time in runs of about ``burst_mean_min`` minutes, keep
    the mean variance 1, and leave every earlier draw (jumps, the diffusion's normals) alone."""
    base = FundamentalParams(jump_rate_per_day=5, half_life_min=600, sv_log_sd=0.3)
    burst = FundamentalParams(
        jump_rate_per_day=5, half_life_min=600, sv_log_sd=0.3, burst_share=0.2, burst_scale=3.0, burst_mean_min=5
    )
    a = Fundamental(base, REF, OPEN, days(40), rng(22))
    b = Fundamental(burst, REF, OPEN, days(40), rng(22))
    assert a._jumps == b._jumps and np.array_equal(a._z, b._z)
    scale = b._step_sd / a._step_sd
    calm, high = scale.min(), scale.max()
    assert high / calm == pytest.approx(3.0) and set(np.round(np.unique(scale) / calm, 9)) == {1.0, 3.0}
    assert calm**2 * (0.8 + 0.2 * 9.0) == pytest.approx(1.0)  # the mean variance stays 1
    in_burst = scale > calm * 2
    assert in_burst.mean() == pytest.approx(0.2, abs=0.03)
    starts = np.flatnonzero(np.diff(in_burst.astype(np.int8)) == 1)
    assert in_burst.sum() / len(starts) / 60.0 == pytest.approx(5.0, rel=0.15)  # mean run, minutes
    assert 0.85 < np.mean(np.diff(b.path) ** 2) / np.mean(np.diff(a.path) ** 2) < 1.2
    with pytest.raises(ValidationError):
        validate(FundamentalParams, burst_share=1.0)
    with pytest.raises(ValidationError):
        validate(FundamentalParams, burst_scale=0.5)


def validate(cls, **fields):
    """Validate params the way scenario files do (the dataclasses validate under pydantic)."""
    return TypeAdapter(cls).validate_python(fields)


def test_params_are_validated():
    with pytest.raises(ValidationError):
        validate(FundamentalParams, half_life_min=0)
    with pytest.raises(ValidationError):
        validate(FundamentalParams, jump_dist="cauchy")
    with pytest.raises(ValidationError):
        validate(ActivityParams, u_shape=1.0)
    with pytest.raises(ValidationError):
        validate(FundamentalParams, sigma=1.0)
    with pytest.raises(ValueError):
        Fundamental(FundamentalParams(), REF, CLOSE, OPEN, rng())


# ---------------------------------------------------------------------------------------------
# Activity
# ---------------------------------------------------------------------------------------------


def test_activity_is_normalised_and_u_shaped():
    act = Activity(ActivityParams(log_sd=0.0, u_shape=0.5), OPEN, CLOSE, rng(13))
    lam = act.intensity
    assert lam.mean() == pytest.approx(1.0)
    assert act.session_business_s == pytest.approx((CLOSE - OPEN) / SECOND)
    half_hour = 1800
    assert lam[:half_hour].mean() > 1.5 > 0.6 > lam[10_000:13_000].mean()
    assert lam[-half_hour:].mean() == pytest.approx(lam[:half_hour].mean(), rel=0.01)


def test_random_activity_clusters_and_keeps_mean_one():
    act = Activity(ActivityParams(log_sd=0.8, half_life_min=15), OPEN, CLOSE, rng(14))
    lam = act.intensity
    assert lam.mean() == pytest.approx(1.0)
    assert lam.max() / lam.min() > 5
    a = np.log(lam)
    a -= a.mean()
    assert np.dot(a[:-60], a[60:]) / np.dot(a, a) > 0.8  # persistent over a minute


def test_next_arrival_inverts_the_cumulative_intensity():
    act = Activity(ActivityParams(), OPEN, OPEN + HOUR, rng(15))
    r = random.Random(0)
    for _ in range(2000):
        t = OPEN - MINUTE + r.randrange(HOUR + 2 * MINUTE)
        gap = r.expovariate(1 / 30)
        t2 = act.next_arrival(t, gap)
        assert t2 >= t
        # consistent with the cumulative integral up to one ns of calendar time
        assert act.business_time(t2) - act.business_time(t) == pytest.approx(gap, abs=1e-8 * 10)
        assert act.next_arrival(t, gap * 1.5 + 1e-3) >= t2
        assert act.next_arrival(t + r.randrange(10 * SECOND), gap) >= t2
    cum = act.cumulative
    assert np.all(np.diff(cum) > 0) and cum[0] == 0
    assert act.business_time(OPEN + HOUR) == pytest.approx(3600)
    # outside the session, business time is calendar time
    assert act.next_arrival(OPEN + HOUR + SECOND, 2.0) == OPEN + HOUR + 3 * SECOND
    assert act.next_arrival(OPEN - 5 * SECOND, 2.0) == OPEN - 3 * SECOND


def test_arrivals_through_activity_follow_the_intensity():
    act = Activity(ActivityParams(log_sd=0.0, u_shape=0.8), OPEN, CLOSE, rng(16))
    r = random.Random(1)
    t, times = OPEN, []
    while True:
        t = act.next_arrival(t, r.expovariate(1.0))
        if t >= CLOSE:
            break
        times.append(t)
    counts = np.bincount((np.array(times) - OPEN) // (30 * MINUTE), minlength=13)
    assert counts[0] > 2 * counts[6] and counts[-1] > 2 * counts[6]
    assert len(times) == pytest.approx(23_400, rel=0.05)


# ---------------------------------------------------------------------------------------------
# Arrival distributions
# ---------------------------------------------------------------------------------------------


def cv(xs):
    xs = np.asarray(xs, dtype=float)
    return xs.std() / xs.mean()


@pytest.mark.parametrize(
    ("arrival", "shape"), [("weibull", 0.6), ("lognormal", 1.2), ("pareto", 2.5), ("exponential", 1.0)]
)
def test_gap_samplers_have_mean_one_and_heavy_tails(arrival, shape):
    draw = gap_sampler(random.Random(3), arrival, shape)
    xs = [draw() for _ in range(100_000)]
    assert np.mean(xs) == pytest.approx(1.0, rel=0.05)
    if arrival == "exponential":
        assert cv(xs) == pytest.approx(1.0, abs=0.03)
    else:
        assert cv(xs) > 1.3


def test_arrival_params_are_validated():
    with pytest.raises(ValidationError):
        validate(NoiseParams, arrival="gamma")
    with pytest.raises(ValidationError):
        validate(NoiseParams, arrival="pareto", arrival_shape=1.0)
    with pytest.raises(ValidationError):
        validate(ValueParams, arrival_shape=0)
    with pytest.raises(ValidationError):
        validate(ValueParams, base_lots=5, max_lots=2)
    with pytest.raises(ValidationError):
        validate(MomentumParams, fast_s=300, slow_s=30)
    with pytest.raises(ValidationError):
        validate(MomentumParams, bogus=1)
    with pytest.raises(ValueError):  # cross-field checks also hold for direct construction
        MomentumParams(fast_s=300, slow_s=30)
    assert validate(NoiseParams) == NoiseParams()

    class Holder(BaseModel):  # as scenario files validate them: errors, not exceptions
        noise: NoiseParams = NoiseParams()

    with pytest.raises(ValidationError, match="tail index"):
        Holder.model_validate({"noise": {"arrival": "pareto", "arrival_shape": 0.5}})
    assert Holder.model_validate({"noise": {"arrival": "weibull"}}).noise.arrival_shape == 0.6


# ---------------------------------------------------------------------------------------------
# Small markets in a kernel
# ---------------------------------------------------------------------------------------------


class Provider(Trader):
    """Rests a large bid and ask at fixed prices once the session opens."""

    def __init__(self, name, bid=REF - 1, ask=REF + 1, qty=10_000_000):
        super().__init__(name, "XYZ")
        self.quote = (bid, ask, qty)

    def on_start(self):
        super().on_start()
        bid, ask, qty = self.quote
        self.submit("B", qty, bid)
        self.submit("S", qty, ask)


def market(seed, actors_fn, minutes=20, latency_us=100, provider=None):
    close = OPEN + minutes * MINUTE
    streams = RandomStreams(seed)
    kernel = Kernel(Network(NetworkSpec(LinkSpec(latency_us * US))), streams, start_ns=OPEN)
    recorder = Recorder()
    kernel.add(Exchange("exchange", ["XYZ"], recorder, OPEN, close))
    kernel.add(provider or Provider("provider"))
    actors = actors_fn(streams, close)
    for a in actors:
        kernel.add(a)
    kernel.run(close)
    return recorder, actors


def submits(recorder, prefix):
    orders = recorder.tables["orders"].frame()
    return orders[(orders.event == "submit") & orders.owner.str.startswith(prefix)]


def test_noise_arrivals_are_heavy_tailed_end_to_end():
    def run(arrival):
        p = NoiseParams(rate_per_hour=3600, arrival=arrival, arrival_shape=0.5, market_prob=0.0)

        def actors(streams, close):
            return [NoiseTrader("noise", "XYZ", p, REF, OPEN, close)]

        rec, _ = market(1, actors, minutes=60)
        return np.diff(submits(rec, "noise").time_ns.to_numpy())

    poisson, weibull = run("exponential"), run("weibull")
    assert len(poisson) == pytest.approx(3600, rel=0.1)
    assert cv(poisson) == pytest.approx(1.0, abs=0.1)
    assert cv(weibull) > 1.5


def test_noise_trader_uses_activity_for_its_arrivals():
    p = NoiseParams(rate_per_hour=3600, market_prob=0.0)
    quiet_then_busy = ActivityParams(log_sd=0.0, u_shape=0.9)

    def actors(streams, close):
        act = Activity.from_streams(streams, quiet_then_busy, OPEN, close)
        return [NoiseTrader("noise", "XYZ", p, REF, OPEN, close, activity=act)]

    rec, _ = market(2, actors, minutes=60)
    t = (submits(rec, "noise").time_ns.to_numpy() - OPEN) // (10 * MINUTE)
    counts = np.bincount(t, minlength=6)
    assert counts[0] > 2 * counts[2] and counts[5] > 2 * counts[3]


def value_market(seed, shift_pct, n=5, params=None, minutes=20, provider=None):
    params = params or ValueParams(rate_per_hour=300, bias_sd_ticks=2, noise_sd_ticks=1)

    def actors(streams, close):
        fund = Fundamental.from_streams(
            streams, FundamentalParams(sigma_pct_day=0, jump_rate_per_day=0), REF, OPEN, close
        )
        if shift_pct:
            fund.add_jump(OPEN, shift_pct)
        return [ValueTrader(f"value-{i}", "XYZ", params, REF, OPEN, close, fundamental=fund) for i in range(n)]

    return market(seed, actors, minutes=minutes, provider=provider)


@pytest.mark.parametrize(("shift", "side"), [(3.0, "B"), (-3.0, "S")])
def test_value_traders_trade_toward_the_fundamental(shift, side):
    params = ValueParams(rate_per_hour=300, bias_sd_ticks=2, noise_sd_ticks=1, max_position=3_000)
    rec, traders = value_market(3, shift, params=params)
    orders = submits(rec, "value")
    assert len(orders) >= 5 and set(orders.side) == {side}
    trades = rec.tables["trades"].frame()
    assert len(trades) > 0 and set(trades.aggressor_side) == {side}
    assert set(trades.price) == {REF + 1 if side == "B" else REF - 1}
    sign = 1 if side == "B" else -1
    for t in traders:
        assert 0 < sign * t.position <= params.max_position
    # the position limit binds: every trader filled up to it
    assert all(abs(t.position) == params.max_position for t in traders)


def test_value_traders_post_passively_inside_a_fair_market():
    # fundamental at the mid: no edge to take, so passive orders that never cross the touch
    params = ValueParams(rate_per_hour=300, bias_sd_ticks=3, noise_sd_ticks=2, threshold_ticks=20)
    rec, _ = value_market(4, 0.0, params=params)
    orders = submits(rec, "value")
    assert len(orders) > 20 and set(orders.detail) == {"DAY"}
    assert orders[orders.side == "B"].price.max() < REF + 1
    assert orders[orders.side == "S"].price.min() > REF - 1
    assert len(rec.tables["trades"]) == 0
    cancels = rec.tables["orders"].frame()
    assert (cancels.event == "cancel_rejected").sum() == 0  # never cancels the same order twice


def test_value_traders_rest_limit_orders_at_their_valuation():
    # a wide market (REF -/+ 20), the fundamental at REF, no bias, no noise, no taking: a buy
    # rests at the valuation (view - edge = REF - 2), not one tick inside the touch; once it is
    # the best bid the mid is above the view and the next look sells at view + edge
    def run(passive_at):
        params = ValueParams(
            rate_per_hour=300,
            bias_sd_ticks=0,
            noise_sd_ticks=0,
            threshold_ticks=50,
            passive_prob=1.0,
            passive_at=passive_at,
        )
        provider = Provider("provider", REF - 20, REF + 20)
        rec, _ = value_market(4, 0.0, n=2, params=params, minutes=5, provider=provider)
        return submits(rec, "value")

    at_value = run("value")
    assert len(at_value) > 5
    assert set(at_value[at_value.side == "B"].price) == {REF - 2}
    assert set(at_value[at_value.side == "S"].price) == {REF + 2}
    at_touch = run("touch")  # the original: one tick inside the touch
    assert at_touch.price.iloc[0] == REF - 19


def unit_value_trader(**params):
    """A value trader outside a kernel: a fake clock, sent messages kept in ``sent``."""
    fund = Fundamental.from_streams(
        RandomStreams(1), FundamentalParams(sigma_pct_day=0, jump_rate_per_day=0), REF, OPEN, CLOSE
    )
    base = {"bias_sd_ticks": 0, "noise_sd_ticks": 0, "through_ticks": 2}
    t = ValueTrader("v", "XYZ", ValueParams(**{**base, **params}), REF, OPEN, CLOSE, fundamental=fund)
    t.kernel = type("Clock", (), {"now": OPEN + MINUTE, "schedule": lambda *a: None})()
    t.sent = []
    t.send = lambda dst, msg, priority=0: t.sent.append(msg)
    return t, fund


def snapshot(bid, ask, last=None, qty=1_000):
    return BookSnapshot("XYZ", ((bid, qty),), ((ask, qty),), last, OPEN)


def test_value_trader_stops_after_its_loss_limit():
    t, _ = unit_value_trader(max_loss=5_000, threshold_ticks=50, passive_prob=0.0)
    t.position, t.cash = 1_000, -1_000 * REF  # long 1,000 bought at REF
    t.on_snapshot(snapshot(REF - 4, REF - 2), 0)  # -3,000: within the limit
    assert not t.stopped and not t.sent
    t.on_snapshot(snapshot(REF - 8, REF - 6), 0)  # -7,000: stop, one flattening order
    assert t.stopped
    (flat,) = t.sent
    assert (flat.side, flat.qty, flat.price, flat.tif) == ("S", 1_000, REF - 10, "IOC")
    t.on_arrival()
    t.on_snapshot(snapshot(REF - 80, REF - 78), 0)  # a huge bargain: it no longer trades
    assert len(t.sent) == 1


def test_value_trader_capital_caps_what_it_buys():
    t, fund = unit_value_trader(capital=300 * REF, threshold_ticks=1, max_lots=10, lots_per_tick=5)
    fund.add_jump(OPEN, 1.0)  # value 100 ticks above the market: it wants the most it can get
    t.on_arrival()
    t.on_snapshot(snapshot(REF - 1, REF + 1), 0)
    buys = [m for m in t.sent if isinstance(m, SubmitOrder)]
    assert buys and buys[-1].qty == 200  # $ capital / value: 297 shares, whole lots


def test_value_trader_learns_from_persistent_selling_and_reacts_with_a_delay():
    t, fund = unit_value_trader(flow_ticks=10.0, flow_alpha=0.5, reaction_delay_s=30.0, threshold_ticks=50)
    v0 = t.valuation()
    for _ in range(6):  # every look: the last trade at the bid
        t.on_snapshot(snapshot(REF - 1, REF + 1, last=REF - 1), 0)
    assert t.flow < -0.95 and t.valuation() < v0 - 9
    fund.add_jump(t.now - 10 * SECOND, 2.0)  # news 10 s ago: not yet in its view
    assert t.valuation() == pytest.approx(v0 + 10.0 * t.flow)
    t.kernel.now += 30 * SECOND
    assert t.valuation() > v0 + 150


def test_value_trader_reenters_after_a_halt_at_prices_from_its_valuation():
    t, fund = unit_value_trader(threshold_ticks=3)
    fund.add_jump(OPEN, 1.0)  # value REF + 100
    t.on_arrival()
    t.on_snapshot(snapshot(REF - 1, REF + 1), 0)
    (ioc,) = [m for m in t.sent if isinstance(m, SubmitOrder)]
    assert ioc.tif == "IOC" and ioc.price == REF + 1 + 2
    t.on_rejected(OrderRejected(ioc.order_id, "trading halted"))
    day = t.sent[-1]
    assert day.tif == "DAY" and day.side == "B" and day.price == REF + 100 - 3  # its valuation - threshold


def test_value_trader_requires_a_fundamental():
    with pytest.raises(ValueError, match="fundamental"):
        ValueTrader("v", "XYZ", ValueParams(), REF, OPEN, CLOSE)


def test_same_seed_same_orders_with_activity_and_heavy_tails():
    noise = NoiseParams(rate_per_hour=120, arrival="weibull", arrival_shape=0.6)
    value = ValueParams(rate_per_hour=60)

    def run(seed):
        def actors(streams, close):
            act = Activity.from_streams(streams, ActivityParams(), OPEN, close)
            fund = Fundamental.from_streams(streams, FundamentalParams(sigma_pct_day=5), REF, OPEN, close, activity=act)
            out = [NoiseTrader(f"noise-{i}", "XYZ", noise, REF, OPEN, close, activity=act) for i in range(30)]
            out += [
                ValueTrader(f"value-{i}", "XYZ", value, REF, OPEN, close, activity=act, fundamental=fund)
                for i in range(10)
            ]
            out += [MomentumTrader(f"mom-{i}", "XYZ", MomentumParams(), REF, OPEN, close) for i in range(3)]
            return out

        rec, _ = market(seed, actors, minutes=30)
        return rec.tables["orders"].rows, rec.digest()

    a, b, c = run(11), run(11), run(12)
    assert len(a[0]) > 200
    assert a == b
    assert a[1] != c[1]


# ---------------------------------------------------------------------------------------------
# Momentum
# ---------------------------------------------------------------------------------------------


class TapeExchange(Actor):
    """Stands in for the exchange: prints a scripted trade tape, fills every order at once."""

    def __init__(self, name, tape):
        super().__init__(name)
        self.tape = tape  # list of (t_ns, price)
        self.subscribers = []
        self.orders = []
        self.price = tape[0][1]

    def on_start(self):
        for i, (t, _) in enumerate(self.tape):
            self.wake_at(t, i)

    @handles(Wakeup)
    def on_tick(self, msg, src):
        self.price = self.tape[msg.tag][1]
        for dst in self.subscribers:
            self.send(dst, TradePrinted("XYZ", self.price, 100, "B", self.now))

    @handles(SubscribeMarketData)
    def on_subscribe(self, msg, src):
        self.subscribers.append(src)

    @handles(SubmitOrder)
    def on_order(self, msg, src):
        self.orders.append((self.now, msg))
        self.send(src, OrderFilled(msg.order_id, 0, self.price, msg.qty, 0, "taker"))


def momentum_run(params, tape, seed=5):
    kernel = Kernel(Network(NetworkSpec(LinkSpec(100 * US))), RandomStreams(seed), start_ns=OPEN)
    ex = TapeExchange("exchange", tape)
    mom = MomentumTrader("mom", "XYZ", params, REF, OPEN, CLOSE)
    kernel.add(ex)
    kernel.add(mom)
    kernel.run(tape[-1][0] + MINUTE)
    return ex.orders, mom


def up_then_down():
    tape, price = [], REF
    for s in range(1, 3600):
        if 600 <= s < 1200:
            price += 1 if s % 2 == 0 else 0  # +0.5 tick/s for 10 minutes
        elif s >= 1800:
            price -= 1 if s % 2 == 0 else 0  # then down for 30 minutes
        tape.append((OPEN + s * SECOND, price))
    return tape


def test_momentum_buys_the_up_trend_and_sells_the_down_trend():
    p = MomentumParams(lots=5, max_position=2_000, min_interval_s=30, warmup_s=120)
    orders, mom = momentum_run(p, up_then_down())
    sides = [(t, o.side, o.qty) for t, o in orders]
    assert sides, "no orders"
    t0, first_side, first_qty = sides[0]
    assert first_side == "B" and OPEN + 600 * SECOND < t0 < OPEN + 1200 * SECOND and first_qty == 500
    sells = [t for t, side, _ in sides if side == "S"]
    assert sells and min(sells) > OPEN + 1200 * SECOND  # only once the trend has turned
    assert all(o.tif == "IOC" and o.price is not None for _, o in orders)
    # flattened the long, then went short one clip
    assert mom.position == -500
    gaps = np.diff([t for t, _, _ in sides])
    assert (gaps >= 30 * SECOND).all()


def test_momentum_respects_position_limit_and_stays_quiet_when_flat():
    p = MomentumParams(lots=5, max_position=1_200, min_interval_s=10, add_on_trend=True, warmup_s=60)
    orders, _ = momentum_run(p, up_then_down())
    assert max(abs(q) for q in _positions(orders)) <= 1_200
    flat = [(OPEN + s * SECOND, REF + (s % 2)) for s in range(1, 1800)]
    orders, _ = momentum_run(MomentumParams(), flat)
    assert orders == []


def _positions(orders):
    pos, out = 0, []
    for _, o in orders:
        pos += o.qty if o.side == "B" else -o.qty
        out.append(pos)
    return out


def test_momentum_ewma_is_time_based():
    # the same price path sampled at different trade rates gives (nearly) the same averages
    def final(step_ms):
        tape = [(OPEN + i * step_ms * 1_000_000, REF + (i * step_ms) // 10_000) for i in range(1, 600_000 // step_ms)]
        _, mom = momentum_run(MomentumParams(warmup_s=10**6, jitter=0.0), tape)
        return mom.fast, mom.slow

    f1, s1 = final(1000)
    f2, s2 = final(50)
    assert f1 == pytest.approx(f2, abs=1.0) and s1 == pytest.approx(s2, abs=1.0)
    assert f1 > s1 + 20
