"""Typed keys for the state kept on the aiohttp application."""

from __future__ import annotations

from aiohttp import web

from rampartd.calls import ToolService
from rampartd.config import Settings
from rampartd.stream.broadcaster import Broadcaster

SETTINGS = web.AppKey("settings", Settings)
SERVICE = web.AppKey("service", ToolService)
STARTED_AT = web.AppKey("started_at", float)  # time.monotonic() at start, for uptime
BROADCASTER = web.AppKey("broadcaster", Broadcaster)  # the one event stream fan-out
