"""Policies in plain words (for `policy summary` and the summary API) and lint warnings."""

from __future__ import annotations

import json
from typing import Any

from rampartd.policy.policyset import Policy, PolicySet, Rule

_PHRASES = {
    "command_matches": "the command matches",
    "command_not_matches": "the command does not match",
    "command_contains": "the command contains",
    "path_matches": "the path matches",
    "path_not_matches": "the path does not match",
    "url_matches": "the URL matches",
    "domain_matches": "the domain matches",
    "session_matches": "the session matches",
    "session_not_matches": "the session does not match",
    "program_matches": "a program run matches",
    "env_matches": "a variable set matches",
    "signal_matches": "a process signalled matches",
}
_EFFECT_WORDS = {"read": "reads a file", "write": "writes a file", "delete": "deletes a file",
                 "chmod": "changes a file's mode", "exec": "runs a program",
                 "network": "contacts a host", "signal": "signals a process",
                 "env": "sets a variable", "code": "runs code only known at run time"}
_OPS = {"eq": "is", "ne": "is not", "in": "is one of", "not_in": "is not one of", "gt": ">",
        "gte": ">=", "lt": "<", "lte": "<=", "glob": "matches", "regex": "matches the regex"}


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f"`{value}`"
    return json.dumps(value, default=str)


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def describe_when(when: dict[str, Any]) -> str:
    """The conditions of a rule as one sentence fragment."""
    if when.get("default") is True:
        return "any call (catch-all)"
    parts: list[str] = []
    for key, value in when.items():
        if key in _PHRASES:
            parts.append(f"{_PHRASES[key]} " + " or ".join(_show(v) for v in _items(value)))
        elif key == "effect":
            parts.append("the call " + " or ".join(_EFFECT_WORDS.get(v, v)
                                                   for v in _items(value)))
        elif key == "params":
            for name, cons in value.items():
                if not isinstance(cons, dict):
                    cons = {"eq": cons}
                for op, expected in cons.items():
                    if op == "exists":
                        state = "is present" if expected else "is absent"
                        parts.append(f"argument `{name}` {state}")
                    else:
                        parts.append(f"argument `{name}` {_OPS.get(op, op)} {_show(expected)}")
        elif key == "call_count" and isinstance(value, dict):
            parts.append(f"the agent has already made {value.get('max')} or more calls to this "
                         f"tool within {value.get('window')}"
                         f"{'s' if isinstance(value.get('window'), (int, float)) else ''}")
    return " and ".join(parts)


def describe_rule(rule: Rule) -> str:
    """`deny when the command matches `rm *``, in plain words."""
    return f"{rule.action} when {describe_when(rule.when)}"


def _policy_summary(policy: Policy) -> dict[str, Any]:
    return {
        "name": policy.name,
        "description": policy.description,
        "file": policy.file,
        "line": policy.line,
        "priority": policy.priority,
        "enabled": policy.enabled,
        "match": {"tool": list(policy.tools), "agent": list(policy.agents),
                  "session": list(policy.sessions)},
        "rules": [
            {"index": rule.index + 1, "line": rule.line, "action": rule.action,
             "message": rule.message, "description": describe_rule(rule),
             "when": json.loads(json.dumps(rule.when, default=str))}
            for rule in policy.rules
        ],
    }


def summarize(policy_set: PolicySet) -> list[dict[str, Any]]:
    """Every policy (in evaluation order) with its rules in plain words."""
    return [_policy_summary(p) for p in policy_set.policies]


def lint_warnings(policies: list[Policy]) -> tuple[str, ...]:
    """Findings that do not stop loading: rules that can never match, disabled policies."""
    out: list[str] = []
    for policy in policies:
        if not policy.enabled:
            out.append(f"{policy.file}:{policy.line}: policy '{policy.name}' is disabled")
        catch_all: Rule | None = None
        seen: dict[str, Rule] = {}
        for rule in policy.rules:
            where = f"{rule.file}:{rule.line}: rule {rule.index + 1} of policy '{policy.name}'"
            if catch_all is not None:
                out.append(f"{where} is shadowed: rule {catch_all.index + 1} (default: true) "
                           "always matches first")
                continue
            key = json.dumps(rule.when, sort_keys=True, default=str)
            if key in seen:
                out.append(f"{where} is shadowed: rule {seen[key].index + 1} has the same "
                           "conditions and comes first")
            seen.setdefault(key, rule)
            if rule.default:
                catch_all = rule
            out += _meaning_changes(policy, rule, where)
    return tuple(out)


def _meaning_changes(policy: Policy, rule: Rule, where: str) -> list[str]:
    """What a rule written before effects existed now matches that it did not."""
    out: list[str] = []
    when = rule.when
    if ("path_matches" in when or "path_not_matches" in when) and "effect" not in when \
            and policy.covers_tool("exec"):
        out.append(f"{where}: path conditions now also hold for the files shell commands "
                   "read, write, delete or chmod (add `effect: [...]` to choose which)")
    bare = [d for d in _items(when.get("domain_matches", [])) if isinstance(d, str)
            and not d.startswith(("re:", "*")) and f"*.{d}" not in _items(
                when.get("domain_matches", []))]
    if bare:
        out.append(f"{where}: domain_matches now also matches subdomains of "
                   + ", ".join(f"`{d}`" for d in bare))
    return out
