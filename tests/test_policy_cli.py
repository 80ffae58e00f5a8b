"""`rampartd policy lint|test|summary` and `rampartd check`, through click's runner."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rampartd.cli.policy import check, policy

REPO = Path(__file__).resolve().parent.parent
STANDARD = REPO / "policies" / "standard.yaml"

GOOD = """\
version: "1"
default_action: allow
policies:
  - name: no-rm
    match: {tool: exec}
    rules:
      - action: deny
        message: no deleting
        when: {command_matches: ["rm *"]}
      - action: allow
        when: {default: true}
      - action: ask
        when: {command_matches: ["curl *"]}
"""


@pytest.fixture
def active(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A rampartd home whose active policy directory holds GOOD."""
    home = tmp_path / "home"
    (home / "policies").mkdir(parents=True)
    (home / "policies" / "main.yaml").write_text(GOOD)
    for name in ("RAMPARTD_POLICY_DIR", "RAMPARTD_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAMPARTD_HOME", str(home))
    return home / "policies"


def test_lint_reports_counts_and_warnings(active: Path) -> None:
    result = CliRunner().invoke(policy, ["lint"])
    assert result.exit_code == 0, result.output
    assert "warning: main.yaml:" in result.output and "shadowed" in result.output
    assert "ok: 1 policies, 3 rules, default action allow, 1 warning(s)" in result.output


def test_lint_fails_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(GOOD.replace("command_matches", "command_matchs"))
    result = CliRunner().invoke(policy, ["lint", str(tmp_path)])
    assert result.exit_code != 0
    assert "bad.yaml:9: unknown key 'command_matchs' in when (did you mean " \
           "'command_matches'?)" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_test_command_prints_a_table_and_fails_on_mismatch(tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(f"""\
version: "1"
policy: {STANDARD}
tests:
  - {{command: "rm -rf /", expect: deny, expect_policy: destruction}}
  - {{command: "git status", expect: allow}}
  - {{name: wrong on purpose, command: "ls", expect: deny}}
""")
    result = CliRunner().invoke(policy, ["test", str(cases)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any(line.split()[:2] == ["PASS", "4"] for line in lines)
    assert any("FAIL" in line and "wrong on purpose" in line for line in lines)
    assert "2 passed, 1 failed" in result.output


def test_test_command_uses_the_active_directory(active: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text('version: "1"\ntests:\n  - {command: "rm x", expect: deny}\n'
                     '  - {tool: read, params: {path: /x}, expect: allow}\n')
    result = CliRunner().invoke(policy, ["test", str(cases)])
    assert result.exit_code == 0, result.output
    assert "2 passed, 0 failed" in result.output


def test_test_command_reports_bad_test_files(tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text('version: "1"\ntests:\n  - {command: ls, expekt: allow}\n')
    result = CliRunner().invoke(policy, ["test", str(cases)])
    assert result.exit_code != 0
    assert "cases.yaml:3: unknown key 'expekt'" in result.output
    assert "Traceback" not in result.output


def test_summary_plain_and_json(active: Path) -> None:
    result = CliRunner().invoke(policy, ["summary"])
    assert result.exit_code == 0
    assert "1. deny when the command matches `rm *`" in result.output
    data = json.loads(CliRunner().invoke(policy, ["summary", "--json"]).output)
    assert data["policies"][0]["name"] == "no-rm"


def test_check_explains_a_denial() -> None:
    result = CliRunner().invoke(check, ["--policy-dir", str(STANDARD),
                                        "git status && sudo rm -rf ~/"])
    assert result.exit_code == 2
    out = result.output
    assert out.startswith("deny: Recursive deletion")
    assert "  - sudo rm -rf ~/" in out
    assert "* destruction rule 2 (standard.yaml:" in out
    assert "privilege rule" in out and "ask: matched `re:^(sudo" in out and "suggestion:" in out


def test_check_allow_ask_and_other_tools(active: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(check, ["ls -la"])
    assert ok.exit_code == 0 and ok.output.startswith("allow:")
    unparsable = runner.invoke(check, ["echo 'open"])
    assert unparsable.exit_code == 3 and "unterminated single quote" in unparsable.output
    read = runner.invoke(check, ["--policy-dir", str(STANDARD), "--tool", "read", "--json",
                                 "~/.ssh/id_rsa"])
    assert read.exit_code == 2
    assert json.loads(read.output)["policy"] == "credentials"
    limits = REPO / "policies" / "examples" / "transfer-limits.yaml"
    funds = runner.invoke(check, ["--policy-dir", str(limits),
                                  "--tool", "transfer_funds", "--param", "amount=5000",
                                  "--param", "currency=EUR"])
    assert funds.exit_code == 3 and "above 1,000" in funds.output


def test_check_needs_something_to_check(active: Path) -> None:
    result = CliRunner().invoke(check, [])
    assert result.exit_code != 0 and "give a COMMAND" in result.output


def test_check_reports_a_missing_policy_dir(tmp_path: Path) -> None:
    result = CliRunner().invoke(check, ["--policy-dir", str(tmp_path / "none"), "ls"])
    assert result.exit_code == 1 and "no such policy file or directory" in result.output
    assert "Traceback" not in result.output



def test_output_into_a_closed_pipe_stops_quietly(tmp_path: Path) -> None:
    # `rampartd policy summary | head -1`: the reader leaves after one line, long before the
    # summary (far larger than a pipe's buffer) is written.
    lines = ['version: "1"', "default_action: allow", "policies:"]
    for i in range(3000):
        lines += [f"  - name: p{i}", "    rules:", "      - action: deny",
                  f'        when: {{command_matches: ["tool{i} *"]}}']
    (tmp_path / "many.yaml").write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "rampartd", "policy", "summary", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait() == 128 + signal.SIGPIPE, err
    assert b"Error" not in err and b"Traceback" not in err
