"""The one JSON error shape and the middleware that turns every failure into it."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from rampartd.errors import MethodNotAllowed, RampartdError, TooManyRequests, Unauthorized

log = logging.getLogger("rampartd.web")

# aiohttp's own HTTP exceptions (unknown route, wrong method, body too large) get our shape too.
_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 410: "gone", 413: "payload_too_large",
    429: "rate_limited", 503: "unavailable",
}
_HTTP_MESSAGES = {
    404: "no such route", 405: "method not allowed on this route",
    413: "request body is larger than 1 MiB",
}


def error_response(status: int, message: str, code: str,
                   headers: dict[str, str] | None = None) -> web.Response:
    """Build `{"error", "code"}` with the given status."""
    return web.json_response({"error": message, "code": code}, status=status, headers=headers)


def response_for(exc: RampartdError) -> web.Response:
    """The JSON response for one of our exceptions."""
    headers: dict[str, str] = {}
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="rampartd"'
    if isinstance(exc, MethodNotAllowed) and exc.allowed:
        headers["Allow"] = ", ".join(exc.allowed)
    if exc.status == 500:
        return error_response(500, "internal error", "internal")
    body = {**exc.details(), "error": exc.message, "code": exc.code}
    return web.json_response(body, status=exc.status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost middleware: nothing leaves without the one error shape, nothing leaks."""
    try:
        return await handler(request)
    except RampartdError as exc:
        if exc.status >= 500:
            log.error("%s %s failed: %s", request.method, request.path, exc.message)
        response = response_for(exc)
        if request.content.exception() is not None:
            response.force_close()  # the body broke mid-way: the connection is unusable
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = _HTTP_MESSAGES.get(exc.status, exc.reason)
        headers: dict[str, Any] = {}
        if exc.status == 405 and "Allow" in exc.headers:
            headers["Allow"] = exc.headers["Allow"]
        return error_response(exc.status, message, _HTTP_CODES.get(exc.status, "error"), headers)
    except Exception:
        # Full detail goes to our log only; the client learns nothing about internals.
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal error", "internal")
