"""Monte Carlo on Ray: many seeded runs of one scenario, batched, streamed to Parquet, resumable.

    from desksim.montecarlo import monte_carlo
    mc = monte_carlo("flash_crash", runs=200, workers=2, seed=1, out="runs/mc")
    mc.runs.describe(); mc.summary["var"]["99"]

Seeds
    Run ``i`` of root seed ``S`` simulates with ``run_seed(S, i)``: 128 bits of
    ``SeedSequence(S, spawn_key=(i,))`` as one int (full entropy: runs of any experiments never
    share a seed in practice, where 32-bit seeds repeat with probability ~1/2 among ~77k seeds).
    Its result never depends on the worker count, the batching or the order in which batches
    finish, and ``desksim run --seed <run_seed>`` replays run ``i``.

Parameters
    ``distributions`` maps dotted scenario paths (the keys of ``scenarios.schema.load``
    overrides, e.g. ``agents.1.params.rate_per_hour``) to a distribution. Each run draws its
    values from its own seed with :func:`sample_overrides` (one named stream per path, so adding
    a parameter does not move the others) and runs the scenario with them applied.

Execution
    Runs are cut into batches of consecutive indices; one Ray task (``num_cpus=1``, retried up to
    3 times, including when its worker process dies) runs a batch in-process via ``desksim.api`` and
    returns one metrics row per run. The driver keeps a bounded number of batches in flight and
    writes each finished batch as ``parts/batch-XXXXX.parquet`` (atomically), then compacts the
    parts into ``runs.parquet`` sorted by run index and writes ``summary.json``. A batch whose
    retries run out stops the experiment with one line naming it (finished parts are kept).

Store (a folder that cannot lie)
    ``mc.json`` is the manifest: the plan (scenario sha256, seed, runs, batching, distributions)
    and, for every finished part, its sha256 and run indices. A part also carries its identity
    (scenario sha256, seed, batch, runs) in its Parquet metadata. ``resume=True`` trusts a part
    only if its bytes match the manifest's checksum and it holds exactly its batch's runs of this
    seed and scenario; any other part (truncated, altered, copied from another batch or another
    experiment, or finished after the manifest was last written) is recomputed, and said so on
    stderr. A folder with files but no ``mc.json`` is refused. Compaction checks every part's
    checksum again. The Monte Carlo digest is a sha256 over every metric of every run (all
    columns of ``runs.parquet`` but the timing ones), in run order.

Risk figures
    The outcome is the desk's P&L when the runs report one, otherwise the market's return over
    the run in %. Losses are the negated outcomes. VaR / ES and their intervals come from
    :mod:`actors.riskstats` (one definition for the officer and Monte Carlo): VaR the
    ceil(N(1-a))-th largest loss, ES per Acerbi-Tasche; order-statistic (binomial) intervals for
    VaR, seeded studentized-bootstrap intervals for ES.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from actors import riskstats
from scenarios.distributions import validate_distributions
from sim.clock import SECOND
from sim.rng import name_key

#: VaR / ES confidence levels reported in ``summary.json`` (keys "95", "97.5", "99").
LEVELS = (0.95, 0.975, 0.99)
#: bootstrap resamples of the ES confidence intervals, and the intervals' confidence.
BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_CONFIDENCE = 0.95
#: retries of a batch whose task raised or whose worker died, before the experiment stops.
BATCH_RETRIES = 3
#: the manifest is rewritten at most this often while batches finish (and always at the end).
MANIFEST_EVERY_S = 1.0
#: a market "recovered" when a trade prints within this fraction of the pre-drop peak.
RECOVERY_BAND = 0.01
#: batches kept in flight per worker (a queue so a worker never waits for the driver).
INFLIGHT_PER_WORKER = 2
MANIFEST = "mc.json"
PARTS = "parts"


# --------------------------------------------------------------------------- seeds and sampling


def run_seed(root_seed: int, index: int) -> int:
    """The simulation seed of run ``index`` under ``root_seed`` (pure; any machine, any batching):
    the 128-bit int of four 32-bit words of ``SeedSequence(root_seed, spawn_key=(index,))``,
    least significant first."""
    if root_seed < 0 or index < 0:
        raise ValueError("seed and run index must be >= 0")
    words = np.random.SeedSequence(int(root_seed), spawn_key=(int(index),)).generate_state(4, np.uint32)
    return int.from_bytes(words.astype("<u4").tobytes(), "little")


def sample_overrides(distributions: dict[str, Any] | None, run_seed: int) -> dict[str, Any]:
    """The parameter values of one run: a pure function of the specs and the run's seed.

    Each path draws from its own stream ``SeedSequence(run_seed, spawn_key=name_key("mc:" + path))``,
    so the values do not depend on dict order or on which other parameters exist. Values are
    plain Python scalars (JSON- and YAML-friendly).
    """
    specs = validate_distributions(distributions)
    out: dict[str, Any] = {}
    for path in sorted(specs):
        spec = specs[path]
        rng = np.random.default_rng(np.random.SeedSequence(int(run_seed), spawn_key=name_key(f"mc:{path}")))
        dist = spec["dist"]
        if dist == "choice":
            values = spec["values"]
            p = None
            if spec.get("weights") is not None:
                w = np.asarray(spec["weights"], dtype=np.float64)
                p = w / w.sum()
            out[path] = copy.deepcopy(values[int(rng.choice(len(values), p=p))])
            continue
        if dist == "uniform":
            x = float(rng.uniform(spec["low"], spec["high"]))
        elif dist == "normal":
            x = float(rng.normal(spec["mean"], spec["sd"]))
        else:
            mu = float(spec["mu"]) if "mu" in spec else math.log(float(spec["median"]))
            x = float(rng.lognormal(mu, spec["sigma"]))
        if "min" in spec:
            x = max(x, float(spec["min"]))
        if "max" in spec:
            x = min(x, float(spec["max"]))
        out[path] = round(x) if spec.get("integer") else x
    return out


def _param_type(spec: dict[str, Any]) -> pa.DataType:
    if spec["dist"] != "choice":
        return pa.int64() if spec.get("integer") else pa.float64()
    values = spec["values"]
    if all(isinstance(v, bool) for v in values):
        return pa.bool_()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pa.int64()
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return pa.float64()
    return pa.string()


def _param_value(value: Any, kind: pa.DataType) -> Any:
    if kind == pa.string() and not isinstance(value, str):
        return json.dumps(value, sort_keys=True)
    if kind == pa.float64():
        return float(value)
    return value


# --------------------------------------------------------------------------- VaR / ES


def _level_key(level: float) -> str:
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
        key = _level_key(lv)
        need = min_runs(lv)
        if losses.size < need:
            res["var"][key] = res["es"][key] = res["var_ci_coverage"][key] = None
            res["var_ci"][key] = res["es_ci"][key] = [None, None]
            res["status"][key] = f"n/a: needs {need} runs (have {losses.size})"
            continue
        var, es = riskstats.var_es(losses, lv)
        res["var"][key], res["es"][key] = _clean(var), _clean(es)
        vci = riskstats.var_interval(losses, lv, confidence)
        rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=name_key(f"mc:es_ci:{key}")))
        eci = riskstats.es_interval(losses, lv, confidence, rng=rng, samples=samples)
        res["var_ci"][key] = [_clean(vci.lo), _clean(vci.hi)]
        res["es_ci"][key] = [_clean(eci.lo), _clean(eci.hi)]
        res["var_ci_coverage"][key] = _clean(vci.coverage)
        res["status"][key] = "ok"
    res["intervals"] = {
        "confidence": confidence,
        "var": "order statistics (binomial), exact coverage >= the confidence; null: beyond the sample",
        "es": f"studentized bootstrap, {samples} resamples, seeded",
        "convention": riskstats.CONVENTION,
        "min_runs": {_level_key(lv): min_runs(lv) for lv in tuple(levels)},
    }
    res["bootstrap"] = {"samples": samples if losses.size >= 2 else 0, "confidence": confidence}
    return res


def _clean(value: Any) -> float | None:
    """JSON-friendly float: None for NaN/inf, rounded to 12 significant digits."""
    if value is None:
        return None
    x = float(value)
    return float(f"{x:.12g}") if math.isfinite(x) else None


# --------------------------------------------------------------------------- per-run metrics

REALISM_CHECKS = ("heavy_tails", "no_autocorrelation", "volatility_clustering", "volume_volatility")
REALISM_STATS = ("kurtosis_1m", "acf1_1m", "abs_acf_mean", "corr_volume_absret", "spread_mean_ticks", "depth_mean")

#: metric columns of runs.parquet in order (the sampled parameters follow as ``param.<path>``).
SCHEMA = pa.schema(
    [
        ("run", pa.int64()),
        ("run_seed", pa.string()),  # 128-bit: decimal digits
        ("scenario", pa.string()),
        ("digest", pa.string()),
        ("orders", pa.int64()),
        ("trades", pa.int64()),
        ("volume", pa.int64()),
        ("messages", pa.int64()),
        ("market_open", pa.float64()),
        ("market_close", pa.float64()),
        ("market_low", pa.float64()),
        ("market_high", pa.float64()),
        ("market_return_pct", pa.float64()),
        ("market_max_drawdown_pct", pa.float64()),
        ("market_mid_max_drawdown_pct", pa.float64()),
        ("market_trough_s", pa.float64()),
        ("market_time_to_recover_s", pa.float64()),
        ("desk_pnl", pa.float64()),
        ("desk_max_drawdown", pa.float64()),
        ("desk_max_position", pa.float64()),
        ("desk_worst_position", pa.float64()),  # signed: the position furthest from flat
        ("desk_rejected_in_halts", pa.float64()),  # the desk's orders the exchange refused while halted
        ("kill_switch", pa.bool_()),
        ("kill_switch_s", pa.float64()),
        ("risk_breaches", pa.int64()),
        ("halts", pa.int64()),
        ("reconciliation_breaks", pa.int64()),
        *((f"realism_{name}", pa.bool_()) for name in REALISM_CHECKS),
        ("realism_passed", pa.int64()),
        *((name, pa.float64()) for name in REALISM_STATS),
        ("wall_s", pa.float64()),
    ]
)
#: columns that measure the machine, not the simulation (excluded from equality checks).
TIMING_COLUMNS = ("wall_s",)


def market_path_metrics(times_ns: np.ndarray, prices: np.ndarray, open_ns: int) -> dict[str, float]:
    """Drawdown and recovery of a trade-price path (prices in any unit, times in ns).

    ``max_drawdown_pct``: largest peak-to-trough fall, % of the peak. The trough of that fall is
    "the low" (``trough_s`` seconds after ``open_ns``); ``time_to_recover_s`` runs from it to the
    first later trade within ``RECOVERY_BAND`` of the pre-drop peak (0 if the fall was smaller
    than the band, NaN if the market never got back).
    """
    nan = math.nan
    out = {"max_drawdown_pct": nan, "trough_s": nan, "time_to_recover_s": nan}
    p = np.asarray(prices, dtype=np.float64)
    t = np.asarray(times_ns, dtype=np.int64)
    if p.size == 0:
        return out
    peak = np.maximum.accumulate(p)
    dd = (peak - p) / peak
    j = int(np.argmax(dd))
    out["max_drawdown_pct"] = float(dd[j] * 100.0)
    out["trough_s"] = (int(t[j]) - int(open_ns)) / SECOND
    target = peak[j] * (1.0 - RECOVERY_BAND)
    later = np.nonzero(p[j:] >= target)[0]
    if later.size:
        out["time_to_recover_s"] = (int(t[j + int(later[0])]) - int(t[j])) / SECOND
    return out


def _pick(source: Any, *keys: str) -> Any:
    if not isinstance(source, dict):
        return None
    for key in keys:
        if source.get(key) is not None:
            return source[key]
    return None


def _float(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def _count(value: Any) -> int:
    """A count from an int, a list/dict of items, or a dict with a count-like key."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return int(value) if math.isfinite(value) else 0
    if isinstance(value, dict):
        inner = _pick(value, "count", "breaks", "total", "n")
        if inner is not None:
            return _count(inner)
        return len(value)
    if isinstance(value, list | tuple):
        return len(value)
    return 0


def _event_figures(summary: dict[str, Any], frames: dict[str, pd.DataFrame], open_ns: int) -> dict[str, Any]:
    """Desk / risk / halt / reconciliation figures from the summary (or the tables) when present."""
    desk = summary.get("desk") or {}
    risk = summary.get("risk") or {}
    out: dict[str, Any] = {
        "desk_pnl": _float(_pick(desk, "pnl_ccy")),
        "desk_max_drawdown": _float(_pick(desk, "max_drawdown_ccy")),
        "desk_max_position": _float(_pick(desk, "max_position", "max_abs_position")),
    }
    outcome = summary.get("desk_outcome") or {}  # desksim/analytics/desk_outcome.py
    out["desk_worst_position"] = _float(outcome.get("worst_position")) if outcome.get("has_desk") else math.nan
    out["desk_rejected_in_halts"] = (
        _float(outcome.get("orders_rejected_in_halts")) if outcome.get("has_desk") else math.nan
    )
    kill = _pick(risk, "kill_switch", "kill_switch_fired")
    kill_ns = _pick(risk, "kill_switch_ns", "kill_switch_time_ns")
    if isinstance(kill, dict):
        kill_ns = _pick(kill, "time_ns", "fired_ns", "trigger_ns") if kill_ns is None else kill_ns
        kill = _pick(kill, "fired", "triggered")
        kill = bool(kill) if kill is not None else kill_ns is not None
    events = frames.get("risk_events")
    if kill is None and events is not None and len(events) and "kind" in events:
        is_kill = events["kind"].astype(str).str.contains("kill", case=False)
        kill = bool(is_kill.any())
        if kill and "time_ns" in events:
            kill_ns = int(events.loc[is_kill, "time_ns"].iloc[0])
    out["kill_switch"] = bool(kill)
    out["kill_switch_s"] = (int(kill_ns) - open_ns) / SECOND if kill and kill_ns is not None else math.nan
    breaches = _pick(risk, "breaches", "risk_breaches", "n_events", "events")
    if breaches is None and events is not None:
        breaches = len(events)
    out["risk_breaches"] = _count(breaches)
    halts = summary.get("halts")
    table = frames.get("halts")
    if halts is None and table is not None and len(table) and "event" in table:
        halts = int((table["event"] == "halted").sum())
    out["halts"] = _count(halts)
    out["reconciliation_breaks"] = _count(summary.get("reconciliation"))
    return out


def _mid_drawdown_pct(quotes: pd.DataFrame | None, open_ns: int) -> float:
    """The worst peak-to-trough fall of the mid (both sides quoted) within the run, % of the peak."""
    if quotes is None or not len(quotes):
        return math.nan
    bid = pd.to_numeric(quotes["bid"], errors="coerce").to_numpy(dtype=np.float64)
    ask = pd.to_numeric(quotes["ask"], errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask > 0)
    t = quotes["time_ns"].to_numpy(dtype=np.int64)[ok]
    return market_path_metrics(t, (bid[ok] + ask[ok]) / 2.0, open_ns)["max_drawdown_pct"]


def run_metrics(result: Any, index: int, seed: int, open_ns: int, tick: float) -> dict[str, Any]:
    """One row of runs.parquet from a ``desksim.api.RunResult``."""
    from desksim.analytics.realism import checks

    s = result.summary
    trades = result.frames.get("trades")
    row: dict[str, Any] = {
        "run": int(index),
        "run_seed": str(int(seed)),
        "scenario": s.get("scenario", ""),
        "digest": s["digest"],
        "orders": int(s.get("orders", 0)),
        "trades": int(s.get("trades", 0)),
        "volume": int(s.get("volume", 0)),
        "messages": int(s.get("messages_delivered", 0)),
    }
    has = trades is not None and len(trades) > 0
    px = trades["price"].to_numpy(dtype=np.float64) * tick if has else np.empty(0)
    row["market_open"] = float(px[0]) if has else math.nan
    row["market_close"] = float(px[-1]) if has else math.nan
    row["market_low"] = float(px.min()) if has else math.nan
    row["market_high"] = float(px.max()) if has else math.nan
    row["market_return_pct"] = (px[-1] / px[0] - 1.0) * 100.0 if has else math.nan
    path = market_path_metrics(trades["time_ns"].to_numpy() if has else np.empty(0), px, open_ns)
    row["market_max_drawdown_pct"] = path["max_drawdown_pct"]
    row["market_trough_s"] = path["trough_s"]
    row["market_time_to_recover_s"] = path["time_to_recover_s"]
    row["market_mid_max_drawdown_pct"] = _mid_drawdown_pct(result.frames.get("quotes"), open_ns)
    row.update(_event_figures(s, result.frames, open_ns))
    stats = s.get("realism") or {}
    flags = checks(stats) if stats else dict.fromkeys(REALISM_CHECKS, False)
    for name in REALISM_CHECKS:
        row[f"realism_{name}"] = bool(flags.get(name, False))
    row["realism_passed"] = int(sum(bool(flags.get(n, False)) for n in REALISM_CHECKS))
    for name in REALISM_STATS:
        row[name] = _float(stats.get(name))
    row["wall_s"] = float(s.get("wall_seconds", math.nan))
    return row


# --------------------------------------------------------------------------- one batch (runs in a worker)


@dataclass(frozen=True)
class Plan:
    """Everything a worker needs to run any run of the experiment (picklable, small)."""

    data: dict[str, Any]  # the scenario YAML as loaded, without its monte_carlo section
    source: str
    seed: int
    runs: int
    batch_size: int
    distributions: dict[str, dict[str, Any]]
    duration_s: float | None

    def batch_indices(self, batch: int) -> range:
        return range(batch * self.batch_size, min((batch + 1) * self.batch_size, self.runs))

    @property
    def batches(self) -> int:
        return -(-self.runs // self.batch_size)

    def schema(self) -> pa.Schema:
        extra = [(f"param.{p}", _param_type(self.distributions[p])) for p in sorted(self.distributions)]
        return pa.schema([*SCHEMA, *extra])


def _scenario_for(plan: Plan, overrides: dict[str, Any]) -> Any:
    from desksim.runner import shorten
    from scenarios.schema import parse, set_dotted

    data = copy.deepcopy(plan.data)
    for dotted, value in overrides.items():
        try:
            set_dotted(data, dotted, value)
        except (IndexError, ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"{plan.source}: monte_carlo.{dotted}: cannot apply override ({exc})") from None
    return shorten(parse(data, plan.source), plan.duration_s)


def run_one(plan: Plan, index: int, runtime: str = "local", placement: Any = None) -> dict[str, Any]:
    """Run ``index`` of the plan and return its metrics row.

    ``runtime="local"`` runs it in this process; ``"ray"`` spreads its actors over Ray actor
    processes (:mod:`sim.runtime.ray`, same results), for single runs too large for one core.
    """
    seed = run_seed(plan.seed, index)
    overrides = sample_overrides(plan.distributions, seed)
    scenario = _scenario_for(plan, overrides)
    if runtime == "ray":
        from desksim.ray_run import run_ray

        result = run_ray(scenario, seed, placement=placement, source=plan.source)
    else:
        from desksim.runner import run_scenario

        result = run_scenario(scenario, seed, source=plan.source)
    row = run_metrics(result, index, seed, scenario.session.open_ns, scenario.tick_size)
    for path, value in overrides.items():
        row[f"param.{path}"] = _param_value(value, _param_type(plan.distributions[path]))
    return row


def run_batch(
    plan: Plan, batch: int, hook: Callable[[int, int], None] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run every run of ``batch``; ``hook(batch, index)`` is called before each run (fault injection)."""
    rows = []
    for index in plan.batch_indices(batch):
        if hook is not None:
            hook(batch, index)
        rows.append(run_one(plan, index))
    return rows, {"pid": os.getpid(), "node": _node_id()}


def _node_id() -> str:
    try:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except Exception:  # pragma: no cover - outside Ray
        pass
    return "local"


def _rows_table(plan: Plan, rows: list[dict[str, Any]]) -> pa.Table:
    schema = plan.schema()
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.table({n: pa.array(columns[n], type=schema.field(n).type) for n in schema.names}, schema=schema)


# --------------------------------------------------------------------------- the driver


@dataclass
class MCResult:
    """Per-run metrics (one row per run, sorted by run index) and the aggregate summary."""

    runs: pd.DataFrame
    summary: dict[str, Any]
    out: Path | None = None
    parts_written: list[int] = field(default_factory=list)


def _read_scenario(scenario: str | Path) -> tuple[dict[str, Any], str, str]:
    """The raw scenario mapping, its source text path and the sha256 of its text (validated)."""
    from scenarios.schema import ScenarioError, read_yaml, resolve

    path = resolve(scenario)
    data = read_yaml(path)  # within the size, depth and alias limits, else a one-line ScenarioError
    text = path.read_text(encoding="utf-8")
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario must be a YAML mapping, got {type(data).__name__}")
    return data, str(path), hashlib.sha256(text.encode()).hexdigest()


def _section_distributions(section: Any) -> dict[str, Any]:
    """Distributions from a scenario's ``monte_carlo`` section (``distributions:``/``parameters:``)."""
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ValueError("monte_carlo: expected a mapping")
    for key in ("distributions", "parameters"):
        if key in section:
            return section[key] or {}
    return {}


def default_batch_size(runs: int, workers: int) -> int:
    """About 24 batches per worker, at most 20 runs per batch.

    Small batches keep the workers busy to the end: the last batch to finish leaves the other
    workers idle for up to one batch's time, so its size bounds the tail of the wall time.
    A task costs Ray a few milliseconds, against seconds for one run.
    """
    return max(1, min(20, runs // (max(1, workers) * 24)))


def _atomic_write_table(table: pa.Table, path: Path) -> None:
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _atomic_write_json(data: Any, path: Path) -> None:
    from desksim.output import write_json

    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        write_json(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def part_path(out: Path, batch: int) -> Path:
    return out / PARTS / f"batch-{batch:05d}.parquet"


class BatchFailed(RuntimeError):
    """A batch's retries ran out (its message is one line naming the batch)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a Monte Carlo run; the message says how to resume."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _part_identity(manifest: dict[str, Any], plan: Plan, batch: int) -> dict[str, Any]:
    rng = plan.batch_indices(batch)
    return {
        "scenario_sha256": manifest.get("scenario_sha256"),
        "seed": plan.seed,
        "batch": batch,
        "runs": [rng.start, rng.stop],
    }


def _check_part(out: Path, plan: Plan, manifest: dict[str, Any], batch: int) -> tuple[pa.Table | None, str]:
    """The part's table if it is the one the manifest recorded for ``batch``, else (None, why)."""
    path = part_path(out, batch)
    entry = (manifest.get("parts") or {}).get(str(batch))
    if not path.exists():
        return None, "missing"
    if not isinstance(entry, dict):
        return None, "not recorded in the manifest"
    data = path.read_bytes()
    if _sha256(data) != entry.get("sha256"):
        return None, "checksum differs from the manifest"
    try:
        table = pq.read_table(pa.BufferReader(data))
    except Exception as exc:  # a damaged file, whatever pyarrow says about it
        return None, f"unreadable ({type(exc).__name__})"
    want = _part_identity(manifest, plan, batch)
    meta = (table.schema.metadata or {}).get(b"desksim.mc")
    if meta is None or json.loads(meta) != want or entry.get("runs") != want["runs"]:
        return None, "belongs to another batch, seed or scenario"
    runs = table.column("run").to_pylist() if "run" in table.column_names else None
    if runs is None or sorted(runs) != list(plan.batch_indices(batch)):
        return None, "holds other runs than its batch"
    return table, ""


def _prepare_out(out: Path, manifest: dict[str, Any], resume: bool) -> dict[str, Any]:
    """Create ``out`` or check it matches the manifest of the run being resumed."""
    path = out / MANIFEST
    if path.exists():
        if not resume:
            raise ValueError(
                f"{out}: already holds a Monte Carlo run; pass --resume to complete it or choose another --out"
            )
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: cannot read: {exc}") from None
        for key in ("scenario_sha256", "seed", "runs", "distributions", "duration_s", "batch_size"):
            if old.get(key) != manifest.get(key):
                raise ValueError(
                    f"{out}: cannot resume: {key} differs (folder has {old.get(key)!r}, asked {manifest.get(key)!r})"
                )
        for stale in (out / PARTS).glob(".*.tmp-*"):
            stale.unlink(missing_ok=True)
        return old
    if out.exists() and any(out.iterdir()):
        if resume:
            raise ValueError(
                f"{out}: no {MANIFEST} (not a Monte Carlo folder, or its manifest was lost): refusing to adopt its "
                "files; choose another --out"
            )
        raise ValueError(f"{out}: exists and is not empty; choose another --out")
    (out / PARTS).mkdir(parents=True, exist_ok=True)
    _atomic_write_json(manifest, path)
    return manifest


def _compact(out: Path, plan: Plan, manifest: dict[str, Any]) -> Path:
    """Concatenate the part files in batch (= run index) order into runs.parquet, streaming; each
    part is checked against the manifest again (a part changed meanwhile stops the run)."""
    target = out / "runs.parquet"
    tmp = out / f".runs.parquet.tmp-{uuid.uuid4().hex[:8]}"
    schema = plan.schema()
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            for batch in range(plan.batches):
                table, why = _check_part(out, plan, manifest, batch)
                if table is None:
                    raise ValueError(f"{part_path(out, batch)}: {why}; rerun with --resume to recompute it")
                writer.write_table(table.replace_schema_metadata(None).cast(schema).sort_by("run"))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def _dist_stats(values: pd.Series) -> dict[str, float | None]:
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "p05": None, "median": None, "p95": None, "max": None}
    return {
        "n": int(v.size),
        "mean": _clean(v.mean()),
        "std": _clean(v.std(ddof=1)) if v.size > 1 else None,
        "min": _clean(v.min()),
        "p05": _clean(np.quantile(v, 0.05)),
        "median": _clean(np.median(v)),
        "p95": _clean(np.quantile(v, 0.95)),
        "max": _clean(v.max()),
    }


def metrics_digest(runs: pd.DataFrame) -> str:
    """sha256 over every metric of every run (all columns but the timing ones), in run order:
    one JSON line per run (floats as Python writes them back exactly, NaN as NaN)."""
    cols = [c for c in runs.columns if c not in TIMING_COLUMNS]
    ordered = runs.sort_values("run", kind="stable")
    h = hashlib.sha256(json.dumps(cols).encode())
    values = [ordered[c].tolist() for c in cols]
    for row in zip(*values, strict=True):
        h.update(b"\n" + json.dumps(row, default=str).encode())
    return h.hexdigest()


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
            "frequency": _clean(flag.mean()) if n else None,
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
            "frequency": _clean(ttr.isna().mean()) if n else None,
        },
    }
    realism_rates = {name: _clean(runs[f"realism_{name}"].mean()) if n else None for name in REALISM_CHECKS}
    digests = metrics_digest(runs)
    params = {c[len("param.") :]: _dist_stats(runs[c]) for c in runs.columns if c.startswith("param.")}
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
        "pnl": _dist_stats(runs[metric]),
        **figures,
        "events": events,
        "market": {
            "return_pct": _dist_stats(runs["market_return_pct"]),
            "max_drawdown_pct": _dist_stats(runs["market_max_drawdown_pct"]),
            "mid_max_drawdown_pct": _dist_stats(runs["market_mid_max_drawdown_pct"]),
            "time_to_recover_s": _dist_stats(ttr),
            "low": _dist_stats(runs["market_low"]),
            "trades": _dist_stats(runs["trades"]),
        },
        "desk": {
            "pnl": _dist_stats(runs["desk_pnl"]),
            "max_drawdown": _dist_stats(runs["desk_max_drawdown"]),
            "max_position": _dist_stats(runs["desk_max_position"]),
            "worst_position": _dist_stats(runs["desk_worst_position"]),
            "rejected_in_halts": _dist_stats(runs["desk_rejected_in_halts"]),
        },
        "realism": {
            "pass_rates": realism_rates,
            "all_pass_rate": _clean((runs["realism_passed"] == len(REALISM_CHECKS)).mean()) if n else None,
        },
        "parameters": params,
    }


class _Progress:
    """A rich progress bar (runs done, rate, ETA) on stderr, or nothing."""

    def __init__(self, enabled: bool, total: int, done: int, label: str) -> None:
        self._bar = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("runs"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._t0 = time.perf_counter()
        self._done0 = done
        self._task = self._bar.add_task(label, total=total, completed=done, rate="")
        self._bar.start()

    def advance(self, n: int) -> None:
        if self._bar is None:
            return
        task = self._bar.tasks[0]
        done = task.completed + n
        elapsed = time.perf_counter() - self._t0
        rate = (done - self._done0) / elapsed if elapsed > 0 else 0.0
        self._bar.update(self._task, completed=done, rate=f"{rate:,.1f}/s")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def monte_carlo(
    scenario: str | Path,
    runs: int,
    workers: int | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
    batch_size: int | None = None,
    address: str | None = None,
    resume: bool = False,
    duration_s: float | None = None,
    progress: bool = True,
    distributions: dict[str, Any] | None = None,
    report: bool = True,
    hook: Callable[[int, int], None] | None = None,
    runtime: str = "local",
    placement: Any = None,
) -> MCResult:
    """Run ``runs`` seeded runs of ``scenario`` on Ray and aggregate them (see the module docstring).

    ``workers``: CPUs of the local Ray started here (default: all), or, with ``address`` or an
    already initialised Ray, the most batches run at once (default: the cluster's CPUs).
    ``distributions`` overrides the scenario's ``monte_carlo`` section. With ``out``, the folder
    gets ``mc.json`` (the plan), ``parts/``, ``runs.parquet``, ``summary.json`` and (``report``)
    the HTML report; ``resume`` completes such a folder. ``hook(batch, index)`` runs in the
    worker before each run (for fault-injection tests). ``runtime="ray"`` runs one run at a
    time with its actors spread over Ray actor processes (``placement`` as for ``desksim run
    --runtime ray``) instead of whole runs as Ray tasks: for a few very large runs.
    """
    import ray

    if runs < 1:
        raise ValueError("--runs must be >= 1")
    if workers is not None and workers < 1:
        raise ValueError("--workers must be >= 1")
    if batch_size is not None and batch_size < 1:
        raise ValueError("--batch-size must be >= 1")
    if duration_s is not None and duration_s <= 0:
        raise ValueError("duration must be > 0 seconds")
    if resume and out is None:
        raise ValueError("--resume needs --out (the folder to complete)")
    if seed is not None and seed < 0:
        raise ValueError("--seed must be >= 0")
    if runtime not in ("local", "ray"):
        raise ValueError(f"--runtime must be local or ray, not {runtime!r}")

    from scenarios.schema import parse

    data, source, sha = _read_scenario(scenario)
    section = data.pop("monte_carlo", None)
    dists = validate_distributions(distributions if distributions is not None else _section_distributions(section))
    base = parse(data, source)  # one-line ScenarioError naming the field
    root = base.seed if seed is None else int(seed)

    out_path = Path(out) if out is not None else None
    manifest_old: dict[str, Any] | None = None
    if out_path is not None and resume and (out_path / MANIFEST).exists():
        manifest_old = json.loads((out_path / MANIFEST).read_text(encoding="utf-8"))
    planned_workers = workers or os.cpu_count() or 1
    if batch_size is None:
        if manifest_old is not None and isinstance(manifest_old.get("batch_size"), int):
            batch_size = manifest_old["batch_size"]
        else:
            batch_size = default_batch_size(runs, planned_workers)
    plan = Plan(data, source, root, int(runs), int(batch_size), dists, duration_s)
    _scenario_for(plan, sample_overrides(dists, run_seed(root, 0)))  # bad parameter paths fail here, once

    todo = list(range(plan.batches))
    recomputed: list[int] = []
    manifest: dict[str, Any] = {}
    if out_path is not None:
        manifest = {
            "kind": "monte_carlo",
            "scenario": base.name,
            "source": source,
            "scenario_sha256": sha,
            "seed": root,
            "runs": plan.runs,
            "batch_size": plan.batch_size,
            "distributions": dists,
            "duration_s": duration_s,
        }
        manifest = _prepare_out(out_path, manifest, resume)
        parts: dict[str, Any] = manifest.setdefault("parts", {})
        trusted = []
        for b in todo:
            table, why = _check_part(out_path, plan, manifest, b)
            if table is not None:
                trusted.append(b)
                continue
            parts.pop(str(b), None)
            if why != "missing":
                r = plan.batch_indices(b)
                print(
                    f"desksim mc: {part_path(out_path, b)}: {why}; recomputing batch {b} (runs {r.start}-{r.stop - 1})",
                    file=sys.stderr,
                )
                recomputed.append(b)
                part_path(out_path, b).unlink(missing_ok=True)
        for stale in set(parts) - {str(b) for b in trusted}:
            parts.pop(stale, None)
        _atomic_write_json(manifest, out_path / MANIFEST)
        todo = [b for b in todo if b not in set(trusted)]
    done_runs = plan.runs - sum(len(plan.batch_indices(b)) for b in todo)

    started = False
    t0 = time.perf_counter()
    ray_ready = t0
    nodes: dict[str, int] = {}
    in_memory: dict[int, pa.Table] = {}
    written: list[int] = []
    bar = _Progress(False, 0, 0, "")
    try:
        if todo:
            if address is not None:
                if not ray.is_initialized():
                    from desksim.ray_run import shipped_packages

                    ray.init(address=address, log_to_driver=False, runtime_env={"py_modules": shipped_packages()})
                    started = True
            elif not ray.is_initialized():
                ray.init(address="local", num_cpus=planned_workers, include_dashboard=False, log_to_driver=False)
                started = True
            ray_ready = time.perf_counter()
            cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
            if started and address is None:  # our own Ray has exactly `workers` CPUs: queue ahead
                inflight_max = planned_workers * INFLIGHT_PER_WORKER
            else:  # a shared cluster: `workers` caps the batches running at once
                inflight_max = workers if workers else cpus * INFLIGHT_PER_WORKER
            bar = _Progress(progress, plan.runs, done_runs, f"{base.name} x{plan.runs}")

            last_manifest = [time.perf_counter()]

            def store(batch: int, rows: list[dict[str, Any]], node: str) -> None:
                nodes[node] = nodes.get(node, 0) + 1
                table = _rows_table(plan, rows)
                if out_path is not None:
                    ident = _part_identity(manifest, plan, batch)
                    table = table.replace_schema_metadata({"desksim.mc": json.dumps(ident)})
                    path = part_path(out_path, batch)
                    _atomic_write_table(table, path)
                    manifest["parts"][str(batch)] = {"sha256": _sha256(path.read_bytes()), "runs": ident["runs"]}
                    if time.perf_counter() - last_manifest[0] >= MANIFEST_EVERY_S:
                        _atomic_write_json(manifest, out_path / MANIFEST)
                        last_manifest[0] = time.perf_counter()
                else:
                    in_memory[batch] = table
                written.append(batch)
                bar.advance(len(rows))

            if runtime == "ray":  # one run at a time, its actors spread over Ray processes
                for batch in todo:
                    rows = [run_one(plan, i, "ray", placement) for i in plan.batch_indices(batch)]
                    store(batch, rows, "partitioned (ray runtime)")
            else:
                task = ray.remote(num_cpus=1, max_retries=BATCH_RETRIES, retry_exceptions=True)(run_batch)
                plan_ref = ray.put(plan)
                pending: dict[Any, int] = {}
                queue = list(todo)
                while queue or pending:
                    while queue and len(pending) < inflight_max:
                        batch = queue.pop(0)
                        pending[task.remote(plan_ref, batch, hook)] = batch
                    ready, _ = ray.wait(list(pending), num_returns=1)
                    for ref in ready:
                        batch = pending.pop(ref)
                        try:
                            rows, where = ray.get(ref)
                        except ray.exceptions.RayError as exc:
                            r = plan.batch_indices(batch)
                            cause = " ".join(str(getattr(exc, "cause", None) or exc).split())[:200]
                            kept = f"finished batches are kept in {out_path}; rerun with --resume" if out_path else ""
                            raise BatchFailed(
                                f"batch {batch} (runs {r.start}-{r.stop - 1}) failed after {BATCH_RETRIES} retries: "
                                f"{type(exc).__name__}: {cause}" + (f"; {kept}" if kept else "")
                            ) from None
                        store(batch, rows, where["node"])
    except KeyboardInterrupt:
        hint = ""
        if out_path is not None:
            hint = (
                f"; {len(written)} batches saved in {out_path}; resume with: desksim mc {plan.source} "
                f"--runs {plan.runs} --seed {plan.seed} --out {out_path} --resume"
            )
        raise Interrupted(f"interrupted{hint}") from None
    finally:
        bar.close()
        if out_path is not None:
            _atomic_write_json(manifest, out_path / MANIFEST)
        if started:
            ray.shutdown()
    wall = time.perf_counter() - t0

    if out_path is not None:
        runs_df = pd.read_parquet(_compact(out_path, plan, manifest))
    else:
        tables = [in_memory[b] for b in sorted(in_memory)]
        runs_df = pa.concat_tables(tables).sort_by("run").to_pandas()
    summary = summarize(runs_df, plan, base.name)
    summary["execution"] = {
        "workers": workers,
        "address": address,
        "runtime": runtime,
        "wall_seconds": round(wall, 3),
        "ray_start_seconds": round(ray_ready - t0, 3),
        "runs_per_second": round(len(runs_df) / wall, 2) if wall > 0 and written else None,
        "batches_run": len(written),
        "batches_resumed": plan.batches - len(written),
        "batches_recomputed": recomputed,
        "nodes": dict(sorted(nodes.items())),
        "sim_wall_seconds": _clean(pd.to_numeric(runs_df["wall_s"], errors="coerce").sum()),
    }
    if out_path is not None:
        _atomic_write_json(summary, out_path / "summary.json")
        if report:
            from desksim.report import write_report

            write_report(out_path)
    return MCResult(runs_df, summary, out_path, sorted(written))
