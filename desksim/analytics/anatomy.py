"""Who traded the worst fall: every participant group's buying, selling and taking before, during
and after it.

This is the post-mortem the CFTC-SEC staff made of 6 May 2010 (their report of 30 September 2010
tabulates, for each category of trader, the net position change through the fall and through the
recovery and the share of the volume): the question a market-structure reader asks first of any
crash -- who sold into it, who took the other side, who stepped away.

Definitions (times in integer nanoseconds; quantities in shares)
    *The fall*: :func:`desksim.analytics.crash.worst_fall` on the trade prices (the run's worst
    15-minute fall, as in ``fall_15m_pct``).
    *Phases*: ``before`` = the crash module's before window ``[max(open, start - 60 min), start)``;
    ``fall`` = its fall window ``[start, start + max(trough - start, 1 min)]`` (clipped at the end
    of the run); ``recovery`` = ``(end of the fall window, min(trough + 20 min, end of run)]``. A
    phase that is empty (the fall at the open, a trough at the close) has no rows.
    *A group* is an agent's name prefix (``noise-17`` -> ``noise``), the desk's account under the
    desk's name, as in the fee table (:func:`desksim.analytics.fees.participant_groups`); an actor
    the scenario does not name is its own group.
    Per group and phase, from the fills (each print gives a buyer's and a seller's fill):
    ``bought`` and ``sold``; ``net = bought - sold`` (its position change over the phase; the nets
    of all groups sum to 0); ``volume_share_pct = (bought + sold) / (2 x the phase's volume) x 100``
    (sums to 100 over the groups); ``taker_share_pct`` = the share of its ``bought + sold`` it
    traded as the aggressor (auction prints count as neither maker nor taker).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from desksim.analytics.crash import KEYS as CRASH_KEYS
from desksim.analytics.crash import RECOVERY_WINDOW_NS, Fall, crash_metrics, windows, worst_fall
from desksim.analytics.fees import legs

PHASES = ("before", "fall", "recovery")
#: roles of a Monte Carlo row's per-role nets: agent kinds, the two maker kinds as one
ROLE_OF_KIND = {"ladder_maker": "makers", "as_maker": "makers", "value": "value", "noise": "noise",
                "momentum": "momentum", "program": "program", "desk": "desk"}  # fmt: skip
ROLES = ("makers", "value", "noise", "momentum", "program", "desk", "other")
#: the per-role columns of runs.parquet: net shares bought in the fall and in the recovery
ROLE_KEYS = tuple(f"{phase}_net_{role}" for phase in ("fall", "recovery") for role in ROLES)
COLUMNS = ("group", "kind", "phase", "bought", "sold", "net", "volume_share_pct", "taker_share_pct")

__all__ = [
    "COLUMNS",
    "PHASES",
    "ROLES",
    "ROLE_KEYS",
    "anatomy_summary",
    "fall_anatomy",
    "maker_names",
    "measures_of",
    "phase_windows",
    "role_nets",
    "sellers_first",
    "worst_fall_section",
]


def maker_names(scenario: Any) -> list[str]:
    """Names of the scenario's market makers (actors with the makers' guard: ladder and A-S makers),
    whose trades with each other are the maker-to-maker trades of :mod:`desksim.analytics.crash`."""
    from actors.makers import MakerGuard
    from scenarios.schema import actor_roster

    return [name for name, cls in actor_roster(scenario) if issubclass(cls, MakerGuard)]


def phase_windows(fall: Fall, open_ns: int, end_ns: int) -> dict[str, tuple[int, int]]:
    """``{phase: (a, b)}`` of the phases that are not empty: ``before`` is ``[a, b)``, ``fall``
    ``[a, b]`` and ``recovery`` ``(a, b]`` (see the module docstring)."""
    w = windows(fall, open_ns, end_ns)
    if w is None:
        return {}
    (a, b), (c, _) = w
    assert fall.trough_ns is not None
    out = {"before": (c, a), "fall": (a, b)}
    r_end = min(fall.trough_ns + RECOVERY_WINDOW_NS, int(end_ns))
    if r_end > b:
        out["recovery"] = (b, r_end)
    return out


#: each phase's window ends: (start included, end included)
_CLOSED = {"before": (True, False), "fall": (True, True), "recovery": (False, True)}


def _inside(t: np.ndarray, phase: str, a: int, b: int) -> np.ndarray:
    with_start, with_end = _CLOSED[phase]
    return ((t >= a) if with_start else (t > a)) & ((t <= b) if with_end else (t < b))


def fall_anatomy(
    trades: pd.DataFrame | None,
    open_ns: int,
    end_ns: int,
    groups: Mapping[str, tuple[str, str]] | None = None,
    fall: Fall | None = None,
) -> pd.DataFrame:
    """One row per (group, phase) that traded, in :data:`COLUMNS` (see the module docstring);
    groups in order of their net in the fall, sellers first. ``groups`` maps an actor to (group,
    kind); ``fall`` defaults to the worst 15-minute fall of the trade prices."""
    empty = pd.DataFrame({c: [] for c in COLUMNS})
    if trades is None or not len(trades):
        return empty
    if fall is None:
        fall = worst_fall(trades["time_ns"].to_numpy(dtype=np.int64), trades["price"].to_numpy(dtype=np.float64))
    phases = phase_windows(fall, open_ns, end_ns)
    if not phases:
        return empty
    groups = groups or {}
    fills = legs(trades)
    names = fills["participant"].to_numpy(dtype=object)
    group = np.array([groups.get(n, (n, ""))[0] for n in names], dtype=object)
    kind: dict[str, str] = dict(groups.get(n, (n, "")) for n in pd.unique(names))
    t = fills["time_ns"].to_numpy(dtype=np.int64)
    qty = fills["qty"].to_numpy(dtype=np.int64)
    buy = fills["side"].to_numpy(dtype=object) == "B"
    took = fills["liquidity"].to_numpy(dtype=object) == "taker"
    frames = []
    for phase, (a, b) in phases.items():
        m = _inside(t, phase, a, b)
        if not m.any():
            continue
        part = pd.DataFrame(
            {
                "group": group[m],
                "bought": np.where(buy[m], qty[m], 0),
                "sold": np.where(buy[m], 0, qty[m]),
                "taken": np.where(took[m], qty[m], 0),
            }
        )
        g = part.groupby("group", sort=True).sum().reset_index()
        traded = g["bought"] + g["sold"]
        g["phase"] = phase
        g["net"] = g["bought"] - g["sold"]
        g["volume_share_pct"] = traded / traded.sum() * 100.0
        g["taker_share_pct"] = g["taken"] / traded * 100.0
        frames.append(g)
    if not frames:
        return empty
    out = pd.concat(frames, ignore_index=True)
    out["kind"] = out["group"].map(kind)
    in_fall = out[out["phase"] == "fall"].set_index("group")["net"]
    rank = {name: i for i, name in enumerate(sorted(out["group"].unique(), key=lambda n: (in_fall.get(n, 0), n)))}
    order = np.lexsort((out["phase"].map(PHASES.index).to_numpy(), out["group"].map(rank).to_numpy()))
    return out.iloc[order].reset_index(drop=True)[list(COLUMNS)]


def anatomy_summary(table: pd.DataFrame) -> dict[str, dict[str, dict[str, float | int | None]]]:
    """The table as ``{group: {"kind": ..., phase: {bought, sold, net, volume_share_pct,
    taker_share_pct}}}`` for a run's summary (percentages rounded to 0.01)."""

    def pct(x: float) -> float | None:
        return round(float(x), 2) if math.isfinite(float(x)) else None

    out: dict[str, dict[str, Any]] = {}
    for row in table.itertuples(index=False):
        entry = out.setdefault(str(row.group), {"kind": str(row.kind)})
        entry[str(row.phase)] = {
            "bought": int(row.bought),
            "sold": int(row.sold),
            "net": int(row.net),
            "volume_share_pct": pct(row.volume_share_pct),
            "taker_share_pct": pct(row.taker_share_pct),
        }
    return out


def sellers_first(by_group: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, Mapping[str, Any]]]:
    """A summary's ``worst_fall.by_group`` items in the table's order: by net in the fall (sellers
    first; a group that did not trade in it counts 0), then by name (summary.json sorts its keys)."""
    return sorted(by_group.items(), key=lambda item: (int((item[1].get("fall") or {}).get("net") or 0), item[0]))


def _plain(value: float) -> float | str | None:
    """A measure for JSON: NaN (not measured) as None, an infinite ratio as "inf"."""
    if math.isnan(value):
        return None
    return "inf" if math.isinf(value) else value


def measures_of(section: Mapping[str, Any]) -> dict[str, float]:
    """The crash measures (:data:`desksim.analytics.crash.KEYS`) of a summary's ``worst_fall`` as
    floats again: None as NaN, "inf" as infinity (the inverse of what the summary stores)."""
    out = {}
    for key in CRASH_KEYS:
        value = section.get(key)
        out[key] = math.nan if value is None else math.inf if value == "inf" else float(value)
    return out


def worst_fall_section(
    trades: pd.DataFrame | None,
    quotes: pd.DataFrame | None,
    open_ns: int,
    end_ns: int,
    groups: Mapping[str, tuple[str, str]] | None = None,
    makers: list[str] | None = None,
) -> dict[str, Any]:
    """A run summary's ``worst_fall``: the crash measures of :func:`desksim.analytics.crash.crash_metrics`
    (the same as the run's row of a Monte Carlo ``runs.parquet``; NaN as None, an infinite ratio as
    "inf") and ``by_group``, :func:`anatomy_summary` of :func:`fall_anatomy`."""
    has = trades is not None and len(trades) > 0
    fall = worst_fall(
        trades["time_ns"].to_numpy(dtype=np.int64) if has else np.empty(0, dtype=np.int64),  # type: ignore[index]
        trades["price"].to_numpy(dtype=np.float64) if has else np.empty(0),  # type: ignore[index]
    )
    measures = crash_metrics(trades, quotes, open_ns, end_ns, makers, fall)
    out: dict[str, Any] = {k: _plain(v) for k, v in measures.items()}
    out["by_group"] = anatomy_summary(fall_anatomy(trades, open_ns, end_ns, groups, fall))
    return out


def role_nets(by_group: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """:data:`ROLE_KEYS` from a summary's ``worst_fall.by_group``: each role's net shares bought in
    the fall and in the recovery (kinds outside :data:`ROLE_OF_KIND` are "other"); NaN for a phase
    in which nothing traded (or no fall)."""
    out = dict.fromkeys(ROLE_KEYS, math.nan)
    for phase in ("fall", "recovery"):
        if not any(phase in g for g in by_group.values()):
            continue
        for role in ROLES:
            out[f"{phase}_net_{role}"] = 0.0
        for g in by_group.values():
            if phase in g:
                role = ROLE_OF_KIND.get(str(g.get("kind", "")), "other")
                out[f"{phase}_net_{role}"] += float(g[phase]["net"])
    return out
