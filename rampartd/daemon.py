"""`rampartd serve`: prepare the home, run the app until SIGTERM/SIGINT, shut down quickly."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import uvloop
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from rampartd import __version__
from rampartd.config import Settings
from rampartd.errors import ConfigError
from rampartd.home import ensure_home, ensure_token, seed_policies
from rampartd.notify import sd_notify
from rampartd.web.app import create_app
from rampartd.web.auth import is_loopback_host

log = logging.getLogger("rampartd")
SHUTDOWN_TIMEOUT = 0.5  # seconds open requests get at shutdown; the unit's stop timeout is longer


class AccessLogger(AbstractAccessLogger):
    """Debug-level access lines: method, path (never the query string, which may carry
    ?token=), status and time. Every decision is in the audit log already, so at the default
    level the daemon does not pay for a second line per call."""

    @property
    def enabled(self) -> bool:
        """aiohttp skips the logger entirely unless debug logging is on."""
        return self.logger.isEnabledFor(logging.DEBUG)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        """Write one access line."""
        self.logger.debug("%s %s %s %.1fms", request.method, request.path, response.status,
                          time * 1000)


def check_host(settings: Settings) -> None:
    """Refuse to listen beyond loopback unless explicitly allowed."""
    if not settings.allow_remote and not is_loopback_host(settings.host):
        raise ConfigError(f"refusing to listen on non-loopback host {settings.host!r}; "
                          "pass --allow-remote if you really mean it")


def prepare_home(settings: Settings) -> None:
    """Create the home, the admin token and the seeded policy directory."""
    from rampartd.profiles import check_policy_dir, profile, profile_text

    ensure_home(settings.home)
    if ensure_token(settings.token_path):
        log.info("created admin token file %s", settings.token_path)
    try:
        chosen = profile(settings.profile)
        if seed_policies(settings.policy_dir, profile_text(chosen.name), chosen.file_name):
            log.info("installed the %s policy into %s", chosen.name, settings.policy_dir)
        check_policy_dir(settings.policy_dir, chosen.name)
    except OSError as exc:
        raise ConfigError(f"policy directory {settings.policy_dir} is not usable: "
                          f"{exc.strerror or exc}") from None


def setup_logging(level: str) -> None:
    """Log to stderr, one line per event."""
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


async def _serve(settings: Settings) -> None:
    app = create_app(settings)
    runner = web.AppRunner(app, access_log_class=AccessLogger, shutdown_timeout=SHUTDOWN_TIMEOUT,
                           handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(f"cannot listen on {settings.host}:{settings.port}: "
                              f"{exc.strerror or exc}") from None
        port = runner.addresses[0][1] if runner.addresses else settings.port
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("rampartd %s listening on http://%s:%s (mode %s, admin token in %s, "
                 "policies in %s)", __version__, settings.host, port, settings.mode,
                 settings.token_path, settings.policy_dir)
        sd_notify("READY=1\nSTATUS=listening")
        await stop.wait()
        log.info("shutting down")
        sd_notify("STOPPING=1")
    finally:
        await runner.cleanup()
    log.info("stopped")


def serve(settings: Settings) -> None:
    """Run the daemon in the foreground until a signal stops it."""
    setup_logging(settings.log_level)
    check_host(settings)
    prepare_home(settings)
    # uvloop's event loop takes a good part of aiohttp's per-request overhead off each call.
    uvloop.run(_serve(settings))
