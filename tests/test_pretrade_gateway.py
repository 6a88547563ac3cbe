"""Pre-trade controls through the real path (issue 15): a scripted desk -> OMS -FIX 4.4-> FixGateway
(its own PreTradeGate, set by the officer's messages) -> Exchange, and the RiskOfficer on drop copies.
Each control is shown at its boundary: at the limit passes, one more fails."""

from __future__ import annotations

from typing import Any

from actors.exchange.exchange import Exchange
from actors.messages import (
    CancelOrder,
    KillSwitch,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    ReplaceOrder,
    SubmitOrder,
)
from actors.risk import GateConfig, RiskLimits, RiskOfficer
from desksim.report.plots import kill_switch_spans
from desksim.runner import _risk_events_summary
from fix.gateway_actor import FixGateway
from fix.oms import OMS
from sim.clock import MS
from sim.kernel import Kernel
from sim.network import LinkSpec, Network, NetworkSpec
from sim.record import Recorder
from sim.rng import RandomStreams
from tests.helpers import Scripted

T0 = 50 * MS  # the FIX session is logged on well before this
SYM = "XYZ"


class Desk(Scripted):  # type: ignore[misc]
    """The scripted desk; after the run it also holds the officer and the exchange to inspect."""

    officer: Any = None
    exchange: Any = None


class TaggingOMS(OMS):
    """A client that puts Account(1) tags of its choosing on its orders: ``tags[i % len(tags)]``
    on the i-th order (e.g. rotating over ten values to multiply per-account limits)."""

    def __init__(self, name: str, recorder: Recorder, tags: list[str]) -> None:
        super().__init__(name, recorder)
        self.tags = tags
        self.sent = 0

    def on_submit(self, msg: SubmitOrder, src: int) -> None:
        self.account = self.tags[self.sent % len(self.tags)]
        self.sent += 1
        super().on_submit(msg, src)


def run(
    limits: RiskLimits,
    script: list[tuple[int, Any]],
    until: int = 3_000 * MS,
    reference: int | None = 1000,
    *,
    tags: list[str] | None = None,
    overrides: dict[str, RiskLimits] | None = None,
    commands: list[tuple[int, Any]] = (),  # type: ignore[assignment]
    street: list[tuple[int, Any]] = (),  # type: ignore[assignment]
) -> tuple[Desk, Any]:
    """Run the desk's ``script`` ``(t_ns, make_message)`` through OMS, gateway and exchange; the
    gate knows the day's reference price ``reference`` (ticks), as the assembly gives it."""
    rec = Recorder()
    kernel = Kernel(Network(NetworkSpec(LinkSpec(1 * MS))), RandomStreams(1))
    exchange = Exchange("exchange", [SYM], rec, 0, 10**13, reference_price=1000)
    # one immutable configuration; the gateway builds its own gate from it (nothing shared)
    config = GateConfig.of(limits, overrides, {SYM: reference} if reference is not None else None, officer="risk")
    gateway = FixGateway("gateway", rec, symbols=[SYM], clients=["CLIENT1"], risk=config)
    oms = OMS("oms", rec) if tags is None else TaggingOMS("oms", rec, tags)
    desk = Desk("desk", script, dst="oms")
    officer = RiskOfficer(
        "risk", rec, config, symbols=[SYM], gateway="gateway", exchange="exchange", desk="desk", accounts=["CLIENT1"]
    )
    control = Scripted("control", list(commands), dst="risk")  # a scenario timeline's commands
    other = Scripted("street", list(street), dst="exchange")  # another participant, native orders
    for actor in (exchange, gateway, oms, desk, officer, control, other):
        kernel.add(actor)
    kernel.run(until)
    desk.officer, desk.exchange = officer, exchange
    return desk, rec


def buy(n: int, price: int = 990, qty: int = 100) -> Any:
    return lambda a: SubmitOrder(a.oid(n), SYM, "B", qty, price)


def sell(n: int, price: int, qty: int = 100) -> Any:
    return lambda a: SubmitOrder(a.oid(n), SYM, "S", qty, price)


def cancel(n: int) -> Any:
    return lambda a: CancelOrder(a.oid(n), SYM)


def outcome(desk: Scripted, n: int) -> str:
    """The desk's order ``n``: "accepted", or the text it was rejected with."""
    oid = desk.oid(n)
    for _, msg in desk.inbox:
        if isinstance(msg, OrderRejected) and msg.order_id == oid:
            return msg.reason
        if isinstance(msg, OrderAccepted) and msg.order_id == oid:
            return "accepted"
    return "no answer"


def test_message_limit_counts_cancels_at_the_boundary() -> None:
    """RTS 6: max_messages counts new orders and cancels. 5 orders + 4 cancels = 9 messages;
    the 10th (an order) is at the limit and passes, the 11th is refused."""
    lim = RiskLimits(max_messages=10, message_window_ms=1000)
    script = [(T0 + i * MS, buy(i + 1)) for i in range(5)]
    script += [(T0 + (10 + i) * MS, cancel(i + 1)) for i in range(4)]
    script += [(T0 + 20 * MS, buy(6)), (T0 + 21 * MS, buy(7))]
    desk, _ = run(lim, script)
    assert [outcome(desk, n) for n in range(1, 7)] == ["accepted"] * 6
    assert outcome(desk, 7).startswith("risk: message rate 11 > 10")


def test_a_throttled_order_does_not_consume_a_message_slot() -> None:
    """max_orders 2 per 100 ms, max_messages 4 per s. Orders 1-2 pass, 3 is throttled (order
    rate) and must not count as a message; after the order window slid, 4 and 5 take the
    message count to 4 (at the limit: 5 passes), and 6 is one message too many."""
    lim = RiskLimits(max_orders=2, order_window_ms=100, max_messages=4, message_window_ms=1000)
    script = [
        (T0, buy(1)),
        (T0 + 1 * MS, buy(2)),
        (T0 + 2 * MS, buy(3)),
        (T0 + 150 * MS, buy(4)),
        (T0 + 160 * MS, buy(5)),
        (T0 + 270 * MS, buy(6)),
    ]
    desk, _ = run(lim, script)
    assert outcome(desk, 3).startswith("risk: order rate 3 > 2")
    assert [outcome(desk, n) for n in (1, 2, 4, 5)] == ["accepted"] * 4
    assert outcome(desk, 6).startswith("risk: message rate 5 > 4")


def test_collar_before_the_first_trade_uses_the_reference_price_at_the_boundary() -> None:
    """Issue 15 item 1: no trade yet, reference $10.00 (1000 ticks), collar 2% = 20 ticks. A sell
    at 1020 and a buy at 980 are at the bound and pass (they rest: nothing trades); 1021 and 979
    are one tick over and are refused by the gate."""
    lim = RiskLimits(collar_pct=2.0)
    script = [(T0, sell(1, 1020)), (T0 + MS, sell(2, 1021)), (T0 + 2 * MS, buy(3, 980)), (T0 + 3 * MS, buy(4, 979))]
    desk, rec = run(lim, script)
    assert rec.tables["trades"].rows == []  # the reference stayed the static one throughout
    assert outcome(desk, 1) == "accepted"
    assert outcome(desk, 2) == "risk: price 1021 outside collar 1000+-20"
    assert outcome(desk, 3) == "accepted"
    assert outcome(desk, 4) == "risk: price 979 outside collar 1000+-20"


def test_collar_without_any_reference_fails_closed() -> None:
    """A collar that cannot be checked (no reference price, no trade, no quote) refuses."""
    desk, _ = run(RiskLimits(collar_pct=2.0), [(T0, buy(1, 1000))], reference=None)
    assert outcome(desk, 1) == "risk: no reference price for the collar"


def test_limits_key_on_the_session_not_the_rotating_account_tag() -> None:
    """Issue 15 item 3: max_long 500 holds for the FIX session whatever Account(1) the client
    writes: rotating over ten tags, the 5th buy of 100 is at the limit and passes, the 6th fails."""
    tags = [f"ACC{i}" for i in range(10)]
    script = [(T0 + i * MS, buy(i + 1)) for i in range(10)]
    desk, _ = run(RiskLimits(max_long=500), script, tags=tags)
    assert [outcome(desk, n) for n in range(1, 6)] == ["accepted"] * 5
    assert [outcome(desk, n) for n in range(6, 11)] == ["risk: max long 600 > 500"] * 5


def test_an_account_tag_may_only_narrow() -> None:
    """A tag with its own (tighter) per-order limit narrows the session's; a tag with looser
    limits does not widen them."""
    overrides = {"SMALL": RiskLimits(max_order_qty=100), "BIG": RiskLimits(max_order_qty=10_000)}
    script = [(T0, buy(1, qty=100)), (T0 + MS, buy(2, qty=101)), (T0 + 2 * MS, buy(3, qty=1001))]
    desk, _ = run(RiskLimits(max_order_qty=1000), script, tags=["SMALL", "SMALL", "BIG"], overrides=overrides)
    assert outcome(desk, 1) == "accepted"
    assert outcome(desk, 2) == "risk: max order qty 101 > 100"
    assert outcome(desk, 3) == "risk: max order qty 1001 > 1000"


def test_kill_switch_for_an_unknown_account_is_refused_and_not_reported_fired() -> None:
    """Issue 15 item 4: ``client1`` is not ``CLIENT1`` (CompIDs are case-sensitive). The kill is
    refused (a "refused" risk event), nothing is blocked or canceled at the exchange, and the run
    does not report the kill switch fired; the same command for CLIENT1 does all of that."""
    script = [(T0, buy(1)), (T0 + 200 * MS, buy(2))]
    desk, rec = run(RiskLimits(), script, commands=[(T0 + 100 * MS, lambda a: KillSwitch("client1", True, "drill"))])
    events = rec.tables["risk_events"].frame()
    assert list(events["action"]) == ["refused"] and events["actor"].iloc[0] == "client1"
    assert not desk.officer.gate.blocked and desk.officer.kills == {}
    assert _risk_events_summary(events)["kill_switch"]["fired"] is False
    assert outcome(desk, 2) == "accepted" and not desk.received(OrderCanceled)
    assert len(desk.exchange.books[SYM]) == 2  # both buys still rest at the exchange
    desk, rec = run(RiskLimits(), script, commands=[(T0 + 100 * MS, lambda a: KillSwitch("CLIENT1", True, "drill"))])
    events = rec.tables["risk_events"].frame()
    assert _risk_events_summary(events)["kill_switch"]["fired"] is True
    assert len(desk.exchange.books[SYM]) == 0 and len(desk.received(OrderCanceled)) == 1
    assert outcome(desk, 2) == "risk: kill switch active (drill)"


def test_release_closes_the_engaged_span_on_the_risk_timeline() -> None:
    """The ``unblock`` row ends the shaded "kill switch engaged" interval of the risk plot."""
    on, off = T0 + 100 * MS, T0 + 400 * MS
    commands = [(on, lambda a: KillSwitch("CLIENT1", True, "drill")), (off, lambda a: KillSwitch("CLIENT1", False))]
    _, rec = run(RiskLimits(), [(T0, buy(1))], commands=commands)
    events = rec.tables["risk_events"].frame()
    spans = kill_switch_spans(events, 10**13)
    assert len(spans) == 1
    (a, b), link = spans[0], 1 * MS
    # shaded from the officer's decision (one hop from the timeline) to the release at the gateway
    # (one hop more: the gateway re-enables the session and reports it)
    assert a == on + link and b == off + 2 * link


def replace(n: int, qty: int, price: int = 990) -> Any:
    return lambda a: ReplaceOrder(a.oid(n), SYM, qty=qty, price=price)  # nothing filled: open = total


def test_exposure_counts_a_replace_in_flight_at_the_boundary() -> None:
    """Issue 15 item 2: a replace raised to 10,000 reserves the increase when the gate accepts it,
    so a buy 200 us later meets it (max_long 15,000): 5,001 more is one share too many and is
    refused, 5,000 is at the limit and passes. Before, both the 10,000 replace and a 10,000 buy
    passed (20,000 live) because the gate waited for the replace's answer."""
    lim = RiskLimits(max_long=15_000)
    t1 = T0 + 10 * MS
    script = [(T0, buy(1, qty=5_000)), (t1, replace(1, 10_000)), (t1 + 200_000, buy(2, qty=5_001))]
    script.append((t1 + 400_000, buy(3, qty=5_000)))
    desk, _ = run(lim, script)
    assert outcome(desk, 1) == "accepted"
    assert outcome(desk, 2).startswith("risk: max long 15001 > 15000")
    assert outcome(desk, 3) == "accepted"
    assert desk.officer.ledger.open_qty("CLIENT1", SYM, "B") == 15_000  # the exchange's answers, at the limit


def test_a_replace_down_and_a_refused_replace_release_the_reservation() -> None:
    """A replace up refused by the gate reserves nothing; after a replace down to 2,000 the room
    is 13,000: at the limit passes, one more share fails."""
    lim = RiskLimits(max_long=15_000)
    script = [(T0, buy(1, qty=5_000)), (T0 + 10 * MS, replace(1, 20_000)), (T0 + 20 * MS, replace(1, 2_000))]
    script += [(T0 + 40 * MS, buy(2, qty=13_001)), (T0 + 41 * MS, buy(3, qty=13_000))]
    desk, _ = run(lim, script)
    assert outcome(desk, 2).startswith("risk: max long 15001 > 15000")
    assert outcome(desk, 3) == "accepted"


# ---------------------------------------------------------------------------------------------
# issue 15 item 7: controls a compliance review expects
# ---------------------------------------------------------------------------------------------


def market_buy(n: int, qty: int = 100) -> Any:
    return lambda a: SubmitOrder(a.oid(n), SYM, "B", qty, None)


def test_self_match_prevention_at_the_boundary() -> None:
    """The session rests a sell at 1000 and a buy at 990. A buy at 999 (one tick short of its own
    sell) passes; a buy at 1000 and a market buy would trade with it and are refused; on the other
    side (own best buy now 999) a sell at 1000 passes, a sell at 999 is refused. Nothing trades.
    Without the control the buy at 1000 trades with the session's own sell."""
    lim = RiskLimits(prevent_self_match=True)
    script = [(T0, sell(1, 1000)), (T0 + MS, buy(2, 990)), (T0 + 10 * MS, buy(3, 999)), (T0 + 11 * MS, buy(4, 1000))]
    script += [(T0 + 12 * MS, market_buy(5)), (T0 + 13 * MS, sell(6, 1000)), (T0 + 14 * MS, sell(7, 999))]
    desk, rec = run(lim, script)
    assert [outcome(desk, n) for n in (1, 2, 3, 6)] == ["accepted"] * 4
    assert outcome(desk, 4) == "risk: self match: buy at 1000 would trade with the session's own sell at 1000"
    assert outcome(desk, 5) == "risk: self match: buy at market would trade with the session's own sell at 1000"
    assert outcome(desk, 7) == "risk: self match: sell at 999 would trade with the session's own buy at 999"
    assert rec.tables["trades"].rows == []
    events = rec.tables["risk_events"].frame()
    assert list(events["kind"]) == ["self_match"] * 3 and list(events["actor"]) == ["CLIENT1"] * 3
    _, rec = run(RiskLimits(), script[:4])
    assert len(rec.tables["trades"].rows) == 1  # the default: the account trades with itself


def test_restricted_list_refuses_the_symbol_only() -> None:
    """A symbol on the session's restricted list is refused with the reason; a list without it
    changes nothing; a cancel of a resting order is never refused."""
    desk, rec = run(RiskLimits(restricted=("XYZ",)), [(T0, buy(1))])
    assert outcome(desk, 1) == "risk: XYZ is on the restricted list"
    assert list(rec.tables["risk_events"].frame()["kind"]) == ["restricted"]
    desk, _ = run(RiskLimits(restricted=("ABC",)), [(T0, buy(1))])
    assert outcome(desk, 1) == "accepted"
    overrides = {"CLIENT1": RiskLimits(restricted=("XYZ",))}
    desk, _ = run(RiskLimits(), [(T0, buy(1))], overrides=overrides)
    assert outcome(desk, 1) == "risk: XYZ is on the restricted list"


def _reduce_only_day(after_kill: str) -> tuple[Desk, Any]:
    """The desk buys 300 from the street (long 300), rests a buy of 100, is killed; then it sends
    a buy, a sell of 200, a sell of 101 (200 + 101 > 300) and a sell of 100 (300: flat at most)."""
    street = [(T0, lambda a: SubmitOrder(a.oid(1), SYM, "S", 300, 1000))]
    script = [(T0 + 5 * MS, buy(1, 1000, qty=300)), (T0 + 10 * MS, buy(2, 990))]
    script += [(T0 + 100 * MS, buy(3, 990)), (T0 + 101 * MS, sell(4, 1010, qty=200))]
    script += [(T0 + 102 * MS, sell(5, 1011, qty=101)), (T0 + 103 * MS, sell(6, 1012, qty=100))]
    commands = [(T0 + 50 * MS, lambda a: KillSwitch("CLIENT1", True, "drill"))]
    return run(RiskLimits(after_kill=after_kill), script, commands=commands, street=street)  # type: ignore[arg-type]


def test_reduce_only_after_a_kill_at_the_boundary() -> None:
    """after_kill: reduce_only: the kill cancels the resting buy at the exchange; afterwards a buy
    is refused, sells that at most flatten the long 300 pass (200, then 100: at the limit) and
    rest at the exchange, a sell of 101 on top of the open 200 is refused."""
    desk, rec = _reduce_only_day("reduce_only")
    assert desk.officer.ledger.position("CLIENT1", SYM) == 300
    assert outcome(desk, 3).startswith("risk: reduce only after kill (drill): buy 100 + open 0 > position 300")
    assert outcome(desk, 4) == "accepted" and outcome(desk, 6) == "accepted"
    assert outcome(desk, 5).startswith("risk: reduce only after kill (drill): sell 101 + open 200 > position 300")
    assert [m.order_id for m in desk.received(OrderCanceled)] == [desk.oid(2)]  # the kill's cancel only
    book = desk.exchange.books[SYM]
    assert len(book) == 2  # the two reduce-only sells rest: the kill did not cancel them
    kinds = list(rec.tables["risk_events"].frame()["kind"])
    assert kinds.count("reduce_only") == 2
    desk, _ = _reduce_only_day("block")  # the default: nothing after the kill
    assert [outcome(desk, n) for n in (3, 4, 5, 6)] == ["risk: kill switch active (drill)"] * 4


def test_a_reduce_only_order_racing_the_kill_is_not_canceled_by_it() -> None:
    """A reduce-only sell that reaches the gateway just after the kill, while the kill's cancels
    are still in flight, is accepted and stays at the exchange: only what was live or in flight at
    the kill is canceled."""
    street = [(T0, lambda a: SubmitOrder(a.oid(1), SYM, "S", 300, 1000))]
    script = [(T0 + 5 * MS, buy(1, 1000, qty=300)), (T0 + 10 * MS, buy(2, 990)), (T0 + 51 * MS, sell(3, 1010))]
    commands = [(T0 + 50 * MS, lambda a: KillSwitch("CLIENT1", True, "drill"))]
    desk, rec = run(RiskLimits(after_kill="reduce_only"), script, commands=commands, street=street)
    assert outcome(desk, 3) == "accepted"
    assert [m.order_id for m in desk.received(OrderCanceled)] == [desk.oid(2)]
    assert len(desk.exchange.books[SYM]) == 1
    events = rec.tables["risk_events"].frame()  # the kill is confirmed though the reduce-only sell rests
    assert list(events.loc[events["kind"] == "kill_switch", "action"]) == ["mass_cancel", "cancels_acked"]


def test_audit_trail_rows_name_the_order_the_session_and_the_rule() -> None:
    """Every risk event row carries the session (actor), the rule (kind) and the order concerned:
    a refused new order its ClOrdID (no OrderID exists yet), a refused replace its ClOrdID and
    the exchange's OrderID of the order it would have changed; session-wide rows (the kill's
    mass cancel) name no order."""
    lim = RiskLimits(max_order_qty=100)
    script = [(T0, buy(1, qty=101)), (T0 + MS, buy(2)), (T0 + 5 * MS, replace(2, 101))]
    commands = [(T0 + 20 * MS, lambda a: KillSwitch("CLIENT1", True, "drill"))]
    _, rec = run(lim, script, commands=commands)
    events = rec.tables["risk_events"].frame()
    assert tuple(events.columns[-2:]) == ("cl_ord_id", "order_id")
    sent = rec.tables["fix_messages"].frame()
    sent = sent[sent["direction"] == "in"]  # what the gateway received
    d_ids = list(sent.loc[sent["msg_type"] == "D", "cl_ord_id"])
    g_ids = list(sent.loc[sent["msg_type"] == "G", "cl_ord_id"])
    resting = str(rec.tables["orders"].frame()["order_id"].iloc[0])  # the exchange's OrderID of buy 2
    rows = [tuple(r) for r in events[["actor", "kind", "action", "cl_ord_id", "order_id"]].itertuples(index=False)]
    assert rows[0] == ("CLIENT1", "max_order_qty", "reject", d_ids[0], "")
    assert rows[1] == ("CLIENT1", "max_order_qty", "reject", g_ids[0], resting)
    assert ("CLIENT1", "kill_switch", "mass_cancel", "", "") in rows
    assert all(r[3] for r in rows if r[2] == "reject")  # no refusal without its ClOrdID


def test_the_officers_own_positions_pnl_and_limit_usage_are_in_its_summary() -> None:
    """Issue 15 item 7: the officer's own view (from drop copies) of each session -- position,
    P&L, gross exposure, open orders and the use of each limit -- is in its summary (summary.json
    ``risk.accounts``). Long 300 of max_long 600 is half the limit; one resting buy of 100."""
    street = [(T0, lambda a: SubmitOrder(a.oid(1), SYM, "S", 300, 1000))]
    script = [(T0 + 5 * MS, buy(1, 1000, qty=300)), (T0 + 10 * MS, buy(2, 990))]
    lim = RiskLimits(max_long=600, max_daily_loss=1_000)
    desk, _ = run(lim, script, street=street)
    view = desk.officer.summary()["accounts"]["CLIENT1"]
    assert view["positions"] == {SYM: 300} and view["open_orders"] == 1
    assert view["pnl_tick_shares"] == 0  # marked at its own price: no loss yet
    assert view["gross_tick_shares"] == 300 * 1000 + 100 * 990
    assert view["limit_usage"] == {
        "max_long": 0.5,
        "max_short": None,
        "max_gross_notional": None,
        "max_daily_loss": 0.0,
    }


def test_a_late_new_of_an_order_in_flight_at_the_kill_cancels_that_order_only() -> None:
    """The kill reaches the gateway at T0 + 52 ms while buy 2 (sent to the exchange at 51.5 ms) is
    still unacknowledged; a reduce-only sell is accepted at 52.5 ms. Buy 2's New arrives after
    that (53.5 ms): the gateway cancels buy 2 -- the order that was in flight at the kill -- and
    not the reduce-only sell, which stays at the exchange. Before, the late New canceled every
    live order of the session, the reduce-only sell included."""
    street = [(T0, lambda a: SubmitOrder(a.oid(1), SYM, "S", 300, 1000))]
    script = [(T0 + 5 * MS, buy(1, 1000, qty=300)), (T0 + 49 * MS + 500_000, buy(2, 990))]
    script.append((T0 + 50 * MS + 500_000, sell(3, 1010)))
    commands = [(T0 + 50 * MS, lambda a: KillSwitch("CLIENT1", True, "drill"))]
    desk, rec = run(RiskLimits(after_kill="reduce_only"), script, commands=commands, street=street)
    assert outcome(desk, 2) == "accepted" and outcome(desk, 3) == "accepted"
    assert [m.order_id for m in desk.received(OrderCanceled)] == [desk.oid(2)]
    book = desk.exchange.books[SYM]
    assert book.depth() == ([], [(1010, 100)])  # the reduce-only sell rests; buy 2 is gone
    events = rec.tables["risk_events"].frame()
    assert list(events.loc[events["kind"] == "kill_switch", "action"]) == ["mass_cancel", "cancels_acked"]
