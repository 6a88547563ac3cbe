"""Who traded the worst fall (desksim/analytics/anatomy.py): hand-computed phases, invariants on
random tapes, and the run summary's ``worst_fall`` against the Monte Carlo row of the same run."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.exchange.exchange import TRADE_COLUMNS
from desksim.analytics.anatomy import COLUMNS, fall_anatomy, phase_windows, worst_fall_section
from desksim.analytics.crash import worst_fall
from sim.clock import MINUTE

GROUPS = {
    "noise-1": ("noise", "noise"),
    "noise-2": ("noise", "noise"),
    "value-1": ("value", "value"),
    "value-2": ("value", "value"),
    "mm": ("mm", "as_maker"),
    "seller": ("seller", "program"),
}


def tape(rows: list[tuple[float, int, int, str, str, str]]) -> pd.DataFrame:
    """Trades from (minute, price, qty, maker, taker, aggressor side)."""
    return pd.DataFrame(
        [(round(m * MINUTE), "XYZ", p, q, 0, 0, mk, tk, side) for m, p, q, mk, tk, side in rows],
        columns=list(TRADE_COLUMNS),
    )


# a 10 % fall from the print at 61 min to the trough at 64 min, a recovery with an auction print,
# and prints before the fall and after the recovery window
HAND = tape(
    [
        (10, 100, 100, "noise-1", "value-1", "B"),
        (30, 100, 200, "mm", "seller", "S"),
        (61, 100, 100, "mm", "noise-2", "B"),  # the peak: the fall starts here (closed)
        (63, 95, 300, "mm", "seller", "S"),
        (64, 90, 100, "noise-1", "seller", "S"),  # the trough
        (70, 96, 400, "mm", "value-2", "B"),
        (80, 97, 50, "seller", "noise-2", "A"),  # auction: seller sells to noise-2 (neither takes)
        (100, 98, 100, "mm", "value-1", "B"),  # after trough + 20 min: in no phase
    ]
)


def row(table: pd.DataFrame, group: str, phase: str) -> dict:
    hit = table[(table["group"] == group) & (table["phase"] == phase)]
    assert len(hit) == 1, (group, phase)
    return hit.iloc[0].to_dict()


def test_phases_of_a_hand_built_fall():
    fall = worst_fall(HAND["time_ns"], HAND["price"])
    assert fall.pct == pytest.approx(10.0)
    w = phase_windows(fall, 0, 120 * MINUTE)
    assert w == {
        "before": (1 * MINUTE, 61 * MINUTE),  # the hour before the start
        "fall": (61 * MINUTE, 64 * MINUTE),  # start to trough
        "recovery": (64 * MINUTE, 84 * MINUTE),  # to trough + 20 min
    }


def test_who_traded_a_hand_built_fall():
    table = fall_anatomy(HAND, 0, 120 * MINUTE, GROUPS)
    assert list(table.columns) == list(COLUMNS)
    # before [1, 61) min: prints at 10 and 30 (300 shares)
    v = row(table, "value", "before")
    assert (v["bought"], v["sold"], v["net"], v["taker_share_pct"]) == (100, 0, 100, 100.0)
    assert v["volume_share_pct"] == pytest.approx(100 / 6)
    s = row(table, "seller", "before")
    assert (s["net"], s["volume_share_pct"], s["taker_share_pct"]) == (-200, pytest.approx(100 / 3), 100.0)
    m = row(table, "mm", "before")
    assert (m["net"], m["taker_share_pct"], m["kind"]) == (200, 0.0, "as_maker")
    # fall [61, 64] min: 500 shares; noise-2 took 100 at the peak, noise-1 rested under the trough
    n = row(table, "noise", "fall")
    assert (n["bought"], n["sold"], n["net"], n["taker_share_pct"]) == (200, 0, 200, 50.0)
    assert n["volume_share_pct"] == pytest.approx(20.0)
    m = row(table, "mm", "fall")
    assert (m["bought"], m["sold"], m["net"], m["volume_share_pct"]) == (300, 100, 200, pytest.approx(40.0))
    s = row(table, "seller", "fall")
    assert (s["sold"], s["net"], s["taker_share_pct"]) == (400, -400, 100.0)
    assert not ((table["group"] == "value") & (table["phase"] == "fall")).any()
    # recovery (64, 84] min: 450 shares; the auction print is neither taken nor made
    v = row(table, "value", "recovery")
    assert (v["net"], v["taker_share_pct"], v["volume_share_pct"]) == (400, 100.0, pytest.approx(400 / 9))
    n = row(table, "noise", "recovery")
    assert (n["net"], n["taker_share_pct"]) == (50, 0.0)
    s = row(table, "seller", "recovery")
    assert (s["net"], s["taker_share_pct"]) == (-50, 0.0)
    assert row(table, "mm", "recovery")["net"] == -400
    # the print at 100 min is in no phase
    assert table.loc[table["phase"] == "recovery", "bought"].sum() == 450
    # sellers into the fall first, then by name among equal nets
    assert list(dict.fromkeys(table["group"])) == ["seller", "value", "mm", "noise"]


def test_no_fall_no_rows():
    rising = tape([(m, 100 + m, 100, "mm", "value-1", "B") for m in range(1, 30)])
    assert fall_anatomy(rising, 0, 60 * MINUTE, GROUPS).empty
    assert fall_anatomy(None, 0, 60 * MINUTE, GROUPS).empty


def test_unnamed_actors_are_their_own_group():
    table = fall_anatomy(HAND, 0, 120 * MINUTE, {})
    assert set(table["group"]) == {"noise-1", "noise-2", "value-1", "value-2", "mm", "seller"}
    assert set(table["kind"]) == {""}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 119 * 60),  # second of the print
            st.integers(80, 120),  # price
            st.integers(1, 500),  # qty
            st.sampled_from(sorted(GROUPS)),
            st.sampled_from(sorted(GROUPS)),
            st.sampled_from(["B", "S", "A"]),
        ),
        min_size=2,
        max_size=80,
    )
)
def test_nets_cancel_and_shares_add_up(prints):
    trades = tape([(s / 60, p, q, mk, tk, side) for s, p, q, mk, tk, side in sorted(prints)])
    table = fall_anatomy(trades, 0, 120 * MINUTE, GROUPS)
    for _phase, part in table.groupby("phase"):
        assert part["net"].sum() == 0  # every share bought was sold by someone
        assert part["bought"].sum() == part["sold"].sum()
        assert part["volume_share_pct"].sum() == pytest.approx(100.0)
        assert ((part["taker_share_pct"] >= 0) & (part["taker_share_pct"] <= 100)).all()


def test_summary_measures_equal_the_crash_measures_and_the_monte_carlo_row():
    """A run's summary carries the crash measures (as crash_metrics computes them from its tables),
    its runs.parquet row reads them back, and the summary says who traded the fall."""
    from desksim import api
    from desksim.analytics.anatomy import maker_names
    from desksim.analytics.crash import crash_metrics
    from desksim.mc.metrics import run_metrics
    from scenarios.schema import load

    scenario = load("flash_crash_scripted")
    res = api.run("flash_crash_scripted", seed=3, duration_s=2400)
    section = res.summary["worst_fall"]
    open_ns = scenario.session.open_ns
    direct = crash_metrics(res.trades, res.frames["quotes"], open_ns, open_ns + 2400 * 10**9, maker_names(scenario))
    row = run_metrics(res, 0, 3, open_ns, scenario.tick_size)
    for key, expected in direct.items():
        value = section[key]
        if value is None:
            assert math.isnan(expected) and math.isnan(row[key]), key
        elif value == "inf":
            assert math.isinf(expected) and math.isinf(row[key]), key
        else:
            assert value == pytest.approx(expected) and row[key] == value, key
    groups = section["by_group"]
    assert section["fall_15m_pct"] > 0 and groups
    for phase in ("before", "fall"):
        nets = [g[phase]["net"] for g in groups.values() if phase in g]
        assert sum(nets) == 0
    assert groups["seller"]["kind"] == "program"
    assert groups["seller"]["fall"]["net"] < 0  # the program sold into its own fall
    assert row["fall_net_program"] == groups["seller"]["fall"]["net"]
    roles = [row[f"fall_net_{role}"] for role in ("makers", "value", "noise", "momentum", "program", "desk", "other")]
    assert sum(roles) == 0  # the roles' nets in the fall cancel too


def test_worst_fall_section_without_trades():
    empty = pd.DataFrame({c: [] for c in TRADE_COLUMNS})
    section = worst_fall_section(empty, None, 0, MINUTE)
    assert section["fall_15m_pct"] is None and section["by_group"] == {}
    assert np.isnan(worst_fall([], []).pct)


def test_role_nets_sum_groups_by_kind():
    from desksim.analytics.anatomy import ROLE_KEYS, role_nets

    by_group = {
        "mm-as": {"kind": "as_maker", "fall": {"net": 300}, "recovery": {"net": -100}},
        "hft": {"kind": "as_maker", "fall": {"net": 200}},
        "mm-ladder": {"kind": "ladder_maker", "fall": {"net": -50}, "recovery": {"net": -400}},
        "seller": {"kind": "program", "fall": {"net": -600}, "recovery": {"net": 500}},
        "alerts": {"kind": "price_alert", "fall": {"net": 150}},
    }
    nets = role_nets(by_group)
    assert set(nets) == set(ROLE_KEYS)
    assert nets["fall_net_makers"] == 450 and nets["recovery_net_makers"] == -500
    assert nets["fall_net_program"] == -600 and nets["fall_net_other"] == 150
    assert nets["fall_net_value"] == 0.0  # the phase exists: a role that did not trade bought nothing
    assert all(math.isnan(v) for v in role_nets({}).values())  # no fall
    only_fall = role_nets({"x": {"kind": "noise", "fall": {"net": 0}}})
    assert only_fall["fall_net_noise"] == 0 and math.isnan(only_fall["recovery_net_noise"])


def test_monte_carlo_summary_says_who_traded_the_falls():
    from desksim.analytics import crash as C
    from desksim.analytics.anatomy import ROLE_KEYS
    from desksim.mc.summary import crash_lines, crash_summary

    n = 6
    runs = pd.DataFrame({k: np.full(n, np.nan) for k in (*C.KEYS, *ROLE_KEYS)})
    runs["fall_15m_pct"] = [6.0, 8.0, 1.0, 12.0, 0.5, 5.0]  # runs 0, 1, 3 and 5 fell >= 5 %
    for k in ROLE_KEYS:
        runs[k] = 0.0
    runs["fall_net_program"] = [-100.0, -300.0, -9000.0, -200.0, -9000.0, -400.0]
    runs["fall_net_makers"] = [100.0, 300.0, 9000.0, 200.0, 9000.0, 400.0]
    who = crash_summary(runs, seed=1)["who_traded"]
    assert who["program"]["fall"]["n"] == 4  # only the runs with a >= 5 % fall
    assert who["program"]["fall"]["median"] == -250.0 and who["makers"]["fall"]["median"] == 250.0
    text = "\n".join(crash_lines(crash_summary(runs, seed=1)))
    assert "who traded the fall (runs with a >= 5% fall: 4)" in text
    assert any(line.split()[:2] == ["program", "-250"] for line in text.splitlines())
    assert not any(line.split()[:1] == ["value"] for line in text.splitlines())  # never traded: not shown
    from desksim.report import crash_tables

    html = crash_tables(crash_summary(runs, seed=1), ("n", "median"))
    assert "Who traded the fall" in html and "<td>program</td><td>fall</td>" in html.replace("\n", "")
    assert "<td>value</td>" not in html
