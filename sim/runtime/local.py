"""The local runtime: every actor in one process, one kernel."""

from __future__ import annotations

import gc
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


def local_kernel(actors: Sequence[Actor], network: NetworkSpec, seed: int, start_ns: int) -> Kernel:
    """The kernel of a local run: ``actors`` registered in order (ids follow that order), not started."""
    kernel = Kernel(Network(network), RandomStreams(seed), start_ns)
    for actor in actors:
        kernel.add(actor)
    return kernel


def run_local(
    actors: Sequence[Actor], network: NetworkSpec, seed: int, start_ns: int, end_ns: int
) -> tuple[Kernel, RuntimeStats]:
    """Register ``actors`` in order (ids follow that order), run from start to end."""
    kernel = local_kernel(actors, network, seed, start_ns)
    # Everything that exists now (modules, the scenario, the actors) lives through the run: frozen,
    # the collector's full passes during the run skip it (a good part of their cost). The run's
    # own objects are collected as usual; everything goes back to the collector after the run.
    # Not when a caller has frozen objects of its own (unfreezing would hand those back too).
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    # The collector also pauses during the run: almost all the run makes is freed by reference
    # counting (a full day of the baseline leaves about 12,000 objects in cycles), and its young-
    # generation passes were mostly spent on the rows of the tables. One young-generation pass at
    # the end, inside the measured time, does what they did.
    paused = gc.isenabled()
    if paused:
        gc.disable()
    t0 = time.perf_counter()
    try:
        kernel.run(end_ns)
    finally:
        if paused:
            gc.enable()
            gc.collect(0)
        wall = time.perf_counter() - t0
        if freeze:
            gc.unfreeze()
    return kernel, RuntimeStats(wall, kernel.messages_delivered, kernel.wakeups_delivered)
