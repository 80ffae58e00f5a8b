"""A small synchronous client for the daemon's event stream (used by CLI commands).

It reads `GET /v1/events/stream` line by line, yields each frame's decoded JSON, and when the
connection ends (the daemon restarted, the network dropped) reconnects with `Last-Event-ID`, so
the caller sees every matching record once, in order, across restarts.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

from rampartd.cli.client import DaemonClient, DaemonError
from rampartd.errors import Unavailable

STREAM_PATH = "/v1/events/stream"
READ_TIMEOUT = 60.0  # no byte (not even a ping) for this long means the connection is dead
BACKOFF_START = 0.25
BACKOFF_MAX = 3.0
RETRYABLE_STATUS = frozenset({429, 502, 503, 504})


def parse_frames(stream: BinaryIO) -> Iterator[tuple[int | None, dict[str, Any]]]:
    """(id, data) for each SSE frame with data on a byte stream; comments are skipped."""
    frame_id: int | None = None
    data: list[str] = []
    for raw in stream:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line:
            if data:
                try:
                    decoded = json.loads("\n".join(data))
                except ValueError:
                    decoded = None
                if isinstance(decoded, dict):
                    yield frame_id, decoded
            frame_id, data = None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "id" and value.isdigit():
            frame_id = int(value)


def iter_events(client: DaemonClient, params: Mapping[str, str], *,
                last_event_id: int | None = None,
                reconnect: bool = True) -> Iterator[dict[str, Any]]:
    """Yield each frame's JSON (durable frames get an "id"), resuming after reconnects.

    Refusals (400, 401, 403) are raised as DaemonError; with reconnect=False a lost
    connection ends the iteration and an unreachable daemon raises Unavailable.
    """
    backoff = BACKOFF_START
    while True:
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        try:
            response = client.open("GET", STREAM_PATH, params=params, headers=headers,
                                   timeout=READ_TIMEOUT)
        except DaemonError as exc:
            if not reconnect or exc.status not in RETRYABLE_STATUS:
                raise
        except Unavailable:
            if not reconnect:
                raise
        else:
            with response:
                try:
                    for frame_id, data in parse_frames(response):
                        backoff = BACKOFF_START  # a working connection resets the back-off
                        if frame_id is not None:
                            last_event_id = frame_id
                            data["id"] = frame_id
                        yield data
                except (OSError, http.client.HTTPException):  # reset, timeout, cut chunk
                    pass
            if not reconnect:
                return
        time.sleep(backoff)
        backoff = min(backoff * 2, BACKOFF_MAX)
