"""sd_notify against a real Unix datagram socket, in process and from a real daemon."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

from rampartd.notify import sd_notify
from tests.conftest import start_daemon


def _bind(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(15)
    return sock


def test_sd_notify_sends_one_datagram(tmp_path: Path) -> None:
    sock = _bind(tmp_path / "notify.sock")
    try:
        assert sd_notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "notify.sock")})
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()
    assert not sd_notify("READY=1", {})


def test_daemon_sends_ready_then_stopping(tmp_path: Path) -> None:
    path = tmp_path / "n.sock"
    sock = _bind(path)
    try:
        d = start_daemon(tmp_path / "home", env={"NOTIFY_SOCKET": str(path)})
        ready = sock.recv(4096).decode()
        assert "READY=1" in ready.splitlines()
        assert d.stop(signal.SIGTERM) == 0
        assert "STOPPING=1" in sock.recv(4096).decode().splitlines()
    finally:
        sock.close()
