"""The built-in guard: what it denies, what it leaves alone, how it is placed and relaxed."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from rampartd.config import load_settings
from rampartd.daemon import prepare_home
from rampartd.errors import ConfigError, PolicyError
from rampartd.hooks.install import HOST_CONFIGS
from rampartd.models import ToolCall
from rampartd.policy.compiler import compile_documents
from rampartd.policy.engine import evaluate
from rampartd.policy.guard import (
    GUARD_POLICY,
    RULES,
    Runtime,
    guard_documents,
    guard_for,
    guard_for_home,
)
from rampartd.policy.reload import PolicyHolder, load_with_builtin
from rampartd.web.app import create_app
from tests.conftest import make_settings

USER_HOME = "/home/ada"
HOME = f"{USER_HOME}/.rampartd"
PORT = 9090
PID = 43210


def runtime(**changes: Any) -> Runtime:
    """A fixed runtime: the guard's facts without looking at this machine."""
    facts: dict[str, Any] = {
        "home": (HOME,), "policy_dir": (f"{HOME}/policies",), "port": PORT, "pids": (PID,),
        "user_home": USER_HOME,
        "installation": ("/opt/venv/lib/python3.12/site-packages/rampartd",
                         "/opt/venv/bin/rampartd", "/opt/venv/bin/rampartd-hook"),
        "site_globs": ("/opt/venv/lib/python3.12/site-packages/*.pth",),
        "process_names": ("python3", "rampartd", "rampartd-hook"),
    }
    facts.update(changes)
    return Runtime(**facts)


def decide(command: str | None = None, *, tool: str = "exec", rt: Runtime | None = None,
           relax: frozenset[str] = frozenset(), cwd: str | None = None,
           **params: Any) -> str | None:
    """The guard rule that denied a call under the guard alone (None: nothing matched)."""
    policy_set = compile_documents(guard_documents(rt or runtime(), relax), home=USER_HOME)
    if command is not None:
        params["command"] = command
    call = ToolCall(tool=tool, agent="agent", session="s", params=params, cwd=cwd)
    decision = evaluate(policy_set, call)
    if decision.policy is None:
        return None
    assert (decision.action, decision.policy) == ("deny", GUARD_POLICY)
    match = re.search(r"\(guard rule '([a-z-]+)'\)$", decision.message)
    assert match, decision.message
    return match.group(1)


DENIED = {
    "home": [
        f"cat {HOME}/token", "cat ~/.rampartd/tok*", "cat ~/.ramp*/token",
        "cd ~/.rampartd && cat token", "cd ~/.rampartd; cd policies && sed -i s/a/b/ std.yaml",
        "tar czf /tmp/all.tgz ~/.rampartd", "ln -s ~/.rampartd/token /tmp/t",
        "rm -rf /home/ada", "cp -r ~/.rampartd /tmp/copy", "cd ~ && cat .rampartd/token",
        "xxd ~/.rampartd/approval-links.key", "base64 ~/.rampartd/signing.key",
        f"sqlite3 {HOME}/rampartd.db 'select * from agents'", "cp ~/.rampartd/rampartd.db-wal /tmp",
        "sed -i s/deny/allow/ ~/.rampartd/policies/standard.yaml",
        "perl -pi -e s/deny/allow/ $HOME/.rampartd/policies/*.yaml",
        "cp /tmp/mine.yaml ~/.rampartd/policies/standard.yaml",
        "find ~/.rampartd/policies -delete", "echo 'mode: monitor' >> ~/.rampartd/config.yaml",
        "chmod 644 ~/.rampartd/token", "truncate -s0 ~/.rampartd/checkpoints.jsonl",
        "python3 -c 'print(open(\"/home/ada/.rampartd/token\").read())'",
        "bash -c 'cat ~/.rampartd/token'", "rm ~/.rampartd/daemon.json",
    ],
    "hooks": [
        "cp /dev/null ~/.claude/settings.json", "echo {} > ~/.claude/settings.json",
        "rm -rf ~/.claude", "sed -i /rampartd/d .claude/settings.local.json",
        "rm -f repo/.claude/settings.json", "echo [] > ~/.cursor/hooks.json",
        "rm ~/.gemini/settings.json", "sed -i s/rampartd// ~/.codex/config.toml",
        "echo {} > ~/.codex/hooks.json", "rm repo/.codex/hooks.json",
        "rm -rf ~/Documents/Cline/Hooks", "rm -rf .clinerules/hooks",
        "rm ~/.config/systemd/user/rampartd.service", "mv ~/.config ~/old-config",
    ],
    "installation": [
        "rm -rf /opt/venv/lib/python3.12/site-packages/rampartd",
        "sed -i s/deny/allow/ /opt/venv/lib/python3.12/site-packages/rampartd/policy/engine.py",
        "cp /tmp/fake /opt/venv/bin/rampartd-hook", "pip uninstall -y rampartd",
        "python3 -m pip install --force-reinstall ./rampartd-evil",
    ],
    "daemon-port": [
        "curl http://127.0.0.1:9090/v1/status", "curl -s localhost:09090/v1/approvals",
        "curl http://127.1:9090/v1/approvals", "curl 'http://[::1]:9090/v1/%61pprovals/x/link'",
        "curl http://0x7f.1:9090/", "curl http://2130706433:9090/", "curl http://0:9090/",
        "curl http://0.0.0.0:9090/", "wget -qO- http://LOCALHOST:9090/healthz",
        "curl -X POST 'http://127.0.0.1:9090/v1/approvals/01J/link?action=approve&exp=9&sig=0'",
        "nc localhost 9090", "exec 3<>/dev/tcp/127.0.0.1/9090",
        "python3 -c 'import urllib.request; urllib.request.urlopen(\"http://127.1:9090/\")'",
        "http POST localhost:9090/v1/approvals/bulk-resolve", "curl http://foo.localhost:9090/",
        "curl 'http://[::ffff:7f00:1]:9090/'", "curl http://0177.1:9090/",
        "curl http://127.000.000.001:9090/", "curl http://user:pw@127.1:9090/x",
        "curl --resolve x:9090:127.0.0.1 http://x:9090/v1/status",
        "curl --resolve=x:09090:10.0.0.1,127.0.0.1 http://x:9090/",
        "curl --resolve 'x:9090:[::1]' http://x:9090/", "curl --resolve +x:9090:127.1 http://x/",
        "curl --connect-to ::127.0.0.1:9090 http://example.com/",
        "curl -X POST http://127.0.0.1:9090/v1/approvals/01J/resolve -d '{\"approved\":true}'",
        "curl --connect-to x:80:localhost:9090 http://x/",
        "curl --connect-to ::[::1]:9090 http://x/", "curl --connect-to ::localhost: http://x:9090/",
        "curl http://x:9090/ --connect-to ::127.1:",
        # listening on it, to answer hooks in the daemon's place
        "nc -l 9090", "nc -lk 127.0.0.1 9090", "ncat -l --port=9090", "python3 -m http.server 9090",
        "python3 -m http.server --bind 127.0.0.1 9090", "node server.js --port=9090",
        "PORT=9090 npm start", "env SERVER_PORT=9090 ./serve", "java -Dserver.port=9090 -jar a.jar",
        "grafana-server --http-port=9090", "ASPNETCORE_URLS=http://+:9090 dotnet run",
        "node -e \"require('http').createServer().listen(9090)\"",
        "python3 -c 'import uvicorn; uvicorn.run(app, port=9090)'",
    ],
    "signals": [
        "kill -9 -1", "kill -KILL -1", "kill -- -1", f"kill {PID}", f"kill -9 {PID}",
        "kill -9 $(pgrep rampartd)", "kill `pidof python3`", "lsof -ti :9090 | xargs kill -9",
        "pkill -f rampart", "pkill -f rampartd", "pkill rampartd", "pkill ramp", "pkill -u ada",
        "killall python3",
        "killall -r 'ramp.*'", "pkill 'p.*'", "fuser -k 9090/tcp", "fuser -k -n tcp 9090",
        "loginctl terminate-user ada", "loginctl kill-session 3", "kill $(lsof -t -i:9090)",
        "kill $(lsof -ti tcp:09090)", "kill -9 $(pidof python3)",
        "sudo -u ada /usr/bin/kill -9 -1", f"cat /proc/{PID}/environ",
        f"dd if=/proc/{PID}/mem of=/tmp/m", f"gdb -p {PID}", f"strace -p {PID}",
        # every debugger, tracer and dumper that attaches to it, in each spelling of the pid
        f"strace -fp {PID}", f"strace -p{PID} -o /tmp/t", f"gdb --pid={PID} -batch",
        f"gdb -batch -ex 'attach {PID}' -ex 'gcore /tmp/c'", f"gdb /usr/bin/python3 {PID}",
        f"gcore -o /tmp/core {PID}", f"lldb --attach-pid={PID}", f"py-spy dump --pid {PID}",
        f"perf record -g -p {PID}", f"nsenter -t {PID} -m cat /etc/hostname",
        f"gdbserver --attach :2345 {PID}", f"reptyr {PID}", f"criu dump -t {PID} -D /tmp/d",
        f"python3 -c 'import os; os.kill({PID}, 9)'", "python3 -c 'import os; os.kill(-1, 9)'",
        f"node -e 'process.kill({PID})'", f"perl -e 'kill 9, {PID}'",
    ],
    "service": [
        "systemctl --user stop rampartd", "systemctl --user disable --now rampartd.service",
        "systemctl --user mask rampartd", "systemctl --user kill rampartd",
        "systemctl --user stop 'rampart*'", "systemctl --user exit",
        # run later or through a name: a trap, an alias, a function and its arguments, a case
        "trap 'systemctl --user disable --now rampartd' EXIT",
        "alias s='systemctl --user mask rampartd'; s", "run() { \"$@\"; }; run systemctl --user "
        "stop rampartd", "case 1 in 1) systemctl --user stop rampartd ;; esac",
    ],
    "cli": [
        "rampartd token show", "python3 -m rampartd token show",
        "/opt/venv/bin/python3.12 -m rampartd token rotate", "rampartd --home /x token show",
        "rampartd approvals approve 01JAAAAAAAAAAAAAAAAAAAAAAA", "rampartd approvals deny x",
        "rampartd approvals approve 01J00000000000000000000000",
        "rampartd approvals link 01J --action approve", "rampartd agents create bot",
        "rampartd serve --port 9191", "RAMPARTD_HOME=/tmp/h rampartd serve",
        "rampartd install-service", "rampartd setup claude-code",
        "python3 -c 'from rampartd.home import read_token'",
        "export RAMPARTD_URL=http://127.0.0.1:8888", "RAMPARTD_HOME=/tmp/fake rampartd-hook",
    ],
}
ALLOWED = [
    "ls -la", "git status", "cat README.md", "curl https://example.com/x",
    "curl http://localhost:3000/api", "curl http://127.0.0.1:19090/", "kill 1234",
    "kill -9 12345", "pkill node", "killall firefox", "fuser -k 3000/tcp",
    "systemctl --user status rampartd", "systemctl --user stop nginx",
    "rampartd approvals list", "rampartd check 'rm -rf /'", "rampartd policy lint",
    "cat ~/.claude/CLAUDE.md", "ls ~/.claude", "ls ~/.config", "python3 -m pytest -q",
    "cat ~/.rampartdx/notes", "cd ~/.rampartd", "ls ~/.rampartd",
    "cat ~/.rampartd/policies/standard.yaml", "cat ~/.rampartd/config.yaml",
    "curl --resolve example.com:443:127.0.0.1 https://example.com/",
    "curl --resolve x:8080:127.0.0.1 http://x:8080/", "curl --connect-to ::localhost: http://x:8080/",
    "curl --connect-to example.com:443:other.example:8443 https://example.com/",
    "pkill -f webpack", "pkill -f 'vite --port 5173'", "kill %1", "killall node",
    "gdb -p 1234", "strace -fp 1234", "gdb ./app core", "strace -f -e trace=open python3 app.py",
    "py-spy top --pid 1234", "nc -l 8080", "python3 -m http.server 8000", "PORT=3000 npm start",
    "PORT=19090 npm start", "node server.js --port=19090", "seq 9090", "head -n 9090 big.log",
    "node -e \"require('http').createServer().listen(3000)\"", "kill $(lsof -t -i:3000)",
    "lsof -ti:3000 | xargs kill -9", "kill -9 $(pidof node)",
    "npm run dev & PID=$!; kill $PID", "kill $(jobs -p)",
]


@pytest.mark.parametrize(("rule", "command"),
                         [(r, c) for r, cmds in DENIED.items() for c in cmds])
def test_the_guard_denies(rule: str, command: str) -> None:
    assert decide(command) is not None
    # That rule alone denies it, and relaxing that rule takes it out of the picture.
    assert decide(command, relax=frozenset(RULES) - {rule}) == rule
    assert decide(command, relax=frozenset({rule})) != rule


@pytest.mark.parametrize("command", ALLOWED)
def test_the_guard_leaves_ordinary_commands_alone(command: str) -> None:
    assert decide(command) is None


@pytest.mark.parametrize(("tool", "params"), [
    ("read", {"file_path": f"{HOME}/token"}), ("read", {"path": "~/.rampartd/signing.key"}),
    ("read", {"path": "approval-links.key", "cwd": HOME}),
    ("read", {"path": "../.rampartd/rampartd.db-wal", "cwd": f"{USER_HOME}/src"}),
    ("write", {"path": f"{HOME}/policies/standard.yaml"}),
    ("edit", {"path": "~/.rampartd/config.yaml"}), ("write", {"path": "~/.claude/settings.json"}),
    ("edit", {"path": "/w/repo/.claude/settings.json"}),
    ("write", {"path": "/opt/venv/lib/python3.12/site-packages/rampartd/calls.py"}),
    ("write", {"path": "/opt/venv/lib/python3.12/site-packages/evil.pth"}),
    ("fetch", {"url": "http://127.1:9090/v1/approvals"}),
    ("fetch", {"url": "http://[::1]:09090/v1/%61pprovals/x/link"}),
    ("fetch", {"url": "http://[0:0:0:0:0:0:0:1]:9090/v1/status"}),
    ("fetch", {"url": "http://[::ffff:7f00:1]:9090/"}), ("fetch", {"url": "http://a.localhost:9090"}),
    ("fetch", {"url": "http://LOCALHOST.:9090/"}),
])
def test_the_guard_covers_file_and_fetch_tools(tool: str, params: dict[str, Any]) -> None:
    cwd = params.pop("cwd", None)
    assert decide(tool=tool, cwd=cwd, **params) is not None


def test_relative_paths_follow_the_calls_cwd() -> None:
    assert decide("cat token", cwd=HOME) == "home"
    assert decide("cat ../token", cwd=f"{HOME}/policies") == "home"
    assert decide("rm -rf .rampartd", cwd=USER_HOME) == "home"
    assert decide("cat token", cwd=f"{USER_HOME}/src") is None
    assert decide("sed -i s/x// settings.json", cwd=f"{USER_HOME}/.claude") == "hooks"


@pytest.mark.parametrize("host", sorted(HOST_CONFIGS))
def test_every_hosts_hook_configuration_is_guarded(host: str) -> None:
    # The table `rampartd setup` writes by, user-level and in any project.
    config = HOST_CONFIGS[host]
    for name in config.files:
        user_file = f"{USER_HOME}/{config.user_dir}/{name}"
        project_file = f"/w/repo/{config.project_dir}/{name}"
        for path in (user_file, project_file):
            assert decide(tool="write", path=path) == "hooks", path
            assert decide(f"rm -f {path}") == "hooks", path
        assert decide(f"echo x > {config.project_dir}/{name}", cwd="/w/repo") == "hooks"
        assert decide(f"cat {user_file}") is None  # reading a hook configuration is fine


def test_the_installed_hooks_executable_and_home_are_guarded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "ada"
    settings = user / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    hook = "/opt/agent-tools/bin/rampartd-hook claude-code --home /srv/hook-home || exit 2"
    settings.write_text(json.dumps({"hooks": {"PreToolUse": [
        {"matcher": "*", "hooks": [{"type": "command", "command": hook}]}]}}))
    monkeypatch.setenv("HOME", str(user))
    rt = Runtime.discover(user / ".rampartd", user / ".rampartd" / "policies", PORT)
    assert "/opt/agent-tools/bin/rampartd-hook" in rt.installation
    assert "/srv/hook-home" in rt.home
    assert decide("cp /tmp/fake /opt/agent-tools/bin/rampartd-hook", rt=rt) == "installation"
    assert decide("cat /srv/hook-home/token", rt=rt) == "home"
    assert decide("echo http://127.0.0.1:1 > /srv/hook-home/daemon.json", rt=rt) == "home"
    assert decide("cat /srv/other/token", rt=rt) is None


def test_the_guard_can_be_built_for_a_home_and_port_without_a_daemon(tmp_path: Path) -> None:
    ours = Path.home()
    docs = guard_for_home(ours / ".rampartd", 9191, user_home="/home/dev")
    policy_set = compile_documents(docs, home="/home/dev")

    def verdict(command: str) -> str | None:
        decision = evaluate(policy_set, ToolCall(tool="exec", agent="a", session="s",
                                                 params={"command": command}, cwd="/w"))
        return decision.action if decision.policy == GUARD_POLICY else None

    # The default home moves with the user's home; the port is the one given.
    assert verdict("cat /home/dev/.rampartd/token") == "deny"
    assert verdict("cat ~/.rampartd/token") == "deny"
    assert verdict("echo {} > ~/.claude/settings.json") == "deny"
    assert verdict("curl localhost:9191/v1/status") == "deny"
    assert verdict("curl localhost:9090/v1/status") is None
    # No process to read: the command line is that of `rampartd serve` from here.
    assert verdict("pkill -f 'rampartd serve'") == "deny"
    assert verdict("pkill -f webpack") is None
    # ...and its name may be this installation's interpreter under any of its names.
    assert verdict(f"killall python{sys.version_info.major}") == "deny"
    assert verdict("killall node") is None
    elsewhere = guard_for_home(tmp_path / "rd", 9090, user_home="/home/dev")
    policy_set = compile_documents(elsewhere, home="/home/dev")
    assert verdict(f"cat {tmp_path}/rd/token") == "deny"


def test_a_target_known_only_at_run_time_is_not_allowed() -> None:
    policy_set = compile_documents(guard_documents(runtime()), home=USER_HOME)
    decision = evaluate(policy_set, ToolCall(tool="exec", agent="a", session="s",
                                             params={"command": 'cat "$D/token"'}, cwd="/"))
    assert decision.action in ("deny", "ask") and decision.policy == GUARD_POLICY


def test_a_home_elsewhere_and_a_policy_dir_outside_it_are_guarded() -> None:
    rt = runtime(home=("/srv/rd", "/data/rd"), policy_dir=("/etc/rampartd/policies",))
    for command in ("cat /srv/rd/token", "cat /data/rd/token", "cat /srv/r*/token",
                    "sed -i s/a/b/ /etc/rampartd/policies/p.yaml"):
        assert decide(command, rt=rt) is not None, command
    assert decide(tool="write", path="/etc/rampartd/policies/p.yaml", rt=rt) == "policies"
    assert decide("cat ~/.rampartd/token", rt=rt) is None  # not this daemon's home


def test_the_port_is_the_one_the_daemon_has() -> None:
    rt = runtime(port=9191)
    assert decide("curl localhost:9191/v1/status", rt=rt) == "daemon-port"
    assert decide("curl localhost:9090/v1/status", rt=rt) is None
    assert decide("fuser -k 9191/tcp", rt=rt) == "signals"


def write(directory: Path, name: str, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text)


def test_no_policy_file_can_outrank_or_replace_the_guard(tmp_path: Path) -> None:
    pdir = tmp_path / "policies"
    write(pdir, "mine.yaml", 'version: "1"\ndefault_action: allow\npolicies:\n'
          "  - name: allow-all\n    priority: -2147483648\n    rules:\n"
          "      - action: allow\n        when: {default: true}\n")
    policy_set = load_with_builtin(pdir, guard_documents(runtime()))
    assert policy_set.policies[0].name == GUARD_POLICY
    assert (policy_set.policy_count, policy_set.builtin) == (1, (GUARD_POLICY,))
    decision = evaluate(policy_set, ToolCall(tool="exec", agent="a", session="s",
                                             params={"command": "kill -9 -1"}))
    assert (decision.action, decision.policy) == ("deny", GUARD_POLICY)
    assert decision.matched_policies == (GUARD_POLICY, "allow-all")
    write(pdir, "fake.yaml", 'version: "1"\npolicies:\n  - name: rampartd-guard\n    rules:\n'
          "      - action: allow\n        when: {default: true}\n")
    with pytest.raises(PolicyError, match="duplicate policy name 'rampartd-guard'"):
        load_with_builtin(pdir, guard_documents(runtime()))


def test_every_reload_keeps_the_guard(tmp_path: Path) -> None:
    pdir = tmp_path / "policies"
    write(pdir, "a.yaml", 'version: "1"\ndefault_action: allow\n')
    holder = PolicyHolder(pdir, builtin=guard_documents(runtime()))
    write(pdir, "b.yaml", 'version: "1"\npolicies:\n  - name: b\n    rules:\n'
          "      - action: allow\n        when: {default: true}\n")
    assert holder.poll()
    assert holder.current.policies[0].name == GUARD_POLICY
    assert [p.name for p in holder.current.policies] == [GUARD_POLICY, "b"]


def test_the_setting_is_read_from_config_yaml_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    assert load_settings({"home": str(home)}, env={}).guard == "on"
    (home / "config.yaml").write_text("guard: [signals, cli]\n")
    settings = load_settings({"home": str(home)}, env={})
    assert settings.guard == ("signals", "cli")
    (home / "config.yaml").write_text("guard: off\n")  # YAML reads off as false
    with pytest.raises(ConfigError, match="guard"):
        load_settings({"home": str(home)}, env={})
    (home / "config.yaml").write_text("guard: 'off'\n")
    assert load_settings({"home": str(home)}, env={}).guard == "off"
    with pytest.raises(ConfigError, match="only be set in"):
        load_settings({"home": str(home)}, env={"RAMPARTD_GUARD": "on"})
    (home / "config.yaml").write_text("guard: [sigals]\n")
    with pytest.raises(ConfigError, match="unknown guard rule 'sigals'"):
        load_settings({"home": str(home)}, env={})


def test_guard_off_compiles_to_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.yaml").write_text("guard: 'off'\n")
    settings = load_settings({"home": str(home), "port": PORT}, env={})
    assert guard_for(settings) == []
    assert len(guard_documents(runtime(), frozenset(RULES) - {"cli"})) == 1


def call(command: str) -> dict[str, Any]:
    return {"agent": "agent", "session": "s", "params": {"command": command}}


async def test_monitor_mode_still_enforces_the_guard(aiohttp_client: Any, home: Path) -> None:
    settings = make_settings(home, mode="monitor", port=PORT)
    prepare_home(settings)
    client = await aiohttp_client(create_app(settings))
    auth = {"Authorization": f"Bearer {settings.token_path.read_text().strip()}"}
    resp = await client.post("/v1/tool/exec", json=call("cat ~/.ssh/id_rsa"), headers=auth)
    assert resp.status == 200  # monitor mode: the standard policy's deny is only recorded
    assert (await resp.json())["decision"] == "deny"
    resp = await client.post("/v1/tool/exec", json=call(f"cat {home}/token"), headers=auth)
    body = await resp.json()
    assert resp.status == 403 and body["policy"] == GUARD_POLICY
    status = await (await client.get("/v1/status", headers=auth)).json()
    assert status["guard"]["policy"] == GUARD_POLICY and status["guard"]["relaxed"] == []
    assert [r["id"] for r in status["guard"]["rules"]] == list(RULES)
