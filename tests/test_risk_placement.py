"""Issue 17 item 3: the risk officer and the gateway share no object, so the officer can live in
any process. On real Ray (``ray.init(num_cpus=2)``) the officer runs in a partition of its own,
away from the gateway, on the kill-switch drill and gives the local run's digest and summary."""

from __future__ import annotations

import pytest

from desksim.assembly import build
from scenarios.schema import load
from sim.record import Recorder
from sim.runtime.placement import plan
from tests.test_runtime_ray import assert_same_run, ray_session  # noqa: F401  (the module's Ray fixture)

pytest.importorskip("ray")

APART = {"risk": "officer", "exchange": "hub", "gateway": "hub", "director": "hub", "*": "rest"}


def test_officer_and_gateway_may_be_placed_apart() -> None:
    """No placement error: nothing forces the officer into the gateway's process any more."""
    assembly = build(load("kill_switch_drill"), Recorder(), 5)
    layout = plan(assembly.actors, APART)
    names = [a.name for a in assembly.actors]
    where = dict(zip(names, layout.where, strict=True))
    assert where["risk"] != where["gateway"]
    default = plan(assembly.actors, None)  # by role: the officer is "solo", in a process of its own
    assert layout.groups[where["risk"]] == "officer" and default.groups[default.where[names.index("risk")]] == "risk"


def test_kill_switch_drill_officer_in_another_process_same_digest(ray_session) -> None:  # noqa: F811
    dist = assert_same_run(load("kill_switch_drill"), None, placement=APART)
    risk = dist.summary["risk"]
    assert risk["kills"] and risk["kills"][0]["canceled"] >= 1  # the gateway's answer crossed processes
    assert dist.summary["reconciliation"]["breaks"] == []
