"""Veto's decisions API over the audit log, through the real app."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ulid import ULID

from rampartd.audit.chain import GENESIS_HASH, RecordDraft, build_record, columns_of, format_ts
from rampartd.audit.drafts import decision_draft
from rampartd.audit.migrations import apply_migrations
from rampartd.audit.verify import verify_db
from rampartd.config import Settings
from rampartd.daemon import prepare_home
from rampartd.models import Decision, ToolCall
from rampartd.web.app import create_app
from rampartd.web.decisions import CLIENT_LOG_LIMIT, CLIENT_LOG_WINDOW
from rampartd.web.keys import DECISION_LIMITER, SERVICE
from rampartd.web.limits import SlidingWindowLimiter
from tests.api_policy import write_policy
from tests.conftest import make_settings

ABSENT_ULID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


@pytest.fixture
def settings(home: Path) -> Settings:
    s = make_settings(home, policy_dir=str(write_policy(home.parent / "pol")))
    prepare_home(s)
    return s


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def client_body(**extra: Any) -> dict[str, Any]:
    body = {"tool_name": "send_email", "arguments": {"to": "a@example.com"},
            "decision": "allow", "reason": "All constraints passed", "mode": "deterministic",
            "latency_ms": 2, "source": "client"}
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


async def tool(client: Any, headers: dict[str, str], command: str, *, agent: str = "claude",
               name: str = "exec") -> dict[str, Any]:
    resp = await client.post(f"/v1/tool/{name}", headers=headers, json={
        "agent": agent, "session": "sess-1", "run_id": "run-1",
        "params": {"command": command, "path": "/tmp/x"}})
    assert resp.status in (200, 202, 403), await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def ask_record(client: Any) -> str:
    """Record an ask decision as the service does (without depending on the approval queue)."""
    call = ToolCall(tool="exec", agent="claude", session="sess-1", run_id="run-1",
                    params={"command": "sudo reboot", "path": "/tmp/x"})
    decision = Decision("ask", "sudo needs a human", policy="ask-sudo",
                        matched_policies=("ask-sudo",), evaluation_time_us=7)
    record = await client.app[SERVICE].store.append(
        decision_draft(call, decision, approval_status="pending"))
    return str(record["id"])


async def listing(client: Any, auth: dict[str, str], **params: Any) -> dict[str, Any]:
    resp = await client.get("/v1/decisions", params=params, headers=auth)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def test_list_filters_and_pagination(client: Any, auth: dict[str, str]) -> None:
    agent = await (await client.post("/v1/agents", json={"name": "builder"},
                                     headers=auth)).json()
    ids = {
        "allow": (await tool(client, auth, "git status"))["audit_id"],
        "deny": (await tool(client, auth, "rm -rf /srv/build"))["audit_id"],
        "ask": await ask_record(client),
        "watch": (await tool(client, auth, "curl https://example.com"))["audit_id"],
        "agent": (await tool(client, bearer(agent["token"]), "ls", name="read"))["audit_id"],
    }
    page = await listing(client, auth)
    assert page["pagination"] == {"total": 5, "limit": 50, "offset": 0, "hasMore": False}
    assert [d["id"] for d in page["data"]] == [ids["agent"], ids["watch"], ids["ask"],
                                                ids["deny"], ids["allow"]]
    denied = page["data"][3]
    assert denied["toolName"] == "exec" and denied["decision"] == "deny"
    assert denied["arguments"] == {"command": "rm -rf /srv/build", "path": "/tmp/x"}
    assert denied["mode"] == "deterministic" and denied["reason"] == \
        "recursive deletes are blocked"
    assert denied["context"]["session_id"] == "sess-1"
    assert denied["context"]["run_id"] == "run-1"
    assert denied["context"]["source"] == "server" and denied["context"]["agent"] == "claude"
    assert denied["context"]["agent_id"] is None
    assert denied["matchedPolicies"] == ["block-rm"] and denied["policy"] == "block-rm"
    assert isinstance(denied["latencyMs"], int | float) and denied["createdAt"].endswith("Z")
    assert isinstance(denied["seq"], int) and denied["hash"].startswith("sha256:")
    assert page["data"][2]["context"]["approval_status"] == "pending"
    assert page["data"][0]["context"]["agent_id"] == agent["id"]

    for action in ("deny", "ask", "watch"):
        page = await listing(client, auth, decision=action)
        assert [d["id"] for d in page["data"]] == [ids[action]], action
    page = await listing(client, auth, decision="allow")
    assert [d["id"] for d in page["data"]] == [ids["agent"], ids["allow"]]
    assert [d["id"] for d in (await listing(client, auth, toolName="read"))["data"]] == \
        [ids["agent"]]
    page = await listing(client, auth, agentId=agent["id"])
    assert [d["id"] for d in page["data"]] == [ids["agent"]]
    page = await listing(client, auth, agentId="00000000-0000-4000-8000-000000000000")
    assert page["data"] == [] and page["pagination"]["total"] == 0
    page = await listing(client, auth, toolName="exec", decision="allow")
    assert page["pagination"]["total"] == 1

    page = await listing(client, auth, limit=2)
    assert page["pagination"] == {"total": 5, "limit": 2, "offset": 0, "hasMore": True}
    page = await listing(client, auth, limit=2, offset=2)
    assert [d["id"] for d in page["data"]] == [ids["ask"], ids["deny"]]
    assert page["pagination"]["hasMore"] is True
    page = await listing(client, auth, limit=2, offset=4)
    assert len(page["data"]) == 1 and page["pagination"]["hasMore"] is False

    today = datetime.now(UTC).date()
    assert (await listing(client, auth, startDate=today.isoformat(),
                          endDate=today.isoformat()))["pagination"]["total"] == 5
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert (await listing(client, auth, startDate=tomorrow))["pagination"]["total"] == 0
    yesterday = (today - timedelta(days=1)).isoformat()
    assert (await listing(client, auth, endDate=yesterday))["pagination"]["total"] == 0


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "ten"}, "limit"),
    ({"offset": -1}, "offset"), ({"decision": "maybe"}, "decision"),
    ({"startDate": "yesterday"}, "startDate"), ({"endDate": "2026-13-01"}, "endDate"),
    ({"startDate": "2026-02-02", "endDate": "2026-02-01"}, "endDate"),
    ({"agentId": "agent_1"}, "agentId"), ({"projectId": "x"}, "projectId"),
])
async def test_list_rejects_bad_parameters(client: Any, auth: dict[str, str],
                                           params: dict[str, Any], field: str) -> None:
    resp = await client.get("/v1/decisions", params=params, headers=auth)
    assert resp.status == 400
    assert field in (await resp.json())["error"]


async def test_get_one(client: Any, auth: dict[str, str]) -> None:
    audit_id = (await tool(client, auth, "git status"))["audit_id"]
    resp = await client.get(f"/v1/decisions/{audit_id}", headers=auth)
    assert resp.status == 200
    one = await resp.json()
    assert one == (await listing(client, auth))["data"][0]
    assert (one["id"], one["decision"], one["toolName"]) == (audit_id, "allow", "exec")
    assert (await client.get(f"/v1/decisions/{audit_id.lower()}", headers=auth)).status == 200

    resp = await client.get(f"/v1/decisions/{ABSENT_ULID}", headers=auth)
    assert resp.status == 404 and (await resp.json())["code"] == "DECISION_NOT_FOUND"
    resp = await client.get("/v1/decisions/d7f2a1b3-4c5e-6f78-9a0b-1c2d3e4f5a6b", headers=auth)
    assert resp.status == 400 and "id" in (await resp.json())["error"]
    # An audit record that is not a decision (the start-up policy load) is not a decision.
    events = await (await client.get("/v1/audit/events", params={"kind": "policy.reloaded"},
                                      headers=auth)).json()
    resp = await client.get(f"/v1/decisions/{events['events'][0]['id']}", headers=auth)
    assert resp.status == 404


async def test_client_logged_decisions(client: Any, auth: dict[str, str]) -> None:
    agent = await (await client.post("/v1/agents", json={"name": "builder"},
                                     headers=auth)).json()
    token = bearer(agent["token"])
    resp = await client.post("/v1/decisions", headers=token, json=client_body(
        arguments={"to": "a@example.com", "api_key": "sk-abcdefghijklmnopqrstuvwx"},
        latency_ms=2.5, context={"session_id": "sess_abc", "agent_id": "someone-else"}))
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert created["success"] is True and len(created["id"]) == 26

    one = await (await client.get(f"/v1/decisions/{created['id']}", headers=auth)).json()
    assert (one["toolName"], one["decision"], one["mode"], one["latencyMs"]) == \
        ("send_email", "allow", "deterministic", 2.5)
    assert one["reason"] == "All constraints passed"
    assert one["arguments"] == {"to": "a@example.com", "api_key": "[REDACTED]"}
    context = one["context"]
    assert context["source"] == "client" and context["session_id"] == "sess_abc"
    assert context["agent"] == "builder"  # the token's agent, whatever the context says
    record = await (await client.get(f"/v1/audit/events/{created['id']}", headers=auth)).json()
    assert record["kind"] == "decision.client" and record["agent"] == "builder"
    assert record["detail"]["source"] == "client"
    assert record["detail"]["agent_id"] == agent["id"]
    assert record["session"] == "sess_abc" and record["decision"]["action"] == "allow"

    # With the admin token the context names the agent.
    resp = await client.post("/v1/decisions", headers=auth, json=client_body(
        decision="deny", reason=None, mode="llm", context={"agent_id": "agent_1"}))
    admin_logged = await resp.json()
    one = await (await client.get(f"/v1/decisions/{admin_logged['id']}", headers=auth)).json()
    assert (one["context"]["agent"], one["context"]["agent_id"], one["decision"], one["mode"],
            one["reason"]) == ("agent_1", "agent_1", "deny", "llm", None)
    resp = await client.post("/v1/decisions", headers=auth, json=client_body())
    logged = await (await client.get(f"/v1/decisions/{(await resp.json())['id']}",
                                     headers=auth)).json()
    assert logged["context"]["agent"] == "client"

    page = await listing(client, auth, agentId=agent["id"])
    assert [d["id"] for d in page["data"]] == [created["id"]]
    assert (await listing(client, auth, decision="deny"))["pagination"]["total"] == 1
    verify = await (await client.get("/v1/audit/verify", headers=auth)).json()
    assert verify["valid"] is True


@pytest.mark.parametrize(("override", "field"), [
    ({"tool_name": None}, "tool_name"), ({"tool_name": ""}, "tool_name"),
    ({"arguments": None}, "arguments"), ({"arguments": [1]}, "arguments"),
    ({"decision": "maybe"}, "decision"), ({"decision": "ask"}, "decision"),
    ({"mode": "guess"}, "mode"), ({"mode": None}, "mode"),
    ({"latency_ms": -1}, "latency_ms"), ({"latency_ms": "2"}, "latency_ms"),
    ({"latency_ms": True}, "latency_ms"), ({"latency_ms": None}, "latency_ms"),
    ({"source": "server"}, "source"), ({"reason": 5}, "reason"),
    ({"context": "x"}, "context"), ({"context": {"session_id": 5}}, "session_id"),
    ({"project_id": "p"}, "project_id"),
])
async def test_client_log_validation(client: Any, auth: dict[str, str],
                                     override: dict[str, Any], field: str) -> None:
    body = client_body()
    body.update(override)
    body = {k: v for k, v in body.items() if v is not None}
    resp = await client.post("/v1/decisions", json=body, headers=auth)
    assert resp.status == 400
    assert field in (await resp.json())["error"]


async def test_client_log_needs_a_credential(client: Any) -> None:
    resp = await client.post("/v1/decisions", json=client_body())
    assert resp.status == 401
    resp = await client.post("/v1/decisions", json=client_body(),
                             headers=bearer("rpd_agent_nope"))
    assert resp.status == 401


async def test_client_log_rate_limit(aiohttp_client: Any, settings: Settings,
                                     auth: dict[str, str]) -> None:
    now = [1000.0]
    app = create_app(settings)
    app[DECISION_LIMITER] = SlidingWindowLimiter(CLIENT_LOG_LIMIT, CLIENT_LOG_WINDOW,
                                                 clock=lambda: now[0])
    client = await aiohttp_client(app)
    agent = await (await client.post("/v1/agents", json={"name": "builder"},
                                     headers=auth)).json()
    token = bearer(agent["token"])
    assert (CLIENT_LOG_LIMIT, CLIENT_LOG_WINDOW) == (120, 60.0)
    for i in range(120):
        resp = await client.post("/v1/decisions", json=client_body(), headers=token)
        assert resp.status == 201, i
        now[0] += 0.25  # 120 requests over 30 s
    resp = await client.post("/v1/decisions", json=client_body(), headers=token)
    assert resp.status == 429 and (await resp.json())["code"] == "rate_limited"
    assert resp.headers["Retry-After"] == "30"
    # Another credential has its own budget.
    assert (await client.post("/v1/decisions", json=client_body(),
                              headers=auth)).status == 201
    now[0] += 30.0  # the oldest request leaves the window
    assert (await client.post("/v1/decisions", json=client_body(),
                              headers=token)).status == 201
    resp = await client.post("/v1/decisions", json=client_body(), headers=token)
    assert resp.status == 429 and resp.headers["Retry-After"] == "1"
    page = await listing(client, auth, limit=1)
    assert page["pagination"]["total"] == 122  # refused requests are not recorded


def backdated_db(db_path: Path, days_ago: dict[int, list[str]]) -> None:
    """Write a valid chain of decision records dated days ago (before the daemon opens it)."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path, isolation_level=None)
    apply_migrations(conn)
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    prev, seq = GENESIS_HASH, 0
    conn.execute("BEGIN")
    for ago in sorted(days_ago, reverse=True):
        for i, action in enumerate(days_ago[ago]):
            moment = now - timedelta(days=ago) + timedelta(seconds=i)
            epoch_us = int(moment.timestamp()) * 1_000_000
            kind = "decision.client" if action.endswith("*") else "decision"
            draft = RecordDraft(kind=kind, agent="claude", session="s", tool="exec",
                                request={"command": "ls"},
                                decision={"action": action.rstrip("*"), "message": "m",
                                          "policy": None, "matched_policies": [],
                                          "suggestions": [], "evaluation_time_us": 5})
            seq += 1
            record, canonical, digest = build_record(
                draft.payload(), seq=seq, record_id=str(ULID.from_datetime(moment)),
                ts=format_ts(epoch_us), prev_hash=prev)
            conn.execute(
                "INSERT INTO audit_log (seq, id, ts, kind, agent, session, tool, action, "
                "run_id, prev_hash, hash, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*columns_of(record), digest, canonical))
            prev = digest
    conn.execute("COMMIT")
    conn.close()


async def test_stats_over_several_days(aiohttp_client: Any, settings: Settings,
                                       auth: dict[str, str]) -> None:
    backdated_db(settings.db_path, {
        10: ["allow"],  # outside a 7-day window
        5: ["allow", "allow", "deny", "allow*"],
        3: ["ask", "watch", "deny*"],
        1: ["deny"],
    })
    client = await aiohttp_client(create_app(settings))
    await tool(client, auth, "git status")
    await tool(client, auth, "rm -rf /")

    resp = await client.get("/v1/decisions/stats", headers=auth)
    assert resp.status == 200
    stats = await resp.json()
    today = datetime.now(UTC).date()
    day = [(today - timedelta(days=n)).isoformat() for n in range(7)]
    assert stats["period"] == {"days": 7, "startDate": day[6], "endDate": day[0]}
    assert stats["summary"] == {"total": 10, "allowed": 4, "denied": 4, "asked": 1,
                                "watched": 1, "server": 8, "client": 2}
    breakdown = {row["date"]: row for row in stats["breakdown"]}
    assert [row["date"] for row in stats["breakdown"]] == sorted(day)
    assert breakdown[day[5]] == {"date": day[5], "total": 4, "allowed": 3, "denied": 1,
                                 "asked": 0, "watched": 0, "server": 3, "client": 1}
    assert breakdown[day[3]]["asked"] == 1 and breakdown[day[3]]["denied"] == 1
    assert breakdown[day[1]]["denied"] == 1
    assert breakdown[day[0]]["allowed"] == 1 and breakdown[day[0]]["denied"] == 1
    for empty in (day[2], day[4], day[6]):
        assert breakdown[empty]["total"] == 0  # days without decisions are zeros
    stats = await (await client.get("/v1/decisions/stats", params={"days": 1},
                                    headers=auth)).json()
    assert stats["summary"]["total"] == 2 and len(stats["breakdown"]) == 1
    stats = await (await client.get("/v1/decisions/stats", params={"days": 90},
                                    headers=auth)).json()
    assert stats["summary"]["total"] == 11 and len(stats["breakdown"]) == 90
    for bad in ("0", "91", "x"):
        resp = await client.get("/v1/decisions/stats", params={"days": bad}, headers=auth)
        assert resp.status == 400 and "days" in (await resp.json())["error"]

    # The list sees the old records too, and date filters select them.
    page = await listing(client, auth, startDate=day[5], endDate=day[3])
    assert page["pagination"]["total"] == 7
    assert verify_db(settings.db_path)["valid"] is True
