"""Simulated network: per-link latency models and FIFO delivery per link.

A link's latency is ``base + jitter``, where jitter is a uniform integer in ``[0, jitter_ns]``
drawn from the sender's random stream. Base and jitter come from the pair of locations (a
matrix), else from the default. Messages on one link never overtake each other: a message's
arrival is never earlier than the previous arrival on the same link.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class LinkSpec:
    latency_ns: int
    jitter_ns: int = 0

    def __post_init__(self) -> None:
        if self.latency_ns < 0 or self.jitter_ns < 0:
            raise ValueError("latency and jitter must be >= 0")


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    """Default link plus per-(from, to) location overrides; ``symmetric`` mirrors pairs."""

    default: LinkSpec = LinkSpec(0)
    pairs: dict[tuple[str, str], LinkSpec] = field(default_factory=dict)
    symmetric: bool = True

    def link(self, src_location: str, dst_location: str) -> LinkSpec:
        spec = self.pairs.get((src_location, dst_location))
        if spec is None and self.symmetric:
            spec = self.pairs.get((dst_location, src_location))
        return self.default if spec is None else spec

    def latency(self, src_location: str, dst_location: str, scale: dict[tuple[str, str], float] | None = None) -> int:
        """Base latency of a link under latency factors ``scale`` (as :meth:`Network.set_scale` sets them)."""
        factor = 1.0 if scale is None else scale.get((src_location, dst_location), 1.0)
        return int(self.link(src_location, dst_location).latency_ns * factor)

    def max_latency(self) -> int:
        """The largest unscaled base latency of any link (the notice a run-time latency change gets)."""
        return max([self.default.latency_ns, *(s.latency_ns for s in self.pairs.values())])


class Network:
    """Computes arrival times; one mutable FIFO horizon per (src, dst) link."""

    __slots__ = ("_locations", "links", "scale", "spec")

    def __init__(self, spec: NetworkSpec) -> None:
        self.spec = spec
        self.links: dict[int, list[int]] = {}  # key -> [base, jitter, last_arrival]
        self._locations: list[str] = []
        self.scale: dict[tuple[str, str], float] = {}

    def register(self, actor_id: int, location: str) -> None:
        while len(self._locations) <= actor_id:
            self._locations.append("")
        self._locations[actor_id] = location

    def min_latency(self) -> int:
        values = [self.spec.default.latency_ns, *(s.latency_ns for s in self.spec.pairs.values())]
        return min(values)

    def _make_link(self, src: int, dst: int) -> list[int]:
        src_loc, dst_loc = self._locations[src], self._locations[dst]
        spec = self.spec.link(src_loc, dst_loc)
        factor = self.scale.get((src_loc, dst_loc), 1.0)
        link = [int(spec.latency_ns * factor), int(spec.jitter_ns * factor), -1]
        return link

    def link_state(self, src: int, dst: int) -> list[int]:
        """The mutable ``[base_ns, jitter_ns, last_arrival_ns]`` of link src->dst (created once)."""
        key = (src << 32) | dst
        link = self.links.get(key)
        if link is None:
            link = self.links[key] = self._make_link(src, dst)
        return link

    def arrival(self, src: int, dst: int, sent_ns: int, rng_random) -> int:  # type: ignore[no-untyped-def]
        """Arrival time of a message sent now on link src->dst (FIFO-preserving)."""
        link = self.link_state(src, dst)
        base, jitter, last = link
        t = sent_ns + base
        if jitter:
            t += int(rng_random() * (jitter + 1))
        if t < last:
            t = last
        link[2] = t
        return t

    def set_scale(self, src_location: str, dst_location: str, factor: float) -> None:
        """Multiply latency on a location pair (both directions); FIFO horizons are kept."""
        self.scale[(src_location, dst_location)] = factor
        self.scale[(dst_location, src_location)] = factor
        for key, link in self.links.items():
            src, dst = key >> 32, key & 0xFFFFFFFF
            fresh = self._make_link(src, dst)
            link[0], link[1] = fresh[0], fresh[1]
