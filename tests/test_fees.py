"""Issue 16 item 6: maker-taker (and inverted) fee schedules per venue, applied exactly in every
P&L, implementation shortfall and maker statistic; the matching (and the digest) never sees them."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from desksim import api
from desksim.analytics.fees import (
    NO_FEES,
    Rates,
    Schedule,
    desk_fee_figures,
    fee_section,
    fill_fee,
    fill_fees,
    legs,
    participants,
    schedule_of,
)
from scenarios.schema import ScenarioError, parse

MAKER_TAKER = {"exchange": {"maker_per_share": -0.0020, "taker_per_share": 0.0030}}
INVERTED = {"exchange": {"maker_per_share": 0.0020, "taker_per_share": -0.0030}}


def schedule(fees: dict[str, Any], **more: Any) -> Schedule:
    return schedule_of(parse({"name": "t", "fees": fees, **more}))


def trades(rows: list[tuple[int, int, str, str, str]]) -> pd.DataFrame:
    """A trades table from (price ticks, qty, maker, taker, aggressor side) rows."""
    return pd.DataFrame(
        [(i, "XYZ", px, q, 2 * i, 2 * i + 1, mk, tk, side) for i, (px, q, mk, tk, side) in enumerate(rows)],
        columns=["time_ns", "symbol", "price", "qty", "maker_id", "taker_id", "maker", "taker", "aggressor_side"],
    )


# -- the arithmetic, by hand ------------------------------------------------------------------------
def test_a_maker_with_three_passive_fills_earns_exactly_the_rebate_sum():
    """mm rests and is hit three times: 100, 250 and 37 shares at 0.20 cent rebate per share =
    0.2000 + 0.5000 + 0.0740 = 0.7740 rebate; the takers pay 0.30 cent per share: 387 x 0.003 = 1.1610."""
    fees = schedule(MAKER_TAKER)
    assert fees.base == Rates(maker=-2000, taker=3000, auction=0) and fees.round_to == 100
    t = trades([(10000, 100, "mm", "noise-0000", "B"), (10001, 250, "mm", "noise-0001", "S"),
                (10000, 37, "mm", "noise-0000", "B")])  # fmt: skip
    table = participants(t, fees, 0.01).set_index("participant")
    mm = table.loc["mm"]
    assert (mm["fills"], mm["maker_qty"], mm["taker_qty"]) == (3, 387, 0)
    assert mm["fees_units"] == -(200_000 + 500_000 + 74_000) and mm["rebates_ccy"] == 0.774
    assert mm["fees_ccy"] == -0.774 and mm["fees_paid_ccy"] == 0.0
    # mm sold 100 @ 10000, bought 250 @ 10001, sold 37 @ 10000: position +113, cash -1,500,250 ticks
    # x shares, marked at the last trade (10000): gross -250 ticks x shares = -2.50; net -2.50 + 0.774
    assert mm["position"] == 113 and mm["pnl_gross_tick_shares"] == -250
    assert mm["pnl_gross_ccy"] == -2.5 and mm["pnl_net_ccy"] == pytest.approx(-1.726, abs=1e-12)
    noise = table.loc[["noise-0000", "noise-0001"]]
    assert list(noise["taker_qty"]) == [137, 250] and list(noise["fees_ccy"]) == [0.411, 0.75]
    assert noise["fees_units"].sum() + mm["fees_units"] == 387 * 1000  # the venue keeps 0.10 cent a share
    assert table["pnl_gross_tick_shares"].sum() == 0  # trading is zero-sum before fees


def test_a_taker_pays_and_an_inverted_schedule_flips_every_sign():
    t = trades([(10000, 100, "mm", "noise", "B"), (9999, 300, "mm", "noise", "S")])
    normal = participants(t, schedule(MAKER_TAKER), 0.01).set_index("participant")
    inverted = participants(t, schedule(INVERTED), 0.01).set_index("participant")
    assert normal.loc["noise", "fees_ccy"] == 1.2 and normal.loc["mm", "fees_ccy"] == -0.8
    assert inverted.loc["noise", "fees_ccy"] == -1.2 and inverted.loc["mm", "fees_ccy"] == 0.8
    assert inverted.loc["noise", "rebates_ccy"] == 1.2 and inverted.loc["mm", "fees_paid_ccy"] == 0.8
    assert (inverted["fees_units"] == -normal["fees_units"]).all()
    assert (inverted["pnl_gross_ccy"] == normal["pnl_gross_ccy"]).all()


def test_each_fill_is_rounded_half_away_from_zero_to_the_billing_unit():
    # 0.00295 x 3 shares = 0.00885 -> 0.0089; the rebate of the same size -> -0.0089 (mirror image)
    assert fill_fee(2950, 3, 100) == 8900 and fill_fee(-2950, 3, 100) == -8900
    assert fill_fee(2950, 1, 100) == 3000  # 0.00295 -> 0.0030
    assert fill_fee(49, 1, 100) == 0 and fill_fee(51, 1, 100) == 100 and fill_fee(50, 1, 100) == 100
    assert fill_fee(-50, 1, 100) == -100 and fill_fee(2950, 3, 1) == 8850  # round_to 0.000001: exact
    rates, qty = pd.Series([2950, -2950, 49, -50, 3000]), pd.Series([3, 3, 1, 1, 7])
    assert list(fill_fees(rates, qty, 100)) == [8900, -8900, 0, -100, 21000]
    # rounding is per fill: three 1-share fills of 0.00295 cost 3 x 0.0030, one 3-share fill 0.0089
    t = trades([(10000, 1, "mm", "a", "B")] * 3 + [(10000, 3, "mm", "b", "B")])
    table = participants(t, schedule({"exchange": {"taker_per_share": 0.00295}}), 0.01).set_index("participant")
    assert table.loc["a", "fees_ccy"] == 0.009 and table.loc["b", "fees_ccy"] == 0.0089
    # the same case reckoned as a venue's invoice would, with Decimal
    exact = (Decimal("0.00295") * 3).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    assert float(exact) == table.loc["b", "fees_ccy"]


def test_auction_prints_charge_both_sides_the_auction_rate():
    """An auction print (aggressor "A"): the maker column is the seller, the taker column the buyer."""
    fees = schedule({"exchange": {"maker_per_share": -0.002, "taker_per_share": 0.003, "auction_per_share": 0.0005}})
    t = trades([(10000, 200, "seller", "buyer", "A"), (10001, 100, "seller", "buyer", "S")])
    fills = legs(t)
    assert list(fills["liquidity"]) == ["auction", "auction", "maker", "taker"]
    assert list(fills["side"]) == ["S", "B", "B", "S"]  # the second print: the taker sold into a bid
    table = participants(t, fees, 0.01).set_index("participant")
    assert table.loc["seller", "auction_qty"] == 200 and table.loc["buyer", "auction_qty"] == 200
    assert table.loc["seller", "fees_ccy"] == 0.1 - 0.2 and table.loc["buyer", "fees_ccy"] == 0.1 + 0.3
    assert table.loc["seller", "position"] == -100 and table.loc["buyer", "position"] == 100


def test_overrides_match_actor_globs_and_inherit_the_venue_rates():
    agents = [{"kind": "ladder_maker", "name": "mm", "count": 2}, {"kind": "noise", "count": 3}]
    fees = schedule(
        {"exchange": {**MAKER_TAKER["exchange"], "overrides": {"mm-0001": {"maker_per_share": -0.0032}}}},
        agents=agents,
    )
    assert fees.rates_for("mm-0001") == Rates(-3200, 3000, 0) and fees.rates_for("mm-0000") == Rates(-2000, 3000, 0)
    t = trades([(10000, 100, "mm-0000", "noise-0000", "B"), (10000, 100, "mm-0001", "noise-0001", "B")])
    section = fee_section(participants(t, fees, 0.01, {"mm-0000": ("mm", "ladder_maker"),
                                                       "mm-0001": ("mm", "ladder_maker")}), fees, 0.01)  # fmt: skip
    assert section["makers"]["mm-0000"]["rebates_ccy"] == 0.2 and section["makers"]["mm-0001"]["rebates_ccy"] == 0.32
    assert section["groups"]["mm"]["rebates_ccy"] == 0.52 and section["groups"]["mm"]["actors"] == 2
    assert section["venue_take_ccy"] == pytest.approx(0.6 - 0.52)


@pytest.mark.parametrize(
    ("fees", "message"),
    [
        ({"nyse": {}}, "fees.nyse: unknown venue (venues: exchange)"),
        ({"exchange": {"maker_per_share": 0.0000001}}, "fees.exchange.maker_per_share: 0.0000001 is not a whole"),
        ({"exchange": {"taker_per_share": 0.5}}, "fees.exchange.taker_per_share: a rate must lie within"),
        ({"exchange": {"maker": -0.002}}, "fees.exchange.maker: unknown field (valid: maker_per_share,"),
        ({"exchange": {"round_to": 0}}, "fees.exchange.round_to: Input should be greater than 0"),
        ({"exchange": {"overrides": {"whale*": {}}}}, "fees.exchange.overrides.whale*: matches no actor"),
        ({"exchange": {"overrides": {"exchange": {"taker": 1}}}}, "fees.exchange.overrides.exchange.taker: unknown"),
    ],
)
def test_a_bad_fees_section_names_its_field(fees, message):
    with pytest.raises(ScenarioError) as err:
        parse({"name": "t", "fees": fees})
    assert message in str(err.value)


def test_no_fees_section_is_no_fees():
    assert schedule_of(parse({"name": "t"})) == NO_FEES and not NO_FEES.charged
    t = trades([(10000, 100, "mm", "noise", "B")])
    table = participants(t, NO_FEES, 0.01)
    assert (table["fees_units"] == 0).all() and (table["pnl_net_ccy"] == table["pnl_gross_ccy"]).all()


def test_desk_fees_are_an_explicit_shortfall_component():
    """A buy parent of 300 at arrival mid 10000 (100.00): fills 100 maker @ 9999 and 200 taker @ 10001."""
    fills = pd.DataFrame(
        [(1, 1, 11, "B", 9999, 100, "maker", 10000.0, 10000.0), (2, 1, 12, "B", 10001, 200, "taker", 10000.0, 10000.0)],
        columns=["time_ns", "parent_id", "child_id", "side", "price", "qty", "liquidity", "child_mid", "arrival_mid"],
    )
    # execution cost: 100 x (9999 - 10000) + 200 x (10001 - 10000) = +100 ticks x shares = 1.00
    parents = pd.DataFrame([{"parent_id": 1, "side": "B", "qty": 300, "filled_qty": 300, "arrival_mid": 10000.0,
                             "is_currency": 1.0, "total_is_currency": 1.0}])  # fmt: skip
    desk = {"name": "desk", "final_mid_ticks": 10000.5, "total_is_currency": 1.0}
    figures, out = desk_fee_figures(desk, fills, parents, schedule(MAKER_TAKER), 0.01)
    # fees: -0.2000 (rebate on 100) + 0.6000 (200 taken) = 0.40
    assert figures["fees_ccy"] == 0.4 and figures["rebates_ccy"] == 0.2 and figures["fees_paid_ccy"] == 0.6
    assert (figures["maker_qty"], figures["taker_qty"], figures["auction_qty"]) == (100, 200, 0)
    # gross: cash -(999,900 + 2,000,200) + 300 x 10000.5 = +50 ticks x shares = 0.50; net 0.10
    assert figures["pnl_gross_ccy"] == 0.5 and figures["pnl_net_ccy"] == pytest.approx(0.1, abs=1e-12)
    assert figures["is_fees_currency"] == 0.4 and figures["total_is_net_currency"] == pytest.approx(1.4)
    assert figures["is_fees_bps"] == pytest.approx(0.4 / (100.0 * 300) * 1e4)
    assert out is not None and list(out["fees_currency"]) == [0.4]
    assert out["total_is_net_bps"].iloc[0] == pytest.approx(1.4 / 30_000 * 1e4)


# -- a whole run ------------------------------------------------------------------------------------
def _by_hand(rows: pd.DataFrame, maker: str, taker: str, auction: str = "0") -> Decimal:
    """Fees (currency) of fills with a ``liquidity`` column, per fill, as a venue bills them."""
    rate = {"maker": Decimal(maker), "taker": Decimal(taker)}
    total = Decimal(0)
    for liq, qty in zip(rows["liquidity"], rows["qty"], strict=True):
        fee = rate.get(liq, Decimal(auction)) * int(qty)
        total += fee.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)  # half away from zero
    return total


@pytest.fixture(scope="module")
def runs() -> dict[str, Any]:
    """fat_finger (a desk with passive and marketable children, and a fat-finger order through the
    same OMS), 15 minutes: without fees, maker-taker and inverted."""
    out = {}
    for key, fees in (("none", None), ("maker_taker", MAKER_TAKER), ("inverted", INVERTED)):
        out[key] = api.run("fat_finger", seed=1, duration_s=900, overrides={"fees": fees} if fees else None)
    return out


def test_fees_never_change_the_event_stream(runs):
    digests = {key: r.summary["digest"] for key, r in runs.items()}
    assert len(set(digests.values())) == 1, digests
    for key in ("trades", "orders"):
        pd.testing.assert_frame_equal(runs["none"].frames[key], runs["maker_taker"].frames[key])


def test_no_fees_gives_the_numbers_of_today(runs):
    plain, charged = runs["none"].summary, runs["maker_taker"].summary
    for section in ("desk", "pnl", "oms", "desk_outcome", "realism"):
        before = {k: v for k, v in plain[section].items() if not any(w in k for w in ("fee", "net", "rebate"))}
        after = {k: v for k, v in charged[section].items() if k in before}
        assert before == after, section  # every gross figure is the same with or without fees
    desk = plain["desk"]
    assert desk["fees_ccy"] == 0.0 and desk["pnl_net_ccy"] == desk["pnl_ccy"] == desk["pnl_gross_ccy"]
    assert desk["total_is_net_currency"] == desk["total_is_currency"]
    assert plain["pnl"]["account_net_ccy"] == plain["pnl"]["account_ccy"] and not plain["fees"]["charged"]
    groups = plain["fees"]["groups"].values()
    assert all(g["fees_ccy"] == 0.0 and g["pnl_net_ccy"] == g["pnl_gross_ccy"] for g in groups)


def test_desk_net_pnl_is_gross_minus_fees_from_the_fills_table(runs):
    res = runs["maker_taker"]
    s, desk_fills, trades = res.summary, res.frames["desk_fills"], res.frames["trades"]
    desk = s["desk"]
    assert desk["maker_qty"] > 0 and desk["taker_qty"] > 0  # both kinds of fill are exercised
    fees = _by_hand(desk_fills, "-0.0020", "0.0030")
    assert Decimal(str(desk["fees_ccy"])) == fees
    assert desk["pnl_net_ccy"] == pytest.approx(desk["pnl_ccy"] - float(fees), abs=1e-9)
    assert desk["pnl_gross_ccy"] == pytest.approx(desk["pnl_ccy"], abs=1e-9)
    assert s["desk_outcome"]["fees"] == desk["fees_ccy"] and s["desk_outcome"]["pnl_net"] == desk["pnl_net_ccy"]
    assert desk["total_is_net_currency"] == pytest.approx(desk["total_is_currency"] + float(fees))
    parents = res.frames["desk_parents"]
    assert parents["fees_currency"].sum() == pytest.approx(float(fees))
    # the account: every fill of the desk's FIX account in the exchange's trades table
    mine = pd.concat(
        [trades.loc[trades["maker"] == "gateway", ["qty"]].assign(liquidity="maker"),
         trades.loc[trades["taker"] == "gateway", ["qty"]].assign(liquidity="taker")]
    )  # fmt: skip
    account_fees = _by_hand(mine, "-0.0020", "0.0030")
    pnl = s["pnl"]
    assert Decimal(str(pnl["account_fees_ccy"])) == account_fees and pnl["desk_fees_ccy"] == desk["fees_ccy"]
    assert pnl["account_net_ccy"] == pytest.approx(pnl["account_ccy"] - float(account_fees), abs=1e-9)
    group = s["fees"]["groups"]["desk"]  # the desk's account, as a participant group
    assert group["fees_ccy"] == pnl["account_fees_ccy"] and group["pnl_gross_ccy"] == pytest.approx(pnl["account_ccy"])


def test_a_monte_carlo_row_carries_the_desk_fees_and_net_pnl(runs):
    """runs.parquet: desk_fees and desk_pnl_net beside desk_pnl, the summary's own figures."""
    from desksim.mc.metrics import SCHEMA, run_metrics

    res = runs["maker_taker"]
    row = run_metrics(res, 0, 1, 34_200_000_000_000, 0.01)
    desk = res.summary["desk"]
    assert {"desk_fees", "desk_pnl_net"} <= set(SCHEMA.names)
    assert row["desk_fees"] == desk["fees_ccy"] > 0 and row["desk_pnl"] == desk["pnl_ccy"]
    assert row["desk_pnl_net"] == pytest.approx(row["desk_pnl"] - row["desk_fees"], abs=1e-9)


def test_makers_statistics_and_the_venue_take(runs):
    s = runs["maker_taker"].summary
    fees, trades = s["fees"], runs["maker_taker"].frames["trades"]
    assert fees["charged"] and fees["venue"] == "exchange" and fees["rates"]["maker_per_share"] == -0.002
    for name, maker in fees["makers"].items():
        passive = trades.loc[trades["maker"] == name, "qty"]
        assert maker["maker_qty"] == passive.sum() > 0
        taken = trades.loc[trades["taker"] == name, "qty"]
        by_hand = _by_hand(
            pd.DataFrame({"qty": [*passive, *taken], "liquidity": ["maker"] * len(passive) + ["taker"] * len(taken)}),
            "-0.0020",
            "0.0030",
        )
        assert Decimal(str(maker["fees_ccy"])) == by_hand
        assert maker["pnl_net_ccy"] == pytest.approx(maker["pnl_gross_ccy"] - float(by_hand), abs=1e-9)
    groups = fees["groups"].values()
    assert sum(g["pnl_gross_ccy"] for g in groups) == pytest.approx(0.0, abs=1e-6)  # zero-sum before fees
    volume = int(trades["qty"].sum())
    assert fees["venue_take_ccy"] == pytest.approx(volume * 0.001)  # every share: 0.30 in, 0.20 out
    assert sum(g["pnl_net_ccy"] for g in groups) == pytest.approx(-fees["venue_take_ccy"], abs=1e-6)
    table = runs["maker_taker"].frames["participants"]
    assert int(table["fills"].sum()) == 2 * len(trades)


def test_an_inverted_venue_flips_every_fee(runs):
    normal, inverted = runs["maker_taker"].summary, runs["inverted"].summary
    assert inverted["desk"]["fees_ccy"] == -normal["desk"]["fees_ccy"]
    assert inverted["pnl"]["account_fees_ccy"] == -normal["pnl"]["account_fees_ccy"]
    assert inverted["fees"]["venue_take_ccy"] == -normal["fees"]["venue_take_ccy"]
    for name, group in normal["fees"]["groups"].items():
        assert inverted["fees"]["groups"][name]["fees_ccy"] == -group["fees_ccy"]
        assert inverted["fees"]["groups"][name]["rebates_ccy"] == group["fees_paid_ccy"]


def test_the_report_shows_fees_and_net_pnl(tmp_path: Path):
    from desksim.report import desk_outcome_rows, fee_table

    res = api.run("kill_switch_drill", seed=1, duration_s=120, overrides={"fees": MAKER_TAKER})
    rows = dict((r[0], r[1]) for r in desk_outcome_rows(res.summary["desk_outcome"]))
    assert rows["P&L net of fees (currency)"] == res.summary["desk"]["pnl_net_ccy"]
    html = fee_table(res.summary["fees"])
    assert "maker mm" in html and "rebates_ccy" in html and "-0.002" in html
