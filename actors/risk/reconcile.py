"""Reconciliation: OMS vs risk officer vs exchange, to the share and the tick x share."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["OFFICER_LEG", "OMS_LEG", "Break", "fills_from_orders_table", "positions_from_fills", "reconcile"]

# =============================================================================================
# reconciliation
# =============================================================================================


OMS_LEG = "OMS vs exchange"
OFFICER_LEG = "officer vs exchange"


@dataclass(frozen=True, slots=True)
class Break:
    """A disagreement: ``what`` is "position" (shares) or "cash" (ticks x shares = cents at tick
    0.01); ``symbol`` is "" for cash; a side missing the account/symbol reports 0."""

    account: str
    symbol: str
    what: str
    oms: int
    risk: int
    exchange: int

    @property
    def legs(self) -> list[str]:
        """The legs that disagree with the exchange (the book of record): ``"OMS vs exchange"``,
        ``"officer vs exchange"``, or both."""
        return [name for name, v in ((OMS_LEG, self.oms), (OFFICER_LEG, self.risk)) if v != self.exchange]

    def __str__(self) -> str:
        where = f"{self.account}/{self.symbol}" if self.symbol else self.account
        legs = ", ".join(self.legs)
        return f"{legs}: {self.what} break {where}: oms={self.oms} risk={self.risk} exchange={self.exchange}"


def _fill_tuple(f: Any) -> tuple[str, str, str, int, int]:
    if isinstance(f, Mapping):
        return (str(f["account"]), str(f["symbol"]), str(f["side"]), int(f["qty"]), int(f["price"]))
    if isinstance(f, tuple | list):
        a, s, side, q, p = f
        return (str(a), str(s), str(side), int(q), int(p))
    return (str(f.account), str(f.symbol), str(f.side), int(f.qty), int(f.price))


def fills_from_orders_table(
    rows: Any, account_of: Mapping[int, str] | Callable[[int], str | None], symbol: str | None = None
) -> list[tuple[str, str, str, int, int]]:
    """Exchange-side fills ``(account, symbol, side, qty, price)`` from the exchange's ``orders``
    table (a DataFrame or its row tuples: time_ns, order_id, owner, event, side, price, qty, ...)
    for the order ids ``account_of`` knows (e.g. the gateway's order id -> account map). The
    orders table has no symbol column: pass ``symbol`` for a single-symbol exchange, or let
    ``account_of`` return ``"account/symbol"``."""
    look = account_of.get if isinstance(account_of, Mapping) else account_of
    it = rows.itertuples(index=False, name=None) if hasattr(rows, "itertuples") else rows
    out = []
    for row in it:
        if row[3] != "filled":
            continue
        who = look(int(row[1]))
        if who is None:
            continue
        account, _, sym = who.partition("/") if symbol is None else (who, "", symbol)
        out.append((account, sym, str(row[4]), int(row[6]), int(row[5])))
    return out


def positions_from_fills(fills: Iterable[Any]) -> dict[str, Any]:
    """Snapshot (as :meth:`Ledger.snapshot`) from fills ``(account, symbol, side, qty, price)``
    (tuples, mappings or objects with those attributes)."""
    positions: dict[str, dict[str, int]] = {}
    cash: dict[str, int] = {}
    for f in fills:
        account, symbol, side, qty, price = _fill_tuple(f)
        signed = qty if side in ("B", "1", "buy") else -qty
        book = positions.setdefault(account, {})
        book[symbol] = book.get(symbol, 0) + signed
        cash[account] = cash.get(account, 0) - signed * price
    return {"positions": positions, "cash": cash}


def reconcile(
    oms_snapshot: Mapping[str, Any], exchange_fills: Iterable[Any], risk_snapshot: Mapping[str, Any] | None = None
) -> list[Break]:
    """Compare positions (shares) and cash (ticks x shares) of the OMS, the risk officer and the
    exchange. Snapshots are ``{"positions": {account: {symbol: shares}}, "cash": {account: n}}``
    (:meth:`RiskOfficer.snapshot` gives the officer's); the exchange side is computed from its
    fills ``(account, symbol, side, qty, price)``. With ``risk_snapshot`` None only OMS vs
    exchange is compared (``risk`` is then reported equal to ``exchange``). Zero positions and
    missing entries agree. Breaks are sorted by account, what, symbol."""
    ex = positions_from_fills(exchange_fills)
    views = [oms_snapshot, risk_snapshot if risk_snapshot is not None else ex, ex]
    pos = [v.get("positions", {}) for v in views]
    cash = [v.get("cash", {}) for v in views]
    breaks: list[Break] = []
    keys = sorted({(a, s) for p in pos for a, book in p.items() for s in book})
    for a, s in keys:
        vals = [int(p.get(a, {}).get(s, 0)) for p in pos]
        if len(set(vals)) > 1:
            breaks.append(Break(a, s, "position", *vals))
    for a in sorted({a for c in cash for a in c}):
        vals = [int(c.get(a, 0)) for c in cash]
        if len(set(vals)) > 1:
            breaks.append(Break(a, "", "cash", *vals))
    breaks.sort(key=lambda b: (b.account, b.what, b.symbol))
    return breaks
