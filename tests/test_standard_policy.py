"""The standard policy against its case file (policies/tests/standard-tests.yaml)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from rampartd.policy.cases import CaseResult, load_policy_target, read_test_file, run_test_file

REPO = Path(__file__).resolve().parent.parent
CASES = REPO / "policies" / "tests" / "standard-tests.yaml"


@pytest.fixture(scope="module")
def results() -> list[CaseResult]:
    return run_test_file(CASES)


def test_the_case_file_is_big_and_balanced() -> None:
    cases = read_test_file(CASES).cases
    assert len(cases) >= 150
    kinds = Counter("allow" if c.expect in ("allow", "watch") else "block" for c in cases)
    assert kinds["allow"] >= 0.35 * len(cases) and kinds["block"] >= 0.35 * len(cases)
    assert len({c.name for c in cases}) == len(cases)


def test_every_case_passes(results: list[CaseResult]) -> None:
    failures = [f"line {r.case.line}: {r.case.name!r} expected {r.case.expect} "
                f"({r.case.expect_policy}), got {r.action} ({r.policy}): {r.message}"
                for r in results if not r.passed]
    assert failures == []


def test_every_class_explains_itself() -> None:
    policy_set = load_policy_target(REPO / "policies" / "standard.yaml")
    assert policy_set.warnings == ()
    for policy in policy_set.policies:
        assert policy.description, policy.name
        for rule in policy.rules:
            if rule.action != "allow":
                assert rule.message and rule.suggestions, (policy.name, rule.index)
