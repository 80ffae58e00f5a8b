"""The one audit writer: a dedicated thread that group-commits jobs into the chain.

Why a stdlib sqlite3 connection on its own thread rather than an aiosqlite connection: a
group commit is many steps (BEGIN, per-job savepoints and txn_ops, redaction, hashing,
inserts, COMMIT with an fsync) and each aiosqlite call is one thread hop and one event-loop
wake-up. Here the whole group is one hop: the loop puts jobs on a queue, the thread does all
of the work back to back, and one call_soon_threadsafe hands the committed records and the
job results back to the loop. While the thread waits on fsync, new jobs queue up and form
the next group, so throughput grows with load while each caller still awaits its own commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ulid import ULID

from rampartd.audit.chain import (
    GENESIS_HASH,
    RecordDraft,
    build_record,
    columns_of,
    format_ts,
    parse_ts,
)
from rampartd.audit.checkpoints import append_checkpoint, has_checkpoints, sign_checkpoint
from rampartd.audit.migrations import apply_migrations
from rampartd.audit.redact import prepare_payload
from rampartd.errors import Unavailable
from rampartd.models import AuditRecord

log = logging.getLogger("rampartd.audit")

MAX_GROUP = 500
TxnOps = Callable[[sqlite3.Connection], Any]
DraftSource = Sequence[RecordDraft] | Callable[[Any], RecordDraft | Sequence[RecordDraft]]
# Literal secrets (the admin token) to redact from every record; called on the writer thread.
KnownSecrets = Callable[[], Collection[str]]
INSERT_SQL = ("INSERT INTO audit_log (seq, id, ts, kind, agent, session, tool, action, run_id, "
              "prev_hash, hash, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


@dataclass
class Job:
    """One unit of work: optional txn_ops, then its drafts, all in one savepoint."""

    drafts: DraftSource
    txn_ops: TxnOps | None
    future: asyncio.Future[tuple[Any, list[AuditRecord]]]


@dataclass
class _Outcome:
    job: Job
    error: BaseException | None = None
    value: Any = None
    records: list[AuditRecord] = field(default_factory=list)


@dataclass(frozen=True)
class CheckpointPolicy:
    """Where and how often the writer signs the chain head."""

    key: Any  # Ed25519PrivateKey
    path: Path
    every: int
    seconds: float


_STOP = object()


BUSY_TIMEOUT_SECONDS = 5.0  # how long a database access waits for another process's lock


def open_writer_connection(db_path: Path, busy_timeout: float = BUSY_TIMEOUT_SECONDS,
                           ) -> sqlite3.Connection:
    """The write connection: autocommit mode (we issue BEGIN), WAL, synchronous=FULL."""
    # SQLite gives the -wal and -shm files the database file's mode, so create it private.
    os.close(os.open(db_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {round(busy_timeout * 1000)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def read_head(conn: sqlite3.Connection) -> tuple[int, str, int]:
    """(seq, hash, ts in epoch µs) of the newest row, or (0, "", 0)."""
    row = conn.execute("SELECT seq, hash, ts FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    if row is None:
        return 0, GENESIS_HASH, 0
    moment = parse_ts(row[2])
    return int(row[0]), str(row[1]), int(moment.timestamp()) * 1_000_000 + moment.microsecond


def _seq_conflict(exc: BaseException) -> bool:
    """True if exc (or its cause) is a clash with a seq some other writer already used."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return isinstance(cause, sqlite3.IntegrityError) and "audit_log.seq" in str(cause)


class AuditWriter:
    """Owns the write connection and the thread that drains the job queue."""

    def __init__(self, db_path: Path, loop: asyncio.AbstractEventLoop,
                 deliver: Callable[[list[_Outcome], list[AuditRecord]], None],
                 checkpoints: CheckpointPolicy | None, *,
                 busy_timeout: float = BUSY_TIMEOUT_SECONDS,
                 known_secrets: KnownSecrets | None = None) -> None:
        self._db_path = db_path
        self._busy_timeout = busy_timeout
        self._known_secrets = known_secrets
        self._loop = loop
        self._deliver = deliver
        self._policy = checkpoints
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._ready: asyncio.Future[tuple[int, str]] = loop.create_future()
        self._done: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(target=self._run, name="rampartd-audit-writer",
                                        daemon=True)
        self._seq, self._hash, self._last_us = 0, GENESIS_HASH, 0
        self._signed_seq = 0
        self._unsigned_since: float | None = None  # when the oldest unsigned commit happened
        self.failed = False

    async def start(self) -> tuple[int, str]:
        """Start the thread; returns the head once migrations ran."""
        self._thread.start()
        return await self._ready

    def submit(self, job: Job) -> None:
        """Queue a job (called on the loop thread)."""
        self._queue.put(job)

    async def stop(self) -> None:
        """Finish queued jobs, write the final checkpoint and end the thread."""
        self._queue.put(_STOP)
        await self._done

    def _post(self, callback: Callable[..., Any], *args: Any) -> None:
        # RuntimeError: the loop is already closed, so nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback, *args)

    @staticmethod
    def _settle(future: asyncio.Future[Any], result: Any = None,
                error: BaseException | None = None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def _run(self) -> None:
        try:
            conn = open_writer_connection(self._db_path, self._busy_timeout)
            apply_migrations(conn)
            self._seq, self._hash, self._last_us = read_head(conn)
            # A head with no checkpoint file behind it is signed with the next commit.
            signed = self._policy is not None and has_checkpoints(self._policy.path)
            self._signed_seq = self._seq if signed else 0
        except Exception as exc:
            error = Unavailable(f"cannot open the audit log {self._db_path}: {exc}")
            self._post(self._settle, self._ready, None, error)
            self._post(self._settle, self._done, None)
            return
        self._post(self._settle, self._ready, (self._seq, self._hash))
        try:
            self._loop_jobs(conn)
        except BaseException as exc:
            self.failed = True
            log.exception("audit writer stopped unexpectedly")
            self._fail_pending(Unavailable(f"audit writer stopped: {exc}"))
        finally:
            self._checkpoint(force=True)
            conn.close()
            self._post(self._settle, self._done, None)

    def _timeout(self) -> float | None:
        if self._policy is None or self._unsigned_since is None:
            return None
        return max(0.0, self._unsigned_since + self._policy.seconds - time.monotonic())

    def _loop_jobs(self, conn: sqlite3.Connection) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._timeout())
            except queue.Empty:
                self._checkpoint()
                continue
            group: list[Job] = []
            stopping = False
            while True:
                if item is _STOP:
                    stopping = True
                    break
                group.append(item)
                if len(group) >= MAX_GROUP:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if group:
                self._commit_group(conn, group)
            if stopping:
                return

    def _fail_pending(self, error: Unavailable) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, Job):
                self._post(self._settle, item.future, None, error)

    def _build(self, job: Job, value: Any) -> tuple[_Outcome, list[tuple[Any, ...]]]:
        """Chain the job's records after the head (pure Python); returns them and their rows."""
        drafts = job.drafts(value) if callable(job.drafts) else job.drafts
        if isinstance(drafts, RecordDraft):
            drafts = [drafts]
        outcome = _Outcome(job, value=value)
        rows: list[tuple[Any, ...]] = []
        known = self._known_secrets() if self._known_secrets is not None else ()
        for draft in drafts:
            # ts never decreases along seq even if the wall clock steps back.
            now_us = max(time.time_ns() // 1000, self._last_us)
            record, canonical, digest = build_record(
                prepare_payload(draft.payload(), known=known), seq=self._seq + 1,
                record_id=str(ULID.from_timestamp(now_us / 1_000_000)),
                ts=format_ts(now_us), prev_hash=self._hash)
            rows.append((*columns_of(record), digest, canonical))
            record["hash"] = digest
            outcome.records.append(cast(AuditRecord, record))  # now complete, hash and all
            self._seq, self._hash, self._last_us = self._seq + 1, digest, now_us
        return outcome, rows

    def _run_isolated(self, conn: sqlite3.Connection, job: Job) -> _Outcome:
        """A job with txn_ops runs in its own savepoint, so its failure undoes only itself."""
        conn.execute("SAVEPOINT audit_job")
        try:
            outcome, rows = self._build(job, job.txn_ops(conn) if job.txn_ops else None)
            conn.executemany(INSERT_SQL, rows)
        except Exception as exc:
            conn.execute("ROLLBACK TO audit_job")
            conn.execute("RELEASE audit_job")
            if isinstance(exc, sqlite3.Error):  # e.g. disk full: the caller fails closed
                raise Unavailable(f"the audit record could not be made durable: {exc}") from exc
            raise
        conn.execute("RELEASE audit_job")
        return outcome

    def _commit_group(self, conn: sqlite3.Connection, group: list[Job]) -> None:
        start = (self._seq, self._hash, self._last_us)
        outcomes: list[_Outcome] = []
        # Plain appends are inserted together with one executemany: one GIL release per group
        # instead of several per record. Anything failing here fails the whole group.
        rows: list[tuple[Any, ...]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in group:
                if job.txn_ops is not None and rows:
                    conn.executemany(INSERT_SQL, rows)  # txn_ops sees every earlier record
                    rows = []
                before = (self._seq, self._hash, self._last_us)
                try:
                    if job.txn_ops is None:
                        outcome, job_rows = self._build(job, None)
                        rows.extend(job_rows)
                    else:
                        outcome = self._run_isolated(conn, job)
                except Exception as exc:
                    if not conn.in_transaction:
                        # SQLite aborted the whole transaction (disk full, I/O error): every
                        # record of the group is gone, so the group fails as one.
                        raise sqlite3.OperationalError(f"transaction aborted: {exc}") from exc
                    if _seq_conflict(exc):
                        # Another writer moved the head: fail the group so the head is re-read
                        # below, instead of chaining every later record onto a stale head.
                        raise sqlite3.IntegrityError(str(exc.__cause__ or exc)) from exc
                    self._seq, self._hash, self._last_us = before
                    outcomes.append(_Outcome(job, error=exc))
                    continue
                outcomes.append(outcome)
            if rows:
                conn.executemany(INSERT_SQL, rows)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.error("audit group commit failed: %s", exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            try:
                self._seq, self._hash, self._last_us = read_head(conn)
            except sqlite3.Error:
                self._seq, self._hash, self._last_us = start
            error = Unavailable(f"the audit record could not be made durable: {exc}")
            failed = {id(o.job): o.error for o in outcomes if o.error is not None}
            outcomes = [_Outcome(job, error=failed.get(id(job)) or error) for job in group]
        committed = [record for outcome in outcomes for record in outcome.records]
        if committed:
            if self._unsigned_since is None:
                self._unsigned_since = time.monotonic()
            # Before the callers learn of their commit: a checkpoint that is due (always the
            # chain's first record) is on disk by the time anyone can verify the chain.
            self._checkpoint()
        self._post(self._deliver, outcomes, committed)

    def _checkpoint(self, *, force: bool = False) -> None:
        """Sign the head when due: the chain's first record at once, then every `every`
        records and at most `seconds` after the oldest commit not yet signed."""
        policy = self._policy
        if policy is None or self._unsigned_since is None or self._seq == self._signed_seq:
            return
        due = (self._signed_seq == 0
               or self._seq // policy.every > self._signed_seq // policy.every
               or time.monotonic() - self._unsigned_since >= policy.seconds)
        if not (force or due):
            return
        try:
            append_checkpoint(policy.path, sign_checkpoint(policy.key, self._seq, self._hash))
        except OSError as exc:
            log.error("cannot write audit checkpoint to %s: %s", policy.path, exc)
        self._signed_seq, self._unsigned_since = self._seq, None
