"""The guard's signals rule: a selector is judged against the daemon's own name and command
line the way kill, pkill, killall and pgrep would judge it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from rampartd.models import ToolCall
from rampartd.policy.compiler import compile_documents
from rampartd.policy.engine import evaluate
from rampartd.policy.guard import GUARD_POLICY, Runtime, guard_documents
from rampartd.policy.guard_signals import pieces
from tests.test_guard import USER_HOME, runtime

CMDLINE = "/opt/venv/bin/python3 /opt/venv/bin/rampartd serve --port 9090"


def verdict(command: str, *, names: tuple[str, ...] = ("rampartd",),
            cmdline: str = CMDLINE) -> str:
    """deny / ask (from the guard), or pass when the guard has nothing to say."""
    rt = runtime(process_names=names, cmdlines=(cmdline,))
    policy_set = compile_documents(guard_documents(rt), home=USER_HOME)
    decision = evaluate(policy_set, ToolCall(tool="exec", agent="a", session="s",
                                             params={"command": command}, cwd="/w"))
    if decision.policy is None:
        return "pass"
    assert decision.policy == GUARD_POLICY
    assert "signals" in decision.message or "daemon-port" in decision.message, decision.message
    return decision.action


EVERYDAY = [
    "pkill -f webpack", "pkill -f 'vite --port 5173'", "kill %1", "kill -9 %2", "kill %node",
    "pkill node", "killall node", "pkill -HUP nginx", "pkill -USR1 -x gunicorn",
    "pkill -f 'node.*server'", "pkill -f 'python app.py'", "killall -9 firefox",
    "pkill -x rampart-proxy", "killall -r '^chrom.*'", "kill 12345", "pgrep -a rampartd",
    "pgrep -f rampartd", "killall ramp", "pkill -9 -f uvicorn",
    # a pid lookup is judged as what it selects: a port other than the daemon's, a name
    "kill $(lsof -t -i:3000)", "lsof -ti :3000 | xargs kill", "kill -9 $(pidof node)",
]
# The daemon runs as `rampartd` (the console script): its name is rampartd, and python3 is
# only in its command line.
REACHES = [
    "pkill rampartd", "pkill ramp", "pkill -f rampart", "pkill -f 'rampartd serve'",
    "pkill -f 'venv/bin/python3'", "pkill -STOP -f rampartd", "pkill '^ramp.*d$'",
    "pkill 'r.*d'", "pkill '.*'", "pkill rampartd -f", "pkill -9 -u ada", "pkill -v node",
    "pkill -s 0 node", "pkill -P 1 x", "pkill -G ada x", "killall rampartd",
    "killall /opt/venv/bin/rampartd", "killall -9 python3", "killall -r 'ramp.*'",
    "killall -u ada", "killall -I RAMPARTD", "kill $(pgrep rampartd)",
    "kill -STOP $(pgrep -f 'rampartd serve')", "kill `pgrep ramp`",
    "kill $(pidof rampartd)", "kill -9 $(lsof -t -i:9090)", "kill $(fuser 9090/tcp)",
    "kill $(systemctl --user show -p MainPID --value rampartd)",
    "kill $(cat ~/.rampartd/daemon.json)", "pgrep -f rampartd | xargs kill",
    "lsof -ti :9090 | xargs kill -9", "sudo pkill rampartd", "timeout 5 pkill -f rampart",
    "kill 0", "kill -9 -1", "fuser -k 9090/tcp",
]
UNKNOWN = [
    "kill $(lsof -t -i:3000 | head -1)", "kill $(pgrep -f 'node app')", "kill $(cat app.pid)",
    "X=$(pgrep -f rampartd); kill $X",
    "pkill '[r]ampartd'", "pkill -f 'ramp(artd)?'", "killall -r 'r[a]mpartd'",
]


@pytest.mark.parametrize("command", EVERYDAY)
def test_everyday_signals_pass(command: str) -> None:
    assert verdict(command) == "pass"


@pytest.mark.parametrize("command", REACHES)
def test_selectors_that_reach_the_daemon_are_denied(command: str) -> None:
    assert verdict(command) == "deny"


@pytest.mark.parametrize("command", UNKNOWN)
def test_targets_the_guard_cannot_judge_ask(command: str) -> None:
    assert verdict(command) == "ask"


def test_the_names_are_the_daemons_own() -> None:
    # Started as `python3 -m rampartd serve`: python3 is its name, so pkill python reaches it.
    line = "/usr/bin/python3 -m rampartd serve"
    assert verdict("pkill python", names=("python3",), cmdline=line) == "deny"
    assert verdict("killall python3", names=("python3",), cmdline=line) == "deny"
    assert verdict("pkill python") == "pass"  # the console script's name is rampartd
    assert verdict("pkill -f '3 -m ramp'", cmdline=line) == "deny"
    assert verdict("pkill -f '3 -m ramp'") == "pass"
    assert verdict("pkill node", names=("node",), cmdline="node server.js") == "deny"


def test_pieces_is_exactly_the_substrings() -> None:
    regex = re.compile(rf"^{pieces(['ab.c', 'xy'])}$")
    texts = ["a", "ab", "ab.c", "b.", ".c", "x", "xy", "y", "ac", "abc", "ba", "yx", "", "ab.cx"]
    assert [t for t in texts if regex.match(t)] == ["a", "ab", "ab.c", "b.", ".c", "x", "xy",
                                                    "y"]


def test_discover_reads_the_process_name_and_command_line(tmp_path: Path) -> None:
    rt = Runtime.discover(tmp_path / "home", tmp_path / "home" / "policies", 9090,
                          pid=os.getpid())
    comm = Path("/proc/self/comm").read_text().strip()
    assert comm in rt.process_names and "rampartd" in rt.process_names
    raw = Path("/proc/self/cmdline").read_bytes().split(b"\0")
    assert rt.cmdlines == (" ".join(w.decode() for w in raw).strip(),)
    expected = Runtime.discover(tmp_path / "home", tmp_path / "home" / "policies", 9191)
    assert any(line.endswith(f"serve --home {tmp_path / 'home'} --port 9191")
               for line in expected.cmdlines)
