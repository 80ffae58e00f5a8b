"""Pending approvals: creation on ask, atomic resolution, waits, expiry, and the grants they leave.

Every state change is one audit job whose txn_ops change the approvals tables (see
rows.py), so the row and the records describing it commit together. In-memory state
(pending deadlines, waiters, grants) is updated only after that commit has returned, so nobody
is woken and no grant is usable before the record is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ulid import ULID

from rampartd.approvals import rows
from rampartd.approvals.rows import (
    ApprovalView,
    GrantSpent,
    NewApproval,
    Resolution,
    Row,
    RunRef,
)
from rampartd.audit.drafts import decision_draft, decision_fields
from rampartd.audit.redact import prepare_payload, redact_text
from rampartd.audit.store import AuditStore, RecordDraft
from rampartd.errors import Unavailable
from rampartd.models import AuditRecord, Decision, Outcome, ToolCall

log = logging.getLogger("rampartd.approvals.queue")
MAX_LIST = 500
BULK_SCOPES = ("pending", "run")  # the reviewed approvals only, or also the run's future asks
EXPIRY_RETRY_SECONDS = 1.0  # after a failed expiry write (the audit log is unavailable)


def _ids(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v.upper() for v in values))


def group_by_run(views: Sequence[ApprovalView]) -> list[dict[str, Any]]:
    """Pending approvals grouped by agent, session and run_id, in queue order."""
    groups: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    for item in views:
        key = (item["agent"], item["session"], item["run_id"])
        group = groups.setdefault(key, {"agent": key[0], "session": key[1], "run_id": key[2],
                                        "count": 0, "ids": [],
                                        "earliest_expires_at": item["expires_at"]})
        group["count"] += 1
        group["ids"].append(item["id"])
        group["earliest_expires_at"] = min(group["earliest_expires_at"], item["expires_at"])
    return list(groups.values())


def _resolved_draft(row: Row, **extra: Any) -> RecordDraft:
    return RecordDraft(kind="approval.resolved", agent=row["agent"], session=row["session"],
                       run_id=row["run_id"], tool_call_id=row["tool_call_id"], tool=row["tool"],
                       approval=rows.record_fields(row, **extra), batch_id=row["batch_id"])


def _requested_draft(row: Row, params: Mapping[str, Any], decision: Decision | None,
                     **extra: Any) -> RecordDraft:
    return RecordDraft(kind="approval.requested", agent=row["agent"], session=row["session"],
                       run_id=row["run_id"], tool_call_id=row["tool_call_id"], tool=row["tool"],
                       request=dict(params),
                       decision=None if decision is None else decision_fields(decision),
                       approval=rows.record_fields(row, created_at=row["created_at"],
                                                   message=row["message"], **extra))


class Approvals:
    """The approval queue of one daemon: persisted in SQLite, recorded in the audit chain."""

    def __init__(self, store: AuditStore, *, timeout: float, max_pending: int,
                 retry_seconds: float = EXPIRY_RETRY_SECONDS) -> None:
        self.store = store
        self.timeout = timeout
        self.max_pending = max_pending
        self.retry_seconds = retry_seconds  # after a failed expiry write
        self._pending: dict[str, float] = {}  # approval id -> expires (epoch seconds)
        # grant key -> (expires, the approval or batch id that granted it)
        self._grants: dict[str, tuple[float, str]] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Load pending approvals and live grants, then start the expiry task."""
        now = time.time()
        async with self.store.reader() as conn:
            async with conn.execute("SELECT id, expires_epoch FROM approvals "
                                    "WHERE status = 'pending'") as cur:
                self._pending = {str(i): float(e) for i, e in await cur.fetchall()}
            async with conn.execute("SELECT key, expires_epoch, approval_id FROM approval_grants "
                                    "WHERE expires_epoch > ?", (now,)) as cur:
                self._grants = {str(k): (float(e), str(a)) for k, e, a in await cur.fetchall()}
        await self.store.transact(rows.drop_stale_grants(now), [])
        # Overdue approvals (the daemon was down when they expired) are expired at once.
        self._task = asyncio.create_task(self._expiry_loop(), name="rampartd-approval-expiry")

    def release_waiters(self) -> None:
        """Wake every waiter (they answer with the current state); used at shutdown."""
        self._closing = True
        events, self._events = self._events, {}
        for event in events.values():
            event.set()

    async def close(self) -> None:
        """Stop the expiry task and release waiters; pending approvals stay in SQLite."""
        self.release_waiters()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def pending_count(self) -> int:
        """How many approvals are pending."""
        return len(self._pending)

    @property
    def waited_on(self) -> frozenset[str]:
        """Ids of the pending approvals somebody is waiting on right now."""
        return frozenset(self._events)

    # ---------------------------------------------------------------- tool calls

    async def handle_ask(self, call: ToolCall, decision: Decision) -> Outcome:
        """An ask: allowed by a live grant, else a (new or reused) pending approval."""
        key = self._call_key(call)
        granted = await self._use_grant(call, decision, key)
        if granted is not None:
            return granted
        now = time.time()
        new = await self._new_row(call, key, now, self.timeout, source="policy",
                                  message=decision.message, decision=decision)

        def drafts(result: tuple[str, Row | None]) -> list[RecordDraft]:
            state, row = result
            if state == "full":
                return [decision_draft(call, decision, approval_refused="approval queue full")]
            assert row is not None
            if state == "reused":
                return [decision_draft(call, decision, approval_id=row["id"],
                                       approval_reused=True)]
            return [decision_draft(call, decision, approval_id=row["id"]),
                    _requested_draft(row, call.params, decision)]

        row, records, _ = await self._insert(new, now, drafts)
        return Outcome(decision, records[0], "pending", approval={
            "approval_id": row["id"], "approval_status": "pending",
            "expires_at": row["expires_at"]})

    async def settle(self, asked: Outcome, seconds: float) -> Outcome | None:
        """Hold a pending ask until its approval is decided or `seconds` pass.

        None means approved: the caller then retries the call, which is evaluated afresh and
        spends the one-shot grant only if the policy still asks. Otherwise the denial of a
        denied or expired approval, or the unchanged pending outcome when nobody decided in time.
        """
        approval_id = asked.approval.get("approval_id")
        if asked.verdict != "pending" or not isinstance(approval_id, str):
            return asked
        await self.wait(approval_id, seconds)
        row = await self._row(approval_id)
        if row is None or row["status"] == "pending":
            return asked
        if row["status"] == "approved":
            return None
        fields = {"approval_id": approval_id, "approval_status": row["status"]}
        decision = asked.decision
        if row["status"] == "denied":
            message = f"denied by {row['resolved_by']}"
            message += f": {row['reason']}" if row["reason"] else ""
        else:
            message = (f"approval {approval_id} expired without a decision "
                       f"(approvals expire after {self.timeout:g} s)")
        denied = Decision("deny", message, policy=decision.policy,
                          matched_policies=decision.matched_policies,
                          evaluation_time_us=decision.evaluation_time_us)
        return Outcome(denied, asked.record, "denied", approval=fields)

    async def _use_grant(self, call: ToolCall, decision: Decision, key: str) -> Outcome | None:
        now = time.time()
        candidates = ["once:" + key]
        if call.run_id is not None:
            candidates.append(rows.run_key(call.agent, call.session, call.run_id))
        for grant in candidates:
            expires, source_id = self._grants.get(grant, (0.0, ""))
            if expires <= now:
                continue
            if grant.startswith("once:"):
                text = f"allowed by approval {source_id} (the one retry of the approved call)"
            else:
                text = f"allowed by the approval of run {call.run_id!r} (batch {source_id})"
            allowed = Decision("allow", text, policy=None,
                               matched_policies=decision.matched_policies,
                               evaluation_time_us=decision.evaluation_time_us)
            draft = decision_draft(call, allowed, approval_id=source_id,
                                   grant=grant.partition(":")[0], policy_action=decision.action)
            try:
                _, records = await self.store.transact(rows.use_grant(grant, now), [draft])
            except GrantSpent:
                self._grants.pop(grant, None)
                continue
            if grant.startswith("once:"):
                self._grants.pop(grant, None)
            return Outcome(allowed, records[0], "allowed", approval={
                "approval_id": source_id, "approval_status": "approved"})
        return None

    # ---------------------------------------------------------------- reads and waits

    async def get(self, approval_id: str) -> ApprovalView | None:
        """One approval's view, or None."""
        row = await self._row(approval_id)
        return None if row is None else rows.view(row, time.time())

    async def query(self, *, status: str | None = "pending", agent: str | None = None,
                   session: str | None = None, run_id: str | None = None,
                   limit: int = 100) -> list[ApprovalView]:
        """Approvals matching the filters: pending ones oldest first, others newest first."""
        where, args = [], []
        for column, value in (("status", status), ("agent", agent), ("session", session),
                              ("run_id", run_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = rows.SELECT + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY created_at" + ("" if status == "pending" else " DESC") + " LIMIT ?"
        async with self.store.reader() as conn, conn.execute(sql, (*args, limit)) as cur:
            found = await cur.fetchall()
        now = time.time()
        return [rows.view(rows.to_row(r), now) for r in found]

    async def wait(self, approval_id: str, seconds: float) -> None:
        """Return when the approval is no longer pending, or after `seconds`."""
        if self._closing or approval_id not in self._pending or seconds <= 0:
            return
        event = self._events.setdefault(approval_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    # ---------------------------------------------------------------- decisions

    async def create(self, call: ToolCall, *, message: str | None, lifetime: float | None,
                     requested_by: str | None) -> tuple[ApprovalView, bool]:
        """An approval made by an operator or a script; returns (view, created)."""
        now = time.time()
        new = await self._new_row(call, self._call_key(call), now, lifetime or self.timeout,
                                  source="operator", message=message, decision=None)

        def drafts(result: tuple[str, Row | None]) -> list[RecordDraft]:
            state, row = result
            if state != "created" or row is None:
                return []
            return [_requested_draft(row, call.params, None, requested_by=requested_by)]

        row, _, created = await self._insert(new, now, drafts)
        return rows.view(row, time.time()), created

    async def resolve(self, approval_id: str, *, approved: bool, resolved_by: str,
                      reason: str | None = None, via: str = "api", credential: str | None = None,
                      link_signature: str | None = None) -> ApprovalView:
        """Decide one pending approval; the first resolver wins, later ones get Gone."""
        how = self._resolution(approved, resolved_by, reason)
        row, _ = await self.store.transact(
            rows.resolve_one(approval_id.upper(), how, link_signature=link_signature),
            lambda row: [_resolved_draft(row, via=via, credential=credential)])
        self._after_resolution([row], how)
        return rows.view(row, time.time())

    async def bulk_resolve(self, run: RunRef, ids: Sequence[str], *, approved: bool,
                           scope: str, resolved_by: str, reason: str | None = None,
                           credential: str | None = None) -> dict[str, Any]:
        """Resolve exactly the reviewed pending approvals of one run, as one batch.

        scope "run" (approve only) also allows the run's future asks until the approval
        timeout. Any id that is no longer pending makes the whole batch a Conflict.
        """
        ids = _ids(ids)
        # The request was checked in web/; these would be a caller's mistake, not the user's.
        if scope not in BULK_SCOPES or (scope == "run" and not approved) \
                or (scope == "pending" and not ids):
            raise ValueError(f"bulk resolve: scope {scope!r} with approved={approved} "
                             f"and {len(ids)} ids")
        how = self._resolution(approved, resolved_by, reason)
        resolved_by = how.resolved_by
        batch_id = str(ULID())
        until = how.now + self.timeout if scope == "run" else None
        action = "approve" if approved else "deny"
        detail: dict[str, Any] = {"run_id": run.run_id, "count": len(ids), "ids": ids,
                                  "scope": scope, "action": action, "resolved_by": resolved_by}
        if until is not None:
            detail["grant_expires_at"] = rows.iso(until)

        def drafts(claimed: list[Row]) -> list[RecordDraft]:
            return [*(_resolved_draft(r, via="bulk", credential=credential) for r in claimed),
                    RecordDraft(kind="approval.batch_resolved", agent=run.agent,
                                session=run.session, run_id=run.run_id, batch_id=batch_id,
                                detail=detail)]

        claimed, _ = await self.store.transact(
            rows.resolve_batch(ids, run, how, batch_id, until), drafts)
        if until is not None:
            self._grants[rows.run_key(run.agent, run.session, run.run_id)] = (until, batch_id)
        self._after_resolution(claimed, how)
        now = time.time()
        return {**detail, "batch_id": batch_id, "approvals": [rows.view(r, now) for r in claimed]}

    # ---------------------------------------------------------------- internals

    @staticmethod
    def _call_key(call: ToolCall) -> str:
        return rows.call_key(call.agent, call.session, call.run_id, call.tool_call_id,
                             call.tool, call.params, call.cwd)

    async def _insert(self, new: NewApproval, now: float,
                      drafts: Callable[[tuple[str, Row | None]], list[RecordDraft]],
                      ) -> tuple[Row, list[AuditRecord], bool]:
        """Add (or reuse) a pending approval in one audit job; returns (row, records, created).

        Shielded: a caller that goes away must not leave a committed approval unscheduled.
        """
        async def commit() -> tuple[tuple[str, Row | None], list[AuditRecord]]:
            result = await self.store.transact(
                rows.insert_pending(new, self.max_pending, now), drafts)
            (state, row), _ = result
            if state == "created" and row is not None:
                self._add_pending(row)  # from now on its expiry is scheduled
            return result

        (state, row), records = await asyncio.shield(commit())
        if state == "full" or row is None:
            raise Unavailable(f"{self.max_pending} approvals are already pending; resolve "
                              "some before asking for more", code="approval_queue_full")
        return row, records, state == "created"

    def _resolution(self, approved: bool, resolved_by: str, reason: str | None) -> Resolution:
        """A resolution whose free texts are redacted like the audit log, since the row
        and the API serve them as given."""
        known = self.store.known_secrets()
        return Resolution(approved, redact_text(resolved_by, known),
                          None if reason is None else redact_text(reason, known),
                          time.time(), self.timeout)

    async def _new_row(self, call: ToolCall, key: str, now: float, lifetime: float, *,
                       source: str, message: str | None,
                       decision: Decision | None) -> NewApproval:
        # Every stored text is redacted exactly as in the audit log; a big request takes a
        # while, so it is done off the event loop.
        clean = await asyncio.to_thread(
            prepare_payload, {"request": dict(call.params), "message": message,
                              "cwd": call.cwd}, known=self.store.known_secrets())
        matched = [] if decision is None else list(decision.matched_policies)
        return NewApproval(
            id=str(ULID()), call_key=key, status="pending", source=source, agent=call.agent,
            session=call.session, run_id=call.run_id, tool_call_id=call.tool_call_id,
            tool=call.tool, request=json.dumps(clean["request"], ensure_ascii=False),
            message=clean["message"], policy=None if decision is None else decision.policy,
            matched_policies=json.dumps(matched), created_at=rows.iso(now),
            expires_at=rows.iso(now + lifetime), expires_epoch=now + lifetime,
            cwd=clean["cwd"])

    def _add_pending(self, row: Row) -> None:
        self._pending[row["id"]] = row["expires_epoch"]
        self._wake.set()  # the expiry task recomputes its next deadline

    def _after_resolution(self, resolved: Iterable[Row], how: Resolution) -> None:
        for row in resolved:
            if row["status"] == "approved":
                self._grants["once:" + row["call_key"]] = (how.now + how.grant_seconds,
                                                           row["id"])
        self._settled(row["id"] for row in resolved)

    def _settled(self, ids: Iterable[str]) -> None:
        for approval_id in ids:
            self._pending.pop(approval_id, None)
            event = self._events.pop(approval_id, None)
            if event is not None:
                event.set()

    async def _row(self, approval_id: str) -> Row | None:
        async with self.store.reader() as conn, conn.execute(
                rows.SELECT + " WHERE id = ?", (approval_id.upper(),)) as cur:
            found = await cur.fetchone()
        return None if found is None else rows.to_row(found)

    async def _expiry_loop(self) -> None:
        while True:
            self._wake.clear()
            now = time.time()
            due = [i for i, expires in self._pending.items() if expires <= now]
            if due:
                try:
                    await self._expire(due, now)
                except Exception:  # keep the task alive; the approvals are retried
                    log.exception("could not record expired approvals")
                    await asyncio.sleep(self.retry_seconds)
                continue
            self._grants = {k: v for k, v in self._grants.items() if v[0] > now}
            nearest = min(self._pending.values(), default=None)
            timeout = None if nearest is None else max(0.0, nearest - now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _expire(self, ids: list[str], now: float) -> None:
        def drafts(expired: list[Row]) -> list[RecordDraft]:
            return [RecordDraft(kind="approval.expired", agent=r["agent"], session=r["session"],
                                run_id=r["run_id"], tool_call_id=r["tool_call_id"],
                                tool=r["tool"], approval=rows.record_fields(r))
                    for r in expired]

        await self.store.transact(rows.expire_due(ids, now), drafts)
        # Ids that were not expired were resolved meanwhile; either way they left the queue.
        self._settled(ids)

