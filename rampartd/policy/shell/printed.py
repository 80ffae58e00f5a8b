"""What a command substitution prints, where its shape is known whatever runs it. Pure, no I/O.

`backup-$(date +%F).sql` is some `backup-*.sql`, and `$(mktemp -d)` is a fresh directory in
the temporary folder: judged so, a dated dump or a scratch directory is not an unknown target
(which may be anything, the guarded home included). Only substitutions whose output does not
depend on where the line has moved to are read, so a variable may carry them (`d=$(mktemp -d)`
and then `"$d"`): `$(pwd)` is left to the effects model, which knows the working directory.
"""

from __future__ import annotations

import re

# Substitutions printing one name without a `/`: a date, a user, a host, a short commit.
NAME_OUTPUT = re.compile(r"\$\( (date( \+[^/$`()]*)?|whoami|id -[ug]n?|hostname( -s)?"
                         r"|uname( -[a-z]+)*|nproc|git rev-parse (--short(=\d+)? )?HEAD) \)")
# `$( mktemp ARGS )` whose arguments are all known words
MKTEMP = re.compile(r"\$\( mktemp((?: [^\s$`()'\"\\]+)*) \)")
_XS = re.compile(r"X{3,}(?=[^/]*\Z)")  # the random part of a template's last segment
_FLAGS = frozenset("dqu")  # directory, quiet, dry run: the name's shape is the same


def without_shaped(value: str) -> str:
    """value without its substitutions of known shape (and `$!`, the pid of the last job
    this shell started: its own child, whatever its number)."""
    return MKTEMP.sub("", NAME_OUTPUT.sub("", value)).replace("$!", "")


def stand_in(word: str, tmpdir: str | None) -> tuple[str, list[str]]:
    """word with each substitution of known shape replaced by a glob of what it prints, and
    the fresh paths among those globs.

    A fresh temporary path is only read when the line leaves `TMPDIR` alone (tmpdir is the
    folder mktemp then uses). It cannot be an existing file, but its parent may be anything:
    the caller is to treat a path that climbs out of it with `..` as unknown.
    """
    word = NAME_OUTPUT.sub("*", word)
    made: list[str] = []
    if tmpdir is None or "$( mktemp" not in word:
        return word, made

    def fresh(m: re.Match[str]) -> str:
        path = _mktemp(m.group(1).split(), tmpdir)
        if path is None:
            return m.group(0)
        made.append(path)
        return path

    return MKTEMP.sub(fresh, word), made


def _mktemp(args: list[str], tmpdir: str) -> str | None:
    """The glob of the path `mktemp ARGS` creates (GNU and BSD), or None when not read."""
    template, base, relative, suffix = "", "", False, ""
    words = iter(args)
    for arg in words:
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if name in ("--directory", "--dry-run", "--quiet"):
                continue
            if name == "--tmpdir":
                base = value or tmpdir
            elif name == "--suffix":
                suffix = value if eq else next(words, "")
            else:
                return None
        elif arg.startswith("-") and len(arg) > 1:
            for at, letter in enumerate(arg[1:], 1):
                if letter == "t":
                    relative = True
                elif letter == "p":
                    base = arg[at + 1:] or next(words, "")
                    break
                elif letter not in _FLAGS:
                    return None
        elif template:
            return None  # one template only
        else:
            template = arg
    if not template:
        template, base = "tmp.XXXXXXXXXX", base or tmpdir
    elif relative:
        base = base or tmpdir
    name = _XS.sub("*", template)
    if name == template:
        if not relative:
            return None  # GNU refuses a template without XXX; BSD's -t takes a prefix
        name += ".*"
    if base and not name.startswith("/"):
        name = f"{base.rstrip('/')}/{name}"
    return name + suffix
