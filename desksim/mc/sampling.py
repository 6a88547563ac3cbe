"""Seeds and parameter sampling: run ``i`` of a root seed, and the parameter values it draws.

Both are pure functions of their arguments: a run's seed and values never depend on the worker
count, the batching or the order in which batches finish.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import numpy as np
import pyarrow as pa

from scenarios.distributions import validate_distributions
from sim.rng import name_key


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


def param_type(spec: dict[str, Any]) -> pa.DataType:
    """The Parquet type of a sampled parameter's ``param.<path>`` column."""
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


def param_value(value: Any, kind: pa.DataType) -> Any:
    """A sampled value as its column stores it (non-scalar choices as sorted JSON)."""
    if kind == pa.string() and not isinstance(value, str):
        return json.dumps(value, sort_keys=True)
    if kind == pa.float64():
        return float(value)
    return value
