"""Veto's decisions API as a view over the audit log's decision records.

Server decisions are records of kind `decision`; decisions a client made locally and logged
with `POST /v1/decisions` are records of kind `decision.client`. Ids are the records' ULIDs.
The agentId filter selects records by the name the agent is registered under now (the name
is the identity that policies match and records carry).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rampartd.audit.filters import DECISION_KINDS, DECISION_KINDS_SQL, normalize_time
from rampartd.audit.store import AuditStore, decode_record
from rampartd.models import AuditRecord

MAX_PAGE = 100
DEFAULT_PAGE = 50
MAX_DAYS = 90
# Per-action counters of summary and breakdown.
_COUNTERS = {"allow": "allowed", "deny": "denied", "ask": "asked", "watch": "watched"}
AgentIdOf = Callable[[str], str | None]  # agent name → registered agent id


@dataclass(frozen=True)
class DecisionFilter:
    """Filters of GET /v1/decisions, already validated; `agent` is a name."""

    tool: str | None = None
    action: str | None = None
    since: str | None = None
    until: str | None = None
    agent: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        """SQL condition over the indexed columns and its parameters."""
        clauses = [DECISION_KINDS_SQL]
        args: list[Any] = list(DECISION_KINDS)
        for column, value in (("tool", self.tool), ("action", self.action),
                              ("agent", self.agent)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if self.since is not None:
            clauses.append("ts >= ?")
            args.append(self.since)
        if self.until is not None:
            clauses.append("ts < ?")
            args.append(self.until)
        return " AND ".join(clauses), args


def decision_view(record: Mapping[str, Any], agent_id_of: AgentIdOf) -> dict[str, Any]:
    """One audit record in the shape of Veto's decision object."""
    decision = record.get("decision") or {}
    detail = record.get("detail") or {}
    client = record.get("kind") == "decision.client"
    agent = record.get("agent")
    context: dict[str, Any] = {}
    if client:
        given = detail.get("context")
        if isinstance(given, Mapping):
            context.update(given)
        agent_id = detail.get("agent_id") or context.get("agent_id")
        mode = detail.get("mode")
        latency = detail.get("latency_ms")
    else:
        context.update({k: v for k, v in detail.items() if k != "mode"})
        if detail.get("mode") == "monitor":
            context["daemon_mode"] = "monitor"
        agent_id = None
        mode = "deterministic"
        latency = (decision.get("evaluation_time_us") or 0) / 1000
    if agent_id is None and isinstance(agent, str):
        agent_id = agent_id_of(agent)
    context.update(session_id=record.get("session"), agent=agent, agent_id=agent_id,
                   source="client" if client else "server")
    for key in ("run_id", "tool_call_id"):
        if record.get(key) is not None:
            context[key] = record[key]
    return {
        "id": record.get("id"),
        "toolName": record.get("tool"),
        "arguments": record.get("request"),
        "context": context,
        "decision": decision.get("action"),
        "mode": mode,
        "reason": decision.get("message") or None,
        "latencyMs": latency,
        "createdAt": record.get("ts"),
        "policy": decision.get("policy"),
        "matchedPolicies": decision.get("matched_policies") or [],
        "seq": record.get("seq"),
        "hash": record.get("hash"),
    }


async def list_decisions(store: AuditStore, flt: DecisionFilter, *, limit: int,
                         offset: int) -> tuple[list[AuditRecord], int]:
    """Matching decision records, newest first, and how many match in all."""
    where, args = flt.where()
    async with store.reader() as conn:
        async with conn.execute(f"SELECT COUNT(*) FROM audit_log WHERE {where}",  # noqa: S608
                                args) as cur:
            row = await cur.fetchone()
        total = int(row[0]) if row else 0
        async with conn.execute(f"SELECT record, hash FROM audit_log WHERE {where} "  # noqa: S608
                                "ORDER BY seq DESC LIMIT ? OFFSET ?",
                                (*args, limit, offset)) as cur:
            rows = await cur.fetchall()
    return [decode_record(r[0], r[1]) for r in rows], total


def _counters() -> dict[str, int]:
    return {"total": 0, **{name: 0 for name in _COUNTERS.values()}, "server": 0, "client": 0}


async def decision_stats(store: AuditStore, days: int, *,
                         today: date | None = None) -> dict[str, Any]:
    """Counts per action and source over the last `days` UTC days, with a row for each day."""
    last = today if today is not None else datetime.now(UTC).date()
    first = last - timedelta(days=days - 1)
    since = normalize_time(first.isoformat())
    until = normalize_time(last.isoformat(), end=True)
    days_list = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    per_day = {day: _counters() for day in days_list}
    sql = (f"SELECT substr(ts, 1, 10), kind, action, COUNT(*) FROM audit_log "  # noqa: S608
           f"WHERE {DECISION_KINDS_SQL} AND ts >= ? AND ts < ? GROUP BY 1, 2, 3")
    async with store.reader() as conn, conn.execute(
            sql, (*DECISION_KINDS, since, until)) as cur:
        rows = await cur.fetchall()
    summary = _counters()
    for day, kind, action, count in rows:
        bucket = per_day.get(day)
        if bucket is None:
            continue
        for counters in (bucket, summary):
            counters["total"] += count
            if action in _COUNTERS:
                counters[_COUNTERS[action]] += count
            counters["client" if kind == "decision.client" else "server"] += count
    return {
        "period": {"days": days, "startDate": days_list[0], "endDate": days_list[-1]},
        "summary": summary,
        "breakdown": [{"date": day, **per_day[day]} for day in days_list],
    }
