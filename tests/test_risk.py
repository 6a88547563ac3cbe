"""actors.risk: pre-trade gate limits at their boundaries, the kill switch against a runaway
algorithm (real GatewayCore + OrderBook), the officer's drop-copy view, VaR / ES, reconcile()."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from actors.exchange.book import OrderBook
from actors.messages import (
    CancelOrder,
    DropCopy,
    KillSwitch,
    KillSwitchActivated,
    KillSwitchReleased,
    OrderFilled,
    QuoteUpdated,
    ReplaceOrder,
    SubmitOrder,
    SubscribeDropCopy,
    TradePrinted,
)
from actors.risk import (
    RISK_EVENT_COLUMNS,
    Break,
    GateConfig,
    PreTradeGate,
    RiskLimits,
    RiskOfficer,
    fills_from_orders_table,
    historical_var_es,
    minute_returns,
    parametric_var_es,
    positions_from_fills,
    reconcile,
)
from actors.riskstats import var_es
from fix.codec import Codec
from fix.gateway import GatewayCore
from fix.risk_gate import GatewayRisk
from sim.actor import Actor, Wakeup, handles
from sim.clock import MINUTE, MS, SECOND
from sim.kernel import Kernel
from sim.network import LinkSpec, Network, NetworkSpec
from sim.record import Recorder
from sim.rng import RandomStreams

CODEC = Codec(0.01)
A = "DESK"
SYM = "XYZ"


def gate(**kw: Any) -> PreTradeGate:
    return PreTradeGate(RiskLimits(**kw))


def kinds(g: PreTradeGate) -> list[tuple[str, str]]:
    return [(e.kind, e.action) for e in g.events]


# =============================================================================================
# limits exactly at the boundary
# =============================================================================================


def test_limits_are_pydantic_friendly() -> None:
    ta = TypeAdapter(RiskLimits)
    lim = ta.validate_python({"max_order_qty": 100, "collar_pct": 5, "reference": "mid"})
    assert lim.max_order_qty == 100 and lim.reference == "mid"
    with pytest.raises(ValidationError, match="max_order_qtty"):
        ta.validate_python({"max_order_qtty": 1})
    with pytest.raises(ValidationError):
        ta.validate_python({"max_order_qty": 0})
    with pytest.raises(ValidationError):
        ta.validate_python({"reference": "vwap"})


def test_max_order_qty_boundary() -> None:
    g = gate(max_order_qty=100)
    assert g.check(A, SYM, "B", 100, 1000, 0) is None
    reason = g.check(A, SYM, "B", 101, 1000, 0)
    assert reason is not None and "max order qty" in reason
    assert g.events[-1].row()[:6] == (0, A, "max_order_qty", 100.0, 101.0, "reject")


def test_max_order_notional_boundary_one_tick_over() -> None:
    g = gate(max_order_notional=100_000)
    assert g.check(A, SYM, "B", 100, 1000, 0) is None  # 100 x 1000 = 100_000
    assert g.check(A, SYM, "B", 100, 1001, 0) is not None  # one tick over
    assert g.events[-1].kind == "max_order_notional" and g.events[-1].value == 100_100
    # a market order is valued at the reference; without one it is refused
    assert g.check(A, SYM, "B", 100, None, 0) is not None and g.events[-1].kind == "no_reference"
    g.on_reference(SYM, 1000)
    assert g.check(A, SYM, "S", 100, None, 0) is None
    g.on_reference(SYM, 1001)
    assert g.check(A, SYM, "S", 100, None, 0) is not None


@pytest.mark.parametrize("kw", [{"collar_ticks": 10}, {"collar_pct": 1.0}, {"collar_pct": 1.0, "collar_ticks": 50}])
def test_price_collar_boundary(kw: dict[str, Any]) -> None:
    g = gate(**kw)
    assert g.check(A, SYM, "B", 1, 5000, 0) == "risk: no reference price for the collar"  # fails closed
    g.on_reference(SYM, 1000)  # width 10 ticks either way
    for price, ok in ((1010, True), (1011, False), (990, True), (989, False), (1000, True)):
        assert (g.check(A, SYM, "B", 1, price, 0) is None) is ok, price
    assert g.events[-1].kind == "price_collar"
    assert [(e.limit, e.value) for e in g.events] == [(0.0, 0.0), (1010.0, 1011.0), (990.0, 989.0)]
    static = PreTradeGate(RiskLimits(**kw), reference_prices={SYM: 1000})  # before the first trade
    assert [static.check(A, SYM, "B", 1, p, 0) is None for p in (1010, 1011, 990, 989)] == [True, False, True, False]


def test_collar_pct_floors_exactly_and_mid_reference() -> None:
    g = gate(collar_pct=0.55)  # floor(1001 * 0.55 / 100) = floor(5.5055) = 5
    g.on_reference(SYM, 1001)
    assert g.check(A, SYM, "S", 1, 1006, 0) is None
    assert g.check(A, SYM, "S", 1, 1007, 0) is not None
    m = gate(collar_ticks=2, reference="mid")
    m.on_reference(SYM, 900)  # last trade far away; the mid is the reference
    m.on_quote(SYM, 1000, 1003)  # mid = floor(1001.5) = 1001
    assert m.check(A, SYM, "B", 1, 1003, 0) is None
    assert m.check(A, SYM, "B", 1, 1004, 0) is not None


def test_max_long_boundary_counts_position_and_open_orders() -> None:
    g = gate(max_long=100)
    g.on_fill(A, SYM, "B", 60, 1000, 0)
    assert g.check(A, SYM, "B", 41, 1000, 0) is not None  # 60 + 41 = 101
    assert g.events[-1].row()[:6] == (0, A, "max_long", 100.0, 101.0, "reject")
    assert g.check(A, SYM, "B", 40, 1000, 0, session="S1", cl_ord_id="c1") is None  # 100: at the limit
    assert g.ledger.open_qty(A, SYM, "B") == 40  # pending until its execution report
    assert g.check(A, SYM, "B", 1, 1000, 0) is not None  # 60 + 40 open + 1
    assert g.check(A, SYM, "S", 500, 1000, 0) is None  # selling reduces the position: no short limit


def test_max_short_boundary() -> None:
    g = gate(max_short=50)
    g.on_fill(A, SYM, "S", 20, 1000, 0)
    assert g.check(A, SYM, "S", 30, 1000, 0, cl_ord_id="c1") is None  # -50
    assert g.check(A, SYM, "S", 1, 1000, 0) is not None  # -51
    assert g.events[-1].kind == "max_short" and g.events[-1].value == 51


def test_gross_notional_boundary() -> None:
    g = gate(max_gross_notional=100_000)
    g.on_fill(A, SYM, "B", 50, 1000, 0)  # 50 x 1000 = 50_000
    assert g.check(A, SYM, "S", 50, 1001, 0) is not None  # 50_000 + 50_050
    assert g.events[-1].kind == "gross_notional" and g.events[-1].value == 100_050
    assert g.check(A, SYM, "S", 50, 1000, 0, cl_ord_id="c1") is None  # exactly 100_000
    assert g.ledger.gross(A) == 100_000
    assert g.check(A, "ABC", "B", 1, 1, 0) is not None  # credit is account-wide, across symbols


def test_daily_loss_boundary_and_kill() -> None:
    g = gate(max_daily_loss=10, kill_on_loss=False)
    g.on_fill(A, SYM, "B", 1, 1000, 0)
    g.on_mark(SYM, 990, 1)  # loss 10: at the limit
    assert g.ledger.pnl(A) == -10
    assert g.check(A, SYM, "S", 1, 990, 1) is None
    g.on_mark(SYM, 989, 2)  # loss 11
    assert g.check(A, SYM, "S", 1, 989, 2) is not None
    assert g.events[-1].row()[:6] == (2, A, "daily_loss", 10.0, 11.0, "reject")
    assert not g.blocked

    k = gate(max_daily_loss=10)  # kill_on_loss by default
    k.on_fill(A, SYM, "B", 1, 1000, 0)
    k.on_mark(SYM, 990, 1)
    assert not k.is_blocked(A) and k.take_kills() == []
    k.on_mark(SYM, 989, 2)
    assert k.is_blocked(A)
    assert k.take_kills() == [(A, "daily loss 11 > 10", 2)]
    assert ("daily_loss", "kill") in kinds(k)
    assert "kill switch" in (k.check(A, SYM, "S", 1, 989, 3) or "")


def test_position_kill_trigger_on_fills_beyond_the_limit() -> None:
    g = gate(max_long=100)
    g.on_fill(A, SYM, "B", 100, 1000, 0)  # at the limit: fine
    assert not g.is_blocked(A)
    g.on_fill(A, SYM, "B", 1, 1000, 1)  # e.g. an order that did not pass this gate
    assert g.is_blocked(A) and g.take_kills()[0][0] == A
    assert g.events[-1].row()[:6] == (1, A, "position_long", 100.0, 101.0, "kill")


def test_message_throttle_sliding_window_boundary() -> None:
    g = gate(max_messages=3, message_window_ms=1000)
    for t in (0, 1, 2):
        assert g.check(A, SYM, "B", 1, 1000, t) is None
    assert g.check(A, SYM, "B", 1, 1000, 3) is not None  # 4th within the window
    assert g.events[-1].row()[:6] == (3, A, "message_rate", 3.0, 4.0, "reject")
    assert g.check(A, SYM, "B", 1, 1000, SECOND - 1) is not None  # t=0 still inside
    assert g.check(A, SYM, "B", 1, 1000, SECOND) is None  # t=0 slid out; throttled ones never counted
    assert g.check(A, SYM, "B", 1, 1000, SECOND) is not None
    assert g.check("OTHER", SYM, "B", 1, 1000, SECOND) is None  # per account


def test_order_throttle_counts_new_orders_only() -> None:
    g = gate(max_orders=2, order_window_ms=100, max_messages=4, message_window_ms=100)
    for t in (0, 1):
        assert g.check(A, SYM, "B", 1, 1000, t, session="S", cl_ord_id=f"c{t}") is None
    old = g.ledger.find("S", "c0", None)
    assert g.check(A, SYM, "B", 1, 1000, 2) is not None and g.events[-1].kind == "order_rate"
    # replaces are messages, not orders; the throttled order took no message slot (2 so far), so
    # two replaces fit the message limit (4), the third does not
    assert g.check(A, SYM, "B", 2, 1000, 3, replaces=old) is None
    assert g.check(A, SYM, "B", 3, 1000, 4, replaces=old) is None
    assert g.check(A, SYM, "B", 4, 1000, 5, replaces=old) is not None
    assert g.events[-1].row()[:6] == (5, A, "message_rate", 4.0, 5.0, "reject")
    assert g.check(A, SYM, "B", 1, 1000, 100 * MS) is None  # both windows slid past t=0


def test_duplicate_order_window() -> None:
    g = gate(duplicate_window_ms=500)
    t0 = 7 * SECOND
    assert g.check(A, SYM, "B", 100, 1000, t0) is None
    assert g.check(A, SYM, "B", 100, 1000, t0 + 500 * MS - 1) is not None
    assert g.events[-1].row()[:6] == (t0 + 500 * MS - 1, A, "duplicate_order", 500 * MS, 500 * MS - 1, "reject")
    assert g.check(A, SYM, "B", 101, 1000, t0 + 1) is None  # other qty
    assert g.check(A, SYM, "S", 100, 1000, t0 + 1) is None  # other side
    assert g.check(A, SYM, "B", 100, 1001, t0 + 1) is None  # other price
    assert g.check("OTHER", SYM, "B", 100, 1000, t0 + 1) is None  # other account
    assert g.check(A, SYM, "B", 100, 1000, t0 + 500 * MS) is None  # window over
    assert g.check(A, SYM, "B", 100, 1000, t0 + 500 * MS + 1) is not None  # ... and it restarted


def test_limit_lookup_most_specific_first() -> None:
    g = PreTradeGate(
        RiskLimits(max_order_qty=10),
        {"DESK": RiskLimits(max_order_qty=20), "DESK/ABC": RiskLimits(max_order_qty=30), "*/ABC": RiskLimits()},
    )
    assert g.check("OTHER", SYM, "B", 11, 1, 0) is not None
    assert g.check("OTHER", "ABC", "B", 10_000, 1, 0) is None
    assert g.check("DESK", SYM, "B", 20, 1, 0) is None and g.check("DESK", SYM, "B", 21, 1, 0) is not None
    assert g.check("DESK", "ABC", "B", 30, 1, 0) is None and g.check("DESK", "ABC", "B", 31, 1, 0) is not None


def test_kill_switch_command_blocks_until_released() -> None:
    g = gate()
    g.kill(A, "scenario", 5)
    assert g.check(A, SYM, "B", 1, 1000, 6) is not None
    assert g.check("OTHER", SYM, "B", 1, 1000, 6) is None
    g.kill(A, "again", 7)  # idempotent
    assert g.take_kills() == [(A, "scenario", 5)]
    g.unblock(A, 8)
    assert g.check(A, SYM, "B", 1, 1000, 9) is None
    g.kill("", "all", 10)
    assert g.check("OTHER", SYM, "B", 1, 1000, 11) is not None
    g.unblock("", 12)
    assert g.check("OTHER", SYM, "B", 1, 1000, 13) is None


# =============================================================================================
# the gate in the real order path: GatewayCore + OrderBook
# =============================================================================================


class Venue:
    """GatewayCore with ``gate`` as its pretrade hook, in front of a real OrderBook; drop copies
    feed the gate's ledger (what the officer does) unless ``feed`` is False."""

    def __init__(self, g: PreTradeGate, feed: bool = True) -> None:
        self.gate = g
        self.book = OrderBook(SYM)
        self.out: list[tuple[str, Any]] = []
        self.drops: list[tuple[str, str]] = []
        self.commands: list[tuple[int, Any]] = []
        self.now = 0
        self.feed = feed
        self._n = 0
        self._seq: dict[str, int] = {}
        self.core = GatewayCore(
            CODEC,
            new_order_id=self._new_id,
            send_app=lambda k, m: self.out.append((k, m)),
            send_command=self._command,
            drop_copy=self._drop,
            symbols=(SYM,),
            pretrade=g,
        )

    def _new_id(self) -> int:
        self._n += 1
        return (9 << 32) | self._n

    def _drop(self, session: str, msg: Any) -> None:
        raw = msg.toString()
        self.drops.append((session, raw))
        if self.feed:
            self.gate.on_execution_report(session, raw, self.now)

    def _command(self, cmd: Any) -> None:
        self.commands.append((self.now, cmd))
        if isinstance(cmd, SubmitOrder):
            events = self.book.submit(cmd.order_id, cmd.side, cmd.qty, cmd.price, tif=cmd.tif)
        elif isinstance(cmd, CancelOrder):
            events = self.book.cancel(cmd.order_id)
        else:
            assert isinstance(cmd, ReplaceOrder)
            # as the exchange does: a FIX replace carries the new total (OrderQty), the book sets leaves
            events = self.book.replace(cmd.order_id, qty=cmd.qty, price=cmd.price, total_qty=cmd.total_qty)
        for ev in events:
            self.core.on_book_event(ev, self.now)

    def send(self, session: str, msg: Any, now: int) -> list[Any]:
        self.now = now
        seq = self._seq[session] = self._seq.get(session, 0) + 1
        h = msg.getHeader()
        for tag, value in ((49, session), (56, "DESKSIM"), (34, str(seq)), (52, "20260101-09:30:00.000")):
            h.setField(tag, value)
        start = len(self.out)
        self.core.on_app(session, CODEC.decode(CODEC.encode(msg)), now)
        assert not self.core.errors, self.core.errors
        return [m for k, m in self.out[start:] if k == session]

    def nos(self, session: str, cl: str, side: str, qty: int, price: int | None, now: int = 0) -> list[Any]:
        ord_type = "LIMIT" if price is not None else "MARKET"
        return self.send(session, CODEC.new_order_single(cl, SYM, side, qty, ord_type, price), now)

    def mass_cancel_account(self, account: str, reason: str) -> None:
        """What the gateway actor does with MassCancelAccount (the lead wires the real one)."""
        for key in list(self.core._sessions):
            sess = self.core._sessions[key]
            if any((o.account or key) == account or account == "" for o in sess.live.values()):
                self.core._cancel_all(sess, "mass", None, reason)

    def submits_after(self, t: int) -> list[Any]:
        return [c for when, c in self.commands if when > t and isinstance(c, SubmitOrder)]


def f(msg: Any, tag: int) -> str | None:
    if tag == 35:
        return msg.getHeader().getField(35)  # type: ignore[no-any-return]
    return msg.getField(tag) if msg.isSetField(tag) else None


def test_fat_finger_100x_normal_size_is_rejected_on_the_fix_path() -> None:
    g = gate(max_order_qty=1_000)  # normal child orders are ~100 shares
    v = Venue(g)
    (ack,) = v.nos("C1", "n1", "B", 100, 1000)
    assert (f(ack, 150), f(ack, 39)) == ("0", "0")
    (rej,) = v.nos("C1", "ff", "B", 10_000, 1000)
    assert (f(rej, 35), f(rej, 150), f(rej, 39), f(rej, 103)) == ("8", "8", "8", "3")
    assert "max order qty 10000 > 1000" in (f(rej, 58) or "")
    CODEC.validate_body(rej)
    assert [c.qty for _, c in v.commands] == [100]  # the fat finger never reached the book
    assert v.drops[-1][1] == rej.toString()  # drop-copied like every 8
    assert g.events[-1].row()[:6] == (0, "C1", "max_order_qty", 1000.0, 10_000.0, "reject")


def test_replace_through_the_gate_gets_order_cancel_reject_with_text() -> None:
    g = gate(max_order_qty=500, max_long=600)
    v = Venue(g)
    v.nos("C1", "o1", "B", 100, 1000)
    (rej,) = v.send("C1", CODEC.order_cancel_replace_request("r1", "o1", SYM, "B", 501, "LIMIT", 1000), 1)
    assert (f(rej, 35), f(rej, 434), f(rej, 102)) == ("9", "2", "2")
    assert "max order qty" in (f(rej, 58) or "")
    (ok,) = v.send("C1", CODEC.order_cancel_replace_request("r2", "o1", SYM, "B", 500, "LIMIT", 1000), 2)
    assert (f(ok, 35), f(ok, 150)) == ("8", "5")
    assert g.ledger.open_qty("C1", SYM, "B") == 500  # the replaced order, not 100 + 500
    (ack,) = v.nos("C1", "o2", "B", 100, 1000, 3)  # 500 + 100 = 600: at the position limit
    assert f(ack, 150) == "0"
    (rej2,) = v.nos("C1", "o3", "B", 1, 1000, 4)
    assert f(rej2, 150) == "8" and "max long" in (f(rej2, 58) or "")


def test_runaway_algorithm_throttled_then_killed_then_everything_canceled() -> None:
    g = gate(max_orders=5, order_window_ms=1000, kill_throttle_breaches=3, kill_throttle_window_ms=10_000)
    v = Venue(g)
    answers = []
    for i in range(50):  # a broken loop resending a resting buy every millisecond
        answers.append(v.nos("ALGO", f"a{i}", "B", 100, 990 + i % 3, i * MS))
    codes = [(f(m, 150), f(m, 58) or "") for (m,) in answers]
    assert [c for c, _ in codes[:5]] == ["0"] * 5
    assert all(c == "8" and "order rate" in t for c, t in codes[5:8])  # throttle: 3 breaches
    assert all(c == "8" and "kill switch" in t for c, t in codes[8:])  # then the kill switch
    kills = g.take_kills()
    assert len(kills) == 1 and kills[0][0] == "ALGO" and kills[0][2] == 7 * MS
    assert ("runaway_order_rate", "kill") in kinds(g)
    assert v.submits_after(7 * MS) == []  # nothing reached the exchange after the trigger
    assert len(v.core.live_orders("ALGO")) == 5 and g.ledger.open_count("ALGO") == 5

    v.now = 60 * MS
    v.mass_cancel_account("ALGO", "kill switch")  # what MassCancelAccount does at the gateway
    assert v.core.live_orders("ALGO") == [] and len(v.book) == 0
    assert g.ledger.open_count("ALGO") == 0
    cancels = [raw for _, raw in v.drops if "\x01150=4\x01" in raw]
    assert len(cancels) == 5 and all("58=kill switch" in raw for raw in cancels)
    # still blocked: a new order after the mass cancel is refused, and none reaches the book
    (m,) = v.nos("ALGO", "late", "B", 100, 990, 2 * SECOND)
    assert f(m, 150) == "8" and v.submits_after(7 * MS) == []
    g.unblock("ALGO", 3 * SECOND)  # an explicit command re-enables
    (m,) = v.nos("ALGO", "after", "B", 100, 990, 3 * SECOND)
    assert f(m, 150) == "0"


@pytest.mark.parametrize("seed", range(6))
def test_gate_ledger_tracks_the_venue_exactly(seed: int) -> None:
    """Random D / F / G / market / IOC flow through GatewayCore: the ledger built from drop copies
    holds exactly the core's live orders, and its positions and cash reconcile with the book's
    fills (some orders are refused by the gate on the way)."""
    rng = random.Random(seed)
    g = gate(max_order_qty=150, max_long=400, max_short=400)
    v = Venue(g)
    owner: dict[int, tuple[str, str]] = {}
    fills: list[tuple[str, str, str, int, int]] = []
    command = v._command

    def spy(cmd: Any) -> None:
        if isinstance(cmd, SubmitOrder):
            owner[cmd.order_id] = (v.core._orders[cmd.order_id].session, cmd.side)
        command(cmd)

    on_book_event = v.core.on_book_event

    def tap(ev: Any, now: Any = None) -> None:
        if isinstance(ev, OrderFilled):
            session, side = owner[ev.order_id]
            fills.append((session, SYM, side, ev.qty, ev.price))
        on_book_event(ev, now)

    v.core.send_command = spy
    v.core.on_book_event = tap  # type: ignore[method-assign]
    for n in range(300):
        step = n
        session = rng.choice(("S1", "S2"))
        live = v.core.live_orders(session)
        r = rng.random()
        if live and r < 0.2:
            o = rng.choice(live)
            v.send(session, CODEC.order_cancel_request(f"c{n}", o["cl_ord_id"], SYM, o["side"]), step)
        elif live and r < 0.4:
            o = rng.choice(live)
            qty = o["cum_qty"] + rng.randint(1, 120)
            px = 1000 + rng.randint(-3, 3)
            v.send(
                session,
                CODEC.order_cancel_replace_request(f"r{n}", o["cl_ord_id"], SYM, o["side"], qty, "LIMIT", px),
                step,
            )
        else:
            side = rng.choice("BS")
            qty = rng.randint(1, 200)
            if r > 0.95:
                v.send(session, CODEC.new_order_single(f"n{n}", SYM, side, qty, "MARKET", None), step)
            else:
                tif = "IOC" if r > 0.9 else "DAY"
                px = 1000 + rng.randint(-3, 3)
                v.send(session, CODEC.new_order_single(f"n{n}", SYM, side, qty, "LIMIT", px, tif), step)
    assert fills and g.rejected > 0
    for session in ("S1", "S2"):
        truth = {str(o["order_id"]): (o["side"], o["leaves_qty"], o["price"]) for o in v.core.live_orders(session)}
        mine = {k: (o.side, o.leaves_qty, o.px) for k, o in g.ledger.orders.items() if o.account == session}
        assert mine == truth
        for side in "BS":
            assert g.ledger.open_qty(session, SYM, side) == sum(q for s_, q, _ in truth.values() if s_ == side)
    assert not g.ledger.pending
    assert reconcile(positions_from_fills(fills), fills, g.ledger.snapshot()) == []
    for session in ("S1", "S2"):  # the gate kept the potential position inside its limits
        pos = g.ledger.position(session, SYM)
        assert pos - g.ledger.open_qty(session, SYM, "S") >= -400 and pos + g.ledger.open_qty(session, SYM, "B") <= 400


# =============================================================================================
# the officer as an actor: drop copies only, kill switch round trip, P&L
# =============================================================================================


class Frame:
    """A FIX application message from a client actor (test-only transport)."""

    __slots__ = ("raw", "session")

    def __init__(self, session: str, raw: str) -> None:
        self.session, self.raw = session, raw


class MiniGateway(Actor):
    """A stand-in for fix.gateway_actor.FixGateway: GatewayCore + an in-process OrderBook, with its
    own gate (fix.risk_gate.GatewayRisk, built from ``config``); drop copies to SubscribeDropCopy
    subscribers; acts on the officer's KillSwitch messages."""

    def __init__(self, config: GateConfig) -> None:
        super().__init__("gateway", "exchange")
        self.v = Venue(PreTradeGate(), feed=False)
        self.core, self.codec, self.exchange = self.v.core, CODEC, -1
        self.risk = GatewayRisk(self, config)  # the gateway's own gate, in the core's order path
        self.v.gate = self.risk.gate
        self.v.core.drop_copy = self._drop
        self.subs: list[int] = []
        self.frames: dict[str, int] = {}
        self.kill_commands: list[tuple[int, KillSwitch]] = []

    def on_start(self) -> None:
        self.risk.start([])

    def _drop(self, session: str, msg: Any) -> None:
        raw = msg.toString()
        self.v.drops.append((session, raw))
        self.risk.on_outbound(session, msg)
        for dst in self.subs:
            self.send(dst, DropCopy(session, raw, self.now))

    @handles(SubscribeDropCopy)
    def on_sub(self, msg: SubscribeDropCopy, src: int) -> None:
        self.subs.append(src)

    @handles(Frame)
    def on_frame(self, msg: Frame, src: int) -> None:
        self.v.now = self.now
        self.v.core.on_app(msg.session, CODEC.decode(msg.raw), self.now)
        self.risk.after()

    @handles(KillSwitch)
    def on_kill(self, msg: KillSwitch, src: int) -> None:
        self.kill_commands.append((self.now, msg))
        self.v.now = self.now
        self.risk.on_kill_switch(msg)


class Client(Actor):
    """Sends scripted FIX orders ``(t, session, message)``; ``loop`` resends a new order every
    millisecond forever (a runaway algorithm). Keeps what it receives."""

    def __init__(self, name: str, script: list[tuple[int, str, Any]] | None = None, loop: bool = False) -> None:
        super().__init__(name, "desk")
        self.script = list(script or [])
        self.loop = loop
        self.inbox: list[tuple[int, Any]] = []
        self.seq = 0

    def on_start(self) -> None:
        self.gw = self.lookup("gateway")
        for i, (t, _, _) in enumerate(self.script):
            self.wake_at(t, i)
        if self.loop:
            self.wake_at(MS, "loop")

    def _send(self, session: str, msg: Any) -> None:
        self.seq += 1
        h = msg.getHeader()
        for tag, value in ((49, session), (56, "DESKSIM"), (34, str(self.seq)), (52, "20260101-09:30:00.000")):
            h.setField(tag, value)
        self.send(self.gw, Frame(session, CODEC.encode(msg)))

    @handles(Wakeup)
    def on_wake(self, msg: Wakeup, src: int) -> None:
        if msg.tag == "loop":
            n = self.now // MS
            self._send("ALGO", CODEC.new_order_single(f"x{n}", SYM, "B", 100, "LIMIT", 990 + n % 3))
            self.wake_in(MS, "loop")
        else:
            _, session, m = self.script[msg.tag]
            self._send(session, m)

    def unhandled(self, msg: Any, src: int) -> None:
        self.inbox.append((self.now, msg))


def world(
    g: PreTradeGate, *clients: Actor, latency: int = 100_000
) -> tuple[Kernel, RiskOfficer, MiniGateway, Recorder]:
    """The officer and the gateway each build their own gate from ``g``'s limits (nothing shared)."""
    rec = Recorder()
    kernel = Kernel(Network(NetworkSpec(LinkSpec(latency))), RandomStreams(3))
    config = GateConfig.of(g.default, g.overrides, officer="risk")
    gw = MiniGateway(config)
    officer = RiskOfficer("risk", rec, config, symbols=[SYM], gateway="gateway", exchange=None, desk="desk")
    kernel.add(gw)
    kernel.add(officer)
    for c in clients:
        kernel.add(c)
    return kernel, officer, gw, rec


def test_officer_kill_switch_on_runaway_algorithm_end_to_end() -> None:
    g = gate(max_orders=5, order_window_ms=1000, kill_throttle_breaches=3, kill_throttle_window_ms=10_000)
    algo = Client("desk", loop=True)
    kernel, officer, gw, rec = world(g, algo)
    kernel.run(SECOND)
    # the throttle stopped orders 6..8, the third breach pulled the kill switch (at t = 8.1 ms:
    # the 8th order, sent at 8 ms, arrives after 0.1 ms)
    submits = [(t, c) for t, c in gw.v.commands if isinstance(c, SubmitOrder)]
    assert len(submits) == 5
    trigger = 8 * MS + 100_000
    # the gateway's own gate decided and blocked; the officer learned it from the gateway's answer
    assert gw.risk.gate.blocked == {"ALGO": "runaway order rate: 3 throttle breaches"}
    assert officer.gate.blocked == gw.risk.gate.blocked
    # every open order was canceled after the kill; nothing new reached the book
    assert gw.v.core.live_orders("ALGO") == [] and len(gw.v.book) == 0
    assert [c for t, c in gw.v.commands if t > trigger and isinstance(c, SubmitOrder)] == []
    assert len([c for _, c in gw.v.commands if isinstance(c, CancelOrder)]) == 5
    # the desk was told by the officer, with the trigger time, once the gateway answered
    told = [(t, m) for t, m in algo.inbox if isinstance(m, KillSwitchActivated)]
    assert [m for _, m in told] == [KillSwitchActivated("ALGO", "runaway order rate: 3 throttle breaches", trigger)]
    assert told[0][0] == trigger + 2 * 100_000  # gateway -> officer -> desk
    # the gateway carried the kill out at the trigger (its book answered at once): latency 0
    assert officer.kill_latency_ns == {"ALGO": [0]}
    assert officer.summary()["kills"][0]["canceled"] == 5
    df = rec.tables["risk_events"].frame()
    assert tuple(df.columns) == RISK_EVENT_COLUMNS
    got = set(zip(df.kind, df.action, strict=True))
    assert {("order_rate", "reject"), ("runaway_order_rate", "kill"), ("kill_switch", "reject")} <= got
    assert {("kill_switch", "mass_cancel"), ("kill_switch", "cancels_acked")} <= got
    acked = df[df.action == "cancels_acked"].iloc[0]
    assert acked.value == 0 and acked.actor == "ALGO"
    assert officer.ledger.open_count("ALGO") == 0 and officer.errors == []


def test_officer_kill_switch_command_and_release() -> None:
    g = gate()
    orders = [(i * MS, "D1", CODEC.new_order_single(f"o{i}", SYM, "S", 10, "LIMIT", 1010 + i)) for i in range(3)]
    orders.append((50 * MS, "D1", CODEC.new_order_single("blocked", SYM, "S", 10, "LIMIT", 1020)))
    orders.append((90 * MS, "D1", CODEC.new_order_single("again", SYM, "S", 10, "LIMIT", 1020)))
    desk = Client("desk", orders)

    class Ops(Actor):
        def on_start(self) -> None:
            self.wake_at(20 * MS, True)
            self.wake_at(80 * MS, False)

        @handles(Wakeup)
        def go(self, msg: Wakeup, src: int) -> None:
            self.send(self.lookup("risk"), KillSwitch("D1", msg.tag, "scenario"))

    kernel, officer, gw, rec = world(g, desk, Ops("ops"))
    kernel.run(SECOND)
    v = gw.v
    (rej,) = [raw for _, raw in v.drops if "\x0111=blocked\x01" in raw]
    assert "\x01150=8\x01" in rej and "kill switch active" in rej
    assert v.core.order_state("D1", "again")["ord_status"] == "0"  # type: ignore[index]
    assert [o["cl_ord_id"] for o in v.core.live_orders("D1")] == ["again"]
    assert [type(m).__name__ for _, m in desk.inbox] == ["KillSwitchActivated", "KillSwitchReleased"]
    assert desk.inbox[1][1] == KillSwitchReleased("D1", "scenario", 80 * MS + 100_000)
    assert officer.kill_latency_ns == {"D1": [100_000]}  # officer -> gateway, whose book answers at once
    assert [m for _, m in gw.kill_commands] == [
        KillSwitch("D1", True, "scenario", 20 * MS + 100_000),
        KillSwitch("D1", False, "scenario", 80 * MS + 100_000),
    ]
    df = rec.tables["risk_events"].frame()
    assert list(zip(df.kind, df.action, strict=True)) == [
        ("kill_switch_command", "kill"),
        ("kill_switch", "mass_cancel"),
        ("kill_switch", "cancels_acked"),
        ("kill_switch", "reject"),
        ("kill_switch", "unblock"),
    ]


def test_officer_positions_cash_and_pnl_from_drop_copies_equal_hand_computation() -> None:
    g = gate()
    nos = CODEC.new_order_single
    script = [
        (1 * MS, "MM", nos("m1", SYM, "S", 100, "LIMIT", 1001)),
        (2 * MS, "D1", nos("d1", SYM, "B", 30, "LIMIT", 1002)),  # 30 @ 10.01
        (3 * MS, "D1", nos("d2", SYM, "B", 70, "LIMIT", 1001)),  # 70 @ 10.01
        (4 * MS, "MM", nos("m2", SYM, "B", 40, "LIMIT", 999)),
        (5 * MS, "D1", nos("d3", SYM, "S", 50, "LIMIT", 998)),  # 40 @ 9.99, 10 rest at 9.98
        (6 * MS, "MM", nos("m3", SYM, "B", 25, "MARKET", None)),  # 10 @ 9.98, 15 canceled
    ]
    desk = Client("desk", script)
    kernel, officer, gw, _ = world(g, desk)
    kernel.run(SECOND)
    # D1: +30@1001 +70@1001 -40@999 -10@998 ; MM: the other side of each
    d1_cash = -30 * 1001 - 70 * 1001 + 40 * 999 + 10 * 998
    assert officer.position("D1", SYM) == 50 and officer.position("MM", SYM) == -50
    snap = officer.snapshot()
    assert snap["cash"] == {"D1": d1_cash, "MM": -d1_cash}
    mark = 998  # last fill price (no market-data subscription in this world)
    assert officer.pnl("D1") == d1_cash + 50 * mark == -100 * 1001 + 40 * 999 + 60 * 998
    assert officer.pnl("D1") + officer.pnl("MM") == 0
    assert officer.ledger.open_count("D1") == 0 and officer.ledger.open_count("MM") == 0
    # the officer read nothing but drop copies: it subscribed to them and holds no OMS reference
    assert officer.drop_copies == len(gw.v.drops) and gw.subs == [officer.id]
    # a mark from market data moves the P&L (an officer subscribed to the exchange's trades)
    officer.gate.on_mark(SYM, 1010, 2 * SECOND)
    assert officer.pnl("D1") == d1_cash + 50 * 1010


# =============================================================================================
# VaR / ES
# =============================================================================================


def test_historical_var_es_hand_examples() -> None:
    losses = list(range(1, 101))  # 1..100, shuffled order does not matter
    losses = losses[::2] + losses[1::2]
    assert historical_var_es(losses, 0.95) == (96.0, 98.0)  # m = 5: 96..100
    assert historical_var_es(losses, 0.99) == (100.0, 100.0)  # m = 1
    # m = 2.5 (Acerbi-Tasche): (100 + 99 + 0.5 x 98) / 2.5, the same figure Monte Carlo reports
    assert historical_var_es(losses, 0.975) == (98.0, pytest.approx(99.2))
    assert historical_var_es([-5.0, 3.0, -1.0, 10.0], 0.5) == (3.0, 6.5)  # m = 2
    assert all(math.isnan(x) for x in historical_var_es([], 0.99))
    # N(1 - alpha) exactly an integer is not pushed up by float error: 250 x 0.02 = 5
    xs = [float(i) for i in range(250)]
    assert historical_var_es(xs, 0.98)[0] == 245.0


def test_parametric_var_es_hand_example() -> None:
    losses = [-2.0, -1.0, 0.0, 1.0, 2.0]  # mean 0, sd sqrt(2.5)
    var, es = parametric_var_es(losses, 0.95)
    sd = math.sqrt(2.5)
    assert var == pytest.approx(1.6448536269514722 * sd)
    assert es == pytest.approx(sd * 0.10313564037537128 / 0.05)  # phi(1.6449) / 0.05 = 2.0627
    shifted = [x + 10 for x in losses]
    assert parametric_var_es(shifted, 0.95)[0] == pytest.approx(10 + var)
    assert all(math.isnan(x) for x in parametric_var_es([1.0], 0.99))


def test_minute_returns_forward_fill_and_alignment() -> None:
    closes = {"A": [(0, 100), (1, 110), (3, 99)], "B": [(1, 50), (2, 55)]}
    rets = minute_returns(closes, ["A", "B"])
    assert rets == [
        {"A": 0.0, "B": pytest.approx(0.1)},  # minute 2: A carried at 110
        {"A": pytest.approx(-0.1), "B": 0.0},  # minute 3: B carried at 55
    ]


def _var_world(limits: RiskLimits, alpha: float = 0.99) -> tuple[Kernel, RiskOfficer, PreTradeGate, Recorder]:
    rec = Recorder()
    kernel = Kernel(Network(NetworkSpec(LinkSpec(0))), RandomStreams(1))
    officer = RiskOfficer(
        "risk", rec, limits, gateway=None, exchange=None, var_interval_s=600, var_lookback_min=60, var_alpha=alpha
    )
    kernel.add(officer)
    g = officer.gate  # the officer's own view
    g.on_fill("D1", SYM, "B", 100, 1000, 0)
    g.on_fill("D2", SYM, "S", 50, 1000, 0)
    g.on_reference(SYM, 1000)
    return kernel, officer, g, rec


def test_officer_var_uses_mid_prices_not_last_trades() -> None:
    """A market whose mid never moves while trades bounce between bid and ask has no price risk:
    last-trade returns would show the bounce (2 ticks on 1000, a VaR of ~200 on 100 shares)."""
    kernel, officer, _g, _rec = _var_world(RiskLimits())
    step, side = 10 * SECOND, random.Random(3)
    for k in range(6 * 70):  # 70 minutes, a quote and a trade every 10 s at the bid or the ask
        t = k * step
        officer.on_quote(QuoteUpdated(SYM, 999, 100, 1001, 100, t), -1)
        sell = side.random() < 0.5
        officer.on_trade(TradePrinted(SYM, 999 if sell else 1001, 10, "S" if sell else "B", t + 1), -1)
    kernel.advance(70 * MINUTE)
    figs = officer.compute_var()
    assert figs["D1"].n >= 300
    assert figs["D1"].hist_var == 0.0 and figs["D1"].hist_es == 0.0


def test_officer_var_horizon_observations_and_na() -> None:
    """1-minute horizon, overlapping mid returns on a 10 s grid over the last 60 minutes; "n/a"
    (None, no limit check) until there are 300 observations at 99% (3 in the tail)."""
    kernel, officer, g, rec = _var_world(RiskLimits(max_var=1, max_es=1))
    rng = random.Random(5)
    mids2 = [2000]  # bid + ask, one per 10 s slot
    for _ in range(6 * 80):
        mids2.append(mids2[-1] + rng.choice((-2, 0, 0, 2)))
    quotes = [QuoteUpdated(SYM, m2 // 2 - 1, 100, m2 // 2 + 1, 100, k * 10 * SECOND + 5) for k, m2 in enumerate(mids2)]
    for q in quotes[:180]:
        officer.on_quote(q, -1)
    kernel.advance(30 * MINUTE)  # 180 slots seen: 174 one-minute windows < 300
    early = officer.compute_var()["D1"]
    assert early.n == 174 and early.hist_var is None and early.param_var is None
    assert officer.summary()["var"]["D1"]["status"] == "n/a: 174 of 300 observations"
    assert "risk_events" not in rec.tables or rec.tables["risk_events"].frame().empty
    for q in quotes[180:]:
        officer.on_quote(q, -1)
    kernel.advance(80 * MINUTE)
    fig = officer.compute_var()["D1"]
    # by hand: the last 360 complete 10 s slots (0..479), returns over 6 slots
    last = 80 * 6 - 1
    rets = [mids2[i] / mids2[i - 6] - 1 for i in range(6, last + 1)][-360:]
    losses = [-100 * 1000 * r for r in rets]  # exposure at the mark: 100 shares x 1000 ticks
    assert fig.n == 360 and fig.horizon_s == 60
    assert fig.hist_var == pytest.approx(var_es(losses, 0.99)[0])
    assert fig.hist_es == pytest.approx(var_es(losses, 0.99)[1])
    assert fig.hist_var == pytest.approx(sorted(losses, reverse=True)[3])  # ceil(360 x 0.01) = 4th largest
    assert {"var_hist", "es_hist"} <= set(rec.tables["risk_events"].frame().kind)
    assert figs_star_half(officer)
    assert "mid-price returns over 60 s" in officer.summary()["var_method"]
    assert not g.blocked  # kill_on_var is off by default


def figs_star_half(officer: RiskOfficer) -> bool:
    """The desk as a whole, netted: long 100 - short 50 = half of D1's figures."""
    star, d1 = officer.var["*"], officer.var["D1"]
    return star.exposure == {SYM: 50_000} and star.hist_var == pytest.approx(d1.hist_var / 2)


# =============================================================================================
# reconciliation
# =============================================================================================


def test_reconcile_agrees_and_finds_a_planted_break() -> None:
    fills = [("D1", SYM, "B", 100, 1001), ("D1", SYM, "S", 40, 999), {"account": "D2", "symbol": "ABC",
             "side": "S", "qty": 5, "price": 2000}]  # fmt: skip
    risk = {"positions": {"D1": {SYM: 60}, "D2": {"ABC": -5}}, "cash": {"D1": -100 * 1001 + 40 * 999, "D2": 10_000}}
    oms = {"positions": {"D1": {SYM: 60}, "D2": {"ABC": -5, "ZZZ": 0}}, "cash": dict(risk["cash"])}
    assert reconcile(oms, fills, risk) == []
    oms["positions"]["D1"][SYM] = 61  # one share off
    oms["cash"]["D2"] = 10_001  # one cent off
    breaks = reconcile(oms, fills, risk)
    assert breaks == [
        Break("D1", SYM, "position", 61, 60, 60),
        Break("D2", "", "cash", 10_001, 10_000, 10_000),
    ]
    assert str(breaks[0]) == "OMS vs exchange: position break D1/XYZ: oms=61 risk=60 exchange=60"
    assert breaks[0].legs == ["OMS vs exchange"]
    risk["positions"]["D2"]["ABC"] = 0  # the officer missed a fill
    missed = Break("D2", "ABC", "position", -5, 0, -5)
    assert missed in reconcile(oms, fills, risk) and missed.legs == ["officer vs exchange"]
    assert Break("D1", SYM, "position", 61, 59, 60).legs == ["OMS vs exchange", "officer vs exchange"]


def test_fills_from_the_exchange_orders_table() -> None:
    rows = [
        (1, 11, "gateway", "submit", "B", 1001, 100, 100, "DAY"),
        (2, 11, "gateway", "filled", "B", 1001, 30, 70, "taker"),
        (3, 12, "maker", "filled", "S", 1001, 30, 0, "maker"),  # not a FIX order: unknown id
        (4, 13, "gateway", "filled", "S", 999, 5, 0, "maker"),
    ]
    got = fills_from_orders_table(rows, {11: "D1", 13: "D2"}, symbol=SYM)
    assert got == [("D1", SYM, "B", 30, 1001), ("D2", SYM, "S", 5, 999)]
    by_pair = fills_from_orders_table(rows, lambda oid: "D1/ABC" if oid == 11 else None)
    assert by_pair == [("D1", "ABC", "B", 30, 1001)]
