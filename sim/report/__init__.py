"""Reports people read: PNG plots and one self-contained ``report.html`` per run folder.

    from sim.report import write_report
    write_report("runs/base")      # a `desksim run` folder: price, spread/depth, desk, risk
    write_report("runs/mc")        # a `desksim mc` folder (runs.parquet): P&L, VaR/ES, events

Optional tables are used when the folder has them: ``halts.parquet`` (time_ns, event, ...),
``risk_events.parquet`` (time_ns, kind, ...), ``pnl.parquet`` (time_ns, position, *pnl*). Each
file is written atomically (temporary name, then rename); the run's data files are not touched.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.report import html as H

REPORT = "report.html"


def _read(folder: Path, name: str) -> pd.DataFrame | None:
    path = folder / f"{name}.parquet"
    if not path.exists():
        return None
    return pd.read_parquet(path)


def _write_text(path: Path, text: str) -> Path:
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


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
    """Rows (check, statistic, value, target, pass/fail HTML) for the four stylised-fact checks."""
    from sim.analytics.realism import CHECKS, checks

    flags = checks(stats)
    rows = []
    for name, (key, target) in CHECKS.items():
        rows.append(
            [
                H.esc(name.replace("_", " ")),
                H.esc(key),
                H.esc(H.fmt(stats.get(key), 4)),
                H.esc(target),
                H.mark(flags[name]),
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


def _run_report(folder: Path, s: dict[str, Any]) -> Path:
    from sim.report import plots as P

    tick = float(s.get("tick_size") or 0.01)
    trades, quotes = _read(folder, "trades"), _read(folder, "quotes")
    halts, risk_events, pnl = _read(folder, "halts"), _read(folder, "risk_events"), _read(folder, "pnl")
    end_ns = _clock_ns(s.get("sim_end"))
    name = f"{s.get('scenario', '?')} seed {s.get('seed', '?')}"
    figs: list[tuple[Path | None, str]] = [
        (
            P.plot_price(folder / "price.png", trades, tick, halts, risk_events, end_ns, f"Trade price — {name}"),
            "Trade price (min/max band per time bin for long runs); halts shaded, risk events x, kill switch dashed.",
        ),
        (
            P.plot_spread_depth(folder / "spread_depth.png", quotes, tick, halts, end_ns),
            "Quoted spread and size at the best bid and ask over time.",
        ),
        (P.plot_desk(folder / "desk.png", pnl), "Desk position and P&L."),
        (
            P.plot_risk_timeline(folder / "risk_timeline.png", risk_events, end_ns),
            "Risk events by kind; the kill switch's engaged intervals shaded.",
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
    for key in ("desk", "risk", "reconciliation"):
        if isinstance(s.get(key), dict):
            overview.extend([f"{key}.{k}", _short(v)] for k, v in s[key].items())
    sections = [("Summary", H.table(["", "value"], overview))]
    sections.append(("Plots", "\n".join(H.figure(p, c) for p, c in figs if p is not None)))
    stats = s.get("realism")
    if stats:
        from sim.analytics.realism import CHECKS

        sections.append(
            (
                "Realism (stylised facts of 1-minute returns)",
                H.table(["check", "statistic", "value", "target", "result"], realism_rows(stats), raw=True),
            )
        )
        other = [[k, _short(v)] for k, v in stats.items() if k not in {key for key, _ in CHECKS.values()}]
        sections.append(("Other market statistics", H.table(["statistic", "value"], other)))
    sections.append(("Halts", _event_table(halts)))
    sections.append(("Risk events", _event_table(risk_events)))
    subtitle = f"desksim {s.get('desksim', '')} · python {s.get('python', '')} · folder {folder.name}"
    return _write_text(folder / REPORT, H.page(f"desksim run: {name}", subtitle, sections))


def _short(value: Any) -> Any:
    if isinstance(value, list | dict):
        text = json.dumps(value, default=str)
        return text if len(text) <= 160 else text[:157] + "..."
    return value


# --------------------------------------------------------------------------- Monte Carlo


def _monte_carlo_report(folder: Path, s: dict[str, Any]) -> Path:
    from sim.analytics.realism import CHECKS
    from sim.report import plots as P

    runs = _read(folder, "runs")
    if runs is None:
        raise ValueError(f"{folder}: a Monte Carlo folder without runs.parquet (interrupted? use --resume)")
    metric = s.get("pnl_metric", "market_return_pct")
    label = "desk P&L" if metric == "desk_pnl" else "market return over the run (%)"
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
    for key in sorted(var, key=float):
        vci, eci = (s.get("var_ci") or {}).get(key, [None, None]), (s.get("es_ci") or {}).get(key, [None, None])
        risk_rows.append(
            [
                f"{key} %",
                var.get(key),
                f"[{H.fmt(vci[0])}, {H.fmt(vci[1])}]",
                es.get(key),
                f"[{H.fmt(eci[0])}, {H.fmt(eci[1])}]",
            ]
        )
    boot = s.get("bootstrap") or {}
    risk_note = (
        f"<p>Losses are negated outcomes ({H.esc(label)}). VaR is the ⌈N(1−α)⌉-th largest loss, ES the "
        f"mean of the losses at or beyond it; intervals are {H.fmt(boot.get('confidence'))} percentile "
        f"bootstraps over {H.fmt(boot.get('samples'))} resamples.</p>"
    )
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
