"""Shell command parsing: split a command line into the commands it would really run.

`parse_command(text)` understands `&&`, `||`, `;`, `|`, `&`, newlines, subshells and `{ }`
groups, `$(…)`, backticks, `<(…)`/`>(…)`, `eval`, `sh/bash -c '…'`, `su -c`, `watch`,
`find -exec`, heredocs and here-strings fed to a shell, `echo … | sh`, brace expansion and
variables assigned earlier on the same line. Each simple command becomes a Component whose
words have quotes and escapes removed (`'r'm`, `r\\m`, `$'\\x72m'` → `rm`), with environment
assignments and launchers (`env`, `nohup`, `timeout`, `nice`, `command`, `exec`, `sudo`,
`doas`, `xargs`, …) stripped, and the program reduced to its basename (`/bin/rm` → `rm`).

A component has several texts ("forms"): the stripped one (`rm -rf /`) first and, when
launchers were stripped, one starting at each launcher (`sudo -u root rm -rf /`), so policies
can match either. Multi-stage pipelines are also kept as one text (`curl -s x | sh`).

When the command cannot be understood - a syntax error, an unsupported construct
(arrays, `coproc`), a program name only known at run time (`$CMD`, `$(…)` or a glob in
command position), limits exceeded - `ParsedCommand.problem` says why, and the engine fails
closed. Most commands are plain words and operators; those take a quick tokenizer path and
everything else the full parser, with the same results.
"""

from __future__ import annotations

import re

from rampartd.policy.matchers import FETCHERS, posix_basename, urls_in_words
from rampartd.policy.shell import launchers as L
from rampartd.policy.shell.command import (
    ECHOES,
    MAX_COMPONENTS,
    SPECIAL,
    Component,
    Out,
    ParsedCommand,
    ShellSyntaxError,
    Stage,
    Word,
    assignment,
    has_glob,
)
from rampartd.policy.shell.embedded import EMBEDDERS, ENV_COMMANDS, embedded_commands
from rampartd.policy.shell.grammar import Parser

__all__ = ["Component", "ParsedCommand", "parse_command"]

MAX_COMMAND_CHARS = 64 * 1024

# Plain words joined by list operators: nothing to quote, expand or redirect. `~`, `=`, `!`
# and glob characters are plain here: the parser keeps them as they are, and the checks
# below send assignments, reserved words and globbed program names on to the tokenizer.
_PLAIN_WORDS = re.compile(r"[A-Za-z0-9_./:,@%+\-~=!*?\[\] \t]*\Z")
_PLAIN = re.compile(r"[A-Za-z0-9_./:,@%+\-~=!*?\[\] \t;&|\n]*\Z")
# A list operator with the blanks around it; the group keeps the operator in re.split.
_LIST_OP = re.compile(r"[ \t]*(\|\||&&|[;|&\n])[ \t]*")
# Words and operators only: no expansion, escapes, heredocs, comments, groups or braces.
_SIMPLE = re.compile(r"""[^$`\\#(){}<]*\Z""")
_WORD_RE = r"""(?:[^\s'"\\;&|()<>$`#{}]|'[^']*'|"[^"\\$`]*")++"""
_REDIRECT_RE = r"[0-9]*(?:>>|>&|&>|>)"
_OP_RE = r"\|\||&&|[;|&\n]"
_TOKEN = re.compile(rf"[ \t]*(?:({_REDIRECT_RE})|({_OP_RE})|({_WORD_RE}))")
# No capturing groups here (3.11's re mishandles them under possessive quantifiers); the
# possessive `*+`/`++` make a failing match give up in linear time.
_TOKENS_ONLY = re.compile(rf"(?:[ \t]*(?:{_REDIRECT_RE}|{_OP_RE}|{_WORD_RE}))*+[ \t]*\Z")
_QUOTED = re.compile(r"""'([^']*)'|"([^"]*)\"""")
_RESERVED = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for",
                       "select", "case", "esac", "function", "coproc", "in", "!", "{", "}",
                       "[[", "]]", "time"})
# The defaults of the fields a plain program's Component and ParsedCommand leave unset.
_COMPONENT_TAIL = Component((), "", ())[3:]
_PARSED_TAIL = ParsedCommand("", ())[5:]


# A simple command's words, its redirections and the operator that ends it.
_Command = tuple[list[Word], list[str], str]
# A plain simple command's words and the operator that ends it.
_PlainCommand = tuple[list[str], str]


def _plain_split(text: str) -> list[_PlainCommand] | None:
    """The commands of plain text; None if it is not plain or a command is empty (blank
    lines, `;;`, a trailing `&&`: left to the tokenizer and the parser)."""
    if _PLAIN_WORDS.match(text):
        words = text.split()  # one command, the most common case: no operators to split on
        return [(words, ";")] if words else None
    if not _PLAIN.match(text):
        return None
    parts = _LIST_OP.split(text)  # [command, operator, command, …]
    if not parts[-1].strip() and parts[-2] in (";", "&", "\n"):
        del parts[-2:]  # a trailing `;`, `&` or newline just ends the list
    commands: list[_PlainCommand] = []
    for k in range(0, len(parts), 2):
        words = parts[k].split()
        if not words:
            return None
        commands.append((words, parts[k + 1] if k + 1 < len(parts) else ";"))
    return commands


def _plain_component(words: list[str], feeds: bool) -> Component | None:
    """`git status`: a program that needs no unwrapping; None for anything else.

    feeds: its output goes to the next pipeline stage (`echo … | sh` runs what echo prints).
    """
    assigns: tuple[str, ...] = ()
    if "=" in words[0]:
        k = 0
        while k < len(words) - 1 and L.ASSIGNMENT.match(words[k]):
            k += 1  # `NODE_ENV=production npm run build`: assignments for the program
        assigns = tuple(assignment(Word(w)) for w in words[:k])
        if any(a.partition("=")[0] in ENV_COMMANDS for a in assigns):
            return None  # `GIT_PAGER=CMD git log`: the parser unwraps CMD
        words = words[k:]
    first = words[0]
    if first in _RESERVED or first in SPECIAL or "=" in first or has_glob(first):
        return None
    argv = tuple(words)
    if "/" in first:  # `/bin/rm` runs `rm`
        program = posix_basename(first)
        if not program or program in SPECIAL:
            return None
        argv = (program, *argv[1:])
    if feeds and argv[0] in ECHOES:
        return None  # `echo … | sh`: the parser feeds the payload to the next stage
    if argv[0] in L.LAUNCHER_SUBCOMMANDS and L.runs_subcommand(words):
        return None  # `npm exec -- cmd` launches cmd
    if argv[0] in EMBEDDERS and embedded_commands(argv[0], argv[1:]):
        return None  # `git submodule foreach CMD`: the parser unwraps it
    norm = " ".join(argv)
    if assigns or "/" in first:
        return Component(argv, norm, (norm,), assigns=assigns,
                         path=first if "/" in first else "")
    # the common case, built by tuple.__new__ (the NamedTuple constructor costs twice as much)
    return tuple.__new__(Component, (argv, norm, (norm,), *_COMPONENT_TAIL))


def _urls(comp: Component) -> tuple[str, ...]:
    if "://" in comp.text or comp.argv[0] in FETCHERS:
        return tuple(urls_in_words(comp.argv[0], comp.argv[1:]))
    return ()


def _plain(text: str, commands: list[_PlainCommand]) -> ParsedCommand | None:
    """The result for plain programs joined by list operators (`cd src && make | tee log`),
    built without the parser; None if a command needs unwrapping. It is what the tokenizer
    path builds for the same text."""
    if len(commands) == 1:  # the most common case, without the pipeline bookkeeping
        comp = _plain_component(commands[0][0], False)
        if comp is None:
            return None
        return tuple.__new__(ParsedCommand, (text, (comp,), (), _urls(comp), None, *_PARSED_TAIL))
    components: list[Component] = []
    pipelines: list[str] = []
    urls: list[str] = []
    stages: list[str] = []  # texts of the current pipeline's stages
    piped = False
    for words, op in commands:
        comp = _plain_component(words, op == "|")
        if comp is None:
            return None
        if piped:
            comp = comp._replace(piped=True)
        piped = op == "|"
        components.append(comp)
        urls += _urls(comp)
        stages.append(comp.text)
        if op != "|":
            if len(stages) > 1:
                pipelines.append(" | ".join(stages))
            stages = []
    return ParsedCommand(text, tuple(components), tuple(pipelines), tuple(urls), None)


def _plain_commands(plain: list[_PlainCommand]) -> list[_Command] | None:
    """The tokenizer's commands for plain ones: nothing is quoted or redirected."""
    commands: list[_Command] = []
    for texts, op in plain:
        if texts[0] in _RESERVED:
            return None
        commands.append(([Word(t, glob=has_glob(t), raw=t) for t in texts], [], op))
    return commands


def _unquote(token: str) -> Word:
    if "'" not in token and '"' not in token:
        return Word(token, glob=has_glob(token), raw=token)
    text = _QUOTED.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), token)
    return Word(text, quoted=True, glob=any(has_glob(part) for part in _QUOTED.split(token)[::3]),
                raw=token)


def _tokenize(text: str) -> list[_Command] | None:
    """Split words, quotes, redirections and operators into commands; None if the full
    parser is needed."""
    if (not _SIMPLE.match(text) or ">|" in text or "|&" in text or "&>>" in text
            or not _TOKENS_ONLY.match(text)):
        return None
    commands: list[_Command] = []
    words: list[Word] = []
    redirs: list[str] = []
    pending = ""
    for redirect, op, token in _TOKEN.findall(text):
        if token:
            if pending:
                redirs.append(f"{pending} {_unquote(token).text}")
                pending = ""
            else:
                words.append(_unquote(token))
        elif redirect:
            if pending:
                return None
            pending = redirect
        elif op == "\n" and not words and not redirs and (
                not commands or commands[-1][2] != "|"):
            continue
        else:
            if pending or not words or words[0].raw in _RESERVED or len(commands) > MAX_COMPONENTS:
                return None  # (too many parts: the parser stops at the limit, sooner)
            commands.append((words, redirs, op))
            words, redirs = [], []
    if pending or (redirs and not words):
        return None
    if words:
        if words[0].raw in _RESERVED:
            return None
        commands.append((words, redirs, ";"))
    elif commands and commands[-1][2] in ("&&", "||", "|"):
        return None
    return commands


def _quick(text: str, out: Out, plain: list[_PlainCommand] | None) -> bool:
    """Emit the commands of text without the full parser; False if it is needed.

    plain: the commands of text from _plain_split, when it is plain.
    """
    commands = _plain_commands(plain) if plain is not None else _tokenize(text)
    if commands is None:
        return False
    parser = Parser(text, out, 0, (), {})
    stages: list[Stage] = []
    for cmd_words, cmd_redirs, op in commands:
        stage = Stage()
        parser.emit(cmd_words, cmd_redirs, stage, ())
        stages.append(stage)
        if op != "|":
            parser.end_pipeline(stages)
            stages = []
    return True


def parse_command(text: str) -> ParsedCommand:
    """Split a shell command line into normalised components; never raises."""
    if len(text) > MAX_COMMAND_CHARS:
        return ParsedCommand(text, (), problem="the command is longer than 64 KiB")
    if "\x00" in text:
        return ParsedCommand(text, (), problem="the command contains a NUL byte")
    plain = _plain_split(text)
    if plain is not None and len(plain) <= MAX_COMPONENTS:
        parsed = _plain(text, plain)
        if parsed is not None:
            return parsed
    out = Out()
    problem: str | None = None
    try:
        if not _quick(text, out, plain):
            out = Out()
            Parser(text, out, 0, (), {}).script()
    except ShellSyntaxError as exc:
        problem = f"cannot parse the command: {exc}"
    except RecursionError:
        problem = "cannot parse the command: it is nested too deeply"
    if out.problems and problem is None:
        problem = "; ".join(dict.fromkeys(out.problems))
    return ParsedCommand(text, tuple(out.components), tuple(out.pipelines), tuple(out.urls),
                         problem, tuple(out.assigns))
