"""The aggregate of an experiment: ``summary.json``'s deterministic part and its risk figures.

The outcome is the desk's P&L when the runs report one, otherwise the market's intraday drawdown.
VaR / ES and their intervals come from :mod:`actors.riskstats` (one definition for the officer
and Monte Carlo): VaR the ceil(N(1-a))-th largest loss, ES per Acerbi-Tasche; order-statistic
(binomial) intervals for VaR, seeded studentized-bootstrap intervals for ES.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from actors import riskstats
from desksim.mc.metrics import REALISM_CHECKS, metrics_digest
from desksim.mc.plan import Plan
from sim.rng import name_key

#: VaR / ES confidence levels reported in ``summary.json`` (keys "95", "97.5", "99").
LEVELS = (0.95, 0.975, 0.99)
#: bootstrap resamples of the ES confidence intervals, and the intervals' confidence.
BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_CONFIDENCE = 0.95


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
            "max_drawdown": dist_stats(runs["desk_max_drawdown"]),
            "max_position": dist_stats(runs["desk_max_position"]),
            "worst_position": dist_stats(runs["desk_worst_position"]),
            "rejected_in_halts": dist_stats(runs["desk_rejected_in_halts"]),
        },
        "realism": {
            "pass_rates": realism_rates,
            "all_pass_rate": clean((runs["realism_passed"] == len(REALISM_CHECKS)).mean()) if n else None,
        },
        "parameters": params,
    }
