"""Fee arithmetic: a venue's maker-taker (or inverted) schedule applied to a run's fills, exactly.

The schedule is the scenario's ``fees:`` section (``scenarios/fees.py``). Fees are accounting:
the matching never sees them, so a run's event stream and digest do not depend on them.

Units and rounding
    A rate is an integer number of *fee units* per share; a fee unit is 1e-6 currency (1/10,000
    of a cent, ``scenarios.fees.FEE_UNIT``). A fill's exact fee is ``rate x qty`` fee units. The
    venue bills every fill separately: each fill's fee is rounded to the schedule's ``round_to``
    (default 0.0001 currency = 100 fee units), **half away from zero**, so a rebate and a fee of
    the same size round to mirror images. Sums are of the rounded per-fill fees, in integers;
    currency floats appear only in the report (``ccy``).

Sign
    A fee is positive when the participant pays the venue and negative for a rebate. ``fees`` in
    every figure is the net: paid − rebates; ``paid`` and ``rebates`` are its two parts (both >= 0).

Liquidity of a fill (from the exchange's ``trades`` table, one row per print)
    The ``maker`` column names the owner of the resting order (passive: ``maker_per_share``), the
    ``taker`` column the owner of the aggressing order (``taker_per_share``); the taker's side is
    ``aggressor_side`` and the maker's the other one. An auction print (``aggressor_side`` "A") has
    neither: ``maker`` is the seller, ``taker`` the buyer, both pay ``auction_per_share``. The
    desk's own fills carry the flag the exchange sent it (FIX LastLiquidityInd 851: maker / taker;
    anything else, an auction fill, pays the auction rate).

P&L
    A participant's gross P&L is its cash plus its position marked at the last trade (integer
    ticks x shares, as the OMS counts it); net = gross − fees. The desk strategy's gross P&L is
    its fills marked at its final mid (``desk.pnl_ccy``), net = gross − the fees of its fills.
    Implementation shortfall gets the fees of each parent's fills as one more cost component
    (``fees_currency``): ``total_is_net = total_is + fees``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from scenarios.fees import MICROS, VenueFees, micros

__all__ = [
    "AUCTION",
    "DESK_ACCOUNT",
    "MAKER_KINDS",
    "NO_FEES",
    "PARTICIPANT_COLUMNS",
    "Rates",
    "Schedule",
    "ccy",
    "desk_fee_figures",
    "desk_fill_fees",
    "fee_ccy",
    "fee_section",
    "fill_fee",
    "fill_fees",
    "legs",
    "participant_groups",
    "participants",
    "schedule_of",
    "units_of",
]

AUCTION = "A"  # aggressor_side of an auction print in the trades table (actors/exchange)
MAKER_KINDS = frozenset({"ladder_maker", "as_maker"})
DESK_ACCOUNT = "gateway"  # the desk's orders reach the exchange through the FIX gateway


@dataclass(frozen=True, slots=True)
class Rates:
    """Fee units (1e-6 currency) per share; positive = paid, negative = rebate."""

    maker: int = 0
    taker: int = 0
    auction: int = 0

    def of(self, liquidity: str) -> int:
        return self.maker if liquidity == "maker" else self.taker if liquidity == "taker" else self.auction


@dataclass(frozen=True, slots=True)
class Schedule:
    """One venue's schedule in fee units: base rates, per-fill rounding and overrides by actor glob."""

    venue: str = ""
    base: Rates = Rates()
    round_to: int = 1  # fee units
    overrides: tuple[tuple[str, Rates], ...] = ()

    @property
    def charged(self) -> bool:
        return any(r != Rates() for r in (self.base, *(rates for _, rates in self.overrides)))

    def rates_for(self, name: str) -> Rates:
        """The rates of actor ``name``: the first override whose glob matches it, else the base."""
        for glob, rates in self.overrides:
            if fnmatch.fnmatchcase(name, glob):
                return rates
        return self.base

    @classmethod
    def of(cls, venue: str, model: VenueFees) -> Schedule:
        base = Rates(micros(model.maker_per_share), micros(model.taker_per_share), micros(model.auction_per_share))
        overrides = tuple(
            (
                glob,
                Rates(
                    base.maker if o.maker_per_share is None else micros(o.maker_per_share),
                    base.taker if o.taker_per_share is None else micros(o.taker_per_share),
                    base.auction if o.auction_per_share is None else micros(o.auction_per_share),
                ),
            )
            for glob, o in model.overrides.items()
        )
        return cls(venue, base, micros(model.round_to), overrides)


NO_FEES = Schedule()


def schedule_of(scenario: Any) -> Schedule:
    """The schedule of the scenario's exchange (``NO_FEES`` when its ``fees:`` does not name it)."""
    venue = scenario.exchange.name
    model = (getattr(scenario, "fees", None) or {}).get(venue)
    return NO_FEES if model is None else Schedule.of(venue, model)


# -- per fill ---------------------------------------------------------------------------------------
def fill_fee(rate: int, qty: int, round_to: int = 1) -> int:
    """One fill's fee in fee units: ``rate x qty`` rounded to ``round_to``, half away from zero."""
    exact = rate * qty
    q, r = divmod(abs(exact), round_to)
    if 2 * r >= round_to:
        q += 1
    return (1 if exact >= 0 else -1) * q * round_to


def fill_fees(rates: np.ndarray, qty: np.ndarray, round_to: int = 1) -> np.ndarray:
    """:func:`fill_fee` of every fill (int64 arrays)."""
    exact = np.asarray(rates, dtype=np.int64) * np.asarray(qty, dtype=np.int64)
    q, r = np.divmod(np.abs(exact), round_to)
    q += 2 * r >= round_to
    return np.sign(exact) * q * round_to


def ccy(units: int | Fraction, tick_shares: int | Fraction = 0, tick_size: float = 0.0) -> float:
    """``tick_shares x tick_size − units / MICROS`` in currency, computed exactly, then a float."""
    tick = Fraction(Decimal(str(tick_size)))
    return float(Fraction(tick_shares) * tick - Fraction(units) / MICROS) + 0.0


def fee_ccy(units: int | Fraction) -> float:
    """Fee units in currency (positive = paid); never -0.0."""
    return float(Fraction(units) / MICROS) + 0.0


def _split(fees: np.ndarray) -> tuple[int, int, int]:
    """(net, paid, rebates) fee units of an array of per-fill fees."""
    return int(fees.sum()), int(fees[fees > 0].sum()), int(-fees[fees < 0].sum())


# -- every participant, from the exchange's trades table ---------------------------------------------
def legs(trades: pd.DataFrame) -> pd.DataFrame:
    """The trades table as fills: two rows per print (maker's, then taker's) with ``participant``,
    ``side`` ("B"/"S"), ``price`` (ticks), ``qty`` and ``liquidity`` (maker / taker / auction)."""
    cols = ["time_ns", "participant", "side", "price", "qty", "liquidity"]
    if trades is None or not len(trades):
        return pd.DataFrame({c: pd.Series(dtype="int64" if c in ("time_ns", "price", "qty") else object) for c in cols})
    agg = trades["aggressor_side"].to_numpy(dtype=object)
    auction = agg == AUCTION
    taker_side = np.where(auction, "B", agg)  # an auction print's "taker" column is its buyer
    maker_side = np.where(taker_side == "B", "S", "B")
    maker = pd.DataFrame(
        {
            "time_ns": trades["time_ns"].to_numpy(),
            "participant": trades["maker"].to_numpy(dtype=object),
            "side": maker_side,
            "price": trades["price"].to_numpy(),
            "qty": trades["qty"].to_numpy(),
            "liquidity": np.where(auction, "auction", "maker"),
        }
    )
    taker = maker.assign(
        participant=trades["taker"].to_numpy(dtype=object),
        side=taker_side,
        liquidity=np.where(auction, "auction", "taker"),
    )
    out = pd.concat([maker, taker], ignore_index=True)
    n = len(trades)  # maker then taker of each print, in print order
    order = np.empty(2 * n, dtype=np.int64)
    order[0::2], order[1::2] = np.arange(n), np.arange(n, 2 * n)
    return out.iloc[order].reset_index(drop=True)[cols]


PARTICIPANT_COLUMNS = [
    "participant", "group", "kind", "fills", "maker_qty", "taker_qty", "auction_qty", "bought_qty", "sold_qty",
    "position", "cash_tick_shares", "pnl_gross_tick_shares", "fees_units", "fees_paid_units", "rebates_units",
    "pnl_gross_ccy", "fees_ccy", "fees_paid_ccy", "rebates_ccy", "pnl_net_ccy",
]  # fmt: skip


def participants(
    trades: pd.DataFrame,
    schedule: Schedule,
    tick_size: float,
    groups: Mapping[str, tuple[str, str]] | None = None,
    aliases: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row per participant of the trades table: fills and quantities by liquidity, position,
    cash and gross P&L (marked at the last trade) in integer ticks x shares, fees in integer fee
    units, and the same in currency (``*_ccy``). ``groups`` maps an actor to (group, kind);
    ``aliases`` maps a trades-table name to the name its fee override is matched against (the
    desk's account, "gateway", trades under the desk's name)."""
    groups = groups or {}
    aliases = aliases or {}
    fills = legs(trades)
    if not len(fills):
        return pd.DataFrame({c: [] for c in PARTICIPANT_COLUMNS})
    names = fills["participant"].to_numpy(dtype=object)
    rates = {name: schedule.rates_for(aliases.get(name, name)) for name in pd.unique(names)}
    liq = fills["liquidity"].to_numpy(dtype=object)
    rate = np.fromiter((rates[n].of(lq) for n, lq in zip(names, liq, strict=True)), dtype=np.int64, count=len(names))
    qty = fills["qty"].to_numpy(dtype=np.int64)
    price = fills["price"].to_numpy(dtype=np.int64)
    buy = fills["side"].to_numpy(dtype=object) == "B"
    signed = np.where(buy, qty, -qty)
    frame = pd.DataFrame(
        {
            "participant": names,
            "fills": 1,
            "maker_qty": np.where(liq == "maker", qty, 0),
            "taker_qty": np.where(liq == "taker", qty, 0),
            "auction_qty": np.where(liq == "auction", qty, 0),
            "bought_qty": np.where(buy, qty, 0),
            "sold_qty": np.where(buy, 0, qty),
            "position": signed,
            "cash_tick_shares": -signed * price,
            "fees_units": (fee := fill_fees(rate, qty, schedule.round_to)),
            "fees_paid_units": np.maximum(fee, 0),
            "rebates_units": np.maximum(-fee, 0),
        }
    )
    out = frame.groupby("participant", sort=True).sum().reset_index()
    last = int(trades["price"].iloc[-1])
    out["pnl_gross_tick_shares"] = out["cash_tick_shares"] + out["position"] * last
    out["group"] = [groups.get(n, (n, ""))[0] for n in out["participant"]]
    out["kind"] = [groups.get(n, (n, ""))[1] for n in out["participant"]]
    gross, fees = out["pnl_gross_tick_shares"].tolist(), out["fees_units"].tolist()
    out["pnl_gross_ccy"] = [ccy(0, g, tick_size) for g in gross]
    out["fees_ccy"] = [fee_ccy(f) for f in fees]
    out["fees_paid_ccy"] = [fee_ccy(int(f)) for f in out["fees_paid_units"]]
    out["rebates_ccy"] = [fee_ccy(int(f)) for f in out["rebates_units"]]
    out["pnl_net_ccy"] = [ccy(f, g, tick_size) for g, f in zip(gross, fees, strict=True)]
    return out[PARTICIPANT_COLUMNS]


def _figures(rows: pd.DataFrame, tick_size: float) -> dict[str, Any]:
    """Summary figures of one participant or a group of them (sums of the rows)."""
    gross = int(rows["pnl_gross_tick_shares"].sum())
    fees = int(rows["fees_units"].sum())
    return {
        "actors": len(rows),
        "fills": int(rows["fills"].sum()),
        "maker_qty": int(rows["maker_qty"].sum()),
        "taker_qty": int(rows["taker_qty"].sum()),
        "auction_qty": int(rows["auction_qty"].sum()),
        "pnl_gross_ccy": ccy(0, gross, tick_size),
        "fees_paid_ccy": fee_ccy(int(rows["fees_paid_units"].sum())),
        "rebates_ccy": fee_ccy(int(rows["rebates_units"].sum())),
        "fees_ccy": fee_ccy(fees),
        "pnl_net_ccy": ccy(fees, gross, tick_size),
    }


def fee_section(table: pd.DataFrame, schedule: Schedule, tick_size: float) -> dict[str, Any]:
    """``summary["fees"]``: the schedule, the venue's net take, every group of participants and
    every market maker (gross P&L, fees paid, rebates earned, net P&L)."""
    per_share = Fraction(1, MICROS)
    rates = {
        "maker_per_share": float(schedule.base.maker * per_share),
        "taker_per_share": float(schedule.base.taker * per_share),
        "auction_per_share": float(schedule.base.auction * per_share),
        "round_to": float(schedule.round_to * per_share),
    }
    total = _figures(table, tick_size) if len(table) else None
    groups = {str(g): _figures(rows, tick_size) for g, rows in table.groupby("group", sort=True)} if len(table) else {}
    makers = table[table["kind"].isin(MAKER_KINDS)] if len(table) else table
    return {
        "venue": schedule.venue or None,
        "charged": schedule.charged,
        "rates": rates,
        "overrides": [glob for glob, _ in schedule.overrides],
        "venue_take_ccy": 0.0 if total is None else total["fees_ccy"],
        "fees_paid_ccy": 0.0 if total is None else total["fees_paid_ccy"],
        "rebates_ccy": 0.0 if total is None else total["rebates_ccy"],
        "groups": groups,
        "makers": {str(r["participant"]): _figures(makers[makers["participant"] == r["participant"]], tick_size)
                   for _, r in makers.iterrows()},
    }  # fmt: skip


# -- the desk strategy, from its own fills ------------------------------------------------------------
def desk_fill_fees(fills: pd.DataFrame | None, rates: Rates, round_to: int) -> np.ndarray:
    """Fee units of each of the desk's fills, by the liquidity flag the exchange sent it."""
    if fills is None or not len(fills):
        return np.zeros(0, dtype=np.int64)
    liq = fills["liquidity"].to_numpy(dtype=object) if "liquidity" in fills else np.full(len(fills), "")
    rate = np.fromiter((rates.of(str(x)) for x in liq), dtype=np.int64, count=len(fills))
    return fill_fees(rate, fills["qty"].to_numpy(dtype=np.int64), round_to)


def _exact_mark_pnl(fills: pd.DataFrame | None, mark_ticks: float | None) -> Fraction:
    """Cash + position x mark (ticks x shares), exactly (a mid may be half a tick)."""
    if fills is None or not len(fills):
        return Fraction(0)
    qty = fills["qty"].to_numpy(dtype=np.int64)
    signed = np.where(fills["side"].to_numpy(dtype=object) == "B", qty, -qty)
    cash = -int((signed * fills["price"].to_numpy(dtype=np.int64)).sum())
    mark = Fraction(0) if mark_ticks is None else Fraction(float(mark_ticks))
    return cash + int(signed.sum()) * mark


def desk_fee_figures(
    desk: Mapping[str, Any],
    fills: pd.DataFrame | None,
    parents: pd.DataFrame | None,
    schedule: Schedule,
    tick_size: float,
) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """Fee figures of the desk strategy (keys added to ``summary["desk"]``) and its parents table
    with each parent's fees as an implementation-shortfall component (``fees_currency``,
    ``total_is_net_currency``, ``total_is_net_bps``).

    ``pnl_gross_ccy`` is ``desk.pnl_ccy`` recomputed exactly from the fills and the final mid;
    ``pnl_net_ccy`` = gross − ``fees_ccy``. ``is_fees_bps`` is in bps of arrival x filled (the
    base of ``is_bps``), ``total_is_net_bps`` of arrival x ordered (the base of ``total_is_bps``)."""
    rates = schedule.rates_for(str(desk.get("name") or ""))
    fee = desk_fill_fees(fills, rates, schedule.round_to)
    net, paid, rebates = _split(fee)
    gross = _exact_mark_pnl(fills, desk.get("final_mid_ticks"))
    liq = fills["liquidity"].astype(str).to_numpy() if fills is not None and len(fills) else np.zeros(0, dtype=object)
    qty = fills["qty"].to_numpy(dtype=np.int64) if fills is not None and len(fills) else np.zeros(0, dtype=np.int64)
    out: dict[str, Any] = {
        "maker_qty": int(qty[liq == "maker"].sum()),
        "taker_qty": int(qty[liq == "taker"].sum()),
        "auction_qty": int(qty[(liq != "maker") & (liq != "taker")].sum()),
        "pnl_gross_ccy": ccy(0, gross, tick_size),
        "fees_paid_ccy": fee_ccy(paid),
        "rebates_ccy": fee_ccy(rebates),
        "fees_ccy": fee_ccy(net),
        "pnl_net_ccy": ccy(net, gross, tick_size),
    }
    fees_ccy = out["fees_ccy"]
    exec_base = total_base = 0.0
    new_parents = parents
    if parents is not None and len(parents):
        by_parent: dict[Any, int] = {}
        if fills is not None and len(fills):
            for pid, f in zip(fills["parent_id"], fee, strict=True):
                by_parent[pid] = by_parent.get(pid, 0) + int(f)
        parent_fees = [fee_ccy(by_parent.get(pid, 0)) for pid in parents["parent_id"]]
        arrival = parents["arrival_mid"].astype(float).to_numpy() * tick_size
        total_is = parents["total_is_currency"].astype(float).to_numpy() + np.asarray(parent_fees, dtype=float)
        base = arrival * parents["qty"].astype(float).to_numpy()
        new_parents = parents.assign(
            fees_currency=parent_fees,
            total_is_net_currency=total_is,
            total_is_net_bps=np.divide(total_is, base, out=np.full(len(base), np.nan), where=base != 0) * 1e4,
        )
        exec_base = float((arrival * parents["filled_qty"].astype(float).to_numpy()).sum())
        total_base = float(base.sum())
    total_is_ccy = float(desk.get("total_is_currency") or 0.0)
    out.update(
        is_fees_currency=fees_ccy,
        is_fees_bps=fees_ccy / exec_base * 1e4 if exec_base else None,
        total_is_net_currency=total_is_ccy + fees_ccy,
        total_is_net_bps=(total_is_ccy + fees_ccy) / total_base * 1e4 if total_base else None,
    )
    return out, new_parents


def participant_groups(scenario: Any) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """(actor -> (group, kind), trades-table name -> name for the fee overrides) of a scenario:
    agents by group (their name prefix) and kind; the desk's account ("gateway") as the desk."""
    from scenarios.schema import member_names

    groups: dict[str, tuple[str, str]] = {}
    for agent in scenario.agents:
        prefix = agent.name or agent.kind
        for name in member_names(prefix, agent.count):
            groups[name] = (prefix, agent.kind)
    aliases: dict[str, str] = {}
    if scenario.desk is not None:
        groups[DESK_ACCOUNT] = (scenario.desk.name, "desk")
        aliases[DESK_ACCOUNT] = scenario.desk.name
    return groups, aliases


def units_of(table: pd.DataFrame, participant: str) -> int:
    """Net fee units of one participant of a :func:`participants` table (0 if it never traded)."""
    if not len(table):
        return 0
    return int(table.loc[table["participant"] == participant, "fees_units"].sum())
