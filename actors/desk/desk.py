"""The strategy desk: a signal, a fractional-Kelly target position, parent orders sliced into
child orders by an execution schedule.

Flow (one symbol):

1. Market data. The desk subscribes to trades and quotes of the actor named
   ``params.market_data`` (default ``"exchange"``). Each quote updates the order-book
   imbalance and, when both sides are present, feeds the mid to the price signals and to the
   return-variance estimator; a trade feeds its price only while a side of the book is empty.
   O(1) per message, plain floats.
2. Decisions, every ``decision_interval_s`` from ``open + warmup_s``. The target position is
   ``f · capital / price`` shares with ``f = fractional_kelly_size(edge, variance,
   kelly_fraction, max_leverage)``, where ``edge`` is the signal's expected return over
   ``horizon_s`` net of ``cost_bps`` (shrunk toward 0, never flipped) and ``variance`` the
   variance of the return over the same horizon; clipped to ``±max_position`` and rounded toward
   zero to whole lots. Within ``flatten_before_close_s`` of the close the target is 0.
3. Parent orders. The difference between target and position, capped by ``max_order_qty`` and
   ``max_order_notional``, becomes a parent order (recorded in ``parents``: id, side, qty, algo,
   arrival price = the mid at the decision, ...). One parent works at a time: a decision taken
   while a parent is still working is skipped (counted in ``skipped_decisions``).
4. Child orders. The parent is sliced by TWAP, VWAP or Almgren–Chriss over ``exec_horizon_s``
   (truncated at the close) into ``n_slices`` slices. At each slice time the desk cancels the
   parent's unfilled children and, once every cancel is confirmed (one round trip later), sends
   one child for ``cumulative scheduled - filled - still working`` shares; with nothing left
   open the slice's child goes out at the slice time itself. Counting what is still working
   means a fill racing a cancel can never overfill the parent. Children are DAY limits at the touch
   (``child_style="touch"``: join the bid to buy) or marketable limits ``through_ticks``
   through the far touch (``"marketable"``). ``child_lifetime_s`` re-pegs a child earlier.
   At the end of the horizon the remaining children are canceled; the parent is closed when
   the last one is gone (``status`` "filled" or "done" with ``unfilled_qty``).
5. Kill switch. The desk learns that its session is killed from the risk officer
   (``KillSwitchActivated``) or, failing that, from its OMS: an order rejected with the gate's
   kill text (``"risk: kill switch active (REASON)"`` or ``"risk: reduce only after kill
   (REASON): ..."``). It stops deciding and stops working its parent (the gateway cancels the
   open children at the exchange). ``on_kill`` says what it does next: ``"stop"`` (the default)
   sends nothing until the switch is released; ``"flatten"`` works the position toward flat
   with orders that can only reduce it, as a session in ``after_kill: reduce_only`` mode may
   still send: one parent (``algo`` "flatten", target 0) whose children go out every
   ``flatten_interval_s`` (the first one interval after the kill) for at most ``|position| -
   the desk's own open orders on that side``
   (capped by ``flatten_qty``): IOC limits ``through_ticks`` through the far touch
   (``flatten_style="marketable"``) or DAY limits at the near touch re-pegged every interval
   (``"touch"``). It never sends an order that would add to the position or flip it; it stops
   when flat, at the close, or when the switch is released.

Orders go to the actor named ``exchange`` (default ``"oms"``): it must speak the exchange's
native commands and events (``SubmitOrder``/``CancelOrder``/``ReplaceOrder`` →
``OrderAccepted``/``OrderFilled``/...). When an actor named ``"oms"`` exists, each parent is
also announced to it with ``NewParentOrder`` (``parent_id`` = ``oms_parent_id`` of the record,
``(desk id << 32) | n``, unique across desks; arrival price = the arrival mid rounded to a tick);
when the desk's orders go through that OMS, every child is tied to its parent with ``AttachChild``
right after its ``SubmitOrder``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, with_config

from actors.desk.analytics import desk_frames, desk_summary
from actors.desk.execution import (
    Schedule,
    VolumeCurve,
    ac_kappa,
    almgren_chriss_schedule,
    twap_schedule,
    vwap_schedule,
)
from actors.desk.strategies import (
    ImbalanceParams,
    ImbalanceSignal,
    MeanReversionParams,
    MeanReversionSignal,
    MomentumSignal,
    MomentumSignalParams,
    ReturnVariance,
    Signal,
    fractional_kelly_size,
)
from actors.messages import (
    ORDER_ID_SHIFT,
    AttachChild,
    BookSnapshot,
    CancelRejected,
    KillSwitchActivated,
    KillSwitchReleased,
    NewParentOrder,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    QueryBook,
    QuoteUpdated,
    SubscribeMarketData,
    TradePrinted,
)
from actors.trader import Trader
from actors.units import DEFAULT_TICK_SIZE
from sim.actor import Wakeup, handles
from sim.clock import SECOND

DECIDE = "decide"
SLICE, END, EXPIRE = "slice", "end", "expire"
FLATTEN = "flatten"
# the gate's refusal texts of a killed session (actors/risk/gate.py): "... (REASON)..."
KILL_REJECT_PREFIXES = ("risk: kill switch active (", "risk: reduce only after kill (")

Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Strategy = Literal["mean_reversion", "momentum", "imbalance"]
Algo = Literal["twap", "vwap", "almgren_chriss"]


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class DeskParams:
    """Parameters of :class:`StrategyDesk`. Prices in ticks, money in currency (``tick_size``
    currency per tick), times in seconds, quantities in shares."""

    # -- signal ---------------------------------------------------------------------------------
    strategy: Strategy = "mean_reversion"
    mean_reversion: MeanReversionParams = field(default_factory=MeanReversionParams)
    momentum: MomentumSignalParams = field(default_factory=MomentumSignalParams)
    imbalance: ImbalanceParams = field(default_factory=ImbalanceParams)
    market_data: str = "exchange"  # actor that publishes TradePrinted / QuoteUpdated
    # -- decisions and sizing -------------------------------------------------------------------
    decision_interval_s: Positive = 60.0
    warmup_s: NonNegative = 300.0  # first decision this long after the open
    horizon_s: Positive = 300.0  # holding horizon of the edge and of the variance (Kelly)
    vol_sample_s: Positive = 5.0  # sampling grid of the return-variance estimate
    vol_halflife_samples: Positive = 60.0  # EWMA half-life of that estimate, in samples
    kelly_fraction: Annotated[float, Field(gt=0, le=1)] = 0.25
    max_leverage: Positive = 1.0  # cap on the Kelly fraction of capital
    capital: Positive = 1_000_000.0  # currency
    tick_size: Positive = DEFAULT_TICK_SIZE  # currency per tick
    cost_bps: NonNegative = 1.0  # expected cost hurdle subtracted from |edge|
    max_position: PositiveInt = 5_000  # shares, long or short
    max_order_qty: PositiveInt = 2_000  # shares per parent order
    max_order_notional: Positive = 500_000.0  # currency per parent order
    flatten_before_close_s: NonNegative | None = None  # target 0 this close to the close
    # -- execution ------------------------------------------------------------------------------
    algo: Algo = "twap"
    exec_horizon_s: Positive = 60.0  # a parent is worked over this long (truncated at close)
    n_slices: PositiveInt = 6
    vwap_curve: VolumeCurve = field(default_factory=VolumeCurve)
    ac_kappa: NonNegative | None = None  # 1/s; None: sqrt(λσ²/η) from the three below
    ac_risk_aversion: NonNegative = 1e-4  # λ, 1/currency
    ac_volatility: NonNegative | None = None  # σ, currency/share/√s; None: the desk's estimate
    ac_eta: Positive = 1e-4  # η, currency/share per (share/s)
    child_style: Literal["touch", "marketable"] = "marketable"
    through_ticks: NonNegativeInt = 1  # marketable children: ticks through the far touch
    child_lifetime_s: Positive | None = None  # None: a child lives until the next slice
    lot_size: PositiveInt = 100
    notify_oms: bool = True  # send NewParentOrder to an actor named "oms" (when the type exists)
    # False models a defective execution loop (the Knight Capital 2012 class of runaway): the desk
    # loses track of its working children, neither cancels nor counts them, and every slice sends
    # another child for the parent's whole unfilled quantity. Only for drills and stress scenarios.
    track_children: bool = True
    # after a kill switch: "stop" sends nothing until the switch is released; "flatten" works the
    # position toward flat with orders that only reduce it (a session with after_kill: reduce_only)
    on_kill: Literal["stop", "flatten"] = "stop"
    flatten_interval_s: Positive = 1.0  # pace of the flatten orders
    flatten_qty: PositiveInt | None = None  # shares per flatten order; None: all that is left
    flatten_style: Literal["touch", "marketable"] = "marketable"  # IOC through the far touch, or DAY at the near

    def __post_init__(self) -> None:
        if self.max_order_qty < self.lot_size:
            raise ValueError("max_order_qty must be at least one lot")


def make_signal(params: DeskParams) -> Signal:
    if params.strategy == "mean_reversion":
        return MeanReversionSignal(params.mean_reversion)
    if params.strategy == "momentum":
        return MomentumSignal(params.momentum)
    if params.strategy == "imbalance":
        return ImbalanceSignal(params.imbalance)
    raise ValueError(f"unknown strategy {params.strategy!r}")


class _Working:
    """Execution state of the parent being worked (internal)."""

    __slots__ = ("cum", "cum_target", "deferred", "ended", "open", "record", "schedule", "slice")

    def __init__(self, record: dict[str, Any], schedule: Schedule) -> None:
        self.record = record
        self.schedule = schedule
        self.cum = schedule.cumulative()
        self.cum_target = 0
        self.open: set[int] = set()
        self.slice = 0
        self.deferred = False  # a top-up waits for the cancels in flight
        self.ended = False


class StrategyDesk(Trader):
    """See the module docstring. Public records (plain dicts, JSON-friendly values):

    - ``parents``: parent_id, side, qty, algo, arrival_mid, decision_ns, start_ns, end_ns,
      position_at_decision, target_position, signal, edge, filled_qty, avg_price, n_children,
      status ("working" | "filled" | "done"), done_ns, end_mid, unfilled_qty, oms_parent_id (the
      id the OMS knows it by, None when not announced);
    - ``children`` (by order id): child_id, parent_id, side, qty, price, submit_ns, mid, slice,
      reason ("slice" | "rollover"), filled_qty, status ("open" | "filled" | "canceled" | "rejected");
    - ``fills``: time_ns, parent_id, child_id, side, price, qty, liquidity, child_mid, arrival_mid;
    - ``marks``: (time_ns, mid) at every decision time and at the end (the P&L price series);
    - ``schedules``: parent_id -> :class:`~actors.desk.execution.Schedule`.
    """

    placement_role: ClassVar[str] = "desk"  # desk and OMS share a process

    def __init__(
        self,
        name: str,
        symbol: str,
        params: DeskParams,
        reference_price: int,
        open_ns: int,
        close_ns: int,
        location: str = "default",
        *,
        exchange: str = "oms",
    ) -> None:
        super().__init__(name, symbol, exchange=exchange, location=location)
        self.p = params
        self.reference_price = reference_price
        self.open_ns = open_ns
        self.close_ns = close_ns
        self.signal: Signal = make_signal(params)
        self.vol = ReturnVariance(params.vol_sample_s, params.vol_halflife_samples)
        self.bid: int | None = None
        self.ask: int | None = None
        self.bid_qty = 0
        self.ask_qty = 0
        self.last_trade: int | None = None
        self._quoted = False
        self.parents: list[dict[str, Any]] = []
        self.children: dict[int, dict[str, Any]] = {}
        self.fills: list[dict[str, Any]] = []
        self.marks: list[tuple[int, float]] = []
        self.schedules: dict[int, Schedule] = {}
        self.decisions = 0
        self.killed = False
        self.kill_events: list[tuple[int, str, str]] = []  # (time_ns, "activated" | "released", reason)
        self.position_at_kill: int | None = None  # the desk's position when it learned of the (first) kill
        self._flat: dict[str, Any] | None = None  # the flatten parent being worked after a kill
        self._flat_open: set[int] = set()
        self._flat_ended = False
        self.skipped_decisions = 0
        self.ignored: dict[str, int] = {}
        self._working: _Working | None = None
        self._canceling: set[int] = set()
        self._md = -1
        self._oms = -1
        self._attach = False
        self._interval_ns = int(params.decision_interval_s * SECOND)

    # -- wiring ---------------------------------------------------------------------------------
    def on_start(self) -> None:
        super().on_start()
        p = self.p
        self._md = self.lookup(p.market_data)
        self.send(self._md, SubscribeMarketData(self.symbol, trades=True, quotes=True))
        self.send(self._md, QueryBook(self.symbol, 1))  # the book as it stands when we join
        if p.notify_oms and "oms" in self.kernel.names():  # type: ignore[union-attr]
            self._oms = self.lookup("oms")
            self._attach = self._oms == self.exchange
        first = max(self.now, self.open_ns + int(p.warmup_s * SECOND))
        if first < self.close_ns:
            self.wake_at(first, DECIDE)

    def on_stop(self) -> None:
        mid = self.mid
        if mid is not None and (not self.marks or self.marks[-1][0] < self.now):
            self.marks.append((self.now, mid))

    def unhandled(self, msg: Any, src: int) -> None:
        key = type(msg).__name__
        self.ignored[key] = self.ignored.get(key, 0) + 1

    # -- market data ----------------------------------------------------------------------------
    @property
    def mid(self) -> float | None:
        bid, ask = self.bid, self.ask
        if bid is not None and ask is not None:
            return (bid + ask) / 2.0
        return float(self.last_trade) if self.last_trade is not None else None

    @handles(QuoteUpdated)
    def on_quote(self, msg: QuoteUpdated, src: int) -> None:
        bid, ask = msg.bid, msg.ask
        self._quoted = True
        self.bid, self.bid_qty, self.ask, self.ask_qty = bid, msg.bid_qty, ask, msg.ask_qty
        now = self.now
        self.signal.update_quote(now, bid, msg.bid_qty, ask, msg.ask_qty)
        if bid is not None and ask is not None:
            mid = (bid + ask) / 2.0
            self.signal.update_price(now, mid)
            self.vol.update_price(now, mid)

    @handles(BookSnapshot)
    def on_snapshot(self, msg: BookSnapshot, src: int) -> None:
        if self._quoted:
            return  # a QuoteUpdated already told us something newer
        if msg.last_price is not None and self.last_trade is None:
            self.last_trade = msg.last_price
        bid, bid_qty = msg.bids[0] if msg.bids else (None, 0)
        ask, ask_qty = msg.asks[0] if msg.asks else (None, 0)
        self.on_quote(QuoteUpdated(msg.symbol, bid, bid_qty, ask, ask_qty, msg.time_ns), src)

    @handles(TradePrinted)
    def on_trade(self, msg: TradePrinted, src: int) -> None:
        self.last_trade = msg.price
        if self.bid is None or self.ask is None:
            self.signal.update_price(self.now, msg.price)
            self.vol.update_price(self.now, msg.price)

    # -- decisions ------------------------------------------------------------------------------
    @handles(Wakeup)
    def on_wakeup(self, msg: Wakeup, src: int) -> None:
        tag = msg.tag
        if tag == DECIDE:
            nxt = self.now + self._interval_ns
            if nxt < self.close_ns:
                self.wake_at(nxt, DECIDE)
            self.decide()
            return
        kind = tag[0]
        if kind == FLATTEN:
            if self._flat is not None and self._flat["parent_id"] == tag[1]:
                self._flatten_step()
            return
        w = self._working
        if kind == EXPIRE:
            cid = tag[1]
            if cid in self.open_orders and cid not in self._canceling:
                self._cancel_child(cid)
                if w is not None and cid in w.open:
                    w.deferred = True  # re-peg once the cancel is confirmed
        elif w is None or w.record["parent_id"] != tag[1] or w.ended:
            return
        elif kind == SLICE:
            self._slice(w, tag[2])
        elif kind == END:
            self._end(w)

    def target_position(self, mid: float) -> int:
        """Target position in shares (a multiple of the lot, within ``±max_position``)."""
        p = self.p
        if p.flatten_before_close_s is not None and self.now >= self.close_ns - p.flatten_before_close_s * SECOND:
            return 0
        sig = self.signal
        if not sig.ready or not self.vol.ready:
            return self.position
        edge = sig.expected_edge(p.horizon_s)
        hurdle = p.cost_bps / 1e4
        net = math.copysign(max(0.0, abs(edge) - hurdle), edge)
        f = fractional_kelly_size(net, self.vol.variance(p.horizon_s), p.kelly_fraction, p.max_leverage)
        shares = f * p.capital / (mid * p.tick_size)
        shares = max(-p.max_position, min(p.max_position, shares))
        lots = int(shares / p.lot_size)  # toward zero
        return lots * p.lot_size

    @handles(KillSwitchActivated)
    def on_kill_switch(self, msg: Any, src: int) -> None:
        """The risk officer pulled the kill switch: see :meth:`killed_by`."""
        self.killed_by(msg.reason)

    def killed_by(self, reason: str) -> None:
        """The session is killed: stop deciding and stop working the parent; with ``on_kill:
        flatten`` start working the position toward flat. Idempotent while killed.

        The gateway cancels the open children (their cancels come back as ``OrderCanceled`` and
        close the parent); the desk sends no order of its own until the switch is released, but
        the flatten orders of ``on_kill: flatten``."""
        if self.killed:
            return
        self.killed = True
        self.kill_events.append((self.now, "activated", reason))
        if self.position_at_kill is None:
            self.position_at_kill = self.position
        w = self._working
        if w is not None and not w.ended:
            w.ended = True
            w.deferred = False
            if not w.open:
                self._close(w)
        if self.p.on_kill == "flatten":
            self._start_flatten()

    @handles(KillSwitchReleased)
    def on_kill_switch_released(self, msg: Any, src: int) -> None:
        self.killed = False
        self.kill_events.append((self.now, "released", msg.reason))
        self._end_flatten()

    def decide(self) -> None:
        """One decision: mark the price, compute the target, open a parent for the difference."""
        if self.killed or not (self.open_ns <= self.now < self.close_ns):
            return
        mid = self.mid
        if mid is None:
            return
        self.marks.append((self.now, mid))
        self.decisions += 1
        if self._working is not None:
            self.skipped_decisions += 1
            return
        target = self.target_position(mid)
        diff = target - self.position
        if diff == 0:
            return
        p = self.p
        cap = min(p.max_order_qty, int(p.max_order_notional / (mid * p.tick_size)))
        cap -= cap % p.lot_size
        qty = min(abs(diff), cap)
        if qty <= 0:
            return
        self.open_parent("B" if diff > 0 else "S", qty, mid, target)

    # -- parents --------------------------------------------------------------------------------
    def make_schedule(self, qty: int, start_ns: int, end_ns: int) -> Schedule:
        p = self.p
        n, lot = p.n_slices, p.lot_size
        if p.algo == "twap":
            return twap_schedule(qty, start_ns, end_ns, n, lot)
        if p.algo == "vwap":
            return vwap_schedule(qty, start_ns, end_ns, n, self.open_ns, self.close_ns, p.vwap_curve, lot)
        kappa = p.ac_kappa
        if kappa is None:
            sigma = p.ac_volatility
            if sigma is None:  # the desk's own estimate: currency per share per sqrt(second)
                mid = self.mid or float(self.reference_price)
                sigma = mid * p.tick_size * math.sqrt(self.vol.var / self.vol.sample_s)
            kappa = ac_kappa(p.ac_risk_aversion, sigma, p.ac_eta)
        return almgren_chriss_schedule(qty, start_ns, end_ns, n, kappa, lot_size=lot)

    def open_parent(self, side: str, qty: int, arrival_mid: float, target: int | None = None) -> dict[str, Any] | None:
        """Create, record and start working a parent order now. Returns its record."""
        if self._working is not None:
            return None
        p = self.p
        start = self.now
        end = min(start + int(p.exec_horizon_s * SECOND), self.close_ns - 1)
        if end <= start or qty <= 0:
            return None
        schedule = self.make_schedule(qty, start, end)
        target = self.position + (qty if side == "B" else -qty) if target is None else target
        record = self._new_parent(side, qty, schedule.algo, arrival_mid, start, end, target)
        pid = record["parent_id"]
        self.schedules[pid] = schedule
        self._working = _Working(record, schedule)
        self._announce(record)
        for j, t in enumerate(schedule.times_ns):
            self.wake_at(t, (SLICE, pid, j))
        self.wake_at(end, (END, pid))
        return record

    def _new_parent(
        self, side: str, qty: int, algo: str, arrival_mid: float, start: int, end: int, target: int
    ) -> dict[str, Any]:
        """Record a new parent (appended to ``parents``)."""
        p = self.p
        record: dict[str, Any] = {
            "parent_id": len(self.parents) + 1,
            "side": side,
            "qty": qty,
            "algo": algo,
            "arrival_mid": arrival_mid,
            "decision_ns": start,
            "start_ns": start,
            "end_ns": end,
            "position_at_decision": self.position,
            "target_position": target,
            "signal": float(self.signal.signal),
            "edge": float(self.signal.expected_edge(p.horizon_s)),
            "filled_qty": 0,
            "notional_ticks": 0,
            "avg_price": None,
            "n_children": 0,
            "status": "working",
            "done_ns": None,
            "end_mid": None,
            "unfilled_qty": None,
            "oms_parent_id": None,
        }
        self.parents.append(record)
        return record

    def _announce(self, record: dict[str, Any]) -> None:
        """Tell the OMS about a new parent, if an "oms" actor exists."""
        if self._oms < 0:
            return
        gid = (self.id << ORDER_ID_SHIFT) | record["parent_id"]
        parent = NewParentOrder(
            parent_id=gid,
            symbol=self.symbol,
            side=record["side"],
            qty=record["qty"],
            algo=record["algo"],
            arrival_price=round(record["arrival_mid"]),
            time_ns=self.now,
        )
        self.send(self._oms, parent)
        record["oms_parent_id"] = gid

    def _slice(self, w: _Working, j: int) -> None:
        w.cum_target = w.cum[j]
        w.slice = j
        if not self.p.track_children:  # the defect: a fresh child for everything unfilled
            self._send_child(w, j, "slice", w.record["qty"] - w.record["filled_qty"])
            return
        if not w.open:
            self._top_up(w, j, "slice")
            return
        for cid in list(w.open):  # roll over: cancel, then one child for the whole shortfall
            if cid not in self._canceling:
                self._cancel_child(cid)
        w.deferred = True

    def _resolve(self, w: _Working | None) -> None:
        """After a cancel of one of the parent's children resolved: close the parent, or send
        the deferred top-up once no cancel of its children is in flight."""
        if w is None:
            return
        if w.ended:
            if not w.open:
                self._close(w)
            return
        if w.record["filled_qty"] >= w.record["qty"] and not w.open:
            self._close(w)
            return
        if w.deferred:
            canceling = self._canceling
            for cid in w.open:
                if cid in canceling:
                    return
            w.deferred = False
            if self.now < w.record["end_ns"]:
                self._top_up(w, w.slice, "rollover")

    def _end(self, w: _Working) -> None:
        w.ended = True
        for cid in list(w.open):
            if cid not in self._canceling:
                self._cancel_child(cid)
        if not w.open:
            self._close(w)

    def _close(self, w: _Working) -> None:
        self._close_record(w.record)
        self._working = None

    def _close_record(self, rec: dict[str, Any]) -> None:
        rec["status"] = "filled" if rec["filled_qty"] >= rec["qty"] else "done"
        rec["done_ns"] = self.now
        rec["end_mid"] = self.mid
        rec["unfilled_qty"] = rec["qty"] - rec["filled_qty"]

    # -- after a kill: reduce toward flat ---------------------------------------------------------
    def _start_flatten(self) -> None:
        """Open the flatten parent (nothing to do when flat, at the close or already flattening)."""
        pos = self.position
        if self._flat is not None or pos == 0 or self.now >= self.close_ns:
            return
        mid = self.mid
        arrival = mid if mid is not None else float(self.reference_price)
        side = "S" if pos > 0 else "B"
        rec = self._new_parent(side, abs(pos), FLATTEN, arrival, self.now, self.close_ns - 1, 0)
        self._flat, self._flat_open, self._flat_ended = rec, set(), False
        self._announce(rec)
        # the first order one interval after the kill: the kill's cancels settle, and a session killed
        # for its order rate does not meet the throttle again at once
        self.wake_in(int(self.p.flatten_interval_s * SECOND), (FLATTEN, rec["parent_id"]))

    def _flatten_step(self) -> None:
        """One paced step of the flatten parent: re-peg or wait for the order out, else send one."""
        rec = self._flat
        if rec is None or self._flat_ended:
            return
        if not self._flatten_live(rec):
            self._end_flatten()
            return
        nxt = self.now + int(self.p.flatten_interval_s * SECOND)
        if nxt < self.close_ns:
            self.wake_at(nxt, (FLATTEN, rec["parent_id"]))
        if self._flat_open:  # one order out at a time: an IOC answers by itself, a resting one is re-pegged
            if self.p.flatten_style == "touch":
                price = self.flatten_price(rec["side"])
                for cid in sorted(self._flat_open):
                    order = self.open_orders.get(cid)
                    if cid not in self._canceling and (order is None or order.price != price):
                        self._cancel_child(cid)
            return
        self._flatten_send(rec, FLATTEN)

    def _flatten_live(self, rec: dict[str, Any]) -> bool:
        """Still something to flatten: killed, before the close, position on the parent's side of flat."""
        pos = self.position
        return self.killed and self.now < self.close_ns and pos != 0 and (pos > 0) == (rec["side"] == "S")

    def _flatten_send(self, rec: dict[str, Any], reason: str) -> None:
        """Send one flatten order for at most what takes the position to flat: the desk's own open
        orders on that side count as already reducing (as the gate counts them), so it never adds."""
        side = rec["side"]
        same = 0
        for order in self.open_orders.values():
            if order.side == side:
                same += order.leaves_qty
        qty = abs(self.position) - same
        if self.p.flatten_qty is not None:
            qty = min(qty, self.p.flatten_qty)
        if qty <= 0:
            return  # orders of that side are still out (being canceled by the kill): next step
        price = self.flatten_price(side)
        cid = self.submit(side, qty, price, tif="IOC" if self.p.flatten_style == "marketable" else "DAY")
        if self._attach and rec["oms_parent_id"] is not None:
            self.send(self.exchange, AttachChild(cid, rec["oms_parent_id"]))
        self._flat_open.add(cid)
        self._record_child(rec, cid, side, qty, price, rec["n_children"], reason)

    def flatten_price(self, side: str) -> int:
        """Limit price of a flatten order: ``through_ticks`` through the far touch (marketable) or
        the near touch (touch)."""
        bid, ask = self.bid, self.ask
        ref = self.last_trade if self.last_trade is not None else self.reference_price
        if self.p.flatten_style == "marketable":
            n = self.p.through_ticks
            if side == "S":
                px = bid - n if bid is not None else (ask - n if ask is not None else ref - n)
            else:
                px = ask + n if ask is not None else (bid + n if bid is not None else ref + n)
        elif side == "S":
            px = ask if ask is not None else (bid + 1 if bid is not None else ref)
        else:
            px = bid if bid is not None else (ask - 1 if ask is not None else ref)
        return max(1, px)

    def _end_flatten(self) -> None:
        """Stop flattening: cancel what still rests, close the parent once nothing is open."""
        rec = self._flat
        if rec is None:
            return
        self._flat_ended = True
        for cid in sorted(self._flat_open):
            if cid not in self._canceling:
                self._cancel_child(cid)
        if not self._flat_open:
            self._close_record(rec)
            self._flat = None

    def _flat_gone(self, cid: int) -> None:
        """A flatten order left the book (filled, canceled, rejected)."""
        self._flat_open.discard(cid)
        rec = self._flat
        if rec is None:
            return
        if self._flat_ended or not self._flatten_live(rec):
            self._end_flatten()
        elif self.p.flatten_style == "touch" and not self._flat_open and self.children[cid]["status"] == "canceled":
            self._flatten_send(rec, "rollover")  # a re-peg's cancel is confirmed: its replacement now

    # -- children -------------------------------------------------------------------------------
    def _cancel_child(self, cid: int) -> None:
        self._canceling.add(cid)
        self.cancel(cid)

    def child_price(self, side: str) -> int:
        bid, ask = self.bid, self.ask
        ref = self.last_trade if self.last_trade is not None else self.reference_price
        if self.p.child_style == "touch":
            if side == "B":
                px = bid if bid is not None else (ask - 1 if ask is not None else ref)
            else:
                px = ask if ask is not None else (bid + 1 if bid is not None else ref)
        else:
            n = self.p.through_ticks
            if side == "B":
                px = ask + n if ask is not None else (bid + n if bid is not None else ref + n)
            else:
                px = bid - n if bid is not None else (ask - n if ask is not None else ref - n)
        return max(1, px)

    def _top_up(self, w: _Working, j: int, reason: str) -> None:
        rec = w.record
        open_orders = self.open_orders
        working = 0
        for cid in w.open:
            order = open_orders.get(cid)
            if order is not None:
                working += order.leaves_qty
        need = w.cum_target - rec["filled_qty"] - working
        self._send_child(w, j, reason, need)

    def _send_child(self, w: _Working, j: int, reason: str, need: int) -> None:
        """Send one child of ``need`` shares for the working parent (nothing while killed)."""
        if need <= 0 or self.killed:
            return
        rec = w.record
        side = rec["side"]
        price = self.child_price(side)
        cid = self.submit(side, need, price)
        if self._attach and rec["oms_parent_id"] is not None:
            self.send(self.exchange, AttachChild(cid, rec["oms_parent_id"]))
        w.open.add(cid)
        self._record_child(rec, cid, side, need, price, j, reason)
        if self.p.child_lifetime_s is not None:
            self.wake_in(int(self.p.child_lifetime_s * SECOND), (EXPIRE, cid))

    def _record_child(
        self, rec: dict[str, Any], cid: int, side: str, qty: int, price: int, j: int, reason: str
    ) -> None:
        mid = self.mid
        self.children[cid] = {
            "child_id": cid,
            "parent_id": rec["parent_id"],
            "side": side,
            "qty": qty,
            "price": price,
            "submit_ns": self.now,
            "mid": mid if mid is not None else float(price),
            "slice": j,
            "reason": reason,
            "filled_qty": 0,
            "status": "open",
        }
        rec["n_children"] += 1

    def _child_gone(self, cid: int, status: str) -> _Working | None:
        """Bookkeeping when a child leaves the book; returns the working parent it belonged to."""
        self._canceling.discard(cid)
        child = self.children.get(cid)
        if child is not None:
            child["status"] = status
        if cid in self._flat_open:
            self._flat_gone(cid)
            return None
        w = self._working
        if w is None or cid not in w.open:
            return None
        w.open.discard(cid)
        return w

    def on_filled(self, msg: OrderFilled, side: str) -> None:
        child = self.children.get(msg.order_id)
        if child is None:
            self._check_flat()
            return
        pid = child["parent_id"]
        rec = self.parents[pid - 1]
        child["filled_qty"] += msg.qty
        rec["filled_qty"] += msg.qty
        rec["notional_ticks"] += msg.qty * msg.price
        rec["avg_price"] = rec["notional_ticks"] / rec["filled_qty"]
        self.fills.append(
            {
                "time_ns": self.now,
                "parent_id": pid,
                "child_id": msg.order_id,
                "side": child["side"],
                "price": msg.price,
                "qty": msg.qty,
                "liquidity": msg.liquidity,
                "child_mid": child["mid"],
                "arrival_mid": rec["arrival_mid"],
            }
        )
        if msg.leaves_qty == 0:
            self._resolve(self._child_gone(msg.order_id, "filled"))
        self._check_flat()

    def _check_flat(self) -> None:
        """After a fill: flat (or past it, by a fill racing the kill) ends the flatten parent."""
        rec = self._flat
        if rec is not None and not self._flat_ended and not self._flatten_live(rec):
            self._end_flatten()

    def on_canceled(self, msg: OrderCanceled) -> None:
        self._resolve(self._child_gone(msg.order_id, "canceled"))

    def on_rejected(self, msg: OrderRejected) -> None:
        reason = msg.reason if isinstance(msg.reason, str) else ""
        if not self.killed and reason.startswith(KILL_REJECT_PREFIXES):  # the OMS's word: killed
            self.killed_by(reason.split("(", 1)[1].split(")", 1)[0])
        self._resolve(self._child_gone(msg.order_id, "rejected"))

    def on_cancel_rejected(self, msg: CancelRejected) -> None:
        # the child filled (or was gone) before the cancel arrived; a live one stays working
        self._canceling.discard(msg.order_id)
        w = self._working
        if w is not None and msg.order_id in self.children:
            self._resolve(w)

    # -- analytics --------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """JSON-friendly desk analytics (see :func:`actors.desk.analytics.desk_summary`)."""
        out = desk_summary(
            self.fills,
            self.parents,
            self.marks,
            tick_size=self.p.tick_size,
            interval_s=self.p.decision_interval_s,
            capital=self.p.capital,
        )
        out.update(
            name=self.name,
            strategy=self.p.strategy,
            algo=self.p.algo,
            children=len(self.children),
            decisions=self.decisions,
            skipped_decisions=self.skipped_decisions,
            position=self.position,
            killed=self.killed,
            kill_events=[list(e) for e in self.kill_events],
            on_kill=self.p.on_kill,
            position_at_kill=self.position_at_kill,
            flatten_orders=sum(r["n_children"] for r in self.parents if r["algo"] == FLATTEN),
            flatten_filled_qty=sum(r["filled_qty"] for r in self.parents if r["algo"] == FLATTEN),
        )
        return out

    def frames(self) -> dict[str, Any]:
        """pandas DataFrames for Parquet: ``desk_pnl``, ``desk_parents``, ``desk_fills``."""
        return desk_frames(self.fills, self.parents, self.marks, tick_size=self.p.tick_size, desk=self.name)
