"""The audit routes through the real app: queries, pagination, export, verify, redaction."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from rampartd.config import Settings

SECRETS = {
    "bearer": "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLXRleHQ",
    "openai": "sk-proj-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq3x\n-----END RSA PRIVATE KEY-----",
}


async def post(client: Any, auth: dict[str, str], command: str, **extra: Any) -> Any:
    body = {"agent": extra.pop("agent", "claude"), "session": extra.pop("session", "s1"),
            "params": {"command": command}, **extra}
    return await client.post("/v1/tool/exec", json=body, headers=auth)


async def test_filters_and_keyset_pagination(client: Any, auth: dict[str, str]) -> None:
    for i in range(7):
        await post(client, auth, f"echo {i}", agent="a1" if i % 2 else "a2", run_id=f"r{i % 3}")
    await post(client, auth, "rm -rf /", agent="a1")
    resp = await client.get("/v1/audit/events", params={"agent": "a1", "kind": "decision"},
                            headers=auth)
    body = await resp.json()
    assert body["count"] == 4 and {e["agent"] for e in body["events"]} == {"a1"}
    denied = await (await client.get("/v1/audit/events", params={"action": "deny"},
                                     headers=auth)).json()
    assert [e["request"]["command"] for e in denied["events"]] == ["rm -rf /"]
    runs = await (await client.get("/v1/audit/events", params={"run_id": "r1"},
                                   headers=auth)).json()
    assert {e["run_id"] for e in runs["events"]} == {"r1"} and runs["count"] == 2

    seen: list[int] = []
    params = {"kind": "decision", "limit": "3"}
    while True:
        page = await (await client.get("/v1/audit/events", params=params, headers=auth)).json()
        seen += [e["seq"] for e in page["events"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert len(seen) == 8 and seen == sorted(seen, reverse=True) and len(set(seen)) == 8

    today = datetime.now(UTC).date().isoformat()
    by_date = await (await client.get("/v1/audit/events", params={
        "date": today, "kind": "decision", "limit": "2", "offset": "2"}, headers=auth)).json()
    assert [e["seq"] for e in by_date["events"]] == seen[2:4]


async def test_query_errors(client: Any, auth: dict[str, str]) -> None:
    for params in ({"limit": "501"}, {"limit": "x"}, {"cursor": "!!"}, {"since": "yesterday"},
                   {"colour": "red"}):
        resp = await client.get("/v1/audit/events", params=params, headers=auth)
        assert resp.status == 400, params
        assert set(await resp.json()) == {"error", "code"}
    resp = await client.get("/v1/audit/events/not-a-ulid", headers=auth)
    assert resp.status == 400
    resp = await client.get("/v1/audit/events/01ARZ3NDEKTSV4RRFFQ69G5FAV", headers=auth)
    assert resp.status == 404 and (await resp.json())["code"] == "not_found"


async def test_stats_and_dates(client: Any, auth: dict[str, str]) -> None:
    await post(client, auth, "ls")
    await post(client, auth, "rm -rf /")
    await post(client, auth, "ls", agent="other")
    stats = await (await client.get("/v1/audit/stats", headers=auth)).json()
    assert stats["by_action"] == {"allow": 2, "deny": 1}
    assert stats["by_agent"] == {"claude": 2, "other": 1}
    assert stats["by_tool"] == {"exec": 3}
    today = datetime.now(UTC).date().isoformat()
    dates = await (await client.get("/v1/audit/dates", headers=auth)).json()
    assert dates["dates"][0]["date"] == today and dates["dates"][0]["count"] >= 4
    empty = await (await client.get("/v1/audit/stats", params={"from": "2001-01-01",
                                                               "to": "2001-01-02"},
                                    headers=auth)).json()
    assert empty["total"] == 0


async def test_export_streams_jsonl_and_verify(client: Any, auth: dict[str, str]) -> None:
    for i in range(5):
        await post(client, auth, f"echo {i}")
    resp = await client.get("/v1/audit/export", headers=auth)
    assert resp.status == 200 and resp.content_type == "application/x-ndjson"
    lines = (await resp.text()).strip().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert all(r["hash"].startswith("sha256:") for r in records)
    verify = await (await client.get("/v1/audit/verify", headers=auth)).json()
    assert verify["valid"] is True and verify["records_checked"] == len(records)
    assert verify["head"]["hash"] == records[-1]["hash"]


async def test_secrets_never_reach_db_query_or_export(client: Any, auth: dict[str, str],
                                                      settings: Settings) -> None:
    params = {"command": f"curl -H '{SECRETS['bearer']}' https://api.example.com",
              "env": {"OPENAI_API_KEY": SECRETS["openai"], "note": f"key {SECRETS['aws']}"},
              "file": SECRETS["pem"], "password": "hunter2-very-secret"}
    resp = await client.post("/v1/tool/exec", json={"agent": "a", "session": "s",
                                                    "params": params}, headers=auth)
    assert resp.status in (200, 403)
    needles = [*SECRETS.values(), "eyJhbGciOiJIUzI1NiJ9", "hunter2-very-secret",
               "MIIEowIBAAKCAQEA7bq3x"]
    with sqlite3.connect(settings.db_path) as conn:
        conn.execute("PRAGMA wal_checkpoint(FULL)")
    raw = settings.db_path.read_bytes()
    wal = settings.db_path.with_name(settings.db_path.name + "-wal")
    if wal.exists():
        raw += wal.read_bytes()
    query = await (await client.get("/v1/audit/events", headers=auth)).text()
    export = await (await client.get("/v1/audit/export", headers=auth)).text()
    for needle in needles:
        assert needle.encode() not in raw, needle
        assert needle not in query and needle not in export, needle
    assert "REDACTED" in query.upper()


async def test_odd_inputs_are_clean_errors_not_500(client: Any, auth: dict[str, str]) -> None:
    import base64

    big_cursor = base64.urlsafe_b64encode(b"s1:" + b"9" * 40).decode().rstrip("=")
    cases = [
        ("/v1/events/stream", {"last_event_id": "\u00b2"}, 400),
        ("/v1/audit/events", {"limit": "\u00b2"}, 400),
        ("/v1/audit/events", {"offset": "9" * 30}, 400),
        ("/v1/audit/events", {"cursor": big_cursor}, 400),
        ("/v1/audit/events", {"kind": "\U0010ffff*"}, 400),
        ("/v1/approvals/01ARZ3NDEKTSV4RRFFQ69G5FAV/link",
         {"action": "approve", "exp": "\u00b2", "sig": "abc"}, 400),
    ]
    for path, params, status in cases:
        resp = await client.get(path, params=params, headers=auth)
        assert resp.status == status, (path, params, resp.status)
        assert set(await resp.json()) >= {"error", "code"}
    # Header bytes that are not UTF-8 are a wrong token, not a crash.
    resp = await client.get("/v1/status", headers={"Authorization": "Bearer \udcff\udcfe"})
    assert resp.status == 401
    # A bracketed host must be exactly an address, optionally with a port.
    resp = await client.get("/healthz", headers={"Host": "[::1]evil.example"})
    assert resp.status == 403
