"""Handlers for evaluating tool calls and for the active policy: tool, preflight, test, policy."""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp import web

from rampartd.errors import BadRequest, TooManyRequests
from rampartd.models import Decision, ToolCall
from rampartd.web.agents import AGENTS
from rampartd.web.auth import PRINCIPAL
from rampartd.web.keys import SERVICE
from rampartd.web.parse import check_fields, float_param, opt_str, query, read_json, req_str

TOOL_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
CALL_FIELDS = ("agent", "session", "run_id", "tool_call_id", "cwd", "params")
RELOAD_MIN_INTERVAL = 1.0


def tool_name(request: web.Request) -> str:
    """The {tool} path segment, validated."""
    tool = request.match_info["tool"]
    if not TOOL_NAME.match(tool):
        raise BadRequest("tool name must be 1-128 letters, digits or _ . : -",
                         code="invalid_field")
    return tool


async def parse_call(request: web.Request) -> ToolCall:
    """Build a ToolCall from the path and body; an agent token's identity overrides `agent`."""
    body = await read_json(request)
    check_fields(body, CALL_FIELDS)
    params = body.get("params")
    if not isinstance(params, dict):
        raise BadRequest("field 'params' is required and must be an object",
                         code="invalid_field")
    agent = req_str(body, "agent", max_len=255)
    principal = request.get(PRINCIPAL)
    if principal is not None and principal.agent_name is not None:
        agent = principal.agent_name
    return ToolCall(
        tool=tool_name(request), agent=agent, session=req_str(body, "session", max_len=1024),
        params=params, run_id=opt_str(body, "run_id", max_len=255),
        tool_call_id=opt_str(body, "tool_call_id", max_len=255),
        cwd=opt_str(body, "cwd", max_len=4096),
    )


def current_status(request: web.Request) -> str | None:
    """The calling agent's registry status now (None for the admin token)."""
    principal = request.get(PRINCIPAL)
    if principal is None or principal.agent_id is None:
        return None
    agent = request.app[AGENTS].by_id(principal.agent_id)
    return "deleted" if agent is None else agent.status


def decision_body(decision: Decision, *, allowed: bool) -> dict[str, Any]:
    """The decision part of every evaluation answer."""
    body: dict[str, Any] = {
        "allowed": allowed,
        "decision": decision.action,
        "message": decision.message,
        "policy": decision.policy,
        "matched_policies": list(decision.matched_policies),
        "eval_duration_us": decision.evaluation_time_us,
    }
    if decision.suggestions:
        body["suggestions"] = list(decision.suggestions)
    return body


async def tool_call(request: web.Request) -> web.Response:
    """POST /v1/tool/{tool}: evaluate, record durably, answer 200/202/403 (503 if unrecorded)."""
    wait = float_param(query(request, ("wait",)), "wait", 0, 0, 55)
    call = await parse_call(request)
    principal = request.get(PRINCIPAL)
    service = request.app[SERVICE]
    outcome = await service.call(
        call, agent_status=None if principal is None else principal.agent_status)
    if wait > 0:  # ?wait=S holds an ask until a person decides
        outcome = await service.await_approval(
            call, outcome, wait, agent_status=lambda: current_status(request),
            connected=lambda: request.transport is not None
            and not request.transport.is_closing())
    body = decision_body(outcome.decision, allowed=outcome.allowed)
    body["audit_id"] = outcome.record["id"]
    body.update(outcome.approval)
    return web.json_response(body, status=outcome.status)


async def preflight(request: web.Request) -> web.Response:
    """POST /v1/preflight/{tool}: what would happen; nothing recorded, always 200."""
    query(request, ())
    call = await parse_call(request)
    principal = request.get(PRINCIPAL)
    decision = await request.app[SERVICE].preflight(
        call, agent_status=None if principal is None else principal.agent_status)
    return web.json_response(decision_body(decision, allowed=decision.allowed))


async def test_call(request: web.Request) -> web.Response:
    """POST /v1/test: evaluate a command (or params) against the active policy, explained."""
    query(request, ())
    body = await read_json(request)
    check_fields(body, ("command", "tool", "agent", "session", "params", "cwd"))
    params = body.get("params", {})
    if not isinstance(params, dict):
        raise BadRequest("field 'params' must be an object", code="invalid_field")
    command = opt_str(body, "command", max_len=65536)
    if command is None and not params:
        raise BadRequest("give 'command' or 'params'", code="missing_field")
    if command is not None:
        params = {**params, "command": command}
    call = ToolCall(tool=opt_str(body, "tool", max_len=128) or "exec",
                    agent=opt_str(body, "agent", max_len=255) or "test",
                    session=opt_str(body, "session", max_len=1024) or "test", params=params,
                    cwd=opt_str(body, "cwd"))
    why = await request.app[SERVICE].explain(call)
    answer = decision_body(why.decision, allowed=why.decision.allowed)
    answer["tool"] = call.tool
    answer["explanation"] = why.as_dict()
    return web.json_response(answer)


async def policy_summary(request: web.Request) -> web.Response:
    """GET /v1/policy/summary: every policy and rule in plain words."""
    query(request, ())
    current = request.app[SERVICE].policies.current
    return web.json_response({
        "default_action": current.default_action,
        "policy_count": current.policy_count,
        "rule_count": current.rule_count,
        "policies": current.summary(),
    })


class ReloadGate:
    """Refuses API reloads closer than a second apart."""

    def __init__(self) -> None:
        self.last = float("-inf")

    def check(self) -> None:
        """Raise 429 if the previous reload was under a second ago."""
        now = time.monotonic()
        wait = RELOAD_MIN_INTERVAL - (now - self.last)
        if wait > 0:
            raise TooManyRequests("policy reloads are limited to one per second",
                                  retry_after=1)
        self.last = now


async def policy_reload(request: web.Request) -> web.Response:
    """POST /v1/policy/reload: reload now; a broken file keeps the last good set (400)."""
    query(request, ())
    request.app[RELOAD_GATE].check()
    service = request.app[SERVICE]
    await service.reload_policies(trigger="api")
    current = service.policies.current
    return web.json_response({"reloaded": True, "policy_count": current.policy_count,
                              "rule_count": current.rule_count})


RELOAD_GATE = web.AppKey("reload_gate", ReloadGate)
