"""Monte Carlo on Ray: the names of :mod:`desksim.mc`, kept importable from here.

The code lives in the package ``desksim.mc`` (sampling, metrics, plan, worker, store, summary,
driver); see its docstring. ``from desksim.montecarlo import monte_carlo`` keeps working, and so
do the helpers tests and benchmarks import from here.
"""

from __future__ import annotations

from desksim import mc
from desksim.mc import *  # noqa: F403
from desksim.mc.driver import BATCH_RETRIES, INFLIGHT_PER_WORKER, MANIFEST_EVERY_S
from desksim.mc.metrics import REALISM_CHECKS, REALISM_STATS, RECOVERY_BAND
from desksim.mc.metrics import mid_drawdown_pct as _mid_drawdown_pct
from desksim.mc.plan import read_scenario as _read_scenario
from desksim.mc.plan import rows_table as _rows_table
from desksim.mc.plan import scenario_for
from desksim.mc.store import MANIFEST, PARTS, part_path
from desksim.mc.summary import BOOTSTRAP_CONFIDENCE, BOOTSTRAP_SAMPLES, LEVELS, min_runs
from desksim.mc.worker import run_batch, run_one
from scenarios.distributions import validate_distributions

__all__ = [
    *mc.__all__,
    "BATCH_RETRIES",
    "BOOTSTRAP_CONFIDENCE",
    "BOOTSTRAP_SAMPLES",
    "INFLIGHT_PER_WORKER",
    "LEVELS",
    "MANIFEST",
    "MANIFEST_EVERY_S",
    "PARTS",
    "REALISM_CHECKS",
    "REALISM_STATS",
    "RECOVERY_BAND",
    "_mid_drawdown_pct",
    "_read_scenario",
    "_rows_table",
    "min_runs",
    "part_path",
    "run_batch",
    "run_one",
    "scenario_for",
    "validate_distributions",
]
