"""The real `rampartd serve` process: start, probe with curl, stop, and fail cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Daemon, start_daemon
from tests.tooling import ensure_debian_package

pytestmark = pytest.mark.e2e


def curl(*args: str) -> tuple[int, str]:
    """Run curl; returns (HTTP status, body)."""
    exe = ensure_debian_package("curl", "curl")
    out = subprocess.run([exe, "-sS", "-w", "\n%{http_code}", *args], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    body, _, code = out.rpartition("\n")
    return int(code), body


def test_serve_creates_home_and_answers_curl(daemon: Daemon) -> None:
    home = daemon.home
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    token_file = home / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = daemon.token
    assert len(token) >= 40
    assert (home / "policies" / "standard.yaml").exists()

    code, body = curl(f"{daemon.base_url}/healthz")
    assert code == 200 and json.loads(body)["status"] == "ok"
    code, body = curl(f"{daemon.base_url}/v1/status")
    assert code == 401 and json.loads(body)["code"] == "unauthorized"
    code, body = curl("-H", f"Authorization: Bearer {token}", f"{daemon.base_url}/v1/status")
    assert code == 200 and json.loads(body)["mode"] == "enforce"

    assert daemon.stop(signal.SIGTERM) == 0  # a clean exit (bench/shutdown.py times it)
    log = daemon.output()
    assert "listening on http://127.0.0.1:" in log and str(token_file) in log
    assert token not in log
    assert "Traceback" not in log


def test_token_reused_on_restart_and_rotation_is_live(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = start_daemon(home)
    token = first.token
    assert first.stop(signal.SIGINT) == 0
    second = start_daemon(home)
    try:
        assert second.token == token
        env = {**os.environ, "RAMPARTD_HOME": str(home)}
        subprocess.run([sys.executable, "-m", "rampartd", "token", "rotate"], env=env,
                       check=True, capture_output=True, timeout=30)
        new = second.token
        assert new != token
        code, _ = curl("-H", f"Authorization: Bearer {token}", f"{second.base_url}/v1/status")
        assert code == 401
        code, _ = curl("-H", f"Authorization: Bearer {new}", f"{second.base_url}/v1/status")
        assert code == 200
        shown = subprocess.run([sys.executable, "-m", "rampartd", "token", "show"], env=env,
                               check=True, capture_output=True, text=True, timeout=30).stdout
        assert shown.strip() == new
        path = subprocess.run([sys.executable, "-m", "rampartd", "token", "path"], env=env,
                              check=True, capture_output=True, text=True, timeout=30).stdout
        assert path.strip() == str(home / "token")
    finally:
        second.stop()


def _serve_fails(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPARTD_")}
    full_env.setdefault("RAMPARTD_HOME", str(tmp_path / "home"))
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "rampartd", "serve", *args], env=full_env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "Error" in line or "error" in line]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_port_in_use_is_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = _serve_fails(tmp_path, "--port", str(port))
    assert f"127.0.0.1:{port}" in line


def test_non_loopback_host_refused(tmp_path: Path) -> None:
    line = _serve_fails(tmp_path, "--host", "0.0.0.0", "--port", "0")
    assert "--allow-remote" in line


def test_bad_setting_is_one_line_error(tmp_path: Path) -> None:
    line = _serve_fails(tmp_path, env={"RAMPARTD_PORT": "ninety"})
    assert "RAMPARTD_PORT" in line


def test_unwritable_home_is_one_line_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        target = "/proc/rampartd-home"  # not creatable even for root
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = str(locked / "home")
    line = _serve_fails(tmp_path, env={"RAMPARTD_HOME": target})
    assert "home directory" in line


def test_broken_policy_at_start_is_one_line_error(tmp_path: Path) -> None:
    policies = tmp_path / "home" / "policies"
    policies.mkdir(parents=True)
    (policies / "mine.yaml").write_text('version: "1"\npolicies:\n  - name: x\n    rulez: []\n')
    line = _serve_fails(tmp_path)
    assert "mine.yaml:4" in line


def test_corrupt_database_is_one_line_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "rampartd.db").write_bytes(b"this is not a database" * 100)
    line = _serve_fails(tmp_path)
    assert "audit" in line or "database" in line


def test_an_existing_token_file_is_kept_and_made_private(tmp_path: Path) -> None:
    from rampartd.home import ensure_token

    path = tmp_path / "token"
    path.write_text("keep-me\n")
    path.chmod(0o644)
    assert ensure_token(path) is False
    assert path.read_text() == "keep-me\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
