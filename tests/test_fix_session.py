"""FIX 4.4 session layer in simulated time: two FixSessions inside two actors in a Kernel."""

from __future__ import annotations

import itertools

import quickfix as fix
import quickfix44 as fix44
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fix.session import (
    FixFrame,
    FixLinkDown,
    FixLinkUp,
    FixSession,
    SessionState,
    default_data_dictionary,
    utc_timestamp,
)
from sim.actor import Actor, Wakeup, handles
from sim.kernel import Kernel
from sim.network import LinkSpec, Network, NetworkSpec
from sim.rng import RandomStreams

S = 1_000_000_000
MS = 1_000_000
SOH = "\x01"


# -- helpers -----------------------------------------------------------------------------------
def tags(raw: str) -> dict[int, str]:
    """Fields of a raw FIX string (last value wins; fine for these flat messages)."""
    out = {}
    for part in raw.split(SOH):
        if "=" in part:
            k, v = part.split("=", 1)
            out[int(k)] = v
    return out


_HEADER_TRAILER = {8, 9, 10, 34, 35, 49, 52, 56}


def body_fields(msg: fix.Message) -> list[tuple[int, str]]:
    return [(t, v) for t, v in tags(msg.toString()).items() if t not in _HEADER_TRAILER]


def execution_report(i: int) -> fix.Message:
    er = fix44.ExecutionReport()
    for f in (
        fix.OrderID(f"O{i}"),
        fix.ExecID(f"E{i}"),
        fix.ExecType(fix.ExecType_NEW),
        fix.OrdStatus(fix.OrdStatus_NEW),
        fix.Side(fix.Side_BUY),
        fix.Symbol("XYZ"),
        fix.LeavesQty(100),
        fix.CumQty(0),
        fix.AvgPx(0),
    ):
        er.setField(f)
    return er


def new_order(i: int) -> fix.Message:
    nos = fix44.NewOrderSingle()
    for f in (
        fix.ClOrdID(f"C{i}"),
        fix.Symbol("XYZ"),
        fix.Side(fix.Side_SELL),
        fix.TransactTime(),
        fix.OrderQty(10),
        fix.OrdType(fix.OrdType_LIMIT),
        fix.Price(100.25),
    ):
        nos.setField(f)
    nos.setField(60, utc_timestamp(0))  # deterministic TransactTime
    return nos


def craft(mtype: str, sender: str, target: str, seq: int, body=(), header=(), t_ns: int = 0) -> str:
    """A raw frame built by hand (for injecting duplicates, stale seq numbers, ...)."""
    msg = fix.Message()
    h = msg.getHeader()
    for tag, value in ((8, "FIX.4.4"), (35, mtype), (49, sender), (56, target), (34, str(seq))):
        h.setField(tag, value)
    h.setField(52, utc_timestamp(t_ns))
    for tag, value in header:
        h.setField(tag, value)
    for tag, value in body:
        msg.setField(tag, value)
    return msg.toString()


class FixPeer(Actor):
    """An actor embedding one FixSession: the pattern an OMS or a gateway actor follows."""

    def __init__(self, name, peer, sender, target, *, initiator, drop=None, mute=None, script=(), **session_kw):
        super().__init__(name)
        self.peer_name = peer
        self.link_up = True
        self.drop = drop  # predicate(raw) on frames received: True = lost in transit
        self.mute = mute  # predicate(now) on frames sent: True = lost in transit
        self.script = list(script)  # [(t_ns, fn(self))]
        self.wire: list[tuple[int, str, str]] = []  # (t, "out"/"in", raw) as the session saw it
        self.lost: list[str] = []  # frames that reached us while our link was down
        self.dropped: list[str] = []
        self.apps: list[str] = []  # raw business messages delivered, in delivery order
        self.admin: list[str] = []
        self.states: list[tuple[int, str]] = []
        self.session = FixSession(
            sender,
            target,
            send_raw=self._send_raw,
            now_ns=lambda: self.now,
            on_app=lambda m: self.apps.append(m.toString()),
            on_admin=lambda m: self.admin.append(m.toString()),
            on_state=lambda old, new: self.states.append((self.now, new.value)),
            set_timer=lambda t: self.wake_at(t, "fix"),
            initiator=initiator,
            **session_kw,
        )

    def on_start(self):
        self.peer = self.lookup(self.peer_name)
        for i, (t, _) in enumerate(self.script):
            self.wake_at(t, i)
        self.session.connect()

    def _send_raw(self, raw):
        self.wire.append((self.now, "out", raw))
        if self.mute is None or not self.mute(self.now):
            self.send(self.peer, FixFrame(raw))

    @handles(FixFrame)
    def on_frame(self, msg, src):
        if not self.link_up:
            self.lost.append(msg.raw)
        elif self.drop is not None and self.drop(msg.raw):
            self.dropped.append(msg.raw)
        else:
            self.wire.append((self.now, "in", msg.raw))
            self.session.on_raw(msg.raw)

    @handles(Wakeup)
    def on_wake(self, msg, src):
        if msg.tag == "fix":
            self.session.on_timer()
        else:
            self.script[msg.tag][1](self)

    @handles(FixLinkDown)
    def on_link_down(self, msg, src):
        self.link_up = False
        self.session.disconnect(msg.reason)

    @handles(FixLinkUp)
    def on_link_up(self, msg, src):
        self.link_up = True
        self.session.connect()

    # views
    def sent(self, mtype):
        return [raw for _, d, raw in self.wire if d == "out" and tags(raw)[35] == mtype]

    def received(self, mtype):
        return [raw for _, d, raw in self.wire if d == "in" and tags(raw)[35] == mtype]


class Scenario(Actor):
    """Sends link events to both peers (acceptor first) at scripted times."""

    def __init__(self, name, events):
        super().__init__(name)
        self.events = list(events)  # [(t_ns, message)]

    def on_start(self):
        for i, (t, _) in enumerate(self.events):
            self.wake_at(t, i)

    @handles(Wakeup)
    def on_wake(self, msg, src):
        event = self.events[msg.tag][1]
        self.send(self.lookup("gateway"), event)
        self.send(self.lookup("oms"), event)


def pair(latency_ns=1 * MS, oms_kw=None, gw_kw=None, events=(), seed=1):
    """Kernel with an initiator 'oms' (DESK) and an acceptor 'gateway' (EXCH)."""
    kernel = Kernel(Network(NetworkSpec(LinkSpec(latency_ns))), RandomStreams(seed))
    gw = FixPeer("gateway", "oms", "EXCH", "DESK", initiator=False, **(gw_kw or {}))
    oms = FixPeer("oms", "gateway", "DESK", "EXCH", initiator=True, **(oms_kw or {}))
    kernel.add(gw)
    kernel.add(oms)
    if events:
        kernel.add(Scenario("scenario", events))
    return kernel, oms, gw


def burst(n, start_ns, every_ns, make=execution_report):
    return [(start_ns + i * every_ns, lambda a, i=i: a.session.send_app(make(i))) for i in range(n)]


def exec_ids(peer):
    return [tags(raw)[17] for raw in peer.apps]


def assert_valid_frames(peer):
    dd = default_data_dictionary()
    for _, _, raw in peer.wire:
        msg = fix.Message()
        msg.setString(raw, True, dd)
        dd.validate(msg)


# -- logon, heartbeat, test request ------------------------------------------------------------
def test_logon_handshake():
    kernel, oms, gw = pair()
    kernel.run(1 * S)
    assert oms.session.state is SessionState.ACTIVE and gw.session.state is SessionState.ACTIVE
    logon, answer = oms.sent("A")[0], gw.sent("A")[0]
    assert logon.startswith("8=FIX.4.4\x019=")
    t = tags(logon)
    assert (t[35], t[34], t[49], t[56], t[98], t[108]) == ("A", "1", "DESK", "EXCH", "0", "30")
    assert t[52] == "20260105-00:00:00.000"
    assert 141 not in t
    a = tags(answer)
    assert (a[34], a[49], a[56], a[108]) == ("1", "EXCH", "DESK", "30")
    assert a[52] == "20260105-00:00:00.001"  # answered one link latency later
    assert oms.session.next_out_seq == oms.session.next_in_seq == 2
    assert gw.session.next_out_seq == gw.session.next_in_seq == 2
    assert oms.states == [(0, "logon_sent"), (2 * MS, "active")]
    assert gw.states == [(0, "awaiting_logon"), (1 * MS, "active")]
    assert_valid_frames(oms)
    assert_valid_frames(gw)


def test_heartbeats_on_idle_session():
    kernel, oms, gw = pair(oms_kw={"heartbeat_s": 30})
    kernel.run(125 * S)
    for peer in (oms, gw):
        hb_times = [t for t, d, raw in peer.wire if d == "out" and tags(raw)[35] == "0"]
        assert len(hb_times) == 4
        assert all(29 * S < b - a <= 30 * S + 10 * MS for a, b in itertools.pairwise(hb_times))
        assert peer.session.counters.test_requests == 0
        assert peer.session.state is SessionState.ACTIVE
        assert peer.session.counters.rejects == 0
    assert gw.session.heartbeat_s == 30


def test_acceptor_adopts_initiator_heartbeat_interval():
    kernel, _oms, gw = pair(oms_kw={"heartbeat_s": 5})
    kernel.run(21 * S)
    assert gw.session.heartbeat_s == 5
    assert len(gw.sent("0")) == 4


def test_test_request_then_disconnect_when_peer_goes_silent():
    kernel, oms, _gw = pair(gw_kw={"mute": lambda now: now > 1 * S})
    kernel.run(200 * S)
    test_requests = [(t, tags(raw)[112]) for t, d, raw in oms.wire if d == "out" and tags(raw)[35] == "1"]
    # last frame from the gateway arrived at 2 ms: TestRequest at +1.2 x 30 s
    assert test_requests == [(2 * MS + 36 * S, "TEST1")]
    assert oms.session.state is SessionState.DISCONNECTED
    assert oms.states[-1] == (2 * MS + 72 * S, "disconnected")
    assert "TestRequest" in oms.session.last_disconnect_reason
    # while its TestRequest is unanswered it sends no Heartbeat (quickfix does the same): after the
    # TestRequest at 36 s the next frame would be a Heartbeat at 66 s, before the 72 s disconnect
    # (failed before: one was sent)
    heartbeats = [t for t, d, raw in oms.wire if d == "out" and tags(raw)[35] == "0"]
    assert not [t for t in heartbeats if t > 2 * MS + 36 * S]


def test_test_request_answered_and_lost_heartbeat_gap_filled():
    # the gateway's 30 s heartbeat is lost; the OMS asks, the answer reveals the gap
    kernel, oms, gw = pair(gw_kw={"mute": lambda now: 25 * S < now < 35 * S})
    kernel.run(100 * S)
    assert oms.session.state is SessionState.ACTIVE
    assert oms.session.counters.test_requests == 1
    answer = [tags(r) for r in oms.received("0") if 112 in tags(r)]
    assert [a[112] for a in answer] == ["TEST1"]
    assert oms.session.counters.resend_requests == 1
    assert gw.session.counters.gap_fills >= 1
    assert oms.session.next_in_seq == gw.session.next_out_seq
    assert gw.session.next_in_seq == oms.session.next_out_seq
    assert oms.session.counters.errors == gw.session.counters.errors == 0


# -- sequence gaps and resend ------------------------------------------------------------------
def _drop_first(seq: int, mtype: str = "8"):
    state = {"done": False}

    def drop(raw):
        t = tags(raw)
        if not state["done"] and t[35] == mtype and t[34] == str(seq) and 43 not in t:
            state["done"] = True
            return True
        return False

    return drop


def test_gap_from_dropped_frame_is_recovered_in_order():
    # ER i has MsgSeqNum i + 2 (Logon is 1); drop ER 4 in transit
    kernel, oms, gw = pair(gw_kw={"script": burst(20, 1 * S, 10 * MS)}, oms_kw={"drop": _drop_first(6)})
    kernel.run(5 * S)
    assert len(oms.dropped) == 1
    assert exec_ids(oms) == [f"E{i}" for i in range(20)]
    seqs = [int(tags(raw)[34]) for raw in oms.apps]
    assert seqs == list(range(2, 22))
    assert oms.session.counters.resend_requests == 1
    assert tags(oms.sent("2")[0])[7] == "6"
    assert gw.session.counters.resent >= 1
    recovered = tags(oms.apps[4])
    assert recovered[43] == "Y" and recovered[122] < recovered[52]
    assert oms.session.counters.app_received == 20
    assert_valid_frames(oms)


def test_lost_last_message_recovered_by_next_heartbeat():
    kernel, oms, _gw = pair(gw_kw={"script": burst(5, 1 * S, 10 * MS)}, oms_kw={"drop": _drop_first(6)})
    kernel.run(20 * S)
    assert exec_ids(oms) == ["E0", "E1", "E2", "E3"]  # nothing tells the OMS yet
    kernel.run(40 * S)
    assert exec_ids(oms) == [f"E{i}" for i in range(5)]


def test_resend_of_admin_range_is_gap_filled():
    # heartbeats (admin) then a business message; the OMS drops two heartbeats
    lost = {"n": 0}

    def drop(raw):
        if tags(raw)[35] == "0" and lost["n"] < 2:
            lost["n"] += 1
            return True
        return False

    kernel, oms, gw = pair(gw_kw={"script": burst(1, 70 * S, 0)}, oms_kw={"drop": drop, "heartbeat_s": 30})
    kernel.run(75 * S)
    assert exec_ids(oms) == ["E0"]
    fills = [tags(r) for r in oms.received("4")]
    assert len(fills) == 1
    f = fills[0]
    # lost: the 30 s heartbeat (seq 2) and the answer to the OMS's TestRequest (seq 3); the
    # 60 s heartbeat (seq 4) reveals the gap; all three are admin, filled up to the ER (seq 5)
    assert oms.session.counters.test_requests == 1
    assert (f[123], f[43], f[34], f[36]) == ("Y", "Y", "2", "5")
    assert 122 in f
    assert tags(oms.apps[0])[34] == "5"
    assert oms.session.next_in_seq == gw.session.next_out_seq


def _burst_with_disconnect(latency_ns=5 * MS):
    gw_script = burst(100, 1 * S, 2 * MS)  # ER every 2 ms from 1.000 s to 1.198 s
    oms_script = burst(10, 1 * S + 1 * MS, 20 * MS, make=new_order)
    events = [(1100 * MS, FixLinkDown(reason="cable pulled")), (6100 * MS, FixLinkUp())]
    kernel, oms, gw = pair(
        latency_ns=latency_ns,
        gw_kw={"script": gw_script},
        oms_kw={"script": oms_script},
        events=events,
    )
    kernel.run(20 * S)
    return oms, gw


def test_disconnect_mid_burst_recovers_every_message_exactly_once():
    oms, gw = _burst_with_disconnect()
    assert oms.lost and gw.lost  # frames really were in flight when the link dropped
    assert exec_ids(oms) == [f"E{i}" for i in range(100)]
    seqs = [int(tags(raw)[34]) for raw in oms.apps]
    assert seqs == sorted(seqs) and len(set(seqs)) == 100
    assert [tags(raw)[11] for raw in gw.apps] == [f"C{i}" for i in range(10)]
    for peer in (oms, gw):
        s = peer.session
        assert s.state is SessionState.ACTIVE
        assert s.counters.disconnects == 1
        assert s.counters.errors == s.counters.app_errors == s.counters.rejects == 0
    assert oms.session.next_in_seq == gw.session.next_out_seq
    assert gw.session.next_in_seq == oms.session.next_out_seq
    # the reconnect Logon carried the next sequence numbers, no reset
    relogon = tags(oms.sent("A")[1])
    assert 141 not in relogon and int(relogon[34]) > 1
    assert gw.session.counters.resent > 0 and oms.session.counters.resent > 0
    possdup = [tags(raw) for raw in oms.apps if tags(raw).get(43) == "Y"]
    assert possdup and all(t[122] < t[52] for t in possdup)
    # resends happened after the relogon, 5 s after the drop
    assert min(t for t, d, raw in oms.wire if d == "in" and tags(raw).get(43) == "Y") > 6 * S
    assert_valid_frames(oms)
    assert_valid_frames(gw)


def test_runs_are_deterministic():
    oms1, gw1 = _burst_with_disconnect(latency_ns=3 * MS)
    oms2, gw2 = _burst_with_disconnect(latency_ns=3 * MS)
    assert oms1.wire == oms2.wire and gw1.wire == gw2.wire
    assert len(oms1.wire) + len(gw1.wire) > 200


def test_possdup_duplicates_are_ignored():
    def ask_everything_again(peer):
        peer.session.send_resend_request(1, 0)

    def replay_one(peer):
        raw = peer.apps[0]
        t = tags(raw)
        dup = craft("8", "EXCH", "DESK", int(t[34]), header=((43, "Y"), (122, t[52])), t_ns=peer.now)
        peer.session.on_raw(dup.replace("\x0110=", "\x0117=E0\x0110=", 0))  # harmless: ignored by seq
        peer.session.on_raw(dup)

    kernel, oms, gw = pair(
        gw_kw={"script": burst(10, 1 * S, 10 * MS)},
        oms_kw={"script": [(2 * S, ask_everything_again), (3 * S, replay_one)]},
    )
    kernel.run(4 * S)
    assert exec_ids(oms) == [f"E{i}" for i in range(10)]
    assert gw.session.counters.resent == 10
    assert oms.session.counters.duplicates >= 10 + 1
    assert oms.session.state is SessionState.ACTIVE
    assert oms.session.counters.rejects == 0


# -- invalid input -----------------------------------------------------------------------------
def test_garbage_and_invalid_messages_get_a_session_reject():
    def missing_exec_id(peer):
        er = execution_report(99)
        er.removeField(17)
        peer.session.send_app(er)

    def bad_side(peer):
        er = execution_report(98)
        er.setField(54, "Z")
        peer.session.send_app(er)

    def feed_garbage(peer):
        peer.session.on_raw("garbage")
        peer.session.on_raw("")
        good = craft("0", "EXCH", "DESK", 500)
        peer.session.on_raw(good.replace("\x0110=", "\x0110=9", 1))  # bad checksum
        peer.session.on_raw(good.replace("9=", "9=1", 1))  # bad body length

    kernel, oms, gw = pair(
        gw_kw={"script": [(1 * S, missing_exec_id), (1100 * MS, bad_side), *burst(3, 2 * S, 10 * MS)]},
        oms_kw={"script": [(1500 * MS, feed_garbage)]},
    )
    kernel.run(3 * S)
    rejects = [tags(r) for r in oms.sent("3")]
    assert len(rejects) == 6
    assert (rejects[0][45], rejects[0][371], rejects[0][372], rejects[0][373]) == ("2", "17", "8", "1")
    assert (rejects[1][45], rejects[1][371], rejects[1][372], rejects[1][373]) == ("3", "54", "8", "5")
    assert [r[373] for r in rejects[2:]] == ["99"] * 4
    assert all(58 in r for r in rejects)
    assert exec_ids(oms) == ["E0", "E1", "E2"]  # valid traffic still flows, nothing invalid delivered
    assert oms.session.state is SessionState.ACTIVE
    assert oms.session.counters.garbled == 4
    assert oms.session.counters.errors == 0
    assert gw.session.counters.rejects_received == 6
    assert oms.session.next_in_seq == gw.session.next_out_seq  # garbled frames consumed no seq


def test_unknown_message_type_and_wrong_compid():
    def send_unknown(peer):
        peer.session.on_raw(craft("ZZ", "EXCH", "DESK", peer.session.next_in_seq))

    def wrong_compid(peer):
        peer.session.on_raw(craft("0", "SPOOF", "DESK", peer.session.next_in_seq))

    kernel, oms, _gw = pair(oms_kw={"script": [(1 * S, send_unknown), (2 * S, wrong_compid)]})
    kernel.run(3 * S)
    rejects = [tags(r) for r in oms.sent("3")]
    assert [r[373] for r in rejects] == ["11", "9"]
    assert oms.session.state is SessionState.DISCONNECTED
    assert "CompID" in oms.session.last_disconnect_reason


def test_too_low_seq_without_possdup_logs_out():
    def stale(peer):
        peer.session.on_raw(craft("0", "DESK", "EXCH", 1, t_ns=peer.now))

    kernel, oms, gw = pair(gw_kw={"script": [*burst(3, 1 * S, 10 * MS), (2 * S, stale)]})
    kernel.run(3 * S)
    logout = tags(gw.sent("5")[0])
    assert logout[58].startswith("MsgSeqNum too low, expecting 2 but received 1")
    assert gw.session.state is SessionState.DISCONNECTED
    assert oms.session.state is SessionState.DISCONNECTED  # answered the Logout, then dropped
    assert oms.session.last_logout_text == logout[58]


def test_logout_handshake():
    kernel, oms, gw = pair(oms_kw={"script": [(1 * S, lambda p: p.session.logout("end of day"))]})
    kernel.run(2 * S)
    assert tags(oms.sent("5")[0])[58] == "end of day"
    assert len(gw.sent("5")) == 1
    assert oms.session.last_disconnect_reason == "logout complete"
    assert gw.session.last_logout_text == "end of day"
    assert oms.states[-1] == (1 * S + 2 * MS, "disconnected")
    assert gw.states[-1] == (1 * S + 1 * MS, "disconnected")


def test_logout_times_out_when_peer_never_answers():
    kernel, oms, _gw = pair(
        gw_kw={"mute": lambda now: now > 500 * MS},
        oms_kw={"script": [(1 * S, lambda p: p.session.logout())]},
    )
    kernel.run(5 * S)
    assert oms.session.last_disconnect_reason == "logout timeout"
    assert oms.states[-1] == (3 * S, "disconnected")


# -- sequence reset ----------------------------------------------------------------------------
def test_sequence_reset_reset_moves_expected_seq():
    kernel, oms, _gw = pair(
        gw_kw={"script": [(1 * S, lambda p: p.session.send_sequence_reset(50)), *burst(2, 2 * S, 10 * MS)]}
    )
    kernel.run(3 * S)
    assert [int(tags(r)[34]) for r in oms.apps] == [50, 51]
    assert oms.session.next_in_seq == 52
    assert oms.session.counters.resend_requests == 0


def test_reset_on_logon_restarts_both_sides_at_one():
    events = [(2 * S, FixLinkDown()), (3 * S, FixLinkUp())]
    kernel, oms, gw = pair(
        oms_kw={"reset_on_logon": True, "script": burst(3, 1 * S, 10 * MS, make=new_order)},
        events=events,
    )
    kernel.run(5 * S)
    logons = [tags(r) for r in oms.sent("A")]
    assert [(t[34], t[141]) for t in logons] == [("1", "Y"), ("1", "Y")]
    assert [(tags(r)[34], tags(r)[141]) for r in gw.sent("A")] == [("1", "Y"), ("1", "Y")]
    assert gw.session.next_in_seq == oms.session.next_out_seq == 2
    assert oms.session.state is gw.session.state is SessionState.ACTIVE


def test_messages_sent_while_down_are_stored_and_recovered():
    events = [(1 * S, FixLinkDown()), (4 * S, FixLinkUp())]
    kernel, oms, gw = pair(gw_kw={"script": burst(5, 2 * S, 100 * MS)}, events=events)
    kernel.run(3 * S)
    assert gw.session.counters.app_sent == 5 and gw.session.store_size == 5
    assert oms.apps == []
    kernel.run(6 * S)
    assert exec_ids(oms) == [f"E{i}" for i in range(5)]


# -- robustness --------------------------------------------------------------------------------
class _Loop:
    """Two sessions wired directly (no kernel), for fuzzing on_raw."""

    def __init__(self):
        self.now = 0
        self.a_out: list[str] = []
        self.b_out: list[str] = []
        self.apps: list[fix.Message] = []
        self.a = FixSession(
            "A", "B", send_raw=self.a_out.append, now_ns=lambda: self.now, on_app=self.apps.append, initiator=True
        )
        self.b = FixSession(
            "B", "A", send_raw=self.b_out.append, now_ns=lambda: self.now, on_app=self.apps.append, initiator=False
        )
        self.b.connect()
        self.a.connect()
        self.pump()

    def pump(self):
        for _ in range(1000):  # a reject ping-pong would be a bug
            if not (self.a_out or self.b_out):
                return
            while self.a_out:
                self.b.on_raw(self.a_out.pop(0))
            while self.b_out:
                self.a.on_raw(self.b_out.pop(0))
        raise AssertionError("the sessions never went quiet")


_VALID = craft("8", "B", "A", 2, body=body_fields(execution_report(0)))


_FUZZ = st.one_of(
    st.text(max_size=200),
    st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 40), st.text(max_size=8)).map(
        lambda c: _VALID[: c[0]] + c[2] + _VALID[c[0] + c[1] :]
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_FUZZ, min_size=1, max_size=3))
def test_fuzzed_frames_never_raise(frames):
    loop = _Loop()
    assert loop.a.state is SessionState.ACTIVE
    for raw in frames:
        loop.a.on_raw(raw)
    loop.pump()
    assert loop.a.counters.errors == 0 and loop.b.counters.errors == 0
    # the session still takes valid traffic, unless the fuzzed frame was a well-framed message
    # that legitimately consumed the peer's next MsgSeqNum (then the real one is too low: Logout)
    if loop.a.state is SessionState.ACTIVE and loop.a.next_in_seq == loop.b.next_out_seq:
        loop.b.send_app(execution_report(1))
        loop.pump()
        assert loop.apps and loop.apps[-1].getField(17) == "E1"


def test_app_handler_exceptions_are_contained():
    def boom(msg):
        raise RuntimeError("bug in the owner")

    out: list[str] = []
    s = FixSession("A", "B", send_raw=out.append, now_ns=lambda: 0, on_app=boom, initiator=False)
    s.connect()
    s.on_raw(craft("A", "B", "A", 1, body=[(98, "0"), (108, "30")]))
    assert s.state is SessionState.ACTIVE
    s.on_raw(craft("8", "B", "A", 2, body=body_fields(execution_report(0))))
    assert s.counters.app_errors == 1 and s.next_in_seq == 3
    assert isinstance(s.last_error, RuntimeError)


def test_utc_timestamp():
    assert utc_timestamp(0) == "20260105-00:00:00.000"
    assert utc_timestamp(86_400 * S + 1_234_567_891) == "20260106-00:00:01.234"
    assert utc_timestamp(1_234_567_891, 9) == "20260105-00:00:01.234567891"


# -- fast paths: the same bytes and the same fields as quickfix's ------------------------------
def _er_variants():
    from fix.codec import Codec

    codec = Codec(0.01)
    base = dict(order_id="4294967297", exec_id="12", exec_type="0", ord_status="0", side="B", symbol="XYZ",
                leaves_qty=100, cum_qty=0, avg_px="0", now_ns=123_456_789)  # fmt: skip
    yield codec.execution_report(**base)
    yield codec.execution_report(**base, cl_ord_id="c-1", order_qty=100, price_ticks=10025, ord_type="LIMIT", tif="DAY")
    yield codec.execution_report(
        **{**base, "exec_type": "F", "ord_status": "2", "leaves_qty": 0, "cum_qty": 100, "avg_px": "100.25"},
        cl_ord_id="c 2=x", orig_cl_ord_id="c-1", order_qty=100, price_ticks=10025, ord_type="MARKET", tif="IOC",
        post_only=True, last_qty=100, last_px_ticks=10025, liquidity="taker", account="ACC", exec_ref_id="",
        ord_rej_reason="6", text="a\x01b",
    )  # fmt: skip
    yield codec.execution_report(**base, text="näive")  # not ASCII: quickfix's own path


def test_prebuilt_execution_report_is_framed_exactly_as_quickfix_frames_it():
    for er in _er_variants():
        fast_out: list[str] = []
        slow_out: list[str] = []
        kw = dict(now_ns=lambda: 5 * S + 7, on_app=print, initiator=False)
        fast = FixSession("DESKSIM", "CLIENT1", send_raw=fast_out.append, **kw)
        slow = FixSession("DESKSIM", "CLIENT1", send_raw=slow_out.append, **kw)
        for s in (fast, slow):
            s.state = SessionState.ACTIVE
            s.next_out_seq = 41
        copy = fix.Message(er)  # a plain Message: stamped by quickfix
        assert fast.send_app(er) == slow.send_app(copy) == 41
        assert fast_out == slow_out and len(fast_out) == 1
        assert er.toString() == copy.toString() == fast_out[0]  # stamped in place as well
        assert fast.send_app(er) == 42  # sent again: a new MsgSeqNum, the same body
        assert tags(fast_out[1])[34] == "42" and body_fields(er) == body_fields(copy)


def test_prebuilt_changed_after_building_goes_through_quickfix():
    er = next(_er_variants())
    er.setField(58, "changed")
    out: list[str] = []
    s = FixSession("DESKSIM", "CLIENT1", send_raw=out.append, now_ns=lambda: 0, on_app=print, initiator=False)
    s.state = SessionState.ACTIVE
    s.send_app(er)
    assert tags(out[0])[58] == "changed"


def test_received_messages_carry_their_fields_read_once():
    from fix.codec import Inbound

    got: list[fix.Message] = []
    s = FixSession("A", "B", send_raw=lambda raw: None, now_ns=lambda: 0, on_app=got.append, initiator=False)
    s.connect()
    s.on_raw(craft("A", "B", "A", 1, body=[(98, "0"), (108, "30")]))
    s.on_raw(craft("D", "B", "A", 2, body=body_fields(new_order(1))))
    md = fix44.MarketDataRequest()
    for tag, value in ((262, "m1"), (263, "0"), (264, "1")):
        md.setField(tag, value)
    g = fix44.MarketDataRequest.NoMDEntryTypes()
    g.setField(269, "0")
    md.addGroup(g)
    g2 = fix44.MarketDataRequest.NoRelatedSym()
    g2.setField(55, "XYZ")
    md.addGroup(g2)
    h = md.getHeader()
    for tag, value in ((49, "B"), (56, "A"), (34, "3"), (52, utc_timestamp(0))):
        h.setField(tag, value)
    s.on_raw(md.toString())
    nos, mdr = got
    assert isinstance(nos, Inbound) and isinstance(mdr, Inbound)
    assert nos.flat == {str(t): v for t, v in tags(nos.toString()).items()}
    assert nos.flat["11"] == nos.getField(11) == "C1" and nos.flat["34"] == nos.getHeader().getField(34) == "2"
    assert mdr.flat is None  # a repeating group: the quickfix getters are the reference
