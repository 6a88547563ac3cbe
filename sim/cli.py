"""`desksim` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

EXIT_BAD_INPUT = 2


def _fail(message: str) -> int:
    print(f"desksim: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def cmd_run(args: argparse.Namespace) -> int:
    from scenarios.schema import ScenarioError
    from sim import api

    try:
        scenario_name = Path(args.scenario).stem
        seed_part = f"-seed{args.seed}" if args.seed is not None else ""
        out = Path(args.out) if args.out else Path("runs") / f"{scenario_name}{seed_part}"
        result = api.run(args.scenario, args.seed, out=out, duration_s=args.duration)
    except ScenarioError as exc:
        return _fail(str(exc))
    except ValueError as exc:
        return _fail(str(exc))
    s = result.summary
    rate = s["messages_per_second"] or 0
    print(
        f"{s['scenario']} seed {s['seed']}: {s['trades']} trades, {s['orders']} orders, "
        f"{s['messages_delivered']:,} messages in {s['wall_seconds']:.2f} s ({rate:,.0f}/s)"
    )
    print(f"digest {s['digest']}")
    print(f"run folder: {out}")
    return 0


def cmd_scenarios(args: argparse.Namespace) -> int:
    from scenarios import bundled
    from scenarios.schema import ScenarioError, load

    for name, path in bundled().items():
        try:
            description = load(path).description.strip().splitlines()
            line = description[0] if description else ""
        except ScenarioError as exc:
            line = f"(invalid: {exc})"
        print(f"{name:<16} {line}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from scenarios.schema import ScenarioError, load

    try:
        scenario = load(args.file)
    except ScenarioError as exc:
        return _fail(str(exc))
    agents = sum(a.count for a in scenario.agents)
    print(f"{args.file}: ok ({scenario.name}: {agents} agents, {scenario.session.open}-{scenario.session.close})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="desksim", description="Exchange and trading-desk simulator.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one scenario")
    run.add_argument("scenario", help="scenario YAML file or bundled name")
    run.add_argument("--seed", type=int, default=None, help="root seed (default: the scenario's)")
    run.add_argument("--out", default=None, help="run folder (default runs/<scenario>-seed<N>)")
    run.add_argument("--duration", type=float, default=None, help="simulate only the first N seconds")
    run.set_defaults(func=cmd_run)

    scen = sub.add_parser("scenarios", help="list bundled scenarios")
    scen.set_defaults(func=cmd_scenarios)

    val = sub.add_parser("validate", help="check a scenario file without running it")
    val.add_argument("file")
    val.set_defaults(func=cmd_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    if getattr(args, "seed", None) is not None and args.seed < 0:
        return _fail("--seed must be >= 0")
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
