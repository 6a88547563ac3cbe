"""Real trading days in LOBSTER format, read into the tables the realism statistics take, so a real
day and a simulated one are measured by the same code (``desksim realism --lobster``).

LOBSTER (lobsterdata.com; the public sample days the realism ranges come from) ships a day as two
CSV files without header, one row per event, the ``k``-th row of each describing the same event:

``TICKER_DATE_START_END_message_LEVEL.csv``
    ``time`` (seconds after midnight, decimals down to nanoseconds), ``type``, ``order_id``,
    ``size`` (shares), ``price`` (dollars x 10,000), ``direction`` (1 buy limit order, -1 sell limit
    order; for an execution the side of the *resting* order, so -1 is a buyer-initiated trade).
    Types: 1 submission of a new limit order (only what rests: the part of a marketable order that
    executed on arrival shows as executions of the orders it hit), 2 partial cancellation, 3
    deletion, 4 execution of a visible order, 5 execution of a hidden order, 6 cross trade
    (auction), 7 trading halt indicator.
``TICKER_DATE_START_END_orderbook_LEVEL.csv``
    The book after the event: ``ask price 1, ask size 1, bid price 1, bid size 1, ask price 2, ...``
    to ``LEVEL``; an empty level is priced 9999999999 (ask) / -9999999999 (bid) with size 0.
    ``START`` and ``END`` are milliseconds after midnight (34200000 = 09:30).

Mapping (times to integer nanoseconds, prices to ticks of ``tick_size``):
    ``trades``: every execution (types 4, 5) and cross trade (6), ``maker_id`` the executed order,
    ``aggressor_side`` the opposite of its side (``"?"`` for a cross);
    ``quotes``: the top level of the book file at each change (an empty side is NaN);
    ``orders``: a ``submit`` (detail ``DAY``) per submission, a ``canceled`` per deletion; partial
    cancellations, which leave the order resting, are counted in ``counts`` only.
So "new resting orders" are the submissions, "cancels" the deletions and "executions" the trades,
as :mod:`desksim.analytics.orderflow` defines them for a simulated run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.clock import MS, SECOND

#: LOBSTER's price unit: dollars x 10,000.
PRICE_SCALE = 10_000
#: the prices of an empty level in the book file.
EMPTY_ASK = 9_999_999_999
EMPTY_BID = -9_999_999_999
#: the regular session LOBSTER's sample days cover (ms after midnight).
DEFAULT_WINDOW_MS = (34_200_000, 57_600_000)

SUBMIT, PARTIAL_CANCEL, DELETE, EXECUTE, EXECUTE_HIDDEN, CROSS, HALT = 1, 2, 3, 4, 5, 6, 7
MESSAGE_COLUMNS = ("time", "type", "order_id", "size", "price", "direction")
NAME = re.compile(
    r"^(?P<ticker>[^_]+)_(?P<date>[^_]+)_(?P<start>\d+)_(?P<end>\d+)_(?:message|orderbook)_(?P<level>\d+)"
)


class LobsterError(ValueError):
    """A file that is not a LOBSTER message / order book pair."""


@dataclass(frozen=True, slots=True)
class LobsterDay:
    """One LOBSTER day as desksim tables (prices in ticks, times in ns after midnight)."""

    symbol: str
    date: str
    open_ns: int
    close_ns: int
    tick_size: float
    trades: pd.DataFrame
    quotes: pd.DataFrame
    orders: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.symbol} {self.date}"


def orderbook_path(message: str | Path) -> Path:
    """The order book file that belongs to a message file (same name, ``orderbook`` for ``message``)."""
    path = Path(message)
    if "_message_" not in path.name:
        raise LobsterError(f"{path.name}: not a LOBSTER message file name (TICKER_DATE_START_END_message_LEVEL.csv)")
    return path.with_name(path.name.replace("_message_", "_orderbook_"))


def _name_parts(path: Path) -> dict[str, str] | None:
    found = NAME.match(path.name)
    return found.groupdict() if found else None


def _read_messages(path: Path) -> pd.DataFrame:
    try:
        raw = pd.read_csv(path, header=None, dtype=str)
    except (OSError, pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        raise LobsterError(f"{path}: cannot read: {exc}") from exc
    if raw.shape[1] < len(MESSAGE_COLUMNS):
        raise LobsterError(f"{path}: {raw.shape[1]} columns, a LOBSTER message file has {len(MESSAGE_COLUMNS)}")
    raw = raw.iloc[:, : len(MESSAGE_COLUMNS)]
    raw.columns = list(MESSAGE_COLUMNS)
    try:
        out = pd.DataFrame({"time_ns": [_seconds_to_ns(s) for s in raw["time"]]})
        for col in MESSAGE_COLUMNS[1:]:
            out[col] = pd.to_numeric(raw[col], errors="raise").astype(np.int64)
    except (ValueError, TypeError) as exc:
        raise LobsterError(f"{path}: not a LOBSTER message file: {exc}") from exc
    return out


def _seconds_to_ns(text: str) -> int:
    """``"34200.004241176"`` -> 34200004241176, exactly (no float rounding)."""
    whole, _, frac = text.strip().partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"bad time {text!r}")
    return int(whole) * SECOND + int((frac + "000000000")[:9])


def _read_top(path: Path, rows: int) -> np.ndarray:
    """The first level of the order book file as ``(ask, ask_size, bid, bid_size)`` int64 rows."""
    try:
        book = pd.read_csv(path, header=None, usecols=[0, 1, 2, 3], dtype=np.int64)
    except (OSError, ValueError, pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        raise LobsterError(f"{path}: not a LOBSTER order book file: {exc}") from exc
    if len(book) != rows:
        raise LobsterError(f"{path}: {len(book)} rows, its message file has {rows}: not a pair")
    return book.to_numpy(dtype=np.int64)


def read_day(
    message: str | Path,
    orderbook: str | Path | None = None,
    *,
    tick_size: float = 0.01,
    window_ms: tuple[int, int] | None = None,
) -> LobsterDay:
    """Read a LOBSTER message file and its order book file (found by name when not given).

    The session is ``window_ms`` (ms after midnight), else the file name's START and END, else
    09:30-16:00. Prices become ticks of ``tick_size`` (floats: a price off the grid stays visible).
    """
    msg_path = Path(message)
    book_path = Path(orderbook) if orderbook is not None else orderbook_path(msg_path)
    parts = _name_parts(msg_path)
    if window_ms is None:
        window_ms = (int(parts["start"]), int(parts["end"])) if parts else DEFAULT_WINDOW_MS
    if not tick_size > 0:
        raise LobsterError("tick_size must be > 0")
    m = _read_messages(msg_path)
    top = _read_top(book_path, len(m))
    per_tick = tick_size * PRICE_SCALE
    t = m["time_ns"].to_numpy(dtype=np.int64)
    kind = m["type"].to_numpy()
    order_id, size = m["order_id"].to_numpy(), m["size"].to_numpy()
    side = np.where(m["direction"].to_numpy() > 0, "B", "S")
    price = m["price"].to_numpy(dtype=np.float64) / per_tick

    traded = np.isin(kind, (EXECUTE, EXECUTE_HIDDEN, CROSS))
    aggressor = np.where(kind[traded] == CROSS, "?", np.where(side[traded] == "B", "S", "B"))
    symbol = parts["ticker"] if parts else msg_path.stem
    trades = pd.DataFrame(
        {
            "time_ns": t[traded],
            "symbol": symbol,
            "price": price[traded],
            "qty": size[traded],
            "maker_id": order_id[traded],
            "taker_id": -1,
            "maker": "",
            "taker": "",
            "aggressor_side": aggressor,
        }
    )
    quotes = _quotes(t, top, per_tick)
    booked = np.isin(kind, (SUBMIT, DELETE))
    submitted = kind[booked] == SUBMIT
    orders = pd.DataFrame(
        {
            "time_ns": t[booked],
            "order_id": order_id[booked],
            "owner": "",
            "event": np.where(submitted, "submit", "canceled"),
            "side": side[booked],
            "price": price[booked],
            "qty": size[booked],
            "leaves_qty": np.where(submitted, size[booked], 0),
            "detail": np.where(submitted, "DAY", "canceled"),
        }
    )
    names = {
        "submissions": SUBMIT,
        "partial_cancels": PARTIAL_CANCEL,
        "deletions": DELETE,
        "executions": EXECUTE,
        "hidden_executions": EXECUTE_HIDDEN,
        "cross_trades": CROSS,
        "halt_messages": HALT,
    }
    counts = {name: int((kind == code).sum()) for name, code in names.items()}
    counts["messages"] = len(m)
    return LobsterDay(
        symbol=symbol,
        date=parts["date"] if parts else "",
        open_ns=window_ms[0] * MS,
        close_ns=window_ms[1] * MS,
        tick_size=tick_size,
        trades=trades,
        quotes=quotes,
        orders=orders,
        counts=counts,
    )


def _quotes(t: np.ndarray, top: np.ndarray, per_tick: float) -> pd.DataFrame:
    """A quote row per change of the top level (empty sides NaN, their sizes 0)."""
    ask, ask_qty, bid, bid_qty = (top[:, i] for i in range(4))
    ask_empty = (ask >= EMPTY_ASK) | (ask_qty <= 0)
    bid_empty = (bid <= EMPTY_BID) | (bid_qty <= 0)
    frame = pd.DataFrame(
        {
            "time_ns": t,
            "bid": np.where(bid_empty, np.nan, bid / per_tick),
            "bid_qty": np.where(bid_empty, 0, bid_qty),
            "ask": np.where(ask_empty, np.nan, ask / per_tick),
            "ask_qty": np.where(ask_empty, 0, ask_qty),
        }
    )
    if not len(frame):
        return frame
    values = frame[["bid", "bid_qty", "ask", "ask_qty"]].fillna(-1.0).to_numpy()
    changed = np.r_[True, (values[1:] != values[:-1]).any(axis=1)]
    return frame[changed].reset_index(drop=True)


def realism_of(day: LobsterDay) -> dict[str, Any]:
    """The realism statistics of a real day (:func:`desksim.analytics.realism.realism`), with its counts."""
    from desksim.analytics.realism import realism

    stats = realism(day.trades, day.quotes, day.open_ns, day.close_ns, day.tick_size, orders=day.orders)
    stats["lobster_counts"] = dict(day.counts)
    return stats
