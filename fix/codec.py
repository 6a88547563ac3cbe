"""FIX 4.4 codec on the real ``quickfix`` package: encode/decode with DataDictionary validation,
integer-tick price conversion, builders for the application messages of the order-entry path and
typed readers for the messages the exchange gateway accepts.

    codec = Codec(tick_size=0.01)                 # FIX44.xml from the quickfix install
    raw = codec.encode(msg)                       # quickfix.Message -> str (SOH-delimited)
    msg = codec.decode(raw)                       # str -> quickfix.Message, validated; raises
                                                  # FixValidationError (what a 35=3 Reject needs)
    codec.to_ticks("10.01") == 1001               # exact; off-grid prices raise PriceError
    codec.from_ticks(1001) == "10.01"
    codec.new_order_single("c1", "XYZ", "B", 100, "LIMIT", 1001)   # builders return Messages
    codec.read_new_order(msg)                     # -> NewOrder | Invalid

Conventions inside desksim (the readers' output, the builders' input): side ``"B"``/``"S"``,
ord_type ``"LIMIT"``/``"MARKET"``/``"STOP"``/``"STOP_LIMIT"`` (OrdType 2 / 1 / 3 / 4; a stop or
stop-limit carries StopPx(99), ``stop_px_ticks``; a stop, like a market order, has no Price), tif
``"DAY"``/``"IOC"``/``"FOK"``, prices in integer ticks, quantities ``int``. Post-only is
ExecInst(18) containing ``'6'`` (Participate don't initiate).

Timestamps: builders stamp TransactTime(60) from their ``now_ns`` argument, simulated time in
ns since midnight UTC of the trading date, through ``codec.clock`` (a :class:`FixClock`; the
session layer stamps SendingTime with the same clock, so both carry the scenario's date).

Builders set only BeginString(8) and MsgType(35) in the header; the session layer adds
SenderCompID, TargetCompID, MsgSeqNum and SendingTime. ``validate_body`` validates such a
message by filling those four with placeholders on a copy.

Field values are set as strings (``msg.setField(tag, str)``): exact, and cheaper than the typed
quickfix field classes.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import quickfix as fix
import quickfix44 as fix44

from fix.clock import DEFAULT_TRADING_DATE, FixClock, fix_timestamp

__all__ = [
    "DEFAULT_TRADING_DATE",
    "LIQUIDITY_OF",
    "MAX_MARKET_DEPTH",
    "SIDE_FROM_FIX",
    "SIDE_TO_FIX",
    "CancelRequest",
    "Codec",
    "FixClock",
    "FixValidationError",
    "Invalid",
    "MDEntry",
    "MarketDataReq",
    "MassCancelRequest",
    "NewOrder",
    "PriceError",
    "ReplaceRequest",
    "StatusRequest",
    "default_data_dictionary_path",
    "fix_timestamp",
    "message_type",
]

BEGIN_STRING = "FIX.4.4"

# --- enumerations: desksim <-> FIX ------------------------------------------------------------
SIDE_TO_FIX = {"B": "1", "S": "2"}
SIDE_FROM_FIX = {"1": "B", "2": "S"}
ORD_TYPE_TO_FIX = {"MARKET": "1", "LIMIT": "2", "STOP": "3", "STOP_LIMIT": "4"}
ORD_TYPE_FROM_FIX = {"1": "MARKET", "2": "LIMIT", "3": "STOP", "4": "STOP_LIMIT"}
STOP_TYPES = frozenset(("STOP", "STOP_LIMIT"))  # OrdType 3 / 4: StopPx(99) required
IMBALANCE_STATUS = {"B": "7", "S": "8"}  # SecurityTradingStatus(326) of an auction's imbalance side
TIF_TO_FIX = {"DAY": "0", "IOC": "3", "FOK": "4"}
TIF_FROM_FIX = {"0": "DAY", "3": "IOC", "4": "FOK"}
POST_ONLY_EXEC_INST = "6"  # Participate don't initiate

# SessionRejectReason(373) for each quickfix validation exception (as quickfix's Session does).
_SESSION_REJECT_REASON: dict[type, int] = {
    fix.InvalidTagNumber: 0,
    fix.RequiredTagMissing: 1,
    fix.TagNotDefinedForMessage: 2,
    fix.NoTagValue: 4,
    fix.IncorrectTagValue: 5,
    fix.IncorrectDataFormat: 6,
    fix.InvalidMessageType: 11,
    fix.RepeatedTag: 13,
    fix.TagOutOfOrder: 14,
    fix.RepeatingGroupCountMismatch: 16,
}


# LastLiquidityInd (851) for the exchange's liquidity flags: 1 Added, 2 Removed. FIX 4.4's
# dictionary has no value for an auction print (4 = Auction came with FIX 5.0), so an auction fill
# carries no 851 (the tag is optional); the OMS reads the same table back
_LAST_LIQUIDITY = {"maker": "1", "taker": "2"}
LIQUIDITY_OF = {v: k for k, v in _LAST_LIQUIDITY.items()}


class FixValidationError(Exception):
    """A message failed parsing or DataDictionary validation.

    Carries what a session-level Reject (35=3) needs: ``session_reject_reason`` (373),
    ``ref_tag`` (371, may be None), ``ref_msg_type`` (372) and ``ref_seq_num`` (45) when they could
    be recovered from the raw message, and ``reason`` (58). ``garbled`` is True when the frame
    itself is broken (bad checksum / body length / not tag=value): FIX says such a message is
    ignored (no Reject, no sequence number consumed). ``unsupported`` is True for a MsgType the
    dictionary knows but the application does not handle (answer with BusinessMessageReject).
    """

    def __init__(
        self,
        reason: str,
        ref_tag: int | None,
        session_reject_reason: int,
        *,
        ref_msg_type: str | None = None,
        ref_seq_num: int | None = None,
        garbled: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.ref_tag = ref_tag
        self.session_reject_reason = session_reject_reason
        self.ref_msg_type = ref_msg_type
        self.ref_seq_num = ref_seq_num
        self.garbled = garbled

    def __repr__(self) -> str:
        return (
            f"FixValidationError({self.reason!r}, ref_tag={self.ref_tag}, "
            f"session_reject_reason={self.session_reject_reason}, ref_msg_type={self.ref_msg_type!r}, "
            f"ref_seq_num={self.ref_seq_num}, garbled={self.garbled})"
        )


class PriceError(ValueError):
    """A price that is not a positive finite multiple of the tick size."""


# --- typed application messages (readers' output) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Invalid:
    """A semantically invalid application message: ``text`` for Text(58), ``ref_tag`` the field,
    ``code`` the OrdRejReason(103) / CxlRejReason(102) to report."""

    text: str
    ref_tag: int | None = None
    code: str = "99"


@dataclass(frozen=True, slots=True)
class NewOrder:
    cl_ord_id: str
    symbol: str
    side: str
    qty: int
    ord_type: str
    price_ticks: int | None
    tif: str
    post_only: bool
    account: str | None
    stop_px_ticks: int | None = None  # StopPx(99) of a STOP / STOP_LIMIT order


@dataclass(frozen=True, slots=True)
class CancelRequest:
    cl_ord_id: str
    orig_cl_ord_id: str
    symbol: str
    side: str
    order_id: str | None


@dataclass(frozen=True, slots=True)
class ReplaceRequest:
    cl_ord_id: str
    orig_cl_ord_id: str
    symbol: str
    side: str
    qty: int
    ord_type: str
    price_ticks: int | None
    tif: str | None  # None: not given (keep the order's)
    post_only: bool
    order_id: str | None
    account: str | None
    stop_px_ticks: int | None = None  # StopPx(99) of a STOP / STOP_LIMIT order


@dataclass(frozen=True, slots=True)
class StatusRequest:
    cl_ord_id: str
    symbol: str
    side: str
    order_id: str | None


@dataclass(frozen=True, slots=True)
class MassCancelRequest:
    cl_ord_id: str
    request_type: str  # MassCancelRequestType(530): "1" by security, "7" all orders
    symbol: str | None


MAX_MARKET_DEPTH = 100
"""Deepest MarketDepth(264) served level by level; 0 asks for the full book (every level). A
deeper request is refused with MarketDataRequestReject (Y) reason 5, unsupported MarketDepth."""


@dataclass(frozen=True, slots=True)
class MarketDataReq:
    md_req_id: str
    subscription_type: str  # "0" snapshot, "1" snapshot + updates, "2" unsubscribe
    depth: int  # 0 = full book
    entry_types: tuple[str, ...]  # "0" bid, "1" offer, "2" trade
    symbols: tuple[str, ...]
    update_type: str | None  # MDUpdateType(265): "0" full refresh, "1" incremental


@dataclass(frozen=True, slots=True)
class MDEntry:
    """One entry of an incremental refresh: MDUpdateAction(279) ``action`` ("0" new, "1" change,
    "2" delete), MDEntryType(269) ``entry_type`` ("0" bid, "1" offer, "2" trade)."""

    action: str
    entry_type: str
    price_ticks: int | None
    size: int | None
    symbol: str
    position: int | None = None  # MDEntryPositionNo(290), 1 = top of book


# --- helpers ------------------------------------------------------------------------------------


def default_data_dictionary_path() -> str:
    """FIX44.xml shipped with the quickfix install (``sys.prefix/share/quickfix/FIX44.xml``)."""
    candidates = [Path(sys.prefix) / "share" / "quickfix" / "FIX44.xml"]
    candidates.append(Path(fix.__file__).resolve().parent.parent.parent.parent / "share" / "quickfix" / "FIX44.xml")
    for c in candidates:
        if c.is_file():
            return str(c)
    return str(candidates[0])


_DD_CACHE: dict[str, Any] = {}


def _load_dd(path: str) -> Any:
    dd = _DD_CACHE.get(path)
    if dd is None:
        dd = fix.DataDictionary(path)
        _DD_CACHE[path] = dd
    return dd


def _new(msg_type: str) -> Any:
    m = fix.Message()
    h = m.getHeader()
    h.setField(8, BEGIN_STRING)
    h.setField(35, msg_type)
    return m


def _get(msg: Any, tag: int) -> str | None:
    if msg.isSetField(tag):
        return msg.getField(tag)  # type: ignore[no-any-return]
    return None


@functools.cache
def _field_tags_by_type(path: str) -> dict[str, frozenset[str]]:
    """The data dictionary's field tags by type (LENGTH, NUMINGROUP, ...), read once per file;
    empty if the file cannot be read."""
    import xml.etree.ElementTree as ET

    by_type: dict[str, set[str]] = {}
    try:
        fields = ET.parse(path).getroot().find("fields")
        for f in fields if fields is not None else []:
            by_type.setdefault(f.get("type", ""), set()).add(f.get("number", ""))
    except Exception:
        return {}
    return {kind: frozenset(tags) for kind, tags in by_type.items()}


def _data_length_tags(path: str) -> frozenset[str]:
    """Tags of LENGTH type (they precede raw data fields, which may contain SOH)."""
    # BodyLength is LENGTH-typed but not a data-field length
    return _field_tags_by_type(path).get("LENGTH", frozenset()) - {"9"}


def structure_tags(path: str) -> frozenset[str]:
    """Tags after which a flat ``{tag: value}`` view of a message is not its top level: the
    NUMINGROUP counts of repeating groups and the LENGTH tags of raw data (which may hold SOH)."""
    return _field_tags_by_type(path).get("NUMINGROUP", frozenset()) | _data_length_tags(path)


def flat_fields(raw: str, structure: frozenset[str]) -> dict[str, str] | None:
    """``{tag: value}`` of every field of a frame that quickfix parsed (header, body, trailer), or
    None when that is not the message's top level: a repeated tag, a repeating group or raw data
    (``structure``: :func:`structure_tags`). Then the quickfix getters are the reference."""
    if not raw.endswith("\x01") or not raw.startswith("10=", raw.rfind("\x01", 0, len(raw) - 1) + 1):
        return None  # not a whole frame ending with its CheckSum (quickfix reads no further)
    if raw.count("=") == raw.count("\x01"):
        # one "=" per field (every field quickfix parsed has a tag and a "="): tags and values
        # alternate once "=" is a separator too -- the usual frame, read in a few C-level passes
        items = raw[:-1].replace("=", "\x01").split("\x01")
        n = len(items) >> 1
        d = dict(zip(items[::2], items[1::2], strict=True))
    else:  # a value holds "=" (or raw data holds SOH)
        parts = raw[:-1].split("\x01")
        n = len(parts)
        d = {}
        for part in parts:
            tag, _, value = part.partition("=")
            d[tag] = value
    if len(d) != n or not structure.isdisjoint(d):
        return None
    return d


class Inbound(fix.Message):  # type: ignore[misc]  # quickfix has no type information
    """A received message as the session layer parsed and validated it, with ``flat``: its
    fields read from the frame once (:func:`flat_fields`), or None (then read it with the
    quickfix getters). Readers (:meth:`Codec.fields`) use ``flat`` instead of a second parse."""

    flat: dict[str, str] | None = None


class Prebuilt(fix.Message):  # type: ignore[misc]  # quickfix has no type information
    """A message the codec built as one string: ``body`` is its body as quickfix writes it
    (``tag=value`` SOH-terminated, ascending tag numbers) and ``msg_type`` its MsgType, so the
    session layer can stamp and frame it without a quickfix round trip
    (:meth:`fix.session.FixSession.send_app`). Any change to the message through this object's
    own methods drops ``body`` (a header field other than those the session stamps must not be
    set on it).

    Read lazily: the quickfix side of the object is filled from its text (the codec's string,
    then the frame the session stamped it as, :meth:`stamp`) only when one of its quickfix
    methods is called, so an ExecutionReport that nobody reads again is never parsed (the hot
    path of ``desksim serve``). ``toString()`` of a stamped message is that frame, parsed or not.
    A copy (``Prebuilt(m)``) reads it first; quickfix's C++ side alone (``fix.Message(m)``,
    ``dd.validate(m)``) cannot: call :meth:`load` before handing it there (the codec's
    ``validate`` / ``validate_body`` / ``encode`` do)."""

    body: str | None = None
    msg_type = ""
    _text: str | None = None  # what the quickfix side is still to be read from
    _wire: str | None = None  # the frame the session stamped this message as (while _text holds it)

    def __init__(self, *args: Any) -> None:
        if args and isinstance(args[0], Prebuilt):
            args[0].load()  # quickfix copies its C++ side
        super().__init__(*args)

    def defer(self, text: str) -> None:
        """The quickfix side is ``text`` (a message string quickfix reads without validation),
        read at the first quickfix call; ``body`` must be the body of ``text``."""
        self._text = text
        self._wire = None

    def stamp(self, frame: str) -> None:
        """The session framed this message as ``frame`` (the body unchanged)."""
        self._text = self._wire = frame

    def load(self) -> None:
        """Read the pending text into the quickfix side (nothing when there is none)."""
        text = self._text
        if text is not None:
            self._text = self._wire = None
            fix.Message.setString(self, text, False)

    def toString(self, *args: Any) -> Any:
        wire = self._wire
        if wire is not None and not args:
            return wire  # exactly what quickfix writes once it has read the frame
        if self._text is not None:
            self.load()
        return fix.Message.toString(self, *args)

    def __str__(self) -> str:
        return self.toString()  # type: ignore[no-any-return]


def message_type(msg: Any) -> str:
    """MsgType of a message; a codec-built one's (:class:`Prebuilt`) without reading it into quickfix."""
    if isinstance(msg, Prebuilt) and msg.body is not None:
        return msg.msg_type
    return msg.getHeader().getField(35)  # type: ignore[no-any-return]


# quickfix methods that read a Prebuilt (the rest may change it: they drop its body as well)
_PREBUILT_READERS = frozenset(
    [
        "getField",
        "getFieldRef",
        "getFieldPtr",
        "getFieldIfSet",
        "isSetField",
        "getGroup",
        "getGroupRef",
        "getGroupPtr",
        "hasGroup",
        "groupCount",
        "groups",
        "isEmpty",
        "totalFields",
        "calculateString",
        "calculateLength",
        "calculateTotal",
        "begin",
        "end",
        "toXML",
        "getHeader",
        "getTrailer",
        "bodyLength",
        "checkSum",
        "isAdmin",
        "isApp",
        "getSessionID",
        "hasValidStructure",
    ]
)


def _prebuilt_method(name: str, base: Any, reader: bool) -> Any:
    if reader:

        def method(self: Prebuilt, *args: Any) -> Any:
            if self._text is not None:
                self.load()
            return base(self, *args)

    else:

        def method(self: Prebuilt, *args: Any) -> Any:
            if self._text is not None:
                self.load()
            self.body = None
            return base(self, *args)

    method.__name__ = method.__qualname__ = name
    return method


def _wrap_prebuilt() -> None:
    import inspect

    for name in dir(fix.Message):
        if name.startswith("_") or name in Prebuilt.__dict__:
            continue
        static = inspect.getattr_static(fix.Message, name)
        if isinstance(static, staticmethod | classmethod | property) or not callable(static):
            continue
        reader = name in _PREBUILT_READERS
        if name == "setString":  # replaces the message: the pending text is dropped, not read
            base = getattr(fix.Message, name)

            def set_string(self: Prebuilt, *args: Any, _base: Any = base) -> Any:
                self._text = self._wire = None
                self.body = None
                return _base(self, *args)

            set_string.__name__ = set_string.__qualname__ = name
            setattr(Prebuilt, name, set_string)
            continue
        setattr(Prebuilt, name, _prebuilt_method(name, getattr(fix.Message, name), reader))


_wrap_prebuilt()


def _loaded(msg: Any) -> Any:
    """``msg`` ready for quickfix's C++ side (a lazily read :class:`Prebuilt` is read now)."""
    if isinstance(msg, Prebuilt):
        msg.load()
    return msg


def _msg_type(msg: Any) -> str:
    h = msg.getHeader()
    return h.getField(35) if h.isSetField(35) else ""  # type: ignore[no-any-return]


def _parse_qty(raw: str | None, tag: int = 38) -> int | Invalid:
    if raw is None:
        return Invalid("OrderQty missing", tag, "13")
    if raw.isascii() and raw.isdigit():  # the usual form: no Decimal needed
        n = int(raw)
        return n if n > 0 else Invalid(f"quantity must be a positive integer, got {raw}", tag, "13")
    try:
        d = Decimal(raw)
    except InvalidOperation:
        return Invalid(f"invalid quantity {raw!r}", tag, "13")
    if not d.is_finite() or d != d.to_integral_value() or d <= 0:
        return Invalid(f"quantity must be a positive integer, got {raw}", tag, "13")
    return int(d)


# --- the codec ----------------------------------------------------------------------------------


class Codec:
    """quickfix Message <-> wire string with FIX44.xml validation; ticks <-> decimal prices;
    builders and readers of the order-entry application messages. One instance per tick size;
    the DataDictionary is loaded once per path and shared."""

    def __init__(
        self, tick_size: float | str | Decimal, data_dictionary_path: str | None = None, clock: FixClock | None = None
    ) -> None:
        self.clock = clock if clock is not None else FixClock()  # now_ns of the builders -> TransactTime
        tick = Decimal(str(tick_size))
        if not tick.is_finite() or tick <= 0:
            raise ValueError(f"tick_size must be positive, got {tick_size!r}")
        self.tick = tick
        exponent = tick.normalize().as_tuple().exponent
        self._tick_exp: int = min(exponent, 0) if isinstance(exponent, int) else 0
        self._quantum = Decimal(1).scaleb(self._tick_exp)
        self._avg_quantum = Decimal(1).scaleb(self._tick_exp - 6)  # AvgPx: 6 digits beyond the tick
        self.data_dictionary_path = data_dictionary_path or default_data_dictionary_path()
        self.dd = _load_dd(self.data_dictionary_path)
        self._px_cache: dict[int, str] = {}
        self._ticks_cache: dict[str, int] = {}  # price text -> ticks (valid prices only)
        self._data_len_tags = _data_length_tags(self.data_dictionary_path)

    # -- encode / decode ------------------------------------------------------------------------
    def encode(self, msg: Any) -> str:
        """Serialise (BodyLength and CheckSum computed by quickfix)."""
        return msg.toString()  # type: ignore[no-any-return]

    def decode(self, raw: str | bytes) -> Any:
        """Parse and validate against the DataDictionary; raises :class:`FixValidationError`."""
        if isinstance(raw, bytes | bytearray):
            raw = bytes(raw).decode("latin-1")
        try:
            msg = fix.Message(raw, self.dd, True)
        except Exception as exc:  # quickfix.InvalidMessage and friends: a garbled frame
            msg_type, seq = _scan_header(raw)
            raise FixValidationError(
                _exc_text(exc), _exc_field(exc), 99, ref_msg_type=msg_type, ref_seq_num=seq, garbled=True
            ) from None
        self.validate(msg)
        return msg

    def validate(self, msg: Any) -> None:
        """DataDictionary validation of a complete message (header included)."""
        try:
            self.dd.validate(_loaded(msg))
        except Exception as exc:
            raise self._error(exc, msg) from None

    def validate_body(self, msg: Any) -> None:
        """Validate a message built without session header fields (fills placeholders on a copy)."""
        m = fix.Message(_loaded(msg))
        h = m.getHeader()
        for tag, value in ((49, "SENDER"), (56, "TARGET"), (34, "1"), (52, "20000101-00:00:00.000")):
            if not h.isSetField(tag):
                h.setField(tag, value)
        if not h.isSetField(8):
            h.setField(8, BEGIN_STRING)
        try:
            self.dd.validate(fix.Message(m.toString(), self.dd, True))
        except Exception as exc:
            raise self._error(exc, m) from None

    def _error(self, exc: BaseException, msg: Any) -> FixValidationError:
        reason = _SESSION_REJECT_REASON.get(type(exc), 99)
        msg_type = None
        seq = None
        try:
            h = msg.getHeader()
            msg_type = h.getField(35) if h.isSetField(35) else None
            seq = int(h.getField(34)) if h.isSetField(34) else None
        except Exception:
            pass
        return FixValidationError(_exc_text(exc), _exc_field(exc), reason, ref_msg_type=msg_type, ref_seq_num=seq)

    # -- prices -----------------------------------------------------------------------------------
    def to_ticks(self, value: str | float | int | Decimal) -> int:
        """Exact price -> ticks; raises :class:`PriceError` for off-grid, non-finite or <= 0."""
        if type(value) is str:
            ticks = self._ticks_cache.get(value)
            if ticks is None:
                ticks = self._to_ticks(value)
                if len(self._ticks_cache) < 100_000:
                    self._ticks_cache[value] = ticks
            return ticks
        return self._to_ticks(value)

    def _to_ticks(self, value: str | float | int | Decimal) -> int:
        try:
            d = value if isinstance(value, Decimal) else Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            raise PriceError(f"invalid price {value!r}") from None
        if not d.is_finite() or d <= 0:
            raise PriceError(f"price must be positive, got {value!r}")
        q = d / self.tick
        if q != q.to_integral_value():
            raise PriceError(f"price {value} is not a multiple of the tick size {self.tick}")
        return int(q)

    def from_ticks(self, ticks: int) -> str:
        """Ticks -> decimal string with the tick's number of decimals (``1001`` -> ``"10.01"``)."""
        s = self._px_cache.get(ticks)
        if s is None:
            s = str((Decimal(int(ticks)) * self.tick).quantize(self._quantum))
            if len(self._px_cache) < 100_000:
                self._px_cache[ticks] = s
        return s

    def avg_px(self, notional_ticks: int, qty: int) -> str:
        """Volume-weighted average price from ``sum(qty*ticks)`` and ``sum(qty)``: exact when it
        terminates within 6 digits beyond the tick's decimals, else rounded half-even there."""
        if qty <= 0:
            return "0"
        d = (Decimal(notional_ticks) * self.tick / Decimal(qty)).quantize(self._avg_quantum, ROUND_HALF_EVEN)
        s = format(d.normalize(), "f")
        return s

    # -- builders: order entry (client side) ---------------------------------------------------
    def new_order_single(
        self,
        cl_ord_id: str,
        symbol: str,
        side: str,
        qty: int,
        ord_type: str = "LIMIT",
        price_ticks: int | None = None,
        tif: str = "DAY",
        post_only: bool = False,
        account: str | None = None,
        now_ns: int | None = None,
        stop_px_ticks: int | None = None,
    ) -> Any:
        m = _new("D")
        m.setField(11, cl_ord_id)
        if account:
            m.setField(1, account)
        m.setField(55, symbol)
        m.setField(54, SIDE_TO_FIX.get(side, side))
        m.setField(60, self.clock.timestamp(now_ns))
        m.setField(38, str(int(qty)))
        m.setField(40, ORD_TYPE_TO_FIX.get(ord_type, ord_type))
        if price_ticks is not None:
            m.setField(44, self.from_ticks(price_ticks))
        m.setField(59, TIF_TO_FIX.get(tif, tif))
        if stop_px_ticks is not None:
            m.setField(99, self.from_ticks(stop_px_ticks))
        if post_only:
            m.setField(18, POST_ONLY_EXEC_INST)
        return m

    def order_cancel_request(
        self,
        cl_ord_id: str,
        orig_cl_ord_id: str,
        symbol: str,
        side: str,
        qty: int | None = None,
        order_id: str | None = None,
        now_ns: int | None = None,
    ) -> Any:
        m = _new("F")
        m.setField(41, orig_cl_ord_id)
        if order_id is not None:
            m.setField(37, str(order_id))
        m.setField(11, cl_ord_id)
        m.setField(55, symbol)
        m.setField(54, SIDE_TO_FIX.get(side, side))
        m.setField(60, self.clock.timestamp(now_ns))
        if qty is not None:
            m.setField(38, str(int(qty)))
        return m

    def order_cancel_replace_request(
        self,
        cl_ord_id: str,
        orig_cl_ord_id: str,
        symbol: str,
        side: str,
        qty: int,
        ord_type: str = "LIMIT",
        price_ticks: int | None = None,
        tif: str | None = None,
        post_only: bool = False,
        order_id: str | None = None,
        account: str | None = None,
        now_ns: int | None = None,
        stop_px_ticks: int | None = None,
    ) -> Any:
        m = _new("G")
        if order_id is not None:
            m.setField(37, str(order_id))
        m.setField(41, orig_cl_ord_id)
        m.setField(11, cl_ord_id)
        if account:
            m.setField(1, account)
        m.setField(55, symbol)
        m.setField(54, SIDE_TO_FIX.get(side, side))
        m.setField(60, self.clock.timestamp(now_ns))
        m.setField(38, str(int(qty)))
        m.setField(40, ORD_TYPE_TO_FIX.get(ord_type, ord_type))
        if price_ticks is not None:
            m.setField(44, self.from_ticks(price_ticks))
        if tif is not None:
            m.setField(59, TIF_TO_FIX.get(tif, tif))
        if stop_px_ticks is not None:
            m.setField(99, self.from_ticks(stop_px_ticks))
        if post_only:
            m.setField(18, POST_ONLY_EXEC_INST)
        return m

    def order_status_request(self, cl_ord_id: str, symbol: str, side: str, order_id: str | None = None) -> Any:
        m = _new("H")
        if order_id is not None:
            m.setField(37, str(order_id))
        m.setField(11, cl_ord_id)
        m.setField(55, symbol)
        m.setField(54, SIDE_TO_FIX.get(side, side))
        return m

    def order_mass_cancel_request(
        self, cl_ord_id: str, request_type: str = "7", symbol: str | None = None, now_ns: int | None = None
    ) -> Any:
        m = _new("q")
        m.setField(11, cl_ord_id)
        m.setField(530, request_type)
        if symbol is not None:
            m.setField(55, symbol)
        m.setField(60, self.clock.timestamp(now_ns))
        return m

    def market_data_request(
        self,
        md_req_id: str,
        symbols: Sequence[str],
        subscription_type: str = "1",
        depth: int = 1,
        entry_types: Sequence[str] = ("0", "1", "2"),
        update_type: str | None = "1",
    ) -> Any:
        m = _new("V")
        m.setField(262, md_req_id)
        m.setField(263, subscription_type)
        m.setField(264, str(int(depth)))
        if update_type is not None and subscription_type == "1":
            m.setField(265, update_type)
        for et in entry_types:
            g = fix44.MarketDataRequest.NoMDEntryTypes()
            g.setField(269, et)
            m.addGroup(g)
        for sym in symbols:
            g = fix44.MarketDataRequest.NoRelatedSym()
            g.setField(55, sym)
            m.addGroup(g)
        return m

    # -- builders: exchange side -------------------------------------------------------------------
    def execution_report(
        self,
        *,
        order_id: str,
        exec_id: str,
        exec_type: str,
        ord_status: str,
        side: str,
        symbol: str,
        leaves_qty: int,
        cum_qty: int,
        avg_px: str,
        cl_ord_id: str | None = None,
        orig_cl_ord_id: str | None = None,
        order_qty: int | None = None,
        price_ticks: int | None = None,
        ord_type: str | None = None,
        tif: str | None = None,
        post_only: bool = False,
        last_qty: int | None = None,
        last_px_ticks: int | None = None,
        liquidity: str | None = None,
        ord_rej_reason: str | None = None,
        text: str | None = None,
        account: str | None = None,
        exec_ref_id: str | None = None,
        now_ns: int | None = None,
        lazy: bool = False,
        stop_px_ticks: int | None = None,
    ) -> Any:
        """An ExecutionReport (8). ``lazy``: its quickfix side is read from the string only when
        a quickfix method of it is first called (:class:`Prebuilt`; the gateway's hot path)."""
        # Built as one string and parsed by quickfix (setString without validation): about 7x
        # cheaper than a SWIG setField per tag on this hot path. No repeating groups in an 8.
        # The fields go in ascending tag order, the order quickfix writes them, so the string is
        # also the body on the wire (Prebuilt.body: the session frames it without quickfix).
        parts: list[str] = []
        ap = parts.append
        if account:
            ap(f"1={account}\x01")
        ap(f"6={avg_px}\x01")
        if cl_ord_id is not None:
            ap(f"11={cl_ord_id}\x01")
        ap(f"14={cum_qty}\x01")
        ap(f"17={exec_id}\x01")
        if post_only:
            ap("18=" + POST_ONLY_EXEC_INST + "\x01")
        if exec_ref_id is not None:
            ap(f"19={exec_ref_id}\x01")
        if last_px_ticks is not None:
            ap(f"31={self.from_ticks(last_px_ticks)}\x01")
        if last_qty is not None:
            ap(f"32={last_qty}\x01")
        ap(f"37={order_id}\x01")
        if order_qty is not None:
            ap(f"38={order_qty}\x01")
        ap(f"39={ord_status}\x01")
        if ord_type is not None:
            ap(f"40={ORD_TYPE_TO_FIX.get(ord_type, ord_type)}\x01")
        if orig_cl_ord_id is not None:
            ap(f"41={orig_cl_ord_id}\x01")
        if price_ticks is not None:
            ap(f"44={self.from_ticks(price_ticks)}\x01")
        ap(f"54={SIDE_TO_FIX.get(side, side)}\x0155={symbol}\x01")
        if text:
            ap("58=" + text.replace("\x01", " ") + "\x01")
        if tif is not None:
            ap(f"59={TIF_TO_FIX.get(tif, tif)}\x01")
        ap(f"60={self.clock.timestamp(now_ns)}\x01")
        if stop_px_ticks is not None:
            ap(f"99={self.from_ticks(stop_px_ticks)}\x01")
        if ord_rej_reason is not None:
            ap(f"103={ord_rej_reason}\x01")
        ap(f"150={exec_type}\x01151={leaves_qty}\x01")
        flag = _LAST_LIQUIDITY.get(liquidity) if liquidity is not None else None
        if flag is not None:
            ap("851=" + flag + "\x01")
        body = "".join(parts)
        m = Prebuilt()
        if lazy:
            m.defer("8=FIX.4.4\x0135=8\x01" + body)
        else:
            fix.Message.setString(m, "8=FIX.4.4\x0135=8\x01" + body, False)
        m.body = body
        m.msg_type = "8"
        return m

    def order_cancel_reject(
        self,
        *,
        order_id: str,
        cl_ord_id: str,
        orig_cl_ord_id: str,
        ord_status: str,
        response_to: str,
        reason: str | None = None,
        text: str | None = None,
        account: str | None = None,
        now_ns: int | None = None,
    ) -> Any:
        m = _new("9")
        m.setField(37, order_id)
        m.setField(11, cl_ord_id)
        m.setField(41, orig_cl_ord_id)
        m.setField(39, ord_status)
        if account:
            m.setField(1, account)
        m.setField(60, self.clock.timestamp(now_ns))
        m.setField(434, response_to)
        if reason is not None:
            m.setField(102, reason)
        if text:
            m.setField(58, text)
        return m

    def order_mass_cancel_report(
        self,
        *,
        order_id: str,
        request_type: str,
        response: str,
        cl_ord_id: str | None = None,
        reject_reason: str | None = None,
        total_affected: int | None = None,
        affected: Iterable[tuple[str, str]] = (),
        symbol: str | None = None,
        text: str | None = None,
        now_ns: int | None = None,
    ) -> Any:
        """``affected``: (OrigClOrdID, AffectedOrderID) pairs for the NoAffectedOrders group."""
        m = _new("r")
        if cl_ord_id is not None:
            m.setField(11, cl_ord_id)
        m.setField(37, order_id)
        m.setField(530, request_type)
        m.setField(531, response)
        if reject_reason is not None:
            m.setField(532, reject_reason)
        if total_affected is not None:
            m.setField(533, str(total_affected))
        for orig, oid in affected:
            g = fix44.OrderMassCancelReport.NoAffectedOrders()
            g.setField(41, orig)
            g.setField(535, oid)
            m.addGroup(g)
        if symbol is not None:
            m.setField(55, symbol)
        m.setField(60, self.clock.timestamp(now_ns))
        if text:
            m.setField(58, text)
        return m

    def market_data_snapshot(
        self,
        symbol: str,
        bids: Iterable[tuple[int, int]],
        asks: Iterable[tuple[int, int]],
        trades: Iterable[tuple[int, int]] = (),
        md_req_id: str | None = None,
    ) -> Any:
        """W: bids (price ticks, qty) best first, asks best first, recent trades (price, qty)."""
        m = _new("W")
        if md_req_id is not None:
            m.setField(262, md_req_id)
        m.setField(55, symbol)
        n = 0
        for entry_type, levels in (("0", bids), ("1", asks), ("2", trades)):
            for pos, (px, qty) in enumerate(levels, 1):
                g = fix44.MarketDataSnapshotFullRefresh.NoMDEntries()
                g.setField(269, entry_type)
                g.setField(270, self.from_ticks(px))
                g.setField(271, str(qty))
                if entry_type != "2":
                    g.setField(290, str(pos))
                m.addGroup(g)
                n += 1
        if n == 0:  # NoMDEntries is required: an empty book says 268=0 (valid for FIX44.xml)
            m.setField(268, "0")
        return m

    def market_data_incremental(self, entries: Iterable[MDEntry], md_req_id: str | None = None) -> Any:
        m = _new("X")
        if md_req_id is not None:
            m.setField(262, md_req_id)
        for e in entries:
            g = fix44.MarketDataIncrementalRefresh.NoMDEntries()
            g.setField(279, e.action)
            g.setField(269, e.entry_type)
            g.setField(55, e.symbol)
            if e.price_ticks is not None:
                g.setField(270, self.from_ticks(e.price_ticks))
            if e.size is not None:
                g.setField(271, str(e.size))
            if e.position is not None:
                g.setField(290, str(e.position))
            m.addGroup(g)
        return m

    def market_data_request_reject(self, md_req_id: str, reason: str | None = None, text: str | None = None) -> Any:
        m = _new("Y")
        m.setField(262, md_req_id)
        if reason is not None:
            m.setField(281, reason)
        if text:
            m.setField(58, text)
        return m

    def business_message_reject(
        self,
        ref_msg_type: str,
        reason: int | str,
        text: str | None = None,
        ref_seq_num: int | None = None,
        ref_id: str | None = None,
    ) -> Any:
        m = _new("j")
        if ref_seq_num is not None:
            m.setField(45, str(ref_seq_num))
        m.setField(372, ref_msg_type or "?")
        if ref_id:
            m.setField(379, ref_id)
        m.setField(380, str(reason))
        if text:
            m.setField(58, text[:200])
        return m

    def trading_session_status(self, status: str, trading_session_id: str = "1", text: str | None = None) -> Any:
        """h: TradSesStatus(340) "1" halted, "2" open, "3" closed, "4" pre-open, for a whole
        trading session (FIX 4.4's h names no instrument: a one-symbol halt is a SecurityStatus)."""
        m = _new("h")
        m.setField(336, trading_session_id)
        m.setField(340, status)
        if text:
            m.setField(58, text)
        return m

    def security_status(
        self, symbol: str, trading_status: str, text: str | None = None, now_ns: int | None = None
    ) -> Any:
        """f (unsolicited): one instrument's SecurityTradingStatus(326), "2" trading halt, "3"
        resume, with the reason in Text."""
        m = _new("f")
        m.setField(55, symbol)
        m.setField(325, "Y")
        m.setField(326, trading_status)
        if text:
            m.setField(58, text)
        if now_ns is not None:
            m.setField(60, self.clock.timestamp(now_ns))
        return m

    def auction_indication(
        self,
        symbol: str,
        indicative_px_ticks: int | None,
        paired_qty: int,
        imbalance_qty: int,
        imbalance_side: str,
        collar_ticks: tuple[int | None, int | None] = (None, None),
        text: str | None = None,
        now_ns: int | None = None,
    ) -> Any:
        """f (unsolicited) while ``symbol`` is halted: what its reopening auction would do now.

        SecurityTradingStatus(326) is the imbalance: 7 market imbalance buy, 8 sell, 12 none;
        LastPx(31) the indicative price (absent: no price yet); BuyVolume(330) / SellVolume(331)
        the shares that would buy / sell at it (the paired quantity, plus the imbalance on its
        side); LowPx(333) / HighPx(332) the auction collar (absent: none)."""
        m = _new("f")
        m.setField(55, symbol)
        m.setField(325, "Y")
        m.setField(326, IMBALANCE_STATUS.get(imbalance_side, "12") if imbalance_qty > 0 else "12")
        buy = paired_qty + (imbalance_qty if imbalance_side == "B" else 0)
        sell = paired_qty + (imbalance_qty if imbalance_side == "S" else 0)
        m.setField(330, str(int(buy)))
        m.setField(331, str(int(sell)))
        lower, upper = collar_ticks
        if upper is not None:
            m.setField(332, self.from_ticks(upper))
        if lower is not None:
            m.setField(333, self.from_ticks(lower))
        if indicative_px_ticks is not None:
            m.setField(31, self.from_ticks(indicative_px_ticks))
        if now_ns is not None:
            m.setField(60, self.clock.timestamp(now_ns))
        if text:
            m.setField(58, text[:200])
        return m

    # -- readers ------------------------------------------------------------------------------------
    def fields(self, msg: Any, tags: Iterable[int] = ()) -> dict[str, str]:
        """Flat ``{tag: value}`` (tags as strings) of a message without repeating groups.

        A message the session layer received (:class:`Inbound`) was read from its frame already:
        that dict is returned (do not modify it). Otherwise one ``toString()`` and a split (about
        10x cheaper than a SWIG ``getField`` per tag). When the message holds raw data fields
        (which may contain SOH) or a repeated tag, falls back to ``getField`` for ``tags`` only."""
        flat = getattr(msg, "flat", None)
        if flat is not None:  # a received message: read from its frame already (Inbound)
            return flat  # type: ignore[no-any-return]
        d: dict[str, str] = {}
        dup = False
        for part in msg.toString().split("\x01"):
            k, _, v = part.partition("=")
            if k in d:
                dup = True
            d[k] = v
        if dup or not self._data_len_tags.isdisjoint(d):
            d = {}
            for tag in tags:
                if msg.isSetField(tag):
                    d[str(tag)] = msg.getField(tag)
        return d

    def _read_price(self, d: dict[str, str], ord_type: str) -> int | Invalid | None:
        raw = d.get("44")
        if ord_type == "MARKET" or ord_type == "STOP":
            return None  # a price on a market or stop order is ignored
        if raw is None:
            return Invalid("limit order without Price", 44, "11")
        try:
            return self.to_ticks(raw)
        except PriceError as exc:
            return Invalid(str(exc), 44, "99")

    def _read_stop_px(self, d: dict[str, str], ord_type: str) -> int | Invalid | None:
        """StopPx(99) in ticks for a STOP / STOP_LIMIT order (required); None for the others."""
        if ord_type not in STOP_TYPES:
            return None  # a StopPx on another order type is ignored
        raw = d.get("99")
        if raw is None:
            return Invalid("stop order without StopPx", 99, "11")
        try:
            px = self.to_ticks(raw)
        except PriceError as exc:
            return Invalid(str(exc), 99, "99")
        if px <= 0:
            return Invalid(f"StopPx must be positive: {raw!r}", 99, "99")
        return px

    def read_new_order(self, msg: Any) -> NewOrder | Invalid:
        d = self.fields(msg, (11, 55, 54, 38, 40, 44, 59, 18, 1, 99))
        cl = d.get("11")
        if not cl:
            return Invalid("ClOrdID missing", 11)
        symbol = d.get("55")
        if not symbol:
            return Invalid("Symbol missing", 55, "1")
        side = SIDE_FROM_FIX.get(d.get("54") or "")
        if side is None:
            return Invalid(f"unsupported Side {d.get('54')!r}", 54, "11")
        qty = _parse_qty(d.get("38"))
        if isinstance(qty, Invalid):
            return qty
        ord_type = ORD_TYPE_FROM_FIX.get(d.get("40") or "")
        if ord_type is None:
            return Invalid(f"unsupported OrdType {d.get('40')!r}", 40, "11")
        price = self._read_price(d, ord_type)
        if isinstance(price, Invalid):
            return price
        stop_px = self._read_stop_px(d, ord_type)
        if isinstance(stop_px, Invalid):
            return stop_px
        raw_tif = d.get("59")
        tif = "DAY" if raw_tif is None else TIF_FROM_FIX.get(raw_tif)
        if tif is None:
            return Invalid(f"unsupported TimeInForce {raw_tif!r}", 59, "11")
        exec_inst = d.get("18")
        post_only = bool(exec_inst) and POST_ONLY_EXEC_INST in exec_inst.split()  # type: ignore[union-attr]
        return NewOrder(cl, symbol, side, qty, ord_type, price, tif, post_only, d.get("1"), stop_px)

    def read_cancel(self, msg: Any) -> CancelRequest | Invalid:
        d = self.fields(msg, (11, 41, 54, 55, 37))
        cl = d.get("11")
        if not cl:
            return Invalid("ClOrdID missing", 11)
        orig = d.get("41")
        if not orig:
            return Invalid("OrigClOrdID missing", 41)
        side = SIDE_FROM_FIX.get(d.get("54") or "")
        if side is None:
            return Invalid(f"unsupported Side {d.get('54')!r}", 54)
        return CancelRequest(cl, orig, d.get("55") or "", side, d.get("37"))

    def read_replace(self, msg: Any) -> ReplaceRequest | Invalid:
        d = self.fields(msg, (11, 41, 54, 38, 40, 44, 59, 18, 37, 1, 55, 99))
        cl = d.get("11")
        if not cl:
            return Invalid("ClOrdID missing", 11)
        orig = d.get("41")
        if not orig:
            return Invalid("OrigClOrdID missing", 41)
        side = SIDE_FROM_FIX.get(d.get("54") or "")
        if side is None:
            return Invalid(f"unsupported Side {d.get('54')!r}", 54)
        qty = _parse_qty(d.get("38"))
        if isinstance(qty, Invalid):
            return Invalid(qty.text, qty.ref_tag)
        ord_type = ORD_TYPE_FROM_FIX.get(d.get("40") or "")
        if ord_type is None:
            return Invalid(f"unsupported OrdType {d.get('40')!r}", 40)
        price = self._read_price(d, ord_type)
        if isinstance(price, Invalid):
            return Invalid(price.text, price.ref_tag)
        stop_px = self._read_stop_px(d, ord_type)
        if isinstance(stop_px, Invalid):
            return Invalid(stop_px.text, stop_px.ref_tag)
        raw_tif = d.get("59")
        tif = None if raw_tif is None else TIF_FROM_FIX.get(raw_tif)
        if raw_tif is not None and tif is None:
            return Invalid(f"unsupported TimeInForce {raw_tif!r}", 59)
        exec_inst = d.get("18")
        post_only = bool(exec_inst) and POST_ONLY_EXEC_INST in exec_inst.split()  # type: ignore[union-attr]
        return ReplaceRequest(
            cl, orig, d.get("55") or "", side, qty, ord_type, price, tif, post_only, d.get("37"), d.get("1"), stop_px
        )

    def read_status(self, msg: Any) -> StatusRequest | Invalid:
        d = self.fields(msg, (11, 54, 55, 37))
        cl = d.get("11")
        if not cl:
            return Invalid("ClOrdID missing", 11)
        side = SIDE_FROM_FIX.get(d.get("54") or "")
        if side is None:
            return Invalid(f"unsupported Side {d.get('54')!r}", 54)
        return StatusRequest(cl, d.get("55") or "", side, d.get("37"))

    def read_mass_cancel(self, msg: Any) -> MassCancelRequest | Invalid:
        d = self.fields(msg, (11, 530, 55))
        cl = d.get("11")
        if not cl:
            return Invalid("ClOrdID missing", 11)
        rt = d.get("530")
        if rt not in ("1", "7"):
            return Invalid(f"unsupported MassCancelRequestType {rt!r}", 530, "0")
        symbol = d.get("55")
        if rt == "1" and not symbol:
            return Invalid("MassCancelRequestType=1 requires Symbol", 55, "1")
        return MassCancelRequest(cl, rt, symbol)

    def read_market_data_request(self, msg: Any) -> MarketDataReq | Invalid:
        req_id = _get(msg, 262)
        if not req_id:
            return Invalid("MDReqID missing", 262)
        sub = _get(msg, 263)
        if sub not in ("0", "1", "2"):
            return Invalid(f"unsupported SubscriptionRequestType {sub!r}", 263, "4")
        raw_depth = _get(msg, 264) or "0"
        try:
            depth = int(raw_depth)
        except ValueError:
            return Invalid(f"invalid MarketDepth {raw_depth!r}", 264, "5")
        if depth < 0:
            return Invalid(f"invalid MarketDepth {raw_depth!r}", 264, "5")
        if depth > MAX_MARKET_DEPTH:
            return Invalid(
                f"unsupported MarketDepth {depth}: 1..{MAX_MARKET_DEPTH} levels, or 0 for the full book", 264, "5"
            )
        update_type = _get(msg, 265)
        if update_type not in (None, "0", "1"):
            return Invalid(f"unsupported MDUpdateType {update_type!r}", 265, "6")
        entry_types: list[str] = []
        symbols: list[str] = []
        try:
            n = int(_get(msg, 267) or "0")
            g = fix44.MarketDataRequest.NoMDEntryTypes()
            for i in range(1, n + 1):
                msg.getGroup(i, g)
                entry_types.append(g.getField(269))
            n = int(_get(msg, 146) or "0")
            g2 = fix44.MarketDataRequest.NoRelatedSym()
            for i in range(1, n + 1):
                msg.getGroup(i, g2)
                symbols.append(g2.getField(55))
        except Exception as exc:
            return Invalid(f"malformed repeating group: {_exc_text(exc)}", 146)
        bad = [t for t in entry_types if t not in ("0", "1", "2")]
        if bad:
            return Invalid(f"unsupported MDEntryType {bad[0]!r}", 269, "8")
        if sub != "2" and not symbols:
            return Invalid("no symbols requested", 146, "0")
        return MarketDataReq(req_id, sub, depth, tuple(entry_types), tuple(symbols), update_type)


def _exc_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text


def _exc_field(exc: BaseException) -> int | None:
    field = getattr(exc, "field", None)
    try:
        return int(field) if field else None
    except (TypeError, ValueError):
        return None


def _scan_header(raw: str) -> tuple[str | None, int | None]:
    """Best-effort MsgType and MsgSeqNum from a frame quickfix refused to parse."""
    msg_type: str | None = None
    seq: int | None = None
    for part in raw.split("\x01")[:12]:
        tag, _, value = part.partition("=")
        if tag == "35" and msg_type is None:
            msg_type = value
        elif tag == "34" and seq is None:
            seq = int(value) if value.isdigit() else None
    return msg_type, seq
