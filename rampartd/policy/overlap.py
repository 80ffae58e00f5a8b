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

import bisect
import fnmatch
import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rampartd.policy.matchers import bracket, expand_home

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
    # each state's epsilon closure, in _closure's order (set by _build: searches reuse it)
    closure: list[tuple[int, ...]] = field(default_factory=list)

    def state(self) -> int:
        self.moves.append([])
        self.eps.append([])
        return len(self.moves) - 1


def _class(text: str, i: int) -> tuple[Pred, int] | None:
    found = bracket(text, i)
    if found is None:
        return None
    neg, body, end = found
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
    return (neg, frozenset(chars - ({"/"} if not neg else set()))), end


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
    nfa.closure = [tuple(_closure(nfa, s)) for s in range(len(nfa.moves))]
    return nfa


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
    # The search below is the plain product walk; its hot loop is written out (closures
    # precomputed, predicates met inline, the budget in a local) because wildcard targets run
    # it against every path pattern. The order of the walk and the steps it counts are those
    # of the straightforward version, so an exhausted budget stops at the same point.
    ca, cb = a.closure, b.closure
    a_moves, b_moves = a.moves, b.moves
    a_final, b_final, a_below, lead = a.final, b.final, a.below, b.lead
    start = [(x, y) for x in ca[0] for y in cb[0]]
    seen = set(start)
    todo = list(start)
    left = budget[0]
    while todo:
        x, y = todo.pop()
        if x == a_final and y == b_final:
            budget[0] = left
            return True
        guard = x != a_below and y in lead
        for (a_neg, a_set), nx in a_moves[x]:
            cut = guard and nx == a_below
            for (b_neg, b_set), ny in b_moves[y]:
                left -= 1
                if left <= 0:
                    budget[0] = left
                    return True  # undecided: say "could", the cautious answer
                if cut:
                    continue
                # _meet, inline: some character satisfies both predicates
                if a_neg:
                    if not b_neg and b_set <= a_set:
                        continue
                elif b_neg:
                    if a_set <= b_set:
                        continue
                elif a_set.isdisjoint(b_set):
                    continue
                for cx in ca[nx]:
                    for cy in cb[ny]:
                        if (cx, cy) not in seen:
                            seen.add((cx, cy))
                            todo.append((cx, cy))
    budget[0] = left
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
    lead: str     # for `**/X…` when that name is not literal: X, its literal first character
    depth: int    # how many `/` every path it matches has (-1: any number); with `tree`, at least
    tree: bool    # `dir/**`: dir and everything below it


def _literal_prefix(text: str) -> str:
    m = re.search(r"[*?\[\\\x00]", text)
    return text if m is None else text[:m.start()]


@dataclass(frozen=True, slots=True)
class _Segments:
    """A target's segments as _could_hold asks about them, sorted out once per target."""

    names: frozenset[str]   # every segment, for the literal test
    any_name: bool          # some segment could be any name (run-time text, or too long)
    globs: tuple[str, ...]  # the segments with wildcards, other than a bare `*`


def _segments(parts: list[str]) -> _Segments:
    globs: list[str] = []
    any_name = False
    for part in parts:
        if UNKNOWN in part:
            any_name = True
        elif part.strip("*") == "":
            continue
        elif len(part) > NAME_MAX:
            any_name = True  # let the automaton (and its budget) decide
        elif WILD.search(part):
            globs.append(part)
    return _Segments(frozenset(parts), any_name, tuple(dict.fromkeys(globs)))


@dataclass(slots=True)
class _Literals:
    """A list of path patterns sorted out by the literal parts could_match prunes with, so a
    target meets only the patterns those parts leave (see Reach.plausible)."""

    rest: list[int]                  # `re:` patterns, and those with no literal part: all tried
    by_prefix: dict[str, list[int]]  # literal prefix → positions
    prefixes: list[str]              # the prefixes, sorted
    lengths: list[int]               # their distinct lengths, ascending
    by_segment: dict[str, list[int]]  # `**/NAME/…` → positions
    by_lead: dict[str, list[int]]    # `**/X…` with wildcards after a literal X → positions
    hidden: tuple[str, ...]          # by_segment's names that begin with a dot
    plain: tuple[str, ...]           # and the others


def _depth(text: str) -> int:
    """How many `/` every path a glob or target names has (they only come from its literal
    `/`s), or -1 when that is not fixed (`**`, text known at run time) or not read here
    (classes, escapes)."""
    if "**" in text or UNKNOWN in text or "[" in text or "\\" in text:
        return -1
    return text.count("/")


def _head(name: str) -> str:
    """What a target's name can begin with, as _build reads it: its literal first character;
    `*` for a wildcard, which can begin with anything but a dot; UNKNOWN for anything: text
    only known at run time, a name too long to judge, or a leading `*` that may match nothing
    before more text (`*rc`, `**`), which _build lets the wildcard's loop begin with a dot."""
    if UNKNOWN in name or len(name) > NAME_MAX or (name[0] == "*" and name[1:2] not in "."):
        return UNKNOWN
    return "*" if name[0] in "*?[" else name[0]


@functools.lru_cache(maxsize=1024)
def _glob_regex(part: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(part))


def _could_hold(segs: _Segments, seg: str) -> bool:
    """Could some segment of target be `seg` (a literal name)? A bare `*` is taken for the
    names of a directory, not for a name an at-any-depth rule looks for (`rm -rf *` in a
    project is no deletion of `**/rampartd.db`)."""
    if segs.any_name or seg in segs.names:
        return True
    hidden = seg.startswith(".")
    return any(_glob_regex(part).match(seg) and (not hidden or part.startswith("."))
               for part in segs.globs)


class Reach:
    """Path patterns as automata, built once per pattern, matched against wildcard targets."""

    def __init__(self, home: str) -> None:
        self.home = home
        self._patterns: dict[str, _Pattern | None] = {}
        self._targets: dict[tuple[str, bool], _Nfa] = {}
        self._parts: dict[str, _Segments] = {}
        self._prefixes: dict[str, str] = {}
        self._lists: dict[tuple[str, ...], _Literals] = {}

    def _pattern(self, source: str) -> _Pattern | None:
        if source not in self._patterns:
            if source.startswith("re:"):
                self._patterns[source] = None
            else:
                glob = pattern_glob(source, self.home).lower()  # (targets are lowered too)
                # `dir/**` also matches `dir` itself
                nfa = (_build(glob[:-3], recursive=True, pattern=True) if glob.endswith("/**")
                       else _build(glob, pattern=True))
                segment = lead = ""
                if glob.startswith("**/"):
                    first = glob[3:].split("/", 1)[0]
                    segment = first if not WILD.search(first) and "\\" not in first else ""
                    if not segment and first and first[0] not in "*?[\\\x00":
                        lead = first[0]
                tree = glob.endswith("/**")
                self._patterns[source] = _Pattern(nfa, _literal_prefix(glob), segment, lead,
                                                  _depth(glob[:-3] if tree else glob), tree)
        return self._patterns[source]

    def forget_targets(self) -> None:
        """Drop what is remembered about targets (their automata, prefixes and segments); what
        is built from the patterns stays."""
        self._targets.clear()
        self._parts.clear()
        self._prefixes.clear()

    def _prefix(self, target: str) -> str:
        """A target's literal text up to its first wildcard (remembered per target)."""
        prefix = self._prefixes.get(target)
        if prefix is None:
            if len(self._prefixes) > 4096:
                self._prefixes.clear()
            prefix = self._prefixes[target] = _literal_prefix(target)
        return prefix

    def _segments(self, target: str, budget: list[int]) -> _Segments:
        """A target's segments sorted out (remembered per target)."""
        parts = self._parts.get(target)
        if parts is None:
            budget[0] -= target.count("/")
            if len(self._parts) > 4096:
                self._parts.clear()
            parts = self._parts[target] = _segments(target.split("/"))
        return parts

    def _literals(self, sources: tuple[str, ...]) -> _Literals:
        found = self._lists.get(sources)
        if found is None:
            rest: list[int] = []
            by_prefix: dict[str, list[int]] = {}
            by_segment: dict[str, list[int]] = {}
            by_lead: dict[str, list[int]] = {}
            for k, source in enumerate(sources):
                pat = self._pattern(source)
                if pat is None or not (pat.prefix or pat.segment):
                    lead = pat.lead if pat is not None else ""
                    if lead:
                        by_lead.setdefault(lead, []).append(k)
                    else:
                        rest.append(k)
                elif pat.prefix:
                    by_prefix.setdefault(pat.prefix, []).append(k)
                else:
                    by_segment.setdefault(pat.segment, []).append(k)
            if len(self._lists) > 64:
                self._lists.clear()
            found = self._lists[sources] = _Literals(
                rest, by_prefix, sorted(by_prefix), sorted({len(p) for p in by_prefix}),
                by_segment, by_lead, tuple(n for n in by_segment if n.startswith(".")),
                tuple(n for n in by_segment if not n.startswith(".")))
        return found

    def plausible(self, target: str, sources: tuple[str, ...], budget: list[int]) -> list[int]:
        """Positions of the patterns (sources) that could_match does not rule out by their
        literal parts alone, in order: the others cannot match target. What could_match would
        spend on those checks is spent here once for the whole list."""
        budget[0] -= len(target) + len(sources)
        target = target.lower()  # path globs ignore case (matchers.path_glob_regex)
        lit = self._literals(sources)
        out = list(lit.rest)
        prefix = self._prefix(target)
        for n in lit.lengths:  # patterns whose literal prefix the target's begins with…
            if n > len(prefix):
                break
            out += lit.by_prefix.get(prefix[:n], ())
        keys = lit.prefixes  # …and those whose prefix begins with the target's
        for k in range(bisect.bisect_left(keys, prefix), len(keys)):
            if not keys[k].startswith(prefix):
                break
            if len(keys[k]) > len(prefix):
                out += lit.by_prefix[keys[k]]
        if lit.by_lead:
            # A `**/X…` pattern's first name is one of the target's own names (never one below
            # a recursive target: see intersects), so some name must be able to begin with X.
            heads = {_head(part) for part in target.split("/") if part}
            anything = UNKNOWN in heads
            wild = anything or "*" in heads
            for lead, positions in lit.by_lead.items():
                if anything or lead in heads or (wild and lead != "."):
                    out += positions
        if lit.by_segment:
            segs = self._segments(target, budget)
            if segs.any_name:
                names: Iterable[str] = lit.by_segment
            else:
                names = segs.names.intersection(lit.by_segment)
                for part in segs.globs:  # as _could_hold: a dot name only for a dot glob
                    regex = _glob_regex(part)
                    names |= {n for n in (lit.hidden if part.startswith(".") else lit.plain)
                              if regex.match(n)}
            for name in names:
                out += lit.by_segment[name]
        out.sort()
        return out

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
        target = target.lower()
        prefix = self._prefix(target)
        if pat.prefix and not (prefix.startswith(pat.prefix) or pat.prefix.startswith(prefix)):
            return False
        if pat.segment and not _could_hold(self._segments(target, budget), pat.segment):
            return False
        depth = _depth(target) if pat.depth >= 0 else -1
        if depth >= 0:
            # each side's paths have a fixed number of `/`, or (a tree) at least that many
            if pat.tree:
                apart = not recursive and depth < pat.depth
            else:
                apart = pat.depth < depth if recursive else depth != pat.depth
            if apart:
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
