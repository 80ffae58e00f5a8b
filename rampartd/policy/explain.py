"""Why the engine decided what it did: the call's parts and effects, and for every rule that
matched, which of its patterns matched which part. Taken from the engine's own evaluation, so
`rampartd check` and `POST /v1/test` show exactly what the decision used. Pure, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rampartd.models import Decision, ToolCall
from rampartd.policy.counter import CallCounter
from rampartd.policy.effects import Effect
from rampartd.policy.engine import Match, decide, find_with_subjects
from rampartd.policy.policyset import PolicySet
from rampartd.policy.shell.parse import ParsedCommand
from rampartd.policy.subjects import Subjects


@dataclass(frozen=True, slots=True)
class Hit:
    """One pattern of a rule and the part of the call it matched (`effect`: index, or -1)."""

    condition: str
    pattern: str
    text: str
    effect: int = -1


@dataclass(frozen=True, slots=True)
class MatchNote:
    """A rule that held, and why."""

    match: Match
    hits: tuple[Hit, ...]


@dataclass(frozen=True, slots=True)
class Explanation:
    """A decision with the parts, effects and patterns behind it."""

    decision: Decision
    tool_class: str
    parsed: ParsedCommand | None
    effects: tuple[Effect, ...]
    matches: tuple[MatchNote, ...]

    def triggered(self, index: int) -> list[MatchNote]:
        """The matched rules that one effect (by index) made hold."""
        return [m for m in self.matches if any(h.effect == index for h in m.hits)]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the API and `check --json`)."""
        def rule_id(m: MatchNote) -> str:
            return f"{m.match.policy.name}#{m.match.rule.index + 1}"

        body: dict[str, Any] = {
            "tool_class": self.tool_class,
            "effects": [
                {"kind": e.kind, "target": e.shown(), "unknown": e.unknown, "source": e.source,
                 "flow": e.flow, "rules": [rule_id(m) for m in self.triggered(i)]}
                for i, e in enumerate(self.effects)],
            "matches": [
                {"rule": rule_id(m), "policy": m.match.policy.name,
                 "index": m.match.rule.index + 1, "file": m.match.rule.file,
                 "line": m.match.rule.line, "action": m.match.action,
                 "possible": m.match.possible,
                 "matched": [{"condition": h.condition, "pattern": h.pattern, "text": h.text}
                             for h in m.hits]}
                for m in self.matches],
        }
        if self.parsed is not None:
            body["parsed"] = {"components": [_shown(c.forms) for c in self.parsed.components],
                              "pipelines": list(self.parsed.pipelines),
                              "problem": self.parsed.problem}
        return body


def _shown(forms: tuple[str, ...]) -> str:
    return max(forms, key=len)


_UNIT_CONDITIONS = ("command_matches", "command_contains")
_EFFECT_CONDITIONS = (("program_matches", "program"), ("env_matches", "env"),
                      ("signal_matches", "signal"))


def _hits(policy_set: PolicySet, m: Match, subj: Subjects) -> list[Hit]:
    rule = m.rule
    patterns = policy_set.patterns
    effects = subj.effects()
    index = {id(e): n for n, e in enumerate(effects)}
    hits: list[Hit] = []
    if rule.has_command and subj.parsed is not None:
        parsed = subj.parsed
        texts = [_shown(c.forms) for c in parsed.components] + list(parsed.pipelines)
        if parsed.problem is not None:
            texts.append(parsed.source)
        for (ids, _), text in zip(subj.units(), texts, strict=False):
            for cond, pids in zip(_UNIT_CONDITIONS, (rule.command_matches,
                                                     rule.command_contains), strict=True):
                hits += [Hit(cond, patterns[p].source, text) for p in sorted(pids & ids)]
    if rule.path_matches:
        for e, maybe, _ in subj.files():
            if not rule.selects(e.kind, e.flow):
                continue
            hits += [Hit("path_matches", patterns[p].source, f"{e.kind} {e.shown()}",
                         index[id(e)]) for p in sorted(rule.path_matches & maybe)]
    for e, url_ids, domain_ids in subj.nets():
        for cond, pids, ids in (("url_matches", rule.url_matches, url_ids),
                                ("domain_matches", rule.domain_matches, domain_ids)):
            if e.unknown and pids:
                hits.append(Hit(cond, "(any)", e.shown(), index[id(e)]))
            hits += [Hit(cond, patterns[p].source, e.host if cond == "domain_matches"
                         else e.target, index[id(e)]) for p in sorted(pids & ids)]
    for cond, kind in _EFFECT_CONDITIONS:
        pids = getattr(rule, cond)
        if not pids:
            continue
        for e, ids in subj.texts(kind):
            if e.unknown:
                hits.append(Hit(cond, "(any)", e.shown(), index[id(e)]))
            hits += [Hit(cond, patterns[p].source, e.shown(), index[id(e)])
                     for p in sorted(pids & ids)]
    if rule.effect_kinds and not rule.has_command and not hits:
        hits += [Hit("effect", f"{e.kind}:{e.flow}" if e.flow else e.kind, e.shown(), n)
                 for n, e in enumerate(effects) if rule.selects(e.kind, e.flow)]
    if rule.session_matches:
        ids = subj.session()[0]
        hits += [Hit("session_matches", patterns[p].source, subj.call.session)
                 for p in sorted(rule.session_matches & ids)]
    return hits


def explain(policy_set: PolicySet, call: ToolCall, *, counter: CallCounter | None = None,
            now: float | None = None) -> Explanation:
    """Evaluate one call and keep what the decision was based on."""
    matches, subj = find_with_subjects(policy_set, call, counter, now)
    decision = decide(policy_set, matches, subj.parsed)
    notes = tuple(MatchNote(m, tuple(_hits(policy_set, m, subj))) for m in matches)
    return Explanation(decision, subj.tool, subj.parsed, subj.effects(), notes)
