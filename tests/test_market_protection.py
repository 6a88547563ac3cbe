"""Market order protection at the gateway's pre-trade gate (issue 15 item 7), through the real path:
a scripted desk -> OMS -FIX 4.4-> FixGateway (its own PreTradeGate) -> Exchange, the RiskOfficer
on drop copies. Another participant ("street") builds a book of several levels with native
orders; the desk's market order is bounded by its protection price (reference +- the market
collar, touch +- the sweep limit): the level AT the bound fills, the level one tick beyond does
not, the rest is canceled with the reason, and the ExecutionReports keep CumQty + LeavesQty =
OrderQty."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from actors.exchange.exchange import Exchange
from actors.messages import DropCopy, OrderCanceled, OrderFilled, SubmitOrder, SubscribeDropCopy
from actors.risk import GateConfig, RiskLimits, RiskOfficer, parse_execution_report
from fix.gateway_actor import FixGateway
from fix.oms import OMS
from scenarios.schema import RiskModel
from sim.clock import MS
from sim.kernel import Kernel
from sim.network import LinkSpec, Network, NetworkSpec
from sim.record import Recorder
from sim.rng import RandomStreams
from tests.helpers import Scripted
from tests.test_pretrade_gateway import outcome

T0 = 50 * MS
SYM = "XYZ"
LEVELS = range(1000, 1011)  # eleven price levels of 100 shares: 1000 (the reference) .. 1010


class Day:
    """One finished run: the desk (native answers), the recorder, the gateway's ExecutionReports."""

    def __init__(self, desk: Scripted, rec: Recorder, copies: Scripted, exchange: Exchange) -> None:
        self.desk, self.rec, self.exchange = desk, rec, exchange
        self.reports = [parse_execution_report(m.exec_report_raw) for m in copies.received(DropCopy)]
        self.raw = [m.exec_report_raw for m in copies.received(DropCopy)]

    def trades(self) -> list[tuple[int, int]]:
        return [(r[2], r[3]) for r in self.rec.tables["trades"].rows]

    def events(self) -> Any:
        return self.rec.tables["risk_events"].frame()


def run(limits: RiskLimits, street: list[tuple[int, Any]], script: list[tuple[int, Any]]) -> Day:
    rec = Recorder()
    kernel = Kernel(Network(NetworkSpec(LinkSpec(1 * MS))), RandomStreams(1))
    exchange = Exchange("exchange", [SYM], rec, 0, 10**13, reference_price=1000)
    config = GateConfig.of(limits, None, {SYM: 1000}, officer="risk")
    gateway = FixGateway("gateway", rec, symbols=[SYM], clients=["CLIENT1"], risk=config)
    oms = OMS("oms", rec)
    desk = Scripted("desk", script, dst="oms")
    officer = RiskOfficer(
        "risk", rec, config, symbols=[SYM], gateway="gateway", exchange="exchange", desk="desk", accounts=["CLIENT1"]
    )
    other = Scripted("street", street, dst="exchange")
    copies = Scripted("copies", [(1 * MS, lambda a: SubscribeDropCopy("CLIENT1"))], dst="gateway")
    for actor in (exchange, gateway, oms, desk, officer, other, copies):
        kernel.add(actor)
    kernel.run(2_000 * MS)
    return Day(desk, rec, copies, exchange)


def asks(levels: range = LEVELS) -> list[tuple[int, Any]]:
    """The street offers 100 shares at each level."""
    return [(T0 + i * 10_000, _order(i + 1, "S", px)) for i, px in enumerate(levels)]


def bids(levels: range) -> list[tuple[int, Any]]:
    return [(T0 + i * 10_000, _order(i + 1, "B", px)) for i, px in enumerate(levels)]


def _order(n: int, side: str, px: int) -> Any:
    return lambda a: SubmitOrder(a.oid(n), SYM, side, 100, px)


def market(n: int, side: str, qty: int) -> Any:
    return lambda a: SubmitOrder(a.oid(n), SYM, side, qty, None)


def _check_reports(day: Day, qty: int, filled: int, bound: str) -> None:
    """The desk's market order as its client saw it: a market order throughout (OrdType 1, no
    Price, its own DAY TimeInForce), CumQty + LeavesQty = OrderQty on every report, and a final
    cancel of the rest naming the market order protection."""
    mine = [(er, raw) for er, raw in zip(day.reports, day.raw, strict=True) if er is not None]
    assert mine, "no ExecutionReport"
    for er, raw in mine:
        fields = dict(part.split("=", 1) for part in raw.split("\x01") if "=" in part)
        assert fields["40"] == "1" and "44" not in fields and fields.get("59", "0") == "0"
        assert int(fields["38"]) == qty
        if er.exec_type in ("0", "F"):
            assert er.cum_qty + er.leaves_qty == qty
    last = mine[-1][0]
    assert (last.exec_type, last.ord_status, last.cum_qty, last.leaves_qty) == ("4", "4", filled, 0)
    assert last.text == f"market order protection: {qty - filled} unfilled within the protection price {bound} canceled"


def test_a_market_buy_stops_at_the_protection_price() -> None:
    """market_collar_ticks 5 around the reference 1000: the protection price is 1005. A market buy
    of 50,000 takes 1000..1005 (600 shares: the level AT the bound fills), never 1006 (one tick
    beyond: it still rests), and the other 49,400 are canceled with the reason; a
    ``market_protection`` risk event names the order. Without protection the buy sweeps every
    level."""
    lim = RiskLimits(market_collar_ticks=5)
    day = run(lim, asks(), [(T0 + 10 * MS, market(1, "B", 50_000))])
    assert day.trades() == [(px, 100) for px in range(1000, 1006)]
    assert day.exchange.books[SYM].depth()[1] == [(px, 100) for px in range(1006, 1011)]  # asks
    assert sum(m.qty for m in day.desk.received(OrderFilled)) == 600
    (cx,) = day.desk.received(OrderCanceled)
    assert cx.canceled_qty == 49_400
    _check_reports(day, 50_000, 600, "10.05")
    events = day.events()
    rows = events[events["kind"] == "market_protection"]
    assert len(rows) == 1
    row = rows.iloc[0]
    assert (row["actor"], row["action"], row["limit"], row["value"]) == ("CLIENT1", "cancel", 1005.0, 49_400.0)
    assert row["cl_ord_id"] == day.reports[-1].cl_ord_id and row["order_id"] == day.reports[-1].order_id
    unprotected = run(RiskLimits(), asks(), [(T0 + 10 * MS, market(1, "B", 50_000))])
    assert len(unprotected.trades()) == len(LEVELS)  # the whole book


def test_a_market_sell_stops_at_the_protection_price() -> None:
    """The same on the bid side: bids 1000 down to 990, collar 5 ticks -> protection 995: a market
    sell of 50,000 fills 1000..995, the bid at 994 rests, the rest is canceled."""
    lim = RiskLimits(market_collar_ticks=5)
    day = run(lim, bids(range(1000, 989, -1)), [(T0 + 10 * MS, market(1, "S", 50_000))])
    assert day.trades() == [(px, 100) for px in range(1000, 994, -1)]
    assert day.exchange.books[SYM].depth()[0][0] == (994, 100)  # the best bid left
    _check_reports(day, 50_000, 600, "9.95")


def test_the_market_collar_defaults_to_the_ordinary_collar() -> None:
    """No market collar set: collar_pct 0.3 % of 1000 = 3 ticks bounds the market buy at 1003."""
    day = run(RiskLimits(collar_pct=0.3), asks(), [(T0 + 10 * MS, market(1, "B", 1_000))])
    assert day.trades() == [(px, 100) for px in range(1000, 1004)]
    _check_reports(day, 1_000, 400, "10.03")


def test_the_sweep_limit_counts_from_the_touch() -> None:
    """max_sweep_ticks 2 from the best ask: the street's offers start at 1004 (the reference is
    still 1000, the collar 8 ticks: 1008), so the buy may walk to 1006 -- the tighter bound."""
    lim = RiskLimits(market_collar_ticks=8, max_sweep_ticks=2)
    day = run(lim, asks(range(1004, 1011)), [(T0 + 10 * MS, market(1, "B", 1_000))])
    assert day.trades() == [(1004, 100), (1005, 100), (1006, 100)]
    _check_reports(day, 1_000, 300, "10.06")


def test_market_order_notional_is_checked_at_the_protection_price() -> None:
    """A market buy of 100 with protection 1005 is worth 100,500 at worst: a max_order_notional of
    100,500 lets it through, 100,499 refuses it (at the reference, 100,000, it would pass)."""
    at = run(
        RiskLimits(market_collar_ticks=5, max_order_notional=100_500), asks(), [(T0 + 10 * MS, market(1, "B", 100))]
    )
    assert outcome(at.desk, 1) == "accepted" and at.trades() == [(1000, 100)]
    over = RiskLimits(market_collar_ticks=5, max_order_notional=100_499)
    day = run(over, asks(), [(T0 + 10 * MS, market(1, "B", 100))])
    assert outcome(day.desk, 1) == "risk: max order notional 100500 > 100499"
    assert day.trades() == []


@pytest.mark.parametrize("field", ["market_collar_pct", "market_collar_ticks", "max_sweep_ticks"])
def test_protection_limits_are_validated(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        RiskModel.model_validate({"limits": {field: -1}})
    with pytest.raises(ValueError, match=field):
        RiskLimits(**{field: -1})
    assert RiskModel.model_validate({"limits": {field: 0}}).limits.market_protection
