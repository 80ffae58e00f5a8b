"""Handlers for the approval queue: list, read and long-poll, create, resolve, bulk, links."""

from __future__ import annotations

import html
import time
from typing import Any

from aiohttp import web

from rampartd.approvals.links import check_link, load_link_key, parse_link
from rampartd.approvals.queue import MAX_LIST, group_by_run
from rampartd.approvals.rows import RunRef
from rampartd.errors import BadRequest, Forbidden, NotFound
from rampartd.models import Principal, ToolCall
from rampartd.web.keys import APPROVALS, PRINCIPAL, SETTINGS
from rampartd.web.parse import (
    check_fields,
    float_param,
    int_param,
    opt_str,
    query,
    read_json,
    req_str,
)
from rampartd.web.tools import TOOL_NAME

MAX_WAIT = 55.0
STATUSES = ("pending", "approved", "denied", "expired", "all")
MAX_LIFETIME = 7 * 24 * 3600.0


def _reader(request: web.Request) -> Principal | None:
    """The caller's principal for approval reads; None means admin (sees everything)."""
    principal: Principal | None = request.get(PRINCIPAL)
    if principal is None or principal.is_admin:
        return None
    if principal.agent_status != "active":
        raise Forbidden(f"agent is {principal.agent_status}; its approval reads are refused",
                        code="agent_inactive")
    return principal


def _approval_id(request: web.Request) -> str:
    return request.match_info["id"].upper()


async def _visible(request: web.Request, approval_id: str) -> dict[str, Any]:
    """The approval if this caller may see it; another agent's is a 404 so ids do not leak."""
    principal = _reader(request)
    found = await request.app[APPROVALS].get(approval_id)
    if found is None or (principal is not None and found["agent"] != principal.agent_name):
        raise NotFound(f"no approval {approval_id}")
    return found


def _bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if not isinstance(value, bool):
        raise BadRequest(f"field {name!r} is required and must be true or false",
                         code="invalid_field")
    return value


async def list_approvals(request: web.Request) -> web.Response:
    """GET /v1/approvals: pending approvals (or ?status=) plus pending groups by run."""
    params = query(request, ("status", "agent", "session", "run_id", "limit"))
    principal = _reader(request)
    status = params.get("status", "pending")
    if status not in STATUSES:
        raise BadRequest(f"query parameter 'status' must be one of {', '.join(STATUSES)}",
                         code="invalid_parameter")
    agent = params.get("agent")
    if principal is not None:
        agent = principal.agent_name or "\x00"  # an eval caller sees only its own agent's
    found = await request.app[APPROVALS].query(
        status=None if status == "all" else status, agent=agent,
        session=params.get("session"), run_id=params.get("run_id"),
        limit=int_param(params, "limit", 100, 1, MAX_LIST))
    pending = [a for a in found if a["status"] == "pending"]
    return web.json_response({"approvals": found, "count": len(found),
                              "groups": group_by_run(pending)})


async def get_approval(request: web.Request) -> web.Response:
    """GET /v1/approvals/{id}[?wait=S]: one approval; with wait, long-poll until decided."""
    wait = float_param(query(request, ("wait",)), "wait", 0, 0, MAX_WAIT)
    approval_id = _approval_id(request)
    found = await _visible(request, approval_id)
    if wait > 0 and found["status"] == "pending":
        await request.app[APPROVALS].wait(approval_id, wait)
        found = await _visible(request, approval_id)
    return web.json_response(found)


async def create_approval(request: web.Request) -> web.Response:
    """POST /v1/approvals: an approval requested by an operator or a script (201)."""
    query(request, ())
    body = await read_json(request)
    check_fields(body, ("agent", "session", "tool", "params", "run_id", "tool_call_id",
                        "message", "timeout_seconds", "requested_by"))
    params = body.get("params", {})
    if not isinstance(params, dict):
        raise BadRequest("field 'params' must be an object", code="invalid_field")
    tool = req_str(body, "tool", max_len=128)
    if not TOOL_NAME.match(tool):
        raise BadRequest("field 'tool' must be 1-128 letters, digits or _ . : -",
                         code="invalid_field")
    lifetime = body.get("timeout_seconds")
    if lifetime is not None and (isinstance(lifetime, bool)
                                 or not isinstance(lifetime, int | float)
                                 or not 0 < lifetime <= MAX_LIFETIME):
        raise BadRequest(f"field 'timeout_seconds' must be a number in (0, {MAX_LIFETIME:g}]",
                         code="invalid_field")
    call = ToolCall(tool=tool, agent=req_str(body, "agent", max_len=255),
                    session=req_str(body, "session", max_len=1024), params=params,
                    run_id=opt_str(body, "run_id", max_len=255),
                    tool_call_id=opt_str(body, "tool_call_id", max_len=255))
    found, created = await request.app[APPROVALS].create(
        call, message=opt_str(body, "message", max_len=4096),
        lifetime=None if lifetime is None else float(lifetime),
        requested_by=opt_str(body, "requested_by", max_len=255))
    return web.json_response(found, status=201 if created else 200)


async def resolve(request: web.Request) -> web.Response:
    """POST /v1/approvals/{id}/resolve: approve or deny; 404 unknown, 410 already decided."""
    query(request, ())
    body = await read_json(request)
    check_fields(body, ("approved", "resolved_by", "reason"))
    approved = _bool(body, "approved")
    principal = request.get(PRINCIPAL)
    resolved = await request.app[APPROVALS].resolve(
        _approval_id(request), approved=approved,
        resolved_by=req_str(body, "resolved_by", max_len=255),
        reason=opt_str(body, "reason", max_len=4096),
        credential=None if principal is None else principal.credential_id)
    return web.json_response(resolved)


async def bulk_resolve(request: web.Request) -> web.Response:
    """POST /v1/approvals/bulk-resolve: the reviewed approvals of one run, as one batch."""
    query(request, ())
    body = await read_json(request)
    check_fields(body, ("agent", "session", "run_id", "action", "scope", "ids", "resolved_by",
                        "reason"))
    action = req_str(body, "action", max_len=16)
    if action not in ("approve", "deny"):
        raise BadRequest("field 'action' must be 'approve' or 'deny'", code="invalid_field")
    ids = body.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) \
            or len(ids) > MAX_LIST:
        raise BadRequest(f"field 'ids' must be a list of at most {MAX_LIST} approval ids",
                         code="invalid_field")
    run = RunRef(req_str(body, "agent", max_len=255), req_str(body, "session", max_len=1024),
                 req_str(body, "run_id", max_len=255))
    principal = request.get(PRINCIPAL)
    result = await request.app[APPROVALS].bulk_resolve(
        run, ids, approved=action == "approve", scope=opt_str(body, "scope") or "pending",
        resolved_by=req_str(body, "resolved_by", max_len=255),
        reason=opt_str(body, "reason", max_len=4096),
        credential=None if principal is None else principal.credential_id)
    return web.json_response(result)


def _link_page(approval: dict[str, Any], action: str) -> str:
    esc = html.escape
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(approval.get(k)))}</td></tr>"
                   for k in ("id", "status", "agent", "session", "run_id", "tool", "message",
                             "request", "expires_at"))
    button = (f'<form method="post"><button type="submit">{esc(action)}</button></form>'
              if approval["status"] == "pending" else "")
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>rampartd approval "
            f"{esc(approval['id'])}</title></head><body><h1>Approval {esc(approval['id'])}</h1>"
            f"<table>{rows}</table>{button}</body></html>")


async def _checked_link(request: web.Request) -> tuple[str, str, str]:
    approval_id = _approval_id(request)
    link = parse_link(approval_id, query(request, ("action", "exp", "sig")))
    check_link(load_link_key(request.app[SETTINGS].home), link, time.time())
    return approval_id, link.action, link.signature


async def link_show(request: web.Request) -> web.StreamResponse:
    """GET /v1/approvals/{id}/link: show the approval a valid signed link decides."""
    approval_id, action, _ = await _checked_link(request)
    found = await request.app[APPROVALS].get(approval_id)
    if found is None:
        raise NotFound(f"no approval {approval_id}")
    if "text/html" in request.headers.get("Accept", ""):
        return web.Response(text=_link_page(found, action), content_type="text/html")
    return web.json_response({"approval": found, "action": action})


async def link_decide(request: web.Request) -> web.Response:
    """POST /v1/approvals/{id}/link: decide one approval with a signed link (once)."""
    approval_id, action, signature = await _checked_link(request)
    resolved = await request.app[APPROVALS].resolve(
        approval_id, approved=action == "approve", resolved_by="signed-link", via="link",
        link_signature=signature)
    return web.json_response(resolved)


async def release_waiters(app: web.Application) -> None:
    """on_shutdown: long-polls answer now with the current state instead of being cut off."""
    approvals = app.get(APPROVALS)
    if approvals is not None:
        approvals.release_waiters()
