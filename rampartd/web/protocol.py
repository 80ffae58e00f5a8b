"""The connection layer: a read deadline per request, a cap on open connections, and
malformed requests answered in the one JSON error shape without echoing a byte of them.

aiohttp's own parser errors bypass the application (and so the error middleware); they are
answered here. Their text quotes the offending request line or header, which can carry a
token, so neither the answer nor the log line contains it: only the kind of error is named.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError, LineTooLong
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("rampartd.web")
# Idle keep-alive connections are closed after this long (and are the first to go at the cap).
IDLE_KEEPALIVE_SECONDS = 60.0
# A connection refused at the cap is closed this long after its 503 if it sends nothing.
REFUSED_GRACE = 1.0


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """How long a request may take to arrive and how many connections may be open."""

    read_timeout: float  # seconds from a request's first byte to its last (headers and body)
    max_connections: int


def _refusal(status: int, reason: str, message: str, code: str) -> bytes:
    body = json.dumps({"error": message, "code": code}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n")
    return head.encode() + body


_FULL = _refusal(503, "Service Unavailable",
                 "too many open connections; try again shortly", "too_many_connections")


def describe_parse_error(exc: BaseException | None) -> tuple[int, str, str]:
    """(status, message, code) for a request the HTTP parser refused; never quotes it."""
    if isinstance(exc, ContentEncodingError):
        return 415, "unsupported Content-Encoding (use gzip or deflate)", "unsupported_encoding"
    if isinstance(exc, LineTooLong):
        return 400, "request line or header is too long", "malformed_request"
    kind = type(exc).__name__ if exc is not None else "error"
    return 400, f"malformed HTTP request ({kind})", "malformed_request"


class GuardedProtocol(RequestHandler):
    """aiohttp's request handler with a read deadline and JSON parser errors."""

    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = manager
        self._deadline: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None  # the request being handled, if any
        self._idle = True  # between requests: the next byte starts the deadline
        self._refused = False  # over the cap: answered 503 on arrival

    # ------------------------------------------------------------ the read deadline

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = asyncio.get_running_loop().call_later(
            self._guard.limits.read_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self._body is not None and self._body.is_eof():
            return  # the whole request arrived in time; it is being handled
        log.debug("closing a connection whose request did not arrive within %gs",
                  self._guard.limits.read_timeout)
        self.force_close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Admit the connection under the cap and start its deadline."""
        super().connection_made(transport)
        if not self._guard.admit(self):
            # uvloop's transports are not asyncio.Transport subclasses, but write the same.
            cast(asyncio.Transport, transport).write(_FULL)
            # Closing with the client's request still unread would reset the connection and
            # lose the answer; it is closed once the request is read (or after a moment).
            self._refused = True
            self._deadline = asyncio.get_running_loop().call_later(REFUSED_GRACE,
                                                                    self.force_close)
            return
        self._idle = False  # the first request's time runs from the connection's opening
        self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        """Forget the connection."""
        self._disarm()
        self._guard.forget(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """The first byte of a request starts its deadline."""
        if self._refused:  # already answered 503: read and drop, then close
            self.force_close()
            return
        if self._idle and data:  # (while a request is handled, e.g. a WebSocket, it is not)
            self._idle = False
            self._arm()
        super().data_received(data)

    def request_started(self, body: StreamReader) -> None:
        """Headers are complete: the connection is busy; a pending body keeps the deadline."""
        self._guard.forget(self)
        self._body = body
        if body.is_eof():
            self._disarm()
        elif self._deadline is None:
            self._arm()

    def log_access(self, request: web.BaseRequest, response: web.StreamResponse,
                   time: float | None) -> None:
        """After each response the connection waits, evictable, for the next request."""
        super().log_access(request, response, time)
        self._body = None
        self._idle = True
        self._disarm()
        self._guard.waiting(self)

    @property
    def answerable(self) -> bool:
        """True while a request that fully arrived is being handled (a stream, a long poll)."""
        return self._body is not None and self._body.is_eof()

    # ------------------------------------------------------------ parser errors

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp's own failures (a body left unread that fails to decode, a handler gone
        wrong below the middleware): one line naming the error, no traceback of request
        bytes. The application's errors are logged, in full, by the error middleware."""
        exc = kw.get("exc_info")
        kind = type(exc).__name__ if isinstance(exc, BaseException) else "error"
        log.warning("connection error below the application (%s); connection closed", kind)

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """The one JSON error shape; the log names the kind of error, never its bytes."""
        if isinstance(exc, HttpProcessingError):
            status, text, code = describe_parse_error(exc)
            log.info("refused a malformed request from %s: %s", request.remote, text)
        else:  # a failure below the application's error middleware (500, or 504 timed out)
            log.error("error %d while answering a request (%s)", status,
                      type(exc).__name__ if exc is not None else "no exception")
            code, text = ("internal", "internal error") if status == 500 else \
                ("unavailable", "the request could not be answered")
        if request.writer.output_size > 0:
            raise ConnectionError("the response was already started")
        resp = web.json_response({"error": text, "code": code}, status=status)
        resp.force_close()
        return resp


class GuardedServer(web.Server):
    """aiohttp's low-level server, making GuardedProtocol connections under a cap."""

    def __init__(self, plain: web.Server, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(plain.request_handler, request_factory=self._make_guarded_request,
                         handler_cancellation=plain.handler_cancellation, **kwargs)
        self._plain_factory = plain.request_factory
        self._handler_kwargs = kwargs
        self.limits = limits
        # Connections with no request in progress, oldest first: the ones evicted at the cap.
        self._waiting: dict[GuardedProtocol, None] = {}

    def __call__(self) -> GuardedProtocol:
        """A protocol instance for one new connection."""
        return GuardedProtocol(self, loop=asyncio.get_running_loop(), **self._handler_kwargs)

    def _make_guarded_request(self, message: Any, payload: StreamReader, protocol: Any,
                              writer: Any, task: asyncio.Task[None]) -> web.BaseRequest:
        request = self._plain_factory(message, payload, protocol, writer, task)
        if isinstance(protocol, GuardedProtocol):
            protocol.request_started(payload)
        return request

    def pre_shutdown(self) -> None:
        """At shutdown, a request still arriving will never be answered: close it now
        rather than wait the shutdown timeout for it (requests being answered finish)."""
        super().pre_shutdown()
        for conn in self.connections:
            if isinstance(conn, GuardedProtocol) and not conn.answerable:
                conn.force_close()

    def admit(self, conn: GuardedProtocol) -> bool:
        """Make room for a new connection; False when every other one is busy."""
        if len(self.connections) > self.limits.max_connections:
            oldest = next(iter(self._waiting), None)
            if oldest is None:
                log.warning("refused a connection: %d are open and all busy",
                            len(self.connections) - 1)
                return False
            self._waiting.pop(oldest)
            oldest.force_close()
        self._waiting[conn] = None
        return True

    def waiting(self, conn: GuardedProtocol) -> None:
        """conn has no request in progress (idle keep-alive)."""
        self._waiting[conn] = None

    def forget(self, conn: GuardedProtocol) -> None:
        """conn is busy or gone."""
        self._waiting.pop(conn, None)


class GuardedRunner(web.AppRunner):
    """An AppRunner whose connections are GuardedProtocol instances."""

    def __init__(self, app: web.Application, limits: ConnectionLimits, **kwargs: Any) -> None:
        self._limits = limits
        runner_only = {"handle_signals", "shutdown_timeout"}
        self._handler_kwargs = {k: v for k, v in kwargs.items() if k not in runner_only}
        self._handler_kwargs.setdefault("keepalive_timeout", IDLE_KEEPALIVE_SECONDS)
        super().__init__(app, **kwargs)

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # starts the application
        return GuardedServer(plain, self._limits, **self._handler_kwargs)
