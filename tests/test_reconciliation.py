"""The desk's account reconciles (OMS vs risk officer vs exchange) and the officer is independent."""

import json

import pandas as pd
import pytest

from actors.messages import DropCopy, FixFrame, KillSwitch, OrderFilled, QuoteUpdated, TradePrinted
from desksim import api
from desksim.assembly import build
from scenarios import bundled
from scenarios.schema import load
from sim.actor import Wakeup
from sim.record import Recorder
from sim.runtime.local import run_local
from tests.faults import LinkFault, inject
from tests.helpers import run_summaries

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


# the market stress scenarios' desks reconcile on several seeds in tests/test_stress_desks.py (20 one-hour
# runs of each of them would cost CI ~20 minutes)
STRESS_DESKS = {
    "flash_crash_scripted",
    "flash_crash_scripted_current",
    "flash_crash",
    "flash_crash_current",
    "mm_withdrawal",
    "latency_spike",
    "vol_spike",
    "halt_reopen",
}


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in DESK_SCENARIOS if n not in STRESS_DESKS])
def test_reconciliation_holds_for_20_seeds(name):
    # the kill-switch scenarios (a few minutes each) also get seeds in tests/test_kill_switch.py
    seeds = range(1, 6) if name in ("runaway_algo", "kill_switch_drill") else range(1, 21)
    # fat_finger and fix_disconnect strike at 10:15 (2,700 s in): 50 minutes take every run 5
    # minutes past its event (an hour until 2026-12-07: 20 s more of a two-worker CI run)
    for seed, summary in run_summaries(name, seeds, duration_s=3000).items():
        assert summary["reconciliation"]["breaks"] == [], (name, seed)


# ---------------------------------------------------------------------------------------------
# injected faults: reconciliation catches a break on every leg, `desksim run` exits 3 naming it
# ---------------------------------------------------------------------------------------------

FAULT_RUN = ["run", "kill_switch_drill", "--duration", "90", "--no-report"]  # 9 desk fills, ~1 s
OMS_LEG, OFFICER_LEG = "OMS vs exchange", "officer vs exchange"


def _is_fill_report(msg: DropCopy) -> bool:
    return "\x01150=F\x01" in msg.exec_report_raw


def _run_cli_with(monkeypatch, tmp_path, capsys, *faults):
    from desksim.cli import main

    out = tmp_path / "run"
    with inject(monkeypatch, *faults):
        code = main([*FAULT_RUN, "--out", str(out)])
    for fault in faults:
        assert fault.fired == 1, fault  # the fault really happened in this run
    err = capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    return code, err, summary["reconciliation"]


def test_fault_free_run_reconciles_exit_0(monkeypatch, tmp_path, capsys):
    """The control for the fault tests below: the same run without a fault has no break."""
    from desksim.cli import main

    assert main([*FAULT_RUN, "--out", str(tmp_path / "run")]) == 0
    rec = json.loads((tmp_path / "run" / "summary.json").read_text())["reconciliation"]
    assert rec["breaks"] == [] and rec["legs"] == []


def test_lost_drop_copy_breaks_the_officer_leg_exit_3(monkeypatch, tmp_path, capsys):
    """One fill's drop copy lost between gateway and officer: the officer is short of that fill.
    (Dropping the officer's snapshot from reconciliation makes this test fail.)"""
    fault = LinkFault("gateway", "risk", DropCopy, "drop", nth=2, match=_is_fill_report)
    code, err, rec = _run_cli_with(monkeypatch, tmp_path, capsys, fault)
    assert code == 3
    assert rec["legs"] == [OFFICER_LEG]
    assert OFFICER_LEG in err and OMS_LEG not in err
    position = next(b for b in rec["breaks"] if b["what"] == "position")
    assert position["oms"] == position["exchange"] != position["risk"]


def test_duplicated_drop_copy_breaks_the_officer_leg_exit_3(monkeypatch, tmp_path, capsys):
    fault = LinkFault("gateway", "risk", DropCopy, "duplicate", nth=1, match=_is_fill_report)
    code, err, rec = _run_cli_with(monkeypatch, tmp_path, capsys, fault)
    assert code == 3 and rec["legs"] == [OFFICER_LEG] and OFFICER_LEG in err


def test_lost_fill_between_exchange_and_gateway_breaks_both_legs_exit_3(monkeypatch, tmp_path, capsys):
    """The exchange filled an order but the gateway never heard: neither the OMS nor the officer
    (which only see what the gateway reports) have the shares the exchange's records show."""
    fault = LinkFault("exchange", "gateway", OrderFilled, "drop", nth=3)
    code, err, rec = _run_cli_with(monkeypatch, tmp_path, capsys, fault)
    assert code == 3
    assert rec["legs"] == [OMS_LEG, OFFICER_LEG]
    assert OMS_LEG in err and OFFICER_LEG in err


def test_duplicated_fill_between_exchange_and_gateway_breaks_both_legs_exit_3(monkeypatch, tmp_path, capsys):
    fault = LinkFault("exchange", "gateway", OrderFilled, "duplicate", nth=1, match=lambda m: m.leaves_qty > 0)
    code, err, rec = _run_cli_with(monkeypatch, tmp_path, capsys, fault)
    assert code == 3
    assert rec["legs"] == [OMS_LEG, OFFICER_LEG] and OMS_LEG in err
    position = next(b for b in rec["breaks"] if b["what"] == "position")
    assert position["oms"] == position["risk"] != position["exchange"]


def test_lost_execution_report_in_the_oms_breaks_the_oms_leg_exit_3(monkeypatch, tmp_path, capsys):
    """A fill report lost inside the OMS (after its FIX session accepted the frame): only the OMS
    leg breaks; the officer, reading drop copies, still agrees with the exchange."""
    from fix.oms import OMS

    original = OMS._on_execution_report
    lost: list[str] = []

    def lossy(self, d):
        if d.get("150") == "F" and not lost:
            lost.append(d.get("17", ""))
            return
        original(self, d)

    monkeypatch.setattr(OMS, "_on_execution_report", lossy)
    code, err, rec = _run_cli_with(monkeypatch, tmp_path, capsys)
    assert lost and code == 3
    assert rec["legs"] == [OMS_LEG]
    assert OMS_LEG in err and OFFICER_LEG not in err


def test_lost_execution_report_on_the_fix_link_is_recovered_by_resend(monkeypatch, tmp_path, capsys):
    """A fill's FIX frame lost on the wire between gateway and OMS is a sequence gap: the OMS asks
    for a resend and gets it, so nothing breaks (exit 0)."""
    fault = LinkFault("gateway", "oms", FixFrame, "drop", nth=1, match=lambda m: "\x01150=F\x01" in m.raw)
    code, err, rec = _run_cli_with(monkeypatch, tmp_path, capsys, fault)
    assert code == 0, err
    assert rec["breaks"] == []


def test_reconciliation_without_the_officer_snapshot_is_a_break():
    """A run with a risk officer whose snapshot did not reach reconciliation cannot pass as
    'risk equals exchange': it is a break on the officer leg."""
    from desksim.runner import reconciliation

    scenario = load("kill_switch_drill")
    oms = {"positions": {"XYZ": {"position": 0}}, "cash": 0}
    empty = pd.DataFrame(columns=["time_ns", "order_id", "owner", "event", "side", "price", "qty", "leaves_qty"])
    rec = reconciliation(scenario, oms, None, empty)
    assert rec["legs"] == [OFFICER_LEG] and rec["breaks"][0]["what"] == "missing"
    no_officer = scenario.model_copy(update={"desk": scenario.desk.model_copy(update={"risk": None})})
    assert reconciliation(no_officer, oms, None, empty)["breaks"] == []
