"""The one Broadcaster: committed audit records → frames → each subscriber's bounded queue.

The audit store calls `Broadcaster.publish` on the event loop after every commit, so the stream
is the audit log, tailed. Publishing never awaits: it appends pre-encoded frames to in-memory
queues and wakes their readers. A subscriber whose queue overflows loses nothing; its queue is
dropped and it reads the missed records back from SQLite (catch-up), then returns to live.

Resume and catch-up share one rule, so nothing is sent twice or skipped: subscribe first (live
frames start queueing), read `after_seq(delivered)` page by page, then drop queued frames whose
id is not above the last seq read. Records are never deleted from the log, so a cursor can
only be "not in the log" by being beyond the head; that gets one `reset` frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from rampartd.errors import TooManyRequests, Unavailable
from rampartd.models import AuditRecord
from rampartd.stream.frames import (
    Frame,
    StreamFilter,
    connected_frame,
    frames_for,
    lagged_frame,
    reset_frame,
)

log = logging.getLogger("rampartd.stream.broadcaster")
MAX_BEHIND = 100_000  # records; further behind than this, catching up is not worth it
REPLAY_PAGE = 500
SWEEP_SECONDS = 0.5  # how soon a vanished client's slot is freed
# Readers are woken at most this often under load, so one write carries several commits;
# an event after a quiet spell is still delivered at once.
FLUSH_SECONDS = 0.02
RETRY_AFTER_SECONDS = 5


class RecordSource(Protocol):
    """What the broadcaster reads missed records from (the audit store)."""

    @property
    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last committed record."""
        ...

    async def after_seq(self, seq: int, *, limit: int = ...) -> list[AuditRecord]:
        """Records with seq greater than seq, ascending."""
        ...


class DirectWriter(Protocol):
    """Writes frames to a client without awaiting, when its connection can take them now."""

    def ready(self) -> bool:
        """True if a write now cannot block (connection open, little buffered)."""
        ...

    def write(self, frames: Sequence[Frame]) -> None:
        """Hand the frames to the connection (never blocks)."""
        ...


class Subscription:
    """One stream's view of the log: a bounded queue of live frames plus its resume position."""

    def __init__(self, owner: Broadcaster, flt: StreamFilter, credential_id: str,
                 cursor: int | None) -> None:
        head = owner.head_seq
        self.owner = owner
        self.filter = flt
        self.credential_id = credential_id
        self.alive: Callable[[], bool] | None = None  # set by the transport; False = gone
        self.direct: DirectWriter | None = None  # set by the transport once the stream is open
        self._idle = False  # the reader is parked in next(): no write of its own in flight
        self.closed = False
        self._everything = flt.is_empty
        self._queue: deque[Frame] = deque()
        self._limit = owner.queue_size
        self._wake = asyncio.Event()
        self._pending: list[Frame] = [connected_frame(head)]
        self._overflowed = False
        if cursor is not None and cursor > head:
            self._pending.append(reset_frame(head))
            cursor = None
        # delivered: every matching record up to this seq has been handed out (or skipped).
        self.delivered = head if cursor is None else cursor
        self._catching_up = cursor is not None and cursor < head

    def offer(self, frames: Sequence[Frame]) -> bool:
        """Queue the matching frames of one commit (never blocks; overflow → catch-up).

        Returns True if anything was queued; the broadcaster wakes the reader later.
        """
        if self.closed:
            return False
        queued = False
        for frame in frames:
            if not self._everything and not self.filter.matches(frame):
                continue
            if len(self._queue) >= self._limit:
                # Drop the queue rather than the client: these records are re-read from SQLite.
                self._queue.clear()
                self._overflowed = self._catching_up = True
                self.owner.overflow_total += 1
            self._queue.append(frame)
            queued = True
        return queued

    def wake(self) -> None:
        """Deliver what is queued: written right here if the reader is idle and the
        connection can take it (no task switch per subscriber), else by the reader's task."""
        direct = self.direct
        if self._idle and direct is not None and not self._catching_up \
                and not self._pending and not self.closed and direct.ready():
            frames = self._drain()
            if frames:
                direct.write(frames)
            return
        self._wake.set()

    def close(self) -> None:
        """End this subscription; its reader gets None next."""
        self.closed = True
        self._wake.set()

    async def next(self) -> list[Frame] | None:
        """The next frames to send, in order; waits for some; None once closed."""
        while True:
            if self.closed:
                return None
            if self._pending:
                out, self._pending = self._pending, []
                return out
            if self._catching_up:
                out = await self._catch_up_step()
                if out:
                    return out
                continue
            if self._queue:
                out = self._drain()
                if out:
                    return out
                continue
            self._wake.clear()
            self._idle = True
            try:
                await self._wake.wait()
            finally:
                self._idle = False

    def _drain(self) -> list[Frame]:
        last = self.delivered
        out = [f for f in self._queue if f.id is None or f.id > last]
        self._queue.clear()
        # Not catching up and no overflow: every matching frame up to the head was queued.
        self.delivered = max(last, self.owner.head_seq)
        return out

    async def _catch_up_step(self) -> list[Frame]:
        """One page of missed records from SQLite (or a `lagged` jump to the head)."""
        self._overflowed = False
        owner = self.owner
        head = owner.head_seq
        if head - self.delivered > owner.max_behind:
            skipped = head - self.delivered
            self.delivered = head
            self._catching_up = False
            return [lagged_frame(skipped)]
        source = owner.source
        if source is None:
            raise Unavailable("the event stream has no audit log attached")
        limit = owner.page_size
        while True:
            records = await source.after_seq(self.delivered, limit=limit)
            final = len(records) < limit
            frames, _held = frames_for(records, final=final)
            if frames or final:
                break
            limit *= 2  # one bulk operation larger than a page: read it whole
        if frames:
            last_id = frames[-1].id
            assert last_id is not None
            self.delivered = last_id
        if final and not self._overflowed:
            # Everything committed since this read started is in the queue (subscribe first).
            self._catching_up = False
        return [f for f in frames if self._everything or self.filter.matches(f)]


class Broadcaster:
    """Fans committed records out to subscribers; enforces the stream limits."""

    def __init__(self, *, queue_size: int = 1024, max_per_credential: int = 10,
                 max_total: int = 1000, max_behind: int = MAX_BEHIND,
                 page_size: int = REPLAY_PAGE, flush_interval: float = FLUSH_SECONDS,
                 sweep_interval: float = SWEEP_SECONDS) -> None:
        self.queue_size = queue_size
        self.max_per_credential = max_per_credential
        self.max_total = max_total
        self.max_behind = max_behind
        self.page_size = page_size
        self.flush_interval = flush_interval
        self.sweep_interval = sweep_interval
        self._dirty: dict[Subscription, None] = {}  # woken at the next flush, in order
        self._flush_at: asyncio.TimerHandle | asyncio.Handle | None = None
        self._last_flush = float("-inf")
        self.head_seq = 0
        self.overflow_total = 0  # subscriber queue overflows (each one switched to catch-up)
        self.source: RecordSource | None = None
        self._subs: dict[Subscription, None] = {}  # insertion-ordered set
        self._per_credential: Counter[str] = Counter()
        self._closed = False
        self._sweeper: asyncio.Task[None] | None = None

    def bind(self, source: RecordSource) -> None:
        """Attach the audit store (replay source) and take its head."""
        self.source = source
        self.head_seq = max(self.head_seq, source.head[0])

    @property
    def clients(self) -> int:
        """Open subscriptions."""
        return len(self._subs)

    def publish(self, records: Sequence[Mapping[str, Any]]) -> None:
        """The store's on_commit: frame the committed records and queue them (never awaits)."""
        if not records:
            return
        self.head_seq = max(self.head_seq, int(records[-1]["seq"]))
        if not self._subs:
            return
        frames, _ = frames_for(records)
        dirty = self._dirty
        for sub in self._subs:
            if sub.offer(frames):
                dirty[sub] = None
        if dirty and self._flush_at is None:
            loop = asyncio.get_running_loop()
            due = self._last_flush + self.flush_interval
            now = loop.time()
            self._flush_at = loop.call_soon(self._flush) if due <= now else \
                loop.call_at(due, self._flush)

    def _flush(self) -> None:
        self._flush_at = None
        self._last_flush = asyncio.get_running_loop().time()
        dirty, self._dirty = self._dirty, {}
        for sub in dirty:
            sub.wake()

    def subscribe(self, flt: StreamFilter, *, credential_id: str,
                  cursor: int | None = None) -> Subscription:
        """Register a subscriber; 429 (TooManyRequests) beyond the per-credential/total caps."""
        if self._closed:
            raise Unavailable("rampartd is shutting down")
        if len(self._subs) >= self.max_total:
            raise TooManyRequests(f"too many open event streams (limit {self.max_total})",
                                  retry_after=RETRY_AFTER_SECONDS)
        if self._per_credential[credential_id] >= self.max_per_credential:
            raise TooManyRequests(
                f"too many open event streams for this credential "
                f"(limit {self.max_per_credential})", retry_after=RETRY_AFTER_SECONDS)
        sub = Subscription(self, flt, credential_id, cursor)
        self._subs[sub] = None
        self._per_credential[credential_id] += 1
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep())
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a subscriber (idempotent)."""
        sub.close()
        if self._subs.pop(sub, False) is None:
            self._per_credential[sub.credential_id] -= 1
            if self._per_credential[sub.credential_id] <= 0:
                del self._per_credential[sub.credential_id]

    def end_streams(self) -> None:
        """Close every subscription and refuse new ones (daemon shutdown)."""
        self._closed = True
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        self._dirty.clear()
        for sub in list(self._subs):
            sub.close()

    def end_credential(self, credential_id: str) -> None:
        """Close the streams opened with one credential (its agent changed or its token went)."""
        for sub in list(self._subs):
            if sub.credential_id == credential_id:
                sub.close()

    async def close(self) -> None:
        """End all streams and stop the sweeper."""
        self.end_streams()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def _sweep(self) -> None:
        # aiohttp does not tell a streaming handler that its client went away until a write
        # fails; checking transports here frees limit slots promptly without per-stream timers.
        while True:
            await asyncio.sleep(self.sweep_interval)
            for sub in list(self._subs):
                alive = sub.alive
                try:
                    if alive is not None and not alive():
                        sub.close()
                except Exception:  # a broken check must not stop the sweep for everyone
                    log.exception("stream liveness check failed")
                    sub.close()
