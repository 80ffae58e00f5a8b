"""The event stream in process: frames, filters, scope, resume, backpressure, limits, shutdown."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from rampartd.audit.chain import RecordDraft
from rampartd.config import Settings
from rampartd.daemon import prepare_home
from rampartd.stream.frames import frames_for
from rampartd.web.app import create_app
from rampartd.web.keys import BROADCASTER, SERVICE
from tests.conftest import make_settings

STREAM = "/v1/events/stream"


def parse_block(raw: bytes) -> dict[str, Any]:
    """One SSE block as {id, event, data, retry, comments}."""
    out: dict[str, Any] = {"id": None, "event": None, "data": None, "retry": None,
                           "comments": []}
    for line in raw.decode().split("\n"):
        if not line:
            continue
        if line.startswith(":"):
            out["comments"].append(line[1:].strip())
            continue
        name, _, value = line.partition(": ")
        if name == "data":
            out["data"] = json.loads(value)
        elif name == "id":
            out["id"] = int(value)
        else:
            out[name] = value
    return out


async def read_block(resp: ClientResponse, timeout: float = 10.0) -> dict[str, Any]:
    """The next SSE block (a frame or a comment)."""
    return parse_block(await asyncio.wait_for(resp.content.readuntil(b"\n\n"), timeout))


async def read_frame(resp: ClientResponse, timeout: float = 10.0) -> dict[str, Any]:
    """The next frame with data, skipping keep-alive comments."""
    while True:
        block = await read_block(resp, timeout)
        if block["data"] is not None:
            return block


async def read_frames(resp: ClientResponse, n: int) -> list[dict[str, Any]]:
    """The next n data frames."""
    return [await read_frame(resp) for _ in range(n)]


async def open_stream(client: TestClient[Any, Any], headers: dict[str, str],
                      **params: str) -> ClientResponse:
    """Open a stream, check it is one, and consume its `connected` frame."""
    resp = await client.get(STREAM, headers=headers, params=params)
    assert resp.status == 200, await resp.text()
    first = await read_frame(resp)
    assert first["data"]["type"] == "connected"
    return resp


async def call(client: TestClient[Any, Any], headers: dict[str, str], *, agent: str = "a1",
               session: str = "s1", command: str = "ls", tool: str = "exec",
               run_id: str | None = None) -> dict[str, Any]:
    """POST a tool call (the standard policy allows `ls`)."""
    body: dict[str, Any] = {"agent": agent, "session": session, "params": {"command": command}}
    if run_id is not None:
        body["run_id"] = run_id
    resp = await client.post(f"/v1/tool/{tool}", json=body, headers=headers)
    assert resp.status in (200, 202, 403), await resp.text()
    result: dict[str, Any] = await resp.json()
    return result


def store_of(client: TestClient[Any, Any]) -> Any:
    """The app's audit store."""
    return client.server.app[SERVICE].store


def head_of(client: TestClient[Any, Any]) -> int:
    """The audit head seq."""
    return int(store_of(client).head[0])


def drafts(n: int, **kw: Any) -> list[RecordDraft]:
    """n decision records."""
    return [RecordDraft("decision", agent=kw.get("agent", "bulk"), session="s", tool="exec",
                        request={"command": f"echo {i}", **kw.get("extra", {})},
                        decision={"action": "allow", "message": "ok"}) for i in range(n)]


async def app_client(aiohttp_client: Any, home: Path, **flags: Any) -> TestClient[Any, Any]:
    """A client for an app with custom settings."""
    settings: Settings = make_settings(home, **flags)
    prepare_home(settings)
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    return client


# ---------------------------------------------------------------- basics, auth, frames


async def test_headers_connected_and_audit_frame(client: TestClient[Any, Any],
                                                 auth: dict[str, str]) -> None:
    resp = await client.get(STREAM, headers=auth)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/event-stream"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["X-Accel-Buffering"] == "no"
    raw = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 10)
    head = head_of(client)
    assert raw == f'retry: 3000\ndata: {{"type":"connected","head_seq":{head}}}\n\n'.encode()
    answer = await call(client, auth)
    frame = await read_frame(resp)
    assert frame["id"] == head + 1
    assert frame["event"] is None  # data-only by default
    data = frame["data"]
    assert data["type"] == "audit" and data["kind"] == "decision.created"
    assert data["event"]["id"] == answer["audit_id"]
    assert data["event"]["seq"] == head + 1
    assert data["event"]["request"] == {"command": "ls"}
    assert data["event"]["hash"].startswith("sha256:")


async def test_query_token_auth(client: TestClient[Any, Any], admin_token: str) -> None:
    resp = await open_stream(client, {}, token=admin_token)
    resp.close()


@pytest.mark.parametrize("headers,params", [
    ({}, {}),
    ({"Authorization": "Bearer wrong"}, {}),
    ({}, {"token": "wrong"}),
])
async def test_401_without_valid_credential(client: TestClient[Any, Any],
                                            headers: dict[str, str],
                                            params: dict[str, str]) -> None:
    resp = await client.get(STREAM, headers=headers, params=params)
    assert resp.status == 401
    assert resp.headers["Content-Type"].startswith("application/json")
    body = await resp.json()
    assert body["code"] == "unauthorized" and body["error"]


async def test_named_format_adds_event_lines(client: TestClient[Any, Any],
                                             auth: dict[str, str]) -> None:
    resp = await client.get(STREAM, headers=auth, params={"format": "named"})
    first = await read_frame(resp)
    assert first["event"] == "connected" and first["retry"] == "3000"
    await call(client, auth)
    frame = await read_frame(resp)
    assert frame["event"] == "decision.created" and frame["data"]["type"] == "audit"


async def test_frame_mapping_for_every_kind_and_replay_is_identical(
        client: TestClient[Any, Any], auth: dict[str, str]) -> None:
    store = store_of(client)
    start = head_of(client)
    live = await client.get(STREAM, headers=auth)
    raw_connected = await asyncio.wait_for(live.content.readuntil(b"\n\n"), 10)
    assert b'"connected"' in raw_connected
    approval = {"id": "01JAPPROVAL0000000000000001", "status": "pending"}
    await store.append(RecordDraft("approval.requested", agent="a1", session="s1",
                                   run_id="run_1", tool="exec", approval=approval))
    batch = [RecordDraft("approval.resolved", agent="a1", session="s1", run_id="run_1",
                         approval={"id": f"01JAPPROVAL000000000000000{i}",
                                   "status": "approved"}, batch_id="B1")
             for i in range(3)]
    batch.append(RecordDraft("approval.batch_resolved", agent="a1", session="s1",
                             run_id="run_1", batch_id="B1", detail={"count": 3}))
    await store.append_many(batch)
    await store.append(RecordDraft("policy.reloaded", detail={"policies": 1}))
    await store.append(RecordDraft("agent.created", agent="a1"))
    await store.append(RecordDraft("something.else", agent="a1"))
    await store.append(RecordDraft("decision.client", agent="a1", tool="exec",
                                   decision={"action": "deny"}))
    live_raw = [await asyncio.wait_for(live.content.readuntil(b"\n\n"), 10) for _ in range(6)]
    frames = [parse_block(r) for r in live_raw]
    s = start
    assert frames[0]["id"] == s + 1
    assert frames[0]["data"]["type"] == "approvals"
    assert frames[0]["data"]["kind"] == "approval.requested"
    assert frames[0]["data"]["approval_id"] == approval["id"]
    assert frames[1]["id"] == s + 5
    assert frames[1]["data"] == {"type": "audit_batch", "kind": "approval.batch_resolved",
                                 "run_id": "run_1", "count": 4, "first_seq": s + 2,
                                 "last_seq": s + 5}
    assert [(f["id"], f["data"]["type"], f["data"]["kind"]) for f in frames[2:]] == [
        (s + 6, "policy", "policy.reloaded"), (s + 7, "agent", "agent.created"),
        (s + 8, "audit", "something.else"), (s + 9, "audit", "decision.created")]
    # A resumed stream sends byte-for-byte the same frames, read back from SQLite.
    replay = await client.get(STREAM, headers={**auth, "Last-Event-ID": str(start)})
    await asyncio.wait_for(replay.content.readuntil(b"\n\n"), 10)
    replay_raw = [await asyncio.wait_for(replay.content.readuntil(b"\n\n"), 10)
                  for _ in range(6)]
    assert replay_raw == live_raw


async def test_real_approvals_and_bulk_resolution(client: TestClient[Any, Any],
                                                  auth: dict[str, str]) -> None:
    resp = await open_stream(client, auth, types="approvals,audit_batch", run_id="run_7")
    ids = []
    for i in range(3):  # the standard policy asks before a force-push to a shared branch
        answer = await call(client, auth, command=f"git push --force origin release/b{i}",
                            run_id="run_7")
        assert answer["decision"] == "ask"
        ids.append(answer["approval_id"])
    requested = await read_frames(resp, 3)
    assert [f["data"]["kind"] for f in requested] == ["approval.requested"] * 3
    assert [f["data"]["approval_id"] for f in requested] == ids
    bulk = await client.post("/v1/approvals/bulk-resolve", headers=auth, json={
        "agent": "a1", "session": "s1", "run_id": "run_7", "action": "approve",
        "scope": "pending", "ids": ids, "resolved_by": "alice"})
    assert bulk.status == 200, await bulk.text()
    batch = await read_frame(resp)
    data = batch["data"]
    assert data["type"] == "audit_batch" and data["kind"] == "approval.batch_resolved"
    assert data["run_id"] == "run_7" and data["count"] == 4
    assert batch["id"] == data["last_seq"] == data["first_seq"] + 3 == head_of(client)


def test_replay_pages_never_split_a_batch() -> None:
    records: list[dict[str, Any]] = [
        {"seq": 1, "kind": "decision"},
        {"seq": 2, "kind": "approval.resolved", "batch_id": "B", "approval": {"id": "x"}},
        {"seq": 3, "kind": "approval.resolved", "batch_id": "B", "approval": {"id": "y"}},
    ]
    frames, held = frames_for(records, final=False)
    assert [f.id for f in frames] == [1] and [r["seq"] for r in held] == [2, 3]
    records.append({"seq": 4, "kind": "approval.batch_resolved", "batch_id": "B"})
    frames, held = frames_for(records, final=False)
    assert [f.id for f in frames] == [1, 4] and held == []
    assert frames[1].data["count"] == 3 and frames[1].data["first_seq"] == 2


# ---------------------------------------------------------------- filters and scope


async def test_filters_are_anded(client: TestClient[Any, Any], auth: dict[str, str]) -> None:
    resp = await open_stream(client, auth, agent="a1", tool="exec", session="s1",
                             decision="allow", types="audit")
    by_kind = await open_stream(client, auth, types="decision.created,policy")
    by_run = await open_stream(client, auth, run_id="r9")
    await call(client, auth, agent="a2")                  # wrong agent
    await call(client, auth, session="other")             # wrong session
    await call(client, auth, command="rm -rf /")          # denied
    await call(client, auth, tool="read", command="ls")   # wrong tool
    await store_of(client).append(RecordDraft("policy.reloaded", detail={}))
    wanted = await call(client, auth, run_id="r9")
    frame = await read_frame(resp)
    assert frame["data"]["event"]["id"] == wanted["audit_id"]
    kinds = [(await read_frame(by_kind))["data"]["type"] for _ in range(6)]
    assert kinds == ["audit", "audit", "audit", "audit", "policy", "audit"]
    run_frame = await read_frame(by_run)
    assert run_frame["data"]["event"]["id"] == wanted["audit_id"]


@pytest.mark.parametrize("params", [
    {"bogus": "1"}, {"types": "nope"}, {"types": "audit,"}, {"decision": "maybe"},
    {"format": "xml"}, {"last_event_id": "abc"}, {"last_event_id": "-1"}, {"agent": ""},
])
async def test_bad_parameters_are_400(client: TestClient[Any, Any], auth: dict[str, str],
                                      params: dict[str, str]) -> None:
    resp = await client.get(STREAM, headers=auth, params=params)
    assert resp.status == 400
    body = await resp.json()
    assert body["code"] in ("unknown_parameter", "invalid_parameter") and body["error"]


async def test_bad_last_event_id_header_is_400(client: TestClient[Any, Any],
                                               auth: dict[str, str]) -> None:
    resp = await client.get(STREAM, headers={**auth, "Last-Event-ID": "x1"})
    assert resp.status == 400


async def test_eval_token_sees_only_its_agent(client: TestClient[Any, Any],
                                              auth: dict[str, str]) -> None:
    created = {}
    for name in ("alpha", "beta"):
        resp = await client.post("/v1/agents", json={"name": name}, headers=auth)
        assert resp.status == 201, await resp.text()
        created[name] = await resp.json()
    alpha = {"Authorization": f"Bearer {created['alpha']['token']}"}
    beta = {"Authorization": f"Bearer {created['beta']['token']}"}
    stream = await open_stream(client, alpha)
    spoof = await open_stream(client, alpha, agent="beta")
    await call(client, beta, agent="beta")
    await call(client, auth, agent="beta")
    mine = await call(client, alpha, agent="beta")  # the token's identity wins: agent alpha
    frame = await read_frame(stream)
    assert frame["data"]["event"]["id"] == mine["audit_id"]
    assert frame["data"]["event"]["agent"] == "alpha"
    # Asking for another agent's events with an agent token yields nothing of theirs.
    marker = await call(client, alpha, command="ls -la")
    await store_of(client).append(RecordDraft("policy.reloaded", detail={}))
    status = await client.get("/v1/status", headers=auth)
    assert (await status.json())["stream_clients"] == 2
    spoof.close()
    frame = await read_frame(stream)
    assert frame["data"]["event"]["id"] == marker["audit_id"]
    # A suspended agent's token may not open a stream.
    patch = await client.patch(f"/v1/agents/{created['alpha']['id']}",
                               json={"status": "suspended"}, headers=auth)
    assert patch.status == 200, await patch.text()
    # The stream it already had open ends (the body reaches EOF instead of hanging).
    async with asyncio.timeout(10):
        await stream.content.read()
    assert stream.content.at_eof()
    refused = await client.get(STREAM, headers=alpha)
    assert refused.status == 403
    assert (await refused.json())["code"] == "agent_inactive"


# ---------------------------------------------------------------- resume


async def test_resume_by_header_and_param(client: TestClient[Any, Any],
                                          auth: dict[str, str]) -> None:
    start = head_of(client)
    ids = [(await call(client, auth, command=f"ls {i}"))["audit_id"] for i in range(5)]
    resp = await client.get(STREAM, headers={**auth, "Last-Event-ID": str(start + 2)})
    first = await read_frame(resp)
    assert first["data"] == {"type": "connected", "head_seq": start + 5}
    got = await read_frames(resp, 3)
    assert [f["id"] for f in got] == [start + 3, start + 4, start + 5]
    assert [f["data"]["event"]["id"] for f in got] == ids[2:]
    live = await call(client, auth)
    nxt = await read_frame(resp)
    assert nxt["id"] == start + 6 and nxt["data"]["event"]["id"] == live["audit_id"]
    # ?last_event_id= works too; the header (which EventSource advances) wins over it.
    by_param = await client.get(STREAM, headers=auth, params={"last_event_id": str(start + 4)})
    await read_frame(by_param)
    assert [f["id"] for f in await read_frames(by_param, 2)] == [start + 5, start + 6]
    both = await client.get(STREAM, headers={**auth, "Last-Event-ID": str(start + 5)},
                            params={"last_event_id": str(start)})
    await read_frame(both)
    assert (await read_frame(both))["id"] == start + 6


async def test_cursor_beyond_head_gets_one_reset(client: TestClient[Any, Any],
                                                 auth: dict[str, str]) -> None:
    head = head_of(client)
    resp = await client.get(STREAM, headers={**auth, "Last-Event-ID": str(head + 1000)})
    assert (await read_frame(resp))["data"]["type"] == "connected"
    reset = await read_frame(resp)
    assert reset["id"] is None and reset["data"] == {"type": "reset", "head_seq": head}
    await call(client, auth)
    nxt = await read_frame(resp)
    assert nxt["id"] == head + 1 and nxt["data"]["type"] == "audit"


async def test_resume_while_events_keep_arriving(client: TestClient[Any, Any],
                                                 auth: dict[str, str]) -> None:
    store = store_of(client)
    client.server.app[BROADCASTER].page_size = 7  # many replay pages
    start = head_of(client)
    await store.append_many(drafts(300))

    async def keep_publishing() -> None:
        for _ in range(60):
            await store.append_many(drafts(5))

    publisher = asyncio.create_task(keep_publishing())
    resp = await client.get(STREAM, headers={**auth, "Last-Event-ID": str(start)})
    await read_frame(resp)
    await publisher
    total = 300 + 60 * 5
    got = [f["id"] for f in await read_frames(resp, total)]
    assert got == list(range(start + 1, start + total + 1))


# ---------------------------------------------------------------- backpressure


async def test_overflow_catches_up_from_sqlite(aiohttp_client: Any, tmp_path: Path) -> None:
    client = await app_client(aiohttp_client, tmp_path / "h", stream_queue_size=4)
    token = (tmp_path / "h" / "token").read_text().strip()
    auth = {"Authorization": f"Bearer {token}"}
    resp = await open_stream(client, auth)
    sub_before = client.server.app[BROADCASTER]
    start = head_of(client)
    for _ in range(3):
        await store_of(client).append_many(drafts(50))  # 50 frames in one publish > 4
    got = [f["id"] for f in await read_frames(resp, 150)]
    assert got == list(range(start + 1, start + 151))
    assert sub_before.overflow_total >= 1


async def test_far_behind_gets_lagged(aiohttp_client: Any, tmp_path: Path) -> None:
    client = await app_client(aiohttp_client, tmp_path / "h", stream_queue_size=4)
    token = (tmp_path / "h" / "token").read_text().strip()
    auth = {"Authorization": f"Bearer {token}"}
    client.server.app[BROADCASTER].max_behind = 20
    resp = await open_stream(client, auth)
    start = head_of(client)
    await store_of(client).append_many(drafts(50))
    lagged = await read_frame(resp)
    assert lagged["id"] is None and lagged["data"] == {"type": "lagged", "skipped": 50}
    await call(client, auth)
    nxt = await read_frame(resp)
    assert nxt["id"] == start + 51
    # A resume cursor too far behind is skipped the same way.
    again = await client.get(STREAM, headers={**auth, "Last-Event-ID": "0"})
    await read_frame(again)
    assert (await read_frame(again))["data"] == {"type": "lagged", "skipped": start + 51}


async def _raw_stream(port: int, token: str) -> tuple[asyncio.StreamReader, Any]:
    """A client with a tiny receive buffer that reads the headers and then stops reading."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(f"GET {STREAM} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                 f"Authorization: Bearer {token}\r\n\r\n".encode())
    await writer.drain()
    status = await reader.readuntil(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 200")
    return reader, writer


async def _wait_for(predicate: Any, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_stalled_client_is_dropped_without_slowing_others(
        aiohttp_client: Any, tmp_path: Path) -> None:
    client = await app_client(aiohttp_client, tmp_path / "h", stream_write_timeout=0.5,
                              stream_queue_size=8)
    token = (tmp_path / "h" / "token").read_text().strip()
    auth = {"Authorization": f"Bearer {token}"}
    broadcaster = client.server.app[BROADCASTER]
    healthy = await open_stream(client, auth)
    _reader, writer = await _raw_stream(client.server.port or 0, token)
    await _wait_for(lambda: broadcaster.clients == 2)
    start = head_of(client)
    big = {"blob": "x" * 60_000}
    sent = 0
    while broadcaster.clients == 2:  # publish until the stalled client is dropped
        await store_of(client).append_many(drafts(10, extra=big))
        sent += 10
        assert sent < 2000, "the stalled client was never dropped"
        await asyncio.sleep(0.05)
    got = [f["id"] for f in await read_frames(healthy, sent)]
    assert got == list(range(start + 1, start + sent + 1))
    assert broadcaster.clients == 1
    writer.close()


# ---------------------------------------------------------------- limits, ping, shutdown


async def test_stream_limits_are_429(aiohttp_client: Any, tmp_path: Path) -> None:
    client = await app_client(aiohttp_client, tmp_path / "h", stream_max_per_credential=2,
                              stream_max_total=3)
    token = (tmp_path / "h" / "token").read_text().strip()
    auth = {"Authorization": f"Bearer {token}"}
    first = await open_stream(client, auth)
    await open_stream(client, auth)
    refused = await client.get(STREAM, headers=auth)
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) >= 1
    refused_body = await refused.json()
    assert refused_body["code"] == "rate_limited" and "credential" in refused_body["error"]
    agent = await (await client.post("/v1/agents", json={"name": "gamma"},
                                     headers=auth)).json()
    gamma = {"Authorization": f"Bearer {agent['token']}"}
    await open_stream(client, gamma)  # another credential: the 3rd stream overall
    over_total = await client.get(STREAM, headers=gamma)
    assert over_total.status == 429
    assert "credential" not in (await over_total.json())["error"]
    # A closed stream frees its slot.
    first.close()
    broadcaster = client.server.app[BROADCASTER]
    await _wait_for(lambda: broadcaster.clients == 2)
    await open_stream(client, auth)


async def test_ping_comments(aiohttp_client: Any, tmp_path: Path) -> None:
    client = await app_client(aiohttp_client, tmp_path / "h", stream_ping_interval=0.05)
    token = (tmp_path / "h" / "token").read_text().strip()
    resp = await open_stream(client, {"Authorization": f"Bearer {token}"})
    block = await read_block(resp)
    assert block["comments"] == ["ping"] and block["data"] is None
    raw = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 10)
    assert raw == b": ping\n\n"


async def test_shutdown_ends_every_stream(aiohttp_client: Any, tmp_path: Path) -> None:
    client = await app_client(aiohttp_client, tmp_path / "h")
    token = (tmp_path / "h" / "token").read_text().strip()
    auth = {"Authorization": f"Bearer {token}"}
    streams = [await open_stream(client, auth) for _ in range(3)]
    await client.server.close()
    for resp in streams:
        # A clean end of the chunked body: the handler finished, it was not cancelled.
        rest = await asyncio.wait_for(resp.content.read(), 5)
        assert rest == b"" and resp.content.at_eof()


async def test_rotating_the_admin_token_ends_its_streams(client: TestClient[Any, Any],
                                                         auth: dict[str, str],
                                                         settings: Settings) -> None:
    from rampartd.home import rotate_token

    stream = await open_stream(client, auth)
    rotate_token(settings.token_path)
    async with asyncio.timeout(10):  # the sweeper re-checks credentials twice a second
        await stream.content.read()
    assert stream.content.at_eof()
    fresh = {"Authorization": f"Bearer {settings.token_path.read_text().strip()}"}
    again = await open_stream(client, fresh)
    assert again.status == 200
    again.close()
