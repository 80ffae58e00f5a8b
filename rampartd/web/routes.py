"""The whole URL table: method, path, handler, scope. Nothing is routed anywhere else."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp.typedefs import Handler

from rampartd.web import audit, status, tools
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
    # tool calls and the active policy
    Route("POST", "/v1/tool/{tool}", tools.tool_call, "eval"),
    Route("POST", "/v1/preflight/{tool}", tools.preflight, "eval"),
    Route("POST", "/v1/test", tools.test_call, "admin"),
    Route("GET", "/v1/policy/summary", tools.policy_summary, "admin"),
    Route("POST", "/v1/policy/reload", tools.policy_reload, "admin"),
    # the audit log
    Route("GET", "/v1/audit/events", audit.events, "admin"),
    Route("GET", "/v1/audit/events/{id}", audit.event, "admin"),
    Route("GET", "/v1/audit/stats", audit.stats, "admin"),
    Route("GET", "/v1/audit/dates", audit.dates, "admin"),
    Route("GET", "/v1/audit/export", audit.export, "admin"),
    Route("GET", "/v1/audit/verify", audit.verify, "admin"),
)
