"""What rules see of a call: its command units and effects, matched against a plan's pattern
sets on demand, and how surely a rule's effect conditions hold. Pure, no I/O.

A rule's effect conditions (`path_matches`, `url_matches`, `domain_matches`,
`program_matches`, `env_matches`, `signal_matches`, `effect:`) hold for deny/ask/watch when
some effect of the selected kinds satisfies them, and for allow when every such effect does.
A target only known at run time makes a deny/ask/watch condition hold POSSIBLY (a deny then
asks) and an allow condition never.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from operator import itemgetter
from typing import Any, TypeVar

from rampartd.models import ToolCall
from rampartd.policy.effects import Effect, call_effects
from rampartd.policy.overlap import MAX_STEPS, UNKNOWN
from rampartd.policy.policyset import KIND_IDS, PatternSet, Plan, PolicySet, Rule
from rampartd.policy.shell.command import TOO_COMPLEX
from rampartd.policy.shell.parse import ParsedCommand, parse_command
from rampartd.policy.shell.roles import FILE_KINDS
from rampartd.toolnames import WHOLE_DIRECTORY_READERS, class_params

# A command unit: (pattern ids found in its texts, kind: component | pipeline | raw).
Unit = tuple[frozenset[int], str]


def command_text(params: Mapping[str, Any]) -> str | None:
    """A shell call's command line: `command` (a string or an argv list), `cmd` or
    `cli_command` as some hosts and MCP servers name it, or the `chars` typed into a running
    shell (Codex's write_stdin)."""
    value = params.get("command")
    if value is None:
        value = params.get("cmd", params.get("chars", params.get("cli_command")))
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return shlex.join(value)
    return None


# A code runner's language → the interpreter line its `code` is judged as
_RUNNERS = {"python": ("python3", "-c"), "py": ("python3", "-c"), "ipython": ("python3", "-c"),
            "python3": ("python3", "-c"), "javascript": ("node", "-e"), "js": ("node", "-e"),
            "node": ("node", "-e"), "typescript": ("node", "-e"), "ruby": ("ruby", "-e"),
            "perl": ("perl", "-e"), "php": ("php", "-r")}
_SHELLS = frozenset({"bash", "sh", "shell", "zsh"})


def code_text(params: Mapping[str, Any]) -> str | None:
    """A code runner's `code` as the command line that runs it (`python3 -c CODE`; Python
    when no `language` says otherwise, a shell's code as is; None: no code, or a language
    not read here)."""
    code, language = params.get("code"), params.get("language") or "python"
    if not isinstance(code, str) or not isinstance(language, str):
        return None
    language = language.lower()
    if language in _SHELLS:
        return code
    runner = _RUNNERS.get(language)
    return shlex.join([*runner, code]) if runner else None


class Subjects:
    """The call's texts and effects, normalised and matched against the plan's pattern sets,
    on demand."""

    __slots__ = ("_session", "_text", "_units", "call", "d", "params", "parsed", "plan", "ps",
                 "tool")
    d: _Derived  # what the call's effects are and matched to (shared through the plan's memo)

    def __init__(self, policy_set: PolicySet, plan: Plan, call: ToolCall, tool: str,
                 text: str | None) -> None:
        """`text`: the call's command text (command_text of its params)."""
        self.ps = policy_set
        self.plan = plan
        self.call = call
        self.tool = tool
        self.params = class_params(tool, call.params)  # what `params:` conditions read
        self.parsed: ParsedCommand | None = None
        self._text: str | None = None
        self._units: list[Unit] | None = None
        self._session: list[frozenset[int]] | None = None
        if tool == "exec" and text is not None:
            self._parse(text)
            # ...and what its effects were and matched to, from the same directory.
            self.d = plan.derived(text, call.cwd, _Derived)
            return
        self.d = _Derived()
        if text is None:
            if tool == "exec":
                # A shell call whose command cannot be read is not a call we can vouch for.
                self.parsed = ParsedCommand("", (), problem="the exec call has no command text")
        elif "command" in plan.sets:
            self._parse(text)

    def _parse(self, text: str) -> None:
        # Agents repeat commands; the plan remembers what each text parsed and matched to.
        hit = self.plan.commands.get(text)
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

    def units(self) -> list[Unit]:
        if self._units is None:
            units: list[Unit] = []
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

    def effects(self) -> tuple[Effect, ...]:
        """What the call reads, writes, deletes, runs, contacts… (see rampartd.policy.effects)."""
        if self.d.effects is None:
            parsed = self.parsed if self.tool == "exec" else None
            whole = self.call.tool.lower() in WHOLE_DIRECTORY_READERS
            self.d.effects = call_effects(self.tool, self.call.params, parsed,
                                         cwd=self.call.cwd, home=self.ps.home, whole_dirs=whole)
            self.d.kinds = frozenset(map(_KIND, self.d.effects))
        return self.d.effects

    def kinds(self) -> frozenset[str]:
        """The kinds among the call's effects."""
        if self.d.effects is None:
            self.effects()
        return self.d.kinds

    def files(self) -> list[_Ids]:
        """(effect, ids it could match, ids it surely matches) for every file effect."""
        if self.d.files is None:
            pset = self.plan.sets.get("path")
            out: list[_Ids] = []
            for e in self.effects():
                if e.kind not in FILE_KINDS:
                    continue
                if pset is None:
                    out.append((e, _NONE, _NONE))
                    continue
                direct = pset.match(e.target)
                sure = _NONE if e.unknown else direct
                if e.recursive and sure:
                    sure = sure & pset.match(e.target + "/" + UNKNOWN)
                maybe = direct
                if e.target == UNKNOWN:
                    maybe = frozenset(p.pid for p in pset.patterns)
                elif e.unknown or e.wild:
                    maybe = maybe | self._reach(e, pset)
                elif e.recursive:
                    trees, opaque = self.plan.trees, self.plan.opaque
                    if trees is not None:
                        maybe = maybe | trees.match(e.target)
                    if opaque is not None:
                        # `re:` patterns have no tree form: the tree itself and a path
                        # below it stand for what it holds (as Reach.could_match probes)
                        maybe = maybe | opaque.match(e.target) | opaque.match(e.target + "/x")
                out.append((e, maybe, sure))
            self.d.files = out
        return self.d.files

    def _reach(self, e: Effect, pset: PatternSet) -> frozenset[int]:
        """Ids of the set's patterns a wildcard target could match (only those their literal
        parts leave are searched)."""
        reach = self.ps.reach()
        budget = self.d.budget
        found: list[int] = []
        patterns = pset.patterns
        for p in [patterns[k] for k in reach.plausible(e.target, pset.sources, budget)]:
            if budget[0] <= 0:  # out of steps: every pattern could match
                self.d.problem = TOO_COMPLEX
                return frozenset(p.pid for p in patterns)
            if reach.could_match(e.target, e.recursive, p.source, _searcher(p.compiled),
                                 budget):
                found.append(p.pid)
        return frozenset(found)

    def nets(self) -> list[tuple[Effect, frozenset[int], frozenset[int]]]:
        """(effect, url ids, domain ids) for every network effect."""
        if self.d.nets is None:
            out = []
            for e in self.effects():
                if e.kind != "network":
                    continue
                if e.unknown:
                    out.append((e, _NONE, _NONE))
                    continue
                domain = _NONE
                if "domain" in self.plan.sets and e.host:
                    # a v4-mapped IPv6 host (`[::ffff:169.254.169.254]`) is its IPv4 address
                    host = e.host.removeprefix("::ffff:") if "." in e.host else e.host
                    labels = host.split(".")
                    for k in range(len(labels)):
                        domain = domain | self._match("domain", ".".join(labels[k:]))
                out.append((e, self._match("url", e.target), domain))
            self.d.nets = out
        return self.d.nets

    def texts(self, kind: str) -> list[tuple[Effect, frozenset[int]]]:
        """(effect, ids) for the program / env / signal effects."""
        hit = self.d.texts.get(kind)
        if hit is None:
            ekind = _TEXT_KINDS[kind]
            hit = [(e, self._env_reach(e) if kind == "env" and e.unknown
                    else self._match(kind, e.target)) for e in self.effects() if e.kind == ekind]
            self.d.texts[kind] = hit
        return hit

    def _env_reach(self, e: Effect) -> frozenset[int]:
        """Env patterns a variable could match when its value is only known at run time.

        The name is known (`PATH=$HOME/bin:$PATH` sets PATH), so only patterns that could
        begin with that name and `=` remain, and of globs only those whose literal start fits
        the value's known start too (`PATH=/tmp*` is no match for `PATH=./bin:$PATH`); a name
        itself built at run time keeps them all.
        """
        pset = self.plan.sets.get("env")
        if pset is None:
            return _NONE
        name, sep, _ = e.target.partition("=")
        if not sep or UNKNOWN in name:
            return self._everything("env")
        head = e.target.split(UNKNOWN, 1)[0]  # NAME= and what is known of the value
        found = []
        for p in pset.patterns:
            if p.source.startswith("re:"):
                named = _RE_NAMES.match(p.source[3:])
                # a regex anchored on variable names holds only for those; any other could match
                if named is None or name in (named.group(1) or named.group(2)).split("|"):
                    found.append(p.pid)
                continue
            prefix = _GLOB_HEAD.match(p.source)
            lit = prefix.group(0) if prefix else ""
            if lit.startswith(head) or head.startswith(lit):
                found.append(p.pid)
        return frozenset(found)

    def session(self) -> list[frozenset[int]]:
        if self._session is None:
            self._session = [self._match("session", self.call.session)]
        return self._session

    def candidates(self) -> set[int]:
        """Positions of the plan's rules that could hold: those always checked, those that
        check an argument the call has, and those indexed under a pattern some subject text
        of the call matched."""
        plan = self.plan
        found = set(plan.always)
        if plan.by_param:
            params = self.params
            for name, positions in plan.by_param:
                if name in params:
                    found.update(positions)
        for kind, index in plan.index.items():
            needs = _NEEDS.get(kind)
            if needs is not None and needs.isdisjoint(self.kinds()):
                continue  # no effect of the kinds this pattern kind looks at
            for ids in self.id_sets(kind):
                for pid in ids:
                    hit = index.get(pid)
                    if hit is not None:
                        found.update(hit)
        return found

    def id_sets(self, kind: str) -> list[frozenset[int]]:
        if kind == "command":
            return [u[0] for u in self.units()]
        if kind == "session":
            return self.session()
        hit = self.d.ids.get(kind)
        if hit is None:
            hit = self.d.ids[kind] = self._id_sets(kind)
        return hit

    def _id_sets(self, kind: str) -> list[frozenset[int]]:
        if kind == "effect":
            kinds = self.kinds()
            ids = _KIND_ID_SETS.get(kinds)
            if ids is None:  # at most one entry per combination of the few effect kinds
                ids = _KIND_ID_SETS[kinds] = frozenset([KIND_IDS[k] for k in kinds])
            return [ids]
        if kind == "path":
            return [maybe for _, maybe, _ in self.files()]
        if kind == "url":
            return [u for e, u, _ in self.nets()] + self._unknown_nets("url")
        if kind == "domain":
            return [d for e, _, d in self.nets()] + self._unknown_nets("domain")
        if kind in _TEXT_KINDS:
            return [self._everything(kind) if e.unknown and kind != "env" else ids
                    for e, ids in self.texts(kind)]
        return self.session()

    def _everything(self, kind: str) -> frozenset[int]:
        pset = self.plan.sets.get(kind)
        return frozenset(p.pid for p in pset.patterns) if pset is not None else _NONE

    def _unknown_nets(self, kind: str) -> list[frozenset[int]]:
        if any(e.unknown for e, _, _ in self.nets()):
            return [self._everything(kind)]
        return []


class _Derived:
    """What a call's effects are and which patterns they match (memoised per command)."""

    __slots__ = ("budget", "effects", "files", "ids", "kinds", "nets", "problem", "texts")

    def __init__(self) -> None:
        self.budget = [MAX_STEPS]  # automaton steps left for wildcard targets
        self.problem: str | None = None  # set when the budget ran out
        self.effects: tuple[Effect, ...] | None = None
        self.kinds: frozenset[str] = frozenset()  # the kinds among the effects
        self.files: list[_Ids] | None = None
        self.nets: list[tuple[Effect, frozenset[int], frozenset[int]]] | None = None
        self.texts: dict[str, list[tuple[Effect, frozenset[int]]]] = {}
        self.ids: dict[str, list[frozenset[int]]] = {}


_TEXT_KINDS = {"program": "exec", "env": "env", "signal": "signal"}
# Pattern kinds and the effect kinds they look at (nothing to match without one of those).
_NEEDS: dict[str, frozenset[str]] = {
    "path": frozenset(FILE_KINDS), "url": frozenset({"network"}),
    "domain": frozenset({"network"}), **{k: frozenset({v}) for k, v in _TEXT_KINDS.items()}}
_NONE: frozenset[int] = frozenset()
_KIND = itemgetter(0)  # an Effect's kind
_KIND_ID_SETS: dict[frozenset[str], frozenset[int]] = {}  # effect kinds → their `effect:` ids
_GLOB_HEAD = re.compile(r"[^*?\[]*")  # a glob's literal text before its first wildcard
# A regex anchored on one variable name or a group of them: `^NAME=`, `^(A|B|C)=`.
_RE_NAMES = re.compile(
    r"(?:\^|\\A)(?:([A-Za-z_]\w*)|\((?:\?:)?([A-Za-z_]\w*(?:\|[A-Za-z_]\w*)*)\))=")
# A file effect with the pattern ids it could match and those it surely matches.
_Ids = tuple[Effect, frozenset[int], frozenset[int]]
# How sure a rule is to hold: not at all, only through targets known at run time, surely.
NO, POSSIBLY, SURELY = 0, 1, 2


def _searcher(compiled: Any) -> Any:
    return lambda text: compiled.search(text) is not None


def _kinds(rule: Rule, kinds: frozenset[str]) -> frozenset[str]:
    return kinds & rule.effect_kinds if rule.effect_kinds else kinds


_FILE_SET = frozenset(FILE_KINDS)
_NET_SET = frozenset({"network"})


_Item = TypeVar("_Item", bound=tuple[Any, ...])  # (effect, what it matched…)


def _flowing(rule: Rule, items: list[_Item]) -> list[_Item]:
    """The items whose effect the rule's `effect:` selects by its flow marker too."""
    if not rule.only_flows:
        return items
    return [it for it in items if rule.selects(it[0].kind, it[0].flow)]


def _file_level(rule: Rule, subj: Subjects, restrictive: bool) -> int:
    kinds = _kinds(rule, _FILE_SET)
    items = _flowing(rule, [it for it in subj.files() if it[0].kind in kinds])
    pos, neg = rule.path_matches, rule.path_not_matches
    if not items:
        return NO
    if not restrictive:
        for e, maybe, sure in items:
            if e.unknown or (pos and pos.isdisjoint(sure)) or (neg and not neg.isdisjoint(maybe)):
                return NO
        return SURELY
    level = NO
    for e, maybe, sure in items:
        if (pos and pos.isdisjoint(maybe)) or (neg and not neg.isdisjoint(sure)):
            continue
        if not e.unknown:
            return SURELY
        level = POSSIBLY
    return level


def _net_level(rule: Rule, subj: Subjects, restrictive: bool) -> int:
    if not _kinds(rule, _NET_SET):
        return NO
    items = _flowing(rule, subj.nets())
    if not items:
        return NO
    level = NO if restrictive else SURELY
    for e, url_ids, domain_ids in items:
        ok = not ((rule.url_matches and rule.url_matches.isdisjoint(url_ids))
                  or (rule.domain_matches and rule.domain_matches.isdisjoint(domain_ids)))
        if restrictive:
            if e.unknown:
                level = max(level, POSSIBLY)
            elif ok:
                return SURELY
        elif e.unknown or not ok:
            return NO
    return level


def _text_level(rule: Rule, subj: Subjects, kind: str, pos: frozenset[int],
                restrictive: bool) -> int:
    if not _kinds(rule, frozenset({_TEXT_KINDS[kind]})):
        return NO
    items = _flowing(rule, subj.texts(kind))
    if not items:
        return NO
    level = NO if restrictive else SURELY
    for e, ids in items:
        if restrictive:
            if e.unknown:
                if kind != "env" or not pos.isdisjoint(ids):
                    level = max(level, POSSIBLY)
            elif not pos.isdisjoint(ids):
                return SURELY
        elif e.unknown or pos.isdisjoint(ids):
            return NO
    return level


def _kind_level(rule: Rule, subj: Subjects, restrictive: bool) -> int:
    """`effect:` alone: the call has such an effect (allow: it has only such effects)."""
    effects = subj.effects()
    if restrictive:
        return SURELY if any(rule.selects(e.kind, e.flow) for e in effects) else NO
    return SURELY if effects and all(rule.selects(e.kind, e.flow) for e in effects) else NO


def target_level(rule: Rule, subj: Subjects, restrictive: bool) -> int:
    """How surely the rule's effect conditions hold (each must; the weakest counts)."""
    level = SURELY
    if rule.path_matches or rule.path_not_matches:
        level = min(level, _file_level(rule, subj, restrictive))
    if level and (rule.url_matches or rule.domain_matches):
        level = min(level, _net_level(rule, subj, restrictive))
    for kind, pos in rule.text_conditions:
        if level:
            level = min(level, _text_level(rule, subj, kind, pos, restrictive))
    if level and rule.kinds_only:
        level = _kind_level(rule, subj, restrictive)
    return level
