"""Evaluate one tool call against a PolicySet. Pure: no I/O; the only clock read is
`time.perf_counter_ns` for `evaluation_time_us`.

Semantics:

- A policy is in scope when its `match.tool`, `match.agent` and `match.session` globs all
  cover the call. In-scope policies are taken in priority order (lower first); within a
  policy the first rule whose conditions all hold decides for that policy.
- Across policies the most restrictive decision wins: deny > ask > watch > allow. The
  message and `policy` come from the first policy (in order) that produced that action;
  `matched_policies` lists every policy that matched, in order. Nothing matched →
  the set's `default_action`.
- Conditions are AND-ed across keys and OR-ed within a key's list. A condition on something
  the call does not have (no command, no path, no URL) does not hold.
- Shell commands are parsed into components (see rampartd.policy.shell.parse). A deny, ask or watch
  rule holds if any component - or any whole pipeline, for rules without
  `command_not_matches` - satisfies all of its command conditions; an allow rule must
  cover every component. If the command cannot be fully understood, allow rules with
  command conditions never hold, deny/ask rules also see the raw text, and a final allow or
  watch becomes ask: unparseable commands fail closed.
- `params` comparisons that cannot be decided (a number constraint against text that is not a
  number, a regex against a non-string) hold for deny/ask/watch rules and fail for allow rules.
- `call_count: {max: N, window: W}` holds when the agent has already made N or more calls to
  this tool in the last W seconds, i.e. the current call would be call N+1 or later. The
  current call itself is not in the counter yet: the caller records every evaluated call
  (whatever the decision) after evaluating it. Without a counter the count is 0.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rampartd.models import SEVERITY, Action, Decision, ToolCall
from rampartd.policy.counter import CallCounter
from rampartd.policy.counter import SlidingWindowCounter as SlidingWindowCounter
from rampartd.policy.matchers import (
    AMBIGUOUS,
    as_number,
    lookup_param,
    normalize_path,
    normalize_url,
    url_host,
    values_equal,
)
from rampartd.policy.policyset import ParamCheck, Plan, Policy, PolicySet, Rule
from rampartd.policy.shell.parse import ParsedCommand, parse_command


@dataclass(frozen=True, slots=True)
class Match:
    """A policy whose rule held for the call."""

    policy: Policy
    rule: Rule


# A command unit: (pattern ids found in its texts, kind: component | pipeline | raw).
_Unit = tuple[frozenset[int], str]


def _command_text(params: Mapping[str, Any]) -> str | None:
    value = params.get("command")
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return shlex.join(value)
    return None


class _Subjects:
    """The call's texts, normalised and matched against the plan's pattern sets, on demand."""

    __slots__ = ("_domain_ids", "_path", "_session", "_text", "_units", "_url_ids", "_urls",
                 "call", "parsed", "plan", "ps")

    def __init__(self, policy_set: PolicySet, plan: Plan, call: ToolCall) -> None:
        self.ps = policy_set
        self.plan = plan
        self.call = call
        self.parsed: ParsedCommand | None = None
        self._text: str | None = None
        self._units: list[_Unit] | None = None
        self._path: list[frozenset[int]] | None = None
        self._urls: list[str] | None = None
        self._url_ids: list[frozenset[int]] | None = None
        self._domain_ids: list[frozenset[int]] | None = None
        self._session: list[frozenset[int]] | None = None
        text = _command_text(call.params)
        if text is None and call.tool == "exec":
            # A shell call whose command cannot be read is not a call we can vouch for.
            self.parsed = ParsedCommand("", (), problem="the exec call has no command text")
        elif text is not None and (call.tool == "exec" or "command" in plan.sets):
            # Agents repeat commands; the plan remembers what each text parsed and matched to.
            hit = plan.commands.get(text)
            if hit is not None:
                self.parsed, self._units = hit
            else:
                self.parsed = parse_command(text)
                self._text = text

    @property
    def problem(self) -> str | None:
        return self.parsed.problem if self.parsed is not None else None

    def _match(self, kind: str, text: str) -> frozenset[int]:
        pset = self.plan.sets.get(kind)
        return pset.match(text) if pset is not None else frozenset()

    def units(self) -> list[_Unit]:
        if self._units is None:
            units: list[_Unit] = []
            parsed = self.parsed
            if parsed is not None and "command" in self.plan.sets:
                pset = self.plan.sets["command"]
                for comp in parsed.components:
                    ids = pset.match(comp.forms[0])
                    for form in comp.forms[1:]:
                        ids = ids | pset.match(form)
                    units.append((ids, "component"))
                units += [(pset.match(p), "pipeline") for p in parsed.pipelines]
                if parsed.problem is not None:
                    units.append((pset.match(parsed.source), "raw"))
            self._units = units
            if self._text is not None and parsed is not None:
                self.plan.remember(self._text, parsed, units)
        return self._units

    def path(self) -> list[frozenset[int]]:
        if self._path is None:
            params = self.call.params
            raw = params.get("path")
            if not isinstance(raw, str):
                raw = params.get("file_path")
            self._path = []
            if isinstance(raw, str) and raw:
                norm = normalize_path(raw, cwd=self.call.cwd, home=self.ps.home)
                self._path.append(self._match("path", norm))
        return self._path

    def urls(self) -> list[str]:
        if self._urls is None:
            found: list[str] = []
            url = self.call.params.get("url")
            if isinstance(url, str) and url:
                found.append(url)
            if self.parsed is not None:
                found.extend(self.parsed.urls)
            self._urls = found
        return self._urls

    def url_ids(self) -> list[frozenset[int]]:
        if self._url_ids is None:
            self._url_ids = [self._match("url", normalize_url(u)) for u in self.urls()]
        return self._url_ids

    def domain_ids(self) -> list[frozenset[int]]:
        if self._domain_ids is None:
            ids: list[frozenset[int]] = []
            for url in self.urls():
                host = url_host(url)
                if host:
                    ids.append(self._match("domain", host))
            self._domain_ids = ids
        return self._domain_ids

    def session(self) -> list[frozenset[int]]:
        if self._session is None:
            self._session = [self._match("session", self.call.session)]
        return self._session

    def id_sets(self, kind: str) -> list[frozenset[int]]:
        if kind == "command":
            return [u[0] for u in self.units()]
        if kind == "path":
            return self.path()
        if kind == "url":
            return self.url_ids()
        if kind == "domain":
            return self.domain_ids()
        return self.session()


def _check_param(check: ParamCheck, params: Mapping[str, Any]) -> bool | None:
    """True/False, or None when the comparison cannot be decided."""
    present, value = lookup_param(params, check.name)
    if check.op == "exists":
        return bool((present and value is not None) == check.value)
    if not present:
        return False
    if value is AMBIGUOUS:
        return None
    op = check.op
    if op == "eq":
        return values_equal(value, check.value)
    if op == "ne":
        return not values_equal(value, check.value)
    if op in ("in", "not_in"):
        hit = any(values_equal(value, v) for v in check.value)
        return hit if op == "in" else not hit
    if op in ("glob", "regex"):
        if not isinstance(value, str):
            return None
        return bool(check.compiled.search(value) is not None)
    number = as_number(value)
    if number is None:
        return None
    limit = check.value
    if op == "gt":
        return bool(number > limit)
    if op == "gte":
        return bool(number >= limit)
    if op == "lt":
        return bool(number < limit)
    return bool(number <= limit)


def _unit_ok(rule: Rule, ids: frozenset[int]) -> bool:
    if rule.command_matches and rule.command_matches.isdisjoint(ids):
        return False
    if rule.command_contains and rule.command_contains.isdisjoint(ids):
        return False
    return not (rule.command_not_matches and not rule.command_not_matches.isdisjoint(ids))


def _over(sets: list[frozenset[int]], pos: frozenset[int], restrictive: bool) -> bool:
    if not sets:
        return False
    if restrictive:
        return any(not pos.isdisjoint(ids) for ids in sets)
    return all(not pos.isdisjoint(ids) for ids in sets)


def _rule_holds(rule: Rule, subj: _Subjects, call: ToolCall, counter: CallCounter | None,
                now: float | None) -> bool:
    if rule.default:
        return True
    restrictive = rule.action != "allow"
    if rule.has_command:
        if subj.parsed is None or (not restrictive and subj.problem is not None):
            return False
        units = subj.units()
        if restrictive:
            skip_pipes = bool(rule.command_not_matches)
            if not any(_unit_ok(rule, ids) for ids, kind in units
                       if not (skip_pipes and kind == "pipeline")):
                return False
        else:
            comps = [ids for ids, kind in units if kind == "component"]
            if not comps or not all(_unit_ok(rule, ids) for ids in comps):
                return False
    if rule.path_matches or rule.path_not_matches:
        path = subj.path()
        if not path:
            return False
        if rule.path_matches and rule.path_matches.isdisjoint(path[0]):
            return False
        if rule.path_not_matches and not rule.path_not_matches.isdisjoint(path[0]):
            return False
    if rule.url_matches and not _over(subj.url_ids(), rule.url_matches, restrictive):
        return False
    if rule.domain_matches and not _over(subj.domain_ids(), rule.domain_matches, restrictive):
        return False
    if rule.session_matches or rule.session_not_matches:
        ids = subj.session()[0]
        if rule.session_matches and rule.session_matches.isdisjoint(ids):
            return False
        if rule.session_not_matches and not rule.session_not_matches.isdisjoint(ids):
            return False
    for check in rule.params:
        result = _check_param(check, call.params)
        if not (restrictive if result is None else result):
            return False
    if rule.call_count is not None:
        previous = 0
        if counter is not None:
            if now is None:
                raise ValueError("evaluate() needs now= when a counter is given")
            previous = counter.count(call.agent, call.tool, rule.call_count.window, now)
        if previous < rule.call_count.max:
            return False
    return True


def _in_scope(policy: Policy, call: ToolCall) -> bool:
    if policy.agent_regex is not None and policy.agent_regex.search(call.agent) is None:
        return False
    return policy.session_regex is None or policy.session_regex.search(call.session) is not None


def find_matches(policy_set: PolicySet, call: ToolCall, *, counter: CallCounter | None = None,
                 now: float | None = None) -> tuple[list[Match], ParsedCommand | None]:
    """Every in-scope policy's deciding rule, in order, and the parsed command (if any)."""
    plan = policy_set.plan_for(call.tool)
    subj = _Subjects(policy_set, plan, call)
    candidates = set(plan.always)
    for kind, index in plan.index.items():
        for ids in subj.id_sets(kind):
            for pid in ids:
                hit = index.get(pid)
                if hit is not None:
                    candidates.update(hit)
    decided: set[int] = set()
    matches: list[Match] = []
    for pos in sorted(candidates):
        ppos, rule = plan.rules[pos]
        if ppos in decided:
            continue
        policy = plan.policies[ppos]
        if not _in_scope(policy, call):
            decided.add(ppos)
            continue
        if _rule_holds(rule, subj, call, counter, now):
            decided.add(ppos)
            matches.append(Match(policy, rule))
    return matches, subj.parsed


def _severity(match: Match) -> int:
    return SEVERITY[match.rule.action]


_DEFAULT_MESSAGES = {
    "deny": "denied by policy '{}'",
    "ask": "policy '{}' asks for approval",
    "watch": "allowed and flagged by policy '{}'",
    "allow": "allowed by policy '{}'",
}


def decide(policy_set: PolicySet, matches: list[Match], parsed: ParsedCommand | None,
           start_ns: int | None = None) -> Decision:
    """Combine the matched rules into one Decision (most restrictive wins)."""
    action: Action = policy_set.default_action
    message = f"no policy matched; the default action is {action}"
    policy: str | None = None
    suggestions: tuple[str, ...] = ()
    if matches:
        # max() keeps the first of equally severe matches; a single match needs no search.
        top = matches[0] if len(matches) == 1 else max(matches, key=_severity)
        action = top.rule.action
        policy = top.policy.name
        message = top.rule.message or _DEFAULT_MESSAGES[action].format(policy)
        if action == "deny":
            suggestions = top.rule.suggestions or (
                f"If this is intended, ask the user to run it themselves or to change policy "
                f"'{policy}' ({top.rule.file}:{top.rule.line}).",)
    problem = parsed.problem if parsed is not None else None
    if problem is not None and action in ("allow", "watch"):
        action = "ask"
        message = f"{problem}; a person must approve it"
    elapsed = 0 if start_ns is None else (time.perf_counter_ns() - start_ns) // 1000
    # Positional arguments (in Decision's field order): keywords cost more on every call.
    return Decision(action, message, policy, tuple([m.policy.name for m in matches]),
                    suggestions, int(elapsed))


def evaluate(policy_set: PolicySet, call: ToolCall, *, counter: CallCounter | None = None,
             now: float | None = None) -> Decision:
    """Decide one tool call; `now` (seconds) is required when a counter is given."""
    start = time.perf_counter_ns()
    matches, parsed = find_matches(policy_set, call, counter=counter, now=now)
    return decide(policy_set, matches, parsed, start)
