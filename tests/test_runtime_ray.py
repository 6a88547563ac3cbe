"""The Ray runtime gives the local runtime's results exactly, refuses unsafe placements, fails loudly.

Runs real Ray (``ray.init(num_cpus=2)``, once per module). Each partitioned run starts a few
Ray actor processes, which costs a few seconds; the long matrix is marked ``slow``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd
import pytest

from actors.build import build
from scenarios.schema import Scenario, load
from sim import api
from sim.record import Recorder
from sim.runtime.placement import PlacementError, lookahead, plan
from sim.runtime.ray import _merge_tables, _reach, run_ray
from tests.helpers import computed

ray = pytest.importorskip("ray")

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
CORE = {"exchange": "core", "mm*": "core", "*": "pool/3"}  # a second placement: slow links only cross


@pytest.fixture(scope="module")
def ray_session():
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()


def shortened(name: str, seconds: float) -> Scenario:
    return api._shorten(load(name), seconds)


def assert_same_run(scenario: Scenario, seed: int | None, placement=None) -> dict:
    local = api.run_scenario(scenario, seed)
    dist = run_ray(scenario, seed, placement=placement)
    assert dist.summary["digest"] == local.summary["digest"]
    assert dist.summary["runtime"] == "ray"
    # the whole summary agrees (P&L, risk, reconciliation, realism, halts...), not just the digest
    assert computed(dist.summary) == computed(local.summary)
    assert set(dist.frames) == set(local.frames)
    for name in local.frames:
        pd.testing.assert_frame_equal(dist.frames[name], local.frames[name])
    assert dist.summary["windows"] >= 0
    return dist.summary


# -- placement and lookahead (no Ray) ---------------------------------------------------------


def test_default_placement_groups():
    scenario = load("baseline")
    assembly = build(scenario, Recorder(), 7)
    layout = plan(assembly.actors, None, pools=2)
    assert layout.groups == ("exchange", "mm-ladder", "mm-as", "pool-0", "pool-1")
    sizes = [len(layout.members(p)) for p in range(len(layout))]
    assert sizes[:3] == [1, 1, 1] and abs(sizes[3] - sizes[4]) <= 1
    core = plan(assembly.actors, "core", pools=3)
    assert core.groups == ("core", "pool-0", "pool-1", "pool-2")
    matrix = lookahead(layout, [a.location for a in assembly.actors], assembly.network)
    assert matrix[0][1] == 5_000  # exchange <-> colo
    assert matrix[0][0] is None


def test_pattern_placement_and_unmatched_actor():
    assembly = build(load("quick"), Recorder(), 1)
    layout = plan(assembly.actors, {"exchange": "venue", "mm": "venue", "noise-*": "crowd/2"})
    assert layout.groups == ("venue", "crowd-0", "crowd-1")
    assert layout.where[:4] == (0, 0, 1, 2)
    with pytest.raises(PlacementError, match="noise-0000"):
        plan(assembly.actors, {"exchange": "a", "mm": "b"})


def test_reach_includes_round_trips():
    inf = float("inf")
    reach = _reach([[None, 5, 100], [5, None, 100], [100, 100, None]])
    assert reach[0][0] == 10 and reach[0][1] == 5 and reach[2][2] == 200
    assert reach[0][2] == 100 and inf not in reach[0]


def test_zero_latency_cross_link_is_refused():
    scenario = load("quick", {"network.links": [{"from": "colo", "to": "exchange", "latency_us": 0}]})
    assembly = build(scenario, Recorder(), 1)
    layout = plan(assembly.actors, None)
    with pytest.raises(PlacementError, match=r"link (colo -> exchange|exchange -> colo) has zero latency"):
        lookahead(layout, [a.location for a in assembly.actors], assembly.network)
    # the same link inside one partition is fine
    together = plan(assembly.actors, "core")
    assert lookahead(together, [a.location for a in assembly.actors], assembly.network)[0][1] == 200_000


def test_zero_latency_refused_before_any_process_starts():
    scenario = load("quick", {"network.links": [{"from": "colo", "to": "exchange", "latency_us": 0}]})
    with pytest.raises(PlacementError, match="zero latency"):
        run_ray(scenario, 1)


def test_table_written_in_two_partitions_is_an_error():
    cols: tuple[str, ...] = ("a",)
    parts: list[dict[str, tuple[tuple[str, ...], list]]] = [
        {"t": (cols, [(1,)]), "u": (cols, [])},
        {"t": (cols, [(2,)]), "u": (cols, [(3,)])},
    ]
    with pytest.raises(RuntimeError, match="table 't' was written in several partitions"):
        _merge_tables(parts, ["p0", "p1"])
    merged = _merge_tables([{"t": (cols, [(1,)])}, {"t": (cols, [(1,)])}], ["p0", "p1"])
    assert merged.tables["t"].rows == [(1,)]  # identical rows (written while building) are kept once


# -- same results as the local runtime ----------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quick_same_digest_default_placement(ray_session, seed):
    assert_same_run(shortened("quick", 120), seed)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quick_same_digest_core_placement(ray_session, seed):
    summary = assert_same_run(shortened("quick", 120), seed, CORE)
    assert set(summary["ray"]["partitions"]) == {"core", "pool-0", "pool-1", "pool-2"}


@pytest.mark.slow
@pytest.mark.parametrize("placement", [None, CORE], ids=["default", "core"])
@pytest.mark.parametrize("seed", [7, 8, 9])
def test_baseline_same_digest(ray_session, seed, placement):
    assert_same_run(shortened("baseline", 90), seed, placement)


BUNDLED = sorted(p.stem for p in SCENARIOS.glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("placement", ["default", "core"])
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_scenario_same_digest(ray_session, name, seed, placement):
    seconds = 3 if name == "crowd" else 40
    assert_same_run(shortened(name, seconds), seed, placement)


def test_scenario_placement_section_places_the_actors(ray_session):
    scenario = shortened("quick", 60).model_copy(update={"placement": {"exchange": "market", "*": "rest/2"}})
    summary = assert_same_run(scenario, 4)
    assert set(summary["ray"]["partitions"]) == {"market", "rest-0", "rest-1"}


@pytest.mark.parametrize(
    "placement, message",
    [("everything", "placement"), ({}, "empty mapping"), ({"mm-*": ""}, "non-empty name")],
)
def test_scenario_placement_section_is_validated(placement, message):
    from scenarios.schema import ScenarioError, parse

    data = {"name": "x", "placement": placement}
    with pytest.raises(ScenarioError, match=message):
        parse(data, "x.yaml")


def test_mc_with_the_ray_runtime_gives_the_local_runs(ray_session, tmp_path):
    """``desksim mc --runtime ray``: one run at a time, partitioned; the same rows as whole-run tasks."""
    from sim.montecarlo import TIMING_COLUMNS, monte_carlo

    kwargs = {"runs": 2, "seed": 3, "duration_s": 30.0, "progress": False, "report": False}
    local = monte_carlo("quick", out=tmp_path / "local", **kwargs)
    dist = monte_carlo("quick", out=tmp_path / "ray", runtime="ray", placement="core", **kwargs)
    assert dist.summary["execution"]["runtime"] == "ray"
    pd.testing.assert_frame_equal(
        dist.runs.drop(columns=list(TIMING_COLUMNS)), local.runs.drop(columns=list(TIMING_COLUMNS))
    )


# -- failures -----------------------------------------------------------------------------------


def test_killed_partition_gives_clear_error(ray_session):
    killed_at: list[float] = []

    def kill_pool(window: int, handles: list) -> None:
        if window == 20:
            ray.kill(handles[-1], no_restart=True)
            killed_at.append(time.perf_counter())
            # ray.kill is asynchronous and windows over sockets take microseconds, so wait for the
            # death (a call queued behind the partition's serve loop fails once it is gone); then
            # it is noticed the first time pool-1 has work, in window 20 or a little later
            with pytest.raises(ray.exceptions.RayActorError):
                ray.get(handles[-1].node.remote(), timeout=30)

    with pytest.raises(RuntimeError, match=r"partition pool-1 died during window (\d+)") as info:
        run_ray(shortened("quick", 120), 1, on_window=kill_pool, window_timeout_s=60)
    window = int(re.search(r"during window (\d+)", str(info.value)).group(1))
    assert 20 <= window <= 40
    assert time.perf_counter() - killed_at[0] < 30  # an error, not a hang
