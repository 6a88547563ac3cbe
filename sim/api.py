"""The Python surface: run a scenario without a subprocess and without files unless asked.

from sim import api
res = api.run("baseline", seed=7)
res.summary["digest"]; res.trades; res.quotes
"""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from actors.build import build
from scenarios.schema import Scenario, load
from sim.analytics.realism import realism
from sim.clock import SECOND, format_clock
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
    return summarise(
        scenario,
        seed,
        source,
        recorder,
        stats,
        runtime="local",
        actors=len(assembly.actors),
        extras=actor_extras(assembly),
    )


def actor_extras(assembly: Any, owns: Callable[[Any], bool] = lambda _actor: True) -> dict[str, Any]:
    """What the summary reads from live actors (desk, OMS, risk officer), as plain picklable data.

    ``owns`` says which actors live in this process (the Ray runtime calls it per partition)."""
    out: dict[str, Any] = {}
    desk, oms, risk = assembly.desk, assembly.oms, assembly.risk
    if desk is not None and owns(desk):
        out["desk"] = _jsonable(desk.summary())
        out["desk_frames"] = desk.frames()
    if oms is not None and owns(oms):
        out["oms"] = _jsonable(oms.snapshot())
    if risk is not None and owns(risk):
        out["risk"] = _jsonable(risk.summary())
        out["risk_snapshot"] = _jsonable(risk.snapshot())
    return out


def summarise(
    scenario: Scenario,
    seed: int,
    source: str,
    recorder: Recorder,
    stats: Any,
    *,
    runtime: str,
    actors: int,
    extras: dict[str, Any],
    more: dict[str, Any] | None = None,
) -> RunResult:
    """The run's summary and tables from its recorder, kernel counters and actor extras (the same
    code for every runtime, so summaries agree key for key)."""
    start_ns, end_ns = scenario.session.open_ns, scenario.session.close_ns
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
        "runtime": runtime,
        "actors": actors,
        "sim_start": scenario.session.open,
        "sim_end": scenario.session.close,
        "sim_seconds": (end_ns - start_ns) / SECOND,
        "wall_seconds": round(stats.wall_s, 4),
        "messages_delivered": stats.messages,
        "wakeups_delivered": stats.wakeups,
        "messages_per_second": round(stats.messages / stats.wall_s, 1) if stats.wall_s > 0 else None,
        "orders": int((frames["orders"]["event"] == "submit").sum()) if len(frames["orders"]) else 0,
        "trades": len(trades),
        "volume": int(trades["qty"].sum()) if len(trades) else 0,
        "price": _price_stats(trades, tick),
        "realism": realism(trades, frames["quotes"], start_ns, end_ns, tick),
        "python": platform.python_version(),
        "desksim": VERSION,
    }
    if "desk" in extras:
        summary["desk"] = dict(extras["desk"])
        frames.update(extras.get("desk_frames", {}))
        summary["desk"]["max_position"] = _max_abs_position(frames.get("desk_fills"))
    if "oms" in extras:
        summary["oms"] = extras["oms"]
        summary["reconciliation"] = reconciliation(
            scenario, extras["oms"], extras.get("risk_snapshot"), frames["orders"]
        )
    if "risk" in extras:
        summary["risk"] = dict(extras["risk"])
        summary["risk"].update(_risk_events_summary(frames.get("risk_events")))
    halts = frames.get("halts")
    summary["halts"] = int((halts["event"] == "halted").sum()) if halts is not None and len(halts) else 0
    summary.update(more or {})
    return RunResult(summary, {k: v for k, v in frames.items() if k != "kernel"})


def _risk_events_summary(events: pd.DataFrame | None) -> dict[str, Any]:
    """Kill switch (fired, first time) and the number of limit breaches, from risk_events."""
    if events is None or not len(events):
        return {"kill_switch": {"fired": False, "time_ns": None}, "breaches": 0}
    kills = events[events["action"] == "kill"]
    fired = bool(len(kills))
    return {
        "kill_switch": {"fired": fired, "time_ns": int(kills["time_ns"].iloc[0]) if fired else None},
        "breaches": int(events["action"].isin(["reject", "kill"]).sum()),
    }


def _max_abs_position(fills: pd.DataFrame | None) -> int:
    if fills is None or not len(fills) or "side" not in fills:
        return 0
    signed = fills["qty"].where(fills["side"] == "B", -fills["qty"])
    return int(signed.cumsum().abs().max())


def reconciliation(
    scenario: Scenario, oms_snapshot: dict[str, Any], risk_snapshot: dict[str, Any] | None, orders: pd.DataFrame
) -> dict[str, Any]:
    """End-of-run reconciliation of the desk's account: OMS vs risk officer vs exchange, to the
    share (positions) and to the tick x share (cash)."""
    from actors.risk import fills_from_orders_table, reconcile

    account = scenario.desk.fix.comp_id if scenario.desk else ""
    symbol = scenario.symbol
    oms_view: dict[str, Any] = {
        "positions": {account: {sym: int(p["position"]) for sym, p in oms_snapshot["positions"].items()}},
        "cash": {account: int(oms_snapshot["cash"])},
    }
    gateway_orders = orders[orders["owner"] == "gateway"] if len(orders) else orders
    fills = fills_from_orders_table(gateway_orders, lambda _oid: account, symbol=symbol)
    breaks = reconcile(oms_view, fills, risk_snapshot)
    return {
        "account": account,
        "position": oms_view["positions"][account].get(symbol, 0),
        "cash_ticks": oms_view["cash"][account],
        "breaks": [_jsonable(dataclasses.asdict(b)) for b in breaks],
    }


def _jsonable(value: Any) -> Any:
    """Plain JSON types (dict keys as strings, numpy scalars as Python numbers)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


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
    runtime: str = "local",
    placement: Any = None,
    address: str | None = None,
) -> RunResult:
    """Load ``scenario`` (a path or a bundled name), run it, and write ``out`` if given.

    ``runtime="ray"`` places the actors in Ray actor processes (``placement``: None for the
    default split, "core", or a dict of name globs to groups; ``address`` joins a cluster) and
    gives the same digest, tables and summary as the local runtime."""
    loaded = _shorten(load(scenario, overrides), duration_s)
    if runtime == "local":
        result = run_scenario(loaded, seed, source=str(scenario))
    elif runtime == "ray":
        from sim.runtime.ray import run_ray

        result = run_ray(loaded, seed, placement=placement, address=address, source=str(scenario))
    else:
        raise ValueError(f"unknown runtime {runtime!r} (local or ray)")
    if out is not None:
        write_run(Path(out), result.summary, result.frames)
    return result


def monte_carlo(
    scenario: str | Path,
    runs: int = 100,
    workers: int | None = None,
    seed: int | None = None,
    **options: Any,
) -> Any:
    """Monte Carlo on Ray: ``runs`` seeded runs of ``scenario``; returns ``MCResult(runs, summary)``.

    ``mc = api.monte_carlo("flash_crash", runs=200, workers=2, seed=1)``; ``mc.runs`` has one row
    of metrics per run, ``mc.summary["var"]["99"]`` the 99% VaR. Options (``out``, ``batch_size``,
    ``address``, ``resume``, ``duration_s``, ``progress``, ``distributions``) are those of
    :func:`sim.montecarlo.monte_carlo`; nothing is written unless ``out`` is given.
    """
    from sim.montecarlo import monte_carlo as _monte_carlo

    options.setdefault("progress", False)
    return _monte_carlo(scenario, runs=runs, workers=workers, seed=seed, **options)
