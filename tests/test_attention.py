"""Price alerts (actors/attention.py): the alerter watches the tape, alerted traders look again."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from actors.attention import PriceAlerter, PriceAlertParams
from actors.background import NoiseParams, NoiseTrader
from actors.messages import PriceAlert
from actors.rolling import RollingRange
from sim.clock import SECOND, US
from tests.helpers import Scripted
from tests.test_safeguards import CLOSE, T0, params, run_market, sub

WIDE_BANDS = params(reference_update_pct=50)


def prints(*steps):
    """A seller and a buyer that trade 100 shares at each ``(t_ns, price)``."""
    seller = Scripted("seller", [(t, sub(i + 1, "S", 100, p)) for i, (t, p) in enumerate(steps)])
    buyer = Scripted("buyer", [(t + SECOND // 10, sub(i + 1, "B", 100, p)) for i, (t, p) in enumerate(steps)])
    return seller, buyer


def alerts_seen(*steps, **alert_params):
    alerter = PriceAlerter("alerts", "XYZ", PriceAlertParams(**alert_params), 10_000, 0, CLOSE)
    audience, bystander = Scripted("noise-1"), Scripted("mm-1")
    _ex, _rec = run_market(
        alerter, audience, bystander, *prints(*steps), safeguards=WIDE_BANDS, until=T0 + 5 * 60 * SECOND
    )
    assert not bystander.received(PriceAlert)  # not in the audience
    return audience.received(PriceAlert), alerter


def test_a_fast_fall_alerts_the_audience_once_per_cooldown():
    """Prints at 100.00, 99.40, 98.80 and 98.20 ten seconds apart: the third spans 1.2 % of the
    window's high and alerts "down"; the fourth (1.8 %) falls inside the cool-down."""
    steps = [(T0 + k * 10 * SECOND, 10_000 - 60 * k) for k in range(4)]
    seen, alerter = alerts_seen(*steps, move_pct=1.0, window_s=60, cooldown_s=60)
    assert [(a.direction, round(a.move_pct, 2), a.symbol) for a in seen] == [("down", 1.2, "XYZ")]
    assert [t for t, _, _ in alerter.alerts] == [steps[2][0] + SECOND // 10 + US]  # the buyer prints, 1 us on


def test_a_slow_fall_and_a_rise_are_told_apart():
    """The same 1.2 % spread over 80 s never spans 1 % within a 60 s window: no alert; a fast
    rise alerts "up"."""
    slow = [(T0 + k * 40 * SECOND, 10_000 - 60 * k) for k in range(3)]
    assert alerts_seen(*slow, move_pct=1.0, window_s=60)[0] == []
    rise = [(T0 + k * 5 * SECOND, 10_000 + 60 * k) for k in range(3)]
    assert [a.direction for a in alerts_seen(*rise, move_pct=1.0, window_s=60)[0]] == ["up"]


def test_an_alerted_noise_trader_looks_again_and_can_panic():
    """A noise trader with no arrivals of its own answers a "down" alert with one marketable sell
    (``alert_follow`` 1, ``alert_market_prob`` 1) within its reaction time; one with
    ``alert_prob`` 0 does nothing."""
    book = Scripted("book", [(T0, sub(1, "B", 500, 9_990)), (T0, sub(2, "S", 500, 10_010))])
    alert = PriceAlert("XYZ", 2.0, "down", 60.0)
    panicky = NoiseTrader(
        "noise-1",
        "XYZ",
        NoiseParams(
            rate_per_hour=0, market_limit_ticks=5, alert_prob=1, alert_react_s=1, alert_market_prob=1, alert_follow=1
        ),
        10_000,
        0,
        CLOSE,
    )
    deaf = NoiseTrader("noise-2", "XYZ", NoiseParams(rate_per_hour=0, market_limit_ticks=5), 10_000, 0, CLOSE)
    told = [Scripted(f"tell-{n}", [(T0 + SECOND, lambda a: alert)], dst=n) for n in ("noise-1", "noise-2")]
    _ex, rec = run_market(book, panicky, deaf, *told, safeguards=WIDE_BANDS, until=T0 + 60 * SECOND)
    trades = rec.tables["trades"].frame()
    assert trades["taker"].tolist() == ["noise-1"]
    assert trades["aggressor_side"].tolist() == ["S"] and trades["price"].tolist() == [9_990]
    assert T0 + SECOND < int(trades["time_ns"].iloc[0]) < T0 + 30 * SECOND
    assert not deaf.open_orders and deaf.position == 0


def test_attention_is_finite_alerts_inside_the_refractory_period_are_ignored():
    """Alerts at 1 s, 21 s and 71 s to two panicky noise traders (no arrivals of their own, every
    alert answered with one marketable sell of 100 within about a second): the one with a
    60-second refractory period answers the first and the third (the second comes 20 s after an
    answer), the one without answers all three."""
    book = Scripted("book", [(T0, sub(1, "B", 1_000, 9_990)), (T0, sub(2, "S", 1_000, 10_010))])
    alert = PriceAlert("XYZ", 2.0, "down", 60.0)
    answered_at = (1, 21, 71)

    def panicky(name, refractory_s):
        kw = dict(min_lots=1, max_lots=1, alert_prob=1, alert_react_s=1, alert_market_prob=1, alert_follow=1)
        return NoiseTrader(
            name,
            "XYZ",
            NoiseParams(rate_per_hour=0, market_limit_ticks=5, alert_refractory_s=refractory_s, **kw),
            10_000,
            0,
            CLOSE,
        )

    tired, eager = panicky("noise-1", 60.0), panicky("noise-2", 0.0)
    told = [
        Scripted(f"tell-{n}", [(T0 + s * SECOND, lambda a: alert) for s in answered_at], dst=n)
        for n in ("noise-1", "noise-2")
    ]
    _ex, rec = run_market(book, tired, eager, *told, safeguards=WIDE_BANDS, until=T0 + 120 * SECOND)
    trades = rec.tables["trades"].frame()
    assert (trades["aggressor_side"] == "S").all()
    assert trades["taker"].value_counts().to_dict() == {"noise-2": 3, "noise-1": 2}
    tired_times = sorted((trades.loc[trades["taker"] == "noise-1", "time_ns"] - T0) // SECOND)
    assert tired_times[0] < 21 and tired_times[1] >= 71, tired_times
    assert tired.position == -200 and eager.position == -300


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(1, 30)), max_size=60), st.integers(1, 40))
def test_rolling_range_is_the_high_and_low_of_the_window(steps, window):
    """Against brute force: after each price (times non-decreasing), the high and low of the prices
    added at or after ``now - window``."""
    rolling, seen, t = RollingRange(window), [], 0
    for gap, price in steps:
        t += gap
        rolling.add(t, price)
        seen.append((t, price))
        inside = [p for s, p in seen if s >= t - window]
        assert rolling.high_low(t) == (max(inside), min(inside))
    assert RollingRange(window).high_low(t) is None


def test_the_emergent_flash_crash_example_loads_and_runs():
    """docs/examples/flash_crash_emergent.yaml (the crash candidate the docs measure) is a valid
    scenario: its alert service, guarded makers and HFT makers assemble and trade."""
    from pathlib import Path

    from desksim import api
    from scenarios.schema import load

    path = Path(__file__).resolve().parents[1] / "docs" / "examples" / "flash_crash_emergent.yaml"
    scenario = load(path)
    kinds = {group.kind for group in scenario.agents}
    assert {"price_alert", "as_maker", "ladder_maker", "noise", "value", "program"} <= kinds
    assert not any(event.do == "withdraw_makers" for event in scenario.events)  # left to the makers
    res = api.run(path, seed=1, duration_s=300)
    assert res.summary["trades"] > 100
