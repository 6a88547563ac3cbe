"""PNG plots of a run folder or a Monte Carlo folder (matplotlib, Agg backend, no display).

Every function takes DataFrames already loaded (a missing optional table is ``None``) and writes
one PNG, returning its path, or returns ``None`` when it has nothing to draw. Times are
nanoseconds since midnight and drawn as a time of day; prices are integer ticks times the tick.
Long tables are reduced to at most ``MAX_BINS`` time bins (min / max / last per bin) so a
full-day run plots in well under a second and its extremes stay visible.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from actors.units import to_price
from desksim.output import atomic_path, write_json

MAX_BINS = 1500
DPI = 100
WIDE = (11, 4.2)
RISK_COLOR = "#c0392b"
HALT_COLOR = "#f5b041"
EVENT_COLOR = "#7d3c98"
REDUCE_COLOR = "#27ae60"
SIDECAR = "plots.json"


def _save(fig: Any, path: Path) -> Path:
    try:
        with atomic_path(path, ".png") as tmp:
            fig.savefig(tmp, dpi=DPI, bbox_inches="tight")
        record_figure(fig, path)
    finally:
        plt.close(fig)
    return path


def _finite_xy(xy: Any) -> np.ndarray:
    arr = np.ma.filled(np.ma.asarray(xy, dtype=np.float64), np.nan).reshape(-1, 2)
    return arr[np.isfinite(arr).all(axis=1)]


def _data_points(ax: Any) -> np.ndarray:
    """(x, y) of every data point drawn in data coordinates: lines, scatter markers, bar tops.

    Reference lines and spans (axhline, axvline, axvspan: drawn in axes coordinates) are not data."""
    parts = [np.empty((0, 2))]
    for line in ax.get_lines():
        if line.get_transform() == ax.transData:
            parts.append(_finite_xy(line.get_xydata()))
    for coll in ax.collections:
        if coll.get_offset_transform() == ax.transData and len(coll.get_offsets()):
            parts.append(_finite_xy(coll.get_offsets()))
    for container in ax.containers:
        for rect in getattr(container, "patches", ()):
            parts.append(_finite_xy([[rect.get_x() + rect.get_width() / 2, rect.get_y() + rect.get_height()]]))
    return np.concatenate(parts)


def axes_record(ax: Any) -> dict[str, Any]:
    """What one drawn axes shows: its limits, how many data points fall inside them, its visible
    x tick labels and the event marks (vertical lines labelled with ``gid="event:<text>"``)."""
    pts = _data_points(ax)
    (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
    inside = (pts[:, 0] >= x0) & (pts[:, 0] <= x1) & (pts[:, 1] >= y0) & (pts[:, 1] <= y1)
    events = [str(a.get_gid())[6:] for a in ax.get_children() if str(a.get_gid() or "").startswith("event:")]
    return {
        "title": ax.get_title(),
        "ylabel": ax.get_ylabel(),
        "xlim": [float(x0), float(x1)],
        "ylim": [float(y0), float(y1)],
        "points": int(pts.shape[0]),
        "inside": int(inside.sum()),
        "data_extent": [float(v) for v in (*pts.min(axis=0), *pts.max(axis=0))] if pts.size else None,
        "xticklabels": [t.get_text() for t in ax.get_xticklabels() if t.get_visible() and t.get_text()],
        "events": sorted(set(events)),
    }


def record_figure(fig: Any, path: Path) -> None:
    """Add the figure's axes records to ``plots.json`` beside the PNG (keyed by the PNG's name): the
    sidecar that tests (and curious users) read to see that each plot has data inside its axes."""
    sidecar = path.parent / SIDECAR
    try:
        records = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        records = {}
    records[path.name] = [axes_record(ax) for ax in fig.axes if ax.get_visible()]
    write_json(sidecar, records)


def _clock(ns: Any) -> Any:
    """ns since midnight -> datetimes on 1970-01-01 (matplotlib draws them as a time of day)."""
    return pd.to_datetime(np.asarray(ns, dtype=np.int64), unit="ns")


def _time_axis(ax: Any) -> None:
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    ax.grid(True, alpha=0.3)


def _bins(t: np.ndarray, v: np.ndarray, max_bins: int = MAX_BINS) -> tuple[np.ndarray, ...]:
    """(time, last, low, high) per time bin; the input itself when it is already short."""
    if t.size <= max_bins:
        return t, v, v, v
    edges = np.linspace(t.min(), t.max() + 1, max_bins + 1)
    idx = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, max_bins - 1)
    frame = pd.DataFrame({"b": idx, "t": t, "v": v}).groupby("b")
    agg = frame.agg(t=("t", "last"), last=("v", "last"), low=("v", "min"), high=("v", "max"))
    return (agg["t"].to_numpy(), agg["last"].to_numpy(), agg["low"].to_numpy(), agg["high"].to_numpy())


def halt_spans(halts: pd.DataFrame | None, end_ns: int) -> list[tuple[int, int]]:
    """[(halted_ns, resumed_ns)] from a halts table (time_ns, event); open halts run to ``end_ns``."""
    spans: list[tuple[int, int]] = []
    if halts is None or not len(halts) or "event" not in halts:
        return spans
    start: int | None = None
    for t, ev in zip(halts["time_ns"].astype("int64"), halts["event"].astype(str), strict=True):
        if ev == "halted" and start is None:
            start = int(t)
        elif ev == "resumed" and start is not None:
            spans.append((start, int(t)))
            start = None
    if start is not None:
        spans.append((start, max(start, int(end_ns))))
    return spans


def kill_switch_spans(risk_events: pd.DataFrame | None, end_ns: int) -> list[tuple[int, int]]:
    """Intervals with the kill switch engaged, from risk events whose kind/action mention "kill".

    An event whose text also says off / release / reset / re-enable / disengage / unblock closes the interval.
    """
    spans: list[tuple[int, int]] = []
    if risk_events is None or not len(risk_events) or "time_ns" not in risk_events:
        return spans
    text = pd.Series([""] * len(risk_events), index=risk_events.index)
    for col in ("kind", "action", "event", "limit"):
        if col in risk_events:
            text = text + " " + risk_events[col].astype(str).str.lower()
    start: int | None = None
    for t, what in zip(risk_events["time_ns"].astype("int64"), text, strict=True):
        if "kill" not in what:
            continue
        off = any(w in what for w in ("off", "release", "reset", "enable", "disengage", "clear", "unblock"))
        if off and start is not None:
            spans.append((start, int(t)))
            start = None
        elif not off and start is None:
            start = int(t)
    if start is not None:
        spans.append((start, max(start, int(end_ns))))
    return spans


def _shade(ax: Any, spans: list[tuple[int, int]], color: str, label: str) -> None:
    for i, (a, b) in enumerate(spans):
        ax.axvspan(_clock([a])[0], _clock([max(b, a + 1)])[0], color=color, alpha=0.3, label=label if i == 0 else None)


def event_marks(events: pd.DataFrame | None) -> list[tuple[int, str]]:
    """(time_ns, label) of each fired scenario event (``scenario_events``: time_ns, action, target,
    detail): program start, maker withdrawal, halt, fat finger, kill switch on / off ..."""
    if events is None or not len(events) or "time_ns" not in events:
        return []
    out = []
    for rec in events.sort_values("time_ns", kind="stable").itertuples(index=False):
        action = str(getattr(rec, "action", "") or "event")
        detail = str(getattr(rec, "detail", "") or "")
        words = action.replace("_", " ")
        label = detail if detail.startswith(words) else f"{action} {detail}".strip()
        out.append((int(rec.time_ns), label if len(label) <= 48 else label[:47] + "…"))
    return out


def _mark_events(ax: Any, marks: list[tuple[int, str]], text: bool = True) -> None:
    """A dotted vertical line per scenario event (``gid`` "event:<label>"), labelled at the top."""
    for i, (t, label) in enumerate(marks):
        x = _clock([t])[0]
        ax.axvline(
            x,
            color=EVENT_COLOR,
            linestyle=":",
            linewidth=1.3,
            gid=f"event:{label}",
            label="scenario event" if i == 0 else None,
        )
        if text:
            ax.annotate(
                label,
                (x, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(2, -3),
                textcoords="offset points",
                rotation=90,
                va="top",
                ha="left",
                fontsize=7,
                color=EVENT_COLOR,
                gid=f"event:{label}",
                bbox={"facecolor": "white", "alpha": 0.7, "linewidth": 0, "pad": 1},
            )


def _session(ax: Any, start_ns: int | None, end_ns: int | None) -> None:
    """The x axis spans the session (so one event does not zoom the axis to a microsecond)."""
    if start_ns is not None and end_ns is not None and end_ns > start_ns:
        ax.set_xlim(_clock([start_ns])[0], _clock([end_ns])[0])


def plot_price(
    path: Path,
    trades: pd.DataFrame | None,
    tick: float,
    halts: pd.DataFrame | None = None,
    risk_events: pd.DataFrame | None = None,
    end_ns: int | None = None,
    title: str = "",
    events: pd.DataFrame | None = None,
    start_ns: int | None = None,
) -> Path | None:
    """Trade price over time with halts shaded, limit states, risk events, the kill switch and the
    scenario's events marked."""
    if trades is None or not len(trades):
        return None
    t = trades["time_ns"].to_numpy(dtype=np.int64)
    px = to_price(trades["price"].to_numpy(dtype=np.float64), tick)
    bt, last, low, high = _bins(t, px)
    end = int(end_ns if end_ns is not None else t.max())
    fig, ax = plt.subplots(figsize=WIDE)
    if bt.size < t.size:
        ax.fill_between(_clock(bt), low, high, color="#5dade2", alpha=0.35, linewidth=0, label="range per bin")
    ax.plot(_clock(bt), last, color="#1f4e79", linewidth=0.9, label="trade price")
    _shade(ax, halt_spans(halts, end), HALT_COLOR, "trading halt")
    if halts is not None and len(halts) and "event" in halts:
        limit = halts[halts["event"].astype(str) == "limit_state_entered"]
        if len(limit):
            ax.scatter(
                _clock(limit["time_ns"]),
                _price_at(t, px, limit["time_ns"]),
                marker="v",
                color="#e67e22",
                zorder=5,
                label="limit state",
            )
    if risk_events is not None and len(risk_events) and "time_ns" in risk_events:
        rt = risk_events["time_ns"].to_numpy(dtype=np.int64)
        ax.scatter(_clock(rt), _price_at(t, px, rt), marker="x", color=RISK_COLOR, zorder=6, s=30, label="risk event")
    for i, (a, _b) in enumerate(kill_switch_spans(risk_events, end)):
        ax.axvline(
            _clock([a])[0], color=RISK_COLOR, linestyle="--", linewidth=1.2, label="kill switch" if i == 0 else None
        )
    _mark_events(ax, event_marks(events))
    ax.set_ylabel("price (currency)")
    ax.set_title(title or "Trade price")
    _session(ax, start_ns, end_ns)
    _time_axis(ax)
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def _price_at(t: np.ndarray, px: np.ndarray, when: Any) -> np.ndarray:
    """Last trade price at or before each time (the first price before the first trade)."""
    idx = np.clip(np.searchsorted(t, np.asarray(when, dtype=np.int64), side="right") - 1, 0, len(px) - 1)
    return px[idx]


def time_weighted(t: np.ndarray, v: np.ndarray, end_ns: int, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres and time-weighted means of a step function (value v[i] holds from t[i] to t[i+1]).

    NaN values carry no weight; a bin with no finite value at all is NaN.
    """
    t = np.asarray(t, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    ends = np.r_[t, float(max(end_ns, t[-1] + 1))]
    dur = np.diff(ends)
    ok = np.isfinite(v)
    cum_v = np.r_[0.0, np.cumsum(np.where(ok, v, 0.0) * dur)]
    cum_w = np.r_[0.0, np.cumsum(ok * dur)]
    edges = np.linspace(ends[0], ends[-1], bins + 1)
    iv, iw = np.diff(np.interp(edges, ends, cum_v)), np.diff(np.interp(edges, ends, cum_w))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(iw > 0, iv / np.where(iw > 0, iw, 1.0), np.nan)
    return ((edges[:-1] + edges[1:]) / 2).astype(np.int64), mean


def plot_spread_depth(
    path: Path,
    quotes: pd.DataFrame | None,
    tick: float,
    halts: pd.DataFrame | None = None,
    end_ns: int | None = None,
    title: str = "",
    events: pd.DataFrame | None = None,
    start_ns: int | None = None,
) -> Path | None:
    """Quoted spread and size at the best bid / ask; long runs as time-weighted means per bin."""
    if quotes is None or not len(quotes):
        return None
    q = quotes.sort_values("time_ns", kind="stable")
    t = q["time_ns"].to_numpy(dtype=np.int64)
    bid = pd.to_numeric(q["bid"], errors="coerce").to_numpy(dtype=np.float64)
    ask = pd.to_numeric(q["ask"], errors="coerce").to_numpy(dtype=np.float64)
    bid_qty = np.nan_to_num(pd.to_numeric(q["bid_qty"], errors="coerce").to_numpy(dtype=np.float64))
    ask_qty = np.nan_to_num(pd.to_numeric(q["ask_qty"], errors="coerce").to_numpy(dtype=np.float64))
    spread = (ask - bid) * tick
    end = int(end_ns if end_ns is not None else t.max())
    series = {"spread": spread, "bid size": bid_qty, "ask size": ask_qty}
    averaged = t.size > MAX_BINS // 2
    if averaged:
        bins = min(400, max(50, (end - int(t[0])) // 60_000_000_000))
        tt = np.empty(0, dtype=np.int64)
        for key, arr in list(series.items()):
            tt, series[key] = time_weighted(t, arr, end, int(bins))
    else:
        tt = t
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    how = " (time-weighted mean per bin)" if averaged else ""
    ax1.step(
        _clock(tt),
        series["spread"],
        where="mid" if averaged else "post",
        color="#1f4e79",
        linewidth=0.9,
        label="spread" + how,
    )
    ax1.set_ylabel("spread (currency)")
    ax1.set_ylim(bottom=0)
    ax1.set_title(title or "Spread and top-of-book depth")
    for label, color in (("bid size", "#229954"), ("ask size", "#c0392b")):
        ax2.step(
            _clock(tt),
            series[label],
            where="mid" if averaged else "post",
            linewidth=0.9,
            label=label + how,
            color=color,
        )
    ax2.set_ylabel("size at best (shares)")
    ax2.set_ylim(bottom=0)
    marks = event_marks(events)
    for ax in (ax1, ax2):
        _shade(ax, halt_spans(halts, end), HALT_COLOR, "trading halt")
        _mark_events(ax, marks, text=ax is ax1)
        _session(ax, start_ns, end_ns)
        _time_axis(ax)
        ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def desk_series(
    pnl: pd.DataFrame | None, desk_pnl: pd.DataFrame | None, tick: float
) -> tuple[list[tuple[str, pd.DataFrame, str]], list[tuple[str, pd.DataFrame, pd.Series]]]:
    """(positions, P&Ls) to draw: ``[(label, frame, position column)]``, ``[(label, frame, P&L in currency)]``.

    Sources: the OMS's ``pnl`` table (the account's books: position, realized and unrealized in
    ticks x shares, marked at the last trade), the desk's ``desk_pnl`` table (the strategy's own fills
    marked at the mid, P&L in currency) and any table with a position and *pnl* columns (currency)."""
    positions: list[tuple[str, pd.DataFrame, str]] = []
    money: list[tuple[str, pd.DataFrame, pd.Series]] = []
    for source, frame in (("account (OMS)", pnl), ("desk", desk_pnl)):
        if frame is None or not len(frame) or "time_ns" not in frame:
            continue
        group = next((c for c in ("desk", "account", "owner", "actor", "symbol") if c in frame), None)
        parts = list(frame.groupby(group, sort=True)) if group else [(source, frame)]
        for name, part in parts:
            part = part.sort_values("time_ns", kind="stable")
            label = f"{name}" if group == "desk" else source if len(parts) == 1 else f"{source} {name}"
            if "position" in part:
                positions.append((f"{label} position", part, "position"))
            if {"realized", "unrealized"} <= set(part.columns):
                books = (part["realized"] + part["unrealized"]).astype("float64") * tick
                money.append((f"{label} P&L (marked at last trade)", part, books))
            for col in part.columns:
                if "pnl" in col.lower() and pd.api.types.is_numeric_dtype(part[col]):
                    how = " (marked at mid)" if group == "desk" else ""
                    what = "P&L" if col.lower() == "pnl" else col
                    money.append((f"{label} {what}{how}", part, part[col].astype("float64")))
    return positions, money


def plot_desk(
    path: Path,
    pnl: pd.DataFrame | None,
    desk_pnl: pd.DataFrame | None = None,
    tick: float = 1.0,
    halts: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
    title: str = "",
) -> Path | None:
    """Desk position and P&L (currency) over time, halts shaded and scenario events marked."""
    positions, money = desk_series(pnl, desk_pnl, tick)
    if not positions and not money:
        return None
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    for label, frame, col in positions:
        t = frame["time_ns"].to_numpy(dtype=np.int64)
        bt, last, _l, _h = _bins(t, frame[col].to_numpy(dtype=np.float64))
        ax1.step(_clock(bt), last, where="post", linewidth=0.9, label=label)
    for label, frame, values in money:
        t = frame["time_ns"].to_numpy(dtype=np.int64)
        bt, last, _l, _h = _bins(t, values.to_numpy(dtype=np.float64))
        ax2.plot(_clock(bt), last, linewidth=0.9, label=label)
    ax1.set_ylabel("position (shares)")
    ax1.set_title(title or "Desk position and P&L")
    ax2.set_ylabel("P&L (currency)")
    ax2.axhline(0, color="black", linewidth=0.5)
    marks = event_marks(events)
    end = end_ns if end_ns is not None else int(max(f["time_ns"].max() for _l, f, _c in [*positions, *money]))
    for ax in (ax1, ax2):
        _shade(ax, halt_spans(halts, end), HALT_COLOR, "trading halt")
        _mark_events(ax, marks, text=ax is ax1)
        _session(ax, start_ns, end_ns)
        _time_axis(ax)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def plot_risk_timeline(
    path: Path,
    risk_events: pd.DataFrame | None,
    end_ns: int | None = None,
    start_ns: int | None = None,
    events: pd.DataFrame | None = None,
    kill_ns: int | None = None,
    reduce_only: tuple[int, int] | None = None,
) -> Path | None:
    """Risk events by kind over the session, kill-switch-engaged intervals shaded, scenario events marked;
    ``kill_ns`` (the session blocked, ``desk_outcome.kill.time_ns``) a dashed line, ``reduce_only``
    (first reduce-only order, its last answer or fill) a green band."""
    if risk_events is None or not len(risk_events) or "time_ns" not in risk_events:
        return None
    kinds = risk_events["kind"].astype(str) if "kind" in risk_events else pd.Series(["event"] * len(risk_events))
    order = sorted(kinds.unique())
    y = kinds.map({k: i for i, k in enumerate(order)}).to_numpy()
    t = risk_events["time_ns"].to_numpy(dtype=np.int64)
    end = int(end_ns if end_ns is not None else t.max())
    fig, ax = plt.subplots(figsize=(11, max(2.2, 0.45 * len(order) + 1.4)))
    _shade(ax, kill_switch_spans(risk_events, end), RISK_COLOR, "kill switch engaged")
    if reduce_only is not None:
        _shade(ax, [reduce_only], REDUCE_COLOR, "reduce-only orders accepted")
    if kill_ns is not None:
        ax.axvline(_clock([kill_ns])[0], color=RISK_COLOR, linestyle="--", linewidth=1.2, label="kill switch pulled")
    ax.scatter(_clock(t), y, marker="|", s=200, color="#1f4e79")
    ax.set_yticks(range(len(order)), order)
    ax.set_ylim(-0.8, len(order) - 0.2)
    ax.set_title("Risk events and kill switch")
    _mark_events(ax, event_marks(events))
    _session(ax, start_ns if start_ns is not None else int(t.min()), end)
    _time_axis(ax)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


# --------------------------------------------------------------------------- Monte Carlo


def plot_pnl_histogram(
    path: Path, outcomes: np.ndarray, var: dict[str, Any], es: dict[str, Any], label: str
) -> Path | None:
    """Histogram of run outcomes with -VaR (solid) and -ES (dotted) drawn at each level."""
    x = np.asarray(outcomes, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return None
    fig, ax = plt.subplots(figsize=WIDE)
    bins = max(10, min(80, int(math.sqrt(x.size) * 2)))
    ax.hist(x, bins=bins, color="#5dade2", edgecolor="white")
    colors = ("#f39c12", "#e67e22", "#c0392b")
    for color, key in zip(colors, sorted(var, key=float), strict=False):
        if var.get(key) is not None:
            ax.axvline(-var[key], color=color, linewidth=1.6, label=f"VaR {key}% = {var[key]:.4g}")
        if es.get(key) is not None:
            ax.axvline(-es[key], color=color, linewidth=1.2, linestyle=":", label=f"ES {key}% = {es[key]:.4g}")
    ax.set_xlabel(label + " (losses are to the left; lines at minus VaR / ES)")
    ax.set_ylabel("runs")
    ax.set_title(f"Distribution of {label} over {x.size} runs")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # no VaR line when the sample supports none
        ax.legend(loc="best", fontsize=8, framealpha=0.85)
    return _save(fig, path)


def plot_bars(path: Path, values: dict[str, float | None], title: str, xlabel: str, limit: float = 1.0) -> Path | None:
    """Horizontal bars of fractions (event frequencies, pass rates), value written at each bar."""
    if not values:
        return None
    names = list(values)
    vals = [float(v) if v is not None else 0.0 for v in values.values()]
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(names) + 1.4))
    bars = ax.barh(names, vals, color="#1f77b4")
    for bar, v in zip(bars, vals, strict=True):
        ax.text(bar.get_width() + limit * 0.01, bar.get_y() + bar.get_height() / 2, f"{v:.1%}", va="center", fontsize=9)
    ax.set_xlim(0, limit * 1.12)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.3)
    return _save(fig, path)


def plot_market_outcomes(path: Path, runs: pd.DataFrame) -> Path | None:
    """Histograms of the market's max drawdown (%) and time to recover (s) across runs."""
    dd = pd.to_numeric(runs.get("market_max_drawdown_pct"), errors="coerce").dropna()
    ttr = pd.to_numeric(runs.get("market_time_to_recover_s"), errors="coerce")
    if not len(dd):
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    ax1.hist(dd, bins=max(10, min(60, int(math.sqrt(len(dd)) * 2))), color="#884ea0", edgecolor="white")
    ax1.set_xlabel("max drawdown of the market (%)")
    ax1.set_ylabel("runs")
    ax1.set_title("Market drawdown")
    rec = ttr.dropna()
    if len(rec):
        ax2.hist(rec, bins=max(10, min(60, int(math.sqrt(len(rec)) * 2))), color="#17a589", edgecolor="white")
    never = int(ttr.isna().sum())
    ax2.set_xlabel("time to recover (s)")
    ax2.set_title(f"Recovery ({never} of {len(ttr)} runs never recovered)")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
    return _save(fig, path)


# --------------------------------------------------------------------------- self-check


def plot_problems(records: dict[str, list[dict[str, Any]]]) -> list[str]:
    """What is wrong with the plots recorded in ``plots.json``: an axes with no data point inside
    its limits, or a time axis whose tick labels repeat (all "00:00:00" on a one-event run)."""
    problems = []
    for name, axes in sorted(records.items()):
        for i, ax in enumerate(axes):
            where = f"{name} axes {i} ({ax.get('ylabel') or ax.get('title')!r})"
            if not ax.get("inside"):
                problems.append(f"{where}: no data inside the axes ({ax.get('points')} points drawn)")
            labels = ax.get("xticklabels") or []
            if len(labels) != len(set(labels)):
                problems.append(f"{where}: repeated x tick labels {labels}")
    return problems
