"""The whole URL table: method, path, handler, scope. Nothing is routed anywhere else."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp.typedefs import Handler

from rampartd.web import status
from rampartd.web.auth import RouteAuth, Scope


@dataclass(frozen=True)
class Route:
    """One row of the URL table."""

    method: str
    path: str
    handler: Handler
    scope: Scope
    stream: bool = False

    @property
    def auth(self) -> RouteAuth:
        """How the auth middleware protects this route."""
        return RouteAuth(self.scope, self.stream)


ROUTES: tuple[Route, ...] = (
    Route("GET", "/healthz", status.healthz, "public"),
    Route("GET", "/v1/status", status.status, "admin"),
)
