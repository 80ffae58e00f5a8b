"""Handlers of Veto's decisions API: list, stats, one decision, and client-side logging."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from rampartd.agents import check_id
from rampartd.audit.decisions import (
    DEFAULT_PAGE,
    MAX_DAYS,
    MAX_PAGE,
    DecisionFilter,
    check_action,
    client_draft,
    date_range,
    decision_stats,
    decision_view,
    list_decisions,
)
from rampartd.audit.filters import DECISION_KINDS
from rampartd.errors import BadRequest, NotFound
from rampartd.web.auth import ADMIN
from rampartd.web.keys import AGENTS, DECISION_LIMITER, PRINCIPAL, SERVICE
from rampartd.web.limits import SlidingWindowLimiter
from rampartd.web.parse import int_param, query, read_json

CLIENT_LOG_LIMIT = 120  # requests per credential ...
CLIENT_LOG_WINDOW = 60.0  # ... per this many seconds
LIST_PARAMS = ("limit", "offset", "toolName", "decision", "startDate", "endDate", "agentId")


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


async def list_(request: web.Request) -> web.Response:
    """GET /v1/decisions: decision records, newest first, filtered and paginated."""
    params = query(request, LIST_PARAMS)
    limit = int_param(params, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    offset = int_param(params, "offset", 0, 0, 2**31)
    action = params.get("decision")
    since, until = date_range(params.get("startDate"), params.get("endDate"))
    agent: str | None = None
    if "agentId" in params:
        try:
            agent_id = check_id(params["agentId"])
        except BadRequest:
            raise BadRequest("query parameter 'agentId' must be a UUID",
                             code="invalid_parameter") from None
        found = request.app[AGENTS].by_id(agent_id)
        if found is None:  # no such agent (or deleted): nothing can match
            return web.json_response({"data": [], "pagination": {
                "total": 0, "limit": limit, "offset": offset, "hasMore": False}})
        agent = found.name
    flt = DecisionFilter(tool=params.get("toolName"),
                         action=None if action is None else check_action(action),
                         since=since, until=until, agent=agent)
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
    record = await request.app[SERVICE].store.get(request.match_info["id"])
    if record is None or record.get("kind") not in DECISION_KINDS:
        raise NotFound("no decision with that id", code="DECISION_NOT_FOUND")
    return web.json_response(decision_view(record, _agent_id_of(request)))


async def log_client(request: web.Request) -> web.Response:
    """POST /v1/decisions: record a decision the client made locally; 201 {success, id}."""
    query(request, ())
    principal = request.get(PRINCIPAL, ADMIN)
    request.app[DECISION_LIMITER].hit(principal.credential_id)
    body = await read_json(request)
    draft = client_draft(body, agent_name=principal.agent_name, agent_id=principal.agent_id,
                         agent_status=principal.agent_status)
    record = await request.app[SERVICE].store.append(draft)
    return web.json_response({"success": True, "id": record["id"]}, status=201)
