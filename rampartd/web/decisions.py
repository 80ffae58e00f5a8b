"""Handlers of Veto's decisions API: list, stats, one decision, and client-side logging."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from rampartd.agents import check_id
from rampartd.audit.chain import RecordDraft
from rampartd.audit.decisions import (
    DEFAULT_PAGE,
    MAX_DAYS,
    MAX_PAGE,
    DecisionFilter,
    decision_stats,
    decision_view,
    list_decisions,
)
from rampartd.audit.drafts import client_decision_draft
from rampartd.audit.filters import DECISION_KINDS, normalize_time
from rampartd.errors import BadRequest, NotFound
from rampartd.models import ACTIONS, Principal
from rampartd.web.auth import ADMIN
from rampartd.web.keys import AGENTS, DECISION_LIMITER, PRINCIPAL, SERVICE
from rampartd.web.limits import SlidingWindowLimiter
from rampartd.web.parse import (
    MAX_OFFSET,
    bad_field,
    bad_parameter,
    check_fields,
    choice_field,
    choice_param,
    converted_param,
    int_param,
    number_field,
    opt_str,
    path_ulid,
    query,
    read_json,
    req_object,
    str_param,
)

CLIENT_LOG_LIMIT = 120  # requests per credential ...
CLIENT_LOG_WINDOW = 60.0  # ... per this many seconds
LIST_PARAMS = ("limit", "offset", "toolName", "decision", "startDate", "endDate", "agentId")
CLIENT_FIELDS = ("tool_name", "arguments", "decision", "reason", "mode", "latency_ms", "source",
                 "context")
CLIENT_DECISIONS = ("allow", "deny")
CLIENT_MODES = ("deterministic", "llm")
CONTEXT_TEXTS = ("session_id", "run_id", "agent_id")  # context keys that must be strings
MAX_LATENCY_MS = 3_600_000.0


def new_limiter() -> SlidingWindowLimiter:
    """The limiter of POST /v1/decisions (120 requests per 60 s per credential)."""
    return SlidingWindowLimiter(CLIENT_LOG_LIMIT, CLIENT_LOG_WINDOW,
                                what="logged decisions")


def _agent_id_of(request: web.Request) -> Callable[[str], str | None]:
    registry = request.app[AGENTS]

    def lookup(name: str) -> str | None:
        agent = registry.by_name(name)
        return None if agent is None else agent.id

    return lookup


def client_draft(body: dict[str, Any], principal: Principal) -> RecordDraft:
    """A client-logged decision (Veto's body), checked, as its `decision.client` draft.

    An agent token names the agent; with the admin token the context's agent_id (or
    "client") does.
    """
    check_fields(body, CLIENT_FIELDS)
    for key in ("tool_name", "arguments", "decision", "mode", "latency_ms", "source"):
        if body.get(key) is None:
            raise bad_field(key, "is required")
    tool = opt_str(body, "tool_name", required=True)
    assert tool is not None
    arguments = req_object(body, "arguments")
    action = choice_field(body, "decision", CLIENT_DECISIONS)
    mode = choice_field(body, "mode", CLIENT_MODES)
    choice_field(body, "source", ("client",))
    latency = number_field(body, "latency_ms", 0, MAX_LATENCY_MS, required=True)
    assert latency is not None
    reason = opt_str(body, "reason")
    context = req_object(body, "context", required=False)
    session, run_id, context_agent = (opt_str(context, key, label=f"context.{key}")
                                      for key in CONTEXT_TEXTS)
    return client_decision_draft(
        tool=tool, arguments=arguments, action=action, reason=reason, mode=mode,
        latency_ms=latency, context=context,
        agent=principal.agent_name or context_agent or "client", session=session,
        run_id=run_id, agent_id=principal.agent_id, agent_status=principal.agent_status)


async def list_(request: web.Request) -> web.Response:
    """GET /v1/decisions: decision records, newest first, filtered and paginated."""
    params = query(request, LIST_PARAMS)
    limit = int_param(params, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    offset = int_param(params, "offset", 0, 0, MAX_OFFSET)
    action = choice_param(params, "decision", ACTIONS)
    tool = str_param(params, "toolName")
    since = converted_param(params, "startDate", normalize_time)
    until = converted_param(params, "endDate", lambda text: normalize_time(text, end=True))
    if since is not None and until is not None and until <= since:
        raise bad_parameter("endDate", "must be after 'startDate'")
    agent: str | None = None
    if "agentId" in params:
        try:
            agent_id = check_id(params["agentId"])
        except BadRequest:
            raise bad_parameter("agentId", "must be a UUID") from None
        found = request.app[AGENTS].by_id(agent_id)
        if found is None:  # no such agent (or deleted): nothing can match
            return web.json_response({"data": [], "pagination": {
                "total": 0, "limit": limit, "offset": offset, "hasMore": False}})
        agent = found.name
    flt = DecisionFilter(tool=tool, action=action, since=since, until=until, agent=agent)
    records, total = await list_decisions(request.app[SERVICE].store, flt, limit=limit,
                                          offset=offset)
    lookup = _agent_id_of(request)
    return web.json_response({
        "data": [decision_view(r, lookup) for r in records],
        "pagination": {"total": total, "limit": limit, "offset": offset,
                       "hasMore": offset + len(records) < total},
    })


async def stats(request: web.Request) -> web.Response:
    """GET /v1/decisions/stats?days=1..90: totals and a per-day (UTC) breakdown."""
    params = query(request, ("days",))
    days = int_param(params, "days", 7, 1, MAX_DAYS)
    return web.json_response(await decision_stats(request.app[SERVICE].store, days))


async def get(request: web.Request) -> web.Response:
    """GET /v1/decisions/{id}: one decision by its ULID (400 malformed, 404 absent)."""
    query(request, ())
    record = await request.app[SERVICE].store.get(path_ulid(request))
    if record is None or record.get("kind") not in DECISION_KINDS:
        raise NotFound("no decision with that id", code="DECISION_NOT_FOUND")
    return web.json_response(decision_view(record, _agent_id_of(request)))


async def log_client(request: web.Request) -> web.Response:
    """POST /v1/decisions: record a decision the client made locally; 201 {success, id}."""
    query(request, ())
    principal = request.get(PRINCIPAL, ADMIN)
    request.app[DECISION_LIMITER].hit(principal.credential_id)
    body = await read_json(request)
    draft = client_draft(body, principal)
    record = await request.app[SERVICE].store.append(draft)
    return web.json_response({"success": True, "id": record["id"]}, status=201)
