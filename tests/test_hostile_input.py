"""Hostile input through the real app: text that is not Unicode, bodies that do not decode,
and Host headers that only look local."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import pytest

from rampartd.config import Settings
from rampartd.web.auth import is_loopback_host
from tests.test_approvals import approval_settings

LONE = "\ud800"


def raw_json(value: Any) -> bytes:
    """JSON with lone surrogates written as \\uXXXX escapes, as a hostile client sends them."""
    return json.dumps(value, ensure_ascii=True).encode()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The ask policy: transfers above 100 need a person."""
    return approval_settings(tmp_path, approval_timeout=60)


def call(**fields: Any) -> dict[str, Any]:
    """A transfer that asks, with fields overridden."""
    body: dict[str, Any] = {"agent": "a", "session": "s", "run_id": "r", "tool_call_id": "t",
                            "cwd": "/w", "params": {"amount": 500, "command": "ls"}}
    body.update(fields)
    return body


async def head(client: Any, auth: dict[str, str]) -> int:
    """The audit log's head seq."""
    resp = await client.get("/v1/status", headers=auth)
    return int((await resp.json())["audit_head"]["seq"])


async def refused(client: Any, auth: dict[str, str], method: str, path: str, body: Any,
                  field: str) -> None:
    """The request is a 400 naming `field`, and nothing was recorded."""
    before = await head(client, auth)
    resp = await client.request(method, path, data=raw_json(body),
                                headers={**auth, "Content-Type": "application/json"})
    assert resp.status == 400, (path, await resp.text())
    answer = await resp.json()
    assert answer["code"] == "invalid_field", answer
    assert repr(field) in answer["error"], answer
    assert await head(client, auth) == before


@pytest.mark.parametrize(("fields", "name"), [
    ({"agent": LONE}, "agent"),
    ({"session": "x" + LONE}, "session"),
    ({"run_id": LONE}, "run_id"),
    ({"tool_call_id": LONE}, "tool_call_id"),
    ({"cwd": "/tmp/" + LONE}, "cwd"),
    ({"params": {"amount": 500, "command": "ls " + LONE}}, "params.command"),
    ({"params": {"amount": 500, "list": ["ok", {"deep": LONE}]}}, "params.list[1].deep"),
    ({"params": {"amount": 500, LONE: 1}}, "params"),
])
async def test_lone_surrogates_in_a_tool_call_are_400s(
        client: Any, auth: dict[str, str], fields: dict[str, Any], name: str) -> None:
    for route in ("/v1/tool/transfer_funds", "/v1/preflight/transfer_funds"):
        await refused(client, auth, "POST", route, call(**fields), name)


async def test_surrogates_in_raw_bytes_are_400s_too(client: Any, auth: dict[str, str]) -> None:
    # The UTF-8 form of a surrogate (json.loads decodes bytes with "surrogatepass").
    utf8 = raw_json(call()).replace(b'"ls"', b'"ls \xed\xa0\x80"')
    for data, name in ((utf8, "params.command"),
                       (json.dumps(call(cwd=LONE)).encode("utf-16", "surrogatepass"), "cwd")):
        resp = await client.post("/v1/tool/transfer_funds", data=data, headers=auth)
        assert resp.status == 400, await resp.text()
        assert repr(name) in (await resp.json())["error"]


async def test_lone_surrogates_elsewhere_are_400s(client: Any, auth: dict[str, str]) -> None:
    resp = await client.post("/v1/tool/transfer_funds", json=call(), headers=auth)
    assert resp.status == 202
    approval_id = (await resp.json())["approval_id"]
    await refused(client, auth, "POST", "/v1/approvals", {
        "agent": "a", "session": "s", "tool": "x", "params": {}, "message": LONE}, "message")
    await refused(client, auth, "POST", f"/v1/approvals/{approval_id}/resolve",
                  {"approved": True, "resolved_by": "alice", "reason": LONE}, "reason")
    await refused(client, auth, "POST", f"/v1/approvals/{approval_id}/resolve",
                  {"approved": True, "resolved_by": LONE}, "resolved_by")
    await refused(client, auth, "POST", "/v1/approvals/bulk-resolve", {
        "agent": "a", "session": "s", "run_id": "r", "action": "approve", "scope": "pending",
        "ids": [approval_id, LONE], "resolved_by": "alice"}, "ids[1]")
    await refused(client, auth, "POST", "/v1/agents", {"name": LONE}, "name")
    await refused(client, auth, "POST", "/v1/agents", {"name": "ok", "description": LONE},
                  "description")
    await refused(client, auth, "POST", "/v1/test", {"command": LONE}, "command")
    # A surrogate pair is ordinary Unicode (an emoji) and is accepted.
    resp = await client.post("/v1/tool/transfer_funds", headers=auth,
                             data=raw_json(call(params={"amount": 1, "note": "\U0001F600"})))
    assert resp.status == 200, await resp.text()


async def test_content_encodings(client: Any, auth: dict[str, str]) -> None:
    body = json.dumps(call(params={"amount": 1})).encode()
    for encoding, data in (("deflate", zlib.compress(body)), ("gzip", _gzip(body))):
        resp = await client.post("/v1/tool/transfer_funds", data=data, headers={
            **auth, "Content-Encoding": encoding, "Content-Type": "application/json"})
        assert resp.status == 200, (encoding, await resp.text())
    for encoding in ("deflate", "gzip"):
        resp = await client.post("/v1/tool/transfer_funds", data=b"not compressed at all",
                                 headers={**auth, "Content-Encoding": encoding})
        assert resp.status == 400, encoding
        assert (await resp.json())["code"] == "invalid_encoding"


def _gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data)


@pytest.mark.parametrize(("host", "local"), [
    ("localhost", True), ("localhost:9090", True), ("127.0.0.1:1", True), ("[::1]:9090", True),
    ("::1", True), ("app.localhost:80", True), ("LOCALHOST:9090", True),
    ("localhost:9090@evil", False), ("127.0.0.1:evil", False), ("localhost:", False),
    ("127.0.0.1:123456", False), ("127.0.0.1:\u0669\u0660", False), ("[::1]:x", False),
    ("[::1]9090", False), ("evil.com", False), ("127.0.0.1.evil.com", False),
    ("localhost:9090:9090", False),
])
def test_host_header_parsing_is_strict(host: str, local: bool) -> None:
    assert is_loopback_host(host) is local
