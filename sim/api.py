"""The Python surface: run a scenario without a subprocess and without files unless asked.

from sim import api
res = api.run("baseline", seed=7)
res.summary["digest"]; res.trades; res.quotes
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from actors.build import build
from scenarios.schema import Scenario, load
from sim.clock import SECOND, format_clock
from sim.analytics.realism import realism
from sim.output import write_run
from sim.record import Recorder
from sim.runtime.local import run_local

VERSION = "0.1.0"


@dataclass
class RunResult:
    summary: dict[str, Any]
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def trades(self) -> pd.DataFrame:
        return self.frames["trades"]

    @property
    def quotes(self) -> pd.DataFrame:
        return self.frames["quotes"]

    @property
    def orders(self) -> pd.DataFrame:
        return self.frames["orders"]


def _shorten(scenario: Scenario, duration_s: float | None) -> Scenario:
    if duration_s is None:
        return scenario
    if duration_s <= 0:
        raise ValueError("duration must be > 0 seconds")
    close_ns = min(scenario.session.close_ns, scenario.session.open_ns + int(duration_s * SECOND))
    close = format_clock(close_ns)[:8]
    session = scenario.session.model_copy(update={"close": close})
    return scenario.model_copy(update={"session": session})


def run_scenario(scenario: Scenario, seed: int | None = None, *, source: str = "") -> RunResult:
    """Run a validated scenario in this process and return its summary and tables."""
    seed = scenario.seed if seed is None else int(seed)
    recorder = Recorder()
    assembly = build(scenario, recorder, seed)
    _kernel, stats = run_local(assembly.actors, assembly.network, seed, assembly.start_ns, assembly.end_ns)
    recorder.table("kernel", ("messages", "wakeups")).append((stats.messages, stats.wakeups))
    frames = recorder.frames()
    trades = frames["trades"]
    tick = scenario.tick_size
    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "source": source,
        "seed": seed,
        "digest": recorder.digest(),
        "symbol": scenario.symbol,
        "tick_size": tick,
        "runtime": "local",
        "actors": len(assembly.actors),
        "sim_start": scenario.session.open,
        "sim_end": scenario.session.close,
        "sim_seconds": (assembly.end_ns - assembly.start_ns) / SECOND,
        "wall_seconds": round(stats.wall_s, 4),
        "messages_delivered": stats.messages,
        "wakeups_delivered": stats.wakeups,
        "messages_per_second": round(stats.messages / stats.wall_s, 1) if stats.wall_s > 0 else None,
        "orders": int((frames["orders"]["event"] == "submit").sum()) if len(frames["orders"]) else 0,
        "trades": len(trades),
        "volume": int(trades["qty"].sum()) if len(trades) else 0,
        "price": _price_stats(trades, tick),
        "realism": realism(trades, frames["quotes"], assembly.start_ns, assembly.end_ns, tick),
        "python": platform.python_version(),
        "desksim": VERSION,
    }
    return RunResult(summary, {k: v for k, v in frames.items() if k != "kernel"})


def _price_stats(trades: pd.DataFrame, tick: float) -> dict[str, float | None]:
    if not len(trades):
        return {"open": None, "close": None, "high": None, "low": None}
    px = trades["price"]
    return {
        "open": round(float(px.iloc[0]) * tick, 10),
        "close": round(float(px.iloc[-1]) * tick, 10),
        "high": round(float(px.max()) * tick, 10),
        "low": round(float(px.min()) * tick, 10),
    }


def run(
    scenario: str | Path,
    seed: int | None = None,
    *,
    out: str | Path | None = None,
    duration_s: float | None = None,
    overrides: dict[str, Any] | None = None,
) -> RunResult:
    """Load ``scenario`` (a path or a bundled name), run it, and write ``out`` if given."""
    loaded = _shorten(load(scenario, overrides), duration_s)
    result = run_scenario(loaded, seed, source=str(scenario))
    if out is not None:
        write_run(Path(out), result.summary, result.frames)
    return result
