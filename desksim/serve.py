"""``desksim serve``: the scenario's market assembled here, served over FIX by :mod:`fix.server`."""

from __future__ import annotations

from fix.server import ServedMarket, ServeOptions, options_from_args, serve
from scenarios.schema import ScenarioError, load
from sim.kernel import Kernel
from sim.network import Network
from sim.record import Recorder
from sim.rng import RandomStreams

__all__ = ["build_market", "options_from_args", "run_server"]


def build_market(opts: ServeOptions) -> ServedMarket:
    """The scenario's actors in a kernel, from the one assembly point every runtime uses."""
    from desksim.assembly import build

    scenario = load(opts.scenario)
    seed = scenario.seed if opts.seed is None else int(opts.seed)
    assembly = build(scenario, Recorder(), seed)
    kernel = Kernel(Network(assembly.network), RandomStreams(seed), assembly.start_ns)
    for actor in assembly.actors:
        kernel.add(actor)
    return ServedMarket(kernel, assembly.exchange.name, scenario.symbol, scenario.tick_size, scenario)


def run_server(opts: ServeOptions) -> int:
    """Run ``desksim serve`` in this thread; returns the exit code."""
    return serve(opts, build_market, (ScenarioError,))
