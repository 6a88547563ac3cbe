"""The Ray runtime: actors placed in Ray actor processes, conservative time windows, same digest.

How it works
------------
* **Every process rebuilds the whole assembly** from a picklable factory ``(recorder, seed) ->
  assembly`` (an object with ``actors``, ``network``, ``start_ns``, ``end_ns``) and registers every
  actor with a :class:`PartitionKernel`, so actor ids, names, random streams and shared world
  objects are identical everywhere. Only the partition's own actors are started and receive
  messages; the others stay inert.
* **Messages are timed on the sender's side.** ``post`` computes the arrival (base latency,
  jitter from the sender's stream, FIFO horizon of the link) exactly as the local kernel does;
  a message to another partition goes into an outbox with its finished heap entry
  ``(t, priority, src, seq, dst, msg)`` instead of the local heap. Ids and sequence numbers are
  those of a local run, so the receiving kernel delivers every message at the same position of
  the global ``(t, priority, src, seq)`` order.
* **Conservative windows.** ``L[p][q]`` is the smallest latency of any link from a location in
  partition p to one in q (see :mod:`sim.runtime.placement`; a zero is refused) and ``R[p][q]``
  the shortest chain of one or more such hops (``R[q][q]``: the shortest round trip out of q
  and back). With ``e[p]`` the earliest pending event of p (its heap or messages routed to it),
  nothing can still arrive at q before ``min over p of e[p] + R[p][q]``, so q may deliver
  everything up to ``h[q] = min(end, min over p of e[p] + R[p][q] - 1)``. With one global
  lookahead L this is at least the classic window ``[T, T + L)``, ``T = min e``, and wider for a
  partition whose peers are idle or far away. Each window the driver hands ``(h[q], inbound)``
  to every partition that has work before its horizon and waits for all of them (a barrier);
  each partition returns one pickled batch per destination partition, which the driver routes
  into the next window. Empty stretches are skipped because the horizons follow the earliest
  pending events.
* **Window transport.** Ray creates, places and watches the partition processes; the window
  traffic itself goes over one TCP connection per partition (:mod:`sim.runtime.wire`), which
  costs tens of microseconds a window against about 2 ms for Ray remote calls (Ray's compiled
  graphs cost ~0.5 ms but their readers spin a core each while they wait, and this machine has
  two).
* **Tables.** Each partition records into its own :class:`~sim.record.Recorder`. At the end the
  tables are merged by name: a table must have rows in one partition only (the partition of
  the actors that write it) -- or identical rows in all of them (rows written while building)
  -- otherwise the run stops with an error, since interleaving rows of one table written in
  several processes would need a global order the tables do not carry. The digest is then
  computed by the same :class:`~sim.record.Recorder` code as a local run.
* **Failures.** A partition process that dies raises ``RuntimeError("partition X died: ...")``;
  a window that does not finish within ``window_timeout_s`` raises too (no hang). A partition
  whose ``serve`` call ends while its connection stays open (the call failed, or Ray declared its
  process or host dead) is found by a watchdog within about ``WATCH_S`` and named the same way.

Shared world objects must be read-only after the build (every process has its own copy); the
fundamental/activity paths of ``actors.world`` are precomputed, so they qualify.

``run_partitioned`` is the generic engine; the application layer (``desksim.ray_run``) builds
scenario runs on it.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import pickle
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sim.actor import Actor
from sim.kernel import Entry, Kernel, LatencyChange, SchedulingError
from sim.network import Network, NetworkSpec
from sim.record import Recorder
from sim.rng import RandomStreams
from sim.runtime import wire
from sim.runtime.placement import Placement, PlacementError, PlacementSpec, lookahead, plan

__all__ = [
    "PartitionKernel",
    "PlacementError",
    "RayRunStats",
    "run_partitioned",
]

NEVER = math.inf
#: how often the driver asks Ray whether every partition is still serving its windows (seconds)
WATCH_S = 1.0


class AssemblyLike(Protocol):
    actors: list[Actor]
    network: NetworkSpec
    start_ns: int
    end_ns: int


Factory = Callable[[Recorder, int], AssemblyLike]
Extract = Callable[[Any, Callable[[Actor], bool]], dict[str, Any]]
Report = tuple[dict[int, tuple[int, int, bytes]], int | None, int, int, list[Entry]]
"""A partition's answer: outbound batches by partition, next event time, counts, latency changes asked for."""
"""``extract(assembly, owns)``: end-of-run results read from live actors this partition owns."""


class PartitionKernel(Kernel):
    """A kernel that runs only the actors of one partition and captures outbound messages.

    Every actor of the assembly is registered (so ids and streams match the local run), but
    only those with ``where[id] == me`` are started and stopped; a message to any other actor
    is put, fully timed, into ``outbox[partition]``.
    """

    def __init__(
        self,
        network: Network,
        streams: RandomStreams,
        start_ns: int,
        where: Sequence[int],
        me: int,
        lookahead_to: Sequence[int | None],
    ) -> None:
        super().__init__(network, streams, start_ns)
        self.where = list(where)
        self.me = me
        self.lookahead_to = [0 if la is None else int(la) for la in lookahead_to]
        self.outbox: list[list[Entry]] = [[] for _ in lookahead_to]
        self.announced: list[Entry] = []  # latency changes asked for here, for the driver to hand on

    def queue_change(self, entry: Entry) -> None:
        super().queue_change(entry)
        self.announced.append(entry)
        self.lookahead_to = [0] * len(self.lookahead_to)  # no check until the driver sends the new row

    def set_lookahead(self, lookahead_to: Sequence[int | None]) -> None:
        self.lookahead_to = [0 if la is None else int(la) for la in lookahead_to]

    def post(self, sender: Actor, dst: int, msg: Any, priority: int, seq: int) -> None:
        src = sender.id
        link = self._links.get((src << 32) | dst)
        if link is None:
            link = self.network.link_state(src, dst)
        t = self.now + link[0]
        if link[1]:
            t += int(sender.random.random() * (link[1] + 1))
        if t < link[2]:
            t = link[2]
        link[2] = t
        p = self.where[dst]
        if p == self.me:
            heapq.heappush(self._heap, (t, priority, src, seq, dst, msg))
        else:
            if t - self.now < self.lookahead_to[p]:
                raise SchedulingError(
                    f"{sender.name} -> {self.actors[dst].name}: latency {t - self.now} ns is below the "
                    f"lookahead {self.lookahead_to[p]} ns between partitions (was a link's latency scaled down?)"
                )
            self.outbox[p].append((t, priority, src, seq, dst, msg))

    def inject_batch(self, entries: list[Entry]) -> None:
        """Queue many already-timed deliveries at once (one heapify instead of a push each)."""
        if not entries:
            return
        first = min(e[0] for e in entries)
        if first < self.now:
            raise SchedulingError(f"delivery at {first} is in the past (now {self.now})")
        heap = self._heap
        if len(entries) * 4 < len(heap):
            for entry in entries:
                heapq.heappush(heap, entry)
        else:
            heap.extend(entries)
            heapq.heapify(heap)

    def own(self) -> list[Actor]:
        return [a for a in self.actors if self.where[a.id] == self.me]

    def start(self) -> None:
        if not self._started:
            self._started = True
            for actor in self.own():
                actor.on_start()

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            for actor in self.own():
                actor.on_stop()

    def take_announced(self) -> list[Entry]:
        announced, self.announced = self.announced, []
        return announced

    def take_outbox(self) -> dict[int, tuple[int, int, bytes]]:
        """Outbound batches by destination partition: ``(earliest t, count, pickled entries)``."""
        out: dict[int, tuple[int, int, bytes]] = {}
        for p, entries in enumerate(self.outbox):
            if entries:
                out[p] = (min(e[0] for e in entries), len(entries), pickle.dumps(entries, pickle.HIGHEST_PROTOCOL))
                self.outbox[p] = []
        return out


class Partition:
    """One process of a partitioned run (wrapped by ``ray.remote`` at run time)."""

    def __init__(
        self,
        factory: Factory,
        seed: int,
        where: Sequence[int],
        me: int,
        lookahead_to: Sequence[int | None],
        extract: Extract | None = None,
    ) -> None:
        self.recorder = Recorder()
        self.extract = extract
        self.assembly = assembly = factory(self.recorder, seed)
        self.end_ns = assembly.end_ns
        self.busy_s = 0.0
        self.kernel = PartitionKernel(
            Network(assembly.network), RandomStreams(seed), assembly.start_ns, where, me, lookahead_to
        )
        for actor in assembly.actors:
            self.kernel.add(actor)
        if len(self.kernel.actors) != len(where):
            raise RuntimeError("the factory built a different assembly in a partition process")

    def _report(self) -> Report:
        k = self.kernel
        return k.take_outbox(), k.next_time(), k.messages_delivered, k.wakeups_delivered, k.take_announced()

    def start(self) -> Report:
        self.kernel.start()
        return self._report()

    def advance(
        self, until_ns: int, inbound: Sequence[bytes], lookahead_to: Sequence[int | None] | None = None
    ) -> Report:
        t0 = time.perf_counter()
        kernel = self.kernel
        if lookahead_to is not None:
            kernel.set_lookahead(lookahead_to)
        for batch in inbound:
            kernel.inject_batch(pickle.loads(batch))
        if until_ns > kernel.now:
            kernel.advance(until_ns)
        report = self._report()
        self.busy_s += time.perf_counter() - t0
        return report

    def serve(self, address: tuple[str, int], token: bytes) -> int:
        """Run windows sent over a socket by the driver until it sends an empty frame; return their count."""
        sock = wire.dial(address, token, self.kernel.me, timeout_s=60.0)
        windows = 0
        try:
            while True:
                frame = wire.recv_frame(sock)
                if not frame:
                    return windows
                wire.send_frame(sock, pickle.dumps(self.advance(*pickle.loads(frame)), pickle.HIGHEST_PROTOCOL))
                windows += 1
        finally:
            sock.close()

    def finish(
        self, inbound: Sequence[bytes]
    ) -> tuple[dict[str, tuple[tuple[str, ...], list[Any]]], int, int, float, dict[str, Any]]:
        """Bring the clock to the end (nothing is due any more), stop the actors, hand over tables."""
        kernel = self.kernel
        for batch in inbound:
            kernel.inject_batch(pickle.loads(batch))
        if self.end_ns > kernel.now:
            nxt = kernel.next_time()
            if nxt is not None and nxt <= self.end_ns:
                raise RuntimeError(f"partition finished with an event at {nxt} still due before {self.end_ns}")
            kernel.advance(self.end_ns)
        kernel.stop()
        tables = {name: (t.columns, t.rows) for name, t in self.recorder.tables.items()}
        extras: dict[str, Any] = {}
        if self.extract is not None:
            extras = self.extract(self.assembly, lambda actor: kernel.where[actor.id] == kernel.me)
        return tables, kernel.messages_delivered, kernel.wakeups_delivered, self.busy_s, extras

    def node(self) -> str:
        """The Ray node this partition runs on."""
        import ray

        return str(ray.get_runtime_context().get_node_id())


@dataclass
class RayRunStats:
    """What a partitioned run measured (``wall_s`` covers the windows only, not process set-up)."""

    wall_s: float
    setup_s: float
    messages: int
    wakeups: int
    windows: int
    cross_messages: int
    partitions: list[str]
    partition_sizes: list[int]
    calls: int
    lookahead_ns: int | None
    transport: str = "sockets"
    per_partition_messages: list[int] = field(default_factory=list)
    per_partition_busy_s: list[float] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)

    @property
    def messages_per_window(self) -> float:
        return self.messages / self.windows if self.windows else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "partitions": dict(zip(self.partitions, self.partition_sizes, strict=True)),
            "lookahead_ns": self.lookahead_ns,
            "transport": self.transport,
            "windows": self.windows,
            "messages_per_window": round(self.messages_per_window, 2),
            "cross_partition_messages": self.cross_messages,
            "remote_calls": self.calls,
            "busy_seconds": dict(zip(self.partitions, (round(b, 3) for b in self.per_partition_busy_s), strict=True)),
            "setup_seconds": round(self.setup_s, 4),
            "nodes": dict(zip(self.partitions, self.nodes, strict=True)),
        }


def _driver_host(address: str | None) -> str:
    """Where the partitions reach the driver: loopback for a local Ray, this node's address on a cluster."""
    if address is None:
        return "127.0.0.1"
    import ray.util

    return str(ray.util.get_node_ip_address())


def _ensure_ray(address: str | None, num_cpus: int | None, py_modules: Sequence[Any] = ()) -> bool:
    """Initialise Ray unless it already is; True if this call initialised it.

    On a cluster, ``py_modules`` (the packages the factory imports) are shipped to every node.
    """
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False, "include_dashboard": False}
    if address is not None:
        kwargs["address"] = address
        if py_modules:
            kwargs["runtime_env"] = {"py_modules": list(py_modules)}
        kwargs.pop("include_dashboard")
    else:  # a fresh local instance, never a cluster some other job happens to run on this machine
        kwargs["address"] = "local"
        if num_cpus is not None:
            kwargs["num_cpus"] = num_cpus
    ray.init(**kwargs)
    return True


class _Calls:
    """Issue remote calls and collect them with one ``ray.get``, turning failures into clear errors."""

    def __init__(self, handles: list[Any], names: Sequence[str], timeout_s: float) -> None:
        self.handles, self.names, self.timeout_s = handles, list(names), timeout_s
        self.count = 0

    def gather(self, refs: list[Any], which: list[int], what: str) -> list[Any]:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

        self.count += len(refs)
        try:
            return list(ray.get(refs, timeout=self.timeout_s))
        except (RayActorError, RayTaskError, GetTimeoutError) as exc:
            raise self.failure(refs, which, exc, what) from exc

    def failure(
        self, refs: list[Any], which: list[int], exc: BaseException, what: str, wait_s: float = 0.5
    ) -> RuntimeError:
        """The error for calls of ``which`` that went wrong: it names the first partition whose call
        failed (raised: "failed"; process gone: "died") and why, else says they did not finish."""
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

        for ref, i in zip(refs, which, strict=True):
            try:
                ray.get(ref, timeout=wait_s)
            except Exception as inner:  # the first failing partition is the one to name
                raised = isinstance(inner, RayTaskError) and not isinstance(inner, RayActorError)
                cause = getattr(inner, "cause", None) if raised else None
                if isinstance(cause, BaseException):  # what the partition raised: its type and message
                    reason = f"{type(cause).__name__}: {cause}"
                else:
                    first = str(inner).strip().splitlines()
                    reason = first[0] if first else type(inner).__name__
                verb = "failed" if raised else "died"
                return RuntimeError(f"partition {self.names[i]} {verb} during {what}: {reason}")
        detail = f"within {self.timeout_s} s" if isinstance(exc, GetTimeoutError) else f"({exc})"
        return RuntimeError(f"partitions {[self.names[i] for i in which]} did not finish {what} {detail}")


Work = tuple[int, list[bytes], list[int | None] | None] | None


class _SocketWindows:
    """Windows over one TCP connection per partition (see :mod:`sim.runtime.wire`).

    Each partition runs ``serve`` (a long Ray call) that answers one frame per window; the
    driver writes the active partitions' work, then reads their reports. A partition that
    dies closes its socket, so the driver notices at once and names it. One that ends without
    closing it (its ``serve`` call failed while its process lives on, or Ray declared its
    process or host dead while the connection stayed open) is caught by a watchdog thread: every
    ``WATCH_S`` it asks Ray which ``serve`` calls have ended and shuts their sockets, so the
    driver fails within seconds, naming the partition, not at the end of the window timeout.
    """

    name = "sockets"

    def __init__(self, handles: list[Any], calls: _Calls, timeout_s: float, host: str) -> None:
        self.calls = calls
        self.hub = wire.Hub(host, len(handles), timeout_s)
        self.serving = [h.serve.remote(self.hub.address, self.hub.token) for h in handles]
        self._stop = threading.Event()
        self._watch: threading.Thread | None = None
        try:
            self.hub.accept_all()
        except wire.WireError as exc:
            raise self._failure(exc, "set-up") from exc
        self._watch = threading.Thread(target=self._watchdog, name="partition-watchdog", daemon=True)
        self._watch.start()

    def _watchdog(self) -> None:
        """Shut the socket of every partition whose ``serve`` call has ended (see the class docstring)."""
        import ray

        index = {ref: q for q, ref in enumerate(self.serving)}
        while not self._stop.wait(WATCH_S):
            ended, _ = ray.wait(self.serving, num_returns=len(self.serving), timeout=0)
            for ref in ended:
                peer = self.hub.peers[index[ref]]
                if peer is not None and not self._stop.is_set():
                    with contextlib.suppress(OSError):  # closed meanwhile
                        peer.shutdown(socket.SHUT_RDWR)

    def _stop_watching(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.join()

    def window(self, work: list[Work], what: str) -> list[Report | None]:
        reports: list[Report | None] = [None] * len(work)
        active = [q for q, w in enumerate(work) if w is not None]
        q = -1
        try:
            for q in active:
                self.hub.send(q, pickle.dumps(work[q], pickle.HIGHEST_PROTOCOL))
            for q in active:
                reports[q] = pickle.loads(self.hub.recv(q))
        except wire.WireError as exc:
            raise self._failure(exc, what, q) from exc
        self.calls.count += len(active)
        return reports

    def _failure(self, exc: BaseException, what: str, broken: int = -1) -> RuntimeError:
        """Name the partition whose connection broke (its Ray call says why), then close the rest."""
        self._stop_watching()
        suspects = [broken] if broken >= 0 else list(range(len(self.serving)))
        error = self.calls.failure([self.serving[i] for i in suspects], suspects, exc, what, wait_s=5.0)
        self.hub.close()
        return error

    def close(self) -> None:
        """Tell every partition to stop serving and wait until they do (they take plain calls again)."""
        import ray

        self._stop_watching()  # the serve calls now end by design
        if all(p is not None for p in self.hub.peers):  # not after a failure closed them
            with contextlib.suppress(wire.WireError):
                for q in range(len(self.serving)):
                    self.hub.send(q, b"")
                ray.get(self.serving, timeout=self.hub.timeout_s)
        self.hub.close()


def round_robin(node_ids: Sequence[str], partitions: int) -> list[str]:
    """Partition p's node: the alive nodes in a fixed order, taken in turn."""
    if not node_ids:
        raise RuntimeError("the Ray cluster has no alive node")
    ordered = sorted(node_ids)
    return [ordered[p % len(ordered)] for p in range(partitions)]


def _node_strategies(partitions: int) -> list[Any]:
    """Pin each partition to a node, in turn over the cluster's alive nodes (hard affinity).

    Ray's ``SPREAD`` strategy is best effort: with zero-CPU actors it sometimes put every
    partition on one node. Hard node affinity makes the spread certain and the same every run.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    alive = [str(node["NodeID"]) for node in ray.nodes() if node.get("Alive")]
    return [NodeAffinitySchedulingStrategy(node_id, soft=False) for node_id in round_robin(alive, partitions)]


def run_partitioned(
    factory: Factory,
    seed: int,
    *,
    placement: PlacementSpec = None,
    pools: int = 2,
    address: str | None = None,
    num_cpus: int | None = None,
    window_timeout_s: float = 600.0,
    on_window: Callable[[int, list[Any]], None] | None = None,
    extract: Extract | None = None,
    py_modules: Sequence[Any] = (),
) -> tuple[RayRunStats, Recorder]:
    """Run the assembly built by ``factory`` across Ray actor processes; return stats and tables.

    ``on_window(window_index, partition_handles)`` is called before each window (tests use it
    to kill a partition). ``extract(assembly, owns)`` runs in every partition at the end and its
    dicts are merged into ``stats.extras``. The returned recorder holds the merged tables.
    Window traffic goes over a TCP connection per partition (:mod:`sim.runtime.wire`).
    ``py_modules``: packages shipped to the nodes of a cluster (``address``).
    """
    import ray

    t_setup = time.perf_counter()
    probe = factory(Recorder(), seed)
    layout: Placement = plan(probe.actors, placement, pools)
    locations = [a.location for a in probe.actors]
    links = _Links(layout, locations, probe.network, [a.name for a in probe.actors])
    matrix = links.matrix
    end_ns = int(probe.end_ns)
    del probe
    n = len(layout)
    started_ray = _ensure_ray(address, num_cpus, py_modules)
    handles: list[Any] = []
    channel: _SocketWindows | None = None
    try:
        options: dict[str, Any] = {"num_cpus": 0, "max_restarts": 0, "max_task_retries": 0}
        remote_cls = ray.remote(Partition)
        factory_ref = ray.put(factory)
        # on a cluster each partition is pinned to a node; locally Ray places them
        placements = [{"scheduling_strategy": s} for s in _node_strategies(n)] if address is not None else [{}] * n
        handles = [
            remote_cls.options(**options, **where).remote(factory_ref, seed, list(layout.where), p, matrix[p], extract)  # type: ignore[attr-defined]
            for p, where in enumerate(placements)
        ]
        calls = _Calls(handles, layout.groups, window_timeout_s)
        nodes = calls.gather([h.node.remote() for h in handles], list(range(n)), "set-up")
        setup_s = time.perf_counter() - t_setup

        t0 = time.perf_counter()
        pending: list[list[bytes]] = [[] for _ in range(n)]
        pending_min: list[float] = [NEVER] * n
        nxt: list[float] = [NEVER] * n
        done: list[int] = [-1] * n  # the horizon each partition has delivered up to
        new_rows: list[bool] = [False] * n  # the lookahead row of the partition changed
        cross = 0

        def absorb(p: int, report: Report) -> None:
            nonlocal cross
            outbox, next_t, _, _, announced = report
            nxt[p] = NEVER if next_t is None else next_t
            for q, (t_min, count, blob) in outbox.items():
                pending[q].append(blob)
                if t_min < pending_min[q]:
                    pending_min[q] = t_min
                cross += count
            if announced:  # latency changes: to every other partition, before any of them gets there
                blob = pickle.dumps(announced, pickle.HIGHEST_PROTOCOL)
                for q in range(n):
                    if q == p:
                        continue
                    late = [e for e in announced if e[0] <= done[q]]
                    if late:
                        raise RuntimeError(
                            f"a latency change at {late[0][0]} ns reached partition {layout.groups[q]} after it had "
                            f"delivered up to {done[q]} ns (the change's notice is shorter than the lookahead)"
                        )
                    pending[q].append(blob)
                    pending_min[q] = min(pending_min[q], min(e[0] for e in announced))
                for q, changed in enumerate(links.announce(announced)):
                    new_rows[q] = new_rows[q] or changed or q == p

        for p, report in enumerate(calls.gather([h.start.remote() for h in handles], list(range(n)), "start")):
            absorb(p, report)
        channel = _SocketWindows(handles, calls, window_timeout_s, _driver_host(address))

        windows = 0
        while True:
            earliest = [min(nxt[p], pending_min[p]) for p in range(n)]
            if min(earliest) > end_ns:
                break
            active: list[int] = []
            horizons: list[int] = []
            for q in range(n):
                h = end_ns
                for p in range(n):
                    la = links.reach[p][q]
                    if earliest[p] + la - 1 < h:
                        h = int(earliest[p] + la - 1)
                if earliest[q] <= h:
                    active.append(q)
                    horizons.append(h)
            if on_window is not None:
                on_window(windows, handles)
            work: list[Work] = [None] * n
            for q, h in zip(active, horizons, strict=True):
                work[q] = (h, pending[q], links.matrix[q] if new_rows[q] else None)
                pending[q] = []
                pending_min[q] = NEVER
                new_rows[q] = False
                done[q] = h
            for q, report in enumerate(channel.window(work, f"window {windows}")):
                if report is not None:
                    absorb(q, report)
            windows += 1
        channel.close()  # the partitions serve plain calls again
        transport_name = channel.name

        refs = [handles[p].finish.remote(pending[p]) for p in range(n)]
        finals = calls.gather(refs, list(range(n)), "finish")
        wall = time.perf_counter() - t0
    finally:
        if channel is not None:
            channel.close()
        for h in handles:
            with contextlib.suppress(Exception):  # already dead
                ray.kill(h)
        if started_ray:
            ray.shutdown()

    recorder = _merge_tables([f[0] for f in finals], layout.groups)
    per_partition = [f[1] for f in finals]
    stats = RayRunStats(
        wall_s=wall,
        setup_s=setup_s,
        messages=sum(per_partition),
        wakeups=sum(f[2] for f in finals),
        windows=windows,
        cross_messages=cross,
        partitions=list(layout.groups),
        partition_sizes=[len(layout.members(p)) for p in range(n)],
        calls=calls.count,
        lookahead_ns=min((la for row in matrix for la in row if la is not None), default=None),
        transport=transport_name,
        per_partition_messages=per_partition,
        per_partition_busy_s=[f[3] for f in finals],
        extras={k: v for f in finals for k, v in f[4].items()},
        nodes=list(nodes),
    )
    return stats, recorder


class _Links:
    """The lookahead between partitions as run-time latency changes make it.

    A change announced at any time may take effect later; until every partition is past it, the
    windows must be safe for the links before and after it, so the matrix kept is the smallest
    lookahead of every state the links have been or will be in (changes applied in their order).
    A change that would give a link between partitions zero latency is refused, naming it.
    """

    def __init__(self, layout: Placement, locations: list[str], network: NetworkSpec, names: list[str]) -> None:
        self.layout, self.locations, self.network, self.names = layout, locations, network, names
        self.changes: list[Entry] = []
        self.matrix = lookahead(layout, locations, network)
        self.reach = _reach(self.matrix)

    def announce(self, entries: list[Entry]) -> list[bool]:
        """Take latency change entries into account; which partitions' lookahead rows changed."""
        self.changes = sorted([*self.changes, *entries], key=lambda e: e[:4])
        scale: dict[tuple[str, str], float] = {}
        matrix = [list(row) for row in self.matrix]
        for at, _, src, _, _, change in self.changes:
            assert isinstance(change, LatencyChange)
            scale[(change.src_location, change.dst_location)] = change.factor
            scale[(change.dst_location, change.src_location)] = change.factor
            try:
                state = lookahead(self.layout, self.locations, self.network, scale)
            except PlacementError as exc:
                raise PlacementError(
                    f"latency change {change.src_location}<->{change.dst_location} x{change.factor} at {at} ns "
                    f"(asked by {self.names[src]}) cannot run on this placement: {exc}"
                ) from None
            for row, new in zip(matrix, state, strict=True):
                for q, la in enumerate(new):
                    if la is not None and row[q] is not None and la < row[q]:  # type: ignore[operator]
                        row[q] = la
        changed = [old != new for old, new in zip(self.matrix, matrix, strict=True)]
        if any(changed):
            self.matrix = matrix
            self.reach = _reach(matrix)
        return changed


def _reach(matrix: list[list[int | None]]) -> list[list[float]]:
    """``R[p][q]``: least latency of any chain of one or more cross-partition hops from p to q.

    An event at p at time t can cause an event at q no earlier than t + R[p][q] (including
    chains that pass through q itself and come back: R[q][q] is the shortest round trip), so q
    may deliver everything before ``min over p of (earliest[p] + R[p][q])``.
    """
    n = len(matrix)
    dist = [[NEVER if la is None else float(la) for la in row] for row in matrix]
    for k in range(n):  # Floyd-Warshall over paths of >= 1 hop (the diagonal starts at infinity)
        for i in range(n):
            dik = dist[i][k]
            if dik == NEVER:
                continue
            for j in range(n):
                if dik + dist[k][j] < dist[i][j]:
                    dist[i][j] = dik + dist[k][j]
    return dist


def _merge_tables(parts: list[dict[str, tuple[tuple[str, ...], list[Any]]]], groups: Sequence[str]) -> Recorder:
    """One recorder with every table: each table's rows come from the one partition that wrote them."""
    recorder = Recorder()
    names: list[str] = []
    for tables in parts:
        names.extend(name for name in tables if name not in names)
    for name in names:
        holders = [(p, tables[name]) for p, tables in enumerate(parts) if name in tables]
        columns = holders[0][1][0]
        written = [(p, rows) for p, (_, rows) in holders if rows]
        table = recorder.table(name, columns)
        if not written:
            continue
        if len(written) > 1 and any(rows != written[0][1] for _, rows in written[1:]):
            who = [groups[p] for p, _ in written]
            raise RuntimeError(
                f"table {name!r} was written in several partitions {who}: place the actors that write "
                "one table in one partition"
            )
        table.rows.extend(written[0][1])
    return recorder
