"""Raw policy documents → validated, precompiled, immutable Policy and Rule objects.

Every mistake is a PolicyError naming the file, the line and what to do; misspelt keys get a
"did you mean" hint. Files are combined into one PolicySet: policy names are unique across
files, at most one `default_action` may be given (missing means deny), and policies are
ordered by `priority` (lower number first, default 100), then file name, then position.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rampartd.errors import PolicyError
from rampartd.models import ACTIONS, Action
from rampartd.policy.counter import MAX_WINDOW_SECONDS
from rampartd.policy.describe import lint_warnings
from rampartd.policy.effects import KINDS as EFFECT_KINDS
from rampartd.policy.flow import FLOWS
from rampartd.policy.loader import RawDoc, YList, YMap, read_policy_dir
from rampartd.policy.matchers import (
    PatternError,
    compile_regex,
    literal_regex,
    pattern_regex,
    text_glob_regex,
)
from rampartd.policy.policyset import (
    CallCount,
    ParamCheck,
    Pattern,
    Policy,
    PolicySet,
    Rule,
)

TOP_KEYS = ("version", "default_action", "policies")
POLICY_KEYS = ("name", "description", "priority", "enabled", "match", "rules")
MATCH_KEYS = ("tool", "agent", "session")
RULE_KEYS = ("action", "when", "message", "suggestions")
# condition → (subject kind, role)
PATTERN_CONDITIONS: dict[str, tuple[str, str]] = {
    "command_matches": ("command", "pos"),
    "command_not_matches": ("command", "neg"),
    "command_contains": ("command", "contains"),
    "path_matches": ("path", "pos"),
    "path_not_matches": ("path", "neg"),
    "url_matches": ("url", "pos"),
    "domain_matches": ("domain", "pos"),
    "session_matches": ("session", "pos"),
    "session_not_matches": ("session", "neg"),
    "program_matches": ("program", "pos"),
    "env_matches": ("env", "pos"),
    "signal_matches": ("signal", "pos"),
}
WHEN_KEYS = (*PATTERN_CONDITIONS, "effect", "params", "call_count", "default")
PARAM_OPS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "glob", "regex", "exists")
CALL_COUNT_KEYS = ("max", "window")
DEFAULT_PRIORITY = 100
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


class FileContext:
    """Validation helpers that report mistakes with the file and line."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, line: int | None, message: str, hint: str | None = None) -> PolicyError:
        return PolicyError(message, file=self.file, line=line, hint=hint)

    def check_keys(self, mapping: YMap, allowed: Iterable[str], what: str) -> None:
        allowed = tuple(allowed)
        for key in mapping:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = (f"did you mean '{close[0]}'?" if close
                        else f"allowed keys: {', '.join(allowed)}")
                raise self.fail(mapping.line_of(key), f"unknown key '{key}' in {what}", hint)

    def mapping(self, value: Any, line: int, what: str) -> YMap:
        if not isinstance(value, YMap):
            raise self.fail(line, f"{what} must be a mapping, got {_type_name(value)}")
        return value

    def text(self, value: Any, line: int, what: str, *, empty_ok: bool = False) -> str:
        if not isinstance(value, str):
            raise self.fail(line, f"{what} must be text, got {_type_name(value)}",
                            "quote it if it looks like a number or a boolean")
        if not value and not empty_ok:
            raise self.fail(line, f"{what} must not be empty")
        return value

    def text_list(self, value: Any, line: int, what: str) -> list[tuple[str, int]]:
        if isinstance(value, str):
            return [(self.text(value, line, what), line)]
        if not isinstance(value, YList) or not value:
            raise self.fail(line, f"{what} must be text or a non-empty list of text, "
                                  f"got {_type_name(value)}")
        return [(self.text(v, value.line_of(i), f"{what}[{i}]"), value.line_of(i))
                for i, v in enumerate(value)]

    def action(self, value: Any, line: int, what: str) -> Action:
        if not isinstance(value, str) or value not in ACTIONS:
            shown = value if isinstance(value, str) else _type_name(value)
            close = (difflib.get_close_matches(value.lower(), ACTIONS, n=1, cutoff=0.5)
                     if isinstance(value, str) else [])
            hint = f"did you mean '{close[0]}'?" if close else "use allow, deny, ask or watch"
            raise self.fail(line, f"{what} must be one of allow, deny, ask, watch; got "
                                  f"{shown!r}", hint)
        return value

    def boolean(self, value: Any, line: int, what: str) -> bool:
        if not isinstance(value, bool):
            hint = "write true or false"
            if isinstance(value, str) and value.lower() in ("yes", "no", "on", "off", "y", "n"):
                hint = f"'{value}' is text here, not a boolean; write true or false"
            raise self.fail(line, f"{what} must be true or false, got {_type_name(value)}", hint)
        return value


class _Builder:
    """Compiles raw documents; owns the pattern table shared by all rules."""

    def __init__(self, home: str) -> None:
        self.home = home
        self.patterns: list[Pattern] = []
        self.by_key: dict[tuple[str, str, str], int] = {}

    def pattern(self, ctx: FileContext, kind: str, role: str, source: str, line: int) -> int:
        key = (kind, role, source)
        if key in self.by_key:
            return self.by_key[key]
        try:
            if role == "contains":
                regex = literal_regex(source)
            else:
                regex = pattern_regex(source, kind, self.home)
            compiled = compile_regex(regex)
        except PatternError as exc:
            hint = ("RE2 syntax: no look-around or back-references"
                    if source.startswith("re:") else "check the brackets and escapes")
            raise ctx.fail(line, str(exc), hint) from None
        pid = len(self.patterns)
        self.patterns.append(Pattern(pid, kind, role, source, regex, compiled,
                                     self.home if kind == "path" else None))
        self.by_key[key] = pid
        return pid

    def scope(self, ctx: FileContext, match: YMap | None, key: str) -> tuple[tuple[str, ...], Any]:
        if match is None or key not in match:
            return ("*",), None
        globs = tuple(g for g, _ in ctx.text_list(match[key], match.line_of(key), f"match.{key}"))
        if "*" in globs:
            return globs, None
        try:
            regex = "|".join(f"(?:{text_glob_regex(g)})" for g in globs)
            return globs, compile_regex(regex)
        except PatternError as exc:
            raise ctx.fail(match.line_of(key), str(exc)) from None

    def params(self, ctx: FileContext, value: Any, line: int) -> tuple[ParamCheck, ...]:
        spec = ctx.mapping(value, line, "when.params")
        checks: list[ParamCheck] = []
        for name, cons in spec.items():
            at = spec.line_of(name)
            if not isinstance(cons, YMap):
                if isinstance(cons, YList):
                    raise ctx.fail(at, f"params.{name} must be a value or a mapping of "
                                       "constraints", "for a list of values use {in: [...]}")
                cons = YMap({"eq": cons})
                cons.line, cons.key_lines = at, {"eq": at}
            if not cons:
                raise ctx.fail(at, f"params.{name} has no constraints",
                               "e.g. {gt: 1000} or {exists: true}")
            ctx.check_keys(cons, PARAM_OPS, f"params.{name}")
            for op, expected in cons.items():
                checks.append(self.param_check(ctx, name, op, expected, cons.line_of(op)))
        return tuple(checks)

    def param_check(self, ctx: FileContext, name: str, op: str, expected: Any,
                    at: int) -> ParamCheck:
        what = f"params.{name}.{op}"
        if op in ("gt", "gte", "lt", "lte"):
            if isinstance(expected, bool) or not isinstance(expected, (int, float)):
                raise ctx.fail(at, f"{what} must be a number, got {_type_name(expected)}",
                               "numbers are compared as numbers; do not quote them")
        elif op in ("in", "not_in"):
            if not isinstance(expected, YList):
                raise ctx.fail(at, f"{what} must be a list, got {_type_name(expected)}")
            expected = tuple(expected)
        elif op == "exists":
            expected = ctx.boolean(expected, at, what)
        elif op in ("glob", "regex"):
            source = ctx.text(expected, at, what)
            try:
                regex = text_glob_regex(source) if op == "glob" else source
                return ParamCheck(name, op, source, compile_regex(regex))
            except PatternError as exc:
                raise ctx.fail(at, str(exc), "RE2 syntax" if op == "regex" else None) from None
        elif isinstance(expected, (YMap, YList)):
            raise ctx.fail(at, f"{what} must be a single value, got {_type_name(expected)}")
        return ParamCheck(name, op, expected, None)

    def call_count(self, ctx: FileContext, value: Any, line: int) -> CallCount:
        spec = ctx.mapping(value, line, "when.call_count")
        ctx.check_keys(spec, CALL_COUNT_KEYS, "call_count")
        for key in CALL_COUNT_KEYS:
            if key not in spec:
                raise ctx.fail(line, f"call_count needs '{key}'",
                               "e.g. call_count: {max: 10, window: 60s}")
        limit = spec["max"]
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ctx.fail(spec.line_of("max"), "call_count.max must be a whole number >= 0")
        window = spec["window"]
        seconds: float | None = None
        if isinstance(window, (int, float)) and not isinstance(window, bool):
            seconds = float(window)
        elif isinstance(window, str) and window[-1:] in _UNITS:
            try:
                seconds = float(window[:-1]) * _UNITS[window[-1]]
            except ValueError:
                seconds = None
        if seconds is None or not 0 < seconds < float("inf"):
            raise ctx.fail(spec.line_of("window"), "call_count.window must be a positive number "
                           "of seconds or a duration like 30s, 5m, 1h")
        if seconds > MAX_WINDOW_SECONDS:
            raise ctx.fail(spec.line_of("window"), "call_count.window is longer than "
                           f"{MAX_WINDOW_SECONDS:g} seconds (1d), the longest supported",
                           "use a window of at most 24h")
        return CallCount(limit, seconds)

    def rule(self, ctx: FileContext, policy: str, raw: Any, index: int, line: int) -> Rule:
        spec = ctx.mapping(raw, line, f"rule {index + 1} of policy '{policy}'")
        ctx.check_keys(spec, RULE_KEYS, "a rule")
        if "action" not in spec:
            raise ctx.fail(spec.line, "a rule needs an 'action'", "allow, deny, ask or watch")
        action = ctx.action(spec["action"], spec.line_of("action"), "action")
        if "when" not in spec:
            raise ctx.fail(spec.line, "a rule needs 'when'",
                           "use when: {default: true} to match every call")
        when = ctx.mapping(spec["when"], spec.line_of("when"), "when")
        ctx.check_keys(when, WHEN_KEYS, "when")
        if not when:
            raise ctx.fail(when.line, "'when' has no conditions",
                           "use when: {default: true} to match every call")
        message = ""
        if "message" in spec:
            message = ctx.text(spec["message"], spec.line_of("message"), "message", empty_ok=True)
        suggestions: tuple[str, ...] = ()
        if "suggestions" in spec:
            suggestions = tuple(s for s, _ in ctx.text_list(
                spec["suggestions"], spec.line_of("suggestions"), "suggestions"))
        ids: dict[str, frozenset[int]] = {}
        for cond, (kind, role) in PATTERN_CONDITIONS.items():
            if cond in when:
                items = ctx.text_list(when[cond], when.line_of(cond), cond)
                ids[cond] = frozenset(self.pattern(ctx, kind, role, src, at) for src, at in items)
        kinds: frozenset[str] = frozenset()
        flows: frozenset[str] = frozenset()
        if "effect" in when:
            at = when.line_of("effect")
            named = [k for k, _ in ctx.text_list(when["effect"], at, "effect")]
            for k in named:
                base, sep, flow = k.partition(":")
                if base not in EFFECT_KINDS:
                    close = difflib.get_close_matches(base, EFFECT_KINDS, n=1, cutoff=0.5)
                    raise ctx.fail(at, f"unknown effect kind {k!r}",
                                   f"did you mean '{close[0]}'?" if close
                                   else f"use one of {', '.join(EFFECT_KINDS)}")
                if sep and flow not in FLOWS.get(base, ()):
                    known = [f"{b}:{f}" for b, fs in FLOWS.items() for f in fs]
                    raise ctx.fail(at, f"unknown flow marker {k!r}",
                                   f"use one of {', '.join(known)}")
            kinds = frozenset(k.partition(":")[0] for k in named)
            flows = frozenset(k for k in named if ":" in k and k.partition(":")[0] not in named)
        params = self.params(ctx, when["params"], when.line_of("params")) \
            if "params" in when else ()
        count = self.call_count(ctx, when["call_count"], when.line_of("call_count")) \
            if "call_count" in when else None
        default = False
        if "default" in when:
            at = when.line_of("default")
            if not ctx.boolean(when["default"], at, "default"):
                raise ctx.fail(at, "default: false matches nothing", "remove the rule or the key")
            if len(when) > 1:
                raise ctx.fail(at, "default: true cannot be combined with other conditions",
                               "put the catch-all in its own rule, last")
            default = True
        empty: frozenset[int] = frozenset()
        return Rule(
            policy=policy, index=index, file=ctx.file, line=spec.line, action=action,
            message=message, suggestions=suggestions,
            command_matches=ids.get("command_matches", empty),
            command_not_matches=ids.get("command_not_matches", empty),
            command_contains=ids.get("command_contains", empty),
            path_matches=ids.get("path_matches", empty),
            path_not_matches=ids.get("path_not_matches", empty),
            url_matches=ids.get("url_matches", empty),
            domain_matches=ids.get("domain_matches", empty),
            session_matches=ids.get("session_matches", empty),
            session_not_matches=ids.get("session_not_matches", empty),
            params=params, call_count=count, default=default, when=_plain(when),
            effect_kinds=kinds, effect_flows=flows,
            program_matches=ids.get("program_matches", empty),
            env_matches=ids.get("env_matches", empty),
            signal_matches=ids.get("signal_matches", empty))

    def policy(self, ctx: FileContext, raw: Any, line: int, order: int) -> Policy:
        spec = ctx.mapping(raw, line, "each entry of 'policies'")
        ctx.check_keys(spec, POLICY_KEYS, "a policy")
        if "name" not in spec:
            raise ctx.fail(spec.line, "a policy needs a 'name'")
        name = ctx.text(spec["name"], spec.line_of("name"), "name")
        description = ""
        if "description" in spec:
            description = ctx.text(spec["description"], spec.line_of("description"),
                                   "description", empty_ok=True)
        priority = spec.get("priority", DEFAULT_PRIORITY)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ctx.fail(spec.line_of("priority"),
                           f"priority must be a whole number, got {_type_name(priority)}")
        enabled = ctx.boolean(spec["enabled"], spec.line_of("enabled"), "enabled") \
            if "enabled" in spec else True
        match: YMap | None = None
        if "match" in spec:
            match = ctx.mapping(spec["match"], spec.line_of("match"), "match")
            ctx.check_keys(match, MATCH_KEYS, "match")
        tools, tool_re = self.scope(ctx, match, "tool")
        agents, agent_re = self.scope(ctx, match, "agent")
        sessions, session_re = self.scope(ctx, match, "session")
        if "rules" not in spec:
            raise ctx.fail(spec.line, f"policy '{name}' has no 'rules'")
        rules_raw = spec["rules"]
        if not isinstance(rules_raw, YList) or not rules_raw:
            raise ctx.fail(spec.line_of("rules"), "rules must be a non-empty list")
        rules = tuple(self.rule(ctx, name, r, i, rules_raw.line_of(i))
                      for i, r in enumerate(rules_raw))
        return Policy(name=name, description=description, priority=priority, enabled=enabled,
                      file=ctx.file, line=spec.line, order=order, tools=tools, agents=agents,
                      sessions=sessions, tool_regex=tool_re, agent_regex=agent_re,
                      session_regex=session_re, rules=rules)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def compile_documents(docs: Iterable[RawDoc], *, source_dir: Path | None = None,
                      home: str | None = None,
                      tool_names: Mapping[str, str] | None = None) -> PolicySet:
    """Validate and combine parsed documents into one PolicySet."""
    home = home if home is not None else os.path.expanduser("~")
    builder = _Builder(home)
    policies: list[Policy] = []
    seen: dict[str, Policy] = {}
    default: tuple[Action, str, int] | None = None
    for doc in docs:
        ctx = FileContext(doc.file)
        if doc.data is None:
            raise ctx.fail(1, "the file is empty", 'start it with version: "1" and policies:')
        top = ctx.mapping(doc.data, 1, "a policy file")
        ctx.check_keys(top, TOP_KEYS, "the file")
        if "version" not in top:
            raise ctx.fail(top.line, "missing 'version'", 'add version: "1"')
        if top["version"] not in ("1", 1):
            raise ctx.fail(top.line_of("version"), f"unsupported version {top['version']!r}",
                           'use version: "1"')
        if "default_action" in top:
            at = top.line_of("default_action")
            action = ctx.action(top["default_action"], at, "default_action")
            if default is not None and default[0] != action:
                raise ctx.fail(at, f"default_action {action} conflicts with {default[0]} in "
                                   f"{default[1]}:{default[2]}",
                               "set default_action in one file only")
            default = (action, doc.file, at)
        raw_policies = top.get("policies", YList())
        if raw_policies is None:
            raw_policies = YList()
        if not isinstance(raw_policies, YList):
            raise ctx.fail(top.line_of("policies"),
                           f"policies must be a list, got {_type_name(raw_policies)}")
        for i, raw in enumerate(raw_policies):
            policy = builder.policy(ctx, raw, raw_policies.line_of(i), len(policies))
            if policy.name in seen:
                first = seen[policy.name]
                raise ctx.fail(policy.line, f"duplicate policy name '{policy.name}' (first in "
                                            f"{first.file}:{first.line})",
                               "policy names must be unique across all files")
            seen[policy.name] = policy
            policies.append(policy)
    ordered = sorted(policies, key=lambda p: (p.priority, p.file, p.order))
    return PolicySet(default_action=default[0] if default else "deny",
                     policies=tuple(ordered), patterns=tuple(builder.patterns),
                     source_dir=source_dir, home=home, warnings=lint_warnings(ordered),
                     tool_names=dict(tool_names or {}))


def compile_text(text: str, *, file: str = "<policy>", home: str | None = None) -> PolicySet:
    """Compile a single policy document given as text (tests, `check`, the standard policy)."""
    from rampartd.policy.loader import parse_yaml

    return compile_documents([RawDoc(file, parse_yaml(text, file))], home=home)


def load_policy_dir(path: Path, *, home: str | None = None,
                    tool_names: Mapping[str, str] | None = None) -> PolicySet:
    """Load every `*.yaml` file of a directory into one PolicySet (PolicyError on any mistake)."""
    path = Path(path)
    return compile_documents(list(read_policy_dir(path)), source_dir=path, home=home,
                             tool_names=tool_names)
