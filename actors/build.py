"""Assemble a scenario's actors and network (the market-specific half of a run)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors.background import NoiseTrader
from actors.exchange.exchange import Exchange
from actors.makers import LadderMaker
from scenarios.schema import Scenario
from sim.actor import Actor
from sim.clock import US
from sim.network import LinkSpec, NetworkSpec
from sim.record import Recorder


@dataclass(frozen=True, slots=True)
class Assembly:
    actors: list[Actor]
    network: NetworkSpec
    start_ns: int
    end_ns: int
    exchange: Exchange


def _link(latency_us: float, jitter_us: float) -> LinkSpec:
    return LinkSpec(round(latency_us * US), round(jitter_us * US))


def network_spec(scenario: Scenario) -> NetworkSpec:
    net = scenario.network
    pairs = {(link.from_, link.to): _link(link.latency_us, link.jitter_us) for link in net.links}
    return NetworkSpec(_link(net.default.latency_us, net.default.jitter_us), pairs, net.symmetric)


def member_names(prefix: str, count: int) -> list[str]:
    """Stable actor names of a group: adding members never renames existing ones."""
    return [prefix] if count == 1 else [f"{prefix}-{i:04d}" for i in range(count)]


def _noise(scenario: Scenario, spec: Any, name: str) -> Actor:
    s = scenario.session
    return NoiseTrader(
        name, scenario.symbol, spec.params, scenario.reference_ticks, s.open_ns, s.close_ns, spec.location
    )


def _ladder(scenario: Scenario, spec: Any, name: str) -> Actor:
    s = scenario.session
    return LadderMaker(
        name, scenario.symbol, spec.params, scenario.reference_ticks, s.open_ns, s.close_ns, spec.location
    )


AGENT_BUILDERS: dict[str, Callable[[Scenario, Any, str], Actor]] = {
    "noise": _noise,
    "ladder_maker": _ladder,
}


def build(scenario: Scenario, recorder: Recorder) -> Assembly:
    s = scenario.session
    exchange = Exchange(
        scenario.exchange.name, [scenario.symbol], recorder, s.open_ns, s.close_ns, scenario.exchange.location
    )
    actors: list[Actor] = [exchange]
    for spec in scenario.agents:
        builder = AGENT_BUILDERS[spec.kind]
        for name in member_names(spec.name or spec.kind, spec.count):
            actors.append(builder(scenario, spec, name))
    return Assembly(actors, network_spec(scenario), s.open_ns, s.close_ns, exchange)
