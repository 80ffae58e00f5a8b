"""Value types shared by the engine, the audit log, approvals and the stream."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, TypedDict

Action = Literal["allow", "deny", "ask", "watch"]
ACTIONS: tuple[Action, ...] = ("allow", "deny", "ask", "watch")
# Most restrictive first: across policies the strongest action wins.
SEVERITY: dict[str, int] = {"deny": 3, "ask": 2, "watch": 1, "allow": 0}


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call an agent wants to make."""

    tool: str
    agent: str
    session: str
    params: Mapping[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    tool_call_id: str | None = None
    cwd: str | None = None


class Decision(NamedTuple):
    """What the policy set says about a ToolCall (a tuple: one is built for every call, and
    a frozen dataclass costs several times more to build)."""

    action: Action
    message: str
    policy: str | None = None  # the policy whose rule decided, None for default_action
    matched_policies: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = ()
    evaluation_time_us: int = 0

    @property
    def allowed(self) -> bool:
        """True when the call may run without a human (allow or watch)."""
        return self.action in ("allow", "watch")


class AuditRecord(TypedDict):
    """One committed audit record (the chain's unit): what happened, where it sits, its hash."""

    seq: int
    id: str  # ULID
    ts: str  # RFC 3339 UTC with microseconds
    kind: str
    agent: str | None
    session: str | None
    run_id: str | None
    tool_call_id: str | None
    tool: str | None
    request: dict[str, Any] | None  # redacted params
    decision: dict[str, Any] | None
    approval: dict[str, Any] | None
    batch_id: str | None
    detail: dict[str, Any] | None
    prev_hash: str
    hash: str


# What a recorded tool call came to: it may run, it may not, or it waits for a person.
Verdict = Literal["allowed", "denied", "pending"]


@dataclass(frozen=True)
class Outcome:
    """What a recorded tool call produced: the decision, its audit record and the verdict."""

    decision: Decision
    record: AuditRecord
    verdict: Verdict
    approval: Mapping[str, Any] = field(default_factory=dict)  # approval_id, status, expires_at

    @property
    def allowed(self) -> bool:
        """True when the caller may run the call now."""
        return self.verdict == "allowed"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. Eval principals carry their agent; admin ones do not."""

    scope: Literal["admin", "eval"]
    credential_id: str  # stable, secret-free key for per-credential limits ("admin", "agent:<id>")
    agent_id: str | None = None
    agent_name: str | None = None
    agent_status: str | None = None

    @property
    def is_admin(self) -> bool:
        """True for the admin token."""
        return self.scope == "admin"
