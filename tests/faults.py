"""Test-only fault injection on the simulated network: lose or duplicate one message on a link.

    fault = LinkFault("gateway", "risk", DropCopy, "drop", match=lambda m: "\\x01150=F\\x01" in m.exec_report_raw)
    with inject(monkeypatch, fault):
        api.run(...)
    assert fault.fired == 1

It wraps ``Kernel.post`` (every ``Actor.send`` goes through it), so the fault sits on the link
between two named actors and the rest of the run is untouched: a duplicate is posted again by the
sender with a fresh sequence number, as a retransmission would be. Local runtime only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from sim.kernel import Kernel


@dataclass(slots=True)
class LinkFault:
    """Lose (``"drop"``) or send twice (``"duplicate"``) the ``nth`` message of type ``msg_type``
    (that ``match`` accepts) sent by actor ``src`` to actor ``dst``."""

    src: str
    dst: str
    msg_type: type
    action: str  # "drop" | "duplicate"
    nth: int = 1
    match: Callable[[Any], bool] = lambda _msg: True
    seen: int = 0
    fired: int = 0  # how many times the fault was applied (a test asserts it did fire)
    at_ns: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.action not in ("drop", "duplicate"):
            raise ValueError(f"action must be 'drop' or 'duplicate', got {self.action!r}")


@contextmanager
def inject(monkeypatch: pytest.MonkeyPatch, *faults: LinkFault) -> Iterator[tuple[LinkFault, ...]]:
    original = Kernel.post

    def post(self: Kernel, sender: Any, dst: int, msg: Any, priority: int, seq: int) -> None:
        for fault in faults:
            if type(msg) is not fault.msg_type or sender.name != fault.src:
                continue
            if self.actors[dst].name != fault.dst or not fault.match(msg):
                continue
            fault.seen += 1
            if fault.seen != fault.nth:
                continue
            fault.fired += 1
            fault.at_ns.append(self.now)
            if fault.action == "drop":
                return
            original(self, sender, dst, msg, priority, seq)
            sender._seq += 1
            original(self, sender, dst, msg, priority, sender._seq)
            return
        original(self, sender, dst, msg, priority, seq)

    with monkeypatch.context() as m:
        m.setattr(Kernel, "post", post)
        yield faults
