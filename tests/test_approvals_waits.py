"""Waiting on approvals: long-polls, held tool calls, expiry while waiting, and restarts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from rampartd.config import Settings
from rampartd.home import read_token
from rampartd.web.app import create_app
from rampartd.web.keys import APPROVALS
from tests.test_approvals import approval_settings, ask, call_body, records, resolve, tool


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Overrides conftest: the ask policy, a long approval timeout."""
    return approval_settings(tmp_path, approval_timeout=60)


async def until_waiting(client: Any, approval_id: str) -> None:
    """Return once someone is blocked waiting on this approval."""
    approvals = client.server.app[APPROVALS]
    async with asyncio.timeout(10):
        while approval_id not in approvals.waited_on:
            await asyncio.sleep(0.005)


async def test_long_poll_returns_when_resolved(client: Any, auth: dict[str, str]) -> None:
    approval_id = await ask(client, auth)
    poll = asyncio.create_task(client.get(f"/v1/approvals/{approval_id}", headers=auth,
                                          params={"wait": "55"}))
    await until_waiting(client, approval_id)
    assert not poll.done()
    assert (await resolve(client, auth, approval_id, False, reason="no"))[0] == 200
    # woken by the resolution: a poll left to time out would still be waiting at 55 s
    resp = await asyncio.wait_for(poll, 30)
    assert resp.status == 200
    body = await resp.json()
    assert (body["status"], body["resolved_by"], body["reason"]) == ("denied", "alice", "no")


async def test_long_poll_times_out_with_the_pending_approval(client: Any,
                                                             auth: dict[str, str]) -> None:
    approval_id = await ask(client, auth)
    started = time.monotonic()
    resp = await client.get(f"/v1/approvals/{approval_id}", headers=auth,
                            params={"wait": "0.3"})
    assert resp.status == 200 and (await resp.json())["status"] == "pending"
    assert time.monotonic() - started >= 0.29


async def test_held_tool_call_answers_200_once_approved(client: Any,
                                                        auth: dict[str, str]) -> None:
    held = asyncio.create_task(tool(client, auth, call_body(), wait=30))
    async with asyncio.timeout(10):
        while not client.server.app[APPROVALS].waited_on:
            await asyncio.sleep(0.005)
    [approval_id] = client.server.app[APPROVALS].waited_on
    assert (await resolve(client, auth, approval_id))[0] == 200
    status, body = await held
    assert status == 200, body
    assert (body["allowed"], body["decision"], body["approval_id"], body["approval_status"]) \
        == (True, "allow", approval_id, "approved")
    record = (await records(client, auth, "decision"))[-1]
    assert record["id"] == body["audit_id"] and record["detail"]["approval_id"] == approval_id
    # the held call was the one permitted run: a retry asks again
    status, body = await tool(client, auth, call_body())
    assert status == 202 and body["approval_id"] != approval_id


async def test_held_tool_call_answers_403_when_denied(client: Any,
                                                      auth: dict[str, str]) -> None:
    approval_id = await ask(client, auth)  # the held call below reuses this approval
    held = asyncio.create_task(tool(client, auth, call_body(), wait=30))
    await until_waiting(client, approval_id)
    assert (await resolve(client, auth, approval_id, False, reason="not today"))[0] == 200
    status, body = await held
    assert status == 403
    assert (body["allowed"], body["decision"], body["approval_status"]) == \
        (False, "deny", "denied")
    assert body["message"] == "denied by alice: not today"


async def test_held_tool_call_without_a_decision_stays_202(client: Any,
                                                           auth: dict[str, str]) -> None:
    status, body = await tool(client, auth, call_body(), wait=0.2)
    assert status == 202 and body["approval_status"] == "pending"
    for bad in ("-1", "56", "soon"):
        status, body = await tool(client, auth, call_body(), wait=bad)  # type: ignore[arg-type]
        assert status == 400, bad


async def test_expiry_while_a_caller_waits(aiohttp_client: Any, tmp_path: Path) -> None:
    s = approval_settings(tmp_path, approval_timeout=0.6)
    client = await aiohttp_client(create_app(s))
    auth = {"Authorization": f"Bearer {read_token(s.token_path)}"}
    started = time.monotonic()
    status, body = await tool(client, auth, call_body(), wait=20)
    elapsed = time.monotonic() - started
    assert status == 403
    assert (body["decision"], body["approval_status"]) == ("deny", "expired")
    assert "expired" in body["message"] and "denied by" not in body["message"]
    assert elapsed >= 0.5  # it waited for the expiry, not less
    approval_id = body["approval_id"]
    expired = await records(client, auth, "approval.expired")
    assert [r["approval"]["id"] for r in expired] == [approval_id]
    assert expired[0]["approval"]["status"] == "expired"
    assert await records(client, auth, "approval.resolved") == []  # never a human denial
    status, body = await resolve(client, auth, approval_id)
    assert status == 410 and body["code"] == "approval_expired"
    view = await (await client.get(f"/v1/approvals/{approval_id}", headers=auth)).json()
    assert view["status"] == "expired" and view["resolved_by"] is None
    assert (await (await client.get("/v1/status", headers=auth)).json())[
        "pending_approvals"] == 0


async def test_pending_approvals_survive_a_restart_and_expire_on_time(
        aiohttp_client: Any, tmp_path: Path) -> None:
    s = approval_settings(tmp_path, approval_timeout=2.0)
    auth = {"Authorization": f"Bearer {read_token(s.token_path)}"}
    first = await aiohttp_client(create_app(s))
    keep = await ask(first, auth, amount=301)
    granted = await ask(first, auth, amount=302)
    assert (await resolve(first, auth, granted))[0] == 200
    view = await (await first.get(f"/v1/approvals/{keep}", headers=auth)).json()
    expires_at = view["expires_at"]
    await first.close()

    second = await aiohttp_client(create_app(s))
    view = await (await second.get(f"/v1/approvals/{keep}", headers=auth)).json()
    assert view["status"] == "pending" and view["expires_at"] == expires_at
    status_body = await (await second.get("/v1/status", headers=auth)).json()
    assert status_body["pending_approvals"] == 1
    # the grant left by an approval before the restart still works once
    assert (await tool(second, auth, call_body(amount=302)))[0] == 200
    # the pending one expires at its original deadline, not a fresh timeout after start
    resp = await second.get(f"/v1/approvals/{keep}", headers=auth, params={"wait": "20"})
    view = await resp.json()
    assert view["status"] == "expired"
    from rampartd.audit.chain import parse_ts
    deadline = parse_ts(expires_at).timestamp()
    assert parse_ts(view["resolved_at"]).timestamp() - deadline < 1.5


async def test_overdue_approvals_expire_at_start_up(aiohttp_client: Any,
                                                    tmp_path: Path) -> None:
    import sqlite3

    from rampartd.audit.chain import parse_ts

    s = approval_settings(tmp_path, approval_timeout=1.0)
    auth = {"Authorization": f"Bearer {read_token(s.token_path)}"}
    first = await aiohttp_client(create_app(s))
    approval_id = await ask(first, auth)
    view = await (await first.get(f"/v1/approvals/{approval_id}", headers=auth)).json()
    await first.close()  # the daemon goes down before the approval's deadline
    with sqlite3.connect(s.db_path) as conn:
        assert conn.execute("SELECT status FROM approvals WHERE id = ?",
                            (approval_id,)).fetchone() == ("pending",)
    # stay down past the deadline
    await asyncio.sleep(max(0.0, parse_ts(view["expires_at"]).timestamp() - time.time()) + 0.05)

    second = await aiohttp_client(create_app(s))
    view = await (await second.get(f"/v1/approvals/{approval_id}", headers=auth,
                                   params={"wait": "10"})).json()
    assert view["status"] == "expired"
    assert parse_ts(view["resolved_at"]) >= parse_ts(view["expires_at"])
    expired = await records(second, auth, "approval.expired")
    assert [r["approval"]["id"] for r in expired] == [approval_id]


async def test_a_held_call_is_reevaluated_when_approved(client: Any, auth: dict[str, str],
                                                        settings: Settings) -> None:
    """A grant never overrides a deny: if the policy now denies, the approved call is denied."""
    held = asyncio.create_task(tool(client, auth, call_body(), wait=30))
    async with asyncio.timeout(10):
        while not client.server.app[APPROVALS].waited_on:
            await asyncio.sleep(0.005)
    [approval_id] = client.server.app[APPROVALS].waited_on
    policy = settings.policy_dir / "transfers.yaml"
    policy.write_text(policy.read_text().replace("action: ask", "action: deny"))
    resp = await client.post("/v1/policy/reload", headers=auth)
    assert resp.status == 200
    assert (await resolve(client, auth, approval_id))[0] == 200
    status, body = await held
    assert status == 403 and body["decision"] == "deny", body
    assert not any(r["decision"]["action"] == "allow"
                   for r in await records(client, auth, "decision"))


async def test_a_caller_that_left_does_not_spend_the_grant(client: Any,
                                                           auth: dict[str, str]) -> None:
    approval_id = await ask(client, auth)
    # A client that gives up on its held call before anyone decides.
    gone = asyncio.create_task(tool(client, auth, call_body(), wait=30))
    await until_waiting(client, approval_id)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert (await resolve(client, auth, approval_id))[0] == 200
    # The approved call's one run is still there for the retry that comes back.
    status, body = await tool(client, auth, call_body())
    assert status == 200 and body["decision"] == "allow", body
    allows = [r for r in await records(client, auth, "decision")
              if r["decision"]["action"] == "allow"]
    assert len(allows) == 1
