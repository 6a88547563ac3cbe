"""Issue 16: the faithful 2010 crash (scenarios/flash_crash.yaml and its counterfactual
flash_crash_current.yaml).

What the scenario promises and these tests hold it to:
- the program is the 2010 Sell Algorithm's: 9 % of the trailing minute's volume, market orders, no
  price and no time limit, and it is the only scripted event (no maker withdrawal, no price set);
- the counterfactual is the same file under today's rules;
- (slow) the program trades at that pace from its start, and the level's fall is the program's:
  on a seed where the minute VWAPs fall 5 %, the same seed without its program keeps its level,
  and under today's rules LULD limit states hold it.

The shares over many runs are measured by benchmarks/crash_shares.py (docs/architecture.md, "The
faithful crash"), not asserted here: a test cannot run 100 days.
"""

from __future__ import annotations

import pytest

from desksim import api
from scenarios.schema import ScenarioError, load, parse, read_yaml, resolve
from scenarios.variants import write_without_action
from sim.clock import MINUTE

FAITHFUL, CURRENT = "flash_crash", "flash_crash_current"


def _program(name: str):
    (program,) = [a for a in load(name).agents if a.kind == "program"]
    return program


def test_the_counterfactual_is_the_faithful_crash_under_todays_rules():
    base, current = load(FAITHFUL), load(CURRENT)
    assert base.rules == "2010" and current.rules == "current"
    assert base.model_dump(exclude={"name", "description", "rules"}) == current.model_dump(
        exclude={"name", "description", "rules"}
    )


@pytest.mark.parametrize("name", [FAITHFUL, CURRENT])
def test_the_program_is_the_2010_sell_algorithm_and_the_only_script(name):
    p = _program(name).params
    assert (p.side, p.pov, p.pace) == ("S", 0.09, "trailing")
    assert p.through_ticks is None and p.max_duration_s is None  # no price limit, no time limit
    scenario = load(name)
    assert [(e.do, e.target) for e in scenario.events] == [("start_program", "seller")]
    # the attention that makes volume in a fall is the crowd's own answer to the move
    alerts = [a for a in scenario.agents if a.kind == "price_alert"]
    assert len(alerts) == 1 and alerts[0].params.audience == "noise*"


def test_anchors_under_x_keys_are_the_files_own():
    """The scenario keeps the makers' shared guards under ``x-`` keys (YAML anchors merged with
    ``<<:``): the keys are dropped before validation, every agent gets the merged values, and any
    other unknown top-level key is still refused."""
    data = read_yaml(resolve(FAITHFUL))
    assert {"x-maker-guards", "x-hft"} <= set(data)
    scenario = parse(data)
    hft = [a for a in scenario.agents if a.name.startswith("hft")]
    assert len(hft) == 3 and all(a.params.flow_unload_either_side for a in hft)
    assert [a.params.max_half_spread_ticks for a in hft] == [4, 6, 8]
    guards = data["x-maker-guards"]
    for agent in scenario.agents:
        if agent.kind in ("as_maker", "ladder_maker"):
            assert agent.params.toxic_imbalance == guards["toxic_imbalance"], agent.name
            assert agent.params.flow_impact_ticks == guards["flow_impact_ticks"], agent.name
    with pytest.raises(ScenarioError, match="y-extra: unknown field"):
        parse({**data, "y-extra": 1})


def _assert_trades_at_its_pace(trades, open_ns: int) -> None:
    """Five minutes past 11:00: the seller has sold, only after 11:00, and no more than about 9 %
    of the volume (its clips are sized on the last minute's volume, so up to 9/91 of the volume it
    leaves to others, plus one clip's rounding). Seed 1: 3,000 of 37,500 shares, 8.0 %. (Until
    2026-12-07 a run of its own to 11:05 on seed 3, 9.4 %; 86 s of CI for what this run has.)"""
    start = 90 * MINUTE  # 11:00
    rel = trades["time_ns"] - open_ns
    seller = trades["taker"] == "seller"
    assert seller.any() and rel[seller].min() >= start
    window = (rel >= start) & (rel < start + 5 * MINUTE)
    share = trades.loc[window & seller, "qty"].sum() / trades.loc[window, "qty"].sum()
    assert 0.06 < share < 0.12, share


@pytest.mark.slow
def test_a_crash_of_the_faithful_program_is_the_programs_and_todays_rules_hold_it(tmp_path):
    """Seed 1 (the first seed tried): with its program the *level* falls, the minute VWAPs 5 % or
    more within 15 minutes, starting after 11:00; the same seed without the program keeps its level
    (minute VWAPs within 3 %). Without the program single prints can still wick through a thin
    book (this seed: a 17-second print fall of 9.7 %, VWAPs 1.2 %), which is why the level is what
    this asserts. Under today's rules the same day's fall is held by LULD limit states (seed 1: 5
    of them, prints 6.9 % and VWAPs 2.4 % down against 20.5 % and 8.1 %)."""
    seed = 1
    run = api.run(FAITHFUL, seed=seed)
    _assert_trades_at_its_pace(run.trades, load(FAITHFUL).session.open_ns)
    crash = run.summary["worst_fall"]
    calm = api.run(write_without_action(FAITHFUL, "start_program", tmp_path), seed=seed).summary["worst_fall"]
    assert crash["vwap_fall_15m_pct"] >= 5.0 and crash["fall_15m_start_s"] >= 90 * 60, crash
    assert crash["fall_15m_pct"] >= crash["vwap_fall_15m_pct"], crash
    assert calm["vwap_fall_15m_pct"] < 3.0, calm
    today = api.run(CURRENT, seed=seed)
    held = today.summary["worst_fall"]
    assert held["fall_15m_pct"] < crash["fall_15m_pct"] and held["vwap_fall_15m_pct"] < crash["vwap_fall_15m_pct"]
    halts = today.frames["halts"]
    assert (halts["event"] == "limit_state_entered").sum() >= 1
