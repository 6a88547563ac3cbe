"""The order path's shortcuts (issue 17) give what quickfix gives: lazily read ExecutionReports,
frames stamped without a parse, the Adler-32 byte sum, the flat field reader, the timestamp cache."""

from __future__ import annotations

import os

import quickfix as fix

from fix.clock import FixClock, fix_timestamp
from fix.codec import Codec, Prebuilt, default_data_dictionary_path, flat_fields, structure_tags
from fix.session import FixSession, SessionState
from fix.transport import byte_sum

S = 1_000_000_000
CODEC = Codec(0.01)
ER = dict(order_id="4294967297", exec_id="12", exec_type="F", ord_status="1", side="S", symbol="XYZ",
          leaves_qty=60, cum_qty=40, avg_px="100.25", cl_ord_id="c-1", order_qty=100, price_ticks=10025,
          ord_type="LIMIT", tif="DAY", last_qty=40, last_px_ticks=10025, liquidity="maker", now_ns=5 * S)  # fmt: skip


def _session(out: list[str]) -> FixSession:
    s = FixSession("DESKSIM", "CLIENT1", send_raw=out.append, now_ns=lambda: 7 * S + 3, on_app=print, initiator=False)
    s.state = SessionState.ACTIVE
    s.next_out_seq = 9
    return s


def test_lazy_execution_report_reads_as_the_parsed_one():
    eager, lazy = CODEC.execution_report(**ER), CODEC.execution_report(**ER, lazy=True)
    assert isinstance(lazy, Prebuilt) and lazy.body == eager.body
    assert lazy.toString() == eager.toString()
    assert lazy.getField(14) == "40" and lazy.getHeader().getField(35) == "8"
    copy = Prebuilt(CODEC.execution_report(**ER, lazy=True))  # a copy reads the original first
    assert copy.toString() == eager.toString()
    CODEC.validate_body(CODEC.execution_report(**ER, lazy=True))  # handed to the C++ side read


def test_stamped_frame_is_what_quickfix_parses_and_writes():
    for lazy in (False, True):
        out: list[str] = []
        er = CODEC.execution_report(**ER, lazy=lazy)
        assert _session(out).send_app(er) == 9
        frame = out[0]
        assert er.toString() == frame  # before the message is read ...
        assert er.getHeader().getField(34) == "9"  # ... and after
        assert er.toString() == frame and er.body is not None
        parsed = fix.Message(frame, CODEC.dd, True)  # BodyLength, CheckSum, structure
        CODEC.dd.validate(parsed)
        assert parsed.toString() == frame
        copy = fix.Message(er)  # read: the C++ side holds the stamped frame
        assert copy.toString() == frame


def test_stamped_message_changed_afterwards_goes_through_quickfix():
    out: list[str] = []
    s = _session(out)
    er = CODEC.execution_report(**ER, lazy=True)
    s.send_app(er)
    er.setField(58, "changed")
    assert er.body is None and er.getHeader().getField(34) == "9"
    s.send_app(er)
    fields = dict(p.split("=", 1) for p in out[1].split("\x01")[:-1])
    assert fields["58"] == "changed" and fields["34"] == "10"


def test_byte_sum_is_the_sum_of_the_bytes():
    for n in (0, 1, 200, 255, 256, 257, 512, 513, 5000):
        for data in (os.urandom(n), b"\xff" * n):
            assert byte_sum(data) == sum(data) and byte_sum(bytearray(data)) == sum(data)


def test_flat_fields_as_split_by_hand():
    structure = structure_tags(default_data_dictionary_path())
    er = CODEC.execution_report(**ER)
    h = er.getHeader()
    for tag, value in ((49, "DESKSIM"), (56, "CLIENT1"), (34, "1"), (52, "20260105-00:00:00.000")):
        h.setField(tag, value)
    for text in (None, "a=b", "=", "x==y"):
        if text is not None:
            er.setField(58, text)
        raw = er.toString()
        expected = {}
        for part in raw.split("\x01")[:-1]:
            tag, _, value = part.partition("=")
            expected[tag] = value
        assert flat_fields(raw, structure) == expected


def test_timestamp_cache_follows_the_millisecond():
    base = 1_767_571_200 * S  # 2026-01-05
    for t in (base, base + 999_999, base + 1_000_000, base + 999_999_999, base + S, base + 1):
        assert fix_timestamp(t) == fix_timestamp(t, 9)[:21]
    assert FixClock().timestamp(86_400 * S + 1_234_567_891) == "20260106-00:00:01.234"
