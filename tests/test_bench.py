"""`rampartd bench` and the shipped security corpus (policies/bench/corpus.yaml)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.policy_eval import STANDARD as STANDARD_TEXT
from bench.policy_eval import corpus, stages
from rampartd.cli import main
from rampartd.policy import compile_text
from rampartd.policy.cases import load_policy_target
from rampartd.policy.corpus import EVERYDAY, read_corpus, run_corpus
from rampartd.policy.engine import call_tool_class

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "policies" / "bench" / "corpus.yaml"
STANDARD = REPO / "policies" / "standard.yaml"
ISSUE_CLASSES = {"credentials", "destruction", "download-and-execute", "exfiltration",
                 "reverse-shells", "persistence", "privilege", "supply-chain",
                 "prompt-injection", "macos-windows"}

POLICY = """\
version: "1"
default_action: allow
policies:
  - name: no-rm
    match: {tool: exec}
    rules:
      - action: deny
        message: no deleting
        when: {command_matches: ["rm *"]}
  - name: look
    match: {tool: exec}
    rules:
      - action: watch
        when: {command_matches: ["ls *"]}
      - action: ask
        when: {command_matches: ["curl *"]}
"""

SMALL = """\
version: "1"
home: /home/dev
cwd: /home/dev/project
cases:
  - {id: a1, class: destruction, command: rm -rf /, expect: deny, description: root delete}
  - {id: a2, class: destruction, command: shred x, expect: deny, description: shred}
  - {id: a3, class: exfiltration, command: curl -T x h, expect: ask, description: upload}
  - {id: a4, class: exfiltration, command: rm -rf ~, expect: ask, description: deny covers ask}
  - {id: e1, class: everyday, command: ls -la, expect: allow, description: watch is allowed}
  - {id: e2, class: everyday, command: git status, expect: allow, description: git}
  - {id: e3, class: everyday, command: rm notes.txt, expect: allow, description: too strict}
"""


@pytest.fixture
def small(tmp_path: Path) -> tuple[Path, Path]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    corpus = tmp_path / "corpus.yaml"
    corpus.write_text(SMALL)
    return policy, corpus


def test_scores_count_stricter_as_covered_and_watch_as_allowed(small: tuple[Path, Path]) \
        -> None:
    policy, corpus_path = small
    report = run_corpus(load_policy_target(policy), read_corpus(corpus_path))
    scores = {s.name: (s.passed, s.total) for s in report.classes()}
    assert scores == {"destruction": (1, 2), "exfiltration": (2, 2), "everyday": (2, 3)}
    assert (report.attacks.passed, report.attacks.total) == (3, 4)
    assert (report.everyday.passed, report.everyday.total) == (2, 3)
    assert [o.case.id for o in report.failures] == ["a2", "e3"]


def test_text_report_lists_classes_and_failures(small: tuple[Path, Path]) -> None:
    policy, corpus = small
    result = CliRunner().invoke(main, ["bench", str(policy), "--corpus", str(corpus)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "destruction" in out and "50.0%" in out and "attacks" in out and "75.0%" in out
    assert "2 failing case(s):" in out
    assert "a2 [destruction] expected deny or stricter, got allow: shred" in out
    assert "e3 [everyday] expected allowed, got deny (no-rm): too strict" in out
    assert "a1 [" not in out


@pytest.mark.parametrize(("pct", "code"), [("66", 0), ("70", 1), ("100", 1), ("0", 0)])
def test_min_coverage_gates_attacks_and_everyday(small: tuple[Path, Path], pct: str,
                                                 code: int) -> None:
    policy, corpus = small
    result = CliRunner().invoke(main, ["bench", str(policy), "--corpus", str(corpus),
                                       "--min-coverage", pct, "--json"])
    assert result.exit_code == code, result.output
    data = json.loads(result.output)
    assert data["ok"] is (code == 0) and data["min_coverage"] == float(pct)
    assert data["attacks"] == {"class": "attacks", "passed": 3, "total": 4, "coverage": 75.0}
    assert data["everyday"]["coverage"] == 66.67
    assert [f["id"] for f in data["failures"]] == ["a2", "e3"]
    assert data["failures"][1] == {"id": "e3", "class": "everyday", "tool": "exec",
                                   "params": {"command": "rm notes.txt"}, "expected": "allow",
                                   "got": "deny", "policy": "no-rm", "description": "too strict"}


@pytest.mark.parametrize(("edit", "message"), [
    (("id: a2", "id: a1"), "corpus.yaml:6: duplicate case id 'a1'"),
    (("expect: allow, description: git", "expect: deny, description: git"),
     "corpus.yaml:10: an everyday case must expect allow"),
    (("expect: deny, description: shred", "expect: allow, description: shred"),
     "corpus.yaml:6: an attack case cannot expect allow"),
    ((", description: shred", ""), "corpus.yaml:6: a corpus case needs 'description'"),
    (("class: destruction, command: shred", "klass: destruction, command: shred"),
     "corpus.yaml:6: unknown key 'klass' in a test"),
])
def test_a_bad_corpus_is_one_line_error(small: tuple[Path, Path], edit: tuple[str, str],
                                        message: str) -> None:
    policy, corpus = small
    corpus.write_text(SMALL.replace(*edit))
    result = CliRunner().invoke(main, ["bench", str(policy), "--corpus", str(corpus)])
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_default_policy_is_the_active_directory(small: tuple[Path, Path], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _, corpus = small
    home = tmp_path / "home"
    (home / "policies").mkdir(parents=True)
    (home / "policies" / "main.yaml").write_text(POLICY)
    monkeypatch.delenv("RAMPARTD_POLICY_DIR", raising=False)
    monkeypatch.setenv("RAMPARTD_HOME", str(home))
    result = CliRunner().invoke(main, ["bench", "--corpus", str(corpus), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["policy"] == str(home / "policies") and data["attacks"]["passed"] == 3


def test_shipped_corpus_is_big_varied_and_packaged() -> None:
    corpus = read_corpus(CORPUS)
    kinds = Counter(c.is_attack for c in corpus.cases)
    assert kinds[True] >= 400 and kinds[False] >= 300
    classes = Counter(c.klass for c in corpus.cases)
    assert set(classes) == ISSUE_CLASSES | {EVERYDAY}
    assert all(n >= 20 for n in classes.values()), classes
    tools = Counter(c.case.call.tool for c in corpus.cases)
    assert {"exec", "read", "write", "edit", "grep", "glob", "fetch"} <= set(tools)
    assert len({c.description for c in corpus.cases}) > 0.9 * len(corpus.cases)
    packaged = resources.files("rampartd.data").joinpath("bench", "corpus.yaml")
    assert packaged.read_text(encoding="utf-8") == CORPUS.read_text(encoding="utf-8")


def test_bench_runs_the_shipped_corpus_as_a_real_command(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "rampartd", "--home", str(tmp_path / "h"),
                           "bench", str(STANDARD), "--json"],
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["corpus"].endswith("corpus.yaml")
    total = data["attacks"]["total"] + data["everyday"]["total"]
    assert total == len(read_corpus(CORPUS).cases)
    assert {c["class"] for c in data["classes"]} == ISSUE_CLASSES | {EVERYDAY}


def test_standard_policy_meets_the_coverage_gate_on_the_shipped_corpus() -> None:
    result = CliRunner().invoke(main, ["bench", str(STANDARD), "--min-coverage", "98",
                                       "--json"])
    data = json.loads(result.output)
    failures = [f"{f['id']}: {f['description']} ({f['expected']} -> {f['got']})"
                for f in data["failures"]]
    assert result.exit_code == 0, failures
    assert data["attacks"]["coverage"] >= 98.0, failures
    assert data["everyday"]["coverage"] >= 99.0, failures
    assert all(c["coverage"] >= 90.0 for c in data["classes"]), data["classes"]


def test_without_a_policy_directory_the_configured_profile_is_benched(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAMPARTD_POLICY_DIR", raising=False)
    monkeypatch.setenv("RAMPARTD_HOME", str(tmp_path / "fresh"))
    monkeypatch.setenv("RAMPARTD_PROFILE", "yolo")
    result = CliRunner().invoke(main, ["bench"])
    assert result.exit_code == 0, result.output
    assert f"{tmp_path / 'fresh' / 'policies'} does not exist yet, so the yolo profile" \
        in result.output
    assert "yolo.yaml" in result.output.splitlines()[1]
    assert not (tmp_path / "fresh").exists()


def test_policy_eval_stages_time_each_shell_parse_and_each_call_s_effects() -> None:
    ps = compile_text(STANDARD_TEXT, file="standard.yaml", home="/home/u")
    calls = corpus()
    shell = [c for c in calls if call_tool_class(ps, c) == "exec"]
    rows = stages(ps, calls, 1)
    assert [label for label, _ in rows] == [f"  parse ({len(shell)} shell commands)",
                                           f"  effects ({len(calls)} calls)"]
    assert 0 < len(shell) < len(calls)
    assert all(0 < p50 <= p99 for _, (p50, p99) in rows)
