"""A program's size against ordinary order flow (desksim/analytics/flowsignal.py), on trades whose
windows are worked out by hand, and the benchmark that prints it on a real (short) run."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from desksim.analytics.flowsignal import flow_signal, summarise, window_flows
from sim.clock import MINUTE, SECOND

REPO = Path(__file__).resolve().parent.parent


def _trades() -> tuple[list[int], list[int], list[str]]:
    """Three 10-minute windows from t=0 and a print after the third, by hand:
    window 0: buy 300, sell 100            -> net +200, volume 400
    window 1: sell 500, auction print 200  -> net -500, volume 700 (the auction print has no side)
    window 2: buy 100, buy 100, sell 100   -> net +100, volume 300
    after:    sell 1000 at 30 min          -> outside every whole window of [0, 35 min)"""
    m = MINUTE
    times = [1 * m, 9 * m, 10 * m, 15 * m, 20 * m, 25 * m, 29 * m + 59 * SECOND, 30 * m]
    qty = [300, 100, 500, 200, 100, 100, 100, 1000]
    side = ["B", "S", "S", "", "B", "B", "S", "S"]
    return times, qty, side


def test_windows_are_whole_and_signed_by_the_aggressor() -> None:
    times, qty, side = _trades()
    net, vol = window_flows(times, qty, side, 0, 35 * MINUTE, 10 * MINUTE)
    assert net.tolist() == [200, -500, 100]
    assert vol.tolist() == [400, 700, 300]


def test_the_statistics_follow_their_definitions() -> None:
    times, qty, side = _trades()
    sig = flow_signal(times, qty, side, start_ns=0, end_ns=35 * MINUTE, window_ns=10 * MINUTE, pov=0.5)
    # nets 200, -500, 100 (mean -200/3): the sample standard deviation, ddof 1
    sd = math.sqrt(((200 + 200 / 3) ** 2 + (-500 + 200 / 3) ** 2 + (100 + 200 / 3) ** 2) / 2)
    assert sig.windows == 3 and sig.window_min == 10
    assert sig.sd_net == pytest.approx(sd)
    assert sig.program == pytest.approx(0.5 * (400 + 700 + 300) / 3)
    assert sig.ratio == pytest.approx(sig.program / sd)
    # |net| >= 0.5 x volume: 200 >= 200 yes, 500 >= 350 yes, 100 >= 150 no
    assert sig.matched == pytest.approx(2 / 3)


def test_a_window_starting_later_and_too_few_windows() -> None:
    times, qty, side = _trades()
    net, vol = window_flows(times, qty, side, 5 * MINUTE, 31 * MINUTE, 10 * MINUTE)
    # [5, 15): sell 100 (at 9) and sell 500 (at 10); [15, 25): auction 200 and buy 100
    assert net.tolist() == [-600, 100] and vol.tolist() == [600, 300]
    one = summarise(np.array([5]), np.array([10]), 10 * MINUTE, 0.09)
    assert one.windows == 1 and math.isnan(one.ratio)
    with pytest.raises(ValueError):
        window_flows(times, qty, side, 0, MINUTE, 0)


@pytest.mark.slow
def test_benchmark_prints_the_ratio_for_a_scenario_run_without_its_program() -> None:
    out = subprocess.run(
        [sys.executable, "benchmarks/program_signal.py", "--seeds", "1", "--windows", "10", "--pov", "0.09"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    assert "flash_crash_scripted without its program" in out
    row = next(line.split() for line in out.splitlines() if line.strip().startswith("10 m"))
    windows = int(row[2])
    sd_net, program, ratio = (float(x.replace(",", "")) for x in row[3:6])
    assert windows == 6  # 10:00-11:00 in 10-minute windows
    assert sd_net > 0 and program > 0
    assert ratio == pytest.approx(program / sd_net, rel=0.01)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seeds", "x"], "expected seeds like 1-3,7"),
        (["--seeds", "3-1"], "no seed in"),
        (["--windows", "0"], "must be > 0 minutes"),
        (["--from", "25:00"], "not a time of day"),
        (["--from", "11:00", "--to", "10:00"], "--to must come after --from"),
    ],
)
def test_benchmark_refuses_bad_arguments_with_a_clear_error(args: list[str], message: str) -> None:
    out = subprocess.run(
        [sys.executable, "benchmarks/program_signal.py", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert message in out.stderr
