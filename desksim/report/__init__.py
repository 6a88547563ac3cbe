"""Reports people read: PNG plots and one self-contained ``report.html`` per run folder.

    from desksim.report import write_report
    write_report("runs/base")      # a `desksim run` folder: price, spread/depth, desk, risk
    write_report("runs/mc")        # a `desksim mc` folder (runs.parquet): P&L, VaR/ES, events

Optional tables are used when the folder has them: ``halts.parquet`` (time_ns, event, ...),
``risk_events.parquet`` (time_ns, kind, ...), ``pnl.parquet`` (time_ns, position, *pnl*). Each
file is written atomically (temporary name, then rename); the run's data files are not touched.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from actors.units import DEFAULT_TICK_SIZE
from desksim.analytics.targets import TARGETS
from desksim.output import write_text
from desksim.report import html as H

REPORT = "report.html"


def _read(folder: Path, name: str) -> pd.DataFrame | None:
    path = folder / f"{name}.parquet"
    if not path.exists():
        return None
    return pd.read_parquet(path)


def _write_text(path: Path, text: str) -> Path:
    return write_text(path, text)


def write_report(run_dir: str | Path) -> Path:
    """Write the PNG plots and ``report.html`` into ``run_dir``; return the HTML path.

    Raises ``ValueError`` (one line) when the folder has no readable ``summary.json``.
    """
    folder = Path(run_dir)
    path = folder / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read run summary: {exc}") from None
    if (folder / "runs.parquet").exists() or summary.get("kind") == "monte_carlo":
        return _monte_carlo_report(folder, summary)
    return _run_report(folder, summary)


# --------------------------------------------------------------------------- one run


def _clock_ns(text: Any) -> int | None:
    from sim.clock import parse_clock

    try:
        return parse_clock(str(text))
    except ValueError:
        return None


def _clock(ns: Any) -> str:
    from sim.clock import format_clock

    try:
        return format_clock(int(ns))
    except (TypeError, ValueError):
        return str(ns)


def realism_rows(stats: dict[str, Any]) -> list[list[str]]:
    """Rows (fact, statistic, value, real-market range, real days, pass/fail HTML) for every realism
    target (desksim/analytics/targets.py); a statistic the run could not compute shows "n/a"."""
    from desksim.analytics.targets import TARGETS

    rows = []
    for t in TARGETS:
        value = stats.get(t.key)
        ok = t.check(value)
        rows.append(
            [
                H.esc(t.label),
                H.esc(t.key),
                H.esc(H.fmt(value, 4)),
                H.esc(t.text),
                H.esc(t.real),
                "n/a" if ok is None else H.mark(ok),
            ]
        )
    return rows


def _event_table(frame: pd.DataFrame | None, limit: int = 60) -> str:
    if frame is None or not len(frame):
        return ""
    shown = frame.head(limit)
    headers = list(shown.columns)
    rows = []
    for rec in shown.itertuples(index=False):
        rows.append([_clock(v) if h == "time_ns" else _plain(v) for h, v in zip(headers, rec, strict=True)])
    more = f"<p>({len(frame) - limit:,} more rows in the Parquet file)</p>" if len(frame) > limit else ""
    return H.table(["time" if h == "time_ns" else h for h in headers], rows) + more


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def desk_outcome_rows(outcome: dict[str, Any]) -> list[list[Any]]:
    """The "Desk outcome" table of a run report (desksim/analytics/desk_outcome.py)."""
    reasons = ", ".join(f"{k}: {v}" for k, v in (outcome.get("orders_rejected_by_reason") or {}).items())
    kinds = ", ".join(f"{k}: {v}" for k, v in (outcome.get("limit_breaches_by_kind") or {}).items())
    kill = f"fired at {outcome.get('kill_switch_at')}" if outcome.get("kill_switch") else "not fired"
    recon = outcome.get("reconciled")
    return [
        ["P&L (currency, gross of fees)", outcome.get("pnl")],
        ["fees (currency; negative: net rebate)", outcome.get("fees")],
        ["P&L net of fees (currency)", outcome.get("pnl_net")],
        ["max drawdown (currency)", outcome.get("max_drawdown")],
        ["worst position (shares)", f"{H.fmt(outcome.get('worst_position'))} at {outcome.get('worst_position_at')}"],
        ["final position (shares)", outcome.get("final_position")],
        ["limit breaches", f"{H.fmt(outcome.get('limit_breaches'))}" + (f" ({kinds})" if kinds else "")],
        ["kill switch", kill],
        ["orders rejected", f"{H.fmt(outcome.get('orders_rejected'))}" + (f" ({reasons})" if reasons else "")],
        ["orders rejected in halts", outcome.get("orders_rejected_in_halts")],
        ["reconciled (OMS vs risk officer vs exchange)", "n/a" if recon is None else "yes" if recon else "NO"],
        *kill_rows(outcome.get("kill") or {}),
    ]


def kill_rows(kill: dict[str, Any]) -> list[list[Any]]:
    """What the kill switch did to the desk's session (``desk_outcome.kill``): nothing when it never fired."""
    if not kill.get("fired"):
        return []
    kinds = ", ".join(f"{k}: {v}" for k, v in (kill.get("rejected_by_kind") or {}).items())
    released = kill.get("released_at")
    phase = (
        f" ({kill.get('reduce_only_from')} – {kill.get('reduce_only_until')})" if kill.get("reduce_only_orders") else ""
    )
    return [
        [
            "kill: session blocked",
            f"{kill.get('at')} ({kill.get('reason')})" + (f", released {released}" if released else ", to the close"),
        ],
        [
            "kill: resting orders canceled at the exchange",
            f"{H.fmt(kill.get('canceled_orders'))} (of {H.fmt(kill.get('resting_orders'))} resting at the kill)",
        ],
        [
            "kill: new orders rejected while blocked",
            f"{H.fmt(kill.get('rejected_orders'))}" + (f" ({kinds})" if kinds else ""),
        ],
        [
            "kill: reduce-only orders accepted (shares filled)",
            f"{H.fmt(kill.get('reduce_only_orders'))} ({H.fmt(kill.get('reduce_only_filled_qty'))}){phase}",
        ],
        [
            "kill: position at the kill → at the close (shares)",
            f"{H.fmt(kill.get('position_at_kill'))} → {H.fmt(kill.get('position_at_close'))}",
        ],
    ]


FEE_COLUMNS = ("actors", "fills", "maker_qty", "taker_qty", "auction_qty", "pnl_gross_ccy", "fees_paid_ccy",
               "rebates_ccy", "fees_ccy", "pnl_net_ccy")  # fmt: skip


def fee_table(fees: dict[str, Any]) -> str:
    """Every participant group's (and market maker's) gross P&L, fees paid, rebates earned and
    net P&L (currency; desksim/analytics/fees.py)."""
    r = fees.get("rates") or {}
    note = (
        f"<p>venue {H.esc(str(fees.get('venue')))}: maker {H.fmt(r.get('maker_per_share'))}, taker "
        f"{H.fmt(r.get('taker_per_share'))}, auction {H.fmt(r.get('auction_per_share'))} per share "
        "(negative: a rebate); P&amp;L marked at the last trade; the desk row is its FIX account.</p>"
        if fees.get("charged")
        else "<p>No fee schedule: gross = net (P&amp;L marked at the last trade).</p>"
    )
    rows = [[g, *(v.get(c) for c in FEE_COLUMNS)] for g, v in (fees.get("groups") or {}).items()]
    rows += [[f"maker {m}", *(v.get(c) for c in FEE_COLUMNS)] for m, v in (fees.get("makers") or {}).items()]
    return note + H.table(["group", *FEE_COLUMNS], rows)


FALL_PHASES = ("before", "fall", "recovery")


def worst_fall_html(fall: dict[str, Any], open_ns: int | None) -> str:
    """The run's worst 15-minute fall (the 2010 measures) and who traded it: each participant
    group's net shares before, during and after it, its share of the fall's volume and how much of
    that it took as the aggressor (desksim/analytics/anatomy.py)."""

    def when(seconds: Any) -> str:
        if not isinstance(seconds, int | float) or open_ns is None:
            return "–"
        return _clock(open_ns + round(seconds * 1e9))[:8]

    pct = fall.get("fall_15m_pct")
    facts: list[tuple[str, Any]] = [
        ("worst fall within 15 minutes (prints), %", pct),
        ("the same on 1-minute VWAPs (the level), %", fall.get("vwap_fall_15m_pct")),
        ("the same on the mid, %", fall.get("mid_fall_15m_pct")),
        ("from / to", f"{when(fall.get('fall_15m_start_s'))} – {when(fall.get('fall_15m_trough_s'))}"),
        ("share won back within 20 minutes", fall.get("recovered_20m_share")),
        ("volume per minute / the hour before (2010: ≥ 3)", fall.get("crash_volume_ratio")),
        ("least touch depth / normal (2010: < 0.25)", fall.get("crash_depth_min_ratio")),
        ("maker-to-maker share / before (2010: > 1)", fall.get("crash_m2m_ratio")),
        ("share of the crash with a one-sided book (real: 0)", fall.get("crash_one_sided_share")),
    ]
    out = H.table(["", "value"], [[k, round(v, 3) if isinstance(v, float) else v] for k, v in facts])
    groups = fall.get("by_group") or {}
    if not groups:
        return out

    from desksim.analytics.anatomy import sellers_first

    rows = []
    for name, g in sellers_first(groups):
        during = g.get("fall") or {}
        nets = [(g.get(ph) or {}).get("net") for ph in FALL_PHASES]
        rows.append([name, g.get("kind", ""), *nets, during.get("volume_share_pct"), during.get("taker_share_pct")])
    headers = ["group", "kind", "net before", "net in the fall", "net in the recovery", "% of the fall's volume",
               "% of it taken"]  # fmt: skip
    note = (
        "<p>Net shares bought (sold: negative) in the hour before the fall, in the fall and in the 20 minutes "
        "after its trough; sellers into the fall first.</p>"
    )
    return out + note + H.table(headers, rows)


def _kill_marks(s: dict[str, Any]) -> tuple[int | None, tuple[int, int] | None]:
    """(kill time, reduce-only phase) in ns from ``desk_outcome.kill``, for the risk timeline."""
    kill = (s.get("desk_outcome") or {}).get("kill") or {}
    if not kill.get("fired"):
        return None, None
    a, b = kill.get("reduce_only_from_ns"), kill.get("reduce_only_until_ns")
    return kill.get("time_ns"), (int(a), int(b)) if a is not None and b is not None else None


def _run_report(folder: Path, s: dict[str, Any]) -> Path:
    from desksim.report import plots as P

    tick = float(s.get("tick_size") or DEFAULT_TICK_SIZE)
    trades, quotes = _read(folder, "trades"), _read(folder, "quotes")
    halts, risk_events, pnl = _read(folder, "halts"), _read(folder, "risk_events"), _read(folder, "pnl")
    desk_pnl, events = _read(folder, "desk_pnl"), _read(folder, "scenario_events")
    start_ns, end_ns = _clock_ns(s.get("sim_start")), _clock_ns(s.get("sim_end"))
    name = f"{s.get('scenario', '?')} seed {s.get('seed', '?')}"
    figs: list[tuple[Path | None, str]] = [
        (
            P.plot_price(
                folder / "price.png",
                trades,
                tick,
                halts,
                risk_events,
                end_ns,
                f"Trade price — {name}",
                events,
                start_ns,
            ),
            "Trade price (min/max band per time bin for long runs); halts shaded, risk events x, kill switch dashed, "
            "scenario events dotted.",
        ),
        (
            P.plot_spread_depth(folder / "spread_depth.png", quotes, tick, halts, end_ns, "", events, start_ns),
            "Quoted spread (currency) and size (shares) at the best bid and ask over time; scenario events dotted.",
        ),
        (
            P.plot_desk(folder / "desk.png", pnl, desk_pnl, tick, halts, events, start_ns, end_ns),
            "Position (shares) and P&L (currency): the account's books in the OMS (marked at the last trade) and the "
            "desk strategy's own fills (marked at the mid); halts shaded, scenario events dotted.",
        ),
        (
            P.plot_risk_timeline(folder / "risk_timeline.png", risk_events, end_ns, start_ns, events, *_kill_marks(s)),
            "Risk events by kind; the kill switch's engaged intervals shaded, the kill dashed, the reduce-only "
            "phase (orders accepted from a killed session that only reduce its position) green; scenario "
            "events dotted.",
        ),
    ]
    price = s.get("price") or {}
    rate = s.get("messages_per_second")
    overview: list[list[Any]] = [
        ["scenario", s.get("scenario")],
        ["source", s.get("source")],
        ["seed", s.get("seed")],
        ["digest", s.get("digest")],
        ["runtime", s.get("runtime")],
        ["session", f"{s.get('sim_start')} – {s.get('sim_end')} ({H.fmt(s.get('sim_seconds'))} s simulated)"],
        ["actors", s.get("actors")],
        ["orders", s.get("orders")],
        ["trades", s.get("trades")],
        ["volume", s.get("volume")],
        ["messages delivered", s.get("messages_delivered")],
        ["wall time (s)", s.get("wall_seconds")],
        ["messages / s", rate],
        ["price open / high / low / close", " / ".join(H.fmt(price.get(k)) for k in ("open", "high", "low", "close"))],
    ]
    for key in ("pnl", "desk", "oms", "risk", "reconciliation"):
        if isinstance(s.get(key), dict):
            overview.extend([f"{key}.{k}", _short(v)] for k, v in s[key].items())
    sections = [("Summary", H.table(["", "value", "unit"], [[*row, _unit(row[0], row[1])] for row in overview]))]
    outcome = s.get("desk_outcome")
    if isinstance(outcome, dict):  # a desk run leads with what happened to the desk
        sections.insert(0, ("Desk outcome", H.table(["", "value"], desk_outcome_rows(outcome))))
    fall = s.get("worst_fall")
    if isinstance(fall, dict) and fall.get("fall_15m_pct"):
        sections.insert(
            1 if isinstance(outcome, dict) else 0, ("Worst fall and who traded it", worst_fall_html(fall, start_ns))
        )
    fees = s.get("fees")
    if isinstance(fees, dict) and fees.get("groups"):
        sections.append(("Fees and P&L by participant group", fee_table(fees)))
    sections.append(("Plots", "\n".join(H.figure(p, c) for p, c in figs if p is not None)))
    stats = s.get("realism")
    if stats:
        sections.extend(_realism_sections(folder, s, stats, trades, quotes, name))
    sections.append(("Halts", _event_table(halts)))
    sections.append(("Risk events", _event_table(risk_events)))
    subtitle = f"desksim {s.get('desksim', '')} · python {s.get('python', '')} · folder {folder.name}"
    return _write_text(folder / REPORT, H.page(f"desksim run: {name}", subtitle, sections))


def _realism_sections(
    folder: Path, s: dict[str, Any], stats: dict[str, Any], trades: Any, quotes: Any, name: str
) -> list[tuple[str, str]]:
    """The realism table against real-market ranges, its plots and the other statistics."""
    from desksim.analytics.targets import BY_KEY, SOURCE
    from desksim.report import realism_plots as RP

    open_ns, close_ns = _clock_ns(s.get("sim_start")), _clock_ns(s.get("sim_end"))
    figs: list[tuple[Path | None, str]] = [
        (
            RP.plot_intraday(folder / "intraday.png", trades, quotes, open_ns, close_ns, f"Intraday shape — {name}")
            if open_ns is not None and close_ns is not None
            else None,
            "Volume per minute and mean quoted spread per 15 minutes; the first and last 30 minutes shaded.",
        ),
        (
            RP.plot_autocorrelation(folder / "autocorrelation.png", stats),
            "Autocorrelation of |r| (volatility clustering) and corr(r_t, r_t+k²) (leverage) of 1-minute returns.",
        ),
    ]
    basis = stats.get("return_basis", "trade")
    note = (
        f"<p>Returns are 1-minute {H.esc(basis)}-price returns. Ranges: {H.esc(SOURCE)}. "
        "Definitions: desksim/analytics (realism.py, orderflow.py, intraday.py).</p>"
    )
    table = H.table(["fact", "statistic", "value", "range", "real days", "result"], realism_rows(stats), raw=True)
    skip = set(BY_KEY) | {"grades"}
    other = [[k, _short(v)] for k, v in stats.items() if k not in skip]
    return [
        ("Realism (stylised facts, order flow, intraday shape against real markets)", table + note),
        ("Realism plots", "\n".join(H.figure(p, c) for p, c in figs if p is not None)),
        ("Other market statistics", H.table(["statistic", "value"], other)),
    ]


def _unit(key: Any, value: Any) -> str:
    """The unit of a summary figure (desksim/units.py, docs/summary.md); blank for text."""
    from desksim.units import unit_of

    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    return unit_of(str(key).replace(" ", "_")) or ""


def _short(value: Any) -> Any:
    if isinstance(value, list | dict):
        text = json.dumps(value, default=str)
        return text if len(text) <= 160 else text[:157] + "..."
    return value


# --------------------------------------------------------------------------- Monte Carlo


def _monte_carlo_report(folder: Path, s: dict[str, Any]) -> Path:
    from desksim.analytics.realism import CHECKS
    from desksim.report import plots as P

    runs = _read(folder, "runs")
    if runs is None:
        raise ValueError(f"{folder}: a Monte Carlo folder without runs.parquet (interrupted? use --resume)")
    metric = s.get("pnl_metric", "market_return_pct")
    basis = s.get("risk_basis") or {}
    label = {
        "desk_pnl": "desk P&L over the run (currency)",
        "market_mid_max_drawdown_pct": "market's intraday drawdown of the mid (%)",
    }.get(metric, "market return over the run (%)")
    var, es = s.get("var") or {}, s.get("es") or {}
    events = s.get("events") or {}
    rates = (s.get("realism") or {}).get("pass_rates") or {}
    figs = [
        (
            P.plot_pnl_histogram(folder / "pnl_hist.png", runs[metric].to_numpy(dtype=np.float64), var, es, label),
            f"Distribution of {label}; VaR (solid) and ES (dotted) at 95 / 97.5 / 99 %.",
        ),
        (
            P.plot_bars(
                folder / "events.png",
                {k: v.get("frequency") for k, v in events.items()},
                "Event frequencies",
                "fraction of runs",
            ),
            "Fraction of runs in which each event happened at least once.",
        ),
        (P.plot_market_outcomes(folder / "market.png", runs), "The market's worst fall and its recovery, per run."),
        (
            P.plot_bars(
                folder / "realism.png",
                {k.replace("_", " "): v for k, v in rates.items()},
                "Realism checks: pass rate across runs",
                "fraction of runs passing",
            ),
            "Share of runs whose 1-minute returns pass each stylised-fact check.",
        ),
    ]
    ex = s.get("execution") or {}
    overview: list[list[Any]] = [
        ["scenario", s.get("scenario")],
        ["source", s.get("source")],
        ["root seed", s.get("seed")],
        ["runs (completed)", f"{H.fmt(s.get('runs'))} ({H.fmt(s.get('completed'))})"],
        ["batches × size", f"{H.fmt(s.get('batches'))} × {H.fmt(s.get('batch_size'))}"],
        ["simulated duration per run (s)", s.get("duration_s") if s.get("duration_s") is not None else "full session"],
        ["digest of run digests", s.get("digest")],
        ["outcome metric", label],
        ["workers / address", f"{H.fmt(ex.get('workers'))} / {H.fmt(ex.get('address'))}"],
        ["wall time (s)", ex.get("wall_seconds")],
        ["runs / s", ex.get("runs_per_second")],
        ["nodes (batches run on each)", _short(ex.get("nodes"))],
    ]
    risk_rows = []
    status = s.get("status") or {}
    unit = basis.get("unit", "")
    for key in sorted(var, key=float):
        vci, eci = (s.get("var_ci") or {}).get(key, [None, None]), (s.get("es_ci") or {}).get(key, [None, None])
        if var.get(key) is None and str(status.get(key, "")).startswith("n/a"):
            risk_rows.append([f"{key} %", status[key], "", "", ""])
            continue
        risk_rows.append(
            [
                f"{key} %",
                f"{H.fmt(var.get(key))} {unit}",
                f"[{H.fmt(vci[0])}, {H.fmt(vci[1])}]",
                f"{H.fmt(es.get(key))} {unit}",
                f"[{H.fmt(eci[0])}, {H.fmt(eci[1])}]",
            ]
        )
    risk_note = _risk_note(s, label)
    event_rows = [[k.replace("_", " "), v.get("runs"), v.get("frequency"), v.get("total")] for k, v in events.items()]
    realism_rows_ = [[name.replace("_", " "), target, rates.get(name)] for name, (_key, target) in CHECKS.items()]
    realism_rows_.append(["all four", "", (s.get("realism") or {}).get("all_pass_rate")])
    market = s.get("market") or {}
    stat_keys = ("n", "mean", "std", "min", "p05", "median", "p95", "max")
    dist_rows = [[k.replace("_", " "), *(v.get(x) for x in stat_keys)] for k, v in market.items()]
    dist_rows += [
        [f"desk {k.replace('_', ' ')}", *(v.get(x) for x in stat_keys)]
        for k, v in (s.get("desk") or {}).items()
        if v.get("n")
    ]
    param_rows = [[k, *(v.get(x) for x in stat_keys)] for k, v in (s.get("parameters") or {}).items()]
    crash_html = crash_tables(s.get("crash") or {}, stat_keys)
    worst = runs.sort_values([metric, "run"], kind="stable").head(10)
    params = [c for c in runs.columns if c.startswith("param.")]
    worst_cols = [
        "run",
        "run_seed",
        metric,
        "market_max_drawdown_pct",
        "market_time_to_recover_s",
        "halts",
        "kill_switch",
        *params,
    ]
    worst_rows = [[_plain(v) for v in rec] for rec in worst[worst_cols].itertuples(index=False)]
    sections = [
        ("Summary", H.table(["", "value"], overview)),
        (
            "Value at risk and expected shortfall",
            H.table(["level", "VaR", "VaR CI", "ES", "ES CI"], risk_rows) + risk_note,
        ),
        ("Plots", "\n".join(H.figure(p, c) for p, c in figs if p is not None)),
        ("Event frequencies", H.table(["event", "runs", "frequency", "total"], event_rows)),
        ("Realism checks across runs", H.table(["check", "target", "pass rate"], realism_rows_)),
        ("Realism against real days across runs", realism_target_table(s.get("realism") or {})),
        ("Crash criteria across runs", crash_html),
        ("Distributions across runs", H.table(["metric", *stat_keys], dist_rows)),
        ("Sampled parameters", H.table(["parameter", *stat_keys], param_rows) if param_rows else ""),
        (
            "Worst runs",
            H.table(worst_cols, worst_rows)
            + "<p>Re-run one with <code>desksim run SCENARIO --seed RUN_SEED</code> (same duration, parameters).</p>",
        ),
    ]
    title = f"desksim Monte Carlo: {s.get('scenario', '?')} × {H.fmt(s.get('completed'))} runs"
    return _write_text(folder / REPORT, H.page(title, f"root seed {s.get('seed')} · folder {folder.name}", sections))


def realism_target_table(realism: dict[str, Any]) -> str:
    """Per real-day target: its range, the runs in range with a 95 % interval, and the statistic's
    median and 5-95 % spread over the runs, as HTML ("" when the summary has none)."""
    targets = realism.get("targets") or {}
    if not targets:
        return ""
    rows = []
    for t in TARGETS:  # in the targets' order (summary.json sorts its keys)
        d = targets.get(t.key)
        if d is None:
            continue
        values = d.get("values") or {}
        spread = f"[{H.fmt(values.get('p05'))}, {H.fmt(values.get('p95'))}]"
        rows.append([t.key, d.get("range"), d.get("real"), *share_cells(d), values.get("median"), spread])
    every = realism.get("all")
    if every:
        rows.append(["every target", "", "", *share_cells(every), "", ""])
    head = ["statistic", "range", "real days", "runs in range", "share", "95 % interval", "median", "5-95 %"]
    return H.table(head, rows) + (
        "<p>A range that held on one seed, over many: the share of runs whose statistic lies in it "
        "(percentile bootstrap over runs, seeded; a statistic that could not be computed is left out of "
        "its share and fails <i>every target</i>).</p>"
    )


def crash_tables(crash: dict[str, Any], stat_keys: tuple[str, ...]) -> str:
    """The Monte Carlo summary's crash criteria (shares with intervals) and the spread of their
    measures, as HTML ("" when the summary has none)."""
    if not crash:
        return ""
    head = ["criterion", "rule", "runs", "share", "95 % interval", "among runs with a >= 5 % fall"]
    rows = [crash_row(c) for c in (crash.get("criteria") or {}).values()]
    spread = [[k.replace("_", " "), *(v.get(x) for x in stat_keys)] for k, v in (crash.get("measures") or {}).items()]
    method = (crash.get("bootstrap") or {}).get("method", "")
    who = [
        [role, phase, *(d.get(x) for x in stat_keys)]
        for role, phases in (crash.get("who_traded") or {}).items()
        for phase, d in phases.items()
        if d.get("n") and (d.get("min") or d.get("max"))
    ]
    who_html = (
        "<p>Who traded the fall, among the runs with a >= 5 % fall: each role's net shares bought in the fall "
        "and in the 20 minutes after its trough (<code>desksim/analytics/anatomy.py</code>).</p>"
        + H.table(["role", "phase", *stat_keys], who)
        if who
        else ""
    )
    return (
        H.table(head, rows)
        + H.table(["measure", *stat_keys], spread)
        + f"<p>{H.esc(method)}. Definitions: <code>desksim/analytics/crash.py</code>.</p>"
        + who_html
    )


def share_cells(d: dict[str, Any]) -> tuple[str, str, str]:
    """A share of runs of the Monte Carlo summary (desksim/mc/summary.py ``seeded_share``) as table
    cells: runs meeting it / runs, share, interval."""
    if not d.get("n"):
        return "0/0", "–", ""
    lo, hi = d.get("ci") or [None, None]
    return f"{d['runs']}/{d['n']}", H.fmt(d.get("share")), f"[{H.fmt(lo)}, {H.fmt(hi)}]"


def crash_row(criterion: dict[str, Any]) -> list[Any]:
    """One crash criterion of the Monte Carlo summary (desksim/mc/summary.py ``crash_summary``) as a
    table row: what, rule, runs meeting it / runs, share, interval, and the same among crashed runs."""
    runs, share, ci = share_cells(criterion)
    g_runs, g_share, g_ci = share_cells(criterion.get("given_fall_5pct") or {})
    rule = f"{criterion.get('column') or ''} {criterion.get('rule') or ''}".strip()
    return [criterion.get("what"), rule, runs, share, ci, f"{g_runs}: {g_share} {g_ci}".strip()]


def _risk_note(s: dict[str, Any], label: str) -> str:
    """What the VaR / ES table is: on what, in which unit over which horizon, the convention and the
    intervals as ``summary["intervals"]`` says riskstats computed them."""
    basis = s.get("risk_basis") or {}
    iv = s.get("intervals") or {}
    need = iv.get("min_runs") or {}
    need_text = ", ".join(f"{k} %: {v:,}" for k, v in need.items())
    what = basis.get("what") or f"losses are negated outcomes ({label})"
    return (
        f"<p>{H.esc(what[0].upper() + what[1:])}. Unit: {H.esc(basis.get('unit', '?'))}; horizon: "
        f"{H.esc(basis.get('horizon', 'one run'))}. {H.esc(iv.get('convention', ''))}. "
        f"Intervals at {H.fmt(iv.get('confidence'))} confidence: VaR from {H.esc(iv.get('var', ''))}; "
        f"ES from a {H.esc(iv.get('es', ''))}. A level needs at least 3 runs in its tail "
        f"(runs needed: {H.esc(need_text or 'n/a')}); with fewer it shows n/a, not a number.</p>"
    )
