"""Plots of a run's realism statistics: the intraday shape of volume and spread, and the return
autocorrelograms (|r| for volatility clustering, corr(r_t, r_{t+k}^2) for the leverage effect).

Each function writes one PNG and returns its path, or returns None when the run is too short for
the picture to mean anything (an intraday shape needs edges and a middle; an autocorrelogram on
fewer than ``MIN_RETURNS`` returns is noise: its 95 % band is wider than +-0.25).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from desksim.analytics.intraday import EDGE_MIN, MINUTE_NS, profile
from desksim.report.plots import _save

MIN_RETURNS = 60
EDGE_COLOR = "#f5cba7"


def plot_intraday(
    path: Path, trades: pd.DataFrame | None, quotes: pd.DataFrame | None, open_ns: int, close_ns: int, title: str = ""
) -> Path | None:
    """Volume per minute and mean spread (bp) per 15-minute bucket; the 30-minute edges shaded."""
    if close_ns - open_ns <= 2 * EDGE_MIN * MINUTE_NS or trades is None or not len(trades):
        return None
    prof = profile(trades, quotes, open_ns, close_ns)
    x = prof["start_min"].to_numpy(dtype=np.float64)
    width = float(x[1] - x[0]) if x.size > 1 else 15.0
    session_min = (close_ns - open_ns) / MINUTE_NS
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    ax1.bar(x, prof["volume_per_min"], width=width * 0.9, align="edge", color="#1f77b4")
    ax1.set_ylabel("volume per minute")
    ax1.set_title(title or "Intraday shape: volume and spread")
    spread = pd.to_numeric(prof["spread_bps"], errors="coerce").to_numpy(dtype=np.float64)
    ax2.step(np.r_[x, x[-1] + width], np.r_[spread, spread[-1:]], where="post", color="#1f4e79")
    ax2.set_ylabel("mean spread (bp)")
    ax2.set_xlabel("minutes from the open")
    for ax in (ax1, ax2):
        ax.axvspan(0, EDGE_MIN, color=EDGE_COLOR, alpha=0.4, lw=0)
        ax.axvspan(session_min - EDGE_MIN, session_min, color=EDGE_COLOR, alpha=0.4, lw=0)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
    return _save(fig, path)


def plot_autocorrelation(path: Path, stats: dict[str, Any], title: str = "") -> Path | None:
    """|r| autocorrelation and leverage correlation at lags 1..10 with the +-1.96/sqrt(n) noise band."""
    n = int(stats.get("n_returns") or 0)
    abs_acf = stats.get("abs_acf") or []
    if n < MIN_RETURNS or not any(v is not None for v in abs_acf):
        return None
    lev = stats.get("leverage") or []
    lags = np.arange(1, len(abs_acf) + 1)
    band = 1.96 / math.sqrt(n)
    fig, ax = plt.subplots(figsize=(9, 3.8))

    def vals(xs: list[Any]) -> np.ndarray:
        return np.array([np.nan if v is None else float(v) for v in xs])

    ax.bar(lags - 0.2, vals(abs_acf), width=0.4, color="#1f77b4", label="acf of |r| (volatility clustering)")
    if lev:
        ax.bar(lags[: len(lev)] + 0.2, vals(lev), width=0.4, color="#e67e22", label="corr(r_t, r_t+k^2) (leverage)")
    ax.axhspan(-band, band, color="#999999", alpha=0.2, lw=0, label="95 % band of i.i.d. noise")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(lags)
    ax.set_xlabel("lag (minutes)")
    ax.set_title(title or f"Autocorrelation of 1-minute {stats.get('return_basis', '')} returns")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, path)
