"""The approvals tables: row shapes, keys, and the operations run inside an audit job.

Every function returning a `TxnOps` builds a closure for `AuditStore.transact`: it runs on the
audit writer's thread inside the job's savepoint, so the row change and the audit records
describing it commit together or not at all. Raising inside one rolls the job back.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import astuple, dataclass
from typing import Any, NotRequired, TypedDict, cast

import rfc8785

from rampartd.audit.chain import format_ts
from rampartd.errors import Conflict, Gone, NotFound

COLUMNS: tuple[str, ...] = (
    "id", "call_key", "status", "source", "agent", "session", "run_id", "tool_call_id", "tool",
    "request", "message", "policy", "matched_policies", "created_at", "expires_at",
    "expires_epoch", "resolved_at", "resolved_by", "reason", "batch_id", "cwd",
)
# Built from the constant column list above, never from input.
SELECT = "SELECT " + ", ".join(COLUMNS) + " FROM approvals"  # noqa: S608
_RETURNING = " RETURNING " + ", ".join(COLUMNS)
_CLAIM = ("UPDATE approvals SET status = ?, resolved_at = ?, resolved_by = ?, "  # noqa: S608
          "reason = ?, batch_id = ? WHERE id = ? AND status = 'pending' AND expires_epoch > ?"
          + _RETURNING)
_EXPIRE = ("UPDATE approvals SET status = 'expired', resolved_at = ? WHERE id = ? "  # noqa: S608
           "AND status = 'pending' AND expires_epoch <= ?" + _RETURNING)


class ApprovalRow(TypedDict):
    """One row of the approvals table (the columns of COLUMNS)."""

    id: str
    call_key: str
    status: str  # pending | approved | denied | expired
    source: str  # policy | operator
    agent: str
    session: str
    run_id: str | None
    tool_call_id: str | None
    tool: str
    request: str  # JSON of the redacted params
    message: str | None
    policy: str | None
    matched_policies: str  # JSON list
    created_at: str
    expires_at: str
    expires_epoch: float
    resolved_at: str | None
    resolved_by: str | None
    reason: str | None
    batch_id: str | None
    cwd: str | None


class ApprovalView(TypedDict):
    """The API's JSON shape of an approval: the row without its keys, JSON decoded."""

    id: str
    status: str
    source: str
    agent: str
    session: str
    run_id: str | None
    tool_call_id: str | None
    tool: str
    request: dict[str, Any]
    message: str | None
    policy: str | None
    matched_policies: list[str]
    created_at: str
    expires_at: str
    resolved_at: str | None
    resolved_by: str | None
    reason: str | None
    batch_id: str | None
    cwd: str | None
    expires_in: NotRequired[float]  # seconds left, while pending


Row = ApprovalRow
TxnOps = Callable[[sqlite3.Connection], Any]


class GrantSpent(Exception):
    """The grant a call hoped to use is gone (used, expired or never committed)."""


def iso(epoch: float) -> str:
    """RFC 3339 UTC with microseconds for an epoch time."""
    return format_ts(int(epoch * 1_000_000))


def _digest(value: Any) -> str:
    try:
        data: bytes = rfc8785.dumps(value)
    except Exception:  # e.g. integers beyond 2**53: fall back to sorted plain JSON
        data = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(data).hexdigest()


def call_key(agent: str, session: str, run_id: str | None, tool_call_id: str | None,
             tool: str, params: Mapping[str, Any], cwd: str | None) -> str:
    """Identity of a call for de-duplication and one-shot grants (params by canonical hash).

    cwd is part of it: the same relative path from another directory is another file.
    """
    params_sha = _digest({"tool": tool, "params": dict(params), "cwd": cwd})
    return "call:" + _digest([agent, session, run_id, tool_call_id, params_sha])


def run_key(agent: str, session: str, run_id: str) -> str:
    """Identity of a run for run-scope grants."""
    return "run:" + _digest([agent, session, run_id])


def to_row(values: Sequence[Any]) -> Row:
    """A selected approvals row keyed by COLUMNS."""
    return cast(Row, dict(zip(COLUMNS, values, strict=True)))  # SELECT lists COLUMNS


def view(row: Row, now: float) -> ApprovalView:
    """The API's JSON shape of an approval."""
    out: dict[str, Any] = {k: v for k, v in row.items()
                           if k not in ("call_key", "expires_epoch")}
    out["request"] = json.loads(row["request"])
    out["matched_policies"] = json.loads(row["matched_policies"])
    if row["status"] == "pending":
        out["expires_in"] = round(max(0.0, row["expires_epoch"] - now), 3)
    return cast(ApprovalView, out)


def record_fields(row: Row, **extra: Any) -> dict[str, Any]:
    """The `approval` object of an approval.* audit record."""
    fields: dict[str, Any] = {"id": row["id"], "status": row["status"],
                              "source": row["source"], "expires_at": row["expires_at"]}
    for name in ("resolved_by", "reason", "resolved_at"):
        if row.get(name) is not None:
            fields[name] = row.get(name)
    fields.update({k: v for k, v in extra.items() if v is not None})
    return fields


@dataclass(frozen=True)
class NewApproval:
    """Everything a pending approval row is created with (column order of COLUMNS)."""

    id: str
    call_key: str
    status: str
    source: str
    agent: str
    session: str
    run_id: str | None
    tool_call_id: str | None
    tool: str
    request: str  # JSON of the redacted params
    message: str | None
    policy: str | None
    matched_policies: str  # JSON list
    created_at: str
    expires_at: str
    expires_epoch: float
    resolved_at: None = None
    resolved_by: None = None
    reason: None = None
    batch_id: None = None
    cwd: str | None = None  # relative paths in `request` resolve against it

    def row(self) -> Row:
        """The row as a dict."""
        return to_row(astuple(self))


def insert_pending(new: NewApproval, cap: int, now: float) -> TxnOps:
    """Reuse an identical live pending approval, refuse past the cap, or insert new.

    Returns ("reused" | "full" | "created", row or None).
    """
    def run(conn: sqlite3.Connection) -> tuple[str, Row | None]:
        found = conn.execute(
            SELECT + " WHERE call_key = ? AND status = 'pending' AND expires_epoch > ? "
            "ORDER BY created_at LIMIT 1", (new.call_key, now),
        ).fetchone()
        if found is not None:
            return "reused", to_row(found)
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM approvals WHERE status = 'pending'").fetchone()
        if count >= cap:
            return "full", None
        conn.execute(f"INSERT INTO approvals ({', '.join(COLUMNS)}) "  # noqa: S608
                     f"VALUES ({', '.join('?' * len(COLUMNS))})", astuple(new))
        return "created", new.row()
    return run


def _missing_or_gone(conn: sqlite3.Connection, approval_id: str) -> Exception:
    row = conn.execute("SELECT status FROM approvals WHERE id = ?", (approval_id,)).fetchone()
    if row is None:
        return NotFound(f"no approval {approval_id}")
    status = row[0] if row[0] != "pending" else "expired"
    return Gone(f"approval {approval_id} is already {status}", code=f"approval_{status}")


def _grant(conn: sqlite3.Connection, key: str, kind: str, source_id: str,
           where: tuple[str, str, str | None], expires: float) -> None:
    """Record a grant left by approval (or batch) `source_id` for (agent, session, run_id)."""
    conn.execute("INSERT OR REPLACE INTO approval_grants (key, kind, approval_id, agent, "
                 "session, run_id, expires_epoch) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (key, kind, source_id, *where, expires))


@dataclass(frozen=True)
class Resolution:
    """How one or more approvals are decided."""

    approved: bool
    resolved_by: str
    reason: str | None
    now: float
    grant_seconds: float  # lifetime of the one-shot retry grant an approval leaves

    @property
    def status(self) -> str:
        """The new status."""
        return "approved" if self.approved else "denied"


def _claim(conn: sqlite3.Connection, approval_id: str, how: Resolution,
           batch_id: str | None) -> Row | None:
    found = conn.execute(_CLAIM, (
        how.status, iso(how.now), how.resolved_by, how.reason, batch_id, approval_id,
        how.now)).fetchone()
    if found is None:
        return None
    row = to_row(found)
    if how.approved:
        _grant(conn, "once:" + row["call_key"], "once", row["id"],
               (row["agent"], row["session"], row["run_id"]), how.now + how.grant_seconds)
    return row


def resolve_one(approval_id: str, how: Resolution, *, link_signature: str | None = None) -> TxnOps:
    """Atomically claim one pending approval (NotFound if unknown, Gone if no longer pending)."""
    def run(conn: sqlite3.Connection) -> Row:
        if link_signature is not None:
            # Only a digest of the spent signature is kept: enough to refuse its reuse.
            spent = hashlib.sha256(link_signature.encode()).hexdigest()
            try:
                conn.execute("INSERT INTO approval_link_uses (signature, approval_id, used_at) "
                             "VALUES (?, ?, ?)", (spent, approval_id, iso(how.now)))
            except sqlite3.IntegrityError:
                raise Gone("this approval link was already used", code="link_used") from None
        row = _claim(conn, approval_id, how, None)
        if row is None:
            raise _missing_or_gone(conn, approval_id)
        return row
    return run


@dataclass(frozen=True)
class RunRef:
    """One agent/session/run_id a bulk resolution is about."""

    agent: str
    session: str
    run_id: str


def resolve_batch(ids: Sequence[str], run: RunRef, how: Resolution, batch_id: str,
                  run_grant_until: float | None) -> TxnOps:
    """Claim exactly these pending approvals of one run (Conflict if any is not); optionally grant
    the run until run_grant_until. Returns the claimed rows."""
    def run_ops(conn: sqlite3.Connection) -> list[Row]:
        rows: list[Row] = []
        for approval_id in ids:
            found = conn.execute(SELECT + " WHERE id = ?", (approval_id,)).fetchone()
            if found is None:
                raise NotFound(f"no approval {approval_id}")
            current = to_row(found)
            if (current["agent"], current["session"], current["run_id"]) != \
                    (run.agent, run.session, run.run_id):
                raise Conflict(f"approval {approval_id} does not belong to this agent, session "
                               "and run_id", code="approval_not_in_run")
            row = _claim(conn, approval_id, how, batch_id)
            if row is None:
                status = current["status"] if current["status"] != "pending" else "expired"
                raise Conflict(f"approval {approval_id} is no longer pending ({status}); "
                               "review the queue again", code="approval_not_pending")
            rows.append(row)
        if run_grant_until is not None:
            _grant(conn, run_key(run.agent, run.session, run.run_id), "run", batch_id,
                   (run.agent, run.session, run.run_id), run_grant_until)
        return rows
    return run_ops


def expire_due(ids: Sequence[str], now: float) -> TxnOps:
    """Mark these approvals expired if they are still pending and overdue; returns those rows."""
    def run(conn: sqlite3.Connection) -> list[Row]:
        rows: list[Row] = []
        for approval_id in ids:
            found = conn.execute(_EXPIRE, (iso(now), approval_id, now)).fetchone()
            if found is not None:
                rows.append(to_row(found))
        return rows
    return run


def use_grant(key: str, now: float) -> TxnOps:
    """Use a grant: a one-shot one is deleted (spent), a run one must still be live.

    Returns the approval (or batch) id the grant came from; raises GrantSpent otherwise.
    """
    def run(conn: sqlite3.Connection) -> str:
        if key.startswith("once:"):
            found = conn.execute("DELETE FROM approval_grants WHERE key = ? AND "
                                 "expires_epoch > ? RETURNING approval_id",
                                 (key, now)).fetchone()
        else:
            found = conn.execute("SELECT approval_id FROM approval_grants WHERE key = ? AND "
                                 "expires_epoch > ?", (key, now)).fetchone()
        if found is None:
            raise GrantSpent(key)
        return str(found[0])
    return run


def drop_stale_grants(now: float) -> TxnOps:
    """Delete grants past their deadline (housekeeping at start-up)."""
    def run(conn: sqlite3.Connection) -> int:
        return conn.execute("DELETE FROM approval_grants WHERE expires_epoch <= ?",
                            (now,)).rowcount
    return run
