"""The application factory: settings, state under typed keys, middlewares, the URL table."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from rampartd import proof
from rampartd.agents import AgentRegistry
from rampartd.approvals.queue import Approvals
from rampartd.audit.store import AuditStore
from rampartd.calls import ToolService
from rampartd.config import Settings
from rampartd.home import AdminToken
from rampartd.nonces import NonceLedger
from rampartd.policy import PolicyHolder
from rampartd.policy.counter import SlidingWindowCounter
from rampartd.policy.guard import guard_for
from rampartd.stream.broadcaster import Broadcaster
from rampartd.web import sse
from rampartd.web.approvals import release_waiters
from rampartd.web.auth import auth_middleware
from rampartd.web.decisions import new_limiter
from rampartd.web.errors import error_middleware
from rampartd.web.keys import (
    ADMIN_TOKEN,
    AGENT_TOKENS,
    AGENTS,
    APPROVALS,
    BROADCASTER,
    CHECK_HOST,
    DECISION_LIMITER,
    NONCES,
    RELOAD_GATE,
    ROUTE_AUTH,
    SERVICE,
    SETTINGS,
    STARTED_AT,
)
from rampartd.web.limits import ReloadGate
from rampartd.web.parse import MAX_BODY
from rampartd.web.routes import ROUTES
from rampartd.web.scopes import RouteAuth

log = logging.getLogger("rampartd")


async def _watch_policies(service: ToolService, interval: float) -> None:
    """Poll the policy directory; record every reload and every refused edit.

    Nothing may end this loop: if a record cannot be written (the database is locked, the
    disk is full) the reload is recorded on a later poll instead.
    """
    holder = service.policies
    unrecorded = False
    while True:
        await asyncio.sleep(interval)
        previous_error = holder.last_error
        try:
            changed = await service.poll_policies()
            if changed or unrecorded:
                unrecorded = True
                await service.record_reload(trigger="watch")
                unrecorded = False
            elif holder.last_error is not None and holder.last_error is not previous_error:
                await service.record_reload_failure(holder.last_error, trigger="watch")
        except Exception:  # the last good set stays active; try again on the next poll
            log.exception("policy watcher: could not reload or record the reload")


def admin_token_text(admin: AdminToken) -> Callable[[], tuple[str, ...]]:
    """The admin token as a literal to redact: it has no recognisable shape of its own."""
    def known() -> tuple[str, ...]:
        return (admin.current().decode("utf-8", "replace"),)
    return known


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _components(app: web.Application) -> AsyncIterator[None]:
    """Open the audit store and the policy set, start the watcher; close in reverse.

    The exit stack closes every component that was opened, in reverse order, even when one
    of them fails to close, so the audit writer always drains and the process can exit.
    """
    settings = app[SETTINGS]
    # The guard is compiled from this process's runtime and put ahead of every policy file;
    # a broken policy stops start-up (PolicyError).
    policies = PolicyHolder(settings.policy_dir, tool_names=settings.tool_names,
                            builtin=guard_for(settings, pid=os.getpid()))
    async with contextlib.AsyncExitStack() as stack:
        # The broadcaster exists before the store so no committed record escapes the stream.
        broadcaster = Broadcaster(queue_size=settings.stream_queue_size,
                                  max_per_credential=settings.stream_max_per_credential,
                                  max_total=settings.stream_max_total)
        app[BROADCASTER] = broadcaster
        store = await AuditStore.open(settings.db_path, home=settings.home,
                                      on_commit=broadcaster.publish,
                                      checkpoint_every=settings.checkpoint_every,
                                      checkpoint_seconds=settings.checkpoint_seconds,
                                      busy_timeout=settings.db_busy_timeout,
                                      known_secrets=admin_token_text(app[ADMIN_TOKEN]))
        stack.push_async_callback(store.close)
        stack.push_async_callback(broadcaster.close)
        broadcaster.bind(store)
        approvals = Approvals(store, timeout=settings.approval_timeout,
                              max_pending=settings.max_pending_approvals)
        app[APPROVALS] = approvals
        service = ToolService(mode=settings.mode, policies=policies, store=store,
                              counter=SlidingWindowCounter(), approvals=approvals)
        app[SERVICE] = service
        registry = await AgentRegistry.open(store)
        app[AGENTS] = registry
        app[AGENT_TOKENS] = registry
        stack.push_async_callback(approvals.close)
        await approvals.start()  # expires what went overdue while the daemon was down
        await service.record_reload(trigger="start")
        stack.push_async_callback(_stop, asyncio.create_task(
            _watch_policies(service, settings.policy_poll_interval)))
        yield


def create_app(settings: Settings) -> web.Application:
    """Build the aiohttp application; components start and stop in its cleanup contexts."""
    app = web.Application(middlewares=[error_middleware, auth_middleware],
                          client_max_size=MAX_BODY)
    app[SETTINGS] = settings
    app[STARTED_AT] = time.monotonic()
    app[ADMIN_TOKEN] = AdminToken(settings.token_path)
    app[CHECK_HOST] = not settings.allow_remote
    app[NONCES] = NonceLedger(proof.MAC_WINDOW, started=time.time())
    app[RELOAD_GATE] = ReloadGate()
    app[DECISION_LIMITER] = new_limiter()
    auth: dict[object, RouteAuth] = {}
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
        auth[route.handler] = route.auth
    app[ROUTE_AUTH] = auth
    app.cleanup_ctx.append(_components)
    app.on_shutdown.append(sse.end_streams)
    app.on_shutdown.append(release_waiters)
    return app

