"""Who is calling: the Host check, credential extraction, scopes and the auth middleware.

Scopes: `public` (no credential), `eval` (an agent's own token, or admin), `admin` (the token
file's token). A wrong or missing credential is 401; a valid one without the scope is 403.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from rampartd.errors import BadRequest, Forbidden, MethodNotAllowed, NotFound, Unauthorized
from rampartd.home import AdminToken
from rampartd.models import Principal
from rampartd.web.keys import ADMIN_TOKEN, AGENT_TOKENS, CHECK_HOST, PRINCIPAL, ROUTE_AUTH
from rampartd.web.scopes import AgentTokens, RouteAuth

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


ADMIN = Principal(scope="admin", credential_id="admin")
@functools.lru_cache(maxsize=256)
def is_loopback_host(host_header: str) -> bool:
    """True if a Host header names this machine's loopback (any port)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        inner, bracket, port = host[1:].partition("]")
        if not bracket or (port and not (port[0] == ":" and _is_port(port[1:]))):
            return False
        host = inner
    elif host.count(":") == 1:
        host, _, port = host.partition(":")
        if not _is_port(port):  # `localhost:9090@evil`, `127.0.0.1:evil`
            return False
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_port(text: str) -> bool:
    # str.isdigit() also accepts other scripts' digits ("٩٠"); a port is ASCII digits only.
    return 0 < len(text) <= 5 and text.isascii() and text.isdigit()


def _presented_token(request: web.Request, auth: RouteAuth) -> str | None:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("Authorization header must be 'Bearer <token>'")
        return value.strip()
    if "token" in request.query:
        if not auth.stream:
            raise Unauthorized("?token= is accepted only on stream routes; "
                               "send 'Authorization: Bearer <token>'")
        return request.query["token"]
    return None


def authenticate(token: str, admin: AdminToken, agents: AgentTokens | None) -> Principal | None:
    """Resolve a presented token to a principal (constant-time for the admin token)."""
    # Header bytes that are not UTF-8 arrive as surrogates; they simply match no token.
    presented = token.encode("utf-8", "surrogateescape")
    expected = admin.current()
    if expected and hmac.compare_digest(presented, expected):
        return ADMIN
    if agents is not None:
        # Agent tokens are stored only as SHA-256; looking up a digest leaks nothing useful.
        return agents.principal_for(hashlib.sha256(presented).hexdigest())
    return None


def reauthenticator(request: web.Request) -> Callable[[], bool]:
    """A check that the credential a long-lived request opened with is still valid, so a
    rotated admin token or a replaced agent token also ends the streams it opened."""
    token = _presented_token(request, RouteAuth("eval", stream=True))
    credential = request[PRINCIPAL].credential_id
    app = request.app

    def still_valid() -> bool:
        again = None if token is None else authenticate(
            token, app[ADMIN_TOKEN], app.get(AGENT_TOKENS))
        return again is not None and again.credential_id == credential

    return still_valid


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse foreign Host headers, resolve the route's scope, authenticate, authorise."""
    app = request.app
    if not request.raw_path.startswith("/"):
        # An absolute-form target names a host of its own that the Host check would not see.
        raise BadRequest("the request target must be a path (origin form), not a URL",
                         code="invalid_target")
    if app[CHECK_HOST] and not is_loopback_host(request.host):
        raise Forbidden("Host header is not a loopback name; rampartd answers local clients only",
                        code="bad_host")
    match = request.match_info
    if match.http_exception is not None:
        if isinstance(match.http_exception, web.HTTPMethodNotAllowed):
            raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}",
                                   allowed=match.http_exception.allowed_methods)
        raise NotFound(f"no route {request.method} {request.path}")
    auth = app[ROUTE_AUTH].get(match.handler)
    if auth is None:  # every route is in the URL table; anything else is refused
        raise NotFound(f"no route {request.method} {request.path}")
    if auth.scope == "public":
        return await handler(request)
    token = _presented_token(request, auth)
    if token is None:
        raise Unauthorized("missing credential: send 'Authorization: Bearer <token>'")
    principal = authenticate(token, app[ADMIN_TOKEN], app.get(AGENT_TOKENS))
    if principal is None:
        raise Unauthorized("invalid token")
    if auth.scope == "admin" and not principal.is_admin:
        raise Forbidden("this route needs the admin token", code="insufficient_scope")
    request[PRINCIPAL] = principal
    return await handler(request)
