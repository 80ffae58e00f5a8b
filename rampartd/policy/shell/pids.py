"""The processes a pid list printed by a lookup command stands for. Pure, no I/O.

`kill $(lsof -t -i:3000)` and `lsof -ti:3000 | xargs kill` signal what `fuser -k 3000/tcp`
does, `kill $(pidof node)` what `killall node` does, `kill $(pgrep node)` what `pkill node`
does; so their targets are those selectors, judged like them, instead of pids only known at
run time (which the guard asks about). A lookup with any other option, a port range or a
pattern with regex syntax stays unknown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# lsof options that only shape its output or speed it up (-t: pids alone, -n/-P: no lookups)
_LSOF_PLAIN = frozenset({"-t", "-n", "-P", "-nP", "-Pn", "-sTCP:LISTEN", "-tn", "-tnP"})
# `-i:3000`, `-iTCP:3000`, `-i4tcp@127.0.0.1:3000` (lsof's -i spec ending in one port)
_LSOF_SPEC = re.compile(r"(?i)(?:-t?i)?(?:[46]?(?:tcp|udp)?)?(?:@[^:\s]*)?:(\d{1,5})\Z")
_FUSER_SPEC = re.compile(r"(\d{1,5})/(tcp|udp)\Z")
# a pgrep pattern judged like pkill's: literal name pieces, `.` and `.*` between them
_PLAIN_PATTERN = re.compile(r"\^?[A-Za-z0-9_.-]+\$?\Z")
_PGREP_PLAIN = frozenset({"-x", "--exact", "-n", "--newest", "-o", "--oldest"})
# What `jobs -p` (and `$!`) print: the pids of this shell's own jobs, its children, which the
# daemon (started by the service manager) never is.
OWN_JOBS = "%jobs"


def selectors(argv: Sequence[str]) -> list[str] | None:
    """Signal targets for the pids `argv` prints, or None when they cannot be told."""
    if not argv:
        return None
    program, args = argv[0].rsplit("/", 1)[-1], list(argv[1:])
    if program == "jobs":
        return [OWN_JOBS] if args in (["-p"], ["-pr"], ["-rp"], ["-p", "-r"]) else None
    if program == "lsof":
        return _lsof(args)
    if program == "fuser":
        found = [m for m in map(_FUSER_SPEC.match, args) if m]
        ok = found and len(found) == len(args)
        return [f"{int(m.group(1))}/{m.group(2)}" for m in found] if ok else None
    if program == "pidof":
        names = [a for a in args if a not in ("-s", "-x")]
        return names if names and not any(a.startswith("-") for a in names) else None
    if program == "pgrep":
        names = [a for a in args if a not in _PGREP_PLAIN]
        if len(names) == 1 and _PLAIN_PATTERN.match(names[0]):
            return names
    return None


def _lsof(args: list[str]) -> list[str] | None:
    ports: list[str] = []
    j = 0
    while j < len(args):
        word = args[j]
        if word in ("-i", "-ti", "-it") and j + 1 < len(args):
            j += 1
            word = args[j]
        m = _LSOF_SPEC.match(word)
        if m is not None:
            ports.append(f"{int(m.group(1))}/tcp")
        elif word not in _LSOF_PLAIN:
            return None
        j += 1
    return ports or None
