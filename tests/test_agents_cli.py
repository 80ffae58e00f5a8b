"""`rampartd agents …` against a real `rampartd serve` process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result

from rampartd.cli import main
from tests.conftest import Daemon, invoke

pytestmark = pytest.mark.e2e


def run(d: Daemon, *args: str, input: str | None = None) -> Result:
    return invoke(d, "agents", *args, input=input)


def tool_call(d: Daemon, token: str, command: str = "ls") -> requests.Response:
    return requests.post(f"{d.base_url}/v1/tool/exec", timeout=10,
                         headers={"Authorization": f"Bearer {token}"},
                         json={"agent": "x", "session": "s", "params": {"command": command}})


def created(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    agent: dict[str, Any] = json.loads(result.stdout)
    return agent


def test_create_prints_the_token_once(shared: Daemon) -> None:
    result = run(shared, "create", "cli-builder", "--description", "from the CLI")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("created agent 'cli-builder' (")
    token = lines[1].removeprefix("token: ")
    assert token.startswith("rpd_agent_")
    assert "shown only once" in result.stderr
    assert tool_call(shared, token).status_code == 200

    shown = run(shared, "show", "cli-builder")
    assert shown.exit_code == 0, shown.output
    agent = json.loads(shown.stdout)
    assert agent["description"] == "from the CLI" and "token" not in agent
    assert token not in shown.output
    listed = run(shared, "list")
    assert listed.exit_code == 0
    assert f"{agent['id']}  active     cli-builder" in listed.stdout.splitlines()
    assert token not in listed.output

    again = run(shared, "create", "cli-builder")
    assert again.exit_code != 0 and "already exists" in again.output
    assert "Traceback" not in again.output


def test_lifecycle(shared: Daemon) -> None:
    agent = created(run(shared, "create", "cli-lifecycle", "--json"))
    token, agent_id = agent["token"], agent["id"]

    result = run(shared, "suspend", agent_id)
    assert result.exit_code == 0 and "is now suspended" in result.stdout
    denied = tool_call(shared, token)
    assert denied.status_code == 403 and "suspended" in denied.json()["message"]
    assert run(shared, "resume", "cli-lifecycle").exit_code == 0
    assert tool_call(shared, token).status_code == 200

    rotated = created(run(shared, "token-rotate", agent_id, "--json"))
    assert rotated["id"] == agent_id and rotated["token"] != token
    assert tool_call(shared, token).status_code == 401
    token = rotated["token"]
    assert tool_call(shared, token).status_code == 200

    refused = run(shared, "revoke", agent_id, input="n\n")
    assert refused.exit_code != 0 and tool_call(shared, token).status_code == 200
    assert run(shared, "revoke", agent_id, "--yes").exit_code == 0
    assert tool_call(shared, token).status_code == 403
    back = run(shared, "resume", agent_id)
    assert back.exit_code == 1 and "revoked" in back.output and "Traceback" not in back.output

    assert run(shared, "delete", agent_id, input="y\n").exit_code == 0
    assert tool_call(shared, token).status_code == 401
    gone = run(shared, "show", agent_id)
    assert gone.exit_code == 1 and "no agent" in gone.output
    by_name = run(shared, "show", "cli-lifecycle")
    assert by_name.exit_code == 1 and "no agent named" in by_name.output

    verify = requests.get(f"{shared.base_url}/v1/audit/verify", timeout=10,
                          headers={"Authorization": f"Bearer {shared.token}"}).json()
    assert verify["valid"] is True


def test_real_process_and_daemon_down(shared: Daemon, tmp_path: Path) -> None:
    # The installed entry point (a real process) talks to the daemon too.
    env = {"RAMPARTD_HOME": str(shared.home), "RAMPARTD_PORT": str(shared.port),
           "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "rampartd", "agents", "list", "--json"],
                          capture_output=True, text=True, env=env, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "pagination" in json.loads(proc.stdout)

    home = tmp_path / "nohome"
    home.mkdir()
    (home / "token").write_text("t\n")
    result = CliRunner().invoke(main, ["agents", "list"],
                                env={"RAMPARTD_HOME": str(home), "RAMPARTD_PORT": "1"})
    assert result.exit_code == 1 and "cannot reach rampartd" in result.output
    assert "Traceback" not in result.output
