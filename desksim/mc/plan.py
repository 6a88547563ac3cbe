"""The plan of an experiment: the scenario, the root seed, the batching and the distributions.

A :class:`Plan` is everything a worker needs to run any run of the experiment (picklable, small);
it also names the columns of the experiment's tables and builds a run's scenario.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from desksim.mc.metrics import SCHEMA
from desksim.mc.sampling import param_type


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
        extra = [(f"param.{p}", param_type(self.distributions[p])) for p in sorted(self.distributions)]
        return pa.schema([*SCHEMA, *extra])


def rows_table(plan: Plan, rows: list[dict[str, Any]]) -> pa.Table:
    """Metrics rows as a table of the plan's schema (a missing metric is null)."""
    schema = plan.schema()
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.table({n: pa.array(columns[n], type=schema.field(n).type) for n in schema.names}, schema=schema)


def scenario_for(plan: Plan, overrides: dict[str, Any]) -> Any:
    """The validated scenario of one run: the plan's scenario with ``overrides`` applied."""
    from desksim.runner import shorten
    from scenarios.schema import parse, set_dotted

    data = copy.deepcopy(plan.data)
    for dotted, value in overrides.items():
        try:
            set_dotted(data, dotted, value)
        except (IndexError, ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"{plan.source}: monte_carlo.{dotted}: cannot apply override ({exc})") from None
    return shorten(parse(data, plan.source), plan.duration_s)


def read_scenario(scenario: str | Path) -> tuple[dict[str, Any], str, str]:
    """The raw scenario mapping, its source text path and the sha256 of its text (validated)."""
    from scenarios.schema import ScenarioError, read_yaml, resolve

    path = resolve(scenario)
    data = read_yaml(path)  # within the size, depth and alias limits, else a one-line ScenarioError
    text = path.read_text(encoding="utf-8")
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario must be a YAML mapping, got {type(data).__name__}")
    return data, str(path), hashlib.sha256(text.encode()).hexdigest()


def section_distributions(section: Any) -> dict[str, dict[str, Any]]:
    """The ``distributions:`` of a scenario's typed ``monte_carlo`` section
    (``scenarios.schema.MonteCarloModel``, or None), as the specifications were given."""
    return section.specs() if section is not None else {}


def default_batch_size(runs: int, workers: int) -> int:
    """About 24 batches per worker, at most 20 runs per batch.

    Small batches keep the workers busy to the end: the last batch to finish leaves the other
    workers idle for up to one batch's time, so its size bounds the tail of the wall time.
    A task costs Ray a few milliseconds, against seconds for one run.
    """
    return max(1, min(20, runs // (max(1, workers) * 24)))
