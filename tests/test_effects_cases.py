"""The standard policy against the effects case files: attacks by another route, and the
everyday work that must stay allowed (policies/tests/effects-*.yaml)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rampartd.policy.cases import read_test_file, run_cases
from rampartd.policy.compiler import load_policy_dir

REPO = Path(__file__).resolve().parent.parent
ATTACKS = REPO / "policies" / "tests" / "effects-attacks.yaml"
EVERYDAY = REPO / "policies" / "tests" / "effects-everyday.yaml"


def test_the_case_files_are_big_and_say_what_they_test() -> None:
    attacks = read_test_file(ATTACKS).cases
    everyday = read_test_file(EVERYDAY).cases
    assert len(attacks) >= 150 and len(everyday) >= 150
    assert all(c.expect in ("deny", "ask") for c in attacks)
    assert all(c.expect == "allow" for c in everyday)
    for cases in (attacks, everyday):
        assert len({c.name for c in cases}) == len(cases)


@pytest.mark.parametrize("home", [os.path.expanduser("~"), "/home/dev", "/Users/dev"])
@pytest.mark.parametrize("path", [ATTACKS, EVERYDAY], ids=["attacks", "everyday"])
def test_every_case_passes_whatever_the_home(path: Path, home: str, tmp_path: Path) -> None:
    (tmp_path / "standard.yaml").write_text((REPO / "policies" / "standard.yaml").read_text())
    policy_set = load_policy_dir(tmp_path, home=home)
    results = run_cases(policy_set, read_test_file(path).cases)
    failures = [f"line {r.case.line}: {r.case.name!r} expected {r.case.expect}, got {r.action} "
                f"({r.policy}: {r.message})" for r in results if not r.passed]
    assert not failures, "\n".join(failures)
