"""Policy test files: YAML cases that say what a policy must decide, and their runner.

    version: "1"
    policy: ../standard.yaml      # optional; a file or directory, relative to this file
    tests:
      - name: blocks rm -rf of the home directory
        command: rm -rf ~         # shorthand for tool: exec, params: {command: ...}
        expect: deny
      - name: small transfers pass
        tool: transfer_funds
        params: {amount: 10}
        agent: billing-bot        # agent and session default to "test"
        expect: allow
        expect_policy: limits     # optional: the policy that decided
      - name: the 6th call in a minute is refused
        tool: search
        prior_calls: 5            # calls already made to this tool in the last second
        expect: deny

Without `policy:` the runner uses the policy set it is given (the active directory).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rampartd.errors import PolicyError
from rampartd.models import ToolCall
from rampartd.policy.compiler import FileContext, compile_documents, load_policy_dir
from rampartd.policy.counter import SlidingWindowCounter
from rampartd.policy.engine import evaluate
from rampartd.policy.loader import RawDoc, YList, read_policy_file
from rampartd.policy.policyset import PolicySet
from rampartd.policy.reload import compile_with_builtin, load_with_builtin

FILE_KEYS = ("version", "policy", "tests")
CASE_KEYS = ("name", "tool", "command", "params", "agent", "session", "cwd", "expect",
             "expect_policy", "prior_calls")
TEST_NOW = 1_000_000.0


@dataclass(frozen=True, slots=True)
class PolicyCase:
    """One expectation."""

    name: str
    line: int
    call: ToolCall
    expect: str
    expect_policy: str | None
    prior_calls: int


@dataclass(frozen=True, slots=True)
class CaseResult:
    """What the policy decided for one case."""

    case: PolicyCase
    action: str
    policy: str | None
    message: str

    @property
    def passed(self) -> bool:
        """True if the decision is what the case expects."""
        if self.action != self.case.expect:
            return False
        return self.case.expect_policy is None or self.case.expect_policy == self.policy


@dataclass(frozen=True, slots=True)
class CaseFile:
    """A parsed test file and the policy it names (if any)."""

    path: Path
    policy: Path | None
    cases: tuple[PolicyCase, ...]


def parse_case(ctx: FileContext, raw: Any, line: int, index: int, *,
               keys: tuple[str, ...] = CASE_KEYS, cwd: str | None = None) -> PolicyCase:
    """One case of a test file (or of a corpus, whose `keys` add its own); `cwd` is the default."""
    spec = ctx.mapping(raw, line, f"test {index + 1}")
    ctx.check_keys(spec, keys, "a test")
    if "expect" not in spec:
        raise ctx.fail(spec.line, "a test needs 'expect'", "allow, deny, ask or watch")
    expect = ctx.action(spec["expect"], spec.line_of("expect"), "expect")
    params: dict[str, Any] = {}
    if "params" in spec:
        params = dict(ctx.mapping(spec["params"], spec.line_of("params"), "params"))
    if "command" in spec:
        params["command"] = ctx.text(spec["command"], spec.line_of("command"), "command")
    tool = ctx.text(spec.get("tool", "exec"), spec.line_of("tool"), "tool")

    def opt(key: str, default: str | None) -> str | None:
        if key not in spec:
            return default
        return ctx.text(spec[key], spec.line_of(key), key)

    prior = spec.get("prior_calls", 0)
    if isinstance(prior, bool) or not isinstance(prior, int) or prior < 0:
        raise ctx.fail(spec.line_of("prior_calls"), "prior_calls must be a whole number >= 0")
    name = opt("name", None) or str(params.get("command") or f"test {index + 1}")
    call = ToolCall(tool=tool, agent=opt("agent", "test") or "test",
                    session=opt("session", "test") or "test", params=params,
                    cwd=opt("cwd", cwd))
    return PolicyCase(name, spec.line, call, expect, opt("expect_policy", None), prior)


def read_test_file(path: Path) -> CaseFile:
    """Parse and validate a test file (PolicyError with file and line on mistakes)."""
    doc = read_policy_file(path)
    ctx = FileContext(doc.file)
    top = ctx.mapping(doc.data, 1, "a test file")
    ctx.check_keys(top, FILE_KEYS, "the test file")
    tests = top.get("tests")
    if not isinstance(tests, YList) or not tests:
        raise ctx.fail(top.line_of("tests"), "'tests' must be a non-empty list")
    policy: Path | None = None
    if "policy" in top:
        rel = ctx.text(top["policy"], top.line_of("policy"), "policy")
        policy = (path.parent / rel).resolve()
    cases = tuple(parse_case(ctx, raw, tests.line_of(i), i) for i, raw in enumerate(tests))
    return CaseFile(path, policy, cases)


def load_policy_target(target: Path, *, home: str | None = None,
                       builtin: Sequence[RawDoc] = ()) -> PolicySet:
    """A policy set from a directory or from one file (`home` for `~`, default the user's),
    with built-in documents (the guard) ahead of it when given."""
    if target.is_dir():
        if builtin:
            return load_with_builtin(target, builtin, home=home)
        return load_policy_dir(target, home=home)
    if not target.is_file():
        raise PolicyError("no such policy file or directory", file=str(target))
    if builtin:
        return compile_with_builtin([read_policy_file(target)], builtin,
                                    source_dir=target.parent, home=home)
    return compile_documents([read_policy_file(target)], source_dir=target.parent, home=home)


def run_cases(policy_set: PolicySet, cases: tuple[PolicyCase, ...]) -> list[CaseResult]:
    """Evaluate every case (each with its own call counter)."""
    results: list[CaseResult] = []
    for case in cases:
        counter = SlidingWindowCounter()
        for _ in range(case.prior_calls):
            counter.record(case.call.agent, case.call.tool, TEST_NOW - 1.0)
        decision = evaluate(policy_set, case.call, counter=counter, now=TEST_NOW)
        results.append(CaseResult(case, decision.action, decision.policy, decision.message))
    return results


def run_test_file(path: Path, default: Callable[[], PolicySet] | None = None) -> list[CaseResult]:
    """Run one test file against the policy it names, or against `default()`."""
    test_file = read_test_file(path)
    if test_file.policy is not None:
        policy_set = load_policy_target(test_file.policy)
    elif default is not None:
        policy_set = default()
    else:
        raise PolicyError("the test file names no policy and no policy directory was given",
                          file=path.name, hint="add policy: <file or directory>")
    return run_cases(policy_set, test_file.cases)
