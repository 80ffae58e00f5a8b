"""Handlers for evaluating tool calls and for the active policy: tool, preflight, test, policy."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from rampartd.models import Decision, ToolCall, Verdict
from rampartd.policy.describe import summarize
from rampartd.web.keys import AGENTS, PRINCIPAL, RELOAD_GATE, SERVICE
from rampartd.web.parse import (
    TOOL_NAME,
    TOOL_NAME_RULE,
    bad_field,
    check_fields,
    float_param,
    opt_str,
    path_tool,
    query,
    read_json,
    req_object,
    req_str,
)

CALL_FIELDS = ("agent", "session", "run_id", "tool_call_id", "cwd", "params")
TEST_FIELDS = ("command", "tool", "agent", "session", "params", "cwd")
MAX_WAIT = 55.0  # seconds ?wait= may hold an answer (under common 60 s proxy timeouts)
# How each verdict of the call pipeline is answered (a call that could not be recorded is a
# 503 from the Unavailable error instead).
VERDICT_STATUS: dict[Verdict, int] = {"allowed": 200, "denied": 403, "pending": 202}


async def parse_call(request: web.Request) -> ToolCall:
    """Build a ToolCall from the path and body; an agent token's identity overrides `agent`."""
    tool = path_tool(request)
    body = await read_json(request)
    check_fields(body, CALL_FIELDS)
    agent = req_str(body, "agent")
    session = req_str(body, "session")
    params = req_object(body, "params")
    principal = request.get(PRINCIPAL)
    if principal is not None and principal.agent_name is not None:
        agent = principal.agent_name
    return ToolCall(tool=tool, agent=agent, session=session, params=params,
                    run_id=opt_str(body, "run_id"), tool_call_id=opt_str(body, "tool_call_id"),
                    cwd=opt_str(body, "cwd"))


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
    wait = float_param(query(request, ("wait",)), "wait", 0, 0, MAX_WAIT)
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
    return web.json_response(body, status=VERDICT_STATUS[outcome.verdict])


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
    check_fields(body, TEST_FIELDS)
    params = req_object(body, "params", required=False)
    command = opt_str(body, "command")
    if command is None and not params:
        raise bad_field("command", "is required unless 'params' is given")
    if command is not None:
        params = {**params, "command": command}
    tool = opt_str(body, "tool") or "exec"
    if not TOOL_NAME.fullmatch(tool):
        raise bad_field("tool", TOOL_NAME_RULE)
    call = ToolCall(tool=tool, agent=opt_str(body, "agent") or "test",
                    session=opt_str(body, "session") or "test", params=params,
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
        "policies": summarize(current),
    })


async def policy_reload(request: web.Request) -> web.Response:
    """POST /v1/policy/reload: reload now; a broken file keeps the last good set (400)."""
    query(request, ())
    request.app[RELOAD_GATE].check()
    service = request.app[SERVICE]
    await service.reload_policies(trigger="api")
    current = service.policies.current
    return web.json_response({"reloaded": True, "policy_count": current.policy_count,
                              "rule_count": current.rule_count})

