"""`rampartd hook claude-code` against a real daemon: Claude Code's PreToolUse contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Daemon

pytestmark = pytest.mark.e2e


def run_hook(home: Path, port: int, event: Any, *args: str,
             token: str | None = None) -> tuple[int, dict[str, Any] | None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPARTD_")}
    env.update(RAMPARTD_HOME=str(home), RAMPARTD_PORT=str(port))
    if token is not None:
        env["RAMPARTD_TOKEN"] = token
    stdin = event if isinstance(event, str) else json.dumps(event)
    proc = subprocess.run([sys.executable, "-m", "rampartd", "hook", "claude-code", *args],
                          input=stdin, env=env, capture_output=True, text=True, timeout=60)
    out = proc.stdout.strip()
    return proc.returncode, json.loads(out) if out else None


def bash(command: str) -> dict[str, Any]:
    return {"session_id": "sess-1", "cwd": "/home/dev/app", "hook_event_name": "PreToolUse",
            "tool_name": "Bash", "tool_input": {"command": command}, "tool_use_id": "toolu_1"}


def decision(answer: dict[str, Any] | None) -> str | None:
    return None if answer is None else answer["hookSpecificOutput"]["permissionDecision"]


def test_allow_deny_ask_and_the_record(daemon: Daemon) -> None:
    code, answer = run_hook(daemon.home, daemon.port, bash("git status"))
    assert code == 0 and answer is None  # allowed: Claude Code's own rules still apply
    code, answer = run_hook(daemon.home, daemon.port, bash("bash -c 'rm -rf /usr'"))
    assert code == 0 and decision(answer) == "deny"
    assert answer is not None
    assert "Recursive deletion" in answer["hookSpecificOutput"]["permissionDecisionReason"]
    code, answer = run_hook(daemon.home, daemon.port, bash("sudo systemctl restart nginx"))
    assert code == 0 and decision(answer) == "ask"
    read = {"session_id": "sess-1", "tool_name": "Read",
            "tool_input": {"file_path": "/home/dev/.ssh/id_ed25519"}}
    assert decision(run_hook(daemon.home, daemon.port, read)[1]) == "deny"

    req = urllib.request.Request(f"{daemon.base_url}/v1/audit/events?kind=decision",
                                 headers={"Authorization": f"Bearer {daemon.token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        events = json.loads(resp.read())["events"]
    first = events[-1]
    assert (first["agent"], first["session"], first["tool"], first["tool_call_id"]) == \
        ("claude-code", "sess-1", "exec", "toolu_1")
    assert first["detail"]["cwd"] == "/home/dev/app"


def test_fails_closed(daemon: Daemon, tmp_path: Path) -> None:
    code, answer = run_hook(daemon.home, daemon.port, "{not json")
    assert code == 0 and decision(answer) == "deny"
    code, answer = run_hook(daemon.home, daemon.port, bash("ls"), token="wrong-token")
    assert decision(answer) == "deny"
    assert answer is not None and "wrong-token" not in json.dumps(answer)
    daemon.stop()
    code, answer = run_hook(daemon.home, daemon.port, bash("ls"))
    assert code == 0 and decision(answer) == "deny"
    assert answer is not None
    assert "could not decide" in answer["hookSpecificOutput"]["permissionDecisionReason"]


def test_protocol_errors_are_a_deny(tmp_path: Path) -> None:
    """Something that is not rampartd answering on the port must not let a call through."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def answer_garbage() -> None:
        for _ in range(2):
            conn, _ = server.accept()
            conn.recv(65536)
            conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
            conn.close()

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    home = tmp_path / "home"
    home.mkdir()
    (home / "token").write_text("a-token\n")
    try:
        code, answer = run_hook(home, port, bash("rm -rf ~"))
        assert code == 0 and decision(answer) == "deny"
    finally:
        server.close()


def test_a_token_with_whitespace_is_refused_without_being_printed(daemon: Daemon) -> None:
    _, answer = run_hook(daemon.home, daemon.port, bash("ls"), token="secret1\nsecret2")
    assert decision(answer) == "deny"
    assert "secret1" not in json.dumps(answer)
