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

import dataclasses
import re
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any, NamedTuple

from rampartd.models import SEVERITY, Action, Decision, ToolCall
from rampartd.policy.counter import CallCounter
from rampartd.policy.effects import names_files
from rampartd.policy.matchers import (
    AMBIGUOUS,
    as_number,
    lookup_param,
    normalize_path,
    values_equal,
)
from rampartd.policy.overlap import UNKNOWN
from rampartd.policy.policyset import ParamCheck, Policy, PolicySet, Rule
from rampartd.policy.shell.parse import ParsedCommand
from rampartd.policy.subjects import (
    NO,
    POSSIBLY,
    SURELY,
    Subjects,
    code_text,
    command_text,
    target_level,
)
from rampartd.toolnames import CLASSES, call_class


class Match(NamedTuple):
    """A policy whose rule held for the call; `possible`: only through a target known at run
    time (a deny then asks)."""

    policy: Policy
    rule: Rule
    possible: bool = False

    @property
    def action(self) -> Action:
        """The rule's action, a deny that only possibly applies asking instead."""
        return "ask" if self.possible and self.rule.action == "deny" else self.rule.action


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


def _rule_holds(rule: Rule, subj: Subjects, call: ToolCall, counter: CallCounter | None,
                now: float | None) -> int:
    """NO, POSSIBLY (only through targets known at run time) or SURELY."""
    if rule.default:
        return SURELY
    if rule.effect_kinds and rule.effect_kinds.isdisjoint(subj.kinds()):
        return NO  # its `effect:` selects none of the call's effects: no condition can hold
    restrictive = rule.restrictive
    if rule.has_command:
        if subj.parsed is None or (not restrictive and subj.problem is not None):
            return NO
        # (plain loops: this runs for every candidate rule with a command condition)
        if restrictive:
            skip_pipes = bool(rule.command_not_matches)
            for ids, kind in subj.units():
                if not (skip_pipes and kind == "pipeline") and _unit_ok(rule, ids):
                    break
            else:
                return NO
        else:
            covered = False
            for ids, kind in subj.units():
                if kind == "component":
                    if not _unit_ok(rule, ids):
                        return NO
                    covered = True
            if not covered:
                return NO
    level = target_level(rule, subj, restrictive) if rule.has_targets else SURELY
    if not level:
        return NO
    if rule.session_matches or rule.session_not_matches:
        ids = subj.session()[0]
        if rule.session_matches and rule.session_matches.isdisjoint(ids):
            return NO
        if rule.session_not_matches and not rule.session_not_matches.isdisjoint(ids):
            return NO
    for check in rule.params:
        result = _check_param(check, subj.params)
        if not (restrictive if result is None else result):
            return NO
    if rule.call_count is not None:
        previous = 0
        if counter is not None:
            if now is None:
                raise ValueError("evaluate() needs now= when a counter is given")
            previous = counter.count(call.agent, call.tool, rule.call_count.window, now)
        if previous < rule.call_count.max:
            return NO
    return level


def _in_scope(policy: Policy, call: ToolCall) -> bool:
    if policy.agent_regex is not None and policy.agent_regex.search(call.agent) is None:
        return False
    return policy.session_regex is None or policy.session_regex.search(call.session) is not None


def call_tool_class(policy_set: PolicySet, call: ToolCall) -> str:
    """The class a call is evaluated under: its host tool name mapped (an mcp call carrying a
    `command` is a shell call, an editor's `view` command a read: toolnames.call_class; see
    _judged for tools no table names)."""
    return _judged(policy_set, through_mcp(policy_set, call))[0]


def through_mcp(policy_set: PolicySet, call: ToolCall) -> ToolCall:
    """An MCP call as the hooks send it (`{server, tool, arguments}`) seen through its
    arguments: they are what path, command and URL conditions read (beside the call's own
    keys), and a server tool named like a file, shell or fetch tool takes that class
    (`mcp__SERVER__TOOL`, which policies naming `mcp` still cover)."""
    params = call.params
    arguments = params.get("arguments", {})
    name = params.get("tool") or params.get("tool_name") or params.get("uri")  # (Cline's keys)
    if not isinstance(arguments, Mapping) or not isinstance(name, str) \
            or policy_set.tool_class(call.tool) != "mcp":
        return call
    server = params.get("server") or params.get("server_name")
    raw = f"mcp__{server if isinstance(server, str) else ''}__{name}"
    inner = {**arguments, **params}
    if name.startswith("file://") and "path" not in inner:
        inner["path"] = urllib.parse.unquote(name[len("file://"):])  # a resource read by URI
    elif name[:8].lower().startswith(("http://", "https://")) and "url" not in inner:
        inner["url"] = name  # a resource fetched by URL
    return dataclasses.replace(call, tool=raw, params=inner)


def _judged(policy_set: PolicySet, call: ToolCall) -> tuple[str, str | None]:
    """The call's class and command text; a code runner's `code` (a shell call, an MCP tool
    or one no table names) is judged as the interpreter line that runs it."""
    text = command_text(call.params)
    tool = _tool_class(policy_set, call, text)
    if text is None and (tool in ("exec", "mcp") or tool not in CLASSES):
        code = code_text(call.params)
        if code is not None:
            return "exec", code
    cli = call.tool.rsplit("__", 1)[-1] if call.tool.startswith("mcp__") else ""
    if tool == "exec" and text is not None and cli in _CLI_SERVERS \
            and text.split(" ", 1)[0] != cli:
        text = f"{cli} {text}"  # an MCP server for one CLI: its command is that CLI's arguments
    return tool, text


# a tool no table names whose name says it deletes
_REMOVER_NAME = re.compile(r"(?i)(^|[_.-])(delete|remove|rm|rmdir|unlink|trash|erase|purge|wipe"
                           r"|destroy)([_.-]|$)")
# MCP tools named after one command-line program, whose `command` holds its arguments
_CLI_SERVERS = frozenset({"kubectl", "docker", "git", "gh", "aws", "gcloud", "az", "terraform",
                          "helm", "npm", "psql", "mysql", "redis-cli"})

# A shell tool's own working directory (Codex's `workdir`, Gemini CLI's `directory`, MCP
# shell servers' `cwd`): where its command runs, rather than where the agent is.
_WORKDIR_KEYS = ("workdir", "directory", "cwd", "working_directory", "workingDirectory")


def _in_workdir(policy_set: PolicySet, call: ToolCall) -> ToolCall:
    """The call, run from the working directory its own arguments give (if any)."""
    where = next((v for k in _WORKDIR_KEYS if isinstance(v := call.params.get(k), str) and v),
                 None)
    if where is None:
        return call
    if "$" in where or "`" in where:
        where = UNKNOWN  # only known at run time: anywhere
    else:
        where = normalize_path(where, cwd=call.cwd, home=policy_set.home)
    return dataclasses.replace(call, cwd=where)


def _tool_class(policy_set: PolicySet, call: ToolCall, text: str | None) -> str:
    """The call's class; an MCP tool, or a tool no table names, is judged by its arguments:
    a command line is a shell call, and a file it names (any host's spelling) is read and
    written as an edit's (policies naming the tool or `mcp` still cover it)."""
    tool = call_class(policy_set.tool_class(call.tool), call.params)
    if tool in CLASSES and tool != "mcp":
        return tool
    if text is not None:
        return "exec"
    if not names_files(call.params):
        return tool
    if _REMOVER_NAME.search(call.tool.rsplit("__", 1)[-1]):
        return "delete"  # `remove_directory`, `mcp__fs__remove`: all below each path goes
    return tool if tool == "mcp" else "edit"


def find_matches(policy_set: PolicySet, call: ToolCall, *, counter: CallCounter | None = None,
                 now: float | None = None) -> tuple[list[Match], ParsedCommand | None]:
    """Every in-scope policy's deciding rule, in order, and the parsed command (if any)."""
    matches, subj = find_with_subjects(policy_set, call, counter, now)
    return matches, subj.parsed


def find_with_subjects(policy_set: PolicySet, call: ToolCall, counter: CallCounter | None,
                       now: float | None) -> tuple[list[Match], Subjects]:
    """find_matches, and what the rules saw of the call (for explaining the decision)."""
    call = through_mcp(policy_set, call)
    tool, text = _judged(policy_set, call)
    if tool == "exec":
        call = _in_workdir(policy_set, call)
    plan = policy_set.plan_for(tool, call.tool)
    subj = Subjects(policy_set, plan, call, tool, text)
    decided: set[int] = set()
    matches: list[Match] = []
    rules, policies = plan.rules, plan.policies
    for pos in sorted(subj.candidates()):
        ppos, rule = rules[pos]
        if ppos in decided:
            continue
        policy = policies[ppos]
        if not _in_scope(policy, call):
            decided.add(ppos)
            continue
        level = _rule_holds(rule, subj, call, counter, now)
        if level:
            decided.add(ppos)
            matches.append(Match(policy, rule, level == POSSIBLY))
    if subj.d.problem is not None and subj.problem is None:
        # Past the evaluation's step budget: what was found stands, and a person decides.
        base = subj.parsed or ParsedCommand("", ())
        subj.parsed = base._replace(problem=f"cannot check the call: {subj.d.problem}")
    return matches, subj


def _severity(match: Match) -> int:
    return SEVERITY[match.action]


_NO_MATCH = {a: f"no policy matched; the default action is {a}" for a in SEVERITY}
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
    policy: str | None = None
    suggestions: tuple[str, ...] = ()
    if not matches:
        message = _NO_MATCH[action]
    else:
        # max() keeps the first of equally severe matches; a single match needs no search.
        top = matches[0] if len(matches) == 1 else max(matches, key=_severity)
        action = top.action
        policy = top.policy.name
        message = top.rule.message or _DEFAULT_MESSAGES[top.rule.action].format(policy)
        if top.possible and top.rule.action == "deny":
            message = (f"{message}, unless a target only known at run time is something else; "
                       "a person must approve it")
        if action == "deny":
            suggestions = top.rule.suggestions or (
                f"If this is intended, ask the user to run it themselves or to change policy "
                f"'{policy}' ({top.rule.file}:{top.rule.line}).",)
    problem = parsed.problem if parsed is not None else None
    if problem is not None and action in ("allow", "watch"):
        action = "ask"
        message = f"{problem}; a person must approve it"
    elapsed = 0 if start_ns is None else (time.perf_counter_ns() - start_ns) // 1000
    names = tuple([m.policy.name for m in matches]) if len(matches) > 1 else (
        (matches[0].policy.name,) if matches else ())
    # Positional arguments (in Decision's field order): keywords cost more on every call.
    return Decision(action, message, policy, names, suggestions, int(elapsed))


def evaluate(policy_set: PolicySet, call: ToolCall, *, counter: CallCounter | None = None,
             now: float | None = None) -> Decision:
    """Decide one tool call; `now` (seconds) is required when a counter is given.

    A decision is a function of the set and the call's content alone, unless a rule counts
    calls: agents repeat calls (`git status` a hundred times), so decisions of small calls
    are memoised per set, and a repeat costs one key and one lookup.
    """
    start = time.perf_counter_ns()
    key = _memo_key(call)
    if key is not None:
        hit = policy_set.decisions.get(key)
        if hit is not None:
            return Decision(hit.action, hit.message, hit.policy, hit.matched_policies,
                            hit.suggestions, (time.perf_counter_ns() - start) // 1000)
    matches, subj = find_with_subjects(policy_set, call, counter, now)
    decision = decide(policy_set, matches, subj.parsed, start)
    if key is not None and not subj.plan.counted:
        policy_set.remember(key, decision)
    return decision


# Argument values a memo key holds as they are (with their type: True == 1 == 1.0 as keys).
_SCALARS = frozenset({str, int, float, bool, type(None)})
_MEMO_CHARS = 4096  # a call with more text than this is not memoised (the memo stays small)


def _memo_key(call: ToolCall) -> tuple[Any, ...] | None:
    """What decides a call, as a hashable key; None for calls with nested or long arguments."""
    items = []
    chars = 0
    for name, value in call.params.items():
        kind = type(value)
        if kind not in _SCALARS:
            return None
        if kind is str:
            chars += len(value)
            if chars > _MEMO_CHARS:
                return None
        items.append((name, kind, value))
    return call.tool, call.agent, call.session, call.cwd, tuple(items)
