"""Integer-nanosecond time helpers for the SimPy clock."""

from __future__ import annotations

NS = 1
US = 1_000
MS = 1_000_000
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def parse_clock(text: str) -> int:
    """'09:30' or '09:30:15' (time of day) -> nanoseconds since midnight."""
    parts = text.strip().split(":")
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"expected HH:MM or HH:MM:SS, got {text!r}")
    hours, minutes = int(parts[0]), int(parts[1])
    seconds = int(parts[2]) if len(parts) == 3 else 0
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"not a time of day: {text!r}")
    return hours * HOUR + minutes * MINUTE + seconds * SECOND


def format_clock(ns: int) -> str:
    """Nanoseconds since midnight -> 'HH:MM:SS.mmm'."""
    ms_total = ns // MS
    hours, rem = divmod(ms_total, 3_600_000)
    minutes, rem = divmod(rem, 60_000)
    seconds, millis = divmod(rem, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"
