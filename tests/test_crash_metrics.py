"""Flash-crash measures (desksim/analytics/crash.py) on hand-built series, the crash criteria's
shares with bootstrap intervals (desksim/mc/summary.py), and the counterfactual scenario file."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from desksim.analytics import crash as C
from sim.clock import MINUTE, SECOND

S = SECOND


def _v_trades(recover_min: float = 10.0, day_s: int = 7200, m2m_every: tuple[int, int] = (10, 2)) -> pd.DataFrame:
    """One print a second: 100 for an hour, a linear fall to 90 over 5 minutes (3600-3900 s),
    back to 100 over ``recover_min`` minutes, then 100 to ``day_s``. 100 shares a print before the
    fall, 400 during it; every ``m2m_every[0]``-th print before and every ``m2m_every[1]``-th print
    during the fall is between the makers "mm-a" and "mm-b"."""
    t = np.arange(0, day_s + 1)
    px = np.full(t.size, 100.0)
    fall = (t > 3600) & (t <= 3900)
    px[fall] = 100.0 - 10.0 * (t[fall] - 3600) / 300
    up_end = 3900 + recover_min * 60
    up = (t > 3900) & (t <= up_end)
    px[up] = 90.0 + 10.0 * (t[up] - 3900) / (recover_min * 60)
    qty = np.where(fall, 400, 100)
    before_every, during_every = m2m_every
    m2m = np.where(fall, t % during_every == 0, t % before_every == 0)
    maker = np.where(m2m, "mm-a", "noise-0001")
    taker = np.where(m2m, "mm-b", "value-0001")
    return pd.DataFrame({"time_ns": t * S, "price": px, "qty": qty, "maker": maker, "taker": taker})


def _quotes(day_s: int = 7200, normal: int = 1000, thin: int = 200) -> pd.DataFrame:
    """A quote a second, depth ``normal`` (split over both sides), ``thin`` from 3600 s to 3900 s."""
    t = np.arange(0, day_s + 1)
    depth = np.where((t >= 3600) & (t <= 3900), thin, normal)
    return pd.DataFrame(
        {"time_ns": t * S, "bid": 9999, "bid_qty": depth // 2, "ask": 10001, "ask_qty": depth - depth // 2}
    )


# --------------------------------------------------------------------------- the worst 15-minute fall


def test_v_shaped_crash_known_numbers():
    tr = _v_trades()
    fall = C.worst_fall(tr["time_ns"], tr["price"])
    assert fall.pct == pytest.approx(10.0)
    assert fall.start_ns == 3600 * S and fall.trough_ns == 3900 * S  # the last print at 100, the bottom
    assert fall.peak_price == 100.0 and fall.trough_price == 90.0
    m = C.crash_metrics(tr, _quotes(), 0, 7200 * S, makers={"mm-a", "mm-b"})
    assert m["fall_15m_pct"] == pytest.approx(10.0)
    assert (m["fall_15m_start_s"], m["fall_15m_trough_s"]) == (3600.0, 3900.0)
    assert m["recovered_20m_share"] == 1.0  # back at 100 ten minutes after the trough
    # shares per minute: during [3600, 3900] 100 + 300 x 400 over 5 min; before [0, 3600) 100 a second
    assert m["crash_volume_ratio"] == pytest.approx((100 + 300 * 400) / 5 / 6000)
    assert m["crash_depth_min_ratio"] == pytest.approx(0.2)
    # maker-to-maker: every 2nd print during the fall (by volume), every 10th before
    during = sum(400 if s > 3600 else 100 for s in range(3600, 3901) if s % 2 == 0) / (100 + 300 * 400)
    assert m["crash_m2m_ratio"] == pytest.approx(during / 0.1)
    assert math.isnan(m["mid_fall_15m_pct"]) is False and m["mid_fall_15m_pct"] == 0.0  # the quotes never move


def test_one_sided_share_is_the_time_with_an_empty_side_from_the_fall_to_20_minutes_after_it():
    """The crash episode of the v-shaped fall runs from its start (3600 s) to 20 minutes after its
    trough (3900 + 1200 = 5100 s): 1,500 s. An empty bid for 100 s and an empty ask for 50 s in it
    are 150 s one-sided; an empty book after 5100 s is outside it."""
    tr, q = _v_trades(), _quotes()
    s = q["time_ns"] // S
    q.loc[(s >= 3700) & (s < 3800), ["bid", "bid_qty"]] = [np.nan, 0]
    q.loc[(s >= 4000) & (s < 4050), ["ask", "ask_qty"]] = [np.nan, 0]
    q.loc[(s >= 6000) & (s < 6100), ["bid", "bid_qty", "ask", "ask_qty"]] = [np.nan, 0, np.nan, 0]
    assert C.crash_metrics(tr, _quotes(), 0, 7200 * S)["crash_one_sided_share"] == 0.0
    assert C.crash_metrics(tr, q, 0, 7200 * S)["crash_one_sided_share"] == pytest.approx(150 / 1500)
    # a run that stops at 4500 s: the episode is clipped to its 900 s
    assert C.crash_metrics(tr, q, 0, 4500 * S)["crash_one_sided_share"] == pytest.approx(150 / 900)
    flat = tr.assign(price=100.0)  # no fall, no episode
    assert math.isnan(C.crash_metrics(flat, q, 0, 7200 * S)["crash_one_sided_share"])
    assert math.isnan(C.crash_metrics(tr, None, 0, 7200 * S)["crash_one_sided_share"])


def test_the_level_fall_reads_minute_vwaps():
    tr = _v_trades()
    m = C.crash_metrics(tr, None, 0, 7200 * S)
    # by hand: the worst fall within 15 minutes is from minute 59's VWAP (100, at 3600 s) to minute
    # 65's (3900-3959 s: the trough print of 400 shares at 90, then 59 prints of 100 shares on the way
    # back up, 90 + (s - 3900) / 60)
    low = (400 * 90.0 + 100 * sum(90.0 + k / 60 for k in range(1, 60))) / (400 + 59 * 100)
    assert m["vwap_fall_15m_pct"] == pytest.approx(100.0 - low)
    # a wick: one 100-share print at half price in a minute of 6,000 shares at 100 is a 50 % fall of
    # the prints and a 0.83 % fall of the level
    t = np.arange(0, 3600)
    px = np.where(t == 1830, 50.0, 100.0)
    wick = pd.DataFrame({"time_ns": t * S, "price": px, "qty": 100, "maker": "a", "taker": "b"})
    m = C.crash_metrics(wick, None, 0, 3600 * S)
    assert m["fall_15m_pct"] == pytest.approx(50.0)
    assert m["vwap_fall_15m_pct"] == pytest.approx(50.0 * 100 / 6000)
    times, vwaps = C.minute_vwaps(t * S, px, np.full(t.size, 100), 0)
    assert times[0] == MINUTE and len(vwaps) == 60  # placed at each minute's end


def test_slow_recovery_is_a_share_of_the_fall():
    tr = _v_trades(recover_min=40.0)  # 90 -> 100 over 40 minutes: 95 after 20
    m = C.crash_metrics(tr, None, 0, 7200 * S)
    assert m["recovered_20m_share"] == pytest.approx(0.5)
    assert math.isnan(m["crash_depth_min_ratio"]) and math.isnan(m["crash_m2m_ratio"])  # no quotes, no makers


def test_a_fall_spread_over_an_hour_is_small_in_any_15_minutes():
    t = np.arange(0, 3601) * S
    px = 100.0 - 10.0 * np.arange(0, 3601) / 3600
    fall = C.worst_fall(t, px)
    assert fall.pct == pytest.approx(2.5 / 92.5 * 100)  # from 92.5 (15 min before the end) to 90
    assert fall.start_ns == 2700 * S and fall.trough_ns == 3600 * S


def test_the_price_in_force_at_the_window_start_counts():
    """Two prints 1000 s apart: at 1000 s the window [100 s, 1000 s] holds no other print, but 100
    was the price in force at its start (a step function): a 5 % fall starting at 100 s."""
    fall = C.worst_fall(np.array([0, 1000]) * S, np.array([100.0, 95.0]))
    assert fall.pct == pytest.approx(5.0)
    assert fall.start_ns == 100 * S and fall.trough_ns == 1000 * S
    far = C.worst_fall(np.array([0, 3600]) * S, np.array([100.0, 95.0]))  # still in force an hour later
    assert far.pct == pytest.approx(5.0)


def test_flat_day_has_no_fall_and_nothing_to_recover():
    t = np.arange(0, 7201) * S
    tr = pd.DataFrame({"time_ns": t, "price": 100.0, "qty": 100, "maker": "a", "taker": "b"})
    m = C.crash_metrics(tr, _quotes(), 0, 7200 * S, makers={"a", "b"})
    assert m["fall_15m_pct"] == 0.0
    for key in C.KEYS[1:4] + C.KEYS[6:]:  # not the mid and level falls: 0 on a flat day
        assert math.isnan(m[key]), key
    assert m["vwap_fall_15m_pct"] == 0.0
    rising = C.worst_fall(t, 100.0 + np.arange(t.size) / 100)
    assert rising.pct == 0.0 and not rising.found


def test_no_trades_everything_nan():
    empty = pd.DataFrame({"time_ns": [], "price": [], "qty": [], "maker": [], "taker": []})
    for trades in (None, empty):
        m = C.crash_metrics(trades, None, 0, 3600 * S)
        assert list(m) == list(C.KEYS) and all(math.isnan(v) for v in m.values())
    assert math.isnan(C.worst_fall([1, 2], [np.nan, 0.0]).pct)  # no usable price


def test_fall_at_the_end_of_the_day_has_no_recovery_figure():
    """The trough 10 minutes before the close: the 20-minute window is not inside the run -> NaN
    (undefined, not 0), even though the price bounced; with 20 minutes left it is defined."""
    tr = _v_trades(day_s=3900 + 600)
    m = C.crash_metrics(tr, None, 0, (3900 + 600) * S)
    assert m["fall_15m_pct"] == pytest.approx(10.0) and math.isnan(m["recovered_20m_share"])
    tr = _v_trades(day_s=3900 + 1200)
    assert C.crash_metrics(tr, None, 0, (3900 + 1200) * S)["recovered_20m_share"] == 1.0
    # no print at all after the trough within the (complete) window: nothing recovered
    fall = C.worst_fall(np.array([0, 600]) * S, np.array([100.0, 90.0]))
    assert C.recovered_share(np.array([0, 600]) * S, np.array([100.0, 90.0]), fall, end_ns=3600 * S) == 0.0


def test_fall_at_the_open_has_no_before_window():
    t = np.arange(0, 601) * S
    tr = pd.DataFrame({"time_ns": t, "price": 100.0 - np.arange(601) / 100, "qty": 100, "maker": "a", "taker": "b"})
    m = C.crash_metrics(tr, _quotes(600), 0, 3600 * S, makers={"a"})
    assert m["fall_15m_start_s"] == 0.0 and m["fall_15m_pct"] > 5
    assert math.isnan(m["crash_volume_ratio"]) and math.isnan(m["crash_depth_min_ratio"])


def test_instant_fall_is_judged_over_a_minute_and_quiet_before_is_inf():
    """A single sweep (peak and trough one second apart) after an hour with no trades at all: the
    fall window is the minute from the peak, and the before rate 0 makes the volume ratio inf."""
    tr = pd.DataFrame(
        {"time_ns": np.array([3600, 3601, 3630]) * S, "price": [100.0, 80.0, 81.0], "qty": [100, 900, 200]}
        | {"maker": ["x", "mm", "mm"], "taker": ["y", "mm2", "z"]}
    )
    fall = C.worst_fall(tr["time_ns"], tr["price"])
    assert C.windows(fall, 0, 7200 * S) == ((3600 * S, 3660 * S), (0, 3600 * S))
    assert C.volume_ratio(tr, fall, 0, 7200 * S) == math.inf
    # the makers traded nothing before (share 0 of no volume): undefined
    assert math.isnan(C.maker_share_ratio(tr, fall, 0, 7200 * S, {"mm", "mm2"}))


def test_step_integral_and_depth_buckets():
    t = np.array([10, 20, 20, 40])
    v = np.array([1.0, 5.0, 2.0, 3.0])  # the second row at 20 is overwritten by the third
    got = C.step_integral(t, v, np.array([0, 10, 15, 20, 30, 40, 50]))
    assert got.tolist() == [0.0, 0.0, 5.0, 10.0, 30.0, 50.0, 80.0]
    # a one-minute hole in the touch during a 5-minute fall: the minimum bucket sees it
    q = _quotes()
    q.loc[(q["time_ns"] >= 3700 * S) & (q["time_ns"] < 3760 * S), ["bid_qty", "ask_qty"]] = 0
    fall = C.worst_fall(*(lambda d: (d["time_ns"], d["price"]))(_v_trades()))
    assert C.depth_ratio(q, fall, 0, 7200 * S) == pytest.approx((20 * 200 + 40 * 0) / 60 / 1000)


# --------------------------------------------------------------------------- shares and intervals


def test_bootstrap_share_of_50_in_100():
    from desksim.mc.summary import bootstrap_share

    flags = np.array([True] * 50 + [False] * 50)
    share, lo, hi = bootstrap_share(flags, np.random.default_rng(1), samples=2000)
    assert share == 0.5 and lo < 0.5 < hi
    assert lo == pytest.approx(0.4, abs=0.02) and hi == pytest.approx(0.6, abs=0.02)  # ~ +-1.96 sqrt(.25/100)
    again = bootstrap_share(flags, np.random.default_rng(1), samples=2000)
    assert again == (share, lo, hi)  # seeded: the same interval
    assert bootstrap_share(np.zeros(8, dtype=bool), np.random.default_rng(1)) == (0.0, 0.0, 0.0)
    assert all(math.isnan(x) for x in bootstrap_share([], np.random.default_rng(1)))


def _runs(n: int = 10) -> pd.DataFrame:
    rows = {k: np.full(n, np.nan) for k in C.KEYS}
    rows["fall_15m_pct"] = np.array([6.0, 5.0, 4.0, 3.0, 0.5, 0.0, 7.0, np.nan, 10.0, 2.0])[:n]
    rows["crash_volume_ratio"] = np.array([4.0, 3.0, 1.0, np.inf, np.nan, 1, 1, 1, 5, 1])[:n]
    rows["crash_depth_min_ratio"] = np.array([0.1, 0.3, 0.1, 0.1, 0.1, 1, 1, 1, 0.2, 1])[:n]
    rows["crash_m2m_ratio"] = np.array([2.0, np.inf, 1.0, np.nan, 2, 2, 2, 2, 1.5, 2])[:n]
    rows["recovered_20m_share"] = np.array([0.5, 1.0, 0.2, np.nan, 1, 1, 0.1, 1, 0.9, 1])[:n]
    return pd.DataFrame({"run": np.arange(n), **rows})


def test_crash_flags_and_summary():
    from desksim.mc.summary import crash_flags, crash_lines, crash_summary

    flags = crash_flags(_runs())
    assert flags["fall_5pct_15m"].tolist() == [1, 1, 0, 0, 0, 0, 1, 0, 1, 0]
    assert flags["fall_3pct_15m"].sum() == 6
    assert flags["volume_3x"].tolist() == [1, 1, 0, 1, 0, 0, 0, 0, 1, 0]  # inf counts, NaN does not
    assert flags["depth_below_quarter"].sum() == 5
    assert flags["maker_to_maker_rise"].tolist() == [1, 1, 0, 0, 1, 1, 1, 1, 1, 1]
    assert flags["half_recovered_20m"].tolist() == [1, 1, 0, 0, 1, 1, 0, 1, 1, 1]
    assert flags["all_2010"].tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 1, 0]  # run 1: depth 0.3
    s = crash_summary(_runs(), seed=3)
    c = s["criteria"]
    assert (c["fall_5pct_15m"]["runs"], c["fall_5pct_15m"]["n"], c["fall_5pct_15m"]["share"]) == (4, 10, 0.4)
    lo, hi = c["fall_5pct_15m"]["ci"]
    assert 0 <= lo < 0.4 < hi <= 1
    given = c["half_recovered_20m"]["given_fall_5pct"]
    assert (given["n"], given["runs"], given["share"]) == (4, 3, 0.75)
    assert s == crash_summary(_runs(), seed=3)  # seeded
    assert s["bootstrap"]["samples"] == 2000 and s["measures"]["fall_15m_pct"]["n"] == 9
    text = "\n".join(crash_lines(s))
    assert "fall >= 5% within 15 min" in text and "4/10" in text and "40.0%" in text
    empty = crash_summary(_runs().iloc[:0], seed=3)
    assert empty["criteria"]["all_2010"]["n"] == 0 and empty["criteria"]["all_2010"]["share"] is None
    crash_lines(empty)


# --------------------------------------------------------------------------- the counterfactual scenario


def test_scripted_flash_crash_current_is_flash_crash_under_todays_rules():
    from scenarios.schema import load

    base, current = load("flash_crash_scripted"), load("flash_crash_scripted_current")
    assert current.rules == "current"
    a = base.model_dump(exclude={"name", "description", "rules"})
    b = current.model_dump(exclude={"name", "description", "rules"})
    assert a == b


def test_maker_names_of_a_scenario():
    from desksim.analytics.anatomy import maker_names
    from scenarios.schema import load

    assert maker_names(load("flash_crash_scripted")) == ["mm-ladder", "mm-as"]
    assert maker_names(load("quick")) == ["mm"]


def test_crash_columns_in_a_short_run():
    """A real run gives every crash column (flash_crash_scripted's first 40 minutes: the program starts at
    10:00; the measures are defined on any path with a fall)."""
    from desksim import api
    from desksim.mc.metrics import SCHEMA, run_metrics

    res = api.run("flash_crash_scripted", seed=7, duration_s=40 * 60)
    scenario = api.load("flash_crash_scripted")
    row = run_metrics(res, 0, 7, scenario.session.open_ns, scenario.tick_size)
    assert set(C.KEYS) <= set(SCHEMA.names) and set(C.KEYS) <= set(row)
    assert row["fall_15m_pct"] > 0 and math.isfinite(row["crash_volume_ratio"])
    assert row["fall_15m_trough_s"] <= 40 * 60
    assert MINUTE == 60 * SECOND
