"""Counterfactual variants of a scenario (scenarios/variants.py): the same market without an action."""

from __future__ import annotations

import pytest

from scenarios.schema import ScenarioError, load, read_yaml, resolve
from scenarios.variants import without_action, write_without_action


def test_without_an_action_renumbers_the_remaining_events_distributions():
    data = {
        "name": "s",
        "events": [
            {"at": "10:00", "do": "start_program", "target": "seller"},
            {"at": "10:05", "do": "halt", "params": {"duration_s": 60}},
            {"at": "10:10", "do": "start_program", "target": "other"},
            {"when": {"price_change_pct": -0.3}, "do": "withdraw_makers", "target": "mm-*"},
        ],
        "monte_carlo": {
            "distributions": {
                "events.0.at": {"dist": "choice", "values": ["10:00"]},
                "events.1.params.duration_s": {"dist": "uniform", "low": 30, "high": 90},
                "events.3.when.price_change_pct": {"dist": "uniform", "low": -0.6, "high": -0.2},
                "agents.0.params.qty": {"dist": "uniform", "low": 1, "high": 2},
            }
        },
    }
    out = without_action(data, "start_program")
    assert out["name"] == "s_without_start_program"
    assert [e["do"] for e in out["events"]] == ["halt", "withdraw_makers"]
    assert out["monte_carlo"]["distributions"] == {
        "events.0.params.duration_s": {"dist": "uniform", "low": 30, "high": 90},
        "events.1.when.price_change_pct": {"dist": "uniform", "low": -0.6, "high": -0.2},
        "agents.0.params.qty": {"dist": "uniform", "low": 1, "high": 2},
    }
    assert [e["do"] for e in data["events"]].count("start_program") == 2  # the original is untouched
    assert "events.0.at" in data["monte_carlo"]["distributions"]


def test_no_such_event_is_an_error():
    with pytest.raises(ScenarioError, match="no 'start_program' event"):
        without_action({"name": "calm", "events": [{"at": "10:00", "do": "halt"}]}, "start_program")
    with pytest.raises(ScenarioError):
        without_action({"name": "calm"}, "start_program")


def test_bundled_scripted_flash_crash_without_its_program_loads_with_its_distributions(tmp_path):
    path = write_without_action("flash_crash_scripted", "start_program", tmp_path)
    variant, original = load(path), load("flash_crash_scripted")
    assert variant.name == "flash_crash_scripted_without_start_program"
    assert [e.do for e in variant.events] == [e.do for e in original.events if e.do != "start_program"]
    dists = read_yaml(path)["monte_carlo"]["distributions"]
    assert "events.0.when.price_change_pct" in dists  # the makers' withdrawal trigger, renumbered
    assert (
        read_yaml(resolve("flash_crash_scripted"))["monte_carlo"]["distributions"]["events.1.when.price_change_pct"]
        == (dists["events.0.when.price_change_pct"])
    )
    assert variant.agents == original.agents and variant.rules == original.rules
