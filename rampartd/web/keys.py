"""Typed keys for the state kept on the aiohttp application and on each request."""

from __future__ import annotations

from aiohttp import web

from rampartd.agents import AgentRegistry
from rampartd.approvals.queue import Approvals
from rampartd.calls import ToolService
from rampartd.config import Settings
from rampartd.home import AdminToken
from rampartd.models import Principal
from rampartd.stream.broadcaster import Broadcaster
from rampartd.web.limits import ReloadGate, SlidingWindowLimiter
from rampartd.web.scopes import AgentTokens, RouteAuth

SETTINGS = web.AppKey("settings", Settings)
SERVICE = web.AppKey("service", ToolService)
STARTED_AT = web.AppKey("started_at", float)  # time.monotonic() at start, for uptime
BROADCASTER = web.AppKey("broadcaster", Broadcaster)  # the one event stream fan-out
APPROVALS = web.AppKey("approvals", Approvals)
AGENTS = web.AppKey("agents", AgentRegistry)
# Authentication: the admin token file, agent token lookup, the Host check, each route's scope.
ADMIN_TOKEN = web.AppKey("admin_token", AdminToken)
AGENT_TOKENS = web.AppKey("agent_tokens", AgentTokens)
CHECK_HOST = web.AppKey("check_host", bool)
ROUTE_AUTH = web.AppKey("route_auth", dict[object, RouteAuth])
# Rate limits: API policy reloads, client-logged decisions.
RELOAD_GATE = web.AppKey("reload_gate", ReloadGate)
DECISION_LIMITER = web.AppKey("decision_limiter", SlidingWindowLimiter)
# Per request: who is calling (set by the auth middleware on every non-public route).
PRINCIPAL = web.RequestKey("principal", Principal)
