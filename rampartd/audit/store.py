"""AuditStore: appends through the one writer thread, reads through aiosqlite connections.

Writes go to `AuditWriter` (see writer.py for why it is a stdlib connection on its own
thread); every read (queries, export, other modules' tables via `reader()`) uses separate
aiosqlite connections, which WAL lets run alongside the writer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite

from rampartd.audit.chain import RecordDraft, format_ts, parse_ts
from rampartd.audit.checkpoints import (
    CHECKPOINTS_FILE,
    has_checkpoints,
    load_or_create_signing_key,
)
from rampartd.audit.filters import (
    DECISION_KINDS,
    DECISION_KINDS_SQL,
    MAX_LIMIT,
    EventFilter,
    encode_cursor,
)
from rampartd.audit.redact import is_bulky, prepare_payload
from rampartd.audit.verify import verify_db
from rampartd.audit.writer import (
    BUSY_TIMEOUT_SECONDS,
    AuditWriter,
    CheckpointPolicy,
    DraftSource,
    Job,
    KnownSecrets,
    TxnOps,
)
from rampartd.errors import Unavailable
from rampartd.models import AuditRecord

__all__ = ["AuditStore", "EventFilter", "RecordDraft", "verify_db"]

log = logging.getLogger("rampartd.audit")
T = TypeVar("T")
OnCommit = Callable[[Sequence[AuditRecord]], None]
_IDLE_READERS = 4
_EXPORT_CHUNK = 1000
_TOP = 100  # stats list at most this many tools/agents/sessions, most frequent first


def decode_record(record: bytes, record_hash: str) -> AuditRecord:
    """A stored row as the record callers see (JSON decoded, with hash)."""
    data: dict[str, Any] = json.loads(record)
    data["hash"] = record_hash
    return cast(AuditRecord, data)  # the canonical bytes hold every other field


class AuditStore:
    """The hash-chained audit log: append (group-committed), query, export, verify."""

    def __init__(self, db_path: Path, home: Path | None, on_commit: OnCommit | None,
                 busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.db_path = db_path
        self.home = home
        self._on_commit = on_commit
        self._head: tuple[int, str] = (0, "")
        self._closed = False
        self._idle: list[aiosqlite.Connection] = []
        self._writer: AuditWriter | None = None
        self._busy_ms = round(busy_timeout * 1000)
        self._known_secrets: KnownSecrets | None = None
        # One thread for bulky drafts: a flood of them competes with itself, not with the rest.
        self._redactor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="rampartd-redact")

    @classmethod
    async def open(cls, db_path: Path, *, home: Path | None = None,
                   on_commit: OnCommit | None = None, checkpoint_every: int = 1000,
                   checkpoint_seconds: float = 60.0,
                   busy_timeout: float = BUSY_TIMEOUT_SECONDS,
                   known_secrets: KnownSecrets | None = None) -> AuditStore:
        """Open (creating and migrating) the database and start the writer.

        With a home, the chain head is signed into home/checkpoints.jsonl every
        checkpoint_every records or checkpoint_seconds, and on close. Every connection waits
        up to busy_timeout seconds for a lock another process holds. `known_secrets` gives
        literal secrets (the admin token) redacted from every record wherever they appear.
        """
        store = cls(Path(db_path), home, on_commit, busy_timeout)
        store._known_secrets = known_secrets
        policy = None
        if home is not None:
            key = await asyncio.to_thread(load_or_create_signing_key, home)
            policy = CheckpointPolicy(key, home / CHECKPOINTS_FILE, max(1, checkpoint_every),
                                      checkpoint_seconds)
        writer = AuditWriter(store.db_path, asyncio.get_running_loop(), store._deliver, policy,
                             busy_timeout=busy_timeout, known_secrets=known_secrets)
        store._head = await writer.start()
        store._writer = writer
        if policy is not None and store._head[0] > 0 and not has_checkpoints(policy.path):
            # The chain's first record is always signed, so this file was removed or emptied.
            # Say so in the chain itself before new checkpoints make the file look whole again.
            log.warning("%s is missing or empty although the audit log has %d records",
                        policy.path, store._head[0])
            await store.append(RecordDraft(kind="audit.checkpoints_missing", detail={
                "file": str(policy.path), "head_seq": store._head[0]}))
        return store

    def known_secrets(self) -> Collection[str]:
        """The literal secrets redacted from every record (for tables beside the log)."""
        return self._known_secrets() if self._known_secrets is not None else ()

    @property
    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last committed record; (0, "") when empty."""
        return self._head

    def _deliver(self, outcomes: Sequence[Any], committed: list[AuditRecord]) -> None:
        # Runs on the loop: head and subscribers learn of a commit before its callers do.
        if committed:
            self._head = (committed[-1]["seq"], committed[-1]["hash"])
            if self._on_commit is not None:
                try:
                    self._on_commit(committed)
                except Exception:
                    log.exception("audit on_commit callback failed")
        for outcome in outcomes:
            AuditWriter._settle(outcome.job.future, (outcome.value, outcome.records),
                                outcome.error)

    async def transact(self, txn_ops: Callable[[sqlite3.Connection], T] | None,
                       drafts: DraftSource) -> tuple[T, list[AuditRecord]]:
        """Run txn_ops in the writer's transaction, then append drafts; one savepoint for both.

        drafts may be a callable taking txn_ops' result. If txn_ops (or anything in the job)
        raises, nothing of the job is kept and the exception is raised here; if the group's
        commit fails, Unavailable is raised. Returns (txn_ops' result, stored records).
        """
        writer = self._writer
        if self._closed or writer is None or writer.failed:
            raise Unavailable("the audit log is closed")
        drafts = await self._redacted_ahead(drafts)
        future: asyncio.Future[tuple[Any, list[AuditRecord]]] = \
            asyncio.get_running_loop().create_future()
        writer.submit(Job(drafts, txn_ops, future))
        # A caller that gives up cancels only its wait: the writer still commits the job (it
        # skips settling a cancelled future), so a record is never undone.
        value, records = await future
        return value, records

    async def _redacted_ahead(self, drafts: DraftSource) -> DraftSource:
        """Bulky drafts redacted in a worker thread before they reach the writer, so one huge
        call does not hold up every record queued behind it. (The writer redacts every draft
        again; on a redacted, compacted payload that is one quick pass.)"""
        # Only the caller-supplied fields can be bulky; the rest are rampartd's own.
        if callable(drafts) or not any(is_bulky((d.request, d.detail)) for d in drafts):
            return drafts
        known = tuple(self.known_secrets())

        def redact_all() -> list[RecordDraft]:
            return [RecordDraft(**prepare_payload(d.payload(), known=known)) for d in drafts]

        return await asyncio.get_running_loop().run_in_executor(self._redactor, redact_all)

    async def append(self, draft: RecordDraft, *, txn_ops: TxnOps | None = None) -> AuditRecord:
        """Append one record and wait for its commit; returns the stored record (with hash)."""
        _, records = await self.transact(txn_ops, [draft])
        return records[0]

    async def append_many(self, drafts: DraftSource, *,
                          txn_ops: TxnOps | None = None) -> list[AuditRecord]:
        """Append several records as one job (consecutive seqs, same transaction)."""
        _, records = await self.transact(txn_ops, drafts)
        return records

    async def close(self) -> None:
        """Drain queued jobs, write a final checkpoint, stop the writer, close readers."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            await self._writer.stop()
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()
        self._redactor.shutdown(wait=False)

    @contextlib.asynccontextmanager
    async def reader(self) -> AsyncIterator[aiosqlite.Connection]:
        """A query-only aiosqlite connection to the database (pooled; default row factory)."""
        conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = await aiosqlite.connect(self.db_path)
            await conn.execute("PRAGMA query_only = ON")
            await conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        ok = False
        try:
            yield conn
            ok = True
        finally:
            if ok and not self._closed and len(self._idle) < _IDLE_READERS \
                    and not conn.in_transaction:
                conn.row_factory = None
                self._idle.append(conn)
            else:
                await conn.close()

    async def get(self, record_id: str) -> AuditRecord | None:
        """One record by its ULID (any case); None when absent."""
        async with self.reader() as conn, conn.execute(
                "SELECT record, hash FROM audit_log WHERE id = ?", (record_id.upper(),)) as cur:
            row = await cur.fetchone()
        return None if row is None else decode_record(row[0], row[1])

    async def query(self, f: EventFilter, *, limit: int = 100, before: int | None = None,
                    offset: int = 0) -> tuple[list[AuditRecord], str | None]:
        """Matching records older than seq `before` (if given), newest first, after skipping
        `offset` of them; and the cursor of the next page (None at the end)."""
        if not 1 <= limit <= MAX_LIMIT or offset < 0:
            raise ValueError(f"limit must be 1..{MAX_LIMIT} and offset 0 or more")
        where, args = f.where()
        if before is not None:
            where += " AND seq < ?"
            args.append(before)
        sql = (f"SELECT seq, record, hash FROM audit_log WHERE {where} "  # noqa: S608
               "ORDER BY seq DESC LIMIT ? OFFSET ?")
        async with self.reader() as conn, conn.execute(sql, (*args, limit + 1, offset)) as cur:
            rows = list(await cur.fetchall())
        page = rows[:limit]
        next_cursor = encode_cursor(page[-1][0]) if len(rows) > limit else None
        return [decode_record(r[1], r[2]) for r in page], next_cursor

    async def after_seq(self, seq: int, *, limit: int = MAX_LIMIT) -> list[AuditRecord]:
        """Records with seq greater than seq, ascending (replay and catch-up of the stream)."""
        if limit < 1:
            raise ValueError("limit must be 1 or more")
        async with self.reader() as conn, conn.execute(
                "SELECT record, hash FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit)) as cur:
            rows = await cur.fetchall()
        return [decode_record(r[0], r[1]) for r in rows]

    async def stats(self, since: str | None, until: str | None) -> dict[str, Any]:
        """Counts in [since, until) (stored-ts-shaped bounds): records by kind, decisions by
        action/tool/agent/session."""
        rng, args = EventFilter(since=since, until=until).where()
        kinds = DECISION_KINDS_SQL
        out: dict[str, Any] = {"since": since, "until": until}
        async with self.reader() as conn:
            async with conn.execute(
                    f"SELECT kind, COUNT(*) FROM audit_log WHERE {rng} "  # noqa: S608
                    "GROUP BY kind ORDER BY 2 DESC, 1", args) as cur:
                out["by_kind"] = {k: n for k, n in await cur.fetchall()}
            out["total"] = sum(out["by_kind"].values())
            out["decisions"] = sum(out["by_kind"].get(k, 0) for k in DECISION_KINDS)
            for column in ("action", "tool", "agent", "session"):
                sql = (f"SELECT {column}, COUNT(*) FROM audit_log WHERE {rng} "  # noqa: S608
                       f"AND {kinds} AND {column} IS NOT NULL "
                       f"GROUP BY {column} ORDER BY 2 DESC, 1 LIMIT {_TOP}")
                async with conn.execute(sql, (*args, *DECISION_KINDS)) as cur:
                    out[f"by_{column}"] = {k: n for k, n in await cur.fetchall()}
        return out

    async def dates(self) -> list[dict[str, Any]]:
        """Days (UTC) that have records, newest first, with their record counts."""
        async with self.reader() as conn, conn.execute(
                "SELECT substr(ts, 1, 10) AS day, COUNT(*) FROM audit_log "
                "GROUP BY day ORDER BY day DESC") as cur:
            return [{"date": d, "count": n} for d, n in await cur.fetchall()]

    async def export(self, f: EventFilter) -> AsyncIterator[bytes]:
        """Matching records as JSONL in seq order, in chunks; ends at the head seen at start."""
        where, args = f.where()
        async with self.reader() as conn:
            async with conn.execute("SELECT COALESCE(MAX(seq), 0) FROM audit_log") as cur:
                row = await cur.fetchone()
            last = int(row[0]) if row else 0
            after = 0
            sql = (f"SELECT seq, record, hash FROM audit_log WHERE {where} "  # noqa: S608
                   "AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?")
            while True:
                async with conn.execute(sql, (*args, after, last, _EXPORT_CHUNK)) as cur:
                    rows = list(await cur.fetchall())
                if not rows:
                    return
                # The stored canonical bytes are already a JSON object: add hash, skip a decode.
                yield b"".join(bytes(r[1])[:-1] + b',"hash":"' + r[2].encode() + b'"}\n'
                               for r in rows)
                if len(rows) < _EXPORT_CHUNK:
                    return
                after = rows[-1][0]

    async def verify(self) -> dict[str, Any]:
        """Verify the whole chain (and the home's checkpoints); the same report as the CLI."""
        cps = None if self.home is None else self.home / CHECKPOINTS_FILE  # key beside it
        return await asyncio.to_thread(verify_db, self.db_path, checkpoints=cps)

    async def recent_calls(self, since_ts: float, per_key: int | None = None,
                           ) -> list[tuple[str, str, float]]:
        """(agent, tool, epoch seconds) of decision records since since_ts, oldest first;
        with per_key, only the newest per_key of each (agent, tool)."""
        since = format_ts(max(0, int(since_ts * 1_000_000)))
        sql = ("SELECT agent, tool, ts FROM audit_log WHERE ts >= ? AND kind = 'decision' "
               "ORDER BY seq")
        args: tuple[Any, ...] = (since,)
        if per_key is not None:
            sql = ("SELECT agent, tool, ts FROM (SELECT seq, agent, tool, ts, ROW_NUMBER() "
                   "OVER (PARTITION BY agent, tool ORDER BY seq DESC) AS nth FROM audit_log "
                   "WHERE ts >= ? AND kind = 'decision') WHERE nth <= ? ORDER BY seq")
            args = (since, per_key)
        async with self.reader() as conn, conn.execute(sql, args) as cur:
            rows = await cur.fetchall()
        return [(a or "", t or "", parse_ts(ts).timestamp()) for a, t, ts in rows]
