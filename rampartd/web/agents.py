"""Handlers of the agents registry (Veto's agents API): create, list, get, update, delete."""

from __future__ import annotations

from aiohttp import web

from rampartd.agents import LIST_MAX, check_id, credential_id, patch_fields
from rampartd.errors import BadRequest
from rampartd.web.keys import AGENTS, BROADCASTER
from rampartd.web.parse import (
    MAX_OFFSET,
    bad_field,
    bad_path,
    check_fields,
    int_param,
    query,
    read_json,
    str_param,
)

# A token is shown once: keep it out of every cache between here and the caller.
_NO_STORE = {"Cache-Control": "no-store"}


async def create(request: web.Request) -> web.Response:
    """POST /v1/agents: register an agent; 201 with the agent and its token (shown once)."""
    query(request, ())
    body = await read_json(request)
    check_fields(body, ("name", "description"))
    if "name" not in body:
        raise bad_field("name", "is required")
    agent, token = await request.app[AGENTS].create(body["name"], body.get("description"))
    return web.json_response({**agent.to_json(), "token": token}, status=201,
                             headers={**_NO_STORE, "Location": f"/v1/agents/{agent.id}"})


async def list_agents(request: web.Request) -> web.Response:
    """GET /v1/agents?limit&offset&name: a page of agents, oldest first."""
    params = query(request, ("limit", "offset", "name"))
    limit = int_param(params, "limit", 100, 1, LIST_MAX)
    offset = int_param(params, "offset", 0, 0, MAX_OFFSET)
    agents, total = request.app[AGENTS].list_agents(limit=limit, offset=offset,
                                                    name=str_param(params, "name"))
    return web.json_response({
        "data": [agent.to_json() for agent in agents],
        "pagination": {"limit": limit, "offset": offset, "count": len(agents), "total": total},
    })


def agent_id(request: web.Request) -> str:
    """The {id} path segment as a canonical agent id (a lower-case UUID)."""
    try:
        return check_id(request.match_info["id"])
    except BadRequest:
        raise bad_path("id", "must be a UUID (8-4-4-4-12 hex digits)") from None


def end_streams(request: web.Request, agent_id: str) -> None:
    """An agent's open streams end on any change to it: a suspended, revoked, deleted or
    renamed agent, or a replaced token, must not keep reading (clients may reconnect)."""
    request.app[BROADCASTER].end_credential(credential_id(agent_id))


async def get(request: web.Request) -> web.Response:
    """GET /v1/agents/{id}: one agent (404 AGENT_NOT_FOUND, 400 for a malformed id)."""
    query(request, ())
    return web.json_response(request.app[AGENTS].get(agent_id(request)).to_json())


async def update(request: web.Request) -> web.Response:
    """PATCH /v1/agents/{id}: change name, description (null clears) and/or status."""
    query(request, ())
    wanted = agent_id(request)
    body = await read_json(request)
    check_fields(body, ("name", "description", "status"))
    agent = await request.app[AGENTS].update(wanted, **patch_fields(body))
    end_streams(request, agent.id)
    return web.json_response(agent.to_json())


async def delete(request: web.Request) -> web.Response:
    """DELETE /v1/agents/{id}: remove the agent and its tokens (its audit records stay); 204."""
    query(request, ())
    agent = await request.app[AGENTS].delete(agent_id(request))
    end_streams(request, agent.id)
    return web.Response(status=204)


async def rotate_token(request: web.Request) -> web.Response:
    """POST /v1/agents/{id}/token: a new token (shown once); the old one stops working."""
    query(request, ())
    agent, token = await request.app[AGENTS].rotate_token(agent_id(request))
    end_streams(request, agent.id)
    return web.json_response({**agent.to_json(), "token": token}, headers=_NO_STORE)
