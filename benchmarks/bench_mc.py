"""Monte Carlo scaling: the same experiment on 1 and on 2 Ray workers, timed and compared.

Runs ``desksim mc``'s engine (``desksim.montecarlo.monte_carlo``) on the bundled ``flash_crash_scripted``
scenario (``quick`` if that scenario is not bundled) with ``--runs`` runs at ``--workers-list``
worker counts (default 1 and 2), each into its own folder, and prints the wall time of each, the
speed-up over the first, and whether every ``runs.parquet`` holds the same digests and metrics
(all columns but the wall-clock ``wall_s``) and every ``summary.json`` the same figures (all but
``execution`` and the batch size). Wall time includes starting and stopping the local Ray (a few seconds).

    python benchmarks/bench_mc.py                      # 200 runs of flash_crash_scripted, workers 1 and 2
    python benchmarks/bench_mc.py --runs 40 --duration 1800
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402

from desksim.montecarlo import TIMING_COLUMNS, monte_carlo  # noqa: E402
from scenarios import bundled  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="flash_crash_scripted")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=None, help="simulate only the first N seconds of each run")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument(
        "--workers-list", default="1,2", help="comma-separated worker counts, run in this order (default 1,2)"
    )
    parser.add_argument("--keep", default=None, help="keep the output folders under this directory")
    args = parser.parse_args(argv)

    scenario = args.scenario
    if scenario not in bundled() and not Path(scenario).exists():
        print(f"note: scenario {scenario!r} is not bundled yet; falling back to 'quick'")
        scenario = "quick"
    workers_list = [int(w) for w in args.workers_list.split(",")]
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_mc-"))
    print(
        f"scenario {scenario}, {args.runs} runs, seed {args.seed}, duration "
        f"{'full session' if args.duration is None else f'{args.duration:g} s'}, workers {workers_list}"
    )
    results = []
    try:
        for workers in workers_list:
            out = root / f"w{workers}"
            shutil.rmtree(out, ignore_errors=True)
            t0 = time.perf_counter()
            res = monte_carlo(
                scenario,
                runs=args.runs,
                workers=workers,
                seed=args.seed,
                out=out,
                batch_size=args.batch_size,
                duration_s=args.duration,
                progress=sys.stderr.isatty(),
                report=False,
            )
            wall = time.perf_counter() - t0
            sim_s = float(res.runs["wall_s"].sum())
            start = res.summary["execution"]["ray_start_seconds"]
            print(
                f"workers {workers}: {wall:8.2f} s wall  ({args.runs / wall:6.2f} runs/s; "
                f"Ray start {start:.1f} s, kernel time inside runs {sim_s:.1f} s, "
                f"batch size {res.summary['batch_size']})"
            )
            results.append((workers, wall, out, wall - start))
        results.sort(key=lambda r: r[0])  # speed-ups against the fewest workers, whatever the run order
        base_workers, base_wall, base_out, base_work = results[0]
        base_runs = pd.read_parquet(base_out / "runs.parquet").drop(columns=list(TIMING_COLUMNS))
        base_summary = json.loads((base_out / "summary.json").read_text())
        for key in ("execution", "batch_size", "batches"):  # how the work was cut, not what it computed
            base_summary.pop(key)
        for workers, wall, out, work in results[1:]:
            runs = pd.read_parquet(out / "runs.parquet").drop(columns=list(TIMING_COLUMNS))
            summary = json.loads((out / "summary.json").read_text())
            for key in ("execution", "batch_size", "batches"):
                summary.pop(key)
            same_digests = runs["digest"].tolist() == base_runs["digest"].tolist()
            same_metrics = runs.equals(base_runs)
            print(
                f"speed-up {workers} vs {base_workers} workers: {base_wall / wall:.2f}x "
                f"({base_work / work:.2f}x without Ray start-up)"
            )
            print(f"runs.parquet digests identical: {same_digests}; all metrics identical: {same_metrics}")
            print(f"summary.json identical (apart from execution timing): {summary == base_summary}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
