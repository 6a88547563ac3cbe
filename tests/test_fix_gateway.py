"""fix.gateway.GatewayCore against the real matching engine, with real quickfix Messages.

A small harness plays the exchange: the commands the core emits are applied to an
``actors.exchange.book.OrderBook`` and the returned events fed back into ``on_book_event``
(immediately, or queued and pumped later to model latency). Every message the core emits is
validated against FIX44.xml.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
import quickfix as fix
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from actors.exchange.book import OrderBook
from actors.messages import CancelOrder, ReplaceOrder, SubmitOrder
from fix.codec import Codec, MarketDataReq
from fix.gateway import GatewayCore

CODEC = Codec(0.01)


class Harness:
    def __init__(self, *, sync: bool = True, cancel_on_disconnect: bool = True, symbols=("XYZ",)) -> None:
        self.codec = CODEC
        self.book = OrderBook("XYZ")
        self.sync = sync
        self.queue: list[Any] = []
        self.out: list[tuple[str, Any]] = []
        self.drops: list[tuple[str, Any]] = []
        self.commands: list[Any] = []
        self.md_requests: list[tuple[str, MarketDataReq]] = []
        self._n = 0
        self.seq: dict[str, int] = defaultdict(int)
        self.core = GatewayCore(
            self.codec,
            new_order_id=self._new_id,
            send_app=lambda k, m: self.out.append((k, m)),
            send_command=self._command,
            drop_copy=lambda k, m: self.drops.append((k, m)),
            on_md_request=lambda k, r: self.md_requests.append((k, r)),
            symbols=symbols,
            cancel_on_disconnect=cancel_on_disconnect,
        )

    def _new_id(self) -> int:
        self._n += 1
        return (7 << 32) | self._n

    def _command(self, cmd: Any) -> None:
        self.commands.append(cmd)
        if self.sync:
            self._apply(cmd)
        else:
            self.queue.append(cmd)

    def _apply(self, cmd: Any) -> None:
        if isinstance(cmd, SubmitOrder):
            events = self.book.submit(
                cmd.order_id, cmd.side, cmd.qty, cmd.price, tif=cmd.tif, post_only=cmd.post_only, stp=cmd.stp
            )
        elif isinstance(cmd, CancelOrder):
            events = self.book.cancel(cmd.order_id)
        elif isinstance(cmd, ReplaceOrder):
            events = self.book.replace(cmd.order_id, qty=cmd.qty, price=cmd.price, total_qty=cmd.total_qty)
        else:  # pragma: no cover
            raise AssertionError(cmd)
        for ev in events:
            self.core.on_book_event(ev, 1_000)

    def pump(self, n: int | None = None) -> None:
        """Let the exchange process ``n`` queued commands (all when None)."""
        while self.queue and (n is None or n > 0):
            self._apply(self.queue.pop(0))
            if n is not None:
                n -= 1

    # -- client side ----------------------------------------------------------------------------
    def send(self, session: str, msg: Any) -> list[Any]:
        """Deliver ``msg`` from ``session`` (as a FIX session would: wire round trip with
        validation), return the messages emitted to that session by this call."""
        self.seq[session] += 1
        h = msg.getHeader()
        h.setField(49, session)
        h.setField(56, "DESKSIM")
        h.setField(34, str(self.seq[session]))
        h.setField(52, "20260101-09:30:00.000")
        decoded = self.codec.decode(self.codec.encode(msg))
        start = len(self.out)
        self.core.on_app(session, decoded, 1_000)
        assert not self.core.errors, self.core.errors
        return [m for k, m in self.out[start:] if k == session]

    def nos(self, session, cl, side, qty, price=None, tif="DAY", ord_type=None, post_only=False):
        ord_type = ord_type or ("LIMIT" if price is not None else "MARKET")
        return self.send(session, self.codec.new_order_single(cl, "XYZ", side, qty, ord_type, price, tif, post_only))

    def cancel(self, session, cl, orig, side):
        return self.send(session, self.codec.order_cancel_request(cl, orig, "XYZ", side))

    def replace(self, session, cl, orig, side, qty, price):
        return self.send(session, self.codec.order_cancel_replace_request(cl, orig, "XYZ", side, qty, "LIMIT", price))

    def msgs(self, session: str) -> list[Any]:
        return [m for k, m in self.out if k == session]


def f(msg: Any, tag: int) -> Any:
    if tag == 35:
        return msg.getHeader().getField(35)  # type: ignore[no-any-return]
    return msg.getField(tag) if msg.isSetField(tag) else None


def ers(msgs: list[Any]) -> list[Any]:
    return [m for m in msgs if f(m, 35) == "8"]


def summary(msg: Any) -> tuple:
    """(35, ExecType, OrdStatus, ClOrdID, OrderQty, CumQty, LeavesQty, LastQty, LastPx, AvgPx)."""
    return tuple(f(msg, t) for t in (35, 150, 39, 11, 38, 14, 151, 32, 31, 6))


def assert_all_valid(h: Harness) -> None:
    for _, msg in h.out + h.drops:
        h.codec.validate_body(msg)


# =============================================================================================
# state matrix cases
# =============================================================================================


def test_new_partial_fill_full_fill_and_drop_copies() -> None:
    h = Harness()
    (ack,) = h.nos("C1", "s1", "S", 100, 1001)
    assert summary(ack) == ("8", "0", "0", "s1", "100", "0", "100", None, None, "0")
    assert f(ack, 37) == str((7 << 32) | 1) and f(ack, 44) == "10.01" and f(ack, 40) == "2" and f(ack, 59) == "0"

    out = h.nos("C2", "b1", "B", 30, 1002)  # crosses: fills at the resting 10.01
    assert [summary(m) for m in out] == [
        ("8", "0", "0", "b1", "30", "0", "30", None, None, "0"),
        ("8", "F", "2", "b1", "30", "30", "0", "30", "10.01", "10.01"),
    ]
    assert f(out[1], 851) == "2"  # taker removed liquidity
    (maker_fill,) = ers(h.msgs("C1"))[1:]
    assert summary(maker_fill) == ("8", "F", "1", "s1", "100", "30", "70", "30", "10.01", "10.01")
    assert f(maker_fill, 851) == "1"

    out = h.nos("C2", "b2", "B", 70, 1001)
    assert summary(out[-1]) == ("8", "F", "2", "b2", "70", "70", "0", "70", "10.01", "10.01")
    assert summary(ers(h.msgs("C1"))[-1]) == ("8", "F", "2", "s1", "100", "100", "0", "70", "10.01", "10.01")

    # one drop copy per ExecutionReport, same content, distinct objects
    all_ers = [(k, m) for k, m in h.out if f(m, 35) == "8"]
    assert len(h.drops) == len(all_ers)
    by_exec_id = sorted(all_ers, key=lambda x: f(x[1], 17))  # type: ignore[arg-type, return-value]
    drops = sorted(h.drops, key=lambda x: f(x[1], 17))  # type: ignore[arg-type, return-value]
    for (k1, a), (k2, b) in zip(by_exec_id, drops, strict=True):
        assert k1 == k2 and a.toString() == b.toString() and a is not b
    # ExecIDs unique
    assert len({f(m, 17) for _, m in all_ers}) == len(all_ers)
    assert_all_valid(h)


def test_avg_px_is_volume_weighted() -> None:
    h = Harness()
    h.nos("C1", "a1", "S", 10, 1001)
    h.nos("C1", "a2", "S", 20, 1002)
    out = h.nos("C2", "b", "B", 25, 1005)
    last = out[-1]
    assert summary(last) == ("8", "F", "2", "b", "25", "25", "0", "15", "10.02", f(last, 6))
    assert Decimal(f(last, 6)) == (Decimal("10.01") * 10 + Decimal("10.02") * 15) / 25
    assert_all_valid(h)


def test_cancel_keeps_cumqty() -> None:
    h = Harness()
    h.nos("C1", "s1", "S", 100, 1001)
    h.nos("C2", "b1", "B", 40, 1001)
    (ack,) = h.cancel("C1", "s1c", "s1", "S")
    assert summary(ack) == ("8", "4", "4", "s1c", "100", "40", "0", None, None, "10.01")
    assert f(ack, 41) == "s1"
    assert h.book.best_ask() is None
    assert h.core.live_orders("C1") == []
    assert_all_valid(h)


def test_replace_size_down_keeps_priority_and_fills() -> None:
    h = Harness()
    h.nos("C1", "s1", "S", 100, 1001)
    h.nos("C3", "s2", "S", 50, 1001)  # behind s1 at the same price
    h.nos("C2", "b1", "B", 30, 1001)  # s1: cum 30, leaves 70
    (rep,) = h.replace("C1", "s1r", "s1", "S", 60, 1001)  # total 60 -> open 30, keeps priority
    assert summary(rep) == ("8", "5", "1", "s1r", "60", "30", "30", None, None, "10.01")
    assert f(rep, 41) == "s1"
    h.nos("C2", "b2", "B", 10, 1001)
    assert summary(ers(h.msgs("C1"))[-1]) == ("8", "F", "1", "s1r", "60", "40", "20", "10", "10.01", "10.01")
    assert len(ers(h.msgs("C3"))) == 1  # s2 still untouched: s1 kept its place
    assert_all_valid(h)


def test_replace_price_change_loses_priority() -> None:
    h = Harness()
    h.nos("C1", "s1", "S", 10, 1001)
    h.nos("C3", "s2", "S", 10, 1002)
    (rep,) = h.replace("C1", "s1r", "s1", "S", 10, 1002)  # now behind s2 at 10.02
    assert summary(rep) == ("8", "5", "0", "s1r", "10", "0", "10", None, None, "0")
    assert f(rep, 44) == "10.02"
    h.nos("C2", "b", "B", 10, 1002)
    assert summary(ers(h.msgs("C3"))[-1])[:3] == ("8", "F", "2")
    assert summary(ers(h.msgs("C1"))[-1])[:3] == ("8", "5", "0")
    assert_all_valid(h)


def test_replace_to_crossing_price_trades() -> None:
    h = Harness()
    h.nos("C2", "b", "B", 5, 1000)
    h.nos("C1", "s", "S", 10, 1003)
    out = h.replace("C1", "sr", "s", "S", 10, 1000)
    assert [summary(m)[:7] for m in out] == [
        ("8", "5", "0", "sr", "10", "0", "10"),
        ("8", "F", "1", "sr", "10", "5", "5"),
    ]
    assert_all_valid(h)


@pytest.mark.parametrize("qty", [40, 25])
def test_replace_qty_not_above_cumqty_ends_the_order(qty: int) -> None:
    """FIX 4.4 App. D: a replace to OrderQty <= CumQty is accepted as canceling the balance:
    ExecType 5, OrdStatus Filled, OrderQty amended to CumQty, LeavesQty 0; nothing rests."""
    h = Harness()
    h.nos("C1", "s1", "S", 100, 1001)
    h.nos("C2", "b1", "B", 40, 1001)
    (rep,) = h.replace("C1", "s1r", "s1", "S", qty, 1001)
    assert summary(rep) == ("8", "5", "2", "s1r", "40", "40", "0", None, None, "10.01")
    assert f(rep, 41) == "s1"
    assert h.core.live_orders("C1") == [] and h.book.best_ask() is None
    (rej,) = h.replace("C1", "s1r2", "s1r", "S", 80, 1001)  # done: too late
    assert (f(rej, 35), f(rej, 39), f(rej, 102)) == ("9", "2", "0")
    assert_all_valid(h)


def test_reject_by_book_post_only_would_cross() -> None:
    h = Harness()
    h.nos("C1", "s1", "S", 10, 1001)
    out = h.nos("C2", "b1", "B", 10, 1001, post_only=True)
    assert [summary(m)[:7] for m in out] == [("8", "8", "8", "b1", "10", "0", "0")]
    assert f(out[0], 58) == "post_only would cross" and f(out[0], 103) == "99"
    assert f(out[0], 18) == "6"
    assert_all_valid(h)


def test_post_only_rests() -> None:
    h = Harness()
    (ack,) = h.nos("C2", "b1", "B", 10, 1000, post_only=True)
    assert summary(ack)[:3] == ("8", "0", "0")
    assert h.book.best_bid() == (1000, 10)


def test_ioc_remainder_canceled() -> None:
    h = Harness()
    h.nos("C1", "s1", "S", 10, 1001)
    out = h.nos("C2", "b1", "B", 25, 1002, tif="IOC")
    assert [summary(m)[:8] for m in out] == [
        ("8", "0", "0", "b1", "25", "0", "25", None),
        ("8", "F", "1", "b1", "25", "10", "15", "10"),
        ("8", "4", "4", "b1", "25", "10", "0", None),
    ]
    assert f(out[-1], 58) == "ioc" and f(out[-1], 59) == "3"
    assert h.book.best_bid() is None
    assert_all_valid(h)


def test_fok_killed_and_filled() -> None:
    h = Harness()
    h.nos("C1", "s1", "S", 10, 1001)
    out = h.nos("C2", "b1", "B", 25, 1002, tif="FOK")
    assert [summary(m)[:7] for m in out] == [
        ("8", "0", "0", "b1", "25", "0", "25"),
        ("8", "4", "4", "b1", "25", "0", "0"),
    ]
    assert h.book.best_ask() == (1001, 10)
    out = h.nos("C2", "b2", "B", 10, 1001, tif="FOK")
    assert summary(out[-1])[:7] == ("8", "F", "2", "b2", "10", "10", "0")
    assert_all_valid(h)


def test_market_order_on_empty_book_is_canceled() -> None:
    h = Harness()
    out = h.nos("C2", "m1", "B", 5)
    assert [summary(m)[:7] for m in out] == [("8", "0", "0", "m1", "5", "0", "5"), ("8", "4", "4", "m1", "5", "0", "0")]
    assert f(out[0], 40) == "1" and f(out[0], 44) is None
    assert_all_valid(h)


def test_duplicate_clordid_live_and_past() -> None:
    h = Harness()
    h.nos("C1", "s1", "S", 10, 1001)
    (dup,) = h.nos("C1", "s1", "S", 5, 1001)
    assert summary(dup)[:4] == ("8", "8", "8", "s1") and f(dup, 103) == "6" and f(dup, 37) == "NONE"
    assert h.book.best_ask() == (1001, 10)  # the live order is untouched
    h.cancel("C1", "s1c", "s1", "S")
    (dup2,) = h.nos("C1", "s1", "S", 5, 1001)  # past (canceled) order
    assert f(dup2, 103) == "6"
    (dup3,) = h.nos("C1", "s1c", "S", 5, 1001)  # the cancel request's ClOrdID is used too
    assert f(dup3, 103) == "6"
    # another session may use the same ClOrdID
    (ack,) = h.nos("C2", "s1", "S", 5, 1001)
    assert summary(ack)[:3] == ("8", "0", "0")
    assert_all_valid(h)


def test_duplicate_with_possresend_is_ignored() -> None:
    h = Harness()
    h.nos("C1", "s1", "S", 10, 1001)
    msg = h.codec.new_order_single("s1", "XYZ", "S", 10, "LIMIT", 1001)
    msg.getHeader().setField(97, "Y")
    msg.getHeader().setField(122, "20260101-09:29:00.000")
    assert h.send("C1", msg) == []
    assert h.book.best_ask() == (1001, 10)


def test_cancel_reject_unknown_filled_pending_duplicate() -> None:
    h = Harness()
    (rej,) = h.cancel("C1", "x1", "nope", "B")
    assert (f(rej, 35), f(rej, 434), f(rej, 102), f(rej, 39), f(rej, 37)) == ("9", "1", "1", "8", "NONE")
    (rej,) = h.replace("C1", "x2", "nope", "B", 10, 1000)
    assert (f(rej, 35), f(rej, 434), f(rej, 102)) == ("9", "2", "1")

    h.nos("C1", "s1", "S", 10, 1001)
    h.nos("C2", "b1", "B", 10, 1001)
    (rej,) = h.cancel("C1", "s1c", "s1", "S")  # filled
    assert (f(rej, 35), f(rej, 434), f(rej, 102), f(rej, 39)) == ("9", "1", "0", "2")
    (rej,) = h.replace("C1", "s1r", "s1", "S", 20, 1001)
    assert (f(rej, 35), f(rej, 434), f(rej, 102), f(rej, 39)) == ("9", "2", "0", "2")
    (rej,) = h.cancel("C1", "s1c", "s1", "S")  # reused ClOrdID
    assert (f(rej, 35), f(rej, 102)) == ("9", "6")
    # another session cannot touch C1's orders
    h.nos("C1", "s2", "S", 10, 1005)
    (rej,) = h.cancel("C2", "z", "s2", "S")
    assert (f(rej, 35), f(rej, 102)) == ("9", "1")
    assert h.book.best_ask() == (1005, 10)
    assert_all_valid(h)


def test_cancel_while_pending_and_race_with_fill() -> None:
    h = Harness(sync=False)
    h.nos("C1", "s1", "S", 10, 1001)
    h.pump()
    assert h.cancel("C1", "c1", "s1", "S") == []
    (rej,) = h.cancel("C1", "c2", "s1", "S")  # second request while the first is outstanding
    assert (f(rej, 35), f(rej, 102)) == ("9", "3")
    h.pump()
    assert summary(h.msgs("C1")[-1])[:4] == ("8", "4", "4", "c1")

    # a cancel that loses the race with a fill -> 9 too late
    h.nos("C1", "s2", "S", 10, 1001)
    h.pump()
    h.nos("C2", "b", "B", 10, 1001)  # queued: fills s2 first
    h.cancel("C1", "c3", "s2", "S")
    h.pump()
    last = h.msgs("C1")[-2:]
    assert summary(last[0])[:3] == ("8", "F", "2")
    assert (f(last[1], 35), f(last[1], 102), f(last[1], 39), f(last[1], 11)) == ("9", "0", "2", "c3")
    assert_all_valid(h)


def test_status_request() -> None:
    h = Harness()
    h.nos("C1", "s1", "S", 100, 1001)
    h.nos("C2", "b1", "B", 40, 1001)
    (st_,) = h.send("C1", h.codec.order_status_request("s1", "XYZ", "S"))
    assert summary(st_) == ("8", "I", "1", "s1", "100", "40", "60", None, None, "10.01")
    (unk,) = h.send("C1", h.codec.order_status_request("zz", "XYZ", "S"))
    assert summary(unk)[:3] == ("8", "I", "8")
    assert_all_valid(h)


def test_mass_cancel() -> None:
    h = Harness()
    h.nos("C1", "s1", "S", 10, 1005)
    h.nos("C1", "s2", "S", 10, 1006)
    h.nos("C1", "b1", "B", 10, 1000)
    h.nos("C2", "o1", "S", 10, 1007)
    h.nos("C2", "x", "B", 4, 1005)  # s1 partially filled
    out = h.send("C1", h.codec.order_mass_cancel_request("m1"))
    assert f(out[0], 35) == "r"
    assert (f(out[0], 531), f(out[0], 533), f(out[0], 11)) == ("7", "3", "m1")
    cancels = [summary(m) for m in out[1:]]
    assert [c[:4] for c in cancels] == [("8", "4", "4", "s1"), ("8", "4", "4", "s2"), ("8", "4", "4", "b1")]
    assert cancels[0][5] == "4"  # CumQty kept
    assert h.book.depth() == ([], [(1007, 10)])  # C2 untouched
    (rep,) = h.send("C1", h.codec.order_mass_cancel_request("m2"))
    assert (f(rep, 531), f(rep, 533)) == ("7", "0")
    (rej,) = h.send("C1", h.codec.order_mass_cancel_request("m3", "3"))  # by product: unsupported
    assert (f(rej, 35), f(rej, 531)) == ("r", "0")
    assert_all_valid(h)


def test_mass_cancel_by_symbol() -> None:
    h = Harness(symbols=None)
    h.nos("C1", "s1", "S", 10, 1005)
    out = h.send("C1", h.codec.order_mass_cancel_request("m1", "1", "ABC"))
    assert (f(out[0], 531), f(out[0], 533)) == ("1", "0")
    out = h.send("C1", h.codec.order_mass_cancel_request("m2", "1", "XYZ"))
    assert (f(out[0], 531), f(out[0], 533)) == ("1", "1")
    assert_all_valid(h)


def test_unsupported_message_business_reject() -> None:
    h = Harness()
    msg = fix.Message()
    msg.getHeader().setField(8, "FIX.4.4")
    msg.getHeader().setField(35, "AE")  # TradeCaptureReport: valid FIX 4.4, not supported here
    msg.setField(571, "t1")
    msg.setField(570, "N")
    msg.setField(55, "XYZ")
    msg.setField(32, "1")
    msg.setField(31, "1")
    msg.setField(75, "20260101")
    msg.setField(60, "20260101-09:30:00")
    grp = fix.Group(552, 54)
    grp.setField(54, "1")
    grp.setField(37, "x")
    msg.addGroup(grp)
    msg.getHeader().setField(49, "C1")
    msg.getHeader().setField(56, "DESKSIM")
    msg.getHeader().setField(34, "42")
    msg.getHeader().setField(52, "20260101-09:30:00.000")
    h.core.on_app("C1", msg, 0)
    ((key, rej),) = h.out
    assert key == "C1"
    assert (f(rej, 35), f(rej, 372), f(rej, 380), f(rej, 45)) == ("j", "AE", "3", "42")
    assert_all_valid(h)


def test_off_grid_price_and_other_semantic_rejects() -> None:
    h = Harness()
    msg = h.codec.new_order_single("s1", "XYZ", "S", 10, "LIMIT", 1001)
    msg.setField(44, "10.015")
    (rej,) = h.send("C1", msg)
    assert summary(rej)[:4] == ("8", "8", "8", "s1") and "tick" in f(rej, 58)  # type: ignore[operator]
    assert h.book.best_ask() is None and h.commands == []
    (rej,) = h.send("C1", h.codec.new_order_single("s2", "ABC", "S", 10, "LIMIT", 1001))
    assert f(rej, 103) == "1"  # unknown symbol
    (rej,) = h.send("C1", h.codec.new_order_single("s3", "XYZ", "S", 10, "LIMIT", 1001, tif="IOC", post_only=True))
    assert f(rej, 150) == "8"
    msg = h.codec.new_order_single("s4", "XYZ", "S", 10, "LIMIT", 1001)
    msg.setField(59, "1")  # GTC
    (rej,) = h.send("C1", msg)
    assert f(rej, 150) == "8" and f(rej, 103) == "11"
    assert h.commands == []
    # the replace of a live order to an off-grid price -> 9
    h.nos("C1", "s5", "S", 10, 1001)
    g = h.codec.order_cancel_replace_request("s5r", "s5", "XYZ", "S", 10, "LIMIT", 1001)
    g.setField(44, "10.001")
    (rej,) = h.send("C1", g)
    assert (f(rej, 35), f(rej, 434)) == ("9", "2")
    assert_all_valid(h)


def test_garbage_never_escapes_on_app() -> None:
    h = Harness()
    # a message missing everything (as if validation were off)
    for msg_type in ("D", "F", "G", "H", "q", "V", ""):
        msg = fix.Message()
        if msg_type:
            msg.getHeader().setField(35, msg_type)
        h.core.on_app("C9", msg, 0)
    assert h.core.errors == []
    assert all(f(m, 35) in ("j", "9", "8", "r") for _, m in h.out)
    # and a core whose exchange callback explodes still answers
    boom = GatewayCore(CODEC, new_order_id=lambda: 1, send_app=lambda k, m: h.out.append((k, m)), send_command=_explode)
    h.out.clear()
    boom.on_app("C1", CODEC.new_order_single("a", "XYZ", "B", 1, "LIMIT", 100), 0)
    assert boom.errors and f(h.out[-1][1], 35) == "j" and f(h.out[-1][1], 380) == "0"


def _explode(cmd: Any) -> None:
    raise RuntimeError("exchange down")


def test_cancel_on_disconnect() -> None:
    h = Harness()
    h.nos("C1", "s1", "S", 10, 1005)
    h.nos("C1", "b1", "B", 10, 1000)
    h.nos("C2", "o1", "S", 10, 1007)
    h.core.on_disconnect("C1")
    c1 = ers(h.msgs("C1"))[-2:]
    assert [summary(m)[:4] for m in c1] == [("8", "4", "4", "s1"), ("8", "4", "4", "b1")]
    assert h.book.depth() == ([], [(1007, 10)])

    off = Harness(cancel_on_disconnect=False)
    off.nos("C1", "s1", "S", 10, 1005)
    off.core.on_disconnect("C1")
    assert off.book.best_ask() == (1005, 10)
    off.core.set_cancel_on_disconnect("C1", True)
    off.core.on_disconnect("C1")
    assert off.book.best_ask() is None
    assert_all_valid(h)


def test_market_data_subscription() -> None:
    h = Harness()
    out = h.send("C1", h.codec.market_data_request("md1", ["XYZ"], "1", 1, ("0", "1")))
    assert out == [] and h.md_requests[0][0] == "C1" and h.md_requests[0][1].md_req_id == "md1"
    (dup,) = h.send("C1", h.codec.market_data_request("md1", ["XYZ"], "1", 1))
    assert (f(dup, 35), f(dup, 281)) == ("Y", "1")
    (unk,) = h.send("C1", h.codec.market_data_request("md2", ["ABC"], "1", 1))
    assert (f(unk, 35), f(unk, 281)) == ("Y", "0")
    snap = h.core.market_data_snapshot("C1", "XYZ", [(1000, 5), (999, 1)], [(1001, 2)], [(1000, 3)], "md1")
    assert snap.getField(268) == "2"  # depth 1, no trades requested
    h.core.publish_snapshot("C1", "XYZ", [(1000, 5)], [], md_req_id="md1")
    assert f(h.out[-1][1], 35) == "W"
    entries = [*GatewayCore.top_of_book_entries("XYZ", 1000, 5, None, 0), GatewayCore.trade_entry("XYZ", 1000, 2)]
    ((key, x),) = h.core.market_data_incremental("XYZ", entries)
    assert key == "C1" and f(x, 35) == "X" and x.getField(268) == "2"  # trade filtered out
    h.send("C1", h.codec.market_data_request("md1", ["XYZ"], "2", 1))
    assert h.core.market_data_incremental("XYZ", entries) == []
    h.send("C2", h.codec.market_data_request("mdx", ["XYZ"], "1", 0))
    h.core.on_disconnect("C2")
    assert h.core.subscriptions("XYZ") == []
    assert_all_valid(h)


# =============================================================================================
# property: random D/F/G from two sessions with random exchange latency
# =============================================================================================

SESSIONS = ("C1", "C2")
PUMP = st.sampled_from([0, 1, 1, 2, 10])  # commands the exchange processes after an action


class GatewayMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = Harness(sync=False)
        self.n = 0
        self.cls: dict[str, list[tuple[str, str]]] = {s: [] for s in SESSIONS}  # (cl, side)
        self.seen = 0

    def _cl(self) -> str:
        self.n += 1
        return f"K{self.n}"

    @rule(
        s=st.sampled_from(SESSIONS),
        side=st.sampled_from("BS"),
        qty=st.integers(1, 30),
        px=st.one_of(st.none(), *[st.integers(0, 6)] * 5),
        tif=st.sampled_from(["DAY"] * 6 + ["IOC", "FOK"]),
        post_only=st.booleans(),
        pump=PUMP,
    )
    def new_order(self, s, side, qty, px, tif, post_only, pump) -> None:
        cl = self._cl()
        self.cls[s].append((cl, side))
        if px is not None:  # buys 995..1001, sells 999..1005: some crossing, mostly resting
            px = 995 + px if side == "B" else 999 + px
        self.h.nos(s, cl, side, qty, px, tif, post_only=post_only and px is not None and tif == "DAY")
        self.h.pump(pump)

    @rule(s=st.sampled_from(SESSIONS), i=st.integers(0, 50), pump=PUMP)
    def cancel(self, s, i, pump) -> None:
        if self.cls[s]:
            orig, side = self.cls[s][-1 - i % len(self.cls[s])]
            self.h.cancel(s, self._cl(), orig, side)
            self.h.pump(pump)

    @rule(
        s=st.sampled_from(SESSIONS),
        i=st.one_of(st.integers(0, 2), st.integers(0, 50)),
        qty=st.integers(1, 40),
        px=st.integers(995, 1005),
        pump=PUMP,
    )
    def replace(self, s, i, qty, px, pump) -> None:
        if self.cls[s]:
            orig, side = self.cls[s][-1 - i % len(self.cls[s])]
            cl = self._cl()
            self.cls[s].append((cl, side))
            self.h.replace(s, cl, orig, side, qty, px)
            self.h.pump(pump)

    @rule(s=st.sampled_from(SESSIONS), i=st.integers(0, 50))
    def duplicate(self, s, i) -> None:
        if self.cls[s]:
            cl, side = self.cls[s][i % len(self.cls[s])]
            out = self.h.nos(s, cl, side, 5, 1000)
            assert [f(m, 103) for m in out] == ["6"]

    @rule(n=st.integers(1, 4))
    def pump(self, n) -> None:
        self.h.pump(n)

    @rule(s=st.sampled_from(SESSIONS), dice=st.integers(0, 5))
    def mass_cancel_or_disconnect(self, s, dice) -> None:
        if dice == 0:
            self.h.send(s, self.h.codec.order_mass_cancel_request(self._cl()))
        elif dice == 1:
            self.h.core.on_disconnect(s)

    @invariant()
    def reports_are_consistent(self) -> None:
        h = self.h
        new = h.out[self.seen :]
        self.seen = len(h.out)
        for _, m in new:
            h.codec.validate_body(m)
        last: dict[str, Any] = {}
        fills: dict[str, list[tuple[int, Decimal]]] = defaultdict(list)
        for _, m in h.out:
            if f(m, 35) != "8" or f(m, 37) == "NONE" or f(m, 150) == "I":
                continue
            oid = f(m, 37)
            last[oid] = m  # type: ignore[index]
            if f(m, 150) == "F":
                fills[oid].append((int(f(m, 32)), Decimal(f(m, 31))))
        for oid, m in last.items():
            cum, leaves, order_qty = int(f(m, 14)), int(f(m, 151)), int(f(m, 38))
            assert cum == sum(q for q, _ in fills[oid])
            if cum:
                vwap = sum((q * p for q, p in fills[oid]), Decimal(0)) / cum
                assert abs(Decimal(f(m, 6)) - vwap) <= Decimal("1e-8")
            else:
                assert Decimal(f(m, 6)) == 0
            if f(m, 39) in ("0", "1"):
                assert order_qty == cum + leaves, m.toString()
                assert leaves > 0
            else:
                assert leaves == 0
        # the core's view agrees with the reports and, once the exchange caught up, with the book
        for s in SESSIONS:
            for o in h.core.live_orders(s):
                assert o["order_qty"] == o["cum_qty"] + o["leaves_qty"]
                if not h.queue and o["ord_status"] in ("0", "1"):
                    book = h.book.open_order(o["order_id"])
                    assert book is not None and book[2] == o["leaves_qty"] and book[1] == o["price"]
        assert not h.core.errors


TestGatewayMachine = GatewayMachine.TestCase
TestGatewayMachine.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None, suppress_health_check=list(HealthCheck)
)


def test_drain_leaves_book_and_core_in_agreement() -> None:
    """After a burst from two sessions and a full drain, live orders == resting orders."""
    h = Harness(sync=False)
    for i in range(40):
        s = SESSIONS[i % 2]
        h.nos(s, f"o{i}", "BS"[i % 3 % 2], 5 + i % 7, 998 + i % 6)
        if i % 5 == 4:
            h.cancel(s, f"c{i}", f"o{i - 2}", "BS"[(i - 2) % 3 % 2])
    h.pump()
    live = {o["order_id"] for s in SESSIONS for o in h.core.live_orders(s)}
    submitted = {c.order_id for c in h.commands if isinstance(c, SubmitOrder)}
    assert live == {oid for oid in submitted if h.book.open_order(oid) is not None}
    assert len(live) == len(h.book) > 0
    assert_all_valid(h)


@pytest.mark.parametrize("sync", [True, False])
def test_commands_are_native_messages(sync: bool) -> None:
    h = Harness(sync=sync)
    h.nos("C1", "a", "B", 5, 1000, post_only=True)
    h.pump()
    h.replace("C1", "a2", "a", "B", 8, 999)
    h.pump()
    h.cancel("C1", "a3", "a2", "B")
    h.pump()
    oid = (7 << 32) | 1
    assert h.commands == [
        SubmitOrder(oid, "XYZ", "B", 5, 1000, "DAY", True, None),
        ReplaceOrder(oid, "XYZ", None, 999, total_qty=8),  # the total OrderQty: the book sets leaves
        CancelOrder(oid, "XYZ"),
    ]
    assert [f(m, 150) for m in h.msgs("C1")] == ["0", "5", "4"]
