"""desksim compare: two Monte Carlo experiments run by run against the real-day targets."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from desksim.cli import main
from desksim.mc.compare import CompareError, compare_lines, mcnemar_p, pair_runs, paired


def _runs(seeds, acf1, kurtosis=None):
    frame = pd.DataFrame({"run": range(len(seeds)), "run_seed": [str(s) for s in seeds], "acf1_1m": acf1})
    if kurtosis is not None:
        frame["kurtosis_1m"] = kurtosis
    return frame


def test_runs_are_paired_by_run_seed_not_by_row():
    base = _runs([3, 1, 2, 9], [0.3, 0.1, 0.2, 0.9])
    variant = _runs([2, 3, 1, 7], [0.22, 0.33, 0.11, 0.77])
    b, v = pair_runs(base, variant)
    assert list(b.index) == list(v.index) == ["1", "2", "3"]  # 9 and 7 have no partner
    assert list(v["acf1_1m"] / b["acf1_1m"]) == pytest.approx([1.1, 1.1, 1.1])


@pytest.mark.parametrize(
    ("base", "variant", "says"),
    [
        (_runs([1, 2], [0, 0]), _runs([3, 4], [0, 0]), "only 0 run seed(s) in both"),
        (_runs([1, 2], [0, 0]), _runs([2, 5], [0, 0]), "only 1 run seed(s) in both"),
        (_runs([1, 1], [0, 0]), _runs([1, 2], [0, 0]), "base: a run seed appears twice"),
        (_runs([1, 2], [0, 0]).drop(columns="run_seed"), _runs([1, 2], [0, 0]), "base: no run_seed column"),
    ],
)
def test_experiments_that_cannot_be_paired_are_refused(base, variant, says):
    with pytest.raises(CompareError, match=says.replace("(", r"\(").replace(")", r"\)")):
        pair_runs(base, variant)


def test_a_tiny_p_value_prints_as_below_a_thousandth():
    base = _runs(range(12), [0.0] * 12)
    variant = _runs(range(12), [0.5] * 12)  # every run leaves the range: 12 pairs lost, p = 2 / 4096
    out = paired(base, variant)
    assert out["targets"]["acf1_1m"]["p_value"] == pytest.approx(2 / 4096)
    row = next(line for line in compare_lines(out) if "acf1_1m" in line)
    assert "12 -> 0   +0/-12  <0.001" in row


def test_mcnemar_exact_two_sided():
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(0, 6) == pytest.approx(2 / 64)  # all six discordant pairs one way: 2 * 0.5^6
    assert mcnemar_p(6, 0) == pytest.approx(2 / 64)
    assert mcnemar_p(1, 5) == pytest.approx(2 * 7 / 64)  # P(X <= 1) = (1 + 6) / 64, doubled
    assert mcnemar_p(3, 3) == 1.0


def test_paired_hand_computed():
    # acf1 range -0.1..0.1: base in range on runs 1 and 4, variant on 1, 2, 3
    base = _runs([1, 2, 3, 4], [0.05, 0.15, -0.2, 0.0], kurtosis=[3.0, 3.0, 3.0, 3.0])
    variant = _runs([1, 2, 3, 4], [0.02, 0.05, -0.05, 0.12], kurtosis=[3.0, 7.0, 3.0, np.nan])
    out = paired(base, variant)
    assert out["pairs"] == 4
    a = out["targets"]["acf1_1m"]
    assert a["met"] == [2, 3] and (a["gained"], a["lost"]) == (2, 1)
    assert a["p_value"] == pytest.approx(1.0)  # 2 of 3 discordant pairs: no evidence
    diffs = np.array([-0.03, -0.10, 0.15, 0.12])
    assert a["mean_diff"] == pytest.approx(diffs.mean())
    assert a["se"] == pytest.approx(diffs.std(ddof=1) / 2)
    assert a["mean"] == pytest.approx([0.0, 0.035])
    # a statistic one side could not compute leaves the pair out of that target
    k = out["targets"]["kurtosis_1m"]
    assert k["pairs"] == 3 and k["met"] == [3, 2] and (k["gained"], k["lost"]) == (0, 1)
    assert k["mean_diff"] == pytest.approx(4 / 3)
    # targets neither frame has are not reported; a missing statistic never meets "every target"
    assert set(out["targets"]) == {"acf1_1m", "kurtosis_1m"}
    assert out["all"]["met"] == [0, 0]


def test_every_target_counts_runs_meeting_all_of_them():
    from desksim.analytics.targets import TARGETS

    def frame(seeds, ok):
        rows = []
        for seed, good in zip(seeds, ok, strict=True):
            row = {"run_seed": str(seed)}
            for t in TARGETS:
                if t.lo is not None and t.hi is not None:
                    inside = (t.lo + t.hi) / 2
                else:
                    inside = t.lo + 1.0 if t.lo is not None else t.hi - 1.0
                outside = t.hi + 1.0 if t.hi is not None else t.lo - 1.0
                row[t.key] = inside if good else outside
            rows.append(row)
        return pd.DataFrame(rows)

    base = frame(range(8), [True, True, False, False, False, False, False, False])
    variant = frame(range(8), [True, False, True, True, True, True, True, True])
    out = paired(base, variant)
    assert out["all"]["met"] == [2, 7] and (out["all"]["gained"], out["all"]["lost"]) == (6, 1)
    assert out["all"]["p_value"] == pytest.approx(mcnemar_p(6, 1)) == pytest.approx(2 * 8 / 128)
    assert all(d["met"] == [2, 7] for d in out["targets"].values())


def test_compare_lines_show_counts_and_differences():
    base = _runs([1, 2, 3], [0.05, 0.15, 0.0])
    variant = _runs([1, 2, 3], [0.02, 0.05, 0.01])
    lines = compare_lines(paired(base, variant), "A", "B")
    assert lines[0] == "paired comparison over 3 runs with the same run seeds: B against A"
    row = next(line for line in lines if "acf1_1m" in line)
    assert "2 -> 3" in row and "+1/-0" in row and "+0.067 -> +0.027" in row and "-0.040 +-" in row
    every = next(line for line in lines if "every target" in line)
    assert every.split()[:5] == ["every", "target", "0", "->", "0"]
    # no crash measures in these frames: no run meets a criterion; no outcome column: no outcome rows
    crash_rows = [line.split() for line in lines if line.strip().startswith(("fall_5pct_15m", "all_2010"))]
    assert [row[:4] for row in crash_rows] == [["fall_5pct_15m", "0", "->", "0"], ["all_2010", "0", "->", "0"]]
    assert not any(line.startswith("  outcomes") for line in lines)


def test_crash_criteria_and_outcomes_run_by_run():
    """The counterfactual: the same days under two rule sets, criteria gained and lost per run."""
    base = _runs([1, 2, 3, 4], [0.0] * 4).assign(
        fall_15m_pct=[8.0, 6.0, 2.0, 7.0],
        crash_volume_ratio=[4.0, 1.0, 1.0, 5.0],
        crash_depth_min_ratio=[0.1, 0.1, 0.9, 0.2],
        crash_m2m_ratio=[1.5, 1.2, np.nan, 2.0],
        recovered_20m_share=[0.6, 0.8, np.nan, 0.7],
        desk_pnl_net=[-100.0, 50.0, 10.0, -30.0],
        halts=[0, 0, 0, 0],
    )
    variant = _runs([1, 2, 3, 4], [0.0] * 4).assign(
        fall_15m_pct=[4.0, 5.0, 2.0, 6.0],
        crash_volume_ratio=[4.0, 3.5, 1.0, 5.0],
        crash_depth_min_ratio=[0.1, 0.1, 0.9, 0.2],
        crash_m2m_ratio=[1.5, 1.2, np.nan, 2.0],
        recovered_20m_share=[0.6, 0.8, np.nan, 0.4],
        desk_pnl_net=[-20.0, 40.0, 10.0, -10.0],
        halts=[2, 1, 0, 1],
    )
    out = paired(base, variant)
    crash = out["crash"]
    assert crash["fall_5pct_15m"]["met"] == [3, 2] and (
        crash["fall_5pct_15m"]["gained"],
        crash["fall_5pct_15m"]["lost"],
    ) == (0, 1)
    assert crash["volume_3x"]["met"] == [2, 3]
    # all five 2010 criteria: runs 1 and 4 in the base; in the variant run 1 fell only 4 % and run
    # 4 recovered under half, while run 2 now meets all five
    assert crash["all_2010"]["met"] == [2, 1] and (crash["all_2010"]["gained"], crash["all_2010"]["lost"]) == (
        1,
        2,
    )
    assert out["outcomes"]["fall_15m_pct"]["mean_diff"] == pytest.approx((-4 - 1 + 0 - 1) / 4)
    assert out["outcomes"]["desk_pnl_net"]["mean"] == pytest.approx([-17.5, 5.0])
    assert out["outcomes"]["halts"]["mean_diff"] == pytest.approx(1.0)
    assert out["outcomes"]["recovered_20m_share"]["pairs"] == 3  # run 3 has no recovery figure
    lines = compare_lines(out)
    assert next(line for line in lines if "depth_below_quarter" in line).split()[:6] == [
        "depth_below_quarter",
        "3",
        "->",
        "3",
        "+0/-0",
        "1.000",
    ]
    assert set(out["outcomes"]) == {"fall_15m_pct", "recovered_20m_share", "desk_pnl_net", "halts"}


def test_cli_compare(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, acf1 in ((a, [0.2, 0.0, 0.3, 0.05]), (b, [0.0, 0.01, 0.02, 0.05])):
        folder.mkdir()
        _runs([11, 12, 13, 14], acf1).to_parquet(folder / "runs.parquet")
    out_json = tmp_path / "cmp.json"
    assert main(["compare", str(a), str(b), "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    assert "paired comparison over 4 runs" in printed and "2 -> 4" in printed
    saved = json.loads(out_json.read_text())
    assert saved["targets"]["acf1_1m"]["gained"] == 2 and saved["targets"]["acf1_1m"]["lost"] == 0
    assert math.isclose(saved["targets"]["acf1_1m"]["mean_diff"], (-0.2 + 0.01 - 0.28 + 0.0) / 4)
    # a folder without runs.parquet, and two experiments with no run seed in common
    assert main(["compare", str(a), str(tmp_path)]) == 2
    assert "no runs.parquet (not a desksim mc folder)" in capsys.readouterr().err
    _runs([21, 22], [0.0, 0.0]).to_parquet(b / "runs.parquet")
    assert main(["compare", str(a), str(b)]) == 2
    assert "run both with the same --seed" in capsys.readouterr().err
