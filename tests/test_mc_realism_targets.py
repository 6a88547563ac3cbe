"""The Monte Carlo summary's realism against real days: per target, the share of runs in range."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from desksim.analytics.targets import BY_KEY, TARGETS
from desksim.mc.metrics import REALISM_STATS, SCHEMA
from desksim.mc.summary import realism_lines, realism_targets


def test_every_target_is_a_runs_column_with_a_count_of_the_targets_met():
    names = set(SCHEMA.names)
    assert {t.key for t in TARGETS} <= set(REALISM_STATS) <= names
    assert "realism_targets_met" in names


def test_shares_count_the_runs_in_range_over_the_runs_that_have_the_statistic():
    runs = pd.DataFrame(
        {
            # -0.1 to 0.1, both ends in range; NaN: not computed, so not graded
            "acf1_1m": [0.05, -0.2, 0.1, math.nan, 0.11],
            # strictly above 0: 0.0 is out
            "kurtosis_drop_1m_30m": [0.0, 0.5, 1.0, 2.0, -1.0],
            "realism_targets_met": [len(TARGETS), 3, len(TARGETS), 12, 0],
        }
    )
    res = realism_targets(runs, seed=1)
    acf = res["targets"]["acf1_1m"]
    assert (acf["n"], acf["runs"], acf["share"]) == (4, 2, 0.5)
    assert acf["range"] == BY_KEY["acf1_1m"].text and acf["real"] == BY_KEY["acf1_1m"].real
    lo, hi = acf["ci"]
    assert 0.0 <= lo <= 0.5 <= hi <= 1.0 and lo < hi
    assert acf["values"]["median"] == 0.075  # of the four computed values
    drop = res["targets"]["kurtosis_drop_1m_30m"]
    assert (drop["n"], drop["runs"], drop["share"]) == (5, 3, 0.6)
    assert set(res["targets"]) == {"acf1_1m", "kurtosis_drop_1m_30m"}  # only the columns present
    assert (res["all"]["runs"], res["all"]["n"], res["all"]["share"]) == (2, 5, 0.4)


def test_intervals_are_seeded_and_collapse_when_every_run_agrees():
    runs = pd.DataFrame({"acf1_1m": np.arange(-20, 20) / 100, "spread_median_bps": np.full(40, 3.0)})
    a, b = realism_targets(runs, seed=7), realism_targets(runs, seed=7)
    assert a == b
    acf = a["targets"]["acf1_1m"]
    assert acf["share"] == 21 / 40  # -0.10 .. 0.10 and acf["ci"][0] < acf["share"] < acf["ci"][1]
    spread = a["targets"]["spread_median_bps"]
    assert spread["share"] == 1.0 and spread["ci"] == [1.0, 1.0]


def test_lines_name_each_target_with_its_range_count_and_spread():
    runs = pd.DataFrame({"acf1_1m": [0.05, -0.2, 0.1, 0.11], "realism_targets_met": [13, 0, 13, 0]})
    lines = realism_lines(realism_targets(runs, seed=1))
    row = next(line for line in lines if line.strip().startswith("acf1_1m"))
    assert "-0.1 to 0.1" in row and "2/4" in row and "50.0%" in row
    assert any(line.strip().startswith("every target") and "2/4" in line for line in lines)
    assert realism_lines({"targets": {}}) == []
