"""`rampartd serve`: prepare the home, run the app until SIGTERM/SIGINT, shut down quickly."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import resource
import signal
import socket
import sys
from collections.abc import Callable, Collection

import uvloop
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from rampartd import __version__
from rampartd.audit.redact import redact_text
from rampartd.config import Settings
from rampartd.errors import ConfigError
from rampartd.home import AdminToken, ensure_home, ensure_token, seed_policies, tighten_home
from rampartd.instance import daemon_url, hold_home, publish_address
from rampartd.notify import sd_notify
from rampartd.web.app import admin_token_text, create_app
from rampartd.web.auth import is_loopback_host
from rampartd.web.protocol import ConnectionLimits, GuardedRunner

log = logging.getLogger("rampartd")
BACKLOG = 128  # pending connections queued while the app starts
# File descriptors beyond the connections: SQLite (db, WAL, shm per connection), policy files.
FILE_HEADROOM = 256
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
    """Create the home, the admin token, every key and the seeded policy directory; make the
    home 0700 and every file in it 0600.

    Keys exist before the first request, so no request (signed or not) ever creates one.
    """
    from rampartd.approvals.links import ensure_link_key
    from rampartd.audit.checkpoints import load_or_create_signing_key
    from rampartd.profiles import check_policy_dir, profile, profile_text

    ensure_home(settings.home)
    if ensure_token(settings.token_path):
        log.info("created admin token file %s", settings.token_path)
    try:
        load_or_create_signing_key(settings.home)
        ensure_link_key(settings.home)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot prepare the keys in {settings.home}: {exc}") from None
    try:
        chosen = profile(settings.profile)
        if seed_policies(settings.policy_dir, profile_text(chosen.name), chosen.file_name):
            log.info("installed the %s policy into %s", chosen.name, settings.policy_dir)
        check_policy_dir(settings.policy_dir, chosen.name)
    except OSError as exc:
        raise ConfigError(f"policy directory {settings.policy_dir} is not usable: "
                          f"{exc.strerror or exc}") from None
    try:
        tighten_home(settings.home)
    except OSError as exc:
        raise ConfigError(f"cannot make {settings.home} private: {exc.strerror or exc}") \
            from None


def bind_socket(settings: Settings) -> socket.socket:
    """Bind and listen on the configured address (ConfigError in one line if taken)."""
    try:
        infos = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        return socket.create_server(address[:2], family=family, backlog=BACKLOG)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {settings.host}:{settings.port}: "
                          f"{exc.strerror or exc}") from None


class RedactingFormatter(logging.Formatter):
    """Formats a log line, then redacts it like an audit record (tracebacks included), so no
    library's log line can carry a credential out of the daemon."""

    def __init__(self, fmt: str, known: Callable[[], Collection[str]] = tuple) -> None:
        super().__init__(fmt)
        self._known = known

    def format(self, record: logging.LogRecord) -> str:
        """The redacted line."""
        return redact_text(super().format(record), self._known())


def setup_logging(level: str, known: Callable[[], Collection[str]] = tuple) -> None:
    """Log to stderr, one redacted line per event; `known` gives literal secrets to hide."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                            known))
    logging.basicConfig(level=level.upper(), handlers=[handler])


def raise_open_file_limit(connections: int) -> None:
    """Let the process hold `connections` sockets besides its database and policy files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + FILE_HEADROOM
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        log.warning("the open-file limit (%d) is below max_connections + %d; raise "
                    "LimitNOFILE or lower max_connections", target, FILE_HEADROOM)


async def _serve(settings: Settings, sock: socket.socket) -> None:
    # The port actually bound (--port 0 picks one): the guard protects that one.
    settings = dataclasses.replace(settings, port=sock.getsockname()[1])
    app = create_app(settings)
    limits = ConnectionLimits(read_timeout=settings.request_read_timeout,
                              max_connections=settings.max_connections)
    runner = GuardedRunner(app, limits, access_log_class=AccessLogger,
                           shutdown_timeout=SHUTDOWN_TIMEOUT, handle_signals=False)
    await runner.setup()  # opens the audit log: the port is already ours
    # What start-up built lives as long as the daemon: keep it out of the collector's full
    # passes, whose cost grows with every object they scan and would stall the event loop.
    gc.freeze()
    try:
        site = web.SockSite(runner, sock)
        await site.start()
        url = daemon_url(settings.host, settings.port)
        publish_address(settings.home, url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("rampartd %s listening on %s (mode %s, admin token in %s, "
                 "policies in %s)", __version__, url, settings.mode,
                 settings.token_path, settings.policy_dir)
        sd_notify("READY=1\nSTATUS=listening")
        await stop.wait()
        log.info("shutting down")
        sd_notify("STOPPING=1")
    finally:
        await runner.cleanup()
    log.info("stopped")


def serve(settings: Settings) -> None:
    """Run the daemon in the foreground until a signal stops it.

    Order matters: the home's lock first (a second daemon changes nothing), then the port
    (so a daemon that cannot listen writes no record), then keys and files, then the app.
    """
    admin = AdminToken(settings.token_path)
    setup_logging(settings.log_level, admin_token_text(admin))
    check_host(settings)
    os.umask(0o077)  # everything the daemon creates in its home is private to its user
    with hold_home(settings.home):
        sock = bind_socket(settings)
        try:
            prepare_home(settings)
            raise_open_file_limit(settings.max_connections)
            # uvloop's event loop takes a good part of aiohttp's per-request overhead off each
            # call.
            uvloop.run(_serve(settings, sock))
        finally:
            sock.close()
