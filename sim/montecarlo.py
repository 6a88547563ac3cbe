"""Monte Carlo on Ray: many seeded runs of one scenario, batched, streamed to Parquet, resumable.

    from sim.montecarlo import monte_carlo
    mc = monte_carlo("flash_crash", runs=200, workers=2, seed=1, out="runs/mc")
    mc.runs.describe(); mc.summary["var"]["99"]

Seeds
    Run ``i`` of root seed ``S`` simulates with ``run_seed(S, i)`` (a 32-bit word of
    ``SeedSequence(S, spawn_key=(i,))``), so its result never depends on the worker count, the
    batching or the order in which batches finish.

Parameters
    ``distributions`` maps dotted scenario paths (the keys of ``scenarios.schema.load``
    overrides, e.g. ``agents.1.params.rate_per_hour``) to a distribution. Each run draws its
    values from its own seed with :func:`sample_overrides` (one named stream per path, so adding
    a parameter does not move the others) and runs the scenario with them applied.

Execution
    Runs are cut into batches of consecutive indices; one Ray task (``num_cpus=1``, retried up to
    3 times, including when its worker process dies) runs a batch in-process via ``sim.api`` and
    returns one metrics row per run. The driver keeps a bounded number of batches in flight and
    writes each finished batch as ``parts/batch-XXXXX.parquet`` (atomically), then compacts the
    parts into ``runs.parquet`` sorted by run index and writes ``summary.json``. ``resume=True``
    re-runs only batches whose part file is missing; finished parts are never rewritten.

Risk figures
    The outcome is the desk's P&L when the runs report one, otherwise the market's return over
    the run in %. Losses are the negated outcomes. Empirical VaR at level a over N outcomes is
    the ceil(N(1-a))-th largest loss; ES the mean of the losses at or beyond it. Confidence
    intervals are seeded percentile bootstraps.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
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

from sim.rng import name_key

#: VaR / ES confidence levels reported in ``summary.json`` (keys "95", "97.5", "99").
LEVELS = (0.95, 0.975, 0.99)
#: bootstrap resamples of the VaR / ES confidence intervals, and the interval's coverage.
BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_CONFIDENCE = 0.95
#: a market "recovered" when a trade prints within this fraction of the pre-drop peak.
RECOVERY_BAND = 0.01
#: batches kept in flight per worker (a queue so a worker never waits for the driver).
INFLIGHT_PER_WORKER = 2
MANIFEST = "mc.json"
PARTS = "parts"
DISTRIBUTIONS = ("uniform", "normal", "lognormal", "choice")
_SECOND = 1_000_000_000


# --------------------------------------------------------------------------- seeds and sampling


def run_seed(root_seed: int, index: int) -> int:
    """The simulation seed of run ``index`` under ``root_seed`` (pure; any machine, any batching)."""
    if root_seed < 0 or index < 0:
        raise ValueError("seed and run index must be >= 0")
    return int(np.random.SeedSequence(int(root_seed), spawn_key=(int(index),)).generate_state(1)[0])


def validate_distributions(distributions: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Check a distributions mapping; raise ``ValueError`` naming the path and the problem.

    Specs: ``{"dist": "uniform", "low", "high"}``, ``{"dist": "normal", "mean", "sd"}``,
    ``{"dist": "lognormal", "mu" | "median", "sigma"}`` (``mu``/``sigma`` of the underlying
    normal), ``{"dist": "choice", "values": [...], "weights": [...]?}``. Numeric ones accept
    ``min``/``max`` (clip) and ``integer: true`` (round to the nearest integer).
    """
    if not distributions:
        return {}
    if not isinstance(distributions, dict):
        raise ValueError(f"monte_carlo distributions must be a mapping, got {type(distributions).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for path, spec in distributions.items():
        where = f"monte_carlo.{path}"
        if not isinstance(path, str) or not path:
            raise ValueError(f"{where}: parameter path must be a non-empty dotted string")
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: expected a mapping with 'dist', got {type(spec).__name__}")
        dist = spec.get("dist")
        if dist not in DISTRIBUTIONS:
            raise ValueError(f"{where}.dist: expected one of {', '.join(DISTRIBUTIONS)}, got {dist!r}")
        allowed = {"dist", "min", "max", "integer"} | {
            "uniform": {"low", "high"},
            "normal": {"mean", "sd"},
            "lognormal": {"mu", "median", "sigma"},
            "choice": {"values", "weights"},
        }[dist]
        extra = sorted(set(spec) - allowed)
        if extra:
            raise ValueError(f"{where}.{extra[0]}: unknown field for a {dist} distribution")

        def num(key: str, spec: dict[str, Any] = spec, where: str = where) -> float:
            value = spec.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{where}.{key}: expected a finite number, got {value!r}")
            return float(value)

        if dist == "uniform":
            if num("low") > num("high"):
                raise ValueError(f"{where}: low must be <= high")
        elif dist == "normal":
            num("mean")
            if num("sd") < 0:
                raise ValueError(f"{where}.sd: must be >= 0")
        elif dist == "lognormal":
            if ("mu" in spec) == ("median" in spec):
                raise ValueError(f"{where}: give exactly one of mu, median")
            if "median" in spec and num("median") <= 0:
                raise ValueError(f"{where}.median: must be > 0")
            if "mu" in spec:
                num("mu")
            if num("sigma") < 0:
                raise ValueError(f"{where}.sigma: must be >= 0")
        else:
            values = spec.get("values")
            if not isinstance(values, list) or not values:
                raise ValueError(f"{where}.values: expected a non-empty list")
            weights = spec.get("weights")
            if weights is not None:
                if not isinstance(weights, list) or len(weights) != len(values):
                    raise ValueError(f"{where}.weights: expected a list as long as values")
                w = [num("weights", {"weights": x}, where) for x in weights]
                if min(w) < 0 or sum(w) <= 0:
                    raise ValueError(f"{where}.weights: must be >= 0 with a positive sum")
            if {"min", "max", "integer"} & set(spec):
                raise ValueError(f"{where}: min/max/integer apply to numeric distributions only")
        for key in ("min", "max"):
            if key in spec:
                num(key)
        if "integer" in spec and not isinstance(spec["integer"], bool):
            raise ValueError(f"{where}.integer: expected true or false")
        out[path] = dict(spec)
    return out


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


def _tail_count(n: int, level: float) -> int:
    """ceil(n (1 - level)), robust to binary rounding (200 * 0.01 is 2, not 3), at least 1."""
    return max(1, math.ceil(round(n * (1.0 - level), 9)))


def var_es(losses: Sequence[float] | np.ndarray, level: float) -> tuple[float, float]:
    """Empirical VaR and ES of ``losses`` (positive = money lost) at confidence ``level``.

    VaR is the ceil(N(1-level))-th largest loss; ES the mean of the losses at or beyond (>=) it.
    NaN outcomes are dropped; (nan, nan) when none remain.
    """
    arr = np.asarray(losses, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if not 0.0 < level < 1.0:
        raise ValueError("level must be in (0, 1)")
    if arr.size == 0:
        return math.nan, math.nan
    k = _tail_count(arr.size, level)
    desc = np.sort(arr)[::-1]
    var = float(desc[k - 1])
    return var, float(desc[desc >= var].mean())


def _bootstrap_var_es(
    losses: np.ndarray, levels: Iterable[float], rng: np.random.Generator, samples: int
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """VaR and ES of ``samples`` resamples with replacement, in chunks (memory ~ 64 x N)."""
    n = losses.size
    levels = tuple(levels)
    out = {lv: (np.empty(samples), np.empty(samples)) for lv in levels}
    chunk = max(1, min(samples, 4_000_000 // max(n, 1)))
    for start in range(0, samples, chunk):
        m = min(chunk, samples - start)
        res = np.sort(losses[rng.integers(0, n, size=(m, n))], axis=1)[:, ::-1]
        for lv in levels:
            k = _tail_count(n, lv)
            var = res[:, k - 1]
            tail = res >= var[:, None]
            out[lv][0][start : start + m] = var
            out[lv][1][start : start + m] = (res * tail).sum(axis=1) / tail.sum(axis=1)
    return out


def risk_figures(
    outcomes: Sequence[float] | np.ndarray,
    seed: int,
    levels: Iterable[float] = LEVELS,
    samples: int = BOOTSTRAP_SAMPLES,
    confidence: float = BOOTSTRAP_CONFIDENCE,
) -> dict[str, Any]:
    """VaR / ES of outcomes (P&L, positive = gain) with seeded percentile-bootstrap intervals."""
    pnl = np.asarray(outcomes, dtype=np.float64)
    pnl = pnl[np.isfinite(pnl)]
    losses = -pnl
    levels = tuple(levels)
    res: dict[str, Any] = {"var": {}, "es": {}, "var_ci": {}, "es_ci": {}}
    boot = None
    if losses.size >= 2 and samples > 0:
        rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=name_key("mc:bootstrap")))
        boot = _bootstrap_var_es(losses, levels, rng, samples)
    lo_q, hi_q = (1 - confidence) / 2, 1 - (1 - confidence) / 2
    for lv in levels:
        key = _level_key(lv)
        var, es = var_es(losses, lv)
        res["var"][key], res["es"][key] = _clean(var), _clean(es)
        if boot is None:
            res["var_ci"][key] = res["es_ci"][key] = [None, None]
        else:
            for name, draws in zip(("var_ci", "es_ci"), boot[lv], strict=True):
                res[name][key] = [_clean(np.quantile(draws, lo_q)), _clean(np.quantile(draws, hi_q))]
    res["bootstrap"] = {"samples": samples if boot is not None else 0, "confidence": confidence}
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
        ("run_seed", pa.int64()),
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
        ("market_trough_s", pa.float64()),
        ("market_time_to_recover_s", pa.float64()),
        ("desk_pnl", pa.float64()),
        ("desk_max_drawdown", pa.float64()),
        ("desk_max_position", pa.float64()),
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
    out["trough_s"] = (int(t[j]) - int(open_ns)) / _SECOND
    target = peak[j] * (1.0 - RECOVERY_BAND)
    later = np.nonzero(p[j:] >= target)[0]
    if later.size:
        out["time_to_recover_s"] = (int(t[j + int(later[0])]) - int(t[j])) / _SECOND
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
        "desk_pnl": _float(_pick(desk, "pnl", "total_pnl", "pnl_total", "net_pnl")),
        "desk_max_drawdown": _float(_pick(desk, "max_drawdown", "max_drawdown_pnl")),
        "desk_max_position": _float(_pick(desk, "max_position", "max_abs_position")),
    }
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
    out["kill_switch_s"] = (int(kill_ns) - open_ns) / _SECOND if kill and kill_ns is not None else math.nan
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


def run_metrics(result: Any, index: int, seed: int, open_ns: int, tick: float) -> dict[str, Any]:
    """One row of runs.parquet from a ``sim.api.RunResult``."""
    from sim.analytics.realism import checks

    s = result.summary
    trades = result.frames.get("trades")
    row: dict[str, Any] = {
        "run": int(index),
        "run_seed": int(seed),
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
    from scenarios.schema import _set_dotted, parse
    from sim.api import _shorten

    data = copy.deepcopy(plan.data)
    for dotted, value in overrides.items():
        try:
            _set_dotted(data, dotted, value)
        except (IndexError, ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"{plan.source}: monte_carlo.{dotted}: cannot apply override ({exc})") from None
    return _shorten(parse(data, plan.source), plan.duration_s)


def run_one(plan: Plan, index: int, runtime: str = "local", placement: Any = None) -> dict[str, Any]:
    """Run ``index`` of the plan and return its metrics row.

    ``runtime="local"`` runs it in this process; ``"ray"`` spreads its actors over Ray actor
    processes (:mod:`sim.runtime.ray`, same results), for single runs too large for one core.
    """
    seed = run_seed(plan.seed, index)
    overrides = sample_overrides(plan.distributions, seed)
    scenario = _scenario_for(plan, overrides)
    if runtime == "ray":
        from sim.runtime.ray import run_ray

        result = run_ray(scenario, seed, placement=placement, source=plan.source)
    else:
        from sim.api import run_scenario

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
    import yaml

    from scenarios.schema import ScenarioError, load, resolve

    path = resolve(scenario)
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        load(path)  # raises the schema module's one-line YAML error
        raise
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
    from sim.output import write_json

    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        write_json(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def part_path(out: Path, batch: int) -> Path:
    return out / PARTS / f"batch-{batch:05d}.parquet"


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
    if out.exists() and any(out.iterdir()) and not resume:
        raise ValueError(f"{out}: exists and is not empty; choose another --out")
    (out / PARTS).mkdir(parents=True, exist_ok=True)
    _atomic_write_json(manifest, path)
    return manifest


def _compact(out: Path, plan: Plan) -> Path:
    """Concatenate the part files in batch (= run index) order into runs.parquet, streaming."""
    target = out / "runs.parquet"
    tmp = out / f".runs.parquet.tmp-{uuid.uuid4().hex[:8]}"
    schema = plan.schema()
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            for batch in range(plan.batches):
                table = pq.read_table(part_path(out, batch), schema=schema)
                writer.write_table(table.sort_by("run"))
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


def summarize(runs: pd.DataFrame, plan: Plan, scenario_name: str) -> dict[str, Any]:
    """The deterministic part of summary.json (no timing): counts, VaR/ES, events, realism."""
    n = len(runs)
    desk = pd.to_numeric(runs["desk_pnl"], errors="coerce")
    metric = "desk_pnl" if desk.notna().any() else "market_return_pct"
    outcomes = pd.to_numeric(runs[metric], errors="coerce").to_numpy(dtype=np.float64)
    figures = risk_figures(outcomes, plan.seed)

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
    digests = hashlib.sha256("\n".join(runs.sort_values("run")["digest"]).encode()).hexdigest()
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
        "pnl": _dist_stats(runs[metric]),
        **figures,
        "events": events,
        "market": {
            "return_pct": _dist_stats(runs["market_return_pct"]),
            "max_drawdown_pct": _dist_stats(runs["market_max_drawdown_pct"]),
            "time_to_recover_s": _dist_stats(ttr),
            "low": _dist_stats(runs["market_low"]),
            "trades": _dist_stats(runs["trades"]),
        },
        "desk": {
            "pnl": _dist_stats(runs["desk_pnl"]),
            "max_drawdown": _dist_stats(runs["desk_max_drawdown"]),
            "max_position": _dist_stats(runs["desk_max_position"]),
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
        _prepare_out(out_path, manifest, resume)
        todo = [b for b in todo if not part_path(out_path, b).exists()]
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
                    ray.init(address=address, log_to_driver=False)
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

            def store(batch: int, rows: list[dict[str, Any]], node: str) -> None:
                nodes[node] = nodes.get(node, 0) + 1
                table = _rows_table(plan, rows)
                if out_path is not None:
                    _atomic_write_table(table, part_path(out_path, batch))
                else:
                    in_memory[batch] = table
                written.append(batch)
                bar.advance(len(rows))

            if runtime == "ray":  # one run at a time, its actors spread over Ray processes
                for batch in todo:
                    rows = [run_one(plan, i, "ray", placement) for i in plan.batch_indices(batch)]
                    store(batch, rows, "partitioned (ray runtime)")
            else:
                task = ray.remote(num_cpus=1, max_retries=3, retry_exceptions=True)(run_batch)
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
                        rows, where = ray.get(ref)
                        store(batch, rows, where["node"])
    finally:
        bar.close()
        if started:
            ray.shutdown()
    wall = time.perf_counter() - t0

    if out_path is not None:
        runs_df = pd.read_parquet(_compact(out_path, plan))
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
        "nodes": dict(sorted(nodes.items())),
        "sim_wall_seconds": _clean(pd.to_numeric(runs_df["wall_s"], errors="coerce").sum()),
    }
    if out_path is not None:
        _atomic_write_json(summary, out_path / "summary.json")
        if report:
            from sim.report import write_report

            write_report(out_path)
    return MCResult(runs_df, summary, out_path, sorted(written))
