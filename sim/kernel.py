"""The discrete-event kernel: actor registry, message delivery and the run loop.

A SimPy ``Environment`` in integer nanoseconds is the clock. Pending deliveries are keyed by
``(time, priority, sender id, sender sequence)``: that key is unique, so simultaneous deliveries
are ordered the same way on every run, every runtime and every machine, never by object
identity or hash order. They wait in two priority queues, messages in flight and timers
(wake-ups), and are delivered in the one key order of both: the next delivery is the smaller of
the two heads. (Timers are most of what is pending -- a wake-up per trader, seconds away --
while a message is due within microseconds: apart, each push and pop of a message works on a
heap of the few in flight instead of one of a thousand timers.) A single SimPy process
(``_drive``) delivers in key order and synchronises the SimPy clock with every other SimPy
event (see ``_drive``); ``advance(until)`` leaves both clocks at ``until``.
"""

from __future__ import annotations

import heapq
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from heapq import heappush
from typing import Any

import simpy

from sim.actor import Actor, Wakeup
from sim.network import Network
from sim.rng import RandomStreams

Entry = tuple[int, int, int, int, int, Any]  # (time, priority, src, seq, dst, msg)
CHANGE_PRIORITY = -(1 << 62)  # a latency change comes first in its instant, before any delivery


@dataclass(frozen=True, slots=True)
class LatencyChange:
    """A kernel entry (not a message to an actor): scale the latency of a location pair, both ways."""

    src_location: str
    dst_location: str
    factor: float


class SchedulingError(RuntimeError):
    pass


class Kernel:
    """Registry of actors and the deterministic delivery loop of one simulation process."""

    def __init__(self, network: Network, streams: RandomStreams, start_ns: int = 0) -> None:
        self.network = network
        self.streams = streams
        self.env = simpy.Environment(initial_time=int(start_ns))
        self.now = int(start_ns)
        self.start_ns = int(start_ns)
        self.actors: list[Actor] = []
        self._ids: dict[str, int] = {}
        self._heap: list[Entry] = []  # messages in flight (and injected entries)
        self._timers: list[Entry] = []  # wake-ups (``schedule``), delivered in one key order with the above
        self._links = network.links
        self._dispatch: list[dict[type, Any]] = []  # actors[i].dispatch (``add``), for the delivery loop
        self.messages_delivered = 0
        self.wakeups_delivered = 0
        self._started = False
        self._stopped = False
        self._changes_asked = 0
        self.change_notice_ns = network.spec.max_latency()
        # post_all inlines post's body only while post is this class's own (see post_all)
        self._own_post = type(self).post is _KERNEL_POST

    # -- registry -----------------------------------------------------------------------------
    def add(self, actor: Actor) -> int:
        if self._started:
            raise SchedulingError("actors must be added before the run starts")
        if actor.name in self._ids:
            raise SchedulingError(f"duplicate actor name {actor.name!r}")
        actor_id = len(self.actors)
        self.actors.append(actor)
        self._ids[actor.name] = actor_id
        self.network.register(actor_id, actor.location)
        actor.attach(self, actor_id, self.streams.python(actor.name))
        self._dispatch.append(actor.dispatch)
        return actor_id

    def actor_id(self, name: str) -> int:
        try:
            return self._ids[name]
        except KeyError:
            raise SchedulingError(f"no actor named {name!r}") from None

    def names(self) -> list[str]:
        return [a.name for a in self.actors]

    # -- scheduling ---------------------------------------------------------------------------
    def post(self, sender: Actor, dst: int, msg: Any, priority: int, seq: int) -> None:
        """Send ``msg`` from ``sender`` to actor ``dst`` over the network link between them.

        The body is ``Network.arrival`` inlined (this is the hottest call of a run): latency
        plus jitter from the sender's stream, never earlier than the link's previous arrival.
        """
        src = sender.id
        link = self._links.get((src << 32) | dst)
        if link is None:
            link = self.network.link_state(src, dst)
        base, jitter, last = link
        t = self.now + base
        if jitter:
            t += int(sender.random.random() * (jitter + 1))
        if t < last:
            t = last
        link[2] = t
        heappush(self._heap, (t, priority, src, seq, dst, msg))

    def post_all(self, sender: Actor, dsts: Sequence[int], msg: Any, priority: int, seq: int) -> int:
        """``post`` of the one ``msg`` to each of ``dsts`` in order, with sequence numbers ``seq + 1``,
        ``seq + 2``, ...; returns the last one. The same entries, jitter draws and link horizons as
        a ``post`` per destination (the loop below is that body inlined), in one call: the fan-out
        of market data. A kernel whose ``post`` is not this class's own (a runtime's subclass, a
        test's wrapper) gets one call of it per destination instead."""
        if not self._own_post:
            for dst in dsts:
                sender.send(dst, msg, priority)
            return sender._seq
        src = sender.id
        key = src << 32
        links, heap, now = self._links, self._heap, self.now
        rnd = sender.random.random
        for dst in dsts:
            seq += 1
            link = links.get(key | dst)
            if link is None:
                link = self.network.link_state(src, dst)
            base, jitter, last = link
            t = now + base
            if jitter:
                t += int(rnd() * (jitter + 1))
            if t < last:
                t = last
            link[2] = t
            heappush(heap, (t, priority, src, seq, dst, msg))
        return seq

    def schedule(self, actor: Actor, t_ns: int, msg: Any, priority: int, seq: int) -> None:
        """Deliver ``msg`` to ``actor`` itself at ``t_ns`` (a timer; no network)."""
        if t_ns < self.now:
            raise SchedulingError(f"{actor.name} asked for a wake-up in the past ({t_ns} < {self.now})")
        heappush(self._timers, (t_ns, priority, actor.id, seq, actor.id, msg))

    def inject(self, entry: Entry) -> None:
        """Queue an already-timed delivery (used by distributed runtimes)."""
        if entry[0] < self.now:
            raise SchedulingError(f"delivery at {entry[0]} is in the past (now {self.now})")
        heapq.heappush(self._heap, entry)

    def change_latency(self, actor: Actor, at_ns: int, src_location: str, dst_location: str, factor: float) -> int:
        """Scale the latency of a location pair (both directions) by ``factor`` for every message sent
        at or after the returned time: ``at_ns``, but never less than ``change_notice_ns`` (the
        largest base latency of the network) from now. The change is a kernel entry at that time
        that comes before every delivery of its instant, on every runtime; the notice is what lets
        a partitioned runtime hand it to every process before any of them can have passed it.
        """
        if not factor > 0:
            raise SchedulingError(f"{actor.name}: a latency factor must be > 0, got {factor}")
        self._changes_asked += 1
        at = max(int(at_ns), self.now + self.change_notice_ns)
        change = LatencyChange(src_location, dst_location, float(factor))
        self.queue_change((at, CHANGE_PRIORITY, actor.id, self._changes_asked, actor.id, change))
        return at

    def queue_change(self, entry: Entry) -> None:
        """Queue a latency change entry (a distributed runtime also hands it to its other processes)."""
        self.inject(entry)

    def next_time(self) -> int | None:
        heap, timers = self._heap, self._timers
        if heap and timers:
            return min(heap[0][0], timers[0][0])
        return heap[0][0] if heap else timers[0][0] if timers else None

    # -- running ------------------------------------------------------------------------------
    def start(self) -> None:
        if not self._started:
            self._started = True
            for actor in self.actors:
                actor.on_start()

    def run(self, until_ns: int) -> None:
        """Start (once), deliver everything due at or before ``until_ns``, then stop actors."""
        self.advance(until_ns)
        self.stop()

    def advance(self, until_ns: int) -> None:
        """Deliver every message due at or before ``until_ns``; the clock ends at ``until_ns``."""
        self.start()
        env = self.env
        nxt = self.next_time()
        if (nxt is None or nxt > until_ns) and env.peek() > until_ns:
            # nothing is due: only the clocks move, as the two runs below would leave them (a
            # real-time driver such as ``desksim serve`` calls this often with nothing to deliver)
            if env.now < until_ns:
                env._now = until_ns  # what env.run(until=until_ns) ends with, without its events
            self.now = int(until_ns)
            return
        # the kernel's loop runs in this frame until it must let another SimPy event run first;
        # only then does it become a SimPy process (a real-time driver calls this thousands of
        # times a second, and a process per call is a good part of its cost)
        drive = self._drive(int(until_ns))
        try:
            first = next(drive)
        except StopIteration:
            pass
        else:
            env.run(until=env.process(_resumed(first, drive)))
        if env.now < until_ns:
            if env.peek() > until_ns:
                env._now = until_ns  # what env.run(until=until_ns) ends with, without its events
            else:
                env.run(until=until_ns)
        self.now = int(until_ns)

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            for actor in self.actors:
                actor.on_stop()

    def _drive(self, until_ns: int) -> Generator[simpy.Event, None, None]:
        """The kernel's SimPy process: deliver due messages in key order, advancing the clock.

        The SimPy clock is synchronised (a ``timeout`` is yielded) whenever another SimPy event
        is due no later than the next delivery, so user SimPy processes interleave exactly; a
        stretch of deliveries with no SimPy event in between runs without a context switch
        (``kernel.now`` is the delivery time throughout), which is what makes the loop cheap.
        The SimPy clock follows each delivery, so a process a handler starts counts from the
        delivery's time, and an event it schedules is seen before the next delivery.
        """
        heap, timers, env, actors = self._heap, self._timers, self.env, self.actors
        dispatch = self._dispatch  # each actor's handler table by id
        events = env._queue  # SimPy's own event heap: a handler may add to it
        pop = heapq.heappop
        delivered = wakeups = 0
        wakeup_cls = Wakeup
        synced_until = -1  # no other SimPy event is due before this time ...
        synced_events = -1  # ... while SimPy holds this many events
        try:
            while True:
                # the next entry of either queue: the smaller head (keys are unique)
                q = (timers if timers and timers[0] < heap[0] else heap) if heap else timers
                t = q[0][0] if q else until_ns + 1
                if t > synced_until or len(events) != synced_events:
                    nxt = env.peek()
                    if nxt <= t and nxt <= until_ns:  # let the other SimPy event run first
                        self.now = int(nxt)
                        yield env.timeout(nxt - env.now)
                        synced_until = -1
                        continue
                    synced_until = until_ns if nxt > until_ns else int(nxt) - 1
                    synced_events = len(events)
                    if t > until_ns:
                        break
                # (otherwise t <= synced_until <= until_ns: it is due)
                self.now = env._now = t
                _, _, src, _, dst, msg = pop(q)
                cls = msg.__class__
                if cls is wakeup_cls:
                    wakeups += 1
                else:
                    delivered += 1
                handler = dispatch[dst].get(cls)
                if handler is None:
                    if cls is LatencyChange:  # a kernel entry, not a message
                        delivered -= 1
                        self.network.set_scale(msg.src_location, msg.dst_location, msg.factor)
                    else:
                        actors[dst].unhandled(msg, src)
                else:
                    handler(msg, src)
        finally:
            self.messages_delivered += delivered
            self.wakeups_delivered += wakeups


_KERNEL_POST = Kernel.post  # as defined here (a test may wrap Kernel.post later: post_all follows it)


def _resumed(first: simpy.Event, drive: Generator[simpy.Event, None, None]) -> Generator[simpy.Event, Any, None]:
    """The rest of a kernel loop that was started outside SimPy, as a SimPy process: it waits for
    the event the loop yielded first, then goes on as the loop itself would have."""
    event = first
    while True:
        value = yield event
        try:
            event = drive.send(value)
        except StopIteration:
            return
