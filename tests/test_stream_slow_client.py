"""10,000 events published while a stream client reads slowly: all arrive, in order, once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from rampartd.audit.chain import RecordDraft
from rampartd.daemon import prepare_home
from rampartd.web.app import create_app
from rampartd.web.keys import BROADCASTER, SERVICE
from tests.conftest import make_settings

TOTAL = 10_000
PER_COMMIT = 100


def _drafts(start: int) -> list[RecordDraft]:
    return [RecordDraft("decision", agent="busy", session="s", tool="exec",
                        request={"command": f"echo {start + i}"},
                        decision={"action": "allow", "message": "ok"})
            for i in range(PER_COMMIT)]


async def test_slow_client_gets_every_event_exactly_once_in_order(
        aiohttp_client: Any, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "h", stream_queue_size=64)
    prepare_home(settings)
    client = await aiohttp_client(create_app(settings))
    auth = {"Authorization": f"Bearer {(tmp_path / 'h' / 'token').read_text().strip()}"}
    store = client.server.app[SERVICE].store
    broadcaster = client.server.app[BROADCASTER]
    resp = await client.get("/v1/events/stream", headers=auth)
    assert resp.status == 200
    start = store.head[0]

    async def publish() -> None:
        for n in range(0, TOTAL, PER_COMMIT):
            await store.append_many(_drafts(n))

    publisher = asyncio.create_task(publish())
    ids: list[int] = []
    commands: list[str] = []
    buffer = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    while len(ids) < TOTAL:
        assert loop.time() < deadline, f"only {len(ids)} of {TOTAL} events arrived"
        chunk = await asyncio.wait_for(resp.content.read(4096), 30)
        assert chunk, "the stream ended early"
        buffer += chunk
        *blocks, buffer = buffer.split(b"\n\n")
        for block in blocks:
            lines = block.decode().split("\n")
            frame_id = next((int(x[4:]) for x in lines if x.startswith("id: ")), None)
            data = next((json.loads(x[6:]) for x in lines if x.startswith("data: ")), None)
            if frame_id is None:
                assert data is None or data["type"] == "connected"
                continue
            ids.append(frame_id)
            commands.append(data["event"]["request"]["command"])
        if not publisher.done():
            await asyncio.sleep(0.001)  # a slow reader while events are being published
    await publisher
    assert ids == list(range(start + 1, start + TOTAL + 1))
    assert commands == [f"echo {i}" for i in range(TOTAL)]
    # The subscriber fell behind its queue and was served from SQLite, not dropped.
    assert broadcaster.overflow_total >= 1
    assert broadcaster.clients == 1
