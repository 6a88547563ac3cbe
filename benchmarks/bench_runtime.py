"""Local vs Ray runtime: messages/s of each, the ratio, and the Ray runtime's window statistics.

For each scenario, runs it once on the local runtime and once on the Ray runtime (same seed;
the digests must agree and are checked), and prints wall seconds, messages/s, windows,
messages per window, cross-partition messages, per-partition busy time and the ratio
ray/local. ``wall`` of the Ray runtime counts the windows only; starting the partition
processes (each rebuilds the assembly) is reported separately as ``setup``.

    python benchmarks/bench_runtime.py                                  # baseline 300 s + crowd 60 s
    python benchmarks/bench_runtime.py --scenario crowd --duration 600
    python benchmarks/bench_runtime.py --scenario baseline --duration 0  # 0 = the full session

Placements: ``default`` (exchange, each maker, desk+OMS, risk alone; background traders in
pools), ``core`` (exchange + makers + desk side together, background pools) and ``crowd`` (the
scenario's own ``placement`` section; for crowd.yaml: the
exchange, makers and value traders together, everybody else in pools: only the 800 us retail
links cross, see scenarios/crowd.yaml). By default baseline runs ``default`` and ``core``,
crowd runs ``crowd``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import ray  # noqa: E402

from desksim import api  # noqa: E402
from desksim.ray_run import run_ray  # noqa: E402
from scenarios.schema import load  # noqa: E402

PLACEMENTS: dict[str, Any] = {
    "default": None,
    "core": "core",
    "crowd": None,  # the scenario's own placement section (scenarios/crowd.yaml)
}
DEFAULTS = {"baseline": (300.0, ["default", "core"]), "crowd": (60.0, ["crowd"])}


def bench(name: str, duration: float | None, placements: list[str], seed: int | None, pools: int) -> None:
    scenario = load(name)
    if duration:
        scenario = api.shorten(scenario, duration)
    sim_s = (scenario.session.close_ns - scenario.session.open_ns) / 1e9
    print(f"\n== {name}: {sim_s:.0f} simulated seconds, seed {seed if seed is not None else scenario.seed}")
    t0 = time.perf_counter()
    local = api.run_scenario(scenario, seed)
    ls = local.summary
    print(
        f"local            wall {ls['wall_seconds']:8.2f} s  {ls['messages_delivered']:>10,} msgs  "
        f"{ls['messages_per_second']:>10,.0f} msgs/s  (with build {time.perf_counter() - t0:.1f} s)"
    )
    for key in placements:
        placement = PLACEMENTS[key]
        if key == "crowd" and pools != 2 and scenario.placement is not None and scenario.placement.groups:
            placement = {**scenario.placement.groups, "*": f"pool/{pools}"}
        res = run_ray(scenario, seed, placement=placement, pools=pools)
        s, r = res.summary, res.summary["ray"]
        same = "same digest" if s["digest"] == ls["digest"] else "DIGEST DIFFERS"
        ratio = ls["wall_seconds"] / s["wall_seconds"] if s["wall_seconds"] else float("nan")
        print(
            f"ray[{key:<8}]    wall {s['wall_seconds']:8.2f} s  {s['messages_delivered']:>10,} msgs  "
            f"{s['messages_per_second']:>10,.0f} msgs/s  ratio ray/local {ratio:.2f}  {same}"
        )
        print(
            f"    windows {s['windows']:,}  msgs/window {s['messages_per_window']:,.1f}  "
            f"cross-partition msgs {r['cross_partition_messages']:,}  lookahead {r['lookahead_ns'] / 1000:g} us  "
            f"remote calls {r['remote_calls']:,}  setup {r['setup_seconds']:.1f} s"
        )
        print(f"    partitions {r['partitions']}  busy s {r['busy_seconds']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", help="baseline, crowd or a path (repeatable)")
    parser.add_argument("--duration", type=float, help="simulated seconds (0 = full session)")
    parser.add_argument("--placement", action="append", choices=sorted(PLACEMENTS))
    parser.add_argument("--seed", type=int)
    parser.add_argument("--pools", type=int, default=2)
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args(argv)
    ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        for name in args.scenario or ["baseline", "crowd"]:
            default_duration, default_placements = DEFAULTS.get(name, (120.0, ["default", "core"]))
            duration = default_duration if args.duration is None else args.duration
            bench(name, duration or None, args.placement or default_placements, args.seed, args.pools)
    finally:
        ray.shutdown()
    print("\n(the machine may be shared with other jobs: compare figures from one invocation only)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
