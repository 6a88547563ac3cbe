"""The desk's account reconciles (OMS vs risk officer vs exchange) and the officer is independent."""

import pytest

from actors.build import build
from actors.messages import DropCopy, KillSwitch, QuoteUpdated, TradePrinted
from scenarios import bundled
from scenarios.schema import load
from sim import api
from sim.actor import Wakeup
from sim.record import Recorder
from sim.runtime.local import run_local

DESK_SCENARIOS = sorted(name for name in bundled() if load(name).desk is not None)


def test_desk_scenarios_exist():
    assert {"fat_finger", "fix_disconnect"} <= set(DESK_SCENARIOS)


def test_risk_officer_learns_only_from_drop_copies_and_market_data():
    """Everything the officer receives, by type: no OMS state ever reaches it."""
    scenario = load("fix_disconnect")
    scenario = scenario.model_copy(update={"session": scenario.session.model_copy(update={"close": "10:30"})})
    assembly = build(scenario, Recorder(), 3)
    officer = assembly.risk
    seen: set[type] = set()
    original = officer.attach

    def attach(kernel, actor_id, rng):
        original(kernel, actor_id, rng)
        for cls, handler in list(officer.dispatch.items()):

            def spy(msg, src, handler=handler):
                seen.add(type(msg))
                handler(msg, src)

            officer.dispatch[cls] = spy

    officer.attach = attach
    run_local(assembly.actors, assembly.network, 3, assembly.start_ns, assembly.end_ns)
    assert DropCopy in seen
    assert seen <= {DropCopy, TradePrinted, QuoteUpdated, Wakeup, KillSwitch}
    snap = assembly.oms.snapshot()
    assert officer.position("CLIENT1", "XYZ") == snap["positions"]["XYZ"]["position"]
    assert officer.snapshot()["cash"]["CLIENT1"] == snap["cash"]


def test_baseline_with_a_desk_trades_through_fix():
    res = api.run("baseline", seed=7, duration_s=1800, overrides={"desk": {"name": "desk"}})
    assert res.summary["desk"]["fills"] > 0
    fix = res.frames["fix_messages"]
    assert {"D", "8"} <= set(fix["msg_type"])
    assert res.summary["reconciliation"]["breaks"] == []
    assert res.summary["oms"]["positions"]["XYZ"]["position"] == res.summary["reconciliation"]["position"]


@pytest.mark.slow
@pytest.mark.parametrize("name", DESK_SCENARIOS)
def test_reconciliation_holds_for_20_seeds(name):
    for seed in range(1, 21):
        res = api.run(name, seed=seed, duration_s=3600)
        assert res.summary["reconciliation"]["breaks"] == [], (name, seed)
