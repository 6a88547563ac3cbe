"""fix.codec: DataDictionary validation, exact tick prices, builders and readers (real quickfix)."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest
import quickfix as fix
from hypothesis import given
from hypothesis import strategies as st

from fix.codec import (
    LIQUIDITY_OF,
    CancelRequest,
    Codec,
    FixValidationError,
    Invalid,
    MarketDataReq,
    MassCancelRequest,
    MDEntry,
    NewOrder,
    PriceError,
    ReplaceRequest,
    StatusRequest,
    default_data_dictionary_path,
    fix_timestamp,
)


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec(0.01)


def _with_header(msg, seq: int = 7):
    h = msg.getHeader()
    h.setField(49, "CLIENT1")
    h.setField(56, "DESKSIM")
    h.setField(34, str(seq))
    h.setField(52, "20260101-09:30:00.000")
    return msg


def _nos_raw(codec: Codec, **overrides) -> str:
    msg = _with_header(codec.new_order_single("c1", "XYZ", "B", 100, "LIMIT", 1001))
    for tag, value in overrides.items():
        t = int(tag.lstrip("t"))
        if value is None:
            msg.removeField(t)
        else:
            msg.setField(t, value)
    return codec.encode(msg)


def test_dictionary_is_the_installed_fix44() -> None:
    path = default_data_dictionary_path()
    assert path == str(Path(sys.prefix) / "share" / "quickfix" / "FIX44.xml")
    assert Path(path).is_file()
    # loaded once and shared between codecs
    assert Codec(0.01).dd is Codec(0.05).dd


def test_round_trip_new_order(codec: Codec) -> None:
    raw = _nos_raw(codec)
    msg = codec.decode(raw)
    assert msg.getHeader().getField(35) == "D"
    assert codec.encode(msg) == raw
    order = codec.read_new_order(msg)
    assert order == NewOrder("c1", "XYZ", "B", 100, "LIMIT", 1001, "DAY", False, None)


@pytest.mark.parametrize(
    ("overrides", "reason", "ref_tag"),
    [
        ({"t38": "abc"}, 6, 38),  # incorrect data format
        ({"t54": "Z"}, 5, 54),  # value out of range
        ({"t40": None}, 1, 40),  # required tag missing
        ({"t9999": "1"}, 0, 9999),  # invalid tag number
        ({"t44": ""}, 4, 44),  # tag without a value
        ({"t262": "x"}, 2, 262),  # tag not defined for this message type
    ],
)
def test_decode_validation_errors_carry_session_reject_fields(codec: Codec, overrides, reason, ref_tag) -> None:
    raw = _nos_raw(codec, **overrides)
    with pytest.raises(FixValidationError) as info:
        codec.decode(raw)
    err = info.value
    assert err.session_reject_reason == reason
    assert err.ref_tag == ref_tag
    assert err.ref_msg_type == "D"
    assert err.ref_seq_num == 7
    assert not err.garbled


def test_decode_unknown_msg_type(codec: Codec) -> None:
    msg = _with_header(fix.Message())
    msg.getHeader().setField(8, "FIX.4.4")
    msg.getHeader().setField(35, "ZZ")
    with pytest.raises(FixValidationError) as info:
        codec.decode(msg.toString())
    assert info.value.session_reject_reason == 11


@pytest.mark.parametrize(
    "raw",
    [
        "garbage",
        "",
        "8=FIX.4.4\x019=5\x0135=D\x0110=000\x01",
        b"\xff\xfe8=FIX.4.4\x01",
    ],
)
def test_decode_garbled_frames(codec: Codec, raw) -> None:
    with pytest.raises(FixValidationError) as info:
        codec.decode(raw)
    assert info.value.garbled


def test_decode_bad_checksum_is_garbled_but_keeps_header_refs(codec: Codec) -> None:
    raw = _nos_raw(codec)
    bad = raw[:-4] + "000\x01"
    if bad == raw:
        bad = raw[:-4] + "001\x01"
    with pytest.raises(FixValidationError) as info:
        codec.decode(bad)
    assert info.value.garbled and info.value.ref_msg_type == "D" and info.value.ref_seq_num == 7


def test_to_ticks_exact(codec: Codec) -> None:
    assert codec.to_ticks("10.01") == 1001
    assert codec.to_ticks("10.010000") == 1001
    assert codec.to_ticks(10.01) == 1001  # float goes through its shortest repr
    assert codec.to_ticks("0.01") == 1
    assert codec.to_ticks(7) == 700
    for bad in ("10.015", "0", "-1", "abc", "nan", "inf", 10.015, ""):
        with pytest.raises(PriceError):
            codec.to_ticks(bad)
    quarter = Codec("0.25")
    assert quarter.to_ticks("1.75") == 7
    with pytest.raises(PriceError):
        quarter.to_ticks("1.10")
    assert quarter.from_ticks(7) == "1.75"
    assert Codec(1).from_ticks(42) == "42"


@given(st.integers(min_value=1, max_value=10**12))
def test_ticks_round_trip(ticks: int) -> None:
    c = Codec("0.01")
    assert c.to_ticks(c.from_ticks(ticks)) == ticks
    c5 = Codec("0.05")
    assert c5.to_ticks(c5.from_ticks(ticks)) == ticks


def test_avg_px(codec: Codec) -> None:
    assert codec.avg_px(0, 0) == "0"
    assert codec.avg_px(1001 * 3, 3) == "10.01"
    assert Decimal(codec.avg_px(1000 * 1 + 1001 * 1, 2)) == Decimal("10.005")
    # non-terminating: rounded 6 digits beyond the tick
    assert codec.avg_px(1000 + 1000 + 1001, 3) == "10.00333333"


def test_fix_timestamp() -> None:
    assert fix_timestamp(0) == "19700101-00:00:00.000"
    assert fix_timestamp(1_500_000_000_123_456_789) == "20170714-02:40:00.123"


def test_every_builder_validates(codec: Codec) -> None:
    msgs = [
        codec.new_order_single("c1", "XYZ", "S", 5, "MARKET", tif="IOC"),
        codec.new_order_single("c2", "XYZ", "B", 5, "LIMIT", 1000, post_only=True, account="ACC"),
        codec.order_cancel_request("c3", "c1", "XYZ", "B", qty=5, order_id="9"),
        codec.order_cancel_replace_request("c4", "c2", "XYZ", "B", 7, "LIMIT", 999, tif="DAY"),
        codec.order_status_request("c2", "XYZ", "B"),
        codec.order_mass_cancel_request("m1"),
        codec.order_mass_cancel_request("m2", "1", "XYZ"),
        codec.market_data_request("md1", ["XYZ"], "1", 5),
        codec.execution_report(
            order_id="1",
            exec_id="1",
            exec_type="F",
            ord_status="1",
            side="B",
            symbol="XYZ",
            leaves_qty=1,
            cum_qty=2,
            avg_px="10.005",
            cl_ord_id="c",
            order_qty=3,
            price_ticks=1001,
            ord_type="LIMIT",
            tif="DAY",
            last_qty=1,
            last_px_ticks=1001,
            liquidity="taker",
        ),
        codec.order_cancel_reject(
            order_id="NONE", cl_ord_id="x", orig_cl_ord_id="y", ord_status="8", response_to="2", reason="1"
        ),
        codec.order_mass_cancel_report(order_id="MC1", request_type="7", response="0", reject_reason="0"),
        codec.market_data_snapshot("XYZ", [(1000, 3)], [(1001, 4)], [(1000, 1)], "md1"),
        codec.market_data_snapshot("XYZ", [], []),
        codec.market_data_incremental([MDEntry("2", "0", None, None, "XYZ", 1)], "md1"),
        codec.market_data_request_reject("md1", "1"),
        codec.business_message_reject("AE", 3, "x" * 500, 12, "ref"),
        codec.trading_session_status("1", text="halt"),
        codec.security_status("XYZ", "2", "luld pause", now_ns=1),
    ]
    for msg in msgs:
        codec.validate_body(msg)
        # and the full wire round trip
        raw = codec.encode(_with_header(fix.Message(msg)))
        assert codec.encode(codec.decode(raw)) == raw


def test_validate_body_rejects_missing_required(codec: Codec) -> None:
    er = codec.execution_report(
        order_id="1", exec_id="1", exec_type="0", ord_status="0", side="B", symbol="XYZ",
        leaves_qty=1, cum_qty=0, avg_px="0",
    )  # fmt: skip
    er.removeField(17)
    with pytest.raises(FixValidationError) as info:
        codec.validate_body(er)
    assert info.value.session_reject_reason == 1 and info.value.ref_tag == 17


def test_readers(codec: Codec) -> None:
    assert codec.read_new_order(codec.new_order_single("a", "XYZ", "S", 5, "MARKET", 1234, "IOC")) == NewOrder(
        "a", "XYZ", "S", 5, "MARKET", None, "IOC", False, None
    )
    po = codec.new_order_single("b", "XYZ", "B", 5, "LIMIT", 1000)
    po.setField(18, "2 6")
    assert codec.read_new_order(po).post_only is True  # type: ignore[union-attr]
    assert codec.read_cancel(codec.order_cancel_request("c", "a", "XYZ", "S", order_id="5")) == CancelRequest(
        "c", "a", "XYZ", "S", "5"
    )
    assert codec.read_replace(
        codec.order_cancel_replace_request("d", "a", "XYZ", "S", 9, "LIMIT", 1002)
    ) == ReplaceRequest("d", "a", "XYZ", "S", 9, "LIMIT", 1002, None, False, None, None)
    assert codec.read_status(codec.order_status_request("a", "XYZ", "S")) == StatusRequest("a", "XYZ", "S", None)
    assert codec.read_mass_cancel(codec.order_mass_cancel_request("m", "1", "XYZ")) == MassCancelRequest(
        "m", "1", "XYZ"
    )
    # a V read back after a wire round trip (repeating groups parsed with the dictionary)
    raw = codec.encode(_with_header(codec.market_data_request("md", ["XYZ", "ABC"], "1", 3, ("0", "2"))))
    assert codec.read_market_data_request(codec.decode(raw)) == MarketDataReq(
        "md", "1", 3, ("0", "2"), ("XYZ", "ABC"), "1"
    )


@pytest.mark.parametrize(
    ("tag", "value", "ref_tag"),
    [
        (54, "5", 54),  # sell short: valid FIX, unsupported here
        (40, "3", 99),  # a stop without StopPx(99)
        (40, "P", 40),  # pegged: valid FIX, unsupported here
        (59, "1", 59),  # GTC
        (38, "0", 38),
        (38, "-5", 38),
        (38, "1.5", 38),
        (44, "10.015", 44),  # off the tick grid
        (44, "0", 44),
        (44, None, 44),  # limit without price
        (11, None, 11),
        (55, None, 55),
    ],
)
def test_read_new_order_semantic_rejects(codec: Codec, tag, value, ref_tag) -> None:
    msg = codec.new_order_single("c1", "XYZ", "B", 100, "LIMIT", 1001)
    if value is None:
        msg.removeField(tag)
    else:
        msg.setField(tag, value)
    result = codec.read_new_order(msg)
    assert isinstance(result, Invalid)
    assert result.ref_tag == ref_tag
    assert result.text


def test_read_replace_and_mass_cancel_rejects(codec: Codec) -> None:
    g = codec.order_cancel_replace_request("d", "a", "XYZ", "S", 9, "LIMIT", 1002)
    g.setField(44, "10.021")
    assert isinstance(codec.read_replace(g), Invalid)
    q = codec.order_mass_cancel_request("m", "3")
    assert isinstance(codec.read_mass_cancel(q), Invalid)
    q1 = codec.order_mass_cancel_request("m", "1")  # by security without Symbol
    assert isinstance(codec.read_mass_cancel(q1), Invalid)
    v = codec.market_data_request("md", ["XYZ"], entry_types=("0", "7"))
    assert isinstance(codec.read_market_data_request(v), Invalid)


def test_fix_clock_puts_simulated_time_on_the_trading_date() -> None:
    """Issue 13 item 7: one clock -> UTCTimestamp mapping, on the trading date."""
    import datetime as dt

    from fix.clock import DEFAULT_TRADING_DATE, FixClock

    clock = FixClock(dt.date(2024, 2, 29))
    assert clock.timestamp(0) == "20240229-00:00:00.000"
    assert clock.timestamp(34_200 * 10**9 + 123_456_789) == "20240229-09:30:00.123"
    assert clock.timestamp(86_400 * 10**9) == "20240301-00:00:00.000"  # the next day
    assert clock.timestamp(1_234_567_891, 9) == "20240229-00:00:01.234567891"
    assert clock.timestamp(1_234_567_891, 0) == "20240229-00:00:01"
    assert FixClock().trading_date == DEFAULT_TRADING_DATE
    codec = Codec(0.01, clock=clock)
    er = codec.execution_report(
        order_id="1", exec_id="e1", exec_type="0", ord_status="0", cl_ord_id="c1", symbol="XYZ", side="B",
        order_qty=10, leaves_qty=10, cum_qty=0, avg_px="0", now_ns=34_200 * 10**9,
    )  # fmt: skip
    assert er.getField(60) == "20240229-09:30:00.000"
    nos = Codec(0.01).new_order_single("c1", "XYZ", "B", 10, "LIMIT", 1000, now_ns=0)
    assert nos.getField(60)[:8] == DEFAULT_TRADING_DATE.strftime("%Y%m%d")  # not 1970


def test_scenario_date_field_and_default() -> None:
    import datetime as dt

    import pydantic

    from fix.clock import DEFAULT_TRADING_DATE
    from scenarios.schema import Scenario

    assert Scenario(name="x").date == DEFAULT_TRADING_DATE
    assert Scenario(name="x", date="2025-07-01").date == dt.date(2025, 7, 1)
    with pytest.raises(pydantic.ValidationError):
        Scenario(name="x", date="2025-13-01")


def test_flat_fields_only_for_a_flat_top_level():
    from fix.codec import default_data_dictionary_path, flat_fields, structure_tags

    structure = structure_tags(default_data_dictionary_path())
    assert {"146", "268", "95"} <= structure and "9" not in structure  # groups, raw data; not BodyLength
    raw = "8=FIX.4.4\x019=5\x0135=D\x0111=a=b\x0158=\x0110=000\x01"
    assert flat_fields(raw, structure) == {"8": "FIX.4.4", "9": "5", "35": "D", "11": "a=b", "58": "", "10": "000"}
    end = "\x0110=000\x01"
    assert flat_fields("8=FIX.4.4\x0135=D\x0111=a\x0111=b" + end, structure) is None  # a repeated tag
    assert flat_fields("8=FIX.4.4\x0135=V\x01146=1\x0155=XYZ" + end, structure) is None  # a repeating group
    assert flat_fields("8=FIX.4.4\x0135=B\x0195=3\x0196=a\x01b" + end, structure) is None  # raw data
    assert flat_fields("8=FIX.4.4\x0135=D", structure) is None  # no final SOH
    assert flat_fields("8=FIX.4.4\x0135=D\x0110=000\x0134=2\x01", structure) is None  # a field after CheckSum


@pytest.mark.parametrize(("liquidity", "flag"), [("maker", "1"), ("taker", "2"), ("auction", None)])
def test_fill_liquidity_is_a_valid_last_liquidity_ind(codec: Codec, liquidity: str, flag: str | None) -> None:
    """An auction fill carries no LastLiquidityInd (FIX 4.4 has no value for it). It used to be
    sent as ``851=auction``, which the dictionary refuses, so the desk's auction fills never reached
    its OMS: flash_crash_scripted seed 5 broke reconciliation by 1,100 shares."""
    er = codec.execution_report(
        order_id="1",
        exec_id="1",
        exec_type="F",
        ord_status="2",
        side="B",
        symbol="XYZ",
        leaves_qty=0,
        cum_qty=3,
        avg_px="10.01",
        cl_ord_id="c",
        order_qty=3,
        price_ticks=1001,
        ord_type="LIMIT",
        tif="DAY",
        last_qty=3,
        last_px_ticks=1001,
        liquidity=liquidity,
    )
    codec.validate_body(er)
    raw = codec.encode(_with_header(fix.Message(er)))
    decoded = codec.decode(raw)
    if flag is None:
        assert not decoded.isSetField(851)
    else:
        assert f"\x01851={flag}\x01" in raw
        assert LIQUIDITY_OF[decoded.getField(851)] == liquidity


def test_auction_indication_is_a_valid_security_status():
    """f while halted: 326 = 7 / 8 / 12 by the imbalance side; LastPx the indicative price;
    BuyVolume / SellVolume = paired + the imbalance on its side; HighPx / LowPx the collar."""
    codec = Codec(0.01)
    m = codec.auction_indication("XYZ", 9_950, 1_200, 300, "S", (9_900, 10_000), "indicative 99.50", 5)
    codec.validate_body(m)
    got = {t: m.getField(t) for t in (55, 325, 326, 330, 331, 332, 333, 31, 58)}
    assert got == {55: "XYZ", 325: "Y", 326: "8", 330: "1200", 331: "1500", 332: "100.00", 333: "99.00",
                   31: "99.50", 58: "indicative 99.50"}  # fmt: skip
    buy = codec.auction_indication("XYZ", 9_950, 0, 400, "B")
    assert (buy.getField(326), buy.getField(330), buy.getField(331)) == ("7", "400", "0")
    none = codec.auction_indication("XYZ", None, 0, 0, "")
    codec.validate_body(none)
    assert none.getField(326) == "12" and not none.isSetField(31) and not none.isSetField(332)
