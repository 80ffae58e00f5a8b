"""Every route of the URL table refuses a bad value of each of its parameters the same way.

A query or path parameter is a 400 `invalid_parameter`, a body field a 400 `invalid_field`, and
the message names it. SPECS holds each route's parameters with one bad value each; a route
added to the table without a spec fails `test_every_route_has_a_spec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient

from rampartd.web.routes import ROUTES

MISSING = object()  # a required field left out
Q_LONG = "x" * 1100  # longer than any query parameter may be (and short enough for a URL)
B_LONG = "x" * 70000  # longer than any body string may be
ULID = "01JZZZZZZZZZZZZZZZZZZZZZZZ"
UUID = "6f1c0000-0000-4000-8000-000000000000"
CALL = {"agent": "a", "session": "s", "params": {}}
CALL_BAD = {"agent": 5, "session": "", "params": "x", "run_id": 7, "tool_call_id": B_LONG,
            "cwd": B_LONG}
LINK = {"action": "approve", "exp": "9999999999", "sig": "0" * 64}
FILTERS_BAD = {"tool": Q_LONG, "action": "maybe", "agent": Q_LONG, "session": Q_LONG,
               "run_id": Q_LONG, "kind": "*", "since": "yesterday", "until": "2026-13-01",
               "date": "today"}


@dataclass(frozen=True)
class Spec:
    """One route's parameters, each with a bad value."""

    path: str  # the route's path with valid segment values
    query: dict[str, str] = field(default_factory=dict)
    segments: dict[str, str] = field(default_factory=dict)  # name -> the path with it bad
    body: dict[str, Any] | None = None  # a valid body; None: the route reads no body
    fields: dict[str, Any] = field(default_factory=dict)  # dotted names reach nested objects
    base_query: dict[str, str] = field(default_factory=dict)  # what the route needs besides


def _segment(path: str, value: str) -> dict[str, str]:
    return {"id": path.replace("{id}", value)} if "{id}" in path else \
        {"tool": path.replace("{tool}", value)}


SPECS: dict[tuple[str, str], Spec] = {
    ("GET", "/healthz"): Spec("/healthz"),
    ("GET", "/v1/status"): Spec("/v1/status"),
    ("GET", "/metrics"): Spec("/metrics"),
    ("POST", "/v1/tool/{tool}"): Spec(
        "/v1/tool/exec", query={"wait": "abc"}, segments={"tool": "/v1/tool/bad tool"},
        body=CALL, fields={**CALL_BAD, "agent": MISSING}),
    ("POST", "/v1/preflight/{tool}"): Spec(
        "/v1/preflight/exec", segments={"tool": "/v1/preflight/" + "t" * 129}, body=CALL,
        fields=CALL_BAD),
    ("POST", "/v1/test"): Spec(
        "/v1/test", body={"command": "ls"},
        fields={"command": 5, "tool": "bad tool", "agent": 5, "session": B_LONG,
                "params": [], "cwd": 5}),
    ("GET", "/v1/policy/summary"): Spec("/v1/policy/summary"),
    ("POST", "/v1/policy/reload"): Spec("/v1/policy/reload"),
    ("GET", "/v1/audit/events"): Spec(
        "/v1/audit/events",
        query={**FILTERS_BAD, "limit": "501", "cursor": "nope", "offset": "-1"}),
    ("GET", "/v1/audit/events/{id}"): Spec(
        f"/v1/audit/events/{ULID}", segments={"id": "/v1/audit/events/nope"}),
    ("GET", "/v1/audit/stats"): Spec("/v1/audit/stats", query={"from": "x", "to": "1.2.3"}),
    ("GET", "/v1/audit/dates"): Spec("/v1/audit/dates"),
    ("GET", "/v1/audit/export"): Spec("/v1/audit/export", query=FILTERS_BAD),
    ("GET", "/v1/audit/verify"): Spec("/v1/audit/verify"),
    ("GET", "/v1/approvals"): Spec(
        "/v1/approvals", query={"status": "nope", "agent": Q_LONG, "session": Q_LONG,
                                "run_id": Q_LONG, "limit": "0"}),
    ("POST", "/v1/approvals"): Spec(
        "/v1/approvals", body={"agent": "a", "session": "s", "tool": "exec"},
        fields={"agent": MISSING, "session": 5, "tool": "no spaces", "params": "x",
                "run_id": 5, "tool_call_id": B_LONG, "message": 5, "timeout_seconds": 0,
                "requested_by": B_LONG}),
    ("POST", "/v1/approvals/bulk-resolve"): Spec(
        "/v1/approvals/bulk-resolve",
        body={"agent": "a", "session": "s", "run_id": "r", "action": "approve",
              "ids": [ULID], "resolved_by": "me"},
        fields={"agent": MISSING, "session": 5, "run_id": "", "action": "maybe",
                "scope": "all", "ids": "x", "resolved_by": MISSING, "reason": 5}),
    ("GET", "/v1/approvals/{id}"): Spec(
        f"/v1/approvals/{ULID}", query={"wait": "99"}, segments={"id": "/v1/approvals/nope"}),
    ("POST", "/v1/approvals/{id}/resolve"): Spec(
        f"/v1/approvals/{ULID}/resolve", segments={"id": "/v1/approvals/nope/resolve"},
        body={"approved": True, "resolved_by": "me"},
        fields={"approved": "yes", "resolved_by": MISSING, "reason": 5}),
    ("GET", "/v1/approvals/{id}/link"): Spec(
        f"/v1/approvals/{ULID}/link", query={"action": "maybe", "exp": "soon", "sig": "zz"},
        segments={"id": "/v1/approvals/nope/link"}, base_query=LINK),
    ("POST", "/v1/approvals/{id}/link"): Spec(
        f"/v1/approvals/{ULID}/link", query={"action": "", "exp": "-1", "sig": "g" * 64},
        segments={"id": "/v1/approvals/nope/link"}, base_query=LINK),
    ("GET", "/v1/events/stream"): Spec(
        "/v1/events/stream",
        query={"types": "nope", "tool": Q_LONG, "agent": Q_LONG, "session": Q_LONG,
               "decision": "maybe", "run_id": Q_LONG, "format": "xml",
               "last_event_id": "-1"}),
    ("POST", "/v1/agents"): Spec(
        "/v1/agents", body={"name": "n"}, fields={"name": MISSING, "description": 5}),
    ("GET", "/v1/agents"): Spec(
        "/v1/agents", query={"limit": "0", "offset": "-1", "name": Q_LONG}),
    ("GET", "/v1/agents/{id}"): Spec(f"/v1/agents/{UUID}", segments={"id": "/v1/agents/nope"}),
    ("PATCH", "/v1/agents/{id}"): Spec(
        f"/v1/agents/{UUID}", segments={"id": "/v1/agents/nope"}, body={"name": "n"},
        fields={"name": "", "description": 5, "status": "gone"}),
    ("DELETE", "/v1/agents/{id}"): Spec(
        f"/v1/agents/{UUID}", segments={"id": "/v1/agents/nope"}),
    ("POST", "/v1/agents/{id}/token"): Spec(
        f"/v1/agents/{UUID}/token", segments={"id": "/v1/agents/nope/token"}),
    ("GET", "/v1/decisions"): Spec(
        "/v1/decisions",
        query={"limit": "101", "offset": "x", "toolName": Q_LONG, "decision": "maybe",
               "startDate": "x", "endDate": "2026-02-30", "agentId": "nope"}),
    ("GET", "/v1/decisions/stats"): Spec("/v1/decisions/stats", query={"days": "91"}),
    ("GET", "/v1/decisions/{id}"): Spec(
        f"/v1/decisions/{ULID}", segments={"id": "/v1/decisions/nope"}),
    ("POST", "/v1/decisions"): Spec(
        "/v1/decisions",
        body={"tool_name": "t", "arguments": {}, "decision": "allow", "mode": "llm",
              "latency_ms": 1, "source": "client"},
        fields={"tool_name": 5, "arguments": [], "decision": "ask", "mode": "x",
                "latency_ms": -1, "source": "server", "reason": 5, "context": "x",
                "context.session_id": 5, "context.run_id": B_LONG, "context.agent_id": 7}),
}


def test_every_route_has_a_spec() -> None:
    table = {(route.method, route.path) for route in ROUTES}
    assert table - set(SPECS) == set(), "routes without a parameter spec"
    assert set(SPECS) - table == set(), "specs of routes that no longer exist"


def _with(body: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    out = dict(body)
    head, _, rest = name.partition(".")
    if rest:
        out[head] = _with(dict(out.get(head) or {}), rest, value)
    elif value is MISSING:
        out.pop(name, None)
    else:
        out[name] = value
    return out


async def _refused(client: TestClient[Any, Any], auth: dict[str, str], method: str,
                   path: str, *, params: dict[str, str], body: dict[str, Any] | None,
                   code: str, name: str) -> None:
    resp = await client.request(method, path, params=params, headers=auth, json=body)
    answer = await resp.json()
    where = (method, path, params, None if body is None else str(body)[:200])
    assert resp.status == 400, (where, resp.status, answer)
    assert answer["code"] == code, (where, answer)
    assert f"'{name}'" in answer["error"], (where, answer)


async def test_each_bad_parameter_and_field_is_named(client: TestClient[Any, Any],
                                                     auth: dict[str, str]) -> None:
    checked = 0
    for route in ROUTES:
        spec = SPECS[route.method, route.path]
        base = spec.base_query

        async def refused(path: str, params: dict[str, str], body: dict[str, Any] | None,
                          code: str, name: str, method: str = route.method) -> None:
            await _refused(client, auth, method, path, params=params, body=body, code=code,
                           name=name)

        await refused(spec.path, {**base, "bogus": "1"}, spec.body, "invalid_parameter",
                      "bogus")
        for name, bad in spec.query.items():
            await refused(spec.path, {**base, name: bad}, spec.body, "invalid_parameter", name)
            checked += 1
        for name, path in spec.segments.items():
            await refused(path, base, spec.body, "invalid_parameter", name)
            checked += 1
        if spec.body is None:
            continue
        await refused(spec.path, base, {**spec.body, "bogus": 1}, "invalid_field", "bogus")
        for name, bad in spec.fields.items():
            await refused(spec.path, base, _with(spec.body, name, bad), "invalid_field", name)
            checked += 1
    assert checked > 100


async def test_a_body_that_is_not_an_object_is_invalid_json(client: TestClient[Any, Any],
                                                            auth: dict[str, str]) -> None:
    for (method, _), spec in SPECS.items():
        if spec.body is None:
            continue
        resp = await client.request(method, spec.path, params=spec.base_query, headers=auth,
                                    data=b"[1]")
        assert resp.status == 400 and (await resp.json())["code"] == "invalid_json", spec.path
