"""Strategy desk: execution schedules, signals, Kelly sizing, analytics, and the desk actor
trading against a real Exchange actor."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from actors.background import NoiseParams, NoiseTrader
from actors.desk.analytics import (
    TRADING_SECONDS_PER_YEAR,
    calmar_ratio,
    desk_frames,
    desk_summary,
    implementation_shortfall,
    lo_eta,
    max_drawdown,
    pnl_series,
    round_trips,
    sharpe_ratio,
    slippage_bps,
    sortino_ratio,
    total_pnl,
    win_rate,
)
from actors.desk.desk import DeskParams, StrategyDesk
from actors.desk.execution import (
    VolumeCurve,
    ac_holdings,
    ac_kappa,
    allocate,
    almgren_chriss_schedule,
    grid,
    twap_schedule,
    vwap_schedule,
)
from actors.desk.strategies import (
    GridSampler,
    ImbalanceSignal,
    MeanReversionParams,
    MeanReversionSignal,
    MomentumSignal,
    MomentumSignalParams,
    ReturnVariance,
    book_imbalance,
    fractional_kelly_size,
    ou_half_life,
)
from actors.makers import LadderMaker, LadderParams
from actors.messages import OrderFilled, SubmitOrder
from tests.helpers import Scripted, market

S = 1_000_000_000


# ---------------------------------------------------------------------------------------------
# Execution schedules
# ---------------------------------------------------------------------------------------------


def test_grid_and_twap_equal_slices_to_one_lot():
    assert grid(0, 60 * S, 6) == [j * 10 * S for j in range(6)]
    sched = twap_schedule(1_000, 0, 60 * S, 6, lot_size=100)
    assert sched.total == 1_000 and len(sched) == 6
    assert all(q % 100 == 0 for q in sched.qtys)
    assert max(sched.qtys) - min(sched.qtys) <= 100
    assert sched.times_ns == tuple(j * 10 * S for j in range(6))
    odd = twap_schedule(1_050, 0, 60 * S, 6, lot_size=100)
    assert odd.total == 1_050
    assert sum(1 for q in odd.qtys if q % 100) == 1  # the odd lot sits in exactly one slice
    assert twap_schedule(600, 0, 60, 6).qtys == (100,) * 6


def test_vwap_is_heavier_at_the_open_and_the_close():
    curve = VolumeCurve()
    profile = curve.profile(13)
    assert math.isclose(sum(profile), 1.0)
    assert profile[0] > profile[6] and profile[-1] > profile[6]
    sched = vwap_schedule(100_000, 0, 100 * S, 10, open_ns=0, close_ns=100 * S, lot_size=100)
    q = sched.qtys
    assert sched.total == 100_000
    assert q[0] > q[4] and q[0] > q[5] and q[-1] > q[4] and q[-1] > q[5]
    # a window in the middle of the day is close to flat
    mid = vwap_schedule(10_000, 40 * S, 60 * S, 4, open_ns=0, close_ns=100 * S, lot_size=100)
    assert max(mid.qtys) - min(mid.qtys) <= 100
    # a flat curve is TWAP
    flat = vwap_schedule(1_200, 0, 60, 6, 0, 60, VolumeCurve(open_amp=0.0, close_amp=0.0))
    assert flat.qtys == (200,) * 6


def test_almgren_chriss_front_loaded_and_twap_in_the_limit():
    sched = almgren_chriss_schedule(10_000, 0, 600 * S, 10, kappa=0.005, lot_size=100)
    q = sched.qtys
    assert sched.total == 10_000
    assert all(q[j] >= q[j + 1] for j in range(len(q) - 1)) and q[0] > 2 * q[-1]
    # the trade list is the difference of the holdings x_j = X sinh(κ(T - t_j)) / sinh(κT)
    x = [10_000 * math.sinh(0.005 * (600 - 60 * j)) / math.sinh(0.005 * 600) for j in range(11)]
    assert all(abs(q[j] - (x[j] - x[j + 1])) <= 100 for j in range(10))
    twap = twap_schedule(10_000, 0, 600 * S, 10, lot_size=100)
    for kappa in (0.0, 1e-12, 1e-8):
        limit = almgren_chriss_schedule(10_000, 0, 600 * S, 10, kappa=kappa, lot_size=100)
        assert all(abs(a - b) <= 100 for a, b in zip(limit.qtys, twap.qtys, strict=True))
    # more urgency, more front-loading
    urgent = almgren_chriss_schedule(10_000, 0, 600 * S, 10, kappa=0.02, lot_size=100)
    assert urgent.qtys[0] > q[0]


def test_almgren_chriss_kappa_units_and_stable_holdings():
    # λ = 1e-4 /$, σ = 0.02 $/share/√s, η = 1e-4 $/share per share/s  ->  κ = 0.02 /s
    assert math.isclose(ac_kappa(1e-4, 0.02, 1e-4), 0.02)
    assert ac_kappa(0.0, 0.02, 1e-4) == 0.0
    with pytest.raises(ValueError):
        ac_kappa(1e-4, 0.02, 0.0)
    h = ac_holdings(1.0, 0.01, 100.0, [0.0, 25.0, 100.0])
    assert math.isclose(h[1], math.sinh(0.75) / math.sinh(1.0)) and h[0] == 1.0 and h[2] == 0.0
    huge = ac_holdings(1_000.0, 50.0, 100.0, [0.0, 0.5, 100.0])  # sinh(5000) overflows
    assert huge[0] == 1_000.0 and 0 <= huge[1] < 1_000.0 and huge[2] == 0.0
    sched = almgren_chriss_schedule(1_000, 0, 100 * S, 5, kappa=50.0, lot_size=100)
    assert sched.qtys == (1_000, 0, 0, 0, 0)
    via_params = almgren_chriss_schedule(1_000, 0, 100 * S, 5, risk_aversion=1e-4, volatility=0.02, eta=1e-4)
    assert via_params.qtys == almgren_chriss_schedule(1_000, 0, 100 * S, 5, kappa=0.02).qtys


@settings(max_examples=300, deadline=None)
@given(
    qty=st.integers(0, 1_000_000),
    n=st.integers(1, 60),
    lot=st.sampled_from([1, 10, 100, 250]),
    algo=st.sampled_from(["twap", "vwap", "ac"]),
    kappa=st.floats(0.0, 1.0),
    start=st.integers(0, 10**13),
    span=st.integers(0, 10**13),
)
def test_schedules_sum_exactly_and_are_non_negative(qty, n, lot, algo, kappa, start, span):
    end = start + span
    if algo == "twap":
        sched = twap_schedule(qty, start, end, n, lot)
    elif algo == "vwap":
        sched = vwap_schedule(qty, start, end, n, open_ns=start, close_ns=start + 10**13, lot_size=lot)
    else:
        sched = almgren_chriss_schedule(qty, start, end, n, kappa=kappa, lot_size=lot)
    assert sched.total == qty
    assert len(sched.qtys) == n and all(q >= 0 for q in sched.qtys)
    assert sum(1 for q in sched.qtys if q % lot) <= (1 if qty % lot else 0)
    assert list(sched.times_ns) == sorted(sched.times_ns) and all(start <= t <= end for t in sched.times_ns)
    if algo == "twap":
        whole = [q - (q % lot) for q in sched.qtys]
        assert max(whole) - min(whole) <= lot


@given(weights=st.lists(st.floats(0.0, 1e6), min_size=1, max_size=40), qty=st.integers(0, 10**7))
def test_allocate_is_exact_largest_remainder(weights, qty):
    out = allocate(weights, qty)
    assert sum(out) == qty and all(q >= 0 for q in out)
    total = math.fsum(weights)
    if total > 0:
        assert all(abs(o - qty * w / total) < 1.0 + 1e-6 for o, w in zip(out, weights, strict=True))


# ---------------------------------------------------------------------------------------------
# Signals and sizing
# ---------------------------------------------------------------------------------------------


def simulate_ou(half_life: float, n: int, seed: int, mu: float = 10_000.0, sd: float = 2.0) -> list[float]:
    """Exact discretisation of an OU process sampled every second."""
    rnd = random.Random(seed)
    phi = 0.5 ** (1.0 / half_life)
    x, out = mu, []
    for _ in range(n):
        x = mu + phi * (x - mu) + rnd.gauss(0.0, sd)
        out.append(x)
    return out


def test_ou_half_life_recovered_by_the_rolling_fit():
    prices = simulate_ou(20.0, 20_001, seed=3)
    assert ou_half_life(prices) == pytest.approx(20.0, rel=0.15)
    params = MeanReversionParams(sample_s=1.0, window=20_000, refit_every=500, min_samples=100, half_life_s=300.0)
    sig = MeanReversionSignal(params)
    for k, p in enumerate(prices):
        sig.update_price(k * S, p)
    assert sig.fitted and sig.reverting
    assert sig.half_life_s == pytest.approx(20.0, rel=0.15)
    assert sig.ou_mean == pytest.approx(10_000.0, abs=1.0)
    # rolling window: a different regime later is picked up by the refits
    later = simulate_ou(60.0, 30_000, seed=4)
    short = MeanReversionSignal(MeanReversionParams(sample_s=1.0, window=10_000, refit_every=200, min_samples=100))
    for k, p in enumerate(prices + later):
        short.update_price(k * S, p)
    assert short.half_life_s == pytest.approx(60.0, rel=0.3)


def test_mean_reversion_signal_sign_and_random_walk():
    sig = MeanReversionSignal(MeanReversionParams(sample_s=1.0, min_samples=30, window=400))
    prices = simulate_ou(10.0, 400, seed=5, sd=1.0)
    t = 0
    for t, p in enumerate(prices):
        sig.update_price(t * S, p)
    assert sig.ready
    sig.update_price((t + 1) * S, sig.mean + 10.0)  # far above the mean: sell
    assert sig.z > 0 and sig.signal < 0 and sig.expected_edge(60.0) < 0
    sig.update_price((t + 2) * S, sig.mean - 10.0)
    assert sig.signal > 0 and sig.expected_edge(60.0) > 0
    assert -1.0 <= sig.signal <= 1.0
    # a trending series finds no reversion: no signal
    trend = MeanReversionSignal(MeanReversionParams(sample_s=1.0, min_samples=30, window=100))
    for k in range(200):
        trend.update_price(k * S, 10_000.0 + 1.01**k)
    assert trend.fitted and not trend.reverting and trend.signal == 0.0


def test_grid_sampler_takes_the_last_value_before_each_point():
    g = GridSampler(1.0)
    assert g.feed(0, 5.0) == (0, None)
    assert g.feed(S // 2, 6.0) == (0, 5.0)
    assert g.feed(S, 7.0) == (1, 6.0)  # point at 1 s: last value strictly before it
    assert g.feed(4 * S + 1, 8.0) == (3, 7.0)  # points at 2, 3, 4 s


def test_return_variance_scales_with_horizon():
    rv = ReturnVariance(sample_s=1.0, halflife_samples=1e9)
    rnd = random.Random(1)
    p = 10_000.0
    for k in range(5_000):
        p *= math.exp(rnd.gauss(0.0, 1e-4))
        rv.update_price(k * S, p)
    assert rv.ready
    assert rv.variance(1.0) == pytest.approx(1e-8, rel=0.1)
    assert rv.variance(100.0) == pytest.approx(100 * rv.variance(1.0))


def test_momentum_signal_follows_the_trend():
    sig = MomentumSignal(MomentumSignalParams(fast_s=10.0, slow_s=100.0, warmup_s=50.0, full_signal_bps=10.0))
    for k in range(300):
        sig.update_price(k * S, 10_000.0 + k)
    assert sig.ready and sig.signal == 1.0 and sig.expected_edge(60.0) == pytest.approx(5e-4)
    for k in range(300, 700):
        sig.update_price(k * S, 10_300.0 - 2 * (k - 300))
    assert sig.signal < 0


def test_imbalance_sign():
    assert book_imbalance(300, 100) == 0.5
    assert book_imbalance(100, 300) == -0.5
    assert book_imbalance(0, 0) == 0.0
    sig = ImbalanceSignal()
    assert not sig.ready and sig.signal == 0.0
    sig.update_quote(0, 9_999, 900, 10_001, 100)
    assert sig.ready and sig.signal == pytest.approx(0.8) and sig.expected_edge(60.0) > 0
    sig.update_quote(1, 9_999, 100, 10_001, 900)
    assert sig.signal == pytest.approx(-0.8) and sig.expected_edge(60.0) < 0
    sig.update_quote(2, None, 0, 10_001, 500)  # empty bid side: all offer
    assert sig.signal == -1.0


def test_fractional_kelly_is_capped():
    assert fractional_kelly_size(0.001, 0.01, 0.5, 2.0) == pytest.approx(0.05)
    assert fractional_kelly_size(0.01, 0.0001, 0.5, 2.0) == 2.0  # raw 50, capped
    assert fractional_kelly_size(-0.01, 0.0001, 0.5, 2.0) == -2.0
    assert fractional_kelly_size(0.01, 0.0, 0.5, 2.0) == 0.0  # no variance estimate: no bet
    assert fractional_kelly_size(0.0, 0.01, 0.5, 2.0) == 0.0


def test_desk_params_validated():
    adapter = TypeAdapter(DeskParams)
    p = adapter.validate_python({"strategy": "momentum", "momentum": {"fast_s": 5, "slow_s": 50}, "algo": "vwap"})
    assert p.momentum.slow_s == 50.0 and p.algo == "vwap"
    with pytest.raises(ValidationError):
        adapter.validate_python({"kelly_fraction": 2.0})
    with pytest.raises(ValidationError):
        adapter.validate_python({"algo": "pov"})
    with pytest.raises(ValidationError):
        adapter.validate_python({"unknown": 1})


# ---------------------------------------------------------------------------------------------
# Analytics on hand-computed examples
# ---------------------------------------------------------------------------------------------


def fill(t, side, price, qty, parent_id=1, child_mid=None):
    return {"time_ns": t, "side": side, "price": price, "qty": qty, "parent_id": parent_id, "child_mid": child_mid}


def test_pnl_series_and_total():
    fills = [fill(1, "B", 100, 100), fill(3, "S", 103, 100)]
    prices = [(0, 100.0), (1, 100.0), (2, 102.0), (3, 103.0), (4, 90.0)]
    assert [v for _, v in pnl_series(fills, prices, tick_size=0.01)] == pytest.approx([0, 0, 2.0, 3.0, 3.0])
    assert total_pnl(fills[:1], 105, tick_size=1.0) == 500.0


def test_drawdown_sharpe_calmar_by_hand():
    assert max_drawdown([0, 5, 2, 8, 3, 4]) == 5
    assert max_drawdown([-3, -1]) == 3  # the peak starts at 0, before the first trade
    assert max_drawdown([1, 2, 3]) == 0
    # increments 1, 2, 1: mean 4/3, sd sqrt(1/3) -> 4/3 * sqrt(3) per interval (not annualised)
    assert sharpe_ratio([0, 1, 3, 4], min_increments=3) == pytest.approx(4 / 3 * math.sqrt(3))
    assert sharpe_ratio([0, 1, 3, 4]) is None  # 3 increments < 30: n/a
    assert sharpe_ratio([0, 1, 2], min_increments=2) is None  # no variation
    # Sortino: increments 2, -1, 2, -2: mean 0.25, downside sqrt((1 + 4) / 4)
    assert sortino_ratio([0, 2, 1, 3, 1], min_increments=4) == pytest.approx(0.25 / math.sqrt(5 / 4))
    assert sortino_ratio([0, 1, 2, 4], min_increments=3) is None  # no losing interval
    assert calmar_ratio(10.0, 5.0) == pytest.approx(2.0)  # over the run
    assert calmar_ratio(10.0, 0.0) is None


def test_lo_eta_matches_closed_forms():
    assert lo_eta(252, []) == pytest.approx(math.sqrt(252))
    # AR(1) increments, rho_k = phi^k: eta = q / sqrt(q + 2 sum (q - k) phi^k)
    phi, q = 0.3, 50
    expected = q / math.sqrt(q + 2 * sum((q - k) * phi**k for k in range(1, q)))
    assert lo_eta(q, [phi**k for k in range(1, q)]) == pytest.approx(expected)
    assert lo_eta(q, [phi**k for k in range(1, q)]) < math.sqrt(q)  # positive correlation: less than sqrt(q)


def _intraday_pnl(hours: float, seed: int) -> tuple[list[tuple[int, float]], list[dict]]:
    """One long position bought at 1000 ticks, marked every minute on a falling random walk."""
    rng = np.random.default_rng(seed)
    n = int(hours * 60) + 1
    path = 1000 + np.cumsum(rng.normal(-0.3, 1.0, n))
    prices = [(k * 60 * 10**9, float(p)) for k, p in enumerate(path)]
    fills = [{"time_ns": 0, "side": "B", "price": 1000, "qty": 100, "parent_id": 1}]
    return prices, fills


@pytest.mark.parametrize("seed", range(5))
def test_intraday_ratios_are_not_annualised_as_daily_returns(seed):
    """A 1.5-hour losing run (like fat_finger) used to report Sharpe ~ -40 and Calmar ~ -800:
    per-minute increments annualised as if they were daily. Now: per-interval figures with their
    horizon, no annualised Sharpe below a trading day, Calmar over the run."""
    prices, fills = _intraday_pnl(1.5, seed)
    s = desk_summary(fills, [], prices, tick_size=0.01, interval_s=60.0)
    assert s["sharpe_annual"] is None
    assert s["sharpe"] is not None and abs(s["sharpe"]) < 2  # one minute's mean / sd
    assert s["sortino"] is not None and abs(s["sortino"]) < 3
    assert s["calmar"] is not None and abs(s["calmar"]) <= 1.0 + 1e-9  # a loss never exceeds its drawdown
    assert s["ratio_horizons"]["sharpe"] == "60 s P&L increments"
    short = desk_summary(fills, [], prices[:20], tick_size=0.01, interval_s=60.0)
    assert short["sharpe"] is None and short["sortino"] is None  # 19 increments: n/a
    day = desk_summary(fills, [], _intraday_pnl(6.5, seed)[0], tick_size=0.01, interval_s=60.0)
    assert day["sharpe_annual"] is not None and day["sharpe"] is not None
    assert (day["sharpe_annual"] > 0) == (day["sharpe"] > 0)  # Lo's eta(q) > 0 scales, never flips
    assert math.isfinite(day["sharpe_annual"] / math.sqrt(TRADING_SECONDS_PER_YEAR / 60))


def test_round_trips_and_win_rate():
    fills = [
        fill(1, "B", 100, 100),
        fill(2, "S", 102, 100),  # +200
        fill(3, "S", 101, 100),
        fill(4, "B", 103, 100),  # -200
        fill(5, "B", 100, 100),
        fill(6, "S", 105, 200),  # +500, and opens a short of 100 at 105
        fill(7, "B", 104, 100),  # +100
        fill(8, "B", 104, 100),  # open, never closed
    ]
    trips = round_trips(fills)
    assert trips == [200, -200, 500, 100]
    assert win_rate(trips) == 0.75
    assert win_rate([]) is None
    assert round_trips([fill(1, "B", 100, 100), fill(2, "B", 110, 100), fill(3, "S", 106, 200)]) == [200]


def test_shortfall_sign_for_buys_and_sells():
    buy = {"parent_id": 1, "side": "B", "qty": 200, "arrival_mid": 100.0, "end_mid": 104.0}
    res = implementation_shortfall(buy, [fill(1, "B", 101, 100)], tick_size=0.01)
    assert res["is_bps"] == pytest.approx(100.0)  # paid 1 tick over a 100-tick arrival
    assert res["is_currency"] == pytest.approx(1.0)
    assert res["opportunity_currency"] == pytest.approx(4.0)  # 100 unfilled, price ran up 4 ticks
    assert res["total_is_bps"] == pytest.approx((100 + 400) / (100 * 200) * 1e4)
    sell = {"parent_id": 2, "side": "S", "qty": 100, "arrival_mid": 100.0}
    assert implementation_shortfall(sell, [fill(1, "S", 99, 100)])["is_bps"] == pytest.approx(100.0)
    assert implementation_shortfall(sell, [fill(1, "S", 101, 100)])["is_bps"] == pytest.approx(-100.0)
    assert implementation_shortfall(buy, [fill(1, "B", 99, 200)])["is_bps"] == pytest.approx(-100.0)
    assert implementation_shortfall(sell, [])["is_bps"] is None
    fills = [fill(1, "B", 101, 100, child_mid=100.0), fill(2, "S", 99, 300, child_mid=100.0)]
    assert slippage_bps(fills) == pytest.approx(100.0)


def test_desk_summary_is_json_friendly_and_frames_build():
    parents = [
        {"parent_id": 1, "side": "B", "qty": 100, "arrival_mid": 100.0, "end_mid": 101.0},
        {"parent_id": 2, "side": "S", "qty": 100, "arrival_mid": 102.0, "end_mid": 102.0},
    ]
    fills = [fill(10 * S, "B", 101, 100, 1, 100.0), fill(30 * S, "S", 102, 100, 2, 102.5)]
    prices = [(0, 100.0), (20 * S, 102.0), (40 * S, 101.0)]
    out = desk_summary(fills, parents, prices, tick_size=0.01, interval_s=20.0, capital=1_000.0)
    json.dumps(out, allow_nan=False)
    assert out["pnl_ccy"] == pytest.approx(1.0) and out["final_position"] == 0
    assert out["round_trips"] == 1 and out["win_rate"] == 1.0
    assert out["parents_filled"] == 2 and out["fill_rate"] == 1.0
    assert out["is_bps"] == pytest.approx((100 + 0) / (100 * 100 + 102 * 100) * 1e4)
    frames = desk_frames(fills, parents, prices, tick_size=0.01, desk="d")
    assert list(frames["desk_pnl"]["position"]) == [0, 100, 0]
    assert frames["desk_parents"]["is_bps"].tolist()[0] == pytest.approx(100.0)
    assert len(frames["desk_fills"]) == 2 and "slippage_bps" in frames["desk_fills"]
    empty = desk_summary([], [], [], tick_size=0.01)
    json.dumps(empty, allow_nan=False)
    assert empty["pnl_ccy"] == 0.0 and empty["sharpe"] is None
    assert desk_frames([], [], [])["desk_fills"].columns[-1] == "slippage_bps"


# ---------------------------------------------------------------------------------------------
# The desk actor against a real Exchange
# ---------------------------------------------------------------------------------------------


class FixedTargetDesk(StrategyDesk):
    """A desk whose signal is replaced by a fixed target position."""

    target = 1_000

    def target_position(self, mid):
        return self.target


def desk_params(**kw):
    base = dict(
        warmup_s=1.0,
        decision_interval_s=1_000.0,
        exec_horizon_s=50.0,
        n_slices=5,
        algo="twap",
        child_style="marketable",
        through_ticks=0,
        lot_size=100,
    )
    base.update(kw)
    return DeskParams(**base)


def liquidity(bid=9_999, ask=10_001, qty=5_000):
    script = []
    if ask is not None:
        script.append((0, lambda a: SubmitOrder(a.oid(1), "XYZ", "S", qty, ask)))
    if bid is not None:
        script.append((0, lambda a: SubmitOrder(a.oid(2), "XYZ", "B", qty, bid)))
    return Scripted("lp", script)


def test_desk_works_a_twap_parent_against_the_exchange():
    desk = FixedTargetDesk("desk", "XYZ", desk_params(), 10_000, 0, 1_000 * S, exchange="exchange")
    lp = liquidity()
    kernel, _, rec = market(lp, desk)
    kernel.run(200 * S)
    assert len(desk.parents) == 1
    parent = desk.parents[0]
    assert parent["side"] == "B" and parent["qty"] == 1_000 and parent["arrival_mid"] == 10_000.0
    schedule = desk.schedules[1]
    assert schedule.qtys == (200,) * 5
    children = sorted(desk.children.values(), key=lambda c: c["submit_ns"])
    assert [c["submit_ns"] for c in children] == list(schedule.times_ns)
    assert [c["submit_ns"] for c in children] == [S + j * 10 * S for j in range(5)]
    assert [c["qty"] for c in children] == [200] * 5 and all(c["price"] == 10_001 for c in children)
    assert sum(f["qty"] for f in desk.fills) == parent["filled_qty"] == 1_000
    assert parent["status"] == "filled" and parent["unfilled_qty"] == 0 and parent["avg_price"] == 10_001
    assert desk.position == 1_000 and not desk.open_orders
    trades = rec.tables["trades"].frame()
    assert trades["qty"].sum() == 1_000 and set(trades["taker"]) == {"desk"}
    assert sum(m.qty for m in lp.received(OrderFilled)) == 1_000
    out = desk.summary()
    json.dumps(out, allow_nan=False)
    assert out["parents_filled"] == 1 and out["is_bps"] == pytest.approx(1 / 10_000 * 1e4)
    assert out["slippage_bps"] == pytest.approx(1.0)


def test_unfilled_children_are_canceled_and_replaced_without_overfilling():
    desk = FixedTargetDesk("desk", "XYZ", desk_params(child_style="touch"), 10_000, 0, 1_000 * S, exchange="exchange")
    lp = liquidity(bid=None)  # the desk's passive buy (ask - 1) is the only bid
    sellers = Scripted(
        "seller",
        [
            (S // 2, lambda a: SubmitOrder(a.oid(3), "XYZ", "B", 100, 10_001, "IOC")),  # a last price
            (15 * S, lambda a: SubmitOrder(a.oid(1), "XYZ", "S", 150, 10_000, "IOC")),
            (33 * S, lambda a: SubmitOrder(a.oid(2), "XYZ", "S", 5_000, 10_000, "IOC")),
        ],
    )
    kernel, _, _ = market(lp, sellers, desk)
    kernel.run(200 * S)
    parent = desk.parents[0]
    filled = sum(f["qty"] for f in desk.fills)
    # 11 s: slice 0's child is canceled and re-sent as one child of 400 (cumulative), 150 fill
    # at 15 s; 21 s: rolled into 450; 31 s: into 650, all taken by the IOC at 33 s
    assert filled == parent["filled_qty"] == desk.position
    assert 150 < filled <= 1_000 and parent["qty"] == 1_000
    assert parent["status"] in ("filled", "done") and parent["unfilled_qty"] == 1_000 - filled
    assert not desk.open_orders
    kinds = {c["reason"] for c in desk.children.values()}
    assert kinds == {"slice", "rollover"}
    assert all(c["price"] == 10_000 for c in desk.children.values())
    assert filled == 800
    children = sorted(desk.children.values(), key=lambda c: c["submit_ns"])
    assert [c["qty"] for c in children] == [200, 400, 450, 650, 200]
    assert [c["reason"] for c in children] == ["slice", "rollover", "rollover", "rollover", "slice"]
    assert children[-1]["submit_ns"] == 41 * S  # nothing open at slice 4: sent on schedule
    seller_fills = sum(m.qty for m in sellers.received(OrderFilled))
    assert seller_fills == filled + 100


def test_desk_sells_and_respects_order_caps():
    desk = FixedTargetDesk(
        "desk", "XYZ", desk_params(max_order_qty=600, algo="almgren_chriss", ac_kappa=0.05), 10_000, 0, 1_000 * S,
        exchange="exchange",
    )  # fmt: skip
    desk.target = -1_000
    kernel, _, _ = market(liquidity(), desk)
    kernel.run(200 * S)
    parent = desk.parents[0]
    assert parent["side"] == "S" and parent["qty"] == 600 and parent["algo"] == "almgren_chriss"
    q = desk.schedules[1].qtys
    assert sum(q) == 600 and q[0] >= q[-1]
    assert desk.position == -600 and all(f["price"] == 9_999 for f in desk.fills)


def test_desk_with_signals_in_a_live_market():
    """Mean-reversion desk among a ladder maker and noise traders: books reconcile."""
    open_ns, close_ns = 0, 3_600 * S
    maker = LadderMaker("maker", "XYZ", LadderParams(), 10_000, open_ns, close_ns)
    noise = [
        NoiseTrader(f"noise-{i}", "XYZ", NoiseParams(rate_per_hour=120.0, market_prob=0.3), 10_000, open_ns, close_ns)
        for i in range(20)
    ]
    params = DeskParams(
        strategy="mean_reversion",
        mean_reversion=MeanReversionParams(sample_s=2.0, window=120, min_samples=20),
        warmup_s=120.0,
        decision_interval_s=60.0,
        exec_horizon_s=30.0,
        n_slices=3,
        kelly_fraction=0.5,
        cost_bps=0.0,
        vol_sample_s=2.0,
    )
    desk = StrategyDesk("desk", "XYZ", params, 10_000, open_ns, close_ns, exchange="exchange")
    kernel, _, rec = market(maker, *noise, desk, close_ns=close_ns)
    kernel.run(close_ns)
    assert desk.decisions > 50 and desk.marks and len(desk.parents) > 10
    assert all(c["status"] != "rejected" for c in desk.children.values())
    signed = sum(f["qty"] if f["side"] == "B" else -f["qty"] for f in desk.fills)
    assert signed == desk.position and abs(desk.position) <= params.max_position
    for p in desk.parents:
        assert p["filled_qty"] <= p["qty"]
        assert p["filled_qty"] == sum(f["qty"] for f in desk.fills if f["parent_id"] == p["parent_id"])
    trades = rec.tables["trades"].frame()
    desk_trades = trades[(trades["maker"] == "desk") | (trades["taker"] == "desk")]
    assert desk_trades["qty"].sum() == sum(f["qty"] for f in desk.fills)
    out = desk.summary()
    json.dumps(out, allow_nan=False)
    assert out["parents"] == len(desk.parents) and out["decisions"] == desk.decisions
    frames = desk.frames()
    assert len(frames["desk_pnl"]) == len(desk.marks)


def test_desk_trades_through_the_oms_and_fix_gateway():
    """Desk -> OMS (native) -> FIX 4.4 -> gateway -> exchange; parents and children reach the OMS."""
    from actors.exchange.exchange import Exchange
    from fix.gateway_actor import FixGateway
    from fix.oms import OMS
    from sim.kernel import Kernel
    from sim.network import LinkSpec, Network, NetworkSpec
    from sim.record import Recorder
    from sim.rng import RandomStreams

    rec = Recorder()
    kernel = Kernel(Network(NetworkSpec(LinkSpec(1_000_000))), RandomStreams(1))
    desk = FixedTargetDesk("desk", "XYZ", desk_params(), 10_000, 0, 1_000 * S)  # exchange="oms"
    actors = [
        Exchange("exchange", ["XYZ"], rec, 0, 1_000 * S),
        FixGateway("gateway", rec, clients=["CLIENT1"], symbols=["XYZ"]),
        OMS("oms", rec),
        liquidity(),
        desk,
    ]
    for actor in actors:
        kernel.add(actor)
    oms = actors[2]
    kernel.run(200 * S)
    parent = desk.parents[0]
    assert parent["status"] == "filled" and desk.position == 1_000
    assert sum(f["qty"] for f in desk.fills) == 1_000
    gid = parent["oms_parent_id"]
    assert gid == (desk.id << 32) | 1
    state = oms.parent_state(gid)
    assert state["filled_qty"] == 1_000 and state["children"] == 5
    children = sorted(desk.children.values(), key=lambda c: c["submit_ns"])
    assert [c["submit_ns"] for c in children] == list(desk.schedules[1].times_ns)
    trades = rec.tables["trades"].frame()
    assert trades["qty"].sum() == 1_000


class _Stub:
    def __init__(self, edge=0.0, variance=0.0, ready=True):
        self.ready, self._edge, self._var, self.signal = ready, edge, variance, 0.0

    def expected_edge(self, horizon_s):
        return self._edge

    def variance(self, horizon_s):
        return self._var


def test_target_position_is_fractional_kelly_within_the_limits():
    from types import SimpleNamespace

    params = DeskParams(capital=1_000_000.0, tick_size=0.01, kelly_fraction=0.25, cost_bps=1.0, max_position=5_000)
    desk = StrategyDesk("desk", "XYZ", params, 10_000, 0, 1_000 * S, exchange="exchange")
    desk.kernel = SimpleNamespace(now=100 * S)
    # net edge 2 - 1 = 1 bp, variance 1e-4: f = 1e-4 / 1e-4 * 0.25 = 0.25 of $1M at $100 = 2,500 shares
    desk.signal, desk.vol = _Stub(edge=2e-4), _Stub(variance=1e-4)
    assert desk.target_position(10_000.0) == 2_500
    desk.signal = _Stub(edge=-2.5e-4)  # -1.5 bp net: 3,750 shares short
    assert desk.target_position(10_000.0) == -3_700  # rounded toward zero to whole lots
    desk.signal = _Stub(edge=5e-3)  # leverage cap 1.0 -> 10,000 shares -> max_position
    assert desk.target_position(10_000.0) == 5_000
    desk.signal = _Stub(edge=0.5e-4)  # below the cost hurdle
    assert desk.target_position(10_000.0) == 0
    desk.vol = _Stub(ready=False)  # no estimate yet: hold the position
    desk.position = 700
    assert desk.target_position(10_000.0) == 700


def test_flatten_before_close():
    from types import SimpleNamespace

    params = DeskParams(flatten_before_close_s=300.0)
    desk = StrategyDesk("desk", "XYZ", params, 10_000, 0, 1_000 * S, exchange="exchange")
    desk.position = 700
    desk.kernel = SimpleNamespace(now=600 * S)
    assert desk.target_position(10_000.0) == 700  # signal not ready: hold
    desk.kernel = SimpleNamespace(now=800 * S)
    assert desk.target_position(10_000.0) == 0
