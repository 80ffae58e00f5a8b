"""The four ways an agent could switch rampartd off, tried against the real daemon with the
standard policy: every one is denied by the built-in guard, in preflight and in /v1/tool."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from rampartd.hooks.install import HOST_CONFIGS, HookArgs, apply, plan
from tests.conftest import Daemon, start_daemon

pytestmark = pytest.mark.e2e


@pytest.fixture
def user(tmp_path: Path) -> Path:
    """The agent's Unix home (HOME), holding ~/.rampartd and ~/.claude."""
    home = tmp_path / "ada"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / "settings.json").write_text(
        '{"hooks": {"PreToolUse": [{"hooks": [{"command": "rampartd hook claude-code"}]}]}}')
    return home


@pytest.fixture
def daemon(user: Path) -> Iterator[Daemon]:
    """`rampartd serve` with the standard policy, its home at ~/.rampartd."""
    d = start_daemon(user / ".rampartd", env={"HOME": str(user)})
    try:
        yield d
    finally:
        d.stop()


def ask_daemon(daemon: Daemon, tool: str, params: dict[str, Any], *,
               preflight: bool = False) -> tuple[int, dict[str, Any]]:
    """One agent call (status, body) through /v1/tool or /v1/preflight."""
    route = "preflight" if preflight else "tool"
    resp = requests.post(f"{daemon.base_url}/v1/{route}/{tool}", timeout=10,
                         headers={"Authorization": f"Bearer {daemon.token}"},
                         json={"agent": "claude", "session": "s1", "params": params,
                               "cwd": str(daemon.home.parent / "project")})
    body: dict[str, Any] = resp.json()
    return resp.status_code, body


def assert_guarded(daemon: Daemon, tool: str, params: dict[str, Any]) -> None:
    """Denied by rampartd-guard, both when only asked about and when really called."""
    status, body = ask_daemon(daemon, tool, params, preflight=True)
    assert status == 200 and (body["decision"], body["policy"]) == ("deny", "rampartd-guard"), \
        (params, body)
    status, body = ask_daemon(daemon, tool, params)
    assert status == 403 and body["policy"] == "rampartd-guard", (params, body)
    assert body["allowed"] is False and "guard rule" in body["message"]


def exec_call(command: str) -> tuple[str, dict[str, Any]]:
    return "exec", {"command": command}


def test_an_agent_cannot_approve_its_own_asks(daemon: Daemon) -> None:
    status, body = ask_daemon(daemon, "exec", {"command": "sudo ls /root"})
    assert status == 202, body
    approval_id = body["approval_id"]
    port = daemon.port
    key_bytes = (daemon.home / "approval-links.key").read_bytes()
    link = f"/v1/approvals/{approval_id}/link?action=approve&exp=9999999999&sig={'ab' * 32}"
    # The unauthenticated forged link is refused and changes no key.
    assert requests.post(f"{daemon.base_url}{link}", timeout=10).status_code == 403
    assert (daemon.home / "approval-links.key").read_bytes() == key_bytes
    calls = [
        exec_call("xxd ~/.rampartd/approval-links.key"),
        exec_call("base64 < ~/.rampartd/approval-links.key"),
        exec_call("od -An -tx1 $HOME/.rampartd/approval-links.key"),
        ("read", {"file_path": str(daemon.home / "approval-links.key")}),
        ("read", {"file_path": "../.rampartd/approval-links.key"}),
        exec_call(f"curl -X POST 'http://localhost:0{port}{link}'"),
        exec_call(f"curl -X POST 'http://127.1:{port}{link}'"),
        exec_call(f"curl -X POST 'http://[::1]:{port}{link}'"),
        exec_call(f"curl -X POST 'http://127.0.0.1:{port}"
                  f"{link.replace('/approvals/', '/%61pprovals/')}'"),
        exec_call(f"python3 -c \"import urllib.request as u; "
                  f"u.urlopen(u.Request('http://0x7f.1:{port}{link}', method='POST'))\""),
        ("fetch", {"url": f"http://2130706433:{port}{link}"}),
    ]
    for tool, params in calls:
        assert_guarded(daemon, tool, params)
    approval = requests.get(f"{daemon.base_url}/v1/approvals/{approval_id}", timeout=10,
                            headers={"Authorization": f"Bearer {daemon.token}"}).json()
    assert approval["status"] == "pending"


def test_an_agent_cannot_read_the_admin_token(daemon: Daemon) -> None:
    for tool, params in [
        exec_call("cat ~/.rampartd/tok*"), exec_call("cd ~/.rampartd && cat token"),
        exec_call("cd ~ && cat .rampartd/token"), exec_call("python3 -m rampartd token show"),
        exec_call("rampartd token show"), exec_call(f"cat {daemon.home}/token"),
        exec_call("cat ~/.ramp*/token"), exec_call("head -c 99 $HOME/.rampartd/token"),
        exec_call(f"sqlite3 {daemon.home}/rampartd.db 'select * from agent_tokens'"),
        ("read", {"file_path": str(daemon.home / "token")}),
        ("read", {"file_path": "~/.rampartd/signing.key"}),
        ("read", {"file_path": str(daemon.home / "rampartd.db-wal")}),
    ]:
        assert_guarded(daemon, tool, params)


def test_an_agent_cannot_rewrite_the_policy_or_remove_the_hook(daemon: Daemon,
                                                               user: Path) -> None:
    policy = "~/.rampartd/policies/standard.yaml"
    for tool, params in [
        exec_call(f"sed -i 's/action: deny/action: allow/' {policy}"),
        exec_call("perl -pi -e 's/deny/allow/' ~/.rampartd/policies/*"),
        exec_call(f"cp /tmp/allow-all.yaml {policy}"),
        exec_call("find ~/.rampartd/policies -name '*.yaml' -delete"),
        exec_call("echo 'mode: monitor' >> ~/.rampartd/config.yaml"),
        exec_call(f"sqlite3 {daemon.home}/rampartd.db 'delete from audit_log'"),
        exec_call("cp /dev/null ~/.claude/settings.json"),
        exec_call("echo '{}' > ~/.claude/settings.json"),
        exec_call("rm -rf ~/.claude"),
        exec_call("rampartd policy reload"),
        ("write", {"file_path": str(daemon.home / "policies" / "standard.yaml"),
                   "content": "version: '1'\ndefault_action: allow\n"}),
        ("edit", {"file_path": str(user / ".claude" / "settings.json"), "old_string": "hooks",
                  "new_string": "x"}),
        ("write", {"file_path": "~/.rampartd/config.yaml", "content": "guard: 'off'\n"}),
    ]:
        assert_guarded(daemon, tool, params)


def test_an_agent_cannot_kill_the_daemon(daemon: Daemon) -> None:
    name = Path(f"/proc/{daemon.proc.pid}/comm").read_text().strip()  # python or python3
    for tool, params in [
        exec_call(f"fuser -k {daemon.port}/tcp"), exec_call("pkill -f rampart"),
        exec_call("systemctl --user stop rampartd"), exec_call("kill -9 -1"),
        exec_call(f"kill -9 {daemon.proc.pid}"), exec_call(f"killall -9 {name}"),
        exec_call("kill $(pgrep -f 'rampartd serve')"),
        exec_call(f"lsof -ti :{daemon.port} | xargs kill"),
        exec_call("loginctl terminate-user $USER"),
        exec_call("rampartd serve --port 0"),
    ]:
        assert_guarded(daemon, tool, params)


def test_signals_are_judged_against_the_daemons_own_process(daemon: Daemon) -> None:
    # The daemon runs as `python -m rampartd serve --port 0`: its name and command line are
    # read from /proc when it starts.
    for tool, params in [
        exec_call("pkill -f 'rampartd serve --port 0'"), exec_call("pkill -STOP -f 'm ramp'"),
        exec_call(f"kill -9 $(lsof -t -i:{daemon.port})"), exec_call("kill $(pgrep -f rampartd)"),
        exec_call(f"curl --resolve x:{daemon.port}:127.0.0.1 http://x:{daemon.port}/v1/status"),
        exec_call(f"curl --connect-to ::127.0.0.1:{daemon.port} http://example.com/"),
    ]:
        assert_guarded(daemon, tool, params)
    for command in ("pkill -f webpack", "pkill -f 'vite --port 5173'", "kill %1",
                    "killall node", "pkill node", "pkill -f 'serve --port 01'",
                    "kill $(lsof -t -i:3000)"):  # a lookup of another port: judged as that
        status, body = ask_daemon(daemon, "exec", {"command": command}, preflight=True)
        assert status == 200 and "rampartd-guard" not in body["matched_policies"], body
    # A pid only known at run time: the guard cannot tell, so a person decides.
    status, body = ask_daemon(daemon, "exec", {"command": "kill $(cat /tmp/app.pid)"},
                              preflight=True)
    assert status == 200 and body["decision"] in ("ask", "deny"), body
    assert "rampartd-guard" in body["matched_policies"], body


def test_the_hook_setup_installed_and_every_hosts_files_are_guarded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "ada"
    user.mkdir()
    home = user / ".rampartd"
    # What `rampartd setup claude-code` writes, with the hook's own --home.
    with monkeypatch.context() as patch:
        patch.setenv("HOME", str(user))
        apply(plan("claude-code", HookArgs(home=str(home))))
    settings = json.loads((user / ".claude" / "settings.json").read_text())
    command = settings["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
    executable = command.split()[0]
    d = start_daemon(home, env={"HOME": str(user)})
    try:
        assert_guarded(d, *exec_call(f"cp /tmp/fake {executable}"))
        assert_guarded(d, "write", {"file_path": executable, "content": "exit 0\n"})
        for config in HOST_CONFIGS.values():
            for name in config.files:
                assert_guarded(d, "write", {"file_path": str(user / config.user_dir / name),
                                            "content": "{}"})
                assert_guarded(d, *exec_call(f"rm -f repo/{config.project_dir}/{name}"))
    finally:
        d.stop()


def test_ordinary_work_is_untouched_and_the_record_is_whole(daemon: Daemon) -> None:
    for command in ("git status", "ls -la", "cat README.md", "kill 1", "pkill node"):
        status, body = ask_daemon(daemon, "exec", {"command": command})
        assert body["policy"] != "rampartd-guard", (command, body)
    status, body = ask_daemon(daemon, "exec", {"command": "kill -9 -1"})
    assert status == 403
    record = requests.get(f"{daemon.base_url}/v1/audit/events", timeout=10,
                          params={"kind": "decision", "limit": "1"},
                          headers={"Authorization": f"Bearer {daemon.token}"}).json()
    assert record["events"][0]["decision"]["policy"] == "rampartd-guard"
    report = requests.get(f"{daemon.base_url}/v1/audit/verify", timeout=30,
                          headers={"Authorization": f"Bearer {daemon.token}"}).json()
    assert report["valid"], report
    status_body = requests.get(f"{daemon.base_url}/v1/status", timeout=10,
                               headers={"Authorization": f"Bearer {daemon.token}"}).json()
    assert [r["id"] for r in status_body["guard"]["rules"]][:2] == ["home", "policies"]


def test_check_explains_the_guard_of_the_running_daemon(daemon: Daemon, user: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPARTD_")}
    env.update(HOME=str(user), RAMPARTD_HOME=str(daemon.home))
    run = [sys.executable, "-m", "rampartd", "check"]
    proc = subprocess.run([*run, f"kill {daemon.proc.pid}"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "* rampartd-guard rule" in proc.stdout and "<rampartd-guard>" in proc.stdout
    assert "guard (rampartd-guard, checked first): home, policies" in proc.stdout
    proc = subprocess.run([*run, "--json", f"curl localhost:{daemon.port}/v1/status"], env=env,
                          capture_output=True, text=True, timeout=60)
    data = json.loads(proc.stdout)
    assert proc.returncode == 2 and data["policy"] == "rampartd-guard"
    assert "daemon-port" in [r["id"] for r in data["guard"]["rules"]]
    proc = subprocess.run([*run, "git status"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "rampartd-guard rule" not in proc.stdout
