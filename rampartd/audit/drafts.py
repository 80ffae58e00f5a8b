"""Decision records: the audit drafts of decided tool calls, the daemon's and a client's (pure)."""

from __future__ import annotations

from collections.abc import Mapping
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


def client_decision_draft(*, tool: str, arguments: Mapping[str, Any], action: str,
                          reason: str | None, mode: str, latency_ms: float,
                          context: Mapping[str, Any], agent: str, session: str | None,
                          run_id: str | None, agent_id: str | None,
                          agent_status: str | None) -> RecordDraft:
    """The `decision.client` draft of a decision a client made locally and logged."""
    detail: dict[str, Any] = {"source": "client", "mode": mode, "latency_ms": latency_ms,
                              "context": dict(context)}
    if agent_id is not None:
        detail["agent_id"] = agent_id
    if agent_status is not None and agent_status != "active":
        detail["agent_status"] = agent_status
    return RecordDraft(
        kind="decision.client", agent=agent, session=session, run_id=run_id, tool=tool,
        request=dict(arguments),
        decision={"action": action, "message": reason or "", "policy": None,
                  "matched_policies": [], "suggestions": [],
                  "evaluation_time_us": round(latency_ms * 1000)},
        detail=detail)
