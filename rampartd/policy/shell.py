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

When the command cannot be understood - a syntax error, an unsupported construct (`case`,
functions, arrays), a program name only known at run time (`$CMD`, `$(…)` or a glob in
command position), limits exceeded - `ParsedCommand.problem` says why, and the engine fails
closed. Most commands are plain words and operators; those take a quick tokenizer path and
everything else the full parser, with the same results.
"""

from __future__ import annotations

import itertools
import re

from rampartd.policy.matchers import posix_basename, urls_in_words
from rampartd.policy.normalize import (
    FETCHERS,
    SPECIAL,
    Component,
    Out,
    ParsedCommand,
    ShellSyntaxError,
    Stage,
    Word,
    has_glob,
)
from rampartd.policy.shellparse import Parser

__all__ = ["Component", "ParsedCommand", "parse_command"]

MAX_COMMAND_CHARS = 64 * 1024

# Plain words: nothing for the shell to interpret.
_PLAIN = re.compile(r"[A-Za-z0-9_./:,@%+\- ]*\Z")
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


def _plain(text: str) -> ParsedCommand | None:
    """`git status`, `npm test`: one plain program with plain arguments, or None."""
    if not _PLAIN.match(text):
        return None
    words = text.split()
    if not words or words[0] in SPECIAL or words[0] in _RESERVED:
        return None
    program = posix_basename(words[0]) if "/" in words[0] else words[0]
    if not program or program in SPECIAL:
        return None
    words[0] = program
    norm = " ".join(words)
    urls: tuple[str, ...] = ()
    if "://" in text or program in FETCHERS:
        urls = tuple(urls_in_words(program, tuple(words[1:])))
    return ParsedCommand(text, (Component(tuple(words), norm, (norm,)),), (), urls, None)


def _unquote(token: str) -> Word:
    if "'" not in token and '"' not in token:
        return Word(token, glob=has_glob(token), raw=token)
    text = _QUOTED.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), token)
    return Word(text, quoted=True, glob=any(has_glob(part) for part in _QUOTED.split(token)[::3]),
                raw=token)


def _quick(text: str, out: Out) -> bool:
    """Tokenize plain words, quotes and operators; False if the full parser is needed."""
    if (not _SIMPLE.match(text) or ">|" in text or "|&" in text or "&>>" in text
            or not _TOKENS_ONLY.match(text)):
        return False
    # Split into simple commands: (words, redirections, the operator that ends them).
    commands: list[tuple[list[Word], list[str], str]] = []
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
                return False
            pending = redirect
        elif op == "\n" and not words and not redirs and (
                not commands or commands[-1][2] != "|"):
            continue
        else:
            if pending or not words or words[0].raw in _RESERVED:
                return False
            commands.append((words, redirs, op))
            words, redirs = [], []
    if pending or (redirs and not words):
        return False
    if words:
        if words[0].raw in _RESERVED:
            return False
        commands.append((words, redirs, ";"))
    elif commands and commands[-1][2] in ("&&", "||", "|"):
        return False
    parser = Parser(text, out, 0, (), {})
    stages: list[Stage] = []
    for cmd_words, cmd_redirs, op in commands:
        stage = Stage()
        parser.emit(cmd_words, cmd_redirs, stage, ())
        stages.append(stage)
        if op != "|":
            if len(stages) > 1:
                out.pipelines.append(" | ".join(st.text for st in stages if st.text))
                for before, after in itertools.pairwise(stages):
                    if after.shell_stdin and before.echo is not None:
                        parser.sub(before.echo, after.prefix)
            stages = []
    return True


def parse_command(text: str) -> ParsedCommand:
    """Split a shell command line into normalised components; never raises."""
    if len(text) > MAX_COMMAND_CHARS:
        return ParsedCommand(text, (), problem="the command is longer than 64 KiB")
    if "\x00" in text:
        return ParsedCommand(text, (), problem="the command contains a NUL byte")
    plain = _plain(text)
    if plain is not None:
        return plain
    out = Out()
    problem: str | None = None
    try:
        if not _quick(text, out):
            out = Out()
            Parser(text, out, 0, (), {}).script()
    except ShellSyntaxError as exc:
        problem = f"cannot parse the command: {exc}"
    except RecursionError:
        problem = "cannot parse the command: it is nested too deeply"
    if out.problems and problem is None:
        problem = "; ".join(dict.fromkeys(out.problems))
    return ParsedCommand(text, tuple(out.components), tuple(out.pipelines), tuple(out.urls),
                         problem)
