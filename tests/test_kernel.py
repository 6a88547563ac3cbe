"""Kernel: delivery order, FIFO links, latency models, wake-ups, named random streams."""

from dataclasses import dataclass

import pytest

from sim.actor import Actor, UnhandledMessage, Wakeup, handles
from sim.kernel import Kernel, SchedulingError
from sim.network import LinkSpec, Network, NetworkSpec
from sim.rng import RandomStreams


@dataclass(frozen=True, slots=True)
class Ping:
    n: int


class Sink(Actor):
    def __init__(self, name, location="default"):
        super().__init__(name, location)
        self.got = []

    @handles(Ping)
    def on_ping(self, msg, src):
        self.got.append((self.now, src, msg.n))


class Burst(Actor):
    """Sends ``count`` pings to ``dst`` at start, optionally all at once."""

    def __init__(self, name, dst, count, location="default"):
        super().__init__(name, location)
        self.dst_name, self.count = dst, count

    def on_start(self):
        dst = self.lookup(self.dst_name)
        for i in range(self.count):
            self.send(dst, Ping(i))


ONE_US = NetworkSpec(LinkSpec(1000))


def make_kernel(spec=ONE_US, seed=1):
    return Kernel(Network(spec), RandomStreams(seed))


def test_message_arrives_after_link_latency():
    k = make_kernel(NetworkSpec(LinkSpec(1500)))
    sink = Sink("sink")
    k.add(sink)
    k.add(Burst("a", "sink", 1))
    k.run(10_000)
    assert sink.got == [(1500, 1, 0)]
    assert k.messages_delivered == 1


def test_simultaneous_deliveries_order_by_sender_id_then_sequence():
    k = make_kernel(NetworkSpec(LinkSpec(100)))
    sink = Sink("sink")
    k.add(sink)
    k.add(Burst("b", "sink", 3))
    k.add(Burst("a", "sink", 3))  # registered later: higher id, delivered after b's
    k.run(1000)
    assert [(src, n) for _, src, n in sink.got] == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]


def test_jittered_link_stays_fifo_and_within_bounds():
    k = make_kernel(NetworkSpec(LinkSpec(1000, 5000)))
    sink = Sink("sink")
    k.add(sink)
    k.add(Burst("a", "sink", 500))
    k.run(10**9)
    times = [t for t, _, _ in sink.got]
    assert [n for _, _, n in sink.got] == list(range(500))  # never overtaken
    assert times == sorted(times)
    assert min(times) >= 1000 and max(times) <= 6000
    assert len(set(times)) > 1  # jitter really applied


def test_location_matrix_latency():
    spec = NetworkSpec(LinkSpec(10_000), {("colo", "x"): LinkSpec(5)})
    k = make_kernel(spec)
    sink = Sink("sink", location="x")
    k.add(sink)
    k.add(Burst("near", "sink", 1, location="colo"))
    k.add(Burst("far", "sink", 1, location="home"))
    k.run(10**6)
    assert sink.got == [(5, 1, 0), (10_000, 2, 0)]


def test_negative_latency_refused():
    with pytest.raises(ValueError):
        LinkSpec(-1)


class Timer(Actor):
    def __init__(self, name):
        super().__init__(name)
        self.fired = []

    def on_start(self):
        self.wake_at(50, "b")
        self.wake_at(20, "a")
        self.wake_in(50, "c")

    @handles(Wakeup)
    def on_wake(self, msg, src):
        self.fired.append((self.now, msg.tag))
        if msg.tag == "a":
            with pytest.raises(SchedulingError):
                self.wake_at(self.now - 1)


def test_wakeups_fire_in_time_then_sequence_order():
    k = make_kernel()
    t = Timer("t")
    k.add(t)
    k.run(100)
    assert t.fired == [(20, "a"), (50, "b"), (50, "c")]
    assert k.wakeups_delivered == 3 and k.messages_delivered == 0
    assert k.env.now == 100 and k.now == 100


def test_unhandled_message_is_a_clear_error():
    k = make_kernel()
    k.add(Timer("t"))
    k.add(Burst("a", "t", 1))
    with pytest.raises(UnhandledMessage, match="t has no handler for Ping"):
        k.run(10**6)


def test_duplicate_actor_name_refused():
    k = make_kernel()
    k.add(Sink("x"))
    with pytest.raises(SchedulingError):
        k.add(Sink("x"))


def test_named_streams_do_not_depend_on_other_actors():
    s = RandomStreams(42)
    a1 = [s.python("alice").random() for _ in range(3)]
    # a new stream for another name does not shift alice's draws
    s.python("bob").random()
    a2 = [s.python("alice").random() for _ in range(3)]
    assert a1 == a2
    assert RandomStreams(43).python("alice").random() != a1[0]
    assert s.python("bob").random() != a1[0]
    n1 = s.numpy("alice").integers(0, 1 << 30, 5).tolist()
    assert n1 == s.numpy("alice").integers(0, 1 << 30, 5).tolist()


def test_actor_streams_unchanged_when_actor_added():
    def first_draw(extra):
        k = make_kernel(seed=9)
        k.add(Sink("sink"))
        if extra:
            k.add(Sink("newcomer"))
        target = Sink("target")
        k.add(target)
        return target.random.random()

    assert first_draw(False) == first_draw(True)


def test_advance_in_windows_equals_one_run():
    def trace(windows):
        k = make_kernel(NetworkSpec(LinkSpec(700, 300)), seed=3)
        sink = Sink("sink")
        k.add(sink)
        k.add(Burst("a", "sink", 50))
        for w in windows:
            k.advance(w)
        k.stop()
        return sink.got

    assert trace([10**6]) == trace([800, 900, 1000, 5000, 10**6])


def test_other_simpy_processes_interleave_at_their_own_times():
    """A plain SimPy process sees the kernel clock at its time and can inject deliveries."""
    k = make_kernel(NetworkSpec(LinkSpec(1000)))
    sink = Sink("sink")
    k.add(sink)
    k.add(Burst("a", "sink", 1))  # delivered at 1000
    seen = []

    def observer(env):
        yield env.timeout(500)
        seen.append((env.now, k.now, list(sink.got)))
        k.inject((700, 0, 0, 99, 0, Ping(42)))
        yield env.timeout(1000)
        seen.append((env.now, k.now, list(sink.got)))

    k.env.process(observer(k.env))
    k.run(5000)
    assert seen[0] == (500, 500, [])
    assert seen[1] == (1500, 1500, [(700, 0, 42), (1000, 1, 0)])
    assert k.env.now == 5000 and k.now == 5000


def test_many_small_advances_with_nothing_due_equal_one_run():
    """A real-time driver advances often with nothing due (the clocks move without a SimPy run):
    deliveries and a plain SimPy process see the same times as in one run."""

    def trace(steps):
        k = make_kernel(NetworkSpec(LinkSpec(1000)))
        sink = Sink("sink")
        k.add(sink)
        k.add(Burst("a", "sink", 3))
        seen = []

        def observer(env):
            yield env.timeout(2500)
            seen.append((env.now, k.now, list(sink.got)))

        k.env.process(observer(k.env))
        for t in steps:
            k.advance(t)
            assert k.env.now == t and k.now == t
        k.stop()
        return seen, sink.got

    assert trace([*range(0, 5000, 7), 5000]) == trace([5000])


class Spawner(Actor):
    """At each ping, starts a plain SimPy process that looks at the sink 300 ns later."""

    def __init__(self, name, sink):
        super().__init__(name)
        self.sink, self.seen = sink, []

    def on_start(self):
        for t in (1000, 1200, 2000):
            self.wake_at(t, t)

    @handles(Wakeup)
    def on_wake(self, msg, src):
        env = self.kernel.env

        def look(env):
            yield env.timeout(300)
            self.seen.append((env.now, self.kernel.now, len(self.sink.got)))

        env.process(look(env))


def test_simpy_events_started_during_delivery_run_at_their_time():
    """A SimPy process started by a handler in the middle of a stretch of deliveries (the kernel's
    loop runs outside SimPy until something else is due) runs at its own time, between the
    deliveries around it, however the run is cut into advances."""

    def trace(steps):
        k = make_kernel(NetworkSpec(LinkSpec(1100)))
        sink = Sink("sink")
        spawner = Spawner("spawner", sink)
        k.add(sink)
        k.add(spawner)
        k.add(Burst("a", "sink", 1))  # delivered at 1100
        for t in steps:
            k.advance(t)
            assert k.env.now == t and k.now == t
        return spawner.seen, sink.got

    seen, got = trace([5000])
    assert seen == [(1300, 1300, 1), (1500, 1500, 1), (2300, 2300, 1)]
    assert got == [(1100, 2, 0)]
    assert trace([1000, 1250, 1299, 1300, 1301, 2200, 5000]) == (seen, got)
    assert trace(range(0, 5001, 50)) == (seen, got)
