"""Full-day run speed: wall seconds, messages delivered and messages/s of a scenario.

Runs the scenario (default: the bundled baseline at seed 7) ``--repeat`` times in this process
and prints the best run, then a reference in the same process: the bare kernel delivering
ping-pong messages between trivial actors over jittered links (the kernel's own ceiling), so
the ratio shows how much of the time goes to the market's actors rather than the kernel.

    python benchmarks/bench_run.py
    python benchmarks/bench_run.py --scenario quick --repeat 3
    python benchmarks/bench_run.py --profile          # cProfile of one run, top 25 by tottime
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
from sim.actor import Actor, handles  # noqa: E402
from sim.kernel import Kernel  # noqa: E402
from sim.network import LinkSpec, Network, NetworkSpec  # noqa: E402
from sim.rng import RandomStreams  # noqa: E402


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="baseline")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

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
