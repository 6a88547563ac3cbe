"""Issue 16 item 8: the realism statistics on synthetic data with known answers (order flow, intraday
shape, mid returns, rolling autocorrelation, leverage, depth vs trade size) and the reference ranges."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from desksim.analytics.intraday import intraday
from desksim.analytics.orderflow import gap_cv, new_resting, orderflow, weibull_fit
from desksim.analytics.realism import MINUTE_NS, format_table, realism
from desksim.analytics.targets import BY_KEY, TARGETS, Target, grade

OPEN = 34_200 * 1_000_000_000
S = 1_000_000_000
BASE = 10**9  # mid in ticks: large, so rounding does not disturb log returns
ORDER_COLS = ["time_ns", "order_id", "owner", "event", "side", "price", "qty", "leaves_qty", "detail"]


def quotes_from_returns(r: np.ndarray, half_spread: int = 1) -> tuple[pd.DataFrame, int]:
    """One two-sided snapshot per minute (at second 30) whose mid path has log returns r."""
    n = r.size + 1
    mid = np.rint(BASE * np.exp(np.r_[0.0, np.cumsum(r)])).astype(np.int64)
    t = OPEN + np.arange(n, dtype=np.int64) * MINUTE_NS + 30 * S
    q = pd.DataFrame({"time_ns": t, "bid": mid - half_spread, "bid_qty": 100, "ask": mid + half_spread, "ask_qty": 100})
    return q, OPEN + n * MINUTE_NS


# --------------------------------------------------------------------------- returns


def test_mid_returns_are_free_of_bid_ask_bounce() -> None:
    """Trades bouncing between bid and ask around an i.i.d. mid: trade returns are strongly negatively
    autocorrelated, the mid returns (what the real-market figures measure) are not."""
    rng = np.random.default_rng(11)
    r = 2e-4 * rng.standard_normal(4000)
    quotes, close = quotes_from_returns(r, half_spread=BASE // 1000)  # 20 bp spread: bounce dominates
    side = np.where(np.arange(len(quotes)) % 2 == 0, -1, 1)
    trades = pd.DataFrame({"time_ns": quotes["time_ns"] + 1, "price": quotes["bid"].where(side < 0, quotes["ask"]),
                           "qty": 100})  # fmt: skip
    on_trades = realism(trades, None, OPEN, close, 0.01)
    on_mid = realism(trades, quotes, OPEN, close, 0.01)
    assert on_trades["return_basis"] == "trade" and on_mid["return_basis"] == "mid"
    assert on_trades["acf1_1m"] < -0.4
    assert abs(on_mid["acf1_1m"]) < 0.05
    assert abs(on_mid["kurtosis_1m"]) < 0.3  # i.i.d. normal: excess kurtosis 0
    assert on_mid["return_std_1m_bps"] == pytest.approx(2.0, rel=0.05)  # sigma 2e-4 = 2 bp
    assert on_mid["return_std_1m_bps"] == pytest.approx(on_mid["return_std_1m"] * 1e4)


def test_rolling_acf_windows_and_kurtosis_falling_with_horizon() -> None:
    rng = np.random.default_rng(12)
    e = 1e-3 * rng.standard_normal(9000)
    ar = np.empty_like(e)
    ar[0] = e[0]
    for i in range(1, e.size):
        ar[i] = 0.5 * ar[i - 1] + e[i]
    s_ar = realism(None, quotes_from_returns(ar)[0], OPEN, quotes_from_returns(ar)[1], 0.01)
    assert len(s_ar["acf1_30m_windows"]) == 9000 // 30  # non-overlapping windows of 30 returns
    assert s_ar["acf1_30m_windows_mean"] > 0.3  # 0.5 less the small-sample bias of 30 points
    q, close = quotes_from_returns(1e-3 * rng.standard_t(4, 9000))
    s_t = realism(None, q, OPEN, close, 0.01)
    assert abs(s_t["acf1_30m_windows_mean"]) < 0.08  # i.i.d.: about -1/30
    assert s_t["acf1_30m_windows_min"] <= s_t["acf1_30m_windows_mean"] <= s_t["acf1_30m_windows_max"]
    # Student-t(4) minutes: heavy tails that the 30-minute sums (CLT) lose
    assert s_t["kurtosis_1m"] > 2.0 and s_t["kurtosis_drop_1m_30m"] > 1.5


def test_kurtosis_at_30_minutes_is_the_mean_over_its_30_grids() -> None:
    """A 390-minute day has 12-13 half-hour returns. On the one grid from the open their kurtosis
    swings with the minute the grid starts on; the statistic is the mean over all 30 grids,
    each with its own sample kurtosis (worked here with scipy), and so does not depend on the phase.
    The day: normal minutes and one 30-minute V (up 15 minutes, down 15); a grid that cuts the V at
    its top sees two large half-hour returns, a grid that holds it in one return sees none."""
    from scipy import stats as sps

    rng = np.random.default_rng(21)
    r = 1e-3 * rng.standard_normal(390)
    r[105:120] += 1.5e-3
    r[120:135] -= 1.5e-3
    q, close = quotes_from_returns(r)
    stats = realism(None, q, OPEN, close, 0.01)
    logp = np.log(BASE) + np.r_[0.0, np.cumsum(r)]
    by_grid = [sps.kurtosis(np.diff(logp[off::30]), bias=False) for off in range(30)]
    assert by_grid[0] > 3.0 and by_grid[15] < 0.0  # the grid from the open cuts the V at its top
    assert stats["kurtosis_30m"] == pytest.approx(np.mean(by_grid), abs=1e-6)
    five = [sps.kurtosis(np.diff(logp[off::5]), bias=False) for off in range(5)]
    assert stats["kurtosis_5m"] == pytest.approx(np.mean(five), abs=1e-6)
    assert stats["n_returns_30m"] == 13 and stats["n_returns_5m"] == 78
    assert stats["kurtosis_drop_1m_30m"] == pytest.approx(stats["kurtosis_1m"] - stats["kurtosis_30m"])


def test_leverage_effect_sign() -> None:
    """Volatility that rises after a fall: corr(r_t, r_{t+1}^2) < 0; i.i.d. returns: about 0."""
    rng = np.random.default_rng(13)
    z = rng.standard_normal(20_000)
    r = np.empty_like(z)
    r[0] = 1e-3 * z[0]
    for i in range(1, z.size):
        r[i] = 1e-3 * (1.0 - 0.8 * np.sign(r[i - 1])) * z[i]
    q, close = quotes_from_returns(r)
    lev = realism(None, q, OPEN, close, 0.01)["leverage"]
    assert len(lev) == 10 and lev[0] < -0.2 and abs(lev[5]) < 0.05
    q, close = quotes_from_returns(1e-3 * z)
    assert abs(realism(None, q, OPEN, close, 0.01)["leverage_mean"]) < 0.03


def test_depth_at_touch_vs_trade_size_and_median_spread() -> None:
    # 40 s with touch sizes 200/400 (mean 300), 20 s with 100/100; spread 2 ticks at mid 1000 = 20 bp
    quotes = pd.DataFrame({"time_ns": [OPEN, OPEN + 40 * S], "bid": [999, 999], "bid_qty": [200, 100],
                           "ask": [1001, 1001], "ask_qty": [400, 100]})  # fmt: skip
    trades = pd.DataFrame({"time_ns": OPEN + np.array([1, 2, 3]) * S, "price": 1000, "qty": [50, 100, 150]})
    s = realism(trades, quotes, OPEN, OPEN + 60 * S, 0.01)
    assert s["depth_touch_median"] == 300.0
    assert s["trade_size_median"] == 100.0
    assert s["depth_touch_to_trade_size"] == 3.0
    assert s["spread_median_bps"] == pytest.approx(20.0)


# --------------------------------------------------------------------------- order flow


def test_poisson_arrivals_have_cv_one_and_weibull_shape_one() -> None:
    rng = np.random.default_rng(14)
    t = np.cumsum(rng.exponential(0.5, 40_000) * S).astype(np.int64)
    assert gap_cv(t) == pytest.approx(1.0, abs=0.03)
    shape, scale = weibull_fit(np.diff(t) / S)
    assert shape == pytest.approx(1.0, abs=0.03) and scale == pytest.approx(0.5, rel=0.03)


def test_weibull_fit_recovers_a_bursty_shape() -> None:
    rng = np.random.default_rng(15)
    x = 2.0 * rng.weibull(0.5, 40_000)  # shape 0.5, scale 2: CV = sqrt(Gamma(5)/Gamma(3)^2 - 1) = sqrt(5)
    shape, scale = weibull_fit(x)
    assert shape == pytest.approx(0.5, rel=0.03) and scale == pytest.approx(2.0, rel=0.05)
    t = np.cumsum(x * S).astype(np.int64)
    assert gap_cv(t) == pytest.approx(math.sqrt(5), rel=0.1)
    assert weibull_fit(np.ones(20)) is None and weibull_fit(np.array([1.0, 2.0])) is None
    assert gap_cv(np.full(20, OPEN)) is None  # every gap zero


def _orders() -> pd.DataFrame:
    rows = [
        # 1: DAY buy rests at the bid (new resting, placement 0)
        (1 * S, 1, "a", "submit", "B", 99.0, 100, 100, "DAY"),
        # 2: DAY sell rests at the ask, replaced to 102 at 5 s (a new order and a cancel), canceled at 10 s
        (2 * S, 2, "a", "submit", "S", 101.0, 50, 50, "DAY"),
        (5 * S, 2, "a", "replaced", "S", 102.0, 50, 50, ""),
        (10 * S, 2, "a", "canceled", "S", None, 50, 0, "canceled"),
        # 3: IOC: never rests; its remainder cancel is not a cancel of a resting order
        (4 * S, 3, "b", "submit", "B", 101.0, 80, 80, "IOC"),
        (4 * S, 3, "b", "filled", "B", 101.0, 30, 50, "taker"),
        (4 * S, 3, "b", "canceled", "B", None, 50, 0, "ioc"),
        # 4: market order (no price): left out
        (6 * S, 4, "b", "submit", "S", None, 10, 10, "DAY"),
        (6 * S, 4, "b", "canceled", "S", None, 10, 0, "market"),
        # 5: marketable DAY limit completely filled on arrival: never rested
        (7 * S, 5, "b", "submit", "B", 101.0, 20, 20, "DAY"),
        (7 * S, 5, "b", "filled", "B", 101.0, 20, 0, "taker"),
        # 6: post-only sell two ticks behind the ask, canceled after 6 s
        (3 * S, 6, "c", "submit", "S", 103.0, 30, 30, "DAY/post_only"),
        (9 * S, 6, "c", "canceled", "S", None, 30, 0, "canceled"),
        # 7: a replace that ended the order (total qty at or below the filled qty): not a new order
        (8 * S, 1, "a", "replaced", "B", 99.0, 0, 0, "done"),
    ]
    frame = pd.DataFrame(rows, columns=ORDER_COLS)
    frame["time_ns"] += OPEN
    return frame


def test_constructed_order_table_gives_exact_flow_counts() -> None:
    orders = _orders()
    quotes = pd.DataFrame({"time_ns": [OPEN], "bid": [99], "bid_qty": [100], "ask": [101.0], "ask_qty": [50]})
    trades = pd.DataFrame({"time_ns": OPEN + np.array([4, 7]) * S, "price": [101, 101], "qty": [30, 20]})
    new = new_resting(orders)
    assert new["order_id"].tolist() == [1, 2, 6, 2]
    assert new["kind"].tolist() == ["submit", "submit", "submit", "replace"]
    f = orderflow(orders, trades, quotes)
    assert (f["n_new_resting"], f["n_replaces"], f["n_cancels"], f["n_executions"]) == (4, 1, 3, 2)
    assert f["cancels_per_new_order"] == 3 / 4  # explicit cancels of 2 and 6, plus the replace of 2
    assert f["explicit_cancels_per_new_order"] == 2 / 4
    assert f["executions_per_new_order"] == 2 / 4
    assert f["time_to_cancel_median_s"] == 5.5  # order 2: 10 - 5 (its replace); order 6: 9 - 3
    assert f["order_size_median"] == 50.0 and f["trade_size_median"] == 25.0
    # placement behind the touch (bid 99 / ask 101): 0, 0, 2, 1 ticks
    assert f["placement_median_ticks"] == 0.5 and f["placement_mean_ticks"] == 0.75
    assert f["placement_share_at_touch"] == 0.5 and f["placement_share_inside"] == 0.0
    assert f["new_order_gap_cv"] is None  # three gaps: too few to say
    json.dumps(f, allow_nan=False)


def test_orderflow_empty_inputs() -> None:
    f = orderflow(None, None, None)
    assert f["n_new_resting"] == 0 and f["cancels_per_new_order"] is None and f["exec_gap_cv"] is None
    assert orderflow(pd.DataFrame(columns=ORDER_COLS), None, None)["n_new_resting"] == 0


# --------------------------------------------------------------------------- intraday


def test_intraday_u_shape_of_volume_and_spread() -> None:
    close = OPEN + 390 * MINUTE_NS
    minutes = np.arange(390)
    qty = np.where(minutes < 30, 3, np.where(minutes >= 360, 2, 1))  # per minute: edges 3 and 2, middle 1
    trades = pd.DataFrame({"time_ns": OPEN + minutes * MINUTE_NS + 7 * S, "price": 1000, "qty": qty})
    # spread 40 bp in the edges, 20 bp in the middle (mid 1000 throughout)
    quotes = pd.DataFrame({"time_ns": [OPEN, OPEN + 30 * MINUTE_NS, close - 30 * MINUTE_NS],
                           "bid": [998, 999, 998], "bid_qty": 1, "ask": [1002, 1001, 1002], "ask_qty": 1})  # fmt: skip
    out = intraday(trades, quotes, OPEN, close)
    assert out["volume_first_ratio"] == 3.0 and out["volume_last_ratio"] == 2.0
    assert out["volume_u_shape"] == 2.5
    assert out["spread_first_ratio"] == pytest.approx(2.0) and out["spread_u_shape"] == pytest.approx(2.0)
    assert intraday(trades, quotes, OPEN, OPEN + 60 * MINUTE_NS)["volume_u_shape"] is None  # no middle


# --------------------------------------------------------------------------- reference ranges


def test_target_bounds() -> None:
    t = Target("x", "x", 0.6, 1.0, "")
    assert t.check(0.6) and t.check(1.0) and not t.check(0.59) and not t.check(1.01)
    assert t.check(None) is None and t.check(float("nan")) is None
    strict = Target("y", "y", 0.0, None, "", strict=True)
    assert not strict.check(0.0) and strict.check(1e-9) and strict.text == "> 0"
    assert BY_KEY["acf1_1m"].check(-0.1) and not BY_KEY["acf1_1m"].check(0.11)
    assert BY_KEY["cancels_per_new_order"].text == "0.6 to 1"
    g = grade({"kurtosis_1m": 3.0, "volume_u_shape": 5.0})
    assert g["kurtosis_1m"] is True and g["volume_u_shape"] is False and g["exec_gap_cv"] is None
    assert set(g) == {t.key for t in TARGETS}


def test_realism_carries_grades_and_table_marks_them() -> None:
    rng = np.random.default_rng(16)
    q, close = quotes_from_returns(1e-3 * rng.standard_normal(400))
    s = realism(None, q, OPEN, close, 0.01)
    assert s["grades"]["acf1_1m"] is True and s["grades"]["kurtosis_1m"] is False
    json.dumps(s, allow_nan=False)
    text = format_table({2: s, 1: {}})
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["statistic", "range"] and "seed 1" in lines[0].split("range")[1].split("seed 2")[0]
    acf_line = next(line for line in lines if line.startswith("acf1_1m"))
    assert acf_line.endswith(" ok") and "n/a" in acf_line
    assert lines[-2].split()[-2:] == ["0/13", f"{sum(bool(v) for v in s['grades'].values())}/13"]
