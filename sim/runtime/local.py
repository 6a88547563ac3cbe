"""The local runtime: every actor in one process, one kernel."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sim.actor import Actor
from sim.kernel import Kernel
from sim.network import Network, NetworkSpec
from sim.rng import RandomStreams


@dataclass(frozen=True, slots=True)
class RuntimeStats:
    wall_s: float
    messages: int
    wakeups: int


def run_local(
    actors: Sequence[Actor], network: NetworkSpec, seed: int, start_ns: int, end_ns: int
) -> tuple[Kernel, RuntimeStats]:
    """Register ``actors`` in order (ids follow that order), run from start to end."""
    kernel = Kernel(Network(network), RandomStreams(seed), start_ns)
    for actor in actors:
        kernel.add(actor)
    t0 = time.perf_counter()
    kernel.run(end_ns)
    wall = time.perf_counter() - t0
    return kernel, RuntimeStats(wall, kernel.messages_delivered, kernel.wakeups_delivered)
