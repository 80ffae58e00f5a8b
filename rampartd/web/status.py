"""Health and status handlers."""

from __future__ import annotations

import time

from aiohttp import web

from rampartd import __version__
from rampartd.policy.guard import describe as describe_guard
from rampartd.policy.guard import relaxed
from rampartd.web.keys import BROADCASTER, SERVICE, SETTINGS, STARTED_AT
from rampartd.web.parse import query


async def healthz(request: web.Request) -> web.Response:
    """Unauthenticated liveness: status, mode, uptime, version."""
    query(request, ())
    app = request.app
    return web.json_response({
        "status": "ok",
        "mode": app[SETTINGS].mode,
        "uptime_seconds": round(time.monotonic() - app[STARTED_AT], 3),
        "version": __version__,
    })


async def status(request: web.Request) -> web.Response:
    """Admin view of the daemon's state."""
    query(request, ())
    app = request.app
    settings = app[SETTINGS]
    service = app[SERVICE]
    current = service.policies.current
    error = service.policies.last_error
    seq, head_hash = service.store.head
    return web.json_response({
        "status": "ok",
        "version": __version__,
        "mode": settings.mode,
        "uptime_seconds": round(time.monotonic() - app[STARTED_AT], 3),
        "default_action": current.default_action,
        "policy_count": current.policy_count,
        "rule_count": current.rule_count,
        "policy_dir": str(settings.policy_dir),
        "guard": describe_guard(relaxed(settings.guard)),
        "last_reload_error": None if error is None else {**error.details(), "error": error.message},
        "audit_head": {"seq": seq, "hash": head_hash},
        "pending_approvals": service.approvals.pending_count,
        "stream_clients": app[BROADCASTER].clients,
    })
