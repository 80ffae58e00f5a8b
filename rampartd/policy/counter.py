"""Call counts for `call_count` rules, in memory bounded by what the loaded rules can ask.

A rule `call_count: {max: N, window: W}` only needs to know whether an agent made N or more
calls to a tool in the last W seconds. So per (agent, tool) the counter keeps at most the
newest `keep` timestamps (the largest `max` in use) no older than `horizon` (the longest
window in use): counts up to `keep` are exact, larger ones are reported as `keep`, which is
the same decision for every loaded rule. With no call_count rule nothing is kept at all.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable
from typing import Protocol

from rampartd.policy.policyset import PolicySet

# The longest call_count window a policy may use; the daemon rebuilds the counts of this
# much history from the audit log at start-up. Longer windows are refused at load time.
MAX_WINDOW_SECONDS = 24 * 3600.0
# Keys whose newest call is beyond the horizon are dropped every this many records.
_SWEEP_EVERY = 4096


class CallCounter(Protocol):
    """How many calls an agent made to a tool in a sliding window (state kept by the caller)."""

    def count(self, agent: str, tool: str, window_seconds: float, now: float) -> int:
        """Calls recorded in (now - window_seconds, now]."""
        ...


def requirements(policy_set: PolicySet) -> tuple[int, float]:
    """(largest max, longest window) over the enabled call_count rules; (0, 0.0) if none."""
    keep, horizon = 0, 0.0
    for policy in policy_set.enabled:
        for rule in policy.rules:
            if rule.call_count is not None:
                keep = max(keep, rule.call_count.max)
                horizon = max(horizon, rule.call_count.window)
    return keep, horizon


class SlidingWindowCounter:
    """In-memory CallCounter: the newest `keep` timestamps per (agent, tool) within `horizon`.

    `keep=None` keeps every timestamp within the horizon (for policy tests and one-off checks).
    """

    def __init__(self, keep: int | None = None,
                 horizon_seconds: float = MAX_WINDOW_SECONDS) -> None:
        self.keep = keep
        self.horizon = horizon_seconds
        self._calls: dict[tuple[str, str], deque[float]] = {}
        self._records = 0

    def __len__(self) -> int:
        """Timestamps held, over all keys."""
        return sum(len(times) for times in self._calls.values())

    def record(self, agent: str, tool: str, ts: float) -> None:
        """Remember one call at time ts (seconds)."""
        if self.keep == 0:
            return
        times = self._calls.get((agent, tool))
        if times is None:
            times = self._calls[agent, tool] = deque(maxlen=self.keep)
        if not times or ts >= times[-1]:
            times.append(ts)  # the usual case; a full deque drops its oldest
        elif times.maxlen is None or len(times) < times.maxlen:
            times.insert(bisect.bisect_right(times, ts), ts)
        elif ts > times[0]:
            times.popleft()
            times.insert(bisect.bisect_right(times, ts), ts)
        # else: older than every kept call of a full key, so it can change no answer
        while times and times[0] <= times[-1] - self.horizon:
            times.popleft()
        self._records += 1
        if self._records % _SWEEP_EVERY == 0:
            self._sweep(ts)

    def _sweep(self, now: float) -> None:
        cut = now - self.horizon
        for key in [k for k, times in self._calls.items() if not times or times[-1] <= cut]:
            del self._calls[key]

    def count(self, agent: str, tool: str, window_seconds: float, now: float) -> int:
        """Calls recorded in (now - window_seconds, now], up to `keep`."""
        times = self._calls.get((agent, tool))
        if not times:
            return 0
        return bisect.bisect_right(times, now) - bisect.bisect_right(times, now - window_seconds)

    def reconfigure(self, keep: int | None, horizon_seconds: float,
                    history: Iterable[tuple[str, str, float]] = ()) -> None:
        """Adopt new bounds; `history` (oldest first, e.g. from the audit log) fills in calls
        older than what is held, which a larger bound now needs."""
        held = self._calls
        self.keep, self.horizon = keep, horizon_seconds
        self._calls = {}
        older: dict[tuple[str, str], list[float]] = {}
        for agent, tool, ts in history:
            times = held.get((agent, tool))
            if not times or ts < times[0]:
                older.setdefault((agent, tool), []).append(ts)
        for key in older.keys() | held.keys():
            for ts in (*older.get(key, ()), *held.get(key, ())):
                self.record(key[0], key[1], ts)
