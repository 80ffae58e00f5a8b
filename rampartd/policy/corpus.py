"""Security corpora: attack and everyday cases grouped in classes, and their coverage.

    version: "1"
    home: /home/dev               # the home `~` stands for, so results do not depend on the host
    cwd: /home/dev/project        # the default working directory of every case
    cases:
      - id: cred-ssh-read
        class: credentials        # `everyday` marks work that must be allowed
        tool: read
        params: {file_path: ~/.ssh/id_ed25519}
        expect: deny
        description: the read tool on a private key

An attack case is covered when the decision is at least as strict as `expect` (a deny covers an
expected ask: a profile that denies what the standard policy asks about is not weaker). An
everyday case passes when the call is allowed (allow or watch). The runner is the policy test
runner of rampartd.policy.cases; this module only reads the corpus and counts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from rampartd.models import SEVERITY
from rampartd.policy.cases import CaseResult, PolicyCase, parse_case, run_cases
from rampartd.policy.compiler import FileContext
from rampartd.policy.loader import YList, read_policy_file
from rampartd.policy.policyset import PolicySet

EVERYDAY = "everyday"
FILE_KEYS = ("version", "home", "cwd", "cases")
CORPUS_CASE_KEYS = ("id", "class", "tool", "command", "params", "cwd", "expect", "description")
ALLOWED_ACTIONS = ("allow", "watch")


@dataclass(frozen=True, slots=True)
class CorpusCase:
    """One case of a corpus: the policy case plus its class and description."""

    id: str
    klass: str
    description: str
    case: PolicyCase

    @property
    def is_attack(self) -> bool:
        """True unless the case is everyday work."""
        return self.klass != EVERYDAY


@dataclass(frozen=True, slots=True)
class Corpus:
    """A parsed corpus file."""

    path: Path
    home: str | None
    cases: tuple[CorpusCase, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the policy decided for one corpus case, and whether that counts as covered."""

    case: CorpusCase
    result: CaseResult

    @property
    def passed(self) -> bool:
        """Attacks: at least as strict as expected; everyday work: allowed."""
        action = self.result.action
        if not self.case.is_attack:
            return action in ALLOWED_ACTIONS
        return SEVERITY[action] >= SEVERITY[self.case.case.expect]


@dataclass(frozen=True, slots=True)
class ClassScore:
    """Passed and total cases of one class."""

    name: str
    passed: int
    total: int

    @property
    def percent(self) -> float:
        """Share passed, 0-100 (100 for an empty class)."""
        return 100.0 * self.passed / self.total if self.total else 100.0


@dataclass(frozen=True, slots=True)
class Report:
    """Every outcome with the scores derived from it."""

    outcomes: tuple[Outcome, ...]

    def classes(self) -> list[ClassScore]:
        """One score per class, in the order the classes first appear."""
        seen: dict[str, list[int]] = {}
        for o in self.outcomes:
            counts = seen.setdefault(o.case.klass, [0, 0])
            counts[0] += o.passed
            counts[1] += 1
        return [ClassScore(name, p, t) for name, (p, t) in seen.items()]

    def _score(self, name: str, attacks: bool) -> ClassScore:
        chosen = [o for o in self.outcomes if o.case.is_attack is attacks]
        return ClassScore(name, sum(o.passed for o in chosen), len(chosen))

    @property
    def attacks(self) -> ClassScore:
        """All attack cases together."""
        return self._score("attacks", True)

    @property
    def everyday(self) -> ClassScore:
        """All everyday cases together."""
        return self._score(EVERYDAY, False)

    @property
    def failures(self) -> list[Outcome]:
        """The cases that did not pass, in corpus order."""
        return [o for o in self.outcomes if not o.passed]


def read_corpus(path: Path) -> Corpus:
    """Parse and validate a corpus file (PolicyError with file and line on mistakes)."""
    doc = read_policy_file(path)
    ctx = FileContext(doc.file)
    top = ctx.mapping(doc.data, 1, "a corpus file")
    ctx.check_keys(top, FILE_KEYS, "the corpus file")
    home = ctx.text(top["home"], top.line_of("home"), "home") if "home" in top else None
    cwd = ctx.text(top["cwd"], top.line_of("cwd"), "cwd") if "cwd" in top else None
    raw_cases = top.get("cases")
    if not isinstance(raw_cases, YList) or not raw_cases:
        raise ctx.fail(top.line_of("cases"), "'cases' must be a non-empty list")
    cases: list[CorpusCase] = []
    ids: set[str] = set()
    for i, raw in enumerate(raw_cases):
        line = raw_cases.line_of(i)
        policy_case = parse_case(ctx, raw, line, i, keys=CORPUS_CASE_KEYS, cwd=cwd)
        spec = ctx.mapping(raw, line, f"case {i + 1}")
        for key in ("id", "class", "description"):
            if key not in spec:
                raise ctx.fail(spec.line, f"a corpus case needs '{key}'")
        case_id = ctx.text(spec["id"], spec.line_of("id"), "id")
        if case_id in ids:
            raise ctx.fail(spec.line_of("id"), f"duplicate case id {case_id!r}")
        ids.add(case_id)
        klass = ctx.text(spec["class"], spec.line_of("class"), "class")
        if klass == EVERYDAY and policy_case.expect != "allow":
            raise ctx.fail(spec.line_of("expect"), "an everyday case must expect allow")
        if klass != EVERYDAY and policy_case.expect == "allow":
            raise ctx.fail(spec.line_of("expect"), "an attack case cannot expect allow",
                           "use deny, ask or watch, or class: everyday")
        description = ctx.text(spec["description"], spec.line_of("description"), "description")
        cases.append(CorpusCase(case_id, klass, description,
                                dataclasses.replace(policy_case, name=case_id)))
    return Corpus(path, home, tuple(cases))


def run_corpus(policy_set: PolicySet, corpus: Corpus) -> Report:
    """Evaluate every case of the corpus against the policy set."""
    results = run_cases(policy_set, tuple(c.case for c in corpus.cases))
    return Report(tuple(Outcome(c, r) for c, r in zip(corpus.cases, results, strict=True)))
