"""The registry of agent kinds: one declaration per kind, next to its actor class.

An agent kind is what a scenario's ``agents: [{kind: ...}]`` names. Its one registration, a
decorator on the actor class, says everything the rest of the code needs::

    @agent_kind("noise", NoiseParams, world=("activity",))
    class NoiseTrader(BackgroundTrader):
        ...

* ``name``: the ``kind:`` of a scenario's agent group;
* ``params``: the parameters' type (a dataclass or pydantic model that forbids unknown fields):
  the schema validates an agent group's ``params:`` with it (``scenarios/schema.py``) and the
  reference documents its fields (``scenarios/reference.py``, ``docs/scenarios.md``);
* the placement role: the class's ``placement_role`` (``sim.actor.Actor``), or ``placement_role=``
  here, which sets it on the class; the Ray runtime's default placements read it from each actor
  (``sim.runtime.placement`` knows no agent kinds);
* how to build one member: ``build(name, params, location, market) -> Actor``, by default the
  uniform trader constructor ``cls(name, symbol, params, reference_ticks, open_ns, close_ns,
  location, **{process: market.<process>})`` with the world's processes listed in ``world``
  (``"fundamental"``, ``"activity"``). The assembly (``desksim/assembly.py``) calls it.

The schema imports the modules that register the bundled kinds (``actors.background``,
``actors.makers``, ``actors.program``); a kind in another module is registered once that module
is imported. Registering is idempotent for the same class; a second class under a taken name is
refused.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sim.actor import Actor


@dataclass(frozen=True, slots=True)
class Market:
    """What a member of an agent group is built from, besides its name, params and location: the
    scenario's instrument and session and the run's shared world (``actors.world``)."""

    symbol: str
    reference_ticks: int  # the opening reference price, in ticks
    open_ns: int
    close_ns: int
    tick_size: float  # currency per tick
    fundamental: Any = None  # actors.world.Fundamental
    activity: Any = None  # actors.world.Activity, or None: constant activity


Build = Callable[[str, Any, str, Market], Actor]
"""``build(name, params, location, market) -> Actor``: one member of an agent group."""


class UnknownKind(KeyError):
    """An agent kind nobody registered; the message lists the known kinds."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True, slots=True)
class AgentKind:
    """One registered agent kind (see the module docstring)."""

    name: str
    actor_class: type[Actor]
    params: type  # validated and documented; a default instance (``params()``) must be valid
    build: Build
    world: tuple[str, ...] = ()  # the world processes the default builder passes (for the docs)

    @property
    def placement_role(self) -> str:
        """Where the Ray runtime's default placements put each member (``sim.runtime.placement``)."""
        return str(self.actor_class.placement_role)

    @property
    def doc(self) -> str:
        """The first paragraph of the actor class's docstring, on one line."""
        return (inspect.getdoc(self.actor_class) or "").split("\n\n")[0].replace("\n", " ")


_KINDS: dict[str, AgentKind] = {}

WORLD_PROCESSES = ("fundamental", "activity")


def trader_builder(cls: type[Actor], world: tuple[str, ...] = ()) -> Build:
    """The builder of a class with the uniform trader constructor (see the module docstring)."""
    for process in world:
        if process not in WORLD_PROCESSES:
            raise ValueError(f"unknown world process {process!r} (known: {', '.join(WORLD_PROCESSES)})")

    def build(name: str, params: Any, location: str, market: Market) -> Actor:
        extra = {process: getattr(market, process) for process in world}
        return cls(  # type: ignore[call-arg]
            name, market.symbol, params, market.reference_ticks, market.open_ns, market.close_ns, location, **extra
        )

    return build


A = TypeVar("A", bound=type[Actor])


def agent_kind(
    name: str,
    params: type,
    *,
    world: tuple[str, ...] = (),
    build: Build | None = None,
    placement_role: str | None = None,
) -> Callable[[A], A]:
    """Class decorator: register the decorated actor class as agent kind ``name`` (module docstring)."""

    def register_class(cls: A) -> A:
        if placement_role is not None:
            cls.placement_role = placement_role
        register(AgentKind(name, cls, params, build or trader_builder(cls, world), tuple(world)))
        return cls

    return register_class


def register(kind: AgentKind) -> AgentKind:
    """Add ``kind`` to the registry (idempotent for the same class; a taken name is refused)."""
    if not kind.name or not kind.name.isidentifier():
        raise ValueError(f"agent kind {kind.name!r}: a kind is a non-empty identifier (letters, digits, _)")
    old = _KINDS.get(kind.name)
    if old is not None and _qualname(old.actor_class) != _qualname(kind.actor_class):
        raise ValueError(
            f"agent kind {kind.name!r} is already registered for {_qualname(old.actor_class)}; choose another name"
        )
    _KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind (tests register toy kinds and remove them again)."""
    _KINDS.pop(name, None)


def kinds() -> dict[str, AgentKind]:
    """Every registered kind, by name (sorted)."""
    return {name: _KINDS[name] for name in sorted(_KINDS)}


def get(name: str) -> AgentKind:
    """The kind registered as ``name``; :class:`UnknownKind` lists the known kinds otherwise."""
    kind = _KINDS.get(name)
    if kind is None:
        raise UnknownKind(f"unknown agent kind {name!r} (known kinds: {', '.join(sorted(_KINDS)) or 'none'})")
    return kind


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
