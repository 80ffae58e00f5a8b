"""Handlers for evaluating tool calls and for the active policy: tool, preflight, test, policy."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from rampartd import proof
from rampartd.models import Decision, ToolCall, Verdict
from rampartd.policy.describe import summarize
from rampartd.web.keys import AGENTS, PRINCIPAL, RELOAD_GATE, SERVICE, SETTINGS, SIGNED
from rampartd.web.parse import (
    TOOL_NAME,
    TOOL_NAME_RULE,
    bad_field,
    bad_header,
    bad_parameter,
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
    return call_from_body(request, tool, body)


def call_from_body(request: web.Request, tool: str, body: dict[str, Any]) -> ToolCall:
    """The ToolCall of a checked body (the agent token's identity overrides `agent`)."""
    agent = req_str(body, "agent")
    session = req_str(body, "session")
    params = req_object(body, "params")
    principal = request.get(PRINCIPAL)
    if principal is not None and principal.agent_name is not None:
        agent = principal.agent_name
    return ToolCall(tool=tool, agent=agent, session=session, params=params,
                    run_id=opt_str(body, "run_id"), tool_call_id=opt_str(body, "tool_call_id"),
                    cwd=opt_str(body, "cwd"))


def presented_status(request: web.Request) -> str | None:
    """The calling agent's status when its token was checked (None for the admin token)."""
    principal = request.get(PRINCIPAL)
    return None if principal is None else principal.agent_status


def current_status(request: web.Request) -> str | None:
    """The calling agent's registry status now (None for the admin token)."""
    principal = request.get(PRINCIPAL)
    if principal is None or principal.agent_id is None:
        return None
    agent = request.app[AGENTS].by_id(principal.agent_id)
    return "deleted" if agent is None else agent.status


def covered(decision: Decision) -> bool:
    """True when allow rules decided the call (a positive proof), not default_action or a grant."""
    # The engine reports no parse problems separately: an unparsable command never ends in a
    # rule's allow, so `policy` set with action allow is the positive case.
    return decision.action == "allow" and decision.policy is not None


def decision_body(decision: Decision, *, allowed: bool) -> dict[str, Any]:
    """The decision part of every evaluation answer."""
    body: dict[str, Any] = {
        "allowed": allowed,
        "decision": decision.action,
        "message": decision.message,
        "policy": decision.policy,
        "matched_policies": list(decision.matched_policies),
        "eval_duration_us": decision.evaluation_time_us,
        "covered": covered(decision),
    }
    if decision.suggestions:
        body["suggestions"] = list(decision.suggestions)
    return body


class HookProof:
    """The nonce an answer is proven for, and the proof and explicit_allow the answer carries.

    A signed request's nonce is in its signature and its key is the one the signature proved;
    a bearer caller may ask for a proof with X-Rampartd-Nonce (keyed by its token's K).
    """

    def __init__(self, request: web.Request) -> None:
        self.request = request
        header = request.headers.get(proof.NONCE_HEADER)
        signed = request.get(SIGNED)
        if header is not None and (signed is not None or not proof.valid_nonce(header)):
            raise bad_header(proof.NONCE_HEADER,
                             "must be 16-128 letters, digits, - or _" if signed is None
                             else "must not be sent with Rampartd-HMAC (it signs its nonce)")
        self.nonce = header if signed is None else signed.nonce
        self.key = None if signed is None else signed.key

    def sign(self, body: dict[str, Any]) -> dict[str, Any]:
        """Add explicit_allow and, for a nonce, the proof under the caller's key K."""
        body["explicit_allow"] = bool(body["allowed"] and body["covered"]
                                      and self.request.app[SETTINGS].explicit_allow)
        if self.nonce is not None:
            # A bearer request: the auth middleware accepted this token for the route.
            key = self.key or proof.proof_key(
                self.request.headers["Authorization"].partition(" ")[2].strip())
            body["proof"] = proof.sign(key, self.nonce, body)
        return body


async def tool_call(request: web.Request) -> web.Response:
    """POST /v1/tool/{tool}: evaluate, record durably, answer 200/202/403 (503 if unrecorded).

    `?ask=host` records an ask as handed to the host (which asks its person) instead of
    queuing an approval; `?wait=S` holds a queued ask for a decision.
    """
    params = query(request, ("wait", "ask"))
    wait = float_param(params, "wait", 0, 0, MAX_WAIT)
    ask = params.get("ask", "queue")
    if ask not in ("queue", "host"):
        raise bad_parameter("ask", "must be one of queue, host")
    if ask == "host" and wait > 0:
        raise bad_parameter("ask", "cannot be host together with wait (the host asks its person)")
    hook = HookProof(request)
    call = await parse_call(request)
    service = request.app[SERVICE]
    outcome = await service.call(call, agent_status=presented_status(request),
                                 ask_host=ask == "host")
    if wait > 0:  # ?wait=S holds an ask until a person decides
        outcome = await service.await_approval(
            call, outcome, wait, agent_status=lambda: current_status(request),
            connected=lambda: request.transport is not None
            and not request.transport.is_closing())
    body = decision_body(outcome.decision, allowed=outcome.allowed)
    body["audit_id"] = outcome.record["id"]
    body.update(outcome.approval)
    return web.json_response(hook.sign(body), status=VERDICT_STATUS[outcome.verdict])


async def preflight(request: web.Request) -> web.Response:
    """POST /v1/preflight/{tool}: what would happen; nothing recorded, always 200."""
    query(request, ())
    hook = HookProof(request)
    call = await parse_call(request)
    decision = await request.app[SERVICE].preflight(call,
                                                    agent_status=presented_status(request))
    return web.json_response(hook.sign(decision_body(decision, allowed=decision.allowed)))


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

