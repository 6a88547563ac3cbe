"""The risk officer actor: its own positions and P&L from drop copies, intraday VaR / ES, the kill
switch, and the limits it sets -- at the gateway, by messages (:class:`SetRiskLimits`,
:class:`~actors.messages.KillSwitch`). The gateway owns the gate in the order path and answers a
kill with what it did (:class:`~actors.messages.KillSwitchActivated`: orders canceled at the
exchange, sessions blocked) and reports every refusal as a :class:`RiskEvent`."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any, ClassVar

from actors.messages import (
    DropCopy,
    KillSwitch,
    KillSwitchActivated,
    KillSwitchReleased,
    QuoteUpdated,
    SubscribeDropCopy,
    SubscribeMarketData,
    TradePrinted,
)
from actors.risk.gate import PreTradeGate
from actors.risk.ledger import parse_execution_report
from actors.risk.limits import RISK_EVENT_COLUMNS, GateConfig, RiskEvent, RiskLimits, SetRiskLimits
from actors.riskstats import CONVENTION, normal_var_es, var_es
from sim.actor import Actor, Wakeup, handles
from sim.clock import MINUTE, SECOND
from sim.record import Recorder

__all__ = [
    "RiskOfficer",
    "VaRFigures",
    "grid_returns",
    "historical_var_es",
    "minute_returns",
    "parametric_var_es",
    "var_min_observations",
]

# =============================================================================================
# VaR / ES
# =============================================================================================


#: the officer's VaR: losses of the current exposure over this horizon ...
VAR_HORIZON_S = 60
#: ... from mid-price returns over the horizon, sampled (overlapping) on this grid ...
VAR_STEP_S = 10
#: ... and shown only with at least this many observations in the tail (N (1 - alpha) >= 3),
#: else "n/a" (None): a 99% VaR needs 300 observations, 51 minutes of quotes.
VAR_MIN_TAIL = 3


def var_min_observations(alpha: float) -> int:
    """Fewest observations for an intraday VaR at ``alpha``: ``ceil(VAR_MIN_TAIL / (1 - alpha))``."""
    return math.ceil(VAR_MIN_TAIL / (1 - Fraction(str(alpha))))


def historical_var_es(losses: Sequence[float], alpha: float = 0.99) -> tuple[float, float]:
    """Historical VaR (the ``ceil(N (1 - alpha))``-th largest loss) and Acerbi-Tasche ES, from
    :mod:`actors.riskstats` (the one definition Monte Carlo uses too). ``(nan, nan)`` without
    outcomes."""
    return var_es(losses, alpha)


def parametric_var_es(losses: Sequence[float], alpha: float = 0.99) -> tuple[float, float]:
    """Normal VaR and ES of losses with the sample mean ``mu`` and standard deviation ``s``
    (n - 1): VaR = mu + z s, ES = mu + s phi(z) / (1 - alpha), z = Phi^-1(alpha); nan below 2."""
    return normal_var_es(losses, alpha)


def grid_returns(
    series: Mapping[str, Sequence[tuple[int, int]]], symbols: Iterable[str], lag: int, last: int
) -> list[dict[str, float]]:
    """Returns over ``lag`` grid steps of ``symbols`` at every grid slot up to ``last`` (overlapping
    windows), on a common grid of forward-filled prices starting where every symbol has one.
    ``series[symbol]`` is (slot, price) in increasing slot order (any price unit: 2 x mid)."""
    symbols = sorted(set(symbols))
    data = {s: dict(series.get(s, ())) for s in symbols}
    if not symbols or any(not v for v in data.values()):
        return []
    start = max(min(v) for v in data.values())
    if last - start < lag:
        return []
    filled: dict[str, list[int]] = {}
    for s in symbols:
        px = data[s][max(t for t in data[s] if t <= start)]
        col = []
        for t in range(start, last + 1):
            px = data[s].get(t, px)
            col.append(px)
        filled[s] = col
    return [{s: filled[s][i] / filled[s][i - lag] - 1.0 for s in symbols} for i in range(lag, last - start + 1)]


def minute_returns(closes: Mapping[str, Sequence[tuple[int, int]]], symbols: Iterable[str]) -> list[dict[str, float]]:
    """Simple 1-minute returns of ``symbols`` on a common minute grid (forward-filled closes),
    starting at the first minute where every symbol has a price. ``closes[symbol]`` is a list of
    (minute index, last trade price) in increasing minute order."""
    symbols = sorted(set(symbols))
    series = {s: dict(closes.get(s, ())) for s in symbols}
    if not symbols or any(not v for v in series.values()):
        return []
    start = max(min(v) for v in series.values())
    end = max(max(v) for v in series.values())
    last: dict[str, int] = {}
    for s in symbols:
        before = [m for m in series[s] if m <= start]
        last[s] = series[s][max(before)]
    out = []
    for m in range(start + 1, end + 1):
        row = {}
        for s in symbols:
            p = series[s].get(m, last[s])
            row[s] = p / last[s] - 1.0
            last[s] = p
        out.append(row)
    return out


# =============================================================================================
# the risk officer actor
# =============================================================================================


@dataclass(slots=True)
class _KillRun:
    reason: str
    trigger_ns: int
    done_ns: int | None = None
    account: str = ""
    canceled: int = 0  # orders the gateway reported canceled at the exchange for this kill
    blocked_sessions: tuple[str, ...] = ()  # the sessions the gateway reported blocked


@dataclass(slots=True)
class VaRFigures:
    """VaR / ES of one account at ``time_ns`` over ``horizon_s``; the figures are None ("n/a")
    with fewer than ``min_n`` observations."""

    time_ns: int
    account: str
    n: int
    hist_var: float | None
    hist_es: float | None
    param_var: float | None
    param_es: float | None
    exposure: dict[str, int] = field(default_factory=dict)
    horizon_s: int = VAR_HORIZON_S
    min_n: int = 0

    def view(self) -> dict[str, Any]:
        figs = {"hist_var": self.hist_var, "hist_es": self.hist_es, "param_var": self.param_var}
        figs["param_es"] = self.param_es
        status = "ok" if self.hist_var is not None else f"n/a: {self.n} of {self.min_n} observations"
        return {**figs, "n": self.n, "horizon_s": self.horizon_s, "status": status}


class RiskOfficer(Actor):
    """Independent control function. Handles ``DropCopy`` (from the FIX gateway actor it
    subscribed to with ``SubscribeDropCopy``), ``TradePrinted`` / ``QuoteUpdated`` (market
    data it subscribed to at the exchange), ``KillSwitch`` (a command: ``on=True`` pulls it,
    ``on=False`` releases it -- the only way to re-enable), ``SetRiskLimits`` (a command: new
    limits, passed on to the gateway) and its VaR timer.

    The gate in the order path belongs to the gateway (built from the same :class:`GateConfig`);
    the officer keeps a gate of its own (``self.gate``: its limits, blocked accounts and a ledger
    fed only by drop copies) and talks to the gateway by messages only:

    * a kill it decides (its loss / position / VaR triggers or a command) is recorded
      (``mass_cancel`` at the trigger), told to every desk actor (``KillSwitchActivated``) and sent
      to the gateway as ``KillSwitch(account, True, reason, trigger_ns)``; the gateway blocks the
      session(s), cancels their live orders at the exchange, and answers ``KillSwitchActivated``
      with the orders canceled and the sessions blocked once the exchange has answered every
      cancel: the officer then records ``cancels_acked`` (value = nanoseconds from the trigger);
    * a kill the gateway's gate decides itself (a runaway order rate) arrives as that answer; the
      officer records it and tells the desks then;
    * the gateway's refusals arrive as :class:`RiskEvent` messages and go to ``risk_events``.
    """

    placement_role: ClassVar[str] = "solo"  # talks by messages only: any process will do

    def __init__(
        self,
        name: str,
        recorder: Recorder,
        limits: RiskLimits | GateConfig | None = None,
        *,
        overrides: Mapping[str, RiskLimits] | None = None,
        reference_prices: Mapping[str, int] | None = None,
        symbols: Sequence[str] = (),
        gateway: str | None = "gateway",
        exchange: str | None = "exchange",
        desk: str | Sequence[str] | None = None,
        tick_size: Decimal | str | float = "0.01",
        var_interval_s: float = 60.0,
        var_lookback_min: int = 60,
        var_alpha: float = 0.99,
        location: str = "risk",
        accounts: Sequence[str] = (),
    ) -> None:
        super().__init__(name, location)
        if isinstance(limits, GateConfig):
            overrides = dict(limits.overrides)
            reference_prices = dict(limits.reference_prices)
            limits = limits.default
        self.known_accounts = set(accounts)  # the FIX sessions the officer answers for
        self.recorder = recorder
        self.table = recorder.table("risk_events", RISK_EVENT_COLUMNS)
        self.gate = PreTradeGate(limits, overrides, reference_prices=reference_prices)  # the officer's own
        self.gate.sink = self._record
        self.ledger = self.gate.ledger
        self.symbols = list(symbols)
        self.gateway_name = gateway
        self.exchange_name = exchange
        self.desk_names = [desk] if isinstance(desk, str) else list(desk or ())
        self.tick = tick_size if isinstance(tick_size, Decimal) else Decimal(str(tick_size))
        self.var_interval_ns = round(var_interval_s * SECOND)
        self.var_lookback_min = int(var_lookback_min)
        self.var_alpha = float(var_alpha)
        self.gateway = -1
        self.exchange = -1
        self.desks: list[int] = []
        self.closes: dict[str, deque[tuple[int, int]]] = {}
        self.mids: dict[str, deque[tuple[int, int]]] = {}  # symbol -> (grid slot, bid + ask) closes
        self.kills: dict[str, _KillRun] = {}
        self.kill_log: list[_KillRun] = []  # every kill of the run, released or not
        self.kill_latency_ns: dict[str, list[int]] = {}
        self.var: dict[str, VaRFigures] = {}
        self.drop_copies = 0
        self.gateway_events = 0  # RiskEvents reported by the gateway's gate
        self.errors: list[str] = []

    # -- start ------------------------------------------------------------------------------------
    def on_start(self) -> None:
        if self.gateway_name is not None:
            self.gateway = self.lookup(self.gateway_name)
            self.send(self.gateway, SubscribeDropCopy())
        if self.exchange_name is not None:
            self.exchange = self.lookup(self.exchange_name)
            for symbol in self.symbols:  # quotes: the VaR runs on mid prices (no bid-ask bounce)
                self.send(self.exchange, SubscribeMarketData(symbol, trades=True, quotes=True))
        self.desks = [self.lookup(n) for n in self.desk_names]
        if self.var_interval_ns > 0:
            self.wake_in(self.var_interval_ns, "var")

    # -- inputs ----------------------------------------------------------------------------------
    @handles(DropCopy)
    def _on_drop_copy(self, msg: DropCopy, src: int) -> None:
        self.on_drop_copy(msg.session, msg.exec_report_raw)

    def on_drop_copy(self, session: str, raw: Any) -> None:
        """One drop copy (also callable directly by a gateway adapter)."""
        self.drop_copies += 1
        try:
            er = parse_execution_report(raw, self.tick)
        except Exception as exc:
            self._error(f"drop copy: {type(exc).__name__}: {exc}")
            return
        if er is None:
            return
        self.gate.on_execution_report(session, er, self.now)
        account = session  # controls key on the session, never on the Account(1) tag
        self.known_accounts.add(session)
        del account
        self._after()

    @handles(TradePrinted)
    def on_trade(self, msg: TradePrinted, src: int) -> None:
        minute = msg.time_ns // MINUTE
        dq = self.closes.get(msg.symbol)
        if dq is None:
            dq = self.closes[msg.symbol] = deque(maxlen=self.var_lookback_min + 2)
        if dq and dq[-1][0] == minute:
            dq[-1] = (minute, msg.price)
        else:
            dq.append((minute, msg.price))
        self.gate.on_mark(msg.symbol, msg.price, self.now)
        self._after()

    @handles(QuoteUpdated)
    def on_quote(self, msg: QuoteUpdated, src: int) -> None:
        self.gate.on_quote(msg.symbol, msg.bid, msg.ask)
        if msg.bid is None or msg.ask is None:
            return
        slot = msg.time_ns // (VAR_STEP_S * SECOND)
        dq = self.mids.get(msg.symbol)
        if dq is None:
            steps = (self.var_lookback_min * 60 + VAR_HORIZON_S) // VAR_STEP_S + 2
            dq = self.mids[msg.symbol] = deque(maxlen=steps)
        if dq and dq[-1][0] == slot:
            dq[-1] = (slot, msg.bid + msg.ask)
        else:
            dq.append((slot, msg.bid + msg.ask))

    @handles(Wakeup)
    def on_wakeup(self, msg: Wakeup, src: int) -> None:
        if msg.tag == "var":
            self.compute_var()
            self.wake_in(self.var_interval_ns, "var")
        self._after()

    def is_known(self, account: str) -> bool:
        """An account the kill switch can act on: ``""`` / ``"*"`` (all), a configured session, one
        seen in the drop copies, or one with limits of its own. Case-sensitive, as CompIDs are."""
        if account in ("", "*") or account in self.known_accounts or account in self.gate.overrides:
            return True
        return account in self.gate.blocked or account in self.ledger.accounts()

    @handles(KillSwitch)
    def on_kill_switch(self, msg: KillSwitch, src: int) -> None:
        if not self.is_known(msg.account):  # nothing would be canceled or blocked: refuse, say so
            on = 1.0 if msg.on else 0.0
            self._record(RiskEvent(self.now, msg.account, "kill_switch_command", 0.0, on, "refused"))
            self._error(f"kill switch {'on' if msg.on else 'off'} for unknown account {msg.account!r} refused")
            return
        if msg.on:
            self.gate.kill(msg.account, msg.reason or "command", self.now, kind="kill_switch_command")
        else:
            self.gate.unblock(msg.account, self.now, msg.reason, record=self.gateway < 0)  # the gateway reports it
            if msg.account in ("", "*"):
                self.kills.clear()
            else:
                self.kills.pop(msg.account, None)
            if self.gateway >= 0:
                self.send(self.gateway, KillSwitch(msg.account, False, msg.reason, self.now))
            for d in self.desks:
                self.send(d, KillSwitchReleased(msg.account, msg.reason, self.now))
        self._after()

    @handles(SetRiskLimits)
    def on_set_limits(self, msg: SetRiskLimits, src: int) -> None:
        """New limits: the officer's own view, and the gateway's gate (by message)."""
        self.gate.set_limits(msg.key, msg.limits)
        if self.gateway >= 0 and src != self.gateway:
            self.send(self.gateway, msg)

    # -- the gateway's answers ---------------------------------------------------------------------
    @handles(RiskEvent)
    def on_gateway_event(self, msg: RiskEvent, src: int) -> None:
        """A refusal, kill or action of the gateway's gate: into the audit trail."""
        self.gateway_events += 1
        self._record(msg)

    @handles(KillSwitchActivated)
    def on_kill_done(self, msg: KillSwitchActivated, src: int) -> None:
        """The gateway's answer to a kill: what it canceled at the exchange and blocked. A kill the
        gateway decided itself (runaway) is new to the officer: it blocks its view and tells the desks."""
        account = msg.account
        run = self.kills.get(account)
        if run is None or run.reason != msg.reason or run.done_ns is not None:
            run = self.kills[account] = _KillRun(msg.reason, msg.time_ns, account=account)
            self.kill_log.append(run)
            if account in ("", "*"):
                self.gate.block_all = msg.reason
            else:
                self.gate.blocked.setdefault(account, msg.reason)
            for d in self.desks:
                self.send(d, KillSwitchActivated(account, msg.reason, msg.time_ns))
        run.canceled = msg.canceled
        run.blocked_sessions = tuple(msg.blocked)
        run.done_ns = msg.confirmed_ns if msg.confirmed_ns is not None else self.now
        latency = run.done_ns - run.trigger_ns
        self.kill_latency_ns.setdefault(account, []).append(latency)
        self._record(RiskEvent(run.done_ns, account or "*", "kill_switch", 0.0, float(latency), "cancels_acked"))

    # -- kill switch -----------------------------------------------------------------------------
    def _after(self) -> None:
        for account, reason, t0 in self.gate.take_kills():
            self._start_kill(account, reason, t0)

    def _start_kill(self, account: str, reason: str, t0: int) -> None:
        run = self.kills[account] = _KillRun(reason, t0, account=account)
        self.kill_log.append(run)
        if self.gateway >= 0:
            self.send(self.gateway, KillSwitch(account, True, reason, t0))
        for d in self.desks:
            self.send(d, KillSwitchActivated(account, reason, t0))

    # -- VaR / ES ------------------------------------------------------------------------------
    def compute_var(self) -> dict[str, VaRFigures]:
        """VaR / ES (historical and parametric normal, level ``var_alpha``) of every account's
        current exposure over a ``VAR_HORIZON_S`` horizon, from mid-price returns over that
        horizon sampled every ``VAR_STEP_S`` (overlapping windows) in the last
        ``var_lookback_min`` minutes of complete grid steps; "n/a" (None) with fewer than
        :func:`var_min_observations`; checked against ``max_var`` / ``max_es`` when known."""
        now = self.now
        current = now // (VAR_STEP_S * SECOND)
        closes = {s: [c for c in dq if c[0] < current] for s, dq in self.mids.items()}
        out = {}
        desk: dict[str, int] = {}
        books = [(a, self.ledger.positions[a]) for a in sorted(self.ledger.positions)]
        for account, book in books:
            exposure = {s: q * self.ledger.marks.get(s, 0) for s, q in sorted(book.items()) if q}
            for s, v in exposure.items():
                desk[s] = desk.get(s, 0) + v
            if exposure:
                out[account] = self._var_of(account, exposure, closes, now)
        if len(out) > 1 and any(desk.values()):  # the whole desk ("*"), netted across accounts
            out["*"] = self._var_of("*", {s: v for s, v in desk.items() if v}, closes, now)
        return out

    def _var_of(self, account: str, exposure: dict[str, int], closes: Mapping[str, Any], now: int) -> VaRFigures:
        last = now // (VAR_STEP_S * SECOND) - 1
        keep = self.var_lookback_min * 60 // VAR_STEP_S
        rets = grid_returns(closes, exposure, VAR_HORIZON_S // VAR_STEP_S, last)[-keep:]
        losses = [-math.fsum(v * r[s] for s, v in exposure.items()) for r in rets]
        need = var_min_observations(self.var_alpha)
        hv = he = pv = pe = None
        if len(losses) >= need:
            hv, he = historical_var_es(losses, self.var_alpha)
            pv, pe = parametric_var_es(losses, self.var_alpha)
        fig = VaRFigures(now, account, len(losses), hv, he, pv, pe, exposure=exposure, min_n=need)
        self.var[account] = fig
        if account != "*" or "*" in self.gate.overrides:  # desk-wide limits: an override "*"
            self._check_var(account, fig)
        return fig

    def _check_var(self, account: str, fig: VaRFigures) -> None:
        lim = self.gate.limits_for(account)
        breached = []
        if lim.max_var is not None:
            breached += [(k, lim.max_var, v) for k, v in (("var_hist", fig.hist_var), ("var_param", fig.param_var))]
        if lim.max_es is not None:
            breached += [(k, lim.max_es, v) for k, v in (("es_hist", fig.hist_es), ("es_param", fig.param_es))]
        breached = [(k, limit, v) for k, limit, v in breached if v is not None and v > limit]
        for kind, limit, value in breached:
            self._record(
                RiskEvent(self.now, account, kind, float(limit), float(value), "kill" if lim.kill_on_var else "alert")  # type: ignore[arg-type]
            )
        if breached and lim.kill_on_var:
            self.gate.kill(
                account, f"{breached[0][0]} {breached[0][2]:.0f} > {breached[0][1]:.0f}", self.now, kind=None
            )

    # -- views ---------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Positions and cash from the drop copies (for :func:`reconcile`), plus P&L at marks."""
        snap = self.ledger.snapshot()
        snap["pnl"] = {a: self.ledger.pnl(a) for a in sorted(set(self.ledger.positions) | set(self.ledger.cash))}
        return snap

    def pnl(self, account: str) -> int:
        return self.ledger.pnl(account)

    def position(self, account: str, symbol: str) -> int:
        return self.ledger.position(account, symbol)

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for row in self.table.rows:
            key = f"{row[2]}:{row[5]}"
            counts[key] = counts.get(key, 0) + 1
        return {
            "events": dict(sorted(counts.items())),
            "blocked": sorted(self.gate.blocked),
            "kill_latency_ns": {a: list(v) for a, v in sorted(self.kill_latency_ns.items())},
            "kills": [
                {
                    "account": k.account or "*",
                    "reason": k.reason,
                    "trigger_ns": k.trigger_ns,
                    "canceled": k.canceled,  # from the gateway's answer (the exchange's cancels)
                    "blocked_sessions": list(k.blocked_sessions),
                    "acked_ns": k.done_ns,
                    "blocked": self.gate.is_blocked(k.account),
                }
                for k in self.kill_log
            ],
            "var": {a: f.view() for a, f in sorted(self.var.items())},
            "var_method": (
                f"{self.var_alpha:g} VaR / ES of the current exposure over {VAR_HORIZON_S} s, from mid-price returns "
                f"over {VAR_HORIZON_S} s sampled every {VAR_STEP_S} s in the last {self.var_lookback_min} min; "
                f"historical ({CONVENTION}) and normal; n/a below {var_min_observations(self.var_alpha)} observations"
            ),
            "gate": {"accepted": self.gate.accepted, "rejected": self.gate.rejected},
            "accounts": {a: self._account_view(a) for a in self.ledger.accounts()},
        }

    def _account_view(self, account: str) -> dict[str, Any]:
        """The officer's own view of one session at the end: positions (shares), P&L and gross
        exposure (ticks x shares, from its drop-copy ledger and marks), open orders, and the use of
        each limit it knows (filled state / limit; None where the limit is off)."""
        ledger, gate = self.ledger, self.gate
        lim = gate.limits_for(account)
        positions = dict(sorted(ledger.positions.get(account, {}).items()))
        longest = max([q for q in positions.values() if q > 0], default=0)
        shortest = max([-q for q in positions.values() if q < 0], default=0)
        pnl = ledger.pnl(account)
        gross = ledger.gross(account)

        def use(value: int, limit: float | None) -> float | None:
            return None if limit is None else (round(value / limit, 6) if limit > 0 else float(value > 0))

        return {
            "positions": positions,
            "pnl_tick_shares": pnl,
            "gross_tick_shares": gross,
            "open_orders": ledger.open_count(account),
            "limit_usage": {
                "max_long": use(longest, lim.max_long),
                "max_short": use(shortest, lim.max_short),
                "max_gross_notional": use(gross, lim.max_gross_notional),
                "max_daily_loss": use(max(-pnl, 0), lim.max_daily_loss),
            },
        }

    def _record(self, ev: RiskEvent) -> None:
        self.table.append(ev.row())

    def _error(self, text: str) -> None:
        self.errors.append(text)
        if len(self.errors) > 100:
            del self.errors[0]
