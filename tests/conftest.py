"""Shared fixtures: a prepared home, the in-process app, and a real `rampartd serve` process
(per test or per module), with the in-process CLI pointed at it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from click.testing import CliRunner, Result

from rampartd.cli import main
from rampartd.config import Settings, load_settings
from rampartd.daemon import prepare_home
from rampartd.home import read_token
from rampartd.web.app import create_app

REPO = Path(__file__).resolve().parent.parent


def make_settings(home: Path, **flags: Any) -> Settings:
    """Settings for a test home, ignoring the developer's own environment."""
    return load_settings({"home": str(home), "port": 0, **flags}, env={})


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty, not yet created rampartd home."""
    return tmp_path / "home"


@pytest.fixture
def settings(home: Path) -> Settings:
    """Settings for a prepared home (token and standard policy in place)."""
    s = make_settings(home)
    prepare_home(s)
    return s


@pytest.fixture
def admin_token(settings: Settings) -> str:
    """The admin token of the test home."""
    return read_token(settings.token_path)


@pytest.fixture
def auth(admin_token: str) -> dict[str, str]:
    """Admin Authorization header."""
    return {"Authorization": f"Bearer {admin_token}"}


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> AsyncIterator[TestClient[Any, Any]]:
    """The real app, in process, on a test server."""
    yield await aiohttp_client(create_app(settings))


LISTEN_RE = re.compile(r"listening on http://([^:\s]+):(\d+)")


@dataclass
class Daemon:
    """A real `rampartd serve` subprocess."""

    proc: subprocess.Popen[str]
    home: Path
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        """The admin token (re-read, so rotation is seen)."""
        return read_token(self.home / "token")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Signal the process and wait for it; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        """Everything the daemon logged so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")


def start_daemon(home: Path, *args: str, port: int = 0, env: dict[str, str] | None = None,
                 timeout: float = 20.0) -> Daemon:
    """Start `python -m rampartd serve` and wait until it logs where it listens."""
    home.mkdir(parents=True, exist_ok=True)
    log = home.parent / f"{home.name}-daemon-{time.monotonic_ns()}.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPARTD_")}
    full_env.update(env or {})
    full_env["RAMPARTD_HOME"] = str(home)
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rampartd", "serve", "--port", str(port), *args],
            stdout=fh, stderr=subprocess.STDOUT, env=full_env, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        match = LISTEN_RE.search(text)
        if match:
            return Daemon(proc, home, int(match.group(2)), log)
        if proc.poll() is not None:
            raise AssertionError(f"rampartd exited with {proc.returncode}:\n{text}")
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"rampartd did not start:\n{log.read_text()}")


@contextmanager
def running_daemon(home: Path, *args: str, **options: Any) -> Iterator[Daemon]:
    """A real daemon (start_daemon's arguments) for the block, stopped afterwards if still up."""
    d = start_daemon(home, *args, **options)
    try:
        yield d
    finally:
        if d.proc.poll() is None:
            d.stop()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A real daemon on a free port, stopped with SIGTERM afterwards."""
    with running_daemon(tmp_path / "daemon-home") as d:
        yield d


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One real daemon for a whole test module; its tests keep apart by session or name."""
    with running_daemon(tmp_path_factory.mktemp("shared") / "home") as d:
        yield d


def cli_env(d: Daemon) -> dict[str, str]:
    """The environment that points the CLI at this daemon."""
    return {"RAMPARTD_HOME": str(d.home), "RAMPARTD_PORT": str(d.port)}


def invoke(d: Daemon, *args: str, input: str | None = None) -> Result:
    """Run `rampartd ARGS` in process against this daemon."""
    return CliRunner().invoke(main, list(args), env=cli_env(d), input=input)
