"""How far a percent-of-volume program stands out from a market's ordinary order flow.

A program that sells ``pov`` of the volume over a window of ``W`` minutes adds ``pov x volume``
shares of sell pressure to that window. The market has seen such pressure before if its ordinary
*net aggressor-signed volume* (buyer-initiated minus seller-initiated shares) often reaches that
size in windows of the same length. :func:`flow_signal` cuts a run's trades (a run without the
program) into consecutive, non-overlapping ``W``-minute windows and reports:

* ``sd_net``: the sample standard deviation (ddof 1) of the windows' net signed volume;
* ``program``: the mean over the windows of ``pov x volume`` (what the program would add);
* ``ratio``: ``program / sd_net``, the program's size in standard deviations of ordinary flow;
* ``matched``: the share of windows whose ``|net|`` is at least that window's own
  ``pov x volume`` -- how often ordinary flow alone is as one-sided as the program.

A window is kept only when it lies wholly inside ``[start_ns, end_ns)``. Trades whose aggressor
is neither "B" nor "S" (auction prints) count in the volume and not in the net.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class FlowSignal:
    """What :func:`flow_signal` measured over ``windows`` windows of ``window_min`` minutes."""

    window_min: float
    windows: int
    sd_net: float
    program: float
    ratio: float
    matched: float


def window_flows(
    times_ns: Any, qty: Any, aggressor: Any, start_ns: int, end_ns: int, window_ns: int
) -> tuple[np.ndarray, np.ndarray]:
    """(net signed volume, volume) of each whole ``window_ns`` window from ``start_ns`` before ``end_ns``."""
    if window_ns <= 0:
        raise ValueError("window_ns must be > 0")
    n = max(0, (end_ns - start_ns) // window_ns)
    t = np.asarray(times_ns, dtype=np.int64)
    q = np.asarray(qty, dtype=np.int64)
    side = np.asarray(aggressor, dtype=object)
    sign = np.where(side == "B", 1, np.where(side == "S", -1, 0)).astype(np.int64)
    inside = (t >= start_ns) & (t < start_ns + n * window_ns)
    k = (t[inside] - start_ns) // window_ns
    net = np.bincount(k, weights=(sign * q)[inside], minlength=n)[:n]
    vol = np.bincount(k, weights=q[inside], minlength=n)[:n]
    return net.astype(np.int64), vol.astype(np.int64)


def flow_signal(
    times_ns: Any, qty: Any, aggressor: Any, *, start_ns: int, end_ns: int, window_ns: int, pov: float
) -> FlowSignal:
    """The program's size against ordinary flow (module docstring); NaN statistics under two windows."""
    net, vol = window_flows(times_ns, qty, aggressor, start_ns, end_ns, window_ns)
    return summarise(net, vol, window_ns, pov)


def summarise(net: np.ndarray, vol: np.ndarray, window_ns: int, pov: float) -> FlowSignal:
    """:class:`FlowSignal` of windows already cut (several runs' windows may be pooled)."""
    minutes = window_ns / 60e9
    if net.size < 2:
        return FlowSignal(minutes, int(net.size), float("nan"), float("nan"), float("nan"), float("nan"))
    sd = float(np.std(net, ddof=1))
    program = float(pov * vol.mean())
    ratio = program / sd if sd > 0 else float("inf")
    matched = float(np.mean(np.abs(net) >= pov * vol))
    return FlowSignal(minutes, int(net.size), sd, program, ratio, matched)
