"""Helpers for running the real hook executable against a daemon (or something pretending)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "hosts"
HOSTS = ("claude-code", "codex", "gemini-cli", "cursor", "cline")
ASKING_HOSTS = ("claude-code", "cursor")  # hosts whose hook can hand an ask to the person


def hook_argv() -> list[str]:
    """The installed `rampartd-hook` beside this Python (what setup writes), else `-m`."""
    script = Path(sys.executable).parent / "rampartd-hook"
    return [str(script)] if script.exists() else [sys.executable, "-m", "rampartd.hooks"]


def payload(host: str, name: str) -> dict[str, Any]:
    """A recorded payload shape for a host (tests/fixtures/hosts/HOST.json)."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{host}.json").read_text())[name]
    return data


def hook_env(home: Path, port: int, **extra: str) -> dict[str, str]:
    """The environment a host gives the hook: no RAMPARTD_* of the test runner's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPARTD_")}
    env.update(RAMPARTD_HOME=str(home), RAMPARTD_PORT=str(port), **extra)
    return env


def run_hook(host: str, event: Any, home: Path, port: int, *args: str,
             **env: str) -> tuple[int, str, str]:
    """Run the real hook for `host` on this event (a payload, or raw text); (code, out, err)."""
    stdin = event if isinstance(event, str) else json.dumps(event)
    proc = subprocess.run([*hook_argv(), host, *args], input=stdin, capture_output=True,
                          text=True, timeout=60, env=hook_env(home, port, **env))
    return proc.returncode, proc.stdout, proc.stderr


def verdict(host: str, code: int, stdout: str) -> str:
    """What the host does after this answer: allow, ask or deny (each host's contract)."""
    if code == 2 and host in ("codex", "gemini-cli"):
        return "deny"
    assert code == 0, (code, stdout)
    answer = json.loads(stdout) if stdout.strip() else {}
    if host in ("claude-code", "codex"):
        out = answer.get("hookSpecificOutput")
        return "allow" if out is None else str(out["permissionDecision"])
    if host == "cursor":
        return str(answer.get("permission", "allow"))
    if host == "cline":
        return "deny" if answer["cancel"] else "allow"
    return "deny" if answer.get("decision") in ("deny", "block") else "allow"


def reason(host: str, stdout: str, stderr: str) -> str:
    """The reason text the host shows for a deny or an ask."""
    if host in ("codex", "gemini-cli"):
        return stderr
    answer = json.loads(stdout)
    if host == "claude-code":
        return str(answer["hookSpecificOutput"]["permissionDecisionReason"])
    if host == "cursor":
        return str(answer["agent_message"])
    return str(answer["errorMessage"])


def audit_events(base_url: str, token: str, **filters: str) -> list[dict[str, Any]]:
    """Audit records matching the filters, newest first."""
    query = urllib.parse.urlencode(filters)
    req = urllib.request.Request(f"{base_url}/v1/audit/events?{query}",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        events: list[dict[str, Any]] = json.loads(resp.read())["events"]
    return events


def api_get(base_url: str, token: str, path: str) -> Any:
    """GET a JSON route with the admin token."""
    req = urllib.request.Request(base_url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def create_agent(base_url: str, token: str, name: str) -> str:
    """Register an agent with the admin token; returns the agent's own token."""
    req = urllib.request.Request(f"{base_url}/v1/agents", method="POST",
                                 data=json.dumps({"name": name}).encode(),
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        agent_token: str = json.loads(resp.read())["token"]
    return agent_token
