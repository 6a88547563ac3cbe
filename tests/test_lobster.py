"""Reading real days in LOBSTER format (desksim/analytics/lobster.py) and `desksim realism`."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from desksim.analytics.lobster import EMPTY_ASK, EMPTY_BID, LobsterError, _seconds_to_ns, read_day, realism_of
from desksim.cli import main

NAME = "XYZ_2012-06-21_34200000_57600000_{}_1.csv"


def write_pair(folder: Path, messages: list[tuple], tops: list[tuple], name: str = NAME) -> Path:
    """A LOBSTER message file and its level-1 order book file; returns the message file."""
    msg = folder / name.format("message")
    msg.write_text("".join(",".join(str(v) for v in row) + "\n" for row in messages))
    (folder / name.format("orderbook")).write_text("".join(",".join(str(v) for v in row) + "\n" for row in tops))
    return msg


def test_times_become_exact_integer_nanoseconds():
    assert _seconds_to_ns("34200.004241176") == 34_200_004_241_176
    assert _seconds_to_ns("34200") == 34_200 * 10**9
    assert _seconds_to_ns("34200.5") == 34_200_500_000_000
    with pytest.raises(ValueError):
        _seconds_to_ns("3.42e4")


def test_a_hand_built_day_maps_to_trades_quotes_and_orders(tmp_path):
    messages = [
        (34200.000000001, 1, 11, 100, 1000000, 1),  # buy 100 @ 100.00 rests
        (34200.5, 1, 12, 200, 1000200, -1),  # sell 200 @ 100.02 rests
        (34201.25, 4, 12, 50, 1000200, -1),  # a buyer lifts 50 of the offer
        (34202, 2, 12, 50, 1000200, -1),  # partial cancel: 100 left
        (34203, 5, 99, 30, 1000100, 1),  # hidden buy order hit by a seller at 100.01
        (34204, 3, 11, 100, 1000000, 1),  # the bid is deleted
        (34205, 7, 0, 0, -1, -1),  # halt indicator
    ]
    tops = [
        (EMPTY_ASK, 0, 1000000, 100),
        (1000200, 200, 1000000, 100),
        (1000200, 150, 1000000, 100),
        (1000200, 100, 1000000, 100),
        (1000200, 100, 1000000, 100),  # a hidden execution leaves the visible book as it was
        (1000200, 100, EMPTY_BID, 0),
        (1000200, 100, EMPTY_BID, 0),
    ]
    day = read_day(write_pair(tmp_path, messages, tops))
    assert (day.symbol, day.date) == ("XYZ", "2012-06-21")
    assert (day.open_ns, day.close_ns) == (34_200 * 10**9, 57_600 * 10**9)
    t = day.trades
    assert t["time_ns"].tolist() == [34_201_250_000_000, 34_203_000_000_000]
    assert t["price"].tolist() == [10002.0, 10001.0]  # ticks of $0.01
    assert t["qty"].tolist() == [50, 30]
    assert t["aggressor_side"].tolist() == ["B", "S"]  # the opposite of the executed order's side
    assert t["maker_id"].tolist() == [12, 99]
    o = day.orders
    assert o["event"].tolist() == ["submit", "submit", "canceled"]
    assert o["side"].tolist() == ["B", "S", "B"]
    assert o["detail"].tolist() == ["DAY", "DAY", "canceled"]
    q = day.quotes
    assert len(q) == 5  # the hidden execution and the halt left the top unchanged: no row
    assert np.isnan(q["ask"].iloc[0]) and q["ask_qty"].iloc[0] == 0
    assert q["bid"].iloc[0] == 10000.0
    assert np.isnan(q["bid"].iloc[-1]) and q["ask"].iloc[-1] == 10002.0
    assert day.counts == {
        "submissions": 2,
        "partial_cancels": 1,
        "deletions": 1,
        "executions": 1,
        "hidden_executions": 1,
        "cross_trades": 0,
        "halt_messages": 1,
        "messages": 7,
    }


def simulated_day(seed: int, events: int = 40_000) -> tuple[list[tuple], list[tuple]]:
    """A consistent LOBSTER day: random submissions near the touch, deletions and executions of the
    best orders over 09:30-16:00, with the book file rebuilt from the messages."""
    rnd = random.Random(seed)
    live: dict[int, tuple[int, int, int]] = {}  # id -> (direction, price, size)
    mid, next_id, messages, tops = 1_000_000, 1, [], []
    times = sorted(rnd.uniform(34_200, 57_600) for _ in range(events))
    for time in times:
        bids = [(p, i) for i, (d, p, _) in live.items() if d == 1]
        asks = [(p, i) for i, (d, p, _) in live.items() if d == -1]
        u = rnd.random()
        if u < 0.12 and bids and asks:  # a marketable order takes the best order of one side
            direction = rnd.choice((1, -1))
            price, oid = max(bids) if direction == 1 else min(asks)
            size = live.pop(oid)[2]
            messages.append((time, 4, oid, size, price, direction))
        elif u < 0.5 and live:
            oid = rnd.choice(list(live))
            d, price, size = live.pop(oid)
            messages.append((time, 3, oid, size, price, d))
        else:
            mid += rnd.choice((-100, 0, 100))
            direction = rnd.choice((1, -1))
            price = mid - direction * 100 * (1 + int(rnd.expovariate(0.5)))
            size = 100 * rnd.randint(1, 5)
            live[next_id] = (direction, price, size)
            messages.append((time, 1, next_id, size, price, direction))
            next_id += 1
        bid = max((p for d, p, _ in live.values() if d == 1), default=None)
        ask = min((p for d, p, _ in live.values() if d == -1), default=None)
        if bid is not None and ask is not None and bid >= ask:  # keep the book uncrossed: drop the crossing asks
            for oid in [i for i, (d, p, _) in live.items() if d == -1 and p <= bid]:
                d, p, s = live.pop(oid)
                messages.append((time, 3, oid, s, p, d))
                tops.append(_top(live))
            ask = min((p for d, p, _ in live.values() if d == -1), default=None)
        tops.append(_top(live))
    return [(f"{m[0]:.9f}", *m[1:]) for m in messages], tops


def _top(live: dict[int, tuple[int, int, int]]) -> tuple[int, int, int, int]:
    bid = max((p for d, p, _ in live.values() if d == 1), default=None)
    ask = min((p for d, p, _ in live.values() if d == -1), default=None)
    bid_qty = sum(s for d, p, s in live.values() if d == 1 and p == bid)
    ask_qty = sum(s for d, p, s in live.values() if d == -1 and p == ask)
    return (
        EMPTY_ASK if ask is None else ask,
        ask_qty,
        EMPTY_BID if bid is None else bid,
        bid_qty,
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_realism_of_a_real_format_day_counts_what_lobster_recorded(tmp_path, seed):
    messages, tops = simulated_day(seed)
    day = read_day(write_pair(tmp_path, messages, tops))
    stats = realism_of(day)
    kinds = [m[1] for m in messages]
    submissions, deletions, executions = kinds.count(1), kinds.count(3), kinds.count(4)
    assert stats["n_new_resting"] == submissions
    assert stats["cancels_per_new_order"] == pytest.approx(deletions / submissions)
    assert stats["executions_per_new_order"] == pytest.approx(executions / submissions)
    assert stats["return_basis"] == "mid"
    assert stats["n_returns"] == 389  # 390 minute bars of 09:30-16:00
    assert stats["spread_median_ticks"] >= 1.0  # ticks of the $0.01 grid, never crossed
    assert stats["lobster_counts"]["messages"] == len(messages)
    # placement: every submission of the generator is at least one tick behind the mid it saw
    assert stats["placement_share_inside"] is not None
    assert stats["kurtosis_1m"] is not None and stats["grades"]


def test_a_trailing_column_some_copies_carry_is_ignored(tmp_path):
    """Some published copies of the sample days end each message row with an extra ``null`` field."""
    messages = [(34200.1, 1, 1, 100, 1000000, 1, "null"), (34200.2, 4, 1, 100, 1000000, 1, "null")]
    day = read_day(write_pair(tmp_path, messages, [(EMPTY_ASK, 0, 1000000, 100), (EMPTY_ASK, 0, EMPTY_BID, 0)]))
    assert day.trades["aggressor_side"].tolist() == ["S"] and day.counts["submissions"] == 1


def test_a_file_that_is_not_a_pair_is_refused(tmp_path):
    messages = [(34200.1, 1, 1, 100, 1000000, 1), (34200.2, 3, 1, 100, 1000000, 1)]
    msg = write_pair(tmp_path, messages, [(EMPTY_ASK, 0, 1000000, 100)])
    with pytest.raises(LobsterError, match="not a pair"):
        read_day(msg)
    other = tmp_path / "day.csv"
    other.write_text("a,b\n")
    with pytest.raises(LobsterError, match="message file name"):
        read_day(other)
    with pytest.raises(LobsterError, match="columns"):
        read_day(other, orderbook=other)


def test_the_command_prints_the_table_and_writes_the_statistics(tmp_path, capsys):
    messages, tops = simulated_day(4, events=20_000)
    msg = write_pair(tmp_path, messages, tops)
    out_json = tmp_path / "real.json"
    assert main(["realism", "--lobster", str(msg), "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "XYZ 2012-06-21" in text and "kurtosis_1m" in text and "passed" in text
    saved = json.loads(out_json.read_text())
    assert saved["XYZ 2012-06-21"]["n_new_resting"] == [m[1] for m in messages].count(1)
    assert main(["realism"]) == 2


def test_a_real_day_beside_a_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", "quick", "--duration", "600", "--no-report", "--out", str(run)]) == 0
    messages, tops = simulated_day(5, events=20_000)
    msg = write_pair(tmp_path, messages, tops)
    capsys.readouterr()
    assert main(["realism", str(run), "--lobster", str(msg)]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("statistic"))
    assert "XYZ 2012-06-21" in header and "quick seed" in header  # one column each
    assert main(["realism", str(tmp_path / "nowhere")]) == 2
    assert "cannot read run summary" in capsys.readouterr().err
