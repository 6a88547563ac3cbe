"""Trader: an actor that sends orders to the exchange and tracks its own orders and position.

Subclasses override the ``on_*`` hooks; the handlers here keep ``open_orders``, ``position``
and ``cash`` (in ticks x shares) consistent with the exchange's events.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.messages import (
    ORDER_ID_SHIFT,
    CancelOrder,
    CancelRejected,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    ReplaceOrder,
    SubmitOrder,
)
from sim.actor import Actor, handles


@dataclass(slots=True)
class OpenOrder:
    order_id: int
    side: str
    price: int | None
    leaves_qty: int


class Trader(Actor):
    """Order bookkeeping shared by every market participant."""

    def __init__(self, name: str, symbol: str, exchange: str = "exchange", location: str = "default") -> None:
        super().__init__(name, location)
        self.symbol = symbol
        self.exchange_name = exchange
        self.exchange = -1
        self.open_orders: dict[int, OpenOrder] = {}
        self.position = 0
        self.cash = 0
        self.filled_qty = 0
        self._next_order = 0

    def on_start(self) -> None:
        self.exchange = self.lookup(self.exchange_name)

    # -- commands -------------------------------------------------------------------------------
    def new_order_id(self) -> int:
        self._next_order += 1
        return (self.id << ORDER_ID_SHIFT) | self._next_order

    def submit(
        self,
        side: str,
        qty: int,
        price: int | None,
        tif: str = "DAY",
        post_only: bool = False,
        stp: str | None = None,
        stop_price: int | None = None,
    ) -> int:
        """Send a new order and book it as open; ``stop_price`` makes it a stop (``price`` None) or a
        stop-limit order. Returns its id."""
        oid = self.new_order_id()
        self.open_orders[oid] = OpenOrder(oid, side, price, qty)
        self.send(self.exchange, SubmitOrder(oid, self.symbol, side, qty, price, tif, post_only, stp, stop_price))
        return oid

    def cancel(self, order_id: int) -> None:
        self.send(self.exchange, CancelOrder(order_id, self.symbol))

    def replace(self, order_id: int, qty: int | None = None, price: int | None = None) -> None:
        self.send(self.exchange, ReplaceOrder(order_id, self.symbol, qty, price))

    def cancel_all(self) -> None:
        for oid in list(self.open_orders):
            self.cancel(oid)

    # -- events ---------------------------------------------------------------------------------
    @handles(OrderAccepted)
    def _accepted(self, msg: OrderAccepted, src: int) -> None:
        self.on_accepted(msg)

    @handles(OrderRejected)
    def _rejected(self, msg: OrderRejected, src: int) -> None:
        self.open_orders.pop(msg.order_id, None)
        self.on_rejected(msg)

    @handles(OrderFilled)
    def _filled(self, msg: OrderFilled, src: int) -> None:
        order = self.open_orders.get(msg.order_id)
        side = order.side if order is not None else "B"
        signed = msg.qty if side == "B" else -msg.qty
        self.position += signed
        self.cash -= signed * msg.price
        self.filled_qty += msg.qty
        if order is not None:
            order.leaves_qty = msg.leaves_qty
            if msg.leaves_qty == 0:
                del self.open_orders[msg.order_id]
        self.on_filled(msg, side)

    @handles(OrderCanceled)
    def _canceled(self, msg: OrderCanceled, src: int) -> None:
        self.open_orders.pop(msg.order_id, None)
        self.on_canceled(msg)

    @handles(OrderReplaced)
    def _replaced(self, msg: OrderReplaced, src: int) -> None:
        order = self.open_orders.get(msg.order_id)
        if order is not None:
            order.price, order.leaves_qty = msg.price, msg.qty
            if msg.qty == 0:  # the replace ended the order (new total at or below what had filled)
                del self.open_orders[msg.order_id]
        self.on_replaced(msg)

    @handles(CancelRejected)
    def _cancel_rejected(self, msg: CancelRejected, src: int) -> None:
        self.on_cancel_rejected(msg)

    # -- hooks ----------------------------------------------------------------------------------
    def on_accepted(self, msg: OrderAccepted) -> None:
        pass

    def on_rejected(self, msg: OrderRejected) -> None:
        pass

    def on_filled(self, msg: OrderFilled, side: str) -> None:
        pass

    def on_canceled(self, msg: OrderCanceled) -> None:
        pass

    def on_replaced(self, msg: OrderReplaced) -> None:
        pass

    def on_cancel_rejected(self, msg: CancelRejected) -> None:
        pass
