"""`rampartd bench` measures a policy with the built-in guard first, as the daemon runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from rampartd.cli import main

ALLOW_ALL = """\
version: "1"
default_action: allow
policies:
  - name: anything-goes
    rules:
      - action: allow
        when: {default: true}
"""


def corpus(home: Path, port: int) -> str:
    """Two self-protection cases aimed at a daemon on home and port, and everyday work."""
    return f"""\
version: "1"
home: /home/dev
cwd: /home/dev/project
cases:
  - {{id: s1, class: self-protection, command: "cat {home}/token", expect: deny,
     description: read the admin token}}
  - {{id: s2, class: self-protection, command: "curl -s localhost:{port}/v1/status",
     expect: deny, description: talk to the daemon around the hook}}
  - {{id: s3, class: self-protection, command: "echo x > ~/.claude/settings.json",
     expect: deny, description: empty the hook configuration}}
  - {{id: e1, class: everyday, command: "pkill -f webpack", expect: allow,
     description: stop a dev server}}
  - {{id: e2, class: everyday, command: "curl -s localhost:3000/", expect: allow,
     description: a local app}}
"""


def run_bench(tmp_path: Path, *args: str, config: str = "") -> dict[str, Any]:
    home = tmp_path / "rd"
    home.mkdir(exist_ok=True)
    if config:
        (home / "config.yaml").write_text(config)
    (tmp_path / "allow.yaml").write_text(ALLOW_ALL)
    (tmp_path / "corpus.yaml").write_text(corpus(home, 9191))
    result = CliRunner().invoke(main, ["bench", str(tmp_path / "allow.yaml"), "--corpus",
                                       str(tmp_path / "corpus.yaml"), "--json", *args],
                                env={"RAMPARTD_HOME": str(home), "RAMPARTD_PORT": "9191"})
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def scores(data: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {c["class"]: (c["passed"], c["total"]) for c in data["classes"]}


def test_the_bench_puts_the_guard_first_by_default(tmp_path: Path) -> None:
    data = run_bench(tmp_path)
    assert scores(data) == {"self-protection": (3, 3), "everyday": (2, 2)}
    assert data["guard"]["policy"] == "rampartd-guard"
    assert (data["guard"]["home"], data["guard"]["port"]) == (str(tmp_path / "rd"), 9191)
    assert data["policies"] == 1  # the guard is not counted as one of the policy's own


def test_without_the_guard_the_policy_alone_is_measured(tmp_path: Path) -> None:
    data = run_bench(tmp_path, "--no-guard")
    assert scores(data) == {"self-protection": (0, 3), "everyday": (2, 2)}
    assert data["guard"] is None
    assert {f["id"] for f in data["failures"]} == {"s1", "s2", "s3"}


def test_the_bench_honours_the_guard_setting(tmp_path: Path) -> None:
    data = run_bench(tmp_path, config="guard: [daemon-port]\n")
    assert scores(data)["self-protection"] == (2, 3)
    assert [f["id"] for f in data["failures"]] == ["s2"]
    assert data["guard"]["relaxed"] == ["daemon-port"]
