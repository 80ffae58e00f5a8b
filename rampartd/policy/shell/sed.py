"""What a sed script does besides editing text: the files its `r`/`R`/`w`/`W` commands (and the
`s///w` flag) read and write, and the commands its `e` command (and the `s///e` flag) runs.
Pure, no I/O, never raises.

GNU sed's grammar, read as far as these commands need: each command is an optional address
(`3`, `$`, `/re/`, `\\%re%`, `a,b`, `first~step`, `!`), one letter and its argument. A file
name or an `e` command runs to the end of its line (a `;` is part of it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rampartd.policy.shell.launchers import cluster_value

# Commands whose argument is the rest of the line: text to add, a label, a file, a command.
_TO_LINE_END = frozenset("aic:rRwWe")
_FILE_READS = frozenset("rR")
_FILE_WRITES = frozenset("wW")
_LABELLED = frozenset("btT")  # a label up to `;` or the end of the line


@dataclass
class SedScript:
    """The effects of a sed script beyond its input and output."""

    reads: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)  # `e CMD`: run by the shell
    runs_text: bool = False  # `e` alone or `s///e`: the edited text is run as a command


def _line_end(s: str, i: int) -> int:
    k = s.find("\n", i)
    return len(s) if k == -1 else k


def _delimited(s: str, i: int, delim: str) -> int:
    """Index just past the next unescaped `delim` from i (len(s) if there is none)."""
    while i < len(s):
        if s[i] == "\\":
            i += 2
            continue
        if s[i] == delim:
            return i + 1
        i += 1
    return len(s)


def _address(s: str, i: int) -> int:
    """Index past an address and its `!` (unchanged if there is none)."""
    n = len(s)
    for _ in range(2):  # `addr1[,addr2]`
        while i < n and s[i] in " \t":
            i += 1
        if i < n and (s[i].isdigit() or s[i] in "$~+"):
            while i < n and (s[i].isdigit() or s[i] in "$~+"):
                i += 1
        elif i < n and s[i] == "/":
            i = _delimited(s, i + 1, "/")
        elif i + 1 < n and s[i] == "\\":
            i = _delimited(s, i + 2, s[i + 1])
        else:
            break
        while i < n and s[i] in "IM":  # `/re/I`
            i += 1
        if i < n and s[i] == ",":
            i += 1
            continue
        break
    while i < n and s[i] in " \t!":
        i += 1
    return i


def scan_sed(script: str) -> SedScript:
    """The files and commands a sed script reaches (see the module docstring)."""
    out = SedScript()
    s, i, n = script, 0, len(script)
    while i < n:
        if s[i] in " \t\n;{}":
            i += 1
            continue
        if s[i] == "#":
            i = _line_end(s, i)
            continue
        i = _address(s, i)
        if i >= n:
            break
        cmd = s[i]
        i += 1
        if cmd in _TO_LINE_END:
            end = _line_end(s, i)
            while cmd in "aic" and end < n and s[end - 1:end] == "\\":
                end = _line_end(s, end + 1)  # `a\` text continued on the next lines
            arg = s[i:end].strip()
            if cmd in _FILE_READS and arg:
                out.reads.append(arg)
            elif cmd in _FILE_WRITES and arg:
                out.writes.append(arg)
            elif cmd == "e":
                if arg:
                    out.commands.append(arg)
                else:
                    out.runs_text = True
            i = end
        elif cmd in "sy" and i < n:
            delim = s[i]
            i = _delimited(s, _delimited(s, i + 1, delim), delim)
            while cmd == "s" and i < n and s[i] not in ";\n}":
                flag = s[i]
                i += 1
                if flag == "e":
                    out.runs_text = True
                elif flag == "w":
                    end = _line_end(s, i)
                    if s[i:end].strip():
                        out.writes.append(s[i:end].strip())
                    i = end
        elif cmd in _LABELLED:
            while i < n and s[i] not in ";\n":
                i += 1
    return out


# sed options that take a value (the next word, or attached), and those that give a script.
_VALUE_OPTIONS = frozenset({"-e", "--expression", "-f", "--file", "-l", "--line-length"})
_SCRIPT_OPTIONS = frozenset({"-e", "--expression"})
_CLUSTER_VALUES = frozenset({"-e", "-f", "-l", "-i"})  # -i: an optional suffix, attached


def sed_scripts(args: list[str]) -> list[str] | None:
    """The scripts of a sed command line (its arguments after `sed`): the `-e` values, or the
    first operand when there is none; None when a script comes from a file (`-f`), which
    this reading cannot see."""
    scripts: list[str] = []
    operands: list[str] = []
    from_file = False
    k = 0
    while k < len(args):
        t = args[k]
        name, eq, value = t.partition("=")
        if t == "--":
            operands += args[k + 1:]
            break
        if name in _VALUE_OPTIONS:
            if not eq:
                k += 1
                value = args[k] if k < len(args) else ""
            if name in _SCRIPT_OPTIONS:
                scripts.append(value)
            from_file = from_file or name in ("-f", "--file")
        elif (at := cluster_value(t, _CLUSTER_VALUES)) and t[at] != "i":
            # `-ne SCRIPT`, `-nes/a/b/`; an earlier `-i` takes the rest as its suffix (`-ie`)
            rest = t[at + 1:]
            if not rest:
                k += 1
                rest = args[k] if k < len(args) else ""
            if t[at] == "e":
                scripts.append(rest)
            from_file = from_file or t[at] == "f"
        elif not t.startswith("-") or t == "-":
            operands.append(t)
        k += 1
    if from_file:
        return None
    if not scripts and operands:
        scripts.append(operands[0])
    return scripts
