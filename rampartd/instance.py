"""One daemon per home: the exclusive lock `serve` holds, and the address file it publishes.

`serve` locks `daemon.lock` (fcntl.flock) before it opens the database or writes anything, so
a second `serve` on the same home stops without touching the first one's state. Once it
listens it writes `daemon.json` ({pid, url}) so the CLI and the hook reach it on whatever
port it got; a file left behind by a killed daemon is ignored because its pid is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from rampartd.errors import ConfigError
from rampartd.home import write_private

LOCK_FILE = "daemon.lock"
ADDRESS_FILE = "daemon.json"


def daemon_url(host: str, port: int) -> str:
    """The URL a client uses for a daemon listening on host:port (wildcards → loopback)."""
    if host in ("0.0.0.0", "::", ""):  # a wildcard bind is reached on loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def check_url(url: str, source: str) -> str:
    """An http(s)://host:port base URL without path, query or credentials (trailing / dropped)."""
    text = url.strip().rstrip("/")
    try:
        parts = urllib.parse.urlsplit(text)
        ok = (parts.scheme in ("http", "https") and bool(parts.hostname)
              and (parts.port is None or parts.port > 0)  # .port raises on a malformed port
              and not (parts.path or parts.query or parts.fragment)
              and parts.username is None)
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(f"{source} must be a base URL such as http://127.0.0.1:9090")
    return text


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read_address(home: Path) -> tuple[int, str] | None:
    try:
        data = json.loads((home / ADDRESS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    pid, url = data.get("pid"), data.get("url")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0 or not isinstance(url, str):
        return None
    return pid, url


def running_daemon(home: Path) -> tuple[int, str] | None:
    """(pid, URL) the home's running daemon published, or None (no file, or its pid is gone)."""
    found = _read_address(home)
    if found is None or not _pid_alive(found[0]):
        return None
    try:
        return found[0], check_url(found[1], str(home / ADDRESS_FILE))
    except ConfigError:
        return None


def running_url(home: Path) -> str | None:
    """The URL the home's running daemon published, or None."""
    found = running_daemon(home)
    return None if found is None else found[1]


def _holder(home: Path, fd: int) -> str:
    """Who holds the lock, in words: "pid N, URL" as far as the home tells."""
    try:
        pid_text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        pid_text = ""
    found = _read_address(home)
    if found is not None and (not pid_text or str(found[0]) == pid_text):
        return f"pid {found[0]}, {found[1]}"
    if pid_text.isdigit():
        return f"pid {pid_text}, address not published yet"
    return "pid unknown"


@contextlib.contextmanager
def hold_home(home: Path) -> Iterator[None]:
    """Hold the home's exclusive lock for the block; ConfigError if another daemon has it."""
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ConfigError(f"home directory {home} is not usable: {exc.strerror or exc}") \
            from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"rampartd is already running on {home} "
                              f"({_holder(home, fd)})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            withdraw_address(home)
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def publish_address(home: Path, url: str) -> None:
    """Write daemon.json ({pid, url}, 0600) for the CLI and the hook."""
    body = json.dumps({"pid": os.getpid(), "url": url}) + "\n"
    write_private(home / ADDRESS_FILE, body.encode())


def withdraw_address(home: Path) -> None:
    """Remove daemon.json if this process wrote it."""
    found = _read_address(home)
    if found is not None and found[0] == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            (home / ADDRESS_FILE).unlink()
