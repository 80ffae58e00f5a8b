"""GET /v1/events/stream: the audit log as Server-Sent Events (README: "The live event stream").

Everything that can be refused (bad parameters, scope, stream limits) is checked before the
response is prepared, so refusals are ordinary JSON errors. After that the handler only writes
what its Subscription hands it; every write has a deadline, and a client that cannot take a
write within `stream_write_timeout` is disconnected so it never holds anything up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence

from aiohttp import web
from aiohttp_sse import EventSourceResponse

from rampartd.audit.filters import is_count
from rampartd.errors import BadRequest, Forbidden
from rampartd.models import ACTIONS
from rampartd.stream.broadcaster import Broadcaster, Subscription
from rampartd.stream.frames import (
    CONTROL_TYPES,
    FRAME_KINDS,
    FRAME_TYPES,
    Frame,
    StreamFilter,
    encode_all,
    retry_line,
)
from rampartd.web.auth import reauthenticator
from rampartd.web.keys import BROADCASTER, PRINCIPAL, SETTINGS
from rampartd.web.parse import bad_parameter, choice_param, query, str_param

log = logging.getLogger("rampartd.stream")
# Above this many bytes waiting in a connection's buffer, frames go through the stream's own
# task, whose writes wait for the client (with the write timeout) instead of piling up here.
DIRECT_BUFFER_LIMIT = 64 * 1024  # aiohttp's own high-water mark
FILTER_PARAMS = ("types", "tool", "agent", "session", "decision", "run_id")
STREAM_PARAMS = (*FILTER_PARAMS, "format", "last_event_id")
FORMATS = ("data", "named")


def parse_types(params: Mapping[str, str]) -> frozenset[str]:
    """`types`: a comma list of frame types or kinds (control types are accepted, always sent)."""
    raw = params.get("types")
    if raw is None:
        return frozenset()
    items = [v.strip() for v in raw.split(",")]
    if not raw.strip() or any(not v for v in items):
        raise bad_parameter("types", "must be a comma-separated list without empty items")
    known = (*FRAME_TYPES, *FRAME_KINDS, *CONTROL_TYPES)
    for item in items:
        if item not in known:
            raise bad_parameter("types", f"has an unknown type or kind {item!r}; expected "
                                f"some of {', '.join((*FRAME_TYPES, *FRAME_KINDS))}")
    return frozenset(items)


def parse_filter(params: Mapping[str, str], *, scope_agent: str | None = None) -> StreamFilter:
    """The stream's filter parameters; a bad value is a 400 naming the parameter."""
    types = parse_types(params)
    decision = choice_param(params, "decision", ACTIONS)
    tool, agent, session, run_id = (str_param(params, n)
                                    for n in ("tool", "agent", "session", "run_id"))
    return StreamFilter(types=types, tool=tool, agent=agent, session=session,
                        decision=decision, run_id=run_id, scope_agent=scope_agent)


def parse_cursor(header: str | None, param: str | None) -> int | None:
    """The resume cursor: Last-Event-ID header first (EventSource updates it), then the param."""
    for name, raw in (("Last-Event-ID", header), ("last_event_id", param)):
        if raw is None or not raw.strip():
            continue
        text = raw.strip()
        if not is_count(text):
            # the header is the same resume cursor as the parameter, so the same code
            problem = "must be a non-negative integer (an event id)"
            if name == "last_event_id":
                raise bad_parameter(name, problem)
            raise BadRequest(f"header {name!r} {problem}", code="invalid_parameter")
        return int(text)
    return None


class TransportWriter:
    """Writes frames straight into the connection as HTTP chunks, without a task switch.

    The response body is chunked; every write here is one whole chunk, as are aiohttp's own
    writes (pings, the end of the body), so the two interleave only at chunk boundaries.
    """

    def __init__(self, request: web.Request, named: bool) -> None:
        self._request = request
        self._named = named

    def ready(self) -> bool:
        """True if the connection is open and has little unsent data."""
        transport = self._request.transport
        return transport is not None and not transport.is_closing() and \
            transport.get_write_buffer_size() < DIRECT_BUFFER_LIMIT

    def write(self, frames: Sequence[Frame]) -> None:
        """Send frames as one chunk."""
        transport = self._request.transport
        if transport is None:
            return
        data = encode_all(frames, self._named)
        transport.write(b"%x\r\n%b\r\n" % (len(data), data))


def _connected(request: web.Request, response: EventSourceResponse) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing() and response.is_connected()


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


async def _pump(request: web.Request, response: EventSourceResponse, sub: Subscription, *,
                named: bool, write_timeout: float) -> None:
    """Write the subscription's frames until it closes or the client goes away."""
    prefix = retry_line()
    while True:
        frames = await sub.next()
        if frames is None:
            return
        data = prefix + encode_all(frames, named)
        prefix = b""
        try:
            async with asyncio.timeout(write_timeout):  # no extra task per write
                await response.write(data)
        except TimeoutError:
            log.warning("dropped an event stream client that stopped reading for %.1fs",
                        write_timeout)
            _abort(request)
            return
        except (ConnectionError, RuntimeError):  # the client went away mid-write
            return


async def stream(request: web.Request) -> web.StreamResponse:
    """Stream committed audit records as SSE frames, with filters, resume and keep-alive."""
    params = query(request, STREAM_PARAMS)
    principal = request[PRINCIPAL]
    scope_agent = None
    if not principal.is_admin:
        if principal.agent_status != "active" or not principal.agent_name:
            raise Forbidden(f"agent is {principal.agent_status or 'unknown'}; "
                            "its token cannot open a stream", code="agent_inactive")
        scope_agent = principal.agent_name  # an agent's token sees only its own records
    flt = parse_filter(params, scope_agent=scope_agent)
    named = choice_param(params, "format", FORMATS) == "named"
    cursor = parse_cursor(request.headers.get("Last-Event-ID"), params.get("last_event_id"))
    settings = request.app[SETTINGS]
    broadcaster = request.app[BROADCASTER]
    sub = broadcaster.subscribe(flt, credential_id=principal.credential_id, cursor=cursor)
    response = EventSourceResponse(sep="\n", ping_interval=settings.stream_ping_interval,
                                   send_timeout=settings.stream_write_timeout)
    try:
        await response.prepare(request)
        still_valid = reauthenticator(request)
        # Checked by the broadcaster's sweeper: a closed connection or a rotated token ends it.
        sub.alive = lambda: _connected(request, response) and still_valid()
        if response.headers.get("Transfer-Encoding") == "chunked" and not response.compression:
            sub.direct = TransportWriter(request, named)
        await _pump(request, response, sub, named=named,
                    write_timeout=settings.stream_write_timeout)
    finally:
        broadcaster.unsubscribe(sub)
        if response.prepared:
            response.stop_streaming()
            with contextlib.suppress(Exception):
                await response.wait()
            if request.transport is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(response.write_eof(), 1.0)
    return response


async def end_streams(app: web.Application) -> None:
    """on_shutdown: end every open stream so the daemon can stop within a second."""
    broadcaster: Broadcaster | None = app.get(BROADCASTER)
    if broadcaster is not None:
        broadcaster.end_streams()
