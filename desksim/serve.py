"""``desksim serve``: the scenario's market assembled here, served over FIX by :mod:`fix.server`.

The served gateway meets its FIX clients with the same pre-trade gate as the simulated desk's
gateway (issue 15 item 6): its limits are ``--risk FILE`` (a YAML file shaped like a scenario's
``desk.risk`` section, validated by the scenario schema's ``RiskModel``), else the scenario's own
``desk.risk``; with neither there is no gate. There is no risk officer behind it: the gate acts
alone (it refuses, throttles and pulls the kill switch on its own triggers). With ``--out`` its
audit trail is the run folder's ``risk_events`` table, as in a simulated run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fix.server import ServedMarket, ServeOptions, options_from_args, serve
from scenarios.schema import RiskModel, ScenarioError, describe, load, read_yaml
from sim.kernel import Kernel
from sim.network import Network
from sim.record import Recorder
from sim.rng import RandomStreams

__all__ = ["build_market", "load_risk", "options_from_args", "run_server"]


def load_risk(path: str | Path) -> RiskModel:
    """A ``--risk`` file: one mapping shaped like a scenario's ``desk.risk`` section. Raises
    :class:`ScenarioError` with one line naming the file and the field."""
    p = Path(path)
    if not p.is_file():
        raise ScenarioError(f"--risk {p}: no such file")
    data = read_yaml(p)
    if not isinstance(data, dict):
        raise ScenarioError(
            f"--risk {p}: a risk file must be a YAML mapping (limits, accounts), got {type(data).__name__}"
        )
    try:
        return RiskModel.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"--risk {p}: {describe(exc)}") from None


def served_risk(opts: ServeOptions, scenario: Any) -> Any:
    """The served gateway's GateConfig (no officer), or None for no gate."""
    from actors.risk import GateConfig

    if opts.risk is not None:
        model = load_risk(opts.risk)
    elif scenario.desk is not None and scenario.desk.risk is not None:
        model = scenario.desk.risk
    else:
        return None
    return GateConfig.of(model.limits, dict(model.accounts), {scenario.symbol: scenario.reference_ticks}, officer=None)


def build_market(opts: ServeOptions) -> ServedMarket:
    """The scenario's actors in a kernel, from the one assembly point every runtime uses."""
    from desksim.assembly import build

    scenario = load(opts.scenario)
    risk = served_risk(opts, scenario)  # a bad --risk file stops the server before anything is built
    seed = scenario.seed if opts.seed is None else int(opts.seed)
    recorder = Recorder()
    assembly = build(scenario, recorder, seed)
    kernel = Kernel(Network(assembly.network), RandomStreams(seed), assembly.start_ns)
    for actor in assembly.actors:
        kernel.add(actor)
    return ServedMarket(
        kernel, assembly.exchange.name, scenario.symbol, scenario.tick_size, scenario, risk, recorder=recorder
    )


def write_served_run(out: Path, market: ServedMarket, seed: int, force: bool) -> Path:
    """The served session as a run folder: the tables the market and the gateway recorded
    (orders, trades, quotes, fix_messages, ...; ``risk_events`` when the gate is on) and a
    summary with their digest."""
    from desksim.output import write_run
    from desksim.runner import _risk_events_summary

    recorder = market.recorder
    frames = recorder.frames()
    summary = {
        "mode": "serve",
        "scenario": market.scenario.name,
        "seed": seed,
        "symbol": market.symbol,
        "tick_size": market.tick_size,
        "digest": recorder.digest(),
        "rows": {name: len(frame) for name, frame in sorted(frames.items())},
    }
    if "risk_events" in frames:  # the served gate's refusals, kills and market-protection cancels
        summary["risk"] = _risk_events_summary(frames["risk_events"])
    return write_run(out, summary, frames, replace=force)


def run_server(opts: ServeOptions) -> int:
    """Run ``desksim serve`` in this thread; returns the exit code. With ``--out`` the session is
    written as a run folder when the server stops."""
    if opts.out is not None and Path(opts.out).exists() and not opts.force:
        print(f"desksim: error: --out {opts.out} exists (use --force to replace it)", file=sys.stderr)
        return 2
    built: list[ServedMarket] = []

    def build_and_keep(o: ServeOptions) -> ServedMarket:
        market = build_market(o)
        built.append(market)
        return market

    code = serve(opts, build_and_keep, (ScenarioError,))
    if code == 0 and opts.out is not None and built:
        market = built[0]
        seed = market.scenario.seed if opts.seed is None else int(opts.seed)
        folder = write_served_run(Path(opts.out), market, seed, opts.force)
        print(f"run folder: {folder}", flush=True)
    return code
