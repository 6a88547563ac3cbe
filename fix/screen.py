"""Inbound screening of application messages, before the gateway core reads them.

The FIX44.xml DataDictionary accepts values the gateway cannot answer: OrderQty and Price become
exact integers inside (Decimal arithmetic, 28 significant digits), so a 400-digit Price passed
the dictionary and then building the ExecutionReport that echoes it raised
``decimal.InvalidOperation`` (found by fuzzing ``desksim serve``). :func:`screen_inbound` raises
the quickfix exception that the session layer (:class:`fix.session.FixSession`) answers with a
session-level Reject (35=3) naming the tag (RefTagID 371, SessionRejectReason 373=5).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import quickfix as fix

__all__ = ["MAX_MAGNITUDE", "screen_inbound"]

MAX_MAGNITUDE = {38: Decimal(10) ** 15, 44: Decimal(10) ** 15, 99: Decimal(10) ** 15}
"""Tag -> the magnitude from which a value is refused (OrderQty, Price, StopPx)."""
_KEYS = {tag: str(tag) for tag in MAX_MAGNITUDE}
_SHORT = min(len(str(limit)) for limit in MAX_MAGNITUDE.values()) - 1  # digits of a value surely below


def screen_inbound(message: Any) -> None:
    """Raise ``quickfix.IncorrectTagValue(tag)`` for an OrderQty, Price or StopPx whose magnitude the codec
    cannot represent exactly; a value that is not a number is left to the dictionary."""
    flat = getattr(message, "flat", None)  # a received message's fields, read once (fix.codec.Inbound)
    for tag, limit in MAX_MAGNITUDE.items():
        if flat is not None:
            text = flat.get(_KEYS[tag])
            if text is None:
                continue
        elif message.isSetField(tag):
            text = message.getField(tag)
        else:
            continue
        if len(text) < _SHORT and text.isdigit():
            continue  # an unsigned integer of fewer than 15 digits: below every limit
        try:
            value = Decimal(text)
        except (InvalidOperation, ValueError):
            continue
        if not value.is_finite() or abs(value) >= limit:
            raise fix.IncorrectTagValue(tag)
