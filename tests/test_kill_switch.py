"""The kill switch end to end, with the real FIX gateway, OMS, desk and exchange (no stand-ins).

Two bundled scenarios: ``runaway_algo`` (the risk gate kills a desk whose execution loop has run
away; the session stays in ``after_kill: reduce_only`` mode and the desk, ``on_kill: flatten``,
works its position toward flat) and ``kill_switch_drill`` (the timeline pulls the switch, then
releases it; the desk stops). Every check reads the exchange's own state (its book and its
orders table) and the FIX wire, never the officer's ledger: every resting order of the account
is canceled at the exchange, orders sent after the kill that would add are rejected with the
reason, reduce-only orders are accepted and filled, and OMS, officer and exchange reconcile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest

from actors.messages import owner_of
from desksim import api
from desksim.assembly import build
from desksim.extras import actor_extras
from desksim.report import write_report
from desksim.runner import summarise
from scenarios.schema import load
from sim.clock import MS, SECOND
from sim.kernel import Kernel
from sim.network import Network
from sim.record import Recorder
from sim.rng import RandomStreams

ACCOUNT = "CLIENT1"
STEP_NS = SECOND // 2


@dataclass
class KillRun:
    """A finished run plus what the exchange's book held just after the first kill."""

    assembly: Any
    summary: dict[str, Any]
    frames: dict[str, pd.DataFrame]
    kill_ns: int  # when the kill switch was pulled (risk_events, action "kill")
    resting_after_kill: list[tuple[int, str, int, int]]  # (order id, side, price, qty) of the account
    after_kill: str = "block"  # the scenario's RiskLimits.after_kill


def _gateway_resting(assembly: Any) -> list[tuple[int, str, int, int]]:
    """The gateway's (the FIX account's) orders resting in the exchange's books right now."""
    gid = assembly.gateway.id
    out = []
    for book in assembly.exchange.books.values():
        for oid in list(book._orders):
            if owner_of(oid) == gid:
                side, price, qty, _ = book.open_order(oid)
                out.append((oid, side, price, qty))
    return sorted(out)


def run_with_probe(name: str, seed: int | None = None) -> KillRun:
    """Run ``name`` step by step; right after the first kill, look into the exchange's book."""
    scenario = load(name)
    seed = scenario.seed if seed is None else seed
    recorder = Recorder()
    assembly = build(scenario, recorder, seed)
    kernel = Kernel(Network(assembly.network), RandomStreams(seed), assembly.start_ns)
    for actor in assembly.actors:
        kernel.add(actor)
    officer = assembly.risk
    t = assembly.start_ns
    kill_ns: int | None = None
    resting: list[tuple[int, str, int, int]] = []
    while t < assembly.end_ns:
        nxt = min(t + STEP_NS, assembly.end_ns)
        if kill_ns is None and officer.kills:
            kill_ns = min(run.trigger_ns for run in officer.kills.values())
            nxt = min(kill_ns + 10 * MS, assembly.end_ns)  # ten ms after the kill: nothing rests
            kernel.advance(max(nxt, t))
            resting = _gateway_resting(assembly)
            t = max(nxt, t)
            continue
        kernel.advance(nxt)
        t = nxt
    kernel.stop()

    class Stats:
        wall_s = 1.0
        messages = kernel.messages_delivered
        wakeups = kernel.wakeups_delivered

    res = summarise(
        scenario,
        seed,
        name,
        recorder,
        Stats(),
        runtime="local",
        actors=len(assembly.actors),
        extras=actor_extras(assembly),
    )
    assert kill_ns is not None, f"{name} seed {seed}: the kill switch never fired"
    after_kill = scenario.desk.risk.limits.after_kill if scenario.desk and scenario.desk.risk else "block"
    return KillRun(assembly, res.summary, res.frames, kill_ns, resting, after_kill)


def live_at(orders: pd.DataFrame, t_ns: int) -> set[int]:
    """Gateway orders live at the exchange at ``t_ns``, from the exchange's orders table alone."""
    g = orders[(orders["owner"] == "gateway") & (orders["time_ns"] <= t_ns)]
    live: set[int] = set()
    for oid, event, leaves in zip(g["order_id"], g["event"], g["leaves_qty"], strict=True):
        if event == "accepted":
            live.add(int(oid))
        elif event in ("canceled", "rejected") or (event == "filled" and leaves == 0):
            live.discard(int(oid))
    return live


def out_reports(fix: pd.DataFrame, after_ns: int) -> pd.DataFrame:
    return fix[(fix["session"] == ACCOUNT) & (fix["direction"] == "out") & (fix["time_ns"] >= after_ns)]


def position_at(orders: pd.DataFrame, t_ns: int | None = None) -> int:
    """The account's position from the exchange's own fills (up to ``t_ns``; None: the whole run)."""
    f = orders[(orders["owner"] == "gateway") & (orders["event"] == "filled")]
    if t_ns is not None:
        f = f[f["time_ns"] <= t_ns]
    return int(f["qty"].where(f["side"] == "B", -f["qty"]).sum())


def after_kill_orders(run: KillRun, until_ns: int | None = None) -> tuple[pd.DataFrame, set[str], set[str]]:
    """New orders (D) of the session that reached the gateway after the kill (until ``until_ns``),
    and the ClOrdIDs of those rejected (an 8 with a ``risk:`` Text) and of those accepted (the OMS
    saw them accepted)."""
    fix, oms = run.frames["fix_messages"], run.frames["oms_orders"]
    until = run.assembly.end_ns if until_ns is None else until_ns
    ins = fix[(fix["session"] == ACCOUNT) & (fix["direction"] == "in") & (fix["msg_type"] == "D")]
    late = ins[(ins["time_ns"] > run.kill_ns) & (ins["time_ns"] < until)]
    answers = out_reports(fix, run.kill_ns)
    answers = answers[(answers["msg_type"] == "8") & answers["cl_ord_id"].isin(set(late["cl_ord_id"]))]
    rejected = set(answers[answers["text"].str.startswith("risk:")]["cl_ord_id"])
    accepted = set(oms[(oms["event"] == "accepted") & oms["cl_ord_id"].isin(set(late["cl_ord_id"]))]["cl_ord_id"])
    return late, rejected, accepted


def check_kill(run: KillRun) -> None:
    """Everything a kill must do, read from the exchange and the FIX wire."""
    reason = run.summary["desk"]["kill_events"][0][2]  # what the officer told the desk
    orders, fix = run.frames["orders"], run.frames["fix_messages"]
    t = run.kill_ns
    live = live_at(orders, t)
    # every order of the account resting at the kill is canceled at the exchange, at once
    assert live, "the account had no resting order when the switch was pulled: a vacuous test"
    g = orders[orders["owner"] == "gateway"]
    canceled = g[(g["event"] == "canceled") & (g["time_ns"] > t) & (g["time_ns"] <= t + 5 * MS)]
    assert live <= set(canceled["order_id"].astype(int)), sorted(live - set(canceled["order_id"]))
    assert run.resting_after_kill == [], run.resting_after_kill  # the exchange's book itself
    # ... and the ExecutionReports of those cancels tell the client why (Text = the kill's reason)
    cancels = out_reports(fix, t)
    cancels = cancels[(cancels["msg_type"] == "8") & (cancels["text"] == reason)]
    # an order whose own cancel (F) was already on its way when the kill arrived is canceled by it
    own = fix[(fix["session"] == ACCOUNT) & (fix["direction"] == "in") & (fix["msg_type"] == "F")]
    own = own[(own["time_ns"] > t - 5 * MS) & (own["time_ns"] <= t + MS)]
    assert len(cancels) <= len(live) <= len(cancels) + len(own), (len(cancels), len(live), len(own), reason)
    # the officer reports what the gateway answered (issue 15 item 4), not its own ledger
    first = run.summary["risk"]["kills"][0]
    assert (first["account"], first["reason"], first["canceled"]) == (ACCOUNT, reason, len(cancels))
    risk = run.frames["risk_events"]
    blocked_until = risk[(risk["action"] == "unblock")]["time_ns"].min()
    blocked_until = int(blocked_until) if pd.notna(blocked_until) else run.assembly.end_ns
    late, rejected, reducing = after_kill_orders(run, blocked_until)
    if run.after_kill == "block":
        # nothing new of the account reaches the book after the kill (the gate sits in the gateway)
        submits = g[(g["event"] == "submit") & (g["time_ns"] > t + MS)]
        assert submits.empty if run.summary["desk"]["killed"] else True
        # every D after the kill is answered by an 8 rejected with the reason
        assert set(late["cl_ord_id"]) == rejected
        texts = set(out_reports(fix, t).query("cl_ord_id in @rejected")["text"])
        assert all(x.startswith(f"risk: kill switch active ({reason})") for x in texts), texts
    else:
        # reduce-only: every D after the kill is rejected or accepted; only orders on the side that
        # reduces the position are accepted, every one that would add is rejected with the reason
        assert set(late["cl_ord_id"]) == rejected | reducing
        side = "S" if position_at(orders, t) > 0 else "B"
        oms = run.frames["oms_orders"]
        sides = dict(
            zip(oms[oms["event"] == "submit"]["cl_ord_id"], oms[oms["event"] == "submit"]["side"], strict=True)
        )
        assert {sides[c] for c in reducing} <= {side}
        adding = {c for c in late["cl_ord_id"] if sides[c] != side}
        assert adding <= rejected
        texts = set(out_reports(fix, t).query("cl_ord_id in @adding")["text"])
        assert all(x.startswith(f"risk: reduce only after kill ({reason})") for x in texts), texts
    # reconciliation: OMS vs officer vs exchange, to the share and the tick x share
    assert run.summary["reconciliation"]["breaks"] == []


# ---------------------------------------------------------------------------------------------
# the officer kills a runaway algorithm
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runaway() -> KillRun:
    return run_with_probe("runaway_algo")


def test_runaway_algo_is_killed_by_the_officer_and_its_orders_canceled_at_the_exchange(runaway: KillRun) -> None:
    risk = runaway.frames["risk_events"]
    kills = risk[risk["action"] == "kill"]
    assert list(kills["kind"]) == ["runaway_order_rate"]  # the officer's own trigger, not the timeline
    assert len(live_at(runaway.frames["orders"], runaway.kill_ns)) >= 5  # the runaway piled orders up
    check_kill(runaway)


def test_runaway_desk_stops_its_strategy_after_the_kill(runaway: KillRun) -> None:
    """The desk learns of the kill (one hop) and its strategy sends nothing afterwards: every D of
    the session later than the notice's flight time is a flatten order (on_kill: flatten), though
    the runaway parent had slices left to send."""
    desk = runaway.summary["desk"]
    assert desk["killed"] is True and desk["on_kill"] == "flatten"
    notice_ns = desk["kill_events"][0][0]
    assert notice_ns - runaway.kill_ns < 5 * MS
    d = runaway.assembly.desk
    late = [c for c in d.children.values() if c["submit_ns"] > notice_ns]
    assert late and all(d.parents[c["parent_id"] - 1]["algo"] == "flatten" for c in late)
    assert d._working is None  # the runaway parent was closed, not left slicing
    runaway_parent = [p for p in d.parents if p["algo"] != "flatten"][-1]
    assert runaway_parent["status"] in ("done", "filled") and runaway_parent["done_ns"] >= runaway.kill_ns


def test_runaway_reconciliation_holds_through_the_kill(runaway: KillRun) -> None:
    rec = runaway.summary["reconciliation"]
    assert rec["breaks"] == []
    oms_pos = runaway.summary["oms"]["positions"]["XYZ"]["position"]
    assert oms_pos == rec["position"] == runaway.assembly.risk.position(ACCOUNT, "XYZ")
    fills = runaway.frames["orders"]
    fills = fills[(fills["owner"] == "gateway") & (fills["event"] == "filled")]
    signed = fills["qty"].where(fills["side"] == "B", -fills["qty"]).sum()
    assert int(signed) == oms_pos  # the exchange's own fills, summed here


# ---------------------------------------------------------------------------------------------
# issue 15: after the kill the session is reduce-only; the desk flattens, adding orders are refused
# ---------------------------------------------------------------------------------------------


def check_reduce_only_flatten(run: KillRun) -> None:
    """Reduce-only orders accepted and filled after the kill, only on the side that reduces, the
    position never flipped, and the account closer to flat at the close than at the kill."""
    assert run.after_kill == "reduce_only"
    orders, oms = run.frames["orders"], run.frames["oms_orders"]
    at_kill, at_close = position_at(orders, run.kill_ns), position_at(orders)
    assert at_kill != 0, "flat at the kill: nothing to reduce, a vacuous test"
    _late, _rejected, reducing = after_kill_orders(run)
    fills = oms[oms["cl_ord_id"].isin(reducing) & (oms["event"] == "filled")]
    assert len(reducing) >= 1 and int(fills["qty"].sum()) > 0
    assert set(fills["side"]) == {"S" if at_kill > 0 else "B"}
    assert abs(at_close) < abs(at_kill)
    # after the kill's cancels, the account's position only moves toward flat and never through it
    ex = orders[(orders["owner"] == "gateway") & (orders["event"] == "filled") & (orders["time_ns"] > run.kill_ns)]
    path = at_kill + ex["qty"].where(ex["side"] == "B", -ex["qty"]).cumsum()
    assert ((path * at_kill) >= 0).all() and (path.abs().diff().fillna(0) <= 0).all()
    assert run.summary["reconciliation"]["breaks"] == []
    desk = run.summary["desk"]
    assert desk["position_at_kill"] == at_kill and desk["flatten_filled_qty"] == int(fills["qty"].sum())


def test_runaway_reduce_only_orders_accepted_and_filled_after_the_kill(runaway: KillRun) -> None:
    check_reduce_only_flatten(runaway)
    assert position_at(runaway.frames["orders"]) == 0  # flat well before the close


def test_runaway_adding_orders_after_the_kill_are_rejected_with_the_reason(runaway: KillRun) -> None:
    """The desk trader's manual buy at 09:32 (the account is flat by then) would add: the gate
    refuses it in reduce-only mode, naming the kill; the desk sent no adding order at all."""
    reason = runaway.summary["risk"]["kills"][0]["reason"]
    _late, rejected, _reducing = after_kill_orders(runaway)
    assert rejected, "no order was refused after the kill"
    texts = out_reports(runaway.frames["fix_messages"], runaway.kill_ns).query("cl_ord_id in @rejected")["text"]
    assert all(t.startswith(f"risk: reduce only after kill ({reason})") for t in texts), list(texts)
    risk = runaway.frames["risk_events"]
    refused = risk[(risk["kind"] == "reduce_only") & (risk["action"] == "reject")]
    assert set(refused["cl_ord_id"]) == rejected
    desk_oids = set(runaway.assembly.desk.children)
    oms = runaway.frames["oms_orders"]
    assert not set(oms[oms["cl_ord_id"].isin(rejected)]["order_id"]) & desk_oids  # not the desk's


def test_runaway_summary_and_report_show_the_kill(runaway: KillRun, tmp_path) -> None:
    """desk_outcome.kill (summary.json, the report's desk section) agrees with the event tables."""
    kill = runaway.summary["desk_outcome"]["kill"]
    orders, oms = runaway.frames["orders"], runaway.frames["oms_orders"]
    first = runaway.summary["risk"]["kills"][0]
    assert kill["fired"] and kill["time_ns"] == runaway.kill_ns and kill["reason"] == first["reason"]
    assert kill["resting_orders"] == len(live_at(orders, runaway.kill_ns)) >= 1
    assert kill["canceled_orders"] == first["canceled"] == kill["resting_orders"]
    _late, rejected, reducing = after_kill_orders(runaway)
    assert kill["rejected_orders"] == len(rejected) >= 1
    assert kill["rejected_by_kind"] == {"reduce_only": len(rejected)}
    assert kill["reduce_only_orders"] == len(reducing) >= 1
    fills = oms[oms["cl_ord_id"].isin(reducing) & (oms["event"] == "filled")]
    assert kill["reduce_only_filled_qty"] == int(fills["qty"].sum()) > 0
    assert runaway.kill_ns < kill["reduce_only_from_ns"] <= kill["reduce_only_until_ns"]
    assert (
        kill["position_at_kill"] == position_at(orders, runaway.kill_ns) == runaway.summary["desk"]["position_at_kill"]
    )
    assert kill["position_at_close"] == position_at(orders) == runaway.summary["reconciliation"]["position"]
    assert kill["released_ns"] is None
    # the bundled run through the public API and its run folder: summary.json and report.html
    out = tmp_path / "run"
    res = api.run("runaway_algo", out=out)
    assert res.summary["digest"] == runaway.summary["digest"]  # the same run as the probe's
    html = write_report(out).read_text(encoding="utf-8")
    assert "kill: reduce-only orders accepted (shares filled)" in html
    assert f"{kill['reduce_only_orders']} ({kill['reduce_only_filled_qty']:,})" in html
    assert "kill: resting orders canceled at the exchange" in html
    assert (out / "risk_timeline.png").exists()


def test_runaway_flattens_on_another_seed() -> None:
    """The desk option on a second seed (short at the kill: the reduce-only orders are buys)."""
    run = run_with_probe("runaway_algo", 2)
    check_kill(run)
    check_reduce_only_flatten(run)
    assert position_at(run.frames["orders"], run.kill_ns) < 0


def test_desk_on_kill_stop_sends_nothing_after_the_kill() -> None:
    """The default ``on_kill: stop`` in the same reduce-only session: the desk sends nothing."""
    res = api.run("runaway_algo", overrides={"desk.params.on_kill": "stop"})
    desk = res.summary["desk"]
    assert desk["killed"] and desk["on_kill"] == "stop" and desk["flatten_orders"] == 0
    kill = res.summary["desk_outcome"]["kill"]
    assert kill["fired"] and kill["reduce_only_orders"] == 0 and kill["position_at_close"] == kill["position_at_kill"]
    assert res.summary["reconciliation"]["breaks"] == []


# ---------------------------------------------------------------------------------------------
# the timeline pulls the switch (a drill), then releases it
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def drill() -> KillRun:
    return run_with_probe("kill_switch_drill")


def test_drill_kill_from_the_timeline_cancels_every_resting_order(drill: KillRun) -> None:
    events = drill.frames["scenario_events"]
    pulled = events[events["action"] == "kill_switch"]
    assert len(pulled) == 2
    fired = int(pulled["time_ns"].iloc[0])
    assert 0 < drill.kill_ns - fired < MS  # the officer acted on the timeline's command (one hop)
    check_kill(drill)


def test_drill_manual_order_during_the_kill_is_rejected_with_the_reason_and_accepted_after(drill: KillRun) -> None:
    fix = drill.frames["fix_messages"]
    d_in = fix[(fix["session"] == ACCOUNT) & (fix["direction"] == "in") & (fix["msg_type"] == "D")]
    out8 = fix[(fix["session"] == ACCOUNT) & (fix["direction"] == "out") & (fix["msg_type"] == "8")]
    risk = drill.frames["risk_events"]
    unblock_ns = int(risk[risk["action"] == "unblock"]["time_ns"].iloc[0])
    during = d_in[(d_in["time_ns"] > drill.kill_ns) & (d_in["time_ns"] < unblock_ns)]
    assert len(during) >= 1  # the manual order at 09:32:30
    for cl in during["cl_ord_id"]:
        texts = list(out8[out8["cl_ord_id"] == cl]["text"])
        assert texts and texts[0] == "risk: kill switch active (scenario)", (cl, texts)
    after = d_in[d_in["time_ns"] > unblock_ns]
    assert len(after) >= 1  # the manual order at 09:34 and the desk's own, resumed
    rejected_after = out8[out8["cl_ord_id"].isin(after["cl_ord_id"]) & out8["text"].str.contains("kill switch")]
    assert rejected_after.empty
    desk = drill.summary["desk"]
    assert [e[1] for e in desk["kill_events"]] == ["activated", "released"]
    assert desk["killed"] is False
    # the desk sent nothing of its own while the switch was on, and trades again after release
    children = drill.assembly.desk.children.values()
    assert not [c for c in children if drill.kill_ns < c["submit_ns"] < unblock_ns]
    assert [c for c in children if c["submit_ns"] > unblock_ns]


def test_drill_reconciles_and_the_risk_timeline_has_the_release(drill: KillRun) -> None:
    assert drill.summary["reconciliation"]["breaks"] == []
    actions = list(drill.frames["risk_events"]["action"])
    for a in ("kill", "mass_cancel", "cancels_acked", "unblock"):
        assert a in actions


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_runaway_kill_holds_on_other_seeds(seed: int) -> None:
    check_kill(run_with_probe("runaway_algo", seed))


def test_breaches_count_limit_breaches_not_the_kill_switch_at_work(drill: KillRun, runaway: KillRun) -> None:
    """Issue 15 item 5: a drill breaks no limit (its kill and the rejects of the blocked account
    are the switch at work); the runaway's breaches are its refusals plus the runaway trigger, not
    the reduce-only refusals of its blocked session."""
    assert drill.summary["risk"]["breaches"] == 0
    risk = runaway.frames["risk_events"]
    switch = ("kill_switch", "reduce_only")  # the switch at work: refusals of the blocked session
    limits = risk[risk["action"].isin(["reject", "kill"]) & ~risk["kind"].isin(switch)]
    assert (risk["kind"] == "reduce_only").sum() >= 1  # the manual buy refused after the kill
    assert runaway.summary["risk"]["breaches"] == len(limits) > 0
    assert set(limits["kind"]) >= {"order_rate", "runaway_order_rate"}
