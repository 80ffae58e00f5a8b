"""Effects through the real app: host tool names, the tool_names setting, bounded cost."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from rampartd.daemon import prepare_home
from rampartd.home import read_token
from rampartd.web.app import create_app
from tests.conftest import make_settings, start_daemon


def body(params: dict[str, Any]) -> dict[str, Any]:
    return {"agent": "a1", "session": "s1", "params": params, "cwd": "/srv/project"}


async def test_host_tool_names_are_evaluated_under_their_class(client: Any,
                                                              auth: dict[str, str]) -> None:
    cases = [
        ("Bash", {"command": "cat ~/.ssh/id_rsa"}, 403),
        ("run_shell_command", {"command": "python3 -c 1 > ~/.aws/credentials"}, 403),
        ("mcp__box__exec", {"command": "rm -rf ~"}, 403),
        ("Grep", {"pattern": "BEGIN", "path": "~/.ssh"}, 403),
        ("Glob", {"pattern": "id_*", "path": "~/.ssh"}, 403),
        ("NotebookEdit", {"notebook_path": "~/.ssh/id_ed25519", "new_source": "x"}, 403),
        ("Read", {"file_path": "README.md", "path": "/etc/shadow"}, 403),
        ("WebFetch", {"url": "https://ｗｅｂｈｏｏｋ.site/x"}, 403),
        ("Bash", {"command": "git -c core.pager='rm -rf ~' log"}, 403),
        ("Bash", {"command": "ln -s ~/.ssh k && cat k/id_rsa"}, 403),
        ("Bash", {"command": "npx rimraf ~"}, 403),
        ("Bash", {"command": "find src -name '*.py' | xargs grep -n TODO"}, 200),
        ("Bash", {"command": "git status && npm test"}, 200),
        ("Grep", {"pattern": "TODO", "path": "src"}, 200),
        # MCP calls as the hooks send them, delete tools, text typed into a running shell
        ("mcp", {"server": "fs", "tool": "read_file", "arguments": {"path": "~/.ssh/id_rsa"}},
         403),
        ("mcp", {"server": "sh", "tool": "run", "arguments": {"command": "rm -rf ~"}}, 403),
        ("mcp", {"server": "fs", "tool": "read_file", "arguments": {"path": "src/a.py"}}, 200),
        ("delete_file", {"target_file": "~/.ssh"}, 403),
        ("write_stdin", {"session_id": 1, "chars": "cat ~/.aws/credentials\n"}, 403),
        ("exec_command", {"cmd": "git status"}, 200),
    ]
    for tool, params, status in cases:
        resp = await client.post(f"/v1/tool/{tool}", json=body(params), headers=auth)
        assert resp.status == status, (tool, params, await resp.text())
    # the audit record keeps the name the host used
    resp = await client.get("/v1/audit/events?tool=Grep&limit=5", headers=auth)
    assert resp.status == 200


async def test_tool_names_setting_extends_the_table(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", tool_names="shellz=exec,peek=read")
    prepare_home(settings)
    client = await aiohttp_client(create_app(settings))
    auth = {"Authorization": f"Bearer {read_token(settings.token_path)}"}
    resp = await client.post("/v1/preflight/shellz", json=body({"command": "rm -rf ~"}),
                             headers=auth)
    assert (await resp.json())["decision"] == "deny"
    resp = await client.post("/v1/preflight/peek", json=body({"path": "~/.netrc"}), headers=auth)
    assert (await resp.json())["decision"] == "deny"


def crafted(n: int) -> str:
    """A 64 KiB command built to be expensive: thousands of glob arguments."""
    return ("cat " + " ".join(f"~/.s*/[a-z]{n}{i}*" for i in range(6000)))[:64 * 1024 - 16]


async def test_crafted_commands_do_not_stall_the_event_loop(client: Any,
                                                            auth: dict[str, str]) -> None:
    async def crafted_call(n: int) -> dict[str, Any]:
        resp = await client.post("/v1/preflight/exec", json=body({"command": crafted(n)}),
                                 headers=auth)
        assert resp.status == 200
        result: dict[str, Any] = await resp.json()
        return result

    tasks = [asyncio.create_task(crafted_call(n)) for n in range(10)]
    await asyncio.sleep(0)  # let them be sent
    health = await client.get("/healthz")
    assert health.status == 200
    # /healthz was answered while crafted commands were still being evaluated
    assert not all(t.done() for t in tasks)
    answers = await asyncio.gather(*tasks)
    # each finished within its budget and none was allowed: they touch credential paths
    assert all(a["decision"] in ("deny", "ask") for a in answers)


async def test_too_complex_is_ask(client: Any, auth: dict[str, str]) -> None:
    command = "cat " + "[a-z]" * 13000
    resp = await client.post("/v1/preflight/exec", json=body({"command": command}),
                             headers=auth)
    answer = await resp.json()
    assert answer["decision"] in ("ask", "deny")
    evals = "eval " * 13000 + "ls"
    resp = await client.post("/v1/preflight/exec", json=body({"command": evals}), headers=auth)
    answer = await resp.json()
    assert answer["decision"] == "ask" and "too complex" in answer["message"]


def test_effects_through_the_real_daemon_and_the_cli(tmp_path: Path) -> None:
    daemon = start_daemon(tmp_path / "home", env={"RAMPARTD_TOOL_NAMES": "shellz=exec"})
    try:
        def post(path: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            req = urllib.request.Request(
                daemon.base_url + path, data=json.dumps(payload).encode(), method="POST",
                headers={"Authorization": f"Bearer {daemon.token}",
                         "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return resp.status, json.loads(resp.read())
            except urllib.error.HTTPError as exc:
                return exc.code, json.loads(exc.read())

        status, answer = post("/v1/tool/Bash", body({"command": "cd ~/.ssh && cat id_rsa"}))
        assert status == 403 and answer["policy"] == "credentials-commands"
        status, answer = post("/v1/preflight/Bash",
                              body({"command": "echo 'rm -rf ~' > x.sh && bash x.sh"}))
        assert status == 200 and answer["decision"] == "deny"
        status, answer = post("/v1/tool/shellz", body({"command": "echo ok"}))
        assert status == 200 and answer["decision"] == "allow"
        status, answer = post("/v1/preflight/Grep", body({"pattern": "k", "path": "~/.aws"}))
        assert status == 200 and answer["decision"] == "deny"
        status, answer = post("/v1/test", {"command": "curl https://ｗｅｂｈｏｏｋ.site/x"})
        effects = answer["explanation"]["effects"]
        assert {"kind": "network", "target": "https://webhook.site/x",
                "rules": ["exfiltration-services#1"]}.items() <= effects[1].items()
    finally:
        daemon.stop()
    cli = subprocess.run(
        [sys.executable, "-m", "rampartd", "check", "--policy-dir",
         str(daemon.home / "policies"), "--cwd", "/srv/p", "printf '%s' ~/.gnupg | xargs rm -rf"],
        capture_output=True, text=True, timeout=60)
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert "effects (exec):" in cli.stdout and "delete " in cli.stdout
    assert "credentials-commands rule 2" in cli.stdout
