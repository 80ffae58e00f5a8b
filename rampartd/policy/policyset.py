"""The immutable, precompiled policy set and its per-tool evaluation plans.

A PolicySet never changes after it is built. To keep evaluation cheap with many policies it
hands out a Plan per tool name: only the enabled policies whose `match.tool` covers that tool,
their rules flattened in evaluation order, one RE2 set per subject (command, path, url,
domain, session) holding every pattern those rules use, and an index from each positive
pattern to the rules it can make match. Evaluating a call then costs one RE2-set search per
subject text plus the rules that can actually match, not a scan of every rule. Plans are
memoised per tool name (a bounded cache; it is an optimisation, never a change of meaning).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import re2

from rampartd.models import Action, Decision
from rampartd.policy.effects import KINDS
from rampartd.policy.matchers import compile_regex, path_tree_regex, re2_options
from rampartd.policy.overlap import Reach

SUBJECTS = ("command", "path", "url", "domain", "session", "program", "env", "signal")
KIND_IDS = {kind: n for n, kind in enumerate(KINDS)}  # `effect:` rules are indexed by kind
SET_CHUNK = 1024  # patterns per RE2 set, at most...
SET_SOURCE = 32_768  # ...and regex characters per set: its compile time grows with them
_SENTINEL = "(?:)"  # matches every text: its absence means the set gave up
SET_MAX_TEXT = 8192  # longer texts are matched pattern by pattern (no set memory limits)
_PLAN_CACHE = 1024
_COMMAND_CACHE = 4096
_NO_IDS: frozenset[int] = frozenset()
_ONLY_SENTINEL = [0]  # what a set reports when nothing but its sentinel matched
_SENTINEL_ID = frozenset([-1])  # the sentinel's entry in a chunk's pattern ids


@dataclass(frozen=True, slots=True)
class Pattern:
    """One compiled pattern; `role` is pos (matches), neg (not_matches) or contains."""

    pid: int
    kind: str
    role: str
    source: str
    regex: str
    compiled: Any
    home: str | None = None  # path patterns: the home `~` stands for


@dataclass(frozen=True, slots=True)
class ParamCheck:
    """One typed constraint on a named argument."""

    name: str
    op: str
    value: Any
    compiled: Any = None


@dataclass(frozen=True, slots=True)
class CallCount:
    """At most `max` calls per `window` seconds (per agent and tool)."""

    max: int
    window: float


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: an action, its conditions (pattern ids per condition) and where it was written."""

    policy: str
    index: int
    file: str
    line: int
    action: Action
    message: str
    suggestions: tuple[str, ...]
    command_matches: frozenset[int]
    command_not_matches: frozenset[int]
    command_contains: frozenset[int]
    path_matches: frozenset[int]
    path_not_matches: frozenset[int]
    url_matches: frozenset[int]
    domain_matches: frozenset[int]
    session_matches: frozenset[int]
    session_not_matches: frozenset[int]
    params: tuple[ParamCheck, ...]
    call_count: CallCount | None
    default: bool
    when: dict[str, Any] = field(hash=False, compare=False)
    effect_kinds: frozenset[str] = frozenset()  # `effect:`: the kinds target conditions see
    program_matches: frozenset[int] = frozenset()
    env_matches: frozenset[int] = frozenset()
    signal_matches: frozenset[int] = frozenset()
    # `effect: [code:fetched]`: kinds named with a flow marker (their kind is in effect_kinds;
    # a kind also named without one is not listed here)
    effect_flows: frozenset[str] = frozenset()
    # Derived once here rather than on every call (see __post_init__).
    has_targets: bool = field(init=False, repr=False, compare=False)
    has_command: bool = field(init=False, repr=False, compare=False)
    restrictive: bool = field(init=False, repr=False, compare=False)
    text_conditions: tuple[tuple[str, frozenset[int]], ...] = field(
        init=False, repr=False, compare=False)
    kinds_only: bool = field(init=False, repr=False, compare=False)
    only_flows: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Derive what evaluation asks of the rule on every call."""
        texts = tuple((kind, ids) for kind, ids in (
            ("program", self.program_matches), ("env", self.env_matches),
            ("signal", self.signal_matches)) if ids)
        named = bool(self.path_matches or self.path_not_matches or self.url_matches
                     or self.domain_matches or texts)
        # True if the rule looks at the call's effects (paths, hosts, programs…)
        object.__setattr__(self, "has_targets", named or bool(self.effect_kinds))
        # True if the rule looks at the shell command
        object.__setattr__(self, "has_command", bool(
            self.command_matches or self.command_not_matches or self.command_contains))
        object.__setattr__(self, "restrictive", self.action != "allow")
        object.__setattr__(self, "text_conditions", texts)
        # `effect:` without any target pattern: the kinds alone decide
        object.__setattr__(self, "kinds_only", bool(self.effect_kinds) and not named)
        # kinds the rule names only with a flow marker: their other effects are not selected
        object.__setattr__(self, "only_flows",
                           frozenset(f.partition(":")[0] for f in self.effect_flows))

    def selects(self, kind: str, flow: str) -> bool:
        """True if an effect of this kind and flow marker is one the rule's `effect:` names
        (every effect when the rule has no `effect:`)."""
        if not self.effect_kinds:
            return True
        if kind not in self.effect_kinds:
            return False
        return kind not in self.only_flows or f"{kind}:{flow}" in self.effect_flows

    def index_key(self) -> tuple[str, frozenset[int]] | None:
        """The positive condition the rule is indexed under (None: always a candidate)."""
        for kind, ids in (("command", self.command_matches or self.command_contains),
                          ("path", self.path_matches), ("url", self.url_matches),
                          ("domain", self.domain_matches), ("session", self.session_matches),
                          ("program", self.program_matches), ("env", self.env_matches),
                          ("signal", self.signal_matches)):
            if ids:
                return kind, ids
        if self.effect_kinds:
            return "effect", frozenset(KIND_IDS[k] for k in self.effect_kinds)
        return None

    def needed_param(self) -> str | None:
        """A top-level argument the rule cannot hold without (its check fails when absent)."""
        for check in self.params:
            if "." not in check.name and (check.op != "exists" or check.value is True):
                return check.name
        return None


@dataclass(frozen=True, slots=True)
class Policy:
    """One policy: its scope (tool/agent/session globs) and its ordered rules."""

    name: str
    description: str
    priority: int
    enabled: bool
    file: str
    line: int
    order: int
    tools: tuple[str, ...]
    agents: tuple[str, ...]
    sessions: tuple[str, ...]
    tool_regex: Any
    agent_regex: Any
    session_regex: Any
    rules: tuple[Rule, ...]

    def covers_tool(self, tool: str) -> bool:
        """True if `match.tool` covers this tool name."""
        if self.tool_regex is None or tool in self.tools:
            return True
        if not any(c in g for g in self.tools for c in "*?[\\"):
            return False  # only literal names, and this is none of them
        return self.tool_regex.search(tool) is not None


class PatternSet:
    """Many RE2 patterns searched at once; returns the ids of those that match.

    Each RE2 set also holds an empty pattern at index 0, which matches every text: a search
    that does not report it has given up (RE2 sets return nothing when their automaton runs
    out of memory), and that chunk's patterns are then searched one by one, so a set can
    never miss a match silently.
    """

    def __init__(self, patterns: list[Pattern]) -> None:
        self.patterns = patterns
        self.sources = tuple(p.source for p in patterns)
        # (RE2 set, pattern id per set index - index 0 is the sentinel -, the chunk's patterns)
        self.chunks: list[tuple[Any, list[int], list[Pattern]]] = []
        opts = re2_options()
        for chunk in _chunks(patterns):
            rset = re2.Set.SearchSet(opts)
            rset.Add(_SENTINEL)
            for p in chunk:
                rset.Add(p.regex)
            rset.Compile()
            raw = getattr(rset, "_set", None)
            self.chunks.append((raw if raw is not None else rset, [-1] + [p.pid for p in chunk],
                                chunk))

    def match(self, text: str) -> frozenset[int]:
        """Ids of the patterns found in text."""
        try:
            data = text.encode()
        except UnicodeEncodeError:  # a lone surrogate: still searchable, never an error
            data = text.encode("utf-8", "surrogatepass")
        if len(data) > SET_MAX_TEXT:
            # Sets can give up on huge inputs; single RE2 searches always finish correctly.
            return _one_by_one(self.patterns, text)
        found = _NO_IDS
        for rset, pids, chunk in self.chunks:
            hits = rset.Match(data)
            if hits == _ONLY_SENTINEL:
                continue  # the usual case: nothing matched
            if 0 in hits:
                ids = frozenset(map(pids.__getitem__, hits)) - _SENTINEL_ID
            else:  # the set gave up: search this chunk's patterns singly
                ids = _one_by_one(chunk, text)
            found = found | ids if found else ids
        return found


def _chunks(patterns: list[Pattern]) -> list[list[Pattern]]:
    """Patterns split into sets of at most SET_CHUNK patterns and SET_SOURCE regex characters:
    RE2 compiles a set holding the GIL, so a bigger set would pause every other thread."""
    chunks: list[list[Pattern]] = [[]]
    size = 0
    for p in patterns:
        if chunks[-1] and (len(chunks[-1]) >= SET_CHUNK or size + len(p.regex) > SET_SOURCE):
            chunks.append([])
            size = 0
        chunks[-1].append(p)
        size += len(p.regex)
    return chunks if chunks[0] else []


_K = TypeVar("_K")
_V = TypeVar("_V")


def _store(memo: dict[_K, _V], key: _K, value: _V) -> _V:
    """Put value in a bounded memo of pure results (emptied when full) and return it."""
    if len(memo) >= _COMMAND_CACHE:
        memo.clear()
    memo[key] = value
    return value


def _one_by_one(patterns: list[Pattern], text: str) -> frozenset[int]:
    return frozenset([p.pid for p in patterns if p.compiled.search(text) is not None])


@dataclass(frozen=True)
class Plan:
    """Everything needed to evaluate calls to one tool name."""

    policies: tuple[Policy, ...]
    rules: tuple[tuple[int, Rule], ...]
    sets: dict[str, PatternSet]
    index: dict[str, dict[int, tuple[int, ...]]]
    always: tuple[int, ...]
    # rules with no indexed pattern but a check on an argument: (argument, rule positions)
    by_param: tuple[tuple[str, tuple[int, ...]], ...] = ()
    # command text → (parsed command, pattern ids per unit); a bounded memo of pure results.
    commands: dict[str, tuple[Any, Any]] = field(default_factory=dict, repr=False,
                                                 compare=False)
    # the path patterns as "trees that could hold what they name" (for `rm -rf T`), and the
    # `re:` path patterns, which have no such form
    trees: PatternSet | None = None
    opaque: PatternSet | None = None

    effects: dict[tuple[str, str | None], Any] = field(default_factory=dict, repr=False,
                                                      compare=False)
    counted: bool = False  # some rule has a call_count (its decisions depend on history)

    def derived(self, text: str, cwd: str | None, new: Callable[[], Any]) -> Any:
        """The memo of what a command's effects matched to, from one working directory."""
        key = (text, cwd)
        hit = self.effects.get(key)
        if hit is None:
            hit = _store(self.effects, key, new())
        return hit

    def remember(self, text: str, parsed: Any, units: Any) -> None:
        """Memoise what a command text parsed and matched to."""
        _store(self.commands, text, (parsed, units))

    @classmethod
    def build(cls, policies: tuple[Policy, ...], patterns: tuple[Pattern, ...]) -> Plan:
        """Flatten the rules, build one pattern set per subject and the positive index."""
        rules: list[tuple[int, Rule]] = []
        used: dict[str, set[int]] = {k: set() for k in SUBJECTS}
        index: dict[str, dict[int, list[int]]] = {k: {} for k in (*SUBJECTS, "effect")}
        always: list[int] = []
        by_param: dict[str, list[int]] = {}
        for ppos, policy in enumerate(policies):
            for rule in policy.rules:
                pos = len(rules)
                rules.append((ppos, rule))
                for ids, kind in (
                        (rule.command_matches | rule.command_not_matches | rule.command_contains,
                         "command"),
                        (rule.path_matches | rule.path_not_matches, "path"),
                        (rule.url_matches, "url"), (rule.domain_matches, "domain"),
                        (rule.session_matches | rule.session_not_matches, "session"),
                        (rule.program_matches, "program"), (rule.env_matches, "env"),
                        (rule.signal_matches, "signal")):
                    used[kind] |= ids
                key = rule.index_key()
                if key is None:
                    name = rule.needed_param()
                    if name is None:
                        always.append(pos)
                    else:
                        by_param.setdefault(name, []).append(pos)
                    continue
                for pid in key[1]:
                    index[key[0]].setdefault(pid, []).append(pos)
        sets = {kind: PatternSet([patterns[i] for i in sorted(ids)])
                for kind, ids in used.items() if ids}
        trees: list[Pattern] = []
        opaque: list[Pattern] = []
        for pid in sorted(used["path"]):
            p = patterns[pid]
            regex = path_tree_regex(p.source, p.home) if p.home is not None else None
            if regex is None:
                opaque.append(p)
            else:
                trees.append(Pattern(pid, "tree", p.role, p.source, regex, compile_regex(regex)))
        return cls(tuple(policies), tuple(rules), sets,
                   {k: {pid: tuple(v) for pid, v in m.items()} for k, m in index.items() if m},
                   tuple(always), tuple((k, tuple(v)) for k, v in by_param.items()),
                   trees=PatternSet(trees) if trees else None,
                   opaque=PatternSet(opaque) if opaque else None,
                   counted=any(rule.call_count is not None for _, rule in rules))


@dataclass(frozen=True)
class PolicySet:
    """An immutable, precompiled set of policies loaded from one directory."""

    default_action: Action
    policies: tuple[Policy, ...]  # every policy in evaluation order, disabled ones included
    patterns: tuple[Pattern, ...]
    source_dir: Path | None = None
    home: str = "/"
    warnings: tuple[str, ...] = ()
    builtin: tuple[str, ...] = ()  # built-in policies (the guard), first in order
    tool_names: Mapping[str, str] = field(default_factory=dict)  # extra host name → class
    _plans: dict[Any, Plan] = field(default_factory=dict, repr=False, compare=False)
    _tool_plans: dict[str, Plan] = field(default_factory=dict, repr=False, compare=False)
    _reach: list[Reach] = field(default_factory=list, repr=False, compare=False)
    _classes: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    # what calls were decided (see rampartd.policy.engine.evaluate): a bounded memo
    decisions: dict[tuple[Any, ...], Decision] = field(default_factory=dict, repr=False,
                                                       compare=False)

    def remember(self, key: tuple[Any, ...], decision: Decision) -> None:
        """Memoise the decision for a call that only its content decides."""
        _store(self.decisions, key, decision)

    @property
    def enabled(self) -> tuple[Policy, ...]:
        """The policies that take part in evaluation."""
        return tuple(p for p in self.policies if p.enabled)

    @property
    def policy_count(self) -> int:
        """Number of enabled policies (the user's: built-in ones are not counted)."""
        return sum(1 for p in self.enabled if p.name not in self.builtin)

    @property
    def rule_count(self) -> int:
        """Number of rules in enabled policies (the user's)."""
        return sum(len(p.rules) for p in self.enabled if p.name not in self.builtin)

    def reach(self) -> Reach:
        """The path-pattern automata for wildcard targets (built on first use)."""
        found = self._reach
        if not found:
            found.append(Reach(self.home))
        return found[0]

    def tool_class(self, name: str) -> str:
        """The class a host tool name is evaluated under (the configured table first)."""
        cls = self._classes.get(name)
        if cls is None:
            from rampartd.toolnames import tool_class

            if self.tool_names:
                cls = self.tool_names.get(name) or self.tool_names.get(name.lower())
            cls = cls or tool_class(name)
            if len(self._classes) < _PLAN_CACHE:
                self._classes[name] = cls
        return cls

    def plan_for(self, tool: str, raw: str | None = None) -> Plan:
        """The evaluation plan for one tool class (and the host's own name for it, if other:
        a policy naming either is in scope, and one naming `mcp` for an MCP server's tool)."""
        key = tool if raw is None or raw == tool else f"{tool}\x00{raw}"
        plan = self._tool_plans.get(key)
        if plan is not None:
            return plan
        names = [tool] if key == tool or not raw else [tool, raw]
        if raw and raw.startswith("mcp__"):
            names.append("mcp")
        scoped = tuple(p for p in self.enabled if any(map(p.covers_tool, names)))
        orders = tuple(p.order for p in scoped)
        plan = self._plans.get(orders)
        if plan is None:
            plan = Plan.build(scoped, self.patterns)
            if len(self._plans) < _PLAN_CACHE:
                self._plans[orders] = plan
        if len(self._tool_plans) < _PLAN_CACHE:
            self._tool_plans[key] = plan
        return plan

    def parts(self) -> list[object]:
        """What the set holds, holders after what they hold (patterns, policies, automata,
        plans), so popping the list from its end frees one small piece at a time."""
        plans = {id(p): p for p in (*self._plans.values(), *self._tool_plans.values())}
        return [*self.patterns, *self.policies, *self._reach, *plans.values()]

    def warm(self, limit: int = 256) -> None:
        """Build the plans of the built-in tools and of tools named literally in policies."""
        names = ["exec", "read", "write", "edit", "grep", "glob", "fetch", "mcp"]
        for policy in self.policies:
            names += [t for t in policy.tools if not any(c in t for c in "*?[\\")]
        for name in list(dict.fromkeys(names))[:limit]:
            self.plan_for(name)
