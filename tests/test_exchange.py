"""Exchange actor: order entry over the network, answers to owners, market data, recording."""

from actors.messages import (
    BookSnapshot,
    CancelOrder,
    CancelRejected,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    QueryBook,
    QuoteUpdated,
    ReplaceOrder,
    SubmitOrder,
    SubscribeMarketData,
    TradePrinted,
)
from tests.helpers import Scripted, market

US = 1000


def test_orders_are_answered_to_their_owner_after_the_link_latency():
    seller = Scripted("seller", [(0, lambda a: SubmitOrder(a.oid(1), "XYZ", "S", 300, 10_000))])
    buyer = Scripted("buyer", [(10 * US, lambda a: SubmitOrder(a.oid(1), "XYZ", "B", 100, 10_001))])
    kernel, exchange, rec = market(seller, buyer, latency_ns=US)
    kernel.run(100 * US)
    assert seller.inbox[0] == (2 * US, OrderAccepted(seller.oid(1)))
    mf = seller.received(OrderFilled)[0]
    assert (mf.price, mf.qty, mf.leaves_qty, mf.liquidity) == (10_000, 100, 200, "maker")
    taker_fill = buyer.received(OrderFilled)[0]
    assert (taker_fill.price, taker_fill.qty, taker_fill.leaves_qty, taker_fill.liquidity) == (10_000, 100, 0, "taker")
    assert taker_fill.counterparty_id == seller.oid(1)
    trades = rec.tables["trades"].frame()
    assert trades[["price", "qty", "maker", "taker", "aggressor_side"]].values.tolist() == [
        [10_000, 100, "seller", "buyer", "B"]
    ]
    assert trades["time_ns"].tolist() == [11 * US]
    assert exchange.books["XYZ"].best_ask() == (10_000, 200)


def test_order_id_of_another_actor_is_refused_and_book_untouched():
    thief = Scripted("thief", [(0, lambda a: SubmitOrder(a.oid(1) + (1 << 32), "XYZ", "B", 100, 10_000))])
    kernel, exchange, _ = market(thief)
    kernel.run(100 * US)
    assert [type(m) for m in thief.received(OrderRejected)] == [OrderRejected]
    assert "not owned" in thief.received(OrderRejected)[0].reason
    assert exchange.books["XYZ"].best_bid() is None


def test_closed_session_and_unknown_symbol_rejected():
    early = Scripted("early", [(0, lambda a: SubmitOrder(a.oid(1), "XYZ", "B", 100, 10_000))])
    lost = Scripted("lost", [(60 * US, lambda a: SubmitOrder(a.oid(1), "ABC", "B", 100, 10_000))])
    kernel, _, _ = market(early, lost, open_ns=50 * US)
    kernel.run(200 * US)
    assert early.received(OrderRejected)[0].reason == "market closed"
    assert lost.received(OrderRejected)[0].reason == "unknown symbol"


def test_cancel_replace_and_cancel_reject_forwarded():
    script = [
        (0, lambda a: SubmitOrder(a.oid(1), "XYZ", "B", 100, 9_990)),
        (10 * US, lambda a: ReplaceOrder(a.oid(1), "XYZ", qty=50, price=9_995)),
        (20 * US, lambda a: CancelOrder(a.oid(1), "XYZ")),
        (30 * US, lambda a: CancelOrder(a.oid(1), "XYZ")),
    ]
    trader = Scripted("t", script)
    kernel, _, rec = market(trader)
    kernel.run(100 * US)
    assert trader.received(OrderReplaced) == [OrderReplaced(trader.oid(1), 9_995, 50)]
    assert trader.received(OrderCanceled)[0].canceled_qty == 50
    assert len(trader.received(CancelRejected)) == 1
    events = rec.tables["orders"].frame()["event"].tolist()
    assert events == ["submit", "accepted", "replaced", "canceled", "cancel_rejected"]


def test_market_data_trades_and_quotes_reach_subscribers():
    watcher = Scripted("watcher", [(0, lambda a: SubscribeMarketData("XYZ", trades=True, quotes=True))])
    maker = Scripted("maker", [(10 * US, lambda a: SubmitOrder(a.oid(1), "XYZ", "S", 100, 10_000))])
    taker = Scripted("taker", [(20 * US, lambda a: SubmitOrder(a.oid(1), "XYZ", "B", 100, None, "IOC"))])
    kernel, _, rec = market(watcher, maker, taker)
    kernel.run(100 * US)
    quotes = watcher.received(QuoteUpdated)
    assert [(q.ask, q.ask_qty) for q in quotes] == [(10_000, 100), (None, 0)]
    assert watcher.received(TradePrinted) == [TradePrinted("XYZ", 10_000, 100, "B", 21 * US)]
    assert len(rec.tables["quotes"]) == 2


def test_trade_only_subscription_gets_no_quotes():
    watcher = Scripted("watcher", [(0, lambda a: SubscribeMarketData("XYZ", trades=True, quotes=False))])
    maker = Scripted("maker", [(10 * US, lambda a: SubmitOrder(a.oid(1), "XYZ", "S", 100, 10_000))])
    kernel, _, _ = market(watcher, maker)
    kernel.run(100 * US)
    assert watcher.received(QuoteUpdated) == []


def test_query_book_snapshot():
    maker = Scripted(
        "maker",
        [
            (0, lambda a: SubmitOrder(a.oid(1), "XYZ", "S", 100, 10_002)),
            (0, lambda a: SubmitOrder(a.oid(2), "XYZ", "B", 200, 9_998)),
            (10 * US, lambda a: QueryBook("XYZ", 5)),
        ],
    )
    kernel, _, _ = market(maker)
    kernel.run(100 * US)
    snap = maker.received(BookSnapshot)[0]
    assert snap.bids == ((9_998, 200),) and snap.asks == ((10_002, 100),) and snap.last_price is None
