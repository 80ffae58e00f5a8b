"""Request rate limits: a sliding-window limiter keyed by credential, and the reload gate."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from rampartd.errors import TooManyRequests


class SlidingWindowLimiter:
    """Allows at most `limit` hits per key within any `window` seconds."""

    def __init__(self, limit: int, window: float, *,
                 clock: Callable[[], float] = time.monotonic, what: str = "requests") -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self.clock = clock
        self.what = what
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str) -> None:
        """Count one hit for key, or raise TooManyRequests (not counted) when over the limit."""
        now = self.clock()
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
        horizon = now - self.window
        while hits and hits[0] <= horizon:
            hits.popleft()
        if len(hits) >= self.limit:
            retry = max(1, math.ceil(hits[0] + self.window - now))
            raise TooManyRequests(f"{self.what} are limited to {self.limit} per "
                                  f"{self.window:g} seconds per credential; retry in {retry} s",
                                  retry_after=retry)
        hits.append(now)
        if len(self._hits) > 1024:  # forget idle keys so deleted credentials do not pile up
            self._hits = {k: v for k, v in self._hits.items() if v and v[-1] > horizon}


class ReloadGate:
    """Refuses API reloads closer than `min_interval` seconds apart."""

    def __init__(self, min_interval: float = 1.0, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.min_interval = min_interval
        self.clock = clock
        self.last = float("-inf")

    def check(self) -> None:
        """Raise TooManyRequests if the previous reload was too recent."""
        now = self.clock()
        if now - self.last < self.min_interval:
            raise TooManyRequests(f"policy reloads are limited to one per "
                                  f"{self.min_interval:g} seconds",
                                  retry_after=max(1, math.ceil(self.min_interval)))
        self.last = now
