"""Monte Carlo on Ray: many seeded runs of one scenario, batched, streamed to Parquet, resumable.

    from desksim.mc import monte_carlo
    mc = monte_carlo("flash_crash_scripted", runs=200, workers=2, seed=1, out="runs/mc")
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

Modules (each imports only those below it; import-linter checks the order)
    driver    ``monte_carlo()``: Ray batches, retries, progress, the aggregate written
    store     the folder: manifest, checksummed parts, resume, compaction (atomic writes)
    summary   ``summary.json``: distributions, VaR / ES, events, realism
    worker    one run / one batch of runs, as a Ray task runs it
    plan      the experiment's plan, its tables' schema, a run's scenario
    metrics   the columns of runs.parquet and the row of one run; the Monte Carlo digest
    sampling  run seeds and sampled parameter values
"""

from __future__ import annotations

from desksim.mc.driver import BatchFailed, Interrupted, MCResult, monte_carlo
from desksim.mc.metrics import SCHEMA, TIMING_COLUMNS, market_path_metrics, metrics_digest, run_metrics
from desksim.mc.plan import Plan, default_batch_size
from desksim.mc.sampling import run_seed, sample_overrides
from desksim.mc.summary import risk_figures, summarize, var_es

__all__ = [
    "SCHEMA",
    "TIMING_COLUMNS",
    "BatchFailed",
    "Interrupted",
    "MCResult",
    "Plan",
    "default_batch_size",
    "market_path_metrics",
    "metrics_digest",
    "monte_carlo",
    "risk_figures",
    "run_metrics",
    "run_seed",
    "sample_overrides",
    "summarize",
    "var_es",
]
