"""The pre-trade gate (SEC 15c3-5 / MiFID II RTS 6 style): pure and clock-driven (the caller
passes ``now_ns``). It answers ``check(account, symbol, side, qty, price, now_ns) -> reason | None``
and keeps its own :class:`~actors.risk.ledger.Ledger` built only from what it is told (execution
reports, fills, marks). It is the ``pretrade`` hook of :class:`fix.gateway.GatewayCore`:
``gate(session_key, NewOrder | ReplaceRequest, now_ns)``.

One gate lives inside the gateway actor that calls it (built from a :class:`GateConfig`); the risk
officer keeps a gate of its own as its independent view (limits, ledger from drop copies, kill
triggers) and changes the gateway's by messages. No gate is ever shared by two actors."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

from actors.risk.ledger import ExecReport, Ledger, OpenOrder, parse_execution_report
from actors.risk.limits import GateConfig, RiskEvent, RiskLimits, _ns

__all__ = ["PreTradeGate"]

# =============================================================================================
# the pre-trade gate
# =============================================================================================


class PreTradeGate:
    """Pre-trade checks (SEC 15c3-5 / MiFID RTS 6 style) with an independent ledger.

    ``check(...)`` returns None to accept or the refusal text. Order of checks: kill switch (in
    ``after_kill: reduce_only`` mode a blocked session may still send what only reduces its
    position), message throttle, order throttle, restricted list, order quantity, order
    notional, price collar, duplicate, self match, position, gross notional, daily loss.
    A market order meets market order protection: it is checked (notional, exposure) at its
    protection price (:meth:`_protection`: reference +- the market collar, touch +- the sweep
    limit), which the gateway takes (:meth:`take_protection`) to send it as an IOC limit there;
    with a bound configured and no reference it is refused.
    Throttle windows count messages that passed the throttle (a throttled message does not
    count, so a well-behaved sender recovers when the window slides); cancels count as messages
    (:meth:`on_cancel`) and are never refused. A collar fails closed: its reference is the last
    trade or mid, else the static reference price (``reference_prices``), else the order is
    refused. Every refusal, kill and release is a :class:`RiskEvent` passed to ``sink`` (or kept
    in ``events`` when there is no sink)."""

    def __init__(
        self,
        default: RiskLimits | None = None,
        overrides: Mapping[str, RiskLimits] | None = None,
        *,
        ledger: Ledger | None = None,
        sink: Callable[[RiskEvent], None] | None = None,
        reference_prices: Mapping[str, int] | None = None,
        triggers: bool = True,
    ) -> None:
        self.default = default or RiskLimits()
        self.triggers = triggers  # kill on the filled state (daily loss, position): off in a gateway with an officer
        self.overrides = dict(overrides or {})
        self.ledger = ledger or Ledger()
        self.sink = sink
        self.events: list[RiskEvent] = []
        self.blocked: dict[str, str] = {}  # account -> reason
        self.block_all: str | None = None  # reason when every account is blocked
        self.reference: dict[str, int] = {}  # symbol -> last trade
        self.mid: dict[str, int] = {}  # symbol -> floor((bid + ask) / 2)
        self.touch: dict[str, tuple[int | None, int | None]] = {}  # symbol -> (best bid, best ask)
        # symbol -> the day's static reference (the scenario's reference price / prior close): the
        # collar's reference before the market has one, and the mark until the first trade (so the
        # account's P&L is never marked on its own prints)
        self.prior: dict[str, int] = dict(reference_prices or {})
        for symbol, price in self.prior.items():
            self.ledger.marks[symbol] = price
            self.ledger.market_marks.add(symbol)
        self.now_ns = 0
        self.accepted = 0
        self.rejected = 0
        self._kills: list[tuple[str, str, int]] = []
        self._messages: dict[str, deque[int]] = {}
        self._orders: dict[str, deque[int]] = {}
        self._breaches: dict[str, deque[int]] = {}
        self._recent: dict[tuple[str, str, str, int, int | None], int] = {}  # duplicate detection
        self._cache: dict[tuple[str, str | None], RiskLimits] = {}
        self.reduce_only_orders: set[tuple[str, str]] = set()  # (session, ClOrdID) accepted while blocked
        self._order: tuple[str, str] = ("", "")  # (ClOrdID, OrderID) of the order being handled: on its events
        # (session, ClOrdID) -> protection price of an accepted market order, until the gateway takes it
        self._protections: dict[tuple[str, str], int] = {}

    @classmethod
    def from_config(cls, config: GateConfig, sink: Callable[[RiskEvent], None] | None = None) -> PreTradeGate:
        """A gateway's own gate; its kill triggers on the filled state are the officer's, unless there
        is no officer."""
        return cls(
            config.default,
            dict(config.overrides),
            sink=sink,
            reference_prices=dict(config.reference_prices),
            triggers=config.officer is None,
        )

    # -- configuration ------------------------------------------------------------------------------
    def limits_for(self, account: str, symbol: str | None = None) -> RiskLimits:
        key = (account, symbol)
        lim = self._cache.get(key)
        if lim is None:
            o = self.overrides
            names = [f"{account}/{symbol}", account, f"*/{symbol}"] if symbol is not None else [account]
            lim = next((o[n] for n in names if n in o), self.default)
            self._cache[key] = lim
        return lim

    def set_limits(self, key: str, limits: RiskLimits) -> None:
        """Install or replace the limits of ``key`` ("ACCOUNT", "ACCOUNT/SYMBOL", "*/SYMBOL"; ""
        the default)."""
        if key == "":
            self.default = limits
        else:
            self.overrides[key] = limits
        self._cache.clear()

    # -- market inputs ------------------------------------------------------------------------------
    def on_reference(self, symbol: str, price: int) -> None:
        """The last trade price of ``symbol``: collar reference ("last") and mark."""
        self.reference[symbol] = price
        self.ledger.marks[symbol] = price
        self.ledger.market_marks.add(symbol)

    def on_quote(self, symbol: str, bid: int | None, ask: int | None) -> None:
        """The top of book: the mid (a collar reference) and the touch (the sweep limit's start)."""
        self.touch[symbol] = (bid, ask)
        if bid is not None and ask is not None:
            self.mid[symbol] = (bid + ask) // 2

    def on_mark(self, symbol: str, price: int, now_ns: int | None = None) -> None:
        """A new mark (trade price): update and check the loss of every holder."""
        self.on_reference(symbol, price)
        now = self._clock(now_ns)
        for account in sorted(self.ledger.holders(symbol)):
            self.evaluate(account, now)

    def _ref(self, lim: RiskLimits, symbol: str) -> int | None:
        """The collar / notional reference: the limit's own ("last" trade or "mid"), else the
        other market one, else the static reference price; None when nothing is known."""
        if lim.reference == "mid":
            m = self.mid.get(symbol)
            if m is not None:
                return m
        last = self.reference.get(symbol)
        if last is not None:
            return last
        m = self.mid.get(symbol)
        return m if m is not None else self.prior.get(symbol)

    def _protection(self, lim: RiskLimits, symbol: str, side: str, ref: int | None) -> int | None:
        """Market order protection: the worst price a market order of ``side`` may trade at -- a buy
        the lowest, a sell the highest of: reference +- the market collar (the ordinary collar when
        no market collar is set) and the touch (best ask for a buy, best bid for a sell; the
        reference when that side is empty) +- ``max_sweep_ticks``. None when a bound is configured
        but cannot be computed (no reference): the caller refuses the order (fail closed). Call it
        only when ``lim.market_protection``."""
        bounds = []
        if lim.market_collar_pct is not None or lim.market_collar_ticks is not None:
            pct, ticks = lim.market_collar_pct, lim.market_collar_ticks
        else:
            pct, ticks = lim.collar_pct, lim.collar_ticks
        if pct is not None or ticks is not None:
            if ref is None:
                return None
            width = _width(ref, pct, ticks)
            bounds.append(ref + width if side == "B" else ref - width)
        if lim.max_sweep_ticks is not None:
            bid, ask = self.touch.get(symbol, (None, None))
            touch = ask if side == "B" else bid
            if touch is None:
                touch = ref
            if touch is None:
                return None
            bounds.append(touch + lim.max_sweep_ticks if side == "B" else touch - lim.max_sweep_ticks)
        return max(1, min(bounds) if side == "B" else max(bounds))

    def take_protection(self, session: str, cl_ord_id: str | None) -> int | None:
        """The protection price the gate gave the market order ``cl_ord_id`` it just accepted (the
        price its notional and exposure were checked at), once; None: no protection applies. The
        gateway sends the order to the exchange as an IOC limit at that price."""
        if not cl_ord_id:
            return None
        return self._protections.pop((session, cl_ord_id), None)

    def on_protection_cancel(
        self, session: str, cl_ord_id: str, order_id: str, canceled: int, protection: int, now_ns: int | None = None
    ) -> None:
        """The gateway canceled what a market order could not fill within its protection price: a
        ``market_protection`` event (limit: the protection price, value: the shares canceled)."""
        self._order = (cl_ord_id or "", order_id or "")
        try:
            self._event(self._clock(now_ns), session, "market_protection", protection, canceled, "cancel")
        finally:
            self._order = ("", "")

    # -- order-flow inputs (the drop-copy view) ---------------------------------------------------
    def on_execution_report(self, session: str, raw: Any, now_ns: int | None = None, tick_size: Any = "0.01") -> Any:
        """Feed one drop copy (raw string / quickfix Message / :class:`ExecReport`). Returns the
        parsed report (None if not an 8)."""
        er = raw if isinstance(raw, ExecReport) else parse_execution_report(raw, tick_size)
        if er is None:
            return None
        account, filled = self.ledger.apply(session, er)
        if filled:
            oid = er.order_id if er.order_id != "NONE" else ""
            self._order = (er.cl_ord_id or "", oid)
            try:
                self.evaluate(account, self._clock(now_ns))
            finally:
                self._order = ("", "")
        return er

    def on_cancel_reject(self, session: str, cl_ord_id: str | None) -> None:
        """An OrderCancelReject (9): a refused replace releases what its acceptance reserved."""
        if cl_ord_id:
            self.ledger.release(session, cl_ord_id)

    def on_fill(self, account: str, symbol: str, side: str, qty: int, price: int, now_ns: int | None = None) -> None:
        """A fill known otherwise than by an execution report (tests, native order paths)."""
        self.ledger.apply_fill(account, symbol, side, qty, price)
        self.evaluate(account, self._clock(now_ns))

    def evaluate(self, account: str, now_ns: int | None = None) -> None:
        """Kill-switch triggers on the filled state: daily loss and position beyond their limits."""
        if not self.triggers or account in self.blocked:
            return
        now = self._clock(now_ns)
        lim = self.limits_for(account)
        if lim.max_daily_loss is not None and lim.kill_on_loss:
            loss = -self.ledger.pnl(account)
            if loss > lim.max_daily_loss:
                self._event(now, account, "daily_loss", lim.max_daily_loss, loss, "kill")
                self.kill(account, f"daily loss {loss} > {lim.max_daily_loss}", now, kind=None)
                return
        for symbol, pos in sorted(self.ledger.positions.get(account, {}).items()):
            sl = self.limits_for(account, symbol)
            if not sl.kill_on_position:
                continue
            if sl.max_long is not None and pos > sl.max_long:
                self._event(now, account, "position_long", sl.max_long, pos, "kill")
                self.kill(account, f"{symbol} position {pos} > max long {sl.max_long}", now, kind=None)
                return
            if sl.max_short is not None and -pos > sl.max_short:
                self._event(now, account, "position_short", sl.max_short, -pos, "kill")
                self.kill(account, f"{symbol} position {pos} < -max short {sl.max_short}", now, kind=None)
                return

    # -- kill switch -------------------------------------------------------------------------------
    def is_blocked(self, account: str) -> bool:
        return self.block_all is not None or account in self.blocked

    def kill(self, account: str, reason: str, now_ns: int | None = None, kind: str | None = "kill_switch") -> None:
        """Block every new order of ``account`` (``""`` or ``"*"``: every account) and queue the
        kill for the officer (:meth:`take_kills`). Idempotent while blocked."""
        now = self._clock(now_ns)
        if account in ("", "*"):
            if self.block_all is not None:
                return
            self.block_all = reason
            targets = [a for a in self.ledger.accounts() if a not in self.blocked]
            for a in targets:
                self.blocked[a] = reason
            self._event(now, "*", kind or "kill_switch", 0, 1, "kill")
            self._kills.append(("", reason, now))
            return
        if account in self.blocked:
            return
        self.blocked[account] = reason
        if kind is not None:
            self._event(now, account, kind, 0, 1, "kill")
        self._kills.append((account, reason, now))

    def unblock(self, account: str, now_ns: int | None = None, reason: str = "command", *, record: bool = True) -> None:
        """Re-enable ``account`` (``""`` / ``"*"``: all). Only an explicit command does this. The
        ``unblock`` events are recorded unless ``record`` is False (the gateway reports its own)."""
        now = self._clock(now_ns)
        self.reduce_only_orders = {k for k in self.reduce_only_orders if account not in ("", "*", k[0])}
        if account in ("", "*"):
            self.block_all = None
            for a in sorted(self.blocked):
                if record:
                    self._event(now, a, "kill_switch", 0, 0, "unblock")
            self.blocked.clear()
            return
        if self.blocked.pop(account, None) is not None and record:
            self._event(now, account, "kill_switch", 0, 0, "unblock")

    def record(self, ev: RiskEvent) -> None:
        """An event of the gate's owner (e.g. the gateway's mass cancel) into the gate's audit trail."""
        if self.sink is not None:
            self.sink(ev)
        else:
            self.events.append(ev)

    def take_kills(self) -> list[tuple[str, str, int]]:
        """Kills decided since the last call: (account, reason, time_ns); ``""`` = all accounts."""
        kills, self._kills = self._kills, []
        return kills

    # -- the check ----------------------------------------------------------------------------------
    def on_cancel(self, session_key: str, account: str | None = None, now_ns: int | None = None) -> None:
        """A cancel (F) or mass cancel (q) received by the gateway: one message in the account's
        message-rate window (RTS 6 counts every message). A cancel is never refused -- it only
        takes risk off -- but the new orders and replaces after it meet a fuller window."""
        who = account or session_key
        lim = self.limits_for(who)
        if lim.max_messages is not None:
            now = self._clock(now_ns)
            _window(self._messages, who, now, _ns(lim.message_window_ms)).append(now)

    def __call__(self, session_key: str, req: Any, now_ns: int | None = None) -> str | None:
        """The ``pretrade`` hook of :class:`fix.gateway.GatewayCore` (a ``NewOrder`` or a
        ``ReplaceRequest`` of ``fix.codec``). Every control keys on the session (SenderCompID, the
        authenticated client); an Account(1) tag may only narrow: when the tag has limits of its
        own, its per-order limits apply on top of the session's."""
        cl = req.cl_ord_id or ""
        if hasattr(req, "orig_cl_ord_id"):
            known = self.ledger.cl_index.get((session_key, req.orig_cl_ord_id)) if req.orig_cl_ord_id else None
            self._order = (cl, known or req.order_id or "")
        else:
            self._order = (cl, "")
        try:
            return self._hook(session_key, req, now_ns)
        finally:
            self._order = ("", "")

    def _hook(self, session_key: str, req: Any, now_ns: int | None) -> str | None:
        account = session_key
        tag = getattr(req, "account", None)
        if tag and tag != session_key:
            refused = self._narrow(account, tag, req.symbol, req.side, req.qty, req.price_ticks, now_ns)
            if refused is not None:
                self.rejected += 1
                return refused
        # a replace (OrderQty is the new total) is checked against the open order it replaces
        is_replace = hasattr(req, "orig_cl_ord_id")
        old = self.ledger.find(session_key, req.orig_cl_ord_id, req.order_id) if is_replace else None
        return self.check(
            account,
            req.symbol,
            req.side,
            req.qty,
            req.price_ticks,
            now_ns,
            replaces=old,
            session=session_key,
            cl_ord_id=req.cl_ord_id,
        )

    def _narrow(
        self, account: str, tag: str, symbol: str, side: str, qty: int, price: int | None, now_ns: int | None
    ) -> str | None:
        """The per-order limits (quantity, notional) of an Account tag's own entry, if it has one."""
        names = (f"{tag}/{symbol}", tag)
        lim = next((self.overrides[n] for n in names if n in self.overrides), None)
        if lim is None:
            return None
        now = self._clock(now_ns)
        if lim.max_order_qty is not None and qty > lim.max_order_qty:
            return self._reject(now, account, "max_order_qty", lim.max_order_qty, qty)
        px = price
        if px is None:  # a market order: at the session's protection price (worst case), else the reference
            own = self.limits_for(account, symbol)
            px = self._ref(own, symbol)
            if own.market_protection:
                px = self._protection(own, symbol, side, px)
        if lim.max_order_notional is not None and px is not None and qty * px > lim.max_order_notional:
            return self._reject(now, account, "max_order_notional", lim.max_order_notional, qty * px)
        return None

    def check(
        self,
        account: str,
        symbol: str,
        side: str,
        qty: int,
        price: int | None,
        now_ns: int | None = None,
        *,
        session: str | None = None,
        cl_ord_id: str | None = None,
        replaces: OpenOrder | None = None,
    ) -> str | None:
        """Accept (None) or refuse (the reason) a new order -- or, with ``replaces``, a replace of
        that open order to total quantity ``qty`` at ``price``. With ``cl_ord_id`` an accepted new
        order is kept as pending exposure under ``(session or account, cl_ord_id)`` until its
        execution report arrives."""
        now = self._clock(now_ns)
        reason = self._check(account, symbol, side, qty, price, now, session, cl_ord_id, replaces)
        if reason is None:
            self.accepted += 1
        else:
            self.rejected += 1
        return reason

    def _check(
        self,
        account: str,
        symbol: str,
        side: str,
        qty: int,
        price: int | None,
        now: int,
        session: str | None,
        cl_ord_id: str | None,
        old: OpenOrder | None,
    ) -> str | None:
        is_new = old is None
        acct = self.limits_for(account)
        blocked = self.block_all is not None or account in self.blocked
        if blocked:
            why = self.blocked.get(account) or self.block_all
            if acct.after_kill != "reduce_only":
                self._event(now, account, "kill_switch", 0, 1, "reject")
                return f"risk: kill switch active ({why})"
            refused = self._reduce_only(now, account, symbol, side, qty, old, why)
            if refused is not None:
                return refused
        lim = self.limits_for(account, symbol)
        # -- throttles (both windows are checked before either counts: a throttled message takes
        # no slot, so a well-behaved sender recovers when the window slides) --------------------
        msg_dq = order_dq = None
        if acct.max_messages is not None:
            msg_dq = _window(self._messages, account, now, _ns(acct.message_window_ms))
            if len(msg_dq) >= acct.max_messages:
                return self._throttled(now, account, acct, "message_rate", acct.max_messages, len(msg_dq) + 1)
        if is_new and acct.max_orders is not None:
            order_dq = _window(self._orders, account, now, _ns(acct.order_window_ms))
            if len(order_dq) >= acct.max_orders:
                return self._throttled(now, account, acct, "order_rate", acct.max_orders, len(order_dq) + 1)
        if msg_dq is not None:
            msg_dq.append(now)
        if order_dq is not None:
            order_dq.append(now)
        # -- the order itself ------------------------------------------------------------------
        if symbol in acct.restricted or symbol in lim.restricted:
            return self._reject(now, account, "restricted", 0, 1, f"risk: {symbol} is on the restricted list")
        if lim.max_order_qty is not None and qty > lim.max_order_qty:
            return self._reject(now, account, "max_order_qty", lim.max_order_qty, qty)
        ref = self._ref(lim, symbol)
        protection = None
        if price is None and lim.market_protection:  # market order protection: fail closed
            protection = self._protection(lim, symbol, side, ref)
            if protection is None:
                return self._reject(
                    now, account, "no_reference", 0, 0, "risk: no reference price for market order protection"
                )
        px = price if price is not None else protection if protection is not None else ref
        if px is None:
            px = self.ledger.marks.get(symbol)
        if px is None and (lim.max_order_notional is not None or acct.max_gross_notional is not None):
            return self._reject(now, account, "no_reference", 0, 0, "risk: no reference price for a market order")
        notional = qty * (px or 0)
        if lim.max_order_notional is not None and notional > lim.max_order_notional:
            return self._reject(now, account, "max_order_notional", lim.max_order_notional, notional)
        if price is not None and (lim.collar_pct is not None or lim.collar_ticks is not None):
            if ref is None:  # fail closed: a collar that cannot be checked refuses the order
                return self._reject(now, account, "no_reference", 0, 0, "risk: no reference price for the collar")
            width = _width(ref, lim.collar_pct, lim.collar_ticks)
            if abs(price - ref) > width:
                bound = ref + width if price > ref else ref - width
                return self._reject(
                    now, account, "price_collar", bound, price, f"risk: price {price} outside collar {ref}+-{width}"
                )
        dup_key = None
        if is_new and lim.duplicate_window_ms is not None:
            dup_key = (account, symbol, side, qty, price)
            t = self._recent.get(dup_key)
            if t is not None and now - t < _ns(lim.duplicate_window_ms):
                return self._reject(
                    now, account, "duplicate_order", _ns(lim.duplicate_window_ms), now - t, "risk: duplicate order"
                )
        if lim.prevent_self_match:
            own = self._own_cross(account, symbol, side, price)
            if own is not None:
                what = "market" if price is None else str(price)
                return self._reject(
                    now,
                    account,
                    "self_match",
                    own,
                    price or 0,
                    f"risk: self match: {_SIDE_WORD[side]} at {what} would trade with the session's own "
                    f"{_SIDE_WORD[_OTHER[side]]} at {own}",
                )
        # -- exposure ---------------------------------------------------------------------------
        ledger = self.ledger
        open_qty = qty - (old.cum_qty if old is not None else 0)
        if lim.max_long is not None or lim.max_short is not None:
            pos = ledger.position(account, symbol)
            same = ledger.open_qty(account, symbol, side)
            if old is not None and old.side == side and old.symbol == symbol:
                same -= old.leaves_qty
            if side == "B":
                potential = pos + same + open_qty
                if lim.max_long is not None and potential > lim.max_long:
                    return self._reject(now, account, "max_long", lim.max_long, potential)
            else:
                potential = -(pos - same - open_qty)
                if lim.max_short is not None and potential > lim.max_short:
                    return self._reject(now, account, "max_short", lim.max_short, potential)
        if acct.max_gross_notional is not None:
            gross = ledger.gross(account) + open_qty * (px or 0)
            if old is not None:
                gross -= old.leaves_qty * old.px
            if gross > acct.max_gross_notional:
                return self._reject(now, account, "gross_notional", acct.max_gross_notional, gross)
        if acct.max_daily_loss is not None:
            loss = -ledger.pnl(account)
            if loss > acct.max_daily_loss:
                return self._reject(now, account, "daily_loss", acct.max_daily_loss, loss)
        # -- accepted ---------------------------------------------------------------------------
        if dup_key is not None:
            self._recent[dup_key] = now
            if len(self._recent) > 4096:
                self._prune_recent(now)
        if protection is not None and cl_ord_id is not None:
            self._protections[(session or account, cl_ord_id)] = protection
        if blocked and cl_ord_id is not None:  # a reduce-only order after a kill: not one to cancel
            self.reduce_only_orders.add((session or account, cl_ord_id))
        if cl_ord_id is not None:  # reserve what goes in flight until the exchange answers
            if is_new:
                ledger.add_pending(session or account, cl_ord_id, OpenOrder(account, symbol, side, qty, px or 0))
            elif old is not None:
                extra = open_qty - old.leaves_qty if old.side == side and old.symbol == symbol else open_qty
                if extra > 0:  # a replace up: the increase is exposure from now (down: released on the answer)
                    ledger.add_pending(session or account, cl_ord_id, OpenOrder(account, symbol, side, extra, px or 0))
        return None

    def _reduce_only(
        self, now: int, account: str, symbol: str, side: str, qty: int, old: OpenOrder | None, why: str | None
    ) -> str | None:
        """A blocked session in reduce-only mode: None if the order (or replace) only reduces the
        position -- with the session's open orders on its side, it can at most flatten -- else the
        refusal."""
        ledger = self.ledger
        pos = ledger.position(account, symbol)
        same = ledger.open_qty(account, symbol, side)
        if old is not None and old.side == side and old.symbol == symbol:
            same -= old.leaves_qty
        adds = qty - (old.cum_qty if old is not None else 0)
        room = max(pos, 0) if side == "S" else max(-pos, 0)
        if same + adds <= room:
            return None
        self._event(now, account, "reduce_only", room, same + adds, "reject")
        return (
            f"risk: reduce only after kill ({why}): {_SIDE_WORD[side]} {adds} + open {same} > position {pos} can reduce"
        )

    def _own_cross(self, account: str, symbol: str, side: str, price: int | None) -> int | None:
        """The best price of the session's own open (or in-flight) orders on the other side that an
        order at ``price`` (None: market) would trade with; None when it would trade with none."""
        other = _OTHER[side]
        best: int | None = None
        ledger = self.ledger
        for o in (*ledger.orders.values(), *ledger.pending.values()):
            if o.account != account or o.symbol != symbol or o.side != other or o.leaves_qty <= 0:
                continue
            crosses = price is None or (o.px <= price if side == "B" else o.px >= price)
            if crosses and (best is None or (o.px < best if side == "B" else o.px > best)):
                best = o.px
        return best

    # -- helpers -----------------------------------------------------------------------------------
    def _clock(self, now_ns: int | None) -> int:
        if now_ns is not None and now_ns > self.now_ns:
            self.now_ns = now_ns
        return self.now_ns if now_ns is None else now_ns

    def _event(self, now: int, account: str, kind: str, limit: float, value: float, action: str) -> None:
        ev = RiskEvent(now, account, kind, float(limit), float(value), action, *self._order)
        if self.sink is not None:
            self.sink(ev)
        else:
            self.events.append(ev)

    def _reject(self, now: int, account: str, kind: str, limit: int, value: int, text: str | None = None) -> str:
        self._event(now, account, kind, limit, value, "reject")
        return text or f"risk: {kind.replace('_', ' ')} {value} > {limit}"

    def _throttled(self, now: int, account: str, acct: RiskLimits, kind: str, limit: int, value: int) -> str:
        self._event(now, account, kind, limit, value, "reject")
        n = acct.kill_throttle_breaches
        if n is not None:
            dq = _window(self._breaches, account, now, _ns(acct.kill_throttle_window_ms))
            dq.append(now)
            if len(dq) >= n:
                self._event(now, account, "runaway_order_rate", n, len(dq), "kill")
                self.kill(account, f"runaway order rate: {len(dq)} throttle breaches", now, kind=None)
        return f"risk: {kind.replace('_', ' ')} {value} > {limit} per window"

    def _prune_recent(self, now: int) -> None:
        keep = {}
        for key, t in self._recent.items():
            lim = self.limits_for(key[0], key[1])
            if lim.duplicate_window_ms is not None and now - t < _ns(lim.duplicate_window_ms):
                keep[key] = t
        self._recent = keep


_SIDE_WORD = {"B": "buy", "S": "sell"}
_OTHER = {"B": "S", "S": "B"}


def _window(table: dict[str, deque[int]], account: str, now: int, window: int) -> deque[int]:
    dq = table.get(account)
    if dq is None:
        dq = table[account] = deque()
    cutoff = now - window
    while dq and dq[0] <= cutoff:
        dq.popleft()
    return dq


def _width(ref: int, pct: float | None, ticks: int | None) -> int:
    """A collar's half width around ``ref``: floor(ref * pct / 100) and ``ticks``, the tighter one."""
    widths = []
    if pct is not None:
        widths.append(math.floor(ref * Fraction(str(pct)) / 100))
    if ticks is not None:
        widths.append(ticks)
    return min(widths)
