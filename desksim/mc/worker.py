"""What a Ray worker runs: one run of a plan, or a whole batch of consecutive runs."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from desksim.mc.metrics import run_metrics
from desksim.mc.plan import Plan, scenario_for
from desksim.mc.sampling import param_type, param_value, run_seed, sample_overrides


def run_one(plan: Plan, index: int, runtime: str = "local", placement: Any = None) -> dict[str, Any]:
    """Run ``index`` of the plan and return its metrics row.

    ``runtime="local"`` runs it in this process; ``"ray"`` spreads its actors over Ray actor
    processes (:mod:`sim.runtime.ray`, same results), for single runs too large for one core.
    """
    seed = run_seed(plan.seed, index)
    overrides = sample_overrides(plan.distributions, seed)
    scenario = scenario_for(plan, overrides)
    if runtime == "ray":
        from desksim.ray_run import run_ray

        result = run_ray(scenario, seed, placement=placement, source=plan.source)
    else:
        from desksim.runner import run_scenario

        result = run_scenario(scenario, seed, source=plan.source)
    row = run_metrics(result, index, seed, scenario.session.open_ns, scenario.tick_size)
    for path, value in overrides.items():
        row[f"param.{path}"] = param_value(value, param_type(plan.distributions[path]))
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
    return rows, {"pid": os.getpid(), "node": node_id()}


def node_id() -> str:
    """The Ray node this process runs on, or "local" outside Ray."""
    try:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except Exception:  # pragma: no cover - outside Ray
        pass
    return "local"
