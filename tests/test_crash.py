"""Durability: a real daemon killed with SIGKILL under load loses no answered call."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import start_daemon

pytestmark = pytest.mark.e2e


def _post(url: str, token: str, command: str) -> str | None:
    body = json.dumps({"agent": "load", "session": "crash", "params": {"command": command}})
    req = urllib.request.Request(url, data=body.encode(), method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return str(json.loads(resp.read())["audit_id"])
    except urllib.error.HTTPError as exc:
        if exc.code == 403:
            return str(json.loads(exc.read())["audit_id"])
        return None
    except OSError:
        return None  # the daemon died before answering: this call was never allowed


def test_sigkill_under_load_keeps_every_answered_call(tmp_path: Path) -> None:
    home = tmp_path / "home"
    daemon = start_daemon(home)
    url = f"{daemon.base_url}/v1/tool/exec"
    token = daemon.token
    answered: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()
    stop = threading.Event()

    def worker(n: int) -> None:
        i = 0
        while not stop.is_set():
            audit_id = _post(url, token, f"echo {n}-{i}" if i % 5 else "rm -rf /")
            i += 1
            if audit_id is None:
                return
            with lock:
                answered.append(audit_id)
                if len(answered) >= 300:
                    enough.set()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    assert enough.wait(timeout=120), "the load never reached 300 answered calls"
    daemon.proc.send_signal(signal.SIGKILL)  # mid-load, no shutdown path at all
    daemon.proc.wait(timeout=10)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    with lock:
        ids = list(answered)

    restarted = start_daemon(home)
    try:
        verify = subprocess.run([sys.executable, "-m", "rampartd", "audit", "verify", "--db",
                                 str(home / "rampartd.db")], capture_output=True, text=True,
                                timeout=120)
        report = json.loads(verify.stdout)
        assert verify.returncode == 0 and report["valid"], verify.stdout + verify.stderr
        with sqlite3.connect(f"file:{home / 'rampartd.db'}?mode=ro", uri=True) as conn:
            stored = {row[0] for row in conn.execute("SELECT id FROM audit_log")}
        missing = [i for i in ids if i not in stored]
        assert not missing, f"{len(missing)} answered calls are not in the log"
    finally:
        restarted.stop()
