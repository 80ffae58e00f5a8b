"""Who is calling: the Host check, credential extraction, scopes and the auth middleware.

Scopes: `public` (no credential), `eval` (an agent's own token, or admin), `admin` (the token
file's token). A wrong or missing credential is 401; a valid one without the scope is 403.
Credentials: `Bearer <token>` everywhere, or on evaluation routes a `Rampartd-HMAC` signature
made with a key derived from the token (rampartd.proof), which never sends the token itself.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from rampartd import proof
from rampartd.errors import BadRequest, Forbidden, MethodNotAllowed, NotFound, Unauthorized
from rampartd.home import AdminToken
from rampartd.models import Principal
from rampartd.web.keys import (
    ADMIN_TOKEN,
    AGENT_TOKENS,
    CHECK_HOST,
    NONCES,
    PRINCIPAL,
    ROUTE_AUTH,
    SIGNED,
)
from rampartd.web.scopes import AgentTokens, RouteAuth, Signed

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
ADMIN = Principal(scope="admin", credential_id="admin")
CREDENTIAL_FORMS = ("Authorization header must be 'Bearer <token>' or, on evaluation routes, "
                    "'Rampartd-HMAC id=…, ts=…, nonce=…, mac=…'")


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


def _is_signed(request: web.Request) -> bool:
    scheme = request.headers.get("Authorization", "").partition(" ")[0]
    return scheme.lower() == proof.SCHEME.lower()


def _presented_token(request: web.Request, auth: RouteAuth) -> str | None:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized(CREDENTIAL_FORMS)
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


def signing_key(ident: str, admin: AdminToken,
                agents: AgentTokens | None) -> tuple[Principal, bytes] | None:
    """The principal and key K behind a key id; Unauthorized for a token that has no key."""
    current = admin.signing_key()
    if current is not None and hmac.compare_digest(ident, current[0]):
        return ADMIN, current[1]
    principal = None if agents is None else agents.principal_for(ident)
    if principal is None or agents is None:
        return None
    key = agents.signing_key_for(ident)
    if key is None:
        raise Unauthorized("this agent token was issued before signed requests; issue it anew "
                           "(rampartd agents token-rotate) to use it from a hook",
                           code="token_reissue_needed")
    return principal, key


async def verify_signature(request: web.Request, auth: RouteAuth) -> tuple[Principal, Signed]:
    """Check a Rampartd-HMAC request: its form, key, clock, MAC and (last) a fresh nonce.

    The nonce is spent only for a valid MAC, so nothing without the key can fill the ledger.
    """
    if auth.scope != "eval" or auth.stream:
        raise Unauthorized("Rampartd-HMAC signs evaluation calls only; send "
                           "'Authorization: Bearer <token>' here")
    fields = proof.parse_authorization(request.headers["Authorization"].partition(" ")[2])
    if fields is None:
        raise Unauthorized(CREDENTIAL_FORMS)
    app = request.app
    found = signing_key(fields["id"], app[ADMIN_TOKEN], app.get(AGENT_TOKENS))
    if found is None:
        raise Unauthorized("invalid token")
    principal, key = found
    ledger, ts, now = app[NONCES], int(fields["ts"]) / 1000, time.time()
    if not ledger.fresh(ts, now):
        raise Unauthorized(f"the signature is stale: stamped before this daemon started or "
                           f"more than {proof.MAC_WINDOW} s off its clock",
                           code="stale_signature")
    body = await request.read()
    expected = proof.request_mac(key, request.method, request.raw_path, fields["ts"],
                                 fields["nonce"], body)
    if not proof.mac_matches(expected, fields["mac"]):
        raise Unauthorized("invalid signature")
    if not ledger.use(fields["id"], fields["nonce"], ts, now):
        raise Unauthorized("this signed request was already used", code="replayed_signature")
    return principal, Signed(key, fields["nonce"])


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
    if _is_signed(request):
        principal, signed = await verify_signature(request, auth)
        request[SIGNED] = signed
    else:
        token = _presented_token(request, auth)
        if token is None:
            raise Unauthorized("missing credential: send 'Authorization: Bearer <token>'")
        found = authenticate(token, app[ADMIN_TOKEN], app.get(AGENT_TOKENS))
        if found is None:
            raise Unauthorized("invalid token")
        principal = found
    if auth.scope == "admin" and not principal.is_admin:
        raise Forbidden("this route needs the admin token", code="insufficient_scope")
    request[PRINCIPAL] = principal
    return await handler(request)
