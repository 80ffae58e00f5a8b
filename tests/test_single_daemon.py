"""One daemon per home, its published address, private files and crash evidence, through the
real `rampartd serve` process."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import Daemon, start_daemon
from tests.test_stream_e2e import free_port

pytestmark = pytest.mark.e2e


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI command that knows only the home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPARTD_")}
    env["RAMPARTD_HOME"] = str(home)
    env.update(extra)
    return env


def rampartd(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run one `python -m rampartd` command (no check)."""
    return subprocess.run([sys.executable, "-m", "rampartd", *args], env=cli_env(home, **extra),
                          capture_output=True, text=True, timeout=60)


def call(daemon: Daemon, command: str) -> requests.Response:
    """One recorded exec call."""
    return requests.post(f"{daemon.base_url}/v1/tool/exec", timeout=10,
                         headers={"Authorization": f"Bearer {daemon.token}"},
                         json={"agent": "a", "session": "s", "params": {"command": command}})


def status(daemon: Daemon) -> dict[str, Any]:
    """GET /v1/status."""
    resp = requests.get(f"{daemon.base_url}/v1/status", timeout=10,
                        headers={"Authorization": f"Bearer {daemon.token}"})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def verify(home: Path) -> dict[str, Any]:
    """`rampartd audit verify` on the home, with the daemon up or down."""
    proc = rampartd(home, "audit", "verify")
    report: dict[str, Any] = json.loads(proc.stdout)
    assert (proc.returncode == 0) == report["valid"], proc.stderr
    return report


def wait_signed(home: Path, seq: int) -> None:
    """Wait until checkpoints.jsonl covers seq (the writer signs within checkpoint_seconds)."""
    path = home / "checkpoints.jsonl"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        if text and json.loads(text.splitlines()[-1])["seq"] >= seq:
            return
        time.sleep(0.02)
    raise AssertionError(f"seq {seq} was never signed")


@pytest.mark.parametrize("same_port", [True, False], ids=["same-port", "other-port"])
def test_a_second_serve_on_the_home_exits_and_changes_nothing(tmp_path: Path,
                                                              same_port: bool) -> None:
    home = tmp_path / "home"
    first = start_daemon(home)
    try:
        assert call(first, "git status").status_code == 200
        seq = status(first)["audit_head"]["seq"]
        wait_signed(home, seq)
        checkpoints = (home / "checkpoints.jsonl").read_bytes()
        published = (home / "daemon.json").read_bytes()
        port = first.port if same_port else free_port()
        second = rampartd(home, "serve", "--port", str(port))
        assert second.returncode != 0
        assert "Traceback" not in second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert f"pid {first.proc.pid}" in lines[0]
        assert f"http://127.0.0.1:{first.port}" in lines[0]
        assert "already running" in lines[0]
        # Nothing of the second one reached the first one's state.
        assert (home / "checkpoints.jsonl").read_bytes() == checkpoints
        assert (home / "daemon.json").read_bytes() == published
        assert status(first)["audit_head"]["seq"] == seq
        if not same_port:
            with pytest.raises(requests.ConnectionError):
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        # The first one keeps answering and keeps a valid chain.
        assert call(first, "git log").status_code == 200
        assert call(first, "rm -rf /").status_code == 403
        assert status(first)["audit_head"]["seq"] == seq + 2
        report = verify(home)
        assert report["valid"] and report["records_checked"] >= seq + 2
        assert "Traceback" not in first.output()
    finally:
        assert first.stop() == 0
    assert not (home / "daemon.json").exists()  # withdrawn at shutdown


def test_clients_find_the_daemon_started_on_another_port(tmp_path: Path) -> None:
    home = tmp_path / "home"
    daemon = start_daemon(home, port=0)  # a port no client could guess from the settings
    try:
        published = json.loads((home / "daemon.json").read_text())
        assert published == {"pid": daemon.proc.pid, "url": daemon.base_url}
        listed = rampartd(home, "approvals", "list")
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.strip() == "no pending approvals"
        # --url wins over the published address: a wrong one fails in one line.
        wrong = rampartd(home, "approvals", "list", "--url", f"http://127.0.0.1:{free_port()}")
        assert wrong.returncode == 1 and "cannot reach rampartd" in wrong.stderr
        assert len(wrong.stderr.strip().splitlines()) == 1
        right = rampartd(home, "agents", "list", "--url", daemon.base_url,
                         RAMPARTD_PORT="1")
        assert right.returncode == 0, right.stderr
        bad = rampartd(home, "approvals", "list", "--url", "ftp://x/y")
        assert bad.returncode == 2 and "--url" in bad.stderr
    finally:
        daemon.stop()


def test_a_stale_address_file_is_ignored(tmp_path: Path) -> None:
    home = tmp_path / "home"
    daemon = start_daemon(home, port=0)
    daemon.stop(signal.SIGKILL)
    assert (home / "daemon.json").exists()  # a killed daemon cannot clean up
    port = free_port()
    listed = rampartd(home, "approvals", "list", RAMPARTD_PORT=str(port))
    assert listed.returncode == 1
    assert f"127.0.0.1:{port}" in listed.stderr  # the settings, not the dead daemon's URL
    again = start_daemon(home, port=0)  # the lock died with the process
    try:
        assert rampartd(home, "approvals", "list").returncode == 0
    finally:
        again.stop()


def test_every_file_in_the_home_is_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    (home / "config.yaml").write_text("log_level: info\n")
    (home / "config.yaml").chmod(0o644)
    daemon = start_daemon(home)
    try:
        assert call(daemon, "git status").status_code == 200
        wait_signed(home, status(daemon)["audit_head"]["seq"])
        names = {p.name for p in home.iterdir()}
        assert {"token", "rampartd.db", "rampartd.db-wal", "rampartd.db-shm", "signing.key",
                "signing.pub", "approval-links.key", "checkpoints.jsonl", "daemon.json",
                "daemon.lock", "config.yaml", "policies"} <= names
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        for path in home.rglob("*"):
            want = 0o700 if path.is_dir() else 0o600
            assert stat.S_IMODE(path.stat().st_mode) == want, path
    finally:
        daemon.stop()
    (home / "rampartd.db").chmod(0o644)
    (home / "policies" / "standard.yaml").chmod(0o664)
    restarted = start_daemon(home)  # re-tightened at start
    try:
        assert stat.S_IMODE((home / "rampartd.db").stat().st_mode) == 0o600
        assert stat.S_IMODE((home / "policies" / "standard.yaml").stat().st_mode) == 0o600
    finally:
        restarted.stop()


def test_rows_deleted_after_a_kill_are_reported(tmp_path: Path) -> None:
    home = tmp_path / "home"
    daemon = start_daemon(home)
    for i in range(5):
        assert call(daemon, f"ls dir-{i}").status_code == 200
    seq = status(daemon)["audit_head"]["seq"]
    wait_signed(home, seq)  # signed within checkpoint_seconds of the last commit, unprompted
    daemon.stop(signal.SIGKILL)
    assert verify(home)["valid"]
    with sqlite3.connect(home / "rampartd.db") as conn:
        conn.execute("DELETE FROM audit_log WHERE seq > ?", (seq - 2,))
    conn.close()
    report = verify(home)
    assert not report["valid"] and report["reason"] == "behind_checkpoint"
    (home / "checkpoints.jsonl").write_bytes(b"")  # and hide the evidence
    report = verify(home)
    assert not report["valid"] and report["reason"] == "checkpoints_missing"
    (home / "checkpoints.jsonl").unlink()
    report = verify(home)
    assert not report["valid"] and report["reason"] == "checkpoints_missing"
