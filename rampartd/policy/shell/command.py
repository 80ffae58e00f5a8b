"""Normalising one simple command: strip launchers and assignments, unwrap script runners.

Shared by the shell parser (rampartd.policy.shell.grammar) and the fast paths in
rampartd.policy.shell. Component and ParsedCommand are the public results.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import NamedTuple

from rampartd.policy.matchers import FETCHERS, posix_basename, urls_in_words
from rampartd.policy.shell import launchers as L
from rampartd.policy.shell.embedded import EMBEDDERS, ENV_COMMANDS, embedded_commands
from rampartd.policy.shell.printed import without_shaped

MAX_COMPONENTS = 512
# Work one parse may do, in characters and words handled (nested scripts, launchers, forms
# included): a few times the longest command. Past it the command is too complex to check.
MAX_STEPS = 4 * 64 * 1024
TOO_COMPLEX = "the command is too complex to check"
# First words that need the full treatment in emit (everything else is a plain program).
SPECIAL = frozenset({*L.LAUNCHER_VALUE_OPTIONS, *L.SHELLS, "eval", "su", "runuser", "script",
                     "watch", "find"})
# Plain programs whose output a next pipeline stage may run (`echo … | sh`): see Emitter.follow.
ECHOES = frozenset({"echo", "printf"})


def has_glob(text: str) -> bool:
    """True if unquoted text holds a pathname pattern (`*`, `?`, `[…]`)."""
    if "*" in text or "?" in text:
        return True
    k = text.find("[")
    return k != -1 and "]" in text[k + 1:]


class ShellSyntaxError(ValueError):
    """The command is not valid (or not supported) shell syntax."""


class Component(NamedTuple):
    """One simple command that would run, normalised."""

    argv: tuple[str, ...]
    text: str
    forms: tuple[str, ...]
    launchers: tuple[str, ...] = ()
    dynamic: bool = False
    # What the effects model needs beyond the texts: argv positions only known at run time,
    # the redirections (`> file`), the assignments in front (`LD_PRELOAD=x`), whether stdin
    # comes from an earlier pipeline stage, and the text fed to stdin when it is known.
    unknown: tuple[int, ...] = ()
    redirs: tuple[str, ...] = ()
    assigns: tuple[str, ...] = ()
    piped: bool = False
    stdin: str | None = None
    path: str = ""  # the program as written when it names a file (`./x/run`, `/tmp/s`)

    @property
    def program(self) -> str:
        """The program's basename ('' for a bare redirection)."""
        return self.argv[0] if self.argv else ""


class ParsedCommand(NamedTuple):
    """Everything a command line would run, and whether it could be fully understood."""

    source: str
    components: tuple[Component, ...]
    pipelines: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    problem: str | None = None
    assigns: tuple[str, ...] = ()  # assignment-only commands (`X=1`), as NAME=value


@dataclass(slots=True)
class Word:
    """One shell word after quote removal; `raw` is its source text."""

    text: str
    dynamic: bool = False
    quoted: bool = False
    glob: bool = False
    split: bool = False
    raw: str = ""


@dataclass(slots=True)
class Stage:
    """One pipeline stage: its text and what the next stage may need from it."""

    text: str = ""
    echo: str | None = None
    shell_stdin: bool = False
    prefix: tuple[str, ...] = ()
    comp: int = -1  # index in Out.components of the stage's own command


@dataclass(slots=True)
class Out:
    """What a parse collects, across nested scripts."""

    components: list[Component] = field(default_factory=list)
    pipelines: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    assigns: list[str] = field(default_factory=list)  # assignment-only commands (`X=1`)
    # functions defined on the line: name → body, parsed where called (see Parser.function)
    functions: dict[str, str] = field(default_factory=dict)
    called: set[str] = field(default_factory=set)  # the bodies that have run
    calling: set[str] = field(default_factory=set)  # the bodies being read now
    steps: int = 0

    def charge(self, steps: int) -> None:
        """Count work done; ShellSyntaxError once the parse has done too much."""
        self.steps += steps
        if self.steps > MAX_STEPS:
            raise ShellSyntaxError(TOO_COMPLEX)


UNKNOWN = "\x00"  # stands for a value only known at run time (commands never hold NUL)


# The parts of a normalised word only known at run time: `$((…))`, `$( … )`, `${X}`, `$1`,
# `<( … )`.
DYNAMIC = re.compile(r"\$\(\(.*?\)\)|\$\( .*? \)|\$\{[^}]*\}|\$[0-9@*#?$!-]|[<>]\( .*? \)",
                     re.DOTALL)


def fold_dynamic(word: str) -> str:
    """A word's text with every run-time-only part replaced by UNKNOWN (all of it when no
    such part is found: the word was marked run-time-only for another reason)."""
    folded = DYNAMIC.sub(UNKNOWN, word)
    return folded if UNKNOWN in folded else UNKNOWN


def assigned(name: str, value: str) -> str:
    """`NAME=value` of an assignment whose value is partly known at run time only: those
    parts UNKNOWN, except the variable's own old value (`PATH=./bin:${PATH}` prepends
    ./bin to what PATH held: nothing the command chose, so the value stays known) and
    `${PWD}` (the working directory, which the effects model knows)."""
    kept = (f"${{{name}}}", "${PWD}")
    if not DYNAMIC.search(value):
        return f"{name}={UNKNOWN}"
    return f"{name}=" + DYNAMIC.sub(lambda m: m.group(0) if m.group(0) in kept else UNKNOWN,
                                    value)


def assignment(w: Word) -> str:
    """`NAME=value` of an assignment word (`assigned` when part of it is only known at run
    time)."""
    name, _, value = w.text.partition("=")
    name = name.rstrip("+")
    return assigned(name, value) if w.dynamic else f"{name}={value}"


def _expand(words: list[Word]) -> list[Word]:
    """Split known variables holding blanks and expand `{a,b}`; most commands have neither,
    and get their list back unchanged."""
    if not any(w.split or (not w.quoted and not w.dynamic and "{" in w.text and "," in w.text)
               for w in words):
        return words
    expanded: list[Word] = []
    for w in words:
        if w.split:
            expanded += [Word(t, raw=t) for t in w.text.split()]
        elif not w.quoted and not w.dynamic and "{" in w.text and "," in w.text:
            expanded += [Word(t, raw=t) for t in L.expand_braces(w.text)]
        else:
            expanded.append(w)
    return expanded


class Emitter:
    """Turns simple commands into Components; `sub` parses a nested script."""

    out: Out
    vars: dict[str, str | None]

    def sub(self, text: str, prefix: tuple[str, ...] | None = None) -> str:
        """Parse a nested script, returning its normalised text."""
        raise NotImplementedError

    def emit_plain(self, words: list[Word], redirs: list[str], stage: Stage) -> bool:
        """The common case without launchers, wrappers or expansions; False if not plain."""
        first = words[0]
        if (first.quoted or first.dynamic or first.glob or first.split or first.text in SPECIAL
                or "=" in first.text or "{" in first.text):
            return False
        for w in words:
            if w.split or (not w.quoted and "{" in w.text):
                return False
        program = posix_basename(first.text) if "/" in first.text else first.text
        if not program or program in SPECIAL or (
                program in L.LAUNCHER_SUBCOMMANDS and L.runs_subcommand(
                    [program, *[w.text for w in words[1:2]]])):
            return False
        argv = (program, *[w.text for w in words[1:]])
        if program in EMBEDDERS and embedded_commands(program, argv[1:]):
            return False  # `rsync -e CMD`: a command in an option, unwrapped by emit
        text = " ".join((*argv, *redirs)) if redirs else " ".join(argv)
        unknown = tuple(i for i, w in enumerate(words) if w.dynamic)
        self.add(Component(argv, text, (text,), unknown=unknown, redirs=tuple(redirs),
                           path=first.text if "/" in first.text else ""), stage)
        stage.comp = len(self.out.components) - 1
        if program in ECHOES:
            self.follow(program, words[1:], list(argv[1:]), (), stage)
        if "://" in text or program in FETCHERS:
            self.out.urls.extend(urls_in_words(program, argv[1:]))
        return True

    def emit(self, words: list[Word], redirs: list[str], stage: Stage,
             prefix: tuple[str, ...]) -> None:
        """Turn one simple command's words into components (unwrapping runners)."""
        if not prefix and words and self.emit_plain(words, redirs, stage):
            return
        words = _expand(words)
        k = 0
        while k < len(words) and L.ASSIGNMENT.match(words[k].raw):
            k += 1
        if k == len(words):
            self.assign(words, redirs, stage)
            return
        assigns = [assignment(w) for w in words[:k]]
        launched: list[str] = []  # launcher words (with their options), assignments dropped
        starts: list[int] = []
        names: list[str] = []
        while True:
            head = words[k]
            program = posix_basename(head.text)
            rest_words = words[k + 1:]
            args = [w.text for w in rest_words]
            if head.dynamic or head.glob or not program:
                self.out.problems.append(f"the program name {head.text!r} is only known at run "
                                         "time")
                break
            if program == "env" and (split := L.env_split_string(args)) is not None:
                j, text = split
                rest = " ".join(shlex.quote(a) for a in args[j + 2:])
                self.sub(f"{text} {rest}", (*prefix, *launched, program))
                return
            end = L.launcher_end(program, args)
            if end is None or end >= len(args):
                break  # not a launcher, or one with nothing to launch (`sudo -v`)
            self.out.charge(len(rest_words))
            names.append(program)
            starts.append(len(prefix) + len(launched))
            launched += [program, *args[:end]]
            if program in ("env", "sudo"):
                assigns += [assignment(w) for w in rest_words[:end] if L.ASSIGNMENT.match(w.raw)]
            k += 1 + end
            if program == "parallel":
                # `parallel CMD ::: A B`: the separators are no arguments of CMD
                words = [*words[:k], *(w for w in words[k:]
                                       if w.quoted or w.text not in (":::", "::::", ":::+"))]
            if program == "xargs" and (token := L.xargs_replace(args[:end])) is not None:
                # `xargs -I {} cmd {}`: every word holding the replace string is input
                words = [*words[:k], *(Word(w.text, True, w.quoted, w.glob, w.split, w.raw)
                                       if token in w.text else w for w in words[k:])]
        outer = (*prefix, *launched)
        if self.unwrap(program, rest_words, outer, stage):
            self.out.assigns.extend(assigns)  # `BASH_ENV=x bash -c …` still sets BASH_ENV
            return
        argv = (head.text if head.dynamic or head.glob else program, *args)
        text = " ".join([*argv, *redirs])
        # One form per launcher position, so `^sudo ` finds `nohup sudo rm x` and `sudo rm x`.
        forms = [text]
        if outer:
            inherited = [i for i, word in enumerate(prefix)
                         if word in L.LAUNCHER_VALUE_OPTIONS or word in ("su", "runuser")]
            for start in sorted({0, *inherited, *starts}):
                self.out.charge(len(outer) - start + 1)
                forms.append(" ".join([*outer[start:], text]))
        unknown = tuple(i + 1 for i, w in enumerate(rest_words) if w.dynamic)
        comp = Component(argv, text, tuple(forms), tuple(names), head.dynamic or head.glob,
                         unknown, tuple(redirs), tuple(assigns),
                         path=head.text if "/" in head.text and not head.dynamic else "")
        self.add(comp, stage)
        stage.comp = len(self.out.components) - 1
        self.follow(program, rest_words, args, outer, stage)
        self.embedded(program, rest_words, args, assigns, outer)
        # Only URLs (`scheme://`) and fetchers' bare hosts count; anything else finds none.
        if "://" in text or program in FETCHERS:
            self.out.urls.extend(urls_in_words(program, tuple(args)))

    def assign(self, words: list[Word], redirs: list[str], stage: Stage) -> None:
        """A command of assignments only: remember the values for later `$NAME`s."""
        for w in words:
            name, _, value = w.text.partition("=")
            # A run-time value of known shape (`d=$(mktemp -d)`) is kept as its substitution.
            shaped = not DYNAMIC.search(without_shaped(value))
            known = None if name.endswith("+") or (w.dynamic and not shaped) else value
            self.vars[name.rstrip("+")] = known
            self.out.assigns.append(assignment(w))
            if name == "IFS":
                # Word splitting then follows rules this parser does not model.
                self.out.problems.append("the command changes IFS (how words are split)")
        if any(">" in r or r.lstrip("0123456789").startswith("< ") for r in redirs):
            self.add(Component((), " ".join(redirs), (" ".join(redirs),), redirs=tuple(redirs)),
                     stage)

    def follow(self, program: str, rest_words: list[Word], args: list[str],
               outer: tuple[str, ...], stage: Stage) -> None:
        """What the next pipeline stage may run (`echo x | sh`) and `find -exec` commands."""
        if program in ("echo", "printf") and not any(w.dynamic for w in rest_words):
            stage.echo = L.echo_payload(program, args)
        if program in L.SHELLS:
            mode, _ = L.shell_script_index(args)
            stage.shell_stdin = mode == "stdin"
            stage.prefix = outer
        if program == "find":
            for a, b in L.find_exec_commands(args):
                self.emit(rest_words[a:b], [], Stage(), outer)

    def embedded(self, program: str, rest_words: list[Word], args: list[str],
                 assigns: list[str], outer: tuple[str, ...]) -> None:
        """Command lines the program runs from its options or environment (`rsync -e CMD`,
        `GIT_PAGER=CMD git log`) are parsed as commands of the line."""
        if program not in EMBEDDERS and not any(a.partition("=")[0] in ENV_COMMANDS
                                                for a in assigns):
            return
        dynamic = frozenset(i for i, w in enumerate(rest_words) if w.dynamic)
        for found in embedded_commands(program, args, dynamic, assigns):
            if found.dynamic:
                self.out.problems.append(f"'{program}' runs a command only known at run time")
            else:
                self.out.charge(len(found.text))
                self.sub(found.text, outer)

    def unwrap(self, program: str, rest: list[Word], outer: tuple[str, ...],
               stage: Stage) -> bool:
        """Replace a command that runs a script (`sh -c`, `eval`, …) by that script."""
        args = [w.text for w in rest]
        script: Word | None = None
        if program in L.SHELLS:
            mode, j = L.shell_script_index(args)
            if mode != "c":
                return False
            if j < 0:
                if "xargs" in outer:  # `… | xargs bash -c`: the input is the script
                    self.out.problems.append(f"'{program}' runs a script only known at run time")
                    return False
                raise ShellSyntaxError(f"'{program} -c' without a command")
            script = rest[j]
        elif program == "eval":
            if not rest:
                return True
            script = Word(" ".join(args), any(w.dynamic for w in rest))
        elif program in ("su", "runuser", "script"):
            j2 = L.su_script(args)
            if j2 is None:
                return False
            script = rest[j2]
            if script.text.startswith("--command="):
                script = Word(script.text.split("=", 1)[1], script.dynamic)
            outer = (*outer, program)
        elif program == "watch":
            start = L.watch_command_start(args)
            if start >= len(args):
                return False
            script = Word(" ".join(args[start:]), any(w.dynamic for w in rest[start:]))
        else:
            return False
        if script.dynamic:
            self.out.problems.append(f"'{program}' runs a script only known at run time")
            return False
        stage.text = self.sub(script.text, outer)
        return True

    def add(self, comp: Component, stage: Stage) -> None:
        if len(self.out.components) >= MAX_COMPONENTS:
            raise ShellSyntaxError("the command has too many parts")
        self.out.components.append(comp)
        if not stage.text:
            stage.text = comp.text
