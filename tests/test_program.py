"""The program trader: the faithful 2010 pace (pov of the trailing minute's volume, no limits)."""

import pydantic
import pytest

from actors.commands import StartProgram
from actors.messages import SubmitOrder
from actors.program import ProgramParams, ProgramTrader
from sim.clock import SECOND
from tests.helpers import Scripted, market

REF = 10_000
T0 = 10 * SECOND  # the program starts here


def crossing_pairs(name, times, qty):
    """Two scripted actors trading ``qty`` with each other at each time (a resting buy, then a sell into it)."""
    buyer = Scripted(
        f"{name}-b",
        [(t, lambda a, i=i: SubmitOrder(a.oid(i + 1), "XYZ", "B", qty, REF - 50)) for i, t in enumerate(times)],
    )
    seller = Scripted(
        f"{name}-s",
        [
            (t + SECOND // 100, lambda a, i=i: SubmitOrder(a.oid(i + 1), "XYZ", "S", qty, REF - 50, "IOC"))
            for i, t in enumerate(times)
        ],
    )
    return buyer, seller


def deep_bid(n_lots=2_000):
    """A patient buyer resting a deep bid far below, so market sells always fill somewhere."""
    return Scripted("bid", [(0, lambda a: SubmitOrder(a.oid(1), "XYZ", "B", n_lots * 100, REF - 100))])


def starter():
    return Scripted("starter", [(T0, lambda a: StartProgram())], dst="seller")


def run_program(params, volume_times, qty=1_000, until=200 * SECOND):
    prog = ProgramTrader("seller", "XYZ", params, REF, 0, 10**13)
    b, s = crossing_pairs("flow", volume_times, qty)
    kernel, _, _ = market(deep_bid(), b, s, prog, starter())
    kernel.run(until)
    return prog


def test_trailing_pace_follows_the_trailing_minute_volume():
    # 1,000 shares a second until t=100 s, then 5,000 a second: the clips grow five-fold one
    # minute after the change, at pov x V x interval / window
    slow = [t * SECOND + SECOND // 2 for t in range(1, 100)]
    busy = [t * SECOND + SECOND // 2 for t in range(100, 260)]
    times = slow + busy
    qty_of = {t: 1_000 for t in slow} | {t: 5_000 for t in busy}
    prog = ProgramTrader(
        "seller",
        "XYZ",
        ProgramParams(qty=10**7, pov=0.1, interval_s=1.0, pace="trailing", through_ticks=None, max_duration_s=None),
        REF,
        0,
        10**13,
    )
    buyers = Scripted(
        "flow-b",
        [
            (t, lambda a, i=i, t=t: SubmitOrder(a.oid(i + 1), "XYZ", "B", qty_of[t], REF - 50))
            for i, t in enumerate(times)
        ],
    )
    sellers = Scripted(
        "flow-s",
        [
            (t + SECOND // 100, lambda a, i=i, t=t: SubmitOrder(a.oid(i + 1), "XYZ", "S", qty_of[t], REF - 50, "IOC"))
            for i, t in enumerate(times)
        ],
    )
    kernel, _, _ = market(deep_bid(), buyers, sellers, prog, starter())
    kernel.run(260 * SECOND)
    clips = dict(prog.children)
    # the steady state before the change: others 1,000/s plus its own ~10%: clip ~ 100-200 a second
    early = [q for t, q in clips.items() if 70 * SECOND <= t < 100 * SECOND]
    late = [q for t, q in clips.items() if 190 * SECOND <= t < 250 * SECOND]
    assert early and late
    early_rate = sum(early) / 30
    late_rate = sum(late) / 60
    # pov of the whole market's volume: rate = pov x (others + own) => own = pov / (1 - pov) x others
    assert early_rate == pytest.approx(1_000 * 0.1 / 0.9, rel=0.15)
    assert late_rate == pytest.approx(5_000 * 0.1 / 0.9, rel=0.15)


def test_trailing_pace_sends_nothing_into_a_silent_market_and_has_no_time_limit():
    prog = run_program(
        ProgramParams(qty=10**6, pov=0.09, interval_s=1.0, pace="trailing", max_duration_s=None), volume_times=[]
    )
    assert prog.children == [] and prog.active  # nothing traded in the last minute: nothing to do, still on


def test_trailing_pace_feeds_on_its_own_volume():
    # with only the deep bid to sell into, its own fills are the whole market: each clip is pov of
    # the trailing minute's volume, of which it is a part: the pace neither dies at once nor explodes
    times = [t * SECOND for t in range(1, 11)]
    prog = run_program(
        ProgramParams(qty=10**6, pov=0.5, interval_s=1.0, pace="trailing", through_ticks=None, max_duration_s=None),
        volume_times=times,
        qty=6_000,
        until=100 * SECOND,
    )
    sizes = [q for _, q in prog.children]
    assert len(sizes) > 30 and max(sizes) <= 5_000
    assert prog.filled_qty == prog.done_qty == sum(sizes)


def test_cumulative_pace_is_unchanged():
    times = [t * SECOND for t in range(1, 60)]
    prog = run_program(
        ProgramParams(qty=10**6, pov=0.25, interval_s=1.0, max_duration_s=30.0), times, until=100 * SECOND
    )
    assert prog.children and not prog.active  # stopped by its time limit
    assert all(q >= 100 for _, q in prog.children)  # min_clip floor of the old behaviour
    assert max(t for t, _ in prog.children) <= T0 + 30 * SECOND


def test_program_params_are_validated():
    with pytest.raises(pydantic.ValidationError):
        pydantic.TypeAdapter(ProgramParams).validate_python({"pace": "sometimes"})
    with pytest.raises(pydantic.ValidationError):
        pydantic.TypeAdapter(ProgramParams).validate_python({"window_s": 0})
    p = pydantic.TypeAdapter(ProgramParams).validate_python({"through_ticks": None, "max_duration_s": None})
    assert p.through_ticks is None and p.max_duration_s is None
