"""The driver: ``monte_carlo()`` cuts the runs into batches, keeps them in flight on Ray (retried
when a task raises or its worker dies), stores each finished batch, shows progress and writes the
aggregate."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from desksim.mc.plan import Plan, default_batch_size, read_scenario, rows_table, scenario_for, section_distributions
from desksim.mc.sampling import run_seed, sample_overrides
from desksim.mc.store import compact, open_store, read_manifest, write_manifest, write_part
from desksim.mc.summary import clean, summarize
from desksim.mc.worker import run_batch, run_one
from desksim.output import write_json
from scenarios.distributions import validate_distributions

#: retries of a batch whose task raised or whose worker died, before the experiment stops.
BATCH_RETRIES = 3
#: the manifest is rewritten at most this often while batches finish (and always at the end).
MANIFEST_EVERY_S = 1.0
#: batches kept in flight per worker (a queue so a worker never waits for the driver).
INFLIGHT_PER_WORKER = 2


@dataclass
class MCResult:
    """Per-run metrics (one row per run, sorted by run index) and the aggregate summary."""

    runs: pd.DataFrame
    summary: dict[str, Any]
    out: Path | None = None
    parts_written: list[int] = field(default_factory=list)


class BatchFailed(RuntimeError):
    """A batch's retries ran out (its message is one line naming the batch)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a Monte Carlo run; the message says how to resume."""


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
    """Run ``runs`` seeded runs of ``scenario`` on Ray and aggregate them (see :mod:`desksim.mc`).

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

    data, source, sha = read_scenario(scenario)
    section = data.pop("monte_carlo", None)
    # the schema validates the monte_carlo section (one-line ScenarioError naming the field); each run
    # parses the scenario without it
    base = parse(data if section is None else {**data, "monte_carlo": section}, source)
    dists = validate_distributions(
        distributions if distributions is not None else section_distributions(base.monte_carlo)
    )
    root = base.seed if seed is None else int(seed)

    out_path = Path(out) if out is not None else None
    manifest_old = read_manifest(out_path) if out_path is not None and resume else None
    planned_workers = workers or os.cpu_count() or 1
    if batch_size is None:
        if manifest_old is not None and isinstance(manifest_old.get("batch_size"), int):
            batch_size = manifest_old["batch_size"]
        else:
            batch_size = default_batch_size(runs, planned_workers)
    plan = Plan(data, source, root, int(runs), int(batch_size), dists, duration_s)
    scenario_for(plan, sample_overrides(dists, run_seed(root, 0)))  # bad parameter paths fail here, once

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
        manifest, todo, recomputed = open_store(out_path, plan, manifest, resume)
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
                table = rows_table(plan, rows)
                if out_path is not None:
                    write_part(out_path, plan, manifest, batch, table)
                    if time.perf_counter() - last_manifest[0] >= MANIFEST_EVERY_S:
                        write_manifest(out_path, manifest)
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
                            raise _batch_failed(plan, batch, exc, out_path) from None
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
            write_manifest(out_path, manifest)
        if started:
            ray.shutdown()
    wall = time.perf_counter() - t0

    if out_path is not None:
        runs_df = pd.read_parquet(compact(out_path, plan, manifest))
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
        "sim_wall_seconds": clean(pd.to_numeric(runs_df["wall_s"], errors="coerce").sum()),
    }
    if out_path is not None:
        write_json(out_path / "summary.json", summary)
        if report:
            from desksim.report import write_report

            write_report(out_path)
    return MCResult(runs_df, summary, out_path, sorted(written))


def _batch_failed(plan: Plan, batch: int, exc: BaseException, out: Path | None) -> BatchFailed:
    """The one-line error of a batch whose retries ran out."""
    r = plan.batch_indices(batch)
    cause = " ".join(str(getattr(exc, "cause", None) or exc).split())[:200]
    kept = f"finished batches are kept in {out}; rerun with --resume" if out else ""
    return BatchFailed(
        f"batch {batch} (runs {r.start}-{r.stop - 1}) failed after {BATCH_RETRIES} retries: "
        f"{type(exc).__name__}: {cause}" + (f"; {kept}" if kept else "")
    )
