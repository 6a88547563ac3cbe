"""A scenario run on the Ray runtime (:func:`sim.runtime.ray.run_partitioned`), same summary as local."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from sim.record import Recorder
from sim.runtime.placement import PlacementSpec
from sim.runtime.ray import AssemblyLike, run_partitioned


def shipped_packages() -> list[ModuleType]:
    """Every package a run imports, shipped to the nodes of a Ray cluster (runs and Monte Carlo)."""
    import actors
    import desksim
    import fix
    import scenarios
    import sim

    return [sim, actors, fix, scenarios, desksim]


@dataclass(frozen=True)
class ScenarioFactory:
    """Picklable ``(recorder, seed) -> Assembly`` of a validated scenario."""

    scenario: Any

    def __call__(self, recorder: Recorder, seed: int) -> AssemblyLike:
        from desksim.assembly import build

        return build(self.scenario, recorder, seed)  # type: ignore[return-value]


def run_ray(
    scenario: Any,
    seed: int | None = None,
    *,
    placement: PlacementSpec = None,
    address: str | None = None,
    pools: int = 2,
    source: str = "",
    num_cpus: int | None = None,
    window_timeout_s: float = 600.0,
    on_window: Callable[[int, list[Any]], None] | None = None,
) -> Any:
    """``desksim.api.run_scenario`` on the Ray runtime: same summary keys, ``"runtime": "ray"``.

    ``scenario`` is a validated ``scenarios.schema.Scenario``; ``placement`` defaults to its
    ``placement`` section (and that to the ``default`` preset). Extra summary keys: ``windows``,
    ``messages_per_window`` and ``ray`` (placement, lookahead, transport, set-up time, calls).
    """
    from desksim.extras import actor_extras
    from desksim.runner import summarise

    seed = scenario.seed if seed is None else int(seed)
    if placement is None:
        section = getattr(scenario, "placement", None)  # scenarios.schema.PlacementModel, or None
        if section is not None and hasattr(section, "spec"):
            placement, pools = section.spec(), section.pools
        else:
            placement = section
    stats, recorder = run_partitioned(
        ScenarioFactory(scenario),
        seed,
        placement=placement,
        pools=pools,
        address=address,
        num_cpus=num_cpus,
        window_timeout_s=window_timeout_s,
        on_window=on_window,
        extract=actor_extras,
        py_modules=shipped_packages() if address is not None else (),
    )
    more = {
        "windows": stats.windows,
        "messages_per_window": round(stats.messages_per_window, 2),
        "ray": stats.as_dict(),
    }
    return summarise(
        scenario,
        seed,
        source,
        recorder,
        stats,
        runtime="ray",
        actors=sum(stats.partition_sizes),
        extras=stats.extras,
        more=more,
    )
