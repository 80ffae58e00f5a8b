"""Approvals through the real app: 202 asks, de-duplication, the cap, resolution (404/410,
concurrent claims), one-shot retry grants, bulk resolution and eval-scoped reads."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from rampartd.config import Settings
from rampartd.daemon import prepare_home
from tests.conftest import make_settings

ASK_POLICY = """\
version: "1"
default_action: allow
policies:
  - name: transfers
    match:
      tool: transfer_funds
    rules:
      - action: deny
        message: far too much
        when:
          params:
            amount: {gt: 100000}
      - action: ask
        message: transfers above 100 need a person
        when:
          params:
            amount: {gt: 100}
"""


def approval_settings(tmp_path: Path, **flags: Any) -> Settings:
    """A prepared home whose policy asks for transfers above 100."""
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir(parents=True, exist_ok=True)
    (policy_dir / "transfers.yaml").write_text(ASK_POLICY)
    s = make_settings(tmp_path / "home", policy_dir=str(policy_dir), **flags)
    prepare_home(s)
    return s


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Overrides conftest: the ask policy, a long approval timeout."""
    return approval_settings(tmp_path, approval_timeout=60)


def call_body(amount: int = 500, *, run_id: str | None = "run-1", tool_call_id: str = "tc-1",
              agent: str = "agent-a", session: str = "s1") -> dict[str, Any]:
    """A transfer_funds call body."""
    body: dict[str, Any] = {"agent": agent, "session": session, "tool_call_id": tool_call_id,
                            "params": {"amount": amount, "to": "acct-9"}}
    if run_id is not None:
        body["run_id"] = run_id
    return body


async def tool(client: Any, headers: dict[str, str], body: dict[str, Any],
               wait: float | None = None) -> tuple[int, dict[str, Any]]:
    """POST /v1/tool/transfer_funds; returns (status, body)."""
    params = {} if wait is None else {"wait": str(wait)}
    resp = await client.post("/v1/tool/transfer_funds", json=body, headers=headers,
                             params=params)
    return resp.status, await resp.json()


async def ask(client: Any, headers: dict[str, str], **kwargs: Any) -> str:
    """Make an ask and return its approval id."""
    status, body = await tool(client, headers, call_body(**kwargs))
    assert status == 202, body
    return str(body["approval_id"])


async def resolve(client: Any, auth: dict[str, str], approval_id: str, approved: bool = True,
                  **extra: Any) -> tuple[int, dict[str, Any]]:
    """POST /v1/approvals/{id}/resolve."""
    resp = await client.post(f"/v1/approvals/{approval_id}/resolve", headers=auth,
                             json={"approved": approved, "resolved_by": "alice", **extra})
    return resp.status, await resp.json()


async def records(client: Any, auth: dict[str, str], kind: str) -> list[dict[str, Any]]:
    """Audit records of one kind, oldest first."""
    resp = await client.get("/v1/audit/events", headers=auth,
                            params={"kind": kind, "limit": "500"})
    assert resp.status == 200
    return list(reversed((await resp.json())["events"]))


async def test_ask_answers_202_with_a_persisted_pending_approval(
        client: Any, auth: dict[str, str], settings: Settings) -> None:
    status, body = await tool(client, auth, call_body())
    assert status == 202
    assert body["allowed"] is False and body["decision"] == "ask"
    assert body["approval_status"] == "pending"
    assert body["expires_at"].endswith("Z") and len(body["approval_id"]) == 26
    approval_id = body["approval_id"]

    # one job: the decision record and approval.requested, next to each other in the chain
    decision = (await records(client, auth, "decision"))[-1]
    requested = (await records(client, auth, "approval.requested"))[-1]
    assert decision["id"] == body["audit_id"]
    assert decision["decision"]["action"] == "ask"
    assert decision["detail"]["approval_id"] == approval_id
    assert requested["seq"] == decision["seq"] + 1
    assert requested["approval"]["id"] == approval_id
    assert requested["approval"]["status"] == "pending"
    assert requested["approval"]["expires_at"] == body["expires_at"]
    assert requested["request"] == {"amount": 500, "to": "acct-9"}

    resp = await client.get(f"/v1/approvals/{approval_id}", headers=auth)
    assert resp.status == 200
    one = await resp.json()
    assert (one["status"], one["agent"], one["session"], one["run_id"], one["tool"]) == \
        ("pending", "agent-a", "s1", "run-1", "transfer_funds")
    assert one["message"] == "transfers above 100 need a person"
    assert one["policy"] == "transfers" and 0 < one["expires_in"] <= 60

    listing = await (await client.get("/v1/approvals", headers=auth)).json()
    assert [a["id"] for a in listing["approvals"]] == [approval_id]
    assert listing["groups"] == [{"agent": "agent-a", "session": "s1", "run_id": "run-1",
                                  "count": 1, "ids": [approval_id],
                                  "earliest_expires_at": body["expires_at"]}]
    status_body = await (await client.get("/v1/status", headers=auth)).json()
    assert status_body["pending_approvals"] == 1

    # persisted in SQLite, not just in memory
    import sqlite3
    with sqlite3.connect(settings.db_path) as conn:
        row = conn.execute("SELECT status, agent FROM approvals WHERE id = ?",
                           (approval_id,)).fetchone()
    assert row == ("pending", "agent-a")


async def test_identical_pending_calls_share_one_approval(client: Any,
                                                          auth: dict[str, str]) -> None:
    first = await ask(client, auth)
    assert await ask(client, auth) == first
    # any difference (params, tool_call_id, run) is another approval
    assert await ask(client, auth, amount=501) != first
    assert await ask(client, auth, tool_call_id="tc-2") != first
    assert await ask(client, auth, run_id="run-2") != first
    requested = await records(client, auth, "approval.requested")
    assert len(requested) == 4
    decisions = [r for r in await records(client, auth, "decision")
                 if r["decision"]["action"] == "ask"]
    assert len(decisions) == 5  # every call is recorded, the reuse included
    assert decisions[1]["detail"]["approval_id"] == first
    assert decisions[1]["detail"]["approval_reused"] is True


async def test_pending_cap_answers_503(aiohttp_client: Any, tmp_path: Path) -> None:
    from rampartd.home import read_token
    from rampartd.web.app import create_app

    s = approval_settings(tmp_path, max_pending_approvals=2)
    client = await aiohttp_client(create_app(s))
    auth = {"Authorization": f"Bearer {read_token(s.token_path)}"}
    first = await ask(client, auth, amount=200)
    await ask(client, auth, amount=300)
    assert await ask(client, auth, amount=200) == first  # a reuse is not a new approval
    status, body = await tool(client, auth, call_body(amount=400))
    assert status == 503 and body["code"] == "approval_queue_full"
    refused = (await records(client, auth, "decision"))[-1]
    assert refused["detail"]["approval_refused"] == "approval queue full"
    assert (await client.get("/v1/status", headers=auth)).status == 200
    assert len(await records(client, auth, "approval.requested")) == 2
    # deciding one makes room again
    assert (await resolve(client, auth, first, False))[0] == 200
    await ask(client, auth, amount=400)


async def test_resolve_then_410_unknown_404_and_bad_bodies(client: Any,
                                                           auth: dict[str, str]) -> None:
    approval_id = await ask(client, auth)
    status, body = await resolve(client, auth, approval_id, True, reason="looks fine")
    assert status == 200
    assert (body["status"], body["resolved_by"], body["reason"]) == \
        ("approved", "alice", "looks fine")
    status, body = await resolve(client, auth, approval_id, False)
    assert status == 410 and body["code"] == "approval_approved"
    status, body = await resolve(client, auth, "01JZZZZZZZZZZZZZZZZZZZZZZZ")
    assert status == 404 and body["code"] == "not_found"
    assert (await client.get("/v1/approvals/01JZZZZZZZZZZZZZZZZZZZZZZZ",
                             headers=auth)).status == 404
    other = await ask(client, auth, amount=999)
    for bad in ({"approved": "yes", "resolved_by": "a"}, {"approved": True},
                {"approved": True, "resolved_by": "a", "extra": 1}):
        resp = await client.post(f"/v1/approvals/{other}/resolve", headers=auth, json=bad)
        assert resp.status == 400, bad
    resolved = await records(client, auth, "approval.resolved")
    assert len(resolved) == 1  # the refused attempts recorded nothing
    assert resolved[0]["approval"]["id"] == approval_id
    assert resolved[0]["approval"]["status"] == "approved"
    assert resolved[0]["approval"]["resolved_by"] == "alice"


async def test_concurrent_resolution_has_exactly_one_winner(client: Any,
                                                            auth: dict[str, str]) -> None:
    approval_id = await ask(client, auth)
    results = await asyncio.gather(*(resolve(client, auth, approval_id, i % 2 == 0)
                                     for i in range(12)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [410] * 11
    winner = next(body for status, body in results if status == 200)
    resolved = await records(client, auth, "approval.resolved")
    assert len(resolved) == 1
    assert resolved[0]["approval"]["status"] == winner["status"]
    final = await (await client.get(f"/v1/approvals/{approval_id}", headers=auth)).json()
    assert final["status"] == winner["status"]


async def test_approved_retry_is_allowed_once(client: Any, auth: dict[str, str]) -> None:
    approval_id = await ask(client, auth)
    assert (await resolve(client, auth, approval_id))[0] == 200

    # a changed payload is evaluated afresh and does not spend the grant
    status, body = await tool(client, auth, call_body(amount=501))
    assert status == 202 and body["approval_id"] != approval_id
    status, body = await tool(client, auth, call_body(tool_call_id="tc-other"))
    assert status == 202

    status, body = await tool(client, auth, call_body())
    assert status == 200, body
    assert body["allowed"] is True and body["decision"] == "allow"
    assert body["policy"] is None and approval_id in body["message"]
    assert body["approval_id"] == approval_id
    record = (await records(client, auth, "decision"))[-1]
    assert record["id"] == body["audit_id"]
    assert record["decision"]["action"] == "allow" and record["decision"]["policy"] is None
    assert record["detail"]["approval_id"] == approval_id
    assert record["detail"]["grant"] == "once"

    # the second retry is evaluated afresh: a new pending approval
    status, body = await tool(client, auth, call_body())
    assert status == 202 and body["approval_id"] != approval_id


async def test_denied_approval_leaves_no_grant_and_deny_policy_wins(
        client: Any, auth: dict[str, str]) -> None:
    approval_id = await ask(client, auth)
    assert (await resolve(client, auth, approval_id, False))[0] == 200
    status, body = await tool(client, auth, call_body())
    assert status == 202 and body["approval_id"] != approval_id
    # a run-wide approval never unlocks what the policy denies
    resp = await client.post("/v1/approvals/bulk-resolve", headers=auth, json={
        "agent": "agent-a", "session": "s1", "run_id": "run-1", "action": "approve",
        "scope": "run", "ids": [], "resolved_by": "alice"})
    assert resp.status == 200
    status, body = await tool(client, auth, call_body(amount=200000))
    assert status == 403 and body["decision"] == "deny"


def bulk(ids: list[str], *, scope: str = "pending", action: str = "approve",
         run_id: str = "run-1") -> dict[str, Any]:
    """A bulk-resolve body for agent-a/s1."""
    return {"agent": "agent-a", "session": "s1", "run_id": run_id, "action": action,
            "scope": scope, "ids": ids, "resolved_by": "bob"}


async def test_bulk_resolve_pending_scope_is_one_batch(client: Any,
                                                       auth: dict[str, str]) -> None:
    a = await ask(client, auth, amount=201)
    b = await ask(client, auth, amount=202)
    c = await ask(client, auth, amount=203)
    resp = await client.post("/v1/approvals/bulk-resolve", headers=auth, json=bulk([a, b]))
    assert resp.status == 200
    result = await resp.json()
    assert (result["count"], result["ids"], result["scope"], result["action"]) == \
        (2, [a, b], "pending", "approve")
    assert [x["status"] for x in result["approvals"]] == ["approved", "approved"]
    pending = await (await client.get("/v1/approvals", headers=auth)).json()
    assert [x["id"] for x in pending["approvals"]] == [c]

    resolved = await records(client, auth, "approval.resolved")
    batch = await records(client, auth, "approval.batch_resolved")
    assert len(resolved) == 2 and len(batch) == 1
    assert {r["batch_id"] for r in resolved} == {batch[0]["batch_id"]} == {result["batch_id"]}
    assert [r["seq"] for r in resolved] == [batch[0]["seq"] - 2, batch[0]["seq"] - 1]
    assert batch[0]["detail"] == {"run_id": "run-1", "count": 2, "ids": [a, b],
                                  "scope": "pending", "action": "approve",
                                  "resolved_by": "bob"}
    # each approved call may now be retried once
    assert (await tool(client, auth, call_body(amount=201)))[0] == 200
    # pending scope grants nothing for the run's other calls
    assert (await tool(client, auth, call_body(amount=777)))[0] == 202


async def test_bulk_resolve_409_when_a_reviewed_id_is_no_longer_pending(
        client: Any, auth: dict[str, str]) -> None:
    a = await ask(client, auth, amount=201)
    b = await ask(client, auth, amount=202)
    assert (await resolve(client, auth, b, False))[0] == 200
    resp = await client.post("/v1/approvals/bulk-resolve", headers=auth,
                             json=bulk([a, b], action="deny"))
    assert resp.status == 409
    assert (await resp.json())["code"] == "approval_not_pending"
    # all or nothing: a is untouched and nothing was recorded for the batch
    still = await (await client.get(f"/v1/approvals/{a}", headers=auth)).json()
    assert still["status"] == "pending"
    assert await records(client, auth, "approval.batch_resolved") == []
    # ids from another run, unknown ids and bad bodies are refused too
    other = await ask(client, auth, run_id="run-2")
    resp = await client.post("/v1/approvals/bulk-resolve", headers=auth, json=bulk([a, other]))
    assert resp.status == 409
    resp = await client.post("/v1/approvals/bulk-resolve", headers=auth,
                             json=bulk(["01JZZZZZZZZZZZZZZZZZZZZZZZ"]))
    assert resp.status == 404
    for body in (bulk([]), bulk([a], action="maybe"), bulk([a], scope="forever"),
                 bulk([a], scope="run", action="deny"), {**bulk([a]), "ids": "x"}):
        resp = await client.post("/v1/approvals/bulk-resolve", headers=auth, json=body)
        assert resp.status == 400, body


async def test_bulk_resolve_run_scope_allows_the_runs_future_calls(
        client: Any, auth: dict[str, str]) -> None:
    a = await ask(client, auth, amount=201)
    resp = await client.post("/v1/approvals/bulk-resolve", headers=auth,
                             json=bulk([a], scope="run"))
    assert resp.status == 200
    result = await resp.json()
    assert result["grant_expires_at"] and result["scope"] == "run"
    batch = (await records(client, auth, "approval.batch_resolved"))[-1]
    assert batch["detail"]["scope"] == "run" and batch["run_id"] == "run-1"
    for amount in (999, 5000, 999):  # new calls of the run, repeated ones included
        status, body = await tool(client, auth, call_body(amount=amount,
                                                          tool_call_id=f"t{amount}"))
        assert status == 200, body
        assert body["policy"] is None and "run-1" in body["message"]
    record = (await records(client, auth, "decision"))[-1]
    assert record["detail"]["grant"] == "run"
    assert record["detail"]["approval_id"] == result["batch_id"]
    # other runs, sessions and agents are not covered
    assert (await tool(client, auth, call_body(run_id="run-2")))[0] == 202
    assert (await tool(client, auth, call_body(session="s2")))[0] == 202
    assert (await tool(client, auth, call_body(agent="agent-b")))[0] == 202
    assert (await tool(client, auth, call_body(run_id=None)))[0] == 202


async def test_operator_created_approval(client: Any, auth: dict[str, str]) -> None:
    body = {"agent": "agent-a", "session": "s1", "run_id": "run-9", "tool_call_id": "tc-9",
            "tool": "transfer_funds", "params": {"amount": 500, "to": "acct-9"},
            "message": "pre-approve the payout", "requested_by": "ops-script"}
    resp = await client.post("/v1/approvals", headers=auth, json=body)
    assert resp.status == 201
    created = await resp.json()
    assert created["source"] == "operator" and created["status"] == "pending"
    again = await client.post("/v1/approvals", headers=auth, json=body)
    assert again.status == 200 and (await again.json())["id"] == created["id"]
    requested = (await records(client, auth, "approval.requested"))[-1]
    assert requested["approval"]["requested_by"] == "ops-script"
    assert (await resolve(client, auth, created["id"]))[0] == 200
    status, answer = await tool(client, auth, call_body(run_id="run-9", tool_call_id="tc-9"))
    assert status == 200 and answer["approval_id"] == created["id"]
    for bad in ({**body, "tool": "no spaces"}, {**body, "timeout_seconds": 0},
                {**body, "params": []}, {**body, "nope": 1}):
        assert (await client.post("/v1/approvals", headers=auth, json=bad)).status == 400


async def test_eval_caller_sees_only_its_own_approvals(client: Any,
                                                       auth: dict[str, str]) -> None:
    tokens = {}
    ids = {}
    for name in ("agent-a", "agent-b"):
        resp = await client.post("/v1/agents", headers=auth, json={"name": name})
        assert resp.status == 201
        created = await resp.json()
        tokens[name] = {"Authorization": f"Bearer {created['token']}"}
        ids[name] = created["id"]
    a_id = await ask(client, tokens["agent-a"], agent="ignored-body-agent")
    b_id = await ask(client, tokens["agent-b"])
    mine = tokens["agent-a"]

    resp = await client.get(f"/v1/approvals/{a_id}", headers=mine)
    assert resp.status == 200 and (await resp.json())["agent"] == "agent-a"
    # another agent's approval does not exist as far as this token can tell
    resp = await client.get(f"/v1/approvals/{b_id}", headers=mine)
    assert resp.status == 404
    resp = await client.get(f"/v1/approvals/{b_id}", headers=mine, params={"wait": "5"})
    assert resp.status == 404
    listing = await (await client.get("/v1/approvals", headers=mine,
                                      params={"agent": "agent-b"})).json()
    assert [x["id"] for x in listing["approvals"]] == [a_id]
    # deciding is for the admin only
    resp = await client.post(f"/v1/approvals/{a_id}/resolve", headers=mine,
                             json={"approved": True, "resolved_by": "me"})
    assert resp.status == 403
    resp = await client.post("/v1/approvals/bulk-resolve", headers=mine, json=bulk([a_id]))
    assert resp.status == 403
    # the admin sees both
    listing = await (await client.get("/v1/approvals", headers=auth)).json()
    assert {x["id"] for x in listing["approvals"]} == {a_id, b_id}
    # a suspended agent may not read approvals at all
    resp = await client.patch(f"/v1/agents/{ids['agent-a']}", headers=auth,
                              json={"status": "suspended"})
    assert resp.status == 200
    assert (await client.get(f"/v1/approvals/{a_id}", headers=mine)).status == 403
    assert (await client.get("/v1/approvals", headers=mine)).status == 403


async def test_list_filters_and_query_validation(client: Any, auth: dict[str, str]) -> None:
    a = await ask(client, auth, amount=201)
    b = await ask(client, auth, amount=202, run_id="run-2")
    assert (await resolve(client, auth, a))[0] == 200
    everything = await (await client.get("/v1/approvals", headers=auth,
                                         params={"status": "all"})).json()
    assert {x["id"] for x in everything["approvals"]} == {a, b}
    approved = await (await client.get("/v1/approvals", headers=auth,
                                       params={"status": "approved"})).json()
    assert [x["id"] for x in approved["approvals"]] == [a] and approved["groups"] == []
    run2 = await (await client.get("/v1/approvals", headers=auth,
                                   params={"run_id": "run-2"})).json()
    assert [x["id"] for x in run2["approvals"]] == [b]
    for params in ({"status": "maybe"}, {"limit": "0"}, {"nope": "1"}):
        assert (await client.get("/v1/approvals", headers=auth, params=params)).status == 400
    assert (await client.get(f"/v1/approvals/{b}", headers=auth,
                             params={"wait": "56"})).status == 400


async def test_the_grant_is_for_the_same_working_directory(client: Any,
                                                           auth: dict[str, str]) -> None:
    """A relative path from another cwd is another file: the retry grant does not cover it."""
    body = {**call_body(), "cwd": "/tmp/project"}
    status, first = await tool(client, auth, body)
    assert status == 202
    shown = await (await client.get(f"/v1/approvals/{first['approval_id']}",
                                    headers=auth)).json()
    assert shown["cwd"] == "/tmp/project"  # the person deciding sees where the call runs
    assert (await resolve(client, auth, first["approval_id"]))[0] == 200
    status, elsewhere = await tool(client, auth, {**body, "cwd": "/root"})
    assert status == 202 and elsewhere["approval_id"] != first["approval_id"]
    status, same = await tool(client, auth, body)
    assert status == 200 and same["decision"] == "allow"
