"""Interpreters whose languages are not read here (Tcl, Lisp, Elixir, Julia…). Pure, no I/O.

Their inline code (`expect -c …`, `julia -e …`) or a program fed to them on stdin is checked
only this far: quoted paths are read, and code that runs commands (by each language's own
words for it) is code nobody has checked, its quoted text and Tcl's `exec`/`spawn` words run
as command lines. Code that runs nothing (`julia -e 'using Pkg; Pkg.instantiate()'`) passes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from rampartd.policy.overlap import UNKNOWN

_TCL = r"\b(exec|spawn|system|open\s*\|)\b"
_LISP = r"\((system|run-program|sb-ext:run-program|ext:run-program|shell|process)\b"
_CLOJURE = r"clojure\.java\.shell|\bsh\b|babashka\.process|ProcessBuilder"
# program → (options that take inline code, what in that code runs a command)
LANGUAGES: dict[str, tuple[frozenset[str], re.Pattern[str]]] = {
    name: (frozenset(options), re.compile(runs)) for names, options, runs in (
        (("tclsh", "wish", "jimsh"), (), _TCL), (("expect",), ("-c",), _TCL),
        (("guile", "racket"), ("-c", "-e", "--eval"), _LISP),
        (("sbcl", "clisp", "ecl"), ("--eval", "-x", "-eval"), _LISP),
        (("elixir", "iex"), ("-e", "--eval"), r"System\.(cmd|shell)|:os\.cmd|Port\.open"),
        (("erl",), ("-eval",), r"os:cmd|open_port"),
        (("groovy",), ("-e",), r"\.execute\(|ProcessBuilder|Runtime"),
        (("scala", "jshell"), ("-e",), r"ProcessBuilder|Runtime|sys\.process|\.!"),
        (("julia",), ("-e", "-E", "--eval", "--print"), r"\brun\(|`|pipeline\(|\bspawn\("),
        (("octave", "matlab"), ("--eval", "-r", "-batch"), r"\b(system|unix|dos|shell_cmd)\b|!"),
        (("ghc", "ghci"), ("-e",), r"System\.Process|callCommand|readProcess|\bsystem\b"),
        (("clojure", "clj", "bb"), ("-e", "--eval"), _CLOJURE),
        (("nu", "xonsh", "elvish"), ("-c", "--commands"), r"."),  # shells: all of it runs
        (("hy",), ("-c",), r"subprocess|os\.system|os\.popen"),
        (("swipl",), ("-g",), r"\b(shell|process_create)\b"),
    ) for name in names
}
_TCL_FAMILY = frozenset({"tclsh", "wish", "jimsh", "expect"})
_TCL_COMMAND = re.compile(r"\b(?:exec|spawn)\s+([^;\n\]}\"]+)")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|`([^`]*)`')


class Found(NamedTuple):
    """What the code reads (quoted paths), whether it runs commands, and the command lines."""

    paths: list[str]
    runs: bool
    commands: list[str]


def scan(program: str, args: Sequence[str], stdin: str | None) -> Found:
    """The inline code of one command line of a LANGUAGES interpreter, and a program it reads
    from stdin (`stdin`: the text fed to it, UNKNOWN when only known at run time, None when
    nothing is)."""
    options, runs = LANGUAGES[program]
    code = [args[k + 1] for k, a in enumerate(args[:-1]) if a in options]
    code += [a.split("=", 1)[1] for a in args if "=" in a and a.split("=", 1)[0] in options]
    if stdin is not None and all(a.startswith("-") for a in args):
        code.append(stdin)
    paths: list[str] = []
    commands: list[str] = []
    running = False
    for text in code:
        quoted = [next(g for g in m.groups() if g is not None) for m in _QUOTED.finditer(text)]
        paths += [w for w in quoted if w.startswith(("/", "~/", "./", "../")) and " " not in w]
        if UNKNOWN in text or runs.search(text):
            running = True
            commands += [w for w in quoted if " " in w]
            if program in _TCL_FAMILY:  # `exec rm -rf ~`: Tcl's command words, unquoted
                commands += [m.group(1) for m in _TCL_COMMAND.finditer(text)]
    return Found(paths, running, commands)
