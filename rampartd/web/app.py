"""The application factory: settings, state under typed keys, middlewares, the URL table."""

from __future__ import annotations

import time

from aiohttp import web

from rampartd.config import Settings
from rampartd.home import AdminToken
from rampartd.web.auth import ADMIN_TOKEN, CHECK_HOST, ROUTE_AUTH, RouteAuth, auth_middleware
from rampartd.web.errors import error_middleware
from rampartd.web.keys import SETTINGS, STARTED_AT
from rampartd.web.parse import MAX_BODY
from rampartd.web.routes import ROUTES


def create_app(settings: Settings) -> web.Application:
    """Build the aiohttp application; components start and stop in its cleanup contexts."""
    app = web.Application(middlewares=[error_middleware, auth_middleware],
                          client_max_size=MAX_BODY)
    app[SETTINGS] = settings
    app[STARTED_AT] = time.monotonic()
    app[ADMIN_TOKEN] = AdminToken(settings.token_path)
    app[CHECK_HOST] = not settings.allow_remote
    auth: dict[object, RouteAuth] = {}
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
        auth[route.handler] = route.auth
    app[ROUTE_AUTH] = auth
    return app
