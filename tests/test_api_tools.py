"""POST /v1/tool, preflight, test, policy summary/reload and status through the real app."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from rampartd.audit.verify import verify_db
from rampartd.config import Settings
from rampartd.daemon import prepare_home
from rampartd.web.app import create_app
from rampartd.web.keys import RELOAD_GATE, SERVICE
from tests.api_policy import write_policy
from tests.conftest import make_settings


@pytest.fixture
def settings(home: Path) -> Settings:
    s = make_settings(home, policy_dir=str(write_policy(home.parent / "pol")))
    prepare_home(s)
    return s


def call(command: str, **extra: Any) -> dict[str, Any]:
    return {"agent": "claude", "session": "repo/main", "params": {"command": command}, **extra}


async def test_allow_deny_ask_watch(client: Any, auth: dict[str, str]) -> None:
    resp = await client.post("/v1/tool/exec", json=call("git status"), headers=auth)
    assert resp.status == 200
    body = await resp.json()
    assert body["allowed"] is True and body["decision"] == "allow"
    assert body["policy"] is None and body["matched_policies"] == []
    assert isinstance(body["eval_duration_us"], int) and body["audit_id"]
    assert "suggestions" not in body

    resp = await client.post("/v1/tool/exec", json=call("rm -rf /srv/build"), headers=auth)
    assert resp.status == 403
    body = await resp.json()
    assert (body["allowed"], body["decision"], body["policy"]) == (False, "deny", "block-rm")
    assert body["message"] == "recursive deletes are blocked"
    assert body["suggestions"] == ["delete the exact files instead"]

    resp = await client.post("/v1/tool/exec", json=call("sudo reboot"), headers=auth)
    assert resp.status == 202
    body = await resp.json()
    assert (body["allowed"], body["decision"], body["approval_status"]) == \
        (False, "ask", "pending")

    resp = await client.post("/v1/tool/exec", json=call("curl https://example.com"),
                             headers=auth)
    assert resp.status == 200
    body = await resp.json()
    assert (body["allowed"], body["decision"]) == (True, "watch")


async def test_every_decision_is_recorded(client: Any, auth: dict[str, str]) -> None:
    ids = []
    for command in ("ls", "rm -rf ~", "sudo ls"):
        resp = await client.post("/v1/tool/exec", json=call(command, run_id="r1",
                                                            tool_call_id="t1"), headers=auth)
        ids.append((await resp.json())["audit_id"])
    for audit_id, action in zip(ids, ("allow", "deny", "ask"), strict=True):
        resp = await client.get(f"/v1/audit/events/{audit_id}", headers=auth)
        assert resp.status == 200
        record = await resp.json()
        assert record["kind"] == "decision" and record["decision"]["action"] == action
        assert (record["agent"], record["session"], record["run_id"], record["tool_call_id"]) \
            == ("claude", "repo/main", "r1", "t1")
        assert record["hash"].startswith("sha256:")


async def test_relative_paths_resolve_against_cwd(client: Any, auth: dict[str, str]) -> None:
    body = {"agent": "a", "session": "s", "cwd": "/home/u/project",
            "params": {"path": "../.ssh/id_rsa"}}
    resp = await client.post("/v1/tool/read", json=body, headers=auth)
    assert resp.status == 403
    assert (await resp.json())["policy"] == "no-ssh-keys"
    body["params"] = {"path": "src/main.py"}
    assert (await client.post("/v1/tool/read", json=body, headers=auth)).status == 200


async def test_custom_tool_params(client: Any, auth: dict[str, str]) -> None:
    body = {"agent": "a", "session": "s", "params": {"amount": 5000, "to": "x"}}
    assert (await client.post("/v1/tool/transfer_funds", json=body, headers=auth)).status == 403
    body["params"]["amount"] = 10
    assert (await client.post("/v1/tool/transfer_funds", json=body, headers=auth)).status == 200


@pytest.mark.parametrize(("body", "field"), [
    ({"session": "s", "params": {}}, "agent"),
    ({"agent": "a", "params": {}}, "session"),
    ({"agent": "a", "session": "s"}, "params"),
    ({"agent": "a", "session": "s", "params": []}, "params"),
    ({"agent": 3, "session": "s", "params": {}}, "agent"),
    ({"agent": "a", "session": "s", "params": {}, "run_id": 5}, "run_id"),
    ({"agent": "a", "session": "s", "params": {}, "bogus": 1}, "bogus"),
])
async def test_malformed_body_names_field(client: Any, auth: dict[str, str],
                                          body: dict[str, Any], field: str) -> None:
    resp = await client.post("/v1/tool/exec", json=body, headers=auth)
    assert resp.status == 400
    err = await resp.json()
    assert set(err) == {"error", "code"} and field in err["error"]


async def test_bad_tool_name_and_unknown_query(client: Any, auth: dict[str, str]) -> None:
    resp = await client.post("/v1/tool/ex%20ec", json=call("ls"), headers=auth)
    assert resp.status == 400
    resp = await client.post("/v1/tool/exec?verbose=1", json=call("ls"), headers=auth)
    assert resp.status == 400 and "verbose" in (await resp.json())["error"]


async def test_preflight_records_nothing(client: Any, auth: dict[str, str]) -> None:
    service = client.app[SERVICE]
    before = service.store.head
    for command, decision in (("rm -rf /", "deny"), ("ls", "allow"), ("sudo x", "ask")):
        resp = await client.post("/v1/preflight/exec", json=call(command), headers=auth)
        assert resp.status == 200
        body = await resp.json()
        assert body["decision"] == decision and "audit_id" not in body
    assert service.store.head == before


async def test_fail_closed_when_the_record_cannot_be_made_durable(
        client: Any, auth: dict[str, str]) -> None:
    store = client.app[SERVICE].store

    def fill_disk(conn: sqlite3.Connection) -> None:
        # A real SQLite condition: the database may not grow, so every insert is SQLITE_FULL.
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")

    await store.transact(fill_disk, [])
    # Under the compaction bound, so the record needs new overflow pages that it cannot get.
    payload = {**call("ls"), "params": {"command": "ls", "note": "x" * 40_000}}
    resp = await client.post("/v1/tool/exec", json=payload, headers=auth)
    assert resp.status == 503
    err = await resp.json()
    assert err["code"] == "unavailable" and "allowed" not in err


async def test_test_endpoint_explains(client: Any, auth: dict[str, str]) -> None:
    resp = await client.post("/v1/test", json={"command": "sudo rm -rf /srv/build"}, headers=auth)
    assert resp.status == 200
    body = await resp.json()
    assert body["decision"] == "deny"
    assert body["matched_policies"] == ["block-rm", "ask-sudo"] or \
        set(body["matched_policies"]) == {"block-rm", "ask-sudo"}
    why = body["explanation"]
    assert why["tool_class"] == "exec"
    assert why["parsed"]["components"] == ["sudo rm -rf /srv/build"]
    rules = {m["policy"]: m for m in why["matches"]}
    assert set(rules) == {"block-rm", "ask-sudo"}
    assert all(m["matched"] and m["matched"][0]["text"] == "sudo rm -rf /srv/build"
               for m in rules.values())
    assert {"kind": "exec", "target": "rm"}.items() <= why["effects"][1].items()
    # a host file tool: evaluated as `read`, one effect per path argument
    resp = await client.post("/v1/test", json={"tool": "Read", "params": {
        "file_path": "notes.txt", "path": "/etc/shadow"}}, headers=auth)
    effects = (await resp.json())["explanation"]["effects"]
    assert [(e["kind"], e["target"]) for e in effects] == [("read", "notes.txt"),
                                                           ("read", "/etc/shadow")]
    assert (await client.post("/v1/test", json={}, headers=auth)).status == 400


async def test_policy_summary(client: Any, auth: dict[str, str]) -> None:
    resp = await client.get("/v1/policy/summary", headers=auth)
    assert resp.status == 200
    body = await resp.json()
    assert body["policy_count"] == 5 and body["default_action"] == "allow"
    assert {p["name"] for p in body["policies"]} >= {"block-rm", "ask-sudo"}


async def test_policy_reload_rate_limit_and_broken_file(client: Any, auth: dict[str, str],
                                                        settings: Settings) -> None:
    resp = await client.post("/v1/policy/reload", headers=auth)
    assert resp.status == 200
    resp = await client.post("/v1/policy/reload", headers=auth)
    assert resp.status == 429 and resp.headers["Retry-After"] == "1"
    assert (await resp.json())["code"] == "rate_limited"

    (settings.policy_dir / "broken.yaml").write_text(
        'version: "1"\npolicies:\n  - name: x\n    rules:\n      - acton: deny\n')
    client.app[RELOAD_GATE].last = float("-inf")  # the previous reload is a second ago
    resp = await client.post("/v1/policy/reload", headers=auth)
    assert resp.status == 400
    err = await resp.json()
    assert err["code"] == "policy_error" and err["file"].endswith("broken.yaml")
    assert err["line"] == 5 and "action" in err["error"]
    # The last good set is still in force and the status says why the edit was refused.
    resp = await client.post("/v1/tool/exec", json=call("rm -rf /"), headers=auth)
    assert resp.status == 403
    status = await (await client.get("/v1/status", headers=auth)).json()
    assert status["policy_count"] == 5
    assert status["last_reload_error"]["file"].endswith("broken.yaml")
    kinds = [e["kind"] for e in (await (await client.get(
        "/v1/audit/events", params={"kind": "policy.reload_failed"}, headers=auth)).json())
        ["events"]]
    assert kinds and set(kinds) == {"policy.reload_failed"}


async def test_hot_reload_is_recorded(client: Any, auth: dict[str, str],
                                      settings: Settings) -> None:
    text = (settings.policy_dir / "test.yaml").read_text()
    (settings.policy_dir / "test.yaml").write_text(text.replace("rm -rf *", "rm -r *"))
    for _ in range(200):  # the watcher polls every 250 ms
        events = await (await client.get("/v1/audit/events", params={
            "kind": "policy.reloaded"}, headers=auth)).json()
        if any(e["detail"]["trigger"] == "watch" for e in events["events"]):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("hot reload was not recorded")
    resp = await client.post("/v1/tool/exec", json=call("rm -r /tmp/x"), headers=auth)
    assert resp.status == 403


async def test_status_reports_policy_and_head(client: Any, auth: dict[str, str]) -> None:
    await client.post("/v1/tool/exec", json=call("ls"), headers=auth)
    body = await (await client.get("/v1/status", headers=auth)).json()
    assert body["policy_count"] == 5 and body["rule_count"] == 5
    assert body["default_action"] == "allow" and body["last_reload_error"] is None
    assert body["audit_head"]["seq"] >= 2 and body["audit_head"]["hash"].startswith("sha256:")


async def test_monitor_mode_allows_but_records(aiohttp_client: Any, home: Path) -> None:
    s = make_settings(home, policy_dir=str(write_policy(home.parent / "pol")), mode="monitor")
    prepare_home(s)
    client = await aiohttp_client(create_app(s))
    token = s.token_path.read_text().strip()
    resp = await client.post("/v1/tool/exec", json=call("rm -rf /srv/build"),
                             headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200
    body = await resp.json()
    assert body["allowed"] is True and body["decision"] == "deny"


async def test_fifty_concurrent_clients_make_a_gap_free_chain(
        client: Any, auth: dict[str, str], settings: Settings) -> None:
    async def one(i: int) -> int:
        resp = await client.post("/v1/tool/exec", json=call(f"echo {i}"), headers=auth)
        return resp.status

    statuses = await asyncio.gather(*(one(i) for i in range(50)))
    assert statuses == [200] * 50
    report = verify_db(settings.db_path)
    assert report["valid"] and report["records_checked"] >= 51
    with sqlite3.connect(settings.db_path) as conn:
        seqs = [r[0] for r in conn.execute("SELECT seq FROM audit_log ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_call_count_survives_a_restart(aiohttp_client: Any, home: Path) -> None:
    policy = """\
version: "1"
default_action: allow
policies:
  - name: deploy-limit
    match: {tool: deploy}
    rules:
      - action: deny
        message: at most three deploys an hour
        when: {call_count: {max: 3, window: 1h}}
"""
    s = make_settings(home, policy_dir=str(write_policy(home.parent / "pol", policy)))
    prepare_home(s)
    headers = {"Authorization": f"Bearer {s.token_path.read_text().strip()}"}
    body = {"agent": "ci", "session": "s", "params": {"env": "prod"}}
    first = await aiohttp_client(create_app(s))
    for _ in range(3):
        assert (await first.post("/v1/tool/deploy", json=body, headers=headers)).status == 200
    await first.close()
    # A new daemon on the same home rebuilds the counts from the audit log.
    second = await aiohttp_client(create_app(s))
    resp = await second.post("/v1/tool/deploy", json=body, headers=headers)
    assert resp.status == 403 and (await resp.json())["policy"] == "deploy-limit"
    other = {**body, "agent": "someone-else"}
    assert (await second.post("/v1/tool/deploy", json=other, headers=headers)).status == 200


async def test_metrics(client: Any, auth: dict[str, str]) -> None:
    await client.post("/v1/tool/exec", json=call("ls"), headers=auth)
    await client.post("/v1/tool/exec", json=call("rm -rf /"), headers=auth)
    assert (await client.get("/metrics")).status == 401
    resp = await client.get("/metrics", headers=auth)
    assert resp.status == 200 and resp.content_type == "text/plain"
    text = await resp.text()
    assert 'rampartd_decisions_total{action="allow",tool="exec"} 1.0' in text
    assert 'rampartd_decisions_total{action="deny",tool="exec"} 1.0' in text
    assert "rampartd_audit_head_seq 3.0" in text
    assert "rampartd_pending_approvals 0.0" in text
    assert "rampartd_stream_overflows_total 0.0" in text


@pytest.mark.parametrize("raw", [
    '{"agent":"a","session":"s","params":{"x":' + "[" * 100 + "]" * 100 + "}}",
    '{"agent":"a","session":"s","params":{"x":' + "[" * 100_000 + "]" * 100_000 + "}}",
    '{"agent":"a","session":"s","params":{"x":NaN}}',
    '{"agent":"a","session":"s","params":{"x":-Infinity}}',
])
async def test_hostile_json_is_a_clean_400(client: Any, auth: dict[str, str], raw: str) -> None:
    resp = await client.post("/v1/tool/exec", data=raw,
                             headers={**auth, "Content-Type": "application/json"})
    assert resp.status == 400
    err = await resp.json()
    assert err["code"] == "invalid_json" and set(err) == {"error", "code"}


async def test_the_policy_watcher_survives_an_unwritable_log(
        aiohttp_client: Any, auth: dict[str, str], settings: Settings,
        caplog: pytest.LogCaptureFixture) -> None:
    # A short busy timeout: the writer gives up on the lock quickly instead of after 5 s.
    settings = dataclasses.replace(settings, db_busy_timeout=0.1, policy_poll_interval=0.05)
    client = await aiohttp_client(create_app(settings))

    async def decision_of(command: str) -> str:
        resp = await client.post("/v1/preflight/exec", json=call(command), headers=auth)
        return str((await resp.json())["decision"])

    async def until(predicate: Any) -> None:
        async with asyncio.timeout(30):
            while not await predicate():
                await asyncio.sleep(0.05)

    # Another process holds the database's write lock: the writer gives up after its busy
    # timeout and the record of the next reload fails.
    blocker = sqlite3.connect(settings.db_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    policy = settings.policy_dir / "test.yaml"
    policy.write_text(policy.read_text().replace("rm -rf *", "shred *"))

    async def reloaded() -> bool:
        return await decision_of("shred /dev/sda") == "deny"

    async def write_failed() -> bool:
        return "audit group commit failed" in caplog.text

    await until(reloaded)  # the new set is live
    await until(write_failed)  # ... and its record could not be written
    blocker.execute("ROLLBACK")
    blocker.close()

    async def recorded() -> bool:
        page = await (await client.get("/v1/audit/events", params={"kind": "policy.reloaded"},
                                       headers=auth)).json()
        return any(e["detail"]["trigger"] == "watch" for e in page["events"])

    await until(recorded)  # recorded on a later poll
    policy.write_text(policy.read_text().replace("shred *", "wipe *"))

    async def still_watching() -> bool:
        return await decision_of("wipe it") == "deny"

    await until(still_watching)
