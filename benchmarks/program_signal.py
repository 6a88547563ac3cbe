"""How far a scenario's sell program stands out from its market's ordinary order flow.

Runs the scenario *without* its ``start_program`` events (``scenarios/variants.py``) for each
seed, cuts the trades between ``--from`` (default 30 minutes after the open: the opening rush
left out) and ``--to`` (default the close) into whole windows of each ``--windows`` length,
pools the windows of all seeds and prints, per length, what desksim/analytics/flowsignal.py
defines: the standard deviation of the net aggressor-signed volume per window, what the program
would add at its ``pov`` (the scenario's program's, or ``--pov``), their ratio, and the share of
windows whose ordinary net flow is already as one-sided as the program. A program a few tenths of
a standard deviation in size is what the market meets every few windows: no mechanism that
answers it can stay quiet on ordinary days.

    python benchmarks/program_signal.py                                    # flash_crash_scripted, seeds 1-3
    python benchmarks/program_signal.py --scenario docs/examples/flash_crash_emergent.yaml --pov 0.09
    python benchmarks/program_signal.py --scenario baseline --pov 0.09 --from 10:00 --to 15:30 --seeds 1-5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from desksim import api  # noqa: E402
from desksim.analytics.flowsignal import summarise, window_flows  # noqa: E402
from scenarios.schema import Scenario, load  # noqa: E402
from scenarios.variants import write_without_action  # noqa: E402
from sim.clock import MINUTE, format_clock, parse_clock  # noqa: E402


def seed_list(text: str) -> list[int]:
    """'1-3,7' -> [1, 2, 3, 7]."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            seeds.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seeds like 1-3,7, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError(f"no seed in {text!r}")
    return seeds


def window_lengths(text: str) -> list[float]:
    """'10,20' -> [10.0, 20.0] (minutes, each > 0)."""
    try:
        lengths = [float(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected minutes like 10,20, got {text!r}") from None
    if not lengths or min(lengths) <= 0:
        raise argparse.ArgumentTypeError(f"window lengths must be > 0 minutes, got {text!r}")
    return lengths


def clock_time(text: str) -> int:
    """'HH:MM' -> nanoseconds since midnight."""
    try:
        return parse_clock(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def program_terms(scenario: Scenario) -> tuple[float | None, bool]:
    """The scenario's program's pov (None: no program) and whether a start_program event exists."""
    pov = next((a.params.pov for a in scenario.agents if a.kind == "program"), None)
    return pov, any(e.do == "start_program" for e in scenario.events)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="flash_crash_scripted", help="bundled name or path (default %(default)s)")
    parser.add_argument("--seeds", type=seed_list, default="1-3", help="seeds, e.g. 1-3,7 (default 1-3)")
    parser.add_argument(
        "--windows", type=window_lengths, default="10,20", help="window lengths in minutes (default 10,20)"
    )
    parser.add_argument(
        "--pov", type=float, default=None, help="the program's share of volume (default: the scenario's)"
    )
    parser.add_argument(
        "--from", dest="start", type=clock_time, default=None, help="HH:MM (default 30 minutes after the open)"
    )
    parser.add_argument("--to", dest="end", type=clock_time, default=None, help="HH:MM (default the close)")
    args = parser.parse_args(argv)

    scenario = load(args.scenario)
    pov, started = program_terms(scenario)
    pov = args.pov if args.pov is not None else pov
    if pov is None:
        parser.error("the scenario has no program: give --pov")
    open_ns, close_ns = scenario.session.open_ns, scenario.session.close_ns
    start_ns = args.start if args.start is not None else open_ns + 30 * MINUTE
    end_ns = args.end if args.end is not None else close_ns
    lengths = args.windows
    if end_ns <= start_ns:
        parser.error("--to must come after --from")

    print(
        f"{scenario.name} without its program, seeds {','.join(map(str, args.seeds))}, pov {pov:g}, trades"
        f" {format_clock(start_ns)[:5]}-{format_clock(end_ns)[:5]}"
    )
    pooled: dict[float, tuple[list[np.ndarray], list[np.ndarray]]] = {w: ([], []) for w in lengths}
    with tempfile.TemporaryDirectory(prefix="program_signal-") as folder:  # the variant's YAML, for the runs
        variant = write_without_action(args.scenario, "start_program", folder) if started else args.scenario
        for seed in args.seeds:
            t0 = time.perf_counter()
            trades = api.run(variant, seed).trades
            for w in lengths:
                net, vol = window_flows(
                    trades["time_ns"], trades["qty"], trades["aggressor_side"], start_ns, end_ns, int(w * MINUTE)
                )
                pooled[w][0].append(net)
                pooled[w][1].append(vol)
            secs = time.perf_counter() - t0
            print(f"  seed {seed}: {len(trades):,} trades, {trades['qty'].sum():,} shares ({secs:.1f} s)")
    print(f"  {'window':>8} {'windows':>8} {'sd net':>10} {'program':>10} {'ratio':>7} {'matched':>8}")
    for w in lengths:
        net, vol = (np.concatenate(x) if x else np.zeros(0, np.int64) for x in pooled[w])
        sig = summarise(net, vol, int(w * MINUTE), pov)
        print(
            f"  {w:>6g} m {sig.windows:>8} {sig.sd_net:>10,.0f} {sig.program:>10,.0f} {sig.ratio:>7.2f}"
            f" {sig.matched:>8.0%}"
        )
    print("  sd net: standard deviation of the net aggressor-signed shares per window; program: pov x the")
    print("  window's volume (mean); ratio: program / sd net; matched: windows with |net| >= pov x volume")
    return 0


if __name__ == "__main__":
    sys.exit(main())
