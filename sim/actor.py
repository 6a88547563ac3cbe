"""Actor base class: a handler table keyed by message type, ``send()`` and timed wake-ups.

Actors never hold references to each other; they address peers by integer id (looked up by
name through ``self.lookup``) and talk only through the kernel.

    class Echo(Actor):
        @handles(Ping)
        def on_ping(self, msg, src):
            self.send(src, Pong(msg.n))
"""

from __future__ import annotations

import fnmatch
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from sim.fastinit import fast_init

if TYPE_CHECKING:
    from sim.kernel import Kernel

Handler = Callable[[Any, int], None]


@fast_init
@dataclass(frozen=True, slots=True)
class Wakeup:
    """A timer an actor set for itself; ``tag`` says which."""

    tag: Any = None


def handles(*message_types: type) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Mark a method as the handler of one or more message types."""

    def mark(fn: Callable[..., None]) -> Callable[..., None]:
        fn.__dict__.setdefault("_handles", []).extend(message_types)
        return fn

    return mark


class UnhandledMessage(RuntimeError):
    pass


def _unattached(*args: Any) -> NoReturn:
    raise RuntimeError("actor is not attached to a kernel; add it to a Kernel before sending")


class Actor:
    """Base of every simulated participant. Subclasses declare handlers with ``@handles``."""

    handler_names: ClassVar[dict[type, str]] = {}
    # Where the Ray runtime's default placements put the actor (sim.runtime.placement): "hub"
    # (together with the other hub actors), "solo" (a process of its own), "pool" (dealt into
    # pools) or a team name (every actor of that team together).
    placement_role: ClassVar[str] = "pool"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[type, str] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                for message_type in getattr(value, "_handles", ()):
                    table[message_type] = attr
        cls.handler_names = table

    def __init__(self, name: str, location: str = "default") -> None:
        self.name = name
        self.location = location
        self.id = -1
        self.kernel: Kernel | None = None
        self.random: random.Random = random.Random(0)
        self.dispatch: dict[type, Handler] = {}
        self._seq = 0
        self._post: Callable[[Actor, int, Any, int, int], None] = _unattached
        self._post_all: Callable[[Actor, Sequence[int], Any, int, int], int] = _unattached

    # -- wiring (called by the kernel) -------------------------------------------------------
    def attach(self, kernel: Kernel, actor_id: int, rng: random.Random) -> None:
        self.kernel = kernel
        self.id = actor_id
        self.random = rng
        self.dispatch = {t: getattr(self, n) for t, n in type(self).handler_names.items()}
        self._post = kernel.post
        self._post_all = kernel.post_all

    def on_start(self) -> None:
        """Called once at the start of the run, in actor-id order."""

    def on_stop(self) -> None:
        """Called once at the end of the run, in actor-id order."""

    # -- messaging ----------------------------------------------------------------------------
    @property
    def now(self) -> int:
        assert self.kernel is not None
        return self.kernel.now

    def lookup(self, name: str) -> int:
        assert self.kernel is not None
        return self.kernel.actor_id(name)

    def lookup_matching(self, pattern: str) -> list[int]:
        """Ids, in id order, of the actors whose names match any of the comma-separated globs."""
        assert self.kernel is not None
        globs = [g.strip() for g in pattern.split(",") if g.strip()]
        return [i for i, name in enumerate(self.kernel.names()) if any(fnmatch.fnmatchcase(name, g) for g in globs)]

    def send(self, dst: int, msg: Any, priority: int = 0) -> None:
        self._seq = seq = self._seq + 1
        self._post(self, dst, msg, priority, seq)

    def send_all(self, dsts: Sequence[int], msg: Any, priority: int = 0) -> None:
        """``send(dst, msg, priority)`` to each of ``dsts`` in order, in one kernel call (fan-out)."""
        self._seq = self._post_all(self, dsts, msg, priority, self._seq)

    def wake_at(self, t_ns: int, tag: Any = None, priority: int = 0) -> None:
        self._seq = seq = self._seq + 1
        self.kernel.schedule(self, int(t_ns), Wakeup(tag), priority, seq)  # type: ignore[union-attr]

    def wake_in(self, delay_ns: int, tag: Any = None, priority: int = 0) -> None:
        self.wake_at(self.now + int(delay_ns), tag, priority)

    def unhandled(self, msg: Any, src: int) -> None:
        raise UnhandledMessage(f"{self.name} has no handler for {type(msg).__name__}")
