"""Issue 16 item 5: market rules as written, in regimes (``rules: current`` / ``rules: 2010``).

Hand-computed cases from the rule texts: LULD Plan Appendix A as amended (tiers; doubled bands at
the open for every price and at the close only for reference prices <= $3.00 since the 18th
Amendment), the aggressive-side-only price collar, and the market-wide circuit breakers of today
(Rule 80B 2013: 7/13/20 %, 15-minute halts before 3:25 pm) and of 2010 (Rule 80B 1998: 10/20/30 %
with halt times by time of day), triggered by the market index only.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from actors.commands import SetIndexLevel
from actors.exchange.safeguards import (
    BAND_WINDOW,
    DAY,
    HALTED,
    OPEN,
    REOPENING,
    SafeguardParams,
    Safeguards,
    mwcb_halt_min_for,
    rules_params,
)
from actors.messages import (
    AuctionImbalanceUpdated,
    OrderAccepted,
    OrderRejected,
    SubscribeAuctionInfo,
    SubscribeTradingStatus,
    TradingHalted,
)
from scenarios.schema import Scenario
from sim.clock import MINUTE, SECOND, US
from tests.helpers import Scripted
from tests.test_safeguards import REF, T0, run_market, sub

CLOSE = 390 * MINUTE  # session 0 .. 390 min stands for 9:30 .. 16:00


def guard_at(now: int, ref: int, **kw) -> Safeguards:
    g = Safeguards(SafeguardParams(collar_pct=0, **kw), "XYZ", 0, CLOSE, ref)
    g.poll(now)
    return g


# --------------------------------------------------------------------------- LULD windows and tiers


@pytest.mark.parametrize(
    ("now", "ref", "lower", "upper"),
    [
        (0, 10_000, 9_000, 11_000),  # 9:30, $100 tier 1: 5 % doubled = 10 %
        (15 * MINUTE - 1, 10_000, 9_000, 11_000),  # 9:44:59.999...
        (15 * MINUTE, 10_000, 9_500, 10_500),  # 9:45: 5 %
        (CLOSE - 25 * MINUTE, 10_000, 9_500, 10_500),  # 3:35, above $3: not doubled since the 18th amendment
        (CLOSE - 1, 10_000, 9_500, 10_500),
        (CLOSE - 25 * MINUTE - 1, 200, 160, 240),  # $2.00 at 3:34:59: 20 % = 40 ticks
        (CLOSE - 25 * MINUTE, 200, 120, 280),  # $2.00 at 3:35: doubled, 40 %
        (CLOSE - 25 * MINUTE, 300, 180, 420),  # $3.00 is "<= $3.00": 20 % doubled = 120 ticks
        (CLOSE - 25 * MINUTE, 301, 286, 316),  # $3.01: tier 1 5 % = 15.05 -> 15, not doubled
        (CLOSE - 10 * MINUTE, 50, 20, 80),  # $0.50: min($0.15, 75 % = 37.5) = 15 ticks, doubled 30
    ],
)
def test_luld_band_windows_and_tiers(now: int, ref: int, lower: int, upper: int) -> None:
    g = guard_at(now, ref)
    assert (g.lower, g.upper) == (lower, upper)


def test_tier_2_bands_and_closing_doubling_for_low_price() -> None:
    assert (guard_at(T0, 10_000, tier=2).lower, guard_at(T0, 10_000, tier=2).upper) == (9_000, 11_000)  # 10 %
    g = guard_at(CLOSE - 5 * MINUTE, 10_000, tier=2)
    assert (g.lower, g.upper) == (9_000, 11_000)  # not doubled at the close above $3
    g = guard_at(CLOSE - 5 * MINUTE, 100, tier=2)  # $1.00: 20 % doubled
    assert (g.lower, g.upper) == (60, 140)


def test_closing_window_starts_at_3_35() -> None:
    g = guard_at(CLOSE - 30 * MINUTE, 200)
    assert g.timers(CLOSE - 30 * MINUTE) == [(BAND_WINDOW, CLOSE - 25 * MINUTE)]  # the next band change: 3:35


# --------------------------------------------------------------------------- aggressive-side collar


def collar_guard() -> Safeguards:
    g = Safeguards(SafeguardParams(luld=False, collar_pct=10), "XYZ", 0, CLOSE, REF)
    g.poll(T0)
    return g


def test_collar_refuses_only_the_aggressive_side() -> None:
    g = collar_guard()
    g.on_touch(9_900, 10_100)
    # buy: at most 10 % above the offer: 10_100 + 1_010 = 11_110
    assert g.check_order("B", 11_110) == (None, 11_110)
    assert g.check_order("B", 11_111) == ("price collar", None)
    # sell: at least 10 % below the bid: 9_900 - 990 = 8_910
    assert g.check_order("S", 8_910) == (None, 8_910)
    assert g.check_order("S", 8_909) == ("price collar", None)
    # resting away from the touch (deep bids, stub offers) is allowed
    assert g.check_order("B", 1) == (None, 1)
    assert g.check_order("S", 99_999) == (None, 99_999)
    assert g.check_replace("B", 11_111) == "price collar" and g.check_replace("B", 5_000) is None
    # fast path agrees with the rule
    assert (g.buy_lo, g.buy_hi, g.sell_lo) == (0, 11_110, 8_910)


def test_collar_without_an_opposite_side_uses_the_reference() -> None:
    g = collar_guard()
    g.on_touch(9_900, None)
    assert g.check_order("B", 11_000) == (None, 11_000)  # 10_000 + 10 %
    assert g.check_order("B", 11_001) == ("price collar", None)


def test_exchange_accepts_stub_quotes_and_refuses_a_fat_finger_sell() -> None:
    maker = Scripted("maker", [(T0, sub(1, "B", 100, 9_990)), (T0, sub(2, "S", 100, 10_010))])
    stubs = Scripted("stubs", [(T0 + SECOND, sub(1, "B", 100, 100)), (T0 + SECOND, sub(2, "S", 100, 99_999))])
    # 9_990 - 999 = 8_991 is the lowest sell allowed
    fat = Scripted("fat", [(T0 + 2 * SECOND, sub(1, "S", 100, 8_990)), (T0 + 3 * SECOND, sub(2, "S", 10, 8_991))])
    sg = SafeguardParams(luld=False)
    run_market(maker, stubs, fat, safeguards=sg, until=T0 + MINUTE)
    assert stubs.received(OrderAccepted) == [OrderAccepted(stubs.oid(1)), OrderAccepted(stubs.oid(2))]
    assert fat.received(OrderRejected) == [OrderRejected(fat.oid(1), "price collar")]
    assert fat.received(OrderAccepted) == [OrderAccepted(fat.oid(2))]


# --------------------------------------------------------------------------- market-wide breakers


@pytest.mark.parametrize(
    ("rule", "level", "minutes_to_close", "halt"),
    [
        ("2013", 1, 360, 15),  # 10:00
        ("2013", 2, 35.01, 15),  # just before 3:25 pm
        ("2013", 1, 35, 0),  # 3:25 pm: no halt
        ("2013", 3, 5, DAY),
        ("1998", 1, 121, 60),  # 1:59 pm: 1 hour
        ("1998", 1, 120, 30),  # 2:00 pm: 30 minutes
        ("1998", 1, 91, 30),
        ("1998", 1, 90, 0),  # 2:30 pm: none
        ("1998", 2, 181, 120),  # 12:59 pm: 2 hours
        ("1998", 2, 180, 60),  # 1:00 pm: 1 hour
        ("1998", 2, 120, DAY),  # 2:00 pm: closes for the day
        ("1998", 3, 300, DAY),
    ],
)
def test_mwcb_halt_times(rule: str, level: int, minutes_to_close: float, halt: float) -> None:
    assert mwcb_halt_min_for(SafeguardParams(mwcb_rule=rule), level, minutes_to_close) == halt  # type: ignore[arg-type]


def test_a_single_stock_move_triggers_luld_only() -> None:
    g = Safeguards(SafeguardParams(luld=False, collar_pct=0), "XYZ", 0, CLOSE, REF)
    g.poll(T0)
    assert list(g.on_trade(5_000, T0)) == [] and g.state == OPEN  # -50 % in one stock: no market-wide halt
    assert g.on_index(-699, T0) == []
    (ev,) = g.on_index(-700, T0 + 1)  # S&P 500 -7 %: level 1, 15 minutes
    assert ev == TradingHalted("XYZ", "mwcb level 1", T0 + 1, T0 + 1 + 15 * MINUTE) and g.state == HALTED
    assert g.on_index(-800, T0 + 2) == []  # level 1 only once a day


def test_2010_regime() -> None:
    base = SafeguardParams()
    p = rules_params("2010", base)
    assert p is not None and not p.luld and p.collar_pct == 0 and p.mwcb_levels_pct == (10.0, 20.0, 30.0)
    assert rules_params("current", base) is base and rules_params("2010", None) is None
    with pytest.raises(ValueError):
        rules_params("1929", base)
    g = Safeguards(p, "XYZ", 0, CLOSE, REF)
    g.poll(T0)
    assert (g.lower, g.upper) == (0, 1 << 62)  # no LULD
    assert g.check_order("B", 99_999) == (None, 99_999)  # no collar: stub quotes and fat fingers alike
    assert g.on_index(-999, T0) == []  # -9.99 %: nothing in 2010
    (ev,) = g.on_index(-1000, T0)  # 9:50 am, DJIA -10 %: 1 hour
    assert ev.resume_ns == T0 + 60 * MINUTE


def test_scenario_rules_field() -> None:
    assert Scenario.model_validate({"name": "x"}).rules == "current"
    assert Scenario.model_validate({"name": "x", "rules": "2010"}).rules == "2010"
    with pytest.raises(ValidationError, match="rules"):
        Scenario.model_validate({"name": "x", "rules": "1987"})


# --------------------------------------------------------------------------- index feed (set_index)


def test_set_index_params_truncate_toward_zero_to_whole_basis_points() -> None:
    from actors.director import index_command

    assert index_command({"change_pct": -7}).change_bp == -700
    assert index_command({"change_pct": -6.999}).change_bp == -699  # not yet 7 %: no level 1
    # S&P 500 closed at 5,000.00: 4,650.00 is -7.00 %, 4,650.01 is -6.9998 % -> -699 bp
    assert index_command({"level": 4650, "previous_close": 5000}) == SetIndexLevel(-700, 465_000)
    assert index_command({"level": 4650.01, "previous_close": 5000}).change_bp == -699
    assert index_command({"level": 5100, "previous_close": 5000}).change_bp == 200


def test_set_index_is_validated() -> None:
    from scenarios.schema import ScenarioError, load

    for bad, says in [
        ({}, "exactly one of change_pct, level"),
        ({"level": 4000}, "level needs previous_close"),
        ({"change_pct": -7, "previous_close": 5000}, "previous_close goes with level"),
        ({"change_pct": -120}, "greater than -100"),
    ]:
        with pytest.raises(ScenarioError, match=says):
            load("quick", {"events": [{"at": "09:32", "do": "set_index", "params": bad}]})


def test_index_fall_halts_the_market_in_a_run_and_reopens_after_15_minutes() -> None:
    """A single stock's move triggers LULD only; the index feed trips the market-wide breaker:
    -6.99 % nothing, -7.2 % (4,640 against 5,000) level 1 for 15 minutes, -7.5 % later nothing
    (level 1 once a day)."""
    from desksim import api
    from scenarios.schema import load

    events = [
        {"at": "09:32", "do": "set_index", "params": {"change_pct": -6.99}},
        {"at": "09:33", "do": "set_index", "params": {"level": 4640, "previous_close": 5000}},
        {"at": "09:50", "do": "set_index", "params": {"change_pct": -7.5}},
    ]
    scenario = load("quick", {"session": {"open": "09:30", "close": "10:30"}, "events": events})
    res = api.run_scenario(api.shorten(scenario, 1260), seed=3)
    halts = res.frames["halts"]
    assert halts["event"].tolist() == ["halted", "resumed"]
    t933 = (9 * 60 + 33) * MINUTE
    halted, resumed = halts["time_ns"].tolist()
    assert halts["reason"].iloc[0] == "mwcb level 1" and 0 <= halted - t933 < SECOND  # one network hop
    assert resumed - halted == 15 * MINUTE
    detail = res.frames["scenario_events"]["detail"].tolist()
    assert detail == ["index -699 bp", "index level 4640 -720 bp", "index -750 bp"]


def test_index_level_3_ends_the_day_for_every_symbol() -> None:
    from actors.commands import SetIndexLevel as Index

    index = Scripted("index", [(T0, lambda a: Index(-2_000))])
    w = Scripted("w", [(0, lambda a: SubscribeTradingStatus("XYZ"))])
    run_market(index, w, safeguards=SafeguardParams(collar_pct=0), until=T0 + MINUTE)
    (halt,) = w.received(TradingHalted)
    assert halt.reason == "mwcb level 3" and halt.resume_ns is None


# --------------------------------------------------------------------------- auction collars and extensions


def paused_at_lower(now: int = T0) -> Safeguards:
    """$100 reference, tier 1 after 9:45: bands 9_500-10_500; the offer sits at the lower band for
    15 s: a LULD pause whose Auction Reference Price is the lower band, 9_500."""
    g = Safeguards(SafeguardParams(collar_pct=0), "XYZ", 0, CLOSE, REF)
    g.poll(now)
    g.on_top(9_400, 9_500, now)
    (ev,) = g.poll(now + 15 * SECOND)
    assert isinstance(ev, TradingHalted) and ev.reason == "luld pause"
    return g


def test_auction_collars_are_the_band_percentage_around_the_band_that_paused() -> None:
    g = paused_at_lower()
    # 5 % of $95.00 = 475 ticks either side of 9_500
    assert g.auction_collar == (9_500, 9_025, 9_975)
    g.halt(T0 + 16 * SECOND, "scenario halt", None)  # a regulatory halt: no collars
    assert g.auction_collar is None


def test_auction_outside_the_collar_extends_the_pause_5_minutes_and_widens_that_side() -> None:
    g = paused_at_lower()
    reopen = T0 + 15 * SECOND + 5 * MINUTE
    g.poll(reopen)
    assert g.auction_due
    assert not g.extend_auction(reopen, 9_025, 100)  # at the collar: goes ahead
    assert not g.extend_auction(reopen, 8_000, 0)  # nothing would execute: no extension
    assert g.extend_auction(reopen, 9_024, 100)  # one tick below the lower collar
    assert g.auction_collar == (9_500, 8_550, 9_975) and g.extensions == 1  # lower side widened by 475
    assert not g.auction_due and g.halted and g.resume_at == reopen + 5 * MINUTE
    assert (REOPENING, reopen + 5 * MINUTE) in g.timers(reopen)
    later = reopen + 5 * MINUTE
    g.poll(later)
    assert g.extend_auction(later, 10_000, 50)  # above the upper collar now: upper widens
    assert g.auction_collar == (9_500, 8_550, 10_450) and g.extensions == 2
    g.poll(later + 5 * MINUTE)
    assert not g.extend_auction(later + 5 * MINUTE, 10_000, 50)
    g.resume(later + 5 * MINUTE, 10_000, 50)
    assert g.auction_collar is None and g.extensions == 0


def test_extension_past_the_close_leaves_the_symbol_halted() -> None:
    g = paused_at_lower(CLOSE - 30 * MINUTE)  # 3:30: $100 bands not doubled
    reopen = CLOSE - 30 * MINUTE + 15 * SECOND + 5 * MINUTE
    g.poll(reopen)
    g.resume_at = reopen  # (as if the pause had started later)
    assert g.extend_auction(CLOSE - 2 * MINUTE, 8_000, 100)
    assert g.halted and g.resume_at == 1 << 62


def test_exchange_extends_the_pause_and_publishes_indicative_price_and_imbalance() -> None:
    """A pause at the lower band (9_500; collars 9_025-9_975; the reference stays 10_000, no trade).
    Resting: buy 100 @ 9_400, sell 1_000 @ 9_500. During the pause: buy 100 @ 9_000, sell 300 @
    8_900. D(p) = 200 up to 9_000, 100 up to 9_400; S(p) = 300 from 8_900, 1_300 from 9_500: the
    most volume, 200, for p in 8_900..9_000 with the same imbalance (-100), and 9_000 is closest
    to the reference: indicative 9_000, 200 paired, 100 more to sell. Outside the collars: the
    pause is extended 5 minutes and the lower collar widens by 475 to 8_550; then the auction
    goes ahead at 9_000. A subscriber sees the indicative price and the imbalance each second
    they change."""
    lat = US
    bids = Scripted("bids", [(T0, sub(1, "B", 100, 9_400))])
    t1 = T0 + SECOND
    seller = Scripted("seller", [(t1, sub(1, "S", 1_000, 9_500))])  # offer at the lower band: limit state
    pause_t = t1 + lat + 15 * SECOND
    during = pause_t + MINUTE
    buyer = Scripted("buyer", [(during, sub(1, "B", 100, 9_000))])
    dumper = Scripted("dumper", [(during + 10 * SECOND, sub(1, "S", 300, 8_900))])
    info = Scripted("info", [(0, lambda a: SubscribeAuctionInfo("XYZ"))])
    _ex, rec = run_market(bids, seller, buyer, dumper, info, safeguards=SafeguardParams(collar_pct=0),
                          until=pause_t + 11 * MINUTE)  # fmt: skip
    halts = rec.tables["halts"].frame()
    assert halts["event"].tolist() == ["limit_state_entered", "halted", "extended", "resumed"]
    extended = halts[halts["event"] == "extended"].iloc[0]
    assert extended["time_ns"] == pause_t + 5 * MINUTE
    assert extended["reason"] == "indicative 9000 outside collars 9025-9975"
    resumed = halts[halts["event"] == "resumed"].iloc[0]
    assert resumed["time_ns"] == pause_t + 10 * MINUTE and resumed["price"] == 9_000
    updates = info.received(AuctionImbalanceUpdated)
    crossing = [u for u in updates if u.paired_qty]
    first = crossing[0]
    assert (first.indicative_price, first.paired_qty, first.imbalance_qty, first.imbalance_side) == (
        9_000,
        200,
        100,
        "S",
    )
    assert (first.lower_collar, first.upper_collar, first.extensions) == (9_025, 9_975, 0)
    assert first.reopen_ns == pause_t + 5 * MINUTE
    assert 0 < first.time_ns - (during + 10 * SECOND) <= SECOND + lat  # within the next publication
    after = [u for u in updates if u.extensions == 1]
    assert after and (after[0].lower_collar, after[0].reopen_ns) == (8_550, pause_t + 10 * MINUTE)
    assert all(u.time_ns < pause_t + 10 * MINUTE for u in updates)  # the feed stops at the reopening
    times = [u.time_ns for u in updates]
    assert times == sorted(set(times))  # at most one per second, only when something changed
    assert rec.tables["auction_info"].frame()["indicative_price"].notna().all()
