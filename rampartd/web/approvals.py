"""Handlers for the approval queue: list, read and long-poll, create, resolve, bulk, links."""

from __future__ import annotations

import html
import time

from aiohttp import web

from rampartd.approvals.links import ACTIONS as LINK_ACTIONS
from rampartd.approvals.links import SignedLink, check_link, load_link_key
from rampartd.approvals.queue import BULK_SCOPES, MAX_LIST, group_by_run
from rampartd.approvals.rows import ApprovalView, RunRef
from rampartd.errors import Forbidden, NotFound
from rampartd.models import Principal, ToolCall
from rampartd.web.keys import APPROVALS, PRINCIPAL, SETTINGS
from rampartd.web.parse import (
    TOOL_NAME,
    TOOL_NAME_RULE,
    bad_field,
    bad_parameter,
    check_fields,
    choice_field,
    choice_param,
    float_param,
    int_param,
    number_field,
    opt_str,
    path_ulid,
    query,
    read_json,
    req_bool,
    req_object,
    req_str,
    str_param,
)
from rampartd.web.tools import MAX_WAIT

STATUSES = ("pending", "approved", "denied", "expired", "all")
MAX_LIFETIME = 7 * 24 * 3600.0
CREATE_FIELDS = ("agent", "session", "tool", "params", "run_id", "tool_call_id", "message",
                 "timeout_seconds", "requested_by")
BULK_FIELDS = ("agent", "session", "run_id", "action", "scope", "ids", "resolved_by", "reason")
LINK_PARAMS = ("action", "exp", "sig")


def _reader(request: web.Request) -> Principal | None:
    """The caller's principal for approval reads; None means admin (sees everything)."""
    principal: Principal | None = request.get(PRINCIPAL)
    if principal is None or principal.is_admin:
        return None
    if principal.agent_status != "active":
        raise Forbidden(f"agent is {principal.agent_status}; its approval reads are refused",
                        code="agent_inactive")
    return principal


async def _visible(request: web.Request, approval_id: str) -> ApprovalView:
    """The approval if this caller may see it; another agent's is a 404 so ids do not leak."""
    principal = _reader(request)
    found = await request.app[APPROVALS].get(approval_id)
    if found is None or (principal is not None and found["agent"] != principal.agent_name):
        raise NotFound(f"no approval {approval_id}")
    return found


async def list_approvals(request: web.Request) -> web.Response:
    """GET /v1/approvals: pending approvals (or ?status=) plus pending groups by run."""
    params = query(request, ("status", "agent", "session", "run_id", "limit"))
    status = choice_param(params, "status", STATUSES) or "pending"
    agent, session, run_id = (str_param(params, n) for n in ("agent", "session", "run_id"))
    limit = int_param(params, "limit", 100, 1, MAX_LIST)
    principal = _reader(request)
    if principal is not None:
        agent = principal.agent_name or "\x00"  # an eval caller sees only its own agent's
    found = await request.app[APPROVALS].query(
        status=None if status == "all" else status, agent=agent, session=session,
        run_id=run_id, limit=limit)
    pending = [a for a in found if a["status"] == "pending"]
    return web.json_response({"approvals": found, "count": len(found),
                              "groups": group_by_run(pending)})


async def get_approval(request: web.Request) -> web.Response:
    """GET /v1/approvals/{id}[?wait=S]: one approval; with wait, long-poll until decided."""
    wait = float_param(query(request, ("wait",)), "wait", 0, 0, MAX_WAIT)
    approval_id = path_ulid(request)
    found = await _visible(request, approval_id)
    if wait > 0 and found["status"] == "pending":
        await request.app[APPROVALS].wait(approval_id, wait)
        found = await _visible(request, approval_id)
    return web.json_response(found)


async def create_approval(request: web.Request) -> web.Response:
    """POST /v1/approvals: an approval requested by an operator or a script (201)."""
    query(request, ())
    body = await read_json(request)
    check_fields(body, CREATE_FIELDS)
    tool = req_str(body, "tool")
    if not TOOL_NAME.fullmatch(tool):
        raise bad_field("tool", TOOL_NAME_RULE)
    lifetime = number_field(body, "timeout_seconds", 0, MAX_LIFETIME, open_low=True)
    call = ToolCall(tool=tool, agent=req_str(body, "agent"), session=req_str(body, "session"),
                    params=req_object(body, "params", required=False),
                    run_id=opt_str(body, "run_id"), tool_call_id=opt_str(body, "tool_call_id"))
    found, created = await request.app[APPROVALS].create(
        call, message=opt_str(body, "message"), lifetime=lifetime,
        requested_by=opt_str(body, "requested_by"))
    return web.json_response(found, status=201 if created else 200)


async def resolve(request: web.Request) -> web.Response:
    """POST /v1/approvals/{id}/resolve: approve or deny; 404 unknown, 410 already decided."""
    query(request, ())
    approval_id = path_ulid(request)
    body = await read_json(request)
    check_fields(body, ("approved", "resolved_by", "reason"))
    approved = req_bool(body, "approved")
    resolved_by, reason = req_str(body, "resolved_by"), opt_str(body, "reason")
    principal = request.get(PRINCIPAL)
    resolved = await request.app[APPROVALS].resolve(
        approval_id, approved=approved, resolved_by=resolved_by, reason=reason,
        credential=None if principal is None else principal.credential_id)
    return web.json_response(resolved)


async def bulk_resolve(request: web.Request) -> web.Response:
    """POST /v1/approvals/bulk-resolve: the reviewed approvals of one run, as one batch."""
    query(request, ())
    body = await read_json(request)
    check_fields(body, BULK_FIELDS)
    action = choice_field(body, "action", ("approve", "deny"))
    scope = choice_field(body, "scope", BULK_SCOPES, default="pending")
    if scope == "run" and action != "approve":
        raise bad_field("scope", "'run' is for approving only")
    ids = body.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) \
            or len(ids) > MAX_LIST:
        raise bad_field("ids", f"must be a list of at most {MAX_LIST} approval ids")
    if scope == "pending" and not ids:
        raise bad_field("ids", "must list the approvals you reviewed")
    run = RunRef(req_str(body, "agent"), req_str(body, "session"), req_str(body, "run_id"))
    resolved_by, reason = req_str(body, "resolved_by"), opt_str(body, "reason")
    principal = request.get(PRINCIPAL)
    result = await request.app[APPROVALS].bulk_resolve(
        run, ids, approved=action == "approve", scope=scope, resolved_by=resolved_by,
        reason=reason, credential=None if principal is None else principal.credential_id)
    return web.json_response(result)


def _link_page(approval: ApprovalView, action: str) -> str:
    esc = html.escape
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(approval.get(k)))}</td></tr>"
                   for k in ("id", "status", "agent", "session", "run_id", "tool", "message",
                             "request", "expires_at"))
    button = (f'<form method="post"><button type="submit">{esc(action)}</button></form>'
              if approval["status"] == "pending" else "")
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>rampartd approval "
            f"{esc(approval['id'])}</title></head><body><h1>Approval {esc(approval['id'])}</h1>"
            f"<table>{rows}</table>{button}</body></html>")


def _parse_link(request: web.Request) -> SignedLink:
    """The link's parts; a malformed link is a 400 naming the part, before any signature check."""
    approval_id = path_ulid(request)
    params = query(request, LINK_PARAMS)
    action = choice_param(params, "action", LINK_ACTIONS)
    exp, sig = params.get("exp"), params.get("sig")
    for name, value in (("action", action), ("exp", exp), ("sig", sig)):
        if not value:
            raise bad_parameter(name, "is required")
    assert action is not None and exp is not None and sig is not None
    if not (exp.isascii() and exp.isdigit() and len(exp) <= 12):
        raise bad_parameter("exp", "must be the expiry in epoch seconds")
    if not (len(sig) == 64 and all(c in "0123456789abcdefABCDEF" for c in sig)):
        raise bad_parameter("sig", "must be 64 hex digits")
    return SignedLink(approval_id, action, int(exp), sig.lower())


async def _checked_link(request: web.Request) -> tuple[str, str, str]:
    link = _parse_link(request)
    approval_id = link.approval_id
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
