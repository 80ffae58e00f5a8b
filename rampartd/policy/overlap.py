"""Could a path with wildcards name a path a rule names? Glob-against-glob intersection.

A shell argument like `~/.ssh/id_*`, `~/.[s]sh/id_rsa` or `$DIR/config` is not one path but a
set of paths. A rule about `~/.ssh/id_rsa` must hold when that set *could* contain a path the
rule names. Both sides are turned into small automata over characters and their product is
searched for a common accepted string. Pure, bounded (the automata have one state per pattern
character), never raises.

Target syntax: a normalised absolute (or relative) path where `*`, `?` and `[…]` are wildcards
within one segment and UNKNOWN (NUL) stands for any text, `/` included (a value only known at
run time). A recursive target also names everything below it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass

from rampartd.policy.matchers import expand_home

UNKNOWN = "\x00"
WILD = re.compile(r"[*?\x00]|\[[^/]*\]")

# A character predicate: (negated, chars). (True, {"/"}) is "any but /"; (True, ∅) is any.
Pred = tuple[bool, frozenset[str]]
_ANY: Pred = (True, frozenset())
_NOT_SLASH: Pred = (True, frozenset("/"))
_SLASH: Pred = (False, frozenset("/"))
_NO_DOT: Pred = (True, frozenset("/."))


@dataclass(slots=True)
class _Nfa:
    """States 0..n-1; `moves[s]` are (pred, next); `eps[s]` epsilon moves; one final state."""

    moves: list[list[tuple[Pred, int]]]
    eps: list[list[int]]
    final: int
    below: int = -1  # a recursive target's "anything below it" state
    lead: frozenset[int] = frozenset()  # a pattern's leading `**/` ("at any depth") states

    def state(self) -> int:
        self.moves.append([])
        self.eps.append([])
        return len(self.moves) - 1


def _class(text: str, i: int) -> tuple[Pred, int] | None:
    j = i + 1
    neg = j < len(text) and text[j] in "!^"
    if neg:
        j += 1
    start = j
    if j < len(text) and text[j] == "]":
        j += 1
    while j < len(text) and text[j] != "]":
        j += 1
    if j >= len(text):
        return None
    body = text[start:j]
    chars: set[str] = set()
    k = 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-" and ord(body[k + 2]) - ord(body[k]) < 256:
            chars.update(chr(c) for c in range(ord(body[k]), ord(body[k + 2]) + 1))
            k += 3
        else:
            chars.add(body[k])
            k += 1
    if neg:
        chars.add("/")
    return (neg, frozenset(chars - ({"/"} if not neg else set()))), j + 1


def _build(text: str, *, recursive: bool = False, pattern: bool = False) -> _Nfa:
    """An automaton for a target (or, with pattern=True, a policy path glob)."""
    nfa = _Nfa([], [], 0)
    cur = nfa.state()
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if pattern and c == "*" and text.startswith("**", i):
            seg_start = i == 0 or text[i - 1] == "/"
            j = i
            while j < n and text[j] == "*":
                j += 1
            if seg_start and j < n and text[j] == "/":
                # `**/`: zero or more whole directories
                end = nfa.state()
                mid = nfa.state()
                if i == 0:
                    nfa.lead = frozenset({cur, mid})
                nfa.eps[cur].append(end)
                nfa.moves[cur].append((_ANY, mid))
                nfa.moves[mid].append((_ANY, mid))
                nfa.moves[mid].append((_SLASH, end))
                nfa.moves[cur].append((_SLASH, end))
                cur = end
                i = j + 1
                continue
            nfa.moves[cur].append((_ANY, cur))  # a final `**`: anything below
            i = j
            continue
        if c == "*":
            if not pattern and (i == 0 or text[i - 1] == "/"):
                # A shell glob's leading wildcard never matches a leading dot (no dotglob).
                nxt = nfa.state()
                nfa.moves[cur].append((_NO_DOT, nxt))
                nfa.moves[nxt].append((_NOT_SLASH, nxt))
                if i + 1 < n and text[i + 1] not in "./":
                    nfa.eps[cur].append(nxt)
                cur = nxt
                i += 1
                continue
            nfa.moves[cur].append((_NOT_SLASH, cur))
            i += 1
            continue
        if c == UNKNOWN:
            nfa.moves[cur].append((_ANY, cur))
            i += 1
            continue
        nxt = nfa.state()
        lead_dot = not pattern and (i == 0 or text[i - 1] == "/")
        if c == "?":
            nfa.moves[cur].append((_NO_DOT if lead_dot else _NOT_SLASH, nxt))
            i += 1
        elif c == "[" and (cls := _class(text, i)) is not None:
            pred = cls[0]
            if lead_dot:
                pred = (True, pred[1] | {"."}) if pred[0] else (False, pred[1] - {"."})
            nfa.moves[cur].append((pred, nxt))
            i = cls[1]
        elif c == "\\" and pattern and i + 1 < n:
            nfa.moves[cur].append(((False, frozenset(text[i + 1])), nxt))
            i += 2
        else:
            nfa.moves[cur].append(((False, frozenset(c)), nxt))
            i += 1
        cur = nxt
    if recursive:
        below = nfa.below = nfa.state()
        nfa.moves[cur].append((_SLASH, below))
        nfa.moves[below].append((_ANY, below))
        end = nfa.state()
        nfa.eps[cur].append(end)
        nfa.eps[below].append(end)
        cur = end
    nfa.final = cur
    return nfa


def _meet(a: Pred, b: Pred) -> bool:
    """True if some character satisfies both predicates."""
    a_neg, a_set = a
    b_neg, b_set = b
    if a_neg and b_neg:
        return True
    if a_neg:
        return bool(b_set - a_set)
    if b_neg:
        return bool(a_set - b_set)
    return not a_set.isdisjoint(b_set)


def _closure(nfa: _Nfa, s: int) -> list[int]:
    out = [s]
    k = 0
    while k < len(out):
        for t in nfa.eps[out[k]]:
            if t not in out:
                out.append(t)
        k += 1
    return out


# Steps one evaluation may spend searching automata; past it the answer is "could match" and
# the call is too complex to check.
MAX_STEPS = 100_000
CALL_STEPS = 20  # what one target-against-pattern check costs before any automaton step
NAME_MAX = 255  # no file name is longer; a longer glob segment is not worth matching by name


def intersects(a: _Nfa, b: _Nfa, budget: list[int]) -> bool:
    """True if some string is accepted by both automata (True too once `budget[0]` steps, shared
    by the whole evaluation, are spent).

    A recursive target `a` names what lies below it; that part may not be what `b`'s leading
    `**/` absorbs, or every tree would reach every at-any-depth pattern (`rm -rf build`
    is no deletion of `**/.ssh/id_*`); `tar c ~/.ssh` is, `tar c ~` reaches `~/.npmrc`.
    """
    start = [(x, y) for x in _closure(a, 0) for y in _closure(b, 0)]
    seen = set(start)
    todo = list(start)
    while todo:
        x, y = todo.pop()
        if x == a.final and y == b.final:
            return True
        for pa, nx in a.moves[x]:
            for pb, ny in b.moves[y]:
                budget[0] -= 1
                if budget[0] <= 0:
                    return True  # undecided: say "could", the cautious answer
                if not _meet(pa, pb) or (nx == a.below and x != a.below and y in b.lead):
                    continue
                for cx in _closure(a, nx):
                    for cy in _closure(b, ny):
                        if (cx, cy) not in seen:
                            seen.add((cx, cy))
                            todo.append((cx, cy))
    return False


def pattern_glob(source: str, home: str) -> str:
    """A policy path glob as the absolute glob it matches (`.env` → `**/.env`)."""
    pattern = re.sub(r"/{2,}", "/", expand_home(source, home))
    if not pattern.startswith("/"):
        pattern = "**/" + pattern
    while pattern.startswith("**/**/"):
        pattern = pattern[3:]
    return pattern


@dataclass(slots=True)
class _Pattern:
    """A policy path glob as an automaton, with the literal parts that prune most targets."""

    nfa: _Nfa
    prefix: str   # literal text up to the first wildcard ("" for `**/…` patterns)
    segment: str  # for `**/NAME/…`: NAME when it is literal, else ""


def _literal_prefix(text: str) -> str:
    m = re.search(r"[*?\[\\\x00]", text)
    return text if m is None else text[:m.start()]


def _could_hold(parts: tuple[str, ...], seg: str) -> bool:
    """Could some segment of target be `seg` (a literal name)? A bare `*` is taken for the
    names of a directory, not for a name an at-any-depth rule looks for (`rm -rf *` in a
    project is no deletion of `**/rampartd.db`)."""
    for part in parts:
        if part == seg or UNKNOWN in part:
            return True
        if part.strip("*") == "":
            continue
        if len(part) > NAME_MAX:
            return True  # let the automaton (and its budget) decide
        if WILD.search(part) and fnmatch.fnmatchcase(seg, part) and (
                not seg.startswith(".") or part.startswith(".")):
            return True
    return False


class Reach:
    """Path patterns as automata, built once per pattern, matched against wildcard targets."""

    def __init__(self, home: str) -> None:
        self.home = home
        self._patterns: dict[str, _Pattern | None] = {}
        self._targets: dict[tuple[str, bool], _Nfa] = {}
        self._parts: dict[str, tuple[str, ...]] = {}

    def _pattern(self, source: str) -> _Pattern | None:
        if source not in self._patterns:
            if source.startswith("re:"):
                self._patterns[source] = None
            else:
                glob = pattern_glob(source, self.home)
                # `dir/**` also matches `dir` itself
                nfa = (_build(glob[:-3], recursive=True, pattern=True) if glob.endswith("/**")
                       else _build(glob, pattern=True))
                segment = ""
                if glob.startswith("**/"):
                    first = glob[3:].split("/", 1)[0]
                    segment = first if not WILD.search(first) and "\\" not in first else ""
                self._patterns[source] = _Pattern(nfa, _literal_prefix(glob), segment)
        return self._patterns[source]

    def could_match(self, target: str, recursive: bool, source: str,
                    search: Callable[[str], bool], budget: list[int]) -> bool:
        """Could some path named by target (a wildcard path) match the pattern `source`?

        `search(text)` is the pattern's compiled regex test, used for `re:` patterns: those are
        tried on the target with its wildcards removed and replaced by probes.
        """
        budget[0] -= CALL_STEPS
        if budget[0] <= 0:
            return True
        pat = self._pattern(source)
        if pat is None:
            if UNKNOWN in target:
                return True
            probes = {WILD.sub("", target), WILD.sub("x", target)}
            if recursive:
                probes |= {p + "/x" for p in probes}
            return any(search(p) for p in probes)
        prefix = _literal_prefix(target)
        if pat.prefix and not (prefix.startswith(pat.prefix) or pat.prefix.startswith(prefix)):
            return False
        if pat.segment:
            parts = self._parts.get(target)
            if parts is None:
                budget[0] -= target.count("/")
                if len(self._parts) > 4096:
                    self._parts.clear()
                parts = self._parts[target] = tuple(dict.fromkeys(target.split("/")))
            if not _could_hold(parts, pat.segment):
                return False
        if budget[0] <= 0:
            return True
        key = (target, recursive)
        t = self._targets.get(key)
        if t is None:
            budget[0] -= len(target)
            if budget[0] <= 0:
                return True
            if len(self._targets) > 4096:
                self._targets.clear()
            t = self._targets[key] = _build(target, recursive=recursive)
        return intersects(t, pat.nfa, budget)
