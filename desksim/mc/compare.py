"""Paired comparison of two Monte Carlo experiments: realism targets, crash criteria, outcomes.

A calibration change is judged on many seeds, not on the one that looks good: run the base and
the variant with the same ``desksim mc --seed`` (so run k of both has the same run seed, hence
the same world paths and the same draws wherever the change does not reach) and compare them run
by run. Pairing removes most of the seed-to-seed spread from the difference, so a shift of a
statistic too small to see in two separate shares is measured with its standard error.

Per target of :data:`desksim.analytics.targets.TARGETS` (and "every target together"):

- ``met``: runs in range, base and variant (over the pairs where both could compute it);
- ``gained`` / ``lost``: pairs in range only in the variant / only in the base;
- ``p_value``: exact two-sided McNemar test of gained against lost (a binomial test on the
  discordant pairs: could the change in the share be the luck of the draw?);
- ``mean_diff`` and ``se``: the mean paired difference of the statistic (variant - base) and its
  standard error (sd of the differences / sqrt(pairs)).

The same for the flash-crash criteria of :data:`desksim.mc.summary.CRASH_CRITERIA` (and all five
2010 criteria together; a NaN measure does not meet its criterion), and the mean paired
difference of the runs' outcome measures (:data:`OUTCOMES`: the worst fall, halts, the desk's
P&L, worst position, limit breaches...). Two scenarios that differ only in their rules (the bundled
``flash_crash`` and ``flash_crash_current``) run with the same seed make this the counterfactual
run by run: the same day under the 2010 rules and under today's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from desksim.analytics.targets import TARGETS
from desksim.mc.summary import CRASH_CRITERIA, clean, column_values, crash_flags, target_met

#: the run-identity column two experiments are paired on
PAIR_KEY = "run_seed"
#: outcome columns of runs.parquet compared by their paired mean difference (when both have them)
OUTCOMES: dict[str, str] = {
    "fall_15m_pct": "worst fall within 15 min, % (prints)",
    "vwap_fall_15m_pct": "worst fall within 15 min, % (minute VWAPs)",
    "recovered_20m_share": "share of the fall recovered within 20 min",
    "market_max_drawdown_pct": "intraday drawdown, %",
    "halts": "trading halts",
    "volume": "shares traded",
    "desk_pnl_net": "desk P&L after fees",
    "desk_max_drawdown": "desk P&L drawdown",
    "desk_worst_position": "desk worst position, shares",
    "risk_breaches": "risk limit breaches",
    "desk_rejected_in_halts": "desk orders rejected in halts",
    "kill_switch": "kill switch pulled (share of runs)",
}


class CompareError(ValueError):
    """Two experiments that cannot be compared run by run (one line, for the command line)."""


def pair_runs(base: pd.DataFrame, variant: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of both experiments whose run seed is in both, in the same order (by run seed)."""
    for name, runs in (("base", base), ("variant", variant)):
        if PAIR_KEY not in runs:
            raise CompareError(f"{name}: no {PAIR_KEY} column (not a desksim mc runs.parquet)")
        if runs[PAIR_KEY].duplicated().any():
            raise CompareError(f"{name}: a run seed appears twice")
    b = base.assign(**{PAIR_KEY: base[PAIR_KEY].astype(str)}).set_index(PAIR_KEY)
    v = variant.assign(**{PAIR_KEY: variant[PAIR_KEY].astype(str)}).set_index(PAIR_KEY)
    common = sorted(set(b.index) & set(v.index))
    if len(common) < 2:
        raise CompareError(
            f"only {len(common)} run seed(s) in both experiments: run both with the same --seed "
            "(desksim mc ... --seed N) so that run k of each has the same run seed"
        )
    return b.loc[common], v.loc[common]


def mcnemar_p(gained: int, lost: int) -> float:
    """Exact two-sided McNemar p-value: a binomial test of ``gained`` in ``gained + lost`` at 1/2."""
    n = gained + lost
    return 1.0 if n == 0 else float(sps.binomtest(gained, n, 0.5).pvalue)


def _flags_row(what: str, base_ok: np.ndarray, var_ok: np.ndarray) -> dict[str, Any]:
    gained = int((var_ok & ~base_ok).sum())
    lost = int((base_ok & ~var_ok).sum())
    return {
        "what": what,
        "pairs": int(base_ok.size),
        "met": [int(base_ok.sum()), int(var_ok.sum())],
        "gained": gained,
        "lost": lost,
        "p_value": clean(mcnemar_p(gained, lost)),
    }


def paired(base: pd.DataFrame, variant: pd.DataFrame) -> dict[str, Any]:
    """The paired comparison of two experiments' ``runs.parquet`` frames (see the module doc)."""
    b, v = pair_runs(base, variant)
    targets: dict[str, Any] = {}
    every_b = np.ones(len(b), dtype=bool)
    every_v = np.ones(len(v), dtype=bool)
    for t in TARGETS:
        xb, xv = column_values(b, t.key), column_values(v, t.key)
        ok_b, ok_v = target_met(t, xb), target_met(t, xv)
        every_b &= ok_b
        every_v &= ok_v
        both = np.isfinite(xb) & np.isfinite(xv)
        if not both.any():
            continue
        row = _flags_row(t.label, ok_b[both], ok_v[both])
        row.update({"range": t.text, **_difference(xb[both], xv[both])})
        targets[t.key] = row
    crash: dict[str, Any] = {}
    flags_b, flags_v = crash_flags(b), crash_flags(v)
    for key, met_b in flags_b.items():
        what = CRASH_CRITERIA[key][0] if key in CRASH_CRITERIA else "all five 2010 criteria together"
        crash[key] = _flags_row(what, met_b, flags_v[key])
    outcomes: dict[str, Any] = {}
    for key, what in OUTCOMES.items():
        if key not in b or key not in v:
            continue
        xb, xv = column_values(b, key), column_values(v, key)
        both = np.isfinite(xb) & np.isfinite(xv)
        if both.any():
            outcomes[key] = {"what": what, "pairs": int(both.sum()), **_difference(xb[both], xv[both])}
    return {
        "pairs": len(b),
        "targets": targets,
        "all": _flags_row("every target together", every_b, every_v),
        "crash": crash,
        "outcomes": outcomes,
    }


def _difference(xb: np.ndarray, xv: np.ndarray) -> dict[str, Any]:
    d = xv - xb
    return {
        "mean": [clean(xb.mean()), clean(xv.mean())],
        "mean_diff": clean(d.mean()),
        "se": clean(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else None,
    }


def _num(x: float | None, sign: str = "+") -> str:
    if x is None:
        return "-"
    return f"{x:{sign}.3f}" if abs(x) < 1000 else f"{x:{sign},.0f}"


def _flags_cells(d: dict[str, Any]) -> str:
    """``base -> variant  +gained/-lost  p`` of a :func:`_flags_row`."""
    moved = f"+{d['gained']}/-{d['lost']}"
    p = "<0.001" if d["p_value"] < 0.001 else f"{d['p_value']:.3f}"
    return f"{d['met'][0]:>3} -> {d['met'][1]:<3} {moved:<7} {p}"


def _diff_cells(d: dict[str, Any]) -> str:
    """``mean base -> mean variant  difference +- se`` of a :func:`_difference`."""
    means = f"{_num(d['mean'][0])} -> {_num(d['mean'][1])}"
    return f"{means:<21} {_num(d['mean_diff'])} +- {_num(d['se'], '')}"


def compare_lines(result: dict[str, Any], base_label: str = "base", variant_label: str = "variant") -> list[str]:
    """The comparison as text lines (``desksim compare``): realism targets, crash criteria, outcomes."""
    lines = [
        f"paired comparison over {result['pairs']} runs with the same run seeds: {variant_label} against {base_label}",
        "  runs base -> variant (pairs gained / lost, exact McNemar p); mean base -> variant, "
        "paired difference +- standard error",
    ]
    if result["targets"]:
        lines.append(f"  realism against real days   {'range':<13} {'in range':<11} {'+/-':<7} {'p':<6} mean")
        for key, d in result["targets"].items():
            lines.append(f"    {key:<26}{d['range']:<13} {_flags_cells(d)}  {_diff_cells(d)}")
        lines.append(f"    {'every target':<26}{'':<13} {_flags_cells(result['all'])}")
    if result["crash"]:
        lines.append(f"  crash criteria (runs meeting each){'':<6} {'runs':<11} {'+/-':<7} p")
        for key, d in result["crash"].items():
            lines.append(f"    {key:<37} {_flags_cells(d)}")
    if result["outcomes"]:
        lines.append(f"  outcomes{'':<32}mean")
        for key, d in result["outcomes"].items():
            lines.append(f"    {key:<37} {_diff_cells(d)}")
    return [line.rstrip() for line in lines]
