"""The high and low of a stream of prices over a trailing time window."""

from __future__ import annotations

from collections import deque


class RollingRange:
    """High and low of the prices added within the last ``window_ns`` (a price added at ``t``
    counts while ``t >= now - window_ns``). Monotonic deques: O(1) amortised per price."""

    __slots__ = ("_hi", "_lo", "window_ns")

    def __init__(self, window_ns: int) -> None:
        self.window_ns = int(window_ns)
        self._hi: deque[tuple[int, int]] = deque()  # (time, price), prices falling from the left
        self._lo: deque[tuple[int, int]] = deque()  # (time, price), prices rising from the left

    def add(self, t_ns: int, price: int) -> None:
        hi, lo = self._hi, self._lo
        while hi and hi[-1][1] <= price:
            hi.pop()
        hi.append((t_ns, price))
        while lo and lo[-1][1] >= price:
            lo.pop()
        lo.append((t_ns, price))

    def high_low(self, now_ns: int) -> tuple[int, int] | None:
        """``(high, low)`` of the prices still inside the window at ``now_ns``; None when none are."""
        horizon = now_ns - self.window_ns
        hi, lo = self._hi, self._lo
        while hi and hi[0][0] < horizon:
            hi.popleft()
        while lo and lo[0][0] < horizon:
            lo.popleft()
        return (hi[0][1], lo[0][1]) if hi else None
