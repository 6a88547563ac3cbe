"""The one mapping from simulated time to FIX UTCTimestamp, on a run's trading date.

Simulated time is integer ns since midnight UTC of the trading date (a scenario's ``date:``,
:data:`DEFAULT_TRADING_DATE` when it gives none). :class:`FixClock` turns it into UTCTimestamp
for every timestamp desksim's FIX writes: TransactTime (60) in the codec's builders,
SendingTime (52) and OrigSendingTime (122) in the session layer, through the gateways (in a run
and in ``desksim serve``) -- so one message never shows two dates. Pure Python (no quickfix), so
the scenario schema can state the default.
"""

from __future__ import annotations

import datetime as _dt
import functools
import time
from dataclasses import dataclass

from sim.clock import SECOND

__all__ = ["DEFAULT_TRADING_DATE", "FixClock", "fix_timestamp"]


@functools.lru_cache(maxsize=4096)
def _second_stamp(sec: int) -> str:
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(sec))


def fix_timestamp(now_ns: int | None = None, precision: int = 3) -> str:
    """UTCTimestamp (``YYYYMMDD-HH:MM:SS.sss``, ``precision`` fraction digits, 0..9) of ``now_ns``
    nanoseconds since the Unix epoch (the wall clock when None). Simulated time goes through
    :class:`FixClock`, which adds the trading date."""
    if now_ns is None:
        now_ns = time.time_ns()
    if precision == 3:  # the usual one: every stamp of the same millisecond is the same string
        ms = int(now_ns) // 1_000_000
        text = _ms_stamps.get(ms)
        if text is None:
            if len(_ms_stamps) >= _MS_STAMPS:
                _ms_stamps.clear()
            sec, rem = divmod(ms, 1000)
            text = _ms_stamps[ms] = f"{_second_stamp(sec)}.{rem:03d}"
        return text
    sec, rem = divmod(int(now_ns), SECOND)
    stamp = _second_stamp(sec)
    if precision <= 0:
        return stamp
    return f"{stamp}.{rem:09d}"[: len(stamp) + 1 + min(precision, 9)]


_MS_STAMPS = 16
_ms_stamps: dict[int, str] = {}
"""Millisecond since the epoch -> its precision-3 UTCTimestamp, for the last few milliseconds
stamped (a server stamps wall-clock SendingTime and simulated TransactTime in turn, so one
entry would not do); emptied when full. Each entry is one dict item (atomic under the GIL), so
a reader in another thread never sees a half-made pair."""


DEFAULT_TRADING_DATE = _dt.date(2026, 1, 5)
"""The trading date of a scenario that does not give one (``date:`` in the scenario schema)."""


@functools.lru_cache(maxsize=64)
def _midnight_ns(day: _dt.date) -> int:
    return int(_dt.datetime(day.year, day.month, day.day, tzinfo=_dt.UTC).timestamp()) * SECOND


@dataclass(frozen=True, slots=True)
class FixClock:
    """The one mapping from simulated time to FIX UTCTimestamp: simulated ``t_ns`` counts
    nanoseconds from midnight UTC of ``trading_date`` (a run's scenario ``date``). The codec's
    builders stamp TransactTime (60) with it and the session layer SendingTime (52) and
    OrigSendingTime (122), so every timestamp of a run carries the same date. ``desksim serve``
    uses :meth:`today` (its sessions' SendingTime is quickfix's wall clock, which a peer checks
    against its own)."""

    trading_date: _dt.date = DEFAULT_TRADING_DATE

    @classmethod
    def today(cls) -> FixClock:
        return cls(_dt.datetime.now(_dt.UTC).date())

    def epoch_ns(self, t_ns: int) -> int:
        """Nanoseconds since the Unix epoch of simulated time ``t_ns``."""
        return _midnight_ns(self.trading_date) + int(t_ns)

    def timestamp(self, t_ns: int | None, precision: int = 3) -> str:
        """UTCTimestamp of simulated time ``t_ns`` (None: the wall clock now)."""
        return fix_timestamp(None if t_ns is None else _midnight_ns(self.trading_date) + t_ns, precision)
