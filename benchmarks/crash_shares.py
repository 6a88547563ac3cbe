"""Flash-crash criteria across Monte Carlo runs: the share of runs meeting each, per scenario.

Runs ``--runs`` seeded runs of each scenario (default ``flash_crash``, its counterfactual under
today's rules ``flash_crash_current`` and ``baseline``) through the project's Monte Carlo API
(``desksim.montecarlo.monte_carlo``, a local Ray with ``--workers`` CPUs) and prints, per
scenario, the share of runs meeting each criterion of desksim/analytics/crash.py (fall >= 5 % in
15 min, and >= 3 % for baselines; volume >= 3x the hour before; touch depth < 1/4 of normal;
maker-to-maker share rises; >= half of the fall recovered within 20 min; all five together) with
its seeded 95 % percentile-bootstrap interval, over all runs and over the runs that fell >= 5 %,
then the shares side by side and the wall time per run. With ``--without-program`` each scenario is
also run without its ``start_program`` events (``scenarios/variants.py``): the same market without
its sell program, so a crash that happens there is not the program's.

    python benchmarks/crash_shares.py                               # 100 runs of each, 2 workers
    python benchmarks/crash_shares.py --runs 8 --scenarios flash_crash
    python benchmarks/crash_shares.py --runs 20 --duration 1800 --out runs/crash-shares
    python benchmarks/crash_shares.py --runs 24 --scenarios flash_crash --without-program
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

from desksim.mc.summary import crash_lines  # noqa: E402
from desksim.montecarlo import monte_carlo  # noqa: E402
from scenarios.variants import write_without_action  # noqa: E402

DEFAULT_SCENARIOS = "flash_crash,flash_crash_current,baseline"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=DEFAULT_SCENARIOS, help=f"comma-separated (default {DEFAULT_SCENARIOS})")
    parser.add_argument("--runs", type=int, default=100, help="runs per scenario (default 100)")
    parser.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray (default 2)")
    parser.add_argument("--seed", type=int, default=1, help="root seed of every experiment (default 1)")
    parser.add_argument("--duration", type=float, default=None, help="simulate only the first N seconds of each run")
    parser.add_argument("--out", default=None, help="keep each experiment's folder under this directory")
    parser.add_argument(
        "--without-program",
        action="store_true",
        help="also run each scenario without its start_program events (is the crash the program's?)",
    )
    args = parser.parse_args(argv)

    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="crash_shares-"))
    if args.without_program:
        root.mkdir(parents=True, exist_ok=True)
        names = [v for n in names for v in (n, str(write_without_action(n, "start_program", root)))]
    span = "full session" if args.duration is None else f"first {args.duration:g} s"
    print(f"{len(names)} scenarios x {args.runs} runs, seed {args.seed}, {args.workers} workers, {span}")
    results = {}
    for name in names:
        label = Path(name).stem
        t0 = time.perf_counter()
        res = monte_carlo(
            name,
            runs=args.runs,
            workers=args.workers,
            seed=args.seed,
            out=root / label,
            duration_s=args.duration,
            progress=False,
            report=False,
        )
        wall = time.perf_counter() - t0
        s = res.summary
        sim = res.runs["wall_s"].astype(float)
        results[label] = s["crash"]
        print(
            f"\n{label}: {s['completed']} runs in {wall:.1f} s wall ({wall / max(1, s['completed']):.2f} s per run "
            f"on {args.workers} workers; one run simulates in {sim.mean():.1f} s on average, {sim.max():.1f} s at most)"
        )
        print("\n".join(crash_lines(s["crash"])))
        for key in ("fall_15m_pct", "vwap_fall_15m_pct"):
            m = s["crash"]["measures"].get(key, {})
            if m.get("n"):
                print(f"  {key}: median {m['median']:.2f} %, p95 {m['p95']:.2f} %, max {m['max']:.2f} %")
        m = s["crash"]["measures"].get("crash_one_sided_share", {})
        if m.get("n"):  # a check on the criteria: a real large-cap book is never one-sided
            print(f"  share of the crash with a one-sided book: median {m['median']:.3f}, p95 {m['p95']:.3f}")
        print(f"  (folder {root / label})")
    if len(results) > 1:
        keys = list(next(iter(results.values()))["criteria"])
        width = max(12, *(len(n) for n in results))
        print("\nshare of all runs [95% bootstrap interval]")
        print(f"  {'criterion':<22}" + "".join(f" {n:>{width + 16}}" for n in results))
        for key in keys:
            cells = []
            for crash in results.values():
                c = crash["criteria"][key]
                lo, hi = c["ci"]
                cells.append(f"{c['share']:.0%} [{lo:.0%}, {hi:.0%}]" if c["n"] else "-")
            print(f"  {key:<22}" + "".join(f" {cell:>{width + 16}}" for cell in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
