"""Single-use nonces for signed requests, remembered only as long as their timestamp is valid.

A signed request carries a timestamp and a nonce; the daemon accepts it only while the
timestamp is within the window of its clock, and only once. A nonce is remembered until its
request could no longer pass the timestamp check, so memory is bounded by the request rate
over two windows — and by a hard cap: when the cap is reached the oldest nonces are dropped
and every request stamped at or before the newest dropped one is refused from then on, so
dropping a nonce never lets its request be replayed. For the same reason a new ledger (a
daemon that just started, whose predecessor's nonces are gone) refuses every request stamped
before it was made.
"""

from __future__ import annotations

import collections

MAX_NONCES = 100_000


class NonceLedger:
    """Which (key id, nonce) pairs have been used within the timestamp window."""

    def __init__(self, window: float, *, started: float, limit: int = MAX_NONCES) -> None:
        self.window = window
        self.limit = limit
        # (key id, nonce) -> (forget at, request ts); insertion order is arrival order
        self._seen: collections.OrderedDict[tuple[str, str], tuple[float, float]] = \
            collections.OrderedDict()
        # Requests stamped before this are refused: before the ledger existed (their nonces
        # may have been spent with a previous daemon), or whose nonces were dropped at the cap.
        self._floor = started

    def fresh(self, ts: float, now: float) -> bool:
        """True when a request stamped `ts` (epoch seconds) may still be accepted at `now`."""
        return ts >= self._floor and abs(now - ts) <= self.window

    def use(self, ident: str, nonce: str, ts: float, now: float) -> bool:
        """Spend a nonce: False if its request is stale or the pair was already used."""
        self._forget(now)
        if not self.fresh(ts, now) or (ident, nonce) in self._seen:
            return False
        # ts ≤ now + window, so by now + 2 windows the request fails the timestamp check.
        self._seen[ident, nonce] = (now + 2 * self.window, ts)
        while len(self._seen) > self.limit:
            _, (_, dropped_ts) = self._seen.popitem(last=False)
            # just above the dropped stamp: it and everything before it fail `fresh`
            self._floor = max(self._floor, dropped_ts + 0.001)
        return True

    def __len__(self) -> int:
        return len(self._seen)

    def _forget(self, now: float) -> None:
        while self._seen:
            key, (until, _) = next(iter(self._seen.items()))
            if until > now:
                return
            del self._seen[key]
