"""The risk function's own view of the order flow: execution reports (drop copies) parsed into
:class:`ExecReport`, and the :class:`Ledger` of positions, cash and open orders built from them.

Prices in integer ticks, quantities in shares, cash in ticks x shares."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = ["ExecReport", "Ledger", "OpenOrder", "parse_execution_report"]

# =============================================================================================
# execution reports (drop copies)
# =============================================================================================


@dataclass(frozen=True, slots=True)
class ExecReport:
    """The fields of an ExecutionReport the risk function needs (prices in ticks)."""

    exec_type: str
    ord_status: str
    order_id: str
    cl_ord_id: str | None
    orig_cl_ord_id: str | None
    account: str | None
    symbol: str
    side: str  # "B" | "S"
    leaves_qty: int
    cum_qty: int
    price: int | None
    last_qty: int
    last_px: int | None
    text: str | None


_SIDE = {"1": "B", "2": "S"}


def _fix_fields(raw: Any) -> dict[str, str]:
    text = raw if isinstance(raw, str) else raw.toString()
    sep = "\x01" if "\x01" in text else "|"
    d: dict[str, str] = {}
    for part in text.split(sep):
        k, eq, v = part.partition("=")
        if eq and k not in d:
            d[k] = v
    return d


def _to_ticks(px: str | None, tick: Decimal) -> int | None:
    if px is None or px == "":
        return None
    q = Decimal(px) / tick
    return int(q.to_integral_value())


def parse_execution_report(raw: Any, tick_size: Decimal | str | float = "0.01") -> ExecReport | None:
    """An ExecutionReport (raw FIX string, SOH- or ``|``-delimited, or a quickfix Message) as an
    :class:`ExecReport`; None for any other message type."""
    d = _fix_fields(raw)
    if d.get("35") != "8":
        return None
    tick = tick_size if isinstance(tick_size, Decimal) else Decimal(str(tick_size))
    return ExecReport(
        exec_type=d.get("150", ""),
        ord_status=d.get("39", ""),
        order_id=d.get("37", "NONE"),
        cl_ord_id=d.get("11"),
        orig_cl_ord_id=d.get("41"),
        account=d.get("1") or None,
        symbol=d.get("55", ""),
        side=_SIDE.get(d.get("54", ""), d.get("54", "")),
        leaves_qty=int(d.get("151") or 0),
        cum_qty=int(d.get("14") or 0),
        price=_to_ticks(d.get("44"), tick),
        last_qty=int(d.get("32") or 0),
        last_px=_to_ticks(d.get("31"), tick),
        text=d.get("58"),
    )


# =============================================================================================
# the ledger: the risk function's own view
# =============================================================================================


@dataclass(slots=True)
class OpenOrder:
    account: str
    symbol: str
    side: str
    leaves_qty: int
    px: int  # price for exposure (a market order: the reference when it was entered; 0 if none)
    cum_qty: int = 0


class Ledger:
    """Positions, cash and open orders per account, from execution reports and fills only.

    Open orders are keyed by OrderID once acknowledged; an order the gate let through but not yet
    acknowledged is *pending*, keyed by (session, ClOrdID), and counts as exposure meanwhile."""

    def __init__(self) -> None:
        self.positions: dict[str, dict[str, int]] = {}  # account -> symbol -> shares
        self.cash: dict[str, int] = {}  # account -> ticks x shares
        self.marks: dict[str, int] = {}  # symbol -> last trade price (else the last fill's)
        self.market_marks: set[str] = set()  # symbols marked from market data
        self.orders: dict[str, OpenOrder] = {}  # OrderID -> open order
        self.pending: dict[tuple[str, str], OpenOrder] = {}  # (session, ClOrdID) -> not yet acked
        self.cl_index: dict[tuple[str, str], str] = {}  # (session, ClOrdID) -> OrderID
        self.fills: list[tuple[str, str, str, int, int]] = []  # (account, symbol, side, qty, price)
        # aggregates of open + pending orders
        self._open_qty: dict[tuple[str, str, str], int] = {}  # (account, symbol, side) -> shares
        self._open_notional: dict[str, int] = {}  # account -> sum leaves x px
        self._open_count: dict[str, int] = {}  # account -> number of open + pending orders
        self._holders: dict[str, set[str]] = {}  # symbol -> accounts with a position

    # -- aggregates ---------------------------------------------------------------------------------
    def _book(self, o: OpenOrder, sign: int) -> None:
        k = (o.account, o.symbol, o.side)
        self._open_qty[k] = self._open_qty.get(k, 0) + sign * o.leaves_qty
        self._open_notional[o.account] = self._open_notional.get(o.account, 0) + sign * o.leaves_qty * o.px
        self._open_count[o.account] = self._open_count.get(o.account, 0) + sign

    def open_qty(self, account: str, symbol: str, side: str) -> int:
        return self._open_qty.get((account, symbol, side), 0)

    def open_notional(self, account: str) -> int:
        return self._open_notional.get(account, 0)

    def open_count(self, account: str) -> int:
        return self._open_count.get(account, 0)

    def open_orders(self, account: str | None = None) -> dict[str, OpenOrder]:
        return {k: o for k, o in self.orders.items() if account is None or o.account == account}

    def position(self, account: str, symbol: str) -> int:
        return self.positions.get(account, {}).get(symbol, 0)

    def accounts(self) -> list[str]:
        seen = set(self.positions) | set(self.cash) | {o.account for o in self.orders.values()}
        seen |= {o.account for o in self.pending.values()}
        return sorted(seen)

    def holders(self, symbol: str) -> set[str]:
        return self._holders.get(symbol, set())

    def mark(self, symbol: str) -> int | None:
        return self.marks.get(symbol)

    def gross(self, account: str) -> int:
        """Sum of |position| x mark over symbols plus the open orders' notional."""
        total = self.open_notional(account)
        for symbol, qty in self.positions.get(account, {}).items():
            total += abs(qty) * self.marks.get(symbol, 0)
        return total

    def pnl(self, account: str) -> int:
        """cash + sum position x mark (ticks x shares)."""
        total = self.cash.get(account, 0)
        for symbol, qty in self.positions.get(account, {}).items():
            total += qty * self.marks.get(symbol, 0)
        return total

    # -- updates ------------------------------------------------------------------------------------
    def add_pending(self, session: str, cl_ord_id: str, order: OpenOrder) -> None:
        key = (session, cl_ord_id)
        old = self.pending.pop(key, None)
        if old is not None:
            self._book(old, -1)
        self.pending[key] = order
        self._book(order, +1)

    def release(self, session: str, cl_ord_id: str) -> None:
        """Drop the reservation of (session, ClOrdID), if any (a refused replace)."""
        old = self.pending.pop((session, cl_ord_id), None)
        if old is not None:
            self._book(old, -1)

    def find(self, session: str, cl_ord_id: str | None, order_id: str | None) -> OpenOrder | None:
        oid = self.cl_index.get((session, cl_ord_id)) if cl_ord_id else None
        if oid is None and order_id:
            oid = order_id
        order = self.orders.get(oid) if oid is not None else None
        if order is None and cl_ord_id:
            order = self.pending.get((session, cl_ord_id))
        return order

    def apply_fill(self, account: str, symbol: str, side: str, qty: int, price: int) -> None:
        signed = qty if side == "B" else -qty
        book = self.positions.setdefault(account, {})
        book[symbol] = book.get(symbol, 0) + signed
        self.cash[account] = self.cash.get(account, 0) - signed * price
        self._holders.setdefault(symbol, set()).add(account)
        if symbol not in self.market_marks:
            self.marks[symbol] = price
        self.fills.append((account, symbol, side, qty, price))

    def apply(self, session: str, er: ExecReport) -> tuple[str, bool]:
        """Update from one execution report; returns (account, whether it was a fill). The account
        is the FIX session that carried the order (its authenticated identity), never the
        client-supplied Account(1) tag."""
        account = session
        oid = er.order_id if er.order_id and er.order_id != "NONE" else None
        if oid is not None:
            for cl in (er.cl_ord_id, er.orig_cl_ord_id):
                if cl:
                    self.cl_index[(session, cl)] = oid
        if er.exec_type == "I":  # a status reply changes nothing
            return account, False
        pend = self.pending.pop((session, er.cl_ord_id), None) if er.cl_ord_id else None
        if pend is not None:
            self._book(pend, -1)
        old = self.orders.pop(oid, None) if oid is not None else None
        if old is not None:
            self._book(old, -1)
        filled = er.exec_type == "F" and er.last_qty > 0 and er.last_px is not None
        if filled:
            self.apply_fill(account, er.symbol, er.side, er.last_qty, er.last_px)  # type: ignore[arg-type]
        done = er.ord_status in ("2", "4", "8", "C") or er.exec_type in ("4", "8", "C")
        if oid is not None and not done and er.leaves_qty > 0:
            px = er.price
            if px is None:  # a market order: keep the value it was entered at
                prior = old or pend
                px = prior.px if prior is not None else self.marks.get(er.symbol, 0)
            order = OpenOrder(account, er.symbol, er.side, er.leaves_qty, px, er.cum_qty)
            self.orders[oid] = order
            self._book(order, +1)
        return account, filled

    def snapshot(self) -> dict[str, Any]:
        """``{"positions": {account: {symbol: shares}}, "cash": {account: ticks x shares}}``."""
        return {
            "positions": {a: dict(sorted(p.items())) for a, p in sorted(self.positions.items())},
            "cash": dict(sorted(self.cash.items())),
        }
