"""`desksim` command line."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

EXIT_BAD_INPUT = 2
EXIT_RECONCILIATION = 3
EXIT_INTERRUPTED = 130  # the shell's code for a command ended by Ctrl-C (128 + SIGINT)


def _fail(message: str) -> int:
    print(f"desksim: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def cmd_run(args: argparse.Namespace) -> int:
    from desksim import api
    from scenarios.schema import ScenarioError

    try:
        scenario_name = Path(args.scenario).stem
        seed_part = f"-seed{args.seed}" if args.seed is not None else ""
        out = Path(args.out) if args.out else Path("runs") / f"{scenario_name}{seed_part}"
        if out.exists() and not args.force:
            return _fail(f"{out} already exists; give --force to replace it, or another --out")
        result = api.run(
            args.scenario,
            args.seed,
            out=out,
            duration_s=args.duration,
            runtime=args.runtime,
            placement=args.placement,
            address=args.address,
            replace=args.force,
        )
    except ScenarioError as exc:
        return _fail(str(exc))
    except FileExistsError:
        return _fail(f"{out} appeared while the run was going; give --force to replace it, or another --out")
    except ValueError as exc:
        return _fail(str(exc))
    s = result.summary
    rate = s["messages_per_second"] or 0
    print(
        f"{s['scenario']} seed {s['seed']}: {s['trades']} trades, {s['orders']} orders, "
        f"{s['messages_delivered']:,} messages in {s['wall_seconds']:.2f} s ({rate:,.0f}/s)"
    )
    print(f"digest {s['digest']}")
    fall = s.get("worst_fall") or {}
    if fall.get("fall_15m_pct"):
        print(_fall_line(fall))
    rec = s.get("reconciliation") or {}
    breaks = rec.get("breaks") or []
    if breaks:
        legs = ", ".join(rec.get("legs") or ["OMS, risk officer and exchange"])
        print(
            f"desksim: error: reconciliation failed: {len(breaks)} break(s), {legs} "
            f"(see reconciliation in {out / 'summary.json'})",
            file=sys.stderr,
        )
        for b in breaks[:10]:
            print(f"  {_break_line(b)}", file=sys.stderr)
        return EXIT_RECONCILIATION
    if not args.no_report:
        from desksim.report import write_report

        print(f"report: {write_report(out)}")
    print(f"run folder: {out}")
    return 0


def _fall_line(fall: dict[str, Any]) -> str:
    """The run's worst 15-minute fall in one line, with the groups that sold most into it."""
    from desksim.analytics.anatomy import sellers_first

    level = fall.get("vwap_fall_15m_pct")
    line = f"worst 15-minute fall {fall['fall_15m_pct']:.2f} %"
    if isinstance(level, int | float):
        line += f" ({level:.2f} % in 1-minute VWAPs)"
    nets = [(name, (g.get("fall") or {}).get("net", 0)) for name, g in sellers_first(fall.get("by_group") or {})]
    sellers = [f"{name} {net:,}" for name, net in nets[:3] if net < 0]
    return line + (f"; net sellers in it: {', '.join(sellers)}" if sellers else "")


def _break_line(b: dict[str, Any]) -> str:
    """One reconciliation break as a line: its legs, what, where, and the three views."""
    where = f"{b.get('account', '')}/{b['symbol']}" if b.get("symbol") else str(b.get("account", ""))
    legs = ", ".join(b.get("legs") or ())
    if b.get("what") == "missing":
        return f"{legs}: {b.get('detail', 'a view is missing')} ({where})"
    views = f"oms={b.get('oms')} risk={b.get('risk')} exchange={b.get('exchange')}"
    return f"{legs}: {b.get('what')} break {where}: {views}"


def cmd_scenarios(args: argparse.Namespace) -> int:
    from scenarios import bundled
    from scenarios.schema import ScenarioError, load

    scenarios = bundled()
    pad = max([17, *(len(name) for name in scenarios)])  # the name column fits the longest name
    width = max(40, shutil.get_terminal_size((100, 24)).columns - pad - 1)
    for name, path in scenarios.items():
        try:
            paragraph = load(path).description.strip().split("\n\n")[0]
            line = textwrap.shorten(paragraph, width=width, placeholder=" …")  # whole words only
        except ScenarioError as exc:
            line = f"(invalid: {exc})"
        print(f"{name:<{pad}} {line}")
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


def cmd_schema(args: argparse.Namespace) -> int:
    """The scenario reference (docs/scenarios.md), or one topic of it: a kind, an action, a section."""
    from scenarios.reference import markdown, topics

    if args.topic is None:
        print(markdown(), end="")
        return 0
    found = topics().get(args.topic)
    if found is None:
        return _fail(f"schema: unknown topic {args.topic!r} (topics: {', '.join(topics())})")
    print("\n".join(found).rstrip())
    return 0


def _run_summary(folder: str) -> dict[str, Any] | str:
    """A run folder's summary.json, or the one-line error saying why it cannot be read."""
    import json

    path = Path(folder) / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{path}: cannot read run summary: {exc}"
    return summary if isinstance(summary, dict) else f"{path}: not a run summary"


def cmd_report(args: argparse.Namespace) -> int:
    """Print each run folder's summary and the realism table across them."""

    from desksim.analytics.realism import format_table

    by_folder: dict[str, tuple[int, dict]] = {}
    for folder in args.runs:
        summary = _run_summary(folder)
        if isinstance(summary, str):
            return _fail(summary)
        if summary.get("kind") == "monte_carlo":
            print(
                f"{folder}: Monte Carlo {summary['scenario']} seed {summary['seed']}, "
                f"{summary.get('completed', 0):,} runs, digest {summary['digest'][:16]}"
            )
        else:
            rate = summary.get("messages_per_second") or 0
            print(
                f"{folder}: {summary['scenario']} seed {summary['seed']}, {summary['trades']:,} trades, "
                f"{summary['messages_delivered']:,} messages, {rate:,.0f}/s, digest {summary['digest'][:16]}"
            )
            if summary.get("realism"):
                by_folder[str(folder)] = (summary["seed"], summary["realism"])
        from desksim.report import write_report

        try:
            print(f"report: {write_report(folder)}")
        except (OSError, ValueError) as exc:
            return _fail(f"{folder}: cannot write report: {exc}")
    if by_folder:
        seeds = [seed for seed, _stats in by_folder.values()]
        # one column per folder: "seed N" while seeds are unique, the folder otherwise
        unique = len(set(seeds)) == len(seeds)
        columns = {
            (f"seed {seed}" if unique else f"{folder} (seed {seed})"): st for folder, (seed, st) in by_folder.items()
        }
        print()
        print(format_table(columns))
    return 0


def cmd_realism(args: argparse.Namespace) -> int:
    """The realism table of real days (LOBSTER files), optionally beside run folders."""
    import json

    from desksim.analytics.lobster import LobsterError, read_day, realism_of
    from desksim.analytics.realism import format_table

    columns: dict[str, dict[str, Any]] = {}
    for message in args.lobster:
        try:
            day = read_day(message, tick_size=args.tick_size)
        except LobsterError as exc:
            return _fail(str(exc))
        stats = realism_of(day)
        c = day.counts
        print(
            f"{message}: {day.label}, {c['messages']:,} messages, {c['submissions']:,} new orders, "
            f"{c['deletions']:,} deletions, {c['executions'] + c['hidden_executions']:,} executions"
        )
        columns[day.label if day.label not in columns else f"{day.label} ({message})"] = stats
    for folder in args.runs:
        summary = _run_summary(folder)
        if isinstance(summary, str):
            return _fail(summary)
        if not summary.get("realism"):
            return _fail(f"{folder}: no realism statistics in its summary.json (a Monte Carlo folder?)")
        columns[f"{summary['scenario']} seed {summary['seed']}"] = summary["realism"]
    if not columns:
        return _fail("realism: give LOBSTER message files (--lobster) or run folders")
    print()
    print(format_table(columns))
    if args.json:
        Path(args.json).write_text(json.dumps(columns, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"statistics: {args.json}")
    return 0


def cmd_mc(args: argparse.Namespace) -> int:
    """Monte Carlo on Ray: batched seeded runs -> runs.parquet, summary.json, report.html."""
    from desksim.montecarlo import monte_carlo

    cpus = os.cpu_count() or 1
    if args.workers is not None and args.workers > cpus and args.address is None:
        print(
            f"desksim: warning: --workers {args.workers} is more than this machine's {cpus} CPUs; "
            "the workers will share them and each run will be slower",
            file=sys.stderr,
        )
    out = Path(args.out) if args.out else Path("runs") / f"{Path(args.scenario).stem}-mc"
    try:
        res = monte_carlo(
            args.scenario,
            runs=args.runs,
            workers=args.workers,
            seed=args.seed,
            out=out,
            batch_size=args.batch_size,
            address=args.address,
            resume=args.resume,
            duration_s=args.duration,
            progress=not args.quiet,
            runtime=args.runtime,
            placement=args.placement,
        )
    except (ValueError, ConnectionError, RuntimeError) as exc:  # ScenarioError; BatchFailed names the batch
        return _fail(" ".join(str(exc).split()))
    except KeyboardInterrupt as exc:  # montecarlo.Interrupted says how to resume
        print(f"desksim: {str(exc) or 'interrupted'}", file=sys.stderr)
        return 130
    s = res.summary
    ex = s["execution"]
    rate = ex["runs_per_second"]
    print(
        f"{s['scenario']} x{s['completed']} runs (seed {s['seed']}, {s['batches']} batches of {s['batch_size']}, "
        f"{ex['batches_resumed']} already done): {ex['wall_seconds']:.1f} s" + (f", {rate:,.2f} runs/s" if rate else "")
    )
    what = "desk P&L" if s["pnl_metric"] == "desk_pnl" else "market intraday drawdown %"
    for level in s["var"]:
        var, es = s["var"][level], s["es"][level]
        lo, hi = s["var_ci"][level]
        if var is not None:
            ci = f" [{lo:.4g}, {hi:.4g}]" if lo is not None else ""
            print(f"  VaR {level}% of {what}: {var:.4g}{ci}   ES: {es:.4g}")
        else:  # too few runs for this level: say how many it needs
            print(f"  VaR {level}% of {what}: {s.get('status', {}).get(level) or 'n/a'}")
    events = ", ".join(f"{k.replace('_', ' ')} {v['frequency']:.1%}" for k, v in s["events"].items())
    print(f"  events (share of runs): {events}")
    if "crash" in s:
        from desksim.mc.summary import crash_lines

        print("\n".join(crash_lines(s["crash"])))
    if s.get("realism", {}).get("targets"):
        from desksim.mc.summary import realism_lines

        print("\n".join(realism_lines(s["realism"])))
    print(f"digest {s['digest']}")
    print(f"Monte Carlo folder: {out} (runs.parquet, summary.json, report.html)")
    return 0


def _mc_runs(folder: str) -> pd.DataFrame | str:
    """A Monte Carlo folder's runs.parquet, or the one-line error saying why it cannot be read."""
    import pandas as pd

    path = Path(folder) / "runs.parquet"
    if not path.is_file():
        return f"{folder}: no runs.parquet (not a desksim mc folder)"
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        return f"{path}: cannot read Monte Carlo runs: {' '.join(str(exc).split())}"


def cmd_compare(args: argparse.Namespace) -> int:
    """Two Monte Carlo folders run by run (same run seeds): realism targets, crash criteria, outcomes."""
    import json

    from desksim.mc.compare import CompareError, compare_lines, paired

    frames = [_mc_runs(folder) for folder in (args.base, args.variant)]
    for frame in frames:
        if isinstance(frame, str):
            return _fail(frame)
    try:
        result = paired(*frames)  # type: ignore[arg-type]  # (strings returned above)
    except CompareError as exc:
        return _fail(str(exc))
    print("\n".join(compare_lines(result, args.base, args.variant)))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"comparison: {args.json}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from desksim.serve import options_from_args, run_server

    return run_server(options_from_args(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="desksim", description="Exchange and trading-desk simulator.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one scenario")
    run.add_argument("scenario", help="scenario YAML file or bundled name")
    run.add_argument("--seed", type=int, default=None, help="root seed (default: the scenario's)")
    run.add_argument("--out", default=None, help="run folder (default runs/<scenario>-seed<N>)")
    run.add_argument("--duration", type=float, default=None, help="simulate only the first N seconds")
    run.add_argument("--no-report", action="store_true", help="skip report.html and the PNG plots")
    run.add_argument("--force", action="store_true", help="replace the run folder if it exists")
    run.add_argument("--runtime", choices=("local", "ray"), default="local", help="where the actors run")
    run.add_argument("--placement", default=None, help="ray runtime: default or core (actor groups per process)")
    run.add_argument("--address", default=None, help="ray runtime: join this Ray cluster")
    run.set_defaults(func=cmd_run)

    scen = sub.add_parser("scenarios", help="list bundled scenarios")
    scen.set_defaults(func=cmd_scenarios)

    val = sub.add_parser("validate", help="check a scenario file without running it")
    val.add_argument("file")
    val.set_defaults(func=cmd_validate)
    sch = sub.add_parser("schema", help="scenario reference: agent kinds, event actions, desk and risk settings")
    sch.add_argument("topic", nargs="?", default=None, help="an agent kind, an action or a section (default: all)")
    sch.set_defaults(func=cmd_schema)
    rep = sub.add_parser("report", help="summarise run folders (realism statistics per seed)")
    rep.add_argument("runs", nargs="+", help="run folders")
    rep.set_defaults(func=cmd_report)
    rea = sub.add_parser(
        "realism", help="realism statistics of real days (LOBSTER files) beside run folders, same code"
    )
    rea.add_argument("runs", nargs="*", help="run folders to put beside the real days")
    rea.add_argument(
        "--lobster",
        action="append",
        default=[],
        metavar="MESSAGE_CSV",
        help="a LOBSTER message file (its orderbook file is found by name); repeat for more days",
    )
    rea.add_argument("--tick-size", type=float, default=0.01, help="price grid of the LOBSTER days (default 0.01)")
    rea.add_argument("--json", default=None, metavar="FILE", help="also write every column's statistics as JSON")
    rea.set_defaults(func=cmd_realism)

    mc = sub.add_parser("mc", help="Monte Carlo: many seeded runs of a scenario on Ray")
    mc.add_argument("scenario", help="scenario YAML file or bundled name")
    mc.add_argument("--runs", type=int, default=100, help="number of runs (default 100)")
    mc.add_argument("--workers", type=int, default=None, help="CPUs of the local Ray (default: all)")
    mc.add_argument("--seed", type=int, default=None, help="root seed (default: the scenario's)")
    mc.add_argument("--out", default=None, help="output folder (default runs/<scenario>-mc)")
    mc.add_argument("--batch-size", type=int, default=None, help="runs per Ray task (default: automatic)")
    mc.add_argument("--resume", action="store_true", help="complete an interrupted --out folder")
    mc.add_argument("--address", default=None, help="join an existing Ray cluster (e.g. 127.0.0.1:6379)")
    mc.add_argument("--duration", type=float, default=None, help="simulate only the first N seconds of each run")
    mc.add_argument("--quiet", action="store_true", help="no progress bar")
    mc.add_argument(
        "--runtime",
        choices=("local", "ray"),
        default="local",
        help="local: whole runs in parallel workers; ray: one run at a time, actors spread over Ray processes",
    )
    mc.add_argument("--placement", default=None, help="with --runtime ray: default or core")
    mc.set_defaults(func=cmd_mc)

    cmp_ = sub.add_parser(
        "compare", help="two Monte Carlo folders run by run (same --seed): realism, crash criteria, desk outcomes"
    )
    cmp_.add_argument("base", help="Monte Carlo folder of the reference (desksim mc ... --out)")
    cmp_.add_argument("variant", help="Monte Carlo folder of the change, run with the same --seed and --runs")
    cmp_.add_argument("--json", default=None, metavar="FILE", help="also write the comparison as JSON")
    cmp_.set_defaults(func=cmd_compare)

    srv = sub.add_parser("serve", help="FIX 4.4 exchange on loopback (desksim's own FIX session layer over TCP)")
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    srv.add_argument("--port", type=int, default=9878, help="TCP port (default 9878)")
    srv.add_argument("--scenario", default="baseline", help="scenario file or bundled name (default baseline)")
    srv.add_argument("--seed", type=int, default=None, help="root seed (default: the scenario's)")
    srv.add_argument("--profile", choices=("default", "conformance"), default="default")
    srv.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall-clock second")
    srv.add_argument("--duration", type=float, default=None, help="stop after S wall-clock seconds")
    srv.add_argument("--store", default=None, help="write the FIX message log (fix_messages.csv) here at exit")
    srv.add_argument(
        "--out", default=None, help="write the session as a run folder at exit (orders, trades, FIX messages)"
    )
    srv.add_argument("--force", action="store_true", help="let --out replace an existing folder")
    srv.add_argument("--no-cancel-on-disconnect", dest="cancel_on_disconnect", action="store_false")
    srv.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    srv.add_argument("--step-ms", type=float, default=1.0, help="kernel step in wall-clock ms (default 1)")
    srv.add_argument(
        "--risk",
        default=None,
        metavar="FILE",
        help="pre-trade limits of the FIX sessions: a YAML file shaped like a scenario's desk.risk "
        "(default: the scenario's desk.risk, if it has a desk; else no gate)",
    )
    srv.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):  # `desksim ... | head` ends quietly
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    if getattr(args, "seed", None) is not None and args.seed < 0:
        return _fail("--seed must be >= 0")
    try:
        return func(args)
    except KeyboardInterrupt:
        print(f"desksim: interrupted; {_after_interrupt(args)}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _after_interrupt(args: argparse.Namespace) -> str:
    """What the user can do after Ctrl-C (``mc`` says how to resume itself)."""
    if args.command == "run":
        return "no run folder was written (folders are written whole or not at all); run the command again"
    return "nothing was written"


if __name__ == "__main__":
    sys.exit(main())
