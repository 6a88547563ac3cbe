"""Small actors and builders shared by tests."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from actors.exchange.exchange import Exchange
from actors.messages import ORDER_ID_SHIFT
from sim.actor import Actor, Wakeup, handles
from sim.kernel import Kernel
from sim.network import LinkSpec, Network, NetworkSpec
from sim.record import Recorder
from sim.rng import RandomStreams


class Scripted(Actor):
    """Sends scripted messages at given times and keeps every message it receives.

    ``script`` is a list of ``(t_ns, make_message)``; ``make_message(self)`` builds the message
    (so it can use ``self.oid(n)`` for owned order ids). Received messages land in ``inbox``.
    """

    def __init__(self, name, script=(), location="default", dst="exchange"):
        super().__init__(name, location)
        self.script = list(script)
        self.dst_name = dst
        self.inbox = []

    def oid(self, n):
        return (self.id << ORDER_ID_SHIFT) | n

    def on_start(self):
        self.dst = self.lookup(self.dst_name)
        for i, (t, _) in enumerate(self.script):
            self.wake_at(t, i)

    @handles(Wakeup)
    def _due(self, msg, src):
        self.send(self.dst, self.script[msg.tag][1](self))

    def unhandled(self, msg, src):
        self.inbox.append((self.now, msg))

    def received(self, cls):
        return [m for _, m in self.inbox if isinstance(m, cls)]


def market(*clients, open_ns=0, close_ns=10**12, latency_ns=1000, seed=1, recorder=None):
    """A kernel with an exchange (id 0) and the given client actors."""
    recorder = recorder or Recorder()
    kernel = Kernel(Network(NetworkSpec(LinkSpec(latency_ns))), RandomStreams(seed))
    exchange = Exchange("exchange", ["XYZ"], recorder, open_ns, close_ns)
    kernel.add(exchange)
    for client in clients:
        kernel.add(client)
    return kernel, exchange, recorder


# summary keys that say how a run was executed, not what it computed (local vs Ray runtime)
RUNTIME_KEYS = frozenset({"runtime", "wall_seconds", "messages_per_second", "windows", "messages_per_window", "ray"})


def computed(summary: dict) -> dict:
    """A run summary without its execution keys: what must agree between runtimes."""
    return {k: v for k, v in summary.items() if k not in RUNTIME_KEYS}


def _run_summary(name: str, seed: int, kwargs: dict[str, Any]) -> dict[str, Any]:
    from desksim import api

    return api.run(name, seed=seed, **kwargs).summary


def run_summaries(name: str, seeds: Iterable[int], workers: int = 2, **kwargs: Any) -> dict[int, dict[str, Any]]:
    """``api.run(name, seed=seed, **kwargs).summary`` per seed, ``workers`` runs at a time in spawned
    processes (a run is single-threaded and CI has two cores); the same summaries as in this process."""
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {seed: pool.submit(_run_summary, name, seed, kwargs) for seed in seeds}
        return {seed: f.result() for seed, f in futures.items()}
