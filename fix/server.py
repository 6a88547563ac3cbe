"""``desksim serve``: the public entry points of the FIX server.

The server itself is :mod:`fix.wire_server` -- desksim's own session layer
(:class:`fix.session.FixSession`) and gateway actor (:class:`fix.gateway_actor.FixGateway`), the
ones a simulated run uses, over real TCP (:mod:`fix.transport`); quickfix is only the codec and
the DataDictionary. The options live in :mod:`fix.serve_config`, the conformance profile's echo
application in :mod:`fix.conformance`. This module keeps the names callers import.

    desksim serve --port 9878 --scenario quiet          # FIX 4.4 order entry, CLIENT1..CLIENT8
    desksim serve --profile conformance --port 9879     # QuickFIX acceptance-test target
"""

from __future__ import annotations

from fix.conformance import CONFORMANCE_SENDER, CONFORMANCE_TARGETS, EchoEndpoint
from fix.screen import screen_inbound
from fix.serve_config import (
    DEFAULT_PORT,
    SENDER_COMP_ID,
    TARGET_COMP_IDS,
    ServedMarket,
    ServeError,
    ServeOptions,
    add_arguments,
    is_loopback,
    options_from_args,
)
from fix.wire_server import WireServer, serve

__all__ = [
    "CONFORMANCE_SENDER",
    "CONFORMANCE_TARGETS",
    "DEFAULT_PORT",
    "SENDER_COMP_ID",
    "TARGET_COMP_IDS",
    "EchoEndpoint",
    "FixServer",
    "ServeError",
    "ServeOptions",
    "ServedMarket",
    "add_arguments",
    "is_loopback",
    "options_from_args",
    "screen_inbound",
    "serve",
]

FixServer = WireServer
"""The server class under its former name."""
