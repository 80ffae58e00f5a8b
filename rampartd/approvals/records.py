"""The audit records of an approval's life: requested, resolved (alone or in a batch), expired."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rampartd.approvals.rows import Row, RunRef
from rampartd.audit.drafts import decision_fields
from rampartd.audit.store import RecordDraft
from rampartd.models import Decision


def approval_fields(row: Row, **extra: Any) -> dict[str, Any]:
    """The `approval` object of an approval.* audit record."""
    fields: dict[str, Any] = {"id": row["id"], "status": row["status"],
                              "source": row["source"], "expires_at": row["expires_at"]}
    for name in ("resolved_by", "reason", "resolved_at"):
        if row.get(name) is not None:
            fields[name] = row.get(name)
    fields.update({k: v for k, v in extra.items() if v is not None})
    return fields


def _about(kind: str, row: Row, **fields: Any) -> RecordDraft:
    """A record about the call this approval row is for."""
    return RecordDraft(kind=kind, agent=row["agent"], session=row["session"],
                       run_id=row["run_id"], tool_call_id=row["tool_call_id"], tool=row["tool"],
                       **fields)


def requested(row: Row, params: Mapping[str, Any], decision: Decision | None,
              **extra: Any) -> RecordDraft:
    """approval.requested: the new row, the call's params and the decision that asked, if any."""
    return _about("approval.requested", row, request=dict(params),
                  decision=None if decision is None else decision_fields(decision),
                  approval=approval_fields(row, created_at=row["created_at"],
                                           message=row["message"], **extra))


def resolved(row: Row, **extra: Any) -> RecordDraft:
    """approval.resolved: one approval decided (extra says how: via, credential)."""
    return _about("approval.resolved", row, approval=approval_fields(row, **extra),
                  batch_id=row["batch_id"])


def expired(row: Row) -> RecordDraft:
    """approval.expired: nobody decided in time."""
    return _about("approval.expired", row, approval=approval_fields(row))


def batch_resolved(run: RunRef, batch_id: str, detail: Mapping[str, Any]) -> RecordDraft:
    """approval.batch_resolved: the summary after a bulk resolution's own records."""
    return RecordDraft(kind="approval.batch_resolved", agent=run.agent, session=run.session,
                       run_id=run.run_id, batch_id=batch_id, detail=detail)
