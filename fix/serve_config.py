"""Options of ``desksim serve`` and what the application layer hands the server.

Kept apart from the server loop (:mod:`fix.wire_server`) so that the command line, the Python
API and the tests share one definition of the options and of their validation.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

from fix.conformance import CONFORMANCE_SENDER, CONFORMANCE_TARGETS

__all__ = [
    "CONFORMANCE_SENDER",
    "CONFORMANCE_TARGETS",
    "DEFAULT_PORT",
    "SENDER_COMP_ID",
    "TARGET_COMP_IDS",
    "ServeError",
    "ServeOptions",
    "ServedMarket",
    "add_arguments",
    "is_loopback",
    "options_from_args",
    "validate",
]

DEFAULT_PORT = 9878
RISK_HELP = (
    "pre-trade limits of the FIX sessions: a YAML file shaped like a scenario's desk.risk section "
    "(default: the scenario's desk.risk, if it has a desk; else no gate)"
)
SENDER_COMP_ID = "DESKSIM"
TARGET_COMP_IDS = tuple(f"CLIENT{i}" for i in range(1, 9))


class ServeError(Exception):
    """Bad options or an environment the server cannot run in (exit code 2)."""


@dataclass(frozen=True, slots=True)
class ServedMarket:
    """What the application layer assembles for ``serve``: a kernel holding the market's actors."""

    kernel: Any
    exchange_name: str
    symbol: str
    tick_size: float
    scenario: Any
    risk: Any = None  # the served gateway's GateConfig (actors.risk): its pre-trade gate; None: no gate
    recorder: Any = None  # the market's sim.record.Recorder: the served gateway records into it too


@dataclass(frozen=True, slots=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    scenario: str = "baseline"
    seed: int | None = None
    profile: str = "default"  # "default" | "conformance"
    speed: float = 1.0  # simulated seconds per wall-clock second
    duration: float | None = None  # stop after this many wall-clock seconds
    store: str | None = None  # directory for the FIX message log written at exit (none by default)
    cancel_on_disconnect: bool = True
    allow_remote: bool = False
    step_ms: float = 1.0  # wall-clock granularity of the kernel's steps
    risk: str | None = None  # YAML file shaped like a scenario's desk.risk: the served gateway's limits
    out: str | None = None  # run folder written at exit (orders, trades, quotes, FIX messages, summary)
    force: bool = False  # --out may replace an existing folder


def is_loopback(host: str) -> bool:
    try:
        addr = socket.gethostbyname(host)
    except OSError:
        return False
    return ipaddress.ip_address(addr).is_loopback


def validate(o: ServeOptions) -> None:
    """Raise :class:`ServeError` with one line for an option the server cannot run with."""
    if o.profile not in ("default", "conformance"):
        raise ServeError(f"--profile must be 'default' or 'conformance', got {o.profile!r}")
    if not 0 < o.port < 65536:
        raise ServeError(f"--port must be 1..65535, got {o.port}")
    if not o.speed > 0:
        raise ServeError("--speed must be > 0")
    if o.duration is not None and not o.duration > 0:
        raise ServeError("--duration must be > 0 seconds")
    if not o.step_ms > 0:
        raise ServeError("--step-ms must be > 0")
    try:
        socket.gethostbyname(o.host)
    except OSError:
        raise ServeError(f"--host {o.host!r}: cannot resolve") from None
    if not is_loopback(o.host) and not o.allow_remote:
        raise ServeError(
            f"--host {o.host} is not a loopback address: an order-entry port open to the network "
            "is refused unless --allow-remote is given"
        )


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    p.add_argument("--scenario", default="baseline", help="scenario file or bundled name (default baseline)")
    p.add_argument("--seed", type=int, default=None, help="root seed (default: the scenario's)")
    p.add_argument("--profile", choices=("default", "conformance"), default="default")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall-clock second")
    p.add_argument("--duration", type=float, default=None, help="stop after S wall-clock seconds")
    p.add_argument("--store", default=None, help="write the FIX message log (fix_messages.csv) here at exit")
    p.add_argument(
        "--no-cancel-on-disconnect",
        dest="cancel_on_disconnect",
        action="store_false",
        help="keep a session's orders working after it logs out",
    )
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    p.add_argument("--step-ms", type=float, default=1.0, help="kernel step in wall-clock ms (default 1)")
    p.add_argument("--risk", default=None, metavar="FILE", help=RISK_HELP)


def options_from_args(args: argparse.Namespace) -> ServeOptions:
    return ServeOptions(
        host=args.host,
        port=args.port,
        scenario=args.scenario,
        seed=args.seed,
        profile=args.profile,
        speed=args.speed,
        duration=args.duration,
        store=args.store,
        cancel_on_disconnect=args.cancel_on_disconnect,
        allow_remote=args.allow_remote,
        step_ms=args.step_ms,
        risk=getattr(args, "risk", None),
        out=getattr(args, "out", None),
        force=bool(getattr(args, "force", False)),
    )
