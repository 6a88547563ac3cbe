"""Agent kinds come from one registry (actors/registry.py); the monte_carlo and placement sections
are typed models that refuse a misspelled key or a wrong type, naming the field."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import pytest
import yaml
from pydantic import ConfigDict, Field, with_config

from actors import registry
from actors.trader import Trader
from desksim import api
from desksim.assembly import build
from scenarios.reference import markdown, topics
from scenarios.schema import MonteCarloModel, PlacementModel, ScenarioError, actor_roster, load, parse
from sim.actor import Wakeup, handles
from sim.clock import SECOND
from sim.record import Recorder
from sim.runtime.placement import plan

ROOT = Path(__file__).resolve().parents[1]


# -- a toy kind, registered by the test alone ------------------------------------------------------
@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class BuyerParams:
    qty: Annotated[int, Field(gt=0)] = 100  # shares bought at market
    after_s: Annotated[float, Field(gt=0)] = 5.0  # seconds after the open


class OneShotBuyer(Trader):
    """Buys ``qty`` shares at market once, ``after_s`` seconds after the open (a registry test)."""

    def __init__(
        self,
        name: str,
        symbol: str,
        params: BuyerParams,
        reference_price: int,
        open_ns: int,
        close_ns: int,
        location: str = "default",
    ) -> None:
        super().__init__(name, symbol, location=location)
        self.p = params
        self.at_ns = open_ns + round(params.after_s * SECOND)

    def on_start(self) -> None:
        super().on_start()
        self.wake_at(self.at_ns)

    @handles(Wakeup)
    def on_wakeup(self, msg: Wakeup, src: int) -> None:
        self.submit("B", self.p.qty, None, tif="IOC")


@pytest.fixture
def toy_kind() -> Iterator[registry.AgentKind]:
    """The one registration a new kind needs; removed again so the other tests see the bundled kinds."""
    registry.agent_kind("one_shot_buyer", BuyerParams, placement_role="solo")(OneShotBuyer)
    try:
        yield registry.get("one_shot_buyer")
    finally:
        registry.unregister("one_shot_buyer")


def _quick_with(agent: dict) -> dict:
    data = yaml.safe_load((ROOT / "scenarios" / "quick.yaml").read_text())
    data["agents"].append(agent)
    return data


def test_a_registered_kind_validates_is_documented_placed_assembled_and_run(toy_kind, tmp_path):
    data = _quick_with({"kind": "one_shot_buyer", "name": "whale", "params": {"qty": 300, "after_s": 30}})
    scenario = parse(data)
    assert scenario.agents[-1].params == BuyerParams(qty=300, after_s=30.0)
    assert ("whale", OneShotBuyer) in actor_roster(scenario)

    # the reference documents it: its class, first docstring paragraph, placement role and params
    text = markdown()
    assert "## agent kind `one_shot_buyer` (OneShotBuyer)" in text
    part = "\n".join(topics()["one_shot_buyer"])
    assert "Buys ``qty`` shares" in part and "placement role: `solo`" in part
    assert "| qty | integer | `100` |  | shares bought at market |" in part
    assert "| after_s | number | `5.0` | seconds | seconds after the open |" in part

    # the assembly builds it and the Ray placement puts it in a process of its own
    built = build(scenario, Recorder(), scenario.seed)
    whale = next(a for a in built.actors if a.name == "whale")
    assert isinstance(whale, OneShotBuyer) and whale.p.qty == 300
    layout = plan(built.actors)
    assert "whale" in layout.groups

    # and it runs: its one market order reaches the exchange and trades
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(data))
    res = api.run(path, duration_s=60)
    orders = res.frames["orders"]
    mine = orders[(orders.owner == "whale") & (orders.event == "submit")]
    assert len(mine) == 1 and int(mine.qty.iloc[0]) == 300
    assert res.summary["trades"] > 0


def test_params_of_a_registered_kind_are_validated_with_its_type(toy_kind):
    with pytest.raises(ScenarioError, match=r"agents\.2\.params\.qty: Input should be greater than 0"):
        parse(_quick_with({"kind": "one_shot_buyer", "params": {"qty": 0}}))
    with pytest.raises(ScenarioError, match=r"agents\.2\.params\.size: unknown field \(valid: qty, after_s\)"):
        parse(_quick_with({"kind": "one_shot_buyer", "params": {"size": 3}}))
    assert parse(_quick_with({"kind": "one_shot_buyer"})).agents[-1].params == BuyerParams()


def test_unknown_kind_is_refused_listing_the_known_kinds():
    with pytest.raises(ScenarioError) as info:
        parse(_quick_with({"kind": "whale", "count": 3}))
    message = str(info.value)
    assert "agents.2.kind: unknown agent kind 'whale' (known kinds: " in message
    for kind in ("as_maker", "ladder_maker", "momentum", "noise", "program", "scripted", "value"):
        assert kind in message
    with pytest.raises(registry.UnknownKind, match="known kinds: as_maker, ladder_maker"):
        registry.get("whale")


def test_bundled_kinds_come_from_the_registry():
    kinds = registry.kinds()
    bundled = {"as_maker", "ladder_maker", "momentum", "noise", "price_alert", "program", "scripted", "value"}
    assert set(kinds) == bundled
    assert {name for name, kind in kinds.items() if kind.placement_role == "solo"} == {"as_maker", "ladder_maker"}
    assert kinds["price_alert"].placement_role == "hub"  # it reads every trade: next to the exchange
    assert kinds["value"].world == ("activity", "fundamental") and kinds["noise"].world == ("activity",)


def test_a_taken_name_is_refused():
    class Other(OneShotBuyer):
        pass

    with pytest.raises(ValueError, match=r"'noise' is already registered for actors\.background\.NoiseTrader"):
        registry.agent_kind("noise", BuyerParams)(Other)
    with pytest.raises(ValueError, match="unknown world process 'weather'"):
        registry.agent_kind("toy_weather", BuyerParams, world=("weather",))(Other)
    assert "toy_weather" not in registry.kinds()


# -- monte_carlo: ----------------------------------------------------------------------------------
def test_monte_carlo_section_parses_into_typed_models():
    section = {
        "distributions": {
            "agents.1.params.rate_per_hour": {"dist": "uniform", "low": 30, "high": 120.5},
            "agents.0.params.size": {"dist": "choice", "values": [100, 200], "weights": [1, 3]},
            "seed": {"dist": "lognormal", "median": 5, "sigma": 0.1, "integer": True, "min": 1},
        }
    }
    scenario = load("quick", {"monte_carlo": section})
    assert isinstance(scenario.monte_carlo, MonteCarloModel)
    uniform = scenario.monte_carlo.distributions["agents.1.params.rate_per_hour"]
    assert (uniform.dist, uniform.low, uniform.high) == ("uniform", 30, 120.5)
    # the specifications as given (an int stays an int): what the sampler and mc.json use
    assert scenario.monte_carlo.specs() == section["distributions"]
    assert type(scenario.monte_carlo.specs()["agents.1.params.rate_per_hour"]["low"]) is int
    assert load("quick", {"monte_carlo": {"distributions": None}}).monte_carlo.specs() == {}


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"distribution": {}}, "monte_carlo.distribution: unknown field (valid: distributions)"),
        (
            {"distributions": {"seed": {"dist": "uniform", "low": 1, "hihg": 2}}},
            "monte_carlo.distributions.seed.hihg: unknown field (valid: dist, low, high, ",
        ),
        (
            {"distributions": {"seed": {"dist": "uniform", "low": "one", "high": 2}}},
            "monte_carlo.distributions.seed.low: expected a finite number, got 'one'",
        ),
        (
            {"distributions": {"seed": {"dist": "normal", "mean": 1, "sd": 1, "integer": "yes"}}},
            "monte_carlo.distributions.seed.integer: Input should be a valid boolean",
        ),
        (
            {"distributions": {"seed": {"dist": "gauss"}}},
            "monte_carlo.distributions.seed.dist: Input should be 'uniform', 'normal', 'lognormal' or 'choice'",
        ),
        (
            {"distributions": {"seed": {"dist": "uniform", "low": 2, "high": 1}}},
            "monte_carlo.seed: low must be <= high",
        ),
        (
            {"distributions": {"seed": {"dist": "uniform", "low": 1, "high": 2, "sd": 1}}},
            "monte_carlo.seed.sd: unknown",
        ),
        ({"distributions": ["seed"]}, "monte_carlo.distributions: Input should be a valid dictionary"),
    ],
)
def test_monte_carlo_typo_or_wrong_type_is_refused_naming_the_field(section, expected):
    with pytest.raises(ScenarioError) as info:
        load("quick", {"monte_carlo": section})
    assert expected in str(info.value), str(info.value)


# -- placement: ------------------------------------------------------------------------------------
def test_placement_section_parses_into_a_typed_model():
    full = load("quick", {"placement": {"preset": "core", "pools": 3}}).placement
    assert isinstance(full, PlacementModel) and (full.spec(), full.pools) == ("core", 3)
    short = load("quick", {"placement": "core"}).placement
    assert short is not None and (short.preset, short.groups, short.pools) == ("core", {}, 2)
    globs = {"exchange": "market", "mm": "market", "*": "rest/2"}
    for given in (globs, {"groups": globs}):
        section = load("quick", {"placement": given}).placement
        assert section is not None and section.spec() == globs
    crowd = load("crowd").placement
    assert crowd is not None and crowd.spec() == {"exchange": "core", "mm-*": "core", "value-*": "core", "*": "pool/2"}


@pytest.mark.parametrize(
    ("placement", "expected"),
    [
        ({"preset": "core", "pool": 3}, "placement.pool: unknown field (valid: preset, groups, pools)"),
        ({"preset": "cores"}, "placement.preset: Input should be 'default' or 'core'"),
        ("everything", "placement.preset: Input should be 'default' or 'core'"),
        ({"pools": "two"}, "placement.pools: Input should be a valid integer"),
        ({"pools": 0}, "placement.pools: Input should be greater than or equal to 1"),
        ({"groups": {"*": 3}}, "placement.groups.*: Input should be a valid string"),
        ({"mm": ""}, "placement.groups: mm: the group must be a non-empty name"),
        ({}, "placement: an empty mapping places nobody"),
        ({"exchange": "core", "mm": "core"}, "placement.groups: noise-0000, noise-0001, noise-0002, noise-0003 and 46"),
    ],
)
def test_placement_typo_or_wrong_type_is_refused_naming_the_field(placement, expected):
    with pytest.raises(ScenarioError) as info:
        load("quick", {"placement": placement})
    assert expected in str(info.value), str(info.value)
