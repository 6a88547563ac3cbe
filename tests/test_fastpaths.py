"""The hot path's shortcuts give exactly what the plain code gives: fan-out sends, the kernel's two
queues, the messages' constructor, the book's top of book and one-level depth, the ladder's requote."""

import dataclasses
import pickle
import random
from types import SimpleNamespace

import pytest

from actors import messages
from actors.exchange.book import OrderBook
from actors.makers import LadderMaker, LadderParams
from actors.trader import OpenOrder
from sim.actor import Actor, Wakeup, handles
from sim.kernel import Kernel
from sim.network import LinkSpec, Network, NetworkSpec
from sim.rng import RandomStreams


@dataclasses.dataclass(frozen=True, slots=True)
class Tick:
    n: int


class Tape(Actor):
    """Records what it gets: (time, src, payload)."""

    def __init__(self, name):
        super().__init__(name)
        self.got = []

    @handles(Tick)
    def on_tick(self, msg, src):
        self.got.append((self.now, src, msg.n))

    @handles(Wakeup)
    def on_wake(self, msg, src):
        self.got.append((self.now, src, ("wake", msg.tag)))


class Caster(Actor):
    """Sends ticks to every tape, with ``send_all`` or a ``send`` each, and sets timers between."""

    def __init__(self, name, tapes, fan_out):
        super().__init__(name)
        self.tapes, self.fan_out = tapes, fan_out

    def on_start(self):
        self.ids = [self.lookup(t) for t in self.tapes]
        self.wake_at(0, 0)

    @handles(Wakeup)
    def on_wake(self, msg, src):
        n = msg.tag
        if self.fan_out:
            self.send_all(self.ids, Tick(n))
        else:
            for dst in self.ids:
                self.send(dst, Tick(n))
        self.send(self.ids[n % len(self.ids)], Tick(-n))
        if n < 200:
            self.wake_in(300 + 37 * (n % 5), n + 1)  # timers land among the messages in flight


def _trace(fan_out, kernel_cls=Kernel):
    kernel = kernel_cls(Network(NetworkSpec(LinkSpec(1000, 700))), RandomStreams(5))
    tapes = [Tape(f"t{i}") for i in range(7)]
    for tape in tapes:
        kernel.add(tape)
    kernel.add(Caster("caster", [t.name for t in tapes], fan_out))
    kernel.run(1_000_000)
    return [t.got for t in tapes], kernel.messages_delivered, kernel.wakeups_delivered


class WrappedPostKernel(Kernel):
    """A kernel whose ``post`` is not the stock one (as a runtime's or a test's): ``send_all``
    must go through it once per destination."""

    posted = 0

    def post(self, sender, dst, msg, priority, seq):
        WrappedPostKernel.posted += 1
        super().post(sender, dst, msg, priority, seq)


def test_send_all_delivers_what_a_send_per_destination_delivers():
    reference = _trace(fan_out=False)
    assert reference[1] == 201 * 8 and reference[2] == 201
    assert _trace(fan_out=True) == reference
    WrappedPostKernel.posted = 0
    assert _trace(fan_out=True, kernel_cls=WrappedPostKernel) == reference
    assert WrappedPostKernel.posted == 201 * 8


def test_timers_and_messages_interleave_in_key_order():
    """A timer and a message due at the same time come in (priority, sender, sequence) order,
    whichever of the kernel's two queues holds them."""
    got = []

    class Both(Actor):
        def on_start(self):
            me = self.lookup(self.name)
            self.wake_at(500, "timer-late", priority=1)
            self.send(me, Tick(1))  # arrives at 500 (link latency), priority 0
            self.wake_at(500, "timer-early", priority=-1)

        @handles(Tick)
        def on_tick(self, msg, src):
            got.append((self.now, "tick"))

        @handles(Wakeup)
        def on_wake(self, msg, src):
            got.append((self.now, msg.tag))

    kernel = Kernel(Network(NetworkSpec(LinkSpec(500))), RandomStreams(1))
    kernel.add(Both("both"))
    assert kernel.next_time() is None
    kernel.start()
    assert kernel.next_time() == 500
    kernel.run(1000)
    assert got == [(500, "timer-early"), (500, "tick"), (500, "timer-late")]


MESSAGE_CLASSES = [
    v
    for v in vars(messages).values()
    if isinstance(v, type) and dataclasses.is_dataclass(v) and v.__module__ == messages.__name__
]


@pytest.mark.parametrize("cls", [*MESSAGE_CLASSES, Wakeup], ids=lambda c: c.__name__)
def test_messages_are_still_plain_frozen_dataclasses(cls):
    fields = dataclasses.fields(cls)
    args = [f"v{i}" for i, _ in enumerate(fields)]
    msg = cls(*args)
    assert [getattr(msg, f.name) for f in fields] == args
    assert msg == cls(**{f.name: a for f, a in zip(fields, args, strict=True)})
    assert hash(msg) == hash(cls(*args)) and pickle.loads(pickle.dumps(msg)) == msg
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(msg, fields[0].name, "other")
    required = [f for f in fields if f.default is dataclasses.MISSING]
    if required:
        with pytest.raises(TypeError):
            cls()
    defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
    built = cls(*args[: len(required)])
    assert all(getattr(built, name) == value for name, value in defaults.items())


def test_top_and_one_level_depth_match_the_full_depth():
    rnd = random.Random(11)
    book = OrderBook("XYZ")
    live = []
    for n in range(1, 3000):
        roll = rnd.random()
        if roll < 0.55 or not live:
            side = rnd.choice("BS")
            price = rnd.randint(95, 105) if side == "B" else rnd.randint(96, 106)
            book.submit(n, side, rnd.randint(1, 5) * 100, price)
            live.append(n)
        elif roll < 0.85:
            book.cancel(live.pop(rnd.randrange(len(live))))
        else:
            book.replace(rnd.choice(live), qty=rnd.randint(1, 5) * 100, price=rnd.randint(95, 106))
        bids, asks = book.depth()
        assert book.depth(1) == (bids[:1], asks[:1])
        assert book.depth(3) == (bids[:3], asks[:3])
        bb, ba = book.best_bid(), book.best_ask()
        assert book.top() == (bb[0] if bb else None, bb[1] if bb else 0, ba[0] if ba else None, ba[1] if ba else 0)


def _reference_requote(m):
    """``LadderMaker.requote`` as it was written first: a side at a time, each with its own look
    at the slots, the levels from a comprehension."""
    p = m.p
    m._last_requote = m.kernel.now
    m._quoted2 = m.centre2
    c2 = m.quote_centre2()
    h2, s2 = 2 * p.half_spread_ticks, 2 * p.spacing_ticks
    levels = range(p.levels)
    pos, unloading, slots = m.position, m.unloading, m.slots
    for side in ("B", "S"):
        if side == "B":
            blocked = (pos > 0 and unloading) or pos >= p.max_inventory
            wanted = [] if blocked else [x for i in levels if (x := (c2 - h2 - i * s2) // 2) > 0]
        else:
            blocked = (pos < 0 and unloading) or pos <= -p.max_inventory
            wanted = [] if blocked else [-((-(c2 + h2 + i * s2)) // 2) for i in levels]
        keep = set(wanted)
        spare = []
        for (sd, price), oid in list(slots.items()):
            if sd != side:
                continue
            if oid not in m.open_orders:
                del slots[(sd, price)]
            elif price not in keep:
                del slots[(sd, price)]
                spare.append(oid)
        for price in wanted:
            if (side, price) in slots:
                continue
            if spare:
                oid = spare.pop()
                m.replace(oid, qty=p.size, price=price)
                slots[(side, price)] = oid
            else:
                slots[(side, price)] = m.submit(side, p.size, price, post_only=True)
        for oid in spare:
            m.cancel(oid)


def _ladder_in_state(seed):
    """A ladder maker in a random state: centre, inventory, unloading, slots (some orders gone)."""
    rnd = random.Random(seed)
    params = LadderParams(
        levels=rnd.randint(1, 6),
        half_spread_ticks=rnd.randint(1, 4),
        spacing_ticks=rnd.randint(1, 3),
        size=100,
        skew_ticks_per_lot=rnd.choice([0.0, 0.05, 0.3]),
        max_inventory=rnd.choice([500, 20_000]),
    )
    m = LadderMaker("mm", "XYZ", params, 100, 0, 10**12)
    m.kernel = SimpleNamespace(now=10**9)
    m.sent = []
    m.send = lambda dst, msg, priority=0: m.sent.append(msg)
    m.centre2 = rnd.choice([rnd.randint(0, 30), rnd.randint(180, 220)])
    m.position = rnd.choice([0, rnd.randint(-8, 8) * 100])
    m.unloading = rnd.random() < 0.3
    for _ in range(rnd.randint(0, 14)):
        side = rnd.choice("BS")
        price = m.centre2 // 2 + rnd.randint(-10, 10) * (-1 if side == "B" else 1)
        oid = m.new_order_id()
        m.slots[(side, price)] = oid
        if rnd.random() < 0.85:
            m.open_orders[oid] = OpenOrder(oid, side, price, 100)
    return m


@pytest.mark.parametrize("seed", range(300))
def test_ladder_requote_sends_what_the_side_by_side_requote_sends(seed):
    fast, plain = _ladder_in_state(seed), _ladder_in_state(seed)
    fast.requote()
    _reference_requote(plain)
    assert fast.sent == plain.sent
    assert list(fast.slots.items()) == list(plain.slots.items())
    assert fast.open_orders == plain.open_orders and fast._next_order == plain._next_order
