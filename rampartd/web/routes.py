"""The whole URL table: method, path, handler, scope. Nothing is routed anywhere else."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp.typedefs import Handler

from rampartd.web import agents, approvals, audit, decisions, metrics, sse, status, tools
from rampartd.web.scopes import RouteAuth, Scope


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
    Route("GET", "/metrics", metrics.metrics, "admin"),
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
    # the approval queue (eval callers see and wait on their own agent's approvals only;
    # signed links are public because the signature is the credential)
    Route("GET", "/v1/approvals", approvals.list_approvals, "eval"),
    Route("POST", "/v1/approvals", approvals.create_approval, "admin"),
    Route("POST", "/v1/approvals/bulk-resolve", approvals.bulk_resolve, "admin"),
    Route("GET", "/v1/approvals/{id}", approvals.get_approval, "eval"),
    Route("POST", "/v1/approvals/{id}/resolve", approvals.resolve, "admin"),
    Route("GET", "/v1/approvals/{id}/link", approvals.link_show, "public"),
    Route("POST", "/v1/approvals/{id}/link", approvals.link_decide, "public"),
    # the live event stream (?token= accepted: EventSource cannot set headers)
    Route("GET", "/v1/events/stream", sse.stream, "eval", stream=True),
    # the agents registry (Veto's agents API)
    Route("POST", "/v1/agents", agents.create, "admin"),
    Route("GET", "/v1/agents", agents.list_agents, "admin"),
    Route("GET", "/v1/agents/{id}", agents.get, "admin"),
    Route("PATCH", "/v1/agents/{id}", agents.update, "admin"),
    Route("DELETE", "/v1/agents/{id}", agents.delete, "admin"),
    Route("POST", "/v1/agents/{id}/token", agents.rotate_token, "admin"),
    # Veto's decisions API over the audit log (stats before {id}: routes match in order)
    Route("GET", "/v1/decisions", decisions.list_, "admin"),
    Route("GET", "/v1/decisions/stats", decisions.stats, "admin"),
    Route("GET", "/v1/decisions/{id}", decisions.get, "admin"),
    Route("POST", "/v1/decisions", decisions.log_client, "eval"),
)
