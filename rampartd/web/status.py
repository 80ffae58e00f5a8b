"""Health and status handlers."""

from __future__ import annotations

import time

from aiohttp import web

from rampartd import __version__
from rampartd.web.keys import SETTINGS, STARTED_AT


async def healthz(request: web.Request) -> web.Response:
    """Unauthenticated liveness: status, mode, uptime, version."""
    app = request.app
    return web.json_response({
        "status": "ok",
        "mode": app[SETTINGS].mode,
        "uptime_seconds": round(time.monotonic() - app[STARTED_AT], 3),
        "version": __version__,
    })


async def status(request: web.Request) -> web.Response:
    """Admin view of the daemon's state."""
    app = request.app
    settings = app[SETTINGS]
    return web.json_response({
        "status": "ok",
        "version": __version__,
        "mode": settings.mode,
        "uptime_seconds": round(time.monotonic() - app[STARTED_AT], 3),
        "listen": f"{settings.host}:{settings.port}",
        "home": str(settings.home),
        "policy_dir": str(settings.policy_dir),
    })
