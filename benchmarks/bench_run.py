"""Full-day run speed: wall seconds, messages delivered and messages/s of a scenario.

Runs the scenario (default: the bundled baseline at seed 7) ``--repeat`` times in this process
and prints the best run, then a reference in the same process: the bare kernel delivering
ping-pong messages between trivial actors over jittered links (the kernel's own ceiling), so
the ratio shows how much of the time goes to the market's actors rather than the kernel.

    python benchmarks/bench_run.py
    python benchmarks/bench_run.py --scenario quick --repeat 3
    python benchmarks/bench_run.py --profile          # cProfile of one run, top 25 by tottime
    python benchmarks/bench_run.py --handlers         # wall time per (actor class, message type)

``--handlers`` wraps every handler of one run in a timer (about 0.1 us each, so the run is slower
than unwrapped) and prints where the handlers' time goes: total, share, deliveries and us each,
the 25 largest; what is left of the run's wall time is the kernel's loop and the network.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from desksim import api  # noqa: E402
from desksim.assembly import build  # noqa: E402
from scenarios.schema import load  # noqa: E402
from sim.actor import Actor, handles  # noqa: E402
from sim.kernel import Kernel  # noqa: E402
from sim.network import LinkSpec, Network, NetworkSpec  # noqa: E402
from sim.record import Recorder  # noqa: E402
from sim.rng import RandomStreams  # noqa: E402
from sim.runtime.local import local_kernel  # noqa: E402


@dataclass(frozen=True, slots=True)
class Ping:
    n: int


class PingPong(Actor):
    def __init__(self, name: str, peer: str) -> None:
        super().__init__(name)
        self.peer = peer

    def on_start(self) -> None:
        if self.name.startswith("a"):
            self.send(self.lookup(self.peer), Ping(0))

    @handles(Ping)
    def on_ping(self, msg: Ping, src: int) -> None:
        self.send(src, Ping(msg.n + 1))


def bare_kernel_rate(messages: int, pairs: int = 500) -> tuple[int, float]:
    """Messages/s of the kernel alone: ``pairs`` ping-pong pairs, 1 µs ± 0.5 µs links."""
    kernel = Kernel(Network(NetworkSpec(LinkSpec(1000, 500))), RandomStreams(1))
    for i in range(pairs):
        kernel.add(PingPong(f"a{i}", f"b{i}"))
        kernel.add(PingPong(f"b{i}", f"a{i}"))
    horizon = int(messages / pairs * 1250)  # mean link latency 1.25 µs
    t0 = time.perf_counter()
    kernel.run(horizon)
    wall = time.perf_counter() - t0
    return kernel.messages_delivered, kernel.messages_delivered / wall


def handler_times(
    scenario_name: str, seed: int, duration_s: float | None = None
) -> tuple[float, dict[tuple[str, str], list[int]], Kernel]:
    """One run with every handler timed: (wall s of the kernel run, {(actor class, message
    type): [ns, deliveries]}, the kernel)."""
    scenario = load(scenario_name)
    if duration_s is not None:
        scenario = api.shorten(scenario, duration_s)
    assembly = build(scenario, Recorder(), seed)
    kernel = local_kernel(assembly.actors, assembly.network, seed, assembly.start_ns)  # as a local run has it
    acc: dict[tuple[str, str], list[int]] = {}
    clock = time.perf_counter_ns
    for actor, table in zip(kernel.actors, kernel._dispatch, strict=True):
        for cls, handler in list(table.items()):
            slot = acc.setdefault((type(actor).__name__, cls.__name__), [0, 0])

            def timed(msg, src, handler=handler, slot=slot):  # type: ignore[no-untyped-def]
                t = clock()
                handler(msg, src)
                slot[0] += clock() - t
                slot[1] += 1

            table[cls] = timed
    t0 = time.perf_counter()
    kernel.run(assembly.end_ns)
    return time.perf_counter() - t0, acc, kernel


def print_handler_times(scenario_name: str, seed: int) -> None:
    wall, acc, _kernel = handler_times(scenario_name, seed)
    total = sum(ns for ns, _n in acc.values())
    print(f"scenario {scenario_name} seed {seed}: kernel run {wall:.2f} s, of which handlers {total / 1e9:.2f} s")
    print(f"  {'actor':<24} {'message':<22} {'seconds':>8} {'share':>6} {'deliveries':>11} {'us each':>8}")
    for (actor, message), (ns, n) in sorted(acc.items(), key=lambda kv: -kv[1][0])[:25]:
        each = ns / n / 1e3 if n else 0.0
        print(f"  {actor:<24} {message:<22} {ns / 1e9:>8.2f} {ns / total:>6.1%} {n:>11,} {each:>8.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="baseline")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--handlers", action="store_true", help="time of each handler (actor class x message)")
    args = parser.parse_args()

    if args.handlers:
        print_handler_times(args.scenario, args.seed)
        return 0

    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        api.run(args.scenario, args.seed)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return 0

    best = None
    for _ in range(max(1, args.repeat)):
        res = api.run(args.scenario, args.seed)
        if best is None or res.summary["wall_seconds"] < best.summary["wall_seconds"]:
            best = res
    assert best is not None
    s = best.summary
    print(f"scenario {s['scenario']} seed {s['seed']}: {s['actors']} actors, {s['sim_seconds']:.0f} simulated s")
    print(f"  wall seconds        {s['wall_seconds']:.2f}  (kernel run only, best of {max(1, args.repeat)})")
    print(f"  messages delivered  {s['messages_delivered']:,}  (+ {s['wakeups_delivered']:,} timer wake-ups)")
    print(f"  messages/s          {s['messages_per_second']:,.0f}")
    print(f"  orders / trades     {s['orders']:,} / {s['trades']:,}")
    n, rate = bare_kernel_rate(min(1_000_000, max(100_000, s["messages_delivered"])))
    print(f"reference: bare kernel ping-pong, {n:,} messages: {rate:,.0f} messages/s")
    print(f"ratio run / bare kernel: {s['messages_per_second'] / rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
