"""Placement of actors into partitions (processes) and the lookahead between partitions.

A placement maps every actor to a partition index. It is given as

* ``None`` or ``"default"``: by the role each actor's class declares in ``placement_role``
  (:class:`sim.actor.Actor`): ``"hub"`` actors together in one partition, each ``"solo"``
  actor alone, the actors of any other named role (a team, e.g. ``"desk"``) together, and
  ``"pool"`` actors (the default) dealt round-robin into ``pools`` pools;
* ``"core"``: every actor that is not ``"pool"`` in one partition, the pools as above, so that
  only the slow links cross;
* a mapping of actor-name glob patterns to group names, tried in order, first match wins
  (``{"exchange": "core", "mm-*": "core", "noise-*": "pool/4", "*": "rest"}``). A group name
  ending in ``/K`` is dealt round-robin (in actor-id order) into K partitions named
  ``group-0`` .. ``group-{K-1}``. Every actor must match a pattern.

Partitions are numbered in order of their first actor (actor-id order), so the numbering is
deterministic. Nothing here knows about markets: roles are declared by the actors' classes.

The lookahead from partition p to partition q is the smallest base latency of any link from a
location used in p to a location used in q: no message sent at time t by an actor of p can
arrive at q before t + L[p][q]. A zero is refused, naming the link.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sim.network import NetworkSpec

PlacementSpec = str | Mapping[str, str] | None


class PlacementError(ValueError):
    """A placement that cannot be used (unmatched actor, zero-latency cross link, ...)."""


@dataclass(frozen=True, slots=True)
class Placement:
    groups: tuple[str, ...]  # partition index -> name
    where: tuple[int, ...]  # actor id -> partition index

    def members(self, index: int) -> list[int]:
        return [i for i, p in enumerate(self.where) if p == index]

    def __len__(self) -> int:
        return len(self.groups)


HUB, SOLO, POOL = "hub", "solo", "pool"


def _role(actor: Any) -> str:
    """The placement role the actor's class declares (``Actor.placement_role``)."""
    return str(getattr(actor, "placement_role", POOL))


def _default_groups(actors: Sequence[Any], preset: str, pools: int) -> list[str]:
    if preset not in ("default", "core"):
        raise PlacementError(f"unknown placement preset {preset!r} (use 'default', 'core' or a mapping)")
    groups = []
    for actor in actors:
        role = _role(actor)
        if role == POOL:
            groups.append(f"pool/{pools}")
        elif preset == "core":
            groups.append("core")
        elif role == SOLO:
            groups.append(actor.name)
        else:  # HUB or a team name: every actor of that role in one partition
            groups.append(role)
    return groups


def _pattern_groups(actors: Sequence[Any], spec: Mapping[str, str]) -> list[str]:
    groups = []
    for actor in actors:
        for pattern, group in spec.items():
            if fnmatch.fnmatchcase(actor.name, pattern):
                groups.append(str(group))
                break
        else:
            raise PlacementError(f"actor {actor.name!r} matches no pattern of the placement {list(spec)}")
    return groups


def plan(actors: Sequence[Any], spec: PlacementSpec = None, pools: int = 2) -> Placement:
    """Partition index of every actor (in id order) under ``spec``."""
    if pools < 1:
        raise PlacementError("pools must be >= 1")
    if spec is None or isinstance(spec, str):
        raw = _default_groups(actors, spec or "default", pools)
    else:
        raw = _pattern_groups(actors, spec)
    dealt: dict[str, int] = {}
    names: list[str] = []
    for group in raw:
        base, _, k = group.rpartition("/")
        if base and k.isdigit() and int(k) > 1:
            i = dealt.get(base, 0)
            dealt[base] = i + 1
            names.append(f"{base}-{i % int(k)}")
        else:
            names.append(base if base and k.isdigit() else group)
    index: dict[str, int] = {}
    where = [index.setdefault(name, len(index)) for name in names]
    return Placement(tuple(index), tuple(where))


def lookahead(
    placement: Placement,
    locations: Sequence[str],
    network: NetworkSpec,
    scale: dict[tuple[str, str], float] | None = None,
) -> list[list[int | None]]:
    """``L[p][q]``: smallest latency from any location in p to any in q (None on the diagonal),
    with the run-time latency factors ``scale`` (location pair -> factor) if given."""
    n = len(placement)
    locs: list[set[str]] = [set() for _ in range(n)]
    for actor_id, p in enumerate(placement.where):
        locs[p].add(locations[actor_id])
    matrix: list[list[int | None]] = [[None] * n for _ in range(n)]
    for p in range(n):
        for q in range(n):
            if p == q:
                continue
            best: tuple[int, str, str] | None = None
            for a in sorted(locs[p]):
                for b in sorted(locs[q]):
                    lat = network.latency(a, b, scale)
                    if best is None or lat < best[0]:
                        best = (lat, a, b)
            assert best is not None
            if best[0] <= 0:
                raise PlacementError(
                    f"link {best[1]} -> {best[2]} has zero latency but joins partitions "
                    f"{placement.groups[p]!r} and {placement.groups[q]!r}: a conservative window needs "
                    "latency > 0 on every link between processes; place both ends in one partition "
                    "or give the link a latency"
                )
            matrix[p][q] = best[0]
    return matrix
