"""The Python surface: run a scenario without a subprocess and without files unless asked.

from desksim import api
res = api.run("baseline", seed=7)
res.summary["digest"]; res.trades; res.quotes
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from desksim.extras import actor_extras
from desksim.output import write_run
from desksim.runner import (
    VERSION,
    RunResult,
    reconciliation,
    run_scenario,
    shorten,
    summarise,
)
from scenarios.schema import load

__all__ = [
    "VERSION",
    "RunResult",
    "actor_extras",
    "monte_carlo",
    "reconciliation",
    "run",
    "run_scenario",
    "shorten",
    "summarise",
]


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
    replace: bool = True,
) -> RunResult:
    """Load ``scenario`` (a path or a bundled name), run it, and write ``out`` if given
    (``replace=False``: ``FileExistsError`` rather than replacing an existing ``out``).

    ``runtime="ray"`` places the actors in Ray actor processes (``placement``: None for the
    default split, "core", or a dict of name globs to groups; ``address`` joins a cluster) and
    gives the same digest, tables and summary as the local runtime."""
    loaded = shorten(load(scenario, overrides), duration_s)
    if runtime == "local":
        result = run_scenario(loaded, seed, source=str(scenario))
    elif runtime == "ray":
        from desksim.ray_run import run_ray

        result = run_ray(loaded, seed, placement=placement, address=address, source=str(scenario))
    else:
        raise ValueError(f"unknown runtime {runtime!r} (local or ray)")
    if out is not None:
        write_run(Path(out), result.summary, result.frames, replace=replace)
    return result


def monte_carlo(
    scenario: str | Path,
    runs: int = 100,
    workers: int | None = None,
    seed: int | None = None,
    **options: Any,
) -> Any:
    """Monte Carlo on Ray: ``runs`` seeded runs of ``scenario``; returns ``MCResult(runs, summary)``.

    ``mc = api.monte_carlo("flash_crash_scripted", runs=200, workers=2, seed=1)``; ``mc.runs`` has one row
    of metrics per run, ``mc.summary["var"]["99"]`` the 99% VaR. Options (``out``, ``batch_size``,
    ``address``, ``resume``, ``duration_s``, ``progress``, ``distributions``) are those of
    :func:`desksim.montecarlo.monte_carlo`; nothing is written unless ``out`` is given.
    """
    from desksim.montecarlo import monte_carlo as _monte_carlo

    options.setdefault("progress", False)
    return _monte_carlo(scenario, runs=runs, workers=workers, seed=seed, **options)
