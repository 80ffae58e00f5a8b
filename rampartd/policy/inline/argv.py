"""Which interpreter command lines carry inline code, and which read their program from stdin."""

from __future__ import annotations

import re
from collections.abc import Sequence

_PYTHON = re.compile(r"(?:python|pypy)(?:[0-9]+(?:\.[0-9]+)*)?[a-z]?(?:\.exe)?\Z")
_PERL = re.compile(r"perl(?:[0-9]+(?:\.[0-9]+)*)?\Z")
_RUBY = re.compile(r"ruby(?:[0-9]+(?:\.[0-9]+)*)?\Z")
_PHP = re.compile(r"php(?:[0-9]+(?:\.[0-9]+)*)?(?:-cli)?\Z")
_LUA = re.compile(r"(?:lua(?:[0-9]+(?:\.[0-9]+)*)?|luajit)\Z")
_NODE = frozenset({"node", "nodejs", "bun"})
_AWK = frozenset({"awk", "gawk", "mawk", "nawk", "busybox-awk", "original-awk", "goawk"})
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "posh", "rbash",
                    "csh", "tcsh", "fish", "pwsh", "powershell"})
STDIN_FILES = frozenset({"-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"})
# Flags that make an interpreter print something and stop, or run its own tests, instead of
# reading a program from stdin (`node --version`, `python3 -V`, `node --test`).
NO_PROGRAM_FLAGS = frozenset({"--version", "-V", "--help", "-h", "--test", "--v8-options",
                              "-v"})

# Options that take a value in the next word (or attached), per interpreter family.
_PY_VALUE = frozenset("WX")
_PY_LONG_VALUE = frozenset({"--check-hash-based-pycs"})
_NODE_VALUE = frozenset({"-r", "--require", "--import", "--loader", "--experimental-loader",
                         "-C", "--conditions", "--input-type", "--title", "--env-file",
                         "--stack-size", "--max-old-space-size", "--cpu-prof-dir",
                         "--redirect-warnings"})
_SHELL_VALUE = frozenset({"-o", "+o", "-O", "+O", "--rcfile", "--init-file", "-C"})
_PWSH_VALUE = frozenset({"-executionpolicy", "-ep", "-workingdirectory", "-wd", "-inputformat",
                         "-outputformat", "-settingsfile", "-configurationname", "-windowstyle",
                         "-custompipename"})


def program_name(word: str) -> str:
    """The basename of a program word, lower-cased ('/usr/bin/Python3' → 'python3')."""
    return word.rsplit("/", 1)[-1].lower()


def _argv(argv: Sequence[str]) -> tuple[str, list[str]]:
    """The program and its arguments, with `busybox awk`-style multi-call prefixes removed."""
    prog, args = program_name(argv[0]), [str(a) for a in argv[1:]]
    if prog == "busybox" and args:
        prog, args = program_name(args[0]), args[1:]
    return prog, args


def family(prog: str) -> str | None:
    """The language an interpreter program runs ('shell' for the shells), or None."""
    if _PYTHON.match(prog):
        return "python"
    if _PERL.match(prog):
        return "perl"
    if prog in _NODE or prog == "deno":
        return "node"
    if _RUBY.match(prog):
        return "ruby"
    if _PHP.match(prog):
        return "php"
    if _LUA.match(prog):
        return "lua"
    if prog in ("rscript", "r"):
        return "r"
    if prog == "osascript":
        return "applescript"
    if prog in _AWK:
        return "awk"
    if prog in SHELLS:
        return "shell"
    return None


# ---- per-family option scans ------------------------------------------------------------------

class _Scan:
    """What one interpreter command line asks for."""

    __slots__ = ("code", "module", "operand", "program_file", "stdin")

    def __init__(self) -> None:
        self.code: list[str] = []
        self.operand: str | None = None  # the script file (or the awk program text)
        self.program_file: str | None = None  # awk -f, php -f, R -f
        self.module = False  # python -m, a named script in another form
        self.stdin = False


def _python(args: list[str]) -> _Scan:
    s, i = _Scan(), 0
    while i < len(args):
        a = args[i]
        if a == "-" or not a.startswith("-"):
            s.operand = a
            return s
        if a == "--":
            s.operand = args[i + 1] if i + 1 < len(args) else None
            return s
        if a.startswith("--"):
            i += 2 if a in _PY_LONG_VALUE else 1
            continue
        for k, ch in enumerate(a[1:], 1):
            if ch in "cm":
                value = a[k + 1:] or (args[i + 1] if i + 1 < len(args) else None)
                if value is not None:
                    if ch == "c":
                        s.code.append(value)
                    else:
                        s.module = True
                return s
            if ch in _PY_VALUE:
                i += 0 if a[k + 1:] else 1
                break
        i += 1
    return s


def _clustered(args: list[str], code_flags: str, next_value: str, rest_value: str,
               digit_value: str) -> _Scan:
    """Perl- and Ruby-style switch clusters (`-lne CODE`, `-i.bak`, `-Mstrict`, `-I dir`)."""
    s, i = _Scan(), 0
    while i < len(args):
        a = args[i]
        if a == "-" or not a.startswith("-") or a == "--":
            if a == "--":
                i += 1
                a = args[i] if i < len(args) else ""
            if s.code:
                return s  # the rest are the code's arguments
            s.operand = a or None
            return s
        k, consumed_next = 1, False
        while k < len(a):
            ch = a[k]
            if ch in code_flags:
                value = a[k + 1:]
                if not value and i + 1 < len(args):
                    value, consumed_next = args[i + 1], True
                s.code.append(value)
                break
            if ch in next_value:
                consumed_next = not a[k + 1:]
                break
            if ch in rest_value:
                break
            k += 1
            if ch in digit_value:  # `-0777`, `-0x1F`, `-l012`: digits, never a following switch
                if ch == "0" and a[k:k + 1] == "x":
                    k += 1
                    while k < len(a) and a[k] in "0123456789abcdefABCDEF":
                        k += 1
                while k < len(a) and a[k] in "01234567":
                    k += 1
        i += 2 if consumed_next else 1
    return s


def _node(prog: str, args: list[str]) -> _Scan:
    s, i = _Scan(), 0
    if prog == "deno":
        if not args:
            s.stdin = True
            return s
        sub, args = args[0], args[1:]
        if sub == "eval":
            operands = [a for a in args if not a.startswith("-")]
            if operands:
                s.code.append(operands[0])
            return s
        if sub != "run":
            s.module = True
            return s
    while i < len(args):
        a = args[i]
        name, eq, attached = a.partition("=")
        if a == "-":
            s.stdin = True
            return s
        if not a.startswith("-"):
            if prog == "bun" and a == "run" and i + 1 < len(args) and args[i + 1] == "-":
                s.stdin = True
            s.operand = a
            return s
        if a == "--":
            s.operand = args[i + 1] if i + 1 < len(args) else None
            return s
        if name in ("-e", "--eval", "-p", "--print", "-pe", "-ep"):
            value = attached if eq else (args[i + 1] if i + 1 < len(args) else None)
            if value is not None:
                s.code.append(value)
            return s
        i += 2 if name in _NODE_VALUE and not eq else 1
    return s


def _php(args: list[str]) -> _Scan:
    s, i = _Scan(), 0
    while i < len(args):
        a = args[i]
        if a == "--" or not a.startswith("-") or a == "-":
            if not s.code and s.program_file is None:
                s.operand = args[i + 1] if a == "--" and i + 1 < len(args) else a
            return s
        flag, value = a[:2], a[2:]
        if flag in ("-r", "-B", "-R", "-E", "-f", "-F", "-d", "-c", "-z", "-t", "-S"):
            if not value and i + 1 < len(args):
                value, i = args[i + 1], i + 1
            if flag in ("-r", "-B", "-R", "-E"):
                s.code.append(value)
            elif flag in ("-f", "-F"):
                s.program_file = value
            elif flag == "-S":
                s.module = True  # `php -S ADDR`: the built-in web server, no program on stdin
        i += 1
    return s


def _repeated(args: list[str], code_flag: str, value_flags: frozenset[str],
              file_flag: str = "") -> _Scan:
    """Interpreters whose code flag may repeat and whose options are plain words (lua, R)."""
    s, i = _Scan(), 0
    while i < len(args):
        a = args[i]
        if a == "--args":
            return s
        if a == "-" or not a.startswith("-"):
            if not s.code and s.program_file is None:
                s.operand = a
            return s
        if a == code_flag or (a.startswith(code_flag) and len(code_flag) == 2 and a[2:] and
                              not a.startswith("--")):
            value = a[len(code_flag):] or (args[i + 1] if i + 1 < len(args) else None)
            i += 1 if a[len(code_flag):] else 2
            if value is not None:
                s.code.append(value)
            continue
        if file_flag and (a == file_flag or a.startswith(file_flag + "=")):
            s.program_file = a.partition("=")[2] or (args[i + 1] if i + 1 < len(args) else "")
            i += 1 if "=" in a else 2
            continue
        if a.startswith("--file="):
            s.program_file = a.partition("=")[2]
        i += 2 if a in value_flags else 1
    return s


def _awk(args: list[str]) -> _Scan:
    s, i = _Scan(), 0
    while i < len(args):
        a = args[i]
        if a == "--":
            i += 1
            break
        if not a.startswith("-") or a == "-":
            break
        name, eq, attached = a.partition("=")
        flag, value = a[:2], a[2:]
        if name in ("--source", "--file", "--include", "--load", "--field-separator",
                    "--assign", "--exec"):
            value = attached if eq else (args[i + 1] if i + 1 < len(args) else "")
            i += 1 if eq else 2
            if name == "--source":
                s.code.append(value)
            elif name in ("--file", "--exec"):
                s.program_file = value
            continue
        if flag in ("-f", "-e", "-F", "-v", "-i", "-l", "-E"):
            if not value:
                value = args[i + 1] if i + 1 < len(args) else ""
                i += 1
            if flag == "-e":
                s.code.append(value)
            elif flag in ("-f", "-E"):
                s.program_file = value
        i += 1
    if not s.code and s.program_file is None and i < len(args):
        s.code.append(args[i])
    return s


def _osascript(args: list[str]) -> _Scan:
    s, i = _Scan(), 0
    while i < len(args):
        a = args[i]
        if a == "-e":
            if i + 1 < len(args):
                s.code.append(args[i + 1])
            i += 2
            continue
        if a in ("-l", "-s"):
            i += 2
            continue
        if a == "-" or not a.startswith("-"):
            if not s.code:
                s.operand = a
            return s
        i += 1
    return s


def _scan(lang: str, prog: str, args: list[str]) -> _Scan:
    if lang == "python":
        return _python(args)
    if lang == "perl":
        return _clustered(args, "eE", "IMm", "ixdDFCV", "0l")
    if lang == "ruby":
        return _clustered(args, "e", "rICE", "iFWKTx", "0l")
    if lang == "node":
        return _node(prog, args)
    if lang == "php":
        return _php(args)
    if lang == "lua":
        return _repeated(args, "-e", frozenset({"-l"}))
    if lang == "r":
        return _repeated(args, "-e", frozenset({"--encoding"}), file_flag="-f")
    if lang == "applescript":
        return _osascript(args)
    return _awk(args)


def inline_code(argv: Sequence[str]) -> tuple[str, str] | None:
    """(language, code) when argv runs inline interpreter code (`python3 -c CODE`), else None."""
    return program_input(argv)[0]


def _shell_reads_stdin(prog: str, args: list[str]) -> bool:
    if args[:1] in (["--version"], ["--help"]):
        return False  # prints and exits
    i = 0
    pwsh = prog in ("pwsh", "powershell")
    while i < len(args):
        a = args[i]
        low = a.lower()
        if pwsh:
            if low in ("-command", "-c", "-file", "-f"):
                return i + 1 >= len(args) or args[i + 1] == "-"
            if low in ("-encodedcommand", "-e", "-ec"):
                return False
            if low.startswith("-"):
                i += 2 if low in _PWSH_VALUE else 1
                continue
            return a in STDIN_FILES
        if a == "-" or a == "--":
            rest = args[i + 1:]
            return not rest or a == "-" or rest[0] in STDIN_FILES
        if a.startswith("-") or a.startswith("+"):
            if a in _SHELL_VALUE:
                i += 2
                continue
            if not a.startswith("--") and "c" in a[1:]:
                return False
            if not a.startswith("--") and "s" in a[1:]:
                return True
            # `-euxo pipefail`: a cluster ending in o/O takes the next word as its value
            i += 2 if not a.startswith("--") and a[-1] in "oO" else 1
            continue
        return a in STDIN_FILES
    return True


def reads_stdin_program(argv: Sequence[str]) -> str | None:
    """The language when argv would run a program read from stdin (`python3 -`, `sh -s`)."""
    return program_input(argv)[1]


def program_input(argv: Sequence[str]) -> tuple[tuple[str, str] | None, str | None]:
    """(inline_code(argv), reads_stdin_program(argv)), reading the arguments once."""
    if not argv:
        return None, None
    prog, args = _argv(argv)
    lang = family(prog)
    if lang is None:
        return None, None
    if lang == "shell":
        return None, lang if _shell_reads_stdin(prog, args) else None
    if prog == "r" and args[:1] == ["CMD"]:
        return None, None
    s = _scan(lang, prog, args)
    if s.code or s.module:
        return None if s.module else (lang, "\n".join(s.code)), None
    return None, _stdin_language(lang, prog, args, s)


def _stdin_language(lang: str, prog: str, args: list[str], s: _Scan) -> str | None:
    """reads_stdin_program for an interpreter whose arguments carry no inline code."""
    if lang == "awk":
        return lang if s.program_file in STDIN_FILES else None
    if s.program_file is not None:
        return lang if s.program_file in STDIN_FILES else None
    if s.stdin:
        return lang
    if prog == "deno":
        return None
    if s.operand is None and any(a in NO_PROGRAM_FLAGS and not (a == "-v" and lang == "python")
                                 for a in args):
        return None  # `python -v` alone is a verbose interactive session: it reads stdin
    return lang if s.operand is None or s.operand in STDIN_FILES else None
