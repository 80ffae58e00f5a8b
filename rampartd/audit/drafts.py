"""Decision records: the audit draft of one decided tool call (pure)."""

from __future__ import annotations

from typing import Any

from rampartd.audit.chain import RecordDraft
from rampartd.models import Decision, ToolCall


def decision_fields(decision: Decision) -> dict[str, Any]:
    """The `decision` object of an audit record."""
    return {
        "action": decision.action,
        "message": decision.message,
        "policy": decision.policy,
        "matched_policies": list(decision.matched_policies),
        "suggestions": list(decision.suggestions),
        "evaluation_time_us": decision.evaluation_time_us,
    }


def decision_draft(call: ToolCall, decision: Decision, **detail: Any) -> RecordDraft:
    """The audit record draft for one decided tool call; None-valued details are left out."""
    extra = {k: v for k, v in detail.items() if v is not None}
    if call.cwd is not None:
        extra["cwd"] = call.cwd
    return RecordDraft(
        kind="decision", agent=call.agent, session=call.session, run_id=call.run_id,
        tool_call_id=call.tool_call_id, tool=call.tool, request=dict(call.params),
        decision=decision_fields(decision), detail=extra or None,
    )
