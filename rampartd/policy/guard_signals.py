"""Which kill/pkill/killall/pgrep command lines could reach one process, as RE2 regexes over a
command's text. Pure, no I/O.

The process's names (what pkill, pgrep and killall compare with) and its command lines (what
`pkill -f` searches) are fixed when the guard is built, so a selector is judged the way the
tool would judge it:

- pkill/pgrep: the pattern is an extended regex searched in the process name, or in the full
  command line with `-f`. A literal pattern reaches the daemon only if it is a piece of the
  name; a pattern made of literal pieces and `.`, `.*`, `.+`, `.?` (anchors allowed) only if
  every piece is (a necessary condition, so the test errs towards denying). Against the
  command line the pieces are those between blanks and slashes (`_line_word`). Other regex
  syntax is not judged here: the guard asks a person (`unsure_regexes`).
- killall: exact names (a path counts by its last part); with `-r` a regex, as for pkill.
- Selection by user, session, terminal, group, parent, pid file or `-v` (inverse) may take
  the daemon whatever the pattern: denied.
- kill: job specs (`%1`) never reach the daemon and plain pids are checked against its own;
  a plain lookup's pids are what it selects (rampartd.policy.shell.pids: `$(lsof -t
  -i:3000)` is port 3000); any other pid only known at run time is an unknown target
  (the effect rule asks), unless the command that produces it names the daemon
  (`pgrep rampartd`, `pidof`, `lsof`/`fuser`/`ss` on its port, its unit or home).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Longest part of a command line (between blanks and slashes) matched piece by piece.
MAX_PART = 64
_PLAIN = re.compile(r"[A-Za-z0-9 _/=,:@%~-]")
# One pkill/pgrep option word (a value option's value is its own word and may be any text).
_OPT = r"(?:--signal[= ]\S+|-\S+)"
# Regex separators a pattern may put between literal pieces and still be judged here.
_SEP = r"(?:\.[*+?]?)+"
# pkill options that select processes whatever the pattern (procps: -u -U -g -G -s -t -P -F,
# -v inverts the match); uppercase words of two letters or more are signal names (-HUP).
_PKILL_SELECTORS = (r"(-[a-z]*[ustgv][a-zA-Z]*|-[a-z]*[UGPF][a-z]*|--(euid|uid|session|pgroup"
                    r"|group|terminal|parent|pidfile|ns|nslist|cgroup|inverse))")
_KILLALL_SELECTORS = r"(-[a-zA-Z]*u[a-zA-Z]*|--user)"
_FULL = r"(?:-[a-zA-Z]*f[a-zA-Z]*|--full)"
_REGEXP = r"(?:-[a-zA-Z]*r[a-zA-Z]*|--regexp)"
# Regex syntax the piece-by-piece test cannot judge.
_UNSURE = r"([\[\](){}|\\]|(^|[^.])[*+?])"


def _lit(ch: str) -> str:
    if _PLAIN.fullmatch(ch):
        return ch
    if ch.isascii() and ch.isprintable():
        return "\\" + ch
    return f"\\x{{{ord(ch):x}}}"


def pieces(texts: Iterable[str]) -> str:
    """A regex (no anchors) for any non-empty piece (substring) of one of texts."""
    alts: list[str] = []
    seen: set[str] = set()
    for text in texts:
        for i in range(len(text)):
            suffix = text[i:]
            if suffix in seen:
                continue
            seen.add(suffix)
            body = ""
            for ch in reversed(suffix[1:]):
                body = f"(?:{_lit(ch)}{body})?"
            alts.append(_lit(suffix[0]) + body)
    return "(?:" + "|".join(alts or ["[^\\x{0}-\\x{10ffff}]"]) + ")"


def _word(piece: str) -> str:
    """A pattern word that could match something piece describes: literal pieces of it
    between regex separators."""
    return rf"(?:\^?(?:{_SEP})?{piece}(?:{_SEP}{piece})*(?:{_SEP})?\$?|\^?{_SEP}\$?)"


def _line_word(cmdlines: Iterable[str]) -> str:
    """A `pkill -f` pattern word that could match one of cmdlines. A command line is long
    (paths), and the regex for all its pieces grows with the square of its length, so the
    test is looser: every part of the pattern between blanks, slashes and regex separators
    must be a piece of one part of a command line between blanks and slashes."""
    parts = {part[:MAX_PART] for line in cmdlines for part in re.split(r"[\s/]+", line) if part}
    piece = pieces(sorted(parts))
    gap = rf"(?:/|\s|{_SEP})"
    return (rf"(?:\^?(?:/|{_SEP})*{piece}(?:{gap}+{piece})*(?:/|{_SEP})*\$?"
            rf"|\^?(?:/|{_SEP})+\$?)")


def _names_re(names: Iterable[str]) -> str:
    return "(" + "|".join(re.escape(n) for n in sorted(set(names))) + ")"


def signal_regexes(names: Iterable[str], cmdlines: Iterable[str],
                   killall_names: Iterable[str], pids: Iterable[int], port: int,
                   mentions_home: str) -> list[str]:
    """RE2 regexes (`re:` patterns) for command components and pipelines that would signal
    the process: names/cmdlines are what pkill sees of it, killall_names what killall may
    compare with, mentions_home a regex body for text that names its home."""
    names, killall_names = list(names), list(killall_names)
    lines = [c for c in cmdlines if c]
    by_name = _word(pieces(names))
    exact = _names_re(killall_names)
    tail = r"(?:\s+" + _OPT + r")*"
    out = [
        # kill -9 -1, kill -- -1 (everything we may signal; not a -1 inside a substitution)
        r"re:^kill\s+([^\s$()`]+\s+)*-1(\s|$)",
        r"re:^(killall5|kill\s+(-\S+\s+)*0$)",  # every process, or the caller's whole group
        rf"re:^(pkill|skill|snice)\s+(\S+\s+)*{_PKILL_SELECTORS}(\s|=|$)",
        rf"re:^killall\s+(\S+\s+)*{_KILLALL_SELECTORS}(\s|=|$)",
        # pkill PATTERN -f: options after the pattern are options too (procps permutes)
        rf"re:^pkill\s+(\S+\s+)*[^-\s]\S*(\s+\S+)*\s{_FULL}(\s|$)",
        rf"re:(?i)^(pkill|skill|snice){tail}\s+{by_name}{tail}$",
        rf"re:(?i)^killall\s+(\S+\s+)*(\S*/)?{exact}(\s|$)",
        rf"re:(?i)^killall\s+(\S+\s+)*{_REGEXP}(\s+\S+)*\s+{by_name}(\s|$)",
    ]
    producers = [rf"pgrep{tail}\s+{by_name}{tail}\s*[)|]",
                 rf"pidof\s+(\S+\s+)*(\S*/)?{exact}(\s|\)|$)",
                 rf"(lsof|fuser|ss|netstat|sockstat)\s([^)|]*[^0-9])?0*{port}([^0-9]|$)",
                 r"systemctl\s[^)|]*rampartd", f"[^)|]*{mentions_home}"]
    if lines:
        by_line = _line_word(lines)
        out.append(rf"re:(?i)^pkill{tail}\s+{_FULL}{tail}\s+{by_line}{tail}$")
        producers.insert(1, rf"pgrep{tail}\s+{_FULL}{tail}\s+{by_line}{tail}\s*[)|]")
    for producer in producers:
        out.append(rf"re:(?i)^kill\s(.*\s)?\$\(\s*{producer}")  # kill $(pgrep rampartd)
        out.append(rf"re:(?i)^{producer}(.*\|)?\s*kill(\s|$)")  # … | xargs kill
    out += [rf"re:^fuser\s+(\S+\s+)*-[a-zA-Z]*k.*(\s|:)0*{port}(/|\s|$)",
            r"re:^loginctl\s+(\S+\s+)*(terminate|kill)-(user|session|seat)"]
    pids = sorted(set(pids))
    if pids:
        alts = "|".join(str(p) for p in pids)
        out.append(rf"re:^(kill|renice|prlimit|gdb|strace|ltrace|reptyr)\b.*(\s|=|^)-?({alts})"
                   r"(\s|$)")
    return out


def unsure_regexes() -> list[str]:
    """pkill/killall -r patterns with regex syntax the guard does not judge (it asks)."""
    return [rf"re:^(pkill|skill|snice)\s.*{_UNSURE}",
            rf"re:^killall\s+(\S+\s+)*{_REGEXP}\s.*{_UNSURE}"]


def target_regexes(names: Iterable[str], pids: Iterable[int], port: int) -> list[str]:
    """Signal effect targets (kill/pkill/killall/fuser -k operands, from any tool or inline
    code) that would reach the process: its pid, everything, its port, a pattern that could
    match one of its names."""
    targets = [r"-1", rf"0*{port}(/tcp)?", rf"0*{port}/udp", *(rf"-?{p}" for p in pids)]
    return [rf"re:^({'|'.join(targets)})$"]


def name_target_regexes(names: Iterable[str]) -> list[str]:
    """Signal effect targets that are patterns which could match one of names: for pkill or
    killall run where the command rules do not see them (inline code)."""
    return [rf"re:(?i)^{_word(pieces(names))}$"]


# Components the command rules judge by program and options (see signal_regexes).
JUDGED = r"re:^(pkill|killall|skill|snice)(\s|$)"
