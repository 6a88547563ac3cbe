"""The exchange's straight order path and its timers (issue 17 item 4).

Order handlers run admit -> book -> publish -> safeguard update and never a time-driven
transition; limit-state expiry, the end of a pause or halt and the doubled-band windows run from
timers of their own, at the time they are due, before any order of the same instant.
"""

from __future__ import annotations

from typing import Any

from actors.exchange.exchange import Exchange
from actors.exchange.safeguards import SafeguardParams
from actors.messages import (
    LimitStateEntered,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    ReplaceOrder,
    SubscribeMarketData,
    SubscribeTradingStatus,
    TradePrinted,
    TradingHalted,
    TradingResumed,
)
from sim.actor import Wakeup
from sim.clock import MINUTE, SECOND, US
from sim.kernel import Kernel
from sim.network import LinkSpec, Network, NetworkSpec
from sim.record import Recorder
from sim.rng import RandomStreams
from tests.helpers import Scripted
from tests.test_safeguards import CLOSE, REF, T0, run_market, sub, watcher

TRANSITIONS = ("update_bands", "expire_limit_state", "end_halt")


def test_order_handlers_run_no_time_driven_transition() -> None:
    """A limit state, its pause, the reopening auction and the 9:45 band window, with orders
    arriving after each of them: every transition runs inside a timer (a ``Wakeup``), none inside
    an order handler."""
    calls: list[tuple[str, int, bool]] = []
    in_timer = [False]

    class Spy(Exchange):
        def on_start(self) -> None:
            super().on_start()
            g = self.guards["XYZ"]
            for name in TRANSITIONS:
                real = getattr(g, name)

                def spied(now: int, _real: Any = real, _name: str = name) -> Any:
                    calls.append((_name, now, in_timer[0]))
                    return _real(now)

                setattr(g, name, spied)
            wake = self.dispatch[Wakeup]

            def timer(msg: Wakeup, src: int) -> None:
                in_timer[0] = True
                try:
                    wake(msg, src)
                finally:
                    in_timer[0] = False

            self.dispatch[Wakeup] = timer

    lower = 9_500  # the lower band after 9:45 (reference 10_000, 5 %)
    t1 = 16 * MINUTE
    pause_t = t1 + US + 15 * SECOND
    reopen_t = pause_t + 5 * MINUTE
    flow = Scripted(
        "flow",
        [
            (MINUTE, sub(1, "B", 100, 9_400)),
            (15 * MINUTE + SECOND, lambda a: ReplaceOrder(a.oid(1), "XYZ", price=9_401)),  # after the band window
            (t1, sub(2, "S", 100, lower)),  # the offer at the lower band: limit state
            (pause_t + SECOND, sub(3, "B", 50, 9_450)),  # kept for the auction
            (pause_t + 2 * SECOND, sub(4, "S", 50, 9_440)),
            (reopen_t + SECOND, sub(5, "B", 10, 9_300)),  # after the reopening
        ],
    )
    recorder = Recorder()
    kernel = Kernel(Network(NetworkSpec(LinkSpec(US))), RandomStreams(1))
    ex = Spy("exchange", ["XYZ"], recorder, 0, CLOSE, reference_price=REF)
    kernel.add(ex)
    kernel.add(flow)
    kernel.run(reopen_t + MINUTE)
    halts = recorder.tables["halts"].frame()
    assert halts["event"].tolist() == ["limit_state_entered", "halted", "resumed"]
    assert halts["time_ns"].tolist() == [t1 + US, pause_t, reopen_t]
    assert calls, "no transition ran"
    assert all(inside for _, _, inside in calls), [c for c in calls if not c[2]]
    kinds = {(name, now) for name, now, _ in calls}
    assert ("update_bands", 15 * MINUTE) in kinds  # the band window at 9:45, on time
    assert ("expire_limit_state", pause_t) in kinds
    assert ("end_halt", reopen_t) in kinds


def test_band_window_guards_the_book_at_9_45_without_any_order() -> None:
    """A bid resting inside the doubled opening band (10_800 < 11_000) is beyond the normal band
    (10_500) from 9:45: it is canceled at 9:45 itself, by the band-window timer, with no other
    message to the exchange (the old code waited for the next order)."""
    buyer = Scripted("buyer", [(MINUTE, sub(1, "B", 100, 10_800))])
    run_market(buyer, safeguards=SafeguardParams(collar_pct=0), until=30 * MINUTE)
    (t, canceled) = next((t, m) for t, m in buyer.inbox if isinstance(m, OrderCanceled))
    assert canceled == OrderCanceled(buyer.oid(1), 100, "price band")
    assert t == 15 * MINUTE + US  # sent at 9:45, one link latency


def test_a_transition_comes_before_an_order_of_the_same_instant() -> None:
    """The exchange is added after its client here, so a plain timer would come after the
    client's message of the same instant; safeguard timers have priority -1: the pause starts
    first, and an IOC arriving exactly when the limit state's 15 s are up is refused."""
    seller = Scripted("seller", [(T0, sub(1, "S", 100, 9_500)), (T0 + 15 * SECOND, sub(2, "B", 10, 9_500, "IOC"))])
    w = watcher()
    recorder = Recorder()
    kernel = Kernel(Network(NetworkSpec(LinkSpec(US))), RandomStreams(1))
    kernel.add(seller)  # id 0: before the exchange
    kernel.add(w)
    sg = SafeguardParams(collar_pct=0)
    kernel.add(Exchange("exchange", ["XYZ"], recorder, 0, CLOSE, safeguards=sg, reference_price=REF))
    kernel.run(T0 + MINUTE)
    pause_t = T0 + US + 15 * SECOND  # the IOC arrives at this very nanosecond
    assert w.received(TradingHalted) == [TradingHalted("XYZ", "luld pause", pause_t, pause_t + 5 * MINUTE)]
    assert seller.received(OrderRejected) == [OrderRejected(seller.oid(2), "trading halted")]
    assert len(recorder.tables["trades"]) == 0


def test_a_stale_limit_timer_does_nothing() -> None:
    """Limit state entered, left after 5 s, entered again 5 s later: the first state's timer
    fires and finds nothing due; the pause starts 15 s after the second entry."""
    seller = Scripted("seller", [(T0, sub(1, "S", 100, 9_500)), (T0 + 10 * SECOND, sub(2, "S", 100, 9_500))])
    buyer = Scripted("buyer", [(T0 + 5 * SECOND, sub(1, "B", 100, 9_500))])
    w = watcher()
    sg = SafeguardParams(collar_pct=0, reference_update_pct=50)  # the trade leaves the reference (and bands)
    run_market(w, seller, buyer, safeguards=sg, until=T0 + 10 * MINUTE)
    second = T0 + 10 * SECOND + US
    assert [m.time_ns for m in w.received(LimitStateEntered)][:2] == [T0 + US, second]
    halt = w.received(TradingHalted)[0]
    assert halt.time_ns == second + 15 * SECOND
    assert w.received(TradingResumed)[0].time_ns == halt.time_ns + 5 * MINUTE


def test_a_trade_triggered_breaker_is_published_after_the_orders_reports() -> None:
    """Publish, then update: a sell that walks two bids trips level 1 on its first fill (9_300,
    -7 %); the halt comes after both fills and both trade prints, and its ``halts`` row carries the
    price of the trade that tripped it, not the order's last fill."""
    sg = SafeguardParams(luld=False, collar_pct=0, mwcb_trigger="trades")
    w = Scripted(
        "w", [(0, lambda a: SubscribeTradingStatus("XYZ")), (0, lambda a: SubscribeMarketData("XYZ", quotes=False))]
    )
    bids = Scripted("bids", [(T0, sub(1, "B", 100, 9_300)), (T0, sub(2, "B", 100, 9_290))])
    seller = Scripted("seller", [(T0 + SECOND, sub(1, "S", 200, None, "IOC"))])
    _, rec = run_market(w, bids, seller, safeguards=sg, until=T0 + MINUTE)
    assert [f.price for f in seller.received(OrderFilled)] == [9_300, 9_290]
    seen = [m for _, m in w.inbox if isinstance(m, TradePrinted | TradingHalted)]
    assert [type(m).__name__ for m in seen] == ["TradePrinted", "TradePrinted", "TradingHalted"]
    halts = rec.tables["halts"].frame()
    assert halts[["event", "reason", "price"]].values.tolist() == [["halted", "mwcb level 1", 9_300]]
