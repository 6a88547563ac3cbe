"""Scenario timelines: validation, and the director firing events at times and on conditions."""

import pandas as pd
import pytest

from desksim import api
from scenarios.schema import ScenarioError, load

QUICK_EVENTS = [
    {"at": "09:32", "do": "withdraw_makers", "target": "mm", "params": {"duration_s": 60}},
    {"after_s": 240, "do": "latency", "params": {"from": "retail", "to": "exchange", "factor": 10, "duration_s": 30}},
    {"at": "09:35", "do": "fat_finger", "target": "finger", "params": {"side": "B", "qty": 5000}},
]


def quick_with(events, agents_extra=()):
    base = load("quick")
    agents = [a.model_dump(by_alias=True) for a in base.agents] + list(agents_extra)
    return load("quick", {"events": events, "agents": agents})


def test_events_fire_and_are_recorded():
    scenario = quick_with(QUICK_EVENTS, [{"kind": "scripted", "name": "finger"}])
    res = api.run_scenario(scenario, seed=3)
    events = res.frames["scenario_events"]
    assert events["action"].tolist() == ["withdraw_makers", "return_makers", "latency", "latency_restore", "fat_finger"]
    t0 = scenario.session.open_ns
    assert events["time_ns"].tolist()[:2] == [t0 + 120 * 10**9, t0 + 180 * 10**9]
    orders = res.orders
    mm = orders[orders["owner"] == "mm"]
    # the maker sends nothing new while withdrawn (a minute after the command reached it)
    quiet = mm[(mm["time_ns"] > t0 + 121 * 10**9) & (mm["time_ns"] < t0 + 180 * 10**9)]
    assert set(quiet["event"]) <= {"canceled", "filled"}
    assert (mm["time_ns"] > t0 + 181 * 10**9).any()  # and comes back
    finger = orders[(orders["owner"] == "finger") & (orders["event"] == "submit")]
    assert finger["qty"].tolist() == [5000] and pd.isna(finger["price"]).all()


def test_conditional_event_fires_once_when_price_moves():
    scenario = quick_with(
        [
            {"when": {"price_change_pct": -0.1}, "do": "withdraw_makers", "target": "mm"},
            {"at": "09:33", "do": "fat_finger", "target": "finger", "params": {"side": "S", "qty": 20000}},
        ],
        [{"kind": "scripted", "name": "finger"}],
    )
    res = api.run_scenario(scenario, seed=3)
    events = res.frames["scenario_events"]
    assert events["action"].tolist() == ["fat_finger", "withdraw_makers"]
    fired = events["time_ns"].iloc[1]
    trades = res.trades
    first = trades["price"].iloc[0]
    crossing = trades[trades["price"] <= first * 0.999]["time_ns"].iloc[0]
    assert 0 <= fired - crossing < 10**7  # fired by the first print through the threshold


def test_fundamental_shock_moves_the_world_before_the_run():
    from desksim.assembly import build
    from sim.record import Recorder

    shocked = load("baseline", {"events": [{"at": "12:00", "do": "fundamental_jump", "params": {"pct": -5}}]})
    plain = build(load("baseline"), Recorder(), 5).world.fundamental
    moved = build(shocked, Recorder(), 5).world.fundamental
    noon = shocked.events[0].time_ns(shocked.session.open_ns)
    assert moved.value_at(noon - 10**9) == plain.value_at(noon - 10**9)
    assert moved.value_at(noon + 10**9) == pytest.approx(plain.value_at(noon + 10**9) * 0.95, rel=0.01)


@pytest.mark.parametrize(
    "event, expected",
    [
        ({"do": "halt"}, "exactly one of at, after_s, when"),
        ({"at": "10:00", "after_s": 5, "do": "halt"}, "exactly one of at, after_s, when"),
        ({"at": "25:00", "do": "halt"}, "events.0.at"),
        ({"at": "10:00", "do": "explode"}, "events.0.do"),
        ({"at": "10:00", "do": "fat_finger", "params": {"side": "B"}}, "params.qty: Field required"),
        ({"at": "10:00", "do": "latency", "params": {"from": "a", "to": "b", "factor": -1}}, "params.factor"),
        ({"at": "10:00", "do": "halt", "params": {"lenght": 3}}, "params.lenght: unknown field"),
        ({"when": {"price_change_pct": -3}, "do": "fundamental_jump", "params": {"pct": 1}}, "needs a time"),
    ],
)
def test_bad_events_name_the_field(event, expected):
    with pytest.raises(ScenarioError) as info:
        load("quick", {"events": [event]})
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


# -- validation checks every reference the run would trip on (issue 14 item 2) ----------------------
@pytest.mark.parametrize(
    "change, expected",
    [
        # no target: the director broadcast WithdrawQuotes to every actor and a noise trader crashed the run
        ({"events": [{"at": "09:32", "do": "withdraw_makers"}]}, "events.0.target: missing"),
        ({"events": [{"at": "09:32", "do": "withdraw_makers", "target": "mm-*"}]}, "'mm-*' matches no actor"),
        (
            {"events": [{"at": "09:32", "do": "withdraw_makers", "target": "noise-*"}]},
            "cannot handle WithdrawQuotes and ResumeQuotes sent by withdraw_makers (actors that handle "
            "WithdrawQuotes and ResumeQuotes: mm)",
        ),
        ({"events": [{"at": "09:32", "do": "start_program", "target": "mm"}]}, "cannot handle StartProgram"),
        ({"events": [{"at": "09:00", "do": "halt"}]}, "events.0.at: 09:00 is outside the session (09:30-09:40)"),
        ({"events": [{"after_s": 900, "do": "halt"}]}, "events.0.after_s: 900.0 s after the open is outside"),
        (
            {"events": [{"when": {"price_change_pct": 1, "not_before": "11:00"}, "do": "halt"}]},
            "events.0.when.not_before: 11:00 is outside the session",
        ),
        (
            {"network.links.0.to": "exchnage"},
            "network.links.0.to: unknown location 'exchnage' (locations: colo, exchange, retail)",
        ),
        (
            {"events": [{"at": "09:32", "do": "latency", "params": {"from": "colo", "to": "exchnage", "factor": 2}}]},
            "events.0.params.to: unknown location 'exchnage'",
        ),
        ({"events": [{"at": "09:32", "do": "halt", "target": "exchange"}]}, "events.0.target: halt takes no target"),
        ({"agents.1.name": "exchange", "agents.1.count": 1}, "two actors would be named exchange"),
    ],
)
def test_validation_catches_broken_references(change, expected):
    with pytest.raises(ScenarioError) as info:
        load("quick", change)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_validation_lists_every_problem_at_once():
    change = {
        "events": [
            {"at": "09:00", "do": "withdraw_makers", "target": "mm"},
            {"at": "09:33", "do": "start_program"},
            {"at": "09:34", "do": "fat_finger", "target": "nobody", "params": {"qty": 5}},
        ],
        "network.links.0.from": "cloo",
    }
    with pytest.raises(ScenarioError) as info:
        load("quick", change)
    msg = str(info.value)
    assert "4 problems: " in msg and "(and " not in msg
    for part in ("network.links.0.from", "events.0.at", "events.1.target: missing", "events.2.target: 'nobody'"):
        assert part in msg, msg


def test_unknown_parameter_names_the_valid_ones():
    with pytest.raises(ScenarioError) as info:
        load("quick", {"agents.1.params.rate_per_hr": 3, "agents.0.params.speed": 1})
    msg = str(info.value)
    assert "agents.1.params.rate_per_hr: unknown field (valid: " in msg and "rate_per_hour" in msg, msg
    assert "agents.0.params.speed: unknown field (valid: " in msg and "half_spread_ticks" in msg, msg
    with pytest.raises(ScenarioError, match=r"params.lenght: unknown field for halt \(valid: duration_s\)"):
        load("quick", {"events": [{"at": "09:32", "do": "halt", "params": {"lenght": 3}}]})
    with pytest.raises(ScenarioError, match=r"session.opn: unknown field \(valid: open, close\)"):
        load("quick", {"session.opn": "09:00"})


def test_every_bundled_scenario_validates_and_its_roster_is_what_assembly_builds():
    from desksim.assembly import build
    from scenarios import bundled
    from scenarios.schema import actor_roster
    from sim.record import Recorder

    for name in bundled():
        scenario = load(name)
        if name == "crowd":
            continue  # 20,000 actors: the roster is the same code, building it is slow
        built = build(scenario, Recorder(), 1).actors
        assert [(a.name, type(a)) for a in built] == actor_roster(scenario), name
