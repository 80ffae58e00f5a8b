"""`rampartd audit export|stats|verify` against a real daemon and its database file."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import urllib.request

import pytest

from tests.conftest import Daemon

pytestmark = pytest.mark.e2e


def cli(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPARTD_")}
    env.update(RAMPARTD_HOME=str(daemon.home), RAMPARTD_PORT=str(daemon.port))
    return subprocess.run([sys.executable, "-m", "rampartd", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def evaluate(daemon: Daemon, command: str, agent: str = "claude") -> int:
    body = json.dumps({"agent": agent, "session": "s", "params": {"command": command}}).encode()
    req = urllib.request.Request(f"{daemon.base_url}/v1/tool/exec", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {daemon.token}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_export_stats_verify(daemon: Daemon) -> None:
    assert evaluate(daemon, "git status") == 200
    assert evaluate(daemon, "rm -rf /") == 403
    assert evaluate(daemon, "ls", agent="other") == 200

    out = cli(daemon, "audit", "export", "--kind", "decision")
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["request"]["command"] for r in records] == ["git status", "rm -rf /", "ls"]

    out = cli(daemon, "audit", "export", "--agent", "other")
    assert [json.loads(line)["agent"] for line in out.stdout.splitlines()] == ["other"]

    out = cli(daemon, "audit", "stats")
    assert out.returncode == 0, out.stderr
    assert "action: allow=2, deny=1" in out.stdout
    assert "agent: claude=2, other=1" in out.stdout

    out = cli(daemon, "audit", "verify")
    assert out.returncode == 0 and json.loads(out.stdout)["valid"] is True

    # An edit made behind the daemon's back is reported with exit code 1.
    with sqlite3.connect(daemon.home / "rampartd.db") as conn:
        conn.execute("UPDATE audit_log SET action = 'allow' WHERE action = 'deny'")
    out = cli(daemon, "audit", "verify")
    report = json.loads(out.stdout)
    assert out.returncode == 1 and report["reason"] == "column_mismatch"


def test_cli_errors_are_one_line(daemon: Daemon) -> None:
    out = cli(daemon, "audit", "export", "--since", "not-a-time")
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and "since" in out.stderr
    assert "Traceback" not in out.stderr
    daemon.stop()
    out = cli(daemon, "audit", "stats")
    assert out.returncode == 1 and "cannot reach rampartd" in out.stderr
    assert "Traceback" not in out.stderr
