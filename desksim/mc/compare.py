"""Paired comparison of two Monte Carlo experiments against the real-day realism targets.

A calibration change is judged on many seeds, not on the one that looks good: run the base and
the variant with the same ``desksim mc --seed`` (so run k of both has the same run seed, hence
the same world paths and the same draws wherever the change does not reach) and compare them run
by run. Pairing removes most of the seed-to-seed spread from the difference, so a shift of a
statistic too small to see in two separate shares is measured with its standard error.

Per target of :data:`desksim.analytics.targets.TARGETS` (and "every target together"):

- ``in_range``: runs in range, base and variant (over the pairs where both could compute it);
- ``gained`` / ``lost``: pairs in range only in the variant / only in the base;
- ``p_value``: exact two-sided McNemar test of gained against lost (a binomial test on the
  discordant pairs: could the change in the share be the luck of the draw?);
- ``mean_diff`` and ``se``: the mean paired difference of the statistic (variant - base) and its
  standard error (sd of the differences / sqrt(pairs)).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from desksim.analytics.targets import TARGETS, Target
from desksim.mc.summary import clean

#: the run-identity column two experiments are paired on
PAIR_KEY = "run_seed"


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


def _numbers(runs: pd.DataFrame, key: str) -> np.ndarray:
    if key not in runs:
        return np.full(len(runs), np.nan)
    return pd.to_numeric(runs[key], errors="coerce").to_numpy(dtype=np.float64)


def _met(target: Target, values: np.ndarray) -> np.ndarray:
    return np.array([target.check(float(x)) is True for x in values], dtype=bool)


def _flags_row(what: str, base_ok: np.ndarray, var_ok: np.ndarray) -> dict[str, Any]:
    gained = int((var_ok & ~base_ok).sum())
    lost = int((base_ok & ~var_ok).sum())
    return {
        "what": what,
        "pairs": int(base_ok.size),
        "in_range": [int(base_ok.sum()), int(var_ok.sum())],
        "gained": gained,
        "lost": lost,
        "p_value": clean(mcnemar_p(gained, lost)),
    }


def paired_realism(base: pd.DataFrame, variant: pd.DataFrame) -> dict[str, Any]:
    """The paired comparison of two experiments' ``runs.parquet`` frames (see the module doc)."""
    b, v = pair_runs(base, variant)
    targets: dict[str, Any] = {}
    every_b = np.ones(len(b), dtype=bool)
    every_v = np.ones(len(v), dtype=bool)
    for t in TARGETS:
        xb, xv = _numbers(b, t.key), _numbers(v, t.key)
        ok_b, ok_v = _met(t, xb), _met(t, xv)
        every_b &= ok_b
        every_v &= ok_v
        both = np.isfinite(xb) & np.isfinite(xv)
        if not both.any():
            continue
        d = xv[both] - xb[both]
        row = _flags_row(t.label, ok_b[both], ok_v[both])
        row.update(
            {
                "range": t.text,
                "mean": [clean(xb[both].mean()), clean(xv[both].mean())],
                "mean_diff": clean(d.mean()),
                "se": clean(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else None,
            }
        )
        targets[t.key] = row
    return {
        "pairs": len(b),
        "targets": targets,
        "all": _flags_row("every target together", every_b, every_v),
    }


def compare_lines(result: dict[str, Any], base_label: str = "base", variant_label: str = "variant") -> list[str]:
    """The comparison as text lines (``desksim compare``)."""
    n = result["pairs"]
    lines = [
        f"paired comparison over {n} runs with the same run seeds: {variant_label} against {base_label}",
        "  in range base -> variant (gained / lost pairs, exact McNemar p); statistic mean base -> variant, "
        "paired difference +- standard error",
        f"    {'statistic':<26} {'range':<13} {'in range':<11} {'+/-':<7} {'p':<6} {'mean':<19} difference",
    ]

    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:+.3f}"

    for key, d in result["targets"].items():
        base_in, var_in = d["in_range"]
        means = f"{num(d['mean'][0])} -> {num(d['mean'][1])}"
        diff = f"{num(d['mean_diff'])} +- {'-' if d['se'] is None else format(d['se'], '.3f')}"
        lines.append(
            f"    {key:<26} {d['range']:<13} {base_in:>3} -> {var_in:<3} "
            f"{'+' + str(d['gained']) + '/-' + str(d['lost']):<7} {d['p_value']:<6.3f} {means:<19} {diff}"
        )
    a = result["all"]
    lines.append(
        f"    {'every target':<26} {'':<13} {a['in_range'][0]:>3} -> {a['in_range'][1]:<3} "
        f"{'+' + str(a['gained']) + '/-' + str(a['lost']):<7} {a['p_value']:.3f}"
    )
    return lines
