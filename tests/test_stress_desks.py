"""Issue 16 item 7: every bundled stress scenario stresses our desk.

Each of flash_crash_scripted, flash_crash, mm_withdrawal, latency_spike, vol_spike and halt_reopen has a strategy desk
trading through its OMS over FIX 4.4 with the independent risk officer watching, and the desk's
account reconciles (OMS vs risk officer vs exchange, to the share and to the tick x share) on
every seed tried, in runs that end ten minutes after the scenario's first timed event. The run
summary leads with ``desk_outcome`` (desksim/analytics/desk_outcome.py), checked here against
hand-built tables.
"""

from __future__ import annotations

import pandas as pd
import pytest

from desksim import api
from desksim.analytics.desk_outcome import desk_outcome, halt_spans, rejected_in_halts
from scenarios.schema import load

STRESS_DESKS = ["flash_crash_scripted", "flash_crash", "mm_withdrawal", "latency_spike", "vol_spike", "halt_reopen"]
SEEDS = (1, 2, 3)
NS = 10**9


def past_first_event_s(name: str, tail_s: float = 600.0) -> float:
    """Seconds from the open to ``tail_s`` after the scenario's first timed event."""
    scenario = load(name)
    open_ns = scenario.session.open_ns
    first = min(t for e in scenario.events if (t := e.time_ns(open_ns)) is not None)
    return (first - open_ns) / NS + tail_s


@pytest.mark.parametrize("name", STRESS_DESKS)
def test_stress_scenario_has_a_desk_an_oms_over_fix_and_a_risk_officer(name):
    scenario = load(name)
    desk = scenario.desk
    assert desk is not None and desk.risk is not None, name
    limits = desk.risk.limits
    # the officer's limits are a backstop beyond the desk's own: position, order size, daily loss
    assert limits.max_long is not None and limits.max_long >= desk.params.max_position
    assert limits.max_order_qty is not None and limits.max_order_qty >= desk.params.max_order_qty
    assert limits.max_daily_loss is not None and limits.kill_on_loss
    words = " ".join(scenario.description.split())
    assert "Our desk" in words and "risk officer" in words and "OMS over FIX 4.4" in words


@pytest.mark.slow
@pytest.mark.parametrize("name", STRESS_DESKS)
def test_stress_desk_reconciles_on_every_seed(name):
    """Reconciliation holds on each seed, ten minutes past the scenario's first event; the desk
    traded (over FIX) and the summary leads with its outcome."""
    duration = past_first_event_s(name)
    for seed in SEEDS:
        res = api.run(name, seed=seed, duration_s=duration)
        s = res.summary
        assert s["reconciliation"]["breaks"] == [], (name, seed, s["reconciliation"])
        outcome = s["desk_outcome"]
        assert outcome["reconciled"] is True and outcome["has_desk"], (name, seed)
        assert s["desk"]["fills"] > 0, (name, seed)
        assert {"D", "8"} <= set(res.frames["fix_messages"]["msg_type"]), (name, seed)
        fills = res.frames["desk_fills"]
        signed = fills["qty"].where(fills["side"] == "B", -fills["qty"]).cumsum()
        assert abs(outcome["worst_position"]) == int(signed.abs().max()), (name, seed)
        assert abs(outcome["worst_position"]) <= load(name).desk.params.max_position + 2_000  # one parent over
        assert outcome["final_position"] == s["reconciliation"]["position"], (name, seed)


# --------------------------------------------------------------------------- desk_outcome, hand-built


def _frames(orders_rows, halts_rows, risk_rows, fills_rows):
    return {
        "orders": pd.DataFrame(
            orders_rows,
            columns=["time_ns", "order_id", "owner", "event", "side", "price", "qty", "leaves_qty", "detail"],
        ),
        "halts": pd.DataFrame(halts_rows, columns=["time_ns", "symbol", "event", "reason", "price"]),
        "risk_events": pd.DataFrame(risk_rows, columns=["time_ns", "actor", "kind", "limit", "value", "action"]),
        "desk_fills": pd.DataFrame(fills_rows, columns=["time_ns", "side", "qty"]),
    }


def test_desk_outcome_from_hand_built_tables():
    t = 36_000 * NS  # 10:00:00
    frames = _frames(
        orders_rows=[
            (t, 1, "gateway", "rejected", "B", None, 0, 0, "price band"),  # before the halt
            (t + 60 * NS, 2, "gateway", "rejected", "B", None, 0, 0, "trading halted"),  # in the halt
            (t + 61 * NS, 3, "gateway", "cancel_rejected", "", None, 0, 0, "trading halted"),  # in the halt
            (t + 62 * NS, 4, "noise-0001", "rejected", "S", None, 0, 0, "trading halted"),  # not ours
            (t + 400 * NS, 5, "gateway", "rejected", "S", None, 0, 0, "price collar"),  # after the reopening
        ],
        halts_rows=[
            (t + 30 * NS, "XYZ", "halted", "luld pause", 9_500),
            (t + 330 * NS, "XYZ", "extended", "indicative 9000 outside collars 9025-9975", 9_000),
            (t + 360 * NS, "XYZ", "resumed", "auction", 9_000),
        ],
        risk_rows=[
            (t, "CLIENT1", "max_order_qty", 10_000, 20_000, "reject"),
            (t + NS, "CLIENT1", "max_order_qty", 10_000, 30_000, "reject"),
            (t + 2 * NS, "CLIENT1", "daily_loss", 2_000_000, 2_100_000, "kill"),
            (t + 3 * NS, "CLIENT1", "kill_switch", 0, 0, "mass_cancel"),  # an action, not a breach
        ],
        fills_rows=[(t, "B", 3_000), (t + NS, "B", 1_500), (t + 2 * NS, "S", 6_000), (t + 3 * NS, "B", 500)],
    )
    summary = {
        "desk": {"pnl_ccy": -1234.5, "max_drawdown_ccy": 2000.0, "final_position": -1_000},
        "risk": {"kill_switch": {"fired": True, "time_ns": t + 2 * NS}},
        "reconciliation": {"breaks": []},
    }
    out = desk_outcome(summary, frames)
    assert out["pnl"] == -1234.5 and out["max_drawdown"] == 2000.0
    # positions after each fill: 3_000, 4_500, -1_500, -1_000 -> the worst is +4_500 at 10:00:01
    assert (out["worst_position"], out["worst_position_at"]) == (4_500, "10:00:01.000")
    assert out["limit_breaches"] == 3 and out["limit_breaches_by_kind"] == {"daily_loss": 1, "max_order_qty": 2}
    assert out["kill_switch"] and out["kill_switch_at"] == "10:00:02.000"
    assert out["orders_rejected"] == 4  # the noise trader's refusal is not ours
    assert out["orders_rejected_in_halts"] == 2
    assert out["orders_rejected_by_reason"] == {"price band": 1, "price collar": 1, "trading halted": 2}
    assert out["reconciled"] is True


def test_halt_spans_pair_per_symbol_and_leave_open_halts_open():
    halts = pd.DataFrame(
        [(10, "A", "halted"), (12, "B", "halted"), (15, "A", "resumed"), (20, "A", "halted")],
        columns=["time_ns", "symbol", "event"],
    )
    assert halt_spans(halts) == [(10, 15), (12, 1 << 62), (20, 1 << 62)]
    assert halt_spans(halts, end_ns=30) == [(10, 15), (12, 30), (20, 30)]
    rows = pd.DataFrame({"time_ns": [9, 10, 14, 15, 16]})
    assert rejected_in_halts(rows, [(10, 15)]) == 2  # [start, end)


def test_a_short_desk_run_leads_with_its_outcome_and_the_report_shows_it(tmp_path):
    res = api.run("kill_switch_drill", seed=5, duration_s=200, out=tmp_path / "run")
    outcome = res.summary["desk_outcome"]
    assert outcome["kill_switch"] and outcome["kill_switch_at"].startswith("09:32:00")
    assert outcome["orders_rejected"] == 0 or outcome["orders_rejected_by_reason"]
    assert outcome["reconciled"] is True
    from desksim.report import write_report

    html = write_report(tmp_path / "run").read_text()
    assert html.index("Desk outcome") < html.index("Summary")


@pytest.mark.slow
def test_desk_auction_fills_reach_the_oms():
    """flash_crash_scripted_current seed 5: the desk buys 1,100 shares in a reopening auction. Those fills used to
    be sent as ``851=auction`` (not a FIX 4.4 LastLiquidityInd), the OMS's session refused the
    ExecutionReport, and OMS and exchange disagreed by 1,100 shares. Now they carry no 851."""
    res = api.run("flash_crash_scripted_current", seed=5)
    s = res.summary
    assert s["reconciliation"]["breaks"] == [], s["reconciliation"]
    auction_fills = res.frames["desk_fills"].query("liquidity == ''")  # no LastLiquidityInd: an auction print
    assert auction_fills["qty"].sum() > 0, "the desk traded in no auction: the test lost its point"
    assert not res.frames["fix_messages"]["msg_type"].eq("3").any(), "a session-level Reject"
