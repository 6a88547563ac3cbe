"""Assemble a scenario's actors and network (the market-specific half of a run)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from actors import registry
from actors.director import Director, TimedEvent
from actors.exchange.exchange import Exchange
from actors.exchange.safeguards import SafeguardParams, rules_params
from actors.registry import Market
from actors.world import Activity, Fundamental
from scenarios.schema import Scenario
from sim.actor import Actor
from sim.clock import SECOND, US, parse_clock
from sim.network import LinkSpec, NetworkSpec
from sim.record import Recorder
from sim.rng import RandomStreams


@dataclass(frozen=True, slots=True)
class Assembly:
    actors: list[Actor]
    network: NetworkSpec
    start_ns: int
    end_ns: int
    exchange: Exchange
    world: World
    desk: Any = None  # the StrategyDesk, when the scenario has one
    oms: Any = None
    gateway: Any = None
    risk: Any = None  # the RiskOfficer


def _link(latency_us: float, jitter_us: float) -> LinkSpec:
    return LinkSpec(round(latency_us * US), round(jitter_us * US))


def network_spec(scenario: Scenario) -> NetworkSpec:
    net = scenario.network
    pairs = {(link.from_, link.to): _link(link.latency_us, link.jitter_us) for link in net.links}
    return NetworkSpec(_link(net.default.latency_us, net.default.jitter_us), pairs, net.symmetric)


def member_names(prefix: str, count: int) -> list[str]:
    """Stable actor names of a group: adding members never renames existing ones."""
    return [prefix] if count == 1 else [f"{prefix}-{i:04d}" for i in range(count)]


@dataclass(frozen=True, slots=True)
class World:
    """The run's shared exogenous processes, built once from named streams of the root seed."""

    fundamental: Fundamental
    activity: Activity | None


def make_world(scenario: Scenario, seed: int) -> World:
    s, w = scenario.session, scenario.world
    streams = RandomStreams(seed)
    activity = Activity.from_streams(streams, w.activity, s.open_ns, s.close_ns) if w.activity else None
    fundamental = Fundamental.from_streams(
        streams, w.fundamental, scenario.reference_ticks, s.open_ns, s.close_ns, activity=activity
    )
    return World(fundamental, activity)


def market(scenario: Scenario, world: World) -> Market:
    """What every agent of the scenario is built from (``actors.registry.Market``)."""
    s = scenario.session
    return Market(
        scenario.symbol,
        scenario.reference_ticks,
        s.open_ns,
        s.close_ns,
        scenario.tick_size,
        fundamental=world.fundamental,
        activity=world.activity,
    )


def timeline(scenario: Scenario) -> list[TimedEvent]:
    """The scenario's events resolved to times (None = conditional), in file order."""
    open_ns = scenario.session.open_ns
    return [
        TimedEvent(
            index=i,
            action=e.do,
            target=e.target,
            params=e.typed_params().model_dump(by_alias=True),
            time_ns=e.time_ns(open_ns),
            price_change_pct=e.when.price_change_pct if e.when else None,
            armed_ns=parse_clock(e.when.not_before) if e.when and e.when.not_before else None,
        )
        for i, e in enumerate(scenario.events)
    ]


def apply_world_events(world: World, events: list[TimedEvent]) -> None:
    """Fundamental shocks are part of the world's path: applied before the run, in file order."""
    for event in events:
        if event.time_ns is None:
            continue
        if event.action == "fundamental_jump":
            world.fundamental.add_jump(event.time_ns, float(event.params["pct"]))
        elif event.action == "volatility":
            end = event.time_ns + round(float(event.params["duration_s"]) * SECOND)
            world.fundamental.scale_volatility(event.time_ns, end, float(event.params["factor"]))


def _safeguards(scenario: Scenario) -> SafeguardParams | None:
    params = rules_params(scenario.rules, scenario.exchange.safeguards)
    if params is None:
        return None
    return dataclasses.replace(params, tick_size=scenario.tick_size)


def _desk(scenario: Scenario, recorder: Recorder) -> tuple[Any, Any, Any, Any]:
    """The desk, its OMS and the exchange's FIX gateway (desk -> OMS -FIX 4.4-> gateway -> exchange)."""
    spec = scenario.desk
    if spec is None:
        return None, None, None, None
    from actors.desk.desk import StrategyDesk
    from fix.codec import Codec, FixClock
    from fix.gateway_actor import FixGateway
    from fix.oms import OMS

    s, ex = scenario.session, scenario.exchange
    risk = None
    if spec.risk is not None:
        from actors.risk import GateConfig

        # one immutable configuration for both: the gateway builds its own gate from it, the officer
        # its own view; afterwards they talk by messages only (SetRiskLimits, KillSwitch, answers)
        risk = GateConfig.of(
            spec.risk.limits, dict(spec.risk.accounts), {scenario.symbol: scenario.reference_ticks}, officer="risk"
        )
    gateway = FixGateway(
        "gateway",
        recorder,
        exchange=ex.name,
        clients=(spec.fix.comp_id,),
        tick_size=scenario.tick_size,
        symbols=(scenario.symbol,),
        cancel_on_disconnect=spec.fix.cancel_on_disconnect,
        heartbeat_s=spec.fix.heartbeat_s,
        codec=Codec(scenario.tick_size, clock=FixClock(scenario.date)),
        location=ex.location,
        risk=risk,
    )
    oms = OMS(
        "oms",
        recorder,
        gateway="gateway",
        exchange=ex.name,
        sender_comp_id=spec.fix.comp_id,
        tick_size=scenario.tick_size,
        symbols=(scenario.symbol,),
        heartbeat_s=spec.fix.heartbeat_s,
        codec=Codec(scenario.tick_size, clock=FixClock(scenario.date)),
        location=spec.location,
    )
    params = dataclasses.replace(spec.params, tick_size=scenario.tick_size)
    desk = StrategyDesk(
        spec.name,
        scenario.symbol,
        params,
        scenario.reference_ticks,
        s.open_ns,
        s.close_ns,
        spec.location,
        exchange="oms",
    )
    officer = None
    if spec.risk is not None and risk is not None:
        from actors.risk import RiskOfficer

        officer = RiskOfficer(
            "risk",
            recorder,
            risk,
            symbols=[scenario.symbol],
            gateway="gateway",
            exchange=ex.name,
            desk=spec.name,
            tick_size=str(scenario.tick_size),
            var_interval_s=spec.risk.var_interval_s,
            var_lookback_min=spec.risk.var_lookback_min,
            var_alpha=spec.risk.var_alpha,
            location=spec.risk.location,
            accounts=(spec.fix.comp_id,),
        )
    return desk, oms, gateway, officer


def build(scenario: Scenario, recorder: Recorder, seed: int) -> Assembly:
    s = scenario.session
    world = make_world(scenario, seed)
    events = timeline(scenario)
    apply_world_events(world, events)
    exchange = Exchange(
        scenario.exchange.name,
        [scenario.symbol],
        recorder,
        s.open_ns,
        s.close_ns,
        scenario.exchange.location,
        safeguards=_safeguards(scenario),
        reference_price=scenario.reference_ticks,
    )
    actors: list[Actor] = [exchange]
    agents_market = market(scenario, world)
    for spec in scenario.agents:
        build_member = registry.get(spec.kind).build  # the kind's one registration (actors/registry.py)
        for name in member_names(spec.name or spec.kind, spec.count):
            actors.append(build_member(name, spec.params, spec.location, agents_market))
    desk_actors = _desk(scenario, recorder)
    actors.extend(a for a in desk_actors if a is not None)
    if events:
        actors.append(Director("director", events, recorder, scenario.symbol, scenario.exchange.name))
    return Assembly(actors, network_spec(scenario), s.open_ns, scenario.end_ns, exchange, world, *desk_actors)
