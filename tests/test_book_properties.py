"""Property-based tests: OrderBook against a deliberately simple list-based reference model.

A hypothesis state machine fires random submits / cancels / replaces (small price range, random
tifs, post-only, STP modes, owners, garbage values) at both and checks after every call that
the event lists are identical, the depth is identical, the book is never crossed, fills come in
taker/maker pairs at the resting price, and quantities are conserved for every order.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from actors.exchange.book import OrderBook
from actors.messages import (
    CancelRejected,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
)

# ---------------------------------------------------------------------------------------------
# reference model: a plain list of resting orders, scanned and sorted on every call
# ---------------------------------------------------------------------------------------------


class RefOrder:
    def __init__(self, oid, side, price, qty, owner, stp, post_only, seq):
        self.oid, self.side, self.price, self.qty = oid, side, price, qty
        self.owner, self.stp, self.post_only, self.seq = owner, stp, post_only, seq


class RefBook:
    def __init__(self) -> None:
        self.resting: list[RefOrder] = []
        self.ids: list[Any] = []  # every accepted id
        self.seq = 0

    # -- helpers ------------------------------------------------------------------------------
    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _find(self, oid):
        for o in self.resting:
            try:
                if o.oid == oid:
                    return o
            except Exception:
                return None
        return None

    @staticmethod
    def _acceptable(side, limit, px):
        if limit is None:
            return True
        return px <= limit if side == "B" else px >= limit

    def _opposite(self, side, limit):
        """Resting orders of the other side at acceptable prices, in priority order."""
        other = "S" if side == "B" else "B"
        cands = [o for o in self.resting if o.side == other and self._acceptable(side, limit, o.price)]
        if other == "S":
            cands.sort(key=lambda o: (o.price, o.seq))
        else:
            cands.sort(key=lambda o: (-o.price, o.seq))
        return cands

    def _stp_hit(self, owner, stp, o):
        return stp is not None and owner != "" and o.owner == owner

    def _match(self, oid, side, qty, limit, owner, stp, events):
        """Returns (remaining, stopped_by_stp)."""
        for o in self._opposite(side, limit):
            if qty == 0:
                break
            if self._stp_hit(owner, stp, o):
                if stp == "cancel_incoming":
                    return qty, True
                self.resting.remove(o)
                events.append(OrderCanceled(o.oid, o.qty, "stp"))
                continue
            q = min(qty, o.qty)
            qty -= q
            o.qty -= q
            events.append(OrderFilled(oid, o.oid, o.price, q, qty, "taker"))
            events.append(OrderFilled(o.oid, oid, o.price, q, o.qty, "maker"))
            if o.qty == 0:
                self.resting.remove(o)
        return qty, False

    def _fok_ok(self, side, qty, limit, owner, stp):
        avail = 0
        for o in self._opposite(side, limit):
            if self._stp_hit(owner, stp, o):
                if stp == "cancel_incoming":
                    break
                continue
            avail += o.qty
        return avail >= qty

    # -- API ----------------------------------------------------------------------------------
    def submit(self, oid, side, qty, price=None, *, owner="", tif="DAY", post_only=False, stp=None):
        if oid is None:
            return [OrderRejected(oid, "invalid order id")]
        try:
            hash(oid)
        except TypeError:
            return [OrderRejected(oid, "invalid order id")]
        if any(oid == x for x in self.ids):
            return [OrderRejected(oid, "duplicate order id")]
        if side not in ("B", "S") or type(side) is not str:
            return [OrderRejected(oid, "invalid side")]
        if type(qty) is not int or qty <= 0:
            return [OrderRejected(oid, "invalid qty")]
        if price is not None and (type(price) is not int or price <= 0):
            return [OrderRejected(oid, "invalid price")]
        if tif not in ("DAY", "IOC", "FOK"):
            return [OrderRejected(oid, "invalid tif")]
        if stp not in (None, "cancel_resting", "cancel_incoming"):
            return [OrderRejected(oid, "invalid stp")]
        if type(owner) is not str:
            return [OrderRejected(oid, "invalid owner")]
        if type(post_only) is not bool:
            return [OrderRejected(oid, "invalid post_only")]
        if post_only and price is None:
            return [OrderRejected(oid, "post_only requires a limit price")]
        if post_only and tif != "DAY":
            return [OrderRejected(oid, "post_only requires DAY")]
        crosses = bool(self._opposite(side, price))
        if post_only and crosses:
            return [OrderRejected(oid, "post_only would cross")]
        self.ids.append(oid)
        events: list[Any] = [OrderAccepted(oid)]
        reason = "fok" if tif == "FOK" else "market" if price is None else "ioc"
        if tif == "FOK" and not self._fok_ok(side, qty, price, owner, stp):
            events.append(OrderCanceled(oid, qty, "fok"))
            return events
        rem, stopped = self._match(oid, side, qty, price, owner, stp, events)
        if rem:
            if stopped:
                events.append(OrderCanceled(oid, rem, "stp"))
            elif price is None or tif != "DAY":
                events.append(OrderCanceled(oid, rem, reason))
            else:
                self.resting.append(RefOrder(oid, side, price, rem, owner, stp, post_only, self._next_seq()))
        return events

    def cancel(self, oid):
        o = self._find(oid)
        if o is None:
            return [CancelRejected(oid, "unknown order")]
        self.resting.remove(o)
        return [OrderCanceled(oid, o.qty, "canceled")]

    def replace(self, oid, qty=None, price=None):
        o = self._find(oid)
        if o is None:
            return [CancelRejected(oid, "unknown order")]
        if qty is not None and (type(qty) is not int or qty <= 0):
            return [CancelRejected(oid, "invalid qty")]
        if price is not None and (type(price) is not int or price <= 0):
            return [CancelRejected(oid, "invalid price")]
        if qty is None and price is None:
            return [CancelRejected(oid, "nothing to replace")]
        new_q = o.qty if qty is None else qty
        new_px = o.price if price is None else price
        if new_px == o.price:
            if new_q > o.qty:
                o.seq = self._next_seq()
            o.qty = new_q
            return [OrderReplaced(oid, new_px, new_q)]
        crosses = bool(self._opposite(o.side, new_px))
        if crosses and o.post_only:
            return [CancelRejected(oid, "post_only would cross")]
        self.resting.remove(o)
        events: list[Any] = [OrderReplaced(oid, new_px, new_q)]
        rem, stopped = self._match(oid, o.side, new_q, new_px, o.owner, o.stp, events)
        if rem:
            if stopped:
                events.append(OrderCanceled(oid, rem, "stp"))
            else:
                o.qty, o.price, o.seq = rem, new_px, self._next_seq()
                self.resting.append(o)
        return events

    def depth(self):
        agg: dict[tuple[str, int], int] = defaultdict(int)
        for o in self.resting:
            agg[(o.side, o.price)] += o.qty
        bids = sorted(((p, q) for (s, p), q in agg.items() if s == "B"), reverse=True)
        asks = sorted((p, q) for (s, p), q in agg.items() if s == "S")
        return bids, asks


# ---------------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------------

PRICES = st.integers(min_value=95, max_value=105)
BAD_IDS = st.sampled_from([None, [1], {}])
OTHER_IDS = st.one_of(st.integers(min_value=1, max_value=60), st.sampled_from(["a", ("t", 1)]))

VALID = {
    "side": st.sampled_from(["B", "S"]),
    "qty": st.integers(min_value=1, max_value=12),
    "price": st.one_of(PRICES, PRICES, PRICES, PRICES, st.none()),
    "tif": st.sampled_from(["DAY", "DAY", "DAY", "IOC", "FOK"]),
    "stp": st.sampled_from([None, None, "cancel_resting", "cancel_incoming"]),
    "owner": st.sampled_from(["", "alice", "alice", "bob"]),
    "post_only": st.sampled_from([False, False, False, True]),
}
GARBAGE = [None, 0, -1, 1.5, 100.0, True, False, "x", "100", b"B", (), [1]]
INVALID = {
    "side": st.sampled_from(["X", "b", "", None, 1, b"B"]),
    "qty": st.sampled_from(GARBAGE),
    "price": st.sampled_from([g for g in GARBAGE if g is not None]),
    "tif": st.sampled_from(["GTC", None, "day", 1]),
    "stp": st.sampled_from(["x", "", 0, False]),
    "owner": st.sampled_from([None, 7, b"alice"]),
    "post_only": st.sampled_from([0, 1, None, "yes"]),
}
replace_qtys = st.one_of(st.none(), st.integers(min_value=1, max_value=12))
replace_prices = st.one_of(st.none(), PRICES)
replace_garbage = st.sampled_from(GARBAGE)


class BookMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.book = OrderBook("T")
        self.ref = RefBook()
        # per-order bookkeeping derived from the events alone
        self.order_qty: dict[Any, int] = {}  # OrderQty: original qty, adjusted by replaces
        self.cum_filled: dict[Any, int] = defaultdict(int)
        self.canceled: dict[Any, int] = defaultdict(int)
        self.done: set[Any] = set()
        self.pending_qty: dict[Any, int] = {}
        self.next_id = 0

    # -- checks on one call's events ----------------------------------------------------------
    def _check(self, events, expected):
        assert type(events) is list
        assert events == expected
        assert [type(e) for e in events] == [type(e) for e in expected]
        self._check_pairs(events)
        self._account(events)

    def _check_pairs(self, events):
        fills = [(i, e) for i, e in enumerate(events) if isinstance(e, OrderFilled)]
        assert len(fills) % 2 == 0
        for (i, taker), (j, maker) in zip(fills[::2], fills[1::2], strict=True):
            assert j == i + 1, "the maker fill follows its taker fill"
            assert taker.liquidity == "taker" and maker.liquidity == "maker"
            assert taker.counterparty_id == maker.order_id and maker.counterparty_id == taker.order_id
            assert taker.qty == maker.qty > 0
            assert taker.price == maker.price

    def _account(self, events):
        for e in events:
            oid = e.order_id
            if isinstance(e, OrderAccepted):
                self.order_qty[oid] = self.pending_qty[oid]
            elif isinstance(e, OrderFilled):
                self.cum_filled[oid] += e.qty
                # OrderQty = CumQty + LeavesQty
                assert self.order_qty[oid] == self.cum_filled[oid] + e.leaves_qty
                if e.leaves_qty == 0:
                    self.done.add(oid)
            elif isinstance(e, OrderCanceled):
                self.canceled[oid] += e.canceled_qty
                self.done.add(oid)
            elif isinstance(e, OrderReplaced):
                assert e.cum_qty is None or e.cum_qty == self.cum_filled[oid]
                self.order_qty[oid] = self.cum_filled[oid] + e.qty
                if e.qty == 0:  # a total-quantity replace at or below the filled quantity
                    self.done.add(oid)

    # -- rules --------------------------------------------------------------------------------
    def _submit(self, oid, side, qty, price, tif, stp, owner, post_only):
        kw = {"owner": owner, "tif": tif, "post_only": post_only, "stp": stp}
        expected = self.ref.submit(oid, side, qty, price, **kw)
        if isinstance(expected[0], OrderAccepted):
            self.pending_qty[oid] = qty
        # exercise the keyword defaults too (the plain DAY limit fast path)
        if tif == "DAY" and stp is None and owner == "" and post_only is False:
            events = self.book.submit(oid, side, qty, price)
        else:
            events = self.book.submit(oid, side, qty, price, **kw)
        self._check(events, expected)

    def _draw_submit(self, data, bad_field=None):
        kind = data.draw(st.integers(min_value=0, max_value=19))
        if kind == 0:
            oid = data.draw(BAD_IDS)
        elif kind <= 2:  # probably a duplicate (or a fresh small) id
            oid = data.draw(OTHER_IDS)
        else:
            self.next_id += 1
            oid = 1000 + self.next_id
        fields = {k: data.draw(INVALID[k] if k == bad_field else v) for k, v in VALID.items()}
        if bad_field != "price" and fields["price"] is not None and data.draw(st.booleans()):
            # a passive price: builds deeper books with several levels and queues
            passive = st.integers(95, 100) if fields["side"] == "B" else st.integers(100, 105)
            fields["price"] = data.draw(passive)
        self._submit(oid, **fields)

    @rule(data=st.data())
    def submit(self, data):
        self._draw_submit(data)

    @rule(data=st.data())
    def submit_more(self, data):
        self._draw_submit(data)

    @rule(data=st.data())
    def submit_plain_day_limit(self, data):
        self.next_id += 1
        self._submit(
            1000 + self.next_id,
            data.draw(VALID["side"]),
            data.draw(VALID["qty"]),
            data.draw(PRICES),
            "DAY",
            None,
            "",
            False,
        )

    @rule(
        data=st.data(),
        side=VALID["side"],
        qty=VALID["qty"],
        owner=st.sampled_from(["alice", "bob"]),
        stp=st.sampled_from(["cancel_resting", "cancel_incoming"]),
        tif=VALID["tif"],
        aggressive=st.sampled_from([True, True, False]),
    )
    def submit_with_stp(self, data, side, qty, owner, stp, tif, aggressive):
        """Orders likely to meet their own owner's resting orders."""
        if aggressive:
            price = data.draw(st.sampled_from([None, 105 if side == "B" else 95]))
        else:
            price = data.draw(PRICES)
        self.next_id += 1
        self._submit(1000 + self.next_id, side, qty, price, tif, stp, owner, False)

    @rule(data=st.data(), bad_field=st.sampled_from(sorted(VALID)))
    def submit_garbage(self, data, bad_field):
        self._draw_submit(data, bad_field)

    @rule(oid=st.one_of(OTHER_IDS, BAD_IDS))
    def cancel(self, oid):
        self._check(self.book.cancel(oid), self.ref.cancel(oid))

    @rule(data=st.data())
    def cancel_live(self, data):
        if self.ref.resting:
            oid = data.draw(st.sampled_from([o.oid for o in self.ref.resting]))
            self._check(self.book.cancel(oid), self.ref.cancel(oid))

    @rule(oid=st.one_of(OTHER_IDS, BAD_IDS), qty=replace_qtys, price=replace_prices)
    def replace(self, oid, qty, price):
        self._check(self.book.replace(oid, qty=qty, price=price), self.ref.replace(oid, qty=qty, price=price))

    @rule(data=st.data(), qty=replace_qtys, price=replace_prices)
    def replace_live(self, data, qty, price):
        if self.ref.resting:
            oid = data.draw(st.sampled_from([o.oid for o in self.ref.resting]))
            self._check(self.book.replace(oid, qty=qty, price=price), self.ref.replace(oid, qty=qty, price=price))

    @rule(
        data=st.data(), qty=st.one_of(replace_qtys, replace_garbage), price=st.one_of(replace_prices, replace_garbage)
    )
    def replace_live_garbage(self, data, qty, price):
        if self.ref.resting:
            oid = data.draw(st.sampled_from([o.oid for o in self.ref.resting]))
            self._check(self.book.replace(oid, qty=qty, price=price), self.ref.replace(oid, qty=qty, price=price))

    @rule(data=st.data(), total=st.integers(min_value=1, max_value=20), price=replace_prices)
    def replace_total_live(self, data, total, price):
        """FIX-style replace to a new total OrderQty: leaves = total - filled (0 or less: done)."""
        if self.ref.resting:
            oid = data.draw(st.sampled_from([o.oid for o in self.ref.resting]))
            cum = self.cum_filled[oid]
            if total <= cum:
                old = self.ref._find(oid)
                expected: list[Any] = [OrderReplaced(oid, old.price if price is None else price, 0, cum)]
                self.ref.cancel(oid)  # the reference drops it: nothing rests
            else:
                expected = [
                    OrderReplaced(e.order_id, e.price, e.qty, cum) if isinstance(e, OrderReplaced) else e
                    for e in self.ref.replace(oid, qty=total - cum, price=price)
                ]
            self._check(self.book.replace(oid, total_qty=total, price=price), expected)

    # -- invariants after every step ----------------------------------------------------------
    @invariant()
    def same_depth_and_not_crossed(self):
        bids, asks = self.book.depth()
        assert (bids, asks) == self.ref.depth()
        bb, ba = self.book.best_bid(), self.book.best_ask()
        assert bb == (bids[0] if bids else None)
        assert ba == (asks[0] if asks else None)
        if bb and ba:
            assert bb[0] < ba[0], "book crossed"
        assert self.book.depth(2) == (bids[:2], asks[:2])
        assert all(q > 0 for _, q in bids + asks)

    @invariant()
    def quantity_conservation(self):
        live = {}
        for o in self.ref.resting:
            info = self.book.open_order(o.oid)
            assert info == (o.side, o.price, o.qty, o.owner)
            assert self.book.filled_qty(o.oid) == self.cum_filled[o.oid]
            live[o.oid] = o.qty
        assert len(self.book) == len(live)
        for oid, total in self.order_qty.items():
            resting = live.get(oid, 0)
            # submitted (after replaces) = filled + canceled + resting
            assert total == self.cum_filled[oid] + self.canceled[oid] + resting
            assert (oid in self.done) == (oid not in live)


TestBookMachine = BookMachine.TestCase
TestBookMachine.settings = settings(
    max_examples=400,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.slow
def test_book_machine_long():
    """Longer run (marked slow): more and longer random sequences."""
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        BookMachine,
        settings=settings(
            # 1500 until 2026-12-06, 1000 until 2026-12-07 (131 s of a 914 s two-worker CI run; the
            # default-length machine above runs another 400 shorter sequences every time)
            max_examples=600,
            stateful_step_count=120,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
