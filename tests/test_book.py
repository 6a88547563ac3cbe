"""Unit tests for the pure matching engine actors.exchange.book.OrderBook."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from actors.exchange.book import OrderBook
from actors.messages import (
    CancelRejected,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
)


def fill(oid, cp, price, qty, leaves, liq):
    return OrderFilled(oid, cp, price, qty, leaves, liq)


def pair(taker, maker, price, qty, taker_leaves, maker_leaves):
    """The two OrderFilled events of one match: taker's first, then maker's."""
    return [
        fill(taker, maker, price, qty, taker_leaves, "taker"),
        fill(maker, taker, price, qty, maker_leaves, "maker"),
    ]


@pytest.fixture
def book() -> OrderBook:
    return OrderBook("XYZ")


# ---------------------------------------------------------------------------------------------
# basics, queries
# ---------------------------------------------------------------------------------------------


def test_empty_book(book):
    assert book.best_bid() is None
    assert book.best_ask() is None
    assert book.depth(5) == ([], [])
    assert book.symbol == "XYZ"
    assert len(book) == 0


def test_rest_and_queries(book):
    assert book.submit(1, "B", 10, 99) == [OrderAccepted(1)]
    assert book.submit(2, "B", 5, 99) == [OrderAccepted(2)]
    assert book.submit(3, "B", 7, 98) == [OrderAccepted(3)]
    assert book.submit(4, "S", 4, 101) == [OrderAccepted(4)]
    assert book.submit(5, "S", 6, 103) == [OrderAccepted(5)]
    assert book.submit(6, "S", 1, 102) == [OrderAccepted(6)]
    assert book.best_bid() == (99, 15)
    assert book.best_ask() == (101, 4)
    assert book.depth(10) == ([(99, 15), (98, 7)], [(101, 4), (102, 1), (103, 6)])
    assert book.depth(2) == ([(99, 15), (98, 7)], [(101, 4), (102, 1)])
    assert book.depth(1) == ([(99, 15)], [(101, 4)])
    assert book.depth(0) == ([], [])
    assert book.depth() == book.depth(100)
    assert len(book) == 6
    assert book.open_order(2) == ("B", 99, 5, "")
    assert book.open_order(42) is None


def test_events_are_genuine_frozen_dataclass_instances(book):
    book.submit(1, "S", 5, 100)
    events = book.submit(2, "B", 8, 100) + book.cancel(2) + book.cancel(2)
    events += book.submit(3, "B", 0, 100) + book.submit(4, "B", 1, 90) + book.replace(4, qty=2)
    kinds = [OrderAccepted, OrderFilled, OrderFilled, OrderCanceled, CancelRejected]
    kinds += [OrderRejected, OrderAccepted, OrderReplaced]
    assert [type(e) for e in events] == kinds
    for e in events:
        assert dataclasses.is_dataclass(e)
        with pytest.raises(dataclasses.FrozenInstanceError):
            e.order_id = 99  # type: ignore[misc]
        assert e == type(e)(*dataclasses.astuple(e))
        assert hash(e) == hash(type(e)(*dataclasses.astuple(e)))
        assert pickle.loads(pickle.dumps(e)) == e
        assert copy.deepcopy(e) == e


# ---------------------------------------------------------------------------------------------
# matching
# ---------------------------------------------------------------------------------------------


def test_price_time_priority_within_level(book):
    for oid in (1, 2, 3):
        book.submit(oid, "S", 10, 100)
    events = book.submit(9, "B", 25, 100)
    assert events == [
        OrderAccepted(9),
        *pair(9, 1, 100, 10, 15, 0),
        *pair(9, 2, 100, 10, 5, 0),
        *pair(9, 3, 100, 5, 0, 5),
    ]
    assert book.best_ask() == (100, 5)
    assert book.open_order(3) == ("S", 100, 5, "")
    assert book.best_bid() is None


def test_better_price_first_and_fill_at_resting_price(book):
    book.submit(1, "S", 5, 102)
    book.submit(2, "S", 5, 101)
    book.submit(3, "S", 5, 103)
    events = book.submit(4, "B", 12, 105)  # sweeps 101, 102, then 2 at 103
    assert events == [
        OrderAccepted(4),
        *pair(4, 2, 101, 5, 7, 0),
        *pair(4, 1, 102, 5, 2, 0),
        *pair(4, 3, 103, 2, 0, 3),
    ]
    assert book.depth(5) == ([], [(103, 3)])


def test_sell_aggressor_hits_highest_bid_first(book):
    book.submit(1, "B", 5, 98)
    book.submit(2, "B", 5, 99)
    events = book.submit(3, "S", 7, 97)
    assert events == [OrderAccepted(3), *pair(3, 2, 99, 5, 2, 0), *pair(3, 1, 98, 2, 0, 3)]
    assert book.best_bid() == (98, 3)


def test_partial_fill_remainder_rests(book):
    book.submit(1, "S", 4, 100)
    events = book.submit(2, "B", 10, 101)
    assert events == [OrderAccepted(2), *pair(2, 1, 100, 4, 6, 0)]
    assert book.best_bid() == (101, 6)
    assert book.best_ask() is None
    assert book.open_order(2) == ("B", 101, 6, "")


def test_non_crossing_limit_rests(book):
    book.submit(1, "S", 4, 100)
    assert book.submit(2, "B", 4, 99) == [OrderAccepted(2)]
    assert book.depth() == ([(99, 4)], [(100, 4)])


def test_market_order_on_empty_book_is_accepted_then_canceled(book):
    assert book.submit(1, "B", 10) == [OrderAccepted(1), OrderCanceled(1, 10, "market")]
    assert book.submit(2, "S", 3, None) == [OrderAccepted(2), OrderCanceled(2, 3, "market")]
    assert book.depth() == ([], [])
    # the id is consumed
    assert book.submit(1, "B", 10, 5) == [OrderRejected(1, "duplicate order id")]


def test_market_order_partial_fill_remainder_canceled(book):
    book.submit(1, "S", 4, 100)
    book.submit(2, "S", 4, 150)
    events = book.submit(3, "B", 10)
    assert events == [
        OrderAccepted(3),
        *pair(3, 1, 100, 4, 6, 0),
        *pair(3, 2, 150, 4, 2, 0),
        OrderCanceled(3, 2, "market"),
    ]
    assert book.depth() == ([], [])


def test_ioc_remainder_canceled_never_rests(book):
    book.submit(1, "S", 4, 100)
    book.submit(2, "S", 4, 102)
    events = book.submit(3, "B", 10, 101, tif="IOC")
    assert events == [OrderAccepted(3), *pair(3, 1, 100, 4, 6, 0), OrderCanceled(3, 6, "ioc")]
    assert book.depth() == ([], [(102, 4)])


def test_ioc_without_cross_is_canceled(book):
    book.submit(1, "S", 4, 100)
    assert book.submit(2, "B", 5, 99, tif="IOC") == [OrderAccepted(2), OrderCanceled(2, 5, "ioc")]
    assert book.depth() == ([], [(100, 4)])


def test_ioc_fully_filled_has_no_cancel(book):
    book.submit(1, "S", 4, 100)
    assert book.submit(2, "B", 3, 100, tif="IOC") == [OrderAccepted(2), *pair(2, 1, 100, 3, 0, 1)]


def test_fok_fills_completely(book):
    book.submit(1, "S", 4, 100)
    book.submit(2, "S", 4, 101)
    book.submit(3, "S", 4, 102)
    events = book.submit(4, "B", 6, 101, tif="FOK")
    assert events == [OrderAccepted(4), *pair(4, 1, 100, 4, 2, 0), *pair(4, 2, 101, 2, 0, 2)]
    assert book.depth() == ([], [(101, 2), (102, 4)])


def test_fok_not_fillable_is_canceled_whole_and_book_untouched(book):
    book.submit(1, "S", 4, 100)
    book.submit(2, "S", 4, 101)
    book.submit(3, "S", 4, 102)
    before = book.depth()
    events = book.submit(4, "B", 9, 101, tif="FOK")  # only 8 at <= 101
    assert events == [OrderAccepted(4), OrderCanceled(4, 9, "fok")]
    assert book.depth() == before
    # no cross at all
    assert book.submit(5, "B", 1, 99, tif="FOK") == [OrderAccepted(5), OrderCanceled(5, 1, "fok")]
    # exactly the available quantity fills
    events = book.submit(6, "B", 8, 101, tif="FOK")
    assert events == [OrderAccepted(6), *pair(6, 1, 100, 4, 4, 0), *pair(6, 2, 101, 4, 0, 0)]


def test_market_fok(book):
    book.submit(1, "S", 4, 100)
    assert book.submit(2, "B", 5, tif="FOK") == [OrderAccepted(2), OrderCanceled(2, 5, "fok")]
    assert book.submit(3, "B", 4, tif="FOK") == [OrderAccepted(3), *pair(3, 1, 100, 4, 0, 0)]


# ---------------------------------------------------------------------------------------------
# post-only
# ---------------------------------------------------------------------------------------------


def test_post_only_that_would_cross_is_rejected(book):
    book.submit(1, "S", 4, 100)
    before = book.depth()
    assert book.submit(2, "B", 5, 100, post_only=True) == [OrderRejected(2, "post_only would cross")]
    assert book.submit(3, "B", 5, 101, post_only=True) == [OrderRejected(3, "post_only would cross")]
    assert book.depth() == before
    # a rejected submit does not consume the id
    assert book.submit(2, "B", 5, 99, post_only=True) == [OrderAccepted(2)]


def test_post_only_rests(book):
    book.submit(1, "S", 4, 100)
    assert book.submit(2, "B", 5, 99, post_only=True) == [OrderAccepted(2)]
    assert book.submit(3, "S", 5, 101, post_only=True) == [OrderAccepted(3)]
    assert book.depth() == ([(99, 5)], [(100, 4), (101, 5)])
    # a post-only resting order still trades as a maker
    assert book.submit(4, "S", 2, 99) == [OrderAccepted(4), *pair(4, 2, 99, 2, 0, 3)]


def test_post_only_market_and_ioc_rejected(book):
    assert book.submit(1, "B", 5, None, post_only=True) == [OrderRejected(1, "post_only requires a limit price")]
    assert book.submit(2, "B", 5, 10, post_only=True, tif="IOC") == [OrderRejected(2, "post_only requires DAY")]
    assert book.submit(3, "B", 5, 10, post_only=True, tif="FOK") == [OrderRejected(3, "post_only requires DAY")]
    assert book.depth() == ([], [])


# ---------------------------------------------------------------------------------------------
# self-trade prevention
# ---------------------------------------------------------------------------------------------


def test_stp_cancel_resting_cancels_own_and_continues(book):
    book.submit(1, "S", 3, 100, owner="alice")
    book.submit(2, "S", 4, 100, owner="bob")
    book.submit(3, "S", 5, 101, owner="alice")
    book.submit(4, "S", 5, 102, owner="carol")
    events = book.submit(5, "B", 6, 102, owner="alice", stp="cancel_resting")
    assert events == [
        OrderAccepted(5),
        OrderCanceled(1, 3, "stp"),
        *pair(5, 2, 100, 4, 2, 0),
        OrderCanceled(3, 5, "stp"),
        *pair(5, 4, 102, 2, 0, 3),
    ]
    assert book.depth() == ([], [(102, 3)])
    assert book.cancel(1) == [CancelRejected(1, "unknown order")]


def test_stp_cancel_incoming_stops_at_own_order(book):
    book.submit(1, "S", 3, 100, owner="bob")
    book.submit(2, "S", 4, 100, owner="alice")
    book.submit(3, "S", 5, 100, owner="carol")
    events = book.submit(4, "B", 10, 100, owner="alice", stp="cancel_incoming")
    assert events == [OrderAccepted(4), *pair(4, 1, 100, 3, 7, 0), OrderCanceled(4, 7, "stp")]
    assert book.depth() == ([], [(100, 9)])  # alice's own resting order and carol's untouched
    assert book.open_order(2) == ("S", 100, 4, "alice")


def test_stp_cancel_incoming_immediately(book):
    book.submit(1, "B", 3, 100, owner="alice")
    events = book.submit(2, "S", 10, 90, owner="alice", stp="cancel_incoming")
    assert events == [OrderAccepted(2), OrderCanceled(2, 10, "stp")]
    assert book.depth() == ([(100, 3)], [])


def test_stp_none_allows_self_trade(book):
    book.submit(1, "S", 3, 100, owner="alice")
    assert book.submit(2, "B", 3, 100, owner="alice") == [OrderAccepted(2), *pair(2, 1, 100, 3, 0, 0)]


def test_stp_ignored_for_empty_owner_and_other_owners(book):
    book.submit(1, "S", 3, 100)
    book.submit(2, "S", 3, 100, owner="bob")
    events = book.submit(3, "B", 6, 100, stp="cancel_resting")  # owner "" has no STP identity
    assert events == [OrderAccepted(3), *pair(3, 1, 100, 3, 3, 0), *pair(3, 2, 100, 3, 0, 0)]


def test_stp_of_resting_order_is_irrelevant(book):
    book.submit(1, "S", 3, 100, owner="alice", stp="cancel_incoming")
    assert book.submit(2, "B", 3, 100, owner="alice") == [OrderAccepted(2), *pair(2, 1, 100, 3, 0, 0)]


def test_fok_respects_stp(book):
    book.submit(1, "S", 5, 100, owner="alice")
    book.submit(2, "S", 5, 100, owner="bob")
    # cancel_resting: alice's 5 is not available -> not fillable, and nothing is canceled
    assert book.submit(3, "B", 6, 100, owner="alice", stp="cancel_resting", tif="FOK") == [
        OrderAccepted(3),
        OrderCanceled(3, 6, "fok"),
    ]
    assert book.depth() == ([], [(100, 10)])
    # cancel_incoming: nothing ahead of alice's own order
    assert book.submit(4, "B", 1, 100, owner="alice", stp="cancel_incoming", tif="FOK") == [
        OrderAccepted(4),
        OrderCanceled(4, 1, "fok"),
    ]
    # fillable with cancel_resting: own order canceled on the way
    assert book.submit(5, "B", 5, 100, owner="alice", stp="cancel_resting", tif="FOK") == [
        OrderAccepted(5),
        OrderCanceled(1, 5, "stp"),
        *pair(5, 2, 100, 5, 0, 0),
    ]
    assert book.depth() == ([], [])


# ---------------------------------------------------------------------------------------------
# cancel
# ---------------------------------------------------------------------------------------------


def test_cancel_live_and_unknown(book):
    book.submit(1, "B", 10, 99)
    book.submit(2, "B", 5, 99)
    assert book.cancel(1) == [OrderCanceled(1, 10, "canceled")]
    assert book.best_bid() == (99, 5)
    assert book.cancel(1) == [CancelRejected(1, "unknown order")]
    assert book.cancel(77) == [CancelRejected(77, "unknown order")]
    assert book.cancel([1]) == [CancelRejected([1], "unknown order")]  # unhashable: no raise


def test_cancel_partially_filled_cancels_leaves(book):
    book.submit(1, "S", 10, 100)
    book.submit(2, "B", 4, 100)
    assert book.cancel(1) == [OrderCanceled(1, 6, "canceled")]
    assert book.depth() == ([], [])


def test_cancel_filled_order_rejected(book):
    book.submit(1, "S", 10, 100)
    book.submit(2, "B", 10, 100)
    assert book.cancel(1) == [CancelRejected(1, "unknown order")]
    assert book.cancel(2) == [CancelRejected(2, "unknown order")]


def test_cancel_of_best_level_moves_best(book):
    book.submit(1, "B", 1, 99)
    book.submit(2, "B", 1, 98)
    book.submit(3, "B", 1, 97)
    book.cancel(2)  # empties a non-best level
    assert book.best_bid() == (99, 1)
    book.cancel(1)  # empties the best level
    assert book.best_bid() == (97, 1)
    book.submit(4, "B", 2, 98)  # re-use a price whose level emptied
    assert book.best_bid() == (98, 2)
    assert book.depth() == ([(98, 2), (97, 1)], [])
    book.cancel(3)
    book.cancel(4)
    assert book.best_bid() is None


def test_many_cancels_in_one_level_keep_fifo(book):
    book.submit(0, "S", 1, 100)  # stays at the front the whole time
    for i in range(1, 301):
        book.submit(i, "S", 1, 100)
    for i in range(1, 301):
        if i % 7:
            assert book.cancel(i) == [OrderCanceled(i, 1, "canceled")]
    survivors = [0] + [i for i in range(1, 301) if i % 7 == 0]
    assert book.best_ask() == (100, len(survivors))
    events = book.submit(1000, "B", len(survivors), 100)
    makers = [e.order_id for e in events if isinstance(e, OrderFilled) and e.liquidity == "maker"]
    assert makers == survivors
    assert book.depth() == ([], [])


# ---------------------------------------------------------------------------------------------
# replace
# ---------------------------------------------------------------------------------------------


def makers_of(events):
    return [e.order_id for e in events if isinstance(e, OrderFilled) and e.liquidity == "maker"]


def test_replace_size_down_keeps_priority(book):
    book.submit(1, "S", 10, 100)
    book.submit(2, "S", 10, 100)
    assert book.replace(1, qty=4) == [OrderReplaced(1, 100, 4)]
    assert book.best_ask() == (100, 14)
    events = book.submit(3, "B", 5, 100)
    assert events == [OrderAccepted(3), *pair(3, 1, 100, 4, 1, 0), *pair(3, 2, 100, 1, 0, 9)]


def test_replace_size_up_loses_priority(book):
    book.submit(1, "S", 10, 100)
    book.submit(2, "S", 10, 100)
    assert book.replace(1, qty=12) == [OrderReplaced(1, 100, 12)]
    assert book.best_ask() == (100, 22)
    events = book.submit(3, "B", 11, 100)
    assert events == [OrderAccepted(3), *pair(3, 2, 100, 10, 1, 0), *pair(3, 1, 100, 1, 0, 11)]


def test_replace_price_change_loses_priority(book):
    book.submit(1, "S", 10, 100)
    book.submit(2, "S", 10, 101)
    assert book.replace(1, price=101) == [OrderReplaced(1, 101, 10)]
    assert book.depth() == ([], [(101, 20)])
    assert makers_of(book.submit(3, "B", 11, 101)) == [2, 1]
    # price change and back: still at the back
    book.submit(4, "S", 5, 101)
    book.replace(1, price=102)
    book.replace(1, price=101)
    assert makers_of(book.submit(5, "B", 20, 101)) == [4, 1]


def test_replace_size_down_after_partial_fill(book):
    book.submit(1, "S", 10, 100)
    book.submit(2, "B", 3, 100)  # 1 has 7 left
    assert book.replace(1, qty=2) == [OrderReplaced(1, 100, 2)]
    assert book.open_order(1) == ("S", 100, 2, "")
    assert book.submit(3, "B", 2, 100) == [OrderAccepted(3), *pair(3, 1, 100, 2, 0, 0)]


def test_replace_that_crosses_matches_as_aggressor(book):
    book.submit(1, "S", 5, 101)
    book.submit(2, "S", 5, 102)
    book.submit(3, "B", 8, 99)
    events = book.replace(3, price=101)
    assert events == [OrderReplaced(3, 101, 8), *pair(3, 1, 101, 5, 3, 0)]
    assert book.depth() == ([(101, 3)], [(102, 5)])
    # with a new qty as well; fully filled -> gone
    events = book.replace(3, qty=4, price=103)
    assert events == [OrderReplaced(3, 103, 4), *pair(3, 2, 102, 4, 0, 1)]
    assert book.depth() == ([], [(102, 1)])
    assert book.cancel(3) == [CancelRejected(3, "unknown order")]


def test_replace_crossing_respects_owner_stp(book):
    book.submit(1, "S", 5, 101, owner="alice")
    book.submit(2, "B", 5, 99, owner="alice", stp="cancel_incoming")
    assert book.replace(2, price=101) == [OrderReplaced(2, 101, 5), OrderCanceled(2, 5, "stp")]
    assert book.depth() == ([], [(101, 5)])


def test_replace_post_only_to_crossing_price_rejected(book):
    book.submit(1, "S", 5, 101)
    book.submit(2, "B", 5, 99, post_only=True)
    assert book.replace(2, price=101) == [CancelRejected(2, "post_only would cross")]
    assert book.depth() == ([(99, 5)], [(101, 5)])
    assert book.replace(2, price=100) == [OrderReplaced(2, 100, 5)]


def test_replace_rejections(book):
    book.submit(1, "B", 5, 99)
    before = book.depth()
    assert book.replace(9, qty=1) == [CancelRejected(9, "unknown order")]
    assert book.replace(1, qty=0) == [CancelRejected(1, "invalid qty")]
    assert book.replace(1, qty=-3) == [CancelRejected(1, "invalid qty")]
    assert book.replace(1, qty=2.0) == [CancelRejected(1, "invalid qty")]
    assert book.replace(1, qty=True) == [CancelRejected(1, "invalid qty")]
    assert book.replace(1, price=0) == [CancelRejected(1, "invalid price")]
    assert book.replace(1, price="100") == [CancelRejected(1, "invalid price")]
    assert book.replace(1) == [CancelRejected(1, "nothing to replace")]
    assert book.replace({}, qty=1) == [CancelRejected({}, "unknown order")]
    assert book.depth() == before


def test_replace_no_change_is_accepted_and_keeps_priority(book):
    book.submit(1, "B", 5, 99)
    book.submit(2, "B", 5, 99)
    assert book.replace(1, qty=5, price=99) == [OrderReplaced(1, 99, 5)]
    assert makers_of(book.submit(3, "S", 10, 99)) == [1, 2]


def test_replace_filled_order_rejected(book):
    book.submit(1, "B", 5, 99)
    book.submit(2, "S", 5, 99)
    assert book.replace(1, qty=3) == [CancelRejected(1, "unknown order")]


# -- replace by total quantity (FIX OrderQty): leaves = total - filled, computed by the book ----


def test_filled_qty_counts_maker_and_taker_fills_across_replaces(book):
    book.submit(1, "S", 10, 100)
    assert book.filled_qty(1) == 0 and book.filled_qty(9) is None
    book.submit(2, "B", 3, 100)  # 1: filled 3 as maker
    assert book.filled_qty(1) == 3
    book.replace(1, qty=20)  # size up: new entry, filled carried
    book.replace(1, price=101)  # price change: re-rested, filled carried
    assert book.filled_qty(1) == 3
    book.submit(3, "S", 4, 99)
    book.submit(4, "B", 10, 98)
    book.replace(4, price=99)  # crosses: takes 4 as aggressor, rests 6
    assert book.filled_qty(4) == 4 and book.open_order(4) == ("B", 99, 6, "")
    book.submit(5, "B", 6, 95)
    assert book.submit(6, "S", 2, 95)[-1] == OrderFilled(4, 6, 99, 2, 4, "maker")
    assert book.filled_qty(4) == 6
    assert book.add_filled(4, 5) and book.filled_qty(4) == 11 and book.open_order(4) == ("B", 99, 4, "")
    assert not book.add_filled(9, 5)


def test_replace_total_sets_leaves_from_the_filled_qty(book):
    book.submit(1, "S", 10, 100)
    book.submit(2, "S", 10, 100)
    book.submit(3, "B", 3, 100)  # 1: filled 3, leaves 7
    assert book.replace(1, total_qty=8) == [OrderReplaced(1, 100, 5, 3)]  # leaves 8 - 3, keeps priority
    assert book.open_order(1) == ("S", 100, 5, "")
    assert makers_of(book.submit(4, "B", 6, 100)) == [1, 2]
    assert book.replace(2, total_qty=12, price=101) == [OrderReplaced(2, 101, 11, 1)]
    assert book.depth() == ([], [(101, 11)])


@pytest.mark.parametrize("total", [3, 2, 1])
def test_replace_total_at_or_below_filled_ends_the_order(book, total):
    book.submit(1, "S", 10, 100)
    book.submit(2, "S", 4, 101)
    book.submit(3, "B", 3, 100)  # 1: filled 3
    assert book.replace(1, total_qty=total, price=99) == [OrderReplaced(1, 99, 0, 3)]
    assert book.open_order(1) is None and book.depth() == ([], [(101, 4)]) and len(book) == 1
    assert book.replace(1, total_qty=20) == [CancelRejected(1, "unknown order")]
    assert book.cancel(1) == [CancelRejected(1, "unknown order")]


def test_replace_total_done_order_never_rests_even_if_post_only_would_cross(book):
    book.submit(1, "S", 5, 101)
    book.submit(2, "B", 5, 99, post_only=True)
    book.submit(3, "S", 2, 99)  # 2: filled 2
    assert book.replace(2, total_qty=2, price=101) == [OrderReplaced(2, 101, 0, 2)]
    assert book.depth() == ([], [(101, 5)])


def test_replace_total_crossing_fills_only_up_to_total(book):
    book.submit(1, "S", 20, 101)
    book.submit(2, "B", 10, 99)
    book.submit(3, "S", 4, 99)  # 2: filled 4, leaves 6
    events = book.replace(2, total_qty=7, price=101)  # leaves 3: takes 3 from 1
    assert events == [OrderReplaced(2, 101, 3, 4), *pair(2, 1, 101, 3, 0, 17)]
    assert book.open_order(2) is None and book.depth() == ([], [(101, 17)])


def test_replace_total_rejections(book):
    book.submit(1, "B", 5, 99)
    before = book.depth()
    for bad in (0, -1, 2.0, True, "3"):
        assert book.replace(1, total_qty=bad) == [CancelRejected(1, "invalid qty")]
    assert book.replace(1, qty=3, total_qty=4) == [CancelRejected(1, "invalid qty")]
    assert book.replace(1, total_qty=4, price=0) == [CancelRejected(1, "invalid price")]
    assert book.replace(9, total_qty=4) == [CancelRejected(9, "unknown order")]
    assert book.depth() == before


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------

GOOD = {"order_id": 100, "side": "B", "qty": 5, "price": 99}

BAD_SUBMITS = [
    ({"order_id": None}, {}, "invalid order id"),
    ({"order_id": [1]}, {}, "invalid order id"),
    ({"side": "X"}, {}, "invalid side"),
    ({"side": "b"}, {}, "invalid side"),
    ({"side": None}, {}, "invalid side"),
    ({"side": 1}, {}, "invalid side"),
    ({"qty": 0}, {}, "invalid qty"),
    ({"qty": -1}, {}, "invalid qty"),
    ({"qty": 1.5}, {}, "invalid qty"),
    ({"qty": 5.0}, {}, "invalid qty"),
    ({"qty": True}, {}, "invalid qty"),
    ({"qty": "5"}, {}, "invalid qty"),
    ({"qty": None}, {}, "invalid qty"),
    ({"price": 0}, {}, "invalid price"),
    ({"price": -100}, {}, "invalid price"),
    ({"price": 99.5}, {}, "invalid price"),
    ({"price": True}, {}, "invalid price"),
    ({"price": "99"}, {}, "invalid price"),
    ({}, {"tif": "GTC"}, "invalid tif"),
    ({}, {"tif": None}, "invalid tif"),
    ({}, {"tif": "day"}, "invalid tif"),
    ({}, {"stp": "cancel_both"}, "invalid stp"),
    ({}, {"stp": ""}, "invalid stp"),
    ({}, {"stp": 1}, "invalid stp"),
    ({}, {"owner": None}, "invalid owner"),
    ({}, {"owner": 7}, "invalid owner"),
    ({}, {"post_only": 1}, "invalid post_only"),
    ({}, {"post_only": None}, "invalid post_only"),
    ({}, {"post_only": "yes"}, "invalid post_only"),
]


def _populated() -> OrderBook:
    b = OrderBook("XYZ")
    b.submit(1, "B", 5, 99)
    b.submit(2, "S", 5, 101)
    b.submit(3, "S", 2, 102, owner="a")
    return b


@pytest.mark.parametrize(("args", "kwargs", "reason"), BAD_SUBMITS)
def test_garbage_submit_rejected_and_book_unchanged(args, kwargs, reason):
    book = _populated()
    before = book.depth()
    call = {**GOOD, **args}
    for price in (call["price"], 101):  # non-crossing and crossing variants
        call2 = {**call, "price": price} if "price" not in args else call
        events = book.submit(call2["order_id"], call2["side"], call2["qty"], call2["price"], **kwargs)
        assert events == [OrderRejected(call2["order_id"], reason)]
        assert book.depth() == before
    # the book still works
    assert book.submit(50, "B", 1, 101) == [OrderAccepted(50), *pair(50, 2, 101, 1, 0, 4)]


def test_duplicate_ids_rejected(book):
    book.submit(1, "B", 5, 99)
    assert book.submit(1, "B", 5, 98) == [OrderRejected(1, "duplicate order id")]  # live
    book.cancel(1)
    assert book.submit(1, "B", 5, 98) == [OrderRejected(1, "duplicate order id")]  # canceled
    book.submit(2, "S", 5, 100)
    book.submit(3, "B", 5, 100)
    assert book.submit(2, "S", 1, 120) == [OrderRejected(2, "duplicate order id")]  # filled
    assert book.submit(3, "S", 1, 120, tif="IOC") == [OrderRejected(3, "duplicate order id")]
    assert book.depth() == ([], [])


def test_duplicate_id_reason_wins_over_other_errors(book):
    book.submit(1, "B", 5, 99)
    assert book.submit(1, "X", 0, -1) == [OrderRejected(1, "duplicate order id")]
    assert book.submit(1, "B", 5, 99, tif="IOC") == [OrderRejected(1, "duplicate order id")]


def test_non_int_ids_are_fine(book):
    assert book.submit("abc", "B", 5, 99) == [OrderAccepted("abc")]
    assert book.submit(("x", 1), "S", 5, 99) == [
        OrderAccepted(("x", 1)),
        *pair(("x", 1), "abc", 99, 5, 0, 0),
    ]


def test_hostile_values_do_not_raise(book):
    class Evil:
        def __eq__(self, other):
            raise RuntimeError("boom")

        def __hash__(self):
            raise RuntimeError("boom")

        def __bool__(self):
            raise RuntimeError("boom")

    book.submit(1, "B", 5, 99)
    before = book.depth()
    evil = Evil()
    assert book.submit(evil, "B", 5, 99) == [OrderRejected(evil, "invalid order id")]
    assert book.submit(2, evil, 5, 99) == [OrderRejected(2, "invalid input")]
    assert book.submit(3, "B", 5, 99, tif=evil) == [OrderRejected(3, "invalid input")]
    assert book.submit(4, "B", 5, 99, stp=evil) == [OrderRejected(4, "invalid input")]
    assert book.submit(5, "B", 5, 99, post_only=evil) == [OrderRejected(5, "invalid post_only")]
    assert book.cancel(evil) == [CancelRejected(evil, "unknown order")]
    assert book.replace(evil, qty=1) == [CancelRejected(evil, "unknown order")]
    assert book.depth() == before


def test_huge_prices_and_quantities(book):
    big = 10**30
    assert book.submit(1, "S", big, big) == [OrderAccepted(1)]
    assert book.submit(2, "B", big + 1, big) == [OrderAccepted(2), *pair(2, 1, big, big, 1, 0)]
    assert book.best_bid() == (big, 1)
    assert book.submit(3, "S", 2) == [OrderAccepted(3), *pair(3, 2, big, 1, 1, 0), OrderCanceled(3, 1, "market")]
