"""The agents registry and per-agent tokens through the real app (Veto's agents API)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from rampartd.audit.verify import verify_db
from rampartd.config import Settings
from rampartd.daemon import prepare_home
from rampartd.web.app import create_app
from rampartd.web.keys import AGENTS
from tests.api_policy import write_policy
from tests.conftest import make_settings

POLICY = """\
version: "1"
default_action: allow
policies:
  - name: block-rm
    match: {tool: exec}
    rules:
      - action: deny
        when: {command_matches: ["rm -rf *"]}
        message: recursive deletes are blocked
  - name: impostor-blocked
    match: {agent: "ops-admin"}
    rules:
      - action: deny
        when: {default: true}
        message: ops-admin may do nothing
"""
MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def settings(home: Path) -> Settings:
    s = make_settings(home, policy_dir=str(write_policy(home.parent / "pol", POLICY)))
    prepare_home(s)
    return s


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def call(command: str = "ls", agent: str = "someone") -> dict[str, Any]:
    return {"agent": agent, "session": "s1", "params": {"command": command}}


async def create(client: Any, auth: dict[str, str], name: str, **extra: Any) -> dict[str, Any]:
    resp = await client.post("/v1/agents", json={"name": name, **extra}, headers=auth)
    assert resp.status == 201, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def error(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    body: dict[str, Any] = await resp.json()
    assert set(body) >= {"error", "code"}
    return body


async def events(client: Any, auth: dict[str, str], kind: str) -> list[dict[str, Any]]:
    resp = await client.get("/v1/audit/events", params={"kind": kind}, headers=auth)
    assert resp.status == 200
    records: list[dict[str, Any]] = (await resp.json())["events"]
    return records


async def test_create_returns_token_once_and_stores_only_its_hash(
        client: Any, auth: dict[str, str], settings: Settings) -> None:
    agent = await create(client, auth, "builder", description="builds things")
    assert set(agent) == {"id", "name", "description", "status", "createdAt", "updatedAt",
                          "token"}
    assert (agent["name"], agent["description"], agent["status"]) == \
        ("builder", "builds things", "active")
    assert agent["createdAt"] == agent["updatedAt"] and agent["createdAt"].endswith("Z")
    token = agent["token"]
    assert token.startswith("rpd_agent_") and len(token) > 40

    # Never shown again: not by get, list, or the audit log.
    resp = await client.get(f"/v1/agents/{agent['id']}", headers=auth)
    shown = await resp.json()
    assert "token" not in shown and shown == {k: v for k, v in agent.items() if k != "token"}
    listing = await (await client.get("/v1/agents", headers=auth)).json()
    assert "token" not in listing["data"][0]
    digest = hashlib.sha256(token.encode()).hexdigest()
    created = await events(client, auth, "agent.created")
    assert created[0]["agent"] == "builder"
    assert created[0]["detail"]["agent_id"] == agent["id"]
    dumped = json.dumps(created)
    assert token not in dumped and digest not in dumped

    # Only the SHA-256 is in the database, and the token itself is nowhere in its files.
    conn = sqlite3.connect(settings.db_path)
    rows = conn.execute("SELECT token_sha256, agent_id FROM agent_tokens").fetchall()
    conn.close()
    assert rows == [(digest, agent["id"])]
    for path in settings.home.glob("rampartd.db*"):
        assert token.encode() not in path.read_bytes()


async def test_get_errors(client: Any, auth: dict[str, str]) -> None:
    body = await error(await client.get(f"/v1/agents/{MISSING}", headers=auth), 404)
    assert body["code"] == "AGENT_NOT_FOUND"
    body = await error(await client.get("/v1/agents/not-a-uuid", headers=auth), 400)
    assert "id" in body["error"]
    for method in ("PATCH", "DELETE"):
        resp = await client.request(method, f"/v1/agents/{MISSING}", json={}, headers=auth)
        assert (await error(resp, 404))["code"] == "AGENT_NOT_FOUND"
        resp = await client.request(method, "/v1/agents/123", json={}, headers=auth)
        await error(resp, 400)
    resp = await client.post(f"/v1/agents/{MISSING}/token", headers=auth)
    assert (await error(resp, 404))["code"] == "AGENT_NOT_FOUND"


async def test_list_pagination(client: Any, auth: dict[str, str]) -> None:
    ids = [(await create(client, auth, f"agent-{i}"))["id"] for i in range(5)]
    page = await (await client.get("/v1/agents", params={"limit": 2}, headers=auth)).json()
    assert page["pagination"] == {"limit": 2, "offset": 0, "count": 2, "total": 5}
    assert [a["id"] for a in page["data"]] == ids[:2]
    page = await (await client.get("/v1/agents", params={"limit": 2, "offset": 4},
                                   headers=auth)).json()
    assert page["pagination"] == {"limit": 2, "offset": 4, "count": 1, "total": 5}
    assert [a["id"] for a in page["data"]] == ids[4:]
    page = await (await client.get("/v1/agents", headers=auth)).json()
    assert page["pagination"] == {"limit": 100, "offset": 0, "count": 5, "total": 5}
    page = await (await client.get("/v1/agents", params={"name": "agent-3"},
                                   headers=auth)).json()
    assert [a["id"] for a in page["data"]] == [ids[3]]
    for params, field in (({"limit": 0}, "limit"), ({"limit": 201}, "limit"),
                          ({"limit": "x"}, "limit"), ({"offset": -1}, "offset"),
                          ({"page": 1}, "page")):
        body = await error(await client.get("/v1/agents", params=params, headers=auth), 400)
        assert field in body["error"]


@pytest.mark.parametrize(("body", "field"), [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 256}, "name"),
    ({"name": 7}, "name"),
    ({"name": "bad\nname"}, "name"),
    ({"name": "evil\u009b31mRED"}, "name"),  # C1 controls reach terminals as escapes too
    ({"name": " padded"}, "name"),
    ({"name": "ok", "description": "d" * 2001}, "description"),
    ({"name": "ok", "description": 5}, "description"),
    ({"name": "ok", "status": "active"}, "status"),
])
async def test_create_validation_names_the_field(client: Any, auth: dict[str, str],
                                                 body: dict[str, Any], field: str) -> None:
    resp = await client.post("/v1/agents", json=body, headers=auth)
    assert field in (await error(resp, 400))["error"]


async def test_create_limits_and_unique_names(client: Any, auth: dict[str, str]) -> None:
    agent = await create(client, auth, "n" * 255, description="d" * 2000)
    assert len(agent["name"]) == 255 and agent["description"] == "d" * 2000
    await create(client, auth, "builder")
    resp = await client.post("/v1/agents", json={"name": "builder"}, headers=auth)
    assert (await error(resp, 409))["code"] == "conflict"
    other = await create(client, auth, "Builder")  # names are case-sensitive
    assert other["name"] == "Builder"
    assert (await error(await client.post("/v1/agents", data=b"{", headers=auth), 400))


async def test_patch_is_partial_and_recorded(client: Any, auth: dict[str, str]) -> None:
    agent = await create(client, auth, "builder", description="first")
    url = f"/v1/agents/{agent['id']}"
    resp = await client.patch(url, json={"description": "second"}, headers=auth)
    assert resp.status == 200
    body = await resp.json()
    assert (body["name"], body["description"], body["status"]) == ("builder", "second", "active")
    assert body["updatedAt"] >= agent["updatedAt"] and body["createdAt"] == agent["createdAt"]
    body = await (await client.patch(url, json={"description": None}, headers=auth)).json()
    assert body["description"] is None
    body = await (await client.patch(url, json={"name": "maker"}, headers=auth)).json()
    assert body["name"] == "maker"
    assert (await (await client.get(url, headers=auth)).json())["name"] == "maker"
    # An empty or no-op patch changes nothing and records nothing.
    before = await events(client, auth, "agent.updated")
    body = await (await client.patch(url, json={"name": "maker"}, headers=auth)).json()
    assert body["name"] == "maker"
    assert len(await events(client, auth, "agent.updated")) == len(before) == 3
    changes = [r["detail"]["changes"] for r in reversed(before)]
    assert changes == [{"description": {"from": "first", "to": "second"}},
                       {"description": {"from": "second", "to": None}},
                       {"name": {"from": "builder", "to": "maker"}}]
    assert before[0]["agent"] == "maker"

    await create(client, auth, "taken")
    assert (await error(await client.patch(url, json={"name": "taken"}, headers=auth),
                        409))["code"] == "conflict"
    for bad, field in (({"status": "paused"}, "status"), ({"name": ""}, "name"),
                       ({"description": 1}, "description"), ({"colour": "red"}, "colour")):
        body = await error(await client.patch(url, json=bad, headers=auth), 400)
        assert field in body["error"]


async def test_status_transitions_and_revoked_is_final(client: Any,
                                                       auth: dict[str, str]) -> None:
    agent = await create(client, auth, "builder")
    url = f"/v1/agents/{agent['id']}"
    for status in ("suspended", "active", "suspended", "revoked"):
        resp = await client.patch(url, json={"status": status}, headers=auth)
        assert resp.status == 200 and (await resp.json())["status"] == status
    for status in ("active", "suspended"):
        resp = await client.patch(url, json={"status": status}, headers=auth)
        assert (await error(resp, 409))["code"] == "conflict"
    resp = await client.patch(url, json={"status": "revoked"}, headers=auth)
    assert resp.status == 200
    resp = await client.post(f"{url}/token", headers=auth)
    assert (await error(resp, 409))["code"] == "conflict"
    assert (await (await client.get(url, headers=auth)).json())["status"] == "revoked"


async def test_agent_token_overrides_body_agent(client: Any, auth: dict[str, str]) -> None:
    agent = await create(client, auth, "builder")
    token = agent["token"]
    # The body claims an identity the policy denies outright; the token's agent is used.
    resp = await client.post("/v1/tool/exec", json=call("ls", agent="ops-admin"),
                             headers=bearer(token))
    assert resp.status == 200, await resp.text()
    record_id = (await resp.json())["audit_id"]
    record = await (await client.get(f"/v1/audit/events/{record_id}", headers=auth)).json()
    assert record["agent"] == "builder"
    # The admin token does use the body's agent.
    resp = await client.post("/v1/tool/exec", json=call("ls", agent="ops-admin"), headers=auth)
    assert resp.status == 403
    resp = await client.post("/v1/preflight/exec", json=call("ls", agent="ops-admin"),
                             headers=bearer(token))
    assert (await resp.json())["decision"] == "allow"
    resp = await client.post("/v1/tool/exec", json=call("rm -rf /tmp/x"), headers=bearer(token))
    assert resp.status == 403 and (await resp.json())["policy"] == "block-rm"


async def test_suspend_and_revoke_take_effect_on_the_next_call(
        client: Any, auth: dict[str, str]) -> None:
    agent = await create(client, auth, "builder")
    url, token = f"/v1/agents/{agent['id']}", bearer(agent["token"])
    assert (await client.post("/v1/tool/exec", json=call(), headers=token)).status == 200

    await client.patch(url, json={"status": "suspended"}, headers=auth)
    assert client.app[AGENTS].get(agent["id"]).status == "suspended"
    resp = await client.post("/v1/tool/exec", json=call(), headers=token)
    body = await resp.json()
    assert resp.status == 403 and body["decision"] == "deny" and body["allowed"] is False
    assert "suspended" in body["message"] and body["policy"] is None
    record = await (await client.get(f"/v1/audit/events/{body['audit_id']}",
                                     headers=auth)).json()
    assert record["decision"]["action"] == "deny"
    assert record["detail"]["agent_status"] == "suspended"
    assert record["decision"]["matched_policies"] == []  # no policy was evaluated
    resp = await client.post("/v1/preflight/exec", json=call(), headers=token)
    assert resp.status == 200 and (await resp.json())["decision"] == "deny"

    await client.patch(url, json={"status": "active"}, headers=auth)
    assert (await client.post("/v1/tool/exec", json=call(), headers=token)).status == 200

    await client.patch(url, json={"status": "revoked"}, headers=auth)
    resp = await client.post("/v1/tool/exec", json=call(), headers=token)
    body = await resp.json()
    assert resp.status == 403 and "revoked" in body["message"]
    record = await (await client.get(f"/v1/audit/events/{body['audit_id']}",
                                     headers=auth)).json()
    assert record["detail"]["agent_status"] == "revoked"


async def test_token_rotation_invalidates_the_old_token(client: Any,
                                                        auth: dict[str, str]) -> None:
    agent = await create(client, auth, "builder")
    old = agent["token"]
    resp = await client.post(f"/v1/agents/{agent['id']}/token", headers=auth)
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    rotated = await resp.json()
    new = rotated["token"]
    assert new != old and new.startswith("rpd_agent_") and rotated["id"] == agent["id"]
    assert (await client.post("/v1/tool/exec", json=call(), headers=bearer(old))).status == 401
    assert (await client.post("/v1/tool/exec", json=call(), headers=bearer(new))).status == 200
    updated = await events(client, auth, "agent.updated")
    assert updated[0]["detail"] == {"agent_id": agent["id"], "changes": {},
                                    "token_rotated": True}
    assert new not in json.dumps(updated)


async def test_delete_keeps_the_audit_chain(client: Any, auth: dict[str, str],
                                            settings: Settings) -> None:
    agent = await create(client, auth, "builder")
    token = bearer(agent["token"])
    assert (await client.post("/v1/tool/exec", json=call(), headers=token)).status == 200
    resp = await client.delete(f"/v1/agents/{agent['id']}", headers=auth)
    assert resp.status == 204 and await resp.read() == b""
    assert (await error(await client.get(f"/v1/agents/{agent['id']}", headers=auth),
                        404))["code"] == "AGENT_NOT_FOUND"
    assert (await client.post("/v1/tool/exec", json=call(), headers=token)).status == 401
    assert (await error(await client.delete(f"/v1/agents/{agent['id']}", headers=auth), 404))

    resp = await client.get("/v1/audit/events", params={"agent": "builder"}, headers=auth)
    kinds = [r["kind"] for r in (await resp.json())["events"]]
    assert kinds == ["agent.deleted", "decision", "agent.created"]
    deleted = (await events(client, auth, "agent.deleted"))[0]
    assert deleted["detail"]["agent_id"] == agent["id"]
    assert deleted["detail"]["tokens_removed"] == 1
    conn = sqlite3.connect(settings.db_path)
    assert conn.execute("SELECT COUNT(*) FROM agent_tokens").fetchone() == (0,)
    assert conn.execute("SELECT COUNT(*) FROM agents").fetchone() == (0,)
    conn.close()
    report = await (await client.get("/v1/audit/verify", headers=auth)).json()
    assert report["valid"] is True and report["records_checked"] >= 4
    assert verify_db(settings.db_path)["valid"] is True
    # The name is free again; a new agent of that name gets a new id and token.
    again = await create(client, auth, "builder")
    assert again["id"] != agent["id"]


async def test_eval_token_is_refused_on_admin_routes(client: Any, auth: dict[str, str]) -> None:
    agent = await create(client, auth, "builder")
    token = bearer(agent["token"])
    for method, path in (("GET", "/v1/agents"), ("POST", "/v1/agents"),
                         ("GET", f"/v1/agents/{agent['id']}"),
                         ("PATCH", f"/v1/agents/{agent['id']}"),
                         ("DELETE", f"/v1/agents/{agent['id']}"),
                         ("POST", f"/v1/agents/{agent['id']}/token"),
                         ("GET", "/v1/decisions"), ("GET", "/v1/decisions/stats"),
                         ("GET", "/v1/audit/events")):
        resp = await client.request(method, path, json={"status": "active"}, headers=token)
        assert (await error(resp, 403))["code"] == "insufficient_scope", (method, path)
        assert (await error(await client.request(method, path), 401))
        resp = await client.request(method, path, headers=bearer("rpd_agent_wrong"))
        assert (await error(resp, 401))
    # A suspended agent's token still identifies it (and is still refused on admin routes).
    await client.patch(f"/v1/agents/{agent['id']}", json={"status": "suspended"}, headers=auth)
    assert (await client.get("/v1/agents", headers=token)).status == 403
    principal = client.app[AGENTS].principal_for(
        hashlib.sha256(agent["token"].encode()).hexdigest())
    assert (principal.agent_status, principal.agent_name, principal.credential_id) == \
        ("suspended", "builder", f"agent:{agent['id']}")


async def test_registry_survives_a_restart(aiohttp_client: Any, settings: Settings) -> None:
    from rampartd.home import read_token

    auth = bearer(read_token(settings.token_path))
    first = await aiohttp_client(create_app(settings))
    agent = await create(first, auth, "builder", description="kept")
    await first.patch(f"/v1/agents/{agent['id']}", json={"status": "suspended"}, headers=auth)
    await first.close()

    second = await aiohttp_client(create_app(settings))
    shown = await (await second.get(f"/v1/agents/{agent['id']}", headers=auth)).json()
    assert (shown["name"], shown["description"], shown["status"]) == \
        ("builder", "kept", "suspended")
    resp = await second.post("/v1/tool/exec", json=call(), headers=bearer(agent["token"]))
    assert resp.status == 403 and "suspended" in (await resp.json())["message"]
