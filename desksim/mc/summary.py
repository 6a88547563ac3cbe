"""The aggregate of an experiment: ``summary.json``'s deterministic part and its risk figures.

The outcome is the desk's P&L when the runs report one, otherwise the market's intraday drawdown.
VaR / ES and their intervals come from :mod:`actors.riskstats` (one definition for the officer
and Monte Carlo): VaR the ceil(N(1-a))-th largest loss, ES per Acerbi-Tasche; order-statistic
(binomial) intervals for VaR, seeded studentized-bootstrap intervals for ES.

``crash`` (issue 16): the share of runs meeting each flash-crash criterion of
:mod:`desksim.analytics.crash` (:data:`CRASH_CRITERIA`; a NaN measure does not meet its criterion),
over all runs and over the runs that fell >= 5 % within 15 minutes, each with a seeded
percentile-bootstrap 95 % interval (:func:`bootstrap_share`, 2,000 resamples of the runs).

``realism.targets`` (issue 16): per real-day target of :mod:`desksim.analytics.targets`, the share
of runs whose statistic lies in the target's range, with the same kind of interval, and the
statistic's spread over the runs: how a range that held on one seed holds on the others.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from actors import riskstats
from desksim.analytics import crash as C
from desksim.analytics.anatomy import ROLES
from desksim.analytics.targets import TARGETS, Target
from desksim.mc.metrics import REALISM_CHECKS, metrics_digest
from desksim.mc.plan import Plan
from sim.rng import name_key

#: VaR / ES confidence levels reported in ``summary.json`` (keys "95", "97.5", "99").
LEVELS = (0.95, 0.975, 0.99)
#: bootstrap resamples of the ES confidence intervals, and the intervals' confidence.
BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_CONFIDENCE = 0.95
#: bootstrap resamples of the crash criteria's shares (percentile intervals, seeded).
SHARE_SAMPLES = 2000

#: the crash criteria summed up over runs (desksim/analytics/crash.py defines the columns):
#: key -> (what, column, comparison, threshold). A NaN measure does not meet its criterion.
CRASH_CRITERIA: dict[str, tuple[str, str, str, float]] = {
    "fall_5pct_15m": (f"fall >= {C.CRASH_FALL_PCT:g}% within 15 min", "fall_15m_pct", ">=", C.CRASH_FALL_PCT),
    "fall_3pct_15m": (f"fall >= {C.BASELINE_FALL_PCT:g}% within 15 min", "fall_15m_pct", ">=", C.BASELINE_FALL_PCT),
    # the level, not a few prints through an empty book (not one of the 2010 five: a reading aid)
    "level_fall_5pct_15m": (
        f"minute VWAPs fall >= {C.CRASH_FALL_PCT:g}% within 15 min",
        "vwap_fall_15m_pct",
        ">=",
        C.CRASH_FALL_PCT,
    ),
    "volume_3x": (
        f"volume/min in the fall >= {C.VOLUME_RATIO_MIN:g}x the hour before",
        "crash_volume_ratio",
        ">=",
        C.VOLUME_RATIO_MIN,
    ),
    "depth_below_quarter": (
        f"touch depth in the fall < {C.DEPTH_RATIO_MAX:g} x normal",
        "crash_depth_min_ratio",
        "<",
        C.DEPTH_RATIO_MAX,
    ),
    "maker_to_maker_rise": ("maker-to-maker share of volume rises", "crash_m2m_ratio", ">", C.M2M_RATIO_MIN),
    "half_recovered_20m": (
        f">= {C.RECOVERED_MIN:g} of the fall recovered within 20 min",
        "recovered_20m_share",
        ">=",
        C.RECOVERED_MIN,
    ),
}
#: the criteria a run must meet together to look like 6 May 2010.
CRASH_2010 = ("fall_5pct_15m", "volume_3x", "depth_below_quarter", "maker_to_maker_rise", "half_recovered_20m")


def level_key(level: float) -> str:
    return f"{level * 100:g}"


def var_es(losses: Sequence[float] | np.ndarray, level: float) -> tuple[float, float]:
    """Historical VaR and Acerbi-Tasche ES (see :mod:`actors.riskstats`); NaN outcomes dropped."""
    return riskstats.var_es(losses, level)


def min_runs(level: float) -> int:
    """Fewest runs for a VaR / ES at ``level``: the risk officer's rule (at least
    ``VAR_MIN_TAIL`` = 3 outcomes in the tail, ``ceil(3 / (1 - level))``: 60 for 95 %, 300 for 99 %)."""
    from actors.risk import var_min_observations

    return var_min_observations(level)


def risk_figures(
    outcomes: Sequence[float] | np.ndarray,
    seed: int,
    levels: Iterable[float] = LEVELS,
    samples: int = BOOTSTRAP_SAMPLES,
    confidence: float = BOOTSTRAP_CONFIDENCE,
    losses_are: str = "negated",
) -> dict[str, Any]:
    """VaR / ES of outcomes: order-statistic intervals for VaR (exact coverage in
    ``var_ci_coverage``), seeded studentized-bootstrap intervals for ES. ``losses_are`` "negated"
    (outcomes are P&L, positive = gain) or "as is" (outcomes are losses, e.g. drawdowns).

    A level the sample cannot support (fewer than :func:`min_runs` finite outcomes) gets ``None``
    figures and intervals and a ``status`` "n/a: needs N runs (have n)"; a supported one "ok"."""
    x = np.asarray(outcomes, dtype=np.float64)
    x = x[np.isfinite(x)]
    losses = -x if losses_are == "negated" else x
    res: dict[str, Any] = {"var": {}, "es": {}, "var_ci": {}, "es_ci": {}, "var_ci_coverage": {}, "status": {}}
    for lv in tuple(levels):
        key = level_key(lv)
        need = min_runs(lv)
        if losses.size < need:
            res["var"][key] = res["es"][key] = res["var_ci_coverage"][key] = None
            res["var_ci"][key] = res["es_ci"][key] = [None, None]
            res["status"][key] = f"n/a: needs {need} runs (have {losses.size})"
            continue
        var, es = riskstats.var_es(losses, lv)
        res["var"][key], res["es"][key] = clean(var), clean(es)
        vci = riskstats.var_interval(losses, lv, confidence)
        rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=name_key(f"mc:es_ci:{key}")))
        eci = riskstats.es_interval(losses, lv, confidence, rng=rng, samples=samples)
        res["var_ci"][key] = [clean(vci.lo), clean(vci.hi)]
        res["es_ci"][key] = [clean(eci.lo), clean(eci.hi)]
        res["var_ci_coverage"][key] = clean(vci.coverage)
        res["status"][key] = "ok"
    res["intervals"] = {
        "confidence": confidence,
        "var": "order statistics (binomial), exact coverage >= the confidence; null: beyond the sample",
        "es": f"studentized bootstrap, {samples} resamples, seeded",
        "convention": riskstats.CONVENTION,
        "min_runs": {level_key(lv): min_runs(lv) for lv in tuple(levels)},
    }
    res["bootstrap"] = {"samples": samples if losses.size >= 2 else 0, "confidence": confidence}
    return res


def clean(value: Any) -> float | None:
    """JSON-friendly float: None for NaN/inf, rounded to 12 significant digits."""
    if value is None:
        return None
    x = float(value)
    return float(f"{x:.12g}") if math.isfinite(x) else None


def dist_stats(values: pd.Series) -> dict[str, float | None]:
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "p05": None, "median": None, "p95": None, "max": None}
    return {
        "n": int(v.size),
        "mean": clean(v.mean()),
        "std": clean(v.std(ddof=1)) if v.size > 1 else None,
        "min": clean(v.min()),
        "p05": clean(np.quantile(v, 0.05)),
        "median": clean(np.median(v)),
        "p95": clean(np.quantile(v, 0.95)),
        "max": clean(v.max()),
    }


def bootstrap_share(
    flags: Sequence[bool] | np.ndarray,
    rng: np.random.Generator,
    samples: int = SHARE_SAMPLES,
    confidence: float = BOOTSTRAP_CONFIDENCE,
) -> tuple[float, float, float]:
    """The share of true ``flags`` and its percentile-bootstrap interval: ``samples`` resamples of the
    runs with replacement, the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of
    their shares. NaN for no runs; the interval collapses to the share when every flag is equal
    (0 of n or n of n: the percentile bootstrap cannot see beyond the sample)."""
    x = np.asarray(flags, dtype=bool)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    idx = rng.integers(0, x.size, size=(int(samples), x.size))
    shares = x[idx].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(shares, [tail, 1.0 - tail])
    return float(x.mean()), float(lo), float(hi)


def seeded_share(met: np.ndarray, seed: int, key: str, samples: int = SHARE_SAMPLES) -> dict[str, Any]:
    """``n``, ``runs`` (how many met), ``share`` and its percentile-bootstrap ``ci``, resampled from a
    stream named ``key`` of the experiment's seed (the same interval on every machine)."""
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=name_key(key)))
    p, lo, hi = bootstrap_share(met, rng, samples)
    return {"n": int(met.size), "runs": int(met.sum()), "share": clean(p), "ci": [clean(lo), clean(hi)]}


def share_cell(d: dict[str, Any]) -> str:
    """``runs/n share [lo, hi]`` of a :func:`seeded_share`, for the text tables."""
    if not d["n"]:
        return f"{'0/0':>7} {'-':>6} {'':16}"
    lo, hi = d["ci"]
    return f"{d['runs']:>3}/{d['n']:<3} {d['share']:>6.1%} [{lo:>5.1%}, {hi:>5.1%}]"


def column_values(runs: pd.DataFrame, column: str) -> np.ndarray:
    """A column of ``runs`` as floats (anything not a number: NaN; a missing column: all NaN)."""
    if column not in runs:
        return np.full(len(runs), np.nan)
    return pd.to_numeric(runs[column], errors="coerce").to_numpy(dtype=np.float64)


def target_met(target: Target, values: np.ndarray) -> np.ndarray:
    """Which ``values`` lie in the real-day ``target``'s range (NaN: not met)."""
    return np.array([target.check(float(x)) is True for x in values], dtype=bool)


def crash_flags(runs: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per criterion of :data:`CRASH_CRITERIA` (and ``all_2010``), which runs meet it (NaN: no)."""
    out: dict[str, np.ndarray] = {}
    for key, (_what, column, op, threshold) in CRASH_CRITERIA.items():
        v = column_values(runs, column)
        with np.errstate(invalid="ignore"):
            met = {">=": v >= threshold, ">": v > threshold, "<": v < threshold}[op]
        out[key] = met & ~np.isnan(v)
    out["all_2010"] = np.logical_and.reduce([out[k] for k in CRASH_2010]) if len(runs) else np.zeros(0, dtype=bool)
    return out


def crash_summary(runs: pd.DataFrame, seed: int, samples: int = SHARE_SAMPLES) -> dict[str, Any]:
    """Share of runs meeting each crash criterion with a seeded percentile-bootstrap 95 % interval,
    over all runs and over the runs that fell >= 5 % within 15 minutes, plus the measures' spread."""
    flags = crash_flags(runs)
    crashed = flags["fall_5pct_15m"]
    whats = {k: v[0] for k, v in CRASH_CRITERIA.items()}
    whats["all_2010"] = "all five 2010 criteria together"

    def share(key: str, met: np.ndarray, part: str) -> dict[str, Any]:
        return seeded_share(met, seed, f"mc:crash:{key}:{part}", samples)

    criteria = {}
    for key, met in flags.items():
        column = CRASH_CRITERIA[key][1] if key in CRASH_CRITERIA else None
        op_thr = f"{CRASH_CRITERIA[key][2]} {CRASH_CRITERIA[key][3]:g}" if key in CRASH_CRITERIA else "all"
        criteria[key] = {
            "what": whats[key],
            "column": column,
            "rule": op_thr,
            **share(key, met, "all"),
            "given_fall_5pct": share(key, met[crashed], "crashed"),
        }
    return {
        "criteria": criteria,
        "bootstrap": {
            "samples": int(samples),
            "confidence": BOOTSTRAP_CONFIDENCE,
            "method": "percentile bootstrap over runs, seeded from the experiment's seed; a NaN measure "
            "does not meet its criterion; given_fall_5pct: among the runs that fell >= 5 % within 15 min",
        },
        "measures": {k: dist_stats(runs[k]) for k in C.KEYS if k in runs},
        # who traded the fall, over the runs that fell >= 5 %: each role's net shares bought
        "who_traded": {
            role: {phase: dist_stats(runs.loc[crashed, f"{phase}_net_{role}"]) for phase in ("fall", "recovery")}
            for role in ROLES
            if f"fall_net_{role}" in runs
        },
    }


def realism_targets(runs: pd.DataFrame, seed: int, samples: int = SHARE_SAMPLES) -> dict[str, Any]:
    """Per real-day target (:data:`TARGETS`) present in ``runs``: the share of runs whose statistic
    lies in its range, over the runs where it could be computed, with a seeded percentile-bootstrap
    95 % interval, and the statistic's spread; ``all``: the runs meeting every target (a statistic
    that could not be computed is not met)."""
    out: dict[str, Any] = {}
    for t in TARGETS:
        if t.key not in runs:
            continue
        v = column_values(runs, t.key)
        met = target_met(t, v[np.isfinite(v)])
        out[t.key] = {
            "what": t.label,
            "range": t.text,
            "real": t.real,
            **seeded_share(met, seed, f"mc:realism:{t.key}", samples),
            "values": dist_stats(runs[t.key]),
        }
    result: dict[str, Any] = {"targets": out}
    if "realism_targets_met" in runs and len(runs):
        every = pd.to_numeric(runs["realism_targets_met"], errors="coerce").to_numpy() == len(TARGETS)
        result["all"] = seeded_share(every, seed, "mc:realism:all", samples)
    return result


def realism_lines(realism: dict[str, Any]) -> list[str]:
    """The real-day targets as text lines (``desksim mc``): share of runs in range, and the spread."""
    targets = realism.get("targets") or {}
    if not targets:
        return []
    lines = [
        "  realism against real days: share of runs in range [95% percentile bootstrap]; median [p05, p95]",
        f"    {'statistic':<26} {'range':<13} {'in range':<29} values",
    ]

    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:.3g}"

    for key, d in targets.items():
        v = d["values"]
        spread = f"{num(v['median'])} [{num(v['p05'])}, {num(v['p95'])}]"
        lines.append(f"    {key:<26} {d['range']:<13} {share_cell(d):<29} {spread}")
    every = realism.get("all")
    if every and every["n"]:
        lines.append(f"    {'every target':<26} {'':<13} {share_cell(every)}")
    return lines


def crash_lines(crash: dict[str, Any]) -> list[str]:
    """The crash criteria as a table of text lines (``desksim mc`` and benchmarks/crash_shares.py)."""

    b = crash.get("bootstrap", {})
    lines = [
        f"  crash criteria: share of runs [{b.get('confidence', 0.95):.0%} percentile bootstrap, "
        f"{b.get('samples', SHARE_SAMPLES)} resamples]",
        f"    {'criterion':<52} {'all runs':<30} runs with a >= 5% fall",
    ]
    for c in crash["criteria"].values():
        lines.append(f"    {c['what'][:52]:<52} {share_cell(c):<30} {share_cell(c['given_fall_5pct'])}".rstrip())

    def traded(d: dict[str, Any]) -> bool:  # some run has a non-zero net in the fall or the recovery
        return any(d[ph]["n"] and (d[ph]["min"] or d[ph]["max"]) for ph in ("fall", "recovery"))

    who = {r: d for r, d in (crash.get("who_traded") or {}).items() if d["fall"]["median"] is not None and traded(d)}
    if who:
        n = max(d["fall"]["n"] for d in who.values())
        lines.append(f"  who traded the fall (runs with a >= 5% fall: {n}): median net shares bought")

        def med(d: dict[str, Any]) -> str:
            return f"{d['median']:>+10,.0f}" if d["median"] is not None else f"{'-':>10}"

        lines.append(f"    {'role':<10} {'in the fall':>12} {'in the recovery':>16}")
        for role, d in who.items():
            lines.append(f"    {role:<10} {med(d['fall']):>12} {med(d['recovery']):>16}")
    return lines


def summarize(runs: pd.DataFrame, plan: Plan, scenario_name: str) -> dict[str, Any]:
    """The deterministic part of summary.json (no timing): counts, VaR/ES, events, realism."""
    n = len(runs)
    desk = pd.to_numeric(runs["desk_pnl"], errors="coerce")
    has_desk = bool(desk.notna().any())
    metric = "desk_pnl" if has_desk else "market_mid_max_drawdown_pct"
    outcomes = pd.to_numeric(runs[metric], errors="coerce").to_numpy(dtype=np.float64)
    figures = risk_figures(outcomes, plan.seed, losses_are="negated" if has_desk else "as is")
    horizon = f"one run ({plan.duration_s:g} s of the session)" if plan.duration_s else "one run (the session)"
    basis = (
        {
            "desk": True,
            "metric": metric,
            "unit": "currency",
            "horizon": horizon,
            "what": "losses are minus the desk's P&L over the run (its fills marked at the final mid)",
        }
        if has_desk
        else {
            "desk": False,
            "metric": metric,
            "unit": "% of the running peak",
            "horizon": horizon,
            "what": "no desk in this scenario: the figures are on the market's intraday drawdown (the worst "
            "peak-to-trough fall of the mid within the run, %), not on a P&L",
        }
    )

    def event(column: str, flag: pd.Series) -> dict[str, Any]:
        total = pd.to_numeric(runs[column], errors="coerce").fillna(0)
        return {
            "runs": int(flag.sum()),
            "frequency": clean(flag.mean()) if n else None,
            "total": int(total.sum()),
        }

    ttr = pd.to_numeric(runs["market_time_to_recover_s"], errors="coerce")
    events = {
        "halts": event("halts", runs["halts"] > 0),
        "kill_switch": event("kill_switch", runs["kill_switch"].astype(bool)),
        "risk_breaches": event("risk_breaches", runs["risk_breaches"] > 0),
        "reconciliation_breaks": event("reconciliation_breaks", runs["reconciliation_breaks"] > 0),
        "market_never_recovered": {
            "runs": int(ttr.isna().sum()),
            "frequency": clean(ttr.isna().mean()) if n else None,
        },
    }
    realism_rates = {name: clean(runs[f"realism_{name}"].mean()) if n else None for name in REALISM_CHECKS}
    digests = metrics_digest(runs)
    params = {c[len("param.") :]: dist_stats(runs[c]) for c in runs.columns if c.startswith("param.")}
    return {
        "kind": "monte_carlo",
        "scenario": scenario_name,
        "source": plan.source,
        "seed": plan.seed,
        "runs": plan.runs,
        "completed": n,
        "batch_size": plan.batch_size,
        "batches": plan.batches,
        "duration_s": plan.duration_s,
        "distributions": plan.distributions,
        "digest": digests,
        "pnl_metric": metric,
        "risk_basis": basis,
        "pnl": dist_stats(runs[metric]),
        **figures,
        "events": events,
        "market": {
            "return_pct": dist_stats(runs["market_return_pct"]),
            "max_drawdown_pct": dist_stats(runs["market_max_drawdown_pct"]),
            "mid_max_drawdown_pct": dist_stats(runs["market_mid_max_drawdown_pct"]),
            "time_to_recover_s": dist_stats(ttr),
            "low": dist_stats(runs["market_low"]),
            "trades": dist_stats(runs["trades"]),
        },
        "desk": {
            "pnl": dist_stats(runs["desk_pnl"]),
            "fees": dist_stats(runs["desk_fees"]),
            "pnl_net": dist_stats(runs["desk_pnl_net"]),
            "max_drawdown": dist_stats(runs["desk_max_drawdown"]),
            "max_position": dist_stats(runs["desk_max_position"]),
            "worst_position": dist_stats(runs["desk_worst_position"]),
            "rejected_in_halts": dist_stats(runs["desk_rejected_in_halts"]),
        },
        "crash": crash_summary(runs, plan.seed),
        "realism": {
            "pass_rates": realism_rates,
            "all_pass_rate": clean((runs["realism_passed"] == len(REALISM_CHECKS)).mean()) if n else None,
            **realism_targets(runs, plan.seed),
        },
        "parameters": params,
    }
